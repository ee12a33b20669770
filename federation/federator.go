package federation

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/par"
	"github.com/fedas/fedas/tracing"
)

// Errors of a hop's life, mapped to protocol answers by the server.
var (
	// ErrFederateUnsupported: the downstream has no native endpoint in its
	// metadata (federation draft §4.1; native_authorization_federate_unsupported).
	ErrFederateUnsupported = errors.New("federation: downstream does not support native authorization")
	// ErrInvalidAnswer: a prompt answer is not one we offered or is malformed.
	ErrInvalidAnswer = errors.New("federation: invalid prompt answer")
	// ErrMixUp: the response names another issuer than the hop's
	// (RFC 9207 §2.4; docs/decisions.md Q8).
	ErrMixUp = errors.New("federation: response from another issuer")
	// ErrHopGone: the hop's downstream was removed or re-pointed since
	// federation began (SECURITY-RESULTS.md B12).
	ErrHopGone = errors.New("federation: downstream no longer configured for this hop")
	// ErrRejected: the downstream refused the code, or its result failed
	// our checks (terminal).
	ErrRejected = errors.New("federation: downstream rejected the request")
	// ErrAuthTooOld: we forwarded max_age and the downstream's ID token has
	// no auth_time, or one older than max_age plus AuthTimeLeeway (OIDC
	// Core §3.1.2.1, §3.1.3.7 step 13). Errors carrying it also match
	// ErrRejected, never ErrUnavailable: the code is spent and retrying
	// cannot help; callers answer access_denied.
	ErrAuthTooOld = errors.New("federation: downstream authentication is older than max_age")
	// ErrACRNotMet: we forwarded acr_values and the downstream's ID token
	// has no acr, or one we did not request (OIDC Core §3.1.2.1, §3.1.3.7
	// step 12; RFC 9470 §4). Errors carrying it also match ErrRejected,
	// never ErrUnavailable; callers answer access_denied.
	ErrACRNotMet = errors.New("federation: downstream authentication context does not meet acr_values")
)

// AuthTimeLeeway is the clock skew between us and a downstream tolerated
// when checking auth_time against a forwarded max_age (OIDC Core
// §3.1.3.7 step 13): small, because max_age is how a relying party asks
// for a recent sign-in and a large leeway would quietly defeat it.
const AuthTimeLeeway = 10 * time.Second

// Target is where a routing decision sends the user.
type Target struct {
	Local      bool
	Deny       bool
	Downstream string
	// App names one of our own apps (redirect_to_app).
	App string
}

// Hop is one federation level's server-side state: everything needed to
// finish it safely, pinned when it began (docs/decisions.md Q8).
type Hop struct {
	ID         string    `json:"id"`
	Downstream string    `json:"ds"`
	Issuer     string    `json:"iss"`
	Verifier   string    `json:"cv"`
	State      string    `json:"state"`
	Nonce      string    `json:"nonce"`
	Began      time.Time `json:"began"`
	Retried    bool      `json:"retried,omitempty"`
	// MaxAge is the max_age we forwarded, nil if none; Complete then
	// requires a recent enough auth_time (OIDC Core §3.1.3.7 step 13).
	MaxAge *int `json:"max_age,omitempty"`
	// ACRValues is the acr_values we forwarded, empty if none; Complete
	// then requires one of them as acr (OIDC Core §3.1.3.7 step 12).
	ACRValues string `json:"acr_values,omitempty"`
	// DPoP reports that our PAR carried dpop_jkt of our key, so the
	// downstream must answer token_type DPoP (RFC 9449 §5, §10;
	// docs/decisions.md Q5).
	DPoP bool `json:"dpop,omitempty"`
	// RedirectURI is the redirect_uri of a browser hop (BeginWeb), sent
	// identically at the token endpoint (RFC 6749 §4.1.3); empty for
	// native hops.
	RedirectURI string `json:"redirect_uri,omitempty"`
}

// HopRequest carries what the upstream request asks of the downstream.
type HopRequest struct {
	// State is sent as the downstream's state; the browser brings it back
	// to our web callback if the downstream falls back to the web.
	State             string
	Scope             string
	NativeCallbackURI string
	ACRValues         string
	MaxAge            *int
	// RedirectURI is our web callback, registered at the downstream as our
	// only redirect_uri: a downstream's browser fallback (docs/decisions.md
	// Q7) delivers its code there, bound to it (RFC 6749 §4.1.3), so the
	// token request names it. The native PAR leaves it out (Q14): the
	// downstream uses the one registered.
	RedirectURI string
}

// Federate is the client-facing part of a `federate` answer
// (federation draft §4.3.1).
type Federate struct {
	FederationURI  string
	FederationBody string
}

// Identity is the downstream user, neutral of protocol details.
type Identity struct {
	Issuer   string
	Subject  string
	AMR      []string
	AuthTime time.Time
	// ACR is the ID token's "acr" (OIDC Core §2), empty when absent.
	ACR    string
	Claims map[string]any
}

type downstream struct {
	cfg   config.Downstream
	auth  par.ClientAuth
	http  *http.Client
	algs  []jose.SignatureAlgorithm
	scope map[string]string

	// clients are the PAR/token clients built for this downstream, by
	// the endpoints of its metadata and the hop's shape (Federator.client).
	mu      sync.RWMutex
	clients map[clientKey]*par.Client
}

// clientKey is what a par.Client is built from besides the downstream's
// fixed configuration.
type clientKey struct {
	parURL, tokenURL, redirectURI string
	dpop                          bool
}

// maxClients bounds a downstream's cached clients: metadata whose
// endpoints keep changing must not grow the cache without end.
const maxClients = 8

// Federator routes users to downstreams and runs hops: it pushes the
// request to the downstream's PAR endpoint (RFC 9126) with our client
// authentication, and completes the hop by redeeming the code at the
// pinned issuer's token endpoint and verifying its ID token.
type Federator struct {
	ds         map[string]*downstream
	prompt     *config.Prompt
	routes     []config.Route
	def        string
	meta       *MetadataCache
	jwks       *JWKSCache
	log        *zap.Logger
	userPrompt map[string]any
	logo       string
	// dpop is our key for downstream codes (docs/decisions.md Q5).
	dpop *dpop.Key

	// Now is the clock of hop times, ID token validation and the max_age
	// check; nil means time.Now. Set it before the Federator is used (tests
	// inject a fixed clock instead of sleeping).
	Now func() time.Time
}

func (f *Federator) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// New builds a Federator from configuration. dpopSeed (32 bytes) derives
// our DPoP key for downstreams: an Ed25519 key, deterministic so that
// every instance sharing a store redeems codes another instance bound
// (nil: no DPoP binding of downstream codes).
func New(cfg *config.Config, log *zap.Logger, dpopSeed []byte) (*Federator, error) {
	return NewWithRoots(cfg, log, dpopSeed, nil)
}

// NewWithRoots is New with the certificate roots that downstreams' TLS
// certificates must chain to (metadata, JWKS, PAR and token requests);
// nil means the system roots. Deployments whose downstreams use a private
// CA, and tests with self-signed downstreams (servertest TLS), set it.
func NewWithRoots(cfg *config.Config, log *zap.Logger, dpopSeed []byte, roots *x509.CertPool) (*Federator, error) {
	if log == nil {
		log = zap.NewNop()
	}
	f := &Federator{
		ds:     map[string]*downstream{},
		prompt: cfg.Prompt,
		routes: cfg.Routes,
		def:    cfg.DefaultRoute,
		log:    log,
	}
	if len(dpopSeed) == ed25519.SeedSize {
		k, err := dpop.NewKey(ed25519.NewKeyFromSeed(dpopSeed), jose.EdDSA)
		if err != nil {
			return nil, err
		}
		f.dpop = k
	}
	var fetch *http.Client // nil: the caches' own par.NewTransport client
	if roots != nil {
		fetch = &http.Client{Transport: downstreamTransport(roots)}
	}
	f.meta = NewMetadataCache(MetadataOptions{HTTPClient: fetch, AllowLoopbackHTTP: cfg.Dev.AllowLoopbackHTTP, Logger: log.Named("metadata")})
	// The JWK Set cache runs on the Federator's clock (f.now reads Now at
	// each call): its refetch bound on an unknown kid (a downstream's key
	// rotation, OIDC Core §10.1.1) is then testable without sleeping.
	f.jwks = NewJWKSCache(JWKSOptions{HTTPClient: fetch, AllowLoopbackHTTP: cfg.Dev.AllowLoopbackHTTP, Logger: log.Named("jwks"), Now: f.now})
	if cfg.Prompt != nil {
		f.userPrompt = buildPrompt(cfg.Prompt)
		f.logo = cfg.Prompt.Logo
	}
	for _, d := range cfg.Downstreams {
		ds := &downstream{cfg: d, scope: d.Scopes}
		switch d.Auth.Method {
		case "private_key_jwt":
			var k jose.JSONWebKey
			if err := json.Unmarshal([]byte(d.Auth.Key), &k); err != nil {
				return nil, fmt.Errorf("downstream %s: key: %w", d.ID, err)
			}
			a, err := par.NewPrivateKeyJWT(d.ClientID, k)
			if err != nil {
				return nil, fmt.Errorf("downstream %s: %w", d.ID, err)
			}
			ds.auth = a
		default:
			ds.auth = &par.ClientSecretBasic{ClientID: d.ClientID, Secret: d.Auth.Secret}
		}
		timeout := d.Timeout
		if timeout == 0 {
			timeout = par.DefaultTimeout
		}
		// One tuned transport per downstream (docs/performance.md trap 3):
		// connection reuse, and a slow downstream cannot starve others.
		ds.http = &http.Client{Transport: downstreamTransport(roots), Timeout: timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for _, a := range d.IDTokenAlgs {
			ds.algs = append(ds.algs, jose.SignatureAlgorithm(a))
		}
		f.ds[d.ID] = ds
	}
	return f, nil
}

// downstreamTransport is one tuned, traced transport (par.NewTransport)
// trusting roots (nil: the system roots).
func downstreamTransport(roots *x509.CertPool) http.RoundTripper {
	t := par.NewTransport()
	t.TLSClientConfig.RootCAs = roots
	return tracing.Transport(t)
}

// HasPrompt reports whether routing needs an insufficient_information
// prompt.
func (f *Federator) HasPrompt() bool { return f.prompt != nil }

// UserPrompt returns the userPrompt member and the logo (federation draft
// §4.3.3, in the normative shape of docs/decisions.md Q11).
func (f *Federator) UserPrompt() (map[string]any, string) { return f.userPrompt, f.logo }

// MaxAttempts is how many invalid answers a prompt survives.
func (f *Federator) MaxAttempts() int {
	if f.prompt == nil || f.prompt.MaxAttempts == 0 {
		return 5
	}
	return f.prompt.MaxAttempts
}

func buildPrompt(p *config.Prompt) map[string]any {
	out := map[string]any{}
	if len(p.Options) > 0 {
		opts := map[string]any{}
		for _, o := range p.Options {
			vals := map[string]any{}
			for _, v := range o.Values {
				m := map[string]string{"name": v.Name}
				if v.Logo != "" {
					m["logo"] = v.Logo
				}
				vals[v.Value] = m
			}
			opt := map[string]any{"values": vals}
			if o.Title != "" {
				opt["title"] = o.Title
			}
			if o.Description != "" {
				opt["description"] = o.Description
			}
			opts[o.Key] = opt
		}
		out["options"] = opts
	}
	if len(p.Inputs) > 0 {
		ins := map[string]any{}
		for _, in := range p.Inputs {
			m := map[string]string{}
			if in.Title != "" {
				m["title"] = in.Title
			}
			if in.Hint != "" {
				m["hint"] = in.Hint
			}
			if in.Description != "" {
				m["description"] = in.Description
			}
			ins[in.Key] = m
		}
		out["inputs"] = ins
	}
	return out
}

// RouteClient returns the target of a route that needs no prompt: one
// whose only condition is the client.
func (f *Federator) RouteClient(clientID string) (Target, bool) {
	i, t := f.matchClient(clientID)
	return t, i >= 0
}

// clientOnly reports whether a route's only condition is the client: it is
// decided before any prompt (RouteClient) and never matches an answer.
func clientOnly(r config.Route) bool { return len(r.EmailDomains) == 0 && r.Option == nil }

func routeTarget(r config.Route) Target {
	return Target{Local: r.Local, Downstream: r.Downstream, App: r.App}
}

// matchClient is the one matching rule of RouteClient and Explain: the
// first client-only route naming clientID, and its index; -1 if none.
func (f *Federator) matchClient(clientID string) (int, Target) {
	for i, r := range f.routes {
		if clientOnly(r) && contains(r.Clients, clientID) {
			return i, routeTarget(r)
		}
	}
	return -1, Target{}
}

// phone is E.164-like: a plus and 7 to 15 digits.
var phone = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// Answer validates a prompt answer and routes it (federation draft
// §4.3.3; docs/decisions.md Q11). Keys other than the prompt's own (and
// auth_session/client_id) are rejected; option values must be offered;
// email and phone must be well-formed. The routing never depends on
// whether a user exists.
func (f *Federator) Answer(clientID string, answers url.Values) (Target, error) {
	if f.prompt == nil {
		return Target{}, ErrInvalidAnswer
	}
	got, reason := f.validateAnswer(answers)
	if reason != "" {
		return Target{}, fmt.Errorf("%w: %s", ErrInvalidAnswer, reason)
	}
	_, t := f.matchAnswer(clientID, got)
	return t, nil
}

// validateAnswer checks a prompt answer against f.prompt (non-nil) and
// returns the answered keys and values, or why the answer is refused.
// It is the one validation of Answer and Explain.
func (f *Federator) validateAnswer(answers url.Values) (map[string]string, string) {
	known := map[string]bool{"auth_session": true, "client_id": true}
	got := map[string]string{}
	for _, o := range f.prompt.Options {
		known[o.Key] = true
		if v := answers.Get(o.Key); v != "" {
			ok := false
			for _, val := range o.Values {
				if val.Value == v {
					ok = true
				}
			}
			if !ok {
				return nil, o.Key + " is not one of the offered values"
			}
			got[o.Key] = v
		}
	}
	for _, in := range f.prompt.Inputs {
		known[in.Key] = true
		v := answers.Get(in.Key)
		if v == "" {
			continue
		}
		if len(v) > 254 {
			return nil, in.Key + " is too long"
		}
		switch in.Key {
		case "email":
			a, err := mail.ParseAddress(v)
			if err != nil || a.Address != v || a.Name != "" || strings.Count(v, "@") != 1 {
				return nil, "email is not a valid address"
			}
		case "phone":
			if !phone.MatchString(v) {
				return nil, "phone must be in E.164 form (+15551234567)"
			}
		}
		got[in.Key] = v
	}
	for k := range answers {
		if !known[k] {
			return nil, "unexpected parameter"
		}
	}
	if len(got) == 0 {
		return nil, "answer the prompt"
	}
	return got, ""
}

// answerDomain is the lower-cased domain of an answered email, or "".
func answerDomain(got map[string]string) string {
	if e := got["email"]; e != "" {
		return strings.ToLower(e[strings.LastIndex(e, "@")+1:])
	}
	return ""
}

// answerMatches reports whether route r matches a validated answer of
// clientID's user.
func answerMatches(r config.Route, clientID, domain string, got map[string]string) bool {
	if clientOnly(r) {
		return false // client-only routes were decided before the prompt
	}
	if len(r.Clients) > 0 && !contains(r.Clients, clientID) {
		return false
	}
	if len(r.EmailDomains) > 0 && !containsFold(r.EmailDomains, domain) {
		return false
	}
	if r.Option != nil && got[r.Option.Key] != r.Option.Value {
		return false
	}
	return true
}

// matchAnswer is the one routing rule of Answer and Explain for a
// validated answer: the first matching route and its index, else the
// default route and -1.
func (f *Federator) matchAnswer(clientID string, got map[string]string) (int, Target) {
	domain := answerDomain(got)
	for i, r := range f.routes {
		if answerMatches(r, clientID, domain, got) {
			return i, routeTarget(r)
		}
	}
	return -1, f.defaultTarget()
}

// defaultTarget is the target of default_route: empty and "local" sign in
// locally, "deny" refuses, anything else names a downstream.
// DefaultRoute is the target of default_route, for a request no route
// and no prompt decides.
func (f *Federator) DefaultRoute() Target { return f.defaultTarget() }

func (f *Federator) defaultTarget() Target {
	switch f.def {
	case "", "local":
		return Target{Local: true}
	case "deny":
		return Target{Deny: true}
	}
	return Target{Downstream: f.def}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func containsFold(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// dpopFor is our DPoP key for a downstream that advertises DPoP with an
// algorithm our key uses (RFC 9449 §5.1), else nil. A server that does
// not know DPoP ignores dpop_jkt and answers Bearer, which a bound hop
// must refuse; so we bind only where binding can work (docs/decisions.md Q5).
func (f *Federator) dpopFor(meta Metadata) *dpop.Key {
	if f.dpop == nil || !contains(meta.DPoPAlgs, string(f.dpop.Alg())) {
		return nil
	}
	return f.dpop
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// client returns the PAR/token client of one call. redirectURI is the
// hop's (empty for native hops): par sends it in the PAR and, identically,
// at the token endpoint (RFC 6749 §4.1.3). Clients are kept per
// downstream, by the metadata endpoints they post to and the hop's shape
// (par.New validates its URLs and copies the HTTP client: twice a
// federated flow otherwise; issue 13 profile); a metadata refresh that
// moves an endpoint gets a new one.
func (f *Federator) client(ds *downstream, meta Metadata, redirectURI string, key *dpop.Key) *par.Client {
	k := clientKey{parURL: meta.PAREndpoint, tokenURL: meta.TokenEndpoint, redirectURI: redirectURI, dpop: key != nil}
	ds.mu.RLock()
	c := ds.clients[k]
	ds.mu.RUnlock()
	if c != nil {
		return c
	}
	c = par.New(par.Options{
		Issuer:        ds.cfg.Issuer,
		PAREndpoint:   meta.PAREndpoint,
		TokenEndpoint: meta.TokenEndpoint,
		RedirectURI:   redirectURI,
		Auth:          ds.auth,
		Timeout:       ds.http.Timeout,
		HTTPClient:    ds.http,
		Logger:        f.log.Named("par"),
		DPoP:          key,
	})
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.clients == nil || len(ds.clients) >= maxClients {
		ds.clients = make(map[clientKey]*par.Client, 2)
	}
	ds.clients[k] = c
	return c
}

// Begin starts a hop to downstream id: it resolves the downstream's
// metadata from its configured issuer only, refuses downstreams without a
// native endpoint before any PAR, and pushes a request with a fresh S256
// PKCE pair, state and nonce (RFC 9126 §2; RFC 9700 §2.1.1).
func (f *Federator) Begin(ctx context.Context, id string, r HopRequest) (Hop, Federate, error) {
	ds, ok := f.ds[id]
	if !ok {
		return Hop{}, Federate{}, ErrHopGone
	}
	// The downstream's timeout bounds discovery too, not only PAR.
	ctx, cancel := context.WithTimeout(ctx, ds.http.Timeout)
	defer cancel()
	meta, err := f.meta.Get(ctx, ds.cfg.Issuer)
	if err != nil {
		return Hop{}, Federate{}, err
	}
	if !meta.SupportsNative() {
		return Hop{}, Federate{}, ErrFederateUnsupported
	}
	if meta.PAREndpoint == "" {
		return Hop{}, Federate{}, fmt.Errorf("%w: downstream has no PAR endpoint", ErrFederateUnsupported)
	}
	hop, challenge := f.newHop(id, ds, r, r.RedirectURI)
	// The native PAR leaves redirect_uri out (docs/decisions.md Q14).
	pushed, err := f.push(ctx, ds, meta, &hop, "", challenge, r, r.NativeCallbackURI)
	if err != nil {
		return Hop{}, Federate{}, err
	}
	body := url.Values{"client_id": {ds.cfg.ClientID}, "request_uri": {pushed.RequestURI}, "response_type": {"code"}}
	return hop, Federate{FederationURI: meta.NativeEndpoint, FederationBody: body.Encode()}, nil
}

// push sends a hop's request to the downstream's PAR endpoint with our
// client authentication (RFC 9126 §2), binding the code to our DPoP key
// where the downstream supports it (hop.DPoP records whether it did).
func (f *Federator) push(ctx context.Context, ds *downstream, meta Metadata, hop *Hop, redirectURI, challenge string, r HopRequest, nativeCallback string) (par.Pushed, error) {
	key := f.dpopFor(meta)
	hop.DPoP = key != nil
	return f.client(ds, meta, redirectURI, key).Push(ctx, par.Request{
		ClientID:          ds.cfg.ClientID,
		Scope:             f.mapScope(ds, r.Scope),
		State:             hop.State,
		Nonce:             hop.Nonce,
		ACRValues:         r.ACRValues,
		MaxAge:            r.MaxAge,
		CodeChallenge:     challenge,
		NativeCallbackURI: nativeCallback,
	})
}

// newHop pins a hop's state: a fresh S256 PKCE pair, the state (r.State
// if set), a fresh nonce (RFC 9700 §2.1.1, §4.5.3), and what Complete must
// check against what we forward (max_age, acr_values). It returns the
// code_challenge to send.
func (f *Federator) newHop(id string, ds *downstream, r HopRequest, redirectURI string) (Hop, string) {
	verifier, challenge := par.NewPKCE()
	state := r.State
	if state == "" {
		state = random(16)
	}
	hop := Hop{ID: random(32), Downstream: id, Issuer: ds.cfg.Issuer, Verifier: verifier, State: state, Nonce: random(16),
		Began: f.now(), ACRValues: r.ACRValues, RedirectURI: redirectURI}
	if r.MaxAge != nil {
		v := *r.MaxAge
		hop.MaxAge = &v
	}
	return hop, challenge
}

// SupportsNative reports whether Begin can federate to downstream id: its
// metadata, fetched from the configured issuer only, advertises a native
// endpoint (federation draft §4.1; docs/decisions.md Q1) and a PAR endpoint
// (RFC 9126 §5). It pushes nothing, so a caller can choose between Begin
// and BeginWeb (docs/decisions.md Q19). An unknown id is ErrHopGone;
// metadata failures match ErrUnavailable or ErrIssuerMismatch.
func (f *Federator) SupportsNative(ctx context.Context, id string) (bool, error) {
	ds, ok := f.ds[id]
	if !ok {
		return false, ErrHopGone
	}
	ctx, cancel := context.WithTimeout(ctx, ds.http.Timeout)
	defer cancel()
	meta, err := f.meta.Get(ctx, ds.cfg.Issuer)
	if err != nil {
		return false, err
	}
	return meta.SupportsNative() && meta.PAREndpoint != "", nil
}

// BeginWeb starts a hop to downstream id through the browser, for a
// downstream without a native endpoint (docs/decisions.md Q19): a standard
// authorization code flow (RFC 6749 §4.1) whose response comes back to
// redirectURI, our web callback. It returns the hop and the URL to send
// the browser to.
//
// Metadata comes from the configured issuer only; a downstream without an
// authorization_endpoint is refused with an error matching
// ErrFederateUnsupported before any other request. With a PAR endpoint the
// request (redirect_uri, fresh S256 PKCE, state, nonce, dpop_jkt of our
// key as in Begin) is pushed with our client authentication and the URL
// carries only client_id and request_uri (RFC 9126 §4); the hop is then
// DPoP-bound. Without one the URL carries the whole request (RFC 6749
// §4.1.1; OIDC Core §3.1.2.1); dpop_jkt is not sent there, so the hop is
// not DPoP-bound and a Bearer token is accepted. HopRequest's
// NativeCallbackURI is not forwarded: the response goes to redirectURI.
func (f *Federator) BeginWeb(ctx context.Context, id string, r HopRequest, redirectURI string) (Hop, string, error) {
	if u, err := url.Parse(redirectURI); err != nil || !u.IsAbs() || u.Fragment != "" || u.Host == "" {
		// Our configuration, never the client's input (RFC 6749 §3.1.2).
		return Hop{}, "", errors.New("federation: BeginWeb: redirect_uri must be an absolute URI without fragment")
	}
	if r.MaxAge != nil && *r.MaxAge < 0 {
		return Hop{}, "", errors.New("federation: BeginWeb: negative max_age")
	}
	ds, ok := f.ds[id]
	if !ok {
		return Hop{}, "", ErrHopGone
	}
	ctx, cancel := context.WithTimeout(ctx, ds.http.Timeout)
	defer cancel()
	meta, err := f.meta.Get(ctx, ds.cfg.Issuer)
	if err != nil {
		return Hop{}, "", err
	}
	if meta.AuthorizationEndpoint == "" {
		return Hop{}, "", fmt.Errorf("%w: downstream has no authorization_endpoint", ErrFederateUnsupported)
	}
	if meta.RequirePAR && meta.PAREndpoint == "" {
		// RFC 9126 §5: it would refuse the query; do not send the user there.
		return Hop{}, "", fmt.Errorf("%w: downstream requires PAR but has no PAR endpoint", ErrFederateUnsupported)
	}
	authz, err := url.Parse(meta.AuthorizationEndpoint)
	if err != nil {
		return Hop{}, "", fmt.Errorf("%w: authorization_endpoint: %v", ErrUnavailable, err)
	}
	// RFC 6749 §3.1: the endpoint's own query MUST be retained.
	q := authz.Query()
	hop, challenge := f.newHop(id, ds, r, redirectURI)
	if meta.PAREndpoint != "" {
		// A standard server gets no native parameters.
		pushed, err := f.push(ctx, ds, meta, &hop, redirectURI, challenge, r, "")
		if err != nil {
			return Hop{}, "", err
		}
		q.Set("client_id", ds.cfg.ClientID)
		q.Set("request_uri", pushed.RequestURI)
	} else {
		q.Set("response_type", "code")
		q.Set("client_id", ds.cfg.ClientID)
		q.Set("redirect_uri", redirectURI)
		q.Set("scope", f.mapScope(ds, r.Scope))
		q.Set("state", hop.State)
		q.Set("nonce", hop.Nonce)
		q.Set("code_challenge", challenge)
		q.Set("code_challenge_method", "S256")
		if r.MaxAge != nil {
			q.Set("max_age", strconv.Itoa(*r.MaxAge))
		}
		if r.ACRValues != "" {
			q.Set("acr_values", r.ACRValues)
		}
	}
	authz.RawQuery = q.Encode()
	return hop, authz.String(), nil
}

// CheckResponseIss applies RFC 9207 §2.4 to an authorization response that
// came back through the browser, before its code or error is acted on:
// an iss that differs from the hop's pinned issuer is ErrMixUp, and so is
// a missing iss when the downstream's metadata advertises
// authorization_response_iss_parameter_supported (RFC 9207 §3), since an
// attacker's AS would simply leave it out. A hop whose downstream is gone
// or re-pointed is ErrHopGone; metadata failures match ErrUnavailable.
func (f *Federator) CheckResponseIss(ctx context.Context, hop Hop, iss string) error {
	if iss != "" {
		// Exact comparison, no normalisation (RFC 9207 §2.4).
		if iss != hop.Issuer {
			return ErrMixUp
		}
		return nil
	}
	ds, ok := f.ds[hop.Downstream]
	if !ok || ds.cfg.Issuer != hop.Issuer {
		return ErrHopGone
	}
	ctx, cancel := context.WithTimeout(ctx, ds.http.Timeout)
	defer cancel()
	meta, err := f.meta.Get(ctx, hop.Issuer)
	if err != nil {
		return err
	}
	if meta.IssParameterSupported {
		return fmt.Errorf("%w: iss missing although the downstream advertises it", ErrMixUp)
	}
	return nil
}

// mapScope forwards only mapped scopes, and always openid: the downstream
// identity must arrive as a signed ID token.
func (f *Federator) mapScope(ds *downstream, scope string) string {
	out := []string{"openid"}
	for _, s := range strings.Fields(scope) {
		if m, ok := ds.scope[s]; ok && m != "openid" && !contains(out, m) {
			out = append(out, m)
		}
	}
	return strings.Join(out, " ")
}

// Complete finishes a hop with the downstream's code: the code goes only
// to the token endpoint of the issuer pinned in the hop, with the hop's
// verifier, its redirect_uri if it has one (RFC 6749 §4.1.3) and our
// client authentication; the ID token must be signed by that issuer's
// keys, for our client_id, with the hop's nonce (OIDC Core §3.1.3.7).
//
// It also checks the result against what the hop forwarded: a DPoP-bound
// hop needs token_type DPoP (RFC 9449 §5), or ErrRejected; a forwarded
// max_age needs an auth_time no older than max_age + AuthTimeLeeway, or
// ErrAuthTooOld; forwarded acr_values need an acr among them, or
// ErrACRNotMet (OIDC Core §3.1.3.7 steps 12-13). Both also match
// ErrRejected, so test for them first.
func (f *Federator) Complete(ctx context.Context, hop Hop, code, iss string) (Identity, error) {
	if iss != "" && iss != hop.Issuer {
		return Identity{}, ErrMixUp
	}
	ds, ok := f.ds[hop.Downstream]
	if !ok || ds.cfg.Issuer != hop.Issuer {
		return Identity{}, ErrHopGone
	}
	ctx, cancel := context.WithTimeout(ctx, ds.http.Timeout)
	defer cancel()
	meta, err := f.meta.Get(ctx, hop.Issuer)
	if err != nil {
		return Identity{}, err
	}
	var key *dpop.Key
	if hop.DPoP {
		key = f.dpop
	}
	tok, err := f.client(ds, meta, hop.RedirectURI, key).Exchange(ctx, code, hop.Verifier)
	if err != nil {
		if errors.Is(err, par.ErrUnavailable) {
			return Identity{}, err
		}
		return Identity{}, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	switch {
	case hop.DPoP && !strings.EqualFold(tok.TokenType, "dpop"):
		// Our PAR bound the code to our key: a Bearer token means the
		// downstream ignored dpop_jkt, and the code was never protected.
		return Identity{}, fmt.Errorf("%w: token_type %.20q for a DPoP-bound code", ErrRejected, tok.TokenType)
	case !strings.EqualFold(tok.TokenType, "bearer") && !strings.EqualFold(tok.TokenType, "dpop"):
		return Identity{}, fmt.Errorf("%w: token_type %.20q", ErrRejected, tok.TokenType)
	}
	if tok.IDToken == "" {
		return Identity{}, fmt.Errorf("%w: no id_token", ErrRejected)
	}
	claims, err := VerifyIDToken(ctx, tok.IDToken, IDTokenParams{
		Issuer: hop.Issuer, ClientID: ds.cfg.ClientID, Nonce: hop.Nonce,
		JWKSURI: meta.JWKSURI, Keys: f.jwks, Algs: ds.algs, Now: f.Now,
	})
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			return Identity{}, err
		}
		return Identity{}, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	if err := f.checkAuthContext(hop, claims); err != nil {
		return Identity{}, err
	}
	id := Identity{Issuer: claims.Issuer, Subject: claims.Subject, AMR: claims.AMR, AuthTime: claims.AuthTime, ACR: claims.ACR, Claims: map[string]any{}}
	for _, k := range ds.cfg.Claims {
		if v, ok := claims.Extra[k]; ok {
			id.Claims[k] = v
		}
	}
	return id, nil
}

// checkAuthContext applies OIDC Core §3.1.3.7 steps 12-13 to what the hop
// forwarded: the downstream must have honoured max_age and acr_values, or
// the identity does not carry the assurance our client asked for.
func (f *Federator) checkAuthContext(hop Hop, c IDClaims) error {
	if !c.AuthTime.IsZero() && c.AuthTime.Sub(f.now()) > AuthTimeLeeway {
		// An authentication in the future would meet any max_age.
		return fmt.Errorf("%w: auth_time is in the future", ErrRejected)
	}
	if hop.MaxAge != nil {
		if c.AuthTime.IsZero() {
			return fmt.Errorf("%w: %w: no auth_time although max_age was requested", ErrAuthTooOld, ErrRejected)
		}
		limit := time.Duration(*hop.MaxAge)*time.Second + AuthTimeLeeway
		if age := f.now().Sub(c.AuthTime); age > limit {
			return fmt.Errorf("%w: %w: auth_time is %s old, max_age %d s", ErrAuthTooOld, ErrRejected, age.Truncate(time.Second), *hop.MaxAge)
		}
	}
	if hop.ACRValues != "" && (c.ACR == "" || !contains(strings.Fields(hop.ACRValues), c.ACR)) {
		return fmt.Errorf("%w: %w: acr %.40q is not one of the requested values", ErrACRNotMet, ErrRejected, c.ACR)
	}
	return nil
}

// Downstream reports a configured downstream's issuer.
func (f *Federator) Downstream(id string) (issuer string, ok bool) {
	ds, ok := f.ds[id]
	if !ok {
		return "", false
	}
	return ds.cfg.Issuer, true
}
