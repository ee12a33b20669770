package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/conformance"
	"github.com/fedas/fedas/conformance/conformancetest"
	"github.com/fedas/fedas/internal/oidcprovider"
	"github.com/fedas/fedas/server/servertest"
)

// TestConformanceCmd_UsageErrors: a command line that cannot run exits 2
// with the usage on stderr and nothing on stdout.
func TestConformanceCmd_UsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"conformance"},
		{"conformance", "--issuer", "not-a-url"},
		{"conformance", "--issuer", "http://127.0.0.1:1", "--auth", "private_key_jwt"},
		{"conformance", "--issuer", "http://127.0.0.1:1", "--auth", "client_secret_basic:s"},
		{"conformance", "--issuer", "http://127.0.0.1:1", "--username", "u"},
		{"conformance", "--issuer", "http://127.0.0.1:1", "--profile", "fipa,nope"},
		{"conformance", "--issuer", "http://127.0.0.1:1", "extra"},
		{"conformance", "--issuer", "http://127.0.0.1:1", "--web-param", "no-equals-sign"},
		{"conformance", "--issuer", "http://127.0.0.1:1", "--totp-secret", "JBSWY3DPEHPK3PXP"},
		{"conformance", "--issuer", "http://127.0.0.1:1", "--session-ttl", "-1s"},
		{"conformance", "--issuer", "http://127.0.0.1:1", "--timeout", "0s"},
		{"conformance", "--issuer", "http://127.0.0.1:1", "--json", "/nonexistent/dir/r.json"}, // before the run, not after
		{"conformance", "--issuer", "http://127.0.0.1:1", "--markdown", "/nonexistent/dir/r.md"},
		{"conformance", "--issuer", "http://127.0.0.1:1", "--ca-file", "/nonexistent/ca.pem"},
		{"conformance", "--issuer", "http://127.0.0.1:1", "--ca-file", "conformance_test.go"}, // no PEM certificate
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(args, strings.NewReader(""), &out, &errOut)
			require.Error(t, err)
			require.Equal(t, 2, exitCode(err))
			require.Empty(t, out.String())
			require.Contains(t, errOut.String(), "usage: fedas conformance")
		})
	}
}

// TestConformanceCmd_ExitStatus runs the real binary against a fedas
// with every fipa input but --session-ttl (whose wait the binary would
// sleep: the conformance package's tests run the expiry check on the
// server's clock): every applicable check passes, 0, and the JSON and
// Markdown reports are written; a server without a native endpoint
// (nothing applies: 0); a fedas whose errors lack no-store (1); an
// issuer where nothing listens (1: the metadata check fails).
func TestConformanceCmd_ExitStatus(t *testing.T) {
	bin := buildBinary(t)
	in := servertest.Start(t, servertest.Options{Configure: conformancetest.FedasConfig})
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		base := "http://" + r.Host // RFC 8414 §3.3: the issuer it is fetched for
		_, _ = w.Write([]byte(`{"issuer":"` + base + `","token_endpoint":"` + base + `/token","code_challenge_methods_supported":["S256"]}`))
	}))
	t.Cleanup(plain.Close)
	// Passes fedas through, but answers without Cache-Control (RFC 6749
	// §5.1 wants no-store).
	front := conformancetest.NewProxy(t, in.URL, conformancetest.Options{Response: func(_ *http.Request, a *conformancetest.Answer) {
		a.Header.Del("Cache-Control")
	}})
	n := len(conformance.FiPAChecks())
	flags := []string{"--third-party-client-id", conformancetest.ThirdParty, "--other-client-id", conformancetest.OtherClient,
		"--web-param", "native_callback_uri=" + conformancetest.AppCallback}
	// bob signs in once: a TOTP code is good once per 30 s step.
	bob := append([]string{"--username", "bob", "--password", "builder", "--totp-secret", "JBSWY3DPEHPK3PXP"}, flags...)
	alice := append([]string{"--username", "alice", "--password", "wonderland"}, flags...)
	for _, tc := range []struct {
		name, issuer string
		extra        []string
		code         int
		stdout       string
	}{
		{"fedas", in.URL, bob, 0, fmt.Sprintf("%d passed, 0 failed, 1 not applicable", n-1)},
		{"fedas: the reason", in.URL, alice, 0, "not applicable (1): no --session-ttl given"},
		{"no native endpoint", plain.URL, nil, 0, fmt.Sprintf("0 passed, 0 failed, %d not applicable", n)},
		{"no native endpoint: the reason", plain.URL, nil, 0, fmt.Sprintf("not applicable (%d): the metadata advertises no authorization_challenge_endpoint", n)},
		{"errors without no-store", front.URL, nil, 1, "fipa-error-body"},
		{"nothing listening", "http://" + freeAddr(t), nil, 1, "fipa-metadata-native-endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			jsonFile, mdFile := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.md")
			args := append([]string{"conformance", "--issuer", tc.issuer, "--client-id", "demo-app", "--json", jsonFile, "--markdown", mdFile}, tc.extra...)
			out, errOut, code := runBinary(t, bin, args...)
			require.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			require.Contains(t, out, tc.stdout)
			require.Contains(t, out, "ID")

			rep := readReport(t, jsonFile)
			require.Len(t, rep.Results, n)
			require.Equal(t, tc.code, rep.ExitCode())
			md, err := os.ReadFile(mdFile)
			require.NoError(t, err)
			require.Contains(t, string(md), "| `fipa-metadata-native-endpoint` |")
			if tc.code == 1 {
				// stdout names the failed check; its section has the detail.
				require.Contains(t, string(md), "## `"+tc.stdout+"` failed")
				want := map[string]string{"fipa-error-body": "lacks no-store", "fipa-metadata-native-endpoint": "connection refused"}[tc.stdout]
				require.Contains(t, string(md), want)
			}
		})
	}
}

// TestConformanceCmd_OIDCProvider runs the real binary against a real
// oidc-provider (npm, node; internal/oidcprovider), which has no native
// endpoint, in every profile and with every input: it exits 0, every fipa
// check is not applicable, and nothing crashes. It fails, never skips,
// without node and npm.
func TestConformanceCmd_OIDCProvider(t *testing.T) {
	bin := buildBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	op, err := oidcprovider.Start(ctx, oidcprovider.Config{Clients: []map[string]any{
		{"client_id": "conformance-public", "redirect_uris": []string{"https://client.example/cb"}, "token_endpoint_auth_method": "none",
			"grant_types": []string{"authorization_code"}, "response_types": []string{"code"}},
		{"client_id": "conformance-basic", "client_secret": "conformance-secret", "redirect_uris": []string{"https://client.example/cb"},
			"token_endpoint_auth_method": "client_secret_basic", "grant_types": []string{"authorization_code"}, "response_types": []string{"code"}},
	}}, false)
	require.NoError(t, err, "the oidc-provider test needs node and npm (and the npm registry once)")
	t.Cleanup(op.Stop)
	inputs := []string{"--username", "u", "--password", "p", "--totp-secret", "JBSWY3DPEHPK3PXP", "--third-party-client-id", "other",
		"--other-client-id", "other2", "--web-param", "prompt=login", "--session-ttl", "1h"}
	for _, tc := range []struct{ profile, client, auth string }{
		{"fipa", "conformance-public", "none"},
		{"federation", "conformance-public", "none"},
		{"downstream", "conformance-basic", "client_secret_basic:conformance-secret"},
		{"fipa,federation,downstream", "conformance-basic", "client_secret_basic:conformance-secret"},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			jsonFile := filepath.Join(t.TempDir(), "r.json")
			args := append([]string{"conformance", "--issuer", op.Issuer, "--client-id", tc.client, "--auth", tc.auth, "--profile", tc.profile, "--json", jsonFile}, inputs...)
			out, errOut, code := runBinary(t, bin, args...)
			require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			require.NotContains(t, out+errOut, "panic")
			require.NotContains(t, out+errOut, "goroutine ")
			rep := readReport(t, jsonFile)
			fipa := 0
			for _, r := range rep.Results {
				require.NotEqual(t, conformance.Fail, r.Status, "%s: %s", r.ID, r.Detail)
				if r.Profile == conformance.ProfileFiPA {
					fipa++
					require.Equal(t, conformance.NotApplicable, r.Status, "%s: %s", r.ID, r.Detail)
					require.Contains(t, r.Detail, "advertises no authorization_challenge_endpoint", r.ID)
				}
			}
			if strings.Contains(tc.profile, "fipa") {
				require.Equal(t, len(conformance.FiPAChecks()), fipa)
			}
		})
	}
	require.NotContains(t, op.Stderr(), "server_error", "oidc-provider logged a server error")
}

// runBinary runs bin with args: its stdout, stderr and exit status.
func runBinary(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return out.String(), errOut.String(), code
}

func readReport(t *testing.T, name string) conformance.Report {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	var rep conformance.Report
	require.NoError(t, json.Unmarshal(b, &rep))
	return rep
}
