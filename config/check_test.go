package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
)

// find returns the problem at path, failing when there is none.
func find(t *testing.T, probs []config.Problem, path string) config.Problem {
	t.Helper()
	for _, p := range probs {
		if p.Path == path {
			return p
		}
	}
	t.Fatalf("no problem at %s in %v", path, probs)
	return config.Problem{}
}

// TestCheck_TypeErrorAndSemanticTogether: a value of the wrong type does
// not stop the check: the semantic problems of the rest are reported
// with it, each with its YAML path (not a Go type) and line.
func TestCheck_TypeErrorAndSemanticTogether(t *testing.T) {
	_, probs := config.Check([]byte(`issuer: ftp://as.example
downstreams:
  - id: bank
    issuer: https://bank.example
    client_id: us
    auth: {method: client_secret_basic, secret_env: X}
    timeout: [1]
`), config.Options{})
	typ := find(t, probs, "downstreams[0].timeout")
	require.Equal(t, 7, typ.Line)
	require.Contains(t, typ.Message, "a list where a duration")
	require.NotContains(t, typ.Message, "time.Duration", "no Go type names")
	sem := find(t, probs, "issuer")
	require.Equal(t, 1, sem.Line)
	require.Contains(t, sem.Message, "must use https")
	find(t, probs, "downstreams[0].auth.secret") // the env var X is not set
}

// TestCheck_SyntaxErrorAndSemanticTogether: a syntax error is reported
// with its line and column, and the lines around it are still checked
// (their problems marked AfterSyntax).
func TestCheck_SyntaxErrorAndSemanticTogether(t *testing.T) {
	_, probs := config.Check([]byte(`issuer: https://as.example
clients:
  - id: a
    token_endpoint_auth_method: nope
  bad: [1, 2
limits: {max_failures: -1}
`), config.Options{})
	require.NotEmpty(t, probs)
	syn := probs[0]
	require.Empty(t, syn.Path)
	require.Equal(t, 5, syn.Line)
	require.Equal(t, 3, syn.Column)
	require.Contains(t, syn.Message, "YAML syntax")
	require.Contains(t, syn.String(), "line 5, column 3: YAML syntax")
	sem := find(t, probs, "clients[0].token_endpoint_auth_method")
	require.True(t, sem.AfterSyntax)
	require.Equal(t, 4, sem.Line)
	find(t, probs, "limits.max_failures")
}

// An unclosed bracket is reported where it opens, not where the parser
// noticed it.
func TestCheck_UnclosedFlowAtItsStart(t *testing.T) {
	_, probs := config.Check([]byte("issuer: https://as.example\nscopes: [openid, email\nlisten: 127.0.0.1:1\n"), config.Options{})
	require.Equal(t, 2, probs[0].Line, "%v", probs)
	require.Contains(t, probs[0].Message, "flow sequence")
}

func TestCheck_UnknownKeysSuggest(t *testing.T) {
	_, probs := config.Check([]byte(`issuer: https://as.example
listne: 127.0.0.1:8080
keys: {hmac_secret_fiel: x}
clients:
  - id: a
    token_endpoint_auth_method: none
    secret_envv: X
zzzzzz: 1
`), config.Options{})
	require.Equal(t, "unknown key; did you mean listen?", find(t, probs, "listne").Message)
	require.Equal(t, "unknown key; did you mean hmac_secret_file?", find(t, probs, "keys.hmac_secret_fiel").Message)
	p := find(t, probs, "clients[0].secret_envv")
	require.Equal(t, "unknown key; did you mean secret_env?", p.Message)
	require.Equal(t, 7, p.Line)
	require.Equal(t, 5, p.Column)
	require.Contains(t, find(t, probs, "zzzzzz").Message, "valid here: issuer, listen", "no close match: the valid keys")
}

func TestCheck_TypesAndDuplicates(t *testing.T) {
	_, probs := config.Check([]byte(`issuer: https://as.example
issuer: https://other.example
limits: {max_failures: lots}
clients:
  - id: a
    token_endpoint_auth_method: none
    first_party: maybe
    scopes: openid
users: {alice: 1}
`), config.Options{})
	require.Contains(t, find(t, probs, "issuer").Message, "duplicate key (first at line 1)")
	require.Equal(t, `"lots" where a whole number is expected`, find(t, probs, "limits.max_failures").Message)
	require.Equal(t, `"maybe" where true or false is expected`, find(t, probs, "clients[0].first_party").Message)
	require.Equal(t, `"openid" where a list is expected`, find(t, probs, "clients[0].scopes").Message)
	require.Equal(t, `a mapping where a list is expected`, find(t, probs, "users").Message)
}

// TestCheck_LoadsKeys: with Keys, the signing key file, the HMAC secret
// and the Redis password are loaded as serve loads them: a missing or
// unusable file is a problem, not a failure at start.
func TestCheck_LoadsKeys(t *testing.T) {
	dir := t.TempDir()
	yaml := []byte(`issuer: https://as.example
keys:
  signing_key_file: ` + filepath.Join(dir, "missing.pem") + `
  hmac_secret_file: ` + filepath.Join(dir, "short") + `
storage:
  redis: {url: "redis://127.0.0.1:1/0", password_env: FEDAS_TEST_NO_SUCH_VAR}
`)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "short"), []byte("too short\n"), 0o600))
	_, probs := config.Check(yaml, config.Options{})
	require.Empty(t, probs, "Parse leaves the keys to serve")
	_, probs = config.Check(yaml, config.Options{Keys: true})
	require.Contains(t, find(t, probs, "keys.signing_key_file").Message, "no such file")
	require.Equal(t, 3, find(t, probs, "keys.signing_key_file").Line)
	require.Contains(t, find(t, probs, "keys.hmac_secret").Message, "at least 32 bytes")
	require.Contains(t, find(t, probs, "storage.redis.password").Message, "FEDAS_TEST_NO_SUCH_VAR is not set")

	// A P-384 key is refused: we sign ES256.
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "missing.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	_, probs = config.Check(yaml, config.Options{Keys: true})
	require.Contains(t, find(t, probs, "keys.signing_key_file").Message, "P-256")
}

func TestCheck_ListenAddresses(t *testing.T) {
	_, probs := config.Check([]byte("issuer: https://as.example\nlisten: 8080\nadmin: {listen: \"127.0.0.1:99999\"}\n"), config.Options{})
	require.Contains(t, find(t, probs, "listen").Message, "not host:port")
	require.Contains(t, find(t, probs, "admin.listen").Message, "port must be a number")
}

// TestOverrides_Precedence: flag > FEDAS_ environment > file > default,
// key by key; an empty variable is unset; problems in an overridden value
// name the override, not a line of the file.
func TestOverrides_Precedence(t *testing.T) {
	file := `issuer: https://file.example
listen: 127.0.0.1:1001
storage:
  redis: {addrs: ["10.0.0.1:6379"], master_name: m, prefix: "p:", password_env: PW}
keys: {hmac_secret_env: H}
admin: {listen: 127.0.0.1:1002, tokens_file: /file/tokens}
`
	type want struct{ issuer, listen, redisURL, adminListen, tokens, hmacFile, hmacEnv string }
	for _, tc := range []struct {
		name  string
		env   map[string]string
		flags []config.Setting
		want  want
	}{
		{"file", nil, nil, want{"https://file.example", "127.0.0.1:1001", "", "127.0.0.1:1002", "/file/tokens", "", "H"}},
		{"env over file", map[string]string{
			"FEDAS_ISSUER": "https://env.example", "FEDAS_LISTEN": "127.0.0.1:2001", "FEDAS_STORAGE_REDIS_URL": "redis://env:6379/0",
			"FEDAS_ADMIN_LISTEN": "127.0.0.1:2002", "FEDAS_ADMIN_TOKENS_FILE": "/env/tokens", "FEDAS_KEYS_HMAC_SECRET_FILE": "/env/hmac",
		}, nil, want{"https://env.example", "127.0.0.1:2001", "redis://env:6379/0", "127.0.0.1:2002", "/env/tokens", "/env/hmac", ""}},
		{"flag over env", map[string]string{"FEDAS_ISSUER": "https://env.example", "FEDAS_LISTEN": "127.0.0.1:2001"},
			[]config.Setting{{Key: "issuer", Value: "https://flag.example", Source: "--issuer"}, {Key: "admin.listen", Value: "127.0.0.1:3002", Source: "--admin-listen"}},
			want{"https://flag.example", "127.0.0.1:2001", "", "127.0.0.1:3002", "/file/tokens", "", "H"}},
		{"empty env is unset", map[string]string{"FEDAS_ISSUER": "", "FEDAS_LISTEN": " "}, nil,
			want{"https://file.example", "127.0.0.1:1001", "", "127.0.0.1:1002", "/file/tokens", "", "H"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			c, probs := config.Check([]byte(file), config.Options{Env: env, Flags: tc.flags})
			require.Empty(t, probs)
			got := want{c.Issuer, c.Listen, c.Storage.Redis.URL, c.Admin.Listen, c.Admin.TokensFile, c.Keys.HMACSecretFile, c.Keys.HMACSecretEnv}
			require.Equal(t, tc.want, got)
			if tc.want.redisURL != "" {
				r := c.Storage.Redis
				require.Empty(t, r.Addrs, "a URL selects one node")
				require.Empty(t, r.MasterName)
				require.Equal(t, "p:", r.Prefix, "the rest of the file's Redis settings stay")
				require.Equal(t, "PW", r.PasswordEnv)
			}
		})
	}

	t.Run("defaults below the file", func(t *testing.T) {
		c, probs := config.Check([]byte("issuer: https://as.example\n"), config.Options{Env: func(string) (string, bool) { return "", false }})
		require.Empty(t, probs)
		require.Equal(t, "127.0.0.1:8080", c.Listen)
		require.Empty(t, c.Admin.Listen, "no admin listener unless asked for")
		require.Equal(t, config.DefaultAdminListen, c.Admin.ListenAddr())
		require.Nil(t, c.Storage.Redis)
	})
	t.Run("problems name the override", func(t *testing.T) {
		env := func(k string) (string, bool) {
			return map[string]string{"FEDAS_ISSUER": "ftp://env.example"}[k], k == "FEDAS_ISSUER"
		}
		_, probs := config.Check([]byte(file), config.Options{Env: env, Flags: []config.Setting{{Key: "listen", Value: "nope", Source: "--listen"}}})
		iss := find(t, probs, "issuer")
		require.Equal(t, "FEDAS_ISSUER", iss.Source)
		require.Zero(t, iss.Line, "not a line of the file")
		require.Equal(t, "--listen", find(t, probs, "listen").Source)
	})
	t.Run("every override has its documented name", func(t *testing.T) {
		for _, o := range config.Overrides() {
			require.Equal(t, "FEDAS_"+strings.ToUpper(strings.ReplaceAll(o.Key, ".", "_")), o.Env)
		}
	})
}

// TestParse_ProblemsOnePerLine: Parse's error still splits into one
// "path: message" line per problem (the SIGHUP log and the admin API rely
// on it), the syntax ones with their line.
func TestParse_ProblemsOnePerLine(t *testing.T) {
	_, err := config.Parse([]byte("issuer: ftp://x\nlisne: 1\n"))
	require.Equal(t, []string{`issuer: "ftp://x" must use https`, "lisne: unknown key; did you mean listen?"}, config.Problems(err))
	_, err = config.Parse([]byte("issuer: [\n"))
	require.Error(t, err)
	require.Contains(t, config.Problems(err)[0], "line ")
}
