package server_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/sdk"
)

// TestAppComplete_AuthTime (found by red-team testing): completing a deep
// link is not a new authentication. The code carries the auth_time of the
// app user's real sign-in, and a max_age the app's sign-in no longer meets
// is refused (access_denied) without consuming the deep link, which a
// fresh app sign-in then completes. Local clients and the downstream role
// (an upstream AS forwarded max_age in its PAR).
func TestAppComplete_AuthTime(t *testing.T) {
	type link struct {
		ru     string
		finish func(t *testing.T, out reply) reply // → token response
	}
	local := func(t *testing.T, in instance, extra url.Values) link {
		r, pk := in.localDeepLink(t, extra)
		return link{ru: requireDeepLink(t, r, "demo-app"), finish: func(t *testing.T, out reply) reply {
			fin := post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "authorization_code": {out.str("authorization_code")}})
			require.Equal(t, http.StatusOK, fin.status, fin.raw)
			return in.redeem(t, "demo-app", fin.str("authorization_code"), pk)
		}}
	}
	downstream := func(t *testing.T, in instance, extra url.Values) link {
		pk := sdk.NewPKCE()
		f := url.Values{"response_type": {"code"}, "client_id": {"fed-partner"}, "redirect_uri": {"https://fed.example/web-cb"},
			"scope": {"openid"}, "state": {"state-12345"}, "native_callback_uri": {"https://app.example/cb"}, "nonce": {"n-1"},
			"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}
		for k, v := range extra {
			f[k] = v
		}
		par := post(t, in.parURL(), f, basic("fed-partner", fedPartnerSecret))
		require.Equal(t, http.StatusCreated, par.status, par.raw)
		r := post(t, in.native(), url.Values{"client_id": {"fed-partner"}, "request_uri": {par.str("request_uri")}})
		return link{ru: requireDeepLink(t, r, "fed-partner"), finish: func(t *testing.T, out reply) reply {
			return post(t, in.token(), url.Values{"grant_type": {"authorization_code"}, "code": {out.str("authorization_code")}, "code_verifier": {pk.Verifier}},
				basic("fed-partner", fedPartnerSecret))
		}}
	}
	paths := []struct {
		name   string
		client string
		start  func(*testing.T, instance, url.Values) link
	}{{"local", "demo-app", local}, {"downstream role", "fed-partner", downstream}}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			in, clock := startClocked(t, appSecConfig)
			t0 := clock.Now().Unix()
			token := "Bearer " + appToken(t, in, "bank-app") // carol signs in to the app at t0
			clock.Advance(30 * time.Minute)

			t.Run("auth_time is the app sign-in's", func(t *testing.T) {
				l := p.start(t, in, nil)
				out := in.appComplete(t, token, url.Values{"client_id": {p.client}, "request_uri": {l.ru}})
				require.Equal(t, http.StatusOK, out.status, out.raw)
				tok := l.finish(t, out)
				require.Equal(t, http.StatusOK, tok.status, tok.raw)
				got, _ := in.introspect(t, tok.str("access_token")).body["auth_time"].(float64)
				require.InDelta(t, float64(t0), got, 2, "not the completion time (t0+30min)")
			})
			t.Run("max_age not met is refused, the link survives", func(t *testing.T) {
				l := p.start(t, in, url.Values{"max_age": {"60"}})
				out := in.appComplete(t, token, url.Values{"client_id": {p.client}, "request_uri": {l.ru}})
				requireNoCompletion(t, out, http.StatusBadRequest, "access_denied")
				require.Contains(t, out.str("error_description"), "max_age")
				// carol signs in to the app again: the same link completes.
				fresh := "Bearer " + appToken(t, in, "bank-app")
				out = in.appComplete(t, fresh, url.Values{"client_id": {p.client}, "request_uri": {l.ru}})
				require.Equal(t, http.StatusOK, out.status, out.raw)
				tok := l.finish(t, out)
				require.Equal(t, http.StatusOK, tok.status, tok.raw)
				got, _ := in.introspect(t, tok.str("access_token")).body["auth_time"].(float64)
				require.InDelta(t, float64(clock.Now().Unix()), got, 2)
			})
		})
	}
}
