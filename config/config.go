// Package config holds fedas's configuration as plain data: the YAML file
// format, the embedded demo default, and validation that reports every
// problem at once with its path in the file. It never opens a connection.
package config

import (
	"bytes"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
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
	// Listen is the TCP address the HTTP server binds.
	Listen string `yaml:"listen"`
	// Dev holds settings that are only safe on a developer machine.
	Dev Dev `yaml:"dev"`
	// Storage selects the backend; without Redis, memory is used.
	Storage Storage `yaml:"storage"`
	// Keys holds the signing key and the token HMAC secret.
	Keys Keys `yaml:"keys"`
	// Scopes lists the scopes the server supports (RFC 8414 scopes_supported).
	Scopes []string `yaml:"scopes"`
	// Lifetimes of every artefact.
	Lifetimes Lifetimes `yaml:"lifetimes"`
	// Limits caps abuse.
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
}

// App is one of our own native apps, invoked by deep link.
type App struct {
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
	ID     string `yaml:"id"`
	Issuer string `yaml:"issuer"`
	Name   string `yaml:"name"`
	Logo   string `yaml:"logo"`
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
	// KeyFile / KeyEnv hold a private JWK (JSON, with kid and alg).
	KeyFile string `yaml:"key_file"`
	KeyEnv  string `yaml:"key_env"`
	// Key is the resolved private JWK (JSON); it may also be inline.
	Key string `yaml:"key"`
	// SecretEnv / SecretFile hold the client secret.
	SecretEnv  string `yaml:"secret_env"`
	SecretFile string `yaml:"secret_file"`
	// Secret is the resolved secret; never inline in a file.
	Secret string `yaml:"-"`
}

// Prompt is a userPrompt definition (federation draft §4.3.3).
type Prompt struct {
	// Logo of this AS, for branding.
	Logo    string         `yaml:"logo"`
	Options []PromptOption `yaml:"options"`
	// Inputs are free-text inputs: only "email" and "phone" (ZFed-ED §5.2).
	Inputs []PromptInput `yaml:"inputs"`
	// MaxAttempts caps invalid answers per session (default 5).
	MaxAttempts int `yaml:"max_attempts"`
}

// PromptOption is a select input.
type PromptOption struct {
	Key         string        `yaml:"key"`
	Title       string        `yaml:"title"`
	Description string        `yaml:"description"`
	Values      []PromptValue `yaml:"values"`
}

// PromptValue is one choice of an option.
type PromptValue struct {
	Value string `yaml:"value"`
	Name  string `yaml:"name"`
	Logo  string `yaml:"logo"`
}

// PromptInput is a free-text input.
type PromptInput struct {
	Key         string `yaml:"key"`
	Title       string `yaml:"title"`
	Hint        string `yaml:"hint"`
	Description string `yaml:"description"`
}

// Route maps answers to a target. All given conditions must hold.
type Route struct {
	// ID names the route for the admin API; optional in a file (the
	// store names unnamed routes route-1, route-2, … by position).
	ID string `yaml:"id,omitempty"`
	// Downstream is a downstream id; or Local is true.
	Downstream string `yaml:"downstream"`
	Local      bool   `yaml:"local"`
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
	Key   string `yaml:"key"`
	Value string `yaml:"value"`
}

// Dev holds developer-only switches.
type Dev struct {
	// AllowLoopbackHTTP permits http:// URLs on loopback hosts (issuer,
	// downstreams); production configs must leave it off.
	AllowLoopbackHTTP bool `yaml:"allow_loopback_http"`
}

// Storage configures the state backend.
type Storage struct {
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
	// MasterName selects Sentinel.
	MasterName string `yaml:"master_name"`
	Username   string `yaml:"username"`
	// PasswordEnv / PasswordFile name where the password comes from.
	PasswordEnv  string `yaml:"password_env"`
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
	// SigningKeyFile is a PEM (PKCS#8 or SEC1) EC P-256 private key.
	SigningKeyFile string `yaml:"signing_key_file"`
	// HMACSecretEnv / HMACSecretFile hold the ≥32-byte secret fosite uses
	// to sign codes and tokens; instances sharing Redis must share it.
	HMACSecretEnv  string `yaml:"hmac_secret_env"`
	HMACSecretFile string `yaml:"hmac_secret_file"`
}

// Lifetimes of artefacts.
type Lifetimes struct {
	AuthSession       time.Duration `yaml:"auth_session"`
	AuthorizationCode time.Duration `yaml:"authorization_code"`
	AccessToken       time.Duration `yaml:"access_token"`
	RefreshToken      time.Duration `yaml:"refresh_token"`
	PushedRequest     time.Duration `yaml:"pushed_request"`
}

// Limits caps abuse.
type Limits struct {
	// MaxFailures is the number of wrong answers an auth_session survives.
	MaxFailures int `yaml:"max_failures"`
	// MaxBodyBytes caps request bodies.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxParams caps the number of form parameters.
	MaxParams int `yaml:"max_params"`
}

// Client is a registered OAuth client (RFC 7591 §2 metadata names).
type Client struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// FirstParty allows the native authorization endpoint (FiPA-04 §1).
	FirstParty bool `yaml:"first_party"`
	// TokenEndpointAuthMethod is none, client_secret_basic,
	// client_secret_post or private_key_jwt.
	TokenEndpointAuthMethod string `yaml:"token_endpoint_auth_method"`
	// The secret is stored only as a SHA-256 digest (docs/performance.md trap 1):
	// given directly, or read in clear from an env var or file at load.
	SecretSHA256 string `yaml:"secret_sha256"`
	SecretEnv    string `yaml:"secret_env"`
	SecretFile   string `yaml:"secret_file"`
	// JWKS (inline JSON) or JWKSFile hold the keys for private_key_jwt.
	JWKS     string `yaml:"jwks"`
	JWKSFile string `yaml:"jwks_file"`
	// SigningAlg is the private_key_jwt assertion algorithm (default ES256).
	SigningAlg         string   `yaml:"signing_alg"`
	Scopes             []string `yaml:"scopes"`
	GrantTypes         []string `yaml:"grant_types"`
	RedirectURIs       []string `yaml:"redirect_uris"`
	NativeCallbackURIs []string `yaml:"native_callback_uris"`
	// Federating marks another AS that federates to us via PAR.
	Federating bool `yaml:"federating"`
	// AllowCredentialChallenges lets a federating client receive password
	// and OTP challenges (off by default, docs/decisions.md Q10).
	AllowCredentialChallenges bool `yaml:"allow_credential_challenges"`
}

// Public reports whether the client has no credentials.
func (c Client) Public() bool { return c.TokenEndpointAuthMethod == "none" }

// User is a local account.
type User struct {
	Username string `yaml:"username"`
	// Subject is the stable `sub`; defaults to Username.
	Subject string `yaml:"subject"`
	// PasswordHash is a bcrypt hash (`fedas hash-password`).
	PasswordHash string `yaml:"password_hash"`
	// TOTPSecret is a base32 RFC 6238 secret, or read from TOTPSecretEnv /
	// TOTPSecretFile.
	TOTPSecret     string            `yaml:"totp_secret"`
	TOTPSecretEnv  string            `yaml:"totp_secret_env"`
	TOTPSecretFile string            `yaml:"totp_secret_file"`
	Claims         map[string]string `yaml:"claims"`
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

// Load reads, parses and validates a YAML file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes YAML (unknown keys are errors), applies defaults, resolves
// secrets from env vars and files, and validates.
func Parse(b []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse: %w", err)
	}
	c.applyDefaults()
	resolveErr := c.resolveSecrets()
	if err := errors.Join(resolveErr, c.Validate()); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) applyDefaults() {
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
	}
}

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

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
		b, err := os.ReadFile(file)
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
			b, err := os.ReadFile(cl.JWKSFile)
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
var grantTypes = map[string]bool{"authorization_code": true, "refresh_token": true}
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
		if !strings.HasPrefix(u.PasswordHash, "$2a$") && !strings.HasPrefix(u.PasswordHash, "$2b$") && !strings.HasPrefix(u.PasswordHash, "$2y$") {
			add("%s.password_hash: must be a bcrypt hash (use `fedas hash-password`)", p)
		}
		if u.TOTPSecret != "" {
			if err := checkBase32(u.TOTPSecret); err != nil {
				add("%s.totp_secret: %v", p, err)
			}
		}
	}
	errs = append(errs, c.validateFederation()...)
	return errors.Join(errs...)
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
