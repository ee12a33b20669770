package uq

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHold: both header spellings, hold = min(header − 1 s, cap), none
// → 0, malformed or disagreeing → invalid_request.
func TestHold(t *testing.T) {
	cases := []struct {
		name    string
		headers map[string][]string
		max     time.Duration
		want    time.Duration
		bad     bool
	}{
		{"none", nil, 0, 0, false},
		{"Client-Timeout 5", map[string][]string{"Client-Timeout": {"5"}}, 0, 4 * time.Second, false},
		{"Client_timeout 5 (-10 spelling)", map[string][]string{"Client_timeout": {"5"}}, 0, 4 * time.Second, false},
		{"lower-case underscore", map[string][]string{"client_timeout": {"10"}}, 0, 9 * time.Second, false},
		{"capped at 25 s", map[string][]string{"Client-Timeout": {"600"}}, 0, 25 * time.Second, false},
		{"custom cap", map[string][]string{"Client-Timeout": {"600"}}, 10 * time.Second, 10 * time.Second, false},
		{"1 → 0", map[string][]string{"Client-Timeout": {"1"}}, 0, 0, false},
		{"0 → 0", map[string][]string{"Client-Timeout": {"0"}}, 0, 0, false},
		{"huge clamps", map[string][]string{"Client-Timeout": {"999999"}}, 0, 25 * time.Second, false},
		{"both agree", map[string][]string{"Client-Timeout": {"5"}, "Client_timeout": {"5"}}, 0, 4 * time.Second, false},
		{"both disagree", map[string][]string{"Client-Timeout": {"5"}, "Client_timeout": {"9"}}, 0, 0, true},
		{"negative", map[string][]string{"Client-Timeout": {"-5"}}, 0, 0, true},
		{"fraction", map[string][]string{"Client-Timeout": {"2.5"}}, 0, 0, true},
		{"empty", map[string][]string{"Client-Timeout": {""}}, 0, 0, true},
		{"too many digits", map[string][]string{"Client-Timeout": {"1234567"}}, 0, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Hold(http.Header(tc.headers), tc.max)
			if tc.bad {
				require.ErrorIs(t, err, ErrInvalidRequest)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestQuestionID: 256-bit base64url ids, distinct, and ValidQuestionID
// refuses every other shape.
func TestQuestionID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := NewQuestionID()
		require.Len(t, id, 43)
		require.True(t, ValidQuestionID(id))
		require.False(t, seen[id])
		seen[id] = true
	}
	for _, bad := range []string{"", "984dcc7d3d4d4b0f9f8022e344f9", NewQuestionID() + "A", NewQuestionID()[:42] + "+", NewQuestionID()[:42] + "="} {
		require.False(t, ValidQuestionID(bad), bad)
	}
}

// TestPollGate: newest poll wins (generation), per-question interval →
// high_rate_question, per-client window → high_rate_client, with
// Retry-After; a refused poll stores nothing.
func TestPollGate(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	g := PollGate{QuestionInterval: time.Second, ClientWindow: time.Minute, ClientLimit: 3}

	// first poll admitted, generation 1
	s1, err := g.Admit(t0, PollState{})
	require.NoError(t, err)
	require.Equal(t, uint64(1), s1.Generation)

	// 500 ms later: too fast for the question, state unchanged
	s, err := g.Admit(t0.Add(500*time.Millisecond), s1)
	require.ErrorIs(t, err, ErrHighRateQuestion)
	require.Equal(t, 500*time.Millisecond, err.(*Error).RetryAfter)
	require.Equal(t, s1, s)

	// 2 s later: admitted as generation 2; the holding poll 1 is superseded
	s2, err := g.Admit(t0.Add(2*time.Second), s1)
	require.NoError(t, err)
	require.Equal(t, uint64(2), s2.Generation)
	require.ErrorIs(t, g.Superseded(1, s2.Generation), ErrDuplicateRequests)
	require.NoError(t, g.Superseded(2, s2.Generation))

	// third poll admitted; a fourth within the minute → high_rate_client
	s3, err := g.Admit(t0.Add(4*time.Second), s2)
	require.NoError(t, err)
	require.Equal(t, 3, s3.ClientCount)
	_, err = g.Admit(t0.Add(6*time.Second), s3)
	require.ErrorIs(t, err, ErrHighRateClient)
	require.Equal(t, 54*time.Second, err.(*Error).RetryAfter)
	require.Equal(t, "54", RetryAfterSeconds(err.(*Error).RetryAfter))

	// a new window resets the client count
	s4, err := g.Admit(t0.Add(61*time.Second), s3)
	require.NoError(t, err)
	require.Equal(t, 1, s4.ClientCount)
	require.Equal(t, uint64(4), s4.Generation)

	// zero gate: 1 s and 60/min defaults
	var z PollGate
	st := PollState{}
	for i := range 60 {
		st, err = z.Admit(t0.Add(time.Duration(i)*time.Second), st)
		require.NoError(t, err)
	}
	_, err = z.Admit(t0.Add(59*time.Second+500*time.Millisecond), st)
	require.ErrorIs(t, err, ErrHighRateClient)
	require.Equal(t, "1", RetryAfterSeconds(time.Millisecond))
}
