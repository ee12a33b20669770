package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
)

func TestDefault_IsTheDemo(t *testing.T) {
	c := config.Default()
	require.Equal(t, "http://127.0.0.1:8080", c.Issuer)
	require.Nil(t, c.Storage.Redis, "the demo runs on memory")
	ids := map[string]config.Client{}
	for _, cl := range c.Clients {
		ids[cl.ID] = cl
	}
	require.True(t, ids["demo-app"].FirstParty)
	require.True(t, ids["demo-app"].Public())
	users := map[string]config.User{}
	for _, u := range c.Users {
		users[u.Username] = u
	}
	require.Contains(t, users, "alice")
	require.Equal(t, "JBSWY3DPEHPK3PXP", users["bob"].TOTPSecret)
	require.NoError(t, c.Validate())
}

func TestParse_RejectsUnknownKeys(t *testing.T) {
	_, err := config.Parse([]byte("issuer: https://as.example\nlisten: 127.0.0.1:1\nbogus: 1\n"))
	require.ErrorContains(t, err, "bogus")
}

// Validate reports every problem at once, each with its path.
func TestValidate_ReportsEveryProblem(t *testing.T) {
	yaml := `
issuer: http://as.example/
lifetimes: {authorization_code: 11m, pushed_request: 5m}
scopes: [openid]
clients:
  - id: a
    token_endpoint_auth_method: none
    scopes: [openid, admin]
    native_callback_uris: ["javascript:alert(1)", "https://app.example/cb#frag", "myapp:/cb"]
  - id: a
    token_endpoint_auth_method: client_secret_basic
  - id: b
    token_endpoint_auth_method: magic
users:
  - username: u
    password_hash: plaintext
    totp_secret: "not base32!"
  - username: u
    password_hash: $2a$10$abcdefghijklmnopqrstuv
`
	_, err := config.Parse([]byte(yaml))
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		"issuer:",
		"lifetimes.authorization_code",
		"lifetimes.pushed_request",
		"clients[0].scopes: \"admin\"",
		"clients[0].native_callback_uris[0]",
		"clients[0].native_callback_uris[1]",
		"clients[0].native_callback_uris[2]",
		"clients[1].id: \"a\" duplicates clients[0]",
		"clients[1]: a secret is required",
		"clients[2].token_endpoint_auth_method",
		"users[0].password_hash",
		"users[0].totp_secret",
		"users[1].username: \"u\" duplicates users[0]",
	} {
		require.Contains(t, msg, want)
	}
	require.GreaterOrEqual(t, strings.Count(msg, "\n"), 12)
}

func TestURLs_LoopbackOnlyInDev(t *testing.T) {
	tests := []struct {
		url  string
		dev  bool
		okay bool
	}{
		{"https://as.example", false, true},
		{"http://127.0.0.1:8080", true, true},
		{"http://127.0.0.1:8080", false, false},
		{"http://as.example", true, false},
		{"https://user@as.example", false, false},
		{"ftp://as.example", true, false},
	}
	for _, tc := range tests {
		c := &config.Config{Dev: config.Dev{AllowLoopbackHTTP: tc.dev}}
		err := c.CheckURL(tc.url)
		require.Equal(t, tc.okay, err == nil, "%s dev=%v: %v", tc.url, tc.dev, err)
	}
}

func TestSecrets_FromEnvAndFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(file, []byte("from-file\n"), 0o600))
	t.Setenv("FEDAS_TEST_SECRET", "from-env")
	yaml := `
issuer: https://as.example
clients:
  - id: env
    token_endpoint_auth_method: client_secret_basic
    secret_env: FEDAS_TEST_SECRET
  - id: file
    token_endpoint_auth_method: client_secret_post
    secret_file: ` + file + `
`
	c, err := config.Parse([]byte(yaml))
	require.NoError(t, err)
	require.Equal(t, config.SecretDigest("from-env"), c.Clients[0].SecretSHA256)
	require.Equal(t, config.SecretDigest("from-file"), c.Clients[1].SecretSHA256)

	_, err = config.Parse([]byte(strings.Replace(yaml, "FEDAS_TEST_SECRET", "FEDAS_UNSET_VAR", 1)))
	require.ErrorContains(t, err, "FEDAS_UNSET_VAR is not set")
}

// Federation and app configuration errors are reported with their paths.
func TestValidate_FederationProblems(t *testing.T) {
	yaml := `
issuer: https://as.example
clients:
  - {id: app, token_endpoint_auth_method: none}
  - {id: fed, token_endpoint_auth_method: client_secret_basic, secret_sha256: "` + config.SecretDigest("x") + `", federating: true}
downstreams:
  - {id: ds1, issuer: "http://ds1.example", client_id: us, auth: {method: magic}}
  - {id: ds2, issuer: "http://ds1.example", client_id: us, auth: {method: client_secret_basic}}
prompt:
  inputs: [{key: password}]
  options: [{key: bank, values: [{value: b1, name: B1}, {value: b1, name: dup}]}]
routes:
  - {downstream: nope, email_domains: [x.example]}
  - {local: true, downstream: ds1, option: {key: bank, value: b9}}
  - {app: ghost, clients: [app]}
apps:
  - {id: bank, client_id: app, deep_link: "http://bank.example/app?x=1"}
default_route: elsewhere
`
	_, err := config.Parse([]byte(yaml))
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		"downstreams[0].issuer", "downstreams[0].auth.method", "downstreams[1].auth: client_secret_basic needs",
		"prompt.inputs[0].key", "prompt.options[0].values[1]",
		"routes[0].downstream", "routes[0].email_domains", "routes[1]: set only one", "routes[1].option.value", "routes[2].app",
		"apps[0].client_id", "apps[0].deep_link", "clients[1]: a federating client needs its web callback", "default_route",
	} {
		require.Contains(t, msg, want)
	}
}

// TestValidate_ClientIDsAndBcryptCost: the file refuses what the admin
// surface refuses — a client id outside printable ASCII, a password hash
// that is no bcrypt hash, and a bcrypt cost every failed sign-in could
// be made to spend (config.MaxBcryptCost).
func TestValidate_ClientIDsAndBcryptCost(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*config.Config)
		want string
	}{
		{"homoglyph id", func(c *config.Config) { c.Clients[0].ID = "demо-app" }, "clients[0].id:"},
		{"rtl override", func(c *config.Config) { c.Clients[0].ID = "demo\u202eppa" }, "clients[0].id:"},
		{"control character", func(c *config.Config) { c.Clients[0].ID = "demo\napp" }, "clients[0].id:"},
		{"not bcrypt", func(c *config.Config) { c.Users[0].PasswordHash = "$2a$10$short" }, "users[0].password_hash: must be a bcrypt hash"},
		{"cost 31", func(c *config.Config) {
			c.Users[0].PasswordHash = "$2a$31$zgYgp2vW5p9Y91Oau2eDkOzUo20KYsFl7c8.GYCv55PevSBg6d1Ea"
		}, "bcrypt cost 31 is above 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.Default()
			tc.edit(c)
			err := c.Validate()
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	require.NoError(t, config.Default().Validate(), "the demo config stays valid")
}

// TestValidate_RefreshTokenRotation (SECURITY-RESULTS.md RT06): the
// rotation setting takes auto, always and never; never is refused for a
// public client, whose unbound refresh tokens must rotate (RFC 9700
// §4.14.2); a file without the key gets auto.
func TestValidate_RefreshTokenRotation(t *testing.T) {
	// demo-app (clients[0]) is public, demo-partner (clients[1]) confidential.
	for _, tc := range []struct {
		client int
		value  string
		want   string // "" means valid
	}{
		{0, "", ""},
		{0, "auto", ""},
		{0, "always", ""},
		{0, "never", "clients[0].refresh_token_rotation: never is not allowed for a public client"},
		{0, "Always", `clients[0].refresh_token_rotation: "Always" is not one of auto, always, never`},
		{1, "never", ""},
		{1, "always", ""},
		{1, "sometimes", `clients[1].refresh_token_rotation: "sometimes" is not one of auto, always, never`},
	} {
		t.Run(fmt.Sprintf("client %d %q", tc.client, tc.value), func(t *testing.T) {
			c := config.Default()
			c.Clients[tc.client].RefreshTokenRotation = tc.value
			err := c.Validate()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	for _, cl := range config.Default().Clients {
		require.Equal(t, config.RotationAuto, cl.RefreshTokenRotation, "the default of %s", cl.ID)
	}
}
