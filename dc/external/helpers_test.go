package external_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/dc"
	"github.com/fedas/fedas/dc/dcql"
	"github.com/fedas/fedas/dc/external"
	"github.com/fedas/fedas/dc/external/euditest"
	"github.com/fedas/fedas/dc/oid4vp"
	"github.com/fedas/fedas/dc/sdjwt"
	"github.com/fedas/fedas/dc/sdjwt/sdjwttest"
)

const (
	issuer   = "https://issuer.example"
	vctPID   = "urn:eudi:pid:1"
	pidQuery = `{"credentials":[{"id":"pid","format":"dc+sd-jwt","meta":{"vct_values":["urn:eudi:pid:1"]},"claims":[{"path":["given_name"]}]}]}`
	token    = "s3cr3t-bearer-token"
)

var (
	issuerKey = mustKey()
	holderKey = mustKey()
	sealKey   = []byte("0123456789abcdef0123456789abcdef")
)

func mustKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// clock is a fixed, settable clock shared by the adapter and the fake.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)} }

type env struct {
	clk  *clock
	fake *euditest.Server
	v    *external.Verifier
}

func newEnv(tb testing.TB, mod func(*external.Options)) *env {
	tb.Helper()
	clk := newClock()
	fake := euditest.New(tb, euditest.Options{Token: token, Now: clk.Now})
	o := external.Options{
		BaseURL: fake.URL, AllowLoopback: true, BearerToken: token, SealKey: sealKey,
		Issuers: []dc.TrustedIssuer{{
			Issuer: issuer, Keys: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &issuerKey.PublicKey, KeyID: "i1", Algorithm: "ES256", Use: "sig"}}},
			VCTValues: []string{vctPID}, SubjectClaim: dcql.Path{"sub"},
		}},
		KeepClaims: []string{"given_name"},
		Now:        clk.Now,
		Timeout:    2 * time.Second,
	}
	if mod != nil {
		mod(&o)
	}
	v, err := external.New(o)
	if err != nil {
		tb.Fatal(err)
	}
	return &env{clk: clk, fake: fake, v: v}
}

func pidQ(tb testing.TB) *dcql.Query {
	tb.Helper()
	q, err := dcql.Parse([]byte(pidQuery))
	if err != nil {
		tb.Fatal(err)
	}
	return q
}

// wallet is the holder side, with evil knobs.
type wallet struct {
	nonce     string   // KB-JWT nonce instead of the request's
	aud       string   // KB-JWT aud instead of the client_id
	tdHashes  []string // instead of the correct hashes
	walletErr string   // post error=… instead of a vp_token
}

// run follows the wallet URL: fetch the request object (POST, wallet_nonce),
// check its x5c client_id, present, encrypt, post; it returns the
// redirect_uri the service answered ("" for cross device).
func (w wallet) run(tb testing.TB, e *env, walletURL string) string {
	tb.Helper()
	u, err := url.Parse(walletURL)
	if err != nil || u.Scheme != "openid4vp" {
		tb.Fatalf("wallet URL %q", walletURL)
	}
	q := u.Query()
	if q.Get("request_uri_method") != "post" {
		tb.Fatalf("request_uri_method %q", q.Get("request_uri_method"))
	}
	resp, err := e.fake.WalletClient().PostForm(q.Get("request_uri"), url.Values{"wallet_nonce": {"wn-123"}})
	if err != nil {
		tb.Fatal(err)
	}
	jar, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		tb.Fatalf("request_uri: %d %s", resp.StatusCode, jar)
	}
	jws, err := jose.ParseSignedCompact(string(jar), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		tb.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(e.fake.Signer.Chain[len(e.fake.Signer.Chain)-1])
	chains, err := jws.Signatures[0].Protected.Certificates(x509.VerifyOptions{Roots: roots, CurrentTime: e.clk.Now()})
	if err != nil {
		tb.Fatal(err)
	}
	payload, err := jws.Verify(chains[0][0].PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	var ro oid4vp.RequestObject
	if err := json.Unmarshal(payload, &ro); err != nil {
		tb.Fatal(err)
	}
	if ro.ClientID != q.Get("client_id") || ro.ClientID != oid4vp.X509HashClientID(chains[0][0]) || ro.WalletNonce != "wn-123" {
		tb.Fatalf("request object client_id %q / wallet_nonce %q", ro.ClientID, ro.WalletNonce)
	}
	body := map[string]any{"state": ro.State}
	if w.walletErr != "" {
		body["error"] = w.walletErr
	} else {
		body["vp_token"] = map[string][]string{"pid": {w.present(tb, e, ro)}}
	}
	jwe := encrypt(tb, ro.ClientMetadata.JWKS.Keys[0], body)
	resp, err = e.fake.WalletClient().PostForm(ro.ResponseURI, url.Values{"response": {jwe}, "state": {ro.State}})
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct {
		RedirectURI string `json:"redirect_uri"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&ans) != nil {
		tb.Fatalf("response_uri: %d", resp.StatusCode)
	}
	return ans.RedirectURI
}

func (w wallet) present(tb testing.TB, e *env, ro oid4vp.RequestObject) string {
	tb.Helper()
	now := e.clk.Now()
	claims := map[string]any{"iss": issuer, "vct": vctPID, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"sub": "user-1", "given_name": "Erika"}
	c, err := sdjwttest.Issue(claims, []string{"given_name"}, jose.SigningKey{Algorithm: jose.ES256, Key: issuerKey},
		sdjwttest.Options{HolderKey: &holderKey.PublicKey, Header: map[jose.HeaderKey]any{"kid": "i1"}})
	if err != nil {
		tb.Fatal(err)
	}
	nonce, aud := ro.Nonce, ro.ClientID
	if w.nonce != "" {
		nonce = w.nonce
	}
	if w.aud != "" {
		aud = w.aud
	}
	var enc []string
	for _, d := range c.Disclosures {
		enc = append(enc, d.Encoded)
	}
	sdPart := sdjwttest.Combine(c.JWT, enc, "")
	kbc := sdjwttest.KBClaims(sdPart, nonce, aud, now)
	hashes := w.tdHashes
	if hashes == nil {
		for _, td := range ro.TransactionData {
			sum := sha256.Sum256([]byte(td))
			hashes = append(hashes, base64.RawURLEncoding.EncodeToString(sum[:]))
		}
	}
	if len(hashes) > 0 {
		kbc["transaction_data_hashes"] = hashes
		kbc["transaction_data_hashes_alg"] = "sha-256"
	}
	kb, err := sdjwttest.SignKB(jose.SigningKey{Algorithm: jose.ES256, Key: holderKey}, sdjwt.TypKB, kbc)
	if err != nil {
		tb.Fatal(err)
	}
	return sdPart + kb
}

func encrypt(tb testing.TB, k jose.JSONWebKey, payload any) string {
	tb.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		tb.Fatal(err)
	}
	enc, err := jose.NewEncrypter(jose.A128GCM, jose.Recipient{Algorithm: jose.ECDH_ES, Key: k.Key, KeyID: k.KeyID}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	obj, err := enc.Encrypt(b)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// responseCode extracts response_code from the redirect_uri.
func responseCode(tb testing.TB, redirect string) string {
	tb.Helper()
	u, err := url.Parse(redirect)
	if err != nil || !strings.HasPrefix(redirect, "https://app.example/cb?") {
		tb.Fatalf("redirect_uri %q", redirect)
	}
	c := u.Query().Get("response_code")
	if c == "" {
		tb.Fatalf("no response_code in %q", redirect)
	}
	return c
}

// paymentTD is a compact transaction_data entry for credential "pid".
func paymentTD() string {
	return base64.RawURLEncoding.EncodeToString([]byte(`{"type":"urn:eudi:sca:payment:1","credential_ids":["pid"],"transaction_data_hashes_alg":["sha-256"],"payload":{"payee":"A&B Shop <x>","amount":"12.00"}}`))
}
