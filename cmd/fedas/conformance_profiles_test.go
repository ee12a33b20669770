package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/conformance"
	"github.com/fedas/fedas/federation/fedtest"
	"github.com/fedas/fedas/server/servertest"
)

// startConformanceFederation starts AS1, which federates @as2.example to
// AS2 and @legacy.example to a downstream without a native endpoint, and
// AS2, where AS1 is a federating client and an app of AS2 takes over
// requests carrying a native callback. AS1 also registers fed-basic, a
// federating client with a secret, so that one run checks it in both the
// federation and the downstream profile. It returns both issuers and
// AS1's private JWK for private_key_jwt at AS2.
func startConformanceFederation(tb testing.TB) (as1URL, as2URL, as1Key string) {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	priv := jose.JSONWebKey{Key: k, KeyID: "as1-at-as2", Algorithm: string(jose.ES256), Use: "sig"}
	privJSON, err := json.Marshal(priv)
	require.NoError(tb, err)
	pubJSON, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{priv.Public()}})
	require.NoError(tb, err)
	hash, err := bcrypt.GenerateFromPassword([]byte("carol-pw"), bcrypt.MinCost)
	require.NoError(tb, err)

	as2 := servertest.Start(tb, servertest.Options{Configure: func(c *config.Config) {
		c.Users = append(c.Users, config.User{Username: "carol", Subject: "carol", PasswordHash: string(hash)})
		c.Clients = append(c.Clients, config.Client{
			ID: "as1", Federating: true, AllowCredentialChallenges: true,
			TokenEndpointAuthMethod: "private_key_jwt", JWKS: string(pubJSON), SigningAlg: "ES256",
			Scopes: []string{"openid", "email"}, GrantTypes: []string{"authorization_code"},
			RedirectURIs: []string{"https://as1.example/web-callback"}, NativeCallbackURIs: []string{"https://app.example/cb"},
		})
		c.Apps = append(c.Apps, config.App{ID: "as2app", ClientID: "demo-app", DeepLink: "https://as2.example/app", DownstreamRole: true})
	}})
	legacy := fedtest.Start(tb, fedtest.Options{NoNative: true})
	as1 := servertest.Start(tb, servertest.Options{Configure: func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "fed-basic", Federating: true, AllowCredentialChallenges: true,
			TokenEndpointAuthMethod: "client_secret_basic", SecretSHA256: config.SecretDigest("fed-basic-secret"),
			Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"https://fed-basic.example/cb"}})
		for _, d := range []struct{ id, issuer string }{{"as2", as2.URL}, {"legacy", legacy.URL}} {
			c.Downstreams = append(c.Downstreams, config.Downstream{
				ID: d.id, Issuer: d.issuer, Name: d.id, ClientID: "as1",
				Auth:   config.DownstreamAuth{Method: "private_key_jwt", Key: string(privJSON)},
				Scopes: map[string]string{"openid": "openid", "email": "email"},
			})
		}
		c.Prompt = &config.Prompt{Inputs: []config.PromptInput{{Key: "email", Title: "Email"}}}
		c.Routes = append(c.Routes,
			config.Route{Downstream: "as2", EmailDomains: []string{"as2.example"}},
			config.Route{Downstream: "legacy", EmailDomains: []string{"legacy.example"}})
	}})
	return as1.URL, as2.URL, string(privJSON)
}

// TestConformanceCmd_Profiles runs the real binary with --profile
// federation,downstream against a federating fedas (AS1 → AS2): with
// every input each check passes (but the expiry check, which would wait
// 90 s without --par-expiry) and it exits 0, the JSON report holds all 14
// results and no password, secret or client assertion; without
// the inputs every check is not applicable (exit 0). The downstream
// profile against AS2 with AS1's private_key_jwt key passes too.
func TestConformanceCmd_Profiles(t *testing.T) {
	bin := buildBinary(t)
	as1, as2, key := startConformanceFederation(t)
	keyFile := filepath.Join(t.TempDir(), "as1.jwk")
	require.NoError(t, os.WriteFile(keyFile, []byte(key), 0o600))
	both := len(conformance.FederationChecks()) + len(conformance.DownstreamChecks())
	inputs := []string{
		"--client-id", "demo-app",
		"--federation-prompt", "email=carol@as2.example",
		"--downstream-username", "carol", "--downstream-password", "carol-pw",
		"--native-callback-uri", "https://app.example/cb",
		"--unsupported-prompt", "email=dave@legacy.example",
		"--par-client-id", "fed-basic", "--par-auth", "client_secret_basic:fed-basic-secret",
		"--par-redirect-uri", "https://fed-basic.example/cb",
	}
	for _, tc := range []struct {
		name, issuer, profiles string
		args                   []string
		n                      int
		want                   conformance.Status
		stdout                 string
	}{
		{"every input", as1, "federation,downstream", inputs, both, conformance.Pass, "13 passed, 0 failed, 1 not applicable"},
		{"no inputs", as1, "federation,downstream", []string{"--client-id", "demo-app"}, both, conformance.NotApplicable, "0 passed, 0 failed, 14 not applicable"},
		{"downstream with private_key_jwt", as2, "downstream", []string{"--par-client-id", "as1", "--par-auth", "private_key_jwt", "--par-key", keyFile,
			"--par-redirect-uri", "https://as1.example/web-callback"}, len(conformance.DownstreamChecks()), conformance.Pass, "6 passed, 0 failed, 1 not applicable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jsonFile := filepath.Join(t.TempDir(), "r.json")
			args := append([]string{"conformance", "--issuer", tc.issuer, "--profile", tc.profiles, "--json", jsonFile}, tc.args...)
			cmd := exec.Command(bin, args...)
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			err := cmd.Run()
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", ee.ExitCode(), out.String(), errOut.String())
			}
			require.NoError(t, err)
			require.Contains(t, out.String(), tc.stdout)

			b, err := os.ReadFile(jsonFile)
			require.NoError(t, err)
			var rep conformance.Report
			require.NoError(t, json.Unmarshal(b, &rep))
			require.Len(t, rep.Results, tc.n)
			for _, r := range rep.Results {
				want := tc.want
				if r.ID == "downstream-request-uri-expired" && want == conformance.Pass {
					// It waits 90 s: the conformance package's tests run it
					// on an advanced clock.
					want = conformance.NotApplicable
					require.Contains(t, r.Detail, "--par-expiry")
				}
				require.Equal(t, want, r.Status, "%s: %s", r.ID, r.Detail)
			}
			require.NotContains(t, string(b), "carol-pw")
			require.NotContains(t, string(b), "fed-basic-secret")
			require.NotContains(t, string(b), "eyJ") // no client assertion
		})
	}
}

// TestConformanceCmd_ProfileUsageErrors: malformed federation and
// downstream inputs exit 2 with the usage on stderr.
func TestConformanceCmd_ProfileUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--federation-prompt", "email"}, "--federation-prompt: want NAME=VALUE"},
		{[]string{"--unsupported-prompt", "=x"}, "--unsupported-prompt: want NAME=VALUE"},
		{[]string{"--downstream-username", "carol"}, "--downstream-username and --downstream-password go together"},
		{[]string{"--par-auth", "client_secret_basic:s"}, "--par-auth needs --par-client-id"},
		{[]string{"--par-client-id", "x", "--par-auth", "none"}, "--par-auth: want client_secret_basic:SECRET or private_key_jwt"},
		{[]string{"--par-client-id", "x", "--par-auth", "private_key_jwt"}, "--par-auth private_key_jwt and --par-key go together"},
		{[]string{"--par-client-id", "x", "--par-auth", "private_key_jwt", "--par-key", "/nonexistent/key.json"}, "--par-key: open /nonexistent/key.json"},
		{[]string{"--par-client-id", "x", "--par-auth", "private_key_jwt", "--par-key", "conformance_profiles_test.go"}, "--par-key conformance_profiles_test.go: not a JWK"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(append([]string{"conformance", "--issuer", "http://127.0.0.1:1"}, tc.args...), strings.NewReader(""), &out, &errOut)
			require.Error(t, err)
			require.Equal(t, 2, exitCode(err))
			require.Empty(t, out.String())
			require.Contains(t, errOut.String(), tc.msg)
			require.Contains(t, errOut.String(), "usage: fedas conformance")
		})
	}
}
