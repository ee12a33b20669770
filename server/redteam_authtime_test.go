package server_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/sdk"
)

// Red team: the app completion API stamps the code with auth_time = the
// moment of completion, not the time the app's user actually
// authenticated. The access token the app presents carries carol's real
// auth_time (t0); the code minted from it claims a fresh authentication,
// so a max_age sent by the client (or forwarded by an upstream AS in the
// downstream role, which checks auth_time against it) is satisfied by an
// app session of any age.
//
// Correct behaviour asserted: the code's auth_time is carol's sign-in at
// the app (t0), or the completion is refused when that is older than
// max_age.

func TestRedteam_AppCompletionAuthTime_Local(t *testing.T) {
	in, clock := startClocked(t, appSecConfig)
	t0 := clock.Now().Unix()
	token := "Bearer " + appToken(t, in, "bank-app") // carol authenticates at t0
	appIntro := in.introspect(t, token[len("Bearer "):])
	require.InDelta(t, float64(t0), appIntro.body["auth_time"], 5, appIntro.raw)

	clock.Advance(30 * time.Minute)
	r, pk := in.localDeepLink(t, url.Values{"max_age": {"60"}})
	ru := requireDeepLink(t, r, "demo-app")
	out := in.appComplete(t, token, url.Values{"client_id": {"demo-app"}, "request_uri": {ru}})
	if out.status != http.StatusOK {
		return // refusing an app sign-in older than max_age is correct
	}
	fin := post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "authorization_code": {out.str("authorization_code")}})
	require.Equal(t, http.StatusOK, fin.status, fin.raw)
	tok := in.redeem(t, "demo-app", fin.str("authorization_code"), pk)
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	intro := in.introspect(t, tok.str("access_token"))
	got, _ := intro.body["auth_time"].(float64)
	require.LessOrEqual(t, int64(got), t0+5,
		"max_age=60 was requested 30 min after carol's only authentication, yet the code claims auth_time=%d (completion time), not %d", int64(got), t0)
}

func TestRedteam_AppCompletionAuthTime_DownstreamRole(t *testing.T) {
	in, clock := startClocked(t, appSecConfig)
	t0 := clock.Now().Unix()
	token := "Bearer " + appToken(t, in, "bank-app")
	clock.Advance(30 * time.Minute)

	// An upstream AS (fed-partner) forwards max_age=60 in its PAR and will
	// check the ID token's auth_time against it.
	pk := sdk.NewPKCE()
	par := post(t, in.parURL(), url.Values{"response_type": {"code"}, "client_id": {"fed-partner"}, "redirect_uri": {"https://fed.example/web-cb"},
		"scope": {"openid"}, "state": {"state-12345"}, "native_callback_uri": {"https://app.example/cb"}, "max_age": {"60"}, "nonce": {"n-1"},
		"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}, basic("fed-partner", fedPartnerSecret))
	require.Equal(t, http.StatusCreated, par.status, par.raw)
	r := post(t, in.native(), url.Values{"client_id": {"fed-partner"}, "request_uri": {par.str("request_uri")}})
	ru := requireDeepLink(t, r, "fed-partner")
	out := in.appComplete(t, token, url.Values{"client_id": {"fed-partner"}, "request_uri": {ru}})
	if out.status != http.StatusOK {
		return
	}
	code := out.str("authorization_code")
	tok := post(t, in.token(), url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {pk.Verifier}},
		basic("fed-partner", fedPartnerSecret))
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	intro := in.introspect(t, tok.str("access_token"))
	got, _ := intro.body["auth_time"].(float64)
	require.LessOrEqual(t, int64(got), t0+5,
		"the upstream forwarded max_age=60; the app user last authenticated 30 min ago, yet the code says auth_time=%d (now) instead of %d", int64(got), t0)
}
