package lockout_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/authn/lockout"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
)

func newService(tb testing.TB, p lockout.Policy) *lockout.Service {
	tb.Helper()
	m := memory.New()
	tb.Cleanup(func() { _ = m.Close() })
	return lockout.New(m, p, []byte("0123456789abcdef0123456789abcdef"))
}

// TestPolicy_Delay: free failures, then the base delay doubling with
// each further failure, capped.
func TestPolicy_Delay(t *testing.T) {
	p := lockout.Policy{BaseDelay: time.Second, MaxDelay: 15 * time.Minute}
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{
		{0, 0}, {4, 0}, {5, time.Second}, {6, 2 * time.Second}, {7, 4 * time.Second},
		{14, 512 * time.Second}, {15, 15 * time.Minute}, {60, 15 * time.Minute}, {1 << 30, 15 * time.Minute},
	} {
		require.Equal(t, tc.want, p.Delay(tc.n, 5), "n=%d", tc.n)
	}
}

// TestService_CheckRecordReset walks a counter through its free
// failures, the delays, and a reset.
func TestService_CheckRecordReset(t *testing.T) {
	ctx := context.Background()
	s := newService(t, lockout.Policy{AccountIPFree: 2, AccountFree: 3, BaseDelay: time.Second, MaxDelay: 8 * time.Second})
	now := time.Now()
	both := []lockout.Counter{lockout.AccountIP, lockout.Account}
	sub := s.For(" Alice", "192.0.2.1")
	require.Equal(t, s.For("alice ", "192.0.2.1"), sub, "usernames are normalised")
	require.NotEqual(t, s.For("alice", "192.0.2.2"), sub)
	for range 2 {
		w, err := s.Check(ctx, sub, both, now)
		require.NoError(t, err)
		require.False(t, w.Blocked())
		w, err = s.Record(ctx, sub, both, both, now)
		require.NoError(t, err)
		require.False(t, w.Blocked())
	}
	w, err := s.Check(ctx, sub, both, now.Add(500*time.Millisecond))
	require.NoError(t, err)
	require.Equal(t, lockout.Wait{Retry: 500 * time.Millisecond, Counter: lockout.AccountIP}, w)
	require.EqualValues(t, 1, w.Seconds())
	require.Contains(t, w.Description(), "try again in 1 s")

	// The account's own counter reaches its free failures from another
	// address: only it delays that address, and says how to get past.
	other := s.For("alice", "192.0.2.9")
	w, err = s.Record(ctx, other, both, both, now.Add(time.Second))
	require.NoError(t, err)
	require.False(t, w.Blocked())
	w, err = s.Check(ctx, other, both, now.Add(time.Second))
	require.NoError(t, err)
	require.Equal(t, lockout.Wait{Retry: time.Second, Counter: lockout.Account}, w)
	require.Contains(t, w.Description(), "or send your one-time code with your password")
	w, err = s.Check(ctx, other, []lockout.Counter{lockout.AccountIP}, now.Add(time.Second))
	require.NoError(t, err)
	require.False(t, w.Blocked(), "the account-wide delay binds only whoever checks it")

	require.NoError(t, s.Reset(ctx, sub, both))
	w, err = s.Check(ctx, other, both, now.Add(time.Second))
	require.NoError(t, err)
	require.False(t, w.Blocked(), "a reset clears the account's counter for every address")
}

// TestService_RecordRace: of attempts that all passed Check while one
// free failure was left, exactly one may go on to a comparison.
func TestService_RecordRace(t *testing.T) {
	ctx := context.Background()
	s := newService(t, lockout.Policy{AccountIPFree: 3, BaseDelay: time.Second})
	sub := s.For("bob", "198.51.100.7")
	cs := []lockout.Counter{lockout.AccountIP}
	now := time.Now()
	for range 2 {
		_, err := s.Record(ctx, sub, cs, cs, now)
		require.NoError(t, err)
	}
	const racers = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	through := 0
	for range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.Record(ctx, sub, cs, cs, now)
			require.NoError(t, err)
			if !w.Blocked() {
				mu.Lock()
				through++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 1, through, "one attempt takes the last free failure")
}

// TestService_KeysAreDigests: a counter's storage names tell neither the
// username nor the address.
func TestService_KeysAreDigests(t *testing.T) {
	m := memory.New()
	t.Cleanup(func() { _ = m.Close() })
	rec := &recorder{Store: m}
	s := lockout.New(rec, lockout.Policy{}, nil)
	cs := []lockout.Counter{lockout.AccountIP, lockout.Account, lockout.OTP}
	_, err := s.Record(context.Background(), s.For("victim@example.com", "203.0.113.5"), cs, cs, time.Now())
	require.NoError(t, err)
	for _, k := range rec.keys {
		for _, secret := range []string{"victim", "example", "203.0.113.5", "203"} {
			require.NotContains(t, strings.ToLower(k), secret)
		}
	}
	require.NotEmpty(t, rec.keys)
}

type recorder struct {
	*memory.Store
	keys []string
}

func (r *recorder) RecordFailure(ctx context.Context, group string, names []string, window time.Duration, now time.Time) ([]storage.FailureState, error) {
	r.keys = append(r.keys, group)
	r.keys = append(r.keys, names...)
	return r.Store.RecordFailure(ctx, group, names, window, now)
}
