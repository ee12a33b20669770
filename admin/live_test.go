package admin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/fedas/fedas/admin/admintest"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
	"github.com/fedas/fedas/storage/redisstore"
	"github.com/fedas/fedas/storage/redistest"
)

// fedKey is a private_key_jwt key pair: the JWK we hold, the JWKS the
// downstream registers.
type fedKey struct{ private, public string }

func newFedKey(tb testing.TB) fedKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	priv := jose.JSONWebKey{Key: k, KeyID: "as1", Algorithm: string(jose.ES256), Use: "sig"}
	pb, err := json.Marshal(priv)
	require.NoError(tb, err)
	pub, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{priv.Public()}})
	require.NoError(tb, err)
	return fedKey{private: string(pb), public: string(pub)}
}

// downstreamAS starts a fedas that knows "as1" as a federating client.
func downstreamAS(tb testing.TB, key fedKey) *servertest.Instance {
	return servertest.Start(tb, servertest.Options{Configure: func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "as1", Federating: true, TokenEndpointAuthMethod: "private_key_jwt",
			JWKS: key.public, SigningAlg: "ES256", Scopes: []string{"openid", "email"}, GrantTypes: []string{"authorization_code"},
			RedirectURIs: []string{"https://as1.example/federation/callback"}, NativeCallbackURIs: []string{"https://app.example/cb"}})
	}})
}

// firstAnswer starts a native sign-in of demo-app and returns the answer's
// error code (insufficient_authorization: local sign-in; federate: routed
// to a downstream) and its federation_uri.
func firstAnswer(tb testing.TB, publicURL string) (string, string) {
	tb.Helper()
	c := &sdk.Client{HTTP: sdk.NewHTTPClient(), ClientID: "demo-app"}
	pk := sdk.NewPKCE()
	r, err := c.Post(context.Background(), publicURL+"/native/authorize", url.Values{"client_id": {"demo-app"}, "response_type": {"code"},
		"scope": {"openid"}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}})
	require.NoError(tb, err)
	return r.Error, r.FederationURI
}

// waitApplied waits (bounded by the one-second promise) until in serves
// policy version v.
func waitApplied(tb testing.TB, in *admintest.Instance, v uint64, within time.Duration) time.Duration {
	tb.Helper()
	start := time.Now()
	for in.Follower.Applied() < v {
		if time.Since(start) > within {
			tb.Fatalf("%s still serves version %d, want %d after %v", in.URL, in.Follower.Applied(), v, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func sharedRedis(tb testing.TB, addr, prefix string) storage.Store {
	tb.Helper()
	st, err := redisstore.New(context.Background(), redisstore.Options{URL: "redis://" + addr, Prefix: prefix}, zaptest.NewLogger(tb))
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

// TestLive_TwoInstancesOnRedis: two fedas instances share one real
// redis-server; a downstream and a route added through the first one's
// admin API are federated to by the second one's native endpoint within a
// second, and a rollback through the API restores local sign-in on both
// within a second.
func TestLive_TwoInstancesOnRedis(t *testing.T) {
	rs := redistest.Start(t)
	key := newFedKey(t)
	as2 := downstreamAS(t, key)
	secret := []byte("0123456789abcdef0123456789abcdef")
	tokens, write, _ := admintest.Tokens(t, t.TempDir())
	dev := func(c *config.Config) { c.Dev.AllowLoopbackHTTP = true }
	var ins []*admintest.Instance
	for range 2 {
		ins = append(ins, admintest.Start(t, admintest.Options{Store: sharedRedis(t, rs.Addr(), "fedas:live:"), HMACSecret: secret,
			TokensFile: tokens, Configure: dev, Interval: policy.DefaultFollowInterval}))
	}
	a, b := ins[0], ins[1]
	for _, in := range ins {
		code, _ := firstAnswer(t, in.URL)
		require.Equal(t, "insufficient_authorization", code, "local sign-in before the change")
	}
	require.EqualValues(t, 1, a.Follower.Applied(), "both serve the bootstrap version")
	require.EqualValues(t, 1, b.Follower.Applied())

	r := a.Do(t, http.MethodPost, "/admin/v1/downstreams", write, nil, map[string]any{
		"id": "as2", "issuer": as2.URL, "client_id": "as1", "name": "AS2",
		"auth":   map[string]any{"method": "private_key_jwt", "key": key.private},
		"scopes": map[string]any{"openid": "openid"},
	})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	r = a.Do(t, http.MethodPost, "/admin/v1/routes", write, nil, map[string]any{"id": "to-as2", "downstream": "as2", "clients": []string{"demo-app"}})
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	v := uint64(r.JSON(t)["version"].(float64))
	require.EqualValues(t, 3, v)
	took := waitApplied(t, b, v, time.Second)
	t.Logf("the other instance applied version %d after %v", v, took)
	for _, in := range ins {
		code, fed := firstAnswer(t, in.URL)
		require.Equal(t, "federate", code, "%s federates after the change", in.URL)
		require.Equal(t, as2.URL+"/native/authorize", fed)
	}

	// Roll back to the bootstrap version through the other instance.
	st := b.Do(t, http.MethodGet, "/admin/v1/status", write, nil, nil)
	r = b.Do(t, http.MethodPost, "/admin/v1/versions/1/rollback", write, map[string]string{"If-Match": st.Header.Get("ETag")}, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	v = uint64(r.JSON(t)["version"].(float64))
	require.EqualValues(t, 4, v)
	waitApplied(t, a, v, time.Second)
	for _, in := range ins {
		code, _ := firstAnswer(t, in.URL)
		require.Equal(t, "insufficient_authorization", code, "%s signs in locally again after the rollback", in.URL)
	}
	au := a.Do(t, http.MethodGet, "/admin/v1/audit", write, nil, nil)
	require.Equal(t, http.StatusOK, au.Status)
	items := au.JSON(t)["items"].([]any)
	require.Len(t, items, 4)
	last := items[0].(map[string]any)
	require.Equal(t, "rollback", last["action"])
	require.Equal(t, "writer", last["actor"])
	require.NotContains(t, fmt.Sprint(items), key.private[10:40], "no key material in the audit log")
}

// deaf is a store whose change notifications never arrive (pub/sub is at
// most once): only the follower's head check can see a commit.
type deaf struct{ *memory.Store }

func (deaf) WatchPolicy(ctx context.Context) (<-chan uint64, error) {
	return make(chan uint64), nil
}

// TestLive_MissedNotificationCaught: an instance that misses every
// notification still applies another instance's commit at its next head
// check, within a second.
func TestLive_MissedNotificationCaught(t *testing.T) {
	m := memory.New()
	t.Cleanup(func() { _ = m.Close() })
	a := admintest.Start(t, admintest.Options{Store: m})
	b := admintest.Start(t, admintest.Options{Store: deaf{m}, Interval: policy.DefaultFollowInterval})
	r := a.Do(t, http.MethodGet, "/admin/v1/default-route", a.WriteToken, nil, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	r = a.Do(t, http.MethodPut, "/admin/v1/default-route", a.WriteToken, map[string]string{"If-Match": r.Header.Get("ETag")}, map[string]string{"default_route": "deny"})
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	v := uint64(r.JSON(t)["version"].(float64))
	waitApplied(t, b, v, time.Second)
	require.Equal(t, "deny", b.Server.Policy().Current().Config.DefaultRoute)
}
