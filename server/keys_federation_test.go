package server_test

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/admin/admintest"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/federation"
	"github.com/fedas/fedas/federation/fedtest"
	"github.com/fedas/fedas/server/servertest"
)

// TestFederation_DownstreamKeyRotationFollowed: our federation client
// verifies a downstream's ID tokens across the downstream's key rotation
// (OIDC Core §10.1.1), and an unknown kid cannot make it hammer the
// downstream's JWKS (SECURITY-RESULTS.md SK05, D9).
//
//   - A real fedas downstream rotates by the documented procedure (both
//     keys published, then the active one switched by its admin API)
//     between two sign-ins: both federated sign-ins succeed.
//   - A mock downstream starts signing with a key it never published
//     before: within federation.DefaultMinRefresh of our last fetch of its
//     JWKS the token is refused without a fetch; past it, one refetch
//     finds the key and the sign-in succeeds.
//   - Floods of concurrent tokens with random unknown kids: one JWKS fetch
//     per MinRefresh interval at most (exactly one when the interval has
//     passed, single-flight), none within it; every one is refused.
func TestFederation_DownstreamKeyRotationFollowed(t *testing.T) {
	t.Run("fedas downstream, admin API rotation", func(t *testing.T) {
		dir := t.TempDir()
		files := []config.KeyFile{{File: signingKeyFile(t, dir, "a.pem"), KID: "as2-a"}, {File: signingKeyFile(t, dir, "b.pem"), KID: "as2-b"}}
		key := newFedKey(t, "as1-key")
		as2 := admintest.Start(t, admintest.Options{Configure: func(c *config.Config) {
			testConfig(c)
			c.Clients = append(c.Clients, federatingClient("as1", key, true))
			withSigningKeys(t, files, "as2-a")(c)
		}})
		as1 := wrap(start(t, nil, func(c *config.Config) {
			c.Downstreams = append(c.Downstreams, downstreamOf("as2", as2.URL, "as1", key))
			emailPrompt(c, "as2.example", "as2")
		}))
		signIn := func() {
			t.Helper()
			c := as1.Client(t, "demo-app")
			code, pk, err := c.Authorize(context.Background(), url.Values{"scope": {"openid email"}}, answerAll("carol@as2.example"))
			require.NoError(t, err)
			tok, err := c.Exchange(context.Background(), code, pk)
			require.NoError(t, err)
			require.Equal(t, as2.URL+"|carol", as1.introspect(t, tok.AccessToken).str("sub"))
		}
		signIn()
		k := as2.Do(t, http.MethodGet, "/admin/v1/keys", as2.ReadToken, nil, nil)
		r := as2.Do(t, http.MethodPut, "/admin/v1/keys/active", as2.WriteToken, map[string]string{"If-Match": k.Header.Get("ETag")}, map[string]string{"kid": "as2-b"})
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		require.Equal(t, "as2-b", as2.Server.ActiveKID())
		signIn()
	})

	t.Run("mock downstream, unpublished key, bounded refetch", func(t *testing.T) {
		clock := &servertest.Clock{}
		e := &mockFed{ds: map[string]*fedtest.Mock{"ds1": fedtest.Start(t, fedtest.Options{})}, keys: map[string]fedKey{"ds1": newFedKey(t, "ds1-key")}}
		e.as1 = wrap(servertest.Start(t, servertest.Options{Clock: clock, Configure: func(c *config.Config) {
			testConfig(c)
			e.configure(0)(c)
		}}))
		ds := e.ds["ds1"]
		hop := func() (reply, string) {
			t.Helper()
			fed, _ := e.federate(t, "ds1", nil)
			return fed, atDownstream(t, fed)
		}
		complete := func() reply {
			t.Helper()
			fed, code := hop()
			return respondHop(t, fed, url.Values{"authorization_code": {code}})
		}
		fetches := func() int64 { return ds.Count(fedtest.JWKS) }

		r := complete()
		require.Equal(t, http.StatusOK, r.status, r.raw)
		require.NotEmpty(t, r.str("authorization_code"))
		require.EqualValues(t, 1, fetches())

		// The downstream rotates to a key it publishes only from now on.
		ds.RotateKey(t, false)
		r = complete()
		requireOAuthError(t, r, http.StatusBadRequest, "access_denied")
		require.EqualValues(t, 1, fetches(), "within MinRefresh of the last fetch: refused, no fetch")
		clock.Advance(federation.DefaultMinRefresh)
		r = complete()
		require.Equal(t, http.StatusOK, r.status, "past MinRefresh one refetch finds the new key: %s", r.raw)
		require.EqualValues(t, 2, fetches())
		r = complete()
		require.Equal(t, http.StatusOK, r.status, r.raw)
		require.EqualValues(t, 2, fetches(), "the new key is cached")

		// Floods of tokens with random unknown kids.
		ds.SetIDToken(fedtest.IDTokenOptions{RandomKeyID: true})
		flood := func(n int) {
			t.Helper()
			type prepared struct {
				fed  reply
				code string
			}
			hops := make([]prepared, n)
			for i := range hops {
				hops[i].fed, hops[i].code = hop()
			}
			results := make([]reply, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i, h := range hops {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i], errs[i] = tryPost(h.fed.str("response_uri"), url.Values{"auth_session": {h.fed.str("auth_session")}, "authorization_code": {h.code}})
				}()
			}
			wg.Wait()
			for i := range results {
				require.NoError(t, errs[i])
				requireOAuthError(t, results[i], http.StatusBadRequest, "access_denied")
			}
		}
		before := fetches()
		flood(12)
		require.Equal(t, before, fetches(), "within MinRefresh: no fetch at all")
		for range 2 {
			clock.Advance(federation.DefaultMinRefresh + time.Second)
			before = fetches()
			flood(12)
			require.Equal(t, before+1, fetches(), "one fetch per MinRefresh interval, shared by concurrent tokens")
		}
	})
}
