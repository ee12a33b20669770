package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/admin/admintest"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage/memory"
)

// signingKeyFile writes a new P-256 key (PKCS#8 PEM) into dir.
func signingKeyFile(tb testing.TB, dir, name string) string {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	der, err := x509.MarshalPKCS8PrivateKey(k)
	require.NoError(tb, err)
	p := filepath.Join(dir, name)
	require.NoError(tb, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	return p
}

// withSigningKeys configures and loads keys.signing_keys (as serve
// loads them with the file) and keys.active_signing_key.
func withSigningKeys(tb testing.TB, keys []config.KeyFile, active string) func(*config.Config) {
	return func(c *config.Config) {
		c.Keys.SigningKeys, c.Keys.ActiveSigningKey = keys, active
		require.NoError(tb, c.Keys.LoadSigningKeys())
	}
}

// jwksOf fetches an instance's published JWK Set and its raw members.
func jwksOf(tb testing.TB, issuer string) (jose.JSONWebKeySet, []map[string]any) {
	tb.Helper()
	resp, err := servertest.HTTP().Get(issuer + server.PathJWKS)
	require.NoError(tb, err)
	defer resp.Body.Close()
	require.Equal(tb, http.StatusOK, resp.StatusCode)
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	require.NoError(tb, json.NewDecoder(resp.Body).Decode(&raw))
	var set jose.JSONWebKeySet
	var members []map[string]any
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		require.NoError(tb, k.UnmarshalJSON(r))
		set.Keys = append(set.Keys, k)
		var m map[string]any
		require.NoError(tb, json.Unmarshal(r, &m))
		members = append(members, m)
	}
	return set, members
}

// idTokenOf signs alice in at the instance as the demo app and returns
// the ID token of the code's redemption.
func idTokenOf(tb testing.TB, in instance) string {
	tb.Helper()
	code, pk := in.signIn(tb, "demo-app", "alice", "wonderland", "")
	r := in.redeem(tb, "demo-app", code, pk)
	require.Equal(tb, http.StatusOK, r.status, r.raw)
	require.NotEmpty(tb, r.str("id_token"))
	return r.str("id_token")
}

// verifyByKid verifies an ID token as a relying party does: the key named
// by its kid header in the JWK Set published at issuer (instances sharing
// a store publish the same keys), ES256 only. It returns the kid.
func verifyByKid(tb testing.TB, tok, issuer string) string {
	tb.Helper()
	set, _ := jwksOf(tb, issuer)
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	require.NoError(tb, err)
	require.Len(tb, parsed.Headers, 1)
	h := parsed.Headers[0]
	require.NotEmpty(tb, h.KeyID, "the ID token carries a kid (RFC 7515 §4.1.4)")
	keys := set.Key(h.KeyID)
	require.Len(tb, keys, 1, "kid %s is published once at %s", h.KeyID, issuer)
	var claims jwt.Claims
	require.NoError(tb, parsed.Claims(keys[0].Key, &claims), "verifies with the published key of its kid")
	require.NotEmpty(tb, claims.Issuer)
	return h.KeyID
}

func kidOf(tb testing.TB, tok string) string {
	tb.Helper()
	head, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	require.NoError(tb, err)
	var h map[string]any
	require.NoError(tb, json.Unmarshal(b, &h))
	kid, _ := h["kid"].(string)
	return kid
}

// TestKeys_JWKSPublishesAllActiveSignsOne: every configured key is at
// /jwks.json (kid, alg ES256, use sig, public members only); the active
// one — and only it — signs what we sign, with its kid in the header,
// whatever its place in the list; the default is the first key.
func TestKeys_JWKSPublishesAllActiveSignsOne(t *testing.T) {
	dir := t.TempDir()
	files := []config.KeyFile{
		{File: signingKeyFile(t, dir, "a.pem"), KID: "key-a"},
		{File: signingKeyFile(t, dir, "b.pem")}, // kid: its thumbprint
		{File: signingKeyFile(t, dir, "c.pem"), KID: "key-c"},
	}
	for _, tc := range []struct{ name, active string }{{"default first", ""}, {"third active", "key-c"}} {
		t.Run(tc.name, func(t *testing.T) {
			in := wrap(start(t, nil, withSigningKeys(t, files, tc.active)))
			loaded, err := in.Config.Keys.Signing()
			require.NoError(t, err)
			want := []string{"key-a", loaded[1].KID, "key-c"}
			tp, err := config.Thumbprint(&loaded[1].Key.PublicKey)
			require.NoError(t, err)
			require.Equal(t, tp, want[1], "a key without kid is published under its RFC 7638 thumbprint")

			set, members := jwksOf(t, in.URL)
			var kids []string
			for i, k := range set.Keys {
				kids = append(kids, k.KeyID)
				require.Equal(t, "ES256", k.Algorithm)
				require.Equal(t, "sig", k.Use)
				require.True(t, k.IsPublic())
				require.NotContains(t, members[i], "d", "no private member")
			}
			require.Equal(t, want, kids, "every configured key, in order")

			active := tc.active
			if active == "" {
				active = "key-a"
			}
			tok := idTokenOf(t, in)
			require.Equal(t, active, verifyByKid(t, tok, in.URL))
			parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
			require.NoError(t, err)
			require.Equal(t, "JWT", parsed.Headers[0].ExtraHeaders["typ"])
			for _, k := range set.Keys {
				var c jwt.Claims
				err := parsed.Claims(k.Key, &c)
				if k.KeyID == active {
					require.NoError(t, err)
				} else {
					require.Error(t, err, "only the active key signs: %s does not verify it", k.KeyID)
				}
			}
			require.Equal(t, active, in.Server.ActiveKID())
		})
	}
}

// TestKeys_RotationKeepsOldTokensVerifiable: a token signed with key A
// still verifies against /jwks.json by its kid after the rotation to B;
// new tokens carry B's kid and verify. The rotation runs as a config
// reload, and through the admin API on instances sharing one policy store
// — where an instance that lacks B refuses the version and keeps signing
// with A, and refuses B as its own change.
func TestKeys_RotationKeepsOldTokensVerifiable(t *testing.T) {
	dir := t.TempDir()
	files := []config.KeyFile{{File: signingKeyFile(t, dir, "a.pem"), KID: "key-a"}, {File: signingKeyFile(t, dir, "b.pem"), KID: "key-b"}}

	t.Run("config reload", func(t *testing.T) {
		in := wrap(start(t, nil, withSigningKeys(t, files, "key-a")))
		old := idTokenOf(t, in)
		require.Equal(t, "key-a", verifyByKid(t, old, in.URL))
		reload := func(active string) error {
			return in.Server.Reload(func() (*config.Config, error) {
				next := *in.Config
				next.Keys.ActiveSigningKey = active
				return &next, nil
			})
		}
		require.ErrorContains(t, reload("key-z"), `"key-z" is not one of this instance's signing keys (key-a, key-b)`)
		require.Equal(t, "key-a", kidOf(t, idTokenOf(t, in)), "a refused reload keeps the active key")
		require.NoError(t, reload("key-b"))
		tok := idTokenOf(t, in)
		require.Equal(t, "key-b", verifyByKid(t, tok, in.URL))
		require.Equal(t, "key-a", verifyByKid(t, old, in.URL), "the old token still verifies by its kid")
	})

	t.Run("admin API", func(t *testing.T) {
		st := memory.New()
		t.Cleanup(func() { _ = st.Close() })
		secret := make([]byte, 32)
		_, _ = rand.Read(secret)
		both := func(c *config.Config) { withSigningKeys(t, files, "key-a")(c) }
		onlyA := func(c *config.Config) { withSigningKeys(t, files[:1], "key-a")(c) }
		as := []*admintest.Instance{
			admintest.Start(t, admintest.Options{Store: st, HMACSecret: secret, Configure: both}),
			admintest.Start(t, admintest.Options{Store: st, HMACSecret: secret, Configure: both}),
		}
		lacking := admintest.Start(t, admintest.Options{Store: st, HMACSecret: secret, Configure: onlyA, TokensFile: as[0].TokensFile})
		pub := func(in *admintest.Instance) instance {
			return wrap(&servertest.Instance{URL: in.URL, Server: in.Server, Store: in.Store, Config: in.Config})
		}
		old := idTokenOf(t, pub(as[0]))
		require.Equal(t, "key-a", verifyByKid(t, old, as[0].URL))

		keys := as[0].Do(t, http.MethodGet, "/admin/v1/keys", as[0].ReadToken, nil, nil)
		require.Equal(t, http.StatusOK, keys.Status, "%s", keys.Body)
		require.Equal(t, "key-a", keys.JSON(t)["active"])
		tag := keys.Header.Get("ETag")
		r := lacking.Do(t, http.MethodPut, "/admin/v1/keys/active", as[0].WriteToken, map[string]string{"If-Match": tag}, map[string]string{"kid": "key-b"})
		require.Equal(t, http.StatusBadRequest, r.Status, "an instance validates the kid against its own keys: %s", r.Body)
		require.Contains(t, string(r.Body), "keys.active_signing_key")
		r = as[0].Do(t, http.MethodPut, "/admin/v1/keys/active", as[0].WriteToken, map[string]string{"If-Match": tag}, map[string]string{"kid": "key-b"})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

		ctx := context.Background()
		require.NoError(t, as[1].Follower.Sync(ctx))
		require.Error(t, lacking.Follower.Sync(ctx), "a version naming a key this instance lacks is not applied here")
		for _, in := range as {
			tok := idTokenOf(t, pub(in))
			require.Equal(t, "key-b", verifyByKid(t, tok, in.URL), "every instance signs with B")
			require.Equal(t, "key-a", verifyByKid(t, old, in.URL), "A's token still verifies by its kid")
		}
		require.Equal(t, "key-a", verifyByKid(t, idTokenOf(t, pub(lacking)), lacking.URL), "the instance without B keeps signing with A")
		k := lacking.Do(t, http.MethodGet, "/admin/v1/keys", as[0].ReadToken, nil, nil).JSON(t)
		require.Equal(t, "key-b", k["active_signing_key"])
		require.Equal(t, "", k["active"], "the head names a key this instance does not hold")
		require.Equal(t, "key-a", k["serving"])
	})
}
