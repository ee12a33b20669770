package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/server/servertest"
)

// twoAppsConfig is the cross-device deployment with a second app of
// ours, "wallet" (client wallet-app), that serves other clients than
// demo-app.
func twoAppsConfig(c *config.Config) {
	nativeReachConfig(c)
	c.Clients = append(c.Clients, config.Client{ID: "wallet-app", Name: "Wallet app", FirstParty: true, TokenEndpointAuthMethod: "none",
		Scopes: []string{"openid", config.ScopeReachDevice}, GrantTypes: []string{"authorization_code", "refresh_token"}})
	c.Apps = append(c.Apps, config.App{ID: "wallet", ClientID: "wallet-app", DeepLink: "https://wallet.example/app", Clients: []string{"c2"}})
}

// TestRedteam_OtherAppCannotApprove (RR08): a cross-device sign-in for
// demo-app goes to bank (the app its redirect_to_app named). Carol's
// other app of ours, wallet, registered with the same user, cannot open
// it (view, ack, response: 404 as an unknown task) and cannot scan its
// QR code; the sign-in completes only through bank — as the same-device
// app completion refuses another app (flow "wrong_app").
func TestRedteam_OtherAppCannotApprove(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			clock := &servertest.Clock{}
			env := newReachEnv(t, b.store(t), reachEnvOptions{clock: clock, edit: twoAppsConfig})
			bank := signInApp(t, env.b, "carol", "carol-pw", "")
			bank.register(t, "", http.StatusCreated)
			wallet := signInAppAs(t, env.b, "wallet-app", "carol", "carol-pw")
			wallet.register(t, "", http.StatusCreated)
			for _, a := range []*reachApp{bank, wallet} {
				st, _, body := a.do(t, http.MethodGet, "/reach/inbox?wait=0", "")
				require.Equal(t, http.StatusOK, st, "%s", body)
			}

			d := newReachDevice(t, env.a, clock, "demo-app")
			first := d.start(t, "carol")
			r := d.reach(t, first.str("auth_session"))
			require.Equal(t, http.StatusAccepted, r.status, r.raw)
			loc := r.header.Get("Location")
			id := taskID(t, loc)
			approve := fmt.Sprintf(`{"decision":"approve","binding_choice":%s,"amr":["pin"]}`, r.str("binding_code"))
			for _, c := range []struct{ method, path, body string }{
				{http.MethodGet, "/reach/tasks/" + id, ""},
				{http.MethodPost, "/reach/tasks/" + id + "/ack", ""},
				{http.MethodPost, "/reach/tasks/" + id + "/response", approve},
			} {
				st, h, body := wallet.do(t, c.method, c.path, c.body)
				m := requireErrorShape(t, "wallet "+c.path, st, h, body)
				require.Equal(t, http.StatusNotFound, st, "%s: %s", c.path, body)
				require.Equal(t, "not_found", m["error"])
			}
			d.next()
			p := d.poll(t, loc)
			require.Equal(t, http.StatusAccepted, p.status, "nothing completed: %s", p.raw)
			require.Equal(t, "pending", p.str("status"), "the wallet's ack did not open it")

			st, _, body := bank.do(t, http.MethodPost, "/reach/tasks/"+id+"/ack", "")
			require.Equal(t, http.StatusOK, st, "%s", body)
			st, _, body = bank.do(t, http.MethodPost, "/reach/tasks/"+id+"/response", approve)
			require.Equal(t, http.StatusOK, st, "%s", body)
			d.next()
			p = d.poll(t, loc)
			require.Equal(t, http.StatusOK, p.status, p.raw)
			requireCode(t, d, p.str("auth_session"), "carol")

			// The QR task (no channel): the wallet scanning its ref sees
			// nothing and cannot approve.
			st, _, body = bank.do(t, http.MethodDelete, "/reach/devices/"+deviceOf(t, bank), "")
			require.Equal(t, http.StatusNoContent, st, "%s", body)
			d2 := newReachDevice(t, env.a, clock, "demo-app")
			first = d2.start(t, "carol")
			wallet.deregister(t)
			r = d2.reach(t, first.str("auth_session"))
			require.Equal(t, http.StatusFailedDependency, r.status, r.raw)
			ref := refOf(t, r.str("deep_link"))
			wallet.register(t, "", http.StatusCreated)
			st, h, body := wallet.do(t, http.MethodPost, "/reach/scan", `{"ref":"`+ref+`"}`)
			m := requireErrorShape(t, "wallet scan", st, h, body)
			require.Equal(t, http.StatusNotFound, st, "%s", body)
			require.Equal(t, "not_found", m["error"])
			d2.next()
			p = d2.poll(t, r.header.Get("Location"))
			require.Equal(t, http.StatusAccepted, p.status, p.raw)
			require.Equal(t, "pending", p.str("status"))
		})
	}
}

// signInAppAs is signInApp for another app client of ours.
func signInAppAs(tb testing.TB, in *servertest.Instance, client, user, password string) *reachApp {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	dk, err := dpop.NewKey(k, jose.ES256)
	require.NoError(tb, err)
	cl := in.Client(tb, client)
	cl.DPoP = dk
	code, pk, err := cl.Authorize(context.Background(), url.Values{"scope": {"openid " + config.ScopeReachDevice}}, userUI(user, password, ""))
	require.NoError(tb, err)
	tok, err := cl.Exchange(context.Background(), code, pk)
	require.NoError(tb, err)
	return &reachApp{in: in, key: dk, token: tok, user: user}
}

// deviceOf is the id of a's own device (GET /reach/devices, current).
func deviceOf(tb testing.TB, a *reachApp) string {
	tb.Helper()
	st, _, body := a.do(tb, http.MethodGet, "/reach/devices", "")
	require.Equal(tb, http.StatusOK, st, "%s", body)
	var l struct {
		Devices []struct {
			DeviceID string `json:"device_id"`
			Current  bool   `json:"current"`
		} `json:"devices"`
	}
	require.NoError(tb, json.Unmarshal(body, &l))
	for _, d := range l.Devices {
		if d.Current {
			return d.DeviceID
		}
	}
	tb.Fatal("no current device")
	return ""
}

// deregister deletes a's own device (sign-out).
func (a *reachApp) deregister(tb testing.TB) {
	tb.Helper()
	st, _, body := a.do(tb, http.MethodDelete, "/reach/devices/"+deviceOf(tb, a), "")
	require.Equal(tb, http.StatusNoContent, st, "%s", body)
}

// refOf is the reach_ref of a QR deep link.
func refOf(tb testing.TB, link string) string {
	tb.Helper()
	u, err := url.Parse(link)
	require.NoError(tb, err)
	ref := u.Query().Get("reach_ref")
	require.NotEmpty(tb, ref, link)
	return ref
}
