package storagetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/storage"
)

// RunRateLimiter runs the conformance suite of storage.RateLimiter: the
// GCRA arithmetic to the microsecond (burst, refill, RetryAfter,
// Remaining), refusals that spend nothing, independent keys, exactly
// Burst winners among concurrent requests, and invalid arguments. Time is
// the caller's: every case passes its own now, nothing sleeps. newLimiter
// must return a fresh limiter (or one in its own namespace) and arrange
// its Close with t.Cleanup; subtests run in parallel.
func RunRateLimiter(t *testing.T, newLimiter func(t testing.TB) storage.RateLimiter) {
	tests := []struct {
		name string
		run  func(t *testing.T, l storage.RateLimiter)
	}{
		{"Burst", testRateBurst},
		{"Refill", testRateRefill},
		{"RetryAfterExact", testRateRetryAfter},
		{"IntervalRoundsUp", testRateInterval},
		{"RefusedSpendsNothing", testRateRefusedSpendsNothing},
		{"IndependentKeys", testRateIndependentKeys},
		{"ClockBehind", testRateClockBehind},
		{"Concurrent", testRateConcurrent},
		{"InvalidArguments", testRateInvalid},
		{"EachStopsAtFirstRefusal", testRateEachStops},
		{"EachMatchesInTurn", testRateEachMatchesInTurn},
		{"EachConcurrent", testRateEachConcurrent},
		{"EachInvalid", testRateEachInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newLimiter(t))
		})
	}
}

// allow calls Allow and fails the test on an error.
func allow(t testing.TB, l storage.RateLimiter, key string, lim storage.Limit, now time.Time) storage.Decision {
	t.Helper()
	d, err := l.Allow(t.Context(), key, lim, now)
	require.NoError(t, err)
	return d
}

// requireAllowed asserts an allowed decision with remaining requests left.
func requireAllowed(t testing.TB, d storage.Decision, remaining int) {
	t.Helper()
	require.Equal(t, storage.Decision{Allowed: true, Remaining: remaining}, d)
}

// requireRefused asserts a refusal with exactly retry to wait.
func requireRefused(t testing.TB, d storage.Decision, retry time.Duration) {
	t.Helper()
	require.Equal(t, storage.Decision{RetryAfter: retry}, d)
}

// base is a fixed instant on a whole second, so that the cases' times are
// exact in microseconds.
func base() time.Time { return time.Now().Truncate(time.Second) }

func testRateBurst(t *testing.T, l storage.RateLimiter) {
	key, now := id("rl"), base()
	lim := storage.Limit{Rate: 1, Period: time.Second, Burst: 5}
	for i := range 5 {
		requireAllowed(t, allow(t, l, key, lim, now), 4-i)
	}
	requireRefused(t, allow(t, l, key, lim, now), time.Second)
}

func testRateRefill(t *testing.T, l storage.RateLimiter) {
	key, now := id("rl"), base()
	lim := storage.Limit{Rate: 2, Period: time.Second, Burst: 4} // T = 500ms
	for i := range 4 {
		requireAllowed(t, allow(t, l, key, lim, now), 3-i)
	}
	requireRefused(t, allow(t, l, key, lim, now.Add(499*time.Millisecond)), time.Millisecond)
	// One interval refills exactly one request.
	requireAllowed(t, allow(t, l, key, lim, now.Add(500*time.Millisecond)), 0)
	requireRefused(t, allow(t, l, key, lim, now.Add(500*time.Millisecond)), 500*time.Millisecond)
	// Three intervals later three more; a full window later a full burst.
	requireAllowed(t, allow(t, l, key, lim, now.Add(2*time.Second)), 2)
	later := now.Add(time.Hour)
	for i := range 4 {
		requireAllowed(t, allow(t, l, key, lim, later), 3-i)
	}
	requireRefused(t, allow(t, l, key, lim, later), 500*time.Millisecond)
}

func testRateRetryAfter(t *testing.T, l storage.RateLimiter) {
	key, now := id("rl"), base()
	lim := storage.Limit{Rate: 10, Period: time.Second, Burst: 3} // T = 100ms
	for range 3 {
		allow(t, l, key, lim, now)
	}
	for _, tt := range []struct {
		after, retry time.Duration
	}{
		{0, 100 * time.Millisecond},
		{30 * time.Millisecond, 70 * time.Millisecond},
		{99*time.Millisecond + 999*time.Microsecond, time.Microsecond},
	} {
		requireRefused(t, allow(t, l, key, lim, now.Add(tt.after)), tt.retry)
	}
	// Exactly at RetryAfter the request passes.
	requireAllowed(t, allow(t, l, key, lim, now.Add(100*time.Millisecond)), 0)
}

func testRateInterval(t *testing.T, l storage.RateLimiter) {
	key, now := id("rl"), base()
	lim := storage.Limit{Rate: 3, Period: time.Second, Burst: 1}
	require.Equal(t, 333334*time.Microsecond, lim.Interval())
	requireAllowed(t, allow(t, l, key, lim, now), 0)
	requireRefused(t, allow(t, l, key, lim, now), 333334*time.Microsecond)
	requireAllowed(t, allow(t, l, key, lim, now.Add(333334*time.Microsecond)), 0)
}

func testRateRefusedSpendsNothing(t *testing.T, l storage.RateLimiter) {
	key, now := id("rl"), base()
	lim := storage.Limit{Rate: 1, Period: time.Second, Burst: 2}
	allow(t, l, key, lim, now)
	allow(t, l, key, lim, now)
	// A hundred refusals within the interval change nothing: the wait
	// shrinks with the clock only, and the next interval allows one.
	for i := range 100 {
		at := now.Add(time.Duration(i) * time.Millisecond)
		requireRefused(t, allow(t, l, key, lim, at), time.Second-time.Duration(i)*time.Millisecond)
	}
	requireAllowed(t, allow(t, l, key, lim, now.Add(time.Second)), 0)
}

func testRateIndependentKeys(t *testing.T, l storage.RateLimiter) {
	a, b, now := id("rl-a"), id("rl-b"), base()
	lim := storage.Limit{Rate: 1, Period: time.Minute, Burst: 3}
	for range 3 {
		allow(t, l, a, lim, now)
	}
	requireRefused(t, allow(t, l, a, lim, now), time.Minute)
	for i := range 3 {
		requireAllowed(t, allow(t, l, b, lim, now), 2-i)
	}
	requireRefused(t, allow(t, l, b, lim, now), time.Minute)
}

// testRateClockBehind: an instance whose clock is behind the one that
// spent the budget sees a longer wait, never a fresh budget.
func testRateClockBehind(t *testing.T, l storage.RateLimiter) {
	key, now := id("rl"), base()
	lim := storage.Limit{Rate: 1, Period: time.Second, Burst: 1}
	requireAllowed(t, allow(t, l, key, lim, now), 0)
	requireRefused(t, allow(t, l, key, lim, now.Add(-2*time.Second)), 3*time.Second)
}

func testRateConcurrent(t *testing.T, l storage.RateLimiter) {
	key, now := id("rl"), base()
	lim := storage.Limit{Rate: 1, Period: time.Hour, Burst: 10}
	var allowed, refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range racers {
		wg.Go(func() {
			<-start
			d, err := l.Allow(t.Context(), key, lim, now)
			if err != nil {
				t.Error(err)
				return
			}
			if d.Allowed {
				allowed.Add(1)
			} else {
				refused.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	require.EqualValues(t, lim.Burst, allowed.Load(), "exactly burst requests win")
	require.EqualValues(t, racers-lim.Burst, refused.Load())
}

func testRateInvalid(t *testing.T, l storage.RateLimiter) {
	now := base()
	for _, lim := range []storage.Limit{
		{Rate: 0, Period: time.Second, Burst: 1},
		{Rate: 1, Period: 0, Burst: 1},
		{Rate: 1, Period: time.Second, Burst: 0},
		{Rate: 1, Period: time.Hour, Burst: 25},
		{Rate: 2_000_000, Period: time.Second, Burst: 1},
	} {
		_, err := l.Allow(t.Context(), id("rl"), lim, now)
		require.Error(t, err, "limit %+v", lim)
		require.NotErrorIs(t, err, storage.ErrUnavailable)
	}
	_, err := l.Allow(t.Context(), "", storage.Limit{Rate: 1, Period: time.Second, Burst: 1}, now)
	require.Error(t, err)
}

// testRateEachStops: AllowEach spends the checks before a refusal, not
// the one refusing nor those after it, and says which refused.
func testRateEachStops(t *testing.T, l storage.RateLimiter) {
	a, b, c, now := id("rl-a"), id("rl-b"), id("rl-c"), base()
	wide := storage.Limit{Rate: 1, Period: time.Minute, Burst: 10}
	narrow := storage.Limit{Rate: 1, Period: time.Second, Burst: 1}
	checks := []storage.RateCheck{{Key: a, Limit: wide}, {Key: b, Limit: narrow}, {Key: c, Limit: wide}}
	i, d, err := l.AllowEach(t.Context(), checks, now)
	require.NoError(t, err)
	require.Equal(t, -1, i)
	requireAllowed(t, d, 9) // the last check's decision
	for range 3 {
		i, d, err = l.AllowEach(t.Context(), checks, now)
		require.NoError(t, err)
		require.Equal(t, 1, i, "b refuses")
		requireRefused(t, d, time.Second)
	}
	// a spent one unit per sequence (4 of 10), c only the first (1 of 10).
	requireAllowed(t, allow(t, l, a, wide, now), 5)
	requireAllowed(t, allow(t, l, c, wide, now), 8)
	i, d, err = l.AllowEach(t.Context(), nil, now)
	require.NoError(t, err)
	require.Equal(t, -1, i)
	require.Equal(t, storage.Decision{}, d)
}

// testRateEachMatchesInTurn: a mix of sequences and times decides exactly
// as storage.AllowInTurn (one Allow per check) on a twin set of keys.
func testRateEachMatchesInTurn(t *testing.T, l storage.RateLimiter) {
	now := base()
	lims := []storage.Limit{
		{Rate: 3, Period: time.Second, Burst: 2},
		{Rate: 1, Period: time.Second, Burst: 3},
		{Rate: 5, Period: time.Second, Burst: 4},
	}
	each, turn := make([]storage.RateCheck, 3), make([]storage.RateCheck, 3)
	for k, lim := range lims {
		each[k] = storage.RateCheck{Key: id("rl-each"), Limit: lim}
		turn[k] = storage.RateCheck{Key: id("rl-turn"), Limit: lim}
	}
	for step := range 40 {
		at := now.Add(time.Duration(step*97) * time.Millisecond)
		n := 1 + step%3
		i1, d1, err1 := l.AllowEach(t.Context(), each[3-n:], at)
		i2, d2, err2 := storage.AllowInTurn(t.Context(), l, turn[3-n:], at)
		require.NoError(t, err1)
		require.NoError(t, err2)
		require.Equal(t, i2, i1, "step %d", step)
		require.Equal(t, d2, d1, "step %d", step)
	}
}

// testRateEachConcurrent: concurrent sequences over a shared narrow key
// checked after a shared wide one: exactly the narrow key's burst win,
// and every sequence spent one unit of the wide key (checked first, it
// allowed them all before the narrow one decided).
func testRateEachConcurrent(t *testing.T, l storage.RateLimiter) {
	first, second, now := id("rl-1"), id("rl-2"), base()
	wide := storage.Limit{Rate: 1000, Period: time.Hour, Burst: 1000}
	narrow := storage.Limit{Rate: 1, Period: time.Hour, Burst: 10}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range racers {
		wg.Go(func() {
			<-start
			i, _, err := l.AllowEach(t.Context(), []storage.RateCheck{{Key: first, Limit: wide}, {Key: second, Limit: narrow}}, now)
			if err != nil {
				t.Error(err)
				return
			}
			if i < 0 {
				allowed.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	require.EqualValues(t, narrow.Burst, allowed.Load(), "exactly burst sequences win")
	requireAllowed(t, allow(t, l, first, wide, now), wide.Burst-racers-1)
	requireRefused(t, allow(t, l, second, narrow, now), time.Hour)
}

func testRateEachInvalid(t *testing.T, l storage.RateLimiter) {
	now := base()
	ok := storage.Limit{Rate: 1, Period: time.Second, Burst: 1}
	for _, checks := range [][]storage.RateCheck{
		{{Key: id("rl"), Limit: ok}, {Key: id("rl"), Limit: storage.Limit{Rate: 0, Period: time.Second, Burst: 1}}},
		{{Key: id("rl"), Limit: ok}, {Key: "", Limit: ok}},
	} {
		_, _, err := l.AllowEach(t.Context(), checks, now)
		require.Error(t, err)
		require.NotErrorIs(t, err, storage.ErrUnavailable)
		// Nothing was spent: the valid first key still has its burst.
		requireAllowed(t, allow(t, l, checks[0].Key, ok, now), 0)
	}
}
