package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/conformance"
	"github.com/fedas/fedas/conformance/conformancetest"
)

// TestConformanceCmd_Profiles runs the real binary with --profile
// federation,downstream against a federating fedas (AS1 → AS2): with
// every input each check passes (but the expiry check, which would wait
// 90 s without --par-expiry) and it exits 0, the JSON report holds all 14
// results and no password, secret or client assertion; without
// the inputs every check is not applicable (exit 0). The downstream
// profile against AS2 with AS1's private_key_jwt key passes too.
func TestConformanceCmd_Profiles(t *testing.T) {
	bin := buildBinary(t)
	fed := conformancetest.StartFederation(t)
	as1, as2, key := fed.AS1.URL, fed.AS2.URL, fed.AS1Key
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
			stdout, stderr, code := runBinary(t, bin, args...)
			require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			require.Contains(t, stdout, tc.stdout)

			rep := readReport(t, jsonFile)
			b, err := os.ReadFile(jsonFile)
			require.NoError(t, err)
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
