package verifier

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/dc"
	"github.com/fedas/fedas/dc/dcql"
	"github.com/fedas/fedas/dc/oid4vp"
	"github.com/fedas/fedas/dc/sdjwt"
	"github.com/fedas/fedas/dc/sdjwt/sdjwttest"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
)

const (
	testIss    = "https://issuer.example"
	testVCT    = "urn:eudi:pid:1"
	testOrigin = "android:apk-key-hash:abc123"
	testQuery  = `{"credentials":[{"id":"pid","format":"dc+sd-jwt","meta":{"vct_values":["urn:eudi:pid:1"]},"claims":[{"path":["given_name"]}]}]}`
	// secretClaim must never be stored or returned.
	secretClaim = "SECRET-PAN-4711"
)

var (
	t0        = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	issuerKey = mustKey()
	holderKey = mustKey()
)

func mustKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// clock is a settable fixed clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock               { c := &clock{}; c.set(t0); return c }
func (c *clock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) add(d time.Duration) { c.set(c.now().Add(d)) }

func testSigner(tb testing.TB) oid4vp.Signer {
	tb.Helper()
	caKey, key := mustKey(), mustKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(tb, err)
	ca, _ := x509.ParseCertificate(caDER)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "verifier"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, DNSNames: []string{"127.0.0.1"}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	require.NoError(tb, err)
	leaf, _ := x509.ParseCertificate(leafDER)
	return oid4vp.Signer{Key: key, Chain: []*x509.Certificate{leaf, ca}}
}

// env is one verifier behind a real HTTPS server on 127.0.0.1.
type env struct {
	v     *Internal
	srv   *httptest.Server
	clock *clock
	store storage.DCStore
}

// newEnv starts a verifier on store (memory when nil); mod tunes Options.
func newEnv(tb testing.TB, store storage.DCStore, mod func(*Options)) *env {
	tb.Helper()
	if store == nil {
		m := memory.New()
		tb.Cleanup(func() { _ = m.Close() })
		store = m
	}
	e := &env{clock: newClock(), store: store}
	mux := http.NewServeMux()
	e.srv = httptest.NewUnstartedServer(mux)
	e.srv.StartTLS()
	tb.Cleanup(e.srv.Close)
	o := Options{
		Store: store, Signer: testSigner(tb), BaseURL: e.srv.URL, InteractiveURL: e.srv.URL + "/native-authorization",
		Issuers: []dc.TrustedIssuer{{Issuer: testIss, Keys: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &issuerKey.PublicKey, KeyID: "i1", Algorithm: "ES256"}}},
			VCTValues: []string{testVCT}, SubjectClaim: dcql.Path{"sub"}}},
		KeepClaims: []string{"given_name"},
		Now:        e.clock.now,
	}
	if mod != nil {
		mod(&o)
	}
	v, err := New(o)
	require.NoError(tb, err)
	e.v = v
	mux.Handle("/dc/request/", v.RequestHandler())
	mux.Handle("/dc/response", v.ResponseHandler())
	return e
}

func query(tb testing.TB) *dcql.Query {
	q, err := dcql.Parse([]byte(testQuery))
	require.NoError(tb, err)
	return q
}

// begin starts a transaction of flow with sensible defaults.
func (e *env) begin(tb testing.TB, flow dc.Flow, mod func(*dc.BeginRequest)) dc.Transaction {
	tb.Helper()
	r := dc.BeginRequest{Flow: flow, Query: query(tb), Binding: "family-digest"}
	switch flow {
	case dc.FlowSameDevice:
		r.RedirectURITemplate = "https://app.example/dc-return"
	case dc.FlowDCAPI:
		r.Origins = []string{testOrigin}
	}
	if mod != nil {
		mod(&r)
	}
	tx, err := e.v.Begin(tb.Context(), r)
	require.NoError(tb, err)
	return tx
}

// wallet is a simulated wallet: what it presents and how (evil knobs).
type wallet struct {
	// tdHashes overrides the transaction_data_hashes (nil: computed from
	// the request).
	tdHashes []string
	noTD     bool
	aud      string // overrides the KB-JWT aud
	nonce    string // overrides the KB-JWT nonce
	state    *string
	kid      string
	iat      time.Time // KB-JWT iat (zero: t0)
}

// requestObject is the decoded request the wallet fetched.
type requestObject struct {
	oid4vp.RequestObject
	jwk jose.JSONWebKey
}

func decodeJAR(tb testing.TB, jar string) requestObject {
	tb.Helper()
	parts := strings.Split(jar, ".")
	require.Len(tb, parts, 3)
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(tb, err)
	var ro requestObject
	require.NoError(tb, json.Unmarshal(b, &ro.RequestObject))
	require.Len(tb, ro.ClientMetadata.JWKS.Keys, 1)
	ro.jwk = ro.ClientMetadata.JWKS.Keys[0]
	return ro
}

// parseWalletURL returns the request_uri of a wallet URL.
func parseWalletURL(tb testing.TB, s string) (clientID, requestURI string) {
	tb.Helper()
	u, err := url.Parse(s)
	require.NoError(tb, err)
	require.Equal(tb, "openid4vp", u.Scheme)
	require.Equal(tb, "post", u.Query().Get("request_uri_method"))
	return u.Query().Get("client_id"), u.Query().Get("request_uri")
}

type httpResult struct {
	status int
	header http.Header
	body   string
}

func (r httpResult) json(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	require.NoError(tb, json.Unmarshal([]byte(r.body), &m), r.body)
	return m
}

func (e *env) post(tb testing.TB, u string, form url.Values) httpResult {
	tb.Helper()
	resp, err := e.srv.Client().PostForm(u, form)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{resp.StatusCode, resp.Header, string(b)}
}

// fetch is the wallet's POST to the request_uri.
func (e *env) fetch(tb testing.TB, requestURI, walletNonce string) httpResult {
	return e.post(tb, requestURI, url.Values{"wallet_nonce": {walletNonce}, "wallet_metadata": {`{"vp_formats_supported":{}}`}})
}

// present builds the vp_token for a request (KB aud = aud).
func (w wallet) present(tb testing.TB, ro oid4vp.RequestObject, aud string) map[string][]string {
	tb.Helper()
	claims := map[string]any{"iss": testIss, "vct": testVCT, "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix(),
		"sub": "user-1", "given_name": "Erika", "personal_administrative_number": secretClaim}
	cred, err := sdjwttest.Issue(claims, []string{"given_name", "personal_administrative_number"},
		jose.SigningKey{Algorithm: jose.ES256, Key: issuerKey},
		sdjwttest.Options{HolderKey: &holderKey.PublicKey, Header: map[jose.HeaderKey]any{"kid": "i1"}})
	require.NoError(tb, err)
	var disc []string
	for _, d := range cred.Disclosures {
		disc = append(disc, d.Encoded)
	}
	sdPart := sdjwttest.Combine(cred.JWT, disc, "")
	if w.aud != "" {
		aud = w.aud
	}
	nonce := ro.Nonce
	if w.nonce != "" {
		nonce = w.nonce
	}
	iat := t0
	if !w.iat.IsZero() {
		iat = w.iat
	}
	kb := sdjwttest.KBClaims(sdPart, nonce, aud, iat)
	hashes := w.tdHashes
	if hashes == nil && !w.noTD {
		for _, s := range ro.TransactionData {
			h := sha256.Sum256([]byte(s))
			hashes = append(hashes, base64.RawURLEncoding.EncodeToString(h[:]))
		}
	}
	if len(hashes) > 0 {
		kb["transaction_data_hashes"] = hashes
	}
	kbJWT, err := sdjwttest.SignKB(jose.SigningKey{Algorithm: jose.ES256, Key: holderKey}, sdjwt.TypKB, kb)
	require.NoError(tb, err)
	return map[string][]string{"pid": {sdPart + kbJWT}}
}

// encrypt encrypts payload to the request's client_metadata key.
func (w wallet) encrypt(tb testing.TB, ro requestObject, payload map[string]any) string {
	tb.Helper()
	kid := ro.jwk.KeyID
	if w.kid != "" {
		kid = w.kid
	}
	enc, err := jose.NewEncrypter(jose.A128GCM, jose.Recipient{Algorithm: jose.ECDH_ES, Key: ro.jwk.Key, KeyID: kid}, nil)
	require.NoError(tb, err)
	b, err := json.Marshal(payload)
	require.NoError(tb, err)
	obj, err := enc.Encrypt(b)
	require.NoError(tb, err)
	s, err := obj.CompactSerialize()
	require.NoError(tb, err)
	return s
}

// respond builds the encrypted direct_post.jwt form for a fetched request.
func (w wallet) respond(tb testing.TB, ro requestObject) url.Values {
	tb.Helper()
	state := ro.State
	if w.state != nil {
		state = *w.state
	}
	payload := map[string]any{"vp_token": w.present(tb, ro.RequestObject, ro.ClientID)}
	if state != "" {
		payload["state"] = state
	}
	return url.Values{"response": {w.encrypt(tb, ro, payload)}}
}

// inlineRequest decodes Transaction.Request of a DC API or interactive tx.
func inlineRequest(tb testing.TB, tx dc.Transaction, flow dc.Flow) requestObject {
	tb.Helper()
	if flow == dc.FlowInteractive {
		var m struct{ Request string }
		require.NoError(tb, json.Unmarshal([]byte(tx.Request), &m))
		return decodeJAR(tb, m.Request)
	}
	var m struct {
		Requests []struct {
			Protocol string
			Data     struct{ Request string }
		}
	}
	require.NoError(tb, json.Unmarshal([]byte(tx.Request), &m))
	require.Len(tb, m.Requests, 1)
	require.Equal(tb, "openid4vp-v1-signed", m.Requests[0].Protocol)
	return decodeJAR(tb, m.Requests[0].Data.Request)
}
