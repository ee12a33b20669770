package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage/redistest"
)

// rawAppRequest sends one request with the Authorization and DPoP
// header values given ("" = none).
func rawAppRequest(tb testing.TB, in *servertest.Instance, method, path, body, authz, proof string) (int, http.Header, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, in.URL+path, strings.NewReader(body))
	require.NoError(tb, err)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := in.HTTPClient().Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return resp.StatusCode, resp.Header, b
}

// TestReachApp_DPoPEveryEndpoint is the proof-of-possession table over
// every app endpoint (SECURITY-RESULTS.md RA15): no proof, a proof of
// another key, a replayed proof, the Bearer scheme with the DPoP-bound
// token, a proof for another token (ath), another method or URL (htm,
// htu) — each 401 invalid_token with a DPoP challenge; a token of
// another user's device on an endpoint naming a task or device — 404.
// Afterwards nothing changed: the task is still SEEN with no attempt, the
// device keeps its name, the ref still works.
func TestReachApp_DPoPEveryEndpoint(t *testing.T) {
	env := newAppEnv(t, nil, reachEnvOptions{one: true})
	phone, phoneID := appOn(t, env, "carol", "carol-pw")
	stranger, _ := appOn(t, env, "alice", "wonderland")
	tk := env.task(t, "carol", reach.KindAppAuth, nil)
	env.deliver(t, &tk)
	st, _, _ := phone.do(t, http.MethodPost, "/reach/tasks/"+tk.ID+"/ack", "")
	require.Equal(t, http.StatusOK, st)
	scanned := env.task(t, "carol", reach.KindQuestion, nil)
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	otherKey, err := dpop.NewKey(k, jose.ES256)
	require.NoError(t, err)

	type endpoint struct {
		method, path, body string
		// refused is a body the endpoint refuses after the proof check
		// (so that a first use of a proof changes nothing).
		refused string
		// named: the path names a task or device of carol's.
		named bool
	}
	pick := fmt.Sprintf(`{"decision":"approve","binding_choice":%d,"amr":["pin"]}`, tk.Binding.Right)
	endpoints := []endpoint{
		{http.MethodPost, "/reach/devices", phoneBody, `{"x":1}`, false},
		{http.MethodGet, "/reach/devices", "", "", false},
		{http.MethodPatch, "/reach/devices/" + phoneID, `{"name":"Renamed"}`, `{"x":1}`, true},
		{http.MethodDelete, "/reach/devices/" + phoneID, "", "", true},
		{http.MethodGet, "/reach/inbox", "", "", false},
		{http.MethodGet, "/reach/inbox/events", "", "", false},
		{http.MethodGet, "/reach/tasks/" + tk.ID, "", "", true},
		{http.MethodPost, "/reach/tasks/" + tk.ID + "/ack", "", "", true},
		{http.MethodPost, "/reach/tasks/" + tk.ID + "/response", pick, `{"x":1}`, true},
		{http.MethodPost, "/reach/scan", `{"ref":"` + scanned.Ref + `"}`, `{"x":1}`, false},
	}
	tok := phone.token.AccessToken
	for _, ep := range endpoints {
		htu := env.a.URL + ep.path
		proof := func(key *dpop.Key, method, u, token string) string {
			p, err := key.Proof(method, u, token)
			require.NoError(t, err)
			return p
		}
		cases := []struct {
			name, authz, proof string
		}{
			{"no proof", "DPoP " + tok, ""},
			{"no token", "", proof(phone.key, ep.method, htu, tok)},
			{"other key", "DPoP " + tok, proof(otherKey, ep.method, htu, tok)},
			{"bearer scheme", "Bearer " + tok, proof(phone.key, ep.method, htu, tok)},
			{"ath of another token", "DPoP " + tok, proof(phone.key, ep.method, htu, stranger.token.AccessToken)},
			{"no ath", "DPoP " + tok, proof(phone.key, ep.method, htu, "")},
			{"other method", "DPoP " + tok, proof(phone.key, http.MethodPut, htu, tok)},
			{"other url", "DPoP " + tok, proof(phone.key, ep.method, env.a.URL+"/reach/other", tok)},
			{"another user's token with this key's proof", "DPoP " + stranger.token.AccessToken, proof(phone.key, ep.method, htu, stranger.token.AccessToken)},
		}
		for _, c := range cases {
			st, h, body := rawAppRequest(t, env.a, ep.method, ep.path, ep.body, c.authz, c.proof)
			require.Equal(t, http.StatusUnauthorized, st, "%s %s, %s: %s", ep.method, ep.path, c.name, body)
			require.Equal(t, "invalid_token", jsonOf(t, body)["error"])
			require.Contains(t, strings.Join(h.Values("WWW-Authenticate"), ","), "DPoP realm", "%s %s, %s", ep.method, ep.path, c.name)
		}
		// Replay: a proof used once (on a request refused after the
		// proof check, or one that changes nothing) is refused again.
		if ep.path != "/reach/inbox/events" {
			path, first := ep.path, ep.refused
			if ep.method == http.MethodDelete {
				path = "/reach/devices/" + reach.NewID() // not this device's: 404, nothing deleted
			}
			p := proof(phone.key, ep.method, env.a.URL+path, tok)
			st, _, body := rawAppRequest(t, env.a, ep.method, path, first, "DPoP "+tok, p)
			require.NotEqual(t, http.StatusUnauthorized, st, "%s %s: first use: %s", ep.method, path, body)
			st, _, body = rawAppRequest(t, env.a, ep.method, path, ep.body, "DPoP "+tok, p)
			require.Equal(t, http.StatusUnauthorized, st, "%s %s, replay: %s", ep.method, path, body)
		}
		// Another user's own token and device on carol's task or device.
		if ep.named {
			st, _, body := stranger.do(t, ep.method, ep.path, ep.body)
			require.Equal(t, http.StatusNotFound, st, "%s %s by another user: %s", ep.method, ep.path, body)
		}
	}
	got := env.stored(t, tk.ID)
	require.Equal(t, reach.StateSeen, got.State)
	require.Zero(t, got.Attempts)
	d, err := env.rs.Device(context.Background(), phoneID)
	require.NoError(t, err)
	require.Equal(t, "Alice's phone", d.Name)
	st, _, body := phone.do(t, http.MethodPost, "/reach/scan", `{"ref":"`+scanned.Ref+`"}`)
	require.Equal(t, http.StatusOK, st, "the ref is still unused: %s", body)
}

// TestReachApp_StorageOutage: with Redis down every app endpoint answers
// 503 temporarily_unavailable with Retry-After, never 500
// (SECURITY-RESULTS.md RA16).
func TestReachApp_StorageOutage(t *testing.T) {
	rs := redistest.Start(t)
	env := newAppEnv(t, redisStore(t, rs.URL()), reachEnvOptions{one: true})
	phone, phoneID := appOn(t, env, "carol", "carol-pw")
	tk := env.task(t, "carol", reach.KindQuestion, nil)
	rs.Stop()
	for _, ep := range []struct{ method, path, body string }{
		{http.MethodPost, "/reach/devices", phoneBody},
		{http.MethodGet, "/reach/devices", ""},
		{http.MethodPatch, "/reach/devices/" + phoneID, `{"name":"x"}`},
		{http.MethodDelete, "/reach/devices/" + phoneID, ""},
		{http.MethodGet, "/reach/inbox?wait=5", ""},
		{http.MethodGet, "/reach/inbox/events", ""},
		{http.MethodGet, "/reach/tasks/" + tk.ID, ""},
		{http.MethodPost, "/reach/tasks/" + tk.ID + "/ack", ""},
		{http.MethodPost, "/reach/tasks/" + tk.ID + "/response", `{"decision":"deny"}`},
		{http.MethodPost, "/reach/scan", `{"ref":"` + tk.Ref + `"}`},
	} {
		st, h, body := phone.do(t, ep.method, ep.path, ep.body)
		require.Equal(t, http.StatusServiceUnavailable, st, "%s %s: %s", ep.method, ep.path, body)
		require.Equal(t, "temporarily_unavailable", jsonOf(t, body)["error"])
		require.NotEmpty(t, h.Get("Retry-After"))
		require.Equal(t, "no-store", h.Get("Cache-Control"))
	}
}

// appEndpoints are every app endpoint with a body that passes the
// shape checks, naming ids (random when not given).
func appEndpoints(task, device string) []struct{ method, path, body string } {
	if task == "" {
		task = reach.NewID()
	}
	if device == "" {
		device = reach.NewID()
	}
	return []struct{ method, path, body string }{
		{http.MethodPost, "/reach/devices", phoneBody},
		{http.MethodGet, "/reach/devices", ""},
		{http.MethodPatch, "/reach/devices/" + device, `{"name":"x"}`},
		{http.MethodDelete, "/reach/devices/" + device, ""},
		{http.MethodGet, "/reach/inbox", ""},
		{http.MethodGet, "/reach/inbox/events", ""},
		{http.MethodGet, "/reach/tasks/" + task, ""},
		{http.MethodPost, "/reach/tasks/" + task + "/ack", ""},
		{http.MethodPost, "/reach/tasks/" + task + "/response", `{"decision":"deny"}`},
		{http.MethodPost, "/reach/scan", `{"ref":"` + reach.NewID() + `"}`},
	}
}

// TestReachApp_RateLimited: every app endpoint is behind the reach_app
// rate limit: over it, 429 slow_down with Retry-After, before the token
// is even looked at (SECURITY-RESULTS.md RA17).
func TestReachApp_RateLimited(t *testing.T) {
	env := newAppEnv(t, nil, reachEnvOptions{one: true, edit: tinyLimit(config.RateReachApp, config.ScopeIP, 1, time.Hour)})
	phone := signInApp(t, env.a, "carol", "carol-pw", "")
	phone.register(t, "", http.StatusCreated)
	for _, ep := range appEndpoints("", "") {
		st, h, body := phone.do(t, ep.method, ep.path, ep.body)
		require.Equal(t, http.StatusTooManyRequests, st, "%s %s: %s", ep.method, ep.path, body)
		require.Equal(t, "slow_down", jsonOf(t, body)["error"])
		require.NotEmpty(t, h.Get("Retry-After"))
	}
}
