package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/reach/deliver"
	"github.com/fedas/fedas/reach/wake"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/redisstore"
)

// This file is the app-side tests' layer over the reach harness
// (reach_env_test.go): the front ends that create tasks are built
// elsewhere, so these tests create and deliver tasks through the
// deployment's store and a Reacher of their own on the deployment's wake
// channel, as another instance would.

// appEnv is a reach deployment with a test-side Reacher.
type appEnv struct {
	*reachEnv
	rs      storage.ReachStore
	hub     wake.Hub
	reacher *deliver.Reacher
}

// newAppEnv starts a two-instance deployment on b's store (one instance
// with o.one). The test's hub is the instances' on memory and a second
// subscriber of the same Redis channel on Redis.
func newAppEnv(tb testing.TB, st storage.Store, o reachEnvOptions) *appEnv {
	tb.Helper()
	if st == nil {
		st = backends()[0].store(tb)
	}
	var hub wake.Hub
	if r, ok := st.(*redisstore.Store); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h, err := wake.NewRedis(ctx, r.Client(), wake.RedisOptions{Options: wake.Options{Tick: o.reach.Recheck}, Prefix: r.Prefix()})
		require.NoError(tb, err)
		hub = h
	} else {
		hub = wake.NewMemory(wake.Options{Tick: o.reach.Recheck})
		o.reach.Hub = hub
	}
	tb.Cleanup(func() { _ = hub.Close() })
	env := newReachEnv(tb, st, o)
	rs := st.(storage.ReachStore)
	r := &deliver.Reacher{Store: rs, Channels: deliver.NewChannels(&deliver.Inbox{Store: rs, Hub: hub}, &deliver.Webhook{}),
		Quota: deliver.Quota{Live: st.(storage.LiveCounter), Rate: st.(storage.RateLimiter)}}
	return &appEnv{reachEnv: env, rs: rs, hub: hub, reacher: r}
}

// phoneBody is a registration of a phone with every capability, reached
// through its inbox.
const phoneBody = `{"name":"Alice's phone","platform":"ios","capabilities":["app_auth","question","interaction"],"channels":[{"type":"inbox"}]}`

type registeredBody struct {
	DeviceID  string `json:"device_id"`
	InboxURI  string `json:"inbox_uri"`
	EventsURI string `json:"events_uri"`
}

// register registers a's device with body (phoneBody when "") and
// requires want.
func (a *reachApp) register(tb testing.TB, body string, want int) registeredBody {
	tb.Helper()
	if body == "" {
		body = phoneBody
	}
	st, _, b := a.do(tb, http.MethodPost, "/reach/devices", body)
	require.Equal(tb, want, st, "%s", b)
	var r registeredBody
	if st < 300 {
		require.NoError(tb, json.Unmarshal(b, &r))
		require.True(tb, reach.ValidID(r.DeviceID))
	}
	return r
}

// display is a task's display record for the app (server taskDisplay).
type display map[string]any

// task stores a CREATED task of kind for user (with a number-matching
// binding for app_auth) whose record shows d.
func (e *appEnv) task(tb testing.TB, user string, kind reach.Kind, d display) reach.Task {
	tb.Helper()
	t := reach.Task{ID: reach.NewID(), Kind: kind, User: user, ClientID: "demo-app", State: reach.StateCreated, Ref: reach.NewID(),
		ExpiresAt: time.Now().Add(2 * time.Minute)}
	if kind == reach.KindAppAuth {
		b, err := reach.NewBinding()
		require.NoError(tb, err)
		t.Binding = b
	}
	if d == nil {
		d = display{"client_id": "demo-app", "client_name": "Demo app"}
	}
	rec, err := json.Marshal(map[string]any{"d": d})
	require.NoError(tb, err)
	t.Result = rec
	require.NoError(tb, e.rs.CreateTask(context.Background(), t))
	return t
}

// deliver reaches the task's user (the Reacher of another instance) and
// returns the devices reached.
func (e *appEnv) deliver(tb testing.TB, t *reach.Task) []string {
	tb.Helper()
	ids, err := e.reacher.Reach(context.Background(), t.User, t)
	require.NoError(tb, err)
	return ids
}

// stored reads a task as stored.
func (e *appEnv) stored(tb testing.TB, id string) reach.Task {
	tb.Helper()
	t, err := e.rs.Task(context.Background(), id)
	require.NoError(tb, err)
	return t
}

// jsonOf decodes an answer body.
func jsonOf(tb testing.TB, b []byte) map[string]any {
	tb.Helper()
	var m map[string]any
	require.NoError(tb, json.Unmarshal(b, &m), "%s", b)
	return m
}
