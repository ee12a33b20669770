package storagetest

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/storage"
)

// RunReachStore runs the storage.ReachStore conformance suite (the reach
// core: devices, inboxes, presence, tasks; docs/reach.md,
// §4.6). newStore must return a fresh store (or one in its own namespace)
// for each call and arrange its Close with t.Cleanup; subtests run in
// parallel.
func RunReachStore(t *testing.T, newStore func(t testing.TB) storage.ReachStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s storage.ReachStore)
	}{
		{"DeviceRoundTrip", testReachDeviceRoundTrip},
		{"DeviceIdempotentByJKT", testReachDeviceIdempotent},
		{"DeviceInvalid", testReachDeviceInvalid},
		{"DeviceQuota", testReachDeviceQuota},
		{"DeviceDelete", testReachDeviceDelete},
		{"DeviceSlidingExpiry", testReachDeviceSliding},
		{"Inbox", testReachInbox},
		{"InboxBounded", testReachInboxBounded},
		{"Presence", testReachPresence},
		{"TaskRoundTrip", testReachTaskRoundTrip},
		{"TaskTransitions", testReachTaskTransitions},
		{"TaskPicks", testReachTaskPicks},
		{"TaskExpiry", testReachTaskExpiry},
		{"TakeRefOnce", testReachTakeRef},
		{"RaceTransition", testReachRaceTransition},
		{"RacePicks", testReachRacePicks},
		{"RaceTakeRef", testReachRaceTakeRef},
		{"RaceDeviceQuota", testReachRaceQuota},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newStore(t))
		})
	}
}

// reachUser returns a user id unique to the test binary.
func reachUser() string { return id("user") }

// jkt returns a fresh thumbprint-shaped value.
func jkt() string {
	h := sha256.Sum256([]byte(id("jkt")))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func device(user string) reach.Device {
	return reach.Device{
		ID: reach.NewID(), User: user, JKT: jkt(), Name: "Phone", Platform: "android",
		Capabilities: []reach.Capability{reach.KindAppAuth, reach.KindQuestion},
		Channels: []reach.ChannelSpec{{Type: reach.ChannelInbox},
			{Type: reach.ChannelWebhook, URL: "https://hooks.example/d"}},
	}
}

func task(user string, exp time.Time) reach.Task {
	return reach.Task{
		ID: reach.NewID(), Kind: reach.KindAppAuth, User: user, ClientID: "client-1", State: reach.StateCreated,
		Ref: reach.NewID(), Binding: reach.Binding{Choices: []int{21, 42, 84}, Right: 42}, ExpiresAt: exp,
	}
}

// requireSameDevice compares devices field by field (times by instant).
func requireSameDevice(t testing.TB, want, got reach.Device) {
	t.Helper()
	require.True(t, want.Created.Equal(got.Created), "created %s vs %s", want.Created, got.Created)
	require.True(t, want.LastSeen.Equal(got.LastSeen), "last seen %s vs %s", want.LastSeen, got.LastSeen)
	want.Created, want.LastSeen, got.Created, got.LastSeen = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	require.Equal(t, want, got)
}

func requireSameTask(t testing.TB, want, got reach.Task) {
	t.Helper()
	require.True(t, want.ExpiresAt.Equal(got.ExpiresAt))
	want.ExpiresAt, got.ExpiresAt = time.Time{}, time.Time{}
	require.Equal(t, want, got)
}

// testReachDeviceRoundTrip: a device reads back the same by id, by jkt
// and in its user's list, with Created and LastSeen set by the store.
func testReachDeviceRoundTrip(t *testing.T, s storage.ReachStore) {
	ctx := t.Context()
	u := reachUser()
	d := device(u)
	got, err := s.PutDevice(ctx, d, longTTL)
	require.NoError(t, err)
	require.Equal(t, d.ID, got.ID)
	require.False(t, got.Created.IsZero())
	require.True(t, got.Created.Equal(got.LastSeen))
	for _, read := range []func() (reach.Device, error){
		func() (reach.Device, error) { return s.Device(ctx, d.ID) },
		func() (reach.Device, error) { return s.DeviceByJKT(ctx, d.JKT) },
	} {
		r, err := read()
		require.NoError(t, err)
		requireSameDevice(t, got, r)
	}
	list, err := s.UserDevices(ctx, u)
	require.NoError(t, err)
	require.Len(t, list, 1)
	requireSameDevice(t, got, list[0])
	// Unknown everywhere: ErrNotFound of both packages.
	_, err = s.Device(ctx, reach.NewID())
	require.ErrorIs(t, err, storage.ErrNotFound)
	require.ErrorIs(t, err, reach.ErrNotFound)
	_, err = s.DeviceByJKT(ctx, jkt())
	require.ErrorIs(t, err, reach.ErrNotFound)
	list, err = s.UserDevices(ctx, reachUser())
	require.NoError(t, err)
	require.Empty(t, list)
	require.ErrorIs(t, s.TouchDevice(ctx, reach.NewID(), longTTL), reach.ErrNotFound)
}

// testReachDeviceIdempotent: re-registering a key updates the same
// device (id and Created kept); the key under another user is a
// conflict and changes nothing.
func testReachDeviceIdempotent(t *testing.T, s storage.ReachStore) {
	ctx := t.Context()
	u := reachUser()
	d := device(u)
	first, err := s.PutDevice(ctx, d, longTTL)
	require.NoError(t, err)
	again := d
	again.ID, again.Name = reach.NewID(), "Renamed"
	again.Channels = []reach.ChannelSpec{{Type: reach.ChannelFCM, Token: "fcm-token-2"}}
	second, err := s.PutDevice(ctx, again, longTTL)
	require.NoError(t, err)
	require.Equal(t, first.ID, second.ID, "same key, same device")
	require.True(t, first.Created.Equal(second.Created))
	require.Equal(t, "Renamed", second.Name)
	got, err := s.DeviceByJKT(ctx, d.JKT)
	require.NoError(t, err)
	requireSameDevice(t, second, got)
	_, err = s.Device(ctx, again.ID)
	require.ErrorIs(t, err, reach.ErrNotFound, "the new id was not used")
	list, err := s.UserDevices(ctx, u)
	require.NoError(t, err)
	require.Len(t, list, 1)

	other := d
	other.ID, other.User = reach.NewID(), reachUser()
	_, err = s.PutDevice(ctx, other, longTTL)
	require.ErrorIs(t, err, storage.ErrConflict)
	got, err = s.DeviceByJKT(ctx, d.JKT)
	require.NoError(t, err)
	require.Equal(t, u, got.User)
	list, err = s.UserDevices(ctx, other.User)
	require.NoError(t, err)
	require.Empty(t, list)
}

// testReachDeviceInvalid: an invalid registration or a TTL ≤ 0 stores
// nothing.
func testReachDeviceInvalid(t *testing.T, s storage.ReachStore) {
	ctx := t.Context()
	d := device(reachUser())
	d.Channels = []reach.ChannelSpec{{Type: reach.ChannelWebhook, URL: "http://10.0.0.1/"}}
	_, err := s.PutDevice(ctx, d, longTTL)
	require.ErrorIs(t, err, reach.ErrInvalid)
	_, err = s.PutDevice(ctx, device(d.User), 0)
	require.Error(t, err)
	list, err := s.UserDevices(ctx, d.User)
	require.NoError(t, err)
	require.Empty(t, list)
}

// testReachDeviceQuota: MaxDevicesPerUser devices, then ErrQuota for a
// new one; re-registering one of them still works; a deletion frees a
// place; another user is not affected.
func testReachDeviceQuota(t *testing.T, s storage.ReachStore) {
	ctx := t.Context()
	u := reachUser()
	var devs []reach.Device
	for range reach.MaxDevicesPerUser {
		d, err := s.PutDevice(ctx, device(u), longTTL)
		require.NoError(t, err)
		devs = append(devs, d)
	}
	_, err := s.PutDevice(ctx, device(u), longTTL)
	require.ErrorIs(t, err, reach.ErrQuota)
	_, err = s.PutDevice(ctx, devs[3], longTTL)
	require.NoError(t, err, "re-registration at the bound")
	_, err = s.PutDevice(ctx, device(reachUser()), longTTL)
	require.NoError(t, err)
	require.NoError(t, s.DeleteDevice(ctx, devs[0].ID))
	_, err = s.PutDevice(ctx, device(u), longTTL)
	require.NoError(t, err)
	list, err := s.UserDevices(ctx, u)
	require.NoError(t, err)
	require.Len(t, list, reach.MaxDevicesPerUser)
	for i := 1; i < len(list); i++ {
		require.False(t, list[i].Created.Before(list[i-1].Created), "oldest first")
	}
}

// testReachDeviceDelete: a deleted device is gone by id, by jkt, from its
// user, with its inbox and presence; deleting twice is fine; its key can
// register again (under another user too).
func testReachDeviceDelete(t *testing.T, s storage.ReachStore) {
	ctx := t.Context()
	d, err := s.PutDevice(ctx, device(reachUser()), longTTL)
	require.NoError(t, err)
	_, err = s.AppendInbox(ctx, d.ID, []byte("wake"))
	require.NoError(t, err)
	require.NoError(t, s.SetPresence(ctx, d.ID, longTTL))
	require.NoError(t, s.DeleteDevice(ctx, d.ID))
	_, err = s.Device(ctx, d.ID)
	require.ErrorIs(t, err, reach.ErrNotFound)
	_, err = s.DeviceByJKT(ctx, d.JKT)
	require.ErrorIs(t, err, reach.ErrNotFound)
	list, err := s.UserDevices(ctx, d.User)
	require.NoError(t, err)
	require.Empty(t, list)
	entries, err := s.ReadInbox(ctx, d.ID, "", 10)
	require.NoError(t, err)
	require.Empty(t, entries)
	present, err := s.Present(ctx, d.ID)
	require.NoError(t, err)
	require.False(t, present)
	_, err = s.AppendInbox(ctx, d.ID, []byte("late"))
	require.ErrorIs(t, err, reach.ErrNotFound)
	require.NoError(t, s.DeleteDevice(ctx, d.ID))
	again := d
	again.ID, again.User = reach.NewID(), reachUser()
	got, err := s.PutDevice(ctx, again, longTTL)
	require.NoError(t, err)
	require.Equal(t, again.ID, got.ID)
}

// testReachDeviceSliding: a touch restarts the idle expiry (the device
// outlives its first TTL) and moves LastSeen; untouched it expires, from
// every lookup and from the user's quota.
func testReachDeviceSliding(t *testing.T, s storage.ReachStore) {
	ctx := t.Context()
	d, err := s.PutDevice(ctx, device(reachUser()), shortTTL)
	require.NoError(t, err)
	time.Sleep(shortTTL * 2 / 3)
	require.NoError(t, s.TouchDevice(ctx, d.ID, shortTTL))
	time.Sleep(shortTTL * 2 / 3)
	got, err := s.Device(ctx, d.ID)
	require.NoError(t, err, "the touch slid the expiry")
	require.True(t, got.LastSeen.After(d.LastSeen))
	time.Sleep(shortTTL + expiryMargin)
	_, err = s.Device(ctx, d.ID)
	require.ErrorIs(t, err, reach.ErrNotFound)
	_, err = s.DeviceByJKT(ctx, d.JKT)
	require.ErrorIs(t, err, reach.ErrNotFound)
	list, err := s.UserDevices(ctx, d.User)
	require.NoError(t, err)
	require.Empty(t, list)
}

// testReachInbox: entries read back in order from any cursor, bounded by
// max; an unknown device has an empty inbox and takes no appends; a
// malformed cursor is ErrInvalid.
func testReachInbox(t *testing.T, s storage.ReachStore) {
	ctx := t.Context()
	d, err := s.PutDevice(ctx, device(reachUser()), longTTL)
	require.NoError(t, err)
	var ids []string
	for i := range 3 {
		id, err := s.AppendInbox(ctx, d.ID, fmt.Appendf(nil, "task-%d\x00\xff", i))
		require.NoError(t, err)
		ids = append(ids, id)
	}
	all, err := s.ReadInbox(ctx, d.ID, "", 10)
	require.NoError(t, err)
	require.Len(t, all, 3)
	for i, e := range all {
		require.Equal(t, ids[i], e.ID)
		require.Equal(t, fmt.Appendf(nil, "task-%d\x00\xff", i), e.Data)
	}
	rest, err := s.ReadInbox(ctx, d.ID, ids[0], 10)
	require.NoError(t, err)
	require.Equal(t, all[1:], rest)
	one, err := s.ReadInbox(ctx, d.ID, ids[0], 1)
	require.NoError(t, err)
	require.Equal(t, all[1:2], one)
	none, err := s.ReadInbox(ctx, d.ID, ids[2], 10)
	require.NoError(t, err)
	require.Empty(t, none)
	for _, bad := range []string{"x-1", "1", "99999999999999999999-0", "1-2\r\n", "(1-2"} {
		_, err = s.ReadInbox(ctx, d.ID, bad, 10)
		require.ErrorIs(t, err, reach.ErrInvalid, "cursor %q", bad)
	}
	_, err = s.AppendInbox(ctx, reach.NewID(), []byte("x"))
	require.ErrorIs(t, err, reach.ErrNotFound)
	_, err = s.AppendInbox(ctx, d.ID, make([]byte, storage.MaxInboxEntry+1))
	require.ErrorIs(t, err, reach.ErrInvalid)
	empty, err := s.ReadInbox(ctx, reach.NewID(), "", 10)
	require.NoError(t, err)
	require.Empty(t, empty)
}

// testReachInboxBounded: after many appends the inbox keeps at least the
// newest InboxMaxLen entries and at most about twice as many (MAXLEN ~),
// in increasing id order.
func testReachInboxBounded(t *testing.T, s storage.ReachStore) {
	ctx := t.Context()
	d, err := s.PutDevice(ctx, device(reachUser()), longTTL)
	require.NoError(t, err)
	const n = 3 * storage.InboxMaxLen
	var last string
	for i := range n {
		last, err = s.AppendInbox(ctx, d.ID, fmt.Appendf(nil, "%d", i))
		require.NoError(t, err)
	}
	var kept []storage.InboxEntry
	after := ""
	for {
		page, err := s.ReadInbox(ctx, d.ID, after, storage.MaxInboxRead)
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		kept = append(kept, page...)
		after = page[len(page)-1].ID
	}
	require.GreaterOrEqual(t, len(kept), storage.InboxMaxLen)
	require.LessOrEqual(t, len(kept), 2*storage.InboxMaxLen)
	require.Equal(t, last, kept[len(kept)-1].ID)
	require.Equal(t, fmt.Appendf(nil, "%d", n-1), kept[len(kept)-1].Data)
	seen := map[string]bool{}
	for _, e := range kept {
		require.False(t, seen[e.ID])
		seen[e.ID] = true
	}
}

// testReachPresence: absent, present after SetPresence, absent after its
// TTL; an unknown device cannot be marked present.
func testReachPresence(t *testing.T, s storage.ReachStore) {
	ctx := t.Context()
	d, err := s.PutDevice(ctx, device(reachUser()), longTTL)
	require.NoError(t, err)
	present, err := s.Present(ctx, d.ID)
	require.NoError(t, err)
	require.False(t, present)
	require.NoError(t, s.SetPresence(ctx, d.ID, shortTTL))
	present, err = s.Present(ctx, d.ID)
	require.NoError(t, err)
	require.True(t, present)
	require.ErrorIs(t, s.SetPresence(ctx, reach.NewID(), shortTTL), reach.ErrNotFound)
	time.Sleep(shortTTL + expiryMargin)
	present, err = s.Present(ctx, d.ID)
	require.NoError(t, err)
	require.False(t, present)
}

// testReachTaskRoundTrip: a task reads back as created; a retried create
// is not a conflict, another task under its id or ref is; an invalid,
// too long-lived or non-CREATED task is refused.
func testReachTaskRoundTrip(t *testing.T, s storage.ReachStore) {
	ctx := t.Context()
	tk := task(reachUser(), time.Now().Add(longTTL))
	require.NoError(t, s.CreateTask(ctx, tk))
	got, err := s.Task(ctx, tk.ID)
	require.NoError(t, err)
	requireSameTask(t, tk, got)
	require.NoError(t, s.CreateTask(ctx, tk), "retry")
	other := task(tk.User, tk.ExpiresAt)
	other.ID = tk.ID
	require.ErrorIs(t, s.CreateTask(ctx, other), storage.ErrConflict, "id in use")
	other = task(tk.User, tk.ExpiresAt)
	other.Ref = tk.Ref
	require.ErrorIs(t, s.CreateTask(ctx, other), storage.ErrConflict, "ref in use")
	_, err = s.Task(ctx, other.ID)
	require.ErrorIs(t, err, reach.ErrNotFound, "the refused task left nothing")
	bad := task(tk.User, tk.ExpiresAt)
	bad.Binding = reach.Binding{}
	require.ErrorIs(t, s.CreateTask(ctx, bad), reach.ErrInvalid)
	long := task(tk.User, time.Now().Add(reach.MaxTaskLifetime+time.Minute))
	require.ErrorIs(t, s.CreateTask(ctx, long), reach.ErrInvalid, "lifetime bounded")
	seen := task(tk.User, tk.ExpiresAt)
	seen.State = reach.StateSeen
	require.ErrorIs(t, s.CreateTask(ctx, seen), reach.ErrState)
	_, err = s.Task(ctx, reach.NewID())
	require.ErrorIs(t, err, storage.ErrNotFound)
}

// testReachTaskTransitions: a task walks CREATED → DELIVERED → SEEN →
// APPROVED through TransitionTask; mutate's changes are kept except the
// immutable fields; a state outside from, a pair the machine refuses, and
// an error from mutate write nothing.
func testReachTaskTransitions(t *testing.T, s storage.ReachStore) {
	ctx := t.Context()
	tk := task(reachUser(), time.Now().Add(longTTL))
	require.NoError(t, s.CreateTask(ctx, tk))
	devID := reach.NewID()
	got, err := s.TransitionTask(ctx, tk.ID, []reach.State{reach.StateCreated}, reach.StateDelivered, func(t *reach.Task) error {
		t.Devices = append(t.Devices, devID)
		t.User, t.Ref, t.ClientID = "mallory", reach.NewID(), "evil" // ignored
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, reach.StateDelivered, got.State)
	require.Equal(t, []string{devID}, got.Devices)
	require.Equal(t, tk.User, got.User)
	require.Equal(t, tk.Ref, got.Ref)
	stored, err := s.Task(ctx, tk.ID)
	require.NoError(t, err)
	requireSameTask(t, got, stored)

	// Refused: wrong from state, a move the machine never makes, mutate's
	// error; the task is unchanged after each.
	_, err = s.TransitionTask(ctx, tk.ID, []reach.State{reach.StateSeen}, reach.StateApproved, nil)
	require.ErrorIs(t, err, reach.ErrState)
	_, err = s.TransitionTask(ctx, tk.ID, []reach.State{reach.StateDelivered}, reach.StateApproved, nil)
	require.ErrorIs(t, err, reach.ErrState, "DELIVERED → APPROVED skips SEEN")
	boom := errors.New("boom")
	_, err = s.TransitionTask(ctx, tk.ID, []reach.State{reach.StateDelivered}, reach.StateSeen, func(t *reach.Task) error {
		t.Result = []byte("x")
		return boom
	})
	require.ErrorIs(t, err, boom)
	_, err = s.TransitionTask(ctx, tk.ID, []reach.State{reach.StateDelivered}, reach.StateSeen, func(t *reach.Task) error {
		t.State = reach.StateApproved // a second hop the machine refuses from DELIVERED
		return nil
	})
	require.ErrorIs(t, err, reach.ErrState)
	again, err := s.Task(ctx, tk.ID)
	require.NoError(t, err)
	requireSameTask(t, stored, again)

	// nil mutate: a plain state swap.
	got, err = s.TransitionTask(ctx, tk.ID, []reach.State{reach.StateCreated, reach.StateDelivered}, reach.StateSeen, nil)
	require.NoError(t, err)
	require.Equal(t, reach.StateSeen, got.State)
	got, err = s.TransitionTask(ctx, tk.ID, []reach.State{reach.StateSeen}, reach.StateApproved, func(t *reach.Task) error {
		t.Result = []byte(`{"amr":["face"]}`)
		return nil
	})
	require.NoError(t, err)
	stored, err = s.Task(ctx, tk.ID)
	require.NoError(t, err)
	require.Equal(t, reach.StateApproved, stored.State)
	require.Equal(t, []byte(`{"amr":["face"]}`), stored.Result)
	require.Equal(t, []string{devID}, stored.Devices)
	_, err = s.TransitionTask(ctx, tk.ID, []reach.State{reach.StateSeen}, reach.StateDenied, nil)
	require.ErrorIs(t, err, reach.ErrState, "terminal")
	_, err = s.TransitionTask(ctx, reach.NewID(), []reach.State{reach.StateSeen}, reach.StateDenied, nil)
	require.ErrorIs(t, err, reach.ErrNotFound)
}

// testReachTaskPicks: number matching inside the CAS: two wrong picks
// count, the third fails the task, and no pick is accepted afterwards.
func testReachTaskPicks(t *testing.T, s storage.ReachStore) {
	ctx := t.Context()
	tk := task(reachUser(), time.Now().Add(longTTL))
	require.NoError(t, s.CreateTask(ctx, tk))
	_, err := s.TransitionTask(ctx, tk.ID, []reach.State{reach.StateCreated}, reach.StateSeen, nil)
	require.NoError(t, err)
	pick := func(c int) (reach.Task, error, error) {
		var perr error
		got, err := s.TransitionTask(ctx, tk.ID, []reach.State{reach.StateSeen}, reach.StateSeen, func(t *reach.Task) error {
			perr = t.Pick(c)
			return nil
		})
		return got, perr, err
	}
	for i, want := range []reach.State{reach.StateSeen, reach.StateSeen, reach.StateFailed} {
		got, perr, err := pick(21)
		require.NoError(t, err)
		require.ErrorIs(t, perr, reach.ErrBinding)
		require.Equal(t, want, got.State)
		require.Equal(t, i+1, got.Attempts)
	}
	_, _, err = pick(42)
	require.ErrorIs(t, err, reach.ErrState, "FAILED takes no pick, not even the right one")
	requireFailedAfterPicks(t, s, tk.ID)
}

// testReachTaskExpiry: past ExpiresAt no transition but EXPIRED applies;
// the record (kept TaskGrace longer) then reads EXPIRED.
func testReachTaskExpiry(t *testing.T, s storage.ReachStore) {
	ctx := t.Context()
	tk := task(reachUser(), time.Now().Add(shortTTL))
	require.NoError(t, s.CreateTask(ctx, tk))
	time.Sleep(shortTTL + expiryMargin)
	got, err := s.Task(ctx, tk.ID)
	require.NoError(t, err, "kept for the grace period")
	require.Equal(t, reach.StateExpired, got.Effective(time.Now()))
	_, err = s.TransitionTask(ctx, tk.ID, []reach.State{reach.StateCreated}, reach.StateDelivered, nil)
	require.ErrorIs(t, err, reach.ErrState)
	got, err = s.TransitionTask(ctx, tk.ID, []reach.State{reach.StateCreated, reach.StateDelivered, reach.StateSeen}, reach.StateExpired, nil)
	require.NoError(t, err)
	require.Equal(t, reach.StateExpired, got.State)
}

// testReachTakeRef: a ref gives its task id once; again, or unknown, is
// not found.
func testReachTakeRef(t *testing.T, s storage.ReachStore) {
	ctx := t.Context()
	tk := task(reachUser(), time.Now().Add(longTTL))
	require.NoError(t, s.CreateTask(ctx, tk))
	got, err := s.TakeRef(ctx, tk.Ref)
	require.NoError(t, err)
	require.Equal(t, tk.ID, got)
	_, err = s.TakeRef(ctx, tk.Ref)
	require.ErrorIs(t, err, reach.ErrNotFound)
	require.ErrorIs(t, err, storage.ErrNotFound)
	_, err = s.TakeRef(ctx, reach.NewID())
	require.ErrorIs(t, err, reach.ErrNotFound)
	_, err = s.Task(ctx, tk.ID)
	require.NoError(t, err, "taking the ref leaves the task")
}

// raceAtOnce runs f on racers goroutines released at once by a barrier.
func raceAtOnce(f func()) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range racers {
		wg.Go(func() {
			<-start
			f()
		})
	}
	close(start)
	wg.Wait()
}

// testReachRaceTransition: racers answer one SEEN task at once (R15):
// exactly one transition wins, every other gets ErrState, and the stored
// result is the winner's.
func testReachRaceTransition(t *testing.T, s storage.ReachStore) {
	ctx := t.Context()
	tk := task(reachUser(), time.Now().Add(longTTL))
	require.NoError(t, s.CreateTask(ctx, tk))
	_, err := s.TransitionTask(ctx, tk.ID, []reach.State{reach.StateCreated}, reach.StateSeen, nil)
	require.NoError(t, err)
	var wins, refused atomic.Int64
	var winner atomic.Value
	var n atomic.Int64
	raceAtOnce(func() {
		res := fmt.Appendf(nil, "answer-%d", n.Add(1))
		to := reach.StateApproved
		if len(res)%2 == 0 {
			to = reach.StateDenied
		}
		_, err := s.TransitionTask(ctx, tk.ID, []reach.State{reach.StateSeen}, to, func(t *reach.Task) error {
			t.Result = res
			return nil
		})
		switch {
		case err == nil:
			wins.Add(1)
			winner.Store(res)
		case errors.Is(err, reach.ErrState):
			refused.Add(1)
		}
	})
	require.Equal(t, int64(1), wins.Load())
	require.Equal(t, int64(racers-1), refused.Load())
	got, err := s.Task(ctx, tk.ID)
	require.NoError(t, err)
	require.Equal(t, winner.Load(), got.Result)
}

// testReachRacePicks: racers pick a wrong number at once: no count is
// lost (the CAS re-reads on a version change), exactly MaxPicks picks
// count and the task ends FAILED.
func testReachRacePicks(t *testing.T, s storage.ReachStore) {
	ctx := t.Context()
	tk := task(reachUser(), time.Now().Add(longTTL))
	require.NoError(t, s.CreateTask(ctx, tk))
	_, err := s.TransitionTask(ctx, tk.ID, []reach.State{reach.StateCreated}, reach.StateSeen, nil)
	require.NoError(t, err)
	var counted, refused atomic.Int64
	raceAtOnce(func() {
		var perr error
		_, err := s.TransitionTask(ctx, tk.ID, []reach.State{reach.StateSeen}, reach.StateSeen, func(t *reach.Task) error {
			perr = t.Pick(84)
			return nil
		})
		switch {
		case err == nil && errors.Is(perr, reach.ErrBinding):
			counted.Add(1)
		case errors.Is(err, reach.ErrState):
			refused.Add(1)
		}
	})
	require.Equal(t, int64(reach.MaxPicks), counted.Load())
	require.Equal(t, int64(racers-reach.MaxPicks), refused.Load())
	requireFailedAfterPicks(t, s, tk.ID)
}

// testReachRaceTakeRef: of concurrent takes of one ref exactly one wins.
func testReachRaceTakeRef(t *testing.T, s storage.ReachStore) {
	ctx := t.Context()
	tk := task(reachUser(), time.Now().Add(longTTL))
	require.NoError(t, s.CreateTask(ctx, tk))
	var wins, missed atomic.Int64
	raceAtOnce(func() {
		_, err := s.TakeRef(ctx, tk.Ref)
		switch {
		case err == nil:
			wins.Add(1)
		case errors.Is(err, reach.ErrNotFound):
			missed.Add(1)
		}
	})
	require.Equal(t, int64(1), wins.Load())
	require.Equal(t, int64(racers-1), missed.Load())
}

// testReachRaceQuota: racers register distinct devices for one user at
// once: exactly MaxDevicesPerUser succeed, the rest get ErrQuota.
func testReachRaceQuota(t *testing.T, s storage.ReachStore) {
	ctx := t.Context()
	u := reachUser()
	var ok, quota atomic.Int64
	raceAtOnce(func() {
		_, err := s.PutDevice(ctx, device(u), longTTL)
		switch {
		case err == nil:
			ok.Add(1)
		case errors.Is(err, reach.ErrQuota):
			quota.Add(1)
		}
	})
	require.Equal(t, int64(reach.MaxDevicesPerUser), ok.Load())
	require.Equal(t, int64(racers-reach.MaxDevicesPerUser), quota.Load())
	list, err := s.UserDevices(ctx, u)
	require.NoError(t, err)
	require.Len(t, list, reach.MaxDevicesPerUser)
}

// requireFailedAfterPicks: the stored task is FAILED after exactly
// reach.MaxPicks wrong picks (number matching, docs/reach.md).
func requireFailedAfterPicks(t *testing.T, s storage.ReachStore, id string) {
	t.Helper()
	got, err := s.Task(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, reach.StateFailed, got.State)
	require.Equal(t, reach.MaxPicks, got.Attempts)
}
