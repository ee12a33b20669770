package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/fedas/fedas/dc/dcql"
)

// DigitalCredentials configures credential presentation (OpenID4VP 1.0)
// inside the native flow (docs/protocol.md "Digital credentials"). Off
// unless Enabled; then every rule, query and issuer is checked at load.
type DigitalCredentials struct {
	// Enabled turns the presentation step and the /dc/ endpoints on.
	Enabled bool `yaml:"enabled"`
	// Verifier is internal (default: fedas runs the OpenID4VP verifier)
	// or external (an EUDI-style verifier service: External).
	Verifier string `yaml:"verifier"`
	// SigningKeyFile is the PEM EC P-256 private key that signs request
	// objects (RFC 9101), internal verifier only.
	SigningKeyFile string `yaml:"signing_key_file"`
	// CertificateChainFile is the PEM certificate chain of that key, leaf
	// first: it is sent as x5c and names the verifier (client_id
	// x509_hash:<SHA-256 of the leaf>, OpenID4VP §5.9.3).
	CertificateChainFile string `yaml:"certificate_chain_file"`
	// ClientIDPrefix is x509_hash (default) or redirect_uri (unsigned
	// requests, only with dev.insecure_dc_client_id: OpenID4VP §5.9.3
	// forbids signing them, so wallets cannot authenticate us).
	ClientIDPrefix string `yaml:"client_id_prefix"`
	// WalletScheme is the scheme of the wallet invocation URL of same- and
	// cross-device requests (default "openid4vp://"; "haip-vp://" and
	// "eudi-openid4vp://" are common).
	WalletScheme string `yaml:"wallet_scheme"`
	// PlainResponses also accepts unencrypted responses (direct_post,
	// dc_api); by default only direct_post.jwt / dc_api.jwt (OpenID4VP
	// §8.3) are requested and accepted.
	PlainResponses bool `yaml:"plain_responses"`
	// RequestTTL is the lifetime of one verifier transaction and its QR
	// code (default 120s, at most 10m; RFC 10027 advises short lifetimes
	// for cross-device flows).
	RequestTTL time.Duration `yaml:"request_ttl"`
	// PollInterval is the cross-device polling interval sent as interval
	// (default 5s, at least 1s); polling faster gets status slow_down.
	PollInterval time.Duration `yaml:"poll_interval"`
	// MaxRestarts is how often an expired transaction is replaced by a
	// new one for the same auth_session (default 3); then access_denied.
	MaxRestarts int `yaml:"max_restarts"`
	// External configures the external verifier.
	External ExternalVerifier `yaml:"external"`
	// TrustedIssuers are the only credential issuers whose credentials
	// are accepted (no issuer is trusted dynamically).
	TrustedIssuers []TrustedIssuer `yaml:"trusted_issuers"`
	// Queries are named DCQL queries (OpenID4VP §6), as JSON text.
	Queries map[string]string `yaml:"queries"`
	// Rules say when a presentation is required: the first rule that
	// matches a request selects its query; a request no rule matches signs
	// in as it would without this section.
	Rules []DCRule `yaml:"rules"`
}

// ExternalVerifier is an OpenID4VP verifier service with the EUDI
// reference verifier's transaction API (POST /ui/presentations, GET
// /ui/presentations/{id}); fedas re-verifies every presentation it returns.
type ExternalVerifier struct {
	// URL is the verifier's base URL (https; http only on loopback).
	URL string `yaml:"url"`
	// TokenEnv names an environment variable holding a bearer token for
	// its API (never logged).
	TokenEnv string `yaml:"token_env"`
	// TokenFile is a file holding that bearer token instead (trailing
	// whitespace trimmed); set one of the two at most.
	TokenFile string `yaml:"token_file"`
	// Timeout bounds each call (default 5s); a verifier that does not
	// answer in time gets the client 503 temporarily_unavailable.
	Timeout time.Duration `yaml:"timeout"`
	// ClientID, when set, pins the verifier's OpenID4VP client_id (with
	// its prefix, e.g. x509_hash:...): a transaction the service starts
	// under another one is refused (503), so a reconfigured or swapped
	// service cannot have wallets present to someone else (OpenID4VP 1.0
	// §5.9).
	ClientID string `yaml:"client_id"`
}

// TrustedIssuer is one credential issuer (SD-JWT VC §3).
type TrustedIssuer struct {
	// Issuer is the exact iss value.
	Issuer string `yaml:"issuer"`
	// JWKS is the issuer's public keys as inline JSON (a JWK Set); set
	// exactly one of jwks, jwks_file and x5c_roots_file.
	JWKS string `yaml:"jwks"`
	// JWKSFile is a file holding that JWK Set instead.
	JWKSFile string `yaml:"jwks_file"`
	// X5CRootsFile holds PEM roots that the credential's x5c chain must
	// lead to (the leaf then names the issuer), instead of keys.
	X5CRootsFile string `yaml:"x5c_roots_file"`
	// VCTValues are the credential types this issuer may issue.
	VCTValues []string `yaml:"vct_values"`
	// Algs restricts the issuer's signature algorithms (ES256, ES384,
	// EdDSA, PS256); empty allows all four.
	Algs []string `yaml:"algs"`
	// Status is required (a credential without a status list entry is
	// refused) or optional (default: checked when present).
	Status string `yaml:"status"`
	// StatusLists are the URI prefixes (https) of this issuer's token
	// status lists (Token Status List §8): a credential whose status
	// claim points elsewhere is refused, and a list must be signed with
	// the issuer's own keys (or an x5c chain to its roots).
	StatusLists []string `yaml:"status_lists"`
	// SubjectClaim is the claim that identifies the holder: stable and
	// never reassigned by this issuer (OpenID4VP §14.4), e.g.
	// personal_administrative_number. Our subject is derived from the
	// issuer and this value (docs/protocol.md "Digital credentials").
	SubjectClaim string `yaml:"subject_claim"`
	// Claims map credential claims (top-level names) to ID token claims;
	// no other claim is kept after verification.
	Claims map[string]string `yaml:"claims"`
}

// DCRule requires a presentation for matching requests. Every condition
// set must hold; a rule with none applies to its clients always.
type DCRule struct {
	// Clients the rule applies to (empty: every client with
	// digital_credentials configured).
	Clients []string `yaml:"clients"`
	// LoginHint matches login_hint exactly (e.g. "wallet"); the hint then
	// names the method, not a user.
	LoginHint string `yaml:"login_hint"`
	// ACRValue matches one of the request's acr_values.
	ACRValue string `yaml:"acr_value"`
	// AuthorizationDetailsType matches a type in authorization_details
	// (RFC 9396): a payment approved with a presentation.
	AuthorizationDetailsType string `yaml:"authorization_details_type"`
	// Query names the DCQL query to ask (digital_credentials.queries).
	Query string `yaml:"query"`
	// ACR is the acr recorded for the sign-in (OIDC Core §2), if any.
	ACR string `yaml:"acr"`
}

// ClientDC is a client's digital-credential settings.
type ClientDC struct {
	// Dialect is the wire vocabulary the client speaks: wallet (default;
	// type digital_credentials, credentials_request, response_code),
	// draft00 (the federation draft's appendix: digital_credentials_required,
	// request, presentation_id), pdi (presentation during issuance:
	// presentation, presentation_during_issuance_session) or ia (OpenID4VCI
	// 1.1 Interactive Authorization: interaction_type_required,
	// openid4vp_request, openid4vp_response). docs/protocol.md lists each.
	Dialect string `yaml:"dialect"`
	// DCAPIOrigins are the exact origins the client's platform reports to
	// wallets through the Digital Credentials API (web origins, or
	// android:apk-key-hash:<...> for Android apps): dc_api=true needs at
	// least one, and a presentation's audience must be one of them.
	DCAPIOrigins []string `yaml:"dc_api_origins"`
	// OpenID4VPRedirectURIs are the URIs the wallet may return to in
	// same-device flows (exact match, like redirect_uris).
	OpenID4VPRedirectURIs []string `yaml:"openid4vp_redirect_uris"`
	// DisableCrossDevice refuses openid4vp_flow_type=cross_device for the
	// client (RFC 10027 §6.1: prefer same-device flows).
	DisableCrossDevice bool `yaml:"disable_cross_device"`
	// CrossDeviceWithoutDPoP allows cross_device for sessions not bound to
	// a DPoP key. By default a cross-device request needs a DPoP proof:
	// its polls carry nothing but the auth_session, which would otherwise
	// be a bearer value that, copied, collects the user's code
	// (docs/security.md "Digital credentials").
	CrossDeviceWithoutDPoP bool `yaml:"cross_device_without_dpop"`
	// Rules ask this client for a presentation (before
	// digital_credentials.rules): live like the rest of the client, so an
	// admin changes them with the admin API, the console or SIGHUP. A rule
	// here names no clients.
	Rules []DCRule `yaml:"rules"`
}

// ReservedIDTokenClaims are the ID token claims fedas sets itself
// (OpenID Connect Core §2, §3.1.3.6; RFC 9449 cnf): a trusted issuer's
// claims map must not name them, so a credential can never choose our
// subject, audience or lifetimes.
var ReservedIDTokenClaims = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "amr", "acr", "auth_time",
	"nonce", "azp", "jti", "cnf", "at_hash", "c_hash", "sid"}

// DC dialects (ClientDC.Dialect).
const (
	DialectWallet  = "wallet"
	DialectDraft00 = "draft00"
	DialectPDI     = "pdi"
	DialectIA      = "ia"
)

func (d *DigitalCredentials) applyDefaults() { *d = d.WithDefaults() }

// WithDefaults is d with every unset value at its default (a config built
// in code gets the same ones as a file).
func (d DigitalCredentials) WithDefaults() DigitalCredentials {
	if d.Verifier == "" {
		d.Verifier = "internal"
	}
	if d.ClientIDPrefix == "" {
		d.ClientIDPrefix = "x509_hash"
	}
	if d.WalletScheme == "" {
		d.WalletScheme = "openid4vp://"
	}
	if d.RequestTTL == 0 {
		d.RequestTTL = 120 * time.Second
	}
	if d.PollInterval == 0 {
		d.PollInterval = 5 * time.Second
	}
	if d.MaxRestarts == 0 {
		d.MaxRestarts = 3
	}
	if d.External.Timeout == 0 {
		d.External.Timeout = 5 * time.Second
	}
	return d
}

func (c *Config) validateDC() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	d := c.DigitalCredentials.WithDefaults()
	for _, cl := range c.Clients {
		if cl.DigitalCredentials == nil {
			continue
		}
		p := "clients[" + cl.ID + "].digital_credentials"
		if !d.Enabled {
			add("%s: digital_credentials.enabled is false", p)
		}
		switch cl.DigitalCredentials.Dialect {
		case "", DialectWallet, DialectDraft00, DialectPDI, DialectIA:
		default:
			add("%s.dialect: %q is not wallet, draft00, pdi or ia", p, cl.DigitalCredentials.Dialect)
		}
		for _, o := range cl.DigitalCredentials.DCAPIOrigins {
			if o == "" || strings.ContainsAny(o, " \t\r\n") {
				add("%s.dc_api_origins: %q is not an origin", p, o)
			}
		}
		for _, u := range cl.DigitalCredentials.OpenID4VPRedirectURIs {
			if pu, err := url.Parse(u); err != nil || pu.Scheme == "" || pu.Fragment != "" {
				add("%s.openid4vp_redirect_uris: %q is not an absolute URI without fragment", p, u)
			}
		}
		switch dl := cl.DigitalCredentials.Dialect; dl {
		case DialectPDI, DialectIA:
			// The wallet is the client on these dialects: it never goes
			// through a platform DC API nor returns to an app's URI.
			if len(cl.DigitalCredentials.DCAPIOrigins) > 0 {
				add("%s.dc_api_origins: dialect %s never uses the Digital Credentials API (the wallet is the client)", p, dl)
			}
			if len(cl.DigitalCredentials.OpenID4VPRedirectURIs) > 0 {
				add("%s.openid4vp_redirect_uris: dialect %s never returns to an app (the wallet is the client)", p, dl)
			}
			if d.Enabled && d.Verifier == "external" {
				add("%s.dialect: %s needs the internal verifier (the external one serves same_device and cross_device only)", p, dl)
			}
		}
		if d.Enabled && d.Verifier == "external" && len(cl.DigitalCredentials.DCAPIOrigins) > 0 {
			add("%s.dc_api_origins: the external verifier serves no Digital Credentials API requests", p)
		}
	}
	if !d.Enabled {
		return errs
	}
	switch d.Verifier {
	case "internal":
		if d.SigningKeyFile == "" || d.CertificateChainFile == "" {
			add("digital_credentials: the internal verifier needs signing_key_file and certificate_chain_file (docs/config.md)")
		}
	case "external":
		if d.External.URL == "" {
			add("digital_credentials.external.url: required with verifier: external")
		} else if err := c.CheckURL(d.External.URL); err != nil {
			add("digital_credentials.external.url: %v", err)
		}
		if d.External.TokenEnv != "" && d.External.TokenFile != "" {
			add("digital_credentials.external: set token_env or token_file, not both")
		}
		if id := d.External.ClientID; id != "" && (len(id) > 512 || !printableASCII(id) || strings.Contains(id, " ") || !strings.Contains(id, ":")) {
			add("digital_credentials.external.client_id: %q is not a prefixed OpenID4VP client_id (e.g. x509_hash:...)", id)
		}
		if d.External.Timeout < 0 || d.External.Timeout > time.Minute {
			add("digital_credentials.external.timeout: must be between 0 and 1m")
		}
	default:
		add("digital_credentials.verifier: %q is not internal or external", d.Verifier)
	}
	switch d.ClientIDPrefix {
	case "x509_hash":
	case "redirect_uri":
		if !c.Dev.InsecureDCClientID {
			add("digital_credentials.client_id_prefix: redirect_uri needs dev.insecure_dc_client_id (wallets cannot authenticate unsigned requests)")
		}
	default:
		add("digital_credentials.client_id_prefix: %q is not x509_hash or redirect_uri", d.ClientIDPrefix)
	}
	if !strings.HasSuffix(d.WalletScheme, "://") || len(d.WalletScheme) < 4 {
		add("digital_credentials.wallet_scheme: %q must look like openid4vp://", d.WalletScheme)
	}
	if d.RequestTTL < 10*time.Second || d.RequestTTL > 10*time.Minute {
		add("digital_credentials.request_ttl: must be between 10s and 10m")
	}
	if d.PollInterval < time.Second || d.PollInterval > time.Minute {
		add("digital_credentials.poll_interval: must be between 1s and 1m")
	}
	if d.MaxRestarts < 0 || d.MaxRestarts > 10 {
		add("digital_credentials.max_restarts: must be between 0 and 10")
	}
	if len(d.TrustedIssuers) == 0 {
		add("digital_credentials.trusted_issuers: at least one issuer is needed")
	}
	seen := map[string]bool{}
	for i, ti := range d.TrustedIssuers {
		p := fmt.Sprintf("digital_credentials.trusted_issuers[%d]", i)
		if ti.Issuer == "" {
			add("%s.issuer: required", p)
		} else if seen[ti.Issuer] {
			add("%s.issuer: %q is listed twice", p, ti.Issuer)
		}
		seen[ti.Issuer] = true
		n := 0
		for _, v := range []string{ti.JWKS, ti.JWKSFile, ti.X5CRootsFile} {
			if v != "" {
				n++
			}
		}
		if n != 1 {
			add("%s: set exactly one of jwks, jwks_file and x5c_roots_file", p)
		}
		if len(ti.VCTValues) == 0 {
			add("%s.vct_values: at least one credential type is needed", p)
		}
		for _, a := range ti.Algs {
			if !slices.Contains([]string{"ES256", "ES384", "EdDSA", "PS256"}, a) {
				add("%s.algs: %q is not ES256, ES384, EdDSA or PS256 (the SD-JWT algorithms we verify)", p, a)
			}
		}
		switch ti.Status {
		case "", "optional", "required":
		default:
			add("%s.status: %q is not required or optional", p, ti.Status)
		}
		for _, u := range ti.StatusLists {
			if err := c.CheckURL(u); err != nil {
				add("%s.status_lists: %v", p, err)
			}
		}
		if ti.SubjectClaim == "" {
			add("%s.subject_claim: required (a stable claim: OpenID4VP §14.4)", p)
		}
		to := map[string]string{}
		for from, name := range ti.Claims {
			switch {
			case from == "" || name == "":
				add("%s.claims: %q: %q: credential and ID token claim names must not be empty", p, from, name)
			case slices.Contains(ReservedIDTokenClaims, name):
				add("%s.claims.%s: %q is an ID token claim fedas sets itself (OpenID Connect Core §2)", p, from, name)
			case to[name] != "":
				// Map iteration order would decide which value wins.
				add("%s.claims: %q and %q both map to %q", p, min(from, to[name]), max(from, to[name]), name)
			}
			to[name] = from
		}
	}
	if len(d.Queries) == 0 {
		add("digital_credentials.queries: at least one query is needed")
	}
	for name, q := range d.Queries {
		if _, err := dcql.Parse([]byte(q)); err != nil {
			add("digital_credentials.queries[%s]: not a valid DCQL query (OpenID4VP §6): %v", name, err)
		}
	}
	clientRules := 0
	for _, cl := range c.Clients {
		if cl.DigitalCredentials != nil {
			clientRules += len(cl.DigitalCredentials.Rules)
		}
	}
	if len(d.Rules) == 0 && clientRules == 0 {
		add("digital_credentials.rules: at least one rule is needed (here or in clients[].digital_credentials.rules)")
	}
	type placedRule struct {
		path   string
		rule   DCRule
		client bool
	}
	var rules []placedRule
	for i, r := range d.Rules {
		rules = append(rules, placedRule{fmt.Sprintf("digital_credentials.rules[%d]", i), r, false})
	}
	for _, cl := range c.Clients {
		if cl.DigitalCredentials != nil {
			for i, r := range cl.DigitalCredentials.Rules {
				rules = append(rules, placedRule{fmt.Sprintf("clients[%s].digital_credentials.rules[%d]", cl.ID, i), r, true})
			}
		}
	}
	for _, pr := range rules {
		p, r := pr.path, pr.rule
		if pr.client && len(r.Clients) > 0 {
			add("%s.clients: a client's own rule names no clients", p)
		}
		q, ok := d.Queries[r.Query]
		if !ok {
			add("%s.query: %q is not in digital_credentials.queries", p, r.Query)
		}
		if t := r.AuthorizationDetailsType; t != "" {
			var m *TransactionDataMapping
			found := false
			for _, at := range c.AuthorizationDetailsTypes {
				if at.Type == t {
					found, m = true, at.TransactionData
				}
			}
			switch {
			case !found:
				add("%s.authorization_details_type: %q is not in authorization_details_types", p, t)
			case m == nil && t == "openid_credential":
				// Presentation during issuance authenticates the holder
				// before issuance; it approves no transaction data.
			case m == nil:
				// Without transaction data the wallet would approve nothing
				// (OpenID4VP App. B.3.3): every such request would fail.
				add("%s.authorization_details_type: %q has no transaction_data mapping", p, t)
			case ok:
				if parsed, err := dcql.Parse([]byte(q)); err == nil {
					for _, id := range m.CredentialIDs {
						if !slices.ContainsFunc(parsed.Credentials, func(cq dcql.CredentialQuery) bool { return cq.ID == id }) {
							add("%s: transaction_data.credential_ids of %q names %q, not a credential of query %q", p, t, id, r.Query)
						}
					}
				}
			}
		}
		for _, id := range r.Clients {
			switch i := slices.IndexFunc(c.Clients, func(cl Client) bool { return cl.ID == id }); {
			case i < 0:
				add("%s.clients: %q is not a client", p, id)
			case c.Clients[i].DigitalCredentials == nil:
				// The rule could never apply to it (presentation.Step.Required).
				add("%s.clients: %q has no digital_credentials section", p, id)
			}
		}
	}
	return errs
}
