package webhook_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/netguard"
	"github.com/fedas/fedas/reach/webhook"
)

const (
	issuer = "https://as.example"
	kid    = "wake-1"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

type env struct {
	key    *ecdsa.PrivateKey
	jwks   *jose.JSONWebKeySet
	sleeps []time.Duration
	mu     sync.Mutex
}

func newEnv(t testing.TB) *env {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return &env{key: k, jwks: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}}}}
}

// sender is a Sender allowed to reach loopback (the httptest receivers)
// with a fixed clock and a recording, non-waiting sleep.
func (e *env) sender(t testing.TB, guard netguard.Options) *webhook.Sender {
	t.Helper()
	s, err := webhook.New(webhook.Config{
		Issuer: issuer, Key: e.key, KeyID: kid, Guard: guard,
		Now: func() time.Time { return now },
		Sleep: func(_ context.Context, d time.Duration) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.sleeps = append(e.sleeps, d)
			return nil
		},
	})
	require.NoError(t, err)
	return s
}

var loopback = netguard.Options{AllowLoopback: true}

// receiver records the bodies it gets and answers statuses in turn (the
// last one repeats).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   []string
	ctypes   []string
	statuses []int
}

func newReceiver(t testing.TB, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		n := len(r.bodies)
		r.bodies = append(r.bodies, string(b))
		r.ctypes = append(r.ctypes, req.Header.Get("Content-Type"))
		st := r.statuses[min(n, len(r.statuses)-1)]
		r.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

// TestDeliverVerified: the receiver gets one POST whose body verifies
// with VerifyWake against our JWKS and its own URL, with the header and
// claims the package promises.
func TestDeliverVerified(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t, http.StatusNoContent)
	url := r.URL + "/wake"
	require.NoError(t, e.sender(t, loopback).Deliver(context.Background(), url, "dev-123"))
	bodies := r.got()
	require.Len(t, bodies, 1)
	require.Equal(t, webhook.ContentType, r.ctypes[0])

	v := &webhook.Verifier{JWKS: e.jwks, Audience: url, Issuer: issuer, Now: func() time.Time { return now }}
	c, err := v.Verify(bodies[0])
	require.NoError(t, err)
	require.Equal(t, issuer, c.Issuer)
	require.Equal(t, url, c.Audience)
	require.Equal(t, now.Unix(), c.IssuedAt.Time().Unix())
	require.Equal(t, webhook.DefaultLifetime, c.Expiry.Time().Sub(c.IssuedAt.Time()))
	require.NotEmpty(t, c.ID)
	require.Equal(t, webhook.Event{Type: "wake", DeviceID: "dev-123"}, c.Event)

	tok, err := jwt.ParseSigned(bodies[0], []jose.SignatureAlgorithm{jose.ES256})
	require.NoError(t, err)
	h := tok.Headers[0]
	require.Equal(t, "ES256", h.Algorithm)
	require.Equal(t, kid, h.KeyID)
	require.Equal(t, "reach-wake+jwt", h.ExtraHeaders[jose.HeaderType])
	require.Nil(t, h.JSONWebKey, "no embedded key: the receiver trusts our JWKS only")

	// The real clock is far past the fixed one: the package function
	// (time.Now) refuses the token as expired.
	_, err = webhook.VerifyWake(bodies[0], e.jwks, url)
	require.ErrorIs(t, err, webhook.ErrInvalidToken)
}

// TestPayloadHasOnlyListedFields (docs/reach.md R18): the token's header
// and payload have exactly the listed members — no question, no user,
// nothing personal.
func TestPayloadHasOnlyListedFields(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t, http.StatusOK)
	require.NoError(t, e.sender(t, loopback).Deliver(context.Background(), r.URL, "dev-123"))
	parts := strings.Split(r.got()[0], ".")
	require.Len(t, parts, 3)
	keysOf := func(seg string) ([]string, map[string]json.RawMessage) {
		raw, err := base64.RawURLEncoding.DecodeString(seg)
		require.NoError(t, err)
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(raw, &m))
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks, m
	}
	hk, _ := keysOf(parts[0])
	require.Equal(t, []string{"alg", "kid", "typ"}, hk)
	pk, m := keysOf(parts[1])
	require.Equal(t, []string{"aud", "event", "exp", "iat", "iss", "jti"}, pk)
	var ev map[string]any
	require.NoError(t, json.Unmarshal(m["event"], &ev))
	require.Equal(t, map[string]any{"type": "wake", "device_id": "dev-123"}, ev)
}

// TestRetries: transient failures are retried with exponential backoff
// up to three attempts, resending the same token (jti is the receiver's
// de-duplication key); a final refusal or a redirect is not retried.
func TestRetries(t *testing.T) {
	cases := []struct {
		name     string
		statuses []int
		want     error
		posts    int
		sleeps   []time.Duration
	}{
		{"500 then 200", []int{500, 200}, nil, 2, []time.Duration{500 * time.Millisecond}},
		{"500, 503, then 202", []int{500, 503, 202}, nil, 3, []time.Duration{500 * time.Millisecond, time.Second}},
		{"give up after 3", []int{500}, webhook.ErrGaveUp, 3, []time.Duration{500 * time.Millisecond, time.Second}},
		{"429 and 408 are transient", []int{429, 408, 200}, nil, 3, []time.Duration{500 * time.Millisecond, time.Second}},
		{"400 is final", []int{400}, webhook.ErrRejected, 1, nil},
		{"404 is final", []int{404}, webhook.ErrRejected, 1, nil},
		{"a redirect is not followed and final", []int{302}, webhook.ErrRejected, 1, nil},
		{"304 is not success", []int{304}, webhook.ErrRejected, 1, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			r := newReceiver(t, tc.statuses...)
			err := e.sender(t, loopback).Deliver(context.Background(), r.URL, "dev-1")
			if tc.want == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.want)
			}
			got := r.got()
			require.Len(t, got, tc.posts)
			for _, b := range got {
				require.Equal(t, got[0], b, "every attempt resends the same token")
			}
			require.Equal(t, tc.sleeps, e.sleeps)
		})
	}
}

// TestUnreachableGivesUp: a connection refused is transient; three
// attempts, then ErrGaveUp.
func TestUnreachableGivesUp(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t, 200)
	url := r.URL
	r.Close()
	require.ErrorIs(t, e.sender(t, loopback).Deliver(context.Background(), url, "dev-1"), webhook.ErrGaveUp)
	require.Len(t, e.sleeps, 2)
}

// TestSSRFRefused: the production guard refuses, before anything is
// sent, private and special IP literals, plain http, loopback and
// credentials; a redirect towards loopback is never followed.
func TestSSRFRefused(t *testing.T) {
	e := newEnv(t)
	strict := e.sender(t, netguard.Options{})
	for _, url := range []string{
		"https://10.0.0.1/wake",
		"https://192.168.1.10/wake",
		"https://169.254.169.254/latest/meta-data",
		"https://[fd00::1]/wake",
		"https://127.0.0.1/wake",
		"https://localhost/wake",
		"http://hooks.example/wake",
		"https://user:pw@hooks.example/wake",
		"ftp://hooks.example/wake",
		"https://hooks.example/wake#frag",
	} {
		t.Run(url, func(t *testing.T) {
			err := strict.Deliver(context.Background(), url, "dev-1")
			require.ErrorIs(t, err, webhook.ErrForbidden)
			require.ErrorIs(t, err, netguard.ErrForbidden)
		})
	}
	t.Run("a name resolving to a private address is refused at dial time", func(t *testing.T) {
		s := e.sender(t, netguard.Options{LookupIP: func(context.Context, string) ([]net.IP, error) {
			return []net.IP{net.ParseIP("10.1.2.3")}, nil
		}})
		err := s.Deliver(context.Background(), "https://hooks.example/wake", "dev-1")
		require.ErrorIs(t, err, webhook.ErrForbidden)
		require.Empty(t, e.sleeps, "not retried")
	})
	t.Run("redirect to loopback not followed", func(t *testing.T) {
		target := newReceiver(t, 200)
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/internal", http.StatusTemporaryRedirect)
		}))
		t.Cleanup(redirector.Close)
		err := e.sender(t, loopback).Deliver(context.Background(), redirector.URL, "dev-1")
		require.ErrorIs(t, err, webhook.ErrRejected)
		require.Empty(t, target.got(), "the redirect target got nothing")
	})
}

// TestVerifyRefuses is the receiver's side as a table: every deviation
// from the promised token is refused with ErrInvalidToken.
func TestVerifyRefuses(t *testing.T) {
	e := newEnv(t)
	const aud = "https://app.example/wake"
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	sign := func(key *ecdsa.PrivateKey, typ, kidv string, claims any) string {
		opts := (&jose.SignerOptions{}).WithHeader("kid", kidv)
		if typ != "" {
			opts = opts.WithType(jose.ContentType(typ))
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
		require.NoError(t, err)
		tok, err := jwt.Signed(s).Claims(claims).Serialize()
		require.NoError(t, err)
		return tok
	}
	good := func() map[string]any {
		return map[string]any{
			"iss": issuer, "aud": aud, "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": "j1",
			"event": map[string]any{"type": "wake", "device_id": "dev-1"},
		}
	}
	with := func(k string, v any) map[string]any {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	v := &webhook.Verifier{JWKS: e.jwks, Audience: aud, Issuer: issuer, Now: func() time.Time { return now }}
	_, err = v.Verify(sign(e.key, webhook.Type, kid, good()))
	require.NoError(t, err, "the baseline verifies")

	hs, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")},
		(&jose.SignerOptions{}).WithType(webhook.Type).WithHeader("kid", kid))
	require.NoError(t, err)
	hsTok, err := jwt.Signed(hs).Claims(good()).Serialize()
	require.NoError(t, err)

	cases := map[string]string{
		"garbage":          "not.a.jws",
		"HS256":            hsTok,
		"other key":        sign(other, webhook.Type, kid, good()),
		"unknown kid":      sign(e.key, webhook.Type, "nope", good()),
		"no kid":           sign(e.key, webhook.Type, "", good()),
		"typ JWT":          sign(e.key, "JWT", kid, good()),
		"no typ":           sign(e.key, "", kid, good()),
		"wrong aud":        sign(e.key, webhook.Type, kid, with("aud", "https://evil.example/wake")),
		"wrong iss":        sign(e.key, webhook.Type, kid, with("iss", "https://evil.example")),
		"no iat":           sign(e.key, webhook.Type, kid, with("iat", nil)),
		"no exp":           sign(e.key, webhook.Type, kid, with("exp", nil)),
		"expired":          sign(e.key, webhook.Type, kid, with("exp", now.Add(-time.Minute).Unix())),
		"future iat":       sign(e.key, webhook.Type, kid, with("iat", now.Add(time.Hour).Unix())),
		"long lifetime":    sign(e.key, webhook.Type, kid, with("exp", now.Add(time.Hour).Unix())),
		"no jti":           sign(e.key, webhook.Type, kid, with("jti", nil)),
		"other event type": sign(e.key, webhook.Type, kid, with("event", map[string]any{"type": "question", "device_id": "d"})),
		"no device":        sign(e.key, webhook.Type, kid, with("event", map[string]any{"type": "wake"})),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := v.Verify(tok)
			require.ErrorIs(t, err, webhook.ErrInvalidToken)
			require.NotContains(t, err.Error(), tok, "the token never appears in the error")
		})
	}
}

// TestNewRefusesBadConfig: no signer without issuer, a P-256 key and a kid.
func TestNewRefusesBadConfig(t *testing.T) {
	e := newEnv(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	for name, cfg := range map[string]webhook.Config{
		"no issuer":     {Key: e.key, KeyID: kid},
		"no key":        {Issuer: issuer, KeyID: kid},
		"P-384":         {Issuer: issuer, Key: p384, KeyID: kid},
		"no kid":        {Issuer: issuer, Key: e.key},
		"long lifetime": {Issuer: issuer, Key: e.key, KeyID: kid, Lifetime: time.Hour},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := webhook.New(cfg)
			require.Error(t, err)
		})
	}
}

// FuzzVerifyWake: arbitrary input never panics and never verifies.
func FuzzVerifyWake(f *testing.F) {
	e := newEnv(f)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJFUzI1NiIsImtpZCI6Indha2UtMSIsInR5cCI6InJlYWNoLXdha2Urand0In0.e30.AAAA")
	v := &webhook.Verifier{JWKS: e.jwks, Audience: "https://app.example/wake", Now: func() time.Time { return now }}
	f.Fuzz(func(t *testing.T, tok string) {
		if _, err := v.Verify(tok); err == nil {
			t.Fatalf("a fuzzed token verified")
		}
	})
}
