package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
)

// Deep links, native_callback_uri, redirect_to_web and the app completion
// API: SECURITY-RESULTS.md A16, C01, C02, C04.

const (
	fedPartnerSecret = "fed-partner-secret"
	fpConfCallback   = "https://fp.example/cb"
	fpConfWeb        = "https://fp.example/web-cb"
)

// appSecConfig registers our app "bank" for the local clients demo-app and
// fp-conf and for federating clients (downstream role), a loopback native
// callback for demo-app, callbacks for fp-conf, and a federating partner
// that authenticates with a client secret.
func appSecConfig(c *config.Config) {
	withBankApp(func(a *config.App) {
		a.Clients = []string{"demo-app", "fp-conf"}
		a.DownstreamRole = true
	})(c)
	for i := range c.Clients {
		switch c.Clients[i].ID {
		case "demo-app":
			c.Clients[i].NativeCallbackURIs = append(c.Clients[i].NativeCallbackURIs, "http://127.0.0.1/cb")
		case "fp-conf":
			c.Clients[i].NativeCallbackURIs = []string{fpConfCallback}
			c.Clients[i].RedirectURIs = []string{fpConfWeb}
		}
	}
	c.Clients = append(c.Clients, config.Client{ID: "fed-partner", Federating: true, TokenEndpointAuthMethod: "client_secret_basic",
		SecretSHA256: config.SecretDigest(fedPartnerSecret), Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code"},
		RedirectURIs: []string{"https://fed.example/web-cb"}, NativeCallbackURIs: []string{"https://app.example/cb"}})
}

// requireDeepLink asserts a redirect_to_app answer whose deep link is the
// configured app URL with exactly client_id and request_uri, and returns
// the request_uri.
func requireDeepLink(t *testing.T, r reply, clientID string) string {
	t.Helper()
	require.Equal(t, http.StatusBadRequest, r.status, r.raw)
	require.Equal(t, "redirect_to_app", r.str("error"), r.raw)
	link := r.str("deep_link")
	require.True(t, strings.HasPrefix(link, bankApp+"?"), "deep link %q", link)
	u, err := url.Parse(link)
	require.NoError(t, err)
	require.Equal(t, bankApp, u.Scheme+"://"+u.Host+u.Path)
	require.Nil(t, u.User)
	require.Empty(t, u.Fragment)
	q := u.Query()
	require.ElementsMatch(t, []string{"client_id", "request_uri"}, mapKeys(q), "deep link %q", link)
	require.Len(t, q["client_id"], 1)
	require.Len(t, q["request_uri"], 1)
	require.Equal(t, clientID, q.Get("client_id"))
	require.True(t, strings.HasPrefix(q.Get("request_uri"), "urn:ietf:params:oauth:request_uri:"), link)
	return q.Get("request_uri")
}

// appToken signs carol in through clientID's own native flow and returns
// the access token.
func appToken(t *testing.T, in instance, clientID string) string {
	t.Helper()
	c := in.Client(t, clientID)
	code, pk, err := c.Authorize(context.Background(), url.Values{"scope": {"openid"}}, userUI("carol", "carol-pw", ""))
	require.NoError(t, err)
	tok, err := c.Exchange(context.Background(), code, pk)
	require.NoError(t, err)
	require.NotEmpty(t, tok.AccessToken)
	return tok.AccessToken
}

func (in instance) appComplete(t *testing.T, authz string, form url.Values) reply {
	t.Helper()
	return post(t, in.URL+"/native/app/complete", form, func(r *http.Request) {
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
	})
}

// localDeepLink starts a local sign-in of demo-app that goes to our app and
// returns the redirect_to_app answer.
func (in instance) localDeepLink(t *testing.T, extra url.Values) (reply, sdk.PKCE) {
	t.Helper()
	f := url.Values{"native_callback_uri": {"https://app.example/cb"}, "scope": {"openid"}}
	for k, v := range extra {
		f[k] = v
	}
	r, pk := in.initial(t, "demo-app", f)
	return r, pk
}

// requireNoCompletion asserts a failed app completion: the error, and no
// code or callback.
func requireNoCompletion(t *testing.T, r reply, status int, codes ...string) {
	t.Helper()
	requireOAuthError(t, r, status, codes...)
	require.NotContains(t, r.body, "callback")
	require.NotContains(t, r.body, "native_callback_uri")
}

// C01 (local app path): native_callback_uri is compared as an exact string; every near miss
// is invalid_request and creates no session.
func TestNativeCallbackURI_ExactStringMatch_AppPath(t *testing.T) {
	in, rs := redisInstance(t, appSecConfig)
	nearMisses := []string{
		"https://app.example/cb/../evil",
		"https://app.example/cb/..",
		"https://app.example/CB",
		"https://APP.example/cb",
		"HTTPS://app.example/cb",
		"https://app.example/cb/",
		"https://app.example/cb?x=1",
		"https://app.example/cb?",
		"https://app.example/cb#f",
		"https://app.example/cb%2F..%2Fevil",
		"https://app.example/c%62",
		"https://app.example:443/cb",
		"https://app.example./cb",
		"https://app.example.evil.com/cb",
		"https://app.example@evil.com/cb",
		`https://evil.com\@app.example/cb`,
		"https://evil.com/https://app.example/cb",
		"//app.example/cb",
		" https://app.example/cb",
		"https://app.example/cb ",
		"https://app.example/cb\x00",
		"http://app.example/cb",
		"javascript:alert(1)//https://app.example/cb",
		"data:text/html,<script>alert(1)</script>",
		"com.evil.app:/cb",
		"com.example.demo:/cb/../evil",
		"com.example.demo://cb",
		"COM.EXAMPLE.DEMO:/cb",
		"http://127.0.0.1/cb?bar=foo",
		"http://127.0.0.1:8080/cb",
		"http://localhost/cb",
		"http://[::1]/cb",
		"http://127.0.0.1/cb/",
	}
	for _, v := range nearMisses {
		t.Run(v, func(t *testing.T) {
			r, _ := in.initial(t, "demo-app", url.Values{"native_callback_uri": {v}, "scope": {"openid"}})
			requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
			require.Empty(t, r.str("auth_session"))
			require.Empty(t, r.str("deep_link"))
		})
	}
	require.Equal(t, "0", dbsize(t, rs), "a rejected native_callback_uri creates no state")

	// The registered values themselves pass, to our app.
	for _, v := range []string{"https://app.example/cb", "com.example.demo:/cb", "http://127.0.0.1/cb"} {
		t.Run("registered "+v, func(t *testing.T) {
			r, _ := in.initial(t, "demo-app", url.Values{"native_callback_uri": {v}, "scope": {"openid"}})
			requireDeepLink(t, r, "demo-app")
		})
	}
}

// C02: the deep link comes from configuration only; URL-ish request input
// never changes it.
func TestDeepLink_AllowlistOnly(t *testing.T) {
	in := wrap(start(t, nil, appSecConfig))
	evil := []url.Values{
		{"login_hint": {"https://evil.example/app?client_id=demo-app&request_uri=urn:x"}},
		{"login_hint": {"bank.example/app/../../evil"}},
		{"login_hint": {"javascript:alert(1)"}},
		{"state": {"https://evil.example/#deep_link=https://evil.example"}},
		{"state": {"x&deep_link=https://evil.example&request_uri=urn:ietf:params:oauth:request_uri:evil"}},
		{"nonce": {"https://evil.example/"}},
		{"deep_link": {"https://evil.example/app"}},
		{"app": {"evil"}, "app_link": {"https://evil.example/app"}},
		{"native_callback_uri": {"com.example.demo:/cb"}, "login_hint": {"https://evil.example/"}},
		{"native_callback_uri": {"http://127.0.0.1/cb"}, "state": {"https://evil.example/"}},
	}
	for i, extra := range evil {
		t.Run("local "+url.Values(extra).Encode(), func(t *testing.T) {
			r, _ := in.localDeepLink(t, extra)
			requireDeepLink(t, r, "demo-app")
			require.NotContains(t, r.str("deep_link"), "evil", "case %d", i)
		})
	}
	// Downstream role: a federating client pushes the request (its own
	// PKCE) and presents the request_uri; the deep link carries only our
	// fresh request_uri.
	for i, extra := range evil[:6] {
		t.Run("federating "+url.Values(extra).Encode(), func(t *testing.T) {
			pk := sdk.NewPKCE()
			f := url.Values{"response_type": {"code"}, "client_id": {"fed-partner"}, "redirect_uri": {"https://fed.example/web-cb"},
				"scope": {"openid"}, "state": {"state-12345"}, "native_callback_uri": {"https://app.example/cb"},
				"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}
			for k, v := range extra {
				f[k] = v
			}
			par := post(t, in.parURL(), f, basic("fed-partner", fedPartnerSecret))
			require.Equal(t, http.StatusCreated, par.status, par.raw)
			r := post(t, in.native(), url.Values{"client_id": {"fed-partner"}, "request_uri": {par.str("request_uri")}})
			ru := requireDeepLink(t, r, "fed-partner")
			require.NotEqual(t, par.str("request_uri"), ru, "a fresh request_uri, not the upstream's")
			require.NotContains(t, r.str("deep_link"), "evil", "case %d", i)
			require.Empty(t, r.str("auth_session"))
		})
	}
}

// C04: redirect_to_web carries a request_uri only when the first request
// had a PKCE challenge; then it is short-lived and bound to the client.
func TestRedirectToWeb_NoRequestURIWithoutPKCE(t *testing.T) {
	in := wrap(start(t, nil, appSecConfig))

	// fp-conf: first-party, confidential (PKCE optional), its app is not
	// installed.
	viaApp := func(t *testing.T, pk *sdk.PKCE) reply {
		f := url.Values{"client_id": {"fp-conf"}, "response_type": {"code"}, "scope": {"openid"}, "native_callback_uri": {fpConfCallback}}
		if pk != nil {
			f.Set("code_challenge", pk.Challenge)
			f.Set("code_challenge_method", "S256")
		}
		r := post(t, in.native(), f, basic("fp-conf", "fp-conf-secret"))
		requireDeepLink(t, r, "fp-conf")
		as := r.str("auth_session")
		require.NotEmpty(t, as)
		// FiPA-04 §4.1: the confidential client authenticates on follow-ups too.
		return post(t, in.native(), url.Values{"auth_session": {as}, "deep_link_unavailable": {"true"}}, basic("fp-conf", "fp-conf-secret"))
	}
	t.Run("first-party without PKCE", func(t *testing.T) {
		r := viaApp(t, nil)
		requireOAuthError(t, r, http.StatusForbidden, "redirect_to_web")
		require.NotContains(t, r.body, "request_uri")
		require.NotContains(t, r.body, "expires_in")
		require.NotContains(t, r.body, "auth_session")
	})
	t.Run("first-party with S256", func(t *testing.T) {
		pk := sdk.NewPKCE()
		r := viaApp(t, &pk)
		requireOAuthError(t, r, http.StatusForbidden, "redirect_to_web")
		ru := r.str("request_uri")
		require.True(t, strings.HasPrefix(ru, "urn:ietf:params:oauth:request_uri:"), r.raw)
		exp, _ := r.body["expires_in"].(float64)
		require.Positive(t, exp)
		require.Less(t, exp, float64(600))
		// Bound to fp-conf.
		requireErrorPage(t, getURL(t, in.authorizeURL("demo-partner", ru)), http.StatusBadRequest)
		requireErrorPage(t, getURL(t, in.authorizeURL("demo-app", ru)), http.StatusBadRequest)
		s := requireFormPage(t, getURL(t, in.authorizeURL("fp-conf", ru)), "username", "password")
		out := in.carolSignsIn(t, s)
		require.Equal(t, http.StatusSeeOther, out.status, out.raw)
		loc, err := url.Parse(out.header.Get("Location"))
		require.NoError(t, err)
		require.Equal(t, fpConfWeb, loc.Scheme+"://"+loc.Host+loc.Path)
		tok := post(t, in.token(), url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "code_verifier": {pk.Verifier}, "redirect_uri": {fpConfWeb}},
			basic("fp-conf", "fp-conf-secret"))
		require.Equal(t, http.StatusOK, tok.status, tok.raw)
	})

	// A federating client without credential challenges and without an
	// app path gets redirect_to_web directly.
	fed := func(t *testing.T, pk *sdk.PKCE) reply {
		f := url.Values{"response_type": {"code"}, "client_id": {"fed-partner"}, "redirect_uri": {"https://fed.example/web-cb"},
			"scope": {"openid"}, "state": {"state-12345"}}
		if pk != nil {
			f.Set("code_challenge", pk.Challenge)
			f.Set("code_challenge_method", "S256")
		}
		par := post(t, in.parURL(), f, basic("fed-partner", fedPartnerSecret))
		require.Equal(t, http.StatusCreated, par.status, par.raw)
		return post(t, in.native(), url.Values{"client_id": {"fed-partner"}, "request_uri": {par.str("request_uri")}})
	}
	t.Run("federating without PKCE", func(t *testing.T) {
		r := fed(t, nil)
		requireOAuthError(t, r, http.StatusForbidden, "redirect_to_web")
		require.NotContains(t, r.body, "request_uri")
	})
	t.Run("federating with S256", func(t *testing.T) {
		pk := sdk.NewPKCE()
		r := fed(t, &pk)
		requireOAuthError(t, r, http.StatusForbidden, "redirect_to_web")
		require.True(t, strings.HasPrefix(r.str("request_uri"), "urn:ietf:params:oauth:request_uri:"), r.raw)
		exp, _ := r.body["expires_in"].(float64)
		require.Positive(t, exp)
		require.Less(t, exp, float64(600))
		requireErrorPage(t, getURL(t, in.authorizeURL("fp-conf", r.str("request_uri"))), http.StatusBadRequest)
		requireFormPage(t, getURL(t, in.authorizeURL("fed-partner", r.str("request_uri"))), "username")
	})
}

// A16 (deep links): the auth_session value never appears in the deep link,
// in what the app receives, in the browser fallback; and the app's code
// completes only the session that holds S.
func TestAuthSession_NeverInURLs_AppDeepLink(t *testing.T) {
	in := wrap(start(t, nil, appSecConfig))
	token := appToken(t, in, "bank-app")
	leak := func(t *testing.T, s string, where ...string) {
		t.Helper()
		// The value, and its lookup ID (the first 16 bytes: 21 full
		// base64url characters).
		for _, w := range where {
			require.NotContains(t, w, s)
			require.NotContains(t, w, s[:21])
		}
	}

	victim, pk := in.localDeepLink(t, nil)
	ru := requireDeepLink(t, victim, "demo-app")
	s := victim.str("auth_session")
	require.Len(t, s, 64)
	leak(t, s, victim.str("deep_link"), ru)

	done := in.appComplete(t, "Bearer "+token, url.Values{"client_id": {"demo-app"}, "request_uri": {ru}})
	require.Equal(t, http.StatusOK, done.status, done.raw)
	leak(t, s, done.raw, done.header.Get("Location"))
	cb, err := url.Parse(done.str("callback"))
	require.NoError(t, err)
	require.Equal(t, "https://app.example/cb", cb.Scheme+"://"+cb.Host+cb.Path)
	require.ElementsMatch(t, []string{"authorization_code", "iss"}, mapKeys(cb.Query()))
	appCode := done.str("authorization_code")
	require.Equal(t, appCode, cb.Query().Get("authorization_code"))

	t.Run("attacker's own session", func(t *testing.T) {
		other, _ := in.localDeepLink(t, nil)
		requireDeepLink(t, other, "demo-app")
		r := post(t, in.native(), url.Values{"auth_session": {other.str("auth_session")}, "authorization_code": {appCode}})
		requireOAuthError(t, r, http.StatusBadRequest, "access_denied")
	})
	t.Run("unknown session", func(t *testing.T) {
		r := post(t, in.native(), url.Values{"auth_session": {strings.Repeat("A", 64)}, "authorization_code": {appCode}})
		requireOAuthError(t, r, http.StatusBadRequest, "invalid_session")
	})
	t.Run("no session", func(t *testing.T) {
		r := post(t, in.native(), url.Values{"client_id": {"demo-app"}, "authorization_code": {appCode}})
		require.GreaterOrEqual(t, r.status, 400, r.raw)
		require.Empty(t, r.str("authorization_code"))
	})
	t.Run("app code at the token endpoint", func(t *testing.T) {
		requireOAuthError(t, in.redeem(t, "demo-app", appCode, pk), http.StatusBadRequest, "invalid_grant")
	})

	// The holder of S completes.
	r := post(t, in.native(), url.Values{"auth_session": {s}, "authorization_code": {appCode}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	tok := in.redeem(t, "demo-app", r.str("authorization_code"), pk)
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	require.Equal(t, "carol", in.introspect(t, tok.str("access_token")).str("sub"))

	t.Run("browser fallback", func(t *testing.T) {
		pk := sdk.NewPKCE()
		r := post(t, in.native(), url.Values{"client_id": {"fp-conf"}, "response_type": {"code"}, "scope": {"openid"},
			"native_callback_uri": {fpConfCallback}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}},
			basic("fp-conf", "fp-conf-secret"))
		requireDeepLink(t, r, "fp-conf")
		s := r.str("auth_session")
		leak(t, s, r.str("deep_link"))
		web := post(t, in.native(), url.Values{"auth_session": {s}, "deep_link_unavailable": {"true"}}, basic("fp-conf", "fp-conf-secret"))
		requireOAuthError(t, web, http.StatusForbidden, "redirect_to_web")
		ru := web.str("request_uri")
		require.NotEmpty(t, ru)
		leak(t, s, web.raw)
		u := in.authorizeURL("fp-conf", ru)
		page := getURL(t, u)
		bs := requireFormPage(t, page, "username")
		leak(t, s, u, page.raw, bs)
		out := in.carolSignsIn(t, bs)
		require.Equal(t, http.StatusSeeOther, out.status, out.raw)
		leak(t, s, out.header.Get("Location"))
		leak(t, bs, out.header.Get("Location"))
		// S died with the fallback.
		dead := post(t, in.native(), url.Values{"auth_session": {s}, "authorization_code": {appCode}})
		requireOAuthError(t, dead, http.StatusBadRequest, "invalid_session")
	})
}

// The app completion API: a user access token of one of our apps, a live
// request_uri, used once, for its own client, with a registered callback.

func TestAppComplete_RequiresToken(t *testing.T) {
	in := wrap(start(t, nil, appSecConfig))
	r, _ := in.localDeepLink(t, nil)
	ru := requireDeepLink(t, r, "demo-app")
	form := url.Values{"client_id": {"demo-app"}, "request_uri": {ru}}
	for _, authz := range []string{"", "Bearer ", "Bearer ory_at_garbage.garbage", "bearer x", "DPoP ory_at_x.y"} {
		t.Run(authz, func(t *testing.T) {
			out := in.appComplete(t, authz, form)
			requireNoCompletion(t, out, http.StatusUnauthorized, "invalid_token")
			require.Contains(t, out.header.Get("WWW-Authenticate"), "Bearer")
		})
	}
	t.Run("client credentials instead of a user token", func(t *testing.T) {
		// Basic for bank-app: the form's client_id disagreeing with it is
		// invalid_request; without client_id it is simply no token.
		out := in.appComplete(t, "Basic YmFuay1hcHA6", form)
		requireNoCompletion(t, out, http.StatusBadRequest, "invalid_request")
		out = in.appComplete(t, "Basic YmFuay1hcHA6", url.Values{"request_uri": {ru}})
		requireNoCompletion(t, out, http.StatusUnauthorized, "invalid_token")
	})
	// None of that consumed the request_uri.
	out := in.appComplete(t, "Bearer "+appToken(t, in, "bank-app"), form)
	require.Equal(t, http.StatusOK, out.status, out.raw)
}

func TestAppComplete_NonAppClientIs403(t *testing.T) {
	in := wrap(start(t, nil, appSecConfig))
	r, _ := in.localDeepLink(t, nil)
	ru := requireDeepLink(t, r, "demo-app")
	form := url.Values{"client_id": {"demo-app"}, "request_uri": {ru}}
	for _, client := range []string{"demo-app", "c2"} {
		t.Run(client, func(t *testing.T) {
			out := in.appComplete(t, "Bearer "+appToken(t, in, client), form)
			requireNoCompletion(t, out, http.StatusForbidden, "insufficient_scope")
		})
	}
	out := in.appComplete(t, "Bearer "+appToken(t, in, "bank-app"), form)
	require.Equal(t, http.StatusOK, out.status, out.raw)
}

func TestAppComplete_RequestURIReused(t *testing.T) {
	in := wrap(start(t, nil, appSecConfig))
	token := "Bearer " + appToken(t, in, "bank-app")
	r, _ := in.localDeepLink(t, nil)
	form := url.Values{"client_id": {"demo-app"}, "request_uri": {requireDeepLink(t, r, "demo-app")}}
	first := in.appComplete(t, token, form)
	require.Equal(t, http.StatusOK, first.status, first.raw)
	second := in.appComplete(t, token, form)
	requireNoCompletion(t, second, http.StatusBadRequest, "invalid_request")
}

func TestAppComplete_RequestURIExpired(t *testing.T) {
	in, clock := startClocked(t, appSecConfig, func(c *config.Config) { c.Lifetimes.PushedRequest = time.Second })
	token := "Bearer " + appToken(t, in, "bank-app")
	r, _ := in.localDeepLink(t, nil)
	form := url.Values{"client_id": {"demo-app"}, "request_uri": {requireDeepLink(t, r, "demo-app")}}
	clock.Advance(1500 * time.Millisecond)
	requireNoCompletion(t, in.appComplete(t, token, form), http.StatusBadRequest, "invalid_request")
}

func TestAppComplete_ClientIDMismatch(t *testing.T) {
	in := wrap(start(t, nil, appSecConfig))
	token := "Bearer " + appToken(t, in, "bank-app")
	t.Run("local deep link", func(t *testing.T) {
		r, _ := in.localDeepLink(t, nil)
		ru := requireDeepLink(t, r, "demo-app")
		out := in.appComplete(t, token, url.Values{"client_id": {"c2"}, "request_uri": {ru}})
		requireNoCompletion(t, out, http.StatusBadRequest, "invalid_request")
	})
	t.Run("pushed by a federating client", func(t *testing.T) {
		push := func() string {
			pk := sdk.NewPKCE()
			par := post(t, in.parURL(), url.Values{"response_type": {"code"}, "client_id": {"fed-partner"}, "redirect_uri": {"https://fed.example/web-cb"},
				"scope": {"openid"}, "state": {"state-12345"}, "native_callback_uri": {"https://app.example/cb"},
				"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}, basic("fed-partner", fedPartnerSecret))
			require.Equal(t, http.StatusCreated, par.status, par.raw)
			// A client's PAR is no deep link: the app completion refuses it
			// and leaves it usable at the native endpoint, whose answer is
			// the deep link.
			out := in.appComplete(t, token, url.Values{"client_id": {"fed-partner"}, "request_uri": {par.str("request_uri")}})
			requireNoCompletion(t, out, http.StatusBadRequest, "invalid_request")
			r := post(t, in.native(), url.Values{"client_id": {"fed-partner"}, "request_uri": {par.str("request_uri")}})
			return requireDeepLink(t, r, "fed-partner")
		}
		for _, other := range []string{"demo-app", "demo-partner", "bank-app"} {
			out := in.appComplete(t, token, url.Values{"client_id": {other}, "request_uri": {push()}})
			requireNoCompletion(t, out, http.StatusBadRequest, "invalid_request")
		}
		// The rightful client_id completes.
		out := in.appComplete(t, token, url.Values{"client_id": {"fed-partner"}, "request_uri": {push()}})
		require.Equal(t, http.StatusOK, out.status, out.raw)
		require.Equal(t, "https://app.example/cb", out.str("native_callback_uri"))
	})
}

func TestAppComplete_UnregisteredNativeCallback(t *testing.T) {
	in := wrap(start(t, nil, appSecConfig))
	token := "Bearer " + appToken(t, in, "bank-app")
	pk := sdk.NewPKCE()
	ctx := context.Background()
	// A deep link's callback is the session's, validated by exact match
	// when the session began (TestNativeCallbackURI_ExactStringMatch_AppPath);
	// a client's PAR is not a deep link at all.
	_ = ctx
	t.Run("PAR of a client without native callbacks", func(t *testing.T) {
		for _, cb := range []string{"https://evil.example/cb", "https://app.example/cb", ""} {
			f := url.Values{"response_type": {"code"}, "client_id": {"demo-partner"}, "redirect_uri": {partnerCB},
				"scope": {"openid"}, "state": {"state-12345"}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}
			if cb != "" {
				f.Set("native_callback_uri", cb)
			}
			par := post(t, in.parURL(), f, basic("demo-partner", partnerSecret))
			require.Equal(t, http.StatusCreated, par.status, par.raw)
			out := in.appComplete(t, token, url.Values{"client_id": {"demo-partner"}, "request_uri": {par.str("request_uri")}})
			requireNoCompletion(t, out, http.StatusBadRequest, "invalid_request")
		}
	})
	t.Run("PAR of a federating client with an unregistered callback", func(t *testing.T) {
		par := post(t, in.parURL(), url.Values{"response_type": {"code"}, "client_id": {"fed-partner"}, "redirect_uri": {"https://fed.example/web-cb"},
			"scope": {"openid"}, "state": {"state-12345"}, "native_callback_uri": {"https://evil.example/cb"},
			"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}, basic("fed-partner", fedPartnerSecret))
		require.Equal(t, http.StatusCreated, par.status, par.raw)
		out := in.appComplete(t, token, url.Values{"client_id": {"fed-partner"}, "request_uri": {par.str("request_uri")}})
		requireNoCompletion(t, out, http.StatusBadRequest, "invalid_request")
		require.NotContains(t, out.raw, "evil")
	})
}
