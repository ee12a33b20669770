package federation

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/par"
)

// Errors of a hop's life, mapped to protocol answers by the server.
var (
	// ErrFederateUnsupported: the downstream has no native endpoint in its
	// metadata (federation draft §4.1; native_authorization_federate_unsupported).
	ErrFederateUnsupported = errors.New("federation: downstream does not support native authorization")
	// ErrInvalidAnswer: a prompt answer is not one we offered or is malformed.
	ErrInvalidAnswer = errors.New("federation: invalid prompt answer")
	// ErrMixUp: the response names another issuer than the hop's
	// (RFC 9207 §2.4; PROTOCOL-NOTES Q8).
	ErrMixUp = errors.New("federation: response from another issuer")
	// ErrHopGone: the hop's downstream was removed or re-pointed since
	// federation began (SECURITY.md B12).
	ErrHopGone = errors.New("federation: downstream no longer configured for this hop")
	// ErrRejected: the downstream refused the code (terminal).
	ErrRejected = errors.New("federation: downstream rejected the request")
)

// Target is where a routing decision sends the user.
type Target struct {
	Local      bool
	Deny       bool
	Downstream string
	// App names one of our own apps (redirect_to_app).
	App string
}

// Hop is one federation level's server-side state: everything needed to
// finish it safely, pinned when it began (PROTOCOL-NOTES Q8).
type Hop struct {
	ID         string    `json:"id"`
	Downstream string    `json:"ds"`
	Issuer     string    `json:"iss"`
	Verifier   string    `json:"cv"`
	State      string    `json:"state"`
	Nonce      string    `json:"nonce"`
	Began      time.Time `json:"began"`
	Retried    bool      `json:"retried,omitempty"`
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
	Claims   map[string]any
}

type downstream struct {
	cfg   config.Downstream
	auth  par.ClientAuth
	http  *http.Client
	algs  []jose.SignatureAlgorithm
	scope map[string]string
}

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
	// dpop is our key for downstream codes (PROTOCOL-NOTES Q5).
	dpop *dpop.Key
}

// New builds a Federator from configuration. dpopSeed (32 bytes) derives
// our DPoP key for downstreams: an Ed25519 key, deterministic so that
// every instance sharing a store redeems codes another instance bound
// (nil: no DPoP binding of downstream codes).
func New(cfg *config.Config, log *zap.Logger, dpopSeed []byte) (*Federator, error) {
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
	f.meta = NewMetadataCache(MetadataOptions{AllowLoopbackHTTP: cfg.Dev.AllowLoopbackHTTP, Logger: log.Named("metadata")})
	f.jwks = NewJWKSCache(JWKSOptions{AllowLoopbackHTTP: cfg.Dev.AllowLoopbackHTTP, Logger: log.Named("jwks")})
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
		// One tuned transport per downstream (PERFORMANCE.md trap 3):
		// connection reuse, and a slow downstream cannot starve others.
		ds.http = &http.Client{Transport: par.NewTransport(), Timeout: timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for _, a := range d.IDTokenAlgs {
			ds.algs = append(ds.algs, jose.SignatureAlgorithm(a))
		}
		f.ds[d.ID] = ds
	}
	return f, nil
}

// HasPrompt reports whether routing needs an insufficient_information
// prompt.
func (f *Federator) HasPrompt() bool { return f.prompt != nil }

// UserPrompt returns the userPrompt member and the logo (federation draft
// §4.3.3, in the normative shape of PROTOCOL-NOTES Q11).
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
	for _, r := range f.routes {
		if len(r.EmailDomains) == 0 && r.Option == nil && contains(r.Clients, clientID) {
			return Target{Local: r.Local, Downstream: r.Downstream, App: r.App}, true
		}
	}
	return Target{}, false
}

// phone is E.164-like: a plus and 7 to 15 digits.
var phone = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// Answer validates a prompt answer and routes it (federation draft
// §4.3.3; PROTOCOL-NOTES Q11). Keys other than the prompt's own (and
// auth_session/client_id) are rejected; option values must be offered;
// email and phone must be well-formed. The routing never depends on
// whether a user exists.
func (f *Federator) Answer(clientID string, answers url.Values) (Target, error) {
	if f.prompt == nil {
		return Target{}, ErrInvalidAnswer
	}
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
				return Target{}, fmt.Errorf("%w: %s is not one of the offered values", ErrInvalidAnswer, o.Key)
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
			return Target{}, fmt.Errorf("%w: %s is too long", ErrInvalidAnswer, in.Key)
		}
		switch in.Key {
		case "email":
			a, err := mail.ParseAddress(v)
			if err != nil || a.Address != v || a.Name != "" || strings.Count(v, "@") != 1 {
				return Target{}, fmt.Errorf("%w: email is not a valid address", ErrInvalidAnswer)
			}
		case "phone":
			if !phone.MatchString(v) {
				return Target{}, fmt.Errorf("%w: phone must be in E.164 form (+15551234567)", ErrInvalidAnswer)
			}
		}
		got[in.Key] = v
	}
	var unknown []string
	for k := range answers {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return Target{}, fmt.Errorf("%w: unexpected parameter", ErrInvalidAnswer)
	}
	if len(got) == 0 {
		return Target{}, fmt.Errorf("%w: answer the prompt", ErrInvalidAnswer)
	}
	domain := ""
	if e := got["email"]; e != "" {
		domain = strings.ToLower(e[strings.LastIndex(e, "@")+1:])
	}
	for _, r := range f.routes {
		if len(r.EmailDomains) == 0 && r.Option == nil {
			continue // client-only routes were decided before the prompt
		}
		if len(r.Clients) > 0 && !contains(r.Clients, clientID) {
			continue
		}
		if len(r.EmailDomains) > 0 && !containsFold(r.EmailDomains, domain) {
			continue
		}
		if r.Option != nil && got[r.Option.Key] != r.Option.Value {
			continue
		}
		return Target{Local: r.Local, Downstream: r.Downstream, App: r.App}, nil
	}
	switch f.def {
	case "", "local":
		return Target{Local: true}, nil
	case "deny":
		return Target{Deny: true}, nil
	}
	return Target{Downstream: f.def}, nil
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

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (f *Federator) client(ds *downstream, meta Metadata) *par.Client {
	return par.New(par.Options{
		Issuer:        ds.cfg.Issuer,
		PAREndpoint:   meta.PAREndpoint,
		TokenEndpoint: meta.TokenEndpoint,
		Auth:          ds.auth,
		Timeout:       ds.http.Timeout,
		HTTPClient:    ds.http,
		Logger:        f.log.Named("par"),
		DPoP:          f.dpop,
	})
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
	verifier, challenge := par.NewPKCE()
	state := r.State
	if state == "" {
		state = random(16)
	}
	hop := Hop{ID: random(32), Downstream: id, Issuer: ds.cfg.Issuer, Verifier: verifier, State: state, Nonce: random(16), Began: time.Now()}
	pushed, err := f.client(ds, meta).Push(ctx, par.Request{
		ClientID:          ds.cfg.ClientID,
		Scope:             f.mapScope(ds, r.Scope),
		State:             hop.State,
		Nonce:             hop.Nonce,
		ACRValues:         r.ACRValues,
		MaxAge:            r.MaxAge,
		CodeChallenge:     challenge,
		NativeCallbackURI: r.NativeCallbackURI,
	})
	if err != nil {
		return Hop{}, Federate{}, err
	}
	body := url.Values{"client_id": {ds.cfg.ClientID}, "request_uri": {pushed.RequestURI}, "response_type": {"code"}}
	return hop, Federate{FederationURI: meta.NativeEndpoint, FederationBody: body.Encode()}, nil
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
// verifier and our client authentication; the ID token must be signed by
// that issuer's keys, for our client_id, with the hop's nonce.
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
	tok, err := f.client(ds, meta).Exchange(ctx, code, hop.Verifier)
	if err != nil {
		if errors.Is(err, par.ErrUnavailable) {
			return Identity{}, err
		}
		return Identity{}, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	if !strings.EqualFold(tok.TokenType, "bearer") && !strings.EqualFold(tok.TokenType, "dpop") {
		return Identity{}, fmt.Errorf("%w: token_type %q", ErrRejected, tok.TokenType)
	}
	if tok.IDToken == "" {
		return Identity{}, fmt.Errorf("%w: no id_token", ErrRejected)
	}
	claims, err := VerifyIDToken(ctx, tok.IDToken, IDTokenParams{
		Issuer: hop.Issuer, ClientID: ds.cfg.ClientID, Nonce: hop.Nonce,
		JWKSURI: meta.JWKSURI, Keys: f.jwks, Algs: ds.algs,
	})
	if err != nil {
		if errors.Is(err, ErrUnavailable) {
			return Identity{}, err
		}
		return Identity{}, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	id := Identity{Issuer: claims.Issuer, Subject: claims.Subject, AMR: claims.AMR, AuthTime: claims.AuthTime, Claims: map[string]any{}}
	for _, k := range ds.cfg.Claims {
		if v, ok := claims.Extra[k]; ok {
			id.Claims[k] = v
		}
	}
	return id, nil
}

// Downstream reports a configured downstream's issuer.
func (f *Federator) Downstream(id string) (issuer string, ok bool) {
	ds, ok := f.ds[id]
	if !ok {
		return "", false
	}
	return ds.cfg.Issuer, true
}
