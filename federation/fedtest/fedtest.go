// Package fedtest is a mock downstream authorization server for tests of
// fedas's federation (federation draft §4; RFC 9126; RFC 8414). A Mock runs
// an httptest server on 127.0.0.1 that publishes RFC 8414 metadata, takes
// pushed authorization requests, turns a request_uri presented at its
// native endpoint into an authorization code without any user interaction,
// plays a standard browser authorization endpoint (RFC 6749 §4.1; RFC
// 9126 §4) whose simulated user signs in at once, redeems codes at its
// token endpoint for an access token and an ES256 ID token signed by the
// key at its jwks_uri, and records every request it receives so tests can
// inspect what fedas sent. The token endpoint requires the redirect_uri of
// the authorization request, when it had one (RFC 6749 §4.1.3), and
// answers token_type DPoP to a request carrying a DPoP proof.
//
// Every endpoint has a Mode (see SetMode) to make it misbehave: down,
// slow, garbage, redirects, oversized bodies, protocol errors. The ID
// token can be made invalid in each way a client must detect (wrong iss,
// aud or nonce, alg none, unknown kid, expired, bad signature).
//
// By default the mock authenticates nothing; it only records
// client_assertion (DecodeAssertion reads it). With Options.ClientKeys it
// checks private_key_jwt assertions the way a strict AS does: signature,
// iss = sub = client_id, aud exactly its own issuer as a JSON string,
// unexpired, jti unused.
package fedtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Endpoint names one endpoint of the mock.
type Endpoint string

// The mock's endpoints.
const (
	Metadata Endpoint = "metadata"
	PAR      Endpoint = "par"
	Native   Endpoint = "native"
	Token    Endpoint = "token"
	JWKS     Endpoint = "jwks"
	// Authorize is the browser authorization endpoint (RFC 6749 §3.1).
	Authorize Endpoint = "authorize"
)

// Paths of the endpoints, relative to the issuer.
const (
	PathMetadata = "/.well-known/oauth-authorization-server"
	PathPAR      = "/par"
	PathNative   = "/native"
	PathToken    = "/token"
	PathJWKS     = "/jwks"
	// PathAuthorize is the authorization endpoint.
	PathAuthorize = "/authorize"
)

// RequestURIPrefix is the RFC 9126 §2.2 URN prefix of request_uri values.
const RequestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// AssertionType is the RFC 7523 §2.2 client_assertion_type.
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Mode makes an endpoint misbehave. Not every mode applies to every
// endpoint; an inapplicable mode behaves like OK.
type Mode string

// Modes.
const (
	// OK answers normally.
	OK Mode = ""
	// Down reads the request, then drops the connection without an answer.
	Down Mode = "down"
	// Slow waits Options.Sleep (or until the caller gives up) before
	// answering normally.
	Slow Mode = "slow"
	// Garbage answers 200 text/html.
	Garbage Mode = "garbage"
	// NonJSON answers the success status with application/json that is
	// not JSON.
	NonJSON Mode = "non_json"
	// Redirect answers 302 with Location: Options.RedirectTo.
	Redirect Mode = "redirect"
	// Huge answers the success status with a 10 MB JSON-looking body,
	// chunked (no Content-Length).
	Huge Mode = "huge"
	// ServerError answers 500 server_error.
	ServerError Mode = "server_error"
	// InvalidClient answers 400 invalid_client (PAR, token).
	InvalidClient Mode = "invalid_client"
	// InvalidGrant answers 400 invalid_grant (token).
	InvalidGrant Mode = "invalid_grant"
	// NoRequestURI answers 201 without request_uri (PAR).
	NoRequestURI Mode = "no_request_uri"
	// NonURN answers 201 with an https request_uri (PAR).
	NonURN Mode = "non_urn"
	// BadExpiresIn answers 201 with expires_in 0 (PAR).
	BadExpiresIn Mode = "bad_expires_in"
)

// HugeSize is the body size of Huge answers.
const HugeSize = 10 << 20

// LeakedDetail is the error_description of the mock's protocol errors, so
// tests can assert it is never passed on.
const LeakedDetail = "fedtest-internal-detail <script>alert(1)</script>"

// IDTokenOptions shape the ID token of the token endpoint. Zero values
// give a valid token.
type IDTokenOptions struct {
	// Omit leaves id_token out of the token response.
	Omit bool
	// Issuer overrides iss (default: the mock's issuer).
	Issuer string
	// Audience overrides aud (default: the client_id of the code).
	Audience string
	// Nonce overrides nonce (default: the nonce of the pushed request).
	Nonce string
	// OmitNonce leaves nonce out.
	OmitNonce bool
	// Alg "none" makes an unsigned token; anything else signs ES256.
	Alg string
	// KeyID overrides the kid header (an unknown kid).
	KeyID string
	// RandomKeyID gives every token a fresh random kid that no JWKS
	// holds (a flood of unknown kids).
	RandomKeyID bool
	// OtherKey signs with a key that is not in the JWKS, under its kid.
	OtherKey bool
	// Expired sets iat and exp in the past.
	Expired bool
	// Subject overrides sub (default "user-1").
	Subject string
	// ACR sets acr (default: absent).
	ACR string
	// AuthTime overrides auth_time (default: iat).
	AuthTime time.Time
	// OmitAuthTime leaves auth_time out.
	OmitAuthTime bool
	// Claims are merged into the payload last.
	Claims map[string]any
}

// Options configure a Mock. All can be changed later with Configure.
type Options struct {
	// NoNative omits the native endpoint from the metadata.
	NoNative bool
	// NativeName is the metadata member naming the native endpoint:
	// "authorization_challenge_endpoint" (default, FiPA-04 §8) or
	// "native_authorization_endpoint" (federation draft §4.1).
	NativeName string
	// NoPAR omits pushed_authorization_request_endpoint.
	NoPAR bool
	// NoDPoP omits dpop_signing_alg_values_supported: a server that does
	// not know DPoP (RFC 9449 §5.1).
	NoDPoP bool
	// Issuer is the issuer the metadata publishes (default: the mock's
	// URL). Set it to publish a wrong issuer.
	Issuer string
	// PAREndpoint, TokenEndpoint, NativeEndpoint and JWKSURI override the
	// endpoint URLs the metadata publishes (e.g. another AS's endpoint, or
	// a refused port).
	PAREndpoint, TokenEndpoint, NativeEndpoint, JWKSURI string
	// Modes set endpoint modes at start.
	Modes map[Endpoint]Mode
	// Sleep is the delay of Slow (default 2s, cut short when the caller
	// gives up).
	Sleep time.Duration
	// RedirectTo is the Location of Redirect answers.
	RedirectTo string
	// ExpiresIn is the PAR expires_in (default 60).
	ExpiresIn int
	// NoPKCECheck skips the code_verifier check at the token endpoint.
	NoPKCECheck bool
	// NoAuthorize omits authorization_endpoint from the metadata (the
	// endpoint itself keeps answering).
	NoAuthorize bool
	// AuthorizationEndpoint overrides the authorization_endpoint URL the
	// metadata publishes.
	AuthorizationEndpoint string
	// IssParameter advertises
	// authorization_response_iss_parameter_supported (RFC 9207 §3).
	IssParameter bool
	// AuthorizeIss overrides the iss of authorization responses (a wrong
	// issuer; default the mock's issuer, RFC 9207 §2).
	AuthorizeIss string
	// AuthorizeOmitIss leaves iss out of authorization responses.
	AuthorizeOmitIss bool
	// AuthorizeError makes the authorization endpoint redirect with this
	// error (e.g. "access_denied") instead of a code (RFC 6749 §4.1.2.1).
	AuthorizeError string
	// ClientKeys, when set, makes the PAR and token endpoints require a
	// private_key_jwt assertion verified with these keys (401
	// invalid_client otherwise).
	ClientKeys *jose.JSONWebKeySet
	// TokenType is the token_type of token responses. Default: "DPoP"
	// when the token request carries a DPoP proof (RFC 9449 §5), else
	// "Bearer". Set "Bearer" to answer Bearer even when DPoP was used.
	TokenType string
	// IDToken shapes the ID token.
	IDToken IDTokenOptions
}

// Recorded is one request the mock received.
type Recorded struct {
	Endpoint Endpoint
	Method   string
	// URL is the request URI (path and query).
	URL    string
	Header http.Header
	// Form is the parsed urlencoded body (nil for GET).
	Form url.Values
	Body string
	// Status is the status the mock answered, 0 if it dropped the
	// connection or has not answered yet.
	Status int
	At     time.Time
}

type pushed struct {
	form    url.Values
	expires time.Time
}

// Mock is a running mock downstream AS.
type Mock struct {
	// URL is the mock's issuer identifier (http://127.0.0.1:port).
	URL string

	srv   *httptest.Server
	other *ecdsa.PrivateKey

	// keyMu guards the signing key, its kid and the retired keys still
	// published (RotateKey).
	keyMu   sync.Mutex
	key     *ecdsa.PrivateKey
	kid     string
	retired []jose.JSONWebKey

	counts map[Endpoint]*atomic.Int64

	mu      sync.Mutex
	opts    Options
	modes   map[Endpoint]Mode
	records map[Endpoint][]*Recorded
	pars    map[string]pushed
	codes   map[string]url.Values
	jtis    map[string]bool
}

var mockSeq atomic.Int64

var endpoints = []Endpoint{Metadata, PAR, Native, Token, JWKS, Authorize}

// Start starts a mock on 127.0.0.1; it stops when the test ends.
func Start(tb testing.TB, o Options) *Mock {
	tb.Helper()
	m := &Mock{
		counts:  map[Endpoint]*atomic.Int64{},
		modes:   map[Endpoint]Mode{},
		records: map[Endpoint][]*Recorded{},
		pars:    map[string]pushed{},
		codes:   map[string]url.Values{},
		jtis:    map[string]bool{},
		kid:     fmt.Sprintf("fedtest-%d", mockSeq.Add(1)),
	}
	for _, e := range endpoints {
		m.counts[e] = new(atomic.Int64)
	}
	var err error
	if m.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		tb.Fatalf("fedtest: %v", err)
	}
	if m.other, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		tb.Fatalf("fedtest: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(PathMetadata, m.handle(Metadata, m.metadata))
	mux.HandleFunc(PathPAR, m.handle(PAR, m.par))
	mux.HandleFunc(PathNative, m.handle(Native, m.native))
	mux.HandleFunc(PathToken, m.handle(Token, m.token))
	mux.HandleFunc(PathJWKS, m.handle(JWKS, m.jwks))
	mux.HandleFunc(PathAuthorize, m.handle(Authorize, m.authorize))
	m.srv = httptest.NewServer(mux)
	m.URL = m.srv.URL
	m.Configure(func(opts *Options) { *opts = o })
	tb.Cleanup(m.Close)
	return m
}

// Close stops the mock; later requests are refused.
func (m *Mock) Close() {
	m.srv.CloseClientConnections()
	m.srv.Close()
}

// Configure edits the options under the mock's lock.
func (m *Mock) Configure(edit func(*Options)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	edit(&m.opts)
	for e, md := range m.opts.Modes {
		m.modes[e] = md
	}
	m.opts.Modes = nil
}

// SetMode sets an endpoint's mode.
func (m *Mock) SetMode(e Endpoint, md Mode) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.modes[e] = md
}

// SetIDToken replaces the ID token options.
func (m *Mock) SetIDToken(o IDTokenOptions) {
	m.Configure(func(opts *Options) { opts.IDToken = o })
}

// Count is how many requests reached an endpoint.
func (m *Mock) Count(e Endpoint) int64 { return m.counts[e].Load() }

// Total is how many requests reached the mock at all.
func (m *Mock) Total() int64 {
	var n int64
	for _, c := range m.counts {
		n += c.Load()
	}
	return n
}

// Requests returns copies of the requests an endpoint received, in order.
func (m *Mock) Requests(e Endpoint) []Recorded {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Recorded, 0, len(m.records[e]))
	for _, r := range m.records[e] {
		c := *r
		c.Header = r.Header.Clone()
		if r.Form != nil {
			c.Form = cloneValues(r.Form)
		}
		out = append(out, c)
	}
	return out
}

// All returns every recorded request of every endpoint.
func (m *Mock) All() []Recorded {
	var out []Recorded
	for _, e := range endpoints {
		out = append(out, m.Requests(e)...)
	}
	return out
}

// Endpoint returns the URL of one of the mock's own endpoints.
func (m *Mock) Endpoint(e Endpoint) string {
	switch e {
	case Metadata:
		return m.URL + PathMetadata
	case PAR:
		return m.URL + PathPAR
	case Native:
		return m.URL + PathNative
	case Token:
		return m.URL + PathToken
	case JWKS:
		return m.URL + PathJWKS
	case Authorize:
		return m.URL + PathAuthorize
	}
	return ""
}

// PublicJWKS is the key set the mock publishes: the key it signs ID
// tokens with, and the retired keys RotateKey kept.
func (m *Mock) PublicJWKS() jose.JSONWebKeySet {
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	keys := []jose.JSONWebKey{{Key: &m.key.PublicKey, KeyID: m.kid, Algorithm: string(jose.ES256), Use: "sig"}}
	return jose.JSONWebKeySet{Keys: append(keys, m.retired...)}
}

// Kid is the kid the mock signs ID tokens with now.
func (m *Mock) Kid() string {
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	return m.kid
}

// RotateKey makes the mock sign with a new key under a new kid, published
// from now on (a downstream that rotates without publishing the key
// ahead). With keepOld the old key stays published; without, it is gone.
// It returns the new kid.
func (m *Mock) RotateKey(tb testing.TB, keepOld bool) string {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("fedtest: %v", err)
	}
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
	if keepOld {
		m.retired = append(m.retired, jose.JSONWebKey{Key: &m.key.PublicKey, KeyID: m.kid, Algorithm: string(jose.ES256), Use: "sig"})
	}
	m.key, m.kid = k, fmt.Sprintf("fedtest-%d", mockSeq.Add(1))
	return m.kid
}

// MintCode stores an authorization code as if the pushed request form had
// been authorized at the native endpoint, and returns it.
func (m *Mock) MintCode(form url.Values) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	code := "fedtest-code-" + random(24)
	m.codes[code] = cloneValues(form)
	return code
}

func (m *Mock) handle(e Endpoint, h func(w http.ResponseWriter, r *http.Request, rec *Recorded, md Mode, o Options)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m.counts[e].Add(1)
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		rec := &Recorded{Endpoint: e, Method: r.Method, URL: r.URL.RequestURI(), Header: r.Header.Clone(), Body: string(body), At: time.Now()}
		if r.Method == http.MethodPost {
			rec.Form, _ = url.ParseQuery(string(body))
		}
		m.mu.Lock()
		m.records[e] = append(m.records[e], rec)
		md, o := m.modes[e], m.opts
		m.mu.Unlock()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			m.mu.Lock()
			rec.Status = sw.status
			m.mu.Unlock()
		}()
		switch md {
		case Down:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		case Slow:
			d := o.Sleep
			if d == 0 {
				d = 2 * time.Second
			}
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		case Garbage:
			sw.Header().Set("Content-Type", "text/html")
			sw.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(sw, "<html><body>Service temporarily moved</body></html>")
			return
		case Redirect:
			sw.Header().Set("Location", o.RedirectTo)
			sw.WriteHeader(http.StatusFound)
			return
		case ServerError:
			writeJSON(sw, http.StatusInternalServerError, map[string]string{"error": "server_error", "error_description": LeakedDetail})
			return
		case NonJSON, Huge:
			status := http.StatusOK
			if e == PAR {
				status = http.StatusCreated
			}
			sw.Header().Set("Content-Type", "application/json")
			sw.WriteHeader(status)
			if md == NonJSON {
				_, _ = io.WriteString(sw, `{"request_uri": "urn:ietf:params:oauth:request_uri:x", "access_token": `)
				return
			}
			writeHuge(sw)
			return
		}
		h(sw, r, rec, md, o)
	}
}

func writeHuge(w http.ResponseWriter) {
	_, _ = io.WriteString(w, `{"request_uri":"urn:ietf:params:oauth:request_uri:huge","expires_in":60,"access_token":"x","token_type":"Bearer","issuer":"x","pad":"`)
	chunk := []byte(strings.Repeat("A", 64<<10))
	f, _ := w.(http.Flusher)
	for n := 0; n < HugeSize; n += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			return
		}
		if f != nil {
			f.Flush()
		}
	}
	_, _ = io.WriteString(w, `"}`)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": LeakedDetail})
}

func (m *Mock) metadata(w http.ResponseWriter, r *http.Request, _ *Recorded, _ Mode, o Options) {
	if r.Method != http.MethodGet {
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request")
		return
	}
	pick := func(override string, e Endpoint) string {
		if override != "" {
			return override
		}
		return m.Endpoint(e)
	}
	md := map[string]any{
		"issuer":                                m.URL,
		"token_endpoint":                        pick(o.TokenEndpoint, Token),
		"jwks_uri":                              pick(o.JWKSURI, JWKS),
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"ES256", "PS256", "EdDSA"},
		"id_token_signing_alg_values_supported":            []string{"ES256"},
		"require_pushed_authorization_requests":            !o.NoPAR,
	}
	if !o.NoAuthorize {
		md["authorization_endpoint"] = pick(o.AuthorizationEndpoint, Authorize)
	}
	if o.IssParameter {
		md["authorization_response_iss_parameter_supported"] = true
	}
	if !o.NoDPoP {
		md["dpop_signing_alg_values_supported"] = []string{"ES256", "EdDSA"}
	}
	if o.Issuer != "" {
		md["issuer"] = o.Issuer
	}
	if !o.NoPAR {
		md["pushed_authorization_request_endpoint"] = pick(o.PAREndpoint, PAR)
	}
	if !o.NoNative {
		name := o.NativeName
		if name == "" {
			name = "authorization_challenge_endpoint"
		}
		md[name] = pick(o.NativeEndpoint, Native)
	}
	writeJSON(w, http.StatusOK, md)
}

func (m *Mock) jwks(w http.ResponseWriter, _ *http.Request, _ *Recorded, _ Mode, _ Options) {
	writeJSON(w, http.StatusOK, m.PublicJWKS())
}

func (m *Mock) par(w http.ResponseWriter, r *http.Request, rec *Recorded, md Mode, o Options) {
	form := rec.Form
	if r.Method != http.MethodPost || form == nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if o.ClientKeys != nil {
		if err := m.verifyAssertion(form, o.ClientKeys); err != nil {
			oauthError(w, http.StatusUnauthorized, "invalid_client")
			return
		}
	}
	switch md {
	case InvalidClient:
		oauthError(w, http.StatusBadRequest, "invalid_client")
		return
	case NoRequestURI:
		writeJSON(w, http.StatusCreated, map[string]any{"expires_in": 60})
		return
	case NonURN:
		writeJSON(w, http.StatusCreated, map[string]any{"request_uri": "https://evil.example/ru", "expires_in": 60})
		return
	case BadExpiresIn:
		writeJSON(w, http.StatusCreated, map[string]any{"request_uri": RequestURIPrefix + random(16), "expires_in": 0})
		return
	}
	if form.Get("request_uri") != "" || form.Get("client_id") == "" || form.Get("response_type") != "code" {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	exp := o.ExpiresIn
	if exp == 0 {
		exp = 60
	}
	ru := RequestURIPrefix + random(24)
	m.mu.Lock()
	m.pars[ru] = pushed{form: cloneValues(form), expires: time.Now().Add(time.Duration(exp) * time.Second)}
	m.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"request_uri": ru, "expires_in": exp})
}

func (m *Mock) native(w http.ResponseWriter, r *http.Request, rec *Recorded, _ Mode, _ Options) {
	form := rec.Form
	if r.Method != http.MethodPost || form == nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	ru := form.Get("request_uri")
	m.mu.Lock()
	p, ok := m.pars[ru]
	delete(m.pars, ru)
	m.mu.Unlock()
	if !ok || time.Now().After(p.expires) || p.form.Get("client_id") != form.Get("client_id") {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	code := m.MintCode(p.form)
	writeJSON(w, http.StatusOK, map[string]string{"authorization_code": code})
}

// authorize is a browser authorization endpoint (RFC 6749 §4.1.1) whose
// user signs in at once. It takes client_id and the request_uri of a
// request pushed to the PAR endpoint (RFC 9126 §4), or the whole request in
// the query, and answers 303 to the request's redirect_uri with code, state
// and iss (RFC 9207 §2), or with Options.AuthorizeError instead of a code.
// Without a usable redirect_uri it answers 400 and redirects nowhere
// (RFC 6749 §4.1.2.1).
func (m *Mock) authorize(w http.ResponseWriter, r *http.Request, _ *Recorded, _ Mode, o Options) {
	if r.Method != http.MethodGet {
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request")
		return
	}
	q := r.URL.Query()
	req := q
	if ru := q.Get("request_uri"); ru != "" {
		m.mu.Lock()
		p, ok := m.pars[ru]
		delete(m.pars, ru) // one-time use (RFC 9126 §4)
		m.mu.Unlock()
		if !ok || time.Now().After(p.expires) || p.form.Get("client_id") != q.Get("client_id") {
			oauthError(w, http.StatusBadRequest, "invalid_request")
			return
		}
		req = p.form
	} else if !o.NoPAR {
		// The metadata says require_pushed_authorization_requests.
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	redirect, err := url.Parse(req.Get("redirect_uri"))
	if err != nil || !redirect.IsAbs() || req.Get("client_id") == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	resp := redirect.Query()
	if o.AuthorizeError != "" {
		resp.Set("error", o.AuthorizeError)
	} else if req.Get("response_type") != "code" {
		resp.Set("error", "unsupported_response_type")
	} else {
		resp.Set("code", m.MintCode(req))
	}
	if st := req.Get("state"); st != "" {
		resp.Set("state", st)
	}
	if !o.AuthorizeOmitIss {
		iss := m.URL
		if o.AuthorizeIss != "" {
			iss = o.AuthorizeIss
		}
		resp.Set("iss", iss)
	}
	redirect.RawQuery = resp.Encode()
	w.Header().Set("Location", redirect.String())
	w.WriteHeader(http.StatusSeeOther)
}

func (m *Mock) token(w http.ResponseWriter, r *http.Request, rec *Recorded, md Mode, o Options) {
	form := rec.Form
	if r.Method != http.MethodPost || form == nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	if o.ClientKeys != nil {
		if err := m.verifyAssertion(form, o.ClientKeys); err != nil {
			oauthError(w, http.StatusUnauthorized, "invalid_client")
			return
		}
	}
	switch md {
	case InvalidClient:
		oauthError(w, http.StatusBadRequest, "invalid_client")
		return
	case InvalidGrant:
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	if form.Get("grant_type") != "authorization_code" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	code := form.Get("code")
	m.mu.Lock()
	pf, ok := m.codes[code]
	delete(m.codes, code) // single use, whatever follows
	m.mu.Unlock()
	if !ok {
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	if cid := form.Get("client_id"); cid != "" && cid != pf.Get("client_id") {
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	if !o.NoPKCECheck && pf.Get("code_challenge") != "" {
		sum := sha256.Sum256([]byte(form.Get("code_verifier")))
		if pf.Get("code_challenge_method") != "S256" || base64.RawURLEncoding.EncodeToString(sum[:]) != pf.Get("code_challenge") {
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
	}
	if ru := pf.Get("redirect_uri"); ru != "" && form.Get("redirect_uri") != ru {
		// RFC 6749 §4.1.3: identical to the authorization request's.
		oauthError(w, http.StatusBadRequest, "invalid_grant")
		return
	}
	resp := map[string]any{"access_token": "fedtest-at-" + random(24), "token_type": "Bearer", "expires_in": 300}
	if r.Header.Get("DPoP") != "" {
		resp["token_type"] = "DPoP"
	}
	if o.TokenType != "" {
		resp["token_type"] = o.TokenType
	}
	if !o.IDToken.Omit {
		idt, err := m.idToken(pf, o.IDToken)
		if err != nil {
			oauthError(w, http.StatusInternalServerError, "server_error")
			return
		}
		resp["id_token"] = idt
	}
	writeJSON(w, http.StatusOK, resp)
}

// IDToken builds an ID token for a pushed request form as the token
// endpoint would.
func (m *Mock) IDToken(pushedForm url.Values, o IDTokenOptions) (string, error) {
	return m.idToken(pushedForm, o)
}

func (m *Mock) idToken(pf url.Values, o IDTokenOptions) (string, error) {
	now := time.Now()
	iat := now
	if o.Expired {
		iat = now.Add(-time.Hour)
	}
	claims := map[string]any{
		"iss":       m.URL,
		"sub":       "user-1",
		"aud":       pf.Get("client_id"),
		"iat":       iat.Unix(),
		"exp":       iat.Add(5 * time.Minute).Unix(),
		"auth_time": iat.Unix(),
		"amr":       []string{"pwd"},
		"email":     "user-1@" + strings.TrimPrefix(m.URL, "http://"),
	}
	if n := pf.Get("nonce"); n != "" {
		claims["nonce"] = n
	}
	if o.Issuer != "" {
		claims["iss"] = o.Issuer
	}
	if o.Audience != "" {
		claims["aud"] = o.Audience
	}
	if o.Nonce != "" {
		claims["nonce"] = o.Nonce
	}
	if o.OmitNonce {
		delete(claims, "nonce")
	}
	if o.Subject != "" {
		claims["sub"] = o.Subject
	}
	if o.ACR != "" {
		claims["acr"] = o.ACR
	}
	if !o.AuthTime.IsZero() {
		claims["auth_time"] = o.AuthTime.Unix()
	}
	if o.OmitAuthTime {
		delete(claims, "auth_time")
	}
	for k, v := range o.Claims {
		claims[k] = v
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	m.keyMu.Lock()
	key, kid := m.key, m.kid
	m.keyMu.Unlock()
	if strings.EqualFold(o.Alg, "none") {
		head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"` + kid + `"}`))
		return head + "." + base64.RawURLEncoding.EncodeToString(payload) + ".", nil
	}
	if o.OtherKey {
		key = m.other
	}
	if o.KeyID != "" {
		kid = o.KeyID
	}
	if o.RandomKeyID {
		kid = "unknown-" + random(12)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// Assertion is a decoded (unverified) client assertion.
type Assertion struct {
	Header map[string]any
	Claims map[string]any
	// RawAud is the aud claim exactly as it appeared in the JSON.
	RawAud json.RawMessage
}

// Alg, Kid, Iss, Sub, Jti read the usual members.
func (a Assertion) Alg() string { s, _ := a.Header["alg"].(string); return s }

// Kid is the key ID header.
func (a Assertion) Kid() string { s, _ := a.Header["kid"].(string); return s }

// Str reads a string claim.
func (a Assertion) Str(name string) string { s, _ := a.Claims[name].(string); return s }

// Num reads a numeric claim.
func (a Assertion) Num(name string) int64 { f, _ := a.Claims[name].(float64); return int64(f) }

// AudString returns aud if it is a single JSON string.
func (a Assertion) AudString() (string, bool) {
	var s string
	if err := json.Unmarshal(a.RawAud, &s); err != nil {
		return "", false
	}
	return s, true
}

// DecodeAssertion decodes a compact JWS without verifying it.
func DecodeAssertion(compact string) (Assertion, error) {
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		return Assertion{}, errors.New("fedtest: not a compact JWS")
	}
	var a Assertion
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return a, err
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return a, err
	}
	if err := json.Unmarshal(hb, &a.Header); err != nil {
		return a, err
	}
	if err := json.Unmarshal(pb, &a.Claims); err != nil {
		return a, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(pb, &raw); err != nil {
		return a, err
	}
	a.RawAud = raw["aud"]
	return a, nil
}

// verifyAssertion checks a private_key_jwt assertion strictly (RFC 7523
// §3; RFC 9126 §2; rfc7523bis: aud is exactly our issuer, as a string).
func (m *Mock) verifyAssertion(form url.Values, keys *jose.JSONWebKeySet) error {
	if form.Get("client_assertion_type") != AssertionType {
		return errors.New("no jwt-bearer assertion")
	}
	raw := form.Get("client_assertion")
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.PS256, jose.EdDSA})
	if err != nil || len(tok.Headers) != 1 {
		return errors.New("malformed assertion")
	}
	ks := keys.Key(tok.Headers[0].KeyID)
	if len(ks) == 0 {
		return errors.New("unknown kid")
	}
	var c jwt.Claims
	if err := tok.Claims(ks[0].Public().Key, &c); err != nil {
		return err
	}
	a, err := DecodeAssertion(raw)
	if err != nil {
		return err
	}
	aud, ok := a.AudString()
	switch {
	case !ok || aud != m.URL:
		return errors.New("aud is not our issuer")
	case c.Issuer == "" || c.Issuer != c.Subject:
		return errors.New("iss/sub")
	case form.Get("client_id") != "" && form.Get("client_id") != c.Issuer:
		return errors.New("client_id")
	case c.Expiry == nil || time.Now().After(c.Expiry.Time()):
		return errors.New("expired")
	case c.ID == "":
		return errors.New("no jti")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.jtis[c.ID] {
		return errors.New("jti replayed")
	}
	m.jtis[c.ID] = true
	return nil
}

// Canary is a server that must never be contacted: it counts connections
// and requests.
type Canary struct {
	// URL is the canary's base URL.
	URL   string
	conns atomic.Int64
	reqs  atomic.Int64
}

// StartCanary starts a canary on 127.0.0.1; it stops when the test ends.
func StartCanary(tb testing.TB) *Canary {
	tb.Helper()
	c := &Canary{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		c.reqs.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.conns.Add(1)
		}
	}
	srv.Start()
	c.URL = srv.URL
	tb.Cleanup(srv.Close)
	return c
}

// Hits is the number of connections the canary accepted.
func (c *Canary) Hits() int64 { return c.conns.Load() }

// Requests is the number of HTTP requests the canary answered.
func (c *Canary) Requests() int64 { return c.reqs.Load() }

// RefusedURL returns an http URL on 127.0.0.1 where nothing listens.
func RefusedURL(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("fedtest: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
