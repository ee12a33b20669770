package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/internal/chromium"
	"github.com/fedas/fedas/sdk"
)

// The browser authorization endpoint (redirect_to_web target) and our PAR
// endpoint: SECURITY-RESULTS.md C05, C06, H01–H07, driven by a real Chromium and by
// plain HTTP without redirect following.

const partnerCB = "https://partner.example/cb"

// callbackRecorder is a loopback "client" whose redirect_uri records the
// authorization response it receives.
type callbackRecorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []url.Values
	seen chan struct{}
}

func newCallbackRecorder(t *testing.T) *callbackRecorder {
	t.Helper()
	r := &callbackRecorder{seen: make(chan struct{}, 16)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/cb" {
			http.NotFound(w, req)
			return
		}
		r.mu.Lock()
		r.got = append(r.got, req.URL.Query())
		r.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><title>client</title><p id="done">received</p>`))
		select {
		case r.seen <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *callbackRecorder) cb() string { return r.srv.URL + "/cb" }

func (r *callbackRecorder) calls() []url.Values {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]url.Values(nil), r.got...)
}

// webConfig registers, besides testConfig, a second confidential partner
// for cross-client tests and points demo-partner at redirect.
func webConfig(redirect string) func(*config.Config) {
	return func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "demo-partner" {
				c.Clients[i].RedirectURIs = []string{redirect}
			}
		}
		c.Clients = append(c.Clients, config.Client{ID: "partner2", TokenEndpointAuthMethod: "client_secret_basic",
			SecretSHA256: config.SecretDigest("partner2-secret"), Scopes: []string{"openid"},
			GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"https://partner2.example/cb"}})
	}
}

// pushed is one request pushed to our PAR endpoint.
type pushed struct {
	requestURI string
	expiresIn  float64
	state      string
	pk         sdk.PKCE
}

// pushAs pushes an S256 request for client (client_secret_basic) with a
// fresh state and returns its request_uri.
func pushAs(t *testing.T, in instance, client, secret, redirect string) pushed {
	t.Helper()
	pk := sdk.NewPKCE()
	state := "st-" + strings.ReplaceAll(sdk.NewPKCE().Verifier[:16], "-", "x")
	r := post(t, in.parURL(), url.Values{"response_type": {"code"}, "client_id": {client}, "redirect_uri": {redirect},
		"scope": {"openid"}, "state": {state}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}, basic(client, secret))
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	require.True(t, strings.HasPrefix(r.str("request_uri"), "urn:ietf:params:oauth:request_uri:"), r.raw)
	exp, _ := r.body["expires_in"].(float64)
	return pushed{requestURI: r.str("request_uri"), expiresIn: exp, state: state, pk: pk}
}

func (in instance) authorizeURL(clientID, requestURI string) string {
	return in.URL + "/oauth2/authorize?" + url.Values{"client_id": {clientID}, "request_uri": {requestURI}}.Encode()
}

func getURL(t *testing.T, u string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	return do(t, req)
}

var hiddenSession = regexp.MustCompile(`name="auth_session" value="([^"]+)"`)

// pageSession returns the auth_session of a sign-in form page, or "".
func pageSession(r reply) string {
	m := hiddenSession.FindStringSubmatch(r.raw)
	if m == nil {
		return ""
	}
	return m[1]
}

// requireFormPage asserts a sign-in form with the named inputs.
func requireFormPage(t *testing.T, r reply, inputs ...string) string {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "text/html"), r.header.Get("Content-Type"))
	require.Empty(t, r.header.Get("Location"))
	s := pageSession(r)
	require.NotEmpty(t, s, "no sign-in form: %s", r.raw)
	for _, n := range inputs {
		require.Contains(t, r.raw, `name="`+n+`"`)
	}
	return s
}

// requireErrorPage asserts an HTML error page: the status, no redirect of
// any kind, no sign-in form.
func requireErrorPage(t *testing.T, r reply, status int) {
	t.Helper()
	require.Equal(t, status, r.status, r.raw)
	require.Empty(t, r.header.Get("Location"), "an error before the redirect_uri is trusted must never redirect")
	require.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "text/html"), r.header.Get("Content-Type"))
	require.Empty(t, pageSession(r), "an error page carries no sign-in form")
	require.NotContains(t, r.raw, "<script")
	requirePageHeaders(t, r)
}

func requirePageHeaders(t *testing.T, r reply) {
	t.Helper()
	csp := r.header.Get("Content-Security-Policy")
	require.Contains(t, csp, "frame-ancestors 'none'")
	require.Contains(t, csp, "default-src 'none'")
	require.Equal(t, "DENY", r.header.Get("X-Frame-Options"))
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	require.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"))
}

func (in instance) submit(t *testing.T, form url.Values) reply {
	t.Helper()
	return post(t, in.URL+"/oauth2/authorize", form)
}

// carolSignsIn completes a browser sign-in of carol (password only) over
// plain HTTP from the form page, and returns the final answer.
func (in instance) carolSignsIn(t *testing.T, session string) reply {
	t.Helper()
	return in.submit(t, url.Values{"auth_session": {session}, "username": {"carol"}, "password": {"carol-pw"}})
}

// requireAuthzResponse asserts a 303 to redirect with exactly code, state
// and iss, and returns the code.
func requireAuthzResponse(t *testing.T, in instance, r reply, redirect, state string) string {
	t.Helper()
	require.Equal(t, http.StatusSeeOther, r.status, r.raw)
	loc, err := url.Parse(r.header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, redirect, loc.Scheme+"://"+loc.Host+loc.Path)
	q := loc.Query()
	require.ElementsMatch(t, []string{"code", "state", "iss"}, mapKeys(q), "only code, state and iss: %s", loc)
	require.Equal(t, state, q.Get("state"))
	require.Equal(t, in.URL, q.Get("iss"))
	require.NotEmpty(t, q.Get("code"))
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	return q.Get("code")
}

func mapKeys(v url.Values) []string {
	out := make([]string, 0, len(v))
	for k := range v {
		out = append(out, k)
	}
	return out
}

func (in instance) redeemAsPartner(t *testing.T, code string, pk sdk.PKCE) reply {
	t.Helper()
	return in.redeemAsPartnerAt(t, code, pk, partnerCB)
}

func (in instance) redeemAsPartnerAt(t *testing.T, code string, pk sdk.PKCE, redirectURI string) reply {
	t.Helper()
	// A browser-delivered code is bound to its redirect_uri (RFC 6749 §4.1.3).
	return post(t, in.token(), url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {pk.Verifier}, "redirect_uri": {redirectURI}},
		basic("demo-partner", partnerSecret))
}

// TestBrowserFallback_Chromium signs bob in (password, then TOTP) in a real
// headless Chromium on our browser authorization endpoint for a pushed
// request of demo-partner, lands on the client's loopback redirect_uri
// with code, state and iss, and redeems the code.
func TestBrowserFallback_Chromium(t *testing.T) {
	exe := chromium.Path(t)
	client := newCallbackRecorder(t)
	in := wrap(start(t, nil, webConfig(client.cb())))
	p := pushAs(t, in, "demo-partner", partnerSecret, client.cb())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "profile")),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()

	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(in.authorizeURL("demo-partner", p.requestURI)),
		chromedp.WaitVisible(chromedp.ID("username")),
	), "open the password page")
	title, err := chromedp.Run(bctx, chromedp.Title())
	require.NoError(t, err)
	require.Equal(t, "Sign in", title)
	require.NoError(t, chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.ID("username"), "bob"),
		chromedp.SendKeys(chromedp.ID("password"), "builder"),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("otp")),
	), "submit the password page")
	title, err = chromedp.Run(bctx, chromedp.Title())
	require.NoError(t, err)
	require.Equal(t, "One-time code", title)
	require.Empty(t, client.calls(), "no redirect before the sign-in completes")

	code, err := totp.GenerateCode(bobTOTP, time.Now())
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(bctx,
		chromedp.SendKeys(chromedp.ID("otp"), code),
		chromedp.Click(chromedp.ID("submit")),
	), "submit the otp page")

	select {
	case <-client.seen:
	case <-bctx.Done():
		t.Fatalf("the browser never reached the client's redirect_uri: %v", bctx.Err())
	}
	require.NoError(t, chromedp.Do(bctx, chromedp.WaitVisible(chromedp.ID("done"))))
	landed, err := chromedp.Run(bctx, chromedp.Location())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(landed, client.cb()+"?"), "landed on %s", landed)
	require.NotContains(t, landed, "auth_session")

	calls := client.calls()
	require.Len(t, calls, 1)
	q := calls[0]
	require.ElementsMatch(t, []string{"code", "state", "iss"}, mapKeys(q))
	require.NotEmpty(t, q.Get("code"))
	require.Equal(t, p.state, q.Get("state"))
	require.Equal(t, in.URL, q.Get("iss"))

	tok := in.redeemAsPartnerAt(t, q.Get("code"), p.pk, client.cb())
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	require.NotEmpty(t, tok.str("access_token"))
	ir := in.introspect(t, tok.str("access_token"))
	require.Equal(t, "bob", ir.str("sub"))
	require.Equal(t, "demo-partner", ir.str("client_id"))
	require.Equal(t, []any{"pwd", "otp"}, ir.body["amr"])

	// The request_uri died with the sign-in.
	requireErrorPage(t, getURL(t, in.authorizeURL("demo-partner", p.requestURI)), http.StatusBadRequest)
}

// Page security headers on every page: the form, the error page.
func TestAuthorize_PageSecurityHeaders(t *testing.T) {
	in := wrap(start(t, nil, webConfig(partnerCB)))
	p := pushAs(t, in, "demo-partner", partnerSecret, partnerCB)
	form := getURL(t, in.authorizeURL("demo-partner", p.requestURI))
	requireFormPage(t, form, "username", "password")
	requirePageHeaders(t, form)
	require.Contains(t, form.raw, `action="/oauth2/authorize"`)
	require.Contains(t, form.raw, `method="post"`)

	// A wrong password re-renders the form with the same headers.
	wrong := in.submit(t, url.Values{"auth_session": {pageSession(form)}, "username": {"carol"}, "password": {"nope"}})
	requireFormPage(t, wrong, "password")
	requirePageHeaders(t, wrong)

	requireErrorPage(t, getURL(t, in.URL+"/oauth2/authorize"), http.StatusBadRequest)
	requireErrorPage(t, in.submit(t, url.Values{"auth_session": {"nope"}}), http.StatusBadRequest)
}

// H03: reading the request_uri does not consume it (a reload works), the
// sign-in does; after it, neither a reload nor a second open page yields
// another redirect. The lifetime is short, and an expired request_uri is
// an error.
func TestPAR_RequestURILifetimeAndSingleUse(t *testing.T) {
	in := wrap(start(t, nil, webConfig(partnerCB)))
	p := pushAs(t, in, "demo-partner", partnerSecret, partnerCB)
	require.Positive(t, p.expiresIn)
	require.Less(t, p.expiresIn, float64(600))
	require.LessOrEqual(t, p.expiresIn, float64(90))

	u := in.authorizeURL("demo-partner", p.requestURI)
	s1 := requireFormPage(t, getURL(t, u), "username", "password")
	s2 := requireFormPage(t, getURL(t, u), "username", "password")
	require.NotEqual(t, s1, s2, "each page has its own sign-in")

	code := requireAuthzResponse(t, in, in.carolSignsIn(t, s1), partnerCB, p.state)
	requireErrorPage(t, getURL(t, u), http.StatusBadRequest)
	// The second page, still open, cannot complete the same request.
	requireErrorPage(t, in.carolSignsIn(t, s2), http.StatusBadRequest)
	// Nor can the first, replayed.
	requireErrorPage(t, in.carolSignsIn(t, s1), http.StatusBadRequest)

	r := in.redeemAsPartner(t, code, p.pk)
	require.Equal(t, http.StatusOK, r.status, r.raw)

	t.Run("expired", func(t *testing.T) {
		in, clock := startClocked(t, webConfig(partnerCB), func(c *config.Config) { c.Lifetimes.PushedRequest = time.Second })
		p := pushAs(t, in, "demo-partner", partnerSecret, partnerCB)
		require.LessOrEqual(t, p.expiresIn, float64(1))
		u := in.authorizeURL("demo-partner", p.requestURI)
		s := requireFormPage(t, getURL(t, u), "username")
		clock.Advance(1500 * time.Millisecond)
		requireErrorPage(t, getURL(t, u), http.StatusBadRequest)
		// A page opened before expiry cannot redirect after it.
		requireErrorPage(t, in.carolSignsIn(t, s), http.StatusBadRequest)
	})
}

// H04: a request_uri is bound to the client it was pushed by.
func TestPAR_RequestURIBoundToClient(t *testing.T) {
	in := wrap(start(t, nil, webConfig(partnerCB)))
	p2 := pushAs(t, in, "partner2", "partner2-secret", "https://partner2.example/cb")
	p1 := pushAs(t, in, "demo-partner", partnerSecret, partnerCB)
	for _, tc := range []struct{ name, client, ru string }{
		{"demo-partner uses partner2's", "demo-partner", p2.requestURI},
		{"partner2 uses demo-partner's", "partner2", p1.requestURI},
		{"public client uses demo-partner's", "demo-app", p1.requestURI},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireErrorPage(t, getURL(t, in.authorizeURL(tc.client, tc.ru)), http.StatusBadRequest)
		})
	}
	// The rightful client is unaffected.
	s := requireFormPage(t, getURL(t, in.authorizeURL("partner2", p2.requestURI)), "username")
	loc := in.carolSignsIn(t, s)
	requireAuthzResponse(t, in, loc, "https://partner2.example/cb", p2.state)
}

// H05: the browser endpoint takes only client_id + request_uri.
func TestAuthorize_RejectsNonPAR(t *testing.T) {
	in := wrap(start(t, nil, webConfig(partnerCB)))
	p := pushAs(t, in, "demo-partner", partnerSecret, partnerCB)
	pk := sdk.NewPKCE()
	full := url.Values{"response_type": {"code"}, "client_id": {"demo-partner"}, "redirect_uri": {partnerCB}, "scope": {"openid"},
		"state": {"state-12345"}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}
	withRU := func(extra url.Values) url.Values {
		v := url.Values{"client_id": {"demo-partner"}, "request_uri": {p.requestURI}}
		for k, x := range extra {
			v[k] = x
		}
		return v
	}
	tests := []struct {
		name string
		q    url.Values
	}{
		{"full parameters", full},
		{"full parameters for a public client", url.Values{"response_type": {"code"}, "client_id": {"demo-app"}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}, "redirect_uri": {"https://app.example/cb"}}},
		{"request_uri plus redirect_uri", withRU(url.Values{"redirect_uri": {"https://evil.example/cb"}})},
		{"request_uri plus state", withRU(url.Values{"state": {"other-state-1"}})},
		{"request_uri plus response_type", withRU(url.Values{"response_type": {"code"}})},
		{"request_uri twice", url.Values{"client_id": {"demo-partner"}, "request_uri": {p.requestURI, p.requestURI}}},
		{"client_id twice", url.Values{"client_id": {"demo-partner", "partner2"}, "request_uri": {p.requestURI}}},
		{"no client_id", url.Values{"request_uri": {p.requestURI}}},
		{"request_uri is a URL", url.Values{"client_id": {"demo-partner"}, "request_uri": {"https://evil.example/request.jwt"}}},
		{"request object", url.Values{"client_id": {"demo-partner"}, "request": {"eyJhbGciOiJub25lIn0.e30."}}},
		{"nothing", url.Values{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			requireErrorPage(t, getURL(t, in.URL+"/oauth2/authorize?"+tc.q.Encode()), http.StatusBadRequest)
		})
	}
	// None of this touched the pushed request.
	requireFormPage(t, getURL(t, in.authorizeURL("demo-partner", p.requestURI)), "username")
}

// H07: iss is in every authorization response and metadata says so
// (RFC 9207 §2, §3).
func TestAuthorize_ResponseHasIss(t *testing.T) {
	in := wrap(start(t, nil, webConfig(partnerCB)))
	t.Run("redirect", func(t *testing.T) {
		p := pushAs(t, in, "demo-partner", partnerSecret, partnerCB)
		s := requireFormPage(t, getURL(t, in.authorizeURL("demo-partner", p.requestURI)), "username")
		code := requireAuthzResponse(t, in, in.carolSignsIn(t, s), partnerCB, p.state)
		r := in.redeemAsPartner(t, code, p.pk)
		require.Equal(t, http.StatusOK, r.status, r.raw)
	})
	t.Run("metadata", func(t *testing.T) {
		m := getURL(t, in.URL+"/.well-known/oauth-authorization-server")
		require.Equal(t, http.StatusOK, m.status)
		require.Equal(t, true, m.body["authorization_response_iss_parameter_supported"],
			"RFC 9207 §3: metadata must publish authorization_response_iss_parameter_supported=true")
	})
}

// C05: before the client and its redirect_uri are trusted, every error is
// a page, never a Location.
func TestAuthorize_NoOpenRedirectOnInvalidClient(t *testing.T) {
	in := wrap(start(t, nil, webConfig(partnerCB), withBankApp(func(a *config.App) { a.Clients = []string{"demo-app"} })))
	p := pushAs(t, in, "demo-partner", partnerSecret, partnerCB)
	// A request_uri of our own making without a redirect_uri: the deep
	// link of a local redirect_to_app.
	r, _ := in.initial(t, "demo-app", url.Values{"native_callback_uri": {"https://app.example/cb"}, "scope": {"openid"}})
	require.Equal(t, "redirect_to_app", r.str("error"), r.raw)
	dl, err := url.Parse(r.str("deep_link"))
	require.NoError(t, err)
	appRU := dl.Query().Get("request_uri")
	require.NotEmpty(t, appRU)

	tests := []struct {
		name string
		u    string
	}{
		{"unknown client", in.authorizeURL("nope", p.requestURI)},
		{"unknown request_uri", in.authorizeURL("demo-partner", "urn:ietf:params:oauth:request_uri:"+strings.Repeat("A", 43))},
		{"unknown client and redirect_uri", in.URL + "/oauth2/authorize?" + url.Values{"client_id": {"nope"}, "response_type": {"code"}, "redirect_uri": {"https://evil.example/cb"}}.Encode()},
		{"registered client, unregistered redirect_uri", in.URL + "/oauth2/authorize?" + url.Values{"client_id": {"demo-partner"}, "response_type": {"code"}, "redirect_uri": {"https://evil.example/cb"}, "state": {"state-12345"}}.Encode()},
		{"request_uri without redirect_uri", in.authorizeURL("demo-app", appRU)},
		{"oversized request_uri", in.authorizeURL("demo-partner", "urn:ietf:params:oauth:request_uri:"+strings.Repeat("A", 400))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := getURL(t, tc.u)
			requireErrorPage(t, r, http.StatusBadRequest)
			require.NotContains(t, r.raw, "evil.example")
		})
	}
	t.Run("unknown auth_session posted", func(t *testing.T) {
		r := in.submit(t, url.Values{"auth_session": {strings.Repeat("A", 64)}, "username": {"carol"}, "password": {"carol-pw"}})
		requireErrorPage(t, r, http.StatusBadRequest)
	})
	t.Run("native auth_session posted to the browser endpoint", func(t *testing.T) {
		// A session of the native endpoint carries no browser redirect.
		r, _ := in.initial(t, "demo-app", nil)
		require.Equal(t, http.StatusForbidden, r.status, r.raw)
		out := in.submit(t, url.Values{"auth_session": {r.str("auth_session")}, "username": {"carol"}, "password": {"carol-pw"}})
		requireErrorPage(t, out, http.StatusBadRequest)
	})
}

// C06: the redirect after a credential POST is 303, never 307 (which would
// replay the password to the client) nor 302.
func TestAuthorize_RedirectStatusCodes(t *testing.T) {
	in := wrap(start(t, nil, webConfig(partnerCB)))
	t.Run("password", func(t *testing.T) {
		p := pushAs(t, in, "demo-partner", partnerSecret, partnerCB)
		s := requireFormPage(t, getURL(t, in.authorizeURL("demo-partner", p.requestURI)), "username")
		r := in.carolSignsIn(t, s)
		require.Equal(t, http.StatusSeeOther, r.status, r.raw)
		require.NotEqual(t, http.StatusTemporaryRedirect, r.status)
		requireAuthzResponse(t, in, r, partnerCB, p.state)
	})
	t.Run("password then otp", func(t *testing.T) {
		p := pushAs(t, in, "demo-partner", partnerSecret, partnerCB)
		s := requireFormPage(t, getURL(t, in.authorizeURL("demo-partner", p.requestURI)), "username")
		r := in.submit(t, url.Values{"auth_session": {s}, "username": {"bob"}, "password": {"builder"}})
		s = requireFormPage(t, r, "otp")
		require.NotContains(t, r.raw, `name="password"`)
		code, err := totp.GenerateCode(bobTOTP, time.Now())
		require.NoError(t, err)
		r = in.submit(t, url.Values{"auth_session": {s}, "otp": {code}})
		require.Equal(t, http.StatusSeeOther, r.status, r.raw)
		c := requireAuthzResponse(t, in, r, partnerCB, p.state)
		tok := in.redeemAsPartner(t, c, p.pk)
		require.Equal(t, http.StatusOK, tok.status, tok.raw)
	})
}

// H01: the PAR endpoint requires client authentication.
func TestPAR_RequiresClientAuth(t *testing.T) {
	// demo-app (public) gets a redirect_uri so that only the missing
	// authentication can fail its requests.
	in := wrap(start(t, nil, func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "demo-app" {
				c.Clients[i].RedirectURIs = []string{"https://app.example/web-cb"}
			}
		}
	}))
	pk := sdk.NewPKCE()
	base := func(client string) url.Values {
		redirect := partnerCB
		if client == "demo-app" {
			redirect = "https://app.example/web-cb"
		}
		return url.Values{"response_type": {"code"}, "client_id": {client}, "redirect_uri": {redirect}, "scope": {"openid"},
			"state": {"state-12345"}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}
	}
	withSecret := func(secret string) url.Values {
		v := base("demo-partner")
		v.Set("client_secret", secret)
		return v
	}
	tests := []struct {
		name string
		form url.Values
		auth func(*http.Request)
	}{
		{"no authentication", base("demo-partner"), nil},
		{"wrong basic secret", base("demo-partner"), basic("demo-partner", "wrong")},
		{"empty basic secret", base("demo-partner"), basic("demo-partner", "")},
		{"unknown client", base("nope"), basic("nope", "x")},
		{"wrong post secret", withSecret("wrong"), nil},
		{"public client", base("demo-app"), nil},
		{"public client claiming basic", base("demo-app"), basic("demo-app", "")},
		{"bogus client_assertion", func() url.Values {
			v := base("demo-partner")
			v.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
			v.Set("client_assertion", "eyJhbGciOiJub25lIn0.eyJpc3MiOiJkZW1vLXBhcnRuZXIifQ.")
			return v
		}(), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opts []func(*http.Request)
			if tc.auth != nil {
				opts = append(opts, tc.auth)
			}
			r := post(t, in.parURL(), tc.form, opts...)
			requireOAuthError(t, r, http.StatusUnauthorized, "invalid_client")
			require.Empty(t, r.str("request_uri"))
		})
	}
	// Authenticated, but as another client than the request names.
	r := post(t, in.parURL(), base("demo-partner"), basic("fp-conf", "fp-conf-secret"))
	requireOAuthError(t, r, r.status, "invalid_client", "invalid_request")
	require.Contains(t, []int{http.StatusBadRequest, http.StatusUnauthorized}, r.status)
	r = post(t, in.parURL(), base("demo-partner"), basic("demo-partner", partnerSecret))
	require.Equal(t, http.StatusCreated, r.status, r.raw)
}

// H02: request_uri is not a PAR parameter (RFC 9126 §2.1).
func TestPAR_RejectsRequestURIParam(t *testing.T) {
	in := wrap(start(t, nil))
	p := pushAs(t, in, "demo-partner", partnerSecret, partnerCB)
	pk := sdk.NewPKCE()
	for _, ru := range []string{p.requestURI, "urn:ietf:params:oauth:request_uri:x", "https://evil.example/req"} {
		r := post(t, in.parURL(), url.Values{"response_type": {"code"}, "client_id": {"demo-partner"}, "redirect_uri": {partnerCB},
			"state": {"state-12345"}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}, "request_uri": {ru}},
			basic("demo-partner", partnerSecret))
		requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
		require.Empty(t, r.str("request_uri"))
	}
}

// H06: a non-federating client must send redirect_uri to PAR (FAPI 2.0
// SP 5.3.2.2-6).
func TestPAR_RedirectURIRequired(t *testing.T) {
	in := wrap(start(t, nil))
	for _, scope := range []string{"openid", "profile", ""} {
		t.Run("scope="+scope, func(t *testing.T) {
			pk := sdk.NewPKCE()
			f := url.Values{"response_type": {"code"}, "client_id": {"demo-partner"},
				"state": {"state-12345"}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}
			if scope != "" {
				f.Set("scope", scope)
			}
			r := post(t, in.parURL(), f, basic("demo-partner", partnerSecret))
			requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
			require.Empty(t, r.str("request_uri"))
		})
	}
}

// H03 / C05 across channels: a browser sign-in (auth_session in our HTML
// form, request_uri unconsumed until the redirect) must not be completed
// at the native endpoint, which would return a code as JSON, skip the
// request_uri's consumption and so allow a second code for the same
// request_uri. Conversely a native session posted to the browser endpoint
// is refused without checking the credentials or changing the session.
func TestAuthorize_SessionsStayInTheirChannel(t *testing.T) {
	in := wrap(start(t, nil, webConfig(partnerCB)))
	t.Run("browser session at the native endpoint", func(t *testing.T) {
		p := pushAs(t, in, "demo-partner", partnerSecret, partnerCB)
		u := in.authorizeURL("demo-partner", p.requestURI)
		s := requireFormPage(t, getURL(t, u), "username")
		r := post(t, in.native(), url.Values{"auth_session": {s}, "username": {"carol"}, "password": {"carol-pw"}})
		require.Empty(t, r.str("authorization_code"), "a browser sign-in completed at the native endpoint: %s", r.raw)
		requireOAuthError(t, r, http.StatusBadRequest, "invalid_session")
		// The pushed request completes exactly once, in the browser.
		s = requireFormPage(t, getURL(t, u), "username")
		requireAuthzResponse(t, in, in.carolSignsIn(t, s), partnerCB, p.state)
		requireErrorPage(t, getURL(t, u), http.StatusBadRequest)
	})
	t.Run("native session at the browser endpoint", func(t *testing.T) {
		r, pk := in.initial(t, "demo-app", nil)
		as := r.str("auth_session")
		requireErrorPage(t, in.submit(t, url.Values{"auth_session": {as}, "username": {"carol"}, "password": {"carol-pw"}}), http.StatusBadRequest)
		// The native session is untouched and completes natively.
		r = post(t, in.native(), url.Values{"auth_session": {as}, "username": {"carol"}, "password": {"carol-pw"}})
		require.Equal(t, http.StatusOK, r.status, "the browser endpoint consumed a native session: %s", r.raw)
		require.Equal(t, http.StatusOK, in.redeem(t, "demo-app", r.str("authorization_code"), pk).status)
	})
}
