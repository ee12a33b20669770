package admin_test

import (
	"context"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/admin"
	"github.com/fedas/fedas/admin/admintest"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/storage/memory"
)

const wantCSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// consolePages are GET pages of a console with one downstream "ds1".
var consolePages = []string{
	"/console/", "/console/downstreams", "/console/downstreams/new", "/console/downstreams/ds1/edit",
	"/console/downstreams/ds1/delete", "/console/discover", "/console/routes", "/console/routes/new",
	"/console/clients", "/console/clients/new", "/console/clients/demo-app/edit", "/console/apps", "/console/apps/new",
	"/console/prompt", "/console/default-route", "/console/route-test", "/console/route-test?run=1&email=jane%40ds1.example",
	"/console/audit", "/console/versions", "/console/versions/1",
}

// consoleInstance is an admin instance whose policy has a downstream
// "ds1" (client_secret_basic, no fetch needed), an email prompt and a
// route to it.
func consoleInstance(t *testing.T) *admintest.Instance {
	t.Helper()
	t.Setenv("FEDAS_SECRET_CONSOLE_TEST", "s3cret")
	return admintest.Start(t, admintest.Options{Configure: func(c *config.Config) {
		c.Downstreams = append(c.Downstreams, config.Downstream{ID: "ds1", Issuer: "https://ds1.example", Name: "DS one", ClientID: "us",
			Auth: config.DownstreamAuth{Method: "client_secret_basic", SecretEnv: "FEDAS_SECRET_CONSOLE_TEST", Secret: "s3cret"}})
		c.Prompt = &config.Prompt{Inputs: []config.PromptInput{{Key: "email", Title: "Email"}}}
		c.Routes = append(c.Routes, config.Route{ID: "to-ds1", Downstream: "ds1", EmailDomains: []string{"ds1.example"}})
	}})
}

// browser is a cookie-keeping HTTP client that does not follow
// redirects, as a test's stand-in for a browser.
type browser struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newBrowser(t *testing.T, in *admintest.Instance) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, base: in.AdminURL, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.hc.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

func (b *browser) get(path string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.base+path, nil)
	require.NoError(b.t, err)
	return b.do(req)
}

// post sends a form; hdr adds headers (Origin).
func (b *browser) post(path string, form url.Values, hdr map[string]string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return b.do(req)
}

var (
	csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	etagField = regexp.MustCompile(`name="etag" value="([^"]*)"`)
)

func hidden(t *testing.T, re *regexp.Regexp, body string) string {
	t.Helper()
	m := re.FindStringSubmatch(body)
	require.NotNil(t, m, "no %s in %s", re, body)
	return html.UnescapeString(m[1])
}

// login signs in with token and returns the session's CSRF value.
func (b *browser) login(token string) string {
	b.t.Helper()
	p := b.get("/console/login")
	require.Equal(b.t, http.StatusOK, p.status)
	r := b.post("/console/login", url.Values{"csrf": {hidden(b.t, csrfField, p.body)}, "token": {token}, "next": {"/console/"}}, nil)
	require.Equal(b.t, http.StatusSeeOther, r.status, r.body)
	require.Equal(b.t, "/console/", r.header.Get("Location"))
	home := b.get("/console/")
	require.Equal(b.t, http.StatusOK, home.status, home.body)
	return hidden(b.t, csrfField, home.body)
}

func consoleHead(t *testing.T, in *admintest.Instance) float64 {
	t.Helper()
	r := in.Do(t, http.MethodGet, "/admin/v1/status", in.ReadToken, nil, nil)
	require.Equal(t, http.StatusOK, r.Status)
	return r.JSON(t)["version"].(float64)
}

func sessionCookie(t *testing.T, h http.Header) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == admin.SessionCookie {
			return c
		}
	}
	return nil
}

func TestConsole_LoginRequired(t *testing.T) {
	in := consoleInstance(t)
	b := newBrowser(t, in)
	for _, p := range append(consolePages, "/console/export", "/console/no-such-page") {
		t.Run(p, func(t *testing.T) {
			r := b.get(p)
			require.Equal(t, http.StatusSeeOther, r.status)
			loc, err := url.Parse(r.header.Get("Location"))
			require.NoError(t, err)
			require.Equal(t, "/console/login", loc.Path)
			require.Equal(t, wantCSP, r.header.Get("Content-Security-Policy"))
		})
	}
	// A POST without a session changes nothing either.
	r := b.post("/console/downstreams/new", url.Values{"id": {"x"}}, nil)
	require.Equal(t, http.StatusSeeOther, r.status)
	require.EqualValues(t, 1, consoleHead(t, in))
	// The root of the admin listener leads to the console.
	r = b.get("/")
	require.Equal(t, http.StatusSeeOther, r.status)
	require.Equal(t, "/console/", r.header.Get("Location"))
}

func TestConsole_SignIn(t *testing.T) {
	in := consoleInstance(t)
	for _, tc := range []struct {
		name   string
		token  string
		csrf   func(formValue string) string
		status int
	}{
		{"wrong token", admin.NewToken(), nil, http.StatusUnauthorized},
		{"empty token", "", nil, http.StatusUnauthorized},
		{"no form value", in.WriteToken, func(string) string { return "" }, http.StatusForbidden},
		{"wrong form value", in.WriteToken, func(string) string { return "x" }, http.StatusForbidden},
		{"write token", in.WriteToken, nil, http.StatusSeeOther},
		{"read token", in.ReadToken, nil, http.StatusSeeOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser(t, in)
			p := b.get("/console/login")
			require.Equal(t, http.StatusOK, p.status)
			require.Contains(t, p.body, `type="password"`)
			require.Contains(t, p.body, `<label for="token">`)
			v := hidden(t, csrfField, p.body)
			if tc.csrf != nil {
				v = tc.csrf(v)
			}
			r := b.post("/console/login", url.Values{"csrf": {v}, "token": {tc.token}}, nil)
			require.Equal(t, tc.status, r.status, r.body)
			require.Equal(t, wantCSP, r.header.Get("Content-Security-Policy"))
			ck := sessionCookie(t, r.header)
			if tc.status != http.StatusSeeOther {
				require.Nil(t, ck, "no session on a refused sign-in")
				require.Contains(t, r.body, `role="alert"`)
				require.Contains(t, r.body, `aria-invalid="true"`)
				if tc.token != "" {
					require.NotContains(t, r.body, tc.token, "the token is never echoed")
				}
				return
			}
			require.NotNil(t, ck)
			require.True(t, ck.HttpOnly)
			require.Equal(t, http.SameSiteStrictMode, ck.SameSite)
			require.Equal(t, "/console", ck.Path)
			require.False(t, ck.Secure, "plain http listener")
			require.NotContains(t, ck.Value, tc.token)
			require.NotContains(t, r.header.Get("Location"), tc.token)
		})
	}
	// After signing in the browser goes back where it was sent from, but
	// never off the console.
	for next, want := range map[string]string{
		"/console/routes?x=1":     "/console/routes?x=1",
		"//evil.example/console/": "/console/",
		"https://evil.example/":   "/console/",
		"/console/../admin/v1":    "/console/",
		"/console//evil.example":  "/console/",
		`/console/\\evil.example`: "/console/",
	} {
		b := newBrowser(t, in)
		p := b.get("/console/login?" + url.Values{"next": {next}}.Encode())
		r := b.post("/console/login", url.Values{"csrf": {hidden(t, csrfField, p.body)}, "token": {in.ReadToken}, "next": {next}}, nil)
		require.Equal(t, http.StatusSeeOther, r.status)
		require.Equal(t, want, r.header.Get("Location"), next)
	}
}

func TestConsole_CSPOnEveryPage(t *testing.T) {
	in := consoleInstance(t)
	b := newBrowser(t, in)
	b.login(in.WriteToken)
	for _, p := range append(consolePages, "/console/login", "/console/no-such-page") {
		t.Run(p, func(t *testing.T) {
			r := b.get(p)
			want := http.StatusOK
			switch p {
			case "/console/login":
				want = http.StatusSeeOther // already signed in
			case "/console/no-such-page":
				want = http.StatusNotFound
			}
			require.Equal(t, want, r.status, r.body)
			require.Equal(t, wantCSP, r.header.Get("Content-Security-Policy"))
			require.Equal(t, "no-store", r.header.Get("Cache-Control"))
			if want == http.StatusSeeOther {
				return
			}
			require.Equal(t, "text/html; charset=UTF-8", r.header.Get("Content-Type"))
			require.Contains(t, r.body, `<meta name="viewport"`)
			require.NotContains(t, r.body, "<script")
			require.NotContains(t, r.body, " style=", "no inline styles: the CSP forbids them")
			requireLabelled(t, r.body)
		})
	}
	css := b.get("/console/static/console.css")
	require.Equal(t, http.StatusOK, css.status)
	require.Equal(t, "text/css; charset=utf-8", css.header.Get("Content-Type"))
	require.Equal(t, wantCSP, css.header.Get("Content-Security-Policy"))
}

var (
	inputTag = regexp.MustCompile(`<(input|select|textarea)\b[^>]*>`)
	idAttr   = regexp.MustCompile(`\bid="([^"]+)"`)
)

// requireLabelled: every visible input has a <label for> naming its id,
// and no id is used twice (labels and aria-describedby rely on them).
func requireLabelled(t *testing.T, body string) {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`\sid="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		require.False(t, seen[m[1]], "id %q is used twice", m[1])
		seen[m[1]] = true
	}
	for _, tag := range inputTag.FindAllString(body, -1) {
		if strings.Contains(tag, `type="hidden"`) || strings.Contains(tag, `type="submit"`) {
			continue
		}
		m := idAttr.FindStringSubmatch(tag)
		require.NotNil(t, m, "input without id: %s", tag)
		require.Contains(t, body, `<label for="`+m[1]+`"`, "input %s has no label", m[1])
	}
}

// newDownstream is a valid console form for a downstream.
func newDownstream(csrf, id string) url.Values {
	return url.Values{"csrf": {csrf}, "id": {id}, "issuer": {"https://" + id + ".example"}, "client_id": {"us"},
		"auth.method": {"client_secret_basic"}, "auth.secret_env": {"FEDAS_SECRET_CONSOLE_TEST"}}
}

func TestConsole_PostsAreGuarded(t *testing.T) {
	in := consoleInstance(t)
	b := newBrowser(t, in)
	csrf := b.login(in.WriteToken)
	rd := newBrowser(t, in)
	rcsrf := rd.login(in.ReadToken)
	for _, tc := range []struct {
		name   string
		b      *browser
		form   url.Values
		hdr    map[string]string
		status int
	}{
		{"no csrf", b, newDownstream("", "ds2"), nil, http.StatusForbidden},
		{"wrong csrf", b, newDownstream(base64.RawURLEncoding.EncodeToString(make([]byte, 32)), "ds2"), nil, http.StatusForbidden},
		{"another session's csrf", b, newDownstream(rcsrf, "ds2"), nil, http.StatusForbidden},
		{"foreign origin", b, newDownstream(csrf, "ds2"), map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"null origin", b, newDownstream(csrf, "ds2"), map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"cross-site fetch", b, newDownstream(csrf, "ds2"), map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"read role", rd, newDownstream(rcsrf, "ds2"), nil, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.b.post("/console/downstreams/new", tc.form, tc.hdr)
			require.Equal(t, tc.status, r.status, r.body)
			require.Equal(t, wantCSP, r.header.Get("Content-Security-Policy"))
			require.EqualValues(t, 1, consoleHead(t, in), "nothing committed")
		})
	}
	// The read role sees pages but no edit buttons, and cannot roll back
	// or delete either.
	p := rd.get("/console/downstreams")
	require.Equal(t, http.StatusOK, p.status)
	require.NotContains(t, p.body, "New downstream")
	p = rd.get("/console/downstreams/ds1/edit")
	require.Contains(t, p.body, "<fieldset class=\"plain\" disabled>")
	require.NotContains(t, p.body, `id="save"`)
	for _, path := range []string{"/console/downstreams/ds1/delete", "/console/versions/1/rollback", "/console/downstreams/ds1/check", "/console/prompt/delete"} {
		r := rd.post(path, url.Values{"csrf": {rcsrf}, "etag": {"*"}}, nil)
		require.Equal(t, http.StatusForbidden, r.status, path)
	}
	require.Equal(t, http.StatusForbidden, rd.get("/console/export").status)
	// A read session may still sign out.
	r := rd.post("/console/logout", url.Values{"csrf": {rcsrf}}, nil)
	require.Equal(t, http.StatusSeeOther, r.status)

	// The same write, same-origin and with the CSRF value, goes through.
	r = b.post("/console/downstreams/new", newDownstream(csrf, "ds2"), map[string]string{"Origin": in.AdminURL})
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	require.Equal(t, "/console/downstreams?saved=2", r.header.Get("Location"))
	require.EqualValues(t, 2, consoleHead(t, in))
	list := b.get(r.header.Get("Location"))
	require.Contains(t, list.body, "Saved: version 2.")
	require.Contains(t, list.body, "ds2")
	v := in.Do(t, http.MethodGet, "/admin/v1/versions/2", in.ReadToken, nil, nil)
	require.Equal(t, "console", v.JSON(t)["origin"])
	require.Equal(t, "writer", v.JSON(t)["author"])
}

func TestConsole_SessionEnds(t *testing.T) {
	in := consoleInstance(t)
	t.Run("tampered cookie", func(t *testing.T) {
		b := newBrowser(t, in)
		b.login(in.WriteToken)
		u, _ := url.Parse(in.AdminURL + "/console/")
		cks := b.hc.Jar.Cookies(u)
		require.Len(t, cks, 1)
		raw, err := base64.RawURLEncoding.DecodeString(cks[0].Value)
		require.NoError(t, err)
		raw[len(raw)/2] ^= 1
		b.hc.Jar.SetCookies(u, []*http.Cookie{{Name: admin.SessionCookie, Value: base64.RawURLEncoding.EncodeToString(raw), Path: "/console"}})
		r := b.get("/console/")
		require.Equal(t, http.StatusSeeOther, r.status)
		require.True(t, strings.HasPrefix(r.header.Get("Location"), "/console/login"))
	})
	t.Run("forged cookie", func(t *testing.T) {
		b := newBrowser(t, in)
		u, _ := url.Parse(in.AdminURL + "/console/")
		b.hc.Jar.SetCookies(u, []*http.Cookie{{Name: admin.SessionCookie, Value: base64.RawURLEncoding.EncodeToString([]byte(`{"n":"writer","r":"write"}`)), Path: "/console"}})
		require.Equal(t, http.StatusSeeOther, b.get("/console/").status)
	})
	t.Run("signed out", func(t *testing.T) {
		b := newBrowser(t, in)
		csrf := b.login(in.WriteToken)
		r := b.post("/console/logout", url.Values{"csrf": {csrf}}, nil)
		require.Equal(t, http.StatusSeeOther, r.status)
		ck := sessionCookie(t, r.header)
		require.NotNil(t, ck)
		require.Less(t, ck.MaxAge, 0)
		require.Equal(t, http.StatusSeeOther, b.get("/console/").status)
	})
	t.Run("token line removed", func(t *testing.T) {
		b := newBrowser(t, in)
		csrf := b.login(in.WriteToken)
		old, err := os.ReadFile(in.TokensFile)
		require.NoError(t, err)
		var keep []string
		for _, l := range strings.Split(string(old), "\n") {
			if !strings.HasSuffix(l, " writer") {
				keep = append(keep, l)
			}
		}
		require.NoError(t, os.WriteFile(in.TokensFile, []byte(strings.Join(keep, "\n")), 0o600))
		t.Cleanup(func() { _ = os.WriteFile(in.TokensFile, old, 0o600) })
		r := b.get("/console/")
		require.Equal(t, http.StatusSeeOther, r.status)
		r = b.post("/console/downstreams/new", newDownstream(csrf, "ds3"), nil)
		require.Equal(t, http.StatusSeeOther, r.status)
		require.True(t, strings.HasPrefix(r.header.Get("Location"), "/console/login"))
		require.EqualValues(t, 1, consoleHead(t, in), "nothing committed")
	})
}

// TestConsole_SessionExpires: a session lasts eight hours on the
// Admin's clock, whatever the browser keeps.
func TestConsole_SessionExpires(t *testing.T) {
	st := memory.New()
	t.Cleanup(func() { _ = st.Close() })
	cfg := config.Default()
	_, _, err := admin.Bootstrap(context.Background(), st, config.PolicyOf(cfg), 10, time.Now())
	require.NoError(t, err)
	path, write, _ := admintest.Tokens(t, t.TempDir())
	tokens, err := admin.LoadTokens(path)
	require.NoError(t, err)
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	a, err := admin.New(admin.Options{Service: admin.NewService(admin.ServiceOptions{Store: st, Base: cfg}), Tokens: tokens,
		SessionKey: make([]byte, 32), Now: clock})
	require.NoError(t, err)
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	b := newBrowser(t, &admintest.Instance{AdminURL: srv.URL})
	p := b.get("/console/login")
	r := b.post("/console/login", url.Values{"csrf": {hidden(t, csrfField, p.body)}, "token": {write}}, nil)
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	offset.Store(int64(admin.SessionLifetime - time.Minute))
	require.Equal(t, http.StatusOK, b.get("/console/audit").status)
	offset.Store(int64(admin.SessionLifetime))
	require.Equal(t, http.StatusSeeOther, b.get("/console/audit").status)
}

// TestConsole_SecureCookieOverTLS: on a TLS listener the session cookie
// is Secure, and a POST must come from the https origin.
func TestConsole_SecureCookieOverTLS(t *testing.T) {
	in := consoleInstance(t)
	srv := httptest.NewTLSServer(in.Admin.Handler())
	t.Cleanup(srv.Close)
	b := newBrowser(t, &admintest.Instance{AdminURL: srv.URL})
	b.hc.Transport = srv.Client().Transport
	p := b.get("/console/login")
	v := hidden(t, csrfField, p.body)
	host := strings.TrimPrefix(srv.URL, "https://")
	r := b.post("/console/login", url.Values{"csrf": {v}, "token": {in.WriteToken}}, map[string]string{"Origin": "http://" + host})
	require.Equal(t, http.StatusForbidden, r.status, "the http origin is not ours on TLS")
	r = b.post("/console/login", url.Values{"csrf": {v}, "token": {in.WriteToken}}, map[string]string{"Origin": srv.URL})
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	ck := sessionCookie(t, r.header)
	require.NotNil(t, ck)
	require.True(t, ck.Secure)
	require.True(t, ck.HttpOnly)
}

// describedText returns the text of the elements an input's
// aria-describedby names.
func describedText(t *testing.T, body, inputID string) string {
	t.Helper()
	m := regexp.MustCompile(`<(?:input|select|textarea)[^>]*\bid="` + regexp.QuoteMeta(inputID) + `"[^>]*>`).FindString(body)
	require.NotEmpty(t, m, "no input %s", inputID)
	d := regexp.MustCompile(`aria-describedby="([^"]+)"`).FindStringSubmatch(m)
	require.NotNil(t, d, "input %s has no aria-describedby: %s", inputID, m)
	var out []string
	for _, id := range strings.Fields(d[1]) {
		e := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `">(.*?)</p>`).FindStringSubmatch(body)
		require.NotNil(t, e, "no element %s", id)
		out = append(out, html.UnescapeString(e[1]))
	}
	return strings.Join(out, " ")
}

func TestConsole_FormErrors(t *testing.T) {
	in := consoleInstance(t)
	b := newBrowser(t, in)
	csrf := b.login(in.WriteToken)

	for _, tc := range []struct {
		name, path string
		form       url.Values
		status     int
		input      string
		want       string
	}{
		{"bad issuer", "/console/downstreams/new", func() url.Values {
			f := newDownstream(csrf, "ds2")
			f.Set("issuer", "ftp://x")
			return f
		}(), http.StatusBadRequest, "f-issuer", "must use https"},
		{"no id", "/console/downstreams/new", func() url.Values {
			f := newDownstream(csrf, "ds2")
			f.Del("id")
			return f
		}(), http.StatusBadRequest, "f-id", "required"},
		{"taken id", "/console/downstreams/new", newDownstream(csrf, "ds1"), http.StatusConflict, "f-id", "already exists"},
		{"auth without key", "/console/downstreams/new", func() url.Values {
			f := newDownstream(csrf, "ds2")
			f.Set("auth.method", "private_key_jwt")
			return f
		}(), http.StatusBadRequest, "f-auth-method", "needs key"},
		{"scope line", "/console/downstreams/new", func() url.Values {
			f := newDownstream(csrf, "ds2")
			f.Set("scopes", "openid=openid\nbroken")
			return f
		}(), http.StatusBadRequest, "f-scopes", "line 2"},
		{"route to nowhere", "/console/routes/new", url.Values{"csrf": {csrf}, "id": {"r2"}, "target": {"downstream:nope"}, "email_domains": {"x.example"}}, http.StatusBadRequest, "f-target", "not a configured downstream"},
		{"route option", "/console/routes/new", url.Values{"csrf": {csrf}, "id": {"r2"}, "target": {"local"}, "option": {"bank=x"}}, http.StatusBadRequest, "f-option", "not a prompt option"},
		{"client uri", "/console/clients/new", url.Values{"csrf": {csrf}, "id": {"c2"}, "token_endpoint_auth_method": {"none"}, "redirect_uris": {"https://ok.example/cb\nhttp://evil.example/cb"}}, http.StatusBadRequest, "f-redirect-uris", "loopback"},
		{"prompt attempts", "/console/prompt", url.Values{"csrf": {csrf}, "etag": {"*"}, "inputs.email": {"on"}, "max_attempts": {"many"}}, http.StatusBadRequest, "f-max-attempts", "whole number"},
		{"prompt yaml", "/console/prompt", url.Values{"csrf": {csrf}, "etag": {"*"}, "inputs.email": {"on"}, "options": {"- key: [unclosed"}}, http.StatusBadRequest, "f-options", "not valid YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.post(tc.path, tc.form, nil)
			require.Equal(t, tc.status, r.status, r.body)
			require.Contains(t, r.body, `role="alert"`)
			require.Contains(t, describedText(t, r.body, tc.input), tc.want)
			require.EqualValues(t, 1, consoleHead(t, in), "nothing committed")
			// The user's input is kept.
			for k, vs := range tc.form {
				if k == "csrf" || k == "etag" || strings.HasPrefix(k, "auth.key") {
					continue
				}
				for _, v := range vs {
					for _, line := range strings.Split(v, "\n") {
						require.Contains(t, html.UnescapeString(r.body), line, "input %s kept", k)
					}
				}
			}
		})
	}
}

func TestConsole_EditConflict(t *testing.T) {
	in := consoleInstance(t)
	b := newBrowser(t, in)
	csrf := b.login(in.WriteToken)
	edit := b.get("/console/downstreams/ds1/edit")
	require.Equal(t, http.StatusOK, edit.status)
	etag := hidden(t, etagField, edit.body)
	require.Contains(t, edit.body, `value="https://ds1.example"`)

	// Someone else changes ds1 through the API.
	g := in.Do(t, http.MethodGet, "/admin/v1/downstreams/ds1", in.WriteToken, nil, nil)
	d := g.JSON(t)
	d["name"] = "Renamed by the API"
	delete(d, "auth")
	d["auth"] = map[string]any{"method": "client_secret_basic", "secret_env": "FEDAS_SECRET_CONSOLE_TEST"}
	u := in.Do(t, http.MethodPut, "/admin/v1/downstreams/ds1", in.WriteToken, map[string]string{"If-Match": g.Header.Get("ETag")}, d)
	require.Equal(t, http.StatusOK, u.Status, "%s", u.Body)

	f := newDownstream(csrf, "ds1")
	f.Set("etag", etag)
	f.Set("name", "My console name")
	r := b.post("/console/downstreams/ds1/edit", f, nil)
	require.Equal(t, http.StatusPreconditionFailed, r.status, r.body)
	require.Contains(t, r.body, "Changed by someone else since you opened it — reload")
	require.Contains(t, r.body, `value="My console name"`, "the user's input is kept")
	require.EqualValues(t, 2, consoleHead(t, in))

	// With the fresh ETag the edit goes through; write-only keys are kept.
	edit = b.get("/console/downstreams/ds1/edit")
	f.Set("etag", hidden(t, etagField, edit.body))
	r = b.post("/console/downstreams/ds1/edit", f, nil)
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	require.Equal(t, "/console/downstreams?saved=3", r.header.Get("Location"))
	g = in.Do(t, http.MethodGet, "/admin/v1/downstreams/ds1", in.ReadToken, nil, nil)
	require.Equal(t, "My console name", g.JSON(t)["name"])

	// Saving the same form again commits nothing.
	edit = b.get("/console/downstreams/ds1/edit")
	f.Set("etag", hidden(t, etagField, edit.body))
	r = b.post("/console/downstreams/ds1/edit", f, nil)
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	require.Equal(t, "/console/downstreams?unchanged=3", r.header.Get("Location"))
}

func TestConsole_Workflows(t *testing.T) {
	in := consoleInstance(t)
	b := newBrowser(t, in)
	csrf := b.login(in.WriteToken)

	// An inline key is write-only: shown as set, never sent back, kept
	// when the field is left blank.
	key := newFedKey(t)
	f := newDownstream(csrf, "ds2")
	f.Set("auth.method", "private_key_jwt")
	f.Del("auth.secret_env")
	f.Set("auth.key", key.private)
	f.Set("scopes", "openid=openid\nemail=mail")
	f.Set("claims", "email, name")
	f.Set("timeout", "2s")
	f["id_token_algs"] = []string{"ES256", "EdDSA"}
	f.Set("browser_federation", "on")
	r := b.post("/console/downstreams/new", f, nil)
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	g := in.Do(t, http.MethodGet, "/admin/v1/downstreams/ds2", in.ReadToken, nil, nil).JSON(t)
	require.Equal(t, map[string]any{"openid": "openid", "email": "mail"}, g["scopes"])
	require.Equal(t, []any{"email", "name"}, g["claims"])
	require.Equal(t, "2s", g["timeout"])
	require.Equal(t, []any{"ES256", "EdDSA"}, g["id_token_algs"])
	require.Equal(t, true, g["browser_federation"])
	require.Equal(t, true, g["auth"].(map[string]any)["key_set"])
	edit := b.get("/console/downstreams/ds2/edit")
	require.NotContains(t, edit.body, "BEGIN")
	require.NotContains(t, edit.body, `"d":`, "the private key is never sent back")
	require.Contains(t, edit.body, `secret-state is-set`)
	f.Set("etag", hidden(t, etagField, edit.body))
	f.Del("auth.key")
	f.Set("name", "Two")
	r = b.post("/console/downstreams/ds2/edit", f, nil)
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	g = in.Do(t, http.MethodGet, "/admin/v1/downstreams/ds2", in.ReadToken, nil, nil).JSON(t)
	require.Equal(t, true, g["auth"].(map[string]any)["key_set"], "the key was kept")

	// An id that is also a path word still has its own pages.
	r = b.post("/console/downstreams/new", newDownstream(csrf, "new"), nil)
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	ed := b.get("/console/downstreams/new/edit")
	require.Equal(t, http.StatusOK, ed.status, ed.body)
	require.Contains(t, ed.body, `value="https://new.example"`)

	// A route to it, tested; then moved up.
	r = b.post("/console/routes/new", url.Values{"csrf": {csrf}, "id": {"to-ds2"}, "target": {"downstream:ds2"}, "email_domains": {"two.example, zwei.example"}, "clients": {"demo-app"}}, nil)
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	rt := b.get("/console/route-test?run=1&client_id=demo-app&email=jane%40zwei.example")
	require.Equal(t, http.StatusOK, rt.status, rt.body)
	require.Contains(t, rt.body, `<dd id="answer-target">downstream</dd>`)
	require.Contains(t, rt.body, `<dd id="answer-downstream">ds2</dd>`)
	require.Contains(t, rt.body, `to-ds2`)
	list := b.get("/console/routes")
	r = b.post("/console/routes/to-ds2/move", url.Values{"csrf": {csrf}, "etag": {hidden(t, etagField, list.body)}, "dir": {"up"}}, nil)
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	routes := in.Do(t, http.MethodGet, "/admin/v1/routes", in.ReadToken, nil, nil).JSON(t)["items"].([]any)
	require.Equal(t, "to-ds2", routes[0].(map[string]any)["id"])

	// Deleting a downstream a route uses is refused with the route named.
	del := b.get("/console/downstreams/ds2/delete")
	r = b.post("/console/downstreams/ds2/delete", url.Values{"csrf": {csrf}, "etag": {hidden(t, etagField, del.body)}}, nil)
	require.Equal(t, http.StatusBadRequest, r.status, r.body)
	require.Contains(t, r.body, "routes[0].downstream")

	// Default route and prompt.
	dr := b.get("/console/default-route")
	r = b.post("/console/default-route", url.Values{"csrf": {csrf}, "etag": {hidden(t, etagField, dr.body)}, "default_route": {"deny"}}, nil)
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	pr := b.get("/console/prompt")
	r = b.post("/console/prompt", url.Values{"csrf": {csrf}, "etag": {hidden(t, etagField, pr.body)}, "inputs.email": {"on"}, "inputs.email.title": {"Work email"},
		"inputs.phone": {"on"}, "max_attempts": {"3"}, "options": {"- key: bank\n  title: Your bank\n  values:\n    - {value: b1, name: Bank one}\n"}}, nil)
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	p := in.Do(t, http.MethodGet, "/admin/v1/prompt", in.ReadToken, nil, nil).JSON(t)
	require.EqualValues(t, 3, p["max_attempts"])
	require.Equal(t, "Work email", p["inputs"].([]any)[0].(map[string]any)["title"])
	require.Equal(t, "phone", p["inputs"].([]any)[1].(map[string]any)["key"])
	require.Equal(t, "bank", p["options"].([]any)[0].(map[string]any)["key"])

	// A client with a secret digest, then an app for the first-party client.
	r = b.post("/console/clients/new", url.Values{"csrf": {csrf}, "id": {"partner3"}, "name": {"Partner three"}, "token_endpoint_auth_method": {"client_secret_basic"},
		"secret_sha256": {config.SecretDigest("p3")}, "scopes": {"openid", "email"}, "grant_types": {"authorization_code"}, "redirect_uris": {"https://p3.example/cb"}}, nil)
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	c := in.Do(t, http.MethodGet, "/admin/v1/clients/partner3", in.ReadToken, nil, nil).JSON(t)
	require.Equal(t, true, c["secret_sha256_set"])
	require.Equal(t, []any{"openid", "email"}, c["scopes"])
	r = b.post("/console/apps/new", url.Values{"csrf": {csrf}, "id": {"wallet"}, "client_id": {"demo-app"}, "deep_link": {"https://wallet.example/open"}, "clients": {"partner3"}}, nil)
	require.Equal(t, http.StatusSeeOther, r.status, r.body)

	// The audit log and the versions show it all; a rollback undoes the app.
	au := b.get("/console/audit")
	require.Contains(t, au.body, "apps.create")
	require.Contains(t, au.body, "writer")
	require.Contains(t, au.body, `class="add"`)
	require.NotContains(t, au.body, `"d":`, "no key in the audit diff")
	h := int(consoleHead(t, in))
	vs := b.get("/console/versions")
	require.Contains(t, vs.body, "console")
	v := b.get("/console/versions/" + strconv.Itoa(h-1))
	require.Equal(t, http.StatusOK, v.status)
	require.Contains(t, v.body, "What a rollback would change")
	r = b.post("/console/versions/"+strconv.Itoa(h-1)+"/rollback", url.Values{"csrf": {csrf}, "etag": {hidden(t, etagField, v.body)}}, nil)
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	require.Equal(t, "/console/versions?rolledback="+strconv.Itoa(h+1), r.header.Get("Location"))
	require.Equal(t, http.StatusNotFound, in.Do(t, http.MethodGet, "/admin/v1/apps/wallet", in.ReadToken, nil, nil).Status)

	// A stale head ETag refuses the rollback.
	r = b.post("/console/versions/1/rollback", url.Values{"csrf": {csrf}, "etag": {admin.HeadETag(1)}}, nil)
	require.Equal(t, http.StatusPreconditionFailed, r.status, r.body)
	require.Contains(t, r.body, "Changed by someone else")

	// Export downloads the policy.
	ex := b.get("/console/export")
	require.Equal(t, http.StatusOK, ex.status)
	require.Contains(t, ex.body, "downstreams:")
}
