package storagetest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/storage"
)

// RunLiveCounter runs the storage.LiveCounter conformance suite (the
// live-session caps, docs/security.md "Caps"). newStore must return a
// fresh store (or one in its own namespace) for each call and arrange its
// Close with t.Cleanup; subtests run in parallel. Time is the caller's
// now, moved forward by the tests, never slept.
func RunLiveCounter(t *testing.T, newStore func(t testing.TB) storage.LiveCounter) {
	tests := []struct {
		name string
		run  func(t *testing.T, s storage.LiveCounter)
	}{
		{"CapHolds", testLiveCap},
		{"RetryAfter", testLiveRetryAfter},
		{"Release", testLiveRelease},
		{"Expiry", testLiveExpiry},
		{"ScopesAllOrNothing", testLiveAllOrNothing},
		{"ScopesIndependent", testLiveIndependent},
		{"Race", testLiveRace},
		{"RaceTwoScopes", testLiveRaceTwoScopes},
		{"InvalidArguments", testLiveInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newStore(t))
		})
	}
}

// liveNow is a fixed instant with milliseconds only, as Redis scores keep.
func liveNow() time.Time { return time.Now().Truncate(time.Millisecond) }

func admit(t testing.TB, s storage.LiveCounter, keys []string, member string, exp time.Time, caps []int, now time.Time) storage.Admission {
	t.Helper()
	a, err := s.Admit(t.Context(), keys, member, exp, caps, now)
	require.NoError(t, err)
	return a
}

// fill admits n fresh members to key (cap n), expiring one minute apart
// from now+1m, and returns them oldest first.
func fill(t testing.TB, s storage.LiveCounter, key string, n int, now time.Time) []string {
	t.Helper()
	var ms []string
	for i := range n {
		m := id("m")
		require.True(t, admit(t, s, []string{key}, m, now.Add(time.Duration(i+1)*time.Minute), []int{n}, now).Admitted, "member %d", i)
		ms = append(ms, m)
	}
	return ms
}

// testLiveCap: up to the cap members are admitted, the next is refused
// (naming the full scope), and a member already held is admitted again
// without counting twice.
func testLiveCap(t *testing.T, s storage.LiveCounter) {
	now, key := liveNow(), id("scope")
	ms := fill(t, s, key, 3, now)
	a := admit(t, s, []string{key}, id("m"), now.Add(time.Hour), []int{3}, now)
	require.False(t, a.Admitted)
	require.Equal(t, 0, a.Full)
	// Held already (a retried admission): admitted, and still full.
	require.True(t, admit(t, s, []string{key}, ms[1], now.Add(2*time.Minute), []int{3}, now).Admitted)
	require.False(t, admit(t, s, []string{key}, id("m"), now.Add(time.Hour), []int{3}, now).Admitted)
	// A larger cap admits one more.
	require.True(t, admit(t, s, []string{key}, id("m"), now.Add(time.Hour), []int{4}, now).Admitted)
	require.False(t, admit(t, s, []string{key}, id("m"), now.Add(time.Hour), []int{4}, now).Admitted)
}

// testLiveRetryAfter: the wait is until the oldest member expires, and
// never below one second.
func testLiveRetryAfter(t *testing.T, s storage.LiveCounter) {
	now, key := liveNow(), id("scope")
	fill(t, s, key, 2, now)
	a := admit(t, s, []string{key}, id("m"), now.Add(time.Hour), []int{2}, now)
	require.False(t, a.Admitted)
	require.InDelta(t, float64(time.Minute), float64(a.RetryAfter), float64(5*time.Millisecond), "until the oldest expires")
	later := now.Add(time.Minute - 300*time.Millisecond)
	a = admit(t, s, []string{key}, id("m"), later.Add(time.Hour), []int{2}, later)
	require.False(t, a.Admitted)
	require.Equal(t, time.Second, a.RetryAfter, "at least one second")
}

// testLiveRelease: a released member frees its slot; releasing an unknown
// member or scope is not an error.
func testLiveRelease(t *testing.T, s storage.LiveCounter) {
	now, key := liveNow(), id("scope")
	ms := fill(t, s, key, 2, now)
	require.NoError(t, s.Release(t.Context(), []string{key}, ms[0]))
	require.True(t, admit(t, s, []string{key}, id("m"), now.Add(time.Hour), []int{2}, now).Admitted)
	require.False(t, admit(t, s, []string{key}, id("m"), now.Add(time.Hour), []int{2}, now).Admitted)
	require.NoError(t, s.Release(t.Context(), []string{key, id("nothing")}, id("unknown")))
}

// testLiveExpiry: a member expired at now no longer counts.
func testLiveExpiry(t *testing.T, s storage.LiveCounter) {
	now, key := liveNow(), id("scope")
	fill(t, s, key, 2, now)
	at := now.Add(time.Minute) // the oldest expires exactly now
	require.True(t, admit(t, s, []string{key}, id("m"), at.Add(time.Hour), []int{2}, at).Admitted)
	require.False(t, admit(t, s, []string{key}, id("m"), at.Add(time.Hour), []int{2}, at).Admitted)
	late := now.Add(3 * time.Hour) // every member expired
	for range 2 {
		require.True(t, admit(t, s, []string{key}, id("m"), late.Add(time.Hour), []int{2}, late).Admitted)
	}
}

// testLiveAllOrNothing: refused by one scope, the member is added to
// none; a scope with cap 0 is not counted.
func testLiveAllOrNothing(t *testing.T, s storage.LiveCounter) {
	now, a, b := liveNow(), id("client"), id("ip")
	keys := []string{a, b}
	require.True(t, admit(t, s, keys, id("m"), now.Add(time.Hour), []int{2, 1}, now).Admitted)
	got := admit(t, s, keys, id("refused"), now.Add(time.Hour), []int{2, 1}, now)
	require.False(t, got.Admitted)
	require.Equal(t, 1, got.Full, "the second scope is full")
	// The refused member took no slot of scope a: one more fits there.
	require.True(t, admit(t, s, []string{a}, id("m"), now.Add(time.Hour), []int{2}, now).Admitted)
	require.False(t, admit(t, s, []string{a}, id("m"), now.Add(time.Hour), []int{2}, now).Admitted)
	// Cap 0: that scope is off.
	require.True(t, admit(t, s, keys, id("m"), now.Add(time.Hour), []int{0, 0}, now).Admitted)
	got = admit(t, s, keys, id("m"), now.Add(time.Hour), []int{0, 1}, now)
	require.False(t, got.Admitted)
	require.Equal(t, 1, got.Full)
}

// testLiveIndependent: scopes do not share slots.
func testLiveIndependent(t *testing.T, s storage.LiveCounter) {
	now, a, b := liveNow(), id("scope"), id("scope")
	fill(t, s, a, 1, now)
	require.True(t, admit(t, s, []string{b}, id("m"), now.Add(time.Hour), []int{1}, now).Admitted)
}

// testLiveRace: of racers admissions to one scope with cap k, exactly k
// succeed.
func testLiveRace(t *testing.T, s storage.LiveCounter) {
	const limit = 7
	now, key := liveNow(), id("scope")
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range racers {
		wg.Go(func() {
			a, err := s.Admit(t.Context(), []string{key}, id("m"), now.Add(time.Hour), []int{limit}, now)
			if err == nil && a.Admitted {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, limit, ok.Load())
}

// testLiveRaceTwoScopes: racers admitted to two scopes, the tighter one
// deciding: exactly its cap succeed, and the refused left no slot behind
// in the looser scope.
func testLiveRaceTwoScopes(t *testing.T, s storage.LiveCounter) {
	const tight, loose = 5, 1000
	now, ip, client := liveNow(), id("ip"), id("client")
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range racers {
		wg.Go(func() {
			a, err := s.Admit(t.Context(), []string{client, ip}, id("m"), now.Add(time.Hour), []int{loose, tight}, now)
			if err == nil && a.Admitted {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, tight, ok.Load())
	// The client scope holds exactly the admitted ones.
	require.True(t, admit(t, s, []string{client}, id("m"), now.Add(time.Hour), []int{tight + 1}, now).Admitted)
	require.False(t, admit(t, s, []string{client}, id("m"), now.Add(time.Hour), []int{tight + 1}, now).Admitted)
}

// testLiveInvalid: caller bugs fail without admitting anything.
func testLiveInvalid(t *testing.T, s storage.LiveCounter) {
	now, key := liveNow(), id("scope")
	_, err := s.Admit(t.Context(), []string{key}, id("m"), now.Add(time.Hour), []int{1, 2}, now)
	require.Error(t, err, "keys and caps differ")
	_, err = s.Admit(t.Context(), []string{key}, id("m"), now, []int{1}, now)
	require.Error(t, err, "expired already")
	_, err = s.Admit(t.Context(), []string{key}, "", now.Add(time.Hour), []int{1}, now)
	require.Error(t, err, "no member")
	require.True(t, admit(t, s, []string{key}, id("m"), now.Add(time.Hour), []int{1}, now).Admitted, "nothing was admitted")
}
