// Package conformance runs black-box checks against an OAuth 2.0
// authorization server that claims the first-party native endpoint
// (draft-ietf-oauth-first-party-apps-04, "FiPA-04"): each check cites the
// section it tests and ends pass, fail or not applicable, with the HTTP
// exchanges that decided it (docs/conformance.md).
package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Profile groups checks by the role of the server under test.
type Profile string

// The profiles.
const (
	// ProfileFiPA checks the native endpoint itself (FiPA-04).
	ProfileFiPA Profile = "fipa"
	// ProfileFederation checks an AS federating to downstreams.
	ProfileFederation Profile = "federation"
	// ProfileDownstream checks an AS in the downstream role (PAR +
	// request_uri at the native endpoint, docs/decisions.md Q3).
	ProfileDownstream Profile = "downstream"
)

// Profiles lists every profile in run order.
var Profiles = []Profile{ProfileFiPA, ProfileFederation, ProfileDownstream}

// Status is a check's outcome.
type Status string

// The outcomes. Only fail makes the run fail (Report.ExitCode).
const (
	Pass          Status = "pass"
	Fail          Status = "fail"
	NotApplicable Status = "not_applicable"
)

// Check is one black-box test of a server.
type Check struct {
	ID      string  `json:"id"`
	Title   string  `json:"title"`
	Profile Profile `json:"profile"`
	// Spec is the section the check tests ("RFC 6749 §5.2").
	Spec string `json:"spec"`
	// Needs are what the check needs of the environment; the runner
	// reports not_applicable, without running it, when one is missing.
	Needs []Need                                     `json:"-"`
	Run   func(ctx context.Context, env *Env) Result `json:"-"`
}

// Need is a precondition of a check: Missing says why it is not met
// ("" when it is).
type Need func(env *Env) (missing string)

// Result is what a check found.
type Result struct {
	Status Status `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Exchanges are the HTTP exchanges that decided the result.
	Exchanges []Exchange `json:"exchanges,omitempty"`
}

// Exchange is one HTTP request and its response, secrets redacted.
type Exchange struct {
	Method          string            `json:"method"`
	URL             string            `json:"url"`
	RequestHeaders  map[string]string `json:"request_headers,omitempty"`
	RequestBody     string            `json:"request_body,omitempty"`
	Status          int               `json:"status,omitempty"`
	ResponseHeaders map[string]string `json:"response_headers,omitempty"`
	ResponseBody    string            `json:"response_body,omitempty"`
	// Error is a transport error (no response).
	Error string `json:"error,omitempty"`
}

// ClientAuth is how the checks authenticate the client (RFC 6749 §2.3):
// Method "none" (a public client: client_id in the body) or
// "client_secret_basic" with Secret.
type ClientAuth struct {
	Method string
	Secret string
}

// ParseClientAuth parses the --auth flag: "none" or
// "client_secret_basic:SECRET".
func ParseClientAuth(s string) (ClientAuth, error) {
	switch {
	case s == "" || s == "none":
		return ClientAuth{Method: "none"}, nil
	case strings.HasPrefix(s, "client_secret_basic:") && len(s) > len("client_secret_basic:"):
		return ClientAuth{Method: "client_secret_basic", Secret: strings.TrimPrefix(s, "client_secret_basic:")}, nil
	}
	return ClientAuth{}, fmt.Errorf("--auth: want none or client_secret_basic:SECRET, got %q", s)
}

// Env is what the checks run against.
type Env struct {
	// Issuer is the server's issuer identifier (RFC 8414 §2).
	Issuer string
	// HTTP is the client every request uses; NewEnv's has a timeout and
	// follows no redirect.
	HTTP *http.Client
	// ClientID is a first-party client registered at the server
	// (optional: checks that send native requests need it).
	ClientID string
	Auth     ClientAuth
	// Username and Password are a test user's (optional) for the full
	// sign-in checks.
	Username, Password string
	// Metadata is the server's RFC 8414 metadata (nil when Discover found
	// none); MetadataExchange is how it was fetched.
	Metadata         map[string]any
	MetadataExchange *Exchange
	MetadataError    string
	// MetadataBroken: the metadata could not be used for another reason
	// than its absence (Discover).
	MetadataBroken bool

	// code and verifier are the fipa sign-in's result, redeemed by the
	// token check that follows it.
	code, verifier string

	// federation/downstream profile inputs (docs/conformance.md).
	//
	// FederationPrompt answers the insufficient_information prompt so that
	// the server federates (--federation-prompt NAME=VALUE);
	// DownstreamUsername and DownstreamPassword sign in at the downstream
	// it federates to. NativeCallbackURI is a native_callback_uri
	// registered for ClientID whose forwarding the downstream makes
	// observable (redirect_to_app). UnsupportedPrompt answers the prompt so
	// that the server routes to a downstream without a native endpoint.
	FederationPrompt                       url.Values
	DownstreamUsername, DownstreamPassword string
	NativeCallbackURI                      string
	UnsupportedPrompt                      url.Values
	// PARClientID and PARAuth are a client registered as a federating AS
	// (downstream profile): PARAuth.Method client_secret_basic, or
	// private_key_jwt signing with PARKey (a private JWK, JSON: RFC 7523
	// §2.2). PARRedirectURI is the redirect_uri its pushes name ("" to
	// omit it).
	PARClientID    string
	PARAuth        ClientAuth
	PARKey         string
	PARRedirectURI string
	// PARExpiry runs the expired request_uri check, which waits out a
	// push's expires_in (--par-expiry) through Sleep.
	PARExpiry bool

	// fipa inputs (docs/conformance.md "Running it"): what the later fipa
	// checks need beyond a client and a user; each is optional and its
	// checks are not applicable without it.
	//
	// TOTPSecret is the test user's base32 RFC 6238 secret, for a sign-in
	// with a one-time code. ThirdPartyClientID is a registered client that
	// is not first-party (public); OtherClientID a second first-party public
	// client. WebParams, added to a valid initial request, make the server
	// answer redirect_to_web. SessionTTL is the server's auth_session
	// lifetime. Now and Sleep (nil: time.Now, a sleep that ctx ends) are
	// the kit's clock, which a test replaces with the server's.
	TOTPSecret         string
	ThirdPartyClientID string
	OtherClientID      string
	WebParams          url.Values
	SessionTTL         time.Duration
	Now                func() time.Time
	Sleep              func(ctx context.Context, d time.Duration) error
	fipa               fipaState
	// timedOut are the endpoints (host and path) that let a request time
	// out, with that request's error: Do sends them nothing more.
	timedOut map[string]string
}

// NewEnv returns an Env whose client times out after timeout and never
// follows a redirect (a redirect is an answer to check, not to follow).
func NewEnv(issuer string, timeout time.Duration) *Env {
	return &Env{Issuer: strings.TrimSuffix(issuer, "/"), Auth: ClientAuth{Method: "none"}, HTTP: &http.Client{
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// TrustCAs makes the client also trust the PEM certificates in pemCerts
// for https (--ca-file: a server whose certificate a private CA issued).
// There is no way to turn verification off.
func (e *Env) TrustCAs(pemCerts []byte) error {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemCerts) {
		return fmt.Errorf("no PEM certificate in it")
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	e.HTTP.Transport = t
	return nil
}

// MetadataURL is where RFC 8414 §3.1 puts the metadata of issuer: the
// well-known segment between the host and the issuer's path.
func MetadataURL(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("issuer %q is not an absolute URL", issuer)
	}
	u.Path = "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	return u.String(), nil
}

// Discover fetches the metadata; a failure leaves Metadata nil and says
// why in MetadataError. A 404 or 410 means the server has no metadata
// (its checks are not applicable); anything else that isn't RFC 8414 §3.2's
// 200 application/json object with the §2 member types and §3.3's issuer
// (a transport error, a timeout, a redirect, a 5xx, a body that isn't
// JSON) sets MetadataBroken: Run then fails the first check that needs
// the metadata.
func (e *Env) Discover(ctx context.Context) {
	u, err := MetadataURL(e.Issuer)
	if err != nil {
		e.MetadataError = err.Error()
		return
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("Accept", "application/json")
	resp, ex := e.Do(req)
	e.MetadataExchange = &ex
	broken := func(format string, a ...any) {
		e.MetadataError, e.MetadataBroken = fmt.Sprintf("GET %s: ", u)+fmt.Sprintf(format, a...), true
	}
	switch {
	case resp == nil:
		hint := ""
		if strings.Contains(ex.Error, "x509:") || strings.Contains(ex.Error, "tls:") {
			hint = " (--ca-file trusts a private CA)"
		}
		broken("no answer: %s%s", ex.Error, hint)
	case resp.Status >= 300 && resp.Status < 400:
		broken("HTTP %d to %q; want 200 (RFC 8414 §3.2), and the kit follows no redirect", resp.Status, resp.Header.Get("Location"))
	case resp.Status == http.StatusNotFound || resp.Status == http.StatusGone:
		e.MetadataError = fmt.Sprintf("GET %s: HTTP %d", u, resp.Status)
	case resp.Status != http.StatusOK:
		broken("HTTP %d; want 200 with the metadata (RFC 8414 §3.2), or 404 when there is none", resp.Status)
	case resp.JSON == nil:
		broken("HTTP 200 with %s, not a JSON object (RFC 8414 §3.2)", describeBody(resp))
	default:
		if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			broken("Content-Type %q; want application/json (RFC 8414 §3.2)", resp.Header.Get("Content-Type"))
			return
		}
		if msg := metadataTypeError(resp.JSON); msg != "" {
			broken("%s (RFC 8414 §2)", msg)
			return
		}
		if iss, _ := resp.JSON["issuer"].(string); iss != e.Issuer && iss != e.Issuer+"/" {
			broken("issuer %q; want %q, the issuer the metadata was fetched for (RFC 8414 §3.3)", iss, e.Issuer)
			return
		}
		e.Metadata = resp.JSON
	}
}

// describeBody says what a body that should have been JSON is: its
// Content-Type, its size and how it starts.
func describeBody(resp *Response) string {
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = "no Content-Type"
	}
	start := string(resp.Body)
	if len(start) > 60 {
		start = start[:60] + "…"
	}
	cut := ""
	if len(resp.Body) >= maxBody {
		cut = fmt.Sprintf(", cut at %d bytes", maxBody)
	}
	return fmt.Sprintf("%s, %d bytes%s, starting %q", ct, len(resp.Body), cut, strings.ToValidUTF8(start, "?"))
}

// The metadata members whose RFC 8414 §2 (and FiPA-04 §4.1, RFC 9126 §5,
// RFC 9449 §5.1) type the checks rely on.
var (
	metaStrings = []string{"issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "pushed_authorization_request_endpoint",
		"authorization_challenge_endpoint", "native_authorization_endpoint"}
	metaStringArrays = []string{"scopes_supported", "response_types_supported", "grant_types_supported", "code_challenge_methods_supported",
		"token_endpoint_auth_methods_supported", "dpop_signing_alg_values_supported"}
)

func metadataTypeError(m map[string]any) string {
	for _, k := range metaStrings {
		if v, ok := m[k]; ok {
			if _, isStr := v.(string); !isStr {
				return fmt.Sprintf("member %s is %s, want a string", k, jsonType(v))
			}
		}
	}
	for _, k := range metaStringArrays {
		v, ok := m[k]
		if !ok {
			continue
		}
		arr, isArr := v.([]any)
		if !isArr {
			return fmt.Sprintf("member %s is %s, want an array of strings", k, jsonType(v))
		}
		for _, x := range arr {
			if _, isStr := x.(string); !isStr {
				return fmt.Sprintf("member %s holds %s, want only strings", k, jsonType(x))
			}
		}
	}
	return ""
}

func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return fmt.Sprintf("a boolean (%v)", v)
	case float64:
		return fmt.Sprintf("a number (%v)", v)
	case string:
		return "a string"
	case []any:
		return "an array"
	default:
		return "an object"
	}
}

// noMetadata is how a need says the metadata is missing; Run turns the
// first such not_applicable into a fail when the metadata is broken.
const noMetadata = "no authorization server metadata: "

// NativeEndpoint is the native endpoint's URL from the metadata: FiPA-04
// §4.1's authorization_challenge_endpoint, else the federation draft's
// native_authorization_endpoint (docs/decisions.md Q1).
func (e *Env) NativeEndpoint() string {
	for _, k := range []string{"authorization_challenge_endpoint", "native_authorization_endpoint"} {
		if s, ok := e.Metadata[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// MetaString is a string member of the metadata ("" when absent).
func (e *Env) MetaString(name string) string {
	s, _ := e.Metadata[name].(string)
	return s
}

// Response is an HTTP response as the checks read it.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// JSON is the body when it is a JSON object.
	JSON map[string]any
}

// Str is a string member of the JSON body.
func (r *Response) Str(name string) string {
	s, _ := r.JSON[name].(string)
	return s
}

// maxBody bounds what is read of a response; maxShown what a report shows.
const (
	maxBody  = 1 << 20
	maxShown = 4 << 10
)

// Do sends req and records the exchange; resp is nil on a transport error.
func (e *Env) Do(req *http.Request) (*Response, Exchange) {
	ex := Exchange{Method: req.Method, URL: redactURL(req.URL.String()), RequestHeaders: redactHeaders(req.Header)}
	if req.GetBody != nil {
		if b, err := req.GetBody(); err == nil {
			raw, _ := io.ReadAll(b)
			ex.RequestBody = redactForm(string(raw), req.Header.Get("Content-Type"))
		}
	}
	endpoint := req.URL.Host + req.URL.Path
	if first, ok := e.timedOut[endpoint]; ok {
		// A server that lets requests time out would make a run take
		// --timeout times every request: one timeout per endpoint is
		// enough evidence.
		ex.Error = "not sent: an earlier request to this endpoint got no answer within --timeout (" + first + ")"
		return nil, ex
	}
	hr, err := e.HTTP.Do(req)
	if err != nil {
		ex.Error = err.Error()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if e.timedOut == nil {
				e.timedOut = map[string]string{}
			}
			e.timedOut[endpoint] = err.Error()
		}
		return nil, ex
	}
	defer hr.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(hr.Body, maxBody))
	resp := &Response{Status: hr.StatusCode, Header: hr.Header, Body: body}
	var obj map[string]any
	if json.Unmarshal(body, &obj) == nil {
		resp.JSON = obj
	}
	ex.Status = hr.StatusCode
	ex.ResponseHeaders = redactHeaders(hr.Header)
	ex.ResponseBody = truncate(redactJSON(body, resp.JSON))
	return resp, ex
}

// PostForm posts form to u, authenticating the client as Auth says (the
// client_id in the body for none, HTTP Basic for client_secret_basic:
// RFC 6749 §2.3.1).
func (e *Env) PostForm(ctx context.Context, u string, form url.Values) (*Response, Exchange) {
	return e.post(ctx, u, form, nil, true)
}

// post is PostForm with extra headers (a DPoP proof), and without client
// authentication when authenticate is false (another client's request).
func (e *Env) post(ctx context.Context, u string, form url.Values, hdr http.Header, authenticate bool) (*Response, Exchange) {
	form = cloneValues(form)
	basic := authenticate && e.Auth.Method == "client_secret_basic"
	if basic && form.Get("client_id") == e.ClientID {
		form.Del("client_id")
	}
	body := form.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return nil, Exchange{Method: http.MethodPost, URL: u, Error: err.Error()}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if basic {
		req.SetBasicAuth(url.QueryEscape(e.ClientID), url.QueryEscape(e.Auth.Secret))
	}
	return e.Do(req)
}

func cloneValues(v url.Values) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// What a report never shows. Secrets (a password, a one-time code, a
// client secret, a PKCE verifier) become [redacted]. Live credentials
// (auth_session, codes, request_uri, tokens, assertions: random values an
// attacker could still use) become a fingerprint, [redacted N chars
// sha256:PREFIX], so a reader can still follow one value from the answer
// that issued it to the request that sent it back, and see its length
// (fipa-auth-session-entropy).
var (
	secretParams = map[string]bool{"password": true, "otp": true, "client_secret": true, "code_verifier": true}
	liveParams   = map[string]bool{"auth_session": true, "code": true, "authorization_code": true, "request_uri": true, "refresh_token": true, "token": true,
		"assertion": true, "client_assertion": true, "device_secret": true}
	liveMembers = map[string]bool{"auth_session": true, "authorization_code": true, "code": true, "request_uri": true,
		"access_token": true, "refresh_token": true, "id_token": true, "device_secret": true}
)

// fingerprint stands for a live value in a report.
func fingerprint(v string) string {
	sum := sha256.Sum256([]byte(v))
	return fmt.Sprintf("[redacted %d chars sha256:%x]", len(v), sum[:4])
}

// redactParam is what a report shows of parameter k's value v.
func redactParam(k, v string) (shown string, redacted bool) {
	switch {
	case secretParams[k]:
		return "[redacted]", true
	case liveParams[k] && v != "":
		return fingerprint(v), true
	}
	return v, false
}

func redactHeaders(h http.Header) map[string]string {
	if len(h) == 0 {
		return nil
	}
	m := map[string]string{}
	for k, vs := range h {
		v := strings.Join(vs, ", ")
		switch strings.ToLower(k) {
		case "authorization", "dpop", "cookie", "set-cookie":
			if scheme, _, ok := strings.Cut(v, " "); ok && strings.ToLower(k) == "authorization" {
				v = scheme + " [redacted]"
			} else {
				v = "[redacted]"
			}
		case "location":
			v = redactURL(v)
		}
		m[k] = v
	}
	return m
}

// redactURL redacts the secret and live parameters of a URL's query (a
// request_uri at the authorization endpoint, a code in a redirect).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.RawQuery == "" {
		return raw
	}
	u.RawQuery = redactQuery(u.RawQuery)
	return u.String()
}

// redactQuery redacts a form-encoded string; it is returned as it is
// when nothing in it is redacted.
func redactQuery(raw string) string {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return "[unparsable form]"
	}
	for k, vals := range v {
		for _, val := range vals {
			if _, r := redactParam(k, val); r {
				return redactedForm(v)
			}
		}
	}
	return raw
}

// redactedForm encodes v, sorted, with its secret and live values
// redacted (the markers are not escaped, to stay readable).
func redactedForm(v url.Values) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		for _, val := range v[k] {
			shown, r := redactParam(k, val)
			if !r {
				shown = url.QueryEscape(shown)
			}
			parts = append(parts, url.QueryEscape(k)+"="+shown)
		}
	}
	return strings.Join(parts, "&")
}

func redactForm(body, contentType string) string {
	if !strings.HasPrefix(contentType, "application/x-www-form-urlencoded") {
		return truncate([]byte(body))
	}
	v, err := url.ParseQuery(body)
	if err != nil {
		return "[unparsable form]"
	}
	return truncate([]byte(redactedForm(v)))
}

// redactJSON redacts a JSON object answer: its live members at any
// depth, the live parameters of any URL in it (a deep_link or a
// request_uri-carrying link), and those inside a federate answer's
// federation_body (the downstream's request_uri: fed-draft-00 §4.3.1).
// The body is returned as it is when nothing in it is redacted.
func redactJSON(body []byte, obj map[string]any) []byte {
	if obj == nil {
		return body
	}
	out, hit := redactValue("", obj)
	if !hit {
		return body
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(out)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// redactValue is redactJSON on one value, named key in its object.
func redactValue(key string, v any) (any, bool) {
	switch v := v.(type) {
	case string:
		switch {
		case v == "":
			return v, false
		case liveMembers[key]:
			return fingerprint(v), true
		case key == "federation_body":
			r := redactQuery(v)
			return r, r != v
		case strings.Contains(v, "?") && strings.Contains(v, "://"):
			r := redactURL(v)
			return r, r != v
		}
		return v, false
	case map[string]any:
		out, hit := make(map[string]any, len(v)), false
		for k, x := range v {
			r, h := redactValue(k, x)
			out[k], hit = r, hit || h
		}
		return out, hit
	case []any:
		out, hit := make([]any, len(v)), false
		for i, x := range v {
			r, h := redactValue(key, x)
			out[i], hit = r, hit || h
		}
		return out, hit
	}
	return v, false
}

// truncate cuts what a report shows of a body at maxShown bytes, on a
// UTF-8 boundary, and keeps the report valid UTF-8.
func truncate(b []byte) string {
	if len(b) > maxShown {
		n := maxShown
		for n > maxShown-utf8.UTFMax && !utf8.RuneStart(b[n]) {
			n--
		}
		return strings.ToValidUTF8(string(b[:n]), "\uFFFD") + fmt.Sprintf("… [%d bytes truncated]", len(b)-n)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// newPKCE is a fresh RFC 7636 §4.1 verifier and its S256 challenge.
func newPKCE() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// CheckResult is one check's entry in a report.
type CheckResult struct {
	ID      string  `json:"id"`
	Title   string  `json:"title"`
	Profile Profile `json:"profile"`
	Spec    string  `json:"spec"`
	Result
}

// Report is a run's results, in the checks' order.
type Report struct {
	Issuer   string        `json:"issuer"`
	Profiles []Profile     `json:"profiles"`
	Results  []CheckResult `json:"results"`
}

// Failed is the number of applicable checks that failed.
func (r *Report) Failed() int {
	n := 0
	for _, c := range r.Results {
		if c.Status == Fail {
			n++
		}
	}
	return n
}

// ExitCode is 0 exactly when no applicable check failed, else 1.
func (r *Report) ExitCode() int {
	if r.Failed() > 0 {
		return 1
	}
	return 0
}

// Checks are every check of every profile, in run order.
func Checks() []Check {
	return append(append(FiPAChecks(), FederationChecks()...), DownstreamChecks()...)
}

// Run discovers env's metadata (unless already fetched) and runs every
// check of profiles, in order: a check whose need is missing is
// not_applicable, and a check that panics fails with the panic's message
// (the run goes on).
func Run(ctx context.Context, env *Env, checks []Check, profiles []Profile) *Report {
	if env.Metadata == nil && env.MetadataExchange == nil {
		env.Discover(ctx)
	}
	want := map[Profile]bool{}
	for _, p := range profiles {
		want[p] = true
	}
	rep := &Report{Issuer: env.Issuer, Profiles: profiles, Results: []CheckResult{}}
	brokenID := ""
	for _, c := range checks {
		if !want[c.Profile] {
			continue
		}
		res := runOne(ctx, env, c)
		if env.MetadataBroken && res.Status == NotApplicable && (brokenID == "" || strings.HasPrefix(res.Detail, noMetadata)) {
			// A server that answers its metadata URL with an error, a
			// redirect or garbage fails once, in the run's first check
			// that didn't run; the other checks that need the metadata
			// say which check that was.
			if brokenID == "" {
				brokenID = c.ID
				res = fail(metaExchanges(env), "the metadata is unusable: %s", env.MetadataError)
			} else {
				res.Detail = noMetadata + "unusable (see " + brokenID + ")"
			}
		}
		rep.Results = append(rep.Results, CheckResult{ID: c.ID, Title: c.Title, Profile: c.Profile, Spec: c.Spec, Result: res})
	}
	return rep
}

func runOne(ctx context.Context, env *Env, c Check) (res Result) {
	defer func() {
		if p := recover(); p != nil {
			res = Result{Status: Fail, Detail: fmt.Sprintf("the check panicked: %v\n%s", p, debug.Stack())}
		}
	}()
	for _, need := range c.Needs {
		if missing := need(env); missing != "" {
			return Result{Status: NotApplicable, Detail: missing}
		}
	}
	res = c.Run(ctx, env)
	if res.Status == "" {
		res.Status = Fail
		res.Detail = "the check returned no status: " + res.Detail
	}
	return res
}
