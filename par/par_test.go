package par

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

const (
	testIssuer   = "https://ds1.example"
	testClientID = "s6BhdRkqt3"
	goodURN      = RequestURIPrefix + "6esc_11ACC5bwc014ltc14eY22c"
)

// ---------------------------------------------------------------------------
// helpers

// checker is a minimal stand-in for testify's assert/require: importing
// testify v1.12 pulls go.yaml.in/yaml/v3, which is not in go.sum, and this
// package may not edit go.mod. assert reports and continues, require stops.
type checker struct{ fatal bool }

var (
	assert  = checker{}
	require = checker{fatal: true}
)

func (c checker) fail(t testing.TB, msg []any, format string, args ...any) bool {
	t.Helper()
	s := fmt.Sprintf(format, args...)
	if len(msg) > 0 {
		if f, ok := msg[0].(string); ok {
			s += ": " + fmt.Sprintf(f, msg[1:]...)
		} else {
			s += ": " + fmt.Sprint(msg...)
		}
	}
	if c.fatal {
		t.Fatal(s)
	}
	t.Error(s)
	return false
}

func (c checker) NoError(t testing.TB, err error, msg ...any) bool {
	t.Helper()
	if err != nil {
		return c.fail(t, msg, "unexpected error: %v", err)
	}
	return true
}

func (c checker) Error(t testing.TB, err error, msg ...any) bool {
	t.Helper()
	if err == nil {
		return c.fail(t, msg, "expected an error")
	}
	return true
}

func (c checker) ErrorIs(t testing.TB, err, target error, msg ...any) bool {
	t.Helper()
	if !errors.Is(err, target) {
		return c.fail(t, msg, "error %v is not %v", err, target)
	}
	return true
}

func (c checker) NotErrorIs(t testing.TB, err, target error, msg ...any) bool {
	t.Helper()
	if errors.Is(err, target) {
		return c.fail(t, msg, "error %v must not be %v", err, target)
	}
	return true
}

func (c checker) ErrorAs(t testing.TB, err error, target any, msg ...any) bool {
	t.Helper()
	if !errors.As(err, target) {
		return c.fail(t, msg, "error %v (%T) is not a %T", err, err, target)
	}
	return true
}

func (c checker) Equal(t testing.TB, want, got any, msg ...any) bool {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		return c.fail(t, msg, "want %#v, got %#v", want, got)
	}
	return true
}

func (c checker) True(t testing.TB, v bool, msg ...any) bool {
	t.Helper()
	if !v {
		return c.fail(t, msg, "expected true")
	}
	return true
}

func (c checker) False(t testing.TB, v bool, msg ...any) bool {
	t.Helper()
	if v {
		return c.fail(t, msg, "expected false")
	}
	return true
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Interface, reflect.Chan:
		return rv.IsNil()
	}
	return false
}

func (c checker) Nil(t testing.TB, v any, msg ...any) bool {
	t.Helper()
	if !isNil(v) {
		return c.fail(t, msg, "expected nil, got %#v", v)
	}
	return true
}

func (c checker) NotNil(t testing.TB, v any, msg ...any) bool {
	t.Helper()
	if isNil(v) {
		return c.fail(t, msg, "expected non-nil")
	}
	return true
}

func (c checker) Zero(t testing.TB, v any, msg ...any) bool {
	t.Helper()
	if v != nil && !reflect.ValueOf(v).IsZero() {
		return c.fail(t, msg, "expected zero, got %#v", v)
	}
	return true
}

func (c checker) Empty(t testing.TB, s string, msg ...any) bool {
	t.Helper()
	if s != "" {
		return c.fail(t, msg, "expected empty, got %q", s)
	}
	return true
}

func (c checker) Len(t testing.TB, v any, n int, msg ...any) bool {
	t.Helper()
	if l := reflect.ValueOf(v).Len(); l != n {
		return c.fail(t, msg, "want length %d, got %d", n, l)
	}
	return true
}

func contains(container, elem any) bool {
	if s, ok := container.(string); ok {
		return strings.Contains(s, elem.(string))
	}
	rv := reflect.ValueOf(container)
	for i := 0; i < rv.Len(); i++ {
		if reflect.DeepEqual(rv.Index(i).Interface(), elem) {
			return true
		}
	}
	return false
}

func (c checker) Contains(t testing.TB, container, elem any, msg ...any) bool {
	t.Helper()
	if !contains(container, elem) {
		return c.fail(t, msg, "%#v does not contain %#v", container, elem)
	}
	return true
}

func (c checker) NotContains(t testing.TB, container, elem any, msg ...any) bool {
	t.Helper()
	if contains(container, elem) {
		return c.fail(t, msg, "%#v must not contain %#v", container, elem)
	}
	return true
}

func num(v any) float64 {
	rv := reflect.ValueOf(v)
	switch {
	case rv.CanInt():
		return float64(rv.Int())
	case rv.CanUint():
		return float64(rv.Uint())
	case rv.CanFloat():
		return rv.Float()
	}
	panic(fmt.Sprintf("not a number: %T", v))
}

func (c checker) cmp(t testing.TB, ok bool, a, b any, op string, msg []any) bool {
	t.Helper()
	if !ok {
		return c.fail(t, msg, "want %v %s %v", a, op, b)
	}
	return true
}

func (c checker) Greater(t testing.TB, a, b any, msg ...any) bool {
	t.Helper()
	return c.cmp(t, num(a) > num(b), a, b, ">", msg)
}

func (c checker) GreaterOrEqual(t testing.TB, a, b any, msg ...any) bool {
	t.Helper()
	return c.cmp(t, num(a) >= num(b), a, b, ">=", msg)
}

func (c checker) Less(t testing.TB, a, b any, msg ...any) bool {
	t.Helper()
	return c.cmp(t, num(a) < num(b), a, b, "<", msg)
}

func (c checker) LessOrEqual(t testing.TB, a, b any, msg ...any) bool {
	t.Helper()
	return c.cmp(t, num(a) <= num(b), a, b, "<=", msg)
}

func (c checker) Positive(t testing.TB, a any, msg ...any) bool {
	t.Helper()
	return c.cmp(t, num(a) > 0, a, 0, ">", msg)
}

func (c checker) InDelta(t testing.TB, want, got any, delta float64, msg ...any) bool {
	t.Helper()
	if d := num(want) - num(got); d > delta || d < -delta {
		return c.fail(t, msg, "%v and %v differ by more than %v", want, got, delta)
	}
	return true
}

func (c checker) WithinRange(t testing.TB, tm, start, end time.Time, msg ...any) bool {
	t.Helper()
	if tm.Before(start) || tm.After(end) {
		return c.fail(t, msg, "%v not within [%v, %v]", tm, start, end)
	}
	return true
}

type recorded struct {
	Method string
	Path   string
	Header http.Header
	Form   url.Values
}

// recorder is a loopback downstream that records every request it receives
// before handing it to h.
type recorder struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  []recorded
	conns atomic.Int64
}

func newRecorder(t testing.TB, h http.HandlerFunc) *recorder {
	t.Helper()
	rec := &recorder{}
	rec.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Form: form})
		rec.mu.Unlock()
		if h != nil {
			h(w, r)
		}
	}))
	rec.Server.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			rec.conns.Add(1)
		}
	}
	rec.Start()
	t.Cleanup(rec.Close)
	return rec
}

func (r *recorder) requests() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

func (r *recorder) count() int { return len(r.requests()) }

func jsonHandler(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func parOK(w http.ResponseWriter, r *http.Request) {
	jsonHandler(http.StatusCreated, `{"request_uri":"`+goodURN+`","expires_in":60}`)(w, r)
}

func tokenOK(w http.ResponseWriter, r *http.Request) {
	jsonHandler(http.StatusOK, `{"access_token":"at-1","token_type":"DPoP","expires_in":3600,"refresh_token":"rt-1","id_token":"a.b.c","scope":"openid email"}`)(w, r)
}

var (
	keysOnce sync.Once
	esKey    jose.JSONWebKey
	edKey    jose.JSONWebKey
	psKey    jose.JSONWebKey
)

func testKeys(t testing.TB) (es, ed, ps jose.JSONWebKey) {
	t.Helper()
	keysOnce.Do(func() {
		ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		_, edPriv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		esKey = jose.JSONWebKey{Key: ec, KeyID: "es-1", Algorithm: string(jose.ES256), Use: "sig"}
		edKey = jose.JSONWebKey{Key: edPriv, KeyID: "ed-1", Algorithm: string(jose.EdDSA)}
		psKey = jose.JSONWebKey{Key: rk, KeyID: "ps-1", Algorithm: string(jose.PS256)}
	})
	return esKey, edKey, psKey
}

func esAuth(t testing.TB) *PrivateKeyJWT {
	t.Helper()
	es, _, _ := testKeys(t)
	a, err := NewPrivateKeyJWT(testClientID, es)
	require.NoError(t, err)
	return a
}

func newTestClient(t testing.TB, parURL, tokenURL string, auth ClientAuth, mod ...func(*Options)) *Client {
	t.Helper()
	o := Options{
		Issuer:        testIssuer,
		PAREndpoint:   parURL,
		TokenEndpoint: tokenURL,
		Auth:          auth,
		Timeout:       200 * time.Millisecond,
	}
	for _, m := range mod {
		m(&o)
	}
	require.NoError(t, o.Validate())
	return New(o)
}

func testRequest() Request {
	_, ch := NewPKCE()
	return Request{ClientID: testClientID, State: "st-1", Nonce: "n-1", CodeChallenge: ch}
}

// verifyAssertion parses and verifies a client_assertion against key's public
// half and returns its header and raw claims.
func verifyAssertion(t *testing.T, tok string, key jose.JSONWebKey) (jose.Header, map[string]json.RawMessage) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256, jose.PS256, jose.EdDSA})
	require.NoError(t, err)
	require.Len(t, jws.Signatures, 1)
	payload, err := jws.Verify(key.Public())
	require.NoError(t, err, "assertion must verify with the public key")
	var claims map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(payload, &claims))
	return jws.Signatures[0].Protected, claims
}

func claimString(t *testing.T, claims map[string]json.RawMessage, name string) string {
	t.Helper()
	raw, ok := claims[name]
	require.True(t, ok, "claim %s missing", name)
	var s string
	require.NoError(t, json.Unmarshal(raw, &s), "claim %s must be a JSON string, got %s", name, raw)
	return s
}

func claimInt(t *testing.T, claims map[string]json.RawMessage, name string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, json.Unmarshal(claims[name], &n), "claim %s", name)
	return n
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	var pe *Error
	require.ErrorAs(t, err, &pe)
	return pe
}

// ---------------------------------------------------------------------------
// client authentication

func TestNewPrivateKeyJWT_Validation(t *testing.T) {
	es, ed, ps := testKeys(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	with := func(k jose.JSONWebKey, f func(*jose.JSONWebKey)) jose.JSONWebKey { f(&k); return k }

	tests := []struct {
		name     string
		clientID string
		key      jose.JSONWebKey
		ok       bool
	}{
		{"ES256", testClientID, es, true},
		{"EdDSA", testClientID, ed, true},
		{"PS256", testClientID, ps, true},
		{"RS256 rejected (slow, not FAPI)", testClientID, with(ps, func(k *jose.JSONWebKey) { k.Algorithm = "RS256" }), false},
		{"HS256 rejected", testClientID, jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "h", Algorithm: "HS256"}, false},
		{"none rejected", testClientID, with(es, func(k *jose.JSONWebKey) { k.Algorithm = "none" }), false},
		{"missing alg", testClientID, with(es, func(k *jose.JSONWebKey) { k.Algorithm = "" }), false},
		{"missing kid", testClientID, with(es, func(k *jose.JSONWebKey) { k.KeyID = "" }), false},
		{"public key", testClientID, es.Public(), false},
		{"P-384 labelled ES256", testClientID, jose.JSONWebKey{Key: p384, KeyID: "x", Algorithm: "ES256"}, false},
		{"RSA-1024 PS256", testClientID, jose.JSONWebKey{Key: rsa1024, KeyID: "x", Algorithm: "PS256"}, false},
		{"Ed25519 labelled ES256", testClientID, with(ed, func(k *jose.JSONWebKey) { k.Algorithm = "ES256" }), false},
		{"EC labelled EdDSA", testClientID, with(es, func(k *jose.JSONWebKey) { k.Algorithm = "EdDSA" }), false},
		{"use=enc", testClientID, with(es, func(k *jose.JSONWebKey) { k.Use = "enc" }), false},
		{"empty client_id", "", es, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewPrivateKeyJWT(tc.clientID, tc.key)
			if tc.ok {
				require.NoError(t, err)
				assert.Equal(t, MaxAssertionLifetime, a.Lifetime)
			} else {
				require.Error(t, err)
				assert.Nil(t, a)
			}
		})
	}
}

func TestPush_AssertionShape(t *testing.T) {
	es, ed, ps := testKeys(t)
	for _, key := range []jose.JSONWebKey{es, ed, ps} {
		t.Run(key.Algorithm, func(t *testing.T) {
			srv := newRecorder(t, parOK)
			auth, err := NewPrivateKeyJWT(testClientID, key)
			require.NoError(t, err)
			c := newTestClient(t, srv.URL+"/par", srv.URL+"/token", auth)

			const n = 100
			for i := 0; i < n; i++ {
				_, err := c.Push(context.Background(), testRequest())
				require.NoError(t, err)
			}
			reqs := srv.requests()
			require.Len(t, reqs, n)
			jtis := make(map[string]bool, n)
			for _, r := range reqs {
				assert.Empty(t, r.Header.Get("Authorization"), "one auth method only")
				assert.Equal(t, ClientAssertionType, r.Form.Get("client_assertion_type"))
				assert.Equal(t, testClientID, r.Form.Get("client_id"))
				hdr, claims := verifyAssertion(t, r.Form.Get("client_assertion"), key)
				assert.Equal(t, key.Algorithm, hdr.Algorithm)
				assert.Contains(t, []string{"ES256", "PS256", "EdDSA"}, hdr.Algorithm)
				assert.Equal(t, key.KeyID, hdr.KeyID)

				aud := claimString(t, claims, "aud") // fails if aud is an array
				assert.Equal(t, testIssuer, aud, "aud is the issuer, never the endpoint")
				assert.Equal(t, testClientID, claimString(t, claims, "iss"))
				assert.Equal(t, testClientID, claimString(t, claims, "sub"))
				iat, exp := claimInt(t, claims, "iat"), claimInt(t, claims, "exp")
				assert.Greater(t, exp, iat)
				assert.LessOrEqual(t, exp-iat, int64(60))
				assert.InDelta(t, time.Now().Unix(), iat, 5)

				jti := claimString(t, claims, "jti")
				raw, err := base64.RawURLEncoding.DecodeString(jti)
				require.NoError(t, err)
				assert.Len(t, raw, 16, "128-bit jti")
				assert.False(t, jtis[jti], "jti reused")
				jtis[jti] = true
			}
			assert.Len(t, jtis, n)
		})
	}
}

func TestPrivateKeyJWT_Lifetime(t *testing.T) {
	es, _, _ := testKeys(t)
	fixed := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		life time.Duration
		want int64
	}{{0, 60}, {30 * time.Second, 30}, {time.Hour, 60}, {-time.Second, 60}, {100 * time.Millisecond, 1}} {
		t.Run(tc.life.String(), func(t *testing.T) {
			a, err := NewPrivateKeyJWT(testClientID, es)
			require.NoError(t, err)
			a.Lifetime, a.now = tc.life, func() time.Time { return fixed }
			form := url.Values{}
			require.NoError(t, a.Apply(nil, form, testIssuer))
			_, claims := verifyAssertion(t, form.Get("client_assertion"), es)
			assert.Equal(t, fixed.Unix(), claimInt(t, claims, "iat"))
			assert.Equal(t, tc.want, claimInt(t, claims, "exp")-claimInt(t, claims, "iat"))
		})
	}
}

func TestPrivateKeyJWT_StructLiteral(t *testing.T) {
	es, _, _ := testKeys(t)
	// Built without the constructor: still validated, still signs.
	a := &PrivateKeyJWT{ClientID: testClientID, Key: es}
	form := url.Values{}
	require.NoError(t, a.Apply(nil, form, testIssuer))
	_, claims := verifyAssertion(t, form.Get("client_assertion"), es)
	assert.Equal(t, testIssuer, claimString(t, claims, "aud"))

	bad := &PrivateKeyJWT{ClientID: testClientID, Key: jose.JSONWebKey{Key: es.Key, KeyID: "x", Algorithm: "RS256"}}
	require.Error(t, bad.Apply(nil, url.Values{}, testIssuer))
	require.Error(t, a.Apply(nil, url.Values{}, ""), "empty audience")
}

func TestPush_ClientSecretBasic(t *testing.T) {
	tests := []struct{ id, secret string }{
		{testClientID, "7Fjfp0ZBr1KtDRbnfVdmIw"},
		{"client:1 é", "p@ss:w+rd/%&="}, // RFC 6749 App. B encoding matters
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			srv := newRecorder(t, parOK)
			c := newTestClient(t, srv.URL+"/par", srv.URL+"/token", ClientSecretBasic{ClientID: tc.id, Secret: tc.secret})
			r := testRequest()
			r.ClientID = ""
			_, err := c.Push(context.Background(), r)
			require.NoError(t, err)

			reqs := srv.requests()
			require.Len(t, reqs, 1)
			h := reqs[0].Header.Get("Authorization")
			require.True(t, strings.HasPrefix(h, "Basic "), h)
			raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic "))
			require.NoError(t, err)
			encID, encSecret, ok := strings.Cut(string(raw), ":")
			require.True(t, ok)
			assert.NotContains(t, encID, ":")
			id, err := url.QueryUnescape(encID)
			require.NoError(t, err)
			secret, err := url.QueryUnescape(encSecret)
			require.NoError(t, err)
			assert.Equal(t, tc.id, id)
			assert.Equal(t, tc.secret, secret)
			assert.Equal(t, tc.id, reqs[0].Form.Get("client_id"))
			for _, p := range []string{"client_secret", "client_assertion", "client_assertion_type"} {
				assert.False(t, reqs[0].Form.Has(p), p)
			}
		})
	}
	s := fmt.Sprintf("%v %+v %#v", ClientSecretBasic{ClientID: "a", Secret: "hunter2"}, ClientSecretBasic{Secret: "hunter2"}, ClientSecretBasic{Secret: "hunter2"})
	assert.NotContains(t, s, "hunter2")
}

// ---------------------------------------------------------------------------
// Push: request body

func TestPush_Body(t *testing.T) {
	zero := 0
	tests := []struct {
		name   string
		mod    func(*Request)
		opt    func(*Options)
		want   map[string]string
		absent []string
	}{
		{
			name:   "minimal",
			mod:    func(r *Request) { r.State, r.Nonce = "", "" },
			want:   map[string]string{"response_type": "code", "code_challenge_method": "S256", "client_id": testClientID},
			absent: []string{"request_uri", "redirect_uri", "state", "nonce", "scope", "max_age", "native_callback_uri"},
		},
		{
			name: "full",
			mod: func(r *Request) {
				r.Scope = "openid email"
				r.State = "af0ifjsldkj"
				r.Nonce = "n-0S6_WzA2Mj"
				r.ACRValues = "urn:mace:incommon:iap:silver"
				r.MaxAge = &zero
				r.NativeCallbackURI = "https://app.example/cb?x=1&y=%20z#"
				r.Extra = url.Values{"resource": {"https://rs1.example", "https://rs2.example"}, "dpop_jkt": {"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"}}
			},
			want: map[string]string{
				"response_type": "code", "code_challenge_method": "S256", "client_id": testClientID,
				"scope": "openid email", "state": "af0ifjsldkj", "nonce": "n-0S6_WzA2Mj",
				"acr_values": "urn:mace:incommon:iap:silver", "max_age": "0",
				"native_callback_uri": "https://app.example/cb?x=1&y=%20z#",
				"dpop_jkt":            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
			},
			absent: []string{"request_uri", "redirect_uri"},
		},
		{
			name: "redirect_uri from options",
			opt:  func(o *Options) { o.RedirectURI = "https://fedas.example/cb/ds1" },
			want: map[string]string{"response_type": "code", "redirect_uri": "https://fedas.example/cb/ds1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, parOK)
			var mods []func(*Options)
			if tc.opt != nil {
				mods = append(mods, tc.opt)
			}
			c := newTestClient(t, srv.URL+"/par", srv.URL+"/token", esAuth(t), mods...)
			r := testRequest()
			if tc.mod != nil {
				tc.mod(&r)
			}
			_, err := c.Push(context.Background(), r)
			require.NoError(t, err)
			reqs := srv.requests()
			require.Len(t, reqs, 1)
			got := reqs[0]
			assert.Equal(t, http.MethodPost, got.Method)
			assert.Equal(t, "/par", got.Path)
			assert.Equal(t, "application/x-www-form-urlencoded", got.Header.Get("Content-Type"))
			assert.Equal(t, r.CodeChallenge, got.Form.Get("code_challenge"))
			for k, v := range tc.want {
				assert.Equal(t, []string{v}, got.Form[k], k)
			}
			for _, k := range tc.absent {
				assert.False(t, got.Form.Has(k), "%s must not be sent", k)
			}
			if r.Extra != nil {
				assert.Equal(t, r.Extra["resource"], got.Form["resource"])
			}
		})
	}
}

func TestPush_RejectedLocally(t *testing.T) {
	neg := -1
	tests := []struct {
		name string
		mod  func(*Request)
	}{
		{"request_uri in Extra", func(r *Request) { r.Extra = url.Values{"request_uri": {goodURN}} }},
		{"response_type in Extra", func(r *Request) { r.Extra = url.Values{"response_type": {"token"}} }},
		{"code_challenge_method in Extra", func(r *Request) { r.Extra = url.Values{"code_challenge_method": {"plain"}} }},
		{"client_assertion in Extra", func(r *Request) { r.Extra = url.Values{"client_assertion": {"x"}} }},
		{"missing code_challenge", func(r *Request) { r.CodeChallenge = "" }},
		{"plain-looking code_challenge", func(r *Request) { r.CodeChallenge = "short" }},
		{"bad challenge chars", func(r *Request) { r.CodeChallenge = strings.Repeat("+", 43) }},
		{"client_id mismatch", func(r *Request) { r.ClientID = "someone-else" }},
		{"negative max_age", func(r *Request) { r.MaxAge = &neg }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, parOK)
			c := newTestClient(t, srv.URL+"/par", srv.URL+"/token", esAuth(t))
			r := testRequest()
			tc.mod(&r)
			_, err := c.Push(context.Background(), r)
			pe := asError(t, err)
			assert.False(t, pe.Temporary)
			assert.NotErrorIs(t, err, ErrUnavailable)
			assert.Zero(t, srv.count(), "nothing may be sent")
		})
	}
}

func TestPush_Success(t *testing.T) {
	srv := newRecorder(t, parOK)
	c := newTestClient(t, srv.URL+"/par", srv.URL+"/token", esAuth(t))
	before := time.Now()
	got, err := c.Push(context.Background(), testRequest())
	require.NoError(t, err)
	assert.Equal(t, goodURN, got.RequestURI)
	assert.Equal(t, 60*time.Second, got.ExpiresIn)
	assert.WithinRange(t, got.ExpiresAt, before.Add(60*time.Second), time.Now().Add(60*time.Second))
}

// ---------------------------------------------------------------------------
// Push: failure modes (SECURITY-RESULTS.md D1-D6, K05)

// slowHandler waits until the client gives up (or 5 s), like a downstream
// that sleeps for 30 s.
func slowHandler(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
	}
	parOK(w, r)
}

// slowlorisHandler sends the headers at once and the body a byte at a time.
func slowlorisHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	body := `{"request_uri":"` + goodURN + `","expires_in":60}`
	for i := 0; i < len(body); i++ {
		if _, err := io.WriteString(w, body[i:i+1]); err != nil {
			return
		}
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func hugeHandler(status int, chunked bool) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		const size = 10 << 20
		w.Header().Set("Content-Type", "application/json")
		if !chunked {
			w.Header().Set("Content-Length", fmt.Sprint(size))
		}
		w.WriteHeader(status)
		chunk := bytes.Repeat([]byte(" "), 64<<10)
		for written := 0; written < size; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			if chunked {
				w.(http.Flusher).Flush()
			}
		}
	}
}

type failCase struct {
	name      string
	handler   http.HandlerFunc
	url       func(srv *recorder) string // default srv.URL + path
	temporary bool
	status    int
	code      string
	deadline  bool // cause must be context.DeadlineExceeded
	check     func(t *testing.T, e *Error)
}

func commonFailures(t *testing.T, canary *recorder) []failCase {
	refused := func(*recorder) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		return "http://" + addr + "/par"
	}
	redirect := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, canary.URL+"/steal", status)
		}
	}
	hostile := `{"error":"invalid_client","error_description":"` + strings.Repeat(`<script>\"\\\u0000\r\nX-Injected: 1 `, 500) + `"}`
	return []failCase{
		{name: "connection refused", url: refused, temporary: true},
		{name: "sleeps past timeout", handler: slowHandler, temporary: true, deadline: true},
		{name: "slowloris body", handler: slowlorisHandler, status: 201, temporary: true, deadline: true},
		{name: "HTML 200", handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html><body>Login</body></html>")
		}, temporary: true, status: 200},
		{name: "10 MB body with Content-Length", handler: hugeHandler(http.StatusCreated, false), temporary: true, status: 201},
		{name: "10 MB chunked body", handler: hugeHandler(http.StatusOK, true), temporary: true, status: 200},
		{name: "400 invalid_client", handler: jsonHandler(400, `{"error":"invalid_client","error_description":"client authentication failed"}`), status: 400, code: "invalid_client",
			check: func(t *testing.T, e *Error) { assert.Equal(t, "client authentication failed", e.Description) }},
		{name: "401 invalid_client", handler: jsonHandler(401, `{"error":"invalid_client"}`), status: 401, code: "invalid_client"},
		{name: "400 hostile description", handler: jsonHandler(400, hostile), status: 400, code: "invalid_client",
			check: func(t *testing.T, e *Error) {
				assert.LessOrEqual(t, len(e.Description), 200)
				for _, ch := range []byte(e.Description) {
					assert.True(t, ch >= 0x20 && ch <= 0x7e && ch != '"' && ch != '\\', "char %q", ch)
				}
			}},
		{name: "400 malformed error code", handler: jsonHandler(400, `{"error":"bad\"code\n"}`), status: 400, code: ""},
		{name: "400 overlong error code", handler: jsonHandler(400, `{"error":"`+strings.Repeat("a", 65)+`"}`), status: 400, code: ""},
		{name: "400 not JSON", handler: jsonHandler(400, "Bad Request"), status: 400},
		{name: "429", handler: jsonHandler(429, `{"error":"slow_down"}`), status: 429, code: "slow_down", temporary: true},
		{name: "500", handler: jsonHandler(500, `oops`), status: 500, temporary: true},
		{name: "503", handler: jsonHandler(503, `{"error":"temporarily_unavailable"}`), status: 503, code: "temporarily_unavailable", temporary: true},
		{name: "302 to canary", handler: redirect(http.StatusFound), status: 302, temporary: true},
		{name: "307 to canary", handler: redirect(http.StatusTemporaryRedirect), status: 307, temporary: true},
		{name: "303 to canary", handler: redirect(http.StatusSeeOther), status: 303, temporary: true},
	}
}

func runFailures(t *testing.T, cases []failCase, canary *recorder, call func(c *Client) error) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, tc.handler)
			target := srv.URL + "/endpoint"
			if tc.url != nil {
				target = tc.url(srv)
			}
			c := newTestClient(t, target, target, esAuth(t))
			start := time.Now()
			err := call(c)
			elapsed := time.Since(start)
			require.Error(t, err)
			pe := asError(t, err)
			assert.Equal(t, tc.temporary, pe.Temporary, "temporary: %v", err)
			assert.Equal(t, tc.temporary, errors.Is(err, ErrUnavailable))
			assert.Equal(t, tc.status, pe.Status)
			assert.Equal(t, tc.code, pe.Code)
			if tc.deadline {
				assert.ErrorIs(t, err, context.DeadlineExceeded)
			}
			// 200 ms timeout: nothing may hang, whatever the downstream does.
			assert.Less(t, elapsed, 2*time.Second)
			if tc.check != nil {
				tc.check(t, pe)
			}
			assert.Zero(t, canary.count(), "redirect must not be followed")
		})
	}
}

func TestPush_Failures(t *testing.T) {
	canary := newRecorder(t, parOK)
	cases := commonFailures(t, canary)
	cases = append(cases,
		failCase{name: "200 with valid PAR JSON", handler: jsonHandler(200, `{"request_uri":"`+goodURN+`","expires_in":60}`), status: 200, temporary: true},
		failCase{name: "non-JSON 201", handler: jsonHandler(201, "created"), status: 201, temporary: true},
		failCase{name: "JSON array 201", handler: jsonHandler(201, `["`+goodURN+`"]`), status: 201, temporary: true},
		failCase{name: "missing request_uri", handler: jsonHandler(201, `{"expires_in":60}`), status: 201, temporary: true},
		failCase{name: "non-URN request_uri", handler: jsonHandler(201, `{"request_uri":"https://evil.example/r","expires_in":60}`), status: 201, temporary: true},
		failCase{name: "bare URN prefix", handler: jsonHandler(201, `{"request_uri":"`+RequestURIPrefix+`","expires_in":60}`), status: 201, temporary: true},
		failCase{name: "request_uri with space", handler: jsonHandler(201, `{"request_uri":"`+RequestURIPrefix+`a b","expires_in":60}`), status: 201, temporary: true},
		failCase{name: "request_uri not a string", handler: jsonHandler(201, `{"request_uri":42,"expires_in":60}`), status: 201, temporary: true},
		failCase{name: "expires_in 0", handler: jsonHandler(201, `{"request_uri":"`+goodURN+`","expires_in":0}`), status: 201, temporary: true},
		failCase{name: "expires_in 601", handler: jsonHandler(201, `{"request_uri":"`+goodURN+`","expires_in":601}`), status: 201, temporary: true},
		failCase{name: "expires_in negative", handler: jsonHandler(201, `{"request_uri":"`+goodURN+`","expires_in":-5}`), status: 201, temporary: true},
		failCase{name: "expires_in missing", handler: jsonHandler(201, `{"request_uri":"`+goodURN+`"}`), status: 201, temporary: true},
		failCase{name: "expires_in fractional", handler: jsonHandler(201, `{"request_uri":"`+goodURN+`","expires_in":1.5}`), status: 201, temporary: true},
	)
	runFailures(t, cases, canary, func(c *Client) error {
		_, err := c.Push(context.Background(), testRequest())
		return err
	})
}

func TestPush_ExpiresInBounds(t *testing.T) {
	for _, n := range []int{1, 600} {
		srv := newRecorder(t, jsonHandler(201, fmt.Sprintf(`{"request_uri":%q,"expires_in":%d}`, goodURN, n)))
		c := newTestClient(t, srv.URL, srv.URL, esAuth(t))
		got, err := c.Push(context.Background(), testRequest())
		require.NoError(t, err, n)
		assert.Equal(t, time.Duration(n)*time.Second, got.ExpiresIn)
	}
}

func TestPush_CallerContextCancelled(t *testing.T) {
	srv := newRecorder(t, slowHandler)
	c := newTestClient(t, srv.URL, srv.URL, esAuth(t), func(o *Options) { o.Timeout = 5 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Push(ctx, testRequest())
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.Less(t, time.Since(start), time.Second, "caller's deadline wins over Options.Timeout")
}

// A caller-supplied http.Client that would follow redirects must not.
func TestPush_CustomHTTPClientNeverFollowsRedirects(t *testing.T) {
	canary := newRecorder(t, parOK)
	srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, canary.URL, http.StatusTemporaryRedirect)
	})
	follow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
	c := newTestClient(t, srv.URL, srv.URL, esAuth(t), func(o *Options) { o.HTTPClient = follow })
	_, err := c.Push(context.Background(), testRequest())
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.Zero(t, canary.count())
	assert.NotNil(t, follow.CheckRedirect, "caller's client untouched")
}

func TestPush_ReusesConnections(t *testing.T) {
	srv := newRecorder(t, parOK)
	c := newTestClient(t, srv.URL, srv.URL, esAuth(t))
	for i := 0; i < 50; i++ {
		_, err := c.Push(context.Background(), testRequest())
		require.NoError(t, err)
	}
	assert.Equal(t, int64(1), srv.conns.Load(), "docs/performance.md trap 3")
}

// ---------------------------------------------------------------------------
// Exchange

func TestExchange_Success(t *testing.T) {
	tests := []struct {
		name     string
		opt      func(*Options)
		handler  http.HandlerFunc
		redirect string
		wantExp  time.Duration
	}{
		{name: "standard", handler: tokenOK, wantExp: time.Hour},
		{name: "expires_in as string", handler: jsonHandler(200, `{"access_token":"at-1","token_type":"Bearer","expires_in":"3600"}`), wantExp: time.Hour},
		{name: "no expires_in", handler: jsonHandler(200, `{"access_token":"at-1","token_type":"Bearer"}`)},
		{name: "redirect_uri from options", handler: tokenOK, wantExp: time.Hour,
			opt: func(o *Options) { o.RedirectURI = "https://fedas.example/cb/ds1" }, redirect: "https://fedas.example/cb/ds1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, tc.handler)
			var mods []func(*Options)
			if tc.opt != nil {
				mods = append(mods, tc.opt)
			}
			c := newTestClient(t, srv.URL+"/par", srv.URL+"/token", esAuth(t), mods...)
			verifier, _ := NewPKCE()
			got, err := c.Exchange(context.Background(), "SplxlOBeZQQYbYS6WxSbIA", verifier)
			require.NoError(t, err)
			assert.Equal(t, "at-1", got.AccessToken)
			assert.Equal(t, tc.wantExp, got.ExpiresIn)
			assert.NotContains(t, fmt.Sprintf("%v %+v %#v", got, got, got), "at-1", "tokens redacted")

			reqs := srv.requests()
			require.Len(t, reqs, 1)
			r := reqs[0]
			assert.Equal(t, "/token", r.Path)
			assert.Equal(t, "authorization_code", r.Form.Get("grant_type"))
			assert.Equal(t, "SplxlOBeZQQYbYS6WxSbIA", r.Form.Get("code"))
			assert.Equal(t, verifier, r.Form.Get("code_verifier"))
			assert.Equal(t, testClientID, r.Form.Get("client_id"))
			if tc.redirect == "" {
				assert.False(t, r.Form.Has("redirect_uri"))
			} else {
				assert.Equal(t, tc.redirect, r.Form.Get("redirect_uri"))
			}
			es, _, _ := testKeys(t)
			_, claims := verifyAssertion(t, r.Form.Get("client_assertion"), es)
			assert.Equal(t, testIssuer, claimString(t, claims, "aud"), "aud is the issuer, not the token endpoint")
		})
	}
	t.Run("all fields", func(t *testing.T) {
		srv := newRecorder(t, tokenOK)
		c := newTestClient(t, srv.URL, srv.URL, esAuth(t))
		v, _ := NewPKCE()
		got, err := c.Exchange(context.Background(), "c", v)
		require.NoError(t, err)
		assert.Equal(t, TokenResponse{AccessToken: "at-1", TokenType: "DPoP", ExpiresIn: time.Hour, RefreshToken: "rt-1", IDToken: "a.b.c", Scope: "openid email"}, got)
	})
}

func TestExchange_Failures(t *testing.T) {
	canary := newRecorder(t, tokenOK)
	cases := commonFailures(t, canary)
	cases = append(cases,
		failCase{name: "400 invalid_grant", handler: jsonHandler(400, `{"error":"invalid_grant"}`), status: 400, code: "invalid_grant"},
		failCase{name: "201 token", handler: jsonHandler(201, `{"access_token":"x","token_type":"Bearer"}`), status: 201, temporary: true},
		failCase{name: "200 without access_token", handler: jsonHandler(200, `{"token_type":"Bearer"}`), status: 200, temporary: true},
		failCase{name: "200 non-JSON", handler: jsonHandler(200, `access_token=x`), status: 200, temporary: true},
		failCase{name: "200 bad expires_in", handler: jsonHandler(200, `{"access_token":"x","expires_in":"soon"}`), status: 200, temporary: true},
	)
	runFailures(t, cases, canary, func(c *Client) error {
		v, _ := NewPKCE()
		_, err := c.Exchange(context.Background(), "code-1", v)
		return err
	})
}

func TestExchange_RejectedLocally(t *testing.T) {
	v, _ := NewPKCE()
	for _, tc := range []struct{ name, code, verifier string }{
		{"empty code", "", v},
		{"short verifier", "c", "abc"},
		{"verifier bad chars", "c", strings.Repeat("+", 43)},
		{"verifier too long", "c", strings.Repeat("a", 129)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, tokenOK)
			c := newTestClient(t, srv.URL, srv.URL, esAuth(t))
			_, err := c.Exchange(context.Background(), tc.code, tc.verifier)
			assert.False(t, asError(t, err).Temporary)
			assert.Zero(t, srv.count())
		})
	}
}

// ---------------------------------------------------------------------------
// PKCE, options, transport

func TestNewPKCE(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		v, ch := NewPKCE()
		assert.Len(t, v, 43)
		assert.True(t, validVerifier(v))
		assert.True(t, validChallenge(ch))
		sum := sha256.Sum256([]byte(v))
		assert.Equal(t, base64.RawURLEncoding.EncodeToString(sum[:]), ch)
		assert.False(t, seen[v])
		seen[v] = true
	}
	// RFC 7636 Appendix B test vector.
	sum := sha256.Sum256([]byte("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"))
	assert.Equal(t, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", base64.RawURLEncoding.EncodeToString(sum[:]))
}

func TestOptions_Validate(t *testing.T) {
	auth := esAuth(t)
	base := Options{Issuer: testIssuer, PAREndpoint: "https://ds1.example/par", TokenEndpoint: "https://ds1.example/token", Auth: auth}
	tests := []struct {
		name string
		mod  func(*Options)
		ok   bool
	}{
		{"valid", func(*Options) {}, true},
		{"loopback http", func(o *Options) { o.PAREndpoint = "http://127.0.0.1:8080/par"; o.TokenEndpoint = "http://[::1]:1/t" }, true},
		{"localhost http", func(o *Options) { o.PAREndpoint = "http://localhost:8080/par" }, true},
		{"plain http", func(o *Options) { o.PAREndpoint = "http://ds1.example/par" }, false},
		{"http token", func(o *Options) { o.TokenEndpoint = "http://ds1.example/token" }, false},
		{"userinfo", func(o *Options) { o.PAREndpoint = "https://u:p@ds1.example/par" }, false},
		{"relative", func(o *Options) { o.PAREndpoint = "/par" }, false},
		{"empty issuer", func(o *Options) { o.Issuer = "" }, false},
		{"issuer with query", func(o *Options) { o.Issuer = "https://ds1.example?x=1" }, false},
		{"issuer with fragment", func(o *Options) { o.Issuer = "https://ds1.example#x" }, false},
		{"no auth", func(o *Options) { o.Auth = nil }, false},
		{"negative timeout", func(o *Options) { o.Timeout = -1 }, false},
		{"relative redirect_uri", func(o *Options) { o.RedirectURI = "/cb" }, false},
		{"ftp", func(o *Options) { o.TokenEndpoint = "ftp://ds1.example/token" }, false},
		{"token-only client", func(o *Options) { o.PAREndpoint = "" }, true},
		{"no token endpoint", func(o *Options) { o.TokenEndpoint = "" }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.mod(&o)
			err := o.Validate()
			if tc.ok {
				assert.NoError(t, err)
				return
			}
			assert.Error(t, err)
			c := New(o)
			_, err = c.Push(context.Background(), testRequest())
			assert.False(t, asError(t, err).Temporary)
			v, _ := NewPKCE()
			_, err = c.Exchange(context.Background(), "c", v)
			assert.False(t, asError(t, err).Temporary)
		})
	}
}

// A client without a PAR endpoint redeems codes but never pushes: the
// browser federation without PAR sends its request in the query.
func TestClient_TokenOnly(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"at","token_type":"Bearer","expires_in":60}`)
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, "", srv.URL+"/token", esAuth(t), func(o *Options) { o.RedirectURI = "https://fedas.example/cb" })
	_, err := c.Push(context.Background(), testRequest())
	require.Error(t, err)
	assert.False(t, asError(t, err).Temporary)
	assert.Equal(t, int64(0), hits.Load(), "no request without a PAR endpoint")
	v, _ := NewPKCE()
	tok, err := c.Exchange(context.Background(), "c", v)
	require.NoError(t, err)
	assert.Equal(t, "at", tok.AccessToken)
	assert.Equal(t, int64(1), hits.Load())
}

func TestNewTransportAndClient(t *testing.T) {
	tr := NewTransport()
	assert.GreaterOrEqual(t, tr.MaxIdleConnsPerHost, 64)
	assert.Positive(t, tr.IdleConnTimeout)
	assert.Positive(t, tr.TLSHandshakeTimeout)
	assert.Positive(t, tr.ResponseHeaderTimeout)
	require.NotNil(t, tr.TLSClientConfig)
	assert.GreaterOrEqual(t, tr.TLSClientConfig.MinVersion, uint16(tls.VersionTLS12))
	assert.False(t, tr.TLSClientConfig.InsecureSkipVerify)

	c := New(Options{Issuer: testIssuer, PAREndpoint: "https://a.example/par", TokenEndpoint: "https://a.example/t", Auth: esAuth(t)})
	assert.Equal(t, DefaultTimeout, c.timeout)
	require.NotNil(t, c.hc.CheckRedirect)
	assert.ErrorIs(t, c.hc.CheckRedirect(nil, nil), http.ErrUseLastResponse)
	ht, ok := c.hc.Transport.(*http.Transport)
	require.True(t, ok)
	assert.GreaterOrEqual(t, ht.MaxIdleConnsPerHost, 64)
}

// TLS below 1.2 is refused (SECURITY-RESULTS.md D7).
func TestPush_RefusesOldTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(parOK))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	tr := NewTransport()
	tr.TLSClientConfig.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c := newTestClient(t, srv.URL, srv.URL, esAuth(t), func(o *Options) { o.HTTPClient = &http.Client{Transport: tr} })
	_, err := c.Push(context.Background(), testRequest())
	require.Error(t, err)
	assert.Zero(t, asError(t, err).Status)
}

func TestPush_TLSWithTrustedCA(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(parOK))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	tr := NewTransport()
	tr.TLSClientConfig.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c := newTestClient(t, srv.URL, srv.URL, esAuth(t), func(o *Options) { o.HTTPClient = &http.Client{Transport: tr} })
	got, err := c.Push(context.Background(), testRequest())
	require.NoError(t, err)
	assert.Equal(t, goodURN, got.RequestURI)

	// Unknown CA: refused.
	c2 := newTestClient(t, srv.URL, srv.URL, esAuth(t))
	_, err = c2.Push(context.Background(), testRequest())
	assert.ErrorIs(t, err, ErrUnavailable)
}

// ---------------------------------------------------------------------------
// benchmarks

// BenchmarkPush measures one full push (assertion signing, loopback HTTP,
// response validation) per algorithm. Compare ES256 and EdDSA; PS256 is for
// reference (RSA signing dominates).
func BenchmarkPush(b *testing.B) {
	es, ed, ps := testKeys(b)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		parOK(w, r)
	}))
	defer srv.Close()
	_, ch := NewPKCE()
	req := Request{ClientID: testClientID, State: "st", Nonce: "n", Scope: "openid", CodeChallenge: ch}
	for _, key := range []jose.JSONWebKey{es, ed, ps} {
		b.Run(key.Algorithm, func(b *testing.B) {
			auth, err := NewPrivateKeyJWT(testClientID, key)
			require.NoError(b, err)
			c := New(Options{Issuer: testIssuer, PAREndpoint: srv.URL, TokenEndpoint: srv.URL, Auth: auth})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Push(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAssertion isolates client-assertion signing.
func BenchmarkAssertion(b *testing.B) {
	es, ed, ps := testKeys(b)
	for _, key := range []jose.JSONWebKey{es, ed, ps} {
		b.Run(key.Algorithm, func(b *testing.B) {
			auth, err := NewPrivateKeyJWT(testClientID, key)
			require.NoError(b, err)
			b.ReportAllocs()
			for b.Loop() {
				if err := auth.Apply(nil, url.Values{}, testIssuer); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// D5: a permanent rejection is logged at Warn for an operator, without
// credentials; temporary failures stay at Debug.
func TestLogging(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	srv := newRecorder(t, jsonHandler(401, `{"error":"invalid_client","error_description":"bad secret"}`))
	c := newTestClient(t, srv.URL, srv.URL, ClientSecretBasic{ClientID: testClientID, Secret: "hunter2"},
		func(o *Options) { o.Logger = zap.New(core) })
	_, err := c.Push(context.Background(), testRequest())
	require.Error(t, err)

	slow := newRecorder(t, slowHandler)
	c2 := newTestClient(t, slow.URL, slow.URL, esAuth(t), func(o *Options) { o.Logger = zap.New(core) })
	_, err = c2.Push(context.Background(), testRequest())
	require.Error(t, err)

	entries := logs.All()
	require.Len(t, entries, 2)
	assert.Equal(t, zapcore.WarnLevel, entries[0].Level)
	assert.Equal(t, "invalid_client", entries[0].ContextMap()["code"])
	assert.Equal(t, testIssuer, entries[0].ContextMap()["issuer"])
	assert.Equal(t, zapcore.DebugLevel, entries[1].Level)
	for _, e := range entries {
		s := fmt.Sprint(e.Message, e.ContextMap())
		assert.NotContains(t, s, "hunter2")
		assert.NotContains(t, s, "client_assertion")
	}
}

// D2: after timeouts no goroutine is left behind.
func TestPush_TimeoutsLeakNoGoroutines(t *testing.T) {
	srv := newRecorder(t, slowHandler)
	c := newTestClient(t, srv.URL, srv.URL, esAuth(t), func(o *Options) { o.Timeout = 50 * time.Millisecond })
	base := runtime.NumGoroutine()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Push(context.Background(), testRequest())
			assert.ErrorIs(t, err, ErrUnavailable)
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), base+2, "goroutines return to baseline")
}
