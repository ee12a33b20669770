package storagetest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/storage"
)

// Bounds of the policy suite. watchWait is how long a watcher may take
// to hear of a commit: a bound against hanging, not a speed requirement.
const (
	watchWait     = 2 * time.Second
	policyRacers  = 16
	policyKeepAll = 1000
)

// RunPolicy runs the storage.PolicyStore conformance suite. newStore must
// return a fresh, empty policy store (or one in its own namespace) for
// each call and arrange its Close with t.Cleanup; subtests run in
// parallel, each on its own store.
//
// Times are compared with time.Equal, to the nanosecond: a backend keeps
// the instant of a commit exactly (its location and monotonic reading
// need not survive).
func RunPolicy(t *testing.T, newStore func(t testing.TB) storage.PolicyStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s storage.PolicyStore)
	}{
		{"Empty", testPolicyEmpty},
		{"RoundTrip", testPolicyRoundTrip},
		{"Conflict", testPolicyConflict},
		{"InvalidArguments", testPolicyInvalidArguments},
		{"RetriedCommit", testPolicyRetriedCommit},
		{"Race", testPolicyRace},
		{"History", testPolicyHistory},
		{"Audit", testPolicyAudit},
		{"Retention", testPolicyRetention},
		{"Watch", testPolicyWatch},
		{"Copies", testPolicyCopies},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newStore(t))
		})
	}
}

// policyBase is the commit time of version 0; version n commits n minutes
// later. Nanoseconds and a non-UTC zone prove the instant survives.
var policyBase = time.Date(2025, 6, 7, 8, 9, 10, 123456789, time.FixedZone("CEST", 2*60*60))

// policyVersion returns version n (parent n-1) with every field set.
// The document holds bytes outside UTF-8 and a NUL, so that a backend
// must keep it byte for byte.
func policyVersion(n uint64) storage.PolicyVersion {
	return storage.PolicyVersion{
		Version: n,
		Parent:  n - 1,
		Doc:     fmt.Appendf(nil, "version: %d\ndownstreams:\n  bank: {issuer: \"https://bank.example\"}\n# ü \x00\xff\xfe\n", n),
		Author:  fmt.Sprintf("admin-%d", n),
		Origin:  "api",
		Time:    policyBase.Add(time.Duration(n) * time.Minute),
		Summary: fmt.Sprintf("change %d", n),
	}
}

// auditEntry returns the audit entry of version n with every field set
// except Version, which CommitPolicy sets.
func auditEntry(n uint64) storage.AuditEntry {
	return storage.AuditEntry{
		Time:    policyBase.Add(time.Duration(n) * time.Minute),
		Actor:   fmt.Sprintf("admin-%d", n),
		Role:    "editor",
		Remote:  "192.0.2.7",
		Action:  "downstreams.update",
		Target:  "downstreams/bank",
		Summary: fmt.Sprintf("change %d", n),
		Diff:    fmt.Sprintf("--- a\n+++ b\n@@ -1 +1 @@\n-version: %d\n+version: %d\n", n-1, n),
	}
}

// commitN commits versions from..to in order with keep.
func commitN(t testing.TB, s storage.PolicyStore, from, to uint64, keep int) {
	t.Helper()
	for n := from; n <= to; n++ {
		require.NoError(t, s.CommitPolicy(t.Context(), policyVersion(n), auditEntry(n), keep), "commit %d", n)
	}
}

func requirePolicyVersion(t testing.TB, want, got storage.PolicyVersion) {
	t.Helper()
	require.True(t, want.Time.Equal(got.Time), "version %d Time: want %s, got %s", want.Version, want.Time, got.Time)
	want.Time, got.Time = time.Time{}, time.Time{}
	require.Equal(t, want, got)
}

func requireAuditEntry(t testing.TB, want, got storage.AuditEntry) {
	t.Helper()
	require.True(t, want.Time.Equal(got.Time), "audit %d Time: want %s, got %s", want.Version, want.Time, got.Time)
	want.Time, got.Time = time.Time{}, time.Time{}
	require.Equal(t, want, got)
}

// requireHistory requires PolicyHistory(before, limit) to list exactly
// the versions want, newest first, each as committed but without its Doc.
func requireHistory(t testing.TB, s storage.PolicyStore, before uint64, limit int, want ...uint64) {
	t.Helper()
	got, err := s.PolicyHistory(t.Context(), before, limit)
	require.NoError(t, err)
	require.Len(t, got, len(want), "PolicyHistory(%d, %d): %v", before, limit, versionsOf(got))
	for i, n := range want {
		require.Empty(t, got[i].Doc, "history carries no Doc")
		w := policyVersion(n)
		w.Doc = got[i].Doc
		requirePolicyVersion(t, w, got[i])
	}
}

// requireAudit requires PolicyAudit(before, limit) to list exactly the
// entries of the versions want, newest first.
func requireAudit(t testing.TB, s storage.PolicyStore, before uint64, limit int, want ...uint64) {
	t.Helper()
	got, err := s.PolicyAudit(t.Context(), before, limit)
	require.NoError(t, err)
	require.Len(t, got, len(want), "PolicyAudit(%d, %d)", before, limit)
	for i, n := range want {
		w := auditEntry(n)
		w.Version = n
		requireAuditEntry(t, w, got[i])
	}
}

func versionsOf(vs []storage.PolicyVersion) []uint64 {
	out := make([]uint64, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.Version)
	}
	return out
}

func requireHead(t testing.TB, s storage.PolicyStore, want uint64) {
	t.Helper()
	head, err := s.PolicyHead(t.Context())
	require.NoError(t, err)
	require.Equal(t, want, head, "head")
}

// requirePolicyIntact requires that versions 1..head are exactly as
// committed, with their audit entries, and nothing else: a refused
// commit changed nothing.
func requirePolicyIntact(t testing.TB, s storage.PolicyStore, head uint64) {
	t.Helper()
	requireHead(t, s, head)
	want := make([]uint64, 0, head)
	for n := head; n >= 1; n-- {
		want = append(want, n)
		got, err := s.PolicyVersion(t.Context(), n)
		require.NoError(t, err)
		requirePolicyVersion(t, policyVersion(n), got)
	}
	requireHistory(t, s, 0, policyKeepAll, want...)
	requireAudit(t, s, 0, policyKeepAll, want...)
	_, err := s.PolicyVersion(t.Context(), head+1)
	require.ErrorIs(t, err, storage.ErrNotFound)
}

func testPolicyEmpty(t *testing.T, s storage.PolicyStore) {
	ctx := t.Context()
	requireHead(t, s, 0)
	for _, n := range []uint64{0, 1, 2, 1 << 60} {
		_, err := s.PolicyVersion(ctx, n)
		require.ErrorIs(t, err, storage.ErrNotFound, "PolicyVersion(%d)", n)
	}
	requireHistory(t, s, 0, 10)
	requireHistory(t, s, 5, 10)
	requireAudit(t, s, 0, 10)
}

func testPolicyRoundTrip(t *testing.T, s storage.PolicyStore) {
	ctx := t.Context()
	const n = 5
	for i := uint64(1); i <= n; i++ {
		a := auditEntry(i)
		a.Version = 99 // CommitPolicy keys the entry by the version, whatever the caller set
		require.NoError(t, s.CommitPolicy(ctx, policyVersion(i), a, policyKeepAll))
		requireHead(t, s, i)
		got, err := s.PolicyVersion(ctx, i)
		require.NoError(t, err)
		requirePolicyVersion(t, policyVersion(i), got)
		entries, err := s.PolicyAudit(ctx, 0, 1)
		require.NoError(t, err)
		require.Len(t, entries, 1)
		want := auditEntry(i)
		want.Version = i
		requireAuditEntry(t, want, entries[0])
	}
	// Earlier versions are still readable once later ones are committed.
	requirePolicyIntact(t, s, n)

	// An empty document and empty optional fields round-trip as well.
	v := storage.PolicyVersion{Version: n + 1, Parent: n, Doc: []byte{}, Author: "config-file", Origin: "sighup", Time: policyBase}
	require.NoError(t, s.CommitPolicy(ctx, v, storage.AuditEntry{Time: policyBase, Actor: "config-file", Action: "reload"}, policyKeepAll))
	got, err := s.PolicyVersion(ctx, n+1)
	require.NoError(t, err)
	require.Empty(t, got.Doc)
	got.Doc = v.Doc
	requirePolicyVersion(t, v, got)
	entries, err := s.PolicyAudit(ctx, 0, 1)
	require.NoError(t, err)
	requireAuditEntry(t, storage.AuditEntry{Version: n + 1, Time: policyBase, Actor: "config-file", Action: "reload"}, entries[0])
}

// testPolicyConflict commits on a stale or future parent: ErrConflict,
// and the store is exactly as before.
func testPolicyConflict(t *testing.T, s storage.PolicyStore) {
	ctx := t.Context()
	const head = 3
	commitN(t, s, 1, head, policyKeepAll)
	tests := []struct {
		name   string
		parent uint64
	}{
		{"first commit again", 0},
		{"stale parent", 1},
		{"head as version", head - 1},
		{"future parent", head + 1},
		{"far future parent", head + 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := policyVersion(tt.parent + 1)
			v.Author = "someone-else" // another admin's edit, not a retry
			err := s.CommitPolicy(ctx, v, auditEntry(tt.parent+1), policyKeepAll)
			require.ErrorIs(t, err, storage.ErrConflict)
			require.NotErrorIs(t, err, storage.ErrUnavailable)
			requirePolicyIntact(t, s, head)
		})
	}
}

// testPolicyInvalidArguments: a version that does not follow its parent
// and a keep below one are caller bugs. They fail with an error that is
// neither ErrConflict (a caller would rebase and retry forever) nor
// ErrUnavailable, and change nothing.
func testPolicyInvalidArguments(t *testing.T, s storage.PolicyStore) {
	ctx := t.Context()
	const head = 2
	commitN(t, s, 1, head, policyKeepAll)
	next := func(mod func(v *storage.PolicyVersion)) storage.PolicyVersion {
		v := policyVersion(head + 1)
		mod(&v)
		return v
	}
	commits := []struct {
		name string
		v    storage.PolicyVersion
		keep int
	}{
		{"version skips one", next(func(v *storage.PolicyVersion) { v.Version = head + 2 }), policyKeepAll},
		{"version equals parent", next(func(v *storage.PolicyVersion) { v.Version = head }), policyKeepAll},
		{"version below parent", next(func(v *storage.PolicyVersion) { v.Version = 1 }), policyKeepAll},
		{"version 0", next(func(v *storage.PolicyVersion) { v.Version, v.Parent = 0, 0 }), policyKeepAll},
		{"parent wraps around", next(func(v *storage.PolicyVersion) { v.Version, v.Parent = 0, ^uint64(0) }), policyKeepAll},
		{"keep 0", next(func(*storage.PolicyVersion) {}), 0},
		{"keep negative", next(func(*storage.PolicyVersion) {}), -1},
	}
	for _, tt := range commits {
		t.Run(tt.name, func(t *testing.T) {
			err := s.CommitPolicy(ctx, tt.v, auditEntry(tt.v.Version), tt.keep)
			require.Error(t, err)
			require.NotErrorIs(t, err, storage.ErrConflict)
			require.NotErrorIs(t, err, storage.ErrUnavailable)
			requirePolicyIntact(t, s, head)
		})
	}
	for _, limit := range []int{0, -1} {
		_, err := s.PolicyHistory(ctx, 0, limit)
		require.Error(t, err, "PolicyHistory limit %d", limit)
		require.NotErrorIs(t, err, storage.ErrUnavailable)
		_, err = s.PolicyAudit(ctx, 0, limit)
		require.Error(t, err, "PolicyAudit limit %d", limit)
		require.NotErrorIs(t, err, storage.ErrUnavailable)
	}
}

// testPolicyRetriedCommit: committing the head's own content again is a
// driver's retry of a commit that applied, and succeeds without a second
// audit entry; another commit with the head's number is a conflict.
func testPolicyRetriedCommit(t *testing.T, s storage.PolicyStore) {
	ctx := t.Context()
	commitN(t, s, 1, 2, policyKeepAll)
	require.NoError(t, s.CommitPolicy(ctx, policyVersion(2), auditEntry(2), policyKeepAll))
	requirePolicyIntact(t, s, 2)

	changes := map[string]func(v *storage.PolicyVersion){
		"Doc":     func(v *storage.PolicyVersion) { v.Doc = append(v.Doc, '#') },
		"Author":  func(v *storage.PolicyVersion) { v.Author += "x" },
		"Origin":  func(v *storage.PolicyVersion) { v.Origin = "console" },
		"Time":    func(v *storage.PolicyVersion) { v.Time = v.Time.Add(time.Nanosecond) },
		"Summary": func(v *storage.PolicyVersion) { v.Summary += "x" },
	}
	for field, change := range changes {
		t.Run(field, func(t *testing.T) {
			v := policyVersion(2)
			change(&v)
			require.ErrorIs(t, s.CommitPolicy(ctx, v, auditEntry(2), policyKeepAll), storage.ErrConflict)
			requirePolicyIntact(t, s, 2)
		})
	}
	// The retry of an older version is no retry: the head has moved on.
	require.ErrorIs(t, s.CommitPolicy(ctx, policyVersion(1), auditEntry(1), policyKeepAll), storage.ErrConflict)
	requirePolicyIntact(t, s, 2)
}

// testPolicyRace commits policyRacers different versions on the same
// parent at once, on an empty store and on a non-empty one: exactly one
// wins, and what is stored is the winner's version and audit entry.
func testPolicyRace(t *testing.T, s storage.PolicyStore) {
	ctx := t.Context()
	for _, parent := range []uint64{0, 1} {
		t.Run(fmt.Sprintf("parent %d", parent), func(t *testing.T) {
			author := func(i int) string { return fmt.Sprintf("racer-%d", i) }
			start := make(chan struct{})
			errs := make([]error, policyRacers)
			var ready, done sync.WaitGroup
			ready.Add(policyRacers)
			done.Add(policyRacers)
			for i := range policyRacers {
				go func() {
					defer done.Done()
					v := policyVersion(parent + 1)
					v.Author = author(i)
					a := auditEntry(parent + 1)
					a.Actor = author(i)
					ready.Done()
					<-start
					errs[i] = s.CommitPolicy(ctx, v, a, policyKeepAll)
				}()
			}
			ready.Wait()
			close(start)
			done.Wait()

			winner := -1
			for i, err := range errs {
				if err == nil {
					require.Equal(t, -1, winner, "two winners: racers %d and %d", winner, i)
					winner = i
					continue
				}
				require.ErrorIs(t, err, storage.ErrConflict, "racer %d", i)
			}
			require.NotEqual(t, -1, winner, "no winner")
			requireHead(t, s, parent+1)
			got, err := s.PolicyVersion(ctx, parent+1)
			require.NoError(t, err)
			require.Equal(t, author(winner), got.Author)
			entries, err := s.PolicyAudit(ctx, 0, policyKeepAll)
			require.NoError(t, err)
			require.Len(t, entries, int(parent+1), "one audit entry per commit")
			require.Equal(t, parent+1, entries[0].Version)
			require.Equal(t, author(winner), entries[0].Actor)
		})
	}
}

// pageCase is one paging request and the versions it must list.
type pageCase struct {
	before uint64
	limit  int
	want   []uint64
}

// pageCases page through versions 1..7.
var pageCases = []pageCase{
	{0, policyKeepAll, []uint64{7, 6, 5, 4, 3, 2, 1}},
	{0, 3, []uint64{7, 6, 5}},
	{5, 3, []uint64{4, 3, 2}},
	{2, 3, []uint64{1}},
	{1, 3, nil},
	{8, 2, []uint64{7, 6}},
	{1 << 60, 1, []uint64{7}},
	{7, 1, []uint64{6}},
}

func testPolicyHistory(t *testing.T, s storage.PolicyStore) {
	commitN(t, s, 1, 7, policyKeepAll)
	for _, tc := range pageCases {
		t.Run(fmt.Sprintf("before %d limit %d", tc.before, tc.limit), func(t *testing.T) {
			requireHistory(t, s, tc.before, tc.limit, tc.want...)
		})
	}
	// Paging from the last version of each page visits every version once.
	var seen []uint64
	for before := uint64(0); ; {
		page, err := s.PolicyHistory(t.Context(), before, 2)
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		seen = append(seen, versionsOf(page)...)
		before = page[len(page)-1].Version
	}
	require.Equal(t, []uint64{7, 6, 5, 4, 3, 2, 1}, seen)
}

func testPolicyAudit(t *testing.T, s storage.PolicyStore) {
	commitN(t, s, 1, 7, policyKeepAll)
	for _, tc := range pageCases {
		t.Run(fmt.Sprintf("before %d limit %d", tc.before, tc.limit), func(t *testing.T) {
			requireAudit(t, s, tc.before, tc.limit, tc.want...)
		})
	}
}

// testPolicyRetention: each commit trims versions and audit entries to
// its keep newest; a later, larger keep does not bring trimmed ones back.
func testPolicyRetention(t *testing.T, s storage.PolicyStore) {
	ctx := t.Context()
	steps := []struct {
		commit uint64
		keep   int
		want   []uint64 // retained, newest first
	}{
		{5, 3, []uint64{5, 4, 3}},
		{6, 1, []uint64{6}},
		{7, 10, []uint64{7, 6}},
		{8, 2, []uint64{8, 7}},
	}
	var next uint64 = 1
	for _, st := range steps {
		commitN(t, s, next, st.commit, st.keep)
		next = st.commit + 1
		requireHead(t, s, st.commit)
		requireHistory(t, s, 0, policyKeepAll, st.want...)
		requireAudit(t, s, 0, policyKeepAll, st.want...)
		oldest := st.want[len(st.want)-1]
		for n := uint64(1); n <= st.commit; n++ {
			got, err := s.PolicyVersion(ctx, n)
			if n < oldest {
				require.ErrorIs(t, err, storage.ErrNotFound, "version %d after commit %d keep %d", n, st.commit, st.keep)
				continue
			}
			require.NoError(t, err, "version %d after commit %d keep %d", n, st.commit, st.keep)
			requirePolicyVersion(t, policyVersion(n), got)
		}
	}
}

// awaitVersion reads ch until it delivers at least want, for at most
// watchWait.
func awaitVersion(t testing.TB, ch <-chan uint64, want uint64) {
	t.Helper()
	timeout := time.NewTimer(watchWait)
	defer timeout.Stop()
	for {
		select {
		case got, ok := <-ch:
			require.True(t, ok, "watch channel closed while waiting for version %d", want)
			if got >= want {
				return
			}
		case <-timeout.C:
			t.Fatalf("no version >= %d delivered within %s", want, watchWait)
		}
	}
}

// awaitClosed drains ch until it is closed, for at most watchWait.
func awaitClosed(t testing.TB, ch <-chan uint64) {
	t.Helper()
	timeout := time.NewTimer(watchWait)
	defer timeout.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout.C:
			t.Fatalf("watch channel not closed within %s of its context ending", watchWait)
		}
	}
}

func testPolicyWatch(t *testing.T, s storage.PolicyStore) {
	ctx := t.Context()
	ctx1, cancel1 := context.WithCancel(ctx)
	defer cancel1()
	w1, err := s.WatchPolicy(ctx1)
	require.NoError(t, err)
	w2, err := s.WatchPolicy(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, cap(w1), "one coalescing slot")

	// Both watchers, started before the commit, hear of it.
	commitN(t, s, 1, 1, policyKeepAll)
	awaitVersion(t, w1, 1)
	awaitVersion(t, w2, 1)

	// A watcher that does not read meanwhile still learns of the newest
	// head: its slot coalesces rather than blocking commits.
	commitN(t, s, 2, 5, policyKeepAll)
	awaitVersion(t, w1, 5)
	awaitVersion(t, w2, 5)

	// Ending one watcher's context closes its channel and leaves the
	// other watching.
	cancel1()
	awaitClosed(t, w1)
	commitN(t, s, 6, 6, policyKeepAll)
	awaitVersion(t, w2, 6)

	// A watcher whose context has already ended closes at once.
	done, cancel := context.WithCancel(ctx)
	cancel()
	w3, err := s.WatchPolicy(done)
	if err == nil { // a backend may also refuse to start it
		awaitClosed(t, w3)
	}
}

// testPolicyCopies: neither the Doc a caller committed nor one it read
// aliases what is stored.
func testPolicyCopies(t *testing.T, s storage.PolicyStore) {
	ctx := t.Context()
	v := policyVersion(1)
	want := bytes.Clone(v.Doc)
	require.NoError(t, s.CommitPolicy(ctx, v, auditEntry(1), policyKeepAll))
	v.Doc[0] = 'X'

	got, err := s.PolicyVersion(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, want, got.Doc, "mutating the committed Doc changed the store")
	got.Doc[0] = 'Y'
	again, err := s.PolicyVersion(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, want, again.Doc, "mutating a returned Doc changed the store")
}
