package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/reach/wake"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/redisstore"
)

// This file is the shared harness of the reach tests (docs/reach.md):
// two fedas instances on one store (a waiter on one, the answer arriving
// through the other), our app "bank" (client bank-app, scope
// reach:device) and the users of testConfig.

// reachConfig turns reach on over testConfig: the reach scopes, our app
// "bank" for demo-app, and carol enrolled.
func reachConfig(c *config.Config) {
	testConfig(c)
	c.Reach.Enabled = true
	c.Scopes = append(c.Scopes, config.ScopeReachDevice, config.ScopeReachInteraction, config.ScopeQuestion)
	c.Clients = append(c.Clients, config.Client{ID: "bank-app", Name: "Bank app", FirstParty: true, TokenEndpointAuthMethod: "none",
		Scopes: []string{"openid", config.ScopeReachDevice}, GrantTypes: []string{"authorization_code", "refresh_token"}})
	c.Apps = append(c.Apps, config.App{ID: "bank", ClientID: "bank-app", DeepLink: bankApp, Clients: []string{"demo-app"}})
	for i := range c.Clients {
		if c.Clients[i].ID == "demo-app" {
			c.Clients[i].Scopes = append(c.Clients[i].Scopes, config.ScopeReachInteraction, config.ScopeQuestion)
		}
	}
}

// reachEnv is two instances of one deployment: one store, one HMAC
// secret, one signing key.
type reachEnv struct {
	a, b  *servertest.Instance
	store storage.Store
	key   *ecdsa.PrivateKey
}

type reachEnvOptions struct {
	// edit changes both instances' configuration after reachConfig.
	edit func(*config.Config)
	// reach are the reach test seams of both instances.
	reach server.ReachOptions
	// one starts instance a only (b is nil).
	one bool
	// clock, when set, is both instances' clock (expiry and polling
	// tests advance it instead of sleeping).
	clock *servertest.Clock
	// deadline, when set, is both instances' request deadline.
	deadline time.Duration
}

// newReachEnv starts the two instances on st (a fresh memory store when
// nil).
func newReachEnv(tb testing.TB, st storage.Store, o reachEnvOptions) *reachEnv {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	if st == nil {
		st = backends()[0].store(tb)
	}
	env := &reachEnv{store: st, key: key}
	if _, onRedis := st.(*redisstore.Store); !onRedis && o.reach.Hub == nil {
		// One memory store, one deployment: the instances share an
		// in-process hub as instances on Redis share its channel.
		hub := wake.NewMemory(wake.Options{Tick: o.reach.Recheck})
		tb.Cleanup(func() { _ = hub.Close() })
		o.reach.Hub = hub
	}
	opts := servertest.Options{Store: st, HMACSecret: secret, SigningKey: key, Reach: o.reach, Clock: o.clock, RequestDeadline: o.deadline, Configure: func(c *config.Config) {
		reachConfig(c)
		if o.edit != nil {
			o.edit(c)
		}
	}}
	env.a = servertest.Start(tb, opts)
	if !o.one {
		env.b = servertest.Start(tb, opts)
	}
	return env
}

// reachApp is our app signed in on a device: its own non-exportable
// (here: in-memory) P-256 DPoP key and a DPoP-bound access token.
type reachApp struct {
	in    *servertest.Instance
	key   *dpop.Key
	token sdk.Token
	user  string
}

// signInApp signs user in to bank-app at in through the native endpoint
// with a fresh DPoP key, asking for scope (default "openid
// reach:device").
func signInApp(tb testing.TB, in *servertest.Instance, user, password, scope string) *reachApp {
	tb.Helper()
	if scope == "" {
		scope = "openid " + config.ScopeReachDevice
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	dk, err := dpop.NewKey(k, jose.ES256)
	require.NoError(tb, err)
	cl := in.Client(tb, "bank-app")
	cl.DPoP = dk
	ctx := context.Background()
	code, pk, err := cl.Authorize(ctx, url.Values{"scope": {scope}}, userUI(user, password, ""))
	require.NoError(tb, err)
	tok, err := cl.Exchange(ctx, code, pk)
	require.NoError(tb, err)
	require.Equal(tb, "DPoP", tok.TokenType)
	return &reachApp{in: in, key: dk, token: tok, user: user}
}

// do sends an app request to its instance with the DPoP scheme and a
// fresh proof for method and the URL without its query (RFC 9449 §4.2
// htu), returning status, headers and body.
func (a *reachApp) do(tb testing.TB, method, path string, body string) (int, http.Header, []byte) {
	tb.Helper()
	return a.doAt(tb, a.in, method, path, body)
}

// doAt is do against another instance of the deployment.
func (a *reachApp) doAt(tb testing.TB, in *servertest.Instance, method, path string, body string) (int, http.Header, []byte) {
	tb.Helper()
	htu, _, _ := strings.Cut(in.URL+path, "?")
	proof, err := a.key.Proof(method, htu, a.token.AccessToken)
	require.NoError(tb, err)
	return rawAppRequest(tb, in, method, path, body, "DPoP "+a.token.AccessToken, proof)
}
