package server_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/storage/redistest"
)

// Red team: storage outage (redis-server stopped) at every endpoint that
// TestRedis_Unavailable does not cover. JSON endpoints must answer 503
// temporarily_unavailable with Retry-After and Cache-Control: no-store;
// our HTML pages (browser endpoint, web callback) must answer 503 with
// Retry-After too (RFC 9110 §10.2.3: the client is told when to retry),
// never a 500 and never a 200.
func TestRedteam_StorageOutage_EveryEndpoint(t *testing.T) {
	rs := redistest.Start(t)
	in := wrap(start(t, redisStore(t, rs.URL()), appSecConfig, webConfig(partnerCB)))

	// State made while the store is up.
	appTok := appToken(t, in, "bank-app")
	dl, _ := in.localDeepLink(t, nil)
	deepRU := requireDeepLink(t, dl, "demo-app")
	pk := sdk.NewPKCE()
	par := post(t, in.parURL(), url.Values{"response_type": {"code"}, "client_id": {"fed-partner"}, "redirect_uri": {"https://fed.example/web-cb"},
		"scope": {"openid"}, "state": {"state-12345"}, "native_callback_uri": {"https://app.example/cb"},
		"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}, basic("fed-partner", fedPartnerSecret))
	require.Equal(t, http.StatusCreated, par.status, par.raw)
	browserPush := pushAs(t, in, "demo-partner", partnerSecret, partnerCB)
	page := getURL(t, in.authorizeURL("demo-partner", browserPush.requestURI))
	browserSession := requireFormPage(t, page, "password")
	c := in.Client(t, "demo-app")
	code, cpk, err := c.Authorize(t.Context(), url.Values{"scope": {"openid offline_access"}}, userUI("carol", "carol-pw", ""))
	require.NoError(t, err)
	tok, err := c.Exchange(t.Context(), code, cpk)
	require.NoError(t, err)
	// A well-formed auth_session value (shape only): the engine looks it up.
	anySession := base64.RawURLEncoding.EncodeToString(make([]byte, 48))
	k := dpopKey(t)

	rs.Stop()

	jsonChecks := []struct {
		name string
		call func() reply
	}{
		{"app completion", func() reply {
			return in.appComplete(t, "Bearer "+appTok, url.Values{"client_id": {"demo-app"}, "request_uri": {deepRU}})
		}},
		{"native downstream role (client_id + request_uri)", func() reply {
			return post(t, in.native(), url.Values{"client_id": {"fed-partner"}, "request_uri": {par.str("request_uri")}})
		}},
		{"response_uri", func() reply {
			return post(t, in.URL+"/native/response/abcdef", url.Values{"auth_session": {anySession}, "authorization_code": {"x"}})
		}},
		{"native with DPoP proof", func() reply {
			r, _ := in.initialWith(t, "demo-app", nil, withProof(t, k, in.native()))
			return r
		}},
		{"refresh grant", func() reply {
			return post(t, in.token(), url.Values{"grant_type": {"refresh_token"}, "client_id": {"demo-app"}, "refresh_token": {tok.RefreshToken}})
		}},
		{"introspection", func() reply {
			return post(t, in.intro(), url.Values{"token": {tok.AccessToken}}, basic("demo-partner", partnerSecret))
		}},
	}
	for _, ch := range jsonChecks {
		t.Run(ch.name, func(t *testing.T) {
			r := ch.call()
			requireOAuthError(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
			require.Equal(t, "1", r.header.Get("Retry-After"))
		})
	}
	pageChecks := []struct {
		name string
		call func() reply
	}{
		{"GET /oauth2/authorize", func() reply { return getURL(t, in.authorizeURL("demo-partner", browserPush.requestURI)) }},
		{"POST /oauth2/authorize (challenge answer)", func() reply { return in.carolSignsIn(t, browserSession) }},
	}
	for _, ch := range pageChecks {
		t.Run(ch.name, func(t *testing.T) {
			r := ch.call()
			require.Equal(t, http.StatusServiceUnavailable, r.status, r.raw)
			require.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "text/html"))
			require.Empty(t, r.header.Get("Location"))
			require.Equal(t, "no-store", r.header.Get("Cache-Control"))
			require.NotEmpty(t, r.header.Get("Retry-After"), "a 503 page must say when to retry (Retry-After)")
		})
	}
}

// initialWith is initial with request options (a DPoP proof).
func (in instance) initialWith(tb testing.TB, client string, extra url.Values, opts ...func(*http.Request)) (reply, sdk.PKCE) {
	tb.Helper()
	pk := sdk.NewPKCE()
	f := url.Values{"client_id": {client}, "response_type": {"code"}, "scope": {"openid offline_access"},
		"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}
	for k, v := range extra {
		f[k] = v
	}
	return post(tb, in.native(), f, opts...), pk
}
