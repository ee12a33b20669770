package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/reach/wake"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage/memory"
)

// TestReachApp_TaskExpiry: past its lifetime (the deployment's clock
// advanced, no sleep) a task is shown as expired, an ack or answer is
// 409 invalid_state, and the expiry is recorded (EXPIRED) so that every
// poller sees it (SECURITY-RESULTS.md RA13).
func TestReachApp_TaskExpiry(t *testing.T) {
	clock := &servertest.Clock{}
	st := memory.NewWithClock(clock.Now)
	t.Cleanup(func() { _ = st.Close() })
	hub := wake.NewMemory(wake.Options{})
	t.Cleanup(func() { _ = hub.Close() })
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	in := servertest.Start(t, servertest.Options{Store: st, Clock: clock, SigningKey: key, Reach: server.ReachOptions{Hub: hub},
		Configure: func(c *config.Config) { reachConfig(c) }})
	env := &appEnv{reachEnv: &reachEnv{a: in, store: st, key: key}, rs: st, hub: hub}
	phone := signInApp(t, in, "carol", "carol-pw", "")
	phone.register(t, "", http.StatusCreated)
	tk := env.task(t, "carol", reach.KindQuestion, nil)
	// Delivered (the device is on the task), then its lifetime passes.
	dev, err := st.DeviceByJKT(context.Background(), phone.key.JKT)
	require.NoError(t, err)
	_, err = st.TransitionTask(context.Background(), tk.ID, []reach.State{reach.StateCreated}, reach.StateDelivered, func(n *reach.Task) error {
		n.Devices = []string{dev.ID}
		return nil
	})
	require.NoError(t, err)
	clock.Advance(2*time.Minute + 30*time.Second) // past the lifetime, within the grace
	do := func(method, path, body string) (int, map[string]any) {
		st, _, b := phone.sendAt(t, in, method, path, body, clock.Now())
		return st, jsonOf(t, b)
	}
	code, v := do(http.MethodGet, "/reach/tasks/"+tk.ID, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "expired", v["status"])
	require.Nil(t, v["binding_choices"])
	code, v = do(http.MethodPost, "/reach/tasks/"+tk.ID+"/ack", "")
	require.Equal(t, http.StatusConflict, code, "%v", v)
	require.Equal(t, "invalid_state", v["error"])
	require.Equal(t, reach.StateExpired, env.stored(t, tk.ID).State, "recorded")
	code, _ = do(http.MethodPost, "/reach/tasks/"+tk.ID+"/response", `{"decision":"deny"}`)
	require.Equal(t, http.StatusConflict, code)
}

// sendAt is doAt with a proof dated now (the deployment's clock).
func (a *reachApp) sendAt(tb testing.TB, in *servertest.Instance, method, path, body string, now time.Time) (int, http.Header, []byte) {
	tb.Helper()
	proof, err := a.key.ProofAt(method, in.URL+path, a.token.AccessToken, now)
	require.NoError(tb, err)
	return rawAppRequest(tb, in, method, path, body, "DPoP "+a.token.AccessToken, proof)
}
