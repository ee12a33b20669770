package server_test

import (
	"context"
	"github.com/fedas/fedas/config"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/redistest"
)

// TestReachNative_ConfidentialClient (SECURITY-RESULTS.md RN21): a
// confidential client authenticates on POST /native/reach and on every
// poll, as on every request of its session.
func TestReachNative_ConfidentialClient(t *testing.T) {
	clock := &servertest.Clock{}
	env := newReachEnv(t, nil, reachEnvOptions{clock: clock, edit: nativeReachConfig})
	newReachPhone(t, env.b, clock, "carol", true)
	d := newReachDevice(t, env.a, clock, "fp-conf")
	d.hdr = http.Header{"Authorization": {"Basic " + basicValue("fp-conf", "fp-conf-secret")}}
	first := d.start(t, "carol")
	require.Equal(t, env.a.URL+"/native/reach", first.str("reach_uri"))
	anon := &reachDevice{in: d.in, clock: clock, key: d.key, client: d.client, pk: d.pk}
	requireOAuthError(t, anon.reach(t, first.str("auth_session")), http.StatusUnauthorized, "invalid_client")
	r := d.reach(t, first.str("auth_session"))
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	loc := r.header.Get("Location")
	requireOAuthError(t, anon.poll(t, loc), http.StatusUnauthorized, "invalid_client")
	require.Equal(t, http.StatusAccepted, d.poll(t, loc).status)
}

// TestReachNative_CreationBudget (RN22): a client's task creations are
// budgeted (60 a minute): beyond, 429 slow_down with Retry-After.
func TestReachNative_CreationBudget(t *testing.T) {
	for _, c := range []struct {
		name   string
		budget int // reach.creations_per_minute; 0: the default
		want   int
	}{{"default", 0, 60}, {"configured", 5, 5}} {
		t.Run(c.name, func(t *testing.T) {
			clock := &servertest.Clock{}
			env := newReachEnv(t, nil, reachEnvOptions{clock: clock, one: true, edit: func(cfg *config.Config) {
				nativeReachConfig(cfg)
				cfg.Reach.CreationsPerMinute = c.budget
			}})
			newReachPhone(t, env.a, clock, "carol", true)
			d := newReachDevice(t, env.a, clock, "demo-app")
			session := d.start(t, "carol").str("auth_session")
			for i := 0; i < c.want; i++ {
				r := d.reach(t, session)
				require.Equal(t, http.StatusAccepted, r.status, "%d: %s", i, r.raw)
			}
			r := d.reach(t, session)
			requireOAuthError(t, r, http.StatusTooManyRequests, "slow_down")
			require.NotEmpty(t, r.header.Get("Retry-After"))
		})
	}
}

// TestReachNative_Outage (RN23): Redis gone: both routes answer 503
// temporarily_unavailable with Retry-After, never 500.
func TestReachNative_Outage(t *testing.T) {
	rs := redistest.Start(t)
	clock := &servertest.Clock{}
	env := newReachEnv(t, redisStore(t, rs.URL()), reachEnvOptions{clock: clock, edit: nativeReachConfig, one: true, reach: server.ReachOptions{NoRedisHub: true}})
	newReachPhone(t, env.a, clock, "carol", true)
	d := newReachDevice(t, env.a, clock, "demo-app")
	session := d.start(t, "carol").str("auth_session")
	r := d.reach(t, session)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	rs.Stop()
	for _, got := range []reply{d.reach(t, session), d.poll(t, r.header.Get("Location"))} {
		requireOAuthError(t, got, http.StatusServiceUnavailable, "temporarily_unavailable")
		require.Equal(t, "1", got.header.Get("Retry-After"))
	}
}

// TestReachNative_TooLarge: the form parser's bound holds on POST.
func TestReachNative_TooLarge(t *testing.T) {
	env := newReachEnv(t, nil, reachEnvOptions{edit: nativeReachConfig, one: true})
	big := strings.Repeat("a", int(env.a.Config.Limits.MaxBodyBytes)+1)
	requireOAuthError(t, postBody(t, env.a.URL+"/native/reach", "application/x-www-form-urlencoded", "x="+big), http.StatusRequestEntityTooLarge, "invalid_request")
}

// TestReachNative_UnavailableTask: a task no channel could deliver polls
// as 424 interaction_unavailable (docs/reach.md table).
func TestReachNative_UnavailableTask(t *testing.T) {
	env := newReachEnv(t, nil, reachEnvOptions{edit: nativeReachConfig, one: true})
	st := env.store.(storage.ReachStore)
	ctx := context.Background()
	b, err := reach.NewBinding()
	require.NoError(t, err)
	task := reach.Task{ID: reach.NewID(), Kind: reach.KindAppAuth, User: "carol", ClientID: "demo-app", State: reach.StateCreated, Ref: reach.NewID(), Binding: b,
		ExpiresAt: time.Now().Add(time.Minute), Result: []byte(`{"d":{"client_id":"demo-app","client_name":"Demo"},"f":{"s":"` + reach.NewID() + `"}}`)}
	require.NoError(t, st.CreateTask(ctx, task))
	_, err = st.TransitionTask(ctx, task.ID, []reach.State{reach.StateCreated}, reach.StateUnavailable, nil)
	require.NoError(t, err)
	requireOAuthError(t, get(t, env.a.URL+"/native/reach/"+task.ID), http.StatusFailedDependency, "interaction_unavailable")
}

// TestReachNative_LongPoll (RN24): Prefer: wait holds the poll on
// instance a until the answer arrives through instance b (Redis pub/sub,
// or the deployment's shared in-process hub on memory; the test's ticks
// drive the periodic re-check as well).
func TestReachNative_LongPoll(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			clock := &servertest.Clock{}
			tick := make(chan time.Time)
			env := newReachEnv(t, b.store(t), reachEnvOptions{clock: clock, edit: nativeReachConfig, reach: server.ReachOptions{Recheck: tick}})
			carol := newReachPhone(t, env.b, clock, "carol", true)
			d := newReachDevice(t, env.a, clock, "demo-app")
			r := d.reach(t, d.start(t, "carol").str("auth_session"))
			loc := r.header.Get("Location")
			id := taskID(t, loc)
			carol.ack(t, id)
			done := make(chan reply, 1)
			go func() {
				done <- d.send(t, d.key, http.MethodGet, loc, nil, http.Header{"Prefer": {"wait=20"}})
			}()
			carol.answer(t, id, "approve", 0)
			var got reply
			for waiting := true; waiting; {
				select {
				case got = <-done:
					waiting = false
				case tick <- time.Now():
				}
			}
			require.Equal(t, http.StatusOK, got.status, got.raw)
			require.Equal(t, "completed", got.str("status"))
			requireCode(t, d, got.str("auth_session"), "carol")
		})
	}
}
