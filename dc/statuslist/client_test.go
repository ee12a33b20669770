package statuslist

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/netguard"
)

// fakeClock is a settable clock shared by client and test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// listServer is an httptest TLS status-list endpoint. Each path serves the
// token that tokens[path] builds for its full URI; hits counts fetches.
type listServer struct {
	srv    *httptest.Server
	hits   atomic.Int64
	accept atomic.Value
	mu     sync.Mutex
	serve  map[string]func(w http.ResponseWriter, r *http.Request, uri string)
}

func newListServer(tb testing.TB) *listServer {
	tb.Helper()
	ls := &listServer{serve: map[string]func(http.ResponseWriter, *http.Request, string){}}
	ls.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ls.hits.Add(1)
		ls.accept.Store(r.Header.Get("Accept"))
		ls.mu.Lock()
		h := ls.serve[r.URL.Path]
		ls.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r, ls.srv.URL+r.URL.Path)
	}))
	tb.Cleanup(ls.srv.Close)
	return ls
}

func (ls *listServer) handle(path string, h func(w http.ResponseWriter, r *http.Request, uri string)) string {
	ls.mu.Lock()
	ls.serve[path] = h
	ls.mu.Unlock()
	return ls.srv.URL + path
}

// token serves a valid list token built by mod(claims) for the request URI.
func token(tb testing.TB, statuses []byte, mod func(m map[string]any)) func(http.ResponseWriter, *http.Request, string) {
	k, _ := keys(tb)
	lst := pack(tb, 2, statuses)
	return func(w http.ResponseWriter, _ *http.Request, uri string) {
		m := claimsFor(uri, 2, lst)
		if mod != nil {
			mod(m)
		}
		w.Header().Set("Content-Type", "application/statuslist+jwt")
		w.Write([]byte(sign(tb, k, jose.ES256, "statuslist+jwt", m)))
	}
}

// newTestClient builds a Client on the test server's TLS client. TEST SEAM:
// CheckURL is netguard.CheckURL with AllowLoopback, so the 127.0.0.1 test
// server is reachable; production leaves CheckURL nil (strict netguard).
// https-only is enforced by the Client itself and is not relaxed.
func newTestClient(tb testing.TB, ls *listServer, clk *fakeClock, mod func(o *Options)) *Client {
	tb.Helper()
	o := Options{
		HTTP:     ls.srv.Client(),
		Key:      keyFunc(tb),
		CheckURL: func(u string) error { return netguard.CheckURL(u, netguard.Options{AllowLoopback: true}) },
		Now:      clk.Now,
	}
	if mod != nil {
		mod(&o)
	}
	c, err := NewClient(o)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func claim(uri string, idx int) json.RawMessage {
	b, _ := json.Marshal(map[string]any{"status_list": map[string]any{"idx": idx, "uri": uri}})
	return b
}

// TestClientCheck: the status of each index through Check, the Accept
// header sent, and out-of-range refusal.
func TestClientCheck(t *testing.T) {
	ls := newListServer(t)
	uri := ls.handle("/lists/1", token(t, []byte{0, 1, 2, 3}, nil))
	c := newTestClient(t, ls, &fakeClock{t: t0}, nil)
	for idx, want := range []Status{Valid, Invalid, Suspended, 3} {
		got, err := c.Check(context.Background(), claim(uri, idx))
		if err != nil || got != want {
			t.Errorf("idx %d: %v, %v; want %v", idx, got, err, want)
		}
	}
	if _, err := c.Check(context.Background(), claim(uri, 4)); !errors.Is(err, ErrIndex) {
		t.Errorf("idx 4: %v, want ErrIndex", err)
	}
	if a := ls.accept.Load(); a != "application/statuslist+jwt" {
		t.Errorf("Accept = %v", a)
	}
}

// TestClientCache: one fetch within ttl; a refetch after ttl; exp shorter
// than ttl wins; no ttl/exp uses DefaultCacheTTL; MaxTTL caps a long ttl.
func TestClientCache(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mod   func(m map[string]any)
		fresh time.Duration // still cached at t0+fresh-1s, refetched at t0+fresh
	}{
		{"ttl", nil, 300 * time.Second},
		{"exp before ttl", func(m map[string]any) { m["exp"] = t0.Add(100 * time.Second).Unix() }, 100 * time.Second},
		{"no ttl no exp", func(m map[string]any) { delete(m, "ttl"); delete(m, "exp") }, DefaultCacheTTL},
		{"ttl over MaxTTL", func(m map[string]any) { m["ttl"] = 7 * 24 * 3600; delete(m, "exp") }, DefaultMaxTTL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls := newListServer(t)
			clk := &fakeClock{t: t0}
			var mu sync.Mutex
			uri := ls.handle("/l", func(w http.ResponseWriter, r *http.Request, uri string) {
				mu.Lock()
				now := clk.Now()
				mu.Unlock()
				// Re-issue relative to the fake clock so refetches are valid.
				token(t, []byte{1}, func(m map[string]any) {
					m["iat"] = now.Unix()
					if tc.mod != nil {
						tc.mod(m)
					}
					if e, ok := m["exp"].(int64); ok && e <= now.Unix() {
						m["exp"] = now.Add(time.Hour).Unix()
					}
				})(w, r, uri)
			})
			c := newTestClient(t, ls, clk, nil)
			check := func(wantHits int64) {
				t.Helper()
				if s, err := c.Check(context.Background(), claim(uri, 0)); err != nil || s != Invalid {
					t.Fatalf("Check: %v %v", s, err)
				}
				if h := ls.hits.Load(); h != wantHits {
					t.Fatalf("hits = %d, want %d", h, wantHits)
				}
			}
			check(1)
			check(1)
			clk.Add(tc.fresh - time.Second)
			check(1)
			clk.Add(time.Second)
			check(2)
		})
	}
}

// TestClientFetchRefusals: every fetch failure maps to its sentinel and is
// not cached (the next call fetches again).
func TestClientFetchRefusals(t *testing.T) {
	ls := newListServer(t)
	redirTarget := ls.handle("/target", token(t, []byte{0}, nil))
	for _, tc := range []struct {
		name string
		h    func(http.ResponseWriter, *http.Request, string)
		opts func(o *Options)
		want error
	}{
		{"http 500", func(w http.ResponseWriter, _ *http.Request, _ string) { w.WriteHeader(500) }, nil, ErrFetch},
		{"redirect not followed", func(w http.ResponseWriter, r *http.Request, _ string) {
			http.Redirect(w, r, redirTarget, http.StatusFound)
		}, nil, ErrFetch},
		{"wrong content type", func(w http.ResponseWriter, r *http.Request, uri string) {
			token(t, []byte{0}, nil)(&ctOverride{ResponseWriter: w}, r, uri)
		}, nil, ErrFetch},
		{"sub mismatch", token(t, []byte{0}, func(m map[string]any) { m["sub"] = "https://other.example/l" }), nil, ErrSubject},
		{"expired", token(t, []byte{0}, func(m map[string]any) { m["exp"] = t0.Add(-time.Hour).Unix() }), nil, ErrExpired},
		{"body too large", token(t, make([]byte, 64), nil), func(o *Options) { o.MaxBody = 100 }, ErrTooLarge},
		{"bomb", func(w http.ResponseWriter, r *http.Request, uri string) {
			k, _ := keys(t)
			w.Header().Set("Content-Type", "application/statuslist+jwt")
			w.Write([]byte(sign(t, k, jose.ES256, "statuslist+jwt", claimsFor(uri, 1, bomb(t)))))
		}, func(o *Options) { o.MaxDecompressed = 1 << 20 }, ErrTooLarge},
		{"untrusted key", token(t, []byte{0}, nil), func(o *Options) {
			o.Key = func(string, jose.Header) (any, error) { return nil, errors.New("no") }
		}, ErrSignature},
		{"timeout", func(w http.ResponseWriter, r *http.Request, _ string) { <-r.Context().Done() },
			func(o *Options) { o.Timeout = 50 * time.Millisecond }, ErrFetch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uri := ls.handle("/r/"+strings.ReplaceAll(tc.name, " ", "-"), tc.h)
			c := newTestClient(t, ls, &fakeClock{t: t0}, tc.opts)
			for range 2 {
				before := ls.hits.Load()
				if _, err := c.Check(context.Background(), claim(uri, 0)); !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if ls.hits.Load() != before+1 {
					t.Fatalf("failure was cached or fetch skipped")
				}
			}
		})
	}
	if ls.hits.Load() == 0 {
		t.Fatal("no fetches")
	}
}

type ctOverride struct{ http.ResponseWriter }

func (c *ctOverride) Write(b []byte) (int, error) {
	c.Header().Set("Content-Type", "application/jwt")
	return c.ResponseWriter.Write(b)
}

// TestClientURIRefusals: non-https URIs are refused even by the test seam,
// and the default CheckURL (strict netguard) refuses the loopback test
// server; nothing is fetched.
func TestClientURIRefusals(t *testing.T) {
	ls := newListServer(t)
	uri := ls.handle("/l", token(t, []byte{0}, nil))
	seam := newTestClient(t, ls, &fakeClock{t: t0}, nil)
	strict := newTestClient(t, ls, &fakeClock{t: t0}, func(o *Options) { o.CheckURL = nil })
	for _, tc := range []struct {
		name string
		c    *Client
		uri  string
	}{
		{"http scheme", seam, strings.Replace(uri, "https://", "http://", 1)},
		{"not a URL", seam, "::"},
		{"default netguard refuses loopback", strict, uri},
		{"default netguard refuses metadata IP", strict, "https://169.254.169.254/l"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.c.Check(context.Background(), claim(tc.uri, 0)); !errors.Is(err, ErrForbiddenURI) {
				t.Fatalf("err = %v, want ErrForbiddenURI", err)
			}
		})
	}
	if h := ls.hits.Load(); h != 0 {
		t.Fatalf("hits = %d, want 0", h)
	}
}

// TestParseClaim: malformed status claims are ErrClaim.
func TestParseClaim(t *testing.T) {
	for _, raw := range []string{
		``, `null`, `{}`, `{"status_list":null}`, `{"status_list":{"uri":"https://a/l"}}`,
		`{"status_list":{"idx":-1,"uri":"https://a/l"}}`, `{"status_list":{"idx":1.5,"uri":"https://a/l"}}`,
		`{"status_list":{"idx":"1","uri":"https://a/l"}}`, `{"status_list":{"idx":1}}`,
		`{"status_list":{"idx":1e3,"uri":"https://a/l"}}`, `{"status_list":{"idx":99999999999999999999,"uri":"https://a/l"}}`,
	} {
		if _, err := ParseClaim(json.RawMessage(raw)); !errors.Is(err, ErrClaim) {
			t.Errorf("%s: err = %v, want ErrClaim", raw, err)
		}
	}
	r, err := ParseClaim(json.RawMessage(`{"status_list":{"idx":7,"uri":"https://a/l"}}`))
	if err != nil || r.Idx != 7 || r.URI != "https://a/l" {
		t.Fatalf("%+v %v", r, err)
	}
}

// TestClientSingleFlight: concurrent checks of one URI while its fetch is
// in flight cost one fetch (late arrivals hit the cache).
func TestClientSingleFlight(t *testing.T) {
	ls := newListServer(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	inner := token(t, []byte{2}, nil)
	uri := ls.handle("/sf", func(w http.ResponseWriter, r *http.Request, uri string) {
		once.Do(func() { close(entered) })
		<-release
		inner(w, r, uri)
	})
	c := newTestClient(t, ls, &fakeClock{t: t0}, nil)
	const n = 16
	errs := make(chan error, n)
	for range n {
		go func() {
			s, err := c.Check(context.Background(), claim(uri, 0))
			if err == nil && s != Suspended {
				err = errors.New("wrong status " + s.String())
			}
			errs <- err
		}()
	}
	<-entered
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if h := ls.hits.Load(); h != 1 {
		t.Fatalf("hits = %d, want 1", h)
	}
}

// TestClientCancelledCaller: a caller whose context ends gets ErrFetch.
func TestClientCancelledCaller(t *testing.T) {
	ls := newListServer(t)
	release := make(chan struct{})
	defer close(release)
	uri := ls.handle("/slow", func(w http.ResponseWriter, r *http.Request, _ string) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c := newTestClient(t, ls, &fakeClock{t: t0}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Check(ctx, claim(uri, 0)); !errors.Is(err, ErrFetch) {
		t.Fatalf("err = %v, want ErrFetch", err)
	}
}

// TestClientCacheBounded: the cache never holds more than MaxEntries.
func TestClientCacheBounded(t *testing.T) {
	ls := newListServer(t)
	c := newTestClient(t, ls, &fakeClock{t: t0}, func(o *Options) { o.MaxEntries = 2 })
	for _, p := range []string{"/a", "/b", "/c", "/d"} {
		uri := ls.handle(p, token(t, []byte{0}, nil))
		if _, err := c.Check(context.Background(), claim(uri, 0)); err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		n := len(c.cache)
		c.mu.Unlock()
		if n > 2 {
			t.Fatalf("cache holds %d entries, MaxEntries 2", n)
		}
	}
}

// TestNewClientRequires: HTTP and Key are mandatory.
func TestNewClientRequires(t *testing.T) {
	if _, err := NewClient(Options{Key: keyFunc(t)}); err == nil {
		t.Error("nil HTTP accepted")
	}
	if _, err := NewClient(Options{HTTP: http.DefaultClient}); err == nil {
		t.Error("nil Key accepted")
	}
}
