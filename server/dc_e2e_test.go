package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dc/dctest"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage"
)

// dcOrigin is the DC API origin registered for the wallet test client.
const dcOrigin = "android:apk-key-hash:Zm9vYmFy"

// dcReturn is its registered openid4vp_redirect_uri.
const dcReturn = "https://app.example/dc-return"

// pidQuery asks a PID's given and family name (OpenID4VP §6).
func pidQuery(vct string) string {
	return `{"credentials":[{"id":"pid","format":"dc+sd-jwt","meta":{"vct_values":["` + vct + `"]},` +
		`"claims":[{"path":["given_name"]},{"path":["family_name"]}]}]}`
}

// dcEnv is a fedas instance with digital_credentials on, a simulated
// issuer it trusts and a wallet holding a credential of that issuer.
type dcEnv struct {
	in     *servertest.Instance
	issuer *dctest.Issuer
	wallet *dctest.Wallet
	clock  *servertest.Clock
	roots  *x509.CertPool
	hc     *http.Client
	// cred is the wallet's credential (its disclosures: what must never
	// be logged).
	cred *dctest.Credential
}

type dcEnvOptions struct {
	store storage.Store
	edit  func(*config.Config)
	x5c   bool
	// start starts the instance (default servertest.Start): the protocol
	// examples record it.
	start func(tb testing.TB, o servertest.Options) *servertest.Instance
	// observe sees every exchange of the instance (servertest.Options.Observe).
	observe func(servertest.Exchange)
	// log, when set, is the server's logger (default the test's).
	log *zap.Logger
}

// verifierCert writes a P-256 key and a self-signed certificate for the
// internal verifier (its x509_hash client_id) and returns their paths.
func verifierCert(tb testing.TB, now time.Time) (keyFile, chainFile string, pool *x509.CertPool) {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "fedas verifier"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), DNSNames: []string{"127.0.0.1"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(tb, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(tb, err)
	dir := tb.TempDir()
	keyDER, err := x509.MarshalECPrivateKey(k)
	require.NoError(tb, err)
	keyFile, chainFile = filepath.Join(dir, "verifier.key"), filepath.Join(dir, "verifier.pem")
	require.NoError(tb, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	require.NoError(tb, os.WriteFile(chainFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return keyFile, chainFile, pool
}

// dcClients are the clients of the environment: one per dialect.
var dcClients = map[string]string{"demo-app": config.DialectWallet, "dc-draft00": config.DialectDraft00, "dc-pdi": config.DialectPDI, "dc-ia": config.DialectIA}

func newDCEnv(tb testing.TB, o dcEnvOptions) *dcEnv {
	tb.Helper()
	clock := &servertest.Clock{}
	iss := dctest.NewIssuer(tb, dctest.IssuerOptions{Now: clock.Now, X5C: o.x5c})
	keyFile, chainFile, roots := verifierCert(tb, clock.Now())
	ti := config.TrustedIssuer{Issuer: iss.ID, VCTValues: []string{iss.VCT}, SubjectClaim: "sub",
		Claims: map[string]string{"given_name": "given_name", "family_name": "family_name"}}
	if iss.StatusURI != "" {
		u, _ := url.Parse(iss.StatusURI)
		ti.StatusLists = []string{u.Scheme + "://" + u.Host + "/"}
	}
	if o.x5c {
		dir := tb.TempDir()
		f := filepath.Join(dir, "roots.pem")
		var pemRoots []byte
		pemRoots = append(pemRoots, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.Chain[len(iss.Chain)-1].Raw})...)
		require.NoError(tb, os.WriteFile(f, pemRoots, 0o644))
		ti.X5CRootsFile = f
	} else {
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{iss.PublicJWK()}}
		b, err := json.Marshal(set)
		require.NoError(tb, err)
		ti.JWKS = string(b)
	}
	if o.start == nil {
		o.start = servertest.Start
	}
	in := o.start(tb, servertest.Options{Store: o.store, Clock: clock, TLS: true, Logger: o.log, HMACSecret: []byte("0123456789abcdef0123456789abcdef"), Observe: o.observe,
		DC: server.DCOptions{HTTP: iss.HTTPClient(), StatusCheckURL: func(string) error { return nil }},
		Configure: func(c *config.Config) {
			testConfig(c)
			c.Limits.Rate.Enabled = new(bool)
			c.DigitalCredentials = config.DigitalCredentials{Enabled: true, SigningKeyFile: keyFile, CertificateChainFile: chainFile,
				TrustedIssuers: []config.TrustedIssuer{ti},
				Queries:        map[string]string{"pid": pidQuery(iss.VCT)},
				Rules: []config.DCRule{
					{LoginHint: "wallet", Query: "pid", ACR: "urn:fedas:acr:wallet"},
					{ACRValue: "urn:fedas:acr:wallet", Query: "pid", ACR: "urn:fedas:acr:wallet"},
				}}
			for i := range c.Clients {
				if c.Clients[i].ID == "demo-app" {
					c.Clients[i].DigitalCredentials = &config.ClientDC{DCAPIOrigins: []string{dcOrigin}, OpenID4VPRedirectURIs: []string{dcReturn}}
				}
			}
			for id, d := range dcClients {
				if id == "demo-app" {
					continue
				}
				cdc := &config.ClientDC{Dialect: d}
				if d != config.DialectPDI && d != config.DialectIA { // the wallet is the client on those
					cdc.DCAPIOrigins, cdc.OpenID4VPRedirectURIs = []string{dcOrigin}, []string{dcReturn}
				}
				c.Clients = append(c.Clients, config.Client{ID: id, FirstParty: true, TokenEndpointAuthMethod: "none",
					Scopes: []string{"openid", "profile"}, GrantTypes: []string{"authorization_code"}, DigitalCredentials: cdc})
			}
			if o.edit != nil {
				o.edit(c)
			}
		}})
	w := dctest.NewWallet()
	w.Now, w.VerifierRoots, w.HTTP = clock.Now, roots, in.HTTPClient()
	cred, err := w.Receive(iss, map[string]any{"sub": "pid-4711", "given_name": "Erika", "family_name": "Mustermann", "birthdate": "1964-08-12"}, dctest.IssueOptions{})
	require.NoError(tb, err)
	return &dcEnv{in: in, issuer: iss, wallet: w, clock: clock, roots: roots, hc: in.HTTPClient(), cred: cred}
}

// dcAnswer is a decoded native endpoint answer with the members the
// presentation step adds.
type dcAnswer struct {
	status int
	m      map[string]any
	raw    []byte
	header http.Header
}

func (a dcAnswer) s(name string) string { v, _ := a.m[name].(string); return v }

// app is a native app of the environment: one DPoP key, one client.
type dcApp struct {
	e        *dcEnv
	clientID string
	key      *dpop.Key
	pkce     sdk.PKCE
}

func (e *dcEnv) app(tb testing.TB, clientID string) *dcApp {
	return &dcApp{e: e, clientID: clientID, key: newDPoPKey(tb), pkce: sdk.NewPKCE()}
}

// post sends form (or, when body is set, that JSON) to the native
// endpoint with a DPoP proof of the app's key.
func (a *dcApp) post(tb testing.TB, form url.Values, jsonBody ...string) dcAnswer {
	tb.Helper()
	endpoint := a.e.in.URL + server.PathNative
	var body io.Reader = strings.NewReader(form.Encode())
	ct := "application/x-www-form-urlencoded"
	if len(jsonBody) > 0 {
		body, ct = strings.NewReader(jsonBody[0]), "application/json"
	}
	req, err := http.NewRequest(http.MethodPost, endpoint, body)
	require.NoError(tb, err)
	req.Header.Set("Content-Type", ct)
	if a.key != nil {
		proof, err := a.key.ProofAt(http.MethodPost, endpoint, "", a.e.clock.Now())
		require.NoError(tb, err)
		req.Header.Set("DPoP", proof)
	}
	resp, err := a.e.hc.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	out := dcAnswer{status: resp.StatusCode, raw: raw, m: map[string]any{}, header: resp.Header}
	require.NoError(tb, json.Unmarshal(raw, &out.m), string(raw))
	require.Equal(tb, "no-store", resp.Header.Get("Cache-Control"))
	return out
}

// initial starts a sign-in with the presentation parameters extra.
func (a *dcApp) initial(tb testing.TB, extra ...string) dcAnswer {
	tb.Helper()
	f := url.Values{"client_id": {a.clientID}, "response_type": {"code"}, "scope": {"openid profile"},
		"code_challenge": {a.pkce.Challenge}, "code_challenge_method": {"S256"}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return a.post(tb, f)
}

func requireDCChallenge(tb testing.TB, a dcAnswer, flowName string) {
	tb.Helper()
	require.Equal(tb, http.StatusForbidden, a.status, string(a.raw))
	require.Equal(tb, "insufficient_authorization", a.s("error"), string(a.raw))
	require.NotEmpty(tb, a.s("auth_session"))
	ch, _ := a.m["challenge"].(map[string]any)
	require.Equal(tb, "digital_credentials", ch["type"], string(a.raw))
	require.Equal(tb, flowName, ch["flow"], string(a.raw))
	require.Greater(tb, a.m["expires_in"], float64(0))
}

// exchange redeems a code with the app's key and returns the token
// response members.
func (a *dcApp) exchange(tb testing.TB, code string) map[string]any {
	tb.Helper()
	endpoint := a.e.in.URL + server.PathToken
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {a.clientID}, "code_verifier": {a.pkce.Verifier}}
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(f.Encode()))
	require.NoError(tb, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	proof, err := a.key.ProofAt(http.MethodPost, endpoint, "", a.e.clock.Now())
	require.NoError(tb, err)
	req.Header.Set("DPoP", proof)
	resp, err := a.e.hc.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	require.Equal(tb, http.StatusOK, resp.StatusCode, string(raw))
	var m map[string]any
	require.NoError(tb, json.Unmarshal(raw, &m))
	return m
}

// idClaims decodes an ID token's payload (its signature is the token
// endpoint's business; the tests check what it says).
func idClaims(tb testing.TB, tok map[string]any) map[string]any {
	tb.Helper()
	idt, _ := tok["id_token"].(string)
	parts := strings.Split(idt, ".")
	require.Len(tb, parts, 3)
	b, err := jose.ParseSignedCompact(idt, []jose.SignatureAlgorithm{jose.ES256})
	require.NoError(tb, err)
	var m map[string]any
	require.NoError(tb, json.Unmarshal(b.UnsafePayloadWithoutVerification(), &m))
	return m
}

func dcBackends() []backend { return backends() }

// TestDC_SameDevice: the wallet-presentation path B end to end over real
// HTTP, memory and Redis, with DPoP: challenge with an openid4vp:// request,
// the wallet fetches the signed request, posts an encrypted response and
// is sent back to the app's openid4vp_redirect_uri with a response_code;
// the app posts it and gets our code, whose ID token carries the derived
// subject, the mapped claims, amr pop and the rule's acr.
func TestDC_SameDevice(t *testing.T) {
	for _, b := range dcBackends() {
		t.Run(b.name, func(t *testing.T) {
			e := newDCEnv(t, dcEnvOptions{store: b.store(t)})
			a := e.app(t, "demo-app")
			ch := a.initial(t, "login_hint", "wallet", "dc_api", "false", "openid4vp_flow_type", "same_device", "openid4vp_redirect_uri", dcReturn)
			requireDCChallenge(t, ch, "same_device")
			require.Equal(t, "digital_credentials", ch.s("type"))
			require.True(t, strings.HasPrefix(ch.s("credentials_request"), "openid4vp://?"), ch.s("credentials_request"))
			ans, err := e.wallet.Present(context.Background(), ch.s("credentials_request"))
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, ans.Status, string(ans.Body))
			ru, err := url.Parse(ans.RedirectURI)
			require.NoError(t, err)
			require.Equal(t, dcReturn, ru.Scheme+"://"+ru.Host+ru.Path)
			rc := ru.Query().Get("response_code")
			require.GreaterOrEqual(t, len(rc), 22)
			done := a.post(t, url.Values{"auth_session": {ch.s("auth_session")}, "response_code": {rc}})
			require.Equal(t, http.StatusOK, done.status, string(done.raw))
			code := done.s("authorization_code")
			require.NotEmpty(t, code)
			// The code is issued once: the same answer again is refused.
			again := a.post(t, url.Values{"auth_session": {ch.s("auth_session")}, "response_code": {rc}})
			require.Equal(t, "invalid_session", again.s("error"))
			claims := idClaims(t, a.exchange(t, code))
			require.True(t, strings.HasPrefix(claims["sub"].(string), "dc."), claims["sub"])
			require.NotContains(t, claims["sub"], "pid-4711")
			require.Equal(t, "Erika", claims["given_name"])
			require.Equal(t, "Mustermann", claims["family_name"])
			require.NotContains(t, claims, "birthdate")
			require.Equal(t, []any{"pop"}, claims["amr"])
			require.Equal(t, "urn:fedas:acr:wallet", claims["acr"])
		})
	}
}

// TestDC_CrossDevice: path C: the client polls with its auth_session
// alone; pending keeps the same auth_session, polling faster than interval
// gets slow_down with interval+5, and once the wallet (on another device)
// has posted, the next poll gets the code.
func TestDC_CrossDevice(t *testing.T) {
	for _, b := range dcBackends() {
		t.Run(b.name, func(t *testing.T) {
			e := newDCEnv(t, dcEnvOptions{store: b.store(t)})
			a := e.app(t, "demo-app")
			ch := a.initial(t, "login_hint", "wallet", "openid4vp_flow_type", "cross_device")
			requireDCChallenge(t, ch, "cross_device")
			require.Equal(t, float64(5), ch.m["interval"])
			as := ch.s("auth_session")
			poll := func() dcAnswer { return a.post(t, url.Values{"auth_session": {as}}) }
			fast := poll()
			require.Equal(t, http.StatusForbidden, fast.status, string(fast.raw))
			require.Equal(t, "slow_down", fast.s("status"))
			require.Equal(t, float64(10), fast.m["interval"])
			require.Equal(t, as, fast.s("auth_session"))
			e.clock.Advance(11 * time.Second)
			p := poll()
			require.Equal(t, "pending", p.s("status"), string(p.raw))
			require.Equal(t, "insufficient_authorization", p.s("error"))
			require.Equal(t, as, p.s("auth_session"))
			ans, err := e.wallet.Present(context.Background(), ch.s("credentials_request"))
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, ans.Status)
			require.Empty(t, ans.RedirectURI, "no redirect across devices (OpenID4VP §14.2)")
			e.clock.Advance(11 * time.Second)
			done := poll()
			require.Equal(t, http.StatusOK, done.status, string(done.raw))
			require.NotEmpty(t, done.s("authorization_code"))
			idClaims(t, a.exchange(t, done.s("authorization_code")))
		})
	}
}

// TestDC_DCAPI: path A: the request is the JSON text the platform takes;
// the client forwards what the platform returned, as the encrypted
// response or as a vp_token object in a JSON body; the audience is
// origin:<registered origin>, and another origin is refused.
func TestDC_DCAPI(t *testing.T) {
	for _, b := range dcBackends() {
		t.Run(b.name, func(t *testing.T) {
			e := newDCEnv(t, dcEnvOptions{store: b.store(t), x5c: true})
			run := func(origin string, send func(a *dcApp, as string, data []byte) dcAnswer) dcAnswer {
				a := e.app(t, "demo-app")
				ch := a.initial(t, "login_hint", "wallet", "dc_api", "true")
				requireDCChallenge(t, ch, "dc_api")
				var req map[string]any
				require.NoError(t, json.Unmarshal([]byte(ch.s("credentials_request")), &req), ch.s("credentials_request"))
				data, err := e.wallet.DCAPI(ch.s("credentials_request"), origin)
				require.NoError(t, err)
				return send(a, ch.s("auth_session"), data)
			}
			asJSON := func(a *dcApp, as string, data []byte) dcAnswer {
				var m map[string]json.RawMessage
				require.NoError(t, json.Unmarshal(data, &m))
				m["auth_session"], _ = json.Marshal(as)
				b, _ := json.Marshal(m)
				return a.post(t, nil, string(b))
			}
			ok := run(dcOrigin, asJSON)
			require.Equal(t, http.StatusOK, ok.status, string(ok.raw))
			require.NotEmpty(t, ok.s("authorization_code"))
			// A wallet refuses a request for another origin (expected_origins);
			// a KB-JWT whose aud is not origin:<registered origin> is refused.
			_, err := e.wallet.DCAPI(e.app(t, "demo-app").initial(t, "login_hint", "wallet", "dc_api", "true").s("credentials_request"), "https://evil.example")
			require.ErrorIs(t, err, dctest.ErrOrigin)
			e.wallet.Knobs.WrongAud = true
			bad := run(dcOrigin, asJSON)
			e.wallet.Knobs.WrongAud = false
			require.Equal(t, http.StatusBadRequest, bad.status, string(bad.raw))
			require.Equal(t, "access_denied", bad.s("error"))
			// The encrypted response posted as a form member.
			asForm := func(a *dcApp, as string, data []byte) dcAnswer {
				var m map[string]string
				require.NoError(t, json.Unmarshal(data, &m))
				return a.post(t, url.Values{"auth_session": {as}, "response": {m["response"]}})
			}
			ok2 := run(dcOrigin, asForm)
			require.Equal(t, http.StatusOK, ok2.status, string(ok2.raw))
		})
	}
}

// TestDC_Race50: fifty concurrent posts of one response_code with its
// auth_session yield exactly one authorization code.
func TestDC_Race50(t *testing.T) {
	e := newDCEnv(t, dcEnvOptions{})
	a := e.app(t, "demo-app")
	ch := a.initial(t, "login_hint", "wallet", "openid4vp_flow_type", "same_device", "openid4vp_redirect_uri", dcReturn)
	ans, err := e.wallet.Present(context.Background(), ch.s("credentials_request"))
	require.NoError(t, err)
	ru, _ := url.Parse(ans.RedirectURI)
	rc := ru.Query().Get("response_code")
	var mu sync.Mutex
	codes, wg := 0, sync.WaitGroup{}
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := a.post(t, url.Values{"auth_session": {ch.s("auth_session")}, "response_code": {rc}})
			if r.s("authorization_code") != "" {
				mu.Lock()
				codes++
				mu.Unlock()
			} else {
				require.Equal(t, "invalid_session", r.s("error"), string(r.raw))
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 1, codes)
}

// TestDC_EndpointsOff: without an internal verifier the wallet endpoints
// answer 404 not_found in an RFC 6749 body, on every method they take.
func TestDC_EndpointsOff(t *testing.T) {
	in := start(t, nil)
	for _, r := range []struct{ method, path string }{{http.MethodGet, "/dc/request/AAAAAAAAAAAAAAAAAAAAAA"}, {http.MethodPost, "/dc/request/AAAAAAAAAAAAAAAAAAAAAA"}, {http.MethodPost, "/dc/response"}} {
		req, err := http.NewRequest(r.method, in.URL+r.path, strings.NewReader("state=x"))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		got := do(t, req)
		require.Equal(t, http.StatusNotFound, got.status, r.path)
		require.Equal(t, "not_found", got.str("error"))
		require.Equal(t, "no-store", got.header.Get("Cache-Control"))
	}
}

// TestDC_CrossDeviceNeedsDPoP: a cross-device request whose session would
// not be bound to a DPoP key is refused (its polls would carry a bearer
// auth_session that, copied, collects the user's code), unless the client
// opts out with cross_device_without_dpop; the other paths do not need it.
func TestDC_CrossDeviceNeedsDPoP(t *testing.T) {
	e := newDCEnv(t, dcEnvOptions{edit: func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "dc-draft00" {
				c.Clients[i].DigitalCredentials.CrossDeviceWithoutDPoP = true
			}
		}
	}})
	bare := e.app(t, "demo-app")
	bare.key = nil
	r := bare.initial(t, "login_hint", "wallet", "openid4vp_flow_type", "cross_device")
	require.Equal(t, http.StatusBadRequest, r.status, string(r.raw))
	require.Equal(t, "invalid_request", r.s("error"))
	require.Empty(t, r.s("auth_session"))
	same := bare.initial(t, "login_hint", "wallet", "openid4vp_flow_type", "same_device", "openid4vp_redirect_uri", dcReturn)
	requireDCChallenge(t, same, "same_device")
	optOut := e.app(t, "dc-draft00")
	optOut.key = nil
	oc := optOut.initial(t, "login_hint", "wallet", "openid4vp_flow_type", "cross_device")
	require.Equal(t, http.StatusForbidden, oc.status, string(oc.raw))
	require.Equal(t, "digital_credentials_required", oc.s("type"))
}

// TestDC_ClientRules: a client's own rules (live policy, like the rest of
// the client) ask it for a presentation where no global rule does; its
// login_hint names the method, and other clients are unaffected.
func TestDC_ClientRules(t *testing.T) {
	e := newDCEnv(t, dcEnvOptions{edit: func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "demo-app" {
				c.Clients[i].DigitalCredentials.Rules = []config.DCRule{{LoginHint: "id-card", Query: "pid", ACR: "urn:fedas:acr:id-card"}}
			}
		}
	}})
	a := e.app(t, "demo-app")
	ch := a.initial(t, "login_hint", "id-card", "openid4vp_flow_type", "same_device", "openid4vp_redirect_uri", dcReturn)
	requireDCChallenge(t, ch, "same_device")
	ans, err := e.wallet.Present(context.Background(), ch.s("credentials_request"))
	require.NoError(t, err)
	ru, _ := url.Parse(ans.RedirectURI)
	done := a.post(t, url.Values{"auth_session": {ch.s("auth_session")}, "response_code": {ru.Query().Get("response_code")}})
	require.Equal(t, http.StatusOK, done.status, string(done.raw))
	require.Equal(t, "urn:fedas:acr:id-card", idClaims(t, a.exchange(t, done.s("authorization_code")))["acr"])
	// Another client's login_hint id-card is a username: the password step.
	other := e.app(t, "dc-draft00")
	r := other.initial(t, "login_hint", "id-card")
	require.Equal(t, http.StatusForbidden, r.status, string(r.raw))
	ch2, _ := r.m["challenge"].(map[string]any)
	require.Equal(t, "password", ch2["type"], string(r.raw))
}
