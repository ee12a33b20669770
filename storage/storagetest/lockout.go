package storagetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/storage"
)

// RunFailureCounter runs the storage.FailureCounter conformance suite
// (the account lockout's counters: docs/security.md "Account lockout").
// newStore must return a fresh store (or one in its own namespace) for
// each call and arrange its Close with t.Cleanup; subtests run in
// parallel, each on its own store.
//
// Times are compared to the millisecond: a backend keeps Last at least
// that precisely.
func RunFailureCounter(t *testing.T, newStore func(t testing.TB) storage.FailureCounter) {
	tests := []struct {
		name string
		run  func(t *testing.T, s storage.FailureCounter)
	}{
		{"ZeroWhenMissing", testFailuresZero},
		{"RecordReturnsBefore", testFailuresRecord},
		{"LastNeverMovesBack", testFailuresLastMonotonic},
		{"GroupsAndNamesApart", testFailuresApart},
		{"Reset", testFailuresReset},
		{"Expiry", testFailuresExpiry},
		{"InvalidArguments", testFailuresInvalid},
		{"Race", testFailuresRace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newStore(t))
		})
	}
}

// group returns a fresh group in the key alphabet (a digest, as the
// lockout makes them).
func group() string { return id("grp") }

// at is a millisecond-precise instant near now.
func at(offset time.Duration) time.Time {
	return time.Now().Add(offset).Truncate(time.Millisecond)
}

func requireStates(t testing.TB, want, got []storage.FailureState) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.Equal(t, want[i].Count, got[i].Count, "counter %d: count", i)
		require.True(t, want[i].Last.Equal(got[i].Last), "counter %d: last: want %s, got %s", i, want[i].Last, got[i].Last)
	}
}

func testFailuresZero(t *testing.T, s storage.FailureCounter) {
	got, err := s.Failures(t.Context(), group(), []string{"a", "ip.x"})
	require.NoError(t, err)
	requireStates(t, []storage.FailureState{{}, {}}, got)
}

// RecordFailure counts every name at once and answers the state before.
func testFailuresRecord(t *testing.T, s storage.FailureCounter) {
	ctx, g := t.Context(), group()
	t1, t2 := at(0), at(time.Second)
	before, err := s.RecordFailure(ctx, g, []string{"a", "ip.x"}, longTTL, t1)
	require.NoError(t, err)
	requireStates(t, []storage.FailureState{{}, {}}, before)
	before, err = s.RecordFailure(ctx, g, []string{"a"}, longTTL, t2)
	require.NoError(t, err)
	requireStates(t, []storage.FailureState{{Count: 1, Last: t1}}, before)
	got, err := s.Failures(ctx, g, []string{"ip.x", "a", "never"})
	require.NoError(t, err)
	requireStates(t, []storage.FailureState{{Count: 1, Last: t1}, {Count: 2, Last: t2}, {}}, got)
}

// Instances' clocks differ: a failure recorded with an earlier time
// counts but does not move Last back (which would shorten a delay).
func testFailuresLastMonotonic(t *testing.T, s storage.FailureCounter) {
	ctx, g := t.Context(), group()
	late, early := at(time.Minute), at(0)
	_, err := s.RecordFailure(ctx, g, []string{"a"}, longTTL, late)
	require.NoError(t, err)
	_, err = s.RecordFailure(ctx, g, []string{"a"}, longTTL, early)
	require.NoError(t, err)
	got, err := s.Failures(ctx, g, []string{"a"})
	require.NoError(t, err)
	requireStates(t, []storage.FailureState{{Count: 2, Last: late}}, got)
}

func testFailuresApart(t *testing.T, s storage.FailureCounter) {
	ctx, g1, g2 := t.Context(), group(), group()
	now := at(0)
	_, err := s.RecordFailure(ctx, g1, []string{"a"}, longTTL, now)
	require.NoError(t, err)
	got, err := s.Failures(ctx, g2, []string{"a"})
	require.NoError(t, err)
	requireStates(t, []storage.FailureState{{}}, got)
	got, err = s.Failures(ctx, g1, []string{"b"})
	require.NoError(t, err)
	requireStates(t, []storage.FailureState{{}}, got)
}

func testFailuresReset(t *testing.T, s storage.FailureCounter) {
	ctx, g := t.Context(), group()
	now := at(0)
	_, err := s.RecordFailure(ctx, g, []string{"a", "ip.x", "o"}, longTTL, now)
	require.NoError(t, err)
	require.NoError(t, s.ResetFailures(ctx, g, []string{"a", "ip.x", "missing"}))
	got, err := s.Failures(ctx, g, []string{"a", "ip.x", "o"})
	require.NoError(t, err)
	requireStates(t, []storage.FailureState{{}, {}, {Count: 1, Last: now}}, got)
	// A reset counter starts again from zero.
	before, err := s.RecordFailure(ctx, g, []string{"a"}, longTTL, now)
	require.NoError(t, err)
	requireStates(t, []storage.FailureState{{}}, before)
}

// A counter expires window after its last failure: each failure sets
// the window of the counters it names from now, and only theirs.
func testFailuresExpiry(t *testing.T, s storage.FailureCounter) {
	ctx, g := t.Context(), group()
	now := at(0)
	_, err := s.RecordFailure(ctx, g, []string{"short", "renewed"}, shortTTL, now)
	require.NoError(t, err)
	_, err = s.RecordFailure(ctx, g, []string{"renewed"}, longTTL, now)
	require.NoError(t, err)
	time.Sleep(shortTTL + expiryMargin)
	got, err := s.Failures(ctx, g, []string{"short", "renewed"})
	require.NoError(t, err)
	requireStates(t, []storage.FailureState{{}, {Count: 2, Last: now}}, got)
	// An expired counter starts again from zero.
	before, err := s.RecordFailure(ctx, g, []string{"short"}, longTTL, now)
	require.NoError(t, err)
	requireStates(t, []storage.FailureState{{}}, before)
}

// Counters need a lifetime, a group and names; a backend refuses what
// could not be a key rather than storing it.
func testFailuresInvalid(t *testing.T, s storage.FailureCounter) {
	ctx, g := t.Context(), group()
	_, err := s.RecordFailure(ctx, g, []string{"a"}, 0, at(0))
	require.Error(t, err, "no window")
	_, err = s.RecordFailure(ctx, g, []string{"a"}, -time.Second, at(0))
	require.Error(t, err, "negative window")
	_, err = s.RecordFailure(ctx, g, nil, longTTL, at(0))
	require.Error(t, err, "no names")
	_, err = s.RecordFailure(ctx, "", []string{"a"}, longTTL, at(0))
	require.Error(t, err, "no group")
	_, err = s.Failures(ctx, g, []string{""})
	require.Error(t, err, "empty name")
	require.Error(t, s.ResetFailures(ctx, "", []string{"a"}), "no group")
	got, err := s.Failures(ctx, g, []string{"a"})
	require.NoError(t, err)
	requireStates(t, []storage.FailureState{{}}, got)
}

// Of racers recording on the same counters, each sees a distinct count
// before its own (0, 1, …, racers-1: one step each, none lost), and the
// counters of one call move together.
func testFailuresRace(t *testing.T, s storage.FailureCounter) {
	ctx, g := t.Context(), group()
	now := at(0)
	var mu sync.Mutex
	var seen []int
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, racers)
	for range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			before, err := s.RecordFailure(ctx, g, []string{"a", "ip.x"}, longTTL, now)
			if err != nil {
				errs <- err
				return
			}
			if before[0].Count != before[1].Count {
				errs <- fmt.Errorf("the counters of one call moved apart: %d and %d", before[0].Count, before[1].Count)
				return
			}
			mu.Lock()
			seen = append(seen, before[0].Count)
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	slices.Sort(seen)
	want := make([]int, racers)
	for i := range want {
		want[i] = i
	}
	require.Equal(t, want, seen)
	got, err := s.Failures(ctx, g, []string{"a", "ip.x"})
	require.NoError(t, err)
	requireStates(t, []storage.FailureState{{Count: racers, Last: now}, {Count: racers, Last: now}}, got)
}
