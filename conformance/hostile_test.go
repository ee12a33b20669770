package conformance_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/conformance"
)

// hostileMetadata is RFC 8414 metadata for base whose every endpoint is
// on base, with the native endpoint, PAR and DPoP: all profiles run.
func hostileMetadata(base string) map[string]any {
	return map[string]any{
		"issuer": base, "authorization_endpoint": base + "/authorize", "token_endpoint": base + "/token",
		"pushed_authorization_request_endpoint": base + "/par", "authorization_challenge_endpoint": base + "/native",
		"native_authorization_endpoint": base + "/native", "code_challenge_methods_supported": []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"none", "client_secret_basic"}, "scopes_supported": []string{"openid"},
		"dpop_signing_alg_values_supported": []string{"ES256"},
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// hanging answers nothing until the client gives up or the test ends
// (release). It reads the body so that the server notices the client
// closing the connection.
func hanging(release <-chan struct{}) http.HandlerFunc {
	return func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
}

// hostileInputs gives the kit every input of every profile but the ones
// that wait (--session-ttl, --par-expiry), so that every check runs.
func hostileInputs(e *conformance.Env) {
	e.ClientID, e.Username, e.Password = "app", "user", "pw"
	e.ThirdPartyClientID, e.OtherClientID = "third", "other"
	e.WebParams = url.Values{"native_callback_uri": {"https://app.example/cb"}}
	e.FederationPrompt, e.UnsupportedPrompt = url.Values{"email": {"a@b.example"}}, url.Values{"email": {"a@c.example"}}
	e.DownstreamUsername, e.DownstreamPassword, e.NativeCallbackURI = "carol", "pw", "https://app.example/cb"
	e.PARClientID, e.PARAuth, e.PARRedirectURI = "as1", conformance.ClientAuth{Method: "client_secret_basic", Secret: "s"}, "https://as1.example/cb"
}

// TestHostileServers points the kit, with every input of every profile,
// at servers that answer badly: at the metadata URL (HTML, a 5xx, a body
// past the 1 MiB read limit, invalid JSON, a redirect loop, no answer
// within --timeout, a member of the wrong type, a non-JSON content type, a 403,
// another issuer, a certificate nobody trusts) and, behind good metadata,
// at every endpoint. The run never panics or hangs; a broken metadata
// URL fails the first check with what was expected and what came, and
// every other check that needs the metadata names it; a server without
// metadata (404) is not applicable throughout (exit 0); an endpoint that
// let a request time out gets no more requests; --ca-file's
// trust lets the kit read metadata behind a private CA.
func TestHostileServers(t *testing.T) {
	const short = 300 * time.Millisecond
	for _, tc := range []struct {
		name    string
		tls     bool
		trustCA bool
		timeout time.Duration
		// meta answers the metadata URL (nil: good metadata); other every
		// other path (nil: 404).
		meta, other func(base string, release <-chan struct{}) http.HandlerFunc
		wantExit    int
		// want: in the first result's detail (a metadata failure) or, for
		// endpoint cases, in every failure's detail.
		want []string
		// firstPass: the first check passes (the metadata was read).
		firstPass bool
		// someExchange: in some exchange's error.
		someExchange string
	}{
		{name: "metadata is HTML", meta: static(200, "text/html; charset=utf-8", "<!doctype html><html><body>Welcome</body></html>"),
			wantExit: 1, want: []string{"text/html", "not a JSON object", "<!doctype html>", "RFC 8414 §3.2"}},
		{name: "metadata is a 500", meta: static(500, "text/plain", "internal error"), wantExit: 1, want: []string{"HTTP 500", "want 200"}},
		{name: "metadata is a 503 HTML page", meta: static(503, "text/html", "<h1>down</h1>"), wantExit: 1, want: []string{"HTTP 503"}},
		{name: "metadata body is huge", meta: func(string, <-chan struct{}) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"issuer":"` + strings.Repeat("x", 3<<20) + `"}`))
			}
		}, wantExit: 1, want: []string{"cut at 1048576 bytes", "not a JSON object"}},
		{name: "metadata is invalid JSON", meta: static(200, "application/json", `{"issuer": "http://x", `), wantExit: 1, want: []string{"application/json", "not a JSON object"}},
		{name: "metadata is a JSON array", meta: static(200, "application/json", `[1,2]`), wantExit: 1, want: []string{"not a JSON object"}},
		{name: "metadata redirects to itself", meta: func(base string, _ <-chan struct{}) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, r.URL.Path, http.StatusFound) }
		}, wantExit: 1, want: []string{"HTTP 302", "follows no redirect"}},
		{name: "metadata never answers", timeout: short, meta: func(_ string, release <-chan struct{}) http.HandlerFunc { return hanging(release) }, wantExit: 1,
			want: []string{"no answer", "Timeout"}},
		{name: "metadata member of the wrong type", meta: func(base string, _ <-chan struct{}) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				md := hostileMetadata(base)
				md["authorization_challenge_endpoint"] = 5
				writeJSON(w, 200, md)
			}
		}, wantExit: 1, want: []string{"authorization_challenge_endpoint is a number (5), want a string", "RFC 8414 §2"}},
		{name: "metadata array of the wrong type", meta: func(base string, _ <-chan struct{}) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				md := hostileMetadata(base)
				md["code_challenge_methods_supported"] = "S256"
				writeJSON(w, 200, md)
			}
		}, wantExit: 1, want: []string{"code_challenge_methods_supported is a string, want an array of strings"}},
		{name: "metadata as text/plain", meta: func(base string, _ <-chan struct{}) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				b, _ := json.Marshal(hostileMetadata(base))
				w.Header().Set("Content-Type", "text/plain")
				_, _ = w.Write(b)
			}
		}, wantExit: 1, want: []string{`Content-Type "text/plain"; want application/json`}},
		{name: "metadata of another issuer", meta: func(base string, _ <-chan struct{}) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				md := hostileMetadata(base)
				md["issuer"] = "https://evil.example"
				writeJSON(w, 200, md)
			}
		}, wantExit: 1, want: []string{`issuer "https://evil.example"`, "RFC 8414 §3.3"}},
		{name: "TLS certificate nobody trusts", tls: true, wantExit: 1, want: []string{"x509", "--ca-file"}},
		{name: "TLS with --ca-file", tls: true, trustCA: true, wantExit: 1, firstPass: true},
		{name: "metadata is forbidden (403)", meta: static(403, "text/html", "<h1>WAF says no</h1>"), wantExit: 1, want: []string{"HTTP 403", "or 404 when there is none"}},
		{name: "no metadata (404)", meta: static(404, "text/html", "<h1>not found</h1>"), wantExit: 0},
		// Good metadata, hostile endpoints: each check fails on what it got.
		{name: "endpoints answer 500 HTML", other: static(500, "text/html", "<h1>oops</h1>"), wantExit: 1, firstPass: true, want: []string{"500"}},
		{name: "endpoints answer invalid JSON", other: static(400, "application/json", `{"error":`), wantExit: 1, firstPass: true},
		{name: "endpoints answer a huge body", other: func(string, <-chan struct{}) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(400)
				_, _ = w.Write([]byte(`{"error":"` + strings.Repeat("x", 2<<20)))
			}
		}, wantExit: 1, firstPass: true},
		{name: "endpoints redirect to themselves", other: func(string, <-chan struct{}) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, r.URL.Path, http.StatusTemporaryRedirect)
			}
		}, wantExit: 1, firstPass: true, want: []string{"307"}},
		{name: "endpoints never answer", timeout: short, other: func(_ string, release <-chan struct{}) http.HandlerFunc { return hanging(release) }, wantExit: 1, firstPass: true,
			want: []string{"no answer"}, someExchange: "not sent: an earlier request to this endpoint got no answer within --timeout"},
		{name: "endpoints answer 200 with wrong types", other: func(string, <-chan struct{}) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				writeJSON(w, 200, map[string]any{"authorization_code": 5, "error": []int{1}, "auth_session": true, "request_uri": 7,
					"federation_body": map[string]any{}, "federation_uri": 1, "access_token": false, "expires_in": "x"})
			}
		}, wantExit: 1, firstPass: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mux := http.NewServeMux()
			var srv *httptest.Server
			if tc.tls {
				srv = httptest.NewUnstartedServer(mux)
				srv.StartTLS()
			} else {
				srv = httptest.NewServer(mux)
			}
			t.Cleanup(srv.Close)
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			meta := tc.meta
			if meta == nil {
				meta = func(base string, _ <-chan struct{}) http.HandlerFunc {
					return func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, hostileMetadata(base)) }
				}
			}
			mux.Handle("/.well-known/oauth-authorization-server", meta(srv.URL, release))
			if tc.other != nil {
				mux.Handle("/", tc.other(srv.URL, release))
			}
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			env := conformance.NewEnv(srv.URL, timeout)
			hostileInputs(env)
			if tc.trustCA {
				require.NoError(t, env.TrustCAs(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))
			}
			done := make(chan *conformance.Report, 1)
			go func() { done <- conformance.Run(context.Background(), env, conformance.Checks(), conformance.Profiles) }()
			var rep *conformance.Report
			select {
			case rep = <-done:
			case <-time.After(2 * time.Minute):
				t.Fatal("the run hangs")
			}
			require.Len(t, rep.Results, len(conformance.Checks()))
			assert.Equal(t, tc.wantExit, rep.ExitCode())
			for _, r := range rep.Results {
				assert.NotContains(t, r.Detail, "panicked", r.ID)
				assert.NotEmpty(t, r.Detail, "%s says why it is %s", r.ID, r.Status)
				if r.Status == conformance.Fail {
					assert.NotEmpty(t, r.Exchanges, "%s shows the exchanges that failed it", r.ID)
				}
			}
			if testing.Verbose() {
				for _, r := range rep.Results {
					t.Logf("%s %s: %s", r.ID, r.Status, firstLineOf(r.Detail))
				}
			}
			if tc.someExchange != "" {
				found := false
				for _, r := range rep.Results {
					for _, ex := range r.Exchanges {
						found = found || strings.Contains(ex.Error, tc.someExchange)
					}
				}
				assert.True(t, found, "an exchange says %q", tc.someExchange)
			}
			first := rep.Results[0]
			switch {
			case tc.firstPass:
				assert.Equal(t, conformance.Pass, first.Status, first.Detail)
				for _, r := range rep.Results {
					if r.Status == conformance.Fail {
						for _, w := range tc.want {
							assert.Contains(t, r.Detail, w, r.ID)
						}
					}
				}
			case tc.wantExit == 1:
				// The metadata fails once; the rest points at it.
				assert.Equal(t, conformance.Fail, first.Status)
				for _, w := range tc.want {
					assert.Contains(t, first.Detail, w)
				}
				for _, r := range rep.Results[1:] {
					assert.Equal(t, conformance.NotApplicable, r.Status, "%s: %s", r.ID, r.Detail)
				}
			default:
				for _, r := range rep.Results {
					assert.Equal(t, conformance.NotApplicable, r.Status, "%s: %s", r.ID, r.Detail)
					assert.Contains(t, r.Detail, "HTTP 404", r.ID)
				}
			}
		})
	}
}

func static(status int, contentType, body string) func(string, <-chan struct{}) http.HandlerFunc {
	return func(string, <-chan struct{}) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}
	}
}

func firstLineOf(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }
