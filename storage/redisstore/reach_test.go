package redisstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/redisstore"
	"github.com/fedas/fedas/storage/redistest"
)

func reachDevice(user, name string) reach.Device {
	h := sha256.Sum256([]byte(name + user))
	return reach.Device{
		ID: reach.NewID(), User: user, JKT: base64.RawURLEncoding.EncodeToString(h[:]),
		Name: name, Platform: "iOS 19.1",
		Capabilities: []reach.Capability{reach.KindAppAuth, reach.KindQuestion, reach.KindInteraction},
		Channels: []reach.ChannelSpec{{Type: reach.ChannelInbox},
			{Type: reach.ChannelAPNs, Token: strings.Repeat("0f", 32)}},
	}
}

func reachTask(user string) reach.Task {
	b, _ := reach.NewBinding()
	return reach.Task{
		ID: reach.NewID(), Kind: reach.KindAppAuth, User: user, ClientID: "demo-app", State: reach.StateCreated,
		Ref: reach.NewID(), Binding: b, ExpiresAt: time.Now().Add(2 * time.Minute),
	}
}

// TestReachCost measures the Redis cost of the reach core on one node:
// the round trips of every ReachStore operation (asserted: a change to
// the key layout or the scripts shows here) and the bytes per device and
// per task (MEMORY USAGE, logged for docs/redis.md; bounded loosely).
func TestReachCost(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}})
	hook := &countingHook{}
	s.Client().AddHook(hook)
	ctx := t.Context()
	user := "user-8f3a2b"
	// Warm the script cache: the first use of a script on a node costs an
	// extra EVAL, once.
	warm, err := s.PutDevice(ctx, reachDevice(user, "warm"), time.Hour)
	require.NoError(t, err)
	_, err = s.PutDevice(ctx, warm, time.Hour)
	require.NoError(t, err)
	require.NoError(t, s.TouchDevice(ctx, warm.ID, time.Hour))
	_, err = s.AppendInbox(ctx, warm.ID, []byte("w"))
	require.NoError(t, err)
	require.NoError(t, s.SetPresence(ctx, warm.ID, time.Minute))
	wt := reachTask(user)
	require.NoError(t, s.CreateTask(ctx, wt))
	_, err = s.TransitionTask(ctx, wt.ID, []reach.State{reach.StateCreated}, reach.StateDelivered, nil)
	require.NoError(t, err)
	require.NoError(t, s.DeleteDevice(ctx, warm.ID))

	d := reachDevice(user, "Alice’s iPhone")
	tk := reachTask(user)
	var entry string
	steps := []struct {
		op  string
		rts int64
		run func() error
	}{
		{"PutDevice (new)", 3, func() error { var err error; d, err = s.PutDevice(ctx, d, reach.DeviceIdleTTL); return err }},
		{"PutDevice (again, same key)", 3, func() error { _, err := s.PutDevice(ctx, d, reach.DeviceIdleTTL); return err }},
		{"Device", 1, func() error { _, err := s.Device(ctx, d.ID); return err }},
		{"DeviceByJKT", 2, func() error { _, err := s.DeviceByJKT(ctx, d.JKT); return err }},
		{"UserDevices", 2, func() error { _, err := s.UserDevices(ctx, user); return err }},
		{"TouchDevice", 2, func() error { return s.TouchDevice(ctx, d.ID, reach.DeviceIdleTTL) }},
		{"SetPresence", 1, func() error { return s.SetPresence(ctx, d.ID, storage.PresenceTTL) }},
		{"Present", 1, func() error { _, err := s.Present(ctx, d.ID); return err }},
		{"AppendInbox", 1, func() error {
			var err error
			entry, err = s.AppendInbox(ctx, d.ID, []byte(`{"task":"`+tk.ID+`"}`))
			return err
		}},
		{"ReadInbox", 1, func() error { _, err := s.ReadInbox(ctx, d.ID, "", 10); return err }},
		{"CreateTask", 1, func() error { return s.CreateTask(ctx, tk) }},
		{"Task", 1, func() error { _, err := s.Task(ctx, tk.ID); return err }},
		{"TransitionTask (no mutate)", 1, func() error {
			_, err := s.TransitionTask(ctx, tk.ID, []reach.State{reach.StateCreated}, reach.StateDelivered, nil)
			return err
		}},
		{"TransitionTask (mutate)", 2, func() error {
			_, err := s.TransitionTask(ctx, tk.ID, []reach.State{reach.StateDelivered}, reach.StateSeen, func(t *reach.Task) error {
				t.Devices = []string{d.ID}
				return nil
			})
			return err
		}},
	}
	for _, st := range steps {
		before := hook.n.Load()
		require.NoError(t, st.run(), st.op)
		got := hook.n.Load() - before
		t.Logf("round trips %-28s %d", st.op, got)
		require.Equal(t, st.rts, got, st.op)
	}
	require.NotEmpty(t, entry)

	usage := func(k string) int64 {
		v, err := srv.Do("MEMORY", "USAGE", s.Prefix()+k, "SAMPLES", "0")
		require.NoError(t, err, k)
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		require.NoError(t, err, "%s: %q", k, v)
		return n
	}
	keys, err := srv.Do("KEYS", s.Prefix()+"reach:*")
	require.NoError(t, err)
	var devBytes, taskBytes int64
	for _, k := range strings.Fields(keys) {
		k = strings.TrimPrefix(k, s.Prefix())
		n := usage(k)
		switch {
		case strings.Contains(k, "{d:"+d.ID+"}:inbox"):
			t.Logf("bytes %-44s %d (one entry)", "inbox", n)
		case strings.Contains(k, "{d:"+d.ID+"}:presence"):
			t.Logf("bytes %-44s %d", "presence", n)
		case strings.Contains(k, d.ID), strings.Contains(k, d.JKT), strings.HasPrefix(k, "reach:u:"):
			devBytes += n
			t.Logf("bytes %-44s %d", k[:min(len(k), 44)], n)
		case strings.Contains(k, tk.ID), strings.Contains(k, tk.Ref):
			taskBytes += n
			t.Logf("bytes %-44s %d", k[:min(len(k), 44)], n)
		}
	}
	t.Logf("bytes per device (hash + jkt pointer + user set): %d; per task (hash + ref): %d", devBytes, taskBytes)
	require.Positive(t, devBytes)
	require.Less(t, devBytes, int64(2048))
	require.Positive(t, taskBytes)
	require.Less(t, taskBytes, int64(2048))

	for _, st := range []struct {
		op  string
		rts int64
		run func() error
	}{
		{"TakeRef", 1, func() error { _, err := s.TakeRef(ctx, tk.Ref); return err }},
		{"DeleteDevice", 2, func() error { return s.DeleteDevice(ctx, d.ID) }},
	} {
		before := hook.n.Load()
		require.NoError(t, st.run(), st.op)
		got := hook.n.Load() - before
		t.Logf("round trips %-28s %d", st.op, got)
		require.Equal(t, st.rts, got, st.op)
	}
}

// reachKeyRules are the reach keys (docs/redis.md "Keys") with their
// longest TTL.
var reachKeyRules = []struct {
	re  *regexp.Regexp
	max time.Duration
}{
	{regexp.MustCompile(`^reach:\{d:[A-Za-z0-9_-]{22}\}$`), reach.DeviceIdleTTL},
	{regexp.MustCompile(`^reach:\{d:[A-Za-z0-9_-]{22}\}:inbox$`), storage.InboxTTL},
	{regexp.MustCompile(`^reach:\{d:[A-Za-z0-9_-]{22}\}:presence$`), storage.PresenceTTL},
	{regexp.MustCompile(`^reach:jkt:\{[A-Za-z0-9_-]{43}\}$`), reach.DeviceIdleTTL},
	{regexp.MustCompile(`^reach:u:\{[A-Za-z0-9_-]{22}\}$`), reach.DeviceIdleTTL},
	{regexp.MustCompile(`^reach:\{t:[A-Za-z0-9_-]{22}\}$`), reach.MaxTaskLifetime + reach.TaskGrace},
	{regexp.MustCompile(`^reach:ref:\{[A-Za-z0-9_-]{22}\}$`), reach.MaxTaskLifetime + reach.TaskGrace},
}

// TestReachKeysBounded: every key the reach operations write matches a
// documented pattern, carries no user id in its name, and has a TTL > 0
// and at most its pattern's bound (docs/reach.md, R19).
func TestReachKeysBounded(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}})
	ctx := context.Background()
	user := "carol@example.com"
	d, err := s.PutDevice(ctx, reachDevice(user, "Phone"), reach.DeviceIdleTTL)
	require.NoError(t, err)
	require.NoError(t, s.TouchDevice(ctx, d.ID, reach.DeviceIdleTTL))
	_, err = s.AppendInbox(ctx, d.ID, []byte("wake"))
	require.NoError(t, err)
	require.NoError(t, s.SetPresence(ctx, d.ID, storage.PresenceTTL))
	tk := reachTask(user)
	require.NoError(t, s.CreateTask(ctx, tk))
	_, err = s.TransitionTask(ctx, tk.ID, []reach.State{reach.StateCreated}, reach.StateDelivered, func(t *reach.Task) error { return nil })
	require.NoError(t, err)
	keys, err := srv.Do("KEYS", "*")
	require.NoError(t, err)
	seen := make([]int, len(reachKeyRules))
	for _, k := range strings.Fields(keys) {
		require.NotContains(t, k, "carol", "no user id in a key name")
		rest := strings.TrimPrefix(k, s.Prefix())
		i := -1
		for j, r := range reachKeyRules {
			if r.re.MatchString(rest) {
				i = j
			}
		}
		require.GreaterOrEqual(t, i, 0, "undocumented key %q", rest)
		seen[i]++
		v, err := srv.Do("PTTL", k)
		require.NoError(t, err)
		ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		require.NoError(t, err)
		require.Positive(t, ms, "key %q has no TTL", rest)
		require.LessOrEqual(t, time.Duration(ms)*time.Millisecond, reachKeyRules[i].max+5*time.Second, rest)
	}
	for i, n := range seen {
		require.Equal(t, 1, n, "pattern %s", reachKeyRules[i].re)
	}
}

// TestReachHostileKeyParts: ids, thumbprints, refs and cursors from
// outside that could open a hash tag, act as a pattern or inject protocol
// bytes are answered not found / invalid on every ReachStore operation,
// and not one command reaches Redis (the A12 rule for the reach keys).
func TestReachHostileKeyParts(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}})
	hook := &countingHook{}
	s.Client().AddHook(hook)
	ctx := t.Context()
	for _, bad := range []string{"", "a{b}cdefghijklmnopqrst", "*", "x\r\nFLUSHALL\r\n", strings.Repeat("a", 600), "{t:AAAAAAAAAAAAAAAAAAAAAA}"} {
		notFound := []struct {
			op  string
			err error
		}{
			{"Device", func() error { _, err := s.Device(ctx, bad); return err }()},
			{"DeviceByJKT", func() error { _, err := s.DeviceByJKT(ctx, bad); return err }()},
			{"TouchDevice", s.TouchDevice(ctx, bad, time.Minute)},
			{"AppendInbox", func() error { _, err := s.AppendInbox(ctx, bad, []byte("x")); return err }()},
			{"SetPresence", s.SetPresence(ctx, bad, time.Minute)},
			{"Task", func() error { _, err := s.Task(ctx, bad); return err }()},
			{"TransitionTask", func() error {
				_, err := s.TransitionTask(ctx, bad, []reach.State{reach.StateSeen}, reach.StateApproved, nil)
				return err
			}()},
			{"TakeRef", func() error { _, err := s.TakeRef(ctx, bad); return err }()},
		}
		for _, c := range notFound {
			require.ErrorIs(t, c.err, reach.ErrNotFound, "%s(%q)", c.op, bad)
		}
		present, err := s.Present(ctx, bad)
		require.NoError(t, err)
		require.False(t, present)
		entries, err := s.ReadInbox(ctx, bad, "", 10)
		require.NoError(t, err)
		require.Empty(t, entries)
		require.NoError(t, s.DeleteDevice(ctx, bad))
		d := reachDevice("u", "n")
		d.ID = bad
		_, err = s.PutDevice(ctx, d, time.Minute)
		require.ErrorIs(t, err, reach.ErrInvalid)
		tk := reachTask("u")
		tk.Ref = bad
		require.ErrorIs(t, s.CreateTask(ctx, tk), reach.ErrInvalid)
		if bad != "" {
			_, err = s.ReadInbox(ctx, reach.NewID(), bad, 10)
			require.ErrorIs(t, err, reach.ErrInvalid, "cursor %q", bad)
		}
	}
	require.Zero(t, hook.n.Load(), "no command reached Redis")
}
