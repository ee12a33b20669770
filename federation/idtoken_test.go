package federation

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	testClientID = "fedas-at-ds1"
	testNonce    = "n-0S6_WzA2Mj"
)

// jwksServer is a downstream JWKS endpoint whose key set tests can change
// and whose requests are counted.
type jwksServer struct {
	*countingServer
	mu   sync.Mutex
	keys []any // JSON values of the "keys" array
	fail atomic.Bool
}

func newJWKSServer(t *testing.T) *jwksServer {
	t.Helper()
	js := &jwksServer{}
	js.countingServer = newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if js.fail.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		js.mu.Lock()
		keys := append([]any(nil), js.keys...)
		js.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	return js
}

func (js *jwksServer) add(k any) {
	js.mu.Lock()
	js.keys = append(js.keys, k)
	js.mu.Unlock()
}

func (js *jwksServer) uri() string { return js.URL + "/jwks" }

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pubJWK(kid string, alg jose.SignatureAlgorithm, pub any) jose.JSONWebKey {
	return jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: string(alg), Use: "sig"}
}

func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// unsignedJWT builds an alg=none token by hand: go-jose will not make one.
func unsignedJWT(t *testing.T, header, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

type idFixture struct {
	clk    *fakeClock
	js     *jwksServer
	keys   *JWKSCache
	iss    string
	k1     *ecdsa.PrivateKey // kid k1, ES256, published
	rsa1   *rsa.PrivateKey   // kid r1, RS256, published
	other  *ecdsa.PrivateKey // never published
	params IDTokenParams
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
	rsaErr  error
)

func newIDFixture(t *testing.T) *idFixture {
	t.Helper()
	rsaOnce.Do(func() { rsaKey, rsaErr = rsa.GenerateKey(rand.Reader, 2048) })
	if rsaErr != nil {
		t.Fatal(rsaErr)
	}
	f := &idFixture{clk: newFakeClock(), js: newJWKSServer(t), iss: "https://ds1.example",
		k1: newECKey(t), rsa1: rsaKey, other: newECKey(t)}
	f.js.add(pubJWK("k1", jose.ES256, &f.k1.PublicKey))
	f.js.add(pubJWK("r1", jose.RS256, &f.rsa1.PublicKey))
	f.keys = NewJWKSCache(JWKSOptions{AllowLoopbackHTTP: true, TTL: time.Hour, MinRefresh: 10 * time.Second, Now: f.clk.Now})
	f.params = IDTokenParams{
		Issuer: f.iss, ClientID: testClientID, Nonce: testNonce,
		JWKSURI: f.js.uri(), Keys: f.keys, Now: f.clk.Now,
	}
	return f
}

func (f *idFixture) claims() map[string]any {
	now := f.clk.Now().Unix()
	return map[string]any{
		"iss":       f.iss,
		"sub":       "248289761001",
		"aud":       testClientID,
		"exp":       now + 300,
		"iat":       now,
		"auth_time": now - 10,
		"nonce":     testNonce,
		"amr":       []string{"pwd", "otp"},
		"acr":       "urn:ds1:loa:2",
		"email":     "j@example.com",
	}
}

func TestVerifyIDToken(t *testing.T) {
	f := newIDFixture(t)
	hmacSecret, _ := json.Marshal(pubJWK("k1", jose.ES256, &f.k1.PublicKey))

	tests := []struct {
		name string
		// token builds the token from valid claims c (already mutated).
		token     func(t *testing.T, c map[string]any) string
		mutate    func(c map[string]any)
		params    func(p *IDTokenParams)
		wantCheck string // "" means valid
	}{
		{name: "valid ES256"},
		{
			name:   "valid, aud array with azp",
			mutate: func(c map[string]any) { c["aud"] = []string{testClientID, "api"}; c["azp"] = testClientID },
		},
		{
			name:   "valid, expired 30s ago within leeway",
			mutate: func(c map[string]any) { c["exp"] = f.clk.Now().Unix() - 30 },
		},
		{
			name:   "valid, no nonce expected",
			mutate: func(c map[string]any) { delete(c, "nonce") },
			params: func(p *IDTokenParams) { p.Nonce = "" },
		},
		{
			name:   "valid RS256 when listed",
			token:  func(t *testing.T, c map[string]any) string { return sign(t, jose.RS256, f.rsa1, "r1", c) },
			params: func(p *IDTokenParams) { p.Algs = []jose.SignatureAlgorithm{jose.ES256, jose.RS256} },
		},
		{name: "wrong iss", mutate: func(c map[string]any) { c["iss"] = "https://ds2.example" }, wantCheck: "iss"},
		{name: "iss with trailing slash", mutate: func(c map[string]any) { c["iss"] = f.iss + "/" }, wantCheck: "iss"},
		{name: "iss missing", mutate: func(c map[string]any) { delete(c, "iss") }, wantCheck: "iss"},
		{name: "wrong aud", mutate: func(c map[string]any) { c["aud"] = "someone-else" }, wantCheck: "aud"},
		{name: "aud missing", mutate: func(c map[string]any) { delete(c, "aud") }, wantCheck: "aud"},
		{
			name:      "several audiences, no azp",
			mutate:    func(c map[string]any) { c["aud"] = []string{testClientID, "api"} },
			wantCheck: "azp",
		},
		{name: "azp of another client", mutate: func(c map[string]any) { c["azp"] = "other" }, wantCheck: "azp"},
		{name: "wrong nonce", mutate: func(c map[string]any) { c["nonce"] = "attacker-nonce" }, wantCheck: "nonce"},
		{name: "nonce missing", mutate: func(c map[string]any) { delete(c, "nonce") }, wantCheck: "nonce"},
		{name: "expired", mutate: func(c map[string]any) { c["exp"] = f.clk.Now().Unix() - 120 }, wantCheck: "exp"},
		{name: "exp missing", mutate: func(c map[string]any) { delete(c, "exp") }, wantCheck: "exp"},
		{name: "iat far in the future", mutate: func(c map[string]any) { c["iat"] = f.clk.Now().Unix() + 600 }, wantCheck: "iat"},
		{name: "iat missing", mutate: func(c map[string]any) { delete(c, "iat") }, wantCheck: "iat"},
		{name: "nbf in the future", mutate: func(c map[string]any) { c["nbf"] = f.clk.Now().Unix() + 600 }, wantCheck: "nbf"},
		{name: "sub missing", mutate: func(c map[string]any) { delete(c, "sub") }, wantCheck: "sub"},
		{name: "sub too long", mutate: func(c map[string]any) { c["sub"] = strings.Repeat("s", 256) }, wantCheck: "sub"},
		{name: "nonce of wrong type", mutate: func(c map[string]any) { c["nonce"] = 7 }, wantCheck: "malformed"},
		{
			name: "alg none",
			token: func(t *testing.T, c map[string]any) string {
				return unsignedJWT(t, map[string]any{"alg": "none", "kid": "k1"}, c)
			},
			wantCheck: "alg",
		},
		{
			name:      "HS256 keyed with the public key (alg confusion)",
			token:     func(t *testing.T, c map[string]any) string { return sign(t, jose.HS256, hmacSecret, "k1", c) },
			wantCheck: "alg",
		},
		{
			name:      "RS256 not listed",
			token:     func(t *testing.T, c map[string]any) string { return sign(t, jose.RS256, f.rsa1, "r1", c) },
			wantCheck: "alg",
		},
		{
			name:      "ES384 not listed",
			token:     func(t *testing.T, c map[string]any) string { return sign(t, jose.ES384, newP384(t), "k1", c) },
			wantCheck: "alg",
		},
		{
			name:      "signed by another key under a published kid (B13)",
			token:     func(t *testing.T, c map[string]any) string { return sign(t, jose.ES256, f.other, "k1", c) },
			wantCheck: "signature",
		},
		{
			name: "payload altered after signing",
			token: func(t *testing.T, c map[string]any) string {
				parts := strings.Split(sign(t, jose.ES256, f.k1, "k1", c), ".")
				c["sub"] = "admin"
				b, _ := json.Marshal(c)
				parts[1] = base64.RawURLEncoding.EncodeToString(b)
				return strings.Join(parts, ".")
			},
			wantCheck: "signature",
		},
		{
			name:      "unknown kid",
			token:     func(t *testing.T, c map[string]any) string { return sign(t, jose.ES256, f.other, "k-unknown", c) },
			wantCheck: "kid",
		},
		{
			name:      "no kid",
			token:     func(t *testing.T, c map[string]any) string { return sign(t, jose.ES256, f.k1, "", c) },
			wantCheck: "kid",
		},
		{
			name:      "garbage",
			token:     func(*testing.T, map[string]any) string { return "not.a.jwt" },
			wantCheck: "malformed",
		},
		{
			name:      "JWE-like five parts",
			token:     func(*testing.T, map[string]any) string { return "a.b.c.d.e" },
			wantCheck: "malformed",
		},
		{
			name:      "oversized",
			token:     func(*testing.T, map[string]any) string { return strings.Repeat("a", 40<<10) },
			wantCheck: "malformed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.claims()
			if tt.mutate != nil {
				tt.mutate(c)
			}
			var raw string
			if tt.token != nil {
				raw = tt.token(t, c)
			} else {
				raw = sign(t, jose.ES256, f.k1, "k1", c)
			}
			p := f.params
			if tt.params != nil {
				tt.params(&p)
			}
			got, err := VerifyIDToken(context.Background(), raw, p)
			if tt.wantCheck == "" {
				if err != nil {
					t.Fatalf("VerifyIDToken: %v", err)
				}
				if got.Subject != "248289761001" || got.Issuer != f.iss || !jwt.Audience(got.Audience).Contains(testClientID) {
					t.Fatalf("claims = %+v", got)
				}
				return
			}
			if !errors.Is(err, ErrInvalidIDToken) {
				t.Fatalf("err = %v, want ErrInvalidIDToken", err)
			}
			if errors.Is(err, ErrUnavailable) {
				t.Fatalf("err %v must not look like a dependency failure", err)
			}
			var ie *IDTokenError
			if !errors.As(err, &ie) || ie.Check != tt.wantCheck {
				t.Fatalf("err = %v, want check %q", err, tt.wantCheck)
			}
			if strings.Contains(err.Error(), testNonce) {
				t.Fatalf("error text leaks the nonce: %v", err)
			}
			if got.Subject != "" {
				t.Fatalf("claims returned with error: %+v", got)
			}
		})
	}
}

func newP384(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerifyIDToken_Claims(t *testing.T) {
	f := newIDFixture(t)
	c := f.claims()
	c["azp"] = testClientID
	got, err := VerifyIDToken(context.Background(), sign(t, jose.ES256, f.k1, "k1", c), f.params)
	if err != nil {
		t.Fatal(err)
	}
	now := f.clk.Now()
	if !got.Expiry.Equal(now.Add(300*time.Second)) || !got.IssuedAt.Equal(now) || !got.AuthTime.Equal(now.Add(-10*time.Second)) {
		t.Fatalf("times: exp %v iat %v auth_time %v", got.Expiry, got.IssuedAt, got.AuthTime)
	}
	if got.Nonce != testNonce || got.ACR != "urn:ds1:loa:2" || strings.Join(got.AMR, ",") != "pwd,otp" {
		t.Fatalf("claims = %+v", got)
	}
	if got.Extra["email"] != "j@example.com" || got.Extra["azp"] != testClientID {
		t.Fatalf("Extra = %v", got.Extra)
	}
	for _, k := range mappedClaims {
		if _, ok := got.Extra[k]; ok {
			t.Fatalf("Extra duplicates mapped claim %q", k)
		}
	}
}

// TestVerifyIDToken_KeyAlgMismatch: a JWK published for one alg
// (RFC 7517 §4.4) does not verify tokens with another.
func TestVerifyIDToken_KeyAlgMismatch(t *testing.T) {
	f := newIDFixture(t)
	k := newECKey(t)
	f.js.add(pubJWK("k-ps", jose.PS256, &k.PublicKey))
	_, err := VerifyIDToken(context.Background(), sign(t, jose.ES256, k, "k-ps", f.claims()), f.params)
	var ie *IDTokenError
	if !errors.As(err, &ie) || ie.Check != "alg" {
		t.Fatalf("err = %v, want check alg", err)
	}
}

// TestVerifyIDToken_UnknownKidBoundedRefetch is SECURITY-RESULTS.md D9: tokens
// with unknown kids trigger at most one JWKS fetch per MinRefresh, and a
// rotated-in key is picked up once MinRefresh has passed.
func TestVerifyIDToken_UnknownKidBoundedRefetch(t *testing.T) {
	f := newIDFixture(t)
	ctx := context.Background()
	if _, err := VerifyIDToken(ctx, sign(t, jose.ES256, f.k1, "k1", f.claims()), f.params); err != nil {
		t.Fatal(err)
	}
	if f.js.Hits() != 1 {
		t.Fatalf("hits = %d, want 1", f.js.Hits())
	}

	newKey := newECKey(t)
	verifyUnknown := func(n int) {
		t.Helper()
		for i := range n {
			_, err := VerifyIDToken(ctx, sign(t, jose.ES256, newKey, "k2", f.claims()), f.params)
			if !errors.Is(err, ErrInvalidIDToken) || !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("attempt %d: err = %v, want ErrInvalidIDToken+ErrUnknownKey", i, err)
			}
		}
	}
	// Right after a fetch: no refetch at all.
	verifyUnknown(10)
	if f.js.Hits() != 1 {
		t.Fatalf("hits within MinRefresh of a fetch = %d, want 1", f.js.Hits())
	}
	// Past MinRefresh (still within TTL): exactly one more fetch.
	f.clk.Advance(11 * time.Second)
	verifyUnknown(10)
	if f.js.Hits() != 2 {
		t.Fatalf("hits = %d, want 2", f.js.Hits())
	}
	// Concurrent unknown kids after MinRefresh: one fetch between them.
	f.clk.Advance(11 * time.Second)
	k3 := sign(t, jose.ES256, newKey, "k3", f.claims())
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { _, _ = VerifyIDToken(ctx, k3, f.params) })
	}
	wg.Wait()
	if f.js.Hits() != 3 {
		t.Fatalf("hits after concurrent unknown kids = %d, want 3", f.js.Hits())
	}
	// Key rotation: the downstream publishes k2; after MinRefresh it works.
	f.js.add(pubJWK("k2", jose.ES256, &newKey.PublicKey))
	f.clk.Advance(11 * time.Second)
	if _, err := VerifyIDToken(ctx, sign(t, jose.ES256, newKey, "k2", f.claims()), f.params); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	// The known key still needs no fetch.
	if _, err := VerifyIDToken(ctx, sign(t, jose.ES256, f.k1, "k1", f.claims()), f.params); err != nil {
		t.Fatal(err)
	}
	if f.js.Hits() != 4 {
		t.Fatalf("hits = %d, want 4", f.js.Hits())
	}
}

// TestVerifyIDToken_JWKSUnavailable is SECURITY-RESULTS.md D9: an unreachable JWKS
// rejects the token as a dependency failure and is not hammered.
func TestVerifyIDToken_JWKSUnavailable(t *testing.T) {
	f := newIDFixture(t)
	f.js.fail.Store(true)
	for range 10 {
		_, err := VerifyIDToken(context.Background(), sign(t, jose.ES256, f.k1, "k1", f.claims()), f.params)
		if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidIDToken) {
			t.Fatalf("err = %v, want ErrUnavailable only", err)
		}
	}
	if f.js.Hits() != 1 {
		t.Fatalf("hits = %d, want 1", f.js.Hits())
	}
}

func TestVerifyIDToken_ParamValidation(t *testing.T) {
	f := newIDFixture(t)
	raw := sign(t, jose.ES256, f.k1, "k1", f.claims())
	for _, tt := range []struct {
		name string
		mod  func(p *IDTokenParams)
	}{
		{"HS256 listed", func(p *IDTokenParams) { p.Algs = []jose.SignatureAlgorithm{jose.ES256, jose.HS256} }},
		{"none listed", func(p *IDTokenParams) { p.Algs = []jose.SignatureAlgorithm{"none"} }},
		{"empty issuer", func(p *IDTokenParams) { p.Issuer = "" }},
		{"empty client_id", func(p *IDTokenParams) { p.ClientID = "" }},
		{"empty jwks_uri", func(p *IDTokenParams) { p.JWKSURI = "" }},
		{"nil keys", func(p *IDTokenParams) { p.Keys = nil }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := f.params
			tt.mod(&p)
			_, err := VerifyIDToken(context.Background(), raw, p)
			if err == nil || errors.Is(err, ErrInvalidIDToken) || errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v, want a configuration error", err)
			}
		})
	}
	if f.js.Hits() != 0 {
		t.Fatalf("JWKS fetched %d times for invalid params", f.js.Hits())
	}
}

// TestJWKSCache_SkipsUnusableKeys: private, symmetric, encryption and
// kid-less keys are never returned; one odd key does not spoil the set.
func TestJWKSCache_SkipsUnusableKeys(t *testing.T) {
	js := newJWKSServer(t)
	good, leaked, enc := newECKey(t), newECKey(t), newECKey(t)
	js.add(map[string]any{"kty": "weird", "kid": "w1"})
	js.add("not an object")
	js.add(jose.JSONWebKey{Key: leaked, KeyID: "priv1", Algorithm: "ES256", Use: "sig"})
	js.add(jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "oct1", Algorithm: "HS256"})
	js.add(jose.JSONWebKey{Key: &enc.PublicKey, KeyID: "enc1", Use: "enc"})
	js.add(jose.JSONWebKey{Key: &good.PublicKey, Algorithm: "ES256"}) // no kid
	js.add(pubJWK("good", jose.ES256, &good.PublicKey))
	js.add(pubJWK("good", jose.ES256, &leaked.PublicKey)) // duplicate kid: first wins

	c := NewJWKSCache(JWKSOptions{AllowLoopbackHTTP: true})
	ctx := context.Background()
	k, err := c.Key(ctx, js.uri(), "good")
	if err != nil {
		t.Fatal(err)
	}
	if !k.IsPublic() || !k.Key.(*ecdsa.PublicKey).Equal(&good.PublicKey) {
		t.Fatalf("wrong key for kid good")
	}
	for _, kid := range []string{"w1", "priv1", "oct1", "enc1", ""} {
		if _, err := c.Key(ctx, js.uri(), kid); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("kid %q: err = %v, want ErrUnknownKey", kid, err)
		}
	}
	if js.Hits() != 1 {
		t.Fatalf("hits = %d, want 1", js.Hits())
	}
}

func TestJWKSCache_FetchFailures(t *testing.T) {
	canary := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"keys": []any{}})
	}))
	for _, tt := range []struct {
		name string
		h    http.HandlerFunc
	}{
		{"redirect to canary (K05)", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, canary.URL+"/jwks", http.StatusFound)
		}},
		{"oversize", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", 70<<10) + `"}`))
		}},
		{"HTML", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html></html>"))
		}},
		{"no keys member", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, map[string]any{}) }},
		{"keys not an array", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, map[string]any{"keys": "x"}) }},
		{"502", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "bad gateway", http.StatusBadGateway) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newCountingServer(t, tt.h)
			c := NewJWKSCache(JWKSOptions{AllowLoopbackHTTP: true, HTTPClient: &http.Client{}})
			for range 5 {
				if _, err := c.Key(context.Background(), srv.URL+"/jwks", "k1"); !errors.Is(err, ErrUnavailable) {
					t.Fatalf("err = %v, want ErrUnavailable", err)
				}
			}
			if srv.Hits() != 1 || canary.Hits() != 0 {
				t.Fatalf("hits: jwks %d (want 1), canary %d (want 0)", srv.Hits(), canary.Hits())
			}
		})
	}
}

// TestJWKSCache_StaleOnFailedRefresh: past TTL a failed refresh keeps the
// old set usable for one more TTL.
func TestJWKSCache_StaleOnFailedRefresh(t *testing.T) {
	js := newJWKSServer(t)
	k := newECKey(t)
	js.add(pubJWK("k1", jose.ES256, &k.PublicKey))
	clk := newFakeClock()
	c := NewJWKSCache(JWKSOptions{AllowLoopbackHTTP: true, TTL: time.Minute, Now: clk.Now})
	ctx := context.Background()
	if _, err := c.Key(ctx, js.uri(), "k1"); err != nil {
		t.Fatal(err)
	}
	js.fail.Store(true)
	clk.Advance(61 * time.Second)
	if _, err := c.Key(ctx, js.uri(), "k1"); err != nil {
		t.Fatalf("stale key: %v", err)
	}
	// An unknown kid against a stale set whose refresh failed is a
	// dependency failure, not proof of forgery.
	if _, err := c.Key(ctx, js.uri(), "k9"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("unknown kid on stale set: err = %v, want ErrUnavailable", err)
	}
	clk.Advance(60 * time.Second)
	if _, err := c.Key(ctx, js.uri(), "k1"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after 2×TTL: err = %v, want ErrUnavailable", err)
	}
	if js.Hits() != 3 {
		t.Fatalf("hits = %d, want 3", js.Hits())
	}
}

func TestJWKSCache_RejectsBadURI(t *testing.T) {
	c := NewJWKSCache(JWKSOptions{})
	for _, u := range []string{"http://ds.example/jwks", "/jwks", "https://169.254.169.254/jwks", "https://127.0.0.1/jwks"} {
		if _, err := c.Key(context.Background(), u, "k1"); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Key(%q): err = %v, want ErrUnavailable", u, err)
		}
	}
}

func TestJWKSCache_ConcurrentFirstFetch(t *testing.T) {
	k := newECKey(t)
	release := make(chan struct{})
	srv := newCountingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		writeJSON(w, map[string]any{"keys": []any{pubJWK("k1", jose.ES256, &k.PublicKey)}})
	}))
	c := NewJWKSCache(JWKSOptions{AllowLoopbackHTTP: true})
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
	)
	for range 50 {
		wg.Go(func() {
			if _, err := c.Key(context.Background(), srv.URL+"/jwks", "k1"); err != nil {
				failed.Add(1)
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if failed.Load() != 0 || srv.Hits() != 1 {
		t.Fatalf("failed %d, hits %d; want 0 and 1", failed.Load(), srv.Hits())
	}
}
