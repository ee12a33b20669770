// Package config holds fedas's configuration as plain data: the YAML file
// format, the embedded demo default, and validation that reports every
// problem at once with its path in the file. It never opens a connection.
package config

// docs/config.md is generated from the doc comments below.
//go:generate go run ./internal/gendoc

import (
	"bytes"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

//go:embed demo.yaml
var demoYAML []byte

// DemoYAML returns the embedded demo configuration file.
func DemoYAML() []byte { return bytes.Clone(demoYAML) }

// Config is the whole configuration of one fedas instance.
type Config struct {
	// Issuer is the RFC 8414 §2 issuer identifier; every endpoint URL is
	// derived from it.
	Issuer string `yaml:"issuer"`
	// Listen is the TCP address the public HTTP listener binds (default
	// 127.0.0.1:8080; TLS is terminated in front of it). Serve warns when
	// an issuer on loopback names another host:port.
	Listen string `yaml:"listen"`
	// TrustedProxies lists the reverse proxies (IP addresses or CIDR
	// prefixes) whose X-Forwarded-For header names the client address
	// (docs/security.md "Client addresses"). Empty (the default): the TCP
	// peer is the client, and no forwarded header is ever read. From a
	// trusted peer, X-Forwarded-For is read right to left and the first
	// address not in this list is the client; a malformed header means
	// the peer. The Forwarded header (RFC 7239) is never read.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Dev holds settings that are only safe on a developer machine.
	Dev Dev `yaml:"dev"`
	// Storage selects the backend; without Redis, memory is used.
	Storage Storage `yaml:"storage"`
	// Keys holds the signing key and the token HMAC secret.
	Keys Keys `yaml:"keys"`
	// Scopes lists the scopes the server supports (RFC 8414
	// scopes_supported); clients[].scopes must be among them.
	Scopes []string `yaml:"scopes"`
	// Lifetimes of every artefact the server issues.
	Lifetimes Lifetimes `yaml:"lifetimes"`
	// Limits caps abuse of the public endpoints.
	Limits Limits `yaml:"limits"`
	// Clients registered with this server.
	Clients []Client `yaml:"clients"`
	// Users who can sign in locally.
	Users []User `yaml:"users"`
	// Downstreams are the authorization servers we federate to.
	Downstreams []Downstream `yaml:"downstreams"`
	// Prompt is the insufficient_information userPrompt we show to decide
	// where to federate (federation draft §4.3.3).
	Prompt *Prompt `yaml:"prompt"`
	// Routes map prompt answers (and clients) to a downstream or to local
	// sign-in; the first matching rule wins.
	Routes []Route `yaml:"routes"`
	// DefaultRoute applies when no route matches: "local" (default),
	// "deny", or a downstream id.
	DefaultRoute string `yaml:"default_route"`
	// Apps are our own first-party apps that can authenticate users for
	// other apps (redirect_to_app, federation draft §4.3.2).
	Apps []App `yaml:"apps"`
	// Admin configures the admin listener (docs/admin.md).
	Admin Admin `yaml:"admin"`
	// DigitalCredentials configures credential presentation in the native
	// flow (docs/protocol.md "Digital credentials").
	DigitalCredentials DigitalCredentials `yaml:"digital_credentials"`
	// Reach configures reaching the user on another channel: our app on
	// the user's other devices, the User Questioning API and the
	// interaction relay (docs/reach.md).
	Reach Reach `yaml:"reach"`

	// AuthorizationDetailsTypes are the Rich Authorization Request types
	// (RFC 9396) clients may be allowed in authorization_details
	// (clients[].authorization_details_types); none by default, and then
	// every authorization_details is invalid_authorization_details.
	AuthorizationDetailsTypes []AuthorizationDetailsType `yaml:"authorization_details_types"`
}

// Admin configures the admin API, the console and /metrics
// (docs/admin.md). The admin listener runs when TokensFile or Listen is
// set (Enabled); without tokens its API and console refuse everyone and
// only /metrics is of use.
type Admin struct {
	// Listen is the admin listener's address; empty means
	// DefaultAdminListen (ListenAddr), and an admin listener only when
	// TokensFile is set. No admin route exists on the public listener.
	Listen string `yaml:"listen"`
	// TokensFile holds the admin API tokens' digests, one per line, as
	// `fedas admin token create` appends them.
	TokensFile string `yaml:"tokens_file"`
	// Retention is how many policy versions and audit entries storage
	// keeps (default 1000).
	Retention int `yaml:"retention"`
	// SighupOverwritesStore lets SIGHUP replace a policy that admins have
	// edited with the config file's; by default SIGHUP refuses to.
	SighupOverwritesStore bool `yaml:"sighup_overwrites_store"`
	// SecretsDir is the only directory whose files a secret reference
	// (key_file, secret_file, totp_secret_file, jwks_file) entered through
	// the admin surface may name; environment references entered there
	// must start with FEDAS_SECRET_. Without it, the admin surface cannot
	// add file references. References in the config file are not limited.
	SecretsDir string `yaml:"secrets_dir"`
}

// App is one of our own native apps, invoked by deep link.
type App struct {
	// ID names the app in routes[].app and users[].apps: a short
	// identifier.
	ID string `yaml:"id"`
	// ClientID is the first-party client the app itself uses: only its
	// access tokens may call the app completion API.
	ClientID string `yaml:"client_id"`
	// DeepLink is the https base URL the app claims; we append client_id
	// and request_uri.
	DeepLink string `yaml:"deep_link"`
	// DownstreamRole sends users of federating clients to the app.
	DownstreamRole bool `yaml:"downstream_role"`
	// Clients sends local sign-ins of these clients to the app.
	Clients []string `yaml:"clients"`
	// EnrolledOnly limits the above to users (named by login_hint) who
	// have the app enrolled (users[].apps).
	EnrolledOnly bool `yaml:"enrolled_only"`
}

// Downstream is an authorization server we federate to: we are its client
// and push requests to its PAR endpoint (RFC 9126).
type Downstream struct {
	// ID names the downstream in routes and default_route: a short
	// identifier.
	ID string `yaml:"id"`
	// Issuer is the downstream's issuer (https); its metadata is fetched
	// from here only (RFC 8414 §3.3), never from a URL a client sends.
	Issuer string `yaml:"issuer"`
	// Name is a display name (the console, the admin API).
	Name string `yaml:"name"`
	// Logo is an https URL of the downstream's logo, for branding.
	Logo string `yaml:"logo"`
	// ClientID is our client_id at the downstream.
	ClientID string `yaml:"client_id"`
	// Auth is our client authentication there.
	Auth DownstreamAuth `yaml:"auth"`
	// Scopes maps our scopes to the downstream's; unmapped scopes are
	// not forwarded. "openid" is always requested so that the downstream
	// identity comes as a signed ID token.
	Scopes map[string]string `yaml:"scopes"`
	// Claims lists ID token claims copied into our session.
	Claims []string `yaml:"claims"`
	// Timeout bounds every call to the downstream (default 3s).
	Timeout time.Duration `yaml:"timeout"`
	// IDTokenAlgs allow-lists ID token algorithms (default ES256, PS256, EdDSA).
	IDTokenAlgs []string `yaml:"id_token_algs"`
	// BrowserFederation allows federating to this downstream through the
	// browser when it has no native endpoint (docs/decisions.md Q19): the
	// client gets redirect_to_web to our browser endpoint, which sends the
	// browser to the downstream's authorization endpoint.
	BrowserFederation bool `yaml:"browser_federation"`
}

// DownstreamAuth is our client authentication at a downstream.
type DownstreamAuth struct {
	// Method is private_key_jwt or client_secret_basic.
	Method string `yaml:"method"`
	// KeyFile is a file holding our private JWK for private_key_jwt
	// (JSON, with kid and alg).
	KeyFile string `yaml:"key_file"`
	// KeyEnv names an environment variable holding that private JWK.
	KeyEnv string `yaml:"key_env"`
	// Key is the private JWK inline (JSON); prefer key_file or key_env.
	// Set only one of key, key_env and key_file.
	Key string `yaml:"key"`
	// SecretEnv names an environment variable holding our client secret
	// for client_secret_basic.
	SecretEnv string `yaml:"secret_env"`
	// SecretFile is a file holding that client secret. Set only one of
	// secret_env and secret_file.
	SecretFile string `yaml:"secret_file"`
	// Secret is the resolved secret; never inline in a file.
	Secret string `yaml:"-"`
}

// Prompt is a userPrompt definition (federation draft §4.3.3).
type Prompt struct {
	// Logo of this AS, for branding (https URL).
	Logo string `yaml:"logo"`
	// Options are select inputs (a list of values to choose from, such as
	// a bank); routes match them with routes[].option.
	Options []PromptOption `yaml:"options"`
	// Inputs are free-text inputs: only "email" and "phone" (ZFed-ED §5.2).
	Inputs []PromptInput `yaml:"inputs"`
	// MaxAttempts caps invalid answers per session (default 5).
	MaxAttempts int `yaml:"max_attempts"`
}

// PromptOption is a select input.
type PromptOption struct {
	// Key is the parameter name the client answers with (letters, digits
	// and _, not a protocol parameter such as client_id).
	Key string `yaml:"key"`
	// Title is the option's label.
	Title string `yaml:"title"`
	// Description is an optional longer explanation.
	Description string `yaml:"description"`
	// Values are the choices; at least one.
	Values []PromptValue `yaml:"values"`
}

// PromptValue is one choice of an option.
type PromptValue struct {
	// Value is what the client sends back for this choice.
	Value string `yaml:"value"`
	// Name is the choice's label.
	Name string `yaml:"name"`
	// Logo is an optional https URL of the choice's logo.
	Logo string `yaml:"logo"`
}

// PromptInput is a free-text input.
type PromptInput struct {
	// Key is email or phone: the only free-text inputs (ZFed-ED §5.2).
	Key string `yaml:"key"`
	// Title is the input's label.
	Title string `yaml:"title"`
	// Hint is a placeholder such as you@example.com.
	Hint string `yaml:"hint"`
	// Description is an optional longer explanation.
	Description string `yaml:"description"`
}

// Route maps answers to a target. All given conditions must hold.
type Route struct {
	// ID names the route for the admin API; optional in a file (the
	// store names unnamed routes route-1, route-2, … by position).
	ID string `yaml:"id,omitempty"`
	// Downstream is the id of the downstream that matching requests
	// federate to. Set exactly one of downstream, local and app.
	Downstream string `yaml:"downstream"`
	// Local signs matching requests in here (password, TOTP).
	Local bool `yaml:"local"`
	// EmailDomains match the email input's domain (case-insensitive).
	EmailDomains []string `yaml:"email_domains"`
	// Option matches a chosen option value.
	Option *RouteOption `yaml:"option"`
	// Clients match the requesting client_id; a route with only clients
	// routes without prompting.
	Clients []string `yaml:"clients"`
	// App sends matching users to one of our apps (redirect_to_app).
	App string `yaml:"app"`
}

// RouteOption matches key=value.
type RouteOption struct {
	// Key is a prompt.options[].key.
	Key string `yaml:"key"`
	// Value is one of that option's values[].value.
	Value string `yaml:"value"`
}

// Dev holds developer-only switches.
type Dev struct {
	// AllowLoopbackHTTP permits http:// URLs on loopback hosts (issuer,
	// downstreams); production configs must leave it off.
	AllowLoopbackHTTP bool `yaml:"allow_loopback_http"`
	// InsecureDCClientID allows digital_credentials.client_id_prefix
	// redirect_uri: unsigned presentation requests, for tests and demos.
	InsecureDCClientID bool `yaml:"insecure_dc_client_id"`
}

// Storage configures the state backend.
type Storage struct {
	// Redis selects Redis (required for more than one instance); without
	// it, state is in this process's memory and dies with it.
	Redis *Redis `yaml:"redis"`
}

// Redis configures the Redis backend (single node, Sentinel or Cluster).
type Redis struct {
	// URL is a redis:// or rediss:// URL for a single node.
	URL string `yaml:"url"`
	// Addrs lists seed nodes for Cluster or Sentinel.
	Addrs []string `yaml:"addrs"`
	// Cluster selects Redis Cluster.
	Cluster bool `yaml:"cluster"`
	// MasterName selects Sentinel: addrs are the sentinels, this the
	// monitored master's name.
	MasterName string `yaml:"master_name"`
	// Username is the Redis ACL user (Redis 6+), if any.
	Username string `yaml:"username"`
	// PasswordEnv names an environment variable holding the Redis
	// password.
	PasswordEnv string `yaml:"password_env"`
	// PasswordFile is a file holding the Redis password. Set only one of
	// password_env and password_file.
	PasswordFile string `yaml:"password_file"`
	// Prefix namespaces every key (default "fedas:").
	Prefix string `yaml:"prefix"`
	// AllowEvictionPolicy starts even if maxmemory-policy is not
	// noeviction (replay protection is then not guaranteed).
	AllowEvictionPolicy bool `yaml:"allow_eviction_policy"`
}

// Keys configures key material. Empty values mean ephemeral keys,
// generated at start and logged as such.
type Keys struct {
	// SigningKeyFile is a PEM (PKCS#8 or SEC1) EC P-256 private key: it
	// signs the ID tokens we issue and is published at jwks_uri, with its
	// RFC 7638 thumbprint as kid (`fedas keygen` makes one). The one-key
	// form of signing_keys: set only one of the two. Instances sharing
	// Redis must share it.
	SigningKeyFile string `yaml:"signing_key_file"`
	// SigningKeys are the signing keys, all published at jwks_uri; the
	// active one signs (docs/operations.md "Rotating the signing key").
	// `fedas keys generate` makes one. Key files take effect at a restart.
	SigningKeys []KeyFile `yaml:"signing_keys"`
	// ActiveSigningKey is the kid of the key that signs (default: the
	// first of signing_keys). It is policy: it bootstraps the policy store
	// like clients do, then SIGHUP or the admin API (PUT
	// /admin/v1/keys/active) switches it on every instance at once.
	ActiveSigningKey string `yaml:"active_signing_key"`
	// HMACSecretEnv names an environment variable holding the ≥32-byte
	// secret fosite signs codes and tokens with (and the console sessions
	// and our downstream DPoP key derive from); instances sharing Redis
	// must share it.
	HMACSecretEnv string `yaml:"hmac_secret_env"`
	// HMACSecretFile is a file holding that secret (`fedas keygen` makes
	// one). Set only one of hmac_secret_env and hmac_secret_file.
	HMACSecretFile string `yaml:"hmac_secret_file"`
	// loaded are the signing keys read from the files (LoadSigningKeys),
	// against which Validate checks active_signing_key.
	loaded *loadedKeys `yaml:"-"`
}

// Lifetimes of artefacts.
type Lifetimes struct {
	// AuthSession is how long a native sign-in may take from its first
	// request (default 10m).
	AuthSession time.Duration `yaml:"auth_session"`
	// AuthorizationCode is a code's life (default 60s, at most 10m: RFC
	// 6749 §4.1.2).
	AuthorizationCode time.Duration `yaml:"authorization_code"`
	// AccessToken is an access token's life (default 1h).
	AccessToken time.Duration `yaml:"access_token"`
	// RefreshToken is a refresh token's life (default 720h).
	RefreshToken time.Duration `yaml:"refresh_token"`
	// PushedRequest is a request_uri's life (default 90s, at most 90s).
	PushedRequest time.Duration `yaml:"pushed_request"`
}

// Limits caps abuse.
type Limits struct {
	// MaxFailures is the number of wrong answers an auth_session survives
	// (default 5).
	MaxFailures int `yaml:"max_failures"`
	// MaxBodyBytes caps request bodies (default 65536).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxParams caps the number of form parameters (default 64).
	MaxParams int `yaml:"max_params"`
	// Rate holds the rate limits of the public endpoints (429 slow_down
	// with Retry-After when one is exceeded).
	Rate RateLimits `yaml:"rate"`
	// MaxLiveSessionsPerIP caps the auth sessions in progress from one
	// client address (an IPv6 address counts by its /64) across every
	// instance sharing the store (default 200; -1 turns it off). A new
	// sign-in over it gets 429 slow_down with Retry-After until the
	// oldest of them expires, and nothing is stored (docs/security.md
	// "Caps").
	MaxLiveSessionsPerIP int `yaml:"max_live_sessions_per_ip"`
	// MaxLiveSessionsPerClient caps the auth sessions in progress for one
	// client (default 100000; -1 turns it off). It bounds the memory one
	// client's sessions can take, not who may sign in: keep it well above
	// the client's peak sign-ins per auth-session lifetime, since over it
	// every user of that client waits (docs/operations.md "Caps").
	MaxLiveSessionsPerClient int `yaml:"max_live_sessions_per_client"`
	// MaxFederationHops caps the requests one auth session pushes to
	// downstreams — the first, a re-push after an expired request_uri, a
	// retry after a failure, each browser reload of a browser federation
	// (default 3, at least 1). Past it the session ends with
	// access_denied.
	MaxFederationHops int `yaml:"max_federation_hops"`
	// Lockout slows password and one-time-code guessing per account
	// across sessions (docs/security.md "Account lockout").
	Lockout Lockout `yaml:"lockout"`
	// PasswordConcurrency is how many password checks (bcrypt
	// comparisons) run at once; 0 (the default) means half the CPUs
	// (GOMAXPROCS / 2, at least 1), so that a password flood leaves the
	// other half to token and federation traffic. A check beyond waits
	// for a slot (docs/security.md "Account lockout").
	PasswordConcurrency int `yaml:"password_concurrency"`
	// PasswordQueueTimeout is how long a password check waits for a slot
	// before the answer is 503 temporarily_unavailable with Retry-After
	// and the auth_session unchanged (default 1s).
	PasswordQueueTimeout time.Duration `yaml:"password_queue_timeout"`
}

// Lockout is when failed credential checks delay further attempts
// (docs/security.md "Account lockout"; docs/decisions.md Q29). After the
// free failures of a counter, each attempt must wait a delay from the
// counter's last failure: base_delay, doubling with each further
// failure, at most max_delay. A success resets the counters.
type Lockout struct {
	// AccountIPFreeFailures is how many wrong passwords an account may
	// get from one client address before every password answer for it
	// from there is delayed (default 5).
	AccountIPFreeFailures int `yaml:"account_ip_free_failures"`
	// AccountFreeFailures is how many wrong passwords an account may get
	// from all addresses together before password-only answers for it
	// are delayed (default 20); an answer with the one-time code as well
	// is not.
	AccountFreeFailures int `yaml:"account_free_failures"`
	// OTPFreeFailures is how many wrong one-time codes an account may get
	// (after a right password) before code answers for it are delayed
	// (default 5).
	OTPFreeFailures int `yaml:"otp_free_failures"`
	// BaseDelay is the first delay (default 1s).
	BaseDelay time.Duration `yaml:"base_delay"`
	// MaxDelay caps the delay (default 15m).
	MaxDelay time.Duration `yaml:"max_delay"`
	// Window is how long a counter is remembered after its last failure
	// (default 24h; at least max_delay): every counter's storage key
	// expires then.
	Window time.Duration `yaml:"window"`
}

// Client is a registered OAuth client (RFC 7591 §2 metadata names).
type Client struct {
	// ID is the client_id.
	ID string `yaml:"id"`
	// Name is shown in the console and logs.
	Name string `yaml:"name"`
	// FirstParty allows the native authorization endpoint (FiPA-04 §1).
	FirstParty bool `yaml:"first_party"`
	// TokenEndpointAuthMethod is none, client_secret_basic,
	// client_secret_post or private_key_jwt.
	TokenEndpointAuthMethod string `yaml:"token_endpoint_auth_method"`
	// SecretSHA256 is the client secret's SHA-256 digest (64 hex digits)
	// for client_secret_basic and client_secret_post: the secret is only
	// ever stored as a digest (docs/performance.md trap 1).
	SecretSHA256 string `yaml:"secret_sha256"`
	// SecretEnv names an environment variable holding the secret in
	// clear; it is digested at load.
	SecretEnv string `yaml:"secret_env"`
	// SecretFile is a file holding the secret in clear; it is digested at
	// load. Set only one of secret_sha256, secret_env and secret_file.
	SecretFile string `yaml:"secret_file"`
	// JWKS is the client's public JWK Set (inline JSON) for
	// private_key_jwt.
	JWKS string `yaml:"jwks"`
	// JWKSFile is a file holding that JWK Set. Set only one of jwks and
	// jwks_file.
	JWKSFile string `yaml:"jwks_file"`
	// SigningAlg is the private_key_jwt assertion algorithm: ES256
	// (default), PS256 or EdDSA.
	SigningAlg string `yaml:"signing_alg"`
	// Scopes the client may ask for; each must be in the top-level scopes.
	Scopes []string `yaml:"scopes"`
	// GrantTypes are authorization_code and/or refresh_token (default
	// both), and client_credentials (RFC 6749 §4.4) for a confidential
	// client only: its tokens name no user (the User Questioning API's
	// user_id requests, docs/reach.md "User Questioning").
	GrantTypes []string `yaml:"grant_types"`
	// RedirectURIs are the browser redirect URIs (https, loopback http, or
	// a reverse-domain private scheme: RFC 8252 §7); a federating client's
	// web callback goes here.
	RedirectURIs []string `yaml:"redirect_uris"`
	// NativeCallbackURIs are the URIs an app may name as
	// native_callback_uri (exact match) to be called back after an app or
	// browser leg.
	NativeCallbackURIs []string `yaml:"native_callback_uris"`
	// Federating marks another AS that federates to us via PAR.
	Federating bool `yaml:"federating"`
	// AllowCredentialChallenges lets a federating client receive password
	// and OTP challenges (off by default, docs/decisions.md Q10).
	AllowCredentialChallenges bool `yaml:"allow_credential_challenges"`
	// RefreshTokenRotation is auto (default), always or never. auto
	// rotates the refresh tokens of a public client unless the token is
	// DPoP-bound (RFC 9700 §4.14.2): each refresh answers a new one and
	// the used one becomes invalid; a rotated token used again revokes
	// its whole grant. Confidential clients and DPoP-bound tokens keep
	// theirs valid until they expire or are revoked (FAPI 2.0
	// §5.3.2.1-9). always rotates for every token; never is accepted
	// only for confidential clients (README.md "Refresh tokens").
	RefreshTokenRotation string `yaml:"refresh_token_rotation"`
	// DigitalCredentials are the client's presentation settings (dialect,
	// DC API origins, wallet redirect URIs); needs digital_credentials.
	DigitalCredentials *ClientDC `yaml:"digital_credentials,omitempty"`
	// Reach are the client's reach settings (cross-device switch,
	// interaction origins, UQ notification endpoint); needs reach.enabled.
	Reach *ClientReach `yaml:"reach,omitempty"`

	// AuthorizationDetailsTypes names the authorization_details_types
	// this client may request (RFC 9396 §5: any other is
	// invalid_authorization_details); none by default.
	AuthorizationDetailsTypes []string `yaml:"authorization_details_types"`
}

// Public reports whether the client has no credentials.
func (c Client) Public() bool { return c.TokenEndpointAuthMethod == "none" }

// Values of Client.RefreshTokenRotation ("" is RotationAuto).
const (
	RotationAuto   = "auto"
	RotationAlways = "always"
	RotationNever  = "never"
)

// User is a local account.
type User struct {
	// Username is what the user types at the password challenge.
	Username string `yaml:"username"`
	// Subject is the stable `sub`; defaults to Username.
	Subject string `yaml:"subject"`
	// PasswordHash is a bcrypt hash (`fedas hash-password`).
	PasswordHash string `yaml:"password_hash"`
	// TOTPSecret is a base32 RFC 6238 secret (≥ 80 bits): with one, the
	// password is followed by an OTP challenge. Prefer the _env or _file
	// form.
	TOTPSecret string `yaml:"totp_secret"`
	// TOTPSecretEnv names an environment variable holding the TOTP secret.
	TOTPSecretEnv string `yaml:"totp_secret_env"`
	// TOTPSecretFile is a file holding the TOTP secret.
	TOTPSecretFile string `yaml:"totp_secret_file"`
	// Claims are the user's ID token and introspection claims (name,
	// email, …).
	Claims map[string]string `yaml:"claims"`
	// Apps lists the ids of our apps this user has enrolled.
	Apps []string `yaml:"apps"`
}

// Default returns the embedded demo configuration.
func Default() *Config {
	c, err := Parse(demoYAML)
	if err != nil {
		panic("config: embedded demo config is invalid: " + err.Error())
	}
	return c
}

// Load reads, parses and validates a YAML file, without overrides.
func Load(path string) (*Config, error) { return LoadWith(path, Options{}) }

// LoadWith reads a config file and applies o's overrides: the
// configuration serve runs with. Every problem is reported at once, one
// "path: message" line each (Problems splits them).
func LoadWith(path string, o Options) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseWith(b, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML (unknown keys are errors), applies defaults, resolves
// secrets from env vars and files, and validates.
func Parse(b []byte) (*Config, error) { return ParseWith(b, Options{}) }

// ParseWith is Parse with o's overrides applied after decoding: it
// accepts exactly what Check reports no problem for.
func ParseWith(b []byte, o Options) (*Config, error) {
	c, probs := Check(b, o)
	if len(probs) > 0 {
		return nil, checkError(probs)
	}
	return c, nil
}

func (c *Config) applyDefaults() {
	c.DigitalCredentials.applyDefaults()
	if c.Reach.Enabled {
		c.Reach = c.Reach.WithDefaults()
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.Admin.Retention == 0 {
		c.Admin.Retention = 1000
	}
	l := &c.Lifetimes
	setDur(&l.AuthSession, 10*time.Minute)
	setDur(&l.AuthorizationCode, 60*time.Second)
	setDur(&l.AccessToken, time.Hour)
	setDur(&l.RefreshToken, 30*24*time.Hour)
	setDur(&l.PushedRequest, 90*time.Second)
	if c.Limits.MaxFailures == 0 {
		c.Limits.MaxFailures = 5
	}
	if c.Limits.MaxBodyBytes == 0 {
		c.Limits.MaxBodyBytes = 64 << 10
	}
	if c.Limits.MaxParams == 0 {
		c.Limits.MaxParams = 64
	}
	if c.Limits.MaxLiveSessionsPerIP == 0 {
		c.Limits.MaxLiveSessionsPerIP = 200
	}
	if c.Limits.MaxLiveSessionsPerClient == 0 {
		c.Limits.MaxLiveSessionsPerClient = 100000
	}
	if c.Limits.MaxFederationHops == 0 {
		c.Limits.MaxFederationHops = 3
	}
	c.Limits.lockoutDefaults()
	if c.Storage.Redis != nil && c.Storage.Redis.Prefix == "" {
		c.Storage.Redis.Prefix = "fedas:"
	}
	for i := range c.Users {
		if c.Users[i].Subject == "" {
			c.Users[i].Subject = c.Users[i].Username
		}
	}
	for i := range c.Clients {
		if c.Clients[i].TokenEndpointAuthMethod == "private_key_jwt" && c.Clients[i].SigningAlg == "" {
			c.Clients[i].SigningAlg = "ES256"
		}
		if len(c.Clients[i].GrantTypes) == 0 {
			c.Clients[i].GrantTypes = []string{"authorization_code", "refresh_token"}
		}
		if c.Clients[i].RefreshTokenRotation == "" {
			c.Clients[i].RefreshTokenRotation = RotationAuto
		}
	}
}

// lockoutDefaults fills the lockout and password-gate limits.
func (l *Limits) lockoutDefaults() {
	lo := &l.Lockout
	if lo.AccountIPFreeFailures == 0 {
		lo.AccountIPFreeFailures = 5
	}
	if lo.AccountFreeFailures == 0 {
		lo.AccountFreeFailures = 20
	}
	if lo.OTPFreeFailures == 0 {
		lo.OTPFreeFailures = 5
	}
	setDur(&lo.BaseDelay, time.Second)
	setDur(&lo.MaxDelay, 15*time.Minute)
	setDur(&lo.Window, 24*time.Hour)
	setDur(&l.PasswordQueueTimeout, time.Second)
}

// validateLockout reports the lockout and password-gate limits' problems.
// Zero values are allowed (a config built in code): the lockout applies
// its defaults to them.
func (l Limits) validateLockout() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	lo := l.Lockout
	for _, f := range []struct {
		name string
		n    int
	}{{"account_ip_free_failures", lo.AccountIPFreeFailures}, {"account_free_failures", lo.AccountFreeFailures}, {"otp_free_failures", lo.OTPFreeFailures}} {
		if f.n < 0 {
			add("limits.lockout.%s: must not be negative", f.name)
		}
	}
	switch {
	case lo.BaseDelay < 0 || lo.MaxDelay < 0 || lo.Window < 0:
		add("limits.lockout: delays and window must not be negative")
	case lo.MaxDelay > 24*time.Hour:
		add("limits.lockout.max_delay: must be at most 24h")
	case lo.BaseDelay > 0 && lo.MaxDelay > 0 && lo.BaseDelay > lo.MaxDelay:
		add("limits.lockout.base_delay: must not exceed max_delay")
	case lo.Window > 0 && lo.MaxDelay > 0 && lo.Window < lo.MaxDelay:
		add("limits.lockout.window: must be at least max_delay, or a counter would expire before its delay ends")
	case lo.Window > 30*24*time.Hour:
		add("limits.lockout.window: must be at most 720h (30 days)")
	}
	if l.PasswordConcurrency < 0 {
		add("limits.password_concurrency: must not be negative (0 means one per CPU)")
	}
	if l.PasswordQueueTimeout < 0 || l.PasswordQueueTimeout > time.Minute {
		add("limits.password_queue_timeout: must be between 0 and 1m")
	}
	return errs
}

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// readFile reads the secret and JWKS files a config names (a variable so
// that the fuzz target can keep a fuzzed /dev/zero from being read).
var readFile = os.ReadFile

// secretFrom reads a secret from an env var or a file (trailing newline
// trimmed); at most one source may be set.
func secretFrom(path, env, file string) (string, error) {
	switch {
	case env != "" && file != "":
		return "", fmt.Errorf("%s: set only one of the _env and _file forms", path)
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return "", fmt.Errorf("%s: environment variable %s is not set", path, env)
		}
		return v, nil
	case file != "":
		b, err := readFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %v", path, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", nil
}

func (c *Config) resolveSecrets() error {
	var errs []error
	for i := range c.Clients {
		cl := &c.Clients[i]
		p := fmt.Sprintf("clients[%d]", i)
		s, err := secretFrom(p+".secret", cl.SecretEnv, cl.SecretFile)
		if err != nil {
			errs = append(errs, err)
		} else if s != "" {
			if cl.SecretSHA256 != "" {
				errs = append(errs, fmt.Errorf("%s: set only one of secret_sha256, secret_env, secret_file", p))
			}
			cl.SecretSHA256 = SecretDigest(s)
		}
		if cl.JWKSFile != "" {
			if cl.JWKS != "" {
				errs = append(errs, fmt.Errorf("%s: set only one of jwks and jwks_file", p))
			}
			b, err := readFile(cl.JWKSFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.jwks_file: %v", p, err))
			}
			cl.JWKS = string(b)
		}
	}
	for i := range c.Downstreams {
		d := &c.Downstreams[i]
		p := fmt.Sprintf("downstreams[%d].auth", i)
		sec, err := secretFrom(p+".secret", d.Auth.SecretEnv, d.Auth.SecretFile)
		if err != nil {
			errs = append(errs, err)
		}
		d.Auth.Secret = sec
		key, err := secretFrom(p+".key", d.Auth.KeyEnv, d.Auth.KeyFile)
		if err != nil {
			errs = append(errs, err)
		} else if key != "" {
			if d.Auth.Key != "" {
				errs = append(errs, fmt.Errorf("%s: set only one of key, key_env, key_file", p))
			}
			d.Auth.Key = key
		}
	}
	for i := range c.Users {
		u := &c.Users[i]
		s, err := secretFrom(fmt.Sprintf("users[%d].totp_secret", i), u.TOTPSecretEnv, u.TOTPSecretFile)
		if err != nil {
			errs = append(errs, err)
		} else if s != "" {
			u.TOTPSecret = s
		}
	}
	return errors.Join(errs...)
}

// RedisPassword resolves the Redis password from its env var or file.
func (r *Redis) RedisPassword() (string, error) {
	return secretFrom("storage.redis.password", r.PasswordEnv, r.PasswordFile)
}

// HMACSecret resolves the token HMAC secret; empty means ephemeral.
func (k Keys) HMACSecret() ([]byte, error) {
	s, err := secretFrom("keys.hmac_secret", k.HMACSecretEnv, k.HMACSecretFile)
	if err != nil || s == "" {
		return nil, err
	}
	if len(s) < 32 {
		return nil, errors.New("keys.hmac_secret: must be at least 32 bytes")
	}
	return []byte(s), nil
}

// SecretDigest is the stored form of a client secret: hex SHA-256. Client
// secrets are server-generated high-entropy strings, so a fast digest with
// a constant-time compare is safe and avoids bcrypt's CPU cliff.
func SecretDigest(secret string) string {
	return hexSHA256(secret)
}

var authMethods = map[string]bool{"none": true, "client_secret_basic": true, "client_secret_post": true, "private_key_jwt": true}
var grantTypes = map[string]bool{"authorization_code": true, "refresh_token": true, "client_credentials": true}
var assertionAlgs = map[string]bool{"ES256": true, "PS256": true, "EdDSA": true}

// Validate reports every problem in the configuration at once, each
// prefixed with its path in the file.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Issuer == "" {
		add("issuer: required")
	} else if err := c.CheckURL(c.Issuer); err != nil {
		add("issuer: %v", err)
	} else if u, _ := url.Parse(c.Issuer); u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(u.Path, "/") {
		add("issuer: must have no query, fragment or trailing slash (RFC 8414 §2)")
	}
	// net.Listen would refuse these only at start; port 0 is allowed (an
	// OS-chosen port, as tests use). Empty is a config built in code that
	// never listens (a file gets the defaults).
	for _, a := range []struct{ path, addr string }{{"listen", c.Listen}, {"admin.listen", c.Admin.Listen}} {
		if a.addr == "" {
			continue
		} else if _, port, err := net.SplitHostPort(a.addr); err != nil {
			add("%s: %q is not host:port (e.g. 127.0.0.1:8080, :8080)", a.path, a.addr)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			add("%s: %q: the port must be a number from 0 to 65535", a.path, a.addr)
		}
	}
	l := c.Lifetimes
	if l.AuthorizationCode > 10*time.Minute || l.AuthorizationCode < 0 {
		add("lifetimes.authorization_code: must be at most 10m (RFC 6749 §4.1.2)")
	}
	if l.PushedRequest > 90*time.Second || l.PushedRequest < 0 {
		add("lifetimes.pushed_request: must be at most 90s")
	}
	if l.AuthSession < 0 || l.AccessToken < 0 || l.RefreshToken < 0 {
		add("lifetimes: must not be negative")
	}
	if c.Limits.MaxFailures < 1 {
		add("limits.max_failures: must be at least 1")
	}
	if c.Limits.MaxLiveSessionsPerIP < -1 {
		add("limits.max_live_sessions_per_ip: must be -1 (off) or a positive number")
	}
	if c.Limits.MaxLiveSessionsPerClient < -1 {
		add("limits.max_live_sessions_per_client: must be -1 (off) or a positive number")
	}
	if c.Limits.MaxFederationHops < 0 {
		add("limits.max_federation_hops: must be at least 1")
	}
	errs = append(errs, c.Limits.validateLockout()...)
	errs = append(errs, c.validateDC()...)
	errs = append(errs, c.validateReach()...)
	if c.Admin.Retention < 0 || c.Admin.Retention > 100000 {
		add("admin.retention: must be between 1 and 100000")
	}
	scopes := map[string]bool{}
	for _, s := range c.Scopes {
		scopes[s] = true
	}
	if r := c.Storage.Redis; r != nil {
		n := 0
		if r.URL != "" {
			n++
		}
		if len(r.Addrs) > 0 {
			n++
		}
		if n != 1 {
			add("storage.redis: set exactly one of url and addrs")
		}
		if r.Cluster && r.MasterName != "" {
			add("storage.redis: cluster and master_name exclude each other")
		}
		if r.PasswordEnv != "" && r.PasswordFile != "" {
			add("storage.redis: set only one of password_env and password_file")
		}
	}
	ids := map[string]int{}
	for i, cl := range c.Clients {
		p := fmt.Sprintf("clients[%d]", i)
		if cl.ID == "" {
			add("%s.id: required", p)
		} else if !printableASCII(cl.ID) {
			// RFC 6749 Appendix A.1: no homoglyph, right-to-left override
			// or control character an admin could misread.
			add("%s.id: %q must be printable ASCII (RFC 6749 Appendix A.1)", p, cl.ID)
		} else if j, dup := ids[cl.ID]; dup {
			add("%s.id: %q duplicates clients[%d]", p, cl.ID, j)
		} else {
			ids[cl.ID] = i
		}
		if !authMethods[cl.TokenEndpointAuthMethod] {
			add("%s.token_endpoint_auth_method: %q is not one of none, client_secret_basic, client_secret_post, private_key_jwt", p, cl.TokenEndpointAuthMethod)
		}
		switch cl.TokenEndpointAuthMethod {
		case "client_secret_basic", "client_secret_post":
			if b, err := hex.DecodeString(cl.SecretSHA256); err != nil || len(b) != 32 {
				add("%s: a secret is required (secret_sha256 as 64 hex digits, secret_env or secret_file)", p)
			}
		case "private_key_jwt":
			if cl.JWKS == "" {
				add("%s: private_key_jwt needs jwks or jwks_file", p)
			}
			if !assertionAlgs[cl.SigningAlg] {
				add("%s.signing_alg: %q is not one of ES256, PS256, EdDSA", p, cl.SigningAlg)
			}
		case "none":
			if cl.SecretSHA256 != "" {
				add("%s: a public client (none) must not have a secret", p)
			}
			if cl.Federating {
				add("%s: a federating client must authenticate (not none)", p)
			}
		}
		for _, g := range cl.GrantTypes {
			if !grantTypes[g] {
				add("%s.grant_types: %q is not supported", p, g)
			}
			if g == "client_credentials" && cl.Public() {
				add("%s.grant_types: client_credentials needs a confidential client (RFC 6749 §4.4: the client authenticates)", p)
			}
		}
		switch cl.RefreshTokenRotation {
		case "", RotationAuto, RotationAlways:
		case RotationNever:
			if cl.Public() {
				add("%s.refresh_token_rotation: never is not allowed for a public client: its refresh tokens must rotate or be DPoP-bound (RFC 9700 §4.14.2); use auto or always", p)
			}
		default:
			add("%s.refresh_token_rotation: %q is not one of auto, always, never", p, cl.RefreshTokenRotation)
		}
		for _, s := range cl.Scopes {
			if !scopes[s] {
				add("%s.scopes: %q is not in scopes", p, s)
			}
		}
		for j, u := range cl.RedirectURIs {
			if err := checkRedirectURI(u); err != nil {
				add("%s.redirect_uris[%d]: %v", p, j, err)
			}
		}
		for j, u := range cl.NativeCallbackURIs {
			if err := checkRedirectURI(u); err != nil {
				add("%s.native_callback_uris[%d]: %v", p, j, err)
			}
		}
	}
	users := map[string]int{}
	subs := map[string]int{}
	for i, u := range c.Users {
		p := fmt.Sprintf("users[%d]", i)
		if u.Username == "" {
			add("%s.username: required", p)
		} else if j, dup := users[u.Username]; dup {
			add("%s.username: %q duplicates users[%d]", p, u.Username, j)
		} else {
			users[u.Username] = i
		}
		if j, dup := subs[u.Subject]; dup && u.Subject != "" {
			add("%s.subject: %q duplicates users[%d]", p, u.Subject, j)
		} else {
			subs[u.Subject] = i
		}
		if cost, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil || !strings.HasPrefix(u.PasswordHash, "$2") {
			add("%s.password_hash: must be a bcrypt hash (use `fedas hash-password`)", p)
		} else if cost > MaxBcryptCost {
			add("%s.password_hash: bcrypt cost %d is above %d: every failed sign-in would spend it", p, cost, MaxBcryptCost)
		}
		if u.TOTPSecret != "" {
			if err := checkBase32(u.TOTPSecret); err != nil {
				add("%s.totp_secret: %v", p, err)
			}
		}
	}
	errs = append(errs, c.Keys.validateSigningKeys()...)
	errs = append(errs, c.validateFederation()...)
	errs = append(errs, c.validateRAR()...)
	errs = append(errs, c.Limits.Rate.validate()...)
	for i, p := range c.TrustedProxies {
		if _, err := parseTrustedProxy(p); err != nil {
			add("trusted_proxies[%d]: %v", i, err)
		}
	}
	return errors.Join(errs...)
}

// MaxBcryptCost bounds the cost of users' password hashes: the password
// step spends the highest cost of any user on every failed sign-in, known
// user or not (authn/password), so one hash of cost 31 would let anyone
// pin a CPU for a day per request. Cost 16 is already about five seconds.
const MaxBcryptCost = 16

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// CheckURL accepts https URLs, and http URLs on loopback hosts only when
// Dev.AllowLoopbackHTTP is set.
func (c *Config) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q must not carry user info", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if c.Dev.AllowLoopbackHTTP && isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q must use https (http only on loopback with dev.allow_loopback_http)", raw)
	}
	return fmt.Errorf("%q must use https", raw)
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "::1" || strings.HasPrefix(host, "127.")
}

// checkRedirectURI accepts absolute URIs without fragments: https, loopback
// http, or a private-use scheme containing a dot (RFC 8252 §7.1).
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("%q is not an absolute URI", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("%q must not have a fragment", raw)
	}
	if u.User != nil {
		return fmt.Errorf("%q must not carry user info", raw)
	}
	switch s := strings.ToLower(u.Scheme); {
	case s == "https":
		if u.Host == "" {
			return fmt.Errorf("%q has no host", raw)
		}
	case s == "http":
		if !isLoopback(u.Hostname()) {
			return fmt.Errorf("%q: http only for loopback redirects (RFC 8252 §7.3)", raw)
		}
	case s == "javascript" || s == "data" || s == "file" || s == "vbscript":
		return fmt.Errorf("%q: scheme not allowed", raw)
	case strings.Contains(s, "."):
		// private-use URI scheme in reverse-domain form (RFC 8252 §7.1)
	default:
		return fmt.Errorf("%q: custom schemes must be reverse-domain names (RFC 8252 §7.1)", raw)
	}
	return nil
}
