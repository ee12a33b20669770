package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/fedas/fedas/internal/jsonexact"
	"github.com/fedas/fedas/netguard"
	"github.com/fedas/fedas/par"
	"github.com/fedas/fedas/tracing"
)

// WellKnownSuffix is the RFC 8414 §3 well-known URI suffix for OAuth 2.0
// authorization server metadata.
const WellKnownSuffix = "oauth-authorization-server"

const (
	// DefaultTTL is how long fetched metadata or a JWKS is served without
	// refetching when the options leave TTL zero. Five minutes lets an
	// endpoint or key change at a downstream reach us quickly while keeping
	// metadata off the per-request path.
	DefaultTTL = 5 * time.Minute
	// DefaultMinRefresh is the least time between two fetches of the same
	// URL when the options leave MinRefresh zero (SECURITY-RESULTS.md D9: bounded
	// refresh, even while the downstream keeps failing).
	DefaultMinRefresh = 10 * time.Second
	// DefaultTimeout bounds one fetch, body included, when the options leave
	// Timeout zero; the same budget par uses for a PAR (SECURITY-RESULTS.md D2/D3).
	DefaultTimeout = 3 * time.Second
	// DefaultMaxBytes bounds a metadata or JWKS body when the options leave
	// MaxBytes zero (SECURITY-RESULTS.md D4): real documents are a few KiB.
	DefaultMaxBytes = 64 << 10

	maxLoggedLen = 128
)

var (
	// ErrUnavailable matches (errors.Is) every failure to obtain a usable
	// document from a downstream: connection errors, timeouts, non-200
	// statuses (5xx included), redirects (never followed, SECURITY-RESULTS.md K05),
	// wrong content type, oversized or malformed bodies and endpoints that
	// are not https. Callers answer 503 temporarily_unavailable with
	// Retry-After (RFC 6749 §4.1.2.1; docs/decisions.md "fedas decisions").
	ErrUnavailable = errors.New("federation: downstream temporarily unavailable")
	// ErrIssuerMismatch matches metadata whose "issuer" member is not
	// exactly the configured issuer (RFC 8414 §3.3, §6.2; SECURITY-RESULTS.md B14).
	// Such metadata is discarded, never served stale, because it may be an
	// attempt to impersonate another AS (mix-up, RFC 9700 §4.4). Callers
	// refuse federation with 503 temporarily_unavailable and alert.
	ErrIssuerMismatch = errors.New("federation: metadata issuer does not match configured issuer")
	// ErrInvalidIssuer matches a configured issuer that is not an RFC 8414
	// §2 issuer identifier (https, no query, no fragment, no userinfo) or
	// that targets a loopback or private address without AllowLoopbackHTTP.
	// Nothing is fetched for it; it is a configuration error (SECURITY-RESULTS.md
	// K03), not a downstream failure.
	ErrInvalidIssuer = errors.New("federation: invalid issuer identifier")
)

// FetchError describes one failed metadata or JWKS fetch (RFC 8414 §3.2,
// RFC 7517 §5). It matches its Kind with errors.Is (ErrUnavailable or
// ErrIssuerMismatch) and also its cause, such as
// context.DeadlineExceeded. Its text is safe to log: downstream-supplied
// strings are quoted and capped.
type FetchError struct {
	// URL is the document URL we fetched (or would have fetched).
	URL string
	// Status is the HTTP status, or 0 when no response was received.
	Status int
	// Reason says what went wrong, in our words.
	Reason string
	// Kind is the sentinel the error matches: ErrUnavailable or
	// ErrIssuerMismatch.
	Kind error

	cause error
}

// Error formats the failure for logs.
func (e *FetchError) Error() string {
	var b strings.Builder
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
	} else {
		b.WriteString("federation: fetch failed")
	}
	b.WriteString(": ")
	b.WriteString(e.URL)
	if e.Status != 0 {
		b.WriteString(": status ")
		b.WriteString(strconv.Itoa(e.Status))
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	if e.cause != nil {
		b.WriteString(": ")
		b.WriteString(e.cause.Error())
	}
	return b.String()
}

// Unwrap exposes the sentinel and the cause to errors.Is and errors.As.
func (e *FetchError) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

func unavailable(u string, status int, reason string, cause error) *FetchError {
	return &FetchError{URL: u, Status: status, Reason: reason, Kind: ErrUnavailable, cause: cause}
}

// Metadata is the part of a downstream's RFC 8414 §2 authorization server
// metadata that fedas acts on (docs/decisions.md §8, "We read from
// downstreams"). Every endpoint in it has been checked to be an absolute
// https URL. Values are shared between callers of the cache: treat slices
// and Raw as read-only.
type Metadata struct {
	// Issuer is the validated "issuer" (RFC 8414 §2, §3.3); it equals the
	// configured issuer byte for byte.
	Issuer string
	// AuthorizationEndpoint is "authorization_endpoint" (RFC 8414 §2),
	// needed only for the browser fallback of redirect_to_web
	// (docs/decisions.md Q7). May be empty.
	AuthorizationEndpoint string
	// PAREndpoint is "pushed_authorization_request_endpoint" (RFC 9126 §5).
	// May be empty; federation requires it (ZFed-01 §4.1).
	PAREndpoint string
	// TokenEndpoint is "token_endpoint" (RFC 8414 §2); always set, since a
	// code-flow AS must publish it and we redeem codes there.
	TokenEndpoint string
	// NativeEndpoint is "authorization_challenge_endpoint" (FiPA-04 §8) or,
	// when that is absent, "native_authorization_endpoint" (ZFed-01 §4.1).
	// Empty means the downstream cannot be federated to natively
	// (SECURITY-RESULTS.md B02).
	NativeEndpoint string
	// JWKSURI is "jwks_uri" (RFC 8414 §2), where the ID Token keys live.
	JWKSURI string
	// TokenEndpointAuthMethods is "token_endpoint_auth_methods_supported"
	// (RFC 8414 §2); RFC 8414 says an absent value means
	// client_secret_basic.
	TokenEndpointAuthMethods []string
	// CodeChallengeMethods is "code_challenge_methods_supported" (RFC 8414
	// §2); absent means the AS does not advertise PKCE.
	CodeChallengeMethods []string
	// DPoPAlgs is "dpop_signing_alg_values_supported" (RFC 9449 §5.1).
	DPoPAlgs []string
	// AuthorizationDetailsTypes is "authorization_details_types_supported"
	// (RFC 9396 §10), read so RAR can be mapped (docs/decisions.md §8).
	AuthorizationDetailsTypes []string
	// RequirePAR is "require_pushed_authorization_requests" (RFC 9126 §5).
	RequirePAR bool
	// IssParameterSupported is
	// "authorization_response_iss_parameter_supported" (RFC 9207 §3).
	IssParameterSupported bool
	// Raw is the whole metadata document, for members not mapped above.
	Raw map[string]any
}

// SupportsNative reports whether the downstream advertises a native
// (authorization challenge) endpoint under either name (docs/decisions.md Q1;
// FiPA-04 §8, ZFed-01 §4.1). Without one we must not push a PAR for it and
// answer native_authorization_federate_unsupported (SECURITY-RESULTS.md B02).
func (m Metadata) SupportsNative() bool { return m.NativeEndpoint != "" }

// rawMetadata decodes the typed members. A member of the wrong JSON type
// fails decoding: such a document is garbage, not "member absent".
type rawMetadata struct {
	Issuer                    string   `json:"issuer"`
	AuthorizationEndpoint     string   `json:"authorization_endpoint"`
	PAREndpoint               string   `json:"pushed_authorization_request_endpoint"`
	TokenEndpoint             string   `json:"token_endpoint"`
	ChallengeEndpoint         string   `json:"authorization_challenge_endpoint"`
	NativeEndpoint            string   `json:"native_authorization_endpoint"`
	JWKSURI                   string   `json:"jwks_uri"`
	TokenEndpointAuthMethods  []string `json:"token_endpoint_auth_methods_supported"`
	CodeChallengeMethods      []string `json:"code_challenge_methods_supported"`
	DPoPAlgs                  []string `json:"dpop_signing_alg_values_supported"`
	AuthorizationDetailsTypes []string `json:"authorization_details_types_supported"`
	RequirePAR                bool     `json:"require_pushed_authorization_requests"`
	IssParameterSupported     bool     `json:"authorization_response_iss_parameter_supported"`
}

// MetadataOptions configures a MetadataCache (RFC 8414 §3).
type MetadataOptions = FetchOptions

// FetchOptions configures the downstream caches (metadata per issuer, JWK
// Sets per jwks_uri). Zero values select the documented defaults.
type FetchOptions struct {
	// HTTPClient is optional. It is copied and its CheckRedirect replaced
	// so redirects are never followed whatever the caller configured
	// (SECURITY-RESULTS.md K05). Without it the cache uses par.NewTransport.
	HTTPClient *http.Client
	// TTL is how long a fetched document is served before refetching
	// (default DefaultTTL). After a failed refresh the old document may be
	// served for up to one more TTL.
	TTL time.Duration
	// MinRefresh is the least time between two fetches of one issuer or
	// jwks_uri, failures and unknown kids included (default
	// DefaultMinRefresh).
	MinRefresh time.Duration
	// Timeout bounds one fetch end to end (default DefaultTimeout).
	Timeout time.Duration
	// MaxBytes bounds the response body (default DefaultMaxBytes).
	MaxBytes int64
	// AllowLoopbackHTTP admits http and loopback hosts (127.0.0.0/8, ::1,
	// localhost) in issuers and endpoints. It exists for tests; production
	// configuration must leave it false (SECURITY-RESULTS.md K03).
	AllowLoopbackHTTP bool
	// Logger receives failed fetches, stale serving, endpoint changes and
	// skipped keys.
	Logger *zap.Logger
	// Now is the clock; nil means time.Now. Tests use it to step over TTLs.
	Now func() time.Time
}

// fetchConfig is what MetadataCache and JWKSCache share.
type fetchConfig struct {
	hc            *http.Client
	ttl           time.Duration
	minRefresh    time.Duration
	timeout       time.Duration
	maxBytes      int64
	allowLoopback bool
	log           *zap.Logger
	now           func() time.Time
}

func newFetchConfig(hc *http.Client, ttl, minRefresh, timeout time.Duration, maxBytes int64,
	allowLoopback bool, log *zap.Logger, now func() time.Time) fetchConfig {
	c := fetchConfig{ttl: ttl, minRefresh: minRefresh, timeout: timeout, maxBytes: maxBytes,
		allowLoopback: allowLoopback, log: log, now: now}
	if c.ttl <= 0 {
		c.ttl = DefaultTTL
	}
	if c.minRefresh <= 0 {
		c.minRefresh = DefaultMinRefresh
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxBytes <= 0 {
		c.maxBytes = DefaultMaxBytes
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	if c.now == nil {
		c.now = time.Now
	}
	if hc != nil {
		cp := *hc
		cp.CheckRedirect = noRedirect
		c.hc = &cp
	} else {
		c.hc = &http.Client{Transport: tracing.Transport(par.NewTransport()), CheckRedirect: noRedirect}
	}
	return c
}

// noRedirect stops net/http from following a 3xx: the downstream (or
// whoever controls its DNS) must not steer our fetches to internal URLs
// (SSRF, SECURITY-RESULTS.md K05). The 3xx is then reported as ErrUnavailable.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// MetadataCache fetches and caches downstream metadata per configured
// issuer (RFC 8414 §3). It is safe for concurrent use; build one per
// process and keep it.
type MetadataCache struct {
	cfg fetchConfig
	sf  singleflight.Group

	mu      sync.Mutex
	entries map[string]*metaEntry
}

type metaEntry struct {
	md          Metadata
	hasMD       bool
	fetched     time.Time // when md was fetched
	lastAttempt time.Time // start of the latest fetch, successful or not
	lastErr     error     // nil when the latest fetch succeeded
	inFlight    bool      // a fetch is running; callers join it
}

// NewMetadataCache builds a cache (RFC 8414 §3). Nothing is fetched until
// Get.
func NewMetadataCache(opts MetadataOptions) *MetadataCache {
	return &MetadataCache{
		cfg: newFetchConfig(opts.HTTPClient, opts.TTL, opts.MinRefresh, opts.Timeout, opts.MaxBytes,
			opts.AllowLoopbackHTTP, opts.Logger, opts.Now),
		entries: make(map[string]*metaEntry),
	}
}

// Get returns the metadata of the configured issuer (RFC 8414 §3), from
// cache when it is younger than TTL. Otherwise it fetches
// <host>/.well-known/oauth-authorization-server<path> (RFC 8414 §3.1), once
// for all concurrent callers and at most once per MinRefresh. When a
// refresh fails with ErrUnavailable, metadata up to 2×TTL old is served
// instead and the failure logged; an ErrIssuerMismatch discards the cached
// value. issuer must come from trusted configuration, never from a request
// (SECURITY-RESULTS.md K04).
func (c *MetadataCache) Get(ctx context.Context, issuer string) (Metadata, error) {
	if err := validateIssuer(issuer, c.cfg.allowLoopback); err != nil {
		return Metadata{}, err
	}
	c.mu.Lock()
	md, err, done := c.decideLocked(c.entries[issuer], c.cfg.now())
	c.mu.Unlock()
	if done {
		return md, err
	}
	if err := ctx.Err(); err != nil {
		return Metadata{}, unavailable(wellKnownURL(issuer), 0, "caller context done", err)
	}
	ch := c.sf.DoChan(issuer, func() (any, error) { return c.refresh(ctx, issuer) })
	select {
	case r := <-ch:
		if r.Err != nil {
			return Metadata{}, r.Err
		}
		return r.Val.(Metadata), nil
	case <-ctx.Done():
		// The shared fetch carries on under its own deadline for the
		// other callers; this caller just stops waiting.
		return Metadata{}, unavailable(wellKnownURL(issuer), 0, "caller gave up waiting", ctx.Err())
	}
}

// Invalidate forgets everything cached for issuer, including the refresh
// bound, so the next Get fetches at once. It is meant for administrative
// changes (SECURITY-RESULTS.md D10, B12: re-validate after the downstream changed),
// not for per-request error handling, which would defeat MinRefresh.
func (c *MetadataCache) Invalidate(issuer string) {
	c.mu.Lock()
	delete(c.entries, issuer)
	c.mu.Unlock()
	// A fetch still in flight must not be joined by later callers; its
	// result lands on the orphaned entry and is dropped.
	c.sf.Forget(issuer)
}

// decideLocked answers from e without fetching when it may: fresh value,
// or a fetch too recent to repeat (MinRefresh). done=false means fetch.
func (c *MetadataCache) decideLocked(e *metaEntry, now time.Time) (Metadata, error, bool) {
	if e == nil {
		return Metadata{}, nil, false
	}
	if e.hasMD && now.Before(e.fetched.Add(c.cfg.ttl)) {
		return e.md, nil, true
	}
	if e.inFlight {
		// Join the running fetch (singleflight) rather than answer from
		// a state it is about to replace.
		return Metadata{}, nil, false
	}
	if !e.lastAttempt.IsZero() && now.Sub(e.lastAttempt) < c.cfg.minRefresh {
		switch {
		case e.hasMD && e.lastErr == nil:
			// TTL shorter than MinRefresh: the bound wins.
			return e.md, nil, true
		case e.hasMD && now.Before(e.fetched.Add(2*c.cfg.ttl)):
			return e.md, nil, true
		case e.lastErr != nil:
			return Metadata{}, e.lastErr, true
		default:
			return Metadata{}, unavailable("", 0, "metadata expired and refresh is rate limited", nil), true
		}
	}
	return Metadata{}, nil, false
}

func (c *MetadataCache) refresh(ctx context.Context, issuer string) (Metadata, error) {
	start := c.cfg.now()
	c.mu.Lock()
	e := c.entries[issuer]
	// A flight that finished just before ours started may have refreshed
	// already: re-decide so that a burst never fetches twice.
	if md, err, done := c.decideLocked(e, start); done {
		c.mu.Unlock()
		return md, err
	}
	if e == nil {
		e = &metaEntry{}
		c.entries[issuer] = e
	}
	e.lastAttempt, e.inFlight = start, true
	c.mu.Unlock()

	md, err := c.fetch(ctx, issuer)

	c.mu.Lock()
	defer c.mu.Unlock()
	e.inFlight = false
	now := c.cfg.now()
	if c.entries[issuer] != e {
		// Invalidated while we fetched: report, but do not store.
		return md, err
	}
	if err == nil {
		if e.hasMD && endpointsChanged(e.md, md) {
			// SECURITY-RESULTS.md D10: a downstream changing endpoints at runtime
			// deserves a human look.
			c.cfg.log.Warn("federation: downstream metadata endpoints changed",
				zap.String("issuer", issuer),
				zap.String("old_token_endpoint", e.md.TokenEndpoint), zap.String("new_token_endpoint", md.TokenEndpoint),
				zap.String("old_par_endpoint", e.md.PAREndpoint), zap.String("new_par_endpoint", md.PAREndpoint),
				zap.String("old_native_endpoint", e.md.NativeEndpoint), zap.String("new_native_endpoint", md.NativeEndpoint),
				zap.String("old_jwks_uri", e.md.JWKSURI), zap.String("new_jwks_uri", md.JWKSURI))
		}
		e.md, e.hasMD, e.fetched, e.lastErr = md, true, start, nil
		return md, nil
	}
	e.lastErr = err
	if errors.Is(err, ErrIssuerMismatch) {
		// Never keep serving a value from an AS that now claims another
		// identity (SECURITY-RESULTS.md B14, D10).
		e.md, e.hasMD = Metadata{}, false
		c.cfg.log.Error("federation: downstream metadata issuer mismatch; federation refused",
			zap.String("issuer", issuer), zap.Error(err))
		return Metadata{}, err
	}
	if e.hasMD && now.Before(e.fetched.Add(2*c.cfg.ttl)) {
		c.cfg.log.Warn("federation: metadata refresh failed; serving stale metadata",
			zap.String("issuer", issuer), zap.Time("fetched", e.fetched), zap.Error(err))
		return e.md, nil
	}
	c.cfg.log.Warn("federation: metadata fetch failed", zap.String("issuer", issuer), zap.Error(err))
	return Metadata{}, err
}

func endpointsChanged(a, b Metadata) bool {
	return a.TokenEndpoint != b.TokenEndpoint || a.PAREndpoint != b.PAREndpoint ||
		a.NativeEndpoint != b.NativeEndpoint || a.JWKSURI != b.JWKSURI ||
		a.AuthorizationEndpoint != b.AuthorizationEndpoint
}

func (c *MetadataCache) fetch(ctx context.Context, issuer string) (Metadata, error) {
	u := wellKnownURL(issuer)
	body, err := c.cfg.get(ctx, u, isJSONMediaType)
	if err != nil {
		return Metadata{}, err
	}
	return parseMetadata(u, issuer, body, c.cfg.allowLoopback)
}

// parseMetadata validates one RFC 8414 §3.2 response for the configured
// issuer: a JSON object, exact issuer (§3.3), https endpoints.
func parseMetadata(u, issuer string, body []byte, allowLoopback bool) (Metadata, error) {
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return Metadata{}, unavailable(u, http.StatusOK, "metadata is not a JSON object", err)
	}
	// Member names are case-sensitive (RFC 8414 §2): encoding/json would
	// take "ISSUER" for issuer, so a document whose issuer names another
	// AS passed the §3.3 check (SECURITY-RESULTS.md FZ).
	var rm rawMetadata
	if err := jsonexact.Unmarshal(body, &rm); err != nil {
		return Metadata{}, unavailable(u, http.StatusOK, "metadata member has the wrong type", err)
	}
	// RFC 8414 §3.3: "the issuer value returned MUST be identical to the
	// authorization server's issuer identifier value" — byte for byte, no
	// normalisation of case or trailing slash.
	if rm.Issuer != issuer {
		return Metadata{}, &FetchError{URL: u, Status: http.StatusOK, Kind: ErrIssuerMismatch,
			Reason: "metadata issuer is " + logSafe(rm.Issuer)}
	}
	native := rm.ChallengeEndpoint
	if native == "" {
		native = rm.NativeEndpoint
	}
	if rm.TokenEndpoint == "" {
		return Metadata{}, unavailable(u, http.StatusOK, "metadata has no token_endpoint", nil)
	}
	for _, ep := range []struct{ name, v string }{
		{"authorization_endpoint", rm.AuthorizationEndpoint},
		{"pushed_authorization_request_endpoint", rm.PAREndpoint},
		{"token_endpoint", rm.TokenEndpoint},
		{"authorization_challenge_endpoint", rm.ChallengeEndpoint},
		{"native_authorization_endpoint", rm.NativeEndpoint},
		{"jwks_uri", rm.JWKSURI},
	} {
		if ep.v == "" {
			continue
		}
		if err := checkFetchURL(ep.v, allowLoopback); err != nil {
			return Metadata{}, unavailable(u, http.StatusOK, ep.name+" "+logSafe(ep.v)+" rejected", err)
		}
	}
	return Metadata{
		Issuer:                    rm.Issuer,
		AuthorizationEndpoint:     rm.AuthorizationEndpoint,
		PAREndpoint:               rm.PAREndpoint,
		TokenEndpoint:             rm.TokenEndpoint,
		NativeEndpoint:            native,
		JWKSURI:                   rm.JWKSURI,
		TokenEndpointAuthMethods:  rm.TokenEndpointAuthMethods,
		CodeChallengeMethods:      rm.CodeChallengeMethods,
		DPoPAlgs:                  rm.DPoPAlgs,
		AuthorizationDetailsTypes: rm.AuthorizationDetailsTypes,
		RequirePAR:                rm.RequirePAR,
		IssParameterSupported:     rm.IssParameterSupported,
		Raw:                       raw,
	}, nil
}

// WellKnownURL is the RFC 8414 §3.1 metadata URL of issuer, the one
// MetadataCache.Get fetches. It is exported so that the admin probe
// fetches exactly the document federation will use; issuer should be an
// RFC 8414 §2 issuer identifier (an unparseable one is returned as is).
func WellKnownURL(issuer string) string { return wellKnownURL(issuer) }

// wellKnownURL builds the RFC 8414 §3.1 metadata URL: the well-known
// segment goes between host and path, and a terminating "/" of the
// issuer's path is removed first. issuer must have passed validateIssuer.
func wellKnownURL(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil {
		return issuer
	}
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	return u.Scheme + "://" + u.Host + "/.well-known/" + WellKnownSuffix + p
}

// validateIssuer checks an RFC 8414 §2 issuer identifier: https URL with
// no query, fragment or userinfo, on a public host.
func validateIssuer(issuer string, allowLoopback bool) error {
	u, err := url.Parse(issuer)
	if err != nil {
		return fmt.Errorf("%w %s: %v", ErrInvalidIssuer, logSafe(issuer), err)
	}
	if u.RawQuery != "" || u.ForceQuery || strings.Contains(issuer, "#") {
		return fmt.Errorf("%w %s: query or fragment", ErrInvalidIssuer, logSafe(issuer))
	}
	if err := checkFetchURL(issuer, allowLoopback); err != nil {
		return fmt.Errorf("%w %s: %v", ErrInvalidIssuer, logSafe(issuer), err)
	}
	return nil
}

// checkFetchURL accepts an absolute https URL without userinfo or
// fragment whose host the SSRF guard admits: the one rule set of
// netguard.CheckURL (no loopback, private, link-local, metadata or other
// non-public address in any spelling: IPv6 zones, IPv4-mapped, NAT64 and
// numeric forms such as "0" or "2130706433" that getaddrinfo reads as an
// address; SECURITY-RESULTS.md K03, FZ). AllowLoopbackHTTP admits
// loopback, over http or https, for tests. This is the only check of
// downstream-supplied endpoints before we connect to them.
func checkFetchURL(raw string, allowLoopback bool) error {
	return netguard.CheckURL(raw, netguard.Options{AllowLoopback: allowLoopback})
}

// get performs one bounded GET of a JSON document: own deadline (detached
// from the caller's cancellation, since a singleflight fetch serves several
// callers), no redirects, 200 only, acceptable media type, body at most
// maxBytes.
func (c *fetchConfig) get(ctx context.Context, u string, mediaOK func(string) bool) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, unavailable(u, 0, "building request", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, unavailable(u, 0, "request failed", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		// Location is neither followed nor logged (SECURITY-RESULTS.md K05).
		return nil, unavailable(u, resp.StatusCode, "unexpected redirect, not followed", nil)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, unavailable(u, resp.StatusCode, "unexpected status", nil)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || !mediaOK(mt) {
		return nil, unavailable(u, resp.StatusCode, "unexpected content type "+logSafe(resp.Header.Get("Content-Type")), nil)
	}
	if resp.ContentLength > c.maxBytes {
		return nil, unavailable(u, resp.StatusCode, "response body too large", nil)
	}
	// Read under the same deadline: a slowloris body is cut off by ctx
	// (SECURITY-RESULTS.md D3).
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBytes+1))
	if err != nil {
		return nil, unavailable(u, resp.StatusCode, "reading response", err)
	}
	if int64(len(body)) > c.maxBytes {
		return nil, unavailable(u, resp.StatusCode, "response body too large", nil)
	}
	return body, nil
}

// isJSONMediaType accepts application/json (RFC 8414 §3.2) and structured
// +json types.
func isJSONMediaType(mt string) bool {
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// logSafe quotes and caps downstream-supplied text headed for logs or error
// strings, so it cannot forge log lines.
func logSafe(s string) string {
	if len(s) > maxLoggedLen {
		s = s[:maxLoggedLen] + "..."
	}
	return strconv.QuoteToASCII(s)
}
