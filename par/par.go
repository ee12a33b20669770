// Package par is the client side of Pushed Authorization Requests
// (RFC 9126): fedas uses it to push an authorization request to a downstream
// AS before answering a native client with "federate", and to redeem the
// code that downstream issues at its token endpoint (RFC 6749 §4.1.3).
//
// Everything a downstream returns is untrusted input. Bodies are read
// through a 64 KiB limit, the whole exchange (connect, headers and body)
// runs under one deadline, redirects are never followed (SSRF, SECURITY-RESULTS.md
// K05/D6), and error text from the downstream is sanitised and capped before
// it reaches a log. Failures come back as *Error; Temporary ones also match
// ErrUnavailable so callers can answer 503 temporarily_unavailable.
//
// The package is a leaf: it depends only on the standard library, go-jose
// and (optionally) zap.
package par

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/internal/jsonexact"
)

const (
	// RequestURIPrefix is the URN prefix RFC 9126 §2.2 defines for
	// request_uri values; we insist on it because the value ends up in the
	// federation_body we hand to the native client.
	RequestURIPrefix = "urn:ietf:params:oauth:request_uri:"
	// MaxResponseBytes bounds every downstream response body (SECURITY-RESULTS.md
	// D4): a PAR or token response is a few hundred bytes, so anything
	// larger is garbage or an attack on our memory.
	MaxResponseBytes = 64 << 10
	// DefaultTimeout is the whole-request deadline when Options.Timeout is
	// zero (SECURITY-RESULTS.md D2/D3: a stalled downstream must not hold a native
	// request for longer).
	DefaultTimeout = 3 * time.Second
	// MaxExpiresIn is the largest PAR expires_in we accept, in seconds.
	// RFC 9126 §2.2 suggests 5-600 s; a longer-lived request_uri is a
	// downstream misconfiguration we do not want to build flows on.
	MaxExpiresIn = 600

	maxRequestURILen  = 1024
	maxErrorCodeLen   = 64
	maxDescriptionLen = 200
)

// ErrUnavailable matches (errors.Is) every temporary failure: connection
// errors, timeouts, 5xx, 408/429, redirects and malformed responses. The
// caller answers 503 temporarily_unavailable with Retry-After (fedas
// decisions; RFC 6749 §4.1.2.1) and may open a circuit breaker.
var ErrUnavailable = errors.New("par: downstream temporarily unavailable")

// Error is the failure of one PAR (RFC 9126 §2.3) or token (RFC 6749 §5.2)
// request. Code and Description are safe to log but are never meant to be
// forwarded to a native client: a rejected push is our misconfiguration, not
// the client's, and maps to server_error upstream (SECURITY-RESULTS.md D5).
type Error struct {
	// Status is the downstream's HTTP status, or 0 when no response was
	// received or the request was never sent.
	Status int
	// Code is the RFC 6749 §5.2 "error" value the downstream sent, if it was
	// well formed; empty otherwise.
	Code string
	// Description is either our own explanation or the downstream's
	// error_description reduced to RFC 6749 §5.2 characters and capped at
	// 200 bytes, so a hostile downstream cannot inject into logs.
	Description string
	// Temporary reports that retrying later may succeed and that the
	// failure says nothing about the native client's request.
	Temporary bool

	cause error
}

// Error formats the failure for logs.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("par: ")
	if e.Temporary {
		b.WriteString("temporary: ")
	}
	if e.Status != 0 {
		b.WriteString("status ")
		b.WriteString(strconv.Itoa(e.Status))
		b.WriteString(": ")
	}
	if e.Code != "" {
		b.WriteString(e.Code)
		b.WriteString(": ")
	}
	b.WriteString(e.Description)
	if e.cause != nil {
		b.WriteString(": ")
		b.WriteString(e.cause.Error())
	}
	return b.String()
}

// Unwrap exposes the underlying cause (for instance
// context.DeadlineExceeded) to errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.cause }

// Is makes errors.Is(err, ErrUnavailable) true for temporary failures.
func (e *Error) Is(target error) bool { return target == ErrUnavailable && e.Temporary }

func temporary(status int, desc string, cause error) *Error {
	return &Error{Status: status, Description: desc, Temporary: true, cause: cause}
}

func permanent(desc string, cause error) *Error {
	return &Error{Description: desc, cause: cause}
}

// Options configures a Client for one downstream AS. All values come from
// trusted configuration and the downstream's validated metadata
// (RFC 8414 §3.3), never from a request.
type Options struct {
	// Issuer is the downstream's issuer identifier. It is the aud of every
	// client assertion (RFC 9126 §2), for the PAR and the token request.
	Issuer string
	// PAREndpoint is pushed_authorization_request_endpoint (RFC 9126 §5).
	// It may be empty for a client that only redeems codes (a browser
	// federation to a downstream without PAR, where the authorization
	// request travelled in the query); Push then fails without any request.
	PAREndpoint string
	// TokenEndpoint is token_endpoint (RFC 8414 §2).
	TokenEndpoint string
	// Auth authenticates us at both endpoints (RFC 9126 §2.1).
	Auth ClientAuth
	// RedirectURI, if set, is sent in the PAR and, identically, in the
	// token request (RFC 6749 §4.1.3). Leave empty unless the downstream
	// requires one (docs/decisions.md Q14).
	RedirectURI string
	// Timeout bounds each request end to end, body included. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// HTTPClient is optional. It is copied and its CheckRedirect replaced so
	// that redirects are never followed whatever the caller configured.
	// Without it the Client builds one on NewTransport.
	HTTPClient *http.Client
	// Logger, if set, receives one entry per failed request. Assertions,
	// secrets, codes and tokens are never logged.
	Logger *zap.Logger
	// DPoP, if set, binds the downstream's code to our key: the PAR carries
	// dpop_jkt (RFC 9449 §10.1) and the token request a proof for that key
	// (docs/decisions.md Q5), so a code intercepted on the device is useless.
	DPoP *dpop.Key
}

// Validate checks the options as New would, so that misconfiguration can
// fail at start-up. PAREndpoint may be empty (a token-only client).
// Endpoints must be https (RFC 6749 §3.2, RFC 9126 §2; plain
// http is accepted only on loopback, for tests) and the issuer must be an
// https URL without query or fragment (RFC 8414 §2).
func (o Options) Validate() error {
	if err := checkURL("issuer", o.Issuer); err != nil {
		return err
	}
	if u, _ := url.Parse(o.Issuer); u.RawQuery != "" || u.ForceQuery {
		return errors.New("par: issuer must not have a query")
	}
	if o.PAREndpoint != "" {
		if err := checkURL("PAR endpoint", o.PAREndpoint); err != nil {
			return err
		}
	}
	if err := checkURL("token endpoint", o.TokenEndpoint); err != nil {
		return err
	}
	if o.RedirectURI != "" {
		if u, err := url.Parse(o.RedirectURI); err != nil || !u.IsAbs() || u.Fragment != "" {
			return errors.New("par: redirect_uri must be an absolute URI without fragment")
		}
	}
	if o.Auth == nil {
		return errors.New("par: no client authentication configured")
	}
	if o.Timeout < 0 {
		return errors.New("par: negative timeout")
	}
	return nil
}

func checkURL(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || raw == "" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("par: %s %q is not an absolute URL without userinfo or fragment", what, raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if h := u.Hostname(); h == "localhost" || isLoopbackIP(h) {
			return nil
		}
	}
	return fmt.Errorf("par: %s %q must use https", what, raw)
}

func isLoopbackIP(h string) bool {
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Client talks to one downstream AS. It is safe for concurrent use; create
// one per downstream and keep it, so connections are reused
// (docs/performance.md trap 3).
type Client struct {
	issuer      string
	parURL      string
	tokenURL    string
	redirectURI string
	auth        ClientAuth
	timeout     time.Duration
	hc          *http.Client
	log         *zap.Logger
	dpop        *dpop.Key
	cfgErr      error
}

// New builds a Client (RFC 9126 §2). Invalid options do not panic: every
// call then fails with a non-temporary *Error; use Options.Validate to
// detect this at start-up.
func New(o Options) *Client {
	c := &Client{
		issuer:      o.Issuer,
		parURL:      o.PAREndpoint,
		tokenURL:    o.TokenEndpoint,
		redirectURI: o.RedirectURI,
		auth:        o.Auth,
		timeout:     o.Timeout,
		log:         o.Logger,
		dpop:        o.DPoP,
	}
	if err := o.Validate(); err != nil {
		c.cfgErr = permanent("invalid configuration", err)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	if o.HTTPClient != nil {
		hc := *o.HTTPClient
		hc.CheckRedirect = noRedirect
		if hc.Timeout > 0 {
			// post bounds each exchange, body read included, by a context
			// deadline of c.timeout; the Client's own Timeout would arm a
			// second timer and context per request (net/http
			// setRequestCancel). The shorter of the two is kept.
			c.timeout = min(c.timeout, hc.Timeout)
			hc.Timeout = 0
		}
		c.hc = &hc
	} else {
		c.hc = &http.Client{Transport: NewTransport(), CheckRedirect: noRedirect}
	}
	return c
}

// noRedirect stops net/http from following a 3xx: a downstream (or whoever
// controls its DNS) must not be able to make us POST client credentials to
// an arbitrary URL (SSRF, SECURITY-RESULTS.md K05/D6). The 3xx itself is then
// reported as a temporary failure.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// NewTransport returns the tuned transport the Client uses by default; share
// one per downstream between clients. Go's defaults keep only 2 idle
// connections per host, which under load cost a third of our federation
// throughput and thousands of TIME_WAIT sockets (docs/performance.md trap 3).
// Every phase has its own timeout so a stalled peer cannot hold a goroutine,
// and TLS below 1.2 is refused (FAPI 2.0 SP §5.2.1, SECURITY-RESULTS.md D7).
func NewTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           256,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    2 * time.Second,
		ResponseHeaderTimeout:  DefaultTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 16 << 10,
		TLSClientConfig:        tlsConfig(),
	}
}

// Request is what we push to a downstream (RFC 9126 §2.1). response_type is
// always "code" and code_challenge_method always S256 (RFC 9700 §2.1.1);
// request_uri is never sent (RFC 9126 §2.1).
type Request struct {
	// ClientID is our client_id at the downstream. Empty means the
	// ClientAuth's client_id; a different non-empty value is an error.
	ClientID string
	Scope    string
	// State and Nonce are fresh per federation hop (RFC 9700 §4.5.3).
	State     string
	Nonce     string
	ACRValues string
	// MaxAge, if set, must be >= 0 (OIDC Core §3.1.2.1, RFC 9470 §4).
	MaxAge *int
	// CodeChallenge is the S256 challenge from NewPKCE; required.
	CodeChallenge string
	// NativeCallbackURI is forwarded verbatim (ZFed-01 §4.2); the caller
	// has already matched it against the client's registration.
	NativeCallbackURI string
	// Extra carries further parameters such as authorization_details,
	// resource or dpop_jkt. It may not set any parameter this package
	// controls, nor request_uri.
	Extra url.Values
}

// Pushed is a successful PAR response (RFC 9126 §2.2).
type Pushed struct {
	// RequestURI is a urn:ietf:params:oauth:request_uri: URN.
	RequestURI string
	// ExpiresIn is the lifetime the downstream granted, 1 s to 600 s.
	ExpiresIn time.Duration
	// ExpiresAt is measured from before the request was sent, so it errs
	// on the early side.
	ExpiresAt time.Time
}

// reservedParams are set by this package or by ClientAuth; letting Extra
// override them would defeat PKCE, the fixed response type or client
// authentication. request_uri MUST NOT appear in a PAR (RFC 9126 §2.1).
var reservedParams = map[string]bool{
	"response_type": true, "client_id": true, "scope": true, "state": true,
	"nonce": true, "acr_values": true, "max_age": true,
	"code_challenge": true, "code_challenge_method": true,
	"native_callback_uri": true, "redirect_uri": true, "request_uri": true,
	"client_secret": true, "client_assertion": true, "client_assertion_type": true,
	"grant_type": true, "code": true, "code_verifier": true,
}

// Push sends r to the downstream's PAR endpoint (RFC 9126 §2.1) and
// returns its request_uri. Only 201 with a well-formed body is success
// (RFC 9126 §2.2); everything else is an *Error.
func (c *Client) Push(ctx context.Context, r Request) (Pushed, error) {
	if c.cfgErr != nil {
		return Pushed{}, c.cfgErr
	}
	if c.parURL == "" {
		return Pushed{}, permanent("no PAR endpoint configured", nil)
	}
	form, err := c.pushForm(r)
	if err != nil {
		return Pushed{}, err
	}
	start := time.Now()
	status, body, err := c.post(ctx, "push", c.parURL, form)
	if err != nil {
		return Pushed{}, err
	}
	if status != http.StatusCreated {
		return Pushed{}, c.statusError("push", status, body)
	}
	var pr struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  *int64 `json:"expires_in"`
	}
	if err := jsonexact.Unmarshal(body, &pr); err != nil { // exact names, as Exchange
		return Pushed{}, c.fail("push", temporary(status, "malformed PAR response", err))
	}
	if !validRequestURI(pr.RequestURI) {
		return Pushed{}, c.fail("push", temporary(status, "PAR response has no valid request_uri URN", nil))
	}
	if pr.ExpiresIn == nil || *pr.ExpiresIn < 1 || *pr.ExpiresIn > MaxExpiresIn {
		return Pushed{}, c.fail("push", temporary(status, "PAR response expires_in missing or outside 1..600", nil))
	}
	exp := time.Duration(*pr.ExpiresIn) * time.Second
	return Pushed{RequestURI: pr.RequestURI, ExpiresIn: exp, ExpiresAt: start.Add(exp)}, nil
}

func (c *Client) pushForm(r Request) (url.Values, error) {
	clientID := r.ClientID
	if ci, ok := c.auth.(clientIDer); ok {
		switch authID := ci.clientID(); {
		case clientID == "":
			clientID = authID
		case clientID != authID:
			return nil, permanent("request client_id differs from the authenticated client_id", nil)
		}
	}
	if clientID == "" {
		return nil, permanent("empty client_id", nil)
	}
	if !validChallenge(r.CodeChallenge) {
		return nil, permanent("code_challenge is not an S256 challenge", nil)
	}
	if r.MaxAge != nil && *r.MaxAge < 0 {
		return nil, permanent("negative max_age", nil)
	}
	form := make(url.Values, 12+len(r.Extra))
	for k, vs := range r.Extra {
		if k == "" || reservedParams[k] {
			return nil, permanent(fmt.Sprintf("parameter %q may not be set through Extra", k), nil)
		}
		form[k] = append([]string(nil), vs...)
	}
	form.Set("response_type", "code")
	form.Set("client_id", clientID)
	form.Set("code_challenge", r.CodeChallenge)
	form.Set("code_challenge_method", "S256")
	setIf(form, "scope", r.Scope)
	setIf(form, "state", r.State)
	setIf(form, "nonce", r.Nonce)
	setIf(form, "acr_values", r.ACRValues)
	if r.MaxAge != nil {
		form.Set("max_age", strconv.Itoa(*r.MaxAge))
	}
	setIf(form, "native_callback_uri", r.NativeCallbackURI)
	if c.dpop != nil {
		form.Set("dpop_jkt", c.dpop.JKT)
	}
	setIf(form, "redirect_uri", c.redirectURI)
	return form, nil
}

func setIf(form url.Values, k, v string) {
	if v != "" {
		form.Set(k, v)
	}
}

// validChallenge accepts exactly what NewPKCE produces: base64url without
// padding of a SHA-256 digest, 43 characters (RFC 7636 §4.2).
func validChallenge(s string) bool {
	return len(s) == 43 && isBase64URL(s)
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validRequestURI checks the RFC 9126 §2.2 URN shape and restricts the rest
// to visible ASCII, since the value is echoed to native clients.
func validRequestURI(s string) bool {
	if len(s) <= len(RequestURIPrefix) || len(s) > maxRequestURILen || !strings.HasPrefix(s, RequestURIPrefix) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// TokenResponse is a successful access token response (RFC 6749 §5.1,
// OIDC Core §3.1.3.3). It holds downstream tokens that stay server-side
// (docs/decisions.md §7.4); String redacts them.
type TokenResponse struct {
	AccessToken  string
	TokenType    string
	ExpiresIn    time.Duration
	RefreshToken string
	IDToken      string
	Scope        string
}

// String redacts the tokens so a logged response leaks nothing.
func (t TokenResponse) String() string {
	return fmt.Sprintf("TokenResponse{TokenType:%q, ExpiresIn:%s, Scope:%q, AccessToken:REDACTED, RefreshToken:%t, IDToken:%t}",
		t.TokenType, t.ExpiresIn, t.Scope, t.RefreshToken != "", t.IDToken != "")
}

// GoString redacts like String.
func (t TokenResponse) GoString() string { return t.String() }

// Exchange redeems an authorization code at the downstream's token endpoint
// (RFC 6749 §4.1.3) with the PKCE verifier (RFC 7636 §4.5) and the same
// client authentication as the PAR, aud = issuer (RFC 9126 §2). Only 200
// with a non-empty access_token is success. Call it only for the issuer the
// hop was pinned to (mix-up defence, RFC 9700 §4.4.2).
func (c *Client) Exchange(ctx context.Context, code, codeVerifier string) (TokenResponse, error) {
	if c.cfgErr != nil {
		return TokenResponse{}, c.cfgErr
	}
	if code == "" {
		return TokenResponse{}, permanent("empty code", nil)
	}
	if !validVerifier(codeVerifier) {
		return TokenResponse{}, permanent("code_verifier does not match RFC 7636 §4.1", nil)
	}
	form := make(url.Values, 8)
	form.Set("grant_type", "authorization_code")
	form.Set("code", code)
	form.Set("code_verifier", codeVerifier)
	if ci, ok := c.auth.(clientIDer); ok {
		setIf(form, "client_id", ci.clientID())
	}
	setIf(form, "redirect_uri", c.redirectURI)
	status, body, err := c.post(ctx, "exchange", c.tokenURL, form)
	if err != nil {
		return TokenResponse{}, err
	}
	if status != http.StatusOK {
		return TokenResponse{}, c.statusError("exchange", status, body)
	}
	var tr struct {
		AccessToken  string      `json:"access_token"`
		TokenType    string      `json:"token_type"`
		ExpiresIn    flexSeconds `json:"expires_in"`
		RefreshToken string      `json:"refresh_token"`
		IDToken      string      `json:"id_token"`
		Scope        string      `json:"scope"`
	}
	// Exact member names (RFC 6749 §5.1): encoding/json would let a
	// "TOKEN_TYPE" override token_type (SECURITY-RESULTS.md FZ).
	if err := jsonexact.Unmarshal(body, &tr); err != nil {
		return TokenResponse{}, c.fail("exchange", temporary(status, "malformed token response", err))
	}
	if tr.AccessToken == "" {
		return TokenResponse{}, c.fail("exchange", temporary(status, "token response has no access_token", nil))
	}
	return TokenResponse{
		AccessToken:  tr.AccessToken,
		TokenType:    tr.TokenType,
		ExpiresIn:    time.Duration(tr.ExpiresIn) * time.Second,
		RefreshToken: tr.RefreshToken,
		IDToken:      tr.IDToken,
		Scope:        tr.Scope,
	}, nil
}

// flexSeconds accepts expires_in as a JSON integer or as a quoted integer:
// RFC 6749 §5.1 says number, but some deployed ASes send a string and a
// wrong type here should not cost a user their login.
type flexSeconds int64

func (f *flexSeconds) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > 1<<31 {
		return fmt.Errorf("invalid expires_in %.20q", s)
	}
	*f = flexSeconds(n)
	return nil
}

// post sends one form POST under the client's deadline and returns the
// status and the (bounded) body. Transport failures and oversized bodies are
// temporary *Errors.
func (c *Client) post(ctx context.Context, op, endpoint string, form url.Values) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		return 0, nil, permanent("building request", err)
	}
	if err := c.auth.Apply(req, form, c.issuer); err != nil {
		return 0, nil, c.fail(op, permanent("client authentication", err))
	}
	enc := form.Encode()
	req.Body = io.NopCloser(strings.NewReader(enc))
	req.ContentLength = int64(len(enc))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(enc)), nil }
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.dpop != nil && op == "exchange" {
		proof, err := c.dpop.Proof(http.MethodPost, endpoint, "")
		if err != nil {
			return 0, nil, c.fail(op, permanent("DPoP proof", err))
		}
		req.Header.Set("DPoP", proof)
	}

	resp, err := c.hc.Do(req)
	if err != nil {
		// Connection refused, DNS, TLS, timeouts: say nothing about the
		// native client's request, so retry-later (SECURITY-RESULTS.md D1/D2).
		return 0, nil, c.fail(op, temporary(0, "request failed", err))
	}
	defer resp.Body.Close()
	if resp.ContentLength > MaxResponseBytes {
		return resp.StatusCode, nil, c.fail(op, temporary(resp.StatusCode, "response body too large", nil))
	}
	// Read under the same deadline as the request: a slowloris body
	// (SECURITY-RESULTS.md D3) is cut off by ctx, not only by header timeouts.
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return resp.StatusCode, nil, c.fail(op, temporary(resp.StatusCode, "reading response", err))
	}
	if len(body) > MaxResponseBytes {
		return resp.StatusCode, nil, c.fail(op, temporary(resp.StatusCode, "response body too large", nil))
	}
	return resp.StatusCode, body, nil
}

// statusError classifies a non-success status (RFC 9126 §2.3, RFC 6749
// §5.2). 4xx other than 408/429 is permanent and carries the downstream's
// error code; everything else is temporary.
func (c *Client) statusError(op string, status int, body []byte) error {
	code, desc := parseOAuthError(body)
	e := &Error{Status: status, Code: code, Description: desc}
	switch {
	case status >= 300 && status < 400:
		// Never read Location: we do not follow, and do not log it.
		e.Temporary = true
		e.Code, e.Description = "", "unexpected redirect, not followed"
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		e.Temporary = true
	case status >= 400 && status < 500:
		// A rejected push or code (invalid_client, invalid_grant, ...)
		// will not get better by retrying.
	default:
		// 1xx/2xx other than the one success status: garbage.
		e.Temporary = true
		e.Code, e.Description = "", "unexpected status"
	}
	if e.Description == "" {
		e.Description = "downstream returned " + strconv.Itoa(status)
	}
	return c.fail(op, e)
}

// parseOAuthError extracts an RFC 6749 §5.2 error body, if there is one.
// The code is dropped unless it is entirely in the RFC's character set and
// short; the description is filtered to that set and truncated, because it is
// attacker-controlled text headed for our logs.
func parseOAuthError(body []byte) (code, desc string) {
	var eb struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if json.Unmarshal(body, &eb) != nil {
		return "", ""
	}
	if eb.Error != "" && len(eb.Error) <= maxErrorCodeLen && sanitize(eb.Error, maxErrorCodeLen) == eb.Error {
		code = eb.Error
	}
	return code, sanitize(eb.ErrorDescription, maxDescriptionLen)
}

// sanitize keeps the RFC 6749 §5.2 error_description characters
// (%x20-21 / %x23-5B / %x5D-7E) and at most max bytes.
func sanitize(s string, max int) string {
	b := make([]byte, 0, min(len(s), max))
	for i := 0; i < len(s) && len(b) < max; i++ {
		if ch := s[i]; ch >= 0x20 && ch <= 0x7e && ch != '"' && ch != '\\' {
			b = append(b, ch)
		}
	}
	return string(b)
}

func (c *Client) fail(op string, e *Error) *Error {
	fields := []zap.Field{
		zap.String("op", op),
		zap.String("issuer", c.issuer),
		zap.Int("status", e.Status),
		zap.String("code", e.Code),
		zap.String("description", e.Description),
		zap.Bool("temporary", e.Temporary),
	}
	if e.cause != nil {
		fields = append(fields, zap.NamedError("cause", e.cause))
	}
	if e.Temporary {
		// Temporary failures come in bursts; the caller's breaker counts them.
		c.log.Debug("par: downstream request failed", fields...)
	} else {
		// A permanent rejection means our registration at the downstream is
		// broken: someone has to look (SECURITY-RESULTS.md D5).
		c.log.Warn("par: downstream rejected request", fields...)
	}
	return e
}
