package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
)

const bankApp = "https://bank.example/app"

// withBankApp registers our own app "bank-app" (a first-party public
// client) and its deep link; edit sets its policy.
func withBankApp(edit func(*config.App)) func(*config.Config) {
	return func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "bank-app", FirstParty: true, TokenEndpointAuthMethod: "none",
			Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code", "refresh_token"}})
		a := config.App{ID: "bank", ClientID: "bank-app", DeepLink: bankApp}
		edit(&a)
		c.Apps = append(c.Apps, a)
	}
}

// simulatedApp signs carol in to the bank app at in and returns an
// OpenApp that completes deep links as the app would, recording them.
func simulatedApp(t *testing.T, in instance, links *[]string) func(context.Context, string) (url.Values, error) {
	t.Helper()
	app := in.Client(t, "bank-app")
	code, pk, err := app.Authorize(context.Background(), url.Values{"scope": {"openid"}}, userUI("carol", "carol-pw", ""))
	require.NoError(t, err)
	tok, err := app.Exchange(context.Background(), code, pk)
	require.NoError(t, err)
	return func(ctx context.Context, link string) (url.Values, error) {
		*links = append(*links, link)
		cb, params, err := app.CompleteApp(ctx, link, tok.AccessToken)
		if err != nil {
			return nil, err
		}
		require.True(t, strings.HasPrefix(cb, "https://app.example/cb?"), cb)
		return params, nil
	}
}

// TestAppToApp_AppendixA1 is the whole Appendix A.1 scenario: client →
// AS1 federate → AS2 redirect_to_app → app completion → native_callback_uri
// → AS1 response_uri → AS1 code → token.
func TestAppToApp_AppendixA1(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			as1, as2 := pair(t, b.store(t), b.store(t), nil, func(c *config.Config) {
				for i := range c.Clients {
					if c.Clients[i].ID == "as1" {
						c.Clients[i].AllowCredentialChallenges = false
					}
				}
				withBankApp(func(a *config.App) { a.DownstreamRole = true })(c)
			})
			var links []string
			c := as1.Client(t, "demo-app")
			c.OpenApp = simulatedApp(t, as2, &links)
			var seen []string
			c.OnExchange = func(_ string, _ string, _ url.Values, _ int, body []byte) {
				var r sdk.Response
				_ = json.Unmarshal(body, &r)
				seen = append(seen, r.Error)
			}
			code, pk, err := c.Authorize(context.Background(), url.Values{"scope": {"openid"}, "native_callback_uri": {"https://app.example/cb"}}, answerAll("carol@as2.example"))
			require.NoError(t, err)
			require.Equal(t, []string{"insufficient_information", "federate", "redirect_to_app", ""}, seen)
			require.Len(t, links, 1)
			u, err := url.Parse(links[0])
			require.NoError(t, err)
			require.Equal(t, bankApp, u.Scheme+"://"+u.Host+u.Path)
			require.Equal(t, []string{"client_id", "request_uri"}, keys(u.Query()))
			tok, err := c.Exchange(context.Background(), code, pk)
			require.NoError(t, err)
			require.Equal(t, as2.URL+"|carol", as1.introspect(t, tok.AccessToken).str("sub"))
		})
	}
}

func keys(v url.Values) []string {
	var out []string
	for k := range v {
		out = append(out, k)
	}
	if len(out) == 2 && out[0] > out[1] {
		out[0], out[1] = out[1], out[0]
	}
	return out
}

// TestAppToApp_Local: unfederated redirect_to_app. The app's code is bound
// to a verifier only the AS holds, so the client cannot redeem it at the
// token endpoint; posted to the native endpoint with the auth_session it
// becomes the real code (docs/decisions.md Q6).
func TestAppToApp_Local(t *testing.T) {
	in := wrap(start(t, nil, withBankApp(func(a *config.App) { a.Clients = []string{"demo-app"} })))
	var links []string
	open := simulatedApp(t, in, &links)
	var appCode string
	c := in.Client(t, "demo-app")
	c.OpenApp = func(ctx context.Context, link string) (url.Values, error) {
		p, err := open(ctx, link)
		appCode = p.Get("authorization_code")
		return p, err
	}
	code, pk, err := c.Authorize(context.Background(), url.Values{"scope": {"openid"}, "native_callback_uri": {"https://app.example/cb"}}, userUI("x", "y", ""))
	require.NoError(t, err)
	require.NotEqual(t, appCode, code)
	// The app-delivered code is useless at the token endpoint.
	requireOAuthError(t, in.redeem(t, "demo-app", appCode, pk), http.StatusBadRequest, "invalid_grant")
	r := in.redeem(t, "demo-app", code, pk)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "carol", in.introspect(t, r.str("access_token")).str("sub"))
}

// TestAppToApp_NoAppFallsBackToWeb: the client reports no app for the deep
// link and gets redirect_to_web with a request_uri for the browser.
func TestAppToApp_NoAppFallsBackToWeb(t *testing.T) {
	in := wrap(start(t, nil, withBankApp(func(a *config.App) { a.Clients = []string{"demo-app"} }), func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "demo-app" {
				c.Clients[i].RedirectURIs = []string{"https://app.example/web-cb"}
			}
		}
	}))
	c := in.Client(t, "demo-app")
	c.OpenApp = func(context.Context, string) (url.Values, error) { return nil, sdk.ErrNoApp }
	_, _, err := c.Authorize(context.Background(), url.Values{"scope": {"openid"}, "native_callback_uri": {"https://app.example/cb"}}, userUI("x", "y", ""))
	var serr *sdk.Err
	require.ErrorAs(t, err, &serr)
	require.Equal(t, "redirect_to_web", serr.Response.Error)
	require.Equal(t, http.StatusForbidden, serr.Status)
	require.True(t, strings.HasPrefix(serr.RequestURI, "urn:ietf:params:oauth:request_uri:"))
	require.Positive(t, serr.ExpiresIn)
	require.Less(t, serr.ExpiresIn, 600)
}
