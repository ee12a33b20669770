package server_test

// Defect tests that need the mock downstream's result and authorization
// response options (fedtest TokenType, IDTokenOptions ACR/AuthTime,
// IssParameter, AuthorizeIss, AuthorizeOmitIss, AuthorizeError) and
// browser federation (config BrowserFederation); the code before the
// redesign has none of them, so this file does not compile there
// (SECURITY-RESULTS.md).

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/federation/fedtest"
	"github.com/fedas/fedas/sdk"
)

// hopResult runs a native sign-in at e.as1 federated to ds1 with the
// initial parameters extra and returns the answer at response_uri.
func hopResult(t *testing.T, e *mockFed, extra url.Values) (reply, sdk.PKCE) {
	t.Helper()
	fed, pk := e.federate(t, "ds1", extra)
	return respondHop(t, fed, url.Values{"authorization_code": {atDownstream(t, fed)}}), pk
}

// requireDenied asserts access_denied whose description names what.
func requireDenied(t *testing.T, r reply, what string) {
	t.Helper()
	requireOAuthError(t, r, http.StatusBadRequest, "access_denied")
	require.Contains(t, r.str("error_description"), what, r.raw)
	requireNoLeak(t, r)
}

// Defect 7 (RFC 9449 §5, §10; OIDC Core §3.1.3.7 steps 12-13): what the
// downstream returned was not checked against what we asked for. Now a
// Bearer token_type for our DPoP-bound PAR, an auth_time older than the
// forwarded max_age or missing, and an acr outside the forwarded
// acr_values are access_denied with a description saying why, and no code.
func TestDefect_DownstreamResultsChecked(t *testing.T) {
	e := newMockFed(t, mockFedOpts{})
	m := e.ds["ds1"]
	lastPAR := func() url.Values {
		reqs := m.Requests(fedtest.PAR)
		require.NotEmpty(t, reqs)
		return reqs[len(reqs)-1].Form
	}

	t.Run("token_type Bearer after a DPoP-bound PAR", func(t *testing.T) {
		m.Configure(func(o *fedtest.Options) { o.TokenType = "Bearer" })
		defer m.Configure(func(o *fedtest.Options) { o.TokenType = "" })
		r, _ := hopResult(t, e, nil)
		require.NotEmpty(t, lastPAR().Get("dpop_jkt"), "our PAR binds the downstream code to our key")
		toks := m.Requests(fedtest.Token)
		require.NotEmpty(t, toks[len(toks)-1].Header.Get("DPoP"), "our token request carries a proof")
		requireOAuthError(t, r, http.StatusBadRequest, "access_denied")
		require.Empty(t, r.str("authorization_code"))
	})
	t.Run("max_age: auth_time too old", func(t *testing.T) {
		m.SetIDToken(fedtest.IDTokenOptions{AuthTime: time.Now().Add(-time.Hour)})
		r, _ := hopResult(t, e, url.Values{"max_age": {"60"}})
		require.Equal(t, "60", lastPAR().Get("max_age"), "max_age is forwarded")
		requireDenied(t, r, "max_age")
	})
	t.Run("max_age: auth_time missing", func(t *testing.T) {
		m.SetIDToken(fedtest.IDTokenOptions{OmitAuthTime: true})
		r, _ := hopResult(t, e, url.Values{"max_age": {"60"}})
		requireDenied(t, r, "max_age")
	})
	t.Run("max_age: recent auth_time", func(t *testing.T) {
		m.SetIDToken(fedtest.IDTokenOptions{AuthTime: time.Now().Add(-10 * time.Second)})
		r, pk := hopResult(t, e, url.Values{"max_age": {"60"}})
		require.Equal(t, http.StatusOK, r.status, r.raw)
		require.Equal(t, http.StatusOK, e.as1.redeem(t, "demo-app", r.str("authorization_code"), pk).status)
	})
	t.Run("acr_values: another acr", func(t *testing.T) {
		m.SetIDToken(fedtest.IDTokenOptions{ACR: "urn:example:loa:1"})
		r, _ := hopResult(t, e, url.Values{"acr_values": {"urn:example:loa:2 urn:example:loa:3"}})
		require.Equal(t, "urn:example:loa:2 urn:example:loa:3", lastPAR().Get("acr_values"), "acr_values are forwarded")
		requireDenied(t, r, "acr_values")
	})
	t.Run("acr_values: no acr", func(t *testing.T) {
		m.SetIDToken(fedtest.IDTokenOptions{})
		r, _ := hopResult(t, e, url.Values{"acr_values": {"urn:example:loa:2"}})
		requireDenied(t, r, "acr_values")
	})
	t.Run("acr_values: a requested acr", func(t *testing.T) {
		m.SetIDToken(fedtest.IDTokenOptions{ACR: "urn:example:loa:3"})
		r, pk := hopResult(t, e, url.Values{"acr_values": {"urn:example:loa:2 urn:example:loa:3"}})
		require.Equal(t, http.StatusOK, r.status, r.raw)
		tok := e.as1.redeem(t, "demo-app", r.str("authorization_code"), pk)
		require.Equal(t, http.StatusOK, tok.status, tok.raw)
	})
}

// browserFedEnv is AS1 with the mock ds1 that has no native endpoint and
// is reached through the browser (docs/decisions.md Q19).
func browserFedEnv(t *testing.T, o fedtest.Options) *mockFed {
	t.Helper()
	o.NoNative = true
	return newMockFed(t, mockFedOpts{mocks: map[string]fedtest.Options{"ds1": o}, edit: func(c *config.Config) {
		for i := range c.Downstreams {
			c.Downstreams[i].BrowserFederation = true
		}
		for i := range c.Clients {
			if c.Clients[i].ID == "demo-app" {
				c.Clients[i].RedirectURIs = []string{"https://app.example/web-cb"}
			}
		}
	}})
}

// browserHop starts a sign-in at AS1 routed to ds1 through the browser
// and follows the browser to AS1's web callback URL, which it returns
// unvisited with the redirect_to_web answer.
func browserHop(t *testing.T, e *mockFed, k *dpop.Key) (reply, string, sdk.PKCE) {
	t.Helper()
	in := e.as1
	var opts []func(*http.Request)
	if k != nil {
		opts = append(opts, withProof(t, k, in.native()))
	}
	pk := sdk.NewPKCE()
	r := post(t, in.native(), url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"},
		"native_callback_uri": {"https://app.example/cb"}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}, opts...)
	requireOAuthError(t, r, http.StatusBadRequest, "insufficient_information")
	if k != nil {
		opts = []func(*http.Request){withProof(t, k, in.native())}
	}
	web := post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "bank": {"ds1"}}, opts...)
	requireOAuthError(t, web, http.StatusForbidden, "redirect_to_web")
	require.NotEmpty(t, web.str("request_uri"), web.raw)
	require.NotEmpty(t, web.str("auth_session"), web.raw)
	toDS := getURL(t, in.authorizeURL("demo-app", web.str("request_uri")))
	require.Equal(t, http.StatusSeeOther, toDS.status, toDS.raw)
	require.True(t, strings.HasPrefix(toDS.header.Get("Location"), e.ds["ds1"].URL), toDS.header.Get("Location"))
	back := getURL(t, toDS.header.Get("Location"))
	require.Equal(t, http.StatusSeeOther, back.status, back.raw)
	cb := back.header.Get("Location")
	require.True(t, strings.HasPrefix(cb, in.URL+"/federation/callback?"), cb)
	return web, cb, pk
}

// Defect 10 (RFC 9207 §2.4; docs/decisions.md Q7, Q19), the iss half: the web
// callback acted on a code or an error before comparing iss, and did not
// require iss from a downstream that advertises
// authorization_response_iss_parameter_supported. Now a wrong iss, or a
// missing one when advertised, is an error page (no redirect to the app)
// and nothing is redeemed; a matching iss returns the browser to the
// app's native_callback_uri with a one-time response_code, which the
// device needs with its auth_session.
func TestDefect_WebCallbackIss(t *testing.T) {
	refusedCallback := func(t *testing.T, e *mockFed) {
		t.Helper()
		web, cb, _ := browserHop(t, e, nil)
		requireErrorPage(t, getURL(t, cb), http.StatusBadRequest)
		require.EqualValues(t, 0, e.tokens(), "nothing redeemed at the downstream")
		r := post(t, e.as1.native(), url.Values{"auth_session": {web.str("auth_session")}, "response_code": {"x"}})
		require.GreaterOrEqual(t, r.status, 400, r.raw)
		require.Empty(t, r.str("authorization_code"))
	}
	t.Run("wrong iss with a code", func(t *testing.T) {
		refusedCallback(t, browserFedEnv(t, fedtest.Options{AuthorizeIss: "https://evil.example"}))
	})
	t.Run("wrong iss with an error", func(t *testing.T) {
		// A mix-up attacker's error must not reach the app either.
		refusedCallback(t, browserFedEnv(t, fedtest.Options{AuthorizeIss: "https://evil.example", AuthorizeError: "access_denied"}))
	})
	t.Run("iss missing although advertised", func(t *testing.T) {
		refusedCallback(t, browserFedEnv(t, fedtest.Options{IssParameter: true, AuthorizeOmitIss: true}))
	})
	t.Run("matching error goes back to the app", func(t *testing.T) {
		e := browserFedEnv(t, fedtest.Options{IssParameter: true, AuthorizeError: "access_denied"})
		_, cb, _ := browserHop(t, e, nil)
		r := getURL(t, cb)
		require.Equal(t, http.StatusSeeOther, r.status, r.raw)
		loc, err := url.Parse(r.header.Get("Location"))
		require.NoError(t, err)
		require.Equal(t, "https://app.example/cb", loc.Scheme+"://"+loc.Host+loc.Path)
		require.Equal(t, "access_denied", loc.Query().Get("error"))
		require.Empty(t, loc.Query().Get("response_code"))
	})
	for _, tc := range []struct {
		name string
		o    fedtest.Options
	}{
		{"iss advertised and matching", fedtest.Options{IssParameter: true}},
		{"iss not advertised, absent", fedtest.Options{AuthorizeOmitIss: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := browserFedEnv(t, tc.o)
			web, cb, pk := browserHop(t, e, nil)
			r := getURL(t, cb)
			require.Equal(t, http.StatusSeeOther, r.status, r.raw)
			loc, err := url.Parse(r.header.Get("Location"))
			require.NoError(t, err)
			require.Equal(t, "https://app.example/cb", loc.Scheme+"://"+loc.Host+loc.Path)
			require.ElementsMatch(t, []string{"response_code"}, mapKeys(loc.Query()))
			require.EqualValues(t, 1, e.tokens())
			only := post(t, e.as1.native(), url.Values{"auth_session": {web.str("auth_session")}})
			requireOAuthError(t, only, http.StatusBadRequest, "invalid_request")
			out := post(t, e.as1.native(), url.Values{"auth_session": {web.str("auth_session")}, "response_code": {loc.Query().Get("response_code")}})
			require.Equal(t, http.StatusOK, out.status, out.raw)
			tok := e.as1.redeem(t, "demo-app", out.str("authorization_code"), pk)
			require.Equal(t, http.StatusOK, tok.status, tok.raw)
		})
	}
}
