package probe_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/admin/probe"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/federation"
	"github.com/fedas/fedas/federation/fedtest"
	"github.com/fedas/fedas/netguard"
)

const (
	ourIssuer   = "https://fedas.example"
	redirectURI = "https://fedas.example/federation/callback"
	clientID    = "fedas-client"
)

// loopback admits the 127.0.0.1 test servers, and nothing else that
// netguard refuses.
var loopback = probe.Options{Net: netguard.Options{AllowLoopback: true}}

// clientKey is a private_key_jwt key: the private JWK as config holds it,
// the public set a downstream verifies with, and the private scalar "d"
// (to prove it never leaks).
func clientKey(tb testing.TB) (private string, public *jose.JSONWebKeySet, d string) {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	jwk := jose.JSONWebKey{Key: k, KeyID: "fedas-probe-1", Algorithm: string(jose.ES256), Use: "sig"}
	raw, err := json.Marshal(jwk)
	require.NoError(tb, err)
	var m map[string]any
	require.NoError(tb, json.Unmarshal(raw, &m))
	d, _ = m["d"].(string)
	require.NotEmpty(tb, d)
	return string(raw), &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk.Public()}}, d
}

func pkjwt(issuer, key string) config.Downstream {
	return config.Downstream{ID: "ds1", Issuer: issuer, ClientID: clientID,
		Auth: config.DownstreamAuth{Method: "private_key_jwt", Key: key}}
}

func basic(issuer, secret string) config.Downstream {
	return config.Downstream{ID: "ds1", Issuer: issuer, ClientID: clientID,
		Auth: config.DownstreamAuth{Method: "client_secret_basic", Secret: secret}}
}

// statuses renders steps as "name=status", in order.
func statuses(steps []probe.Step) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.Name + "=" + s.Status
	}
	return out
}

func allSteps(metadata, issuer, native, parEP, token, jwks, par string) []string {
	return []string{"metadata=" + metadata, "issuer=" + issuer, "native_endpoint=" + native,
		"par_endpoint=" + parEP, "token_endpoint=" + token, "jwks=" + jwks, "par=" + par}
}

func step(tb testing.TB, steps []probe.Step, name string) probe.Step {
	tb.Helper()
	for _, s := range steps {
		if s.Name == name {
			return s
		}
	}
	tb.Fatalf("no step %q in %v", name, statuses(steps))
	return probe.Step{}
}

func asJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	require.NoError(tb, err)
	return string(b)
}

// testServer is a small downstream on 127.0.0.1 that counts requests.
type testServer struct {
	URL  string
	hits atomic.Int64

	mu    sync.Mutex
	paths []string
}

func (s *testServer) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

func serve(tb testing.TB, routes map[string]http.HandlerFunc) *testServer {
	tb.Helper()
	ts := &testServer{}
	mux := http.NewServeMux()
	for p, h := range routes {
		mux.HandleFunc(p, h)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.hits.Add(1)
		ts.mu.Lock()
		ts.paths = append(ts.paths, r.Method+" "+r.URL.Path)
		ts.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	ts.URL = srv.URL
	return ts
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// metadataHandler serves metadata whose issuer is the server's own URL
// (plus issuerPath) and whose endpoints live on the same server, edited
// by edit.
func metadataHandler(issuerPath string, edit func(base string, md map[string]any)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		base := "http://" + r.Host
		md := map[string]any{
			"issuer":                                base + issuerPath,
			"authorization_endpoint":                base + "/authorize",
			"pushed_authorization_request_endpoint": base + "/par",
			"token_endpoint":                        base + "/token",
			"authorization_challenge_endpoint":      base + "/native",
			"jwks_uri":                              base + "/jwks",
			"code_challenge_methods_supported":      []string{"S256"},
			"token_endpoint_auth_methods_supported": []string{"private_key_jwt"},
			"id_token_signing_alg_values_supported": []string{"ES256"},
		}
		if edit != nil {
			edit(base, md)
		}
		writeJSON(w, http.StatusOK, md)
	}
}

// fakeLookup resolves from m and records every name asked for.
type fakeLookup struct {
	m     map[string]string
	mu    sync.Mutex
	names []string
}

func (f *fakeLookup) LookupIP(_ context.Context, host string) ([]net.IP, error) {
	f.mu.Lock()
	f.names = append(f.names, host)
	f.mu.Unlock()
	if ip, ok := f.m[host]; ok {
		return []net.IP{net.ParseIP(ip)}, nil
	}
	return nil, fmt.Errorf("fake lookup: no such host %q", host)
}

func (f *fakeLookup) Names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.names...)
}

func port(tb testing.TB, rawURL string) string {
	tb.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(tb, err)
	require.NotEmpty(tb, u.Port())
	return u.Port()
}

func formKeys(v url.Values) []string {
	out := make([]string, 0, len(v))
	for k := range v {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestCheckPrivateKeyJWT is the happy path against a downstream that
// verifies our assertions strictly: every step ok, and the PAR is exactly
// what the federator sends (RFC 9126 §2.1, RFC 7523 §2.2).
func TestCheckPrivateKeyJWT(t *testing.T) {
	key, pub, d := clientKey(t)
	m := fedtest.Start(t, fedtest.Options{ClientKeys: pub})

	r := probe.Check(context.Background(), pkjwt(m.URL, key), ourIssuer, redirectURI, loopback)

	require.Equal(t, allSteps("ok", "ok", "ok", "ok", "ok", "ok", "ok"), statuses(r.Steps), "%+v", r.Steps)
	require.True(t, r.OK)
	require.True(t, r.Native)
	require.Equal(t, m.URL, r.Issuer)
	require.Equal(t, m.Endpoint(fedtest.Metadata), step(t, r.Steps, probe.StepMetadata).URL)
	require.Equal(t, m.Endpoint(fedtest.Native), step(t, r.Steps, probe.StepNativeEndpoint).URL)
	require.Equal(t, m.Endpoint(fedtest.PAR), step(t, r.Steps, probe.StepPAREndpoint).URL)
	require.Equal(t, m.Endpoint(fedtest.Token), step(t, r.Steps, probe.StepTokenEndpoint).URL)
	require.Equal(t, m.Endpoint(fedtest.JWKS), step(t, r.Steps, probe.StepJWKS).URL)
	require.Equal(t, m.Endpoint(fedtest.PAR), step(t, r.Steps, probe.StepPAR).URL)
	require.Contains(t, step(t, r.Steps, probe.StepJWKS).Detail, `1 public signing key(s): kid "fedtest-`)
	require.Contains(t, step(t, r.Steps, probe.StepJWKS).Detail, `("ES256")`)
	parDetail := step(t, r.Steps, probe.StepPAR).Detail
	require.Contains(t, parDetail, "expires_in 60 s")
	require.Contains(t, parDetail, `private_key_jwt (RFC 7523 §2.2, kid "fedas-probe-1", aud "`+m.URL+`")`)

	// Exactly one metadata GET, one JWKS GET and one PAR; nothing else.
	for e, want := range map[fedtest.Endpoint]int64{fedtest.Metadata: 1, fedtest.JWKS: 1, fedtest.PAR: 1,
		fedtest.Native: 0, fedtest.Token: 0, fedtest.Authorize: 0} {
		require.Equal(t, want, m.Count(e), "requests to %s", e)
	}
	push := m.Requests(fedtest.PAR)[0]
	require.Equal(t, http.StatusCreated, push.Status)
	require.Equal(t, []string{"client_assertion", "client_assertion_type", "client_id", "code_challenge",
		"code_challenge_method", "dpop_jkt", "nonce", "redirect_uri", "response_type", "scope", "state"}, formKeys(push.Form))
	f := push.Form
	require.Equal(t, clientID, f.Get("client_id"))
	require.Equal(t, "code", f.Get("response_type"))
	require.Equal(t, "openid", f.Get("scope"))
	require.Equal(t, "S256", f.Get("code_challenge_method"))
	require.Len(t, f.Get("code_challenge"), 43)
	require.Equal(t, redirectURI, f.Get("redirect_uri"))
	require.GreaterOrEqual(t, len(f.Get("state")), 22)
	require.GreaterOrEqual(t, len(f.Get("nonce")), 22)
	require.NotEqual(t, f.Get("state"), f.Get("nonce"))
	require.Len(t, f.Get("dpop_jkt"), 43)
	require.Equal(t, fedtest.AssertionType, f.Get("client_assertion_type"))
	require.Empty(t, push.Header.Get("Authorization"))
	a, err := fedtest.DecodeAssertion(f.Get("client_assertion"))
	require.NoError(t, err)
	aud, ok := a.AudString()
	require.True(t, ok, "aud must be a single string (RFC 9126 §2)")
	require.Equal(t, m.URL, aud)
	require.Equal(t, clientID, a.Str("iss"))
	require.Equal(t, clientID, a.Str("sub"))
	require.Equal(t, "fedas-probe-1", a.Kid())

	// No secret in the report: neither the assertion nor the key.
	out := asJSON(t, r)
	require.NotContains(t, out, f.Get("client_assertion"))
	require.NotContains(t, out, strings.Split(f.Get("client_assertion"), ".")[2])
	require.NotContains(t, out, d)
}

// TestCheckClientSecretBasic authenticates with HTTP Basic, credentials
// form-urlencoded first (RFC 6749 §2.3.1), and warns that the downstream
// does not advertise the method.
func TestCheckClientSecretBasic(t *testing.T) {
	const secret = "p@ss:w/rd+=%"
	m := fedtest.Start(t, fedtest.Options{NoDPoP: true})

	r := probe.Check(context.Background(), basic(m.URL, secret), ourIssuer, redirectURI, loopback)

	require.Equal(t, allSteps("ok", "ok", "ok", "ok", "warn", "ok", "ok"), statuses(r.Steps), "%+v", r.Steps)
	require.True(t, r.OK)
	require.Contains(t, step(t, r.Steps, probe.StepTokenEndpoint).Detail, `token_endpoint_auth_methods_supported ["private_key_jwt"] does not list client_secret_basic`)
	require.Contains(t, step(t, r.Steps, probe.StepPAR).Detail, "client_secret_basic (RFC 6749 §2.3.1)")
	require.EqualValues(t, 1, m.Count(fedtest.PAR))
	push := m.Requests(fedtest.PAR)[0]
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(clientID)+":"+url.QueryEscape(secret)))
	require.Equal(t, want, push.Header.Get("Authorization"))
	// One method only (RFC 6749 §2.3), and no dpop_jkt for a server without DPoP.
	require.Equal(t, []string{"client_id", "code_challenge", "code_challenge_method", "nonce", "redirect_uri",
		"response_type", "scope", "state"}, formKeys(push.Form))
	out := asJSON(t, r)
	require.NotContains(t, out, secret)
	require.NotContains(t, out, url.QueryEscape(secret))
	require.NotContains(t, out, strings.TrimPrefix(want, "Basic "))
}

// TestCheckNoRedirectURI pushes without redirect_uri when none is given,
// as the federator's native PAR does (docs/decisions.md Q14).
func TestCheckNoRedirectURI(t *testing.T) {
	key, pub, _ := clientKey(t)
	m := fedtest.Start(t, fedtest.Options{ClientKeys: pub})
	r := probe.Check(context.Background(), pkjwt(m.URL, key), ourIssuer, "", loopback)
	require.True(t, r.OK, "%+v", r.Steps)
	require.EqualValues(t, 1, m.Count(fedtest.PAR))
	_, has := m.Requests(fedtest.PAR)[0].Form["redirect_uri"]
	require.False(t, has)
	require.NotContains(t, step(t, r.Steps, probe.StepPAR).Detail, "redirect_uri")
}

func TestCheckNativeEndpoint(t *testing.T) {
	key, pub, _ := clientKey(t)
	tests := []struct {
		name       string
		opts       fedtest.Options
		browser    bool
		status     string
		native     bool
		detail     []string
		urlIsAuthz bool
	}{
		{name: "FiPA name", status: "ok", native: true,
			detail: []string{"authorization_challenge_endpoint present"}},
		{name: "federation draft name", opts: fedtest.Options{NativeName: "native_authorization_endpoint"}, status: "ok", native: true,
			detail: []string{"native_authorization_endpoint present"}},
		{name: "absent", opts: fedtest.Options{NoNative: true}, status: "warn",
			detail: []string{"no native endpoint", "federating clients get native_authorization_federate_unsupported", "set browser_federation"}},
		{name: "absent, browser federation", opts: fedtest.Options{NoNative: true}, browser: true, status: "warn",
			detail: []string{"no native endpoint", "browser_federation is set, so federating clients are sent through the browser"}, urlIsAuthz: true},
		{name: "absent, browser federation without authorization_endpoint", opts: fedtest.Options{NoNative: true, NoAuthorize: true}, browser: true, status: "warn",
			detail: []string{"no authorization_endpoint", "native_authorization_federate_unsupported"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.ClientKeys = pub
			m := fedtest.Start(t, tt.opts)
			d := pkjwt(m.URL, key)
			d.BrowserFederation = tt.browser
			r := probe.Check(context.Background(), d, ourIssuer, redirectURI, loopback)
			require.Equal(t, allSteps("ok", "ok", tt.status, "ok", "ok", "ok", "ok"), statuses(r.Steps), "%+v", r.Steps)
			require.True(t, r.OK, "a missing native endpoint is a warning, not a failure")
			require.Equal(t, tt.native, r.Native)
			s := step(t, r.Steps, probe.StepNativeEndpoint)
			for _, want := range tt.detail {
				require.Contains(t, s.Detail, want)
			}
			switch {
			case tt.native:
				require.Equal(t, m.Endpoint(fedtest.Native), s.URL)
			case tt.urlIsAuthz:
				require.Equal(t, m.Endpoint(fedtest.Authorize), s.URL)
			default:
				require.Empty(t, s.URL)
			}
			require.Zero(t, m.Count(fedtest.Native), "the native endpoint is the client's to call, not ours")
		})
	}
}

func TestCheckNoPAR(t *testing.T) {
	key, pub, _ := clientKey(t)
	m := fedtest.Start(t, fedtest.Options{NoPAR: true, ClientKeys: pub})
	r := probe.Check(context.Background(), pkjwt(m.URL, key), ourIssuer, redirectURI, loopback)
	require.Equal(t, allSteps("ok", "ok", "ok", "fail", "ok", "ok", "skipped"), statuses(r.Steps), "%+v", r.Steps)
	require.False(t, r.OK)
	require.Contains(t, step(t, r.Steps, probe.StepPAREndpoint).Detail, "no pushed_authorization_request_endpoint: fedas cannot federate to it")
	require.Zero(t, m.Count(fedtest.PAR))
}

// TestCheckWrongIssuer: metadata naming another issuer is not trusted
// (RFC 8414 §3.3): nothing it names is checked or fetched.
func TestCheckWrongIssuer(t *testing.T) {
	key, _, _ := clientKey(t)
	s := serve(t, map[string]http.HandlerFunc{
		"/.well-known/oauth-authorization-server": metadataHandler("", func(_ string, md map[string]any) {
			md["issuer"] = "https://other.example"
		}),
	})
	r := probe.Check(context.Background(), pkjwt(s.URL, key), ourIssuer, redirectURI, loopback)
	require.Equal(t, allSteps("ok", "fail", "skipped", "skipped", "skipped", "skipped", "skipped"), statuses(r.Steps), "%+v", r.Steps)
	require.False(t, r.OK)
	require.False(t, r.Native)
	detail := step(t, r.Steps, probe.StepIssuer).Detail
	require.Contains(t, detail, `the metadata's issuer is "https://other.example", not the configured "`+s.URL+`"`)
	require.Contains(t, detail, "RFC 8414 §3.3")
	require.Equal(t, []string{"GET /.well-known/oauth-authorization-server"}, s.Paths())

	d, steps, err := probe.Discover(context.Background(), s.URL, loopback)
	require.ErrorIs(t, err, federation.ErrIssuerMismatch)
	require.Equal(t, config.Downstream{}, d)
	require.Equal(t, []string{"metadata=ok", "issuer=fail", "native_endpoint=skipped", "par_endpoint=skipped", "token_endpoint=skipped"}, statuses(steps))
}

// TestCheckOwnIssuer refuses to probe ourselves, without a request.
func TestCheckOwnIssuer(t *testing.T) {
	m := fedtest.Start(t, fedtest.Options{})
	r := probe.Check(context.Background(), basic(m.URL, "s"), m.URL, redirectURI, loopback)
	require.Equal(t, allSteps("fail", "skipped", "skipped", "skipped", "skipped", "skipped", "skipped"), statuses(r.Steps))
	require.Contains(t, r.Steps[0].Detail, "our own issuer")
	require.Zero(t, m.Total())
}

func TestCheckPARRefused(t *testing.T) {
	t.Run("unknown client_id", func(t *testing.T) {
		// A PAR endpoint that knows only clientID, as a real AS would.
		strict := serve(t, map[string]http.HandlerFunc{"/par": func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			if id, _, _ := r.BasicAuth(); id != clientID || r.PostForm.Get("client_id") != clientID {
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": `client "` + id + `" is not registered`})
				return
			}
			writeJSON(w, http.StatusCreated, map[string]any{"request_uri": fedtest.RequestURIPrefix + "abc", "expires_in": 30})
		}})
		m := fedtest.Start(t, fedtest.Options{PAREndpoint: strict.URL + "/par"})

		d := basic(m.URL, "the-secret")
		d.ClientID = "not-registered"
		r := probe.Check(context.Background(), d, ourIssuer, redirectURI, loopback)
		require.Equal(t, allSteps("ok", "ok", "ok", "ok", "warn", "ok", "fail"), statuses(r.Steps), "%+v", r.Steps)
		require.False(t, r.OK)
		detail := step(t, r.Steps, probe.StepPAR).Detail
		require.Contains(t, detail, `HTTP 401: the downstream refused the pushed request: error "invalid_client"`)
		require.Contains(t, detail, `error_description "client not-registered is not registered"`, "par strips quotes from descriptions")
		require.Contains(t, detail, "check client_id")
		require.NotContains(t, asJSON(t, r), "the-secret")

		// The same probe with the registered client_id passes: the
		// refusal above was about the client.
		d.ClientID = clientID
		r = probe.Check(context.Background(), d, ourIssuer, redirectURI, loopback)
		require.Equal(t, "ok", step(t, r.Steps, probe.StepPAR).Status, "%+v", r.Steps)
		require.Contains(t, step(t, r.Steps, probe.StepPAR).Detail, "expires_in 30 s")
		require.EqualValues(t, 2, strict.hits.Load())
	})
	t.Run("assertion signed by an unregistered key", func(t *testing.T) {
		_, registered, _ := clientKey(t)
		other, _, _ := clientKey(t)
		m := fedtest.Start(t, fedtest.Options{ClientKeys: registered})
		r := probe.Check(context.Background(), pkjwt(m.URL, other), ourIssuer, redirectURI, loopback)
		require.Equal(t, allSteps("ok", "ok", "ok", "ok", "ok", "ok", "fail"), statuses(r.Steps), "%+v", r.Steps)
		require.Contains(t, step(t, r.Steps, probe.StepPAR).Detail, `HTTP 401: the downstream refused the pushed request: error "invalid_client"`)
		require.Equal(t, http.StatusUnauthorized, m.Requests(fedtest.PAR)[0].Status)
	})
	t.Run("downstream faults", func(t *testing.T) {
		for _, tt := range []struct {
			mode   fedtest.Mode
			detail string
		}{
			{fedtest.ServerError, `HTTP 500: the downstream failed (temporary; retry later): error "server_error", error_description "fedtest-internal-detail <script>alert(1)</script>"`},
			{fedtest.NonURN, "HTTP 201 with an unusable body (RFC 9126 §2.2): PAR response has no valid request_uri URN"},
			{fedtest.BadExpiresIn, "HTTP 201 with an unusable body (RFC 9126 §2.2): PAR response expires_in missing or outside 1..600"},
			{fedtest.Garbage, `HTTP 200, want 201 (RFC 9126 §2.2): "unexpected status"`},
			{fedtest.Down, `request failed: Post "`},
		} {
			t.Run(string(tt.mode), func(t *testing.T) {
				m := fedtest.Start(t, fedtest.Options{Modes: map[fedtest.Endpoint]fedtest.Mode{fedtest.PAR: tt.mode}})
				r := probe.Check(context.Background(), basic(m.URL, "s"), ourIssuer, redirectURI, loopback)
				s := step(t, r.Steps, probe.StepPAR)
				require.Equal(t, "fail", s.Status)
				require.True(t, strings.HasPrefix(s.Detail, tt.detail), "detail %q, want prefix %q", s.Detail, tt.detail)
				require.False(t, r.OK)
			})
		}
	})
	t.Run("unusable key", func(t *testing.T) {
		m := fedtest.Start(t, fedtest.Options{})
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		raw, err := json.Marshal(jose.JSONWebKey{Key: k, KeyID: "rs", Algorithm: "RS256"})
		require.NoError(t, err)
		r := probe.Check(context.Background(), pkjwt(m.URL, string(raw)), ourIssuer, redirectURI, loopback)
		s := step(t, r.Steps, probe.StepPAR)
		require.Equal(t, "fail", s.Status)
		require.Contains(t, s.Detail, `algorithm "RS256" not allowed`)
		require.Zero(t, m.Count(fedtest.PAR), "nothing is pushed with a key we would not use")

		r = probe.Check(context.Background(), pkjwt(m.URL, `{"kty":"EC","d":"c2VjcmV0LWtleS1tYXRlcmlhbA"`), ourIssuer, redirectURI, loopback)
		s = step(t, r.Steps, probe.StepPAR)
		require.Equal(t, "fail", s.Status)
		require.Equal(t, "auth key is not a JSON Web Key (RFC 7517)", s.Detail)
		require.NotContains(t, asJSON(t, r), "c2VjcmV0LWtleS1tYXRlcmlhbA")
	})
}

// TestSSRFRefused: with the production guard, every issuer that points at
// this host or the metadata service is refused before any connection.
func TestSSRFRefused(t *testing.T) {
	canary := fedtest.StartCanary(t)
	p := port(t, canary.URL)
	tests := []struct {
		name, issuer string
		lookups      []string // names the dialer resolved
	}{
		{name: "http loopback literal", issuer: "http://127.0.0.1:" + p},
		{name: "https loopback literal", issuer: "https://127.0.0.1:" + p},
		{name: "IPv6 loopback", issuer: "https://[::1]:" + p},
		{name: "instance metadata", issuer: "https://169.254.169.254"},
		{name: "GCP metadata name", issuer: "https://metadata.google.internal"},
		{name: "localhost", issuer: "https://localhost:" + p},
		{name: "numeric IPv4 form", issuer: "https://2130706433:" + p},
		{name: "name resolving to loopback", issuer: "https://rebind.example:" + p, lookups: []string{"rebind.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			look := &fakeLookup{m: map[string]string{"rebind.example": "127.0.0.1"}}
			o := probe.Options{Net: netguard.Options{LookupIP: look.LookupIP}}

			r := probe.Check(context.Background(), basic(tt.issuer, "secret"), ourIssuer, redirectURI, o)
			require.Equal(t, allSteps("fail", "skipped", "skipped", "skipped", "skipped", "skipped", "skipped"), statuses(r.Steps), "%+v", r.Steps)
			require.False(t, r.OK)
			require.Contains(t, r.Steps[0].Detail, "netguard: refused")

			d, steps, err := probe.Discover(context.Background(), tt.issuer, o)
			require.ErrorIs(t, err, netguard.ErrForbidden)
			require.Equal(t, config.Downstream{}, d)
			require.Equal(t, []string{"metadata=fail", "issuer=skipped", "native_endpoint=skipped", "par_endpoint=skipped", "token_endpoint=skipped"}, statuses(steps))
			require.Contains(t, steps[0].Detail, "netguard: refused")

			if tt.lookups != nil {
				// Refused at dial time, after resolution (DNS rebinding).
				require.Equal(t, append(tt.lookups, tt.lookups...), look.Names())
				require.Contains(t, r.Steps[0].Detail, "(127.0.0.1): loopback address")
			} else {
				// Refused by CheckURL, before any resolution.
				require.Empty(t, look.Names())
				require.Contains(t, r.Steps[0].Detail, "issuer refused: netguard: refused")
			}
			require.Zero(t, canary.Hits(), "the canary was contacted")
			require.Zero(t, canary.Requests())
		})
	}
}

// TestSSRFEndpoints: endpoints in (trusted) metadata that point inside are
// refused and never fetched.
func TestSSRFEndpoints(t *testing.T) {
	s := serve(t, map[string]http.HandlerFunc{
		"/.well-known/oauth-authorization-server": metadataHandler("", func(_ string, md map[string]any) {
			md["authorization_challenge_endpoint"] = "https://169.254.169.254/native"
			md["pushed_authorization_request_endpoint"] = "https://10.0.0.1/par"
			md["token_endpoint"] = "https://192.168.0.10/token"
			md["jwks_uri"] = "https://jwks.internal.example/jwks"
		}),
	})
	look := &fakeLookup{m: map[string]string{"jwks.internal.example": "169.254.169.254"}}
	o := probe.Options{Net: netguard.Options{AllowLoopback: true, LookupIP: look.LookupIP}}
	r := probe.Check(context.Background(), basic(s.URL, "secret"), ourIssuer, redirectURI, o)
	require.Equal(t, allSteps("ok", "ok", "fail", "fail", "fail", "fail", "skipped"), statuses(r.Steps), "%+v", r.Steps)
	for _, name := range []string{probe.StepNativeEndpoint, probe.StepPAREndpoint, probe.StepTokenEndpoint, probe.StepJWKS} {
		require.Contains(t, step(t, r.Steps, name).Detail, "netguard: refused", name)
	}
	require.Contains(t, step(t, r.Steps, probe.StepJWKS).Detail, "(169.254.169.254): link-local cloud instance-metadata address")
	require.Equal(t, []string{"jwks.internal.example"}, look.Names())
	require.Equal(t, []string{"GET /.well-known/oauth-authorization-server"}, s.Paths())
}

func TestRedirectsNotFollowed(t *testing.T) {
	t.Run("metadata 302", func(t *testing.T) {
		canary := fedtest.StartCanary(t)
		target := canary.URL + "/.well-known/oauth-authorization-server"
		s := serve(t, map[string]http.HandlerFunc{"/": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target, http.StatusFound)
		}})
		r := probe.Check(context.Background(), basic(s.URL, "secret"), ourIssuer, redirectURI, loopback)
		require.Equal(t, allSteps("fail", "skipped", "skipped", "skipped", "skipped", "skipped", "skipped"), statuses(r.Steps))
		require.Equal(t, `HTTP 302: redirect not followed (Location "`+target+`" was not fetched)`, r.Steps[0].Detail)
		_, _, err := probe.Discover(context.Background(), s.URL, loopback)
		require.Error(t, err)
		require.EqualValues(t, 2, s.hits.Load())
		require.Zero(t, canary.Hits())
	})
	t.Run("jwks 302", func(t *testing.T) {
		canary := fedtest.StartCanary(t)
		key, pub, _ := clientKey(t)
		m := fedtest.Start(t, fedtest.Options{ClientKeys: pub, RedirectTo: canary.URL + "/jwks",
			Modes: map[fedtest.Endpoint]fedtest.Mode{fedtest.JWKS: fedtest.Redirect}})
		r := probe.Check(context.Background(), pkjwt(m.URL, key), ourIssuer, redirectURI, loopback)
		require.Equal(t, allSteps("ok", "ok", "ok", "ok", "ok", "fail", "ok"), statuses(r.Steps), "%+v", r.Steps)
		require.Contains(t, step(t, r.Steps, probe.StepJWKS).Detail, "HTTP 302: redirect not followed")
		require.EqualValues(t, 1, m.Count(fedtest.JWKS))
		require.Zero(t, canary.Hits())
	})
	t.Run("PAR 307", func(t *testing.T) {
		canary := fedtest.StartCanary(t)
		redirector := serve(t, map[string]http.HandlerFunc{"/par": func(w http.ResponseWriter, r *http.Request) {
			// 307 keeps method and body: following it would POST our
			// credentials to the canary.
			http.Redirect(w, r, canary.URL+"/par", http.StatusTemporaryRedirect)
		}})
		m := fedtest.Start(t, fedtest.Options{PAREndpoint: redirector.URL + "/par"})
		r := probe.Check(context.Background(), basic(m.URL, "the-secret"), ourIssuer, redirectURI, loopback)
		require.Equal(t, allSteps("ok", "ok", "ok", "ok", "warn", "ok", "fail"), statuses(r.Steps), "%+v", r.Steps)
		require.Contains(t, step(t, r.Steps, probe.StepPAR).Detail, "HTTP 307: redirect not followed")
		require.Equal(t, []string{"POST /par"}, redirector.Paths())
		require.Zero(t, canary.Hits())
		require.Zero(t, canary.Requests())
	})
}

func TestBodiesBounded(t *testing.T) {
	pad := strings.Repeat("A", 2048)
	t.Run("metadata with Content-Length", func(t *testing.T) {
		s := serve(t, map[string]http.HandlerFunc{
			"/.well-known/oauth-authorization-server": metadataHandler("", func(_ string, md map[string]any) { md["pad"] = pad }),
		})
		o := loopback
		o.MaxBytes = 1024
		r := probe.Check(context.Background(), basic(s.URL, "s"), ourIssuer, redirectURI, o)
		require.Equal(t, allSteps("fail", "skipped", "skipped", "skipped", "skipped", "skipped", "skipped"), statuses(r.Steps))
		require.Equal(t, "response body exceeds 1024 bytes", r.Steps[0].Detail)
		_, _, err := probe.Discover(context.Background(), s.URL, o)
		require.ErrorIs(t, err, netguard.ErrBodyTooLarge)
		// The same document within the default bound is fine.
		r = probe.Check(context.Background(), basic(s.URL, "s"), ourIssuer, redirectURI, loopback)
		require.Equal(t, "ok", r.Steps[0].Status, "%+v", r.Steps)
	})
	t.Run("metadata chunked", func(t *testing.T) {
		s := serve(t, map[string]http.HandlerFunc{"/.well-known/oauth-authorization-server": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"issuer":"http://` + r.Host + `","pad":"`))
			w.(http.Flusher).Flush() // no Content-Length from here on
			_, _ = w.Write([]byte(pad + `"}`))
		}})
		o := loopback
		o.MaxBytes = 1024
		r := probe.Check(context.Background(), basic(s.URL, "s"), ourIssuer, redirectURI, o)
		require.Equal(t, "fail", r.Steps[0].Status)
		require.Equal(t, "response body exceeds 1024 bytes", r.Steps[0].Detail)
	})
	t.Run("jwks huge", func(t *testing.T) {
		key, pub, _ := clientKey(t)
		m := fedtest.Start(t, fedtest.Options{ClientKeys: pub, Modes: map[fedtest.Endpoint]fedtest.Mode{fedtest.JWKS: fedtest.Huge}})
		r := probe.Check(context.Background(), pkjwt(m.URL, key), ourIssuer, redirectURI, loopback)
		require.Equal(t, allSteps("ok", "ok", "ok", "ok", "ok", "fail", "ok"), statuses(r.Steps), "%+v", r.Steps)
		require.Equal(t, fmt.Sprintf("response body exceeds %d bytes", probe.DefaultMaxBytes), step(t, r.Steps, probe.StepJWKS).Detail)
	})
	t.Run("PAR response", func(t *testing.T) {
		// A well-formed 201 of 8 KiB: par.Client alone would accept it.
		big := serve(t, map[string]http.HandlerFunc{"/par": func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusCreated, map[string]any{"request_uri": fedtest.RequestURIPrefix + "x", "expires_in": 60, "pad": strings.Repeat("A", 8<<10)})
		}})
		m := fedtest.Start(t, fedtest.Options{PAREndpoint: big.URL + "/par"})
		o := loopback
		o.MaxBytes = 4096
		r := probe.Check(context.Background(), basic(m.URL, "s"), ourIssuer, redirectURI, o)
		s := step(t, r.Steps, probe.StepPAR)
		require.Equal(t, "fail", s.Status, "%+v", r.Steps)
		require.Contains(t, s.Detail, "response body exceeds the limit")
		require.False(t, r.OK)

		r = probe.Check(context.Background(), basic(m.URL, "s"), ourIssuer, redirectURI, loopback)
		require.Equal(t, "ok", step(t, r.Steps, probe.StepPAR).Status, "%+v", r.Steps)
	})
}

func TestMetadataRejected(t *testing.T) {
	tests := []struct {
		name   string
		h      http.HandlerFunc
		detail string
	}{
		{"not found", http.NotFound, "HTTP 404, want 200"},
		{"html", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html></html>"))
		}, `content type "text/html", want application/json`},
		{"not an object", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, []string{"x"}) },
			"the metadata is not a JSON object (RFC 8414 §3.2)"},
		{"member of the wrong type", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, 200, map[string]any{"issuer": 42})
		}, "a metadata member has the wrong JSON type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := serve(t, map[string]http.HandlerFunc{"/": tt.h})
			r := probe.Check(context.Background(), basic(s.URL, "s"), ourIssuer, redirectURI, loopback)
			require.Equal(t, allSteps("fail", "skipped", "skipped", "skipped", "skipped", "skipped", "skipped"), statuses(r.Steps))
			require.Contains(t, r.Steps[0].Detail, tt.detail)
			require.False(t, r.OK)
		})
	}
}

// TestJWKSKeys keeps the keys federation's JWKS cache keeps.
func TestJWKSKeys(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	pubJSON := func(k jose.JSONWebKey) json.RawMessage {
		b, err := json.Marshal(k)
		require.NoError(t, err)
		return b
	}
	good := pubJSON(jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "a", Algorithm: "ES256", Use: "sig"})
	tests := []struct {
		name   string
		keys   []json.RawMessage
		algs   []string
		status string
		detail []string
	}{
		{name: "mixed", keys: []json.RawMessage{
			good,
			pubJSON(jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "a", Algorithm: "ES256"}),
			pubJSON(jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "enc", Use: "enc"}),
			pubJSON(jose.JSONWebKey{Key: ec, KeyID: "priv", Algorithm: "ES256"}),
			pubJSON(jose.JSONWebKey{Key: &ec.PublicKey, Algorithm: "ES256"}),
			json.RawMessage(`"nope"`),
		}, status: "ok", detail: []string{`1 public signing key(s): kid "a" ("ES256")`,
			"5 skipped (1 × duplicate kid, 1 × no kid, 1 × not a JSON object, 1 × publishes private or symmetric key material, 1 × use is not sig)"}},
		{name: "no usable key", keys: []json.RawMessage{pubJSON(jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "enc", Use: "enc"})},
			status: "fail", detail: []string{"no usable public signing key; 1 skipped (1 × use is not sig)"}},
		{name: "RS256 only, default algs", keys: []json.RawMessage{pubJSON(jose.JSONWebKey{Key: &rk.PublicKey, KeyID: "r", Algorithm: "RS256"})},
			status: "warn", detail: []string{`kid "r" ("RS256")`, `no key fits the id_token_algs ["ES256", "PS256", "EdDSA"]`}},
		{name: "RS256 only, RS256 allowed", keys: []json.RawMessage{pubJSON(jose.JSONWebKey{Key: &rk.PublicKey, KeyID: "r", Algorithm: "RS256"})},
			algs: []string{"RS256"}, status: "ok", detail: []string{`kid "r" ("RS256")`}},
		{name: "no alg", keys: []json.RawMessage{pubJSON(jose.JSONWebKey{Key: &rk.PublicKey, KeyID: "r"})},
			status: "ok", detail: []string{`kid "r" (no alg, RSA 2048 bits)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := serve(t, map[string]http.HandlerFunc{"/jwks": func(w http.ResponseWriter, _ *http.Request) {
				writeJSON(w, 200, map[string]any{"keys": tt.keys})
			}})
			m := fedtest.Start(t, fedtest.Options{JWKSURI: js.URL + "/jwks"})
			d := basic(m.URL, "s")
			d.IDTokenAlgs = tt.algs
			r := probe.Check(context.Background(), d, ourIssuer, redirectURI, loopback)
			s := step(t, r.Steps, probe.StepJWKS)
			require.Equal(t, tt.status, s.Status, s.Detail)
			require.Equal(t, js.URL+"/jwks", s.URL)
			for _, want := range tt.detail {
				require.Contains(t, s.Detail, want)
			}
			require.Zero(t, m.Count(fedtest.JWKS))
		})
	}
}

func TestDiscover(t *testing.T) {
	t.Run("from fedtest", func(t *testing.T) {
		m := fedtest.Start(t, fedtest.Options{})
		d, steps, err := probe.Discover(context.Background(), m.URL, loopback)
		require.NoError(t, err)
		require.Equal(t, config.Downstream{
			Issuer:      m.URL,
			Name:        "127.0.0.1",
			IDTokenAlgs: []string{"ES256"},
			Auth:        config.DownstreamAuth{Method: "private_key_jwt"},
			Scopes:      map[string]string{"openid": "openid"},
		}, d)
		require.Equal(t, []string{"metadata=ok", "issuer=ok", "native_endpoint=ok", "par_endpoint=ok", "token_endpoint=ok"}, statuses(steps))
		require.Equal(t, m.Endpoint(fedtest.Metadata), steps[0].URL)
		require.EqualValues(t, 1, m.Total(), "Discover fetches the metadata only")
	})
	t.Run("no native endpoint", func(t *testing.T) {
		m := fedtest.Start(t, fedtest.Options{NoNative: true})
		d, steps, err := probe.Discover(context.Background(), m.URL, loopback)
		require.NoError(t, err)
		require.True(t, d.BrowserFederation)
		require.Equal(t, []string{"metadata=ok", "issuer=ok", "native_endpoint=warn", "par_endpoint=ok", "token_endpoint=ok"}, statuses(steps))
		require.Contains(t, steps[2].Detail, "browser_federation is set")
		require.Equal(t, m.Endpoint(fedtest.Authorize), steps[2].URL)
	})
	t.Run("no native and no authorization endpoint", func(t *testing.T) {
		m := fedtest.Start(t, fedtest.Options{NoNative: true, NoAuthorize: true})
		d, steps, err := probe.Discover(context.Background(), m.URL, loopback)
		require.NoError(t, err)
		require.False(t, d.BrowserFederation)
		require.Contains(t, steps[2].Detail, "native_authorization_federate_unsupported")
	})
	t.Run("no PAR endpoint", func(t *testing.T) {
		m := fedtest.Start(t, fedtest.Options{NoPAR: true})
		_, steps, err := probe.Discover(context.Background(), m.URL, loopback)
		require.NoError(t, err)
		require.Equal(t, "fail", steps[3].Status)
		require.Contains(t, steps[3].Detail, "no pushed_authorization_request_endpoint: fedas cannot federate to it")
	})
	t.Run("issuer with a path, basic, RS256", func(t *testing.T) {
		s := serve(t, map[string]http.HandlerFunc{
			// RFC 8414 §3.1: the well-known segment goes before the path.
			"/.well-known/oauth-authorization-server/tenant": metadataHandler("/tenant", func(_ string, md map[string]any) {
				md["token_endpoint_auth_methods_supported"] = []string{"client_secret_basic", "client_secret_post"}
				md["id_token_signing_alg_values_supported"] = []string{"RS256", "HS256", "ES256", "none"}
			}),
		})
		d, steps, err := probe.Discover(context.Background(), s.URL+"/tenant", loopback)
		require.NoError(t, err)
		require.Equal(t, "client_secret_basic", d.Auth.Method)
		require.Equal(t, []string{"ES256", "RS256"}, d.IDTokenAlgs)
		require.Equal(t, s.URL+"/tenant", d.Issuer)
		require.Equal(t, []string{"metadata=ok", "issuer=ok", "native_endpoint=ok", "par_endpoint=ok", "token_endpoint=ok"}, statuses(steps))
		require.Equal(t, []string{"GET /.well-known/oauth-authorization-server/tenant"}, s.Paths())
	})
	t.Run("no algorithm of ours", func(t *testing.T) {
		s := serve(t, map[string]http.HandlerFunc{
			"/.well-known/oauth-authorization-server": metadataHandler("", func(_ string, md map[string]any) {
				md["id_token_signing_alg_values_supported"] = []string{"HS256"}
				delete(md, "token_endpoint_auth_methods_supported") // RFC 8414 §2: client_secret_basic
			}),
		})
		d, steps, err := probe.Discover(context.Background(), s.URL, loopback)
		require.NoError(t, err)
		require.Nil(t, d.IDTokenAlgs)
		require.Equal(t, "client_secret_basic", d.Auth.Method)
		require.Equal(t, "warn", steps[0].Status)
		require.Contains(t, steps[0].Detail, `id_token_signing_alg_values_supported ["HS256"] lists none of ES256, PS256, EdDSA, RS256`)
		require.Equal(t, "ok", steps[4].Status, steps[4].Detail)
	})
	t.Run("unreachable", func(t *testing.T) {
		_, steps, err := probe.Discover(context.Background(), fedtest.RefusedURL(t), loopback)
		require.Error(t, err)
		require.False(t, errors.Is(err, netguard.ErrForbidden))
		require.Equal(t, "fail", steps[0].Status)
		require.Contains(t, steps[0].Detail, "request failed: ")
	})
}
