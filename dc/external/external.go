package external

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fedas/fedas/dc"
	"github.com/fedas/fedas/dc/dcql"
	"github.com/fedas/fedas/dc/oid4vp"
	"github.com/fedas/fedas/netguard"
)

// Defaults.
const (
	// DefaultTimeout bounds one call to the service.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxBody caps an answer of the service (a vp_token is at most
	// the 256 KB the internal response_uri takes, docs/security.md "Digital credentials",
	// plus JSON overhead).
	DefaultMaxBody = 512 << 10
	// DefaultTTL is the transaction lifetime when BeginRequest.TTL is zero
	// (docs/security.md "Digital credentials").
	DefaultTTL = 120 * time.Second
	// DefaultWalletScheme is the scheme of the wallet URL (docs/protocol.md "Digital credentials").
	DefaultWalletScheme = "openid4vp"
	// ResponseCodePlaceholder is the EUDI-V template variable.
	ResponseCodePlaceholder = "{RESPONSE_CODE}"
)

// ErrInvalidRequest reports a BeginRequest or Options this adapter cannot
// use (a programming or configuration error, never wallet input).
var ErrInvalidRequest = errors.New("external: invalid request")

// errTooLarge: the service relayed more than MaxBody; refused like a bad
// presentation (retrying cannot help).
var errTooLarge = fmt.Errorf("%w: verifier answer too large", dc.ErrRejected)

// Options configure a Verifier.
type Options struct {
	// BaseURL is the service root, e.g. https://verifier.internal:8443.
	// https, or http on a loopback host with AllowLoopback.
	BaseURL string
	// HTTPClient, when set, is used for every call (mTLS: its Transport's
	// TLSClientConfig.Certificates; private-network services). Its redirect
	// policy is replaced: redirects are never followed. When nil, a
	// netguard.Client is used (public addresses only; loopback with
	// AllowLoopback).
	HTTPClient *http.Client
	// AllowLoopback admits a loopback BaseURL and request_uri over plain
	// http (development and tests only).
	AllowLoopback bool
	// BearerToken is sent as "Authorization: Bearer" on every call (resolved
	// from a file or the environment by the caller; never logged).
	BearerToken string
	// ClientID, when set, pins the service's client_id: an init answer with
	// another one is refused (dc.ErrUnavailable).
	ClientID string
	// SealKey (32 bytes, AES-256-GCM) seals Transaction.ID; instances
	// sharing transactions need the same key.
	SealKey []byte
	// WalletScheme is the wallet URL scheme (default "openid4vp").
	WalletScheme string

	// Issuers, Status, KBMaxAge and KeepClaims are the re-verification
	// policy (dc.Policy), the same as the internal verifier's.
	Issuers    []dc.TrustedIssuer
	Status     dc.StatusChecker
	KBMaxAge   time.Duration
	KeepClaims []string

	// Now is the clock (default time.Now).
	Now func() time.Time
	// Timeout bounds each call (default DefaultTimeout).
	Timeout time.Duration
	// MaxBody caps each answer (default DefaultMaxBody).
	MaxBody int64
}

// Verifier is the external adapter; it keeps no state of its own.
type Verifier struct {
	o    Options
	base string
	hc   *http.Client
	seal *sealer
}

var _ dc.Verifier = (*Verifier)(nil)

// New checks o and returns a Verifier.
func New(o Options) (*Verifier, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.WalletScheme == "" {
		o.WalletScheme = DefaultWalletScheme
	}
	if strings.ContainsAny(o.BearerToken, "\r\n") {
		return nil, fmt.Errorf("%w: bearer token contains a line break", ErrInvalidRequest)
	}
	if len(o.Issuers) == 0 {
		return nil, fmt.Errorf("%w: no trusted issuers", ErrInvalidRequest)
	}
	s, err := newSealer(o.SealKey)
	if err != nil {
		return nil, err
	}
	base := strings.TrimRight(o.BaseURL, "/")
	if err := checkURL(base, o); err != nil {
		return nil, fmt.Errorf("%w: base URL: %w", ErrInvalidRequest, err)
	}
	u, _ := url.Parse(base)
	if u.RawQuery != "" {
		return nil, fmt.Errorf("%w: base URL has a query", ErrInvalidRequest)
	}
	if o.HTTPClient == nil {
		// The default client refuses non-public addresses at dial time;
		// say so now rather than at the first sign-in.
		if err := netguard.CheckURL(base, netguard.Options{AllowLoopback: o.AllowLoopback}); err != nil {
			return nil, fmt.Errorf("%w: base URL needs an HTTPClient (private address?): %w", ErrInvalidRequest, err)
		}
	}
	var hc *http.Client
	if o.HTTPClient != nil {
		c := *o.HTTPClient
		hc = &c
	} else {
		hc = netguard.Client(netguard.Options{AllowLoopback: o.AllowLoopback, Timeout: o.Timeout})
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Verifier{o: o, base: base, hc: hc, seal: s}, nil
}

// checkURL: https, or http on a loopback host with AllowLoopback; no
// userinfo or fragment. Private addresses are the HTTPClient's business
// (an operator-configured service may live on a private network).
func checkURL(raw string, o Options) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" || u.Host == "" {
		return errors.New("not an absolute URL")
	}
	if u.User != nil || u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("userinfo or fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if o.AllowLoopback && isLoopback(u.Hostname()) {
			return nil
		}
	}
	return errors.New("scheme must be https")
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// initRequest is the EUDI-V InitTransaction body (the members fedas uses).
type initRequest struct {
	Type             string            `json:"type"`
	DCQLQuery        json.RawMessage   `json:"dcql_query"`
	Nonce            string            `json:"nonce"`
	ResponseMode     string            `json:"response_mode"`
	JARMode          string            `json:"jar_mode"`
	RequestURIMethod string            `json:"request_uri_method"`
	RedirectTemplate string            `json:"wallet_response_redirect_uri_template,omitempty"`
	TransactionData  []json.RawMessage `json:"transaction_data,omitempty"`
}

type initAnswer struct {
	TransactionID    string `json:"transaction_id"`
	ClientID         string `json:"client_id"`
	RequestURI       string `json:"request_uri"`
	RequestURIMethod string `json:"request_uri_method"`
}

// Begin starts a transaction at the service (same and cross device only).
func (v *Verifier) Begin(ctx context.Context, r dc.BeginRequest) (dc.Transaction, error) {
	if r.Flow != dc.FlowSameDevice && r.Flow != dc.FlowCrossDevice {
		return dc.Transaction{}, fmt.Errorf("%w: the external verifier supports same_device and cross_device only", dc.ErrWrongFlow)
	}
	if r.Issuance {
		return dc.Transaction{}, fmt.Errorf("%w: presentation during issuance is not supported by the external verifier", dc.ErrWrongFlow)
	}
	if r.Query == nil {
		return dc.Transaction{}, fmt.Errorf("%w: no query", ErrInvalidRequest)
	}
	q, err := json.Marshal(r.Query)
	if err != nil {
		return dc.Transaction{}, fmt.Errorf("%w: query", ErrInvalidRequest)
	}
	if _, err := dcql.Parse(q); err != nil {
		return dc.Transaction{}, fmt.Errorf("%w: query: %w", ErrInvalidRequest, err)
	}
	nonce := r.Nonce
	if nonce == "" {
		if nonce, err = oid4vp.NewNonce(); err != nil {
			return dc.Transaction{}, fmt.Errorf("%w: %w", dc.ErrUnavailable, err)
		}
	} else if len(nonce) < 22 || !oid4vp.URLSafe(nonce) {
		return dc.Transaction{}, fmt.Errorf("%w: nonce must be ≥128 bits of URL-safe characters", ErrInvalidRequest)
	}
	body := initRequest{
		Type: "vp_token", DCQLQuery: q, Nonce: nonce,
		ResponseMode: oid4vp.ModeDirectPostJWT, JARMode: "by_reference", RequestURIMethod: "post",
	}
	for i, s := range r.TransactionData {
		obj, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || !json.Valid(obj) || len(bytes.TrimSpace(obj)) == 0 || bytes.TrimSpace(obj)[0] != '{' {
			return dc.Transaction{}, fmt.Errorf("%w: transaction_data[%d] is not base64url JSON object", ErrInvalidRequest, i)
		}
		body.TransactionData = append(body.TransactionData, obj)
	}
	if r.Flow == dc.FlowSameDevice {
		if body.RedirectTemplate, err = redirectTemplate(r.RedirectURITemplate); err != nil {
			return dc.Transaction{}, err
		}
	}
	ttl := r.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	now := v.o.Now()

	// No HTML escaping: the service base64url-encodes the transaction_data
	// objects as it receives them, and the wallet hashes that string.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return dc.Transaction{}, fmt.Errorf("%w: init body", ErrInvalidRequest)
	}
	status, ans, err := v.call(ctx, http.MethodPost, v.base+"/ui/presentations", bytes.TrimRight(buf.Bytes(), "\n"))
	if err != nil {
		return dc.Transaction{}, err
	}
	if status != http.StatusOK && status != http.StatusCreated {
		return dc.Transaction{}, fmt.Errorf("%w: init answered %d", dc.ErrUnavailable, status)
	}
	var a initAnswer
	if err := json.Unmarshal(ans, &a); err != nil {
		return dc.Transaction{}, fmt.Errorf("%w: init answer is not JSON", dc.ErrUnavailable)
	}
	if a.TransactionID == "" || len(a.TransactionID) > 512 || !printable(a.TransactionID) {
		return dc.Transaction{}, fmt.Errorf("%w: init answer without a usable transaction_id", dc.ErrUnavailable)
	}
	if a.ClientID == "" || len(a.ClientID) > 512 || !printable(a.ClientID) || (v.o.ClientID != "" && a.ClientID != v.o.ClientID) {
		return dc.Transaction{}, fmt.Errorf("%w: init answer client_id missing or not the configured one", dc.ErrUnavailable)
	}
	if len(a.RequestURI) > 2048 || checkURL(a.RequestURI, v.o) != nil {
		return dc.Transaction{}, fmt.Errorf("%w: init answer request_uri missing or not https", dc.ErrUnavailable)
	}
	if a.RequestURIMethod != "" && a.RequestURIMethod != "post" {
		return dc.Transaction{}, fmt.Errorf("%w: init answer request_uri_method is not post", dc.ErrUnavailable)
	}
	exp := now.Add(ttl)
	id, err := v.seal.seal(sealed{
		TxID: a.TransactionID, ClientID: a.ClientID, Flow: r.Flow, Nonce: nonce,
		Query: q, TD: r.TransactionData, Exp: exp.Unix(),
	})
	if err != nil {
		return dc.Transaction{}, fmt.Errorf("%w: %w", dc.ErrUnavailable, err)
	}
	return dc.Transaction{
		ID: id,
		RequestURI: v.o.WalletScheme + "://?client_id=" + url.QueryEscape(a.ClientID) +
			"&request_uri=" + url.QueryEscape(a.RequestURI) + "&request_uri_method=post",
		ExpiresAt: exp,
		ClientID:  a.ClientID,
	}, nil
}

// redirectTemplate returns the EUDI-V template: t with exactly one
// {RESPONSE_CODE}, or t with response_code={RESPONSE_CODE} appended.
func redirectTemplate(t string) (string, error) {
	if t == "" {
		return "", fmt.Errorf("%w: same_device needs a redirect URI", ErrInvalidRequest)
	}
	if strings.Contains(t, "#") {
		return "", fmt.Errorf("%w: redirect URI has a fragment", ErrInvalidRequest)
	}
	switch strings.Count(t, ResponseCodePlaceholder) {
	case 1:
	case 0:
		sep := "?"
		if strings.Contains(t, "?") {
			sep = "&"
		}
		t += sep + "response_code=" + ResponseCodePlaceholder
	default:
		return "", fmt.Errorf("%w: redirect URI template repeats %s", ErrInvalidRequest, ResponseCodePlaceholder)
	}
	if u, err := url.Parse(strings.Replace(t, ResponseCodePlaceholder, "x", 1)); err != nil || !u.IsAbs() {
		return "", fmt.Errorf("%w: redirect URI is not absolute", ErrInvalidRequest)
	}
	return t, nil
}

// walletAnswer is the EUDI-V wallet response: vp_token (OpenID4VP 1.0:
// query id → array of presentations; a bare string is taken as one) or
// a wallet error (§8.5).
type walletAnswer struct {
	VPToken map[string]json.RawMessage `json:"vp_token"`
	Error   string                     `json:"error"`
}

// Result polls the service (cross device: responseCode empty; same device:
// the code the wallet's redirect carried) and re-verifies the vp_token.
// Nothing is consumed: the flow's auth_session swap is the single-use gate.
func (v *Verifier) Result(ctx context.Context, txID, responseCode string) (dc.Result, error) {
	t, err := v.open(txID)
	if err != nil {
		return dc.Result{}, err
	}
	switch {
	case t.Flow == dc.FlowSameDevice && responseCode == "",
		t.Flow == dc.FlowCrossDevice && responseCode != "":
		return dc.Result{}, dc.ErrWrongFlow
	case t.Flow != dc.FlowSameDevice && t.Flow != dc.FlowCrossDevice:
		return dc.Result{}, dc.ErrWrongFlow
	}
	if len(responseCode) > 512 {
		return dc.Result{}, dc.ErrResponseCode
	}
	u := v.base + "/ui/presentations/" + url.PathEscape(t.TxID)
	if responseCode != "" {
		u += "?response_code=" + url.QueryEscape(responseCode)
	}
	status, body, err := v.call(ctx, http.MethodGet, u, nil)
	if err != nil {
		return dc.Result{}, err
	}
	switch {
	case status == http.StatusOK:
	case status == http.StatusBadRequest || status == http.StatusNotFound:
		// EUDI-V: 404 unknown transaction, 400 not yet submitted or the
		// response_code does not match. A code exists only once the wallet
		// has posted, so with a code this is a wrong code.
		if responseCode != "" {
			return dc.Result{}, dc.ErrResponseCode
		}
		return dc.Result{Status: dc.StatusPending}, dc.ErrPending
	default:
		return dc.Result{}, fmt.Errorf("%w: wallet response answered %d", dc.ErrUnavailable, status)
	}
	return v.verifyAnswer(ctx, t, body)
}

// verifyAnswer turns a 200 wallet-response body into a Result: a wallet
// error code, or the vp_token re-verified under our policy.
func (v *Verifier) verifyAnswer(ctx context.Context, t sealed, body []byte) (dc.Result, error) {
	var a walletAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return dc.Result{}, fmt.Errorf("%w: wallet response is not JSON", dc.ErrUnavailable)
	}
	if a.Error != "" {
		return dc.Result{Status: dc.StatusError, WalletError: walletErrorCode(a.Error)}, nil
	}
	vp, err := vpToken(a.VPToken)
	if err != nil {
		return rejected(err)
	}
	q, err := dcql.Parse(t.Query)
	if err != nil {
		return dc.Result{}, dc.ErrExpired // cannot happen: we sealed a parsed query
	}
	creds, err := dc.VerifyVPToken(ctx, vp, dc.Policy{
		Issuers: v.o.Issuers, Query: q, Nonce: t.Nonce, Audience: t.ClientID,
		Now: v.o.Now, KBMaxAge: v.o.KBMaxAge, KeepClaims: v.o.KeepClaims,
	}, v.o.Status)
	if err != nil {
		return rejected(err)
	}
	if err := dc.CheckTransactionData(creds, t.TD); err != nil {
		return rejected(err)
	}
	return dc.Result{Status: dc.StatusVerified, Credentials: creds}, nil
}

// rejected is the answer to a presentation that fails re-verification:
// StatusError "invalid_presentation" and the error (wrapping
// dc.ErrRejected, sentinels only).
func rejected(err error) (dc.Result, error) {
	return dc.Result{Status: dc.StatusError, WalletError: "invalid_presentation"}, err
}

func vpToken(m map[string]json.RawMessage) (map[string][]string, error) {
	if len(m) == 0 {
		return nil, fmt.Errorf("%w: no vp_token", dc.ErrRejected)
	}
	out := make(map[string][]string, len(m))
	for id, raw := range m {
		var list []string
		if err := json.Unmarshal(raw, &list); err != nil {
			var one string
			if err := json.Unmarshal(raw, &one); err != nil {
				return nil, fmt.Errorf("%w: vp_token entry is not a string array", dc.ErrRejected)
			}
			list = []string{one}
		}
		out[id] = list
	}
	return out, nil
}

// walletErrorCode keeps a wallet error code only if it looks like one
// (OAuth error codes: %x20-21 / %x23-5B / %x5D-7E; we take [a-z_]), so no
// wallet-chosen text travels further.
func walletErrorCode(s string) string {
	if len(s) > 64 {
		return "invalid_response"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c == '_') {
			return "invalid_response"
		}
	}
	return s
}

// Submit is the DC API path, which this adapter does not offer.
func (v *Verifier) Submit(context.Context, string, dc.DCAPIResponse) (dc.Result, error) {
	return dc.Result{}, dc.ErrWrongFlow
}

// Cancel is best effort and a no-op: the EUDI-V API has no cancel
// operation (see the package documentation).
func (v *Verifier) Cancel(context.Context, string) error { return nil }

func (v *Verifier) open(txID string) (sealed, error) {
	t, ok := v.seal.open(txID)
	if !ok || v.o.Now().Unix() >= t.Exp {
		return sealed{}, dc.ErrExpired
	}
	return t, nil
}

// call makes one authenticated, bounded call. Errors are dc.ErrUnavailable
// (or errTooLarge) and name no URL: the path carries the transaction_id
// and the query the response_code.
func (v *Verifier) call(ctx context.Context, method, u string, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, v.o.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: bad request URL", dc.ErrUnavailable)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if v.o.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+v.o.BearerToken)
	}
	resp, err := v.hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %s", dc.ErrUnavailable, transportReason(ctx, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return resp.StatusCode, nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, v.o.MaxBody+1))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %s", dc.ErrUnavailable, transportReason(ctx, err))
	}
	if int64(len(b)) > v.o.MaxBody {
		return 0, nil, errTooLarge
	}
	return resp.StatusCode, b, nil
}

// transportReason names the failure class only (a *url.Error would quote
// the URL, and with it the transaction_id).
func transportReason(ctx context.Context, err error) string {
	var ne net.Error
	switch {
	case ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()):
		return "timeout"
	case errors.Is(err, netguard.ErrForbidden):
		return "destination refused"
	default:
		return "transport failure"
	}
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
