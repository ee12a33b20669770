package federation

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// countingServer is a loopback downstream mock that counts every request,
// so tests can prove how often we fetched (or that we never did).
type countingServer struct {
	*httptest.Server
	hits atomic.Int64
}

func newCountingServer(t *testing.T, h http.Handler) *countingServer {
	t.Helper()
	cs := &countingServer{}
	cs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.hits.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(cs.Close)
	return cs
}

func (cs *countingServer) Hits() int64 { return cs.hits.Load() }

// fakeClock lets tests step over TTL and MinRefresh without sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// metadataDoc is a complete downstream document for issuer iss.
func metadataDoc(iss string) map[string]any {
	return map[string]any{
		"issuer":                                         iss,
		"authorization_endpoint":                         iss + "/authorize",
		"pushed_authorization_request_endpoint":          iss + "/par",
		"token_endpoint":                                 iss + "/token",
		"authorization_challenge_endpoint":               iss + "/challenge",
		"jwks_uri":                                       iss + "/jwks",
		"token_endpoint_auth_methods_supported":          []string{"private_key_jwt"},
		"code_challenge_methods_supported":               []string{"S256"},
		"dpop_signing_alg_values_supported":              []string{"ES256", "EdDSA"},
		"authorization_details_types_supported":          []string{"payment_initiation"},
		"require_pushed_authorization_requests":          true,
		"authorization_response_iss_parameter_supported": true,
		"scopes_supported":                               []string{"openid"},
	}
}

func docHandler(mod func(iss string, doc map[string]any)) func(iss string) http.Handler {
	return func(iss string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			doc := metadataDoc(iss)
			if mod != nil {
				mod(iss, doc)
			}
			writeJSON(w, doc)
		})
	}
}

func rawHandler(status int, contentType, body string) func(string) http.Handler {
	return func(string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if contentType != "" {
				w.Header().Set("Content-Type", contentType)
			} else {
				w.Header()["Content-Type"] = nil // no sniffing either
			}
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		})
	}
}

// lateIssuer lets a handler learn the server's own URL, which is only
// known after httptest.NewServer returns.
type lateIssuer struct {
	mu  sync.Mutex
	iss string
	h   http.Handler
}

func serveMetadata(t *testing.T, mk func(iss string) http.Handler) (*countingServer, string) {
	t.Helper()
	li := &lateIssuer{}
	cs := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		li.mu.Lock()
		h := li.h
		li.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	li.mu.Lock()
	li.iss = cs.URL
	li.h = mk(cs.URL)
	li.mu.Unlock()
	return cs, cs.URL
}

func testCache(opts MetadataOptions) *MetadataCache {
	opts.AllowLoopbackHTTP = true
	return NewMetadataCache(opts)
}

func TestMetadataCache_Get(t *testing.T) {
	tests := []struct {
		name    string
		handler func(iss string) http.Handler
		wantErr error
		check   func(t *testing.T, iss string, md Metadata)
	}{
		{
			name:    "happy path",
			handler: docHandler(nil),
			check: func(t *testing.T, iss string, md Metadata) {
				want := Metadata{
					Issuer: iss, AuthorizationEndpoint: iss + "/authorize", PAREndpoint: iss + "/par",
					TokenEndpoint: iss + "/token", NativeEndpoint: iss + "/challenge", JWKSURI: iss + "/jwks",
				}
				if md.Issuer != want.Issuer || md.AuthorizationEndpoint != want.AuthorizationEndpoint ||
					md.PAREndpoint != want.PAREndpoint || md.TokenEndpoint != want.TokenEndpoint ||
					md.NativeEndpoint != want.NativeEndpoint || md.JWKSURI != want.JWKSURI {
					t.Fatalf("endpoints = %+v", md)
				}
				if !md.SupportsNative() || !md.RequirePAR || !md.IssParameterSupported {
					t.Fatalf("flags: native=%v requirePAR=%v iss=%v", md.SupportsNative(), md.RequirePAR, md.IssParameterSupported)
				}
				if strings.Join(md.TokenEndpointAuthMethods, ",") != "private_key_jwt" ||
					strings.Join(md.CodeChallengeMethods, ",") != "S256" ||
					strings.Join(md.DPoPAlgs, ",") != "ES256,EdDSA" ||
					strings.Join(md.AuthorizationDetailsTypes, ",") != "payment_initiation" {
					t.Fatalf("lists = %+v", md)
				}
				if md.Raw["scopes_supported"] == nil {
					t.Fatal("Raw lacks unmapped member scopes_supported")
				}
			},
		},
		{
			name: "no native endpoint (B02)",
			handler: docHandler(func(_ string, d map[string]any) {
				delete(d, "authorization_challenge_endpoint")
			}),
			check: func(t *testing.T, _ string, md Metadata) {
				if md.SupportsNative() || md.NativeEndpoint != "" {
					t.Fatalf("SupportsNative = true for metadata without native endpoint: %q", md.NativeEndpoint)
				}
			},
		},
		{
			name: "native_authorization_endpoint alone counts (Q1)",
			handler: docHandler(func(iss string, d map[string]any) {
				delete(d, "authorization_challenge_endpoint")
				d["native_authorization_endpoint"] = iss + "/nae"
			}),
			check: func(t *testing.T, iss string, md Metadata) {
				if !md.SupportsNative() || md.NativeEndpoint != iss+"/nae" {
					t.Fatalf("NativeEndpoint = %q", md.NativeEndpoint)
				}
			},
		},
		{
			name: "authorization_challenge_endpoint preferred when both",
			handler: docHandler(func(iss string, d map[string]any) {
				d["native_authorization_endpoint"] = iss + "/nae"
			}),
			check: func(t *testing.T, iss string, md Metadata) {
				if md.NativeEndpoint != iss+"/challenge" {
					t.Fatalf("NativeEndpoint = %q", md.NativeEndpoint)
				}
			},
		},
		{
			name:    "issuer of another AS (B14)",
			handler: docHandler(func(_ string, d map[string]any) { d["issuer"] = "https://evil.example" }),
			wantErr: ErrIssuerMismatch,
		},
		{
			name:    "issuer with trailing slash (B14, exact match)",
			handler: docHandler(func(iss string, d map[string]any) { d["issuer"] = iss + "/" }),
			wantErr: ErrIssuerMismatch,
		},
		{
			name:    "issuer differing in case (B14, exact match)",
			handler: docHandler(func(iss string, d map[string]any) { d["issuer"] = strings.ToUpper(iss) }),
			wantErr: ErrIssuerMismatch,
		},
		{
			name:    "issuer missing (B14)",
			handler: docHandler(func(_ string, d map[string]any) { delete(d, "issuer") }),
			wantErr: ErrIssuerMismatch,
		},
		{name: "HTML page", handler: rawHandler(200, "text/html", "<html><body>login</body></html>"), wantErr: ErrUnavailable},
		{name: "garbage labelled JSON", handler: rawHandler(200, "application/json", "{not json"), wantErr: ErrUnavailable},
		{name: "JSON array", handler: rawHandler(200, "application/json", `["issuer"]`), wantErr: ErrUnavailable},
		{name: "JSON null", handler: rawHandler(200, "application/json", `null`), wantErr: ErrUnavailable},
		{name: "no content type", handler: rawHandler(200, "", `{}`), wantErr: ErrUnavailable},
		{
			name:    "issuer of wrong type",
			handler: docHandler(func(_ string, d map[string]any) { d["issuer"] = 42 }),
			wantErr: ErrUnavailable,
		},
		{
			name:    "require_pushed_authorization_requests of wrong type",
			handler: docHandler(func(_ string, d map[string]any) { d["require_pushed_authorization_requests"] = "yes" }),
			wantErr: ErrUnavailable,
		},
		{
			name: "oversize body with Content-Length",
			handler: func(iss string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					doc := metadataDoc(iss)
					doc["padding"] = strings.Repeat("x", 70<<10)
					b, _ := json.Marshal(doc)
					w.Header().Set("Content-Type", "application/json")
					w.Header().Set("Content-Length", strconv.Itoa(len(b)))
					_, _ = w.Write(b)
				})
			},
			wantErr: ErrUnavailable,
		},
		{
			name: "oversize chunked body",
			handler: func(iss string) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					_, _ = w.Write([]byte(`{"issuer":"` + iss + `","padding":"`))
					w.(http.Flusher).Flush()
					for range 80 {
						_, _ = w.Write([]byte(strings.Repeat("x", 1<<10)))
					}
					_, _ = w.Write([]byte(`"}`))
				})
			},
			wantErr: ErrUnavailable,
		},
		{name: "500", handler: rawHandler(500, "application/json", `{"error":"server_error"}`), wantErr: ErrUnavailable},
		{name: "503", handler: rawHandler(503, "text/plain", `down`), wantErr: ErrUnavailable},
		{name: "404", handler: rawHandler(404, "text/plain", `not found`), wantErr: ErrUnavailable},
		{
			name:    "no token_endpoint",
			handler: docHandler(func(_ string, d map[string]any) { delete(d, "token_endpoint") }),
			wantErr: ErrUnavailable,
		},
		{
			name:    "plain http endpoint off loopback",
			handler: docHandler(func(_ string, d map[string]any) { d["token_endpoint"] = "http://as.example/token" }),
			wantErr: ErrUnavailable,
		},
		{
			name: "endpoint on link-local metadata address (SSRF)",
			handler: docHandler(func(_ string, d map[string]any) {
				d["pushed_authorization_request_endpoint"] = "https://169.254.169.254/latest/meta-data"
			}),
			wantErr: ErrUnavailable,
		},
		{
			name:    "relative endpoint",
			handler: docHandler(func(_ string, d map[string]any) { d["jwks_uri"] = "/jwks" }),
			wantErr: ErrUnavailable,
		},
		{
			name:    "endpoint with userinfo",
			handler: docHandler(func(_ string, d map[string]any) { d["authorization_challenge_endpoint"] = "https://u:p@as.example/c" }),
			wantErr: ErrUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, iss := serveMetadata(t, tt.handler)
			c := testCache(MetadataOptions{})
			md, err := c.Get(context.Background(), iss)
			if n := srv.Hits(); n != 1 {
				t.Errorf("downstream hits = %d, want 1", n)
			}
			if tt.wantErr != nil {
				t.Logf("err: %v", err)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				other := ErrUnavailable
				if tt.wantErr == ErrUnavailable {
					other = ErrIssuerMismatch
				}
				if errors.Is(err, other) {
					t.Fatalf("err %v also matches %v", err, other)
				}
				var fe *FetchError
				if !errors.As(err, &fe) {
					t.Fatalf("err %T is not *FetchError", err)
				}
				if md.Issuer != "" {
					t.Fatalf("metadata returned with error: %+v", md)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			tt.check(t, iss, md)
		})
	}
}

// TestMetadataCache_RedirectNotFollowed is SECURITY-RESULTS.md K05/D6 for
// metadata: a 3xx must not lead us anywhere, whatever client we were given.
func TestMetadataCache_RedirectNotFollowed(t *testing.T) {
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusMovedPermanently} {
		for _, client := range []struct {
			name string
			hc   *http.Client
		}{
			{"default client", nil},
			{"caller client that follows redirects", &http.Client{}},
		} {
			t.Run(http.StatusText(status)+"/"+client.name, func(t *testing.T) {
				canary := newCountingServer(t, docHandler(nil)("https://canary.example"))
				srv, iss := serveMetadata(t, func(string) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						http.Redirect(w, r, canary.URL+"/.well-known/oauth-authorization-server", status)
					})
				})
				c := testCache(MetadataOptions{HTTPClient: client.hc})
				_, err := c.Get(context.Background(), iss)
				if !errors.Is(err, ErrUnavailable) {
					t.Fatalf("err = %v, want ErrUnavailable", err)
				}
				var fe *FetchError
				if !errors.As(err, &fe) || fe.Status != status {
					t.Fatalf("err = %#v, want FetchError with status %d", err, status)
				}
				if strings.Contains(err.Error(), canary.URL) {
					t.Fatalf("error text leaks Location: %v", err)
				}
				if srv.Hits() != 1 || canary.Hits() != 0 {
					t.Fatalf("hits: downstream %d (want 1), canary %d (want 0)", srv.Hits(), canary.Hits())
				}
			})
		}
	}
}

func TestMetadataCache_CachesUntilTTL(t *testing.T) {
	clk := newFakeClock()
	srv, iss := serveMetadata(t, docHandler(nil))
	c := testCache(MetadataOptions{TTL: time.Minute, MinRefresh: 10 * time.Second, Now: clk.Now})
	ctx := context.Background()

	steps := []struct {
		advance  time.Duration
		wantHits int64
	}{
		{0, 1},
		{0, 1},
		{30 * time.Second, 1},
		{29 * time.Second, 1},
		{2 * time.Second, 2}, // 61 s: past TTL
		{10 * time.Second, 2},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		md, err := c.Get(ctx, iss)
		if err != nil || md.Issuer != iss {
			t.Fatalf("step %d: Get = %+v, %v", i, md.Issuer, err)
		}
		if srv.Hits() != s.wantHits {
			t.Fatalf("step %d: hits = %d, want %d", i, srv.Hits(), s.wantHits)
		}
	}
}

// TestMetadataCache_BoundedRefresh: a failing downstream is asked at most
// once per MinRefresh, however many requests need its metadata.
func TestMetadataCache_BoundedRefresh(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler func(string) http.Handler
	}{
		{"500", rawHandler(500, "text/plain", "boom")},
		{"garbage", rawHandler(200, "application/json", "<html>")},
		{"issuer mismatch", docHandler(func(_ string, d map[string]any) { d["issuer"] = "https://other.example" })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			srv, iss := serveMetadata(t, tc.handler)
			c := testCache(MetadataOptions{TTL: time.Minute, MinRefresh: 10 * time.Second, Now: clk.Now})
			for i := range 25 {
				if _, err := c.Get(context.Background(), iss); err == nil {
					t.Fatalf("Get %d succeeded against a failing downstream", i)
				}
				clk.Advance(300 * time.Millisecond) // 25 × 0.3 s = 7.5 s < MinRefresh
			}
			if srv.Hits() != 1 {
				t.Fatalf("hits within MinRefresh = %d, want 1", srv.Hits())
			}
			clk.Advance(3 * time.Second)
			_, _ = c.Get(context.Background(), iss)
			_, _ = c.Get(context.Background(), iss)
			if srv.Hits() != 2 {
				t.Fatalf("hits after MinRefresh = %d, want 2", srv.Hits())
			}
		})
	}
}

// TestMetadataCache_StaleOnFailedRefresh: after TTL a failed refresh
// serves the old value for up to one more TTL, logs it, and then gives up.
func TestMetadataCache_StaleOnFailedRefresh(t *testing.T) {
	clk := newFakeClock()
	var failing atomic.Bool
	srv, iss := serveMetadata(t, func(iss string) http.Handler {
		ok := docHandler(nil)(iss)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if failing.Load() {
				http.Error(w, "down", http.StatusBadGateway)
				return
			}
			ok.ServeHTTP(w, r)
		})
	})
	core, logs := observer.New(zap.DebugLevel)
	c := testCache(MetadataOptions{TTL: time.Minute, MinRefresh: 10 * time.Second, Now: clk.Now, Logger: zap.New(core)})
	ctx := context.Background()
	if _, err := c.Get(ctx, iss); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)

	clk.Advance(61 * time.Second)
	md, err := c.Get(ctx, iss)
	if err != nil || md.TokenEndpoint != iss+"/token" {
		t.Fatalf("stale Get = %+v, %v; want stale metadata", md, err)
	}
	if srv.Hits() != 2 {
		t.Fatalf("hits = %d, want 2", srv.Hits())
	}
	if logs.FilterMessageSnippet("stale").Len() != 1 {
		t.Fatalf("stale serving not logged: %v", logs.All())
	}
	// Within MinRefresh: stale again, no fetch.
	if _, err := c.Get(ctx, iss); err != nil || srv.Hits() != 2 {
		t.Fatalf("second stale Get: err %v, hits %d", err, srv.Hits())
	}
	// Past 2×TTL since the good fetch: no more stale value.
	clk.Advance(60 * time.Second)
	if _, err := c.Get(ctx, iss); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get after 2×TTL: err = %v, want ErrUnavailable", err)
	}
	if srv.Hits() != 3 {
		t.Fatalf("hits = %d, want 3", srv.Hits())
	}
	// Recovery.
	failing.Store(false)
	clk.Advance(11 * time.Second)
	if _, err := c.Get(ctx, iss); err != nil {
		t.Fatalf("Get after recovery: %v", err)
	}
}

// TestMetadataCache_IssuerChangeNotServedStale: SECURITY-RESULTS.md D10 — a
// downstream that starts claiming another issuer is refused at once, not
// papered over with the stale value.
func TestMetadataCache_IssuerChangeNotServedStale(t *testing.T) {
	clk := newFakeClock()
	var evil atomic.Bool
	_, iss := serveMetadata(t, docHandler(func(_ string, d map[string]any) {
		if evil.Load() {
			d["issuer"] = "https://other.example"
		}
	}))
	c := testCache(MetadataOptions{TTL: time.Minute, Now: clk.Now})
	ctx := context.Background()
	if _, err := c.Get(ctx, iss); err != nil {
		t.Fatal(err)
	}
	evil.Store(true)
	clk.Advance(61 * time.Second)
	if _, err := c.Get(ctx, iss); !errors.Is(err, ErrIssuerMismatch) {
		t.Fatalf("err = %v, want ErrIssuerMismatch", err)
	}
	if _, err := c.Get(ctx, iss); !errors.Is(err, ErrIssuerMismatch) {
		t.Fatalf("second Get: err = %v, want ErrIssuerMismatch (not stale metadata)", err)
	}
}

func TestMetadataCache_ConcurrentGetsFetchOnce(t *testing.T) {
	release := make(chan struct{})
	srv, iss := serveMetadata(t, func(iss string) http.Handler {
		ok := docHandler(nil)(iss)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-release
			ok.ServeHTTP(w, r)
		})
	})
	c := testCache(MetadataOptions{})
	const n = 50
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		failed atomic.Int64
	)
	for range n {
		wg.Go(func() {
			<-start
			md, err := c.Get(context.Background(), iss)
			if err != nil || md.Issuer != iss {
				if failed.Add(1) == 1 {
					t.Logf("first failure: %v", err)
				}
			}
		})
	}
	close(start)
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d Gets failed", failed.Load())
	}
	if srv.Hits() != 1 {
		t.Fatalf("hits = %d, want 1", srv.Hits())
	}
}

func TestMetadataCache_PathIssuer(t *testing.T) {
	var gotPath atomic.Value
	srv, base := serveMetadata(t, func(base string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			gotPath.Store(r.URL.Path)
			if r.URL.Path != "/.well-known/oauth-authorization-server/tenant/a" {
				http.NotFound(w, r)
				return
			}
			writeJSON(w, metadataDoc(base+"/tenant/a"))
		})
	})
	c := testCache(MetadataOptions{})
	md, err := c.Get(context.Background(), base+"/tenant/a")
	if err != nil {
		t.Fatalf("Get: %v (path %v)", err, gotPath.Load())
	}
	if md.Issuer != base+"/tenant/a" || srv.Hits() != 1 {
		t.Fatalf("issuer %q, hits %d", md.Issuer, srv.Hits())
	}
}

func TestWellKnownURL(t *testing.T) {
	for _, tt := range []struct{ issuer, want string }{
		{"https://as.example", "https://as.example/.well-known/oauth-authorization-server"},
		{"https://as.example/", "https://as.example/.well-known/oauth-authorization-server"},
		{"https://as.example:8443", "https://as.example:8443/.well-known/oauth-authorization-server"},
		{"https://as.example/issuer1", "https://as.example/.well-known/oauth-authorization-server/issuer1"},
		{"https://as.example/issuer1/", "https://as.example/.well-known/oauth-authorization-server/issuer1"},
		{"https://as.example/a/b", "https://as.example/.well-known/oauth-authorization-server/a/b"},
		{"https://as.example/a%2Fb", "https://as.example/.well-known/oauth-authorization-server/a%2Fb"},
	} {
		if got := wellKnownURL(tt.issuer); got != tt.want {
			t.Errorf("wellKnownURL(%q) = %q, want %q", tt.issuer, got, tt.want)
		}
	}
}

// TestMetadataCache_InvalidIssuer: configuration that is not an RFC 8414
// §2 issuer, or points at internal addresses, is never fetched.
func TestMetadataCache_InvalidIssuer(t *testing.T) {
	srv := newCountingServer(t, docHandler(nil)("x"))
	prod := NewMetadataCache(MetadataOptions{})
	for _, iss := range []string{
		"",
		"as.example",
		"http://as.example",
		"ftp://as.example",
		"https://as.example?tenant=1",
		"https://as.example?",
		"https://as.example#frag",
		"https://user@as.example",
		"https://10.1.2.3",
		"https://192.168.0.1",
		"https://169.254.169.254",
		"https://[::1]",
		"https://localhost",
		"https://0.0.0.0",
		srv.URL, // loopback http without AllowLoopbackHTTP
	} {
		_, err := prod.Get(context.Background(), iss)
		if !errors.Is(err, ErrInvalidIssuer) || errors.Is(err, ErrUnavailable) {
			t.Errorf("Get(%q): err = %v, want ErrInvalidIssuer only", iss, err)
		}
	}
	if srv.Hits() != 0 {
		t.Fatalf("hits = %d, want 0", srv.Hits())
	}
}

func TestMetadataCache_Invalidate(t *testing.T) {
	srv, iss := serveMetadata(t, docHandler(nil))
	c := testCache(MetadataOptions{})
	ctx := context.Background()
	_, _ = c.Get(ctx, iss)
	_, _ = c.Get(ctx, iss)
	c.Invalidate(iss)
	if _, err := c.Get(ctx, iss); err != nil {
		t.Fatal(err)
	}
	if srv.Hits() != 2 {
		t.Fatalf("hits = %d, want 2", srv.Hits())
	}
}

func TestMetadataCache_Timeout(t *testing.T) {
	srv, iss := serveMetadata(t, func(string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		})
	})
	c := testCache(MetadataOptions{Timeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := c.Get(context.Background(), iss)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrUnavailable wrapping DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Get took %v", d)
	}
	if srv.Hits() != 1 {
		t.Fatalf("hits = %d", srv.Hits())
	}
}

func TestMetadataCache_CallerCancelStopsWaiting(t *testing.T) {
	release := make(chan struct{})
	_, iss := serveMetadata(t, func(iss string) http.Handler {
		ok := docHandler(nil)(iss)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			ok.ServeHTTP(w, r)
		})
	})
	defer close(release)
	c := testCache(MetadataOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Get(ctx, iss)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}
