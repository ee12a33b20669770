package flow_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/flow"
)

// deepLinkRU checks a deep link is built from configuration only and
// returns its request_uri.
func deepLinkRU(tb testing.TB, f *fixture, link, client string) string {
	tb.Helper()
	u, err := url.Parse(link)
	require.NoError(tb, err)
	require.Equal(tb, deepLinkURL, u.Scheme+"://"+u.Host+u.Path)
	q := u.Query()
	require.Len(tb, q, 2)
	require.Equal(tb, client, q.Get("client_id"))
	p := f.pushes.get(tb, q.Get("request_uri"))
	require.Equal(tb, flow.PushApp, p.Kind)
	require.Equal(tb, client, p.ClientID)
	require.NotEmpty(tb, p.Session)
	return q.Get("request_uri")
}

func alice() flow.AppUser {
	return flow.AppUser{ClientID: "ourapp", Subject: "sub-alice", Username: "alice", AMR: []string{"pwd", "otp"}}
}

func (f *fixture) complete(ru string, u flow.AppUser, kv ...string) flow.Outcome {
	f.tb.Helper()
	return f.handle(flow.ChannelAppComplete, with(vals("request_uri", ru), kv...), appUser(u))
}

// TestApp_Local: redirect_to_app for a local client; our app completes
// for its user and gets a one-time authorization_code on the client's
// native_callback_uri; the device's follow-up with it gets our code,
// bound to the device key and the client's PKCE, never the app's.
func TestApp_Local(t *testing.T) {
	f := newFixture(t, withApp(nil))
	out := as[flow.RedirectToApp](t, f.native(initial("app", "native_callback_uri", appCB, "nonce", "n"), key(jkt("dev"))))
	require.NotEmpty(t, out.AuthSession)
	ru := deepLinkRU(t, f, out.DeepLink, "app")

	// The device polls before the app completed.
	refusal(t, f.native(vals("auth_session", out.AuthSession), key(jkt("dev"))), "invalid_request")

	f.clock.Advance(time.Second)
	ret := as[flow.Return](t, f.complete(ru, alice(), "client_id", "app"))
	require.Equal(t, appCB, ret.URI)
	require.Equal(t, issuer, ret.Params["iss"])
	one := ret.Params["authorization_code"]
	require.NotEmpty(t, one)
	require.Equal(t, 1, f.pushes.consumes(ru))
	require.Empty(t, f.codes.all(), "no code before the device's follow-up")

	// A second completion finds nothing.
	refusal(t, f.complete(ru, alice()), "invalid_request")

	// The device's follow-up: its value still works, with its key only.
	refusal(t, f.native(vals("auth_session", out.AuthSession, "authorization_code", one), key(jkt("app-key"))), "invalid_dpop_proof")
	refusal(t, f.native(vals("auth_session", out.AuthSession), key(jkt("dev"))), "invalid_request")
	code := as[flow.Code](t, f.native(vals("auth_session", out.AuthSession, "authorization_code", one), key(jkt("dev"))))
	g := f.codes.grant(t, code.Code)
	require.Equal(t, flow.Grant{ClientID: "app", Scope: "openid profile", CodeChallenge: pkce("app"), CodeChallengeMethod: "S256", Nonce: "n",
		Subject: "sub-alice", Username: "alice", AMR: []string{"pwd", "otp", "app"}, AuthTime: f.clock.Now(), DPoPJKT: jkt("dev")}, g)
	refusal(t, f.native(vals("auth_session", out.AuthSession, "authorization_code", one), key(jkt("dev"))), "invalid_session")
}

// TestApp_WrongReturnValue: a wrong one-time value ends the session.
func TestApp_WrongReturnValue(t *testing.T) {
	f := newFixture(t, withApp(nil))
	out := as[flow.RedirectToApp](t, f.native(initial("app", "native_callback_uri", appCB)))
	ret := as[flow.Return](t, f.complete(deepLinkRU(t, f, out.DeepLink, "app"), alice()))
	refusal(t, f.native(vals("auth_session", out.AuthSession, "authorization_code", "guess")), "access_denied")
	refusal(t, f.native(vals("auth_session", out.AuthSession, "authorization_code", ret.Params["authorization_code"])), "invalid_session")
	require.Empty(t, f.codes.all())
}

// TestApp_CompletionRefusals: before anything is consumed the app
// completion checks the token's client (insufficient_scope), the
// session's user (access_denied) and enrolment; the deep link then stays
// usable by its owner.
func TestApp_CompletionRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*config.Config)
		hint  string
		user  flow.AppUser
		want  string
		noApp bool
	}{
		{name: "another app client", user: flow.AppUser{ClientID: "app", Subject: "sub-alice", Username: "alice"}, want: "insufficient_scope"},
		{name: "no app user", want: "invalid_client", noApp: true},
		{name: "other user than login_hint", hint: "alice", user: flow.AppUser{ClientID: "ourapp", Subject: "sub-bob", Username: "bob"}, want: "access_denied"},
		{name: "user not enrolled", edit: func(c *config.Config) {
			c.Apps[0].EnrolledOnly = true
			c.Users[2].Apps = []string{"wallet"}
		}, hint: "carol", user: flow.AppUser{ClientID: "ourapp", Subject: "sub-bob", Username: "bob"}, want: "access_denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *config.Config) {
				withApp(nil)(c)
				if tc.edit != nil {
					tc.edit(c)
				}
			})
			out := as[flow.RedirectToApp](t, f.native(initial("app", "native_callback_uri", appCB, "login_hint", tc.hint)))
			ru := deepLinkRU(t, f, out.DeepLink, "app")
			if tc.noApp {
				refusal(t, f.handle(flow.ChannelAppComplete, vals("request_uri", ru)), tc.want)
			} else {
				refusal(t, f.complete(ru, tc.user), tc.want)
			}
			require.Equal(t, 0, f.pushes.consumeCalls(), "a refused completion must not consume")
			require.True(t, f.pushes.has(ru))
			// The owner still completes it.
			owner := alice()
			if tc.hint == "carol" {
				owner = flow.AppUser{ClientID: "ourapp", Subject: "sub-carol", Username: "carol"}
			}
			ret := as[flow.Return](t, f.complete(ru, owner))
			code := as[flow.Code](t, f.native(vals("auth_session", out.AuthSession, "authorization_code", ret.Params["authorization_code"])))
			require.Equal(t, owner.Subject, f.codes.grant(t, code.Code).Subject)
		})
	}
}

// TestApp_Policy: which requests get redirect_to_app — only with a
// native_callback_uri, only for the app's clients, with enrolled_only
// only for an enrolled login_hint, and by client route.
func TestApp_Policy(t *testing.T) {
	enrolled := func(c *config.Config) {
		withApp(func(a *config.App) { a.EnrolledOnly = true })(c)
		c.Users[2].Apps = []string{"wallet"}
	}
	for _, tc := range []struct {
		name    string
		edit    func(*config.Config)
		form    url.Values
		wantApp bool
	}{
		{"app's client with callback", withApp(nil), initial("app", "native_callback_uri", appCB), true},
		{"no native_callback_uri", withApp(nil), initial("app"), false},
		{"not one of the app's clients", withApp(nil), initial("routed", "native_callback_uri", appCB), false},
		{"enrolled_only, enrolled hint", enrolled, initial("app", "native_callback_uri", appCB, "login_hint", "carol"), true},
		{"enrolled_only, other hint", enrolled, initial("app", "native_callback_uri", appCB, "login_hint", "alice"), false},
		{"enrolled_only, unknown hint", enrolled, initial("app", "native_callback_uri", appCB, "login_hint", "ghost"), false},
		{"enrolled_only, no hint", enrolled, initial("app", "native_callback_uri", appCB), false},
		{"client route to app", func(c *config.Config) {
			withApp(func(a *config.App) { a.Clients = nil })(c)
			c.Routes = []config.Route{{Clients: []string{"routed"}, App: "wallet"}}
		}, initial("routed", "native_callback_uri", appCB), true},
		{"client route to app without callback", func(c *config.Config) {
			withApp(func(a *config.App) { a.Clients = nil })(c)
			c.Routes = []config.Route{{Clients: []string{"routed"}, App: "wallet"}}
		}, initial("routed"), false},
		{"client route local", func(c *config.Config) {
			c.Routes = []config.Route{{Clients: []string{"routed"}, Local: true}}
		}, initial("routed", "native_callback_uri", appCB), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.edit)
			out := f.native(tc.form)
			if tc.wantApp {
				as[flow.RedirectToApp](t, out)
				return
			}
			require.Equal(t, "password", as[flow.Challenge](t, out).Spec.Type)
		})
	}
}

// TestApp_Enrolled: an enrolled_only completion by the enrolled user.
func TestApp_Enrolled(t *testing.T) {
	f := newFixture(t, func(c *config.Config) {
		withApp(func(a *config.App) { a.EnrolledOnly = true })(c)
		c.Users[2].Apps = []string{"wallet"}
	})
	out := as[flow.RedirectToApp](t, f.native(initial("app", "native_callback_uri", appCB, "login_hint", "carol")))
	ret := as[flow.Return](t, f.complete(deepLinkRU(t, f, out.DeepLink, "app"), flow.AppUser{ClientID: "ourapp", Subject: "sub-carol", Username: "carol"}))
	as[flow.Code](t, f.native(vals("auth_session", out.AuthSession, "authorization_code", ret.Params["authorization_code"])))
}

// TestApp_DownstreamRole: a federating client's PAR → redirect_to_app
// without auth_session; our app's completion returns a real code for the
// federating client, bound to its PAR's PKCE and dpop_jkt.
func TestApp_DownstreamRole(t *testing.T) {
	f := newFixture(t, withApp(func(a *config.App) { a.DownstreamRole = true; a.Clients = nil }))
	par := f.pushes.par("fed", initial("fed", "native_callback_uri", appCB, "dpop_jkt", jkt("upstream"), "nonce", "up-nonce", "acr_values", "x"))
	out := as[flow.RedirectToApp](t, f.native(vals("client_id", "fed", "request_uri", par)))
	require.Empty(t, out.AuthSession)
	require.Equal(t, 1, f.pushes.consumes(par))
	ru := deepLinkRU(t, f, out.DeepLink, "fed")
	// Only a federating client's users go to a downstream_role app.
	as[flow.Challenge](t, f.native(initial("app", "native_callback_uri", appCB)))

	ret := as[flow.Return](t, f.complete(ru, alice(), "client_id", "fed"))
	require.Equal(t, appCB, ret.URI)
	require.Equal(t, issuer, ret.Params["iss"])
	g := f.codes.grant(t, ret.Params["authorization_code"])
	require.Equal(t, flow.Grant{ClientID: "fed", Scope: "openid profile", CodeChallenge: pkce("fed"), CodeChallengeMethod: "S256", Nonce: "up-nonce",
		Subject: "sub-alice", Username: "alice", AMR: []string{"pwd", "otp", "app"}, AuthTime: f.clock.Now(), DPoPJKT: jkt("upstream")}, g)
	refusal(t, f.complete(ru, alice()), "invalid_request")
}

// TestApp_FollowUps: while the app has not completed, the device may
// report no app (deep_link_unavailable → redirect_to_web) or an error
// (access_denied); either ends the session.
func TestApp_FollowUps(t *testing.T) {
	t.Run("deep link unavailable", func(t *testing.T) {
		f := newFixture(t, withApp(nil))
		out := as[flow.RedirectToApp](t, f.native(initial("app", "native_callback_uri", appCB), key(jkt("dev"))))
		web := as[flow.RedirectToWeb](t, f.native(vals("auth_session", out.AuthSession, "deep_link_unavailable", "true"), key(jkt("dev"))))
		p := f.pushes.get(t, web.RequestURI)
		require.Equal(t, flow.PushWeb, p.Kind)
		require.Equal(t, appWeb, p.Form.Get("redirect_uri"))
		require.Equal(t, jkt("dev"), p.Form.Get("dpop_jkt"))
		refusal(t, f.native(vals("auth_session", out.AuthSession, "deep_link_unavailable", "true"), key(jkt("dev"))), "invalid_session")
		// The deep link's session is gone: its completion finds nothing.
		refusal(t, f.complete(deepLinkRU(t, f, out.DeepLink, "app"), alice()), "invalid_session")
	})
	t.Run("app error", func(t *testing.T) {
		f := newFixture(t, withApp(nil))
		out := as[flow.RedirectToApp](t, f.native(initial("app", "native_callback_uri", appCB)))
		refusal(t, f.native(vals("auth_session", out.AuthSession, "error", "access_denied")), "access_denied")
		refusal(t, f.native(vals("auth_session", out.AuthSession)), "invalid_session")
	})
	t.Run("code before completion", func(t *testing.T) {
		f := newFixture(t, withApp(nil))
		out := as[flow.RedirectToApp](t, f.native(initial("app", "native_callback_uri", appCB)))
		refusal(t, f.native(vals("auth_session", out.AuthSession, "authorization_code", "forged")), "access_denied")
		refusal(t, f.native(vals("auth_session", out.AuthSession)), "invalid_session")
	})
}
