package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server/servertest"
)

// browserSim plays a browser that signs the user in on our HTML pages
// and follows 303s (only 303s) until it reaches a URL outside the AS
// under test, whose query it returns: what the OS hands to the app.
func browserSim(t *testing.T, user, pw string, stopAt string) func(context.Context, string) (url.Values, error) {
	return func(ctx context.Context, start string) (url.Values, error) {
		hc := servertest.HTTP()
		get := func(u string) *http.Response {
			resp, err := hc.Get(u)
			require.NoError(t, err)
			return resp
		}
		resp := get(start)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		m := hiddenSession.FindStringSubmatch(string(body))
		require.NotNil(t, m, "login form expected: %s", body)
		authz := strings.SplitN(start, "?", 2)[0]
		resp, err := hc.PostForm(authz, url.Values{"auth_session": {m[1]}, "username": {user}, "password": {pw}})
		require.NoError(t, err)
		resp.Body.Close()
		for i := 0; i < 5; i++ {
			require.Equal(t, http.StatusSeeOther, resp.StatusCode)
			loc := resp.Header.Get("Location")
			if strings.HasPrefix(loc, stopAt) {
				u, err := url.Parse(loc)
				require.NoError(t, err)
				return u.Query(), nil
			}
			resp = get(loc)
			resp.Body.Close()
		}
		t.Fatal("too many redirects")
		return nil, nil
	}
}

// TestWebFallback_Federated (docs/decisions.md Q7): AS2 may not challenge
// AS1's users natively, so it answers redirect_to_web with a request_uri;
// the browser signs in at AS2, lands on AS1's web callback (code, state,
// iss), AS1 redeems the code and sends the browser back to the app's
// native_callback_uri; the app posts its auth_session to AS1's
// response_uri and gets AS1's code.
func TestWebFallback_Federated(t *testing.T) {
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	key := newFedKey(t, "as1-key")
	as2 := wrap(start(t, nil, func(c *config.Config) {
		fc := federatingClient("as1", key, false)
		fc.RedirectURIs = []string{"http://" + ln1.Addr().String() + "/federation/callback"}
		c.Clients = append(c.Clients, fc)
	}))
	as1 := wrap(servertest.Start(t, servertest.Options{Listener: ln1, Configure: func(c *config.Config) {
		testConfig(c)
		c.Downstreams = append(c.Downstreams, downstreamOf("as2", as2.URL, "as1", key))
		emailPrompt(c, "as2.example", "as2")
	}}))
	c := as1.Client(t, "demo-app")
	c.OnExchange = func(m, u string, f url.Values, st int, b []byte) { t.Logf("DBG %s %s %v -> %d %s", m, u, f, st, b) }
	c.OpenBrowser = browserSim(t, "carol", "carol-pw", "https://app.example/cb")
	code, pk, err := c.Authorize(context.Background(), url.Values{"scope": {"openid"}, "native_callback_uri": {"https://app.example/cb"}}, answerAll("carol@as2.example"))
	require.NoError(t, err)
	tok, err := c.Exchange(context.Background(), code, pk)
	require.NoError(t, err)
	require.Equal(t, as2.URL+"|carol", as1.introspect(t, tok.AccessToken).str("sub"))

	// The web callback is single-use and checks state.
	r := do(t, mustGet(t, as1.URL+"/federation/callback?state=x.y&code=z"))
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Empty(t, r.header.Get("Location"))
}

// TestWebFallback_Local: no app for the deep link → redirect_to_web with
// a request_uri → the browser signs in on our pages and returns to the
// client's redirect_uri with code, state and iss; the code is bound to the
// client's own PKCE.
func TestWebFallback_Local(t *testing.T) {
	in := wrap(start(t, nil, withBankApp(func(a *config.App) { a.Clients = []string{"demo-app"} }), func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "demo-app" {
				c.Clients[i].RedirectURIs = []string{"https://app.example/web-cb"}
			}
		}
	}))
	c := in.Client(t, "demo-app")
	c.OpenApp = func(context.Context, string) (url.Values, error) { return nil, sdk.ErrNoApp }
	c.OpenBrowser = browserSim(t, "carol", "carol-pw", "https://app.example/web-cb")
	c.RedirectURI = "https://app.example/web-cb"
	code, pk, err := c.Authorize(context.Background(), url.Values{"scope": {"openid"}, "native_callback_uri": {"https://app.example/cb"}}, userUI("x", "y", ""))
	require.NoError(t, err)
	r := in.redeem(t, "demo-app", code, pk)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "carol", in.introspect(t, r.str("access_token")).str("sub"))
}

func mustGet(t *testing.T, u string) *http.Request {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	return req
}
