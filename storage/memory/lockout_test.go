package memory

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFailureCountersBounded: a spray of fresh usernames cannot grow the
// lockout's counters without bound, and the janitor sweeps expired ones
// without anyone reading them (docs/security.md "Account lockout").
func TestFailureCountersBounded(t *testing.T) {
	const limit = 1 << 10
	s := newStore(time.Hour)
	t.Cleanup(func() { _ = s.Close() })
	s.failures.max = limit
	ctx := context.Background()
	now := time.Now()
	for i := range 4 * limit {
		_, err := s.RecordFailure(ctx, "g"+strconv.Itoa(i), []string{"a"}, time.Hour, now)
		require.NoError(t, err)
	}
	s.mu.Lock()
	n := len(s.failures.m)
	s.mu.Unlock()
	require.LessOrEqual(t, n, limit)
	require.Greater(t, n, limit/2, "a full table sheds a sixteenth, not everything")

	fresh := newStore(10 * time.Millisecond)
	t.Cleanup(func() { _ = fresh.Close() })
	for i := range 100 {
		_, err := fresh.RecordFailure(ctx, "g"+strconv.Itoa(i), []string{"a", "ip"}, 30*time.Millisecond, now)
		require.NoError(t, err)
	}
	_, err := fresh.RecordFailure(ctx, "keep", []string{"a"}, time.Hour, now)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		fresh.mu.Lock()
		defer fresh.mu.Unlock()
		return len(fresh.failures.m) == 1
	}, 2*time.Second, 10*time.Millisecond, "janitor did not sweep expired counters")
}
