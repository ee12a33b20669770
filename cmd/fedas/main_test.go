package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
)

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, config.DemoYAML(), 0o600))
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("issuer: http://x.example\nclients:\n  - id: c\n    token_endpoint_auth_method: nope\n"), 0o600))

	var out bytes.Buffer
	require.NoError(t, run([]string{"config", "check", good}, nil, &out, &out))
	require.Contains(t, out.String(), "configuration OK")

	out.Reset()
	require.Error(t, run([]string{"config", "check", bad}, nil, &out, &out))
	require.Contains(t, out.String(), "issuer:")
	require.Contains(t, out.String(), "clients[0].token_endpoint_auth_method")
}

func TestHelpers(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run([]string{"pkce"}, nil, &out, &out))
	require.Regexp(t, `^code_verifier=[A-Za-z0-9_-]{43}\ncode_challenge=[A-Za-z0-9_-]{43}\n$`, out.String())
	out.Reset()
	require.NoError(t, run([]string{"totp", "JBSWY3DPEHPK3PXP"}, nil, &out, &out))
	require.Regexp(t, `^\d{6}\n$`, out.String())
	out.Reset()
	require.NoError(t, run([]string{"hash-password"}, strings.NewReader("pw\n"), &out, &out))
	require.True(t, strings.HasPrefix(out.String(), "$2a$"))
	require.Error(t, run([]string{"nonsense"}, nil, &out, &out))
}

// TestDemo runs `fedas demo`: two ASes, a federated native sign-in.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run([]string{"demo"}, nil, &out, &out))
	s := out.String()
	for _, want := range []string{`"error":"insufficient_information"`, `"error":"federate"`, `"error":"insufficient_authorization"`, `"authorization_code"`, "/native/response/", "Signed in at AS1 through AS2"} {
		require.Contains(t, s, want)
	}
	require.NotContains(t, s, "password=builder", "the demo masks the password")
}

// TestDemoApp runs `fedas demo app`: the app-to-app variant.
func TestDemoApp(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run([]string{"demo", "app"}, nil, &out, &out))
	s := out.String()
	for _, want := range []string{`"error":"federate"`, `"error":"redirect_to_app"`, "https://bank.example/app?client_id=as1", "the bank app completed", "https://app.example/cb?authorization_code=", "Signed in at AS1 through AS2"} {
		require.Contains(t, s, want)
	}
}
