package probe

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/federation"
	"github.com/fedas/fedas/netguard"
	"github.com/fedas/fedas/par"
)

// DefaultMaxBytes bounds each response body when Options.MaxBytes is zero:
// real metadata, JWK Sets and PAR responses are a few KiB.
const DefaultMaxBytes = 64 << 10

// Step names, in the order Check reports them (Discover reports the first
// five).
const (
	StepMetadata       = "metadata"
	StepIssuer         = "issuer"
	StepNativeEndpoint = "native_endpoint"
	StepPAREndpoint    = "par_endpoint"
	StepTokenEndpoint  = "token_endpoint"
	StepJWKS           = "jwks"
	StepPAR            = "par"
)

// Step statuses.
const (
	StatusOK      = "ok"
	StatusWarn    = "warn"
	StatusFail    = "fail"
	StatusSkipped = "skipped"
)

// Options bound and guard every fetch: the metadata (RFC 8414 §3), the JWK
// Set (RFC 7517 §5) and the PAR (RFC 9126 §2) all go through one
// netguard.Client(Net), and each response body is cut off at MaxBytes.
type Options struct {
	Net      netguard.Options // SSRF guard; AllowLoopback only for dev
	MaxBytes int64            // per response body (default 64 KiB)
}

func (o Options) maxBytes() int64 {
	if o.MaxBytes > 0 {
		return o.MaxBytes
	}
	return DefaultMaxBytes
}

// Step is the outcome of one check. Detail is written for an admin and
// holds no secret; what the downstream chose is quoted and capped in it.
type Step struct {
	Name   string `json:"name"`   // "metadata", "issuer", "native_endpoint", "par_endpoint", "token_endpoint", "jwks", "par"
	Status string `json:"status"` // "ok", "warn", "fail", "skipped"
	Detail string `json:"detail"` // plain words, safe to show (downstream strings quoted and capped)
	URL    string `json:"url,omitempty"`
}

// Report is the outcome of Check: the steps in order, OK when none failed
// (a warning does not stop federation, a failure does).
type Report struct {
	Issuer string `json:"issuer"`
	OK     bool   `json:"ok"`     // no step failed
	Native bool   `json:"native"` // the downstream has a native endpoint; false ⇒ say that federating clients get native_authorization_federate_unsupported (or browser federation if the downstream has browser_federation set)
	Steps  []Step `json:"steps"`
}

// Check probes downstream d (its secrets already resolved: d.Auth.Key /
// d.Auth.Secret) as the AS with issuer ourIssuer and web-callback redirect
// URI redirectURI would use it. It always returns all seven steps, in the
// order of the Step constants; a step that cannot run (because an earlier
// one failed) is "skipped".
//
//  1. metadata: GET of the RFC 8414 §3.1 well-known URL of d.Issuer (the
//     same URL federation.MetadataCache fetches), 200 application/json
//     (RFC 8414 §3.2), body bounded, a JSON object.
//  2. issuer: the metadata's issuer is identical to d.Issuer (RFC 8414
//     §3.3); otherwise nothing in the document is trusted and every later
//     step is skipped.
//  3. native_endpoint: authorization_challenge_endpoint (FiPA) or
//     native_authorization_endpoint (federation draft §4.1); absent is a
//     warning, since federating clients then get
//     native_authorization_federate_unsupported, or browser federation
//     when d.BrowserFederation is set. A refused authorization_endpoint
//     fails it, since federation discards metadata naming an unusable
//     endpoint.
//  4. par_endpoint: pushed_authorization_request_endpoint (RFC 9126 §5)
//     is required: fedas federates only through PAR.
//  5. token_endpoint (RFC 8414 §2), and whether it lists d.Auth.Method in
//     token_endpoint_auth_methods_supported.
//  6. jwks: GET of jwks_uri, a JWK Set (RFC 7517 §5) with at least one
//     public signing key, kept by the rules of federation's JWKS cache.
//  7. par: one real PAR (RFC 9126 §2.1) through par.Client, with our
//     client authentication exactly as the federator sends it
//     (private_key_jwt per RFC 7523 §2.2 with aud = d.Issuer, or
//     client_secret_basic), response_type=code, scope openid, a fresh
//     S256 PKCE challenge, state, nonce, redirect_uri = redirectURI (as a
//     browser federation sends it; omitted when empty, as the native PAR
//     omits it) and, when the downstream advertises EdDSA DPoP, dpop_jkt
//     of a throwaway key. 201 with request_uri and expires_in is ok
//     (RFC 9126 §2.2); the request_uri is never used.
func Check(ctx context.Context, d config.Downstream, ourIssuer, redirectURI string, o Options) Report {
	r := Report{Issuer: d.Issuer}
	c := newClient(o)
	var md *metadata
	r.Steps, md = fetchAndMatch(ctx, c, d.Issuer, ourIssuer, o)
	if md == nil {
		r.Steps = appendSkipped(r.Steps, "not checked: no trusted metadata (see above)",
			StepNativeEndpoint, StepPAREndpoint, StepTokenEndpoint, StepJWKS, StepPAR)
		return r.finish()
	}
	native, parEP, token := endpointSteps(d, md, o)
	r.Native = native.Status == StatusOK
	r.Steps = append(r.Steps, native, parEP, token, jwksStep(ctx, c, d, md, o))
	switch {
	case parEP.Status == StatusFail:
		r.Steps = appendSkipped(r.Steps, "not pushed: no usable PAR endpoint", StepPAR)
	case token.Status == StatusFail:
		// par.Client refuses to run without a valid token endpoint; the
		// token step already says what is wrong.
		r.Steps = appendSkipped(r.Steps, "not pushed: no usable token endpoint", StepPAR)
	default:
		r.Steps = append(r.Steps, pushStep(ctx, c, d, md, redirectURI, o))
	}
	return r.finish()
}

func (r Report) finish() Report {
	r.OK = true
	for _, s := range r.Steps {
		if s.Status == StatusFail {
			r.OK = false
		}
	}
	return r
}

// ourAlgs are the ID token algorithms fedas can verify (the config's
// id_token_algs allow-list), in the order Discover prefills them: the FAPI
// 2.0 ones first, RS256 last (OIDC Core §15.1 makes it mandatory to
// implement, FAPI forbids it).
var ourAlgs = []string{"ES256", "PS256", "EdDSA", "RS256"}

// Discover fetches issuer's metadata (RFC 8414 §3) and returns a downstream
// prefilled from it, plus the steps of the metadata checks (metadata,
// issuer, native_endpoint, par_endpoint, token_endpoint, the same checks
// as Check) whose details carry the notes for the admin (e.g. "no PAR
// endpoint: fedas cannot federate to it"). Nothing is fetched beyond the
// metadata and no credentials are used.
//
// Prefilled: Issuer; Name, the issuer's host; IDTokenAlgs, the
// downstream's id_token_signing_alg_values_supported that fedas accepts
// (ES256, PS256, EdDSA, RS256), nil (the config default) when none; Auth.Method
// private_key_jwt (RFC 7523 §2.2) when token_endpoint_auth_methods_supported
// lists it, else client_secret_basic (RFC 8414 §2's default); Scopes
// openid→openid; BrowserFederation when the downstream has no native
// endpoint but an authorization_endpoint. ID, ClientID and the key or
// secret are left for the admin.
//
// The error is non-nil when there is nothing to prefill from: the issuer
// is refused (it matches netguard.ErrForbidden), the metadata cannot be
// fetched or parsed, or its issuer differs (it matches
// federation.ErrIssuerMismatch). The steps say the same in plain words.
func Discover(ctx context.Context, issuer string, o Options) (config.Downstream, []Step, error) {
	c := newClient(o)
	meta, md, err := fetchMetadata(ctx, c, issuer, o)
	steps := []Step{meta}
	if err != nil {
		steps = appendSkipped(steps, "not checked: no metadata", StepIssuer, StepNativeEndpoint, StepPAREndpoint, StepTokenEndpoint)
		return config.Downstream{}, steps, err
	}
	is, err := issuerStep(issuer, md)
	steps = append(steps, is)
	if err != nil {
		steps = appendSkipped(steps, "not checked: the metadata is not trusted", StepNativeEndpoint, StepPAREndpoint, StepTokenEndpoint)
		return config.Downstream{}, steps, err
	}
	d := config.Downstream{
		Issuer: issuer,
		Scopes: map[string]string{"openid": "openid"},
		Auth:   config.DownstreamAuth{Method: "client_secret_basic"},
	}
	if u, err := url.Parse(issuer); err == nil {
		d.Name = u.Hostname()
	}
	for _, a := range ourAlgs {
		if contains(md.IDTokenAlgs, a) {
			d.IDTokenAlgs = append(d.IDTokenAlgs, a)
		}
	}
	if contains(md.TokenEndpointAuthMethods, "private_key_jwt") {
		d.Auth.Method = "private_key_jwt"
	}
	native, _ := md.native()
	d.BrowserFederation = native == "" && md.AuthorizationEndpoint != ""

	switch {
	case md.IDTokenAlgs == nil:
		warn(&steps[0], "id_token_signing_alg_values_supported is absent: id_token_algs left at the default (ES256, PS256, EdDSA)")
	case d.IDTokenAlgs == nil:
		warn(&steps[0], "id_token_signing_alg_values_supported "+quoteList(md.IDTokenAlgs)+
			" lists none of ES256, PS256, EdDSA, RS256: fedas cannot verify this downstream's ID tokens")
	}
	native2, parEP, token := endpointSteps(d, md, o)
	steps = append(steps, native2, parEP, token)
	return d, steps, nil
}

// fetchAndMatch runs Check's first two steps; md is nil unless both passed.
func fetchAndMatch(ctx context.Context, c *client, issuer, ourIssuer string, o Options) ([]Step, *metadata) {
	if issuer != "" && issuer == ourIssuer {
		return []Step{
			{Name: StepMetadata, Status: StatusFail, Detail: "the downstream's issuer is our own issuer: fedas would federate to itself"},
			{Name: StepIssuer, Status: StatusSkipped, Detail: "not checked: no metadata"},
		}, nil
	}
	meta, md, err := fetchMetadata(ctx, c, issuer, o)
	if err != nil {
		return []Step{meta, {Name: StepIssuer, Status: StatusSkipped, Detail: "not checked: no metadata"}}, nil
	}
	is, err := issuerStep(issuer, md)
	if err != nil {
		return []Step{meta, is}, nil
	}
	return []Step{meta, is}, md
}

// issuerStep applies RFC 8414 §3.3: the metadata's issuer must be identical
// to the configured one, byte for byte; a mismatch may be another AS
// impersonating this one (mix-up, RFC 9700 §4.4), so nothing else in the
// document is trusted.
func issuerStep(issuer string, md *metadata) (Step, error) {
	s := Step{Name: StepIssuer}
	if md.Issuer != issuer {
		s.Status = StatusFail
		s.Detail = "the metadata's issuer is " + quote(md.Issuer) + ", not the configured " + quote(issuer) +
			" (RFC 8414 §3.3 requires them identical): the metadata is not trusted and fedas refuses to federate"
		return s, fmt.Errorf("%w: %s", federation.ErrIssuerMismatch, s.Detail)
	}
	s.Status = StatusOK
	s.Detail = "issuer " + quote(issuer) + " matches the configured issuer (RFC 8414 §3.3)"
	return s, nil
}

// endpointSteps checks the endpoints named by trusted metadata, without
// fetching any of them.
func endpointSteps(d config.Downstream, md *metadata, o Options) (native, parEP, token Step) {
	return nativeStep(d, md, o), parEndpointStep(md, o), tokenStep(d, md, o)
}

const unsupported = "federating clients get native_authorization_federate_unsupported"

func nativeStep(d config.Downstream, md *metadata, o Options) Step {
	s := Step{Name: StepNativeEndpoint}
	// federation rejects the whole document when any endpoint it names is
	// unusable, so a bad authorization_endpoint breaks native federation too.
	var authzErr string
	if md.AuthorizationEndpoint != "" {
		if err := netguard.CheckURL(md.AuthorizationEndpoint, o.Net); err != nil {
			authzErr = "authorization_endpoint refused: " + errText(err)
		}
	}
	name, v := md.native()
	switch {
	case v == "":
		s.Status = StatusWarn
		s.Detail = "no native endpoint (neither authorization_challenge_endpoint nor native_authorization_endpoint): "
		switch {
		case !d.BrowserFederation:
			s.Detail += unsupported + " (set browser_federation to send them through the browser instead)"
		case md.AuthorizationEndpoint == "":
			s.Detail += "browser_federation is set but there is no authorization_endpoint, so " + unsupported
		default:
			s.Detail += "browser_federation is set, so federating clients are sent through the browser to the authorization_endpoint"
			s.URL = safeURL(md.AuthorizationEndpoint)
		}
		if authzErr != "" {
			s.Status, s.Detail, s.URL = StatusFail, authzErr, ""
		}
	default:
		if err := netguard.CheckURL(v, o.Net); err != nil {
			s.Status = StatusFail
			s.Detail = name + " refused: " + errText(err)
			return s
		}
		s.Status, s.URL = StatusOK, safeURL(v)
		s.Detail = name + " present: federating clients are federated natively"
		if authzErr != "" {
			s.Status, s.Detail = StatusFail, authzErr
		}
	}
	return s
}

func parEndpointStep(md *metadata, o Options) Step {
	s := Step{Name: StepPAREndpoint}
	if md.PAREndpoint == "" {
		s.Status = StatusFail
		s.Detail = "no pushed_authorization_request_endpoint: fedas cannot federate to it (fedas federates only through PAR, RFC 9126 §5)"
		return s
	}
	if err := netguard.CheckURL(md.PAREndpoint, o.Net); err != nil {
		s.Status = StatusFail
		s.Detail = "pushed_authorization_request_endpoint refused: " + errText(err)
		return s
	}
	s.Status, s.URL = StatusOK, safeURL(md.PAREndpoint)
	s.Detail = "pushed_authorization_request_endpoint present (RFC 9126 §5)"
	if !contains(md.CodeChallengeMethods, "S256") {
		// RFC 8414 §2: absent means the AS does not support PKCE; fedas
		// always sends S256 (RFC 9700 §2.1.1) and relies on it.
		warn(&s, "code_challenge_methods_supported does not list S256: the downstream may ignore PKCE (RFC 7636, RFC 9700 §2.1.1)")
	}
	return s
}

func tokenStep(d config.Downstream, md *metadata, o Options) Step {
	s := Step{Name: StepTokenEndpoint}
	if md.TokenEndpoint == "" {
		s.Status = StatusFail
		s.Detail = "no token_endpoint (RFC 8414 §2): fedas cannot redeem codes and rejects this metadata"
		return s
	}
	if err := netguard.CheckURL(md.TokenEndpoint, o.Net); err != nil {
		s.Status = StatusFail
		s.Detail = "token_endpoint refused: " + errText(err)
		return s
	}
	s.Status, s.URL = StatusOK, safeURL(md.TokenEndpoint)
	s.Detail = "token_endpoint present (RFC 8414 §2)"
	methods := md.TokenEndpointAuthMethods
	if methods == nil {
		methods = []string{"client_secret_basic"} // RFC 8414 §2 default
	}
	switch m := d.Auth.Method; {
	case m != "private_key_jwt" && m != "client_secret_basic":
		if !contains(methods, "private_key_jwt") && !contains(methods, "client_secret_basic") {
			warn(&s, "token_endpoint_auth_methods_supported "+quoteList(methods)+
				" lists neither private_key_jwt nor client_secret_basic, the only methods fedas uses")
		}
	case !contains(methods, m):
		// RFC 9126 §2: the PAR endpoint takes the token endpoint's client
		// authentication, so this concerns both.
		warn(&s, "token_endpoint_auth_methods_supported "+quoteList(methods)+" does not list "+m+
			": the downstream may refuse our client authentication at the PAR and token endpoints (RFC 9126 §2)")
	}
	return s
}

// pushStep sends one PAR exactly as the federator builds it (federation.New
// and Federator.push), through our guarded client.
func pushStep(ctx context.Context, c *client, d config.Downstream, md *metadata, redirectURI string, o Options) Step {
	s := Step{Name: StepPAR, URL: safeURL(md.PAREndpoint)}
	auth, how, err := clientAuth(d)
	if err != nil {
		s.Status, s.Detail = StatusFail, err.Error()
		return s
	}
	sent := []string{"client_id " + quote(d.ClientID), "response_type=code", "scope openid", "PKCE S256", "state", "nonce"}
	if redirectURI != "" {
		sent = append(sent, "redirect_uri "+quote(redirectURI))
	}
	// The federator binds downstream codes to its Ed25519 DPoP key when the
	// downstream advertises EdDSA (RFC 9449 §10.1); a throwaway key of the
	// same kind checks that the downstream takes dpop_jkt.
	var key *dpop.Key
	if contains(md.DPoPAlgs, string(jose.EdDSA)) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err == nil {
			key, err = dpop.NewKey(priv, jose.EdDSA)
		}
		if err != nil {
			s.Status, s.Detail = StatusFail, "cannot make a DPoP key: "+errText(err)
			return s
		}
		sent = append(sent, "dpop_jkt")
	}
	timeout := d.Timeout
	if timeout == 0 {
		timeout = par.DefaultTimeout
	}
	pc := par.New(par.Options{
		Issuer:        d.Issuer,
		PAREndpoint:   md.PAREndpoint,
		TokenEndpoint: md.TokenEndpoint,
		RedirectURI:   redirectURI,
		Auth:          auth,
		Timeout:       timeout,
		HTTPClient:    c.http,
		DPoP:          key,
	})
	_, challenge := par.NewPKCE()
	pushed, err := pc.Push(ctx, par.Request{
		ClientID:      d.ClientID,
		Scope:         "openid",
		State:         random(16),
		Nonce:         random(16),
		CodeChallenge: challenge,
	})
	if err != nil {
		s.Status, s.Detail = StatusFail, parFailure(err)
		return s
	}
	s.Status = StatusOK
	s.Detail = fmt.Sprintf("the downstream accepted the pushed request: 201 with a request_uri, expires_in %d s (RFC 9126 §2.2); sent %s, authenticated with %s",
		int(pushed.ExpiresIn.Seconds()), strings.Join(sent, ", "), how)
	return s
}

// clientAuth builds our client authentication at d as federation.New does,
// and says in words how it authenticates. Its errors name the problem,
// never the key or the secret.
func clientAuth(d config.Downstream) (par.ClientAuth, string, error) {
	if d.ClientID == "" {
		return nil, "", errors.New("no client_id configured: fedas has no identity at the downstream")
	}
	switch d.Auth.Method {
	case "private_key_jwt":
		if d.Auth.Key == "" {
			return nil, "", errors.New("private_key_jwt needs a key (auth.key, key_env or key_file)")
		}
		var k jose.JSONWebKey
		if err := json.Unmarshal([]byte(d.Auth.Key), &k); err != nil {
			// The parser's message may quote the key; say only that it failed.
			return nil, "", errors.New("auth key is not a JSON Web Key (RFC 7517)")
		}
		a, err := par.NewPrivateKeyJWT(d.ClientID, k)
		if err != nil {
			return nil, "", fmt.Errorf("auth key unusable for private_key_jwt: %v", err)
		}
		return a, "private_key_jwt (RFC 7523 §2.2, kid " + quote(k.KeyID) + ", aud " + quote(d.Issuer) + ")", nil
	case "client_secret_basic":
		if d.Auth.Secret == "" {
			return nil, "", errors.New("client_secret_basic needs a secret (auth.secret_env or secret_file)")
		}
		return &par.ClientSecretBasic{ClientID: d.ClientID, Secret: d.Auth.Secret}, "client_secret_basic (RFC 6749 §2.3.1)", nil
	}
	return nil, "", fmt.Errorf("auth.method %s is not private_key_jwt or client_secret_basic", quote(d.Auth.Method))
}

// parFailure puts a failed push in words. par has already reduced the
// downstream's error and error_description to RFC 6749 §5.2 characters
// and capped them; they are quoted again here.
func parFailure(err error) string {
	var pe *par.Error
	if !errors.As(err, &pe) {
		return "push failed: " + errText(err)
	}
	var b strings.Builder
	switch {
	case pe.Status >= 300 && pe.Status < 400:
		fmt.Fprintf(&b, "HTTP %d: redirect not followed (a redirected POST would carry our client credentials elsewhere)", pe.Status)
		return b.String()
	case pe.Status != 0 && pe.Code != "":
		verdict := "the downstream refused the pushed request"
		if pe.Temporary {
			verdict = "the downstream failed (temporary; retry later)"
		}
		fmt.Fprintf(&b, "HTTP %d: %s: error %s", pe.Status, verdict, quote(pe.Code))
		if pe.Description != "" && !strings.HasPrefix(pe.Description, "downstream returned ") {
			b.WriteString(", error_description " + quote(pe.Description))
		}
		if pe.Code == "invalid_client" {
			b.WriteString(" (check client_id and the key or secret registered at the downstream)")
		}
	case pe.Status == http.StatusCreated:
		// 201 but a body par refuses (RFC 9126 §2.2).
		fmt.Fprintf(&b, "HTTP 201 with an unusable body (RFC 9126 §2.2): %s", pe.Description)
	case pe.Status != 0:
		fmt.Fprintf(&b, "HTTP %d, want 201 (RFC 9126 §2.2)", pe.Status)
		if pe.Description != "" && !strings.HasPrefix(pe.Description, "downstream returned ") {
			// Possibly the downstream's error_description without a
			// usable error code.
			b.WriteString(": " + quote(pe.Description))
		}
	default:
		b.WriteString(pe.Description)
	}
	if cause := errors.Unwrap(pe); cause != nil {
		if errors.Is(cause, netguard.ErrBodyTooLarge) {
			b.WriteString(": response body exceeds the limit")
		} else {
			b.WriteString(": " + errText(cause))
		}
	}
	return b.String()
}

func appendSkipped(steps []Step, detail string, names ...string) []Step {
	for _, n := range names {
		steps = append(steps, Step{Name: n, Status: StatusSkipped, Detail: detail})
	}
	return steps
}

// warn downgrades an ok step to warn and appends a note.
func warn(s *Step, note string) {
	if s.Status == StatusOK {
		s.Status = StatusWarn
	}
	s.Detail += "; " + note
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b)
}
