package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
)

// keyFile writes a new EC private key on curve as PEM (PKCS#8, or SEC 1
// with sec1) and returns its path and kid thumbprint.
func keyFile(t *testing.T, dir, name string, curve elliptic.Curve, sec1 bool) (string, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	require.NoError(t, err)
	var blk *pem.Block
	if sec1 {
		der, err := x509.MarshalECPrivateKey(k)
		require.NoError(t, err)
		blk = &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
	} else {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		require.NoError(t, err)
		blk = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(blk), 0o600))
	tp := ""
	if curve == elliptic.P256() {
		tp, err = config.Thumbprint(&k.PublicKey)
		require.NoError(t, err)
	}
	return p, tp
}

// TestKeys_ConfigValidation: every rule of keys.signing_keys,
// keys.signing_key_file and keys.active_signing_key, as `fedas config
// check` and serve (config.Options.Keys) apply them: each bad case is a
// problem at its YAML path, the good ones load with the right kids and
// active key. Rules that need no key file hold without Keys too.
func TestKeys_ConfigValidation(t *testing.T) {
	dir := t.TempDir()
	a, tpA := keyFile(t, dir, "a.pem", elliptic.P256(), false)
	b, tpB := keyFile(t, dir, "b.pem", elliptic.P256(), true)
	p384, _ := keyFile(t, dir, "p384.pem", elliptic.P384(), false)
	garbage := filepath.Join(dir, "garbage.pem")
	require.NoError(t, os.WriteFile(garbage, []byte("not a key\n"), 0o600))
	unreadable := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name string
		keys string
		// path and msg: the problem expected ("" for none); static: it
		// is found without loading the key files as well.
		path, msg string
		static    bool
		// kids and active when valid.
		kids   []string
		active string
	}{
		{name: "one file (shorthand), kid is the thumbprint", keys: "signing_key_file: " + a, kids: []string{tpA}, active: tpA},
		{name: "list, default kids, first active", keys: fmt.Sprintf("signing_keys: [{file: %s}, {file: %s}]", a, b), kids: []string{tpA, tpB}, active: tpA},
		{name: "list, explicit kids, second active", keys: fmt.Sprintf("signing_keys: [{file: %s, kid: key-a}, {file: %s, kid: key-b}]\nactive_signing_key: key-b", a, b), kids: []string{"key-a", "key-b"}, active: "key-b"},
		{name: "active names a thumbprint", keys: fmt.Sprintf("signing_keys: [{file: %s, kid: key-a}, {file: %s}]\nactive_signing_key: %s", a, b, tpB), kids: []string{"key-a", tpB}, active: tpB},
		{name: "both file forms", keys: fmt.Sprintf("signing_key_file: %s\nsigning_keys: [{file: %s}]", a, b),
			path: "keys", msg: "set only one of signing_key_file and signing_keys", static: true},
		{name: "duplicate kid", keys: fmt.Sprintf("signing_keys: [{file: %s, kid: k1}, {file: %s, kid: k1}]", a, b),
			path: "keys.signing_keys[1].kid", msg: `"k1" duplicates keys.signing_keys[0]`, static: true},
		{name: "kid equal to another key's thumbprint", keys: fmt.Sprintf("signing_keys: [{file: %s}, {file: %s, kid: %s}]", a, b, tpA),
			path: "keys.signing_keys[1]", msg: "is the kid of keys.signing_keys[0]"},
		{name: "the same key twice", keys: fmt.Sprintf("signing_keys: [{file: %s, kid: one}, {file: %s, kid: two}]", a, a),
			path: "keys.signing_keys[1].file", msg: "the same key as keys.signing_keys[0]"},
		{name: "unknown active, explicit kids", keys: fmt.Sprintf("signing_keys: [{file: %s, kid: key-a}]\nactive_signing_key: key-z", a),
			path: "keys.active_signing_key", msg: `"key-z" is not`, static: true},
		{name: "unknown active, thumbprint kids", keys: fmt.Sprintf("signing_keys: [{file: %s}, {file: %s}]\nactive_signing_key: key-z", a, b),
			path: "keys.active_signing_key", msg: `"key-z" is not one of this instance's signing keys (` + tpA + ", " + tpB + ")"},
		{name: "active without keys", keys: "active_signing_key: key-a",
			path: "keys.active_signing_key", msg: "there are no keys.signing_keys", static: true},
		{name: "invalid kid", keys: fmt.Sprintf("signing_keys: [{file: %s, kid: \"a b\"}]", a),
			path: "keys.signing_keys[0].kid", msg: "must be 1 to 128 characters", static: true},
		{name: "no file", keys: "signing_keys: [{kid: k1}]",
			path: "keys.signing_keys[0].file", msg: "required", static: true},
		{name: "not P-256", keys: fmt.Sprintf("signing_keys: [{file: %s}, {file: %s}]", a, p384),
			path: "keys.signing_keys[1].file", msg: "must be on P-256 (ES256), not P-384"},
		{name: "not P-256, shorthand", keys: "signing_key_file: " + p384,
			path: "keys.signing_key_file", msg: "P-256"},
		{name: "unreadable", keys: fmt.Sprintf("signing_keys: [{file: %s}]", unreadable),
			path: "keys.signing_keys[0].file", msg: "no such file"},
		{name: "not a PEM key", keys: fmt.Sprintf("signing_keys: [{file: %s}]", garbage),
			path: "keys.signing_keys[0].file", msg: "no PEM block"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			yaml := "issuer: https://as.example\nkeys:\n" + indent(tc.keys)
			c, probs := config.Check([]byte(yaml), config.Options{Keys: true})
			_, static := config.Check([]byte(yaml), config.Options{})
			if tc.path == "" {
				require.Empty(t, probs)
				require.Empty(t, static)
				keys, err := c.Keys.Signing()
				require.NoError(t, err)
				var kids []string
				for _, k := range keys {
					kids = append(kids, k.KID)
					require.Equal(t, elliptic.P256(), k.Key.Curve)
				}
				require.Equal(t, tc.kids, kids)
				require.Equal(t, tc.active, c.Keys.ActiveKID())
				return
			}
			p := find(t, probs, tc.path)
			require.Contains(t, p.Message, tc.msg)
			require.Positive(t, p.Line, "placed in the file")
			require.Len(t, probs, 1, "one problem, reported once: %v", probs)
			if tc.static {
				require.Contains(t, find(t, static, tc.path).Message, tc.msg, "found without the key files too")
			} else {
				require.Empty(t, static, "Parse leaves the key files to serve")
			}
		})
	}
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

// TestKeys_ActiveKeyIsPolicy: keys.active_signing_key is the one key of
// keys that the policy carries: a config file's policy part holds it, an
// import of a whole file takes it and nothing else of keys, a typo in keys
// is still an error, Compose applies it to the instance's keys and
// Validate checks it against them; the key files stay per instance.
func TestKeys_ActiveKeyIsPolicy(t *testing.T) {
	dir := t.TempDir()
	a, _ := keyFile(t, dir, "a.pem", elliptic.P256(), false)
	b, _ := keyFile(t, dir, "b.pem", elliptic.P256(), false)
	file := fmt.Sprintf("issuer: https://as.example\nkeys:\n  signing_keys: [{file: %s, kid: key-a}, {file: %s, kid: key-b}]\n  active_signing_key: key-a\n  hmac_secret_file: /nonexistent\n", a, b)
	p, err := config.ParsePolicy([]byte(file))
	require.NoError(t, err)
	require.Equal(t, "key-a", p.Keys.ActiveSigningKey)
	doc, err := config.MarshalPolicy(p)
	require.NoError(t, err)
	require.Contains(t, string(doc), "active_signing_key: key-a")
	require.NotContains(t, string(doc), "signing_keys", "key files are per instance")
	require.NotContains(t, string(doc), "hmac")
	empty, err := config.MarshalPolicy(config.Policy{})
	require.NoError(t, err)
	require.NotContains(t, string(empty), "keys", "no active key, no keys member")

	_, err = config.ParsePolicy([]byte("keys: {active_signing_kee: key-a}\n"))
	require.ErrorContains(t, err, "active_signing_kee")

	base, probs := config.Check([]byte(file), config.Options{Keys: true})
	for _, pr := range probs {
		require.Equal(t, "keys.hmac_secret", pr.Path, "only the missing HMAC file")
	}
	c, err := config.Compose(base, config.Policy{Keys: config.PolicyKeys{ActiveSigningKey: "key-b"}})
	require.NoError(t, err)
	require.Equal(t, "key-b", c.Keys.ActiveKID())
	require.Equal(t, base.Keys.SigningKeys, c.Keys.SigningKeys)
	_, err = config.Compose(base, config.Policy{Keys: config.PolicyKeys{ActiveSigningKey: "key-z"}})
	require.ErrorContains(t, err, `keys.active_signing_key: "key-z" is not one of this instance's signing keys (key-a, key-b)`)
	c, err = config.Compose(base, config.Policy{})
	require.NoError(t, err)
	require.Equal(t, "key-a", c.Keys.ActiveKID(), "no active key: the first")
	require.Equal(t, base.Keys.Instance(), c.Keys.Instance(), "the policy changes no key file")
}

// TestKeys_EnvOverrideReplacesTheList: FEDAS_KEYS_SIGNING_KEY_FILE is the
// one-key form and replaces signing_keys (never both at once).
func TestKeys_EnvOverrideReplacesTheList(t *testing.T) {
	dir := t.TempDir()
	a, _ := keyFile(t, dir, "a.pem", elliptic.P256(), false)
	b, tpB := keyFile(t, dir, "b.pem", elliptic.P256(), false)
	yaml := fmt.Sprintf("issuer: https://as.example\nkeys:\n  signing_keys: [{file: %s, kid: key-a}]\n", a)
	env := func(name string) (string, bool) {
		if name == "FEDAS_KEYS_SIGNING_KEY_FILE" {
			return b, true
		}
		return "", false
	}
	c, probs := config.Check([]byte(yaml), config.Options{Env: env, Keys: true})
	require.Empty(t, probs)
	keys, err := c.Keys.Signing()
	require.NoError(t, err)
	require.Len(t, keys, 1)
	require.Equal(t, tpB, keys[0].KID)
}
