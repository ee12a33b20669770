package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/server/servertest"
	"github.com/stretchr/testify/require"
)

// TestReachHolds_OutliveRequestDeadline (SECURITY-RESULTS.md RH01): every
// reach long poll — the cross-device poll and the relay's (Prefer: wait,
// RFC 7240 §4.3) and the UQ poll (Client-Timeout) — holds for what was
// asked even when that is longer than the request deadline that bounds
// every other request (shortened here to 1.5 s): a held poll ends pending
// (202, 304) with the wait applied, never a 503 from the deadline or a
// hold silently cut to the deadline.
func TestReachHolds_OutliveRequestDeadline(t *testing.T) {
	const deadline = 1500 * time.Millisecond
	t.Run("native", func(t *testing.T) {
		t.Parallel()
		clock := &servertest.Clock{}
		env := newReachEnv(t, nil, reachEnvOptions{clock: clock, edit: nativeReachConfig, deadline: deadline})
		newReachPhone(t, env.b, clock, "carol", true)
		d := newReachDevice(t, env.a, clock, "demo-app")
		r := d.reach(t, d.start(t, "carol").str("auth_session"))
		require.Equal(t, http.StatusAccepted, r.status, r.raw)
		r = d.send(t, d.key, http.MethodGet, r.header.Get("Location"), nil, http.Header{"Prefer": {"wait=2"}})
		require.Equal(t, http.StatusAccepted, r.status, r.raw)
		require.Equal(t, "pending", r.str("status"))
	})
	t.Run("relay", func(t *testing.T) {
		t.Parallel()
		clock := &servertest.Clock{}
		env := newReachEnv(t, nil, reachEnvOptions{clock: clock, edit: relayConfig, deadline: deadline})
		relayDevice(t, env, clock, "carol", true, reach.KindInteraction)
		cl := signInRelay(t, env.a, clock, "carol", "carol-pw", "")
		r := cl.call(t, env.a, http.MethodPost, relayPath, relayBody(nil))
		require.Equal(t, http.StatusAccepted, r.status, r.raw)
		r = cl.call(t, env.a, http.MethodGet, relayPath+"/"+taskIDOf(t, env.a, r), "", "Prefer", "wait=2")
		require.Equal(t, http.StatusAccepted, r.status, r.raw)
		require.Equal(t, "wait=2", r.header.Get("Preference-Applied"), "the hold is the one asked for, not the request deadline's")
	})
	t.Run("uq", func(t *testing.T) {
		t.Parallel()
		env := newUQEnv(t, nil, uqEnvOptions{deadline: deadline})
		tok := ccToken(t, env.a, "uq-backend", uqBackendSecret, "question")
		qid := mustAsk(t, env.a, tok, question("email", uqCarolEmail))
		st, _, m := poll(t, env.a, tok, qid, nil)
		require.Equal(t, http.StatusNotModified, st, "%v", m)
		env.clock.Advance(2 * time.Second)
		st, _, m = poll(t, env.a, tok, qid, map[string]string{"Client-Timeout": "3"})
		require.Equal(t, http.StatusNotModified, st, "%v", m)
	})
}
