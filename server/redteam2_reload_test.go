package server_test

// Red team, second pass: policy reloads between the steps of a session
// (server.Server.Reload, policy/reload.go). Nothing may be issued to a
// client, user or app the live policy no longer has, and a setting turned
// off must stop new legs that depend on it.

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/federation/fedtest"
)

// reloadWith publishes a new policy built from a copy of the instance's
// configuration, edited (slices are copied, so edits never reach the
// original).
func reloadWith(t *testing.T, in instance, edit func(*config.Config)) {
	t.Helper()
	cfg := *in.Config
	cfg.Users = append([]config.User(nil), in.Config.Users...)
	cfg.Clients = append([]config.Client(nil), in.Config.Clients...)
	cfg.Apps = append([]config.App(nil), in.Config.Apps...)
	cfg.Downstreams = append([]config.Downstream(nil), in.Config.Downstreams...)
	cfg.Routes = append([]config.Route(nil), in.Config.Routes...)
	edit(&cfg)
	require.NoError(t, in.Server.Reload(func() (*config.Config, error) { return &cfg, nil }))
}

func withoutUser(name string) func(*config.Config) {
	return func(c *config.Config) {
		var us []config.User
		for _, u := range c.Users {
			if u.Username != name {
				us = append(us, u)
			}
		}
		c.Users = us
	}
}

func withoutClient(id string) func(*config.Config) {
	return func(c *config.Config) {
		var cs []config.Client
		for _, cl := range c.Clients {
			if cl.ID != id {
				cs = append(cs, cl)
			}
		}
		c.Clients = cs
	}
}

// getNoFollow GETs u without following redirects.
func getNoFollow(t *testing.T, u string) (int, string, string) {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// TestRedteam2_Reload_UserRemovedBeforeAppCompletion: carol signed in to
// the bank app; the admin then removes carol. Her still-valid app access
// token must not complete a deep link: the completion signs in a user who
// no longer exists, and the device gets a code for her.
func TestRedteam2_Reload_UserRemovedBeforeAppCompletion(t *testing.T) {
	in := wrap(start(t, nil, appSecConfig))
	token := "Bearer " + appToken(t, in, "bank-app")
	r, pk := in.localDeepLink(t, nil)
	ru := requireDeepLink(t, r, "demo-app")

	reloadWith(t, in, withoutUser("carol"))

	done := in.appComplete(t, token, url.Values{"client_id": {"demo-app"}, "request_uri": {ru}})
	if done.status == http.StatusOK {
		// Follow through as the device would, to show what is issued.
		got := post(t, in.native(), url.Values{"client_id": {"demo-app"}, "auth_session": {r.str("auth_session")}, "authorization_code": {done.str("authorization_code")}})
		if got.status == http.StatusOK {
			tok := in.redeem(t, "demo-app", got.str("authorization_code"), pk)
			t.Logf("removed user got: code redeem %d %s", tok.status, tok.raw)
		}
		t.Errorf("app completion for a removed user was accepted: %d %s", done.status, done.raw)
		return
	}
	requireNoCompletion(t, done, done.status, "access_denied", "invalid_token")
}

// TestRedteam2_Reload_BrowserFederationTurnedOff: AS1 answered
// redirect_to_web for a browser federation to "std" (Q19); the admin then
// sets browser_federation: false for it. The browser arriving with the
// request_uri must not be sent on to the downstream.
func TestRedteam2_Reload_BrowserFederationTurnedOff(t *testing.T) {
	e := standardDownstream(t, true, fedtest.Options{})
	std := e.ds["std"]
	r, _ := e.prompt(t, url.Values{"native_callback_uri": {"https://app.example/cb"}})
	w := e.answer(t, r.str("auth_session"), url.Values{"bank": {"std"}})
	requireOAuthError(t, w, http.StatusForbidden, "redirect_to_web")

	reloadWith(t, e.as1, func(c *config.Config) {
		for i := range c.Downstreams {
			c.Downstreams[i].BrowserFederation = false
		}
	})

	status, loc, body := getNoFollow(t, e.as1.URL+"/oauth2/authorize?"+url.Values{"client_id": {"demo-app"}, "request_uri": {w.str("request_uri")}}.Encode())
	require.False(t, status == http.StatusSeeOther && strings.HasPrefix(loc, std.URL),
		"browser federation was turned off, yet the browser is sent to the downstream: %d %s %s", status, loc, body)
	require.Zero(t, std.Count(fedtest.PAR), "no PAR at a downstream whose browser federation is off")
}

// TestRedteam2_Reload_ClientRemovedBeforeWebCallback: the browser is at
// the downstream for a Q19 browser federation of demo-app; the admin then
// removes demo-app. When the downstream sends the browser back, AS1 must
// not redeem the downstream code on behalf of a client it no longer has,
// nor send a response_code to that client's callback.
func TestRedteam2_Reload_ClientRemovedBeforeWebCallback(t *testing.T) {
	e := standardDownstream(t, true, fedtest.Options{})
	std := e.ds["std"]
	r, _ := e.prompt(t, url.Values{"native_callback_uri": {"https://app.example/cb"}})
	w := e.answer(t, r.str("auth_session"), url.Values{"bank": {"std"}})
	requireOAuthError(t, w, http.StatusForbidden, "redirect_to_web")
	status, loc, body := getNoFollow(t, e.as1.URL+"/oauth2/authorize?"+url.Values{"client_id": {"demo-app"}, "request_uri": {w.str("request_uri")}}.Encode())
	require.Equal(t, http.StatusSeeOther, status, body)
	require.True(t, strings.HasPrefix(loc, std.URL), loc)
	// The downstream signs the user in and answers with our callback.
	status, cb, body := getNoFollow(t, loc)
	require.Equal(t, http.StatusSeeOther, status, body)
	require.True(t, strings.HasPrefix(cb, e.as1.URL+"/federation/callback"), cb)

	reloadWith(t, e.as1, withoutClient("demo-app"))

	status, loc, body = getNoFollow(t, cb)
	assert.NotEqual(t, http.StatusInternalServerError, status, body)
	assert.False(t, strings.Contains(loc, "response_code="), "a response_code for a removed client: %s", loc)
	assert.Zero(t, std.Count(fedtest.Token), "the downstream code was redeemed for a removed client")
}

// The reload paths that were refused correctly.
func TestRedteam2_Reload_RefusedCorrectly(t *testing.T) {
	t.Run("client removed mid local sign-in, follow-up without client_id", func(t *testing.T) {
		in := wrap(start(t, nil))
		r, _ := in.initial(t, "c2", nil)
		requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
		reloadWith(t, in, withoutClient("c2"))
		got := post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "username": {"carol"}, "password": {"carol-pw"}})
		require.NotEqual(t, http.StatusOK, got.status, got.raw)
		require.Less(t, got.status, 500, got.raw)
		got = post(t, in.native(), url.Values{"client_id": {"c2"}, "auth_session": {r.str("auth_session")}, "username": {"carol"}, "password": {"carol-pw"}})
		requireOAuthError(t, got, http.StatusUnauthorized, "invalid_client", "invalid_session")
	})
	t.Run("user removed between password and TOTP", func(t *testing.T) {
		in := wrap(start(t, nil))
		r, _ := in.initial(t, "demo-app", nil)
		r = answerPassword(t, in.native(), r, "bob", "bob")
		if r.str("error") != "insufficient_authorization" {
			t.Skipf("bob's demo password differs: %s", r.raw)
		}
		reloadWith(t, in, withoutUser("bob"))
		got := post(t, in.native(), url.Values{"client_id": {"demo-app"}, "auth_session": {r.str("auth_session")}, "otp": {"000000"}})
		require.NotEqual(t, http.StatusOK, got.status, got.raw)
	})
	t.Run("app removed or its client_id changed before completion", func(t *testing.T) {
		for name, edit := range map[string]func(*config.Config){
			"removed":    func(c *config.Config) { c.Apps = nil },
			"re-pointed": func(c *config.Config) { c.Apps[0].ClientID = "c2" },
		} {
			t.Run(name, func(t *testing.T) {
				in := wrap(start(t, nil, appSecConfig))
				token := "Bearer " + appToken(t, in, "bank-app")
				r, _ := in.localDeepLink(t, nil)
				ru := requireDeepLink(t, r, "demo-app")
				reloadWith(t, in, edit)
				got := in.appComplete(t, token, url.Values{"client_id": {"demo-app"}, "request_uri": {ru}})
				require.NotEqual(t, http.StatusOK, got.status, got.raw)
				require.Less(t, got.status, 500, got.raw)
			})
		}
	})
}
