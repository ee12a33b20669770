package flow_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/flow"
)

// TestTake_Refusals: every refusal of take, at each endpoint. A refused
// use never consumes: the push is still there and Consume was not called.
func TestTake_Refusals(t *testing.T) {
	appPush := func(f *fixture) string {
		out := as[flow.RedirectToApp](t, f.native(initial("app", "native_callback_uri", appCB)))
		u, err := url.Parse(out.DeepLink)
		require.NoError(t, err)
		return u.Query().Get("request_uri")
	}
	webPush := func(f *fixture) string {
		return as[flow.RedirectToWeb](t, f.native(vals("client_id", "fed", "request_uri",
			f.pushes.par("fed", initial("fed", "redirect_uri", "https://up.example/cb"))))).RequestURI
	}
	for _, tc := range []struct {
		name string
		ru   func(f *fixture) string
		ch   flow.Channel
		form func(ru string) url.Values
		user *flow.AppUser
		want string
		gone bool // the request_uri does not exist (unknown or malformed)
	}{
		{name: "app push at native", ru: appPush, ch: flow.ChannelNative, form: func(ru string) url.Values { return vals("client_id", "app", "request_uri", ru) }, want: "invalid_request"},
		{name: "web push at native", ru: webPush, ch: flow.ChannelNative, form: func(ru string) url.Values { return vals("client_id", "fed", "request_uri", ru) }, want: "invalid_request"},
		{name: "app push at browser", ru: appPush, ch: flow.ChannelBrowser, form: func(ru string) url.Values { return vals("client_id", "app", "request_uri", ru) }, want: "invalid_request"},
		{name: "client PAR at app completion", ru: func(f *fixture) string { return f.pushes.par("app", initial("app", "redirect_uri", appWeb)) }, ch: flow.ChannelAppComplete,
			form: func(ru string) url.Values { return vals("client_id", "app", "request_uri", ru) }, user: &flow.AppUser{ClientID: "ourapp", Subject: "sub-alice", Username: "alice"}, want: "invalid_request"},
		{name: "web push at app completion", ru: webPush, ch: flow.ChannelAppComplete,
			form: func(ru string) url.Values { return vals("request_uri", ru) }, user: &flow.AppUser{ClientID: "ourapp", Subject: "sub-alice", Username: "alice"}, want: "invalid_request"},
		{name: "PAR of another client at native", ru: func(f *fixture) string { return f.pushes.par("fed", initial("fed")) }, ch: flow.ChannelNative,
			form: func(ru string) url.Values { return vals("client_id", "app", "request_uri", ru) }, want: "invalid_request"},
		{name: "PAR of another client at browser", ru: func(f *fixture) string {
			return f.pushes.par("conf", initial("conf", "redirect_uri", "https://conf.example/cb"))
		}, ch: flow.ChannelBrowser,
			form: func(ru string) url.Values { return vals("client_id", "app", "request_uri", ru) }, want: "invalid_request"},
		{name: "app push of another client at completion", ru: appPush, ch: flow.ChannelAppComplete,
			form: func(ru string) url.Values { return vals("client_id", "routed", "request_uri", ru) }, user: &flow.AppUser{ClientID: "ourapp", Subject: "sub-alice", Username: "alice"}, want: "invalid_request"},
		{name: "native without client_id", ru: func(f *fixture) string { return f.pushes.par("fed", initial("fed")) }, ch: flow.ChannelNative,
			form: func(ru string) url.Values { return vals("request_uri", ru) }, want: "invalid_request"},
		{name: "non-first-party at native", ru: func(f *fixture) string { return f.pushes.par("third", initial("third")) }, ch: flow.ChannelNative,
			form: func(ru string) url.Values { return vals("client_id", "third", "request_uri", ru) }, want: "unauthorized_client"},
		{name: "browser without redirect_uri", ru: func(f *fixture) string { return f.pushes.par("conf", initial("conf")) }, ch: flow.ChannelBrowser,
			form: func(ru string) url.Values { return vals("client_id", "conf", "request_uri", ru) }, want: "invalid_request"},
		{name: "browser with unregistered redirect_uri", ru: func(f *fixture) string {
			return f.pushes.par("conf", initial("conf", "redirect_uri", "https://evil.example/cb"))
		}, ch: flow.ChannelBrowser, form: func(ru string) url.Values { return vals("client_id", "conf", "request_uri", ru) }, want: "invalid_request"},
		{name: "client no longer registered", ru: func(f *fixture) string { return f.pushes.par("gone", initial("gone")) }, ch: flow.ChannelNative,
			form: func(ru string) url.Values { return vals("client_id", "gone", "request_uri", ru) }, want: "invalid_request"},
		{name: "unknown", ru: func(*fixture) string { return flow.RequestURIPrefix + "nope" }, ch: flow.ChannelNative,
			form: func(ru string) url.Values { return vals("client_id", "fed", "request_uri", ru) }, want: "invalid_request", gone: true},
		{name: "not our URN", ru: func(*fixture) string { return "https://evil.example/request" }, ch: flow.ChannelNative,
			form: func(ru string) url.Values { return vals("client_id", "fed", "request_uri", ru) }, want: "invalid_request", gone: true},
		{name: "too long", ru: func(*fixture) string { return flow.RequestURIPrefix + strings.Repeat("a", 256) }, ch: flow.ChannelBrowser,
			form: func(ru string) url.Values { return vals("client_id", "fed", "request_uri", ru) }, want: "invalid_request", gone: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, withApp(nil))
			ru := tc.ru(f)
			before := f.pushes.consumeCalls()
			var mods []reqMod
			if tc.user != nil {
				mods = append(mods, appUser(*tc.user))
			}
			if tc.ch == flow.ChannelNative && tc.form(ru).Get("client_id") == "gone" {
				mods = append(mods, f.asClient(""))
			}
			refusal(t, f.handle(tc.ch, tc.form(ru), mods...), tc.want)
			require.Equal(t, before, f.pushes.consumeCalls(), "a refused use must not consume")
			require.Equal(t, !tc.gone, f.pushes.has(ru))
		})
	}
	t.Run("consumed", func(t *testing.T) {
		f := newFixture(t, nil)
		ru := f.pushes.par("fed", initial("fed"))
		as[flow.RedirectToWeb](t, f.native(vals("client_id", "fed", "request_uri", ru)))
		require.Equal(t, 1, f.pushes.consumes(ru))
		require.False(t, f.pushes.has(ru))
		refusal(t, f.native(vals("client_id", "fed", "request_uri", ru)), "invalid_request")
	})
	t.Run("consumed between peek and consume", func(t *testing.T) {
		f := newFixture(t, nil)
		racy := &racyPushes{pushes: f.pushes}
		o := f.opts
		o.Pushes = racy
		f.eng = flow.New(o)
		ru := f.pushes.par("fed", initial("fed"))
		racy.steal = ru
		refusal(t, f.native(vals("client_id", "fed", "request_uri", ru)), "invalid_request")
	})
}

// racyPushes lets another request consume steal between Peek and Consume.
type racyPushes struct {
	*pushes
	steal string
}

func (r *racyPushes) Peek(ctx context.Context, ru string) (flow.Pushed, error) {
	p, err := r.pushes.Peek(ctx, ru)
	if ru == r.steal {
		_, _ = r.pushes.Consume(ctx, ru)
	}
	return p, err
}

// TestPushed_DownstreamRole: a federating client's PAR at the native
// endpoint starts a session (consuming the PAR); a PAR that fails the
// initial-request checks or names another key than the device's proof is
// refused.
func TestPushed_DownstreamRole(t *testing.T) {
	f := newFixture(t, nil)
	ru := f.pushes.par("fed", initial("fed", "response_type", "token"))
	refusal(t, f.native(vals("client_id", "fed", "request_uri", ru)), "unsupported_response_type")

	ru = f.pushes.par("fed", initial("fed", "dpop_jkt", jkt("upstream")))
	refusal(t, f.native(vals("client_id", "fed", "request_uri", ru), key(jkt("dev"))), "invalid_dpop_proof")

	// A first-party client may push too; it then gets challenges.
	ru = f.pushes.par("conf", initial("conf"))
	ch := as[flow.Challenge](t, f.native(vals("client_id", "conf", "request_uri", ru)))
	require.Equal(t, 1, f.pushes.consumes(ru))
	// The PAR authenticated the client: follow-ups need no credentials.
	code := as[flow.Code](t, f.signIn(t, flow.ChannelNative, ch.AuthSession, "alice", f.asClient("")))
	require.Equal(t, "conf", f.codes.grant(t, code.Code).ClientID)
}

// TestRedirectToWeb: a client that may not get credential challenges
// gets redirect_to_web; with a request_uri of kind PushWeb only when the
// request had PKCE and a redirect_uri can be fixed.
func TestRedirectToWeb(t *testing.T) {
	for _, tc := range []struct {
		name, client string
		par          url.Values
		wantRU       bool
		wantRedirect string
	}{
		{"no PKCE", "fed", initial("fed", "code_challenge", "", "code_challenge_method", ""), false, ""},
		{"PKCE and the one registered redirect_uri", "fed", initial("fed"), true, "https://up.example/cb"},
		{"PKCE and the given redirect_uri", "fed", initial("fed", "redirect_uri", "https://up.example/cb"), true, "https://up.example/cb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			ru := f.pushes.par(tc.client, with(tc.par, "dpop_jkt", jkt("upstream"), "native_callback_uri", appCB))
			out := as[flow.RedirectToWeb](t, f.native(vals("client_id", tc.client, "request_uri", ru)))
			require.Empty(t, out.AuthSession)
			if !tc.wantRU {
				require.Empty(t, out.RequestURI)
				return
			}
			require.Equal(t, 60, out.ExpiresIn)
			p := f.pushes.get(t, out.RequestURI)
			require.Equal(t, flow.PushWeb, p.Kind)
			require.Equal(t, tc.client, p.ClientID)
			require.Empty(t, p.Session)
			require.Equal(t, tc.wantRedirect, p.Form.Get("redirect_uri"))
			require.Equal(t, pkce(tc.client), p.Form.Get("code_challenge"))
			require.Equal(t, jkt("upstream"), p.Form.Get("dpop_jkt"))
			require.Empty(t, p.Form.Get("native_callback_uri"), "the browser returns to redirect_uri")
		})
	}
	t.Run("several redirect_uris and none given", func(t *testing.T) {
		f := newFixture(t, func(c *config.Config) {
			c.Clients[6].RedirectURIs = append(c.Clients[6].RedirectURIs, "https://up.example/cb2")
		})
		ru := f.pushes.par("fed", initial("fed"))
		require.Empty(t, as[flow.RedirectToWeb](t, f.native(vals("client_id", "fed", "request_uri", ru))).RequestURI)
	})
	t.Run("device key travels as dpop_jkt", func(t *testing.T) {
		f := newFixture(t, nil)
		ru := f.pushes.par("fed", initial("fed"))
		out := as[flow.RedirectToWeb](t, f.native(vals("client_id", "fed", "request_uri", ru), key(jkt("dev"))))
		require.Equal(t, jkt("dev"), f.pushes.get(t, out.RequestURI).Form.Get("dpop_jkt"))
	})
}

// TestBrowser: the browser channel starts from a client's PAR or our
// PushWeb, signs in on our pages, and answers Code with redirect_uri and
// state; the push is consumed exactly when the code is minted. Values do
// not cross channels.
func TestBrowser(t *testing.T) {
	t.Run("client PAR", func(t *testing.T) {
		f := newFixture(t, nil)
		ru := f.pushes.par("conf", initial("conf", "redirect_uri", "https://conf.example/cb", "nonce", "n", "login_hint", "bob"))
		ch := as[flow.Challenge](t, f.browser(vals("client_id", "conf", "request_uri", ru)))
		require.NotContains(t, ch.Spec.Inputs, "username")
		// A reload reads the request again without consuming it.
		as[flow.Challenge](t, f.browser(vals("client_id", "conf", "request_uri", ru)))
		otp := as[flow.Challenge](t, f.browser(vals("auth_session", ch.AuthSession, "password", "bob-pw")))
		require.Equal(t, 0, f.pushes.consumeCalls())
		require.True(t, f.pushes.has(ru))
		code := as[flow.Code](t, f.browser(vals("auth_session", otp.AuthSession, "otp", f.otp())))
		require.Equal(t, 1, f.pushes.consumes(ru))
		require.False(t, f.pushes.has(ru))
		require.Equal(t, "https://conf.example/cb", code.RedirectURI)
		require.Equal(t, "st-conf", code.State)
		g := f.codes.grant(t, code.Code)
		require.Equal(t, "https://conf.example/cb", g.RedirectURI)
		require.Equal(t, "conf", g.ClientID)
		require.Equal(t, pkce("conf"), g.CodeChallenge)
		require.Equal(t, "n", g.Nonce)
		require.Equal(t, []string{"pwd", "otp"}, g.AMR)
		require.Empty(t, g.DPoPJKT)
		// The second session the reload started cannot complete now.
		refusal(t, f.browser(vals("client_id", "conf", "request_uri", ru)), "invalid_request")
	})
	t.Run("PushWeb", func(t *testing.T) {
		f := newFixture(t, nil)
		par := f.pushes.par("fed", initial("fed"))
		web := as[flow.RedirectToWeb](t, f.native(vals("client_id", "fed", "request_uri", par), key(jkt("dev"))))
		ch := as[flow.Challenge](t, f.browser(vals("client_id", "fed", "request_uri", web.RequestURI)))
		code := as[flow.Code](t, f.signIn(t, flow.ChannelBrowser, ch.AuthSession, "alice"))
		require.Equal(t, 1, f.pushes.consumes(web.RequestURI))
		require.Equal(t, "https://up.example/cb", code.RedirectURI)
		require.Equal(t, "st-fed", code.State)
		g := f.codes.grant(t, code.Code)
		require.Equal(t, "fed", g.ClientID)
		require.Equal(t, jkt("dev"), g.DPoPJKT, "bound to the device key as a native code would be")
		require.Equal(t, "https://up.example/cb", g.RedirectURI)
	})
	t.Run("push gone before the code", func(t *testing.T) {
		f := newFixture(t, nil)
		ru := f.pushes.par("conf", initial("conf", "redirect_uri", "https://conf.example/cb"))
		ch := as[flow.Challenge](t, f.browser(vals("client_id", "conf", "request_uri", ru)))
		_, _ = f.pushes.Consume(context.Background(), ru)
		refusal(t, f.signIn(t, flow.ChannelBrowser, ch.AuthSession, "alice"), "invalid_request")
		require.Empty(t, f.codes.all())
	})
	t.Run("missing client_id", func(t *testing.T) {
		f := newFixture(t, nil)
		ru := f.pushes.par("conf", initial("conf", "redirect_uri", "https://conf.example/cb"))
		refusal(t, f.browser(vals("request_uri", ru)), "invalid_request")
	})
	t.Run("invalid pushed request", func(t *testing.T) {
		f := newFixture(t, nil)
		ru := f.pushes.par("app", initial("app", "redirect_uri", appWeb, "code_challenge", ""))
		refusal(t, f.browser(vals("client_id", "app", "request_uri", ru)), "invalid_request")
	})
	t.Run("channels do not mix", func(t *testing.T) {
		f := newFixture(t, nil)
		ru := f.pushes.par("conf", initial("conf", "redirect_uri", "https://conf.example/cb"))
		bv := as[flow.Challenge](t, f.browser(vals("client_id", "conf", "request_uri", ru))).AuthSession
		nv := as[flow.Challenge](t, f.native(initial("app"))).AuthSession
		refusal(t, f.native(vals("auth_session", bv, "username", "alice", "password", "alice-pw")), "invalid_session")
		refusal(t, f.browser(vals("auth_session", nv, "username", "alice", "password", "alice-pw")), "invalid_session")
		refusal(t, f.handle(flow.ChannelResponse, vals("auth_session", bv, "authorization_code", "x")), "invalid_session")
		// Both still work on their own channel.
		as[flow.Code](t, f.signIn(t, flow.ChannelBrowser, bv, "alice"))
		as[flow.Code](t, f.signIn(t, flow.ChannelNative, nv, "alice"))
	})
}
