// Package euditest is an in-process fake of the EUDI reference verifier
// endpoint's transaction API (docs/protocol.md "Digital credentials") on a real 127.0.0.1 listener, for tests of dc/external and,
// later, of the server with an external verifier.
//
// Verifier API: POST /ui/presentations, GET /ui/presentations/{id}
// [?response_code=]. Wallet API: POST|GET /wallet/request.jwt/{request_id}
// (a request object signed with oid4vp.SignRequest under a generated x5c
// test chain, fetchable once, echoing wallet_nonce) and POST
// /wallet/direct_post (direct_post.jwt, decrypted with
// oid4vp.DecryptResponse; first response wins).
//
// The fake deliberately does NOT verify presentations: it relays whatever
// the wallet posted, so the adapter's own re-verification is what a test
// exercises. Knobs make it misbehave: a tampered vp_token, a forced status
// (500s), slow answers (bounded by the request context), another
// transaction's response, and a nonce of its own in the request object.
//
// Test support only: it makes no security promises.
package euditest

import (
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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fedas/fedas/dc/oid4vp"
)

// Options configure a Server.
type Options struct {
	// Token, when set, is the bearer token the Verifier API requires
	// (401 otherwise).
	Token string
	// Now is the clock of request objects (default time.Now).
	Now func() time.Time
}

// Init is one recorded POST /ui/presentations body.
type Init struct {
	Type             string            `json:"type"`
	DCQLQuery        json.RawMessage   `json:"dcql_query"`
	Nonce            string            `json:"nonce"`
	ResponseMode     string            `json:"response_mode"`
	JARMode          string            `json:"jar_mode"`
	RequestURIMethod string            `json:"request_uri_method"`
	RedirectTemplate string            `json:"wallet_response_redirect_uri_template"`
	TransactionData  []json.RawMessage `json:"transaction_data"`
}

// Server is the fake. Its knobs are safe for concurrent use.
type Server struct {
	// URL is the Verifier API base (plain http://127.0.0.1:port, as an
	// internal service); WalletURL the Wallet API base (https: OpenID4VP
	// needs an https response_uri). Wallets use WalletClient.
	URL, WalletURL string
	// Signer signs the request objects; ClientID is its x509_hash client_id.
	Signer   oid4vp.Signer
	ClientID string

	o         Options
	srv, wsrv *httptest.Server

	mu       sync.Mutex
	txs      map[string]*tx // transaction_id →
	byReq    map[string]*tx // request id (= state) →
	last     *tx            // most recent submitted
	inits    []Init
	auths    []string
	tamper   func(map[string][]string)
	status   int
	delay    time.Duration
	swap     bool
	nonceFix string
}

type tx struct {
	id, reqID   string
	init        Init
	key         *oid4vp.ResponseKey
	fetched     bool
	submitted   bool
	vpToken     map[string][]string
	walletError string
	code        string
}

// New starts a Server on 127.0.0.1; it stops at test cleanup.
func New(tb testing.TB, o Options) *Server {
	tb.Helper()
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{o: o, txs: map[string]*tx{}, byReq: map[string]*tx{}}
	s.Signer = testSigner(tb, o.Now())
	s.ClientID = oid4vp.X509HashClientID(s.Signer.Chain[0])
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ui/presentations", s.verifierAPI(s.initTx))
	mux.HandleFunc("GET /ui/presentations/{id}", s.verifierAPI(s.getResponse))
	wmux := http.NewServeMux()
	wmux.HandleFunc("/wallet/request.jwt/{rid}", s.requestObject)
	wmux.HandleFunc("POST /wallet/direct_post", s.directPost)
	s.srv = httptest.NewServer(mux)
	s.wsrv = httptest.NewTLSServer(wmux)
	s.URL, s.WalletURL = s.srv.URL, s.wsrv.URL
	tb.Cleanup(s.srv.Close)
	tb.Cleanup(s.wsrv.Close)
	return s
}

// WalletClient is an http.Client that trusts the Wallet API's test
// certificate.
func (s *Server) WalletClient() *http.Client { return s.wsrv.Client() }

// Close stops the Verifier API listener now (a "verifier down" test).
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// SetTamper rewrites the vp_token of every wallet response served (nil: off).
func (s *Server) SetTamper(f func(vp map[string][]string)) { s.mu.Lock(); s.tamper = f; s.mu.Unlock() }

// SetStatus makes every Verifier API call answer this status (0: off).
func (s *Server) SetStatus(code int) { s.mu.Lock(); s.status = code; s.mu.Unlock() }

// SetDelay holds every Verifier API answer for d, or until the caller
// gives up (the request context), whichever is first.
func (s *Server) SetDelay(d time.Duration) { s.mu.Lock(); s.delay = d; s.mu.Unlock() }

// SetSwapTransaction answers a wallet-response GET with the most recent
// submitted response of another transaction (no response_code check).
func (s *Server) SetSwapTransaction(on bool) { s.mu.Lock(); s.swap = on; s.mu.Unlock() }

// SetNonce puts this nonce into request objects instead of the one the
// caller sent (a verifier that ignores the frontend's nonce).
func (s *Server) SetNonce(n string) { s.mu.Lock(); s.nonceFix = n; s.mu.Unlock() }

// Inits returns the recorded init bodies.
func (s *Server) Inits() []Init {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Init(nil), s.inits...)
}

// Authorizations returns the Authorization headers of Verifier API calls.
func (s *Server) Authorizations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auths...)
}

// TransactionIDs returns every transaction_id handed out.
func (s *Server) TransactionIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id := range s.txs {
		ids = append(ids, id)
	}
	return ids
}

func (s *Server) verifierAPI(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.auths = append(s.auths, r.Header.Get("Authorization"))
		status, delay := s.status, s.delay
		s.mu.Unlock()
		if delay > 0 {
			if delay > time.Minute {
				delay = time.Minute
			}
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if status != 0 {
			http.Error(w, "forced", status)
			return
		}
		if s.o.Token != "" && r.Header.Get("Authorization") != "Bearer "+s.o.Token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

func (s *Server) initTx(w http.ResponseWriter, r *http.Request) {
	var in Init
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 256<<10))
	if err := dec.Decode(&in); err != nil || in.Type != "vp_token" || len(in.DCQLQuery) == 0 || in.Nonce == "" ||
		in.ResponseMode != oid4vp.ModeDirectPostJWT || in.JARMode != "by_reference" || in.RequestURIMethod != "post" {
		http.Error(w, "invalid init", http.StatusBadRequest)
		return
	}
	if in.RedirectTemplate != "" && strings.Count(in.RedirectTemplate, "{RESPONSE_CODE}") != 1 {
		http.Error(w, "invalid template", http.StatusBadRequest)
		return
	}
	key, err := oid4vp.NewResponseKey()
	if err != nil {
		http.Error(w, "key", http.StatusInternalServerError)
		return
	}
	t := &tx{id: random(32), reqID: random(32), init: in, key: key}
	s.mu.Lock()
	s.inits = append(s.inits, in)
	s.txs[t.id] = t
	s.byReq[t.reqID] = t
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{
		"transaction_id":     t.id,
		"client_id":          s.ClientID,
		"request_uri":        s.WalletURL + "/wallet/request.jwt/" + t.reqID,
		"request_uri_method": "post",
	})
}

func (s *Server) requestObject(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "method", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	_ = r.ParseForm()
	s.mu.Lock()
	t := s.byReq[r.PathValue("rid")]
	if t == nil || t.fetched {
		s.mu.Unlock()
		http.Error(w, "unknown or used request", http.StatusBadRequest)
		return
	}
	t.fetched = true
	nonce := t.init.Nonce
	if s.nonceFix != "" {
		nonce = s.nonceFix
	}
	s.mu.Unlock()
	var td []string
	for _, o := range t.init.TransactionData {
		td = append(td, base64.RawURLEncoding.EncodeToString(o))
	}
	jar, err := oid4vp.SignRequest(oid4vp.RequestParams{
		ResponseMode: oid4vp.ModeDirectPostJWT, ResponseURI: s.WalletURL + "/wallet/direct_post",
		Nonce: nonce, State: t.reqID, DCQLQuery: t.init.DCQLQuery, EncryptionKey: t.key,
		TransactionData: td, WalletNonce: r.PostForm.Get("wallet_nonce"), Now: s.o.Now,
	}, s.Signer)
	if err != nil {
		http.Error(w, "sign: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/oauth-authz-req+jwt")
	_, _ = w.Write([]byte(jar))
}

func (s *Server) directPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 256<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "form", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	t := s.byReq[r.PostForm.Get("state")]
	if t == nil && r.PostForm.Get("state") == "" {
		// direct_post.jwt carries state inside the JWE only (OpenID4VP
		// 1.0 §8.3.1): find the transaction by the kid the wallet echoed.
		if kid := oid4vp.KeyID(r.PostForm.Get("response")); kid != "" {
			for _, c := range s.txs {
				if c.key.KID() == kid {
					t = c
				}
			}
		}
	}
	s.mu.Unlock()
	if t == nil {
		http.Error(w, "unknown state", http.StatusBadRequest)
		return
	}
	resp, err := oid4vp.DecryptResponse(r.PostForm.Get("response"), t.key, oid4vp.ExpectedResponse{State: t.reqID})
	var we *oid4vp.WalletError
	if err != nil && !errors.As(err, &we) {
		http.Error(w, "bad response", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.submitted {
		http.Error(w, "already submitted", http.StatusBadRequest)
		return
	}
	t.submitted = true
	if we != nil {
		t.walletError = we.Code
	} else {
		t.vpToken = resp.VPToken
	}
	s.last = t
	if t.init.RedirectTemplate == "" {
		writeJSON(w, http.StatusOK, map[string]any{})
		return
	}
	t.code = random(16)
	writeJSON(w, http.StatusOK, map[string]string{
		"redirect_uri": strings.Replace(t.init.RedirectTemplate, "{RESPONSE_CODE}", t.code, 1),
	})
}

func (s *Server) getResponse(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.txs[r.PathValue("id")]
	if s.swap {
		if s.last == nil || s.last == t {
			http.Error(w, "nothing to swap", http.StatusBadRequest)
			return
		}
		t = s.last
	} else {
		switch {
		case t == nil:
			http.Error(w, "not found", http.StatusNotFound)
			return
		case !t.submitted:
			http.Error(w, "not submitted", http.StatusBadRequest)
			return
		case r.URL.Query().Get("response_code") != t.code:
			http.Error(w, "response_code mismatch", http.StatusBadRequest)
			return
		}
	}
	if t.walletError != "" {
		writeJSON(w, http.StatusOK, map[string]string{"error": t.walletError})
		return
	}
	vp := map[string][]string{}
	for k, v := range t.vpToken {
		vp[k] = append([]string(nil), v...)
	}
	if s.tamper != nil {
		s.tamper(vp)
	}
	writeJSON(w, http.StatusOK, map[string]any{"vp_token": vp})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// testSigner makes a CA and a P-256 leaf valid around now.
func testSigner(tb testing.TB, now time.Time) oid4vp.Signer {
	tb.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "euditest ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		tb.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "euditest verifier"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		DNSNames: []string{"verifier.example"}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		tb.Fatal(err)
	}
	return oid4vp.Signer{Key: key, Chain: []*x509.Certificate{leaf, ca}}
}
