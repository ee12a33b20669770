package server_test

import (
	"encoding/base64"
	"math/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Red team: seeded random parameter combinations at every endpoint. No
// answer may be a 5xx (other than 503), a JSON endpoint always answers an
// RFC 6749 body (error + Cache-Control: no-store) or a success, and a
// page endpoint never redirects on garbage.
func TestRedteam_FuzzEndpoints(t *testing.T) {
	// 150 requests per endpoint from one address at once: the parsers are
	// fuzzed here, the rate limits in TestRateLimit_*.
	in := wrap(start(t, nil, appSecConfig, webConfig(partnerCB), noRateLimits))
	rng := rand.New(rand.NewSource(20260101))
	realPAR := pushAs(t, in, "demo-partner", partnerSecret, partnerCB).requestURI
	shape := base64.RawURLEncoding.EncodeToString(make([]byte, 48))
	names := []string{"client_id", "response_type", "scope", "code_challenge", "code_challenge_method", "state", "nonce",
		"login_hint", "acr_values", "max_age", "redirect_uri", "native_callback_uri", "dpop_jkt", "request_uri", "auth_session",
		"username", "password", "otp", "email", "authorization_code", "error", "iss", "code", "code_verifier", "grant_type",
		"refresh_token", "token", "token_type_hint", "client_secret", "client_assertion", "client_assertion_type",
		"deep_link_unavailable", "response_code", "access_token", "option", "phone"}
	values := []string{"", "demo-app", "demo-partner", "fed-partner", "bank-app", "fp-conf", "third-party", "nope", "code", "token",
		"S256", "plain", "openid", "openid offline_access", "x y z", "-1", "99999999999", "0", "true", "carol", "carol-pw",
		"urn:ietf:params:oauth:request_uri:", "urn:ietf:params:oauth:request_uri:fedas-app.x", "urn:ietf:params:oauth:request_uri:fedas-web.x",
		realPAR, shape, "http://127.0.0.1/cb", "https://app.example/cb", partnerCB, in.URL, "authorization_code", "refresh_token",
		"urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "a.b.c", "eyJhbGciOiJub25lIn0.eyJhdWQiOiJ4In0.", strings.Repeat("A", 43),
		strings.Repeat("x", 5000), "\x00", "%", "é", "<script>", "carol@example.com"}
	randForm := func() url.Values {
		f := url.Values{}
		for i, n := 0, rng.Intn(8); i < n; i++ {
			f.Set(names[rng.Intn(len(names))], values[rng.Intn(len(values))])
		}
		return f
	}
	hv := func() string {
		v := values[rng.Intn(len(values))]
		if strings.ContainsAny(v, "\x00") {
			return "x"
		}
		return v
	}
	randHeaders := func(r *http.Request) {
		switch rng.Intn(6) {
		case 0:
			r.SetBasicAuth(hv(), hv())
		case 1:
			r.Header.Set("Authorization", "Bearer "+hv())
		case 2:
			r.Header.Set("Authorization", "DPoP "+hv())
		case 3:
			r.Header.Set("DPoP", hv())
		}
	}
	jsonEndpoints := []string{"/native/authorize", "/native/response/abc", "/native/response/" + strings.Repeat("h", 70), "/native/app/complete",
		"/oauth2/token", "/oauth2/par", "/oauth2/revoke", "/oauth2/introspect"}
	for _, ep := range jsonEndpoints {
		for i := 0; i < 150; i++ {
			f := randForm()
			ct := "application/x-www-form-urlencoded"
			body := f.Encode()
			switch rng.Intn(5) {
			case 0:
				ct, body = "application/json", `{"client_id":"demo-app","x":`+values[rng.Intn(len(values))]+`}`
			case 1:
				body += "&" + names[rng.Intn(len(names))] + "=dup&" + names[rng.Intn(len(names))] + "=dup"
			}
			r := postBody(t, in.URL+ep+"?"+randForm().Encode(), ct, body, randHeaders)
			require.True(t, r.status < 500 || r.status == 503, "%s %q → %d %s", ep, body, r.status, r.raw)
			if r.status >= 400 {
				require.NotEmpty(t, r.str("error"), "%s %q → %d %s", ep, body, r.status, r.raw)
				require.Equal(t, "no-store", r.header.Get("Cache-Control"), "%s %q", ep, body)
			}
		}
	}
	for i := 0; i < 300; i++ {
		q := randForm()
		q2 := randForm()
		raw := q.Encode()
		if rng.Intn(3) == 0 {
			raw += "&" + q2.Encode()
		}
		for _, ep := range []string{"/oauth2/authorize", "/federation/callback"} {
			r := getURL(t, in.URL+ep+"?"+raw)
			require.True(t, r.status < 500 || r.status == 503, "%s?%s → %d %s", ep, raw, r.status, r.raw)
			require.Empty(t, r.header.Get("Location"), "%s?%s redirected", ep, raw)
		}
		r := in.submit(t, randForm())
		require.True(t, r.status < 500 || r.status == 503, "POST authorize → %d %s", r.status, r.raw)
	}
}

// Red team: error bodies of the router itself (unknown path, wrong
// method) and of the app completion API are RFC 6749 JSON with
// Cache-Control: no-store.
func TestRedteam_RouterErrorsAreOAuthJSON(t *testing.T) {
	in := wrap(start(t, nil, appSecConfig))
	for _, c := range []struct{ method, path string }{
		{"GET", "/nope"}, {"POST", "/nope"}, {"GET", "/native/authorize"}, {"PUT", "/native/authorize"},
		{"GET", "/native/app/complete"}, {"DELETE", "/oauth2/token"}, {"POST", "/federation/callback"},
		{"HEAD", "/native/authorize"}, {"GET", "/native/response/x"},
	} {
		req, err := http.NewRequest(c.method, in.URL+c.path, nil)
		require.NoError(t, err)
		r := do(t, req)
		require.GreaterOrEqual(t, r.status, 400, "%s %s", c.method, c.path)
		require.Equal(t, "no-store", r.header.Get("Cache-Control"), "%s %s", c.method, c.path)
		if c.method != "HEAD" {
			require.NotEmpty(t, r.str("error"), "%s %s: %s", c.method, c.path, r.raw)
		}
	}
	r := in.appComplete(t, "", url.Values{"client_id": {"demo-app"}})
	requireOAuthError(t, r, http.StatusUnauthorized, "invalid_token")
	require.NotEmpty(t, r.header.Values("WWW-Authenticate"))
}

// Red team (refused correctly): the one-time value our app returns for
// session A, posted with session B's auth_session, ends B and gives no
// code; A still completes with it, once; a replay gets invalid_session.
// A DPoP-bound session refuses the value without the session's proof.
func TestRedteam_AppOneTimeValueCrossSession(t *testing.T) {
	in := wrap(start(t, nil, appSecConfig))
	token := "Bearer " + appToken(t, in, "bank-app")
	k := dpopKey(t)
	a, pkA := in.initialWith(t, "demo-app", url.Values{"native_callback_uri": {"https://app.example/cb"}, "scope": {"openid"}}, withProof(t, k, in.native()))
	b, _ := in.localDeepLink(t, nil)
	outA := in.appComplete(t, token, url.Values{"client_id": {"demo-app"}, "request_uri": {requireDeepLink(t, a, "demo-app")}})
	require.Equal(t, http.StatusOK, outA.status, outA.raw)
	outB := in.appComplete(t, token, url.Values{"client_id": {"demo-app"}, "request_uri": {requireDeepLink(t, b, "demo-app")}})
	require.Equal(t, http.StatusOK, outB.status, outB.raw)

	cross := post(t, in.native(), url.Values{"auth_session": {b.str("auth_session")}, "authorization_code": {outA.str("authorization_code")}})
	requireOAuthError(t, cross, http.StatusBadRequest, "access_denied")
	again := post(t, in.native(), url.Values{"auth_session": {b.str("auth_session")}, "authorization_code": {outB.str("authorization_code")}})
	requireOAuthError(t, again, http.StatusBadRequest, "invalid_session")

	noProof := post(t, in.native(), url.Values{"auth_session": {a.str("auth_session")}, "authorization_code": {outA.str("authorization_code")}})
	requireOAuthError(t, noProof, http.StatusBadRequest, "invalid_dpop_proof")
	ok := post(t, in.native(), url.Values{"auth_session": {a.str("auth_session")}, "authorization_code": {outA.str("authorization_code")}}, withProof(t, k, in.native()))
	require.Equal(t, http.StatusOK, ok.status, ok.raw)
	replay := post(t, in.native(), url.Values{"auth_session": {a.str("auth_session")}, "authorization_code": {outA.str("authorization_code")}}, withProof(t, k, in.native()))
	requireOAuthError(t, replay, http.StatusBadRequest, "invalid_session")
	require.Equal(t, http.StatusBadRequest, in.redeem(t, "demo-app", ok.str("authorization_code"), pkA).status, "bound code without proof")
}

// Red team (refused correctly): a DPoP proof for another URL or method, a
// replayed proof, and a proof carrying a private key in its jwk are all
// invalid_dpop_proof at the native endpoint and create no session.
func TestRedteam_DPoPProofAbuse(t *testing.T) {
	in := wrap(start(t, nil))
	k := dpopKey(t)
	for name, opt := range map[string]func(*http.Request){
		"other url":    withProof(t, k, in.token()),
		"other method": func(r *http.Request) { p, _ := k.Proof("GET", in.native(), ""); r.Header.Set("DPoP", p) },
		"two headers": func(r *http.Request) {
			p1, _ := k.Proof("POST", in.native(), "")
			p2, _ := k.Proof("POST", in.native(), "")
			r.Header.Add("DPoP", p1)
			r.Header.Add("DPoP", p2)
		},
	} {
		r, _ := in.initialWith(t, "demo-app", nil, opt)
		requireOAuthError(t, r, http.StatusBadRequest, "invalid_dpop_proof")
		require.Empty(t, r.str("auth_session"), name)
	}
	p, _ := k.Proof("POST", in.native(), "")
	first, _ := in.initialWith(t, "demo-app", nil, func(r *http.Request) { r.Header.Set("DPoP", p) })
	require.Equal(t, http.StatusForbidden, first.status, first.raw)
	replayed, _ := in.initialWith(t, "demo-app", nil, func(r *http.Request) { r.Header.Set("DPoP", p) })
	requireOAuthError(t, replayed, http.StatusBadRequest, "invalid_dpop_proof")
}
