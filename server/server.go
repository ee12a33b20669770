// Package server is fedas's HTTP layer: echo routes, fosite wiring, and the
// translation between HTTP requests and the flow engine, and between errors
// and RFC 6749 §5.2 bodies. One file per endpoint.
package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	fositepar "github.com/ory/fosite/handler/par"
	"github.com/ory/fosite/handler/pkce"
	fositehmac "github.com/ory/fosite/token/hmac"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/fedas/fedas/authn/password"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/metrics"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/ratelimit"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/tracing"
)

// Endpoint paths, relative to the issuer.
const (
	PathMetadata      = "/.well-known/oauth-authorization-server"
	PathJWKS          = "/jwks.json"
	PathNative        = "/native/authorize"
	PathToken         = "/oauth2/token"
	PathPAR           = "/oauth2/par"
	PathRevoke        = "/oauth2/revoke"
	PathIntrospect    = "/oauth2/introspect"
	PathResponse      = "/native/response/"
	PathHealth        = "/healthz"
	PathReady         = "/readyz"
	requestURIPrefix  = "urn:ietf:params:oauth:request_uri:"
	requestDeadline   = 10 * time.Second
	readinessDeadline = time.Second
)

// Options are a Server's dependencies.
type Options struct {
	Config *config.Config
	Store  storage.Store
	Logger *zap.Logger
	// SigningKey is the one signing key when Config names none
	// (keys.signing_keys); nil then means an ephemeral P-256 key. See
	// keys.go: every configured key is published, the active one signs.
	SigningKey *ecdsa.PrivateKey
	// HMACSecret (≥32 bytes) keys fosite's codes and tokens; nil means
	// ephemeral. Instances sharing a store must share it.
	HMACSecret []byte
	// Now is this server's clock for client assertions (RFC 7523 §3);
	// nil means time.Now. It is per Server: nothing process-global.
	Now func() time.Time
	// Policy, when set, is the live policy (clients, users, apps,
	// downstreams, routes, prompts) that a reload or the admin API
	// republishes; nil means a Source holding a snapshot of Config.
	Policy *policy.Source
	// TracerProvider makes a span per request (package tracing); nil or
	// a no-op provider means no tracing, at no cost.
	TracerProvider trace.TracerProvider
	// Metrics, when set, is the registry this server counts in (shared
	// with the admin listener, which serves it); nil means one of its own.
	Metrics *metrics.Metrics
	// DC holds test seams of the presentation step (dc.go).
	DC DCOptions
	// DownstreamRoots are the roots downstreams' TLS certificates must
	// chain to (federation.NewWithRoots); nil: the system roots.
	DownstreamRoots *x509.CertPool
	// Reach holds test seams of the reach core (reach.go).
	Reach ReachOptions
	// RequestDeadline bounds each request's work (middleware.go
	// deadline); zero means 10 s. Tests shorten it to show that long
	// polls outlive it (holdRequest).
	RequestDeadline time.Duration
}

// Server is one fedas authorization server.
type Server struct {
	cfg      *config.Config
	store    storage.Store
	log      *zap.Logger
	policy   *policy.Source
	build    policy.BuildOptions
	oauth    fosite.OAuth2Provider
	fcfg     *fositeConfig
	strategy *oauth2.HMACSHAStrategy
	fstore   *fositeStore
	flow     *flow.Engine
	keys     *keyRing
	dpop     *dpop.Verifier
	now      func() time.Time
	echo     *echo.Echo
	http     *http.Server
	tp       trace.TracerProvider
	obs      observer
	limiter  *ratelimit.Limiter // nil: no rate limits (ratelimit.go)
	proxies  []netip.Prefix     // trusted_proxies (clientip.go)
	// password is the password step (lockout.go).
	password *password.Step
	// dc is the presentation step and its verifier (dc.go); nil without
	// digital_credentials.
	dc *dcState
	// reach is the reach core (reach.go); nil without reach.enabled.
	reach *reachState
	// deadlineD is the request deadline (Options.RequestDeadline).
	deadlineD time.Duration
	// Ephemeral reports which keys were generated at start.
	EphemeralSigningKey, EphemeralHMACSecret bool
}

// fositeConfig is fosite's configuration plus our token URLs (the issuer,
// the token and PAR endpoints: RFC 9126 §2; RFC 7523 §3 item 3). Client
// assertions themselves are verified by authenticateClient (clientauth.go),
// which takes only the issuer as aud (SECURITY-RESULTS.md G02).
type fositeConfig struct {
	*fosite.Config
	tokenURLs []string
}

// GetTokenURLs implements fosite.TokenURLProvider.
func (c *fositeConfig) GetTokenURLs(context.Context) []string { return c.tokenURLs }

// New builds a Server from its options.
func New(o Options) (*Server, error) {
	if o.Config == nil || o.Store == nil {
		return nil, errors.New("server: config and store are required")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	cfg := o.Config
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{cfg: cfg, store: o.Store, log: o.Logger, now: o.Now, deadlineD: o.RequestDeadline}
	if s.deadlineD <= 0 {
		s.deadlineD = requestDeadline
	}
	s.tp = o.TracerProvider
	if o.HMACSecret == nil {
		o.HMACSecret = make([]byte, 32)
		if _, err := rand.Read(o.HMACSecret); err != nil {
			return nil, err
		}
		s.EphemeralHMACSecret = true
	}
	s.build = policy.BuildOptions{Logger: o.Logger, DPoPSeed: DownstreamDPoPSeed(o.HMACSecret), Now: o.Now, DownstreamRoots: o.DownstreamRoots}
	if o.Policy == nil {
		snap, err := policy.Build(cfg, s.build)
		if err != nil {
			return nil, err
		}
		o.Policy = policy.NewSource(snap)
	}
	s.policy = o.Policy
	s.initObserve(o)
	if err := s.initRateLimits(o); err != nil {
		return nil, err
	}
	if err := s.initKeys(o); err != nil {
		return nil, err
	}

	lt := cfg.Lifetimes
	fc := &fositeConfig{Config: &fosite.Config{
		AccessTokenLifespan:             lt.AccessToken,
		RefreshTokenLifespan:            lt.RefreshToken,
		AuthorizeCodeLifespan:           lt.AuthorizationCode,
		PushedAuthorizeContextLifespan:  lt.PushedRequest,
		PushedAuthorizeRequestURIPrefix: requestURIPrefix,
		GlobalSecret:                    o.HMACSecret,
		TokenURL:                        cfg.Issuer + PathToken,
		AccessTokenIssuer:               cfg.Issuer,
		EnforcePKCEForPublicClients:     true,
		ScopeStrategy:                   fosite.ExactScopeStrategy,
		// Set, not left to fosite: its getter fills a nil strategy in on
		// first use, a write that races under concurrent requests.
		AudienceMatchingStrategy:   fosite.DefaultAudienceMatchingStrategy,
		ClientSecretsHasher:        policy.SecretHasher{},
		SendDebugMessagesToClients: false,
	}, tokenURLs: []string{cfg.Issuer + PathToken, cfg.Issuer, cfg.Issuer + PathPAR}}
	s.fcfg = fc
	s.strategy = oauth2.NewHMACSHAStrategy(&fositehmac.HMACStrategy{Config: fc}, fc)
	s.fstore = &fositeStore{st: o.Store, policy: o.Policy, lifetimes: func(k storage.Kind) time.Duration {
		switch k {
		case storage.KindCode, storage.KindPKCE:
			return lt.AuthorizationCode
		case storage.KindAccess:
			return lt.AccessToken
		case storage.KindRefresh:
			return lt.RefreshToken
		case storage.KindPAR:
			return lt.PushedRequest
		}
		return lt.AccessToken
	}}
	// Handlers are built with typed fields rather than compose's
	// interface{} factories, so a missing storage method fails to compile
	// instead of failing at request time.
	explicit := &oauth2.AuthorizeExplicitGrantHandler{
		AccessTokenStrategy:    s.strategy,
		RefreshTokenStrategy:   s.strategy,
		AuthorizeCodeStrategy:  s.strategy,
		CoreStorage:            s.fstore,
		TokenRevocationStorage: s.fstore,
		Config:                 fc,
	}
	refresh := &refreshGrant{s: s} // rotation and reuse: refresh.go
	pk := &pkce.Handler{AuthorizeCodeStrategy: s.strategy, Storage: s.fstore, Config: fc}
	validator := &oauth2.CoreValidator{CoreStrategy: s.strategy, CoreStorage: s.fstore, Config: fc}
	revoke := &oauth2.TokenRevocationHandler{TokenRevocationStorage: s.fstore, AccessTokenStrategy: s.strategy, RefreshTokenStrategy: s.strategy}
	parh := &fositepar.PushedAuthorizeHandler{Storage: s.fstore, Config: fc}
	fc.TokenEndpointHandlers.Append(explicit)
	fc.TokenEndpointHandlers.Append(refresh)
	fc.TokenEndpointHandlers.Append(pk)
	// client_credentials (RFC 6749 §4.4): confidential clients whose
	// grant_types list it; the token names no user (uq.go user_id).
	fc.TokenEndpointHandlers.Append(&oauth2.ClientCredentialsGrantHandler{
		HandleHelper: &oauth2.HandleHelper{AccessTokenStrategy: s.strategy, AccessTokenStorage: s.fstore, Config: fc},
		Config:       fc,
	})
	fc.TokenIntrospectionHandlers.Append(validator)
	fc.RevocationHandlers.Append(rotatedRevocation{s: s, next: revoke}) // revoke_rotated.go
	fc.PushedAuthorizeEndpointHandlers.Append(parh)
	s.oauth = fosite.NewOAuth2Provider(s.fstore, fc)
	// Client assertions are verified with this server's clock and 10 s of
	// skew (clientauth.go; SECURITY-RESULTS.md G03), never by moving fosite's
	// package-level jwt.TimeFunc.
	fc.ClientAuthenticationStrategy = s.authenticateClient

	steps, err := s.localSteps(o)
	if err != nil {
		return nil, err
	}
	if s.dc, err = s.initDC(o); err != nil {
		return nil, err
	}
	if s.reach, err = s.initReach(o); err != nil {
		return nil, err
	}
	var chainFor func(*policy.Client, map[string]string) []flow.Step
	if s.dc != nil {
		chainFor = s.chainFor(steps)
	}
	s.flow = flow.New(flow.Options{
		Sessions:    o.Store,
		Replay:      o.Store,
		Codes:       s,
		Pushes:      pushStore{s},
		Steps:       steps,
		ChainFor:    chainFor,
		TTL:         lt.AuthSession,
		MaxFailures: cfg.Limits.MaxFailures,
		Logger:      o.Logger.Named("flow"),
		Now:         o.Now,
		Issuer:      cfg.Issuer,
		ResponseURI: func(hopID string) string { return cfg.Issuer + PathResponse + hopID },
		WebCallback: cfg.Issuer + PathWebCallback,
		StateKey:    derivedKey(o.HMACSecret, "fedas/federation-state/v1"),
		Events:      s.obs.events,
		Observe:     s.observeOutcome,
		Live:        liveCaps(o),
		MaxHops:     cfg.Limits.MaxFederationHops,
		Reach:       s.crossDevice(),
	})
	s.dpop = &dpop.Verifier{Replay: dpopReplay{o.Store}, Now: o.Now}
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.echoError
	e.IPExtractor = s.clientAddr // c.RealIP() is clientIP's decision too
	e.Use(tracing.Middleware(s.tp, "public", PathHealth, PathReady))
	e.Use(s.accessLog, s.recoverer, s.deadline) // deadline also pins the policy snapshot
	form, limit := s.formParser, s.rateLimit
	e.GET(PathMetadata, s.metadata)
	// OIDC Discovery §4: we issue ID tokens, so the same document is
	// published under the OpenID name too.
	e.GET("/.well-known/openid-configuration", s.metadata)
	e.GET(PathJWKS, s.jwksHandler)
	e.GET(PathOpenAPI, s.openAPI)
	e.POST(PathNative, s.native, form(true), limit(config.RateNativeInitial))
	e.POST(PathResponse+":hop", s.respond, form(false), limit(config.RateResponse))
	e.POST(PathAppComplete, s.appComplete, form(false), limit(config.RateAppComplete))
	e.GET(PathWebCallback, s.webCallback)
	e.GET(PathAuthorize, s.authorizePage)
	e.POST(PathAuthorize, s.authorizeSubmit, form(false), limit(config.RateBrowserSubmit))
	e.POST(PathToken, s.token, form(false), limit(config.RateToken))
	e.POST(PathPAR, s.par, form(false), limit(config.RatePAR))
	e.POST(PathRevoke, s.revoke, form(false), limit(config.RateRevoke))
	e.POST(PathIntrospect, s.introspect, form(false), limit(config.RateIntrospect))
	s.dcRoutes(e, limit)
	s.reachRoutes(e, limit)
	e.GET(PathHealth, s.healthz)
	e.GET(PathReady, s.readyz)
	s.echo = e
	s.http = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
}

// Handler returns the HTTP handler (tests mount it on their own listener).
func (s *Server) Handler() http.Handler { return s.echo }

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx ends; then it closes whatever is left.
func (s *Server) Shutdown(ctx context.Context) error {
	// Long polls end first (their waiters are released), so that the
	// HTTP shutdown does not wait for their holds.
	s.reach.close()
	err := s.http.Shutdown(ctx)
	if err != nil {
		_ = s.http.Close()
	}
	return err
}

func (s *Server) url(path string) string { return s.cfg.Issuer + path }

// String describes the server for logs.
func (s *Server) String() string { return fmt.Sprintf("fedas(%s)", s.cfg.Issuer) }

// DownstreamDPoPSeed derives the seed of our DPoP key for downstream
// codes (docs/decisions.md Q5) from the shared secret: every instance, and
// every policy snapshot, holds the same key.
func DownstreamDPoPSeed(hmacSecret []byte) []byte {
	return derivedKey(hmacSecret, "fedas/downstream-dpop/v1")
}

// AdminSessionKey derives the key that seals admin console sessions
// (docs/admin.md "Console") from the shared secret, so that a session
// works on every instance behind one load balancer.
func AdminSessionKey(hmacSecret []byte) []byte {
	return derivedKey(hmacSecret, "fedas/admin-session/v1")
}

// Policy returns the server's live policy source.
func (s *Server) Policy() *policy.Source { return s.policy }

// Reload re-reads the configuration through load and publishes it as the
// new policy; an invalid one keeps the current policy (policy.Source.Reload).
func (s *Server) Reload(load func() (*config.Config, error)) error {
	// Key files take effect at a restart: the new configuration's
	// active_signing_key is checked against the keys this server runs with.
	withKeys := func() (*config.Config, error) {
		c, err := load()
		if err == nil {
			c.Keys = c.Keys.WithSigningKeys(s.keys.keys)
		}
		return c, err
	}
	return s.policy.Reload(withKeys, s.build, s.log.Named("policy"))
}

// snapshot is the policy snapshot of the request ctx belongs to, else the
// current one.
func (s *Server) snapshot(ctx context.Context) *policy.Snapshot { return snapshotOf(ctx, s.policy) }

func snapshotOf(ctx context.Context, src *policy.Source) *policy.Snapshot {
	if snap := policy.FromContext(ctx); snap != nil {
		return snap
	}
	return src.Current()
}

// derivedKey derives a 32-byte purpose-bound key from the shared secret,
// so that instances sharing a store agree on it.
func derivedKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
