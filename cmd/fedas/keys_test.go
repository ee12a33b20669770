package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
)

// TestKeysGenerate: `fedas keys generate` writes a PKCS#8 P-256 key, mode
// 0600, that config loads under the kid it prints (the thumbprint, or
// --kid), prints a config entry that parses, never overwrites a file,
// and refuses a bad kid or a missing --out as usage errors. `fedas keys`
// alone lists the group; `fedas keygen` still writes both files.
func TestKeysGenerate(t *testing.T) {
	dir := t.TempDir()
	gen := func(args ...string) (string, string, error) {
		var out, errOut bytes.Buffer
		err := run(append([]string{"keys", "generate"}, args...), nil, &out, &errOut)
		return out.String(), errOut.String(), err
	}
	p := filepath.Join(dir, "k1.pem")
	out, errOut, err := gen("--out", p)
	require.NoError(t, err, errOut)
	st, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(b), "-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM")
	require.NotContains(t, out, "PRIVATE KEY", "the key is only in the file")
	loaded := config.Keys{SigningKeys: []config.KeyFile{{File: p}}}
	keys, err := loaded.Signing()
	require.NoError(t, err)
	require.Len(t, keys, 1)
	require.Contains(t, out, "kid: "+keys[0].KID+"\n", "prints the thumbprint kid")

	// The printed snippet is a keys section serve accepts as it is.
	snippet := out[strings.Index(out, "keys:"):]
	c, probs := config.Check([]byte("issuer: https://as.example\n"+snippet), config.Options{Keys: true})
	require.Empty(t, probs, "%s", snippet)
	require.Equal(t, keys[0].KID, c.Keys.ActiveKID())

	p2 := filepath.Join(dir, "k2.pem")
	out, _, err = gen("--out", p2, "--kid", "2030-01")
	require.NoError(t, err)
	require.Contains(t, out, "kid: 2030-01\n")
	require.Contains(t, out, "      kid: 2030-01\n")

	before, _ := os.ReadFile(p)
	_, _, err = gen("--out", p)
	require.ErrorContains(t, err, "never overwritten")
	require.Equal(t, 1, exitCode(err))
	after, _ := os.ReadFile(p)
	require.Equal(t, before, after)

	for _, args := range [][]string{{}, {"--out", filepath.Join(dir, "k3.pem"), "--kid", "a b"}, {"--out", filepath.Join(dir, "k3.pem"), "extra"}, {"--nope"}} {
		out, errOut, err := gen(args...)
		require.Error(t, err, "%v", args)
		require.Equal(t, 2, exitCode(err), "%v", args)
		require.Empty(t, out)
		require.Contains(t, errOut, "usage: fedas keys generate")
	}
	_, err = os.Stat(filepath.Join(dir, "k3.pem"))
	require.True(t, os.IsNotExist(err), "nothing written on a usage error")

	var list bytes.Buffer
	require.NoError(t, run([]string{"keys", "--help"}, nil, &list, io.Discard))
	require.Contains(t, list.String(), "keys generate")
	require.NoError(t, run([]string{"keygen", "--dir", filepath.Join(dir, "kg")}, nil, io.Discard, io.Discard))
	for _, f := range []string{"signing-key.pem", "hmac-secret"} {
		_, err := os.Stat(filepath.Join(dir, "kg", f))
		require.NoError(t, err, f)
	}
}

// TestKeys_RotateBySIGHUP runs the documented rotation on the real
// binary: two keys made by `fedas keys generate` are published at
// /jwks.json; A signs; the file's keys.active_signing_key is switched to
// B and SIGHUP applies it; new ID tokens carry B's kid, and A's token
// still verifies by its kid.
func TestKeys_RotateBySIGHUP(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	for _, k := range []string{"a", "b"} {
		require.NoError(t, run([]string{"keys", "generate", "--out", filepath.Join(dir, k+".pem"), "--kid", "key-" + k}, nil, io.Discard, io.Discard))
	}
	addr := freeAddr(t)
	cfg := filepath.Join(dir, "fedas.yaml")
	write := func(active string) {
		keys := fmt.Sprintf("keys:\n  signing_keys:\n    - {file: %s, kid: key-a}\n    - {file: %s, kid: key-b}\n  active_signing_key: %s\n", filepath.Join(dir, "a.pem"), filepath.Join(dir, "b.pem"), active)
		require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(reloadBase, addr)+keys), 0o600))
	}
	write("key-a")
	p := startBinary(t, bin, cfg, addr)

	set := func() jose.JSONWebKeySet {
		resp, err := http.Get(p.base + "/jwks.json")
		require.NoError(t, err)
		defer resp.Body.Close()
		var s jose.JSONWebKeySet
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&s))
		return s
	}
	require.Len(t, set().Keys, 2)
	idToken := func() string {
		hc := sdk.NewHTTPClient()
		meta, err := sdk.Discover(context.Background(), hc, p.base)
		require.NoError(t, err)
		c := &sdk.Client{HTTP: hc, ClientID: "demo-app", Meta: meta}
		code, pk, err := c.Authorize(context.Background(), url.Values{"scope": {"openid"}}, func(context.Context, sdk.Response) (url.Values, error) {
			return url.Values{"username": {"alice"}, "password": {"wonderland"}}, nil
		})
		require.NoError(t, err)
		tok, err := c.Exchange(context.Background(), code, pk)
		require.NoError(t, err)
		require.NotEmpty(t, tok.IDToken)
		return tok.IDToken
	}
	verify := func(tok string) string {
		parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
		require.NoError(t, err)
		kid := parsed.Headers[0].KeyID
		s := set()
		keys := s.Key(kid)
		require.Len(t, keys, 1, "kid %q published", kid)
		var claims jwt.Claims
		require.NoError(t, parsed.Claims(keys[0].Key, &claims))
		return kid
	}
	old := idToken()
	require.Equal(t, "key-a", verify(old))

	write("key-b")
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	waitLog(t, p, "config reloaded")
	require.Contains(t, p.logs.String(), "active signing key key-a → key-b")
	require.Equal(t, "key-b", verify(idToken()))
	require.Equal(t, "key-a", verify(old), "the old token still verifies by its kid")
	require.NotContains(t, p.logs.String(), "takes effect only after a restart", "switching the active key needs no restart")
}
