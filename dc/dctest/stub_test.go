package dctest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/dc"
	"github.com/fedas/fedas/dc/dcql"
	"github.com/fedas/fedas/dc/dctest"
	"github.com/fedas/fedas/dc/oid4vp"
	"github.com/fedas/fedas/dc/sdjwt/sdjwttest"
)

// The stub verifier below stands in for dc/verifier (built elsewhere): it
// uses only the dc/oid4vp building blocks and dc.VerifyVPToken, with a
// fixed clock, so the refusals the table expects come from those checks.

var fixedNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func now() time.Time { return fixedNow }

const (
	pidQuery = `{"credentials":[{"id":"pid","format":"dc+sd-jwt","meta":{"vct_values":["urn:eudi:pid:1"]},` +
		`"claims":[{"path":["given_name"]},{"path":["family_name"]}]}]}`
	origin = "https://app.example"
)

var (
	// errTD stands in for dc.CheckTransactionData's refusal.
	errTD = errors.New("stub: transaction_data_hashes mismatch")
	// errUnencrypted: a plain vp_token where an encrypted response was
	// required (direct_post.jwt, dc_api.jwt).
	errUnencrypted = errors.New("stub: response not encrypted")
	// errDenied: the wallet answered error=access_denied (§8.5).
	errDenied = errors.New("stub: wallet denied")
)

// signer is a CA-issued P-256 leaf for the verifier's x509_hash client_id.
func signer(tb testing.TB) (oid4vp.Signer, *x509.CertPool) {
	tb.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "verifier ca"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: fixedNow.Add(-time.Hour), NotAfter: fixedNow.Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "verifier"}, DNSNames: []string{"as.example"},
		KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: fixedNow.Add(-time.Hour), NotAfter: fixedNow.Add(time.Hour)}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	leafCert, _ := x509.ParseCertificate(leafDER)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return oid4vp.Signer{Key: key, Chain: []*x509.Certificate{leafCert, caCert}}, pool
}

// stub is one verifier transaction: a request_uri fetchable once, a
// response_uri answered once, and the verification outcome.
type stub struct {
	tb       testing.TB
	srv      *httptest.Server
	signer   oid4vp.Signer
	roots    *x509.CertPool
	clientID string
	key      *oid4vp.ResponseKey
	nonce    string
	state    string
	query    string
	td       []string
	iss      *dctest.Issuer
	// noEcho omits wallet_nonce from the request object.
	noEcho bool
	// aud overrides the expected KB-JWT aud (default clientID).
	aud string
	// answer is the 200 body to the wallet (default a same-device
	// redirect_uri).
	answer string

	mu       sync.Mutex
	fetched  bool
	answered bool
	err      error
	creds    []dc.VerifiedCredential
}

func newStub(tb testing.TB, iss *dctest.Issuer, query string, td []string) *stub {
	tb.Helper()
	s := &stub{tb: tb, iss: iss, query: query, td: td}
	s.signer, s.roots = signer(tb)
	s.clientID = oid4vp.X509HashClientID(s.signer.Chain[0])
	var err error
	if s.key, err = oid4vp.NewResponseKey(); err != nil {
		tb.Fatal(err)
	}
	if s.nonce, err = oid4vp.NewNonce(); err != nil {
		tb.Fatal(err)
	}
	if s.state, err = oid4vp.NewNonce(); err != nil {
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/dc/request/1", s.serveRequest)
	mux.HandleFunc("/dc/response", s.serveResponse)
	s.srv = httptest.NewTLSServer(mux)
	tb.Cleanup(s.srv.Close)
	return s
}

// walletURL is the same/cross-device wallet URL (docs/protocol.md "Digital credentials").
func (s *stub) walletURL() string {
	return "openid4vp://?" + url.Values{"client_id": {s.clientID}, "request_uri": {s.srv.URL + "/dc/request/1"},
		"request_uri_method": {"post"}}.Encode()
}

func (s *stub) params(mode string) oid4vp.RequestParams {
	p := oid4vp.RequestParams{ResponseMode: mode, Nonce: s.nonce, State: s.state, DCQLQuery: json.RawMessage(s.query),
		EncryptionKey: s.key, TransactionData: s.td, Now: now}
	if mode == oid4vp.ModeDirectPostJWT {
		p.ResponseURI = s.srv.URL + "/dc/response"
	} else {
		p.ExpectedOrigins = []string{origin}
	}
	return p
}

func (s *stub) serveRequest(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	again := s.fetched
	s.fetched = true
	s.mu.Unlock()
	if again {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	p := s.params(oid4vp.ModeDirectPostJWT)
	if !s.noEcho {
		p.WalletNonce = r.PostFormValue("wallet_nonce")
	}
	jar, err := oid4vp.SignRequest(p, s.signer)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/oauth-authz-req+jwt")
	_, _ = w.Write([]byte(jar))
}

func (s *stub) serveResponse(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	again := s.answered
	s.answered = true
	s.mu.Unlock()
	if again {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	var err error
	switch {
	case r.PostFormValue("error") != "":
		err = errDenied
		if r.PostFormValue("state") != s.state {
			err = oid4vp.ErrState
		}
	case r.PostFormValue("response") == "":
		err = errUnencrypted
	default:
		aud := s.clientID
		if s.aud != "" {
			aud = s.aud
		}
		err = s.verify(r.PostFormValue("response"), aud)
	}
	s.finish(err)
	w.Header().Set("Content-Type", "application/json")
	if err != nil && !errors.Is(err, errDenied) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_request"}`))
		return
	}
	body := s.answer
	if body == "" {
		body = `{"redirect_uri":"https://app.example/cb?response_code=rc-1"}`
	}
	_, _ = w.Write([]byte(body))
}

func (s *stub) finish(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *stub) result() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// verify is the response validation of the stub: DecryptResponse, then
// VerifyVPToken with the expected aud, then the transaction data hashes.
func (s *stub) verify(jwe, aud string) error {
	resp, err := oid4vp.DecryptResponse(jwe, s.key, oid4vp.ExpectedResponse{State: s.state})
	var we *oid4vp.WalletError
	if errors.As(err, &we) && we.Code == "access_denied" {
		return errDenied
	}
	if err != nil {
		return err
	}
	q, err := dcql.Parse([]byte(s.query))
	if err != nil {
		return err
	}
	status, err := s.iss.StatusClient(now)
	if err != nil {
		return err
	}
	creds, err := dc.VerifyVPToken(context.Background(), resp.VPToken, dc.Policy{Issuers: []dc.TrustedIssuer{s.iss.TrustedIssuer()},
		Query: q, Nonce: s.nonce, Audience: aud, Now: now, KeepClaims: []string{"given_name"}}, status)
	if err != nil {
		return err
	}
	if err := checkTD(creds, s.td); err != nil {
		return err
	}
	s.mu.Lock()
	s.creds = creds
	s.mu.Unlock()
	return nil
}

// verifyData verifies DC API / interactive data ({"response":"<JWE>"}).
func (s *stub) verifyData(data []byte, aud string) error {
	var d map[string]json.RawMessage
	if err := json.Unmarshal(data, &d); err != nil {
		return err
	}
	var jwe string
	if err := json.Unmarshal(d["response"], &jwe); err != nil || jwe == "" {
		return errUnencrypted
	}
	return s.verify(jwe, aud)
}

// checkTD is OpenID4VP 1.0 App. B.3.3.1 as dc.CheckTransactionData will do
// it: every credential named by an entry carries one sha-256 hash per entry
// over the exact string sent, compared as a set.
func checkTD(creds []dc.VerifiedCredential, sent []string) error {
	for _, c := range creds {
		want := map[string]bool{}
		for _, e := range sent {
			b, _ := base64.RawURLEncoding.DecodeString(e)
			var m struct {
				IDs []string `json:"credential_ids"`
			}
			_ = json.Unmarshal(b, &m)
			for _, id := range m.IDs {
				if id == c.QueryID {
					want[dctest.TDHash(e)] = true
				}
			}
		}
		if len(c.TransactionDataHashes) != len(want) {
			return errTD
		}
		for _, h := range c.TransactionDataHashes {
			if !want[h] {
				return errTD
			}
			delete(want, h)
		}
	}
	return nil
}

// paymentTD is a transaction_data entry for the pid query (App. B.3.3).
func paymentTD(tb testing.TB) string {
	tb.Helper()
	b, err := json.Marshal(map[string]any{"type": "urn:eudi:sca:payment:1", "credential_ids": []string{"pid"},
		"transaction_data_hashes_alg": []string{"sha-256"}, "payload": map[string]any{"amount": "42.00", "currency": "EUR"}})
	if err != nil {
		tb.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// unsignedURL is a redirect_uri: request passed by value in the wallet URL
// (OpenID4VP 1.0 §5.9.3; tests only); the stub then expects that client_id
// as the KB-JWT aud.
func unsignedURL(tb testing.TB, s *stub) string {
	tb.Helper()
	p := s.params(oid4vp.ModeDirectPostJWT)
	p.ClientID = oid4vp.PrefixRedirectURI + p.ResponseURI
	ro, err := oid4vp.UnsignedRequest(p)
	if err != nil {
		tb.Fatal(err)
	}
	s.aud = ro.ClientID
	cm, _ := json.Marshal(ro.ClientMetadata)
	q := url.Values{"client_id": {ro.ClientID}, "response_type": {ro.ResponseType}, "response_mode": {ro.ResponseMode},
		"response_uri": {ro.ResponseURI}, "nonce": {ro.Nonce}, "state": {ro.State}, "dcql_query": {string(ro.DCQLQuery)},
		"client_metadata": {string(cm)}}
	return "haip-vp://?" + q.Encode()
}

// retype re-signs a request object's payload with typ JWT instead of
// oauth-authz-req+jwt (§5), keeping the x5c chain and the signer.
func retype(tb testing.TB, jar string, s *stub) string {
	tb.Helper()
	parts := strings.Split(jar, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatal(err)
	}
	x5c := make([]string, len(s.signer.Chain))
	for i, c := range s.signer.Chain {
		x5c[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		tb.Fatal(err)
	}
	out, err := sdjwttest.Sign(jose.SigningKey{Algorithm: jose.ES256, Key: s.signer.Key}, map[jose.HeaderKey]any{jose.HeaderType: "JWT", "x5c": x5c}, m)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func mustHolder(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
