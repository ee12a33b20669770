package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/conformance"
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
// (every check passes: 0, and the JSON and Markdown reports are
// written), a server without a native endpoint (nothing applies: 0) and
// a server whose errors lack no-store (1).
func TestConformanceCmd_ExitStatus(t *testing.T) {
	bin := buildBinary(t)
	in := servertest.Start(t, servertest.Options{})
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"issuer":"x","token_endpoint":"x/token","code_challenge_methods_supported":["S256"]}`))
	}))
	t.Cleanup(plain.Close)
	// Passes fedas through, but answers every native request without
	// Cache-Control (RFC 6749 §5.1 wants no-store).
	var front *httptest.Server
	front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, in.URL+r.URL.RequestURI(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		for k, v := range resp.Header {
			if k != "Cache-Control" && k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(bytes.ReplaceAll(b.Bytes(), []byte(in.URL), []byte(front.URL)))
	}))
	t.Cleanup(front.Close)

	for _, tc := range []struct {
		name, issuer string
		extra        []string
		code         int
		stdout       string
	}{
		{"fedas", in.URL, []string{"--username", "alice", "--password", "wonderland"}, 0, "12 passed, 0 failed, 0 not applicable"},
		{"no native endpoint", plain.URL, nil, 0, "0 passed, 0 failed, 12 not applicable"},
		{"no native endpoint: the reason", plain.URL, nil, 0, "not applicable (12): the metadata advertises no authorization_challenge_endpoint"},
		{"errors without no-store", front.URL, nil, 1, "fipa-error-body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			jsonFile, mdFile := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.md")
			args := append([]string{"conformance", "--issuer", tc.issuer, "--client-id", "demo-app", "--json", jsonFile, "--markdown", mdFile}, tc.extra...)
			cmd := exec.Command(bin, args...)
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			err := cmd.Run()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			require.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", out.String(), errOut.String())
			require.Contains(t, out.String(), tc.stdout)
			require.Contains(t, out.String(), "ID")

			b, err := os.ReadFile(jsonFile)
			require.NoError(t, err)
			var rep conformance.Report
			require.NoError(t, json.Unmarshal(b, &rep))
			require.Len(t, rep.Results, len(conformance.FiPAChecks()))
			require.Equal(t, tc.code, rep.ExitCode())
			md, err := os.ReadFile(mdFile)
			require.NoError(t, err)
			require.Contains(t, string(md), "| `fipa-metadata-native-endpoint` |")
			if tc.code == 1 {
				require.Contains(t, string(md), "## `fipa-error-body` failed")
				require.Contains(t, string(md), "lacks no-store")
			}
		})
	}
}
