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
	"github.com/fedas/fedas/federation/fedtest"
	"github.com/fedas/fedas/sdk"
)

// followRedirects is a browser without a user: it GETs start and follows
// 303s until a Location starts with stopAt, whose query it returns.
func followRedirects(tb testing.TB, start, stopAt string) url.Values {
	tb.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	u := start
	for i := 0; i < 8; i++ {
		resp, err := hc.Get(u)
		require.NoError(tb, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			tb.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
		}
		u = resp.Header.Get("Location")
		if strings.HasPrefix(u, stopAt) {
			p, err := url.Parse(u)
			require.NoError(tb, err)
			return p.Query()
		}
	}
	tb.Fatal("too many redirects")
	return nil
}

// standardDownstream is AS1 federating to "std", a standard OAuth/OIDC
// server with PAR and no native endpoint (fedtest with NoNative), with
// browser federation allowed or not (docs/decisions.md Q19).
func standardDownstream(tb testing.TB, allow bool, mo fedtest.Options) *mockFed {
	mo.NoNative = true
	return newMockFed(tb, mockFedOpts{mocks: map[string]fedtest.Options{"std": mo}, edit: func(c *config.Config) {
		for i := range c.Downstreams {
			c.Downstreams[i].BrowserFederation = allow
		}
	}})
}

// TestWebFederation_StandardDownstream (docs/decisions.md Q19): the user's
// account is at a downstream without a native endpoint. With browser
// federation allowed and a PKCE challenge, AS1 answers redirect_to_web
// with a request_uri for its own browser endpoint, which pushes to the
// downstream's PAR and sends the browser to its authorization endpoint;
// the downstream returns the browser to AS1's web callback, AS1 redeems
// the code (same redirect_uri at the token endpoint) and sends the browser
// to the app's native_callback_uri with a one-time response_code; the app
// posts it with its auth_session and gets AS1's code.
func TestWebFederation_StandardDownstream(t *testing.T) {
	e := standardDownstream(t, true, fedtest.Options{IssParameter: true})
	std := e.ds["std"]
	c := e.as1.Client(t, "demo-app")
	c.OpenBrowser = func(_ context.Context, u string) (url.Values, error) {
		require.True(t, strings.HasPrefix(u, e.as1.URL+"/oauth2/authorize?"), u)
		return followRedirects(t, u, "https://app.example/cb"), nil
	}
	ui := func(ctx context.Context, r sdk.Response) (url.Values, error) {
		require.Equal(t, "insufficient_information", r.Error)
		return url.Values{"bank": {"std"}}, nil
	}
	code, pk, err := c.Authorize(context.Background(), url.Values{"scope": {"openid"}, "native_callback_uri": {"https://app.example/cb"}}, ui)
	require.NoError(t, err)
	tok, err := c.Exchange(context.Background(), code, pk)
	require.NoError(t, err)
	require.Equal(t, std.URL+"|user-1", e.as1.introspect(t, tok.AccessToken).str("sub"))

	require.EqualValues(t, 1, std.Count(fedtest.PAR), "one push to the downstream's PAR")
	require.EqualValues(t, 1, std.Count(fedtest.Token))
	pushed := std.Requests(fedtest.PAR)[0].Form
	require.Equal(t, e.as1.URL+"/federation/callback", pushed.Get("redirect_uri"))
	require.Equal(t, "S256", pushed.Get("code_challenge_method"))
	require.Empty(t, pushed.Get("native_callback_uri"), "a standard server gets no native parameters")
	tokReq := std.Requests(fedtest.Token)[0].Form
	require.Equal(t, e.as1.URL+"/federation/callback", tokReq.Get("redirect_uri"), "RFC 6749 §4.1.3")
}

// TestWebFederation_BoundToDevice: whoever finishes the browser part, the
// code goes only to the device that holds the auth_session AND the
// response_code the browser brought back to its native_callback_uri.
func TestWebFederation_BoundToDevice(t *testing.T) {
	e := standardDownstream(t, true, fedtest.Options{})
	start := func(t *testing.T) (session, requestURI string) {
		r, _ := e.prompt(t, url.Values{"native_callback_uri": {"https://app.example/cb"}})
		w := e.answer(t, r.str("auth_session"), url.Values{"bank": {"std"}})
		requireOAuthError(t, w, http.StatusForbidden, "redirect_to_web")
		require.NotEmpty(t, w.str("auth_session"))
		require.True(t, strings.HasPrefix(w.str("request_uri"), "urn:ietf:params:oauth:request_uri:"), w.raw)
		return w.str("auth_session"), w.str("request_uri")
	}
	browse := func(t *testing.T, ru string) url.Values {
		return followRedirects(t, e.as1.URL+"/oauth2/authorize?"+url.Values{"client_id": {"demo-app"}, "request_uri": {ru}}.Encode(), "https://app.example/cb")
	}
	t.Run("auth_session alone gets nothing", func(t *testing.T) {
		as, ru := start(t)
		q := browse(t, ru)
		require.NotEmpty(t, q.Get("response_code"))
		r := post(t, e.as1.native(), url.Values{"auth_session": {as}})
		requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
		// The rightful device still finishes.
		r = post(t, e.as1.native(), url.Values{"auth_session": {as}, "response_code": {q.Get("response_code")}})
		require.Equal(t, http.StatusOK, r.status, r.raw)
		require.NotEmpty(t, r.str("authorization_code"))
	})
	t.Run("a wrong response_code ends the session", func(t *testing.T) {
		as, ru := start(t)
		q := browse(t, ru)
		r := post(t, e.as1.native(), url.Values{"auth_session": {as}, "response_code": {"x" + q.Get("response_code")}})
		requireOAuthError(t, r, http.StatusBadRequest, "access_denied")
		r = post(t, e.as1.native(), url.Values{"auth_session": {as}, "response_code": {q.Get("response_code")}})
		requireOAuthError(t, r, http.StatusBadRequest, "invalid_session")
	})
	t.Run("the push is for the browser endpoint only", func(t *testing.T) {
		_, ru := start(t)
		r := post(t, e.as1.native(), url.Values{"client_id": {"demo-app"}, "request_uri": {ru}})
		requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
		// Still usable by its owner.
		require.NotEmpty(t, browse(t, ru).Get("response_code"))
	})
}

// TestWebFederation_NotAllowed: without the route's permission, or
// without a PKCE challenge, AS1 answers
// native_authorization_federate_unsupported and never calls the
// downstream beyond its metadata.
func TestWebFederation_NotAllowed(t *testing.T) {
	e := standardDownstream(t, false, fedtest.Options{})
	r, _ := e.prompt(t, url.Values{"native_callback_uri": {"https://app.example/cb"}})
	w := e.answer(t, r.str("auth_session"), url.Values{"bank": {"std"}})
	requireOAuthError(t, w, http.StatusBadRequest, "native_authorization_federate_unsupported")
	require.Zero(t, e.pars(), "no PAR")
	require.Zero(t, e.ds["std"].Count(fedtest.Authorize))

	e = standardDownstream(t, true, fedtest.Options{})
	r, _ = e.prompt(t, nil) // no native_callback_uri: the browser cannot come back
	w = e.answer(t, r.str("auth_session"), url.Values{"bank": {"std"}})
	requireOAuthError(t, w, http.StatusBadRequest, "native_authorization_federate_unsupported")
	require.Zero(t, e.pars())
}
