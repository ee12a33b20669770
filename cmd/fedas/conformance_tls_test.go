package main

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestConformanceCmd_CAFile: the real binary against an https server
// whose certificate no system CA issued. Without --ca-file the metadata
// check fails, saying so and naming the flag (exit 1); with the server's
// certificate as --ca-file the metadata is read and its check passes.
func TestConformanceCmd_CAFile(t *testing.T) {
	bin := buildBinary(t)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/oauth-authorization-server" {
			http.NotFound(w, r)
			return
		}
		base := "https://" + r.Host
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": base, "token_endpoint": base + "/token",
			"authorization_challenge_endpoint": base + "/native", "code_challenge_methods_supported": []string{"S256"}})
	}))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))

	out, _, code := runBinary(t, bin, "conformance", "--issuer", srv.URL)
	require.Equal(t, 1, code, out)
	require.Regexp(t, `fipa-metadata-native-endpoint: the metadata is unusable: .*x509: .*\(--ca-file trusts a private CA\)`, out)

	out, _, _ = runBinary(t, bin, "conformance", "--issuer", srv.URL, "--ca-file", caFile)
	require.Regexp(t, `(?m)^fipa-metadata-native-endpoint\s+pass\s`, out)
	require.Regexp(t, `(?m)^fipa-metadata-s256\s+pass\s`, out)
}
