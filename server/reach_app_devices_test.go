package server_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/server/servertest"
)

// TestReachApp_Register covers POST /reach/devices on both backends
// (SECURITY-RESULTS.md RA01–RA03): 201 then 200 for the same key (one
// device), the key under another user 409, GET lists without secrets,
// PATCH only by the device itself, DELETE by the device (204) and the
// metadata members.
func TestReachApp_Register(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := newAppEnv(t, b.store(t), reachEnvOptions{})
			phone := signInApp(t, env.a, "carol", "carol-pw", "")
			first := phone.register(t, "", http.StatusCreated)
			require.Equal(t, env.a.URL+"/reach/inbox", first.InboxURI)
			require.Equal(t, env.a.URL+"/reach/inbox/events", first.EventsURI)
			// Idempotent by key, on the other instance too.
			st, _, body := phone.doAt(t, env.b, http.MethodPost, "/reach/devices", phoneBody)
			require.Equal(t, http.StatusOK, st, "%s", body)
			require.Equal(t, first.DeviceID, jsonOf(t, body)["device_id"])
			devs, err := env.rs.UserDevices(context.Background(), "carol")
			require.NoError(t, err)
			require.Len(t, devs, 1)
			require.Equal(t, "carol", devs[0].User)
			require.Equal(t, phone.key.JKT, devs[0].JKT)

			// The same key signed in as another user: conflict, nothing changed.
			other := signInAppWithKey(t, env.a, phone, "alice", "wonderland")
			st, _, body = other.do(t, http.MethodPost, "/reach/devices", phoneBody)
			require.Equal(t, http.StatusConflict, st, "%s", body)
			require.Equal(t, "conflict", jsonOf(t, body)["error"])
			d, err := env.rs.Device(context.Background(), first.DeviceID)
			require.NoError(t, err)
			require.Equal(t, "carol", d.User)

			// A second device with a webhook: listed without its URL.
			tablet := signInApp(t, env.a, "carol", "carol-pw", "")
			tb := tablet.register(t, `{"name":"Tablet","platform":"android","capabilities":["question"],"channels":[{"type":"webhook","url":"https://hooks.example.com/wake"},{"type":"fcm","token":"fcm-secret-token"}]}`, http.StatusCreated)
			st, _, body = phone.do(t, http.MethodGet, "/reach/devices", "")
			require.Equal(t, http.StatusOK, st)
			require.NotContains(t, string(body), "hooks.example.com")
			require.NotContains(t, string(body), "fcm-secret-token")
			list := jsonOf(t, body)["devices"].([]any)
			require.Len(t, list, 2)
			require.Equal(t, true, list[0].(map[string]any)["current"])
			require.Equal(t, false, list[1].(map[string]any)["current"])

			// PATCH: only the device itself.
			st, _, body = phone.do(t, http.MethodPatch, "/reach/devices/"+tb.DeviceID, `{"name":"Stolen"}`)
			require.Equal(t, http.StatusNotFound, st, "%s", body)
			st, _, body = tablet.do(t, http.MethodPatch, "/reach/devices/"+tb.DeviceID, `{"name":"Kitchen tablet","channels":[{"type":"fcm","token":"rotated-token"}]}`)
			require.Equal(t, http.StatusOK, st, "%s", body)
			require.Equal(t, "Kitchen tablet", jsonOf(t, body)["name"])
			d, err = env.rs.Device(context.Background(), tb.DeviceID)
			require.NoError(t, err)
			require.Equal(t, []reach.ChannelSpec{{Type: reach.ChannelFCM, Token: "rotated-token"}}, d.Channels)

			// DELETE: another user's token never; the device itself: 204.
			st, _, _ = other.do(t, http.MethodDelete, "/reach/devices/"+tb.DeviceID, "")
			require.Equal(t, http.StatusNotFound, st)
			st, h, body := tablet.do(t, http.MethodDelete, "/reach/devices/"+tb.DeviceID, "")
			require.Equal(t, http.StatusNoContent, st, "%s", body)
			require.Equal(t, "no-store", h.Get("Cache-Control"))
			_, err = env.rs.Device(context.Background(), tb.DeviceID)
			require.ErrorIs(t, err, reach.ErrNotFound)
			// Only the device itself deletes it: not another device of
			// the user, not its key signed in to another account.
			st, _, _ = tablet.do(t, http.MethodDelete, "/reach/devices/"+first.DeviceID, "")
			require.Equal(t, http.StatusNotFound, st)
			st, _, _ = other.do(t, http.MethodDelete, "/reach/devices/"+first.DeviceID, "")
			require.Equal(t, http.StatusNotFound, st)
			// Signed out (deleted), the key registers for the other account.
			st, _, _ = phone.do(t, http.MethodDelete, "/reach/devices/"+first.DeviceID, "")
			require.Equal(t, http.StatusNoContent, st)
			other.register(t, "", http.StatusCreated)

			// Metadata.
			meta := jsonOf(t, fetch(t, env.a.URL+"/.well-known/oauth-authorization-server"))
			require.Equal(t, env.a.URL+"/reach/devices", meta["reach_devices_endpoint"])
			require.Equal(t, env.a.URL+"/reach/inbox", meta["reach_inbox_endpoint"])
			require.Equal(t, env.a.URL+"/reach/inbox/events", meta["reach_inbox_events_endpoint"])
			require.Equal(t, env.a.URL+"/reach/scan", meta["reach_scan_endpoint"])
		})
	}
}

// signInAppWithKey signs user in to bank-app with the DPoP key of app (the
// same device, another account).
func signInAppWithKey(tb testing.TB, in *servertest.Instance, app *reachApp, user, password string) *reachApp {
	tb.Helper()
	cl := in.Client(tb, "bank-app")
	cl.DPoP = app.key
	ctx := context.Background()
	code, pk, err := cl.Authorize(ctx, url.Values{"scope": {"openid " + config.ScopeReachDevice}}, userUI(user, password, ""))
	require.NoError(tb, err)
	tok, err := cl.Exchange(ctx, code, pk)
	require.NoError(tb, err)
	return &reachApp{in: in, key: app.key, token: tok, user: user}
}

// fetch GETs u and returns the body of a 200.
func fetch(tb testing.TB, u string) []byte {
	tb.Helper()
	resp, err := servertest.HTTP().Get(u)
	require.NoError(tb, err)
	defer resp.Body.Close()
	require.Equal(tb, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return b
}

// TestReachApp_RegisterRefusals: every malformed or refused registration
// is a 400 (403, 413) that stores nothing (SECURITY-RESULTS.md RA02,
// RA04): strict JSON (unknown, miscased or repeated members, trailing
// data, wrong types), the device rules of reach.Device.Validate, and the
// webhook URL's SSRF rules (https to a public host; never loopback, even
// with dev.allow_loopback_http, which these tests run with).
func TestReachApp_RegisterRefusals(t *testing.T) {
	env := newAppEnv(t, nil, reachEnvOptions{one: true})
	app := signInApp(t, env.a, "carol", "carol-pw", "")
	ch := func(c string) string {
		return `{"name":"P","platform":"ios","capabilities":["app_auth"],"channels":[` + c + `]}`
	}
	for _, c := range []struct{ name, body string }{
		{"unknown member", `{"name":"P","platform":"ios","capabilities":["app_auth"],"channels":[{"type":"inbox"}],"user":"alice"}`},
		{"miscased member", `{"NAME":"P","platform":"ios","capabilities":["app_auth"],"channels":[{"type":"inbox"}]}`},
		{"repeated member", `{"name":"P","name":"Q","platform":"ios","capabilities":["app_auth"],"channels":[{"type":"inbox"}]}`},
		{"unknown channel member", ch(`{"type":"inbox","user":"x"}`)},
		{"trailing data", phoneBody + `{}`},
		{"not an object", `[1]`},
		{"wrong type", `{"name":1,"platform":"ios","capabilities":["app_auth"],"channels":[{"type":"inbox"}]}`},
		{"no channel", ch(``)},
		{"unknown capability", `{"name":"P","platform":"ios","capabilities":["root"],"channels":[{"type":"inbox"}]}`},
		{"bidi name", `{"name":"P\u202e","platform":"ios","capabilities":["app_auth"],"channels":[{"type":"inbox"}]}`},
		{"unknown channel", ch(`{"type":"sms"}`)},
		{"webhook loopback (even with dev.allow_loopback_http)", ch(`{"type":"webhook","url":"http://127.0.0.1:9/wake"}`)},
		{"webhook loopback https", ch(`{"type":"webhook","url":"https://127.0.0.1/wake"}`)},
		{"webhook localhost", ch(`{"type":"webhook","url":"https://localhost/wake"}`)},
		{"webhook http", ch(`{"type":"webhook","url":"http://hooks.example.com/w"}`)},
		{"webhook private", ch(`{"type":"webhook","url":"https://10.0.0.7/w"}`)},
		{"webhook metadata", ch(`{"type":"webhook","url":"https://169.254.169.254/latest"}`)},
		{"webhook metadata name", ch(`{"type":"webhook","url":"https://metadata.google.internal/x"}`)},
		{"webhook numeric host", ch(`{"type":"webhook","url":"https://2130706433/w"}`)},
		{"webhook userinfo", ch(`{"type":"webhook","url":"https://u:p@hooks.example.com/w"}`)},
		{"webhook fragment", ch(`{"type":"webhook","url":"https://hooks.example.com/w#x"}`)},
		{"webhook ipv6 unique local", ch(`{"type":"webhook","url":"https://[fd00::1]/w"}`)},
		{"webhook too long", ch(`{"type":"webhook","url":"https://hooks.example.com/` + strings.Repeat("a", 600) + `"}`)},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, h, body := app.do(t, http.MethodPost, "/reach/devices", c.body)
			require.Equal(t, http.StatusBadRequest, st, "%s", body)
			require.Equal(t, "invalid_request", jsonOf(t, body)["error"])
			require.Equal(t, "no-store", h.Get("Cache-Control"))
		})
	}
	// Not JSON, too large.
	st, _, _ := app.doType(t, http.MethodPost, "/reach/devices", "text/plain", phoneBody)
	require.Equal(t, http.StatusBadRequest, st)
	st, _, _ = app.do(t, http.MethodPost, "/reach/devices", `{"name":"`+strings.Repeat("a", 17<<10)+`"}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, st)
	devs, err := env.rs.UserDevices(context.Background(), "carol")
	require.NoError(t, err)
	require.Empty(t, devs, "nothing refused was stored")
	app.register(t, ch(`{"type":"webhook","url":"https://hooks.example.com/wake"}`), http.StatusCreated)
}

// TestReachApp_DeviceQuota: a user registers at most 10 devices; the
// eleventh is 403 access_denied and stores nothing; re-registering one
// of the ten still works (SECURITY-RESULTS.md RA03).
func TestReachApp_DeviceQuota(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := newAppEnv(t, b.store(t), reachEnvOptions{one: true})
			var first *reachApp
			for i := 0; i < reach.MaxDevicesPerUser; i++ {
				a := signInApp(t, env.a, "carol", "carol-pw", "")
				a.register(t, "", http.StatusCreated)
				if first == nil {
					first = a
				}
			}
			extra := signInApp(t, env.a, "carol", "carol-pw", "")
			st, _, body := extra.do(t, http.MethodPost, "/reach/devices", phoneBody)
			require.Equal(t, http.StatusForbidden, st, "%s", body)
			require.Equal(t, "access_denied", jsonOf(t, body)["error"])
			devs, err := env.rs.UserDevices(context.Background(), "carol")
			require.NoError(t, err)
			require.Len(t, devs, reach.MaxDevicesPerUser)
			first.register(t, "", http.StatusOK)
		})
	}
}

// TestReachApp_OnlyOurAppsTokens: a token of a client that is not one
// of our apps (even with the reach:device scope) and a token without the
// scope are 403 insufficient_scope with a DPoP challenge
// (SECURITY-RESULTS.md RA05).
func TestReachApp_OnlyOurAppsTokens(t *testing.T) {
	env := newAppEnv(t, nil, reachEnvOptions{one: true, edit: func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "not-app", FirstParty: true, TokenEndpointAuthMethod: "none",
			Scopes: []string{"openid", config.ScopeReachDevice}, GrantTypes: []string{"authorization_code"}})
	}})
	notApp := signInClient(t, env.a, "not-app", "carol", "carol-pw", "openid "+config.ScopeReachDevice)
	noScope := signInApp(t, env.a, "carol", "carol-pw", "openid")
	for _, a := range []*reachApp{notApp, noScope} {
		for _, ep := range appEndpoints("", "") {
			st, h, body := a.do(t, ep.method, ep.path, ep.body)
			require.Equal(t, http.StatusForbidden, st, "%s %s: %s", ep.method, ep.path, body)
			require.Equal(t, "insufficient_scope", jsonOf(t, body)["error"])
			require.Contains(t, h.Get("WWW-Authenticate"), `error="insufficient_scope"`)
		}
	}
}

// signInClient is signInApp for another client.
func signInClient(tb testing.TB, in *servertest.Instance, client, user, password, scope string) *reachApp {
	tb.Helper()
	a := signInApp(tb, in, user, password, "openid")
	cl := in.Client(tb, client)
	cl.DPoP = a.key
	ctx := context.Background()
	code, pk, err := cl.Authorize(ctx, url.Values{"scope": {scope}}, userUI(user, password, ""))
	require.NoError(tb, err)
	tok, err := cl.Exchange(ctx, code, pk)
	require.NoError(tb, err)
	return &reachApp{in: in, key: a.key, token: tok, user: user}
}

// doType is do with a content type of the caller's choice.
func (a *reachApp) doType(tb testing.TB, method, path, ctype, body string) (int, http.Header, []byte) {
	tb.Helper()
	return a.send(tb, a.in, method, path, body, func(r *http.Request) { r.Header.Set("Content-Type", ctype) })
}

// send is doAt with a request edit (headers) before it is sent.
func (a *reachApp) send(tb testing.TB, in *servertest.Instance, method, path, body string, edit func(*http.Request)) (int, http.Header, []byte) {
	tb.Helper()
	u := in.URL + path
	htu, _, _ := strings.Cut(u, "?")
	proof, err := a.key.Proof(method, htu, a.token.AccessToken)
	require.NoError(tb, err)
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(tb, err)
	req.Header.Set("Authorization", "DPoP "+a.token.AccessToken)
	req.Header.Set("DPoP", proof)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if edit != nil {
		edit(req)
	}
	resp, err := in.HTTPClient().Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return resp.StatusCode, resp.Header, b
}
