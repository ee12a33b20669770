package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/storage/redistest"
)

// redisInstance starts a server on its own redis-server and returns both.
func redisInstance(t *testing.T, edit ...func(*config.Config)) (instance, *redistest.Server) {
	t.Helper()
	rs := redistest.Start(t)
	return wrap(start(t, redisStore(t, rs.URL()), edit...)), rs
}

// dbsize counts the keys of sign-in state: every key but the rate
// limits' (P rl:{…}), which any request spends and which
// TestRateLimit_* assert.
func dbsize(t *testing.T, rs *redistest.Server) string {
	t.Helper()
	n, err := rs.Do("EVAL", `local n = 0
for _, k in ipairs(redis.call('KEYS', '*')) do
  if not string.find(k, 'rl:{', 1, true) then n = n + 1 end
end
return n`, "0")
	require.NoError(t, err)
	return n
}

// A01: the native endpoint is POST only, and a GET creates no state.
func TestNAE_RejectsGET(t *testing.T) {
	in, rs := redisInstance(t)
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		req, _ := http.NewRequest(m, in.native()+"?client_id=demo-app&response_type=code", nil)
		r := do(t, req)
		requireOAuthError(t, r, http.StatusMethodNotAllowed, "invalid_request")
	}
	require.Equal(t, "0", dbsize(t, rs))
}

// A02: only response_type=code.
func TestNAE_ResponseTypeMustBeCode(t *testing.T) {
	in := wrap(start(t, nil))
	tests := []struct {
		name, rt, want string
	}{
		{"token", "token", "unsupported_response_type"},
		{"hybrid", "code id_token", "unsupported_response_type"},
		{"missing", "", "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := in.initial(t, "demo-app", url.Values{"response_type": {tc.rt}})
			requireOAuthError(t, r, http.StatusBadRequest, tc.want)
			require.Empty(t, r.str("auth_session"))
		})
	}
}

// A03: an unknown client gets invalid_client and no session.
func TestNAE_UnknownClient(t *testing.T) {
	in, rs := redisInstance(t)
	r, _ := in.initial(t, "nope", nil)
	requireOAuthError(t, r, http.StatusUnauthorized, "invalid_client")
	require.Empty(t, r.str("auth_session"))
	require.Equal(t, "0", dbsize(t, rs))
}

// A17: a client not registered as first-party cannot use the endpoint.
func TestNAE_FirstPartyOnly(t *testing.T) {
	in := wrap(start(t, nil))
	r, _ := in.initial(t, "third-party", url.Values{"scope": {"openid"}})
	requireOAuthError(t, r, http.StatusBadRequest, "unauthorized_client")
	require.NotContains(t, r.body, "challenge")
}

// A04: another client cannot ride a session; the victim's session stays
// usable.
func TestNAE_ClientIDMismatchWithSession(t *testing.T) {
	in := wrap(start(t, nil))
	r, pk := in.initial(t, "demo-app", nil)
	s := r.str("auth_session")
	r = post(t, in.native(), url.Values{"client_id": {"c2"}, "auth_session": {s}, "username": {"alice"}, "password": {"wonderland"}})
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_request", "invalid_session")
	r = post(t, in.native(), url.Values{"client_id": {"demo-app"}, "auth_session": {s}, "username": {"alice"}, "password": {"wonderland"}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, http.StatusOK, in.redeem(t, "demo-app", r.str("authorization_code"), pk).status)
}

// A05: auth_session values are unique, ≥256-bit, opaque.
func TestAuthSession_EntropyAndOpacity(t *testing.T) {
	// 1000 sessions from one address: over the rate limits and the live-session cap (CP01).
	in := wrap(start(t, nil, noRateLimits, liveCapsConfig(-1, -1)))
	seen := map[string]bool{}
	b64url := regexp.MustCompile(`^[A-Za-z0-9_-]{43,}$`)
	for i := 0; i < 1000; i++ {
		r, _ := in.initial(t, "demo-app", url.Values{"state": {"client-data-" + strings.Repeat("x", i%7)}})
		s := r.str("auth_session")
		require.Regexp(t, b64url, s)
		require.False(t, seen[s], "duplicate auth_session")
		seen[s] = true
		raw, err := base64.RawURLEncoding.DecodeString(s)
		require.NoError(t, err)
		require.GreaterOrEqual(t, len(raw)*8, 256)
		require.False(t, json.Valid(raw), "auth_session must not be JSON")
		require.NotContains(t, string(raw), "demo-app")
		require.Equal(t, 0, strings.Count(s, "."), "not a JWT")
	}
}

// A06: an unknown auth_session and an expired one get the same
// invalid_session answer, never a 500.
func TestAuthSession_UnknownValue(t *testing.T) {
	in, clock := startClocked(t, func(c *config.Config) { c.Lifetimes.AuthSession = 300 * time.Millisecond })
	r, _ := in.initial(t, "demo-app", nil)
	expired := r.str("auth_session")
	clock.Advance(400 * time.Millisecond)
	unknown := base64.RawURLEncoding.EncodeToString(make([]byte, 48))
	var bodies []string
	for _, s := range []string{unknown, expired} {
		r := post(t, in.native(), url.Values{"auth_session": {s}, "password": {"x"}, "username": {"alice"}})
		requireOAuthError(t, r, http.StatusBadRequest, "invalid_session")
		bodies = append(bodies, r.raw)
	}
	require.Equal(t, bodies[0], bodies[1])
}

// A07: a session dies with its TTL, and its Redis key is gone.
func TestAuthSession_ExpiresWithTTL(t *testing.T) {
	in, rs := redisInstance(t, func(c *config.Config) { c.Lifetimes.AuthSession = time.Second })
	r, _ := in.initial(t, "demo-app", nil)
	require.Equal(t, 1, keyCount(t, rs, "fedas:as:*"))
	require.Equal(t, "3", dbsize(t, rs), "the session and its two live-session slots (CP01)")
	time.Sleep(1100 * time.Millisecond)
	r = post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "username": {"alice"}, "password": {"wonderland"}})
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_session")
	require.Equal(t, "0", dbsize(t, rs))
}

// A10: a replayed step changes nothing: invalid_session, and the current
// value still works.
func TestAuthSession_StepReplay(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			in := wrap(start(t, b.store(t)))
			r, _ := in.initial(t, "demo-app", nil)
			s0 := r.str("auth_session")
			r = post(t, in.native(), url.Values{"auth_session": {s0}, "username": {"bob"}, "password": {"builder"}})
			require.Equal(t, "otp", r.body["challenge"].(map[string]any)["type"])
			s1 := r.str("auth_session")
			replay := post(t, in.native(), url.Values{"auth_session": {s0}, "username": {"bob"}, "password": {"builder"}})
			requireOAuthError(t, replay, http.StatusBadRequest, "invalid_session")
			wrong := post(t, in.native(), url.Values{"auth_session": {s0}, "username": {"bob"}, "password": {"nope"}})
			requireOAuthError(t, wrong, http.StatusBadRequest, "invalid_session")
			// s1 is untouched: a wrong OTP on it still counts as its step.
			r = post(t, in.native(), url.Values{"auth_session": {s1}, "otp": {"000000"}})
			requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
		})
	}
}

// A11: once the code is issued the session is dead: no second code.
func TestAuthSession_InvalidatedAfterCode(t *testing.T) {
	in := wrap(start(t, nil))
	r, _ := in.initial(t, "demo-app", nil)
	s := r.str("auth_session")
	r = post(t, in.native(), url.Values{"auth_session": {s}, "username": {"alice"}, "password": {"wonderland"}})
	require.Equal(t, http.StatusOK, r.status)
	r = post(t, in.native(), url.Values{"auth_session": {s}, "username": {"alice"}, "password": {"wonderland"}})
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_session")
}

// A12: hostile auth_session values never reach Redis as keys or patterns.
func TestAuthSession_InjectionCharacters(t *testing.T) {
	in, rs := redisInstance(t)
	_, err := rs.Do("CONFIG", "SET", "slowlog-log-slower-than", "0")
	require.NoError(t, err)
	_, err = rs.Do("SLOWLOG", "RESET")
	require.NoError(t, err)
	for _, v := range []string{"*", "?x", "a:b", "\r\nSET x 1", strings.Repeat("A", 10<<10-100), "%00", "\xff\xfe", "{as:x}", strings.Repeat("*", 64)} {
		body := "auth_session=" + url.QueryEscape(v) + "&password=x"
		r := postBody(t, in.native(), "application/x-www-form-urlencoded", body)
		if r.status == http.StatusBadRequest && r.str("error") == "invalid_request" {
			continue // rejected by the form parser (non-UTF-8)
		}
		requireOAuthError(t, r, http.StatusBadRequest, "invalid_session")
	}
	log, err := rs.Do("SLOWLOG", "GET", "128")
	require.NoError(t, err)
	// The dump has one argument per line: a KEYS or SCAN command, or the
	// injected SET, is a line of its own (a script body sent with EVAL
	// names KEYS inside its text, which is no command).
	up := "\n" + strings.ToUpper(log) + "\n"
	for _, cmd := range []string{"\nKEYS\n", "\nSCAN\n", "\nSET\nX\n"} {
		require.NotContains(t, up, cmd)
	}
	require.Equal(t, "0", dbsize(t, rs))
}

// A13: error bodies stay in the RFC 6749 charset and never reflect input.
func TestNAE_ErrorHygiene(t *testing.T) {
	in := wrap(start(t, nil))
	allowed := regexp.MustCompile(`^[\x20-\x21\x23-\x5B\x5D-\x7E]*$`)
	hostile := `<script>alert("x")</script>` + "\r\nX-Evil: 1"
	cases := []url.Values{
		{"client_id": {hostile}, "response_type": {"code"}},
		{"client_id": {"demo-app"}, "response_type": {hostile}},
		{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {hostile}, "code_challenge": {sdk.NewPKCE().Challenge}, "code_challenge_method": {"S256"}},
		{"client_id": {"demo-app"}, "response_type": {"code"}, "code_challenge": {hostile}, "code_challenge_method": {"S256"}},
		{"auth_session": {hostile}},
		{hostile: {"1"}, "client_id": {"demo-app"}},
	}
	for i, f := range cases {
		r := post(t, in.native(), f)
		require.GreaterOrEqual(t, r.status, 400, "case %d", i)
		require.Less(t, r.status, 500, "case %d", i)
		require.Regexp(t, allowed, r.str("error"))
		require.Regexp(t, allowed, r.str("error_description"))
		require.NotContains(t, r.raw, "<script>")
		require.NotContains(t, r.raw, "X-Evil")
		require.Empty(t, r.header.Get("X-Evil"))
		require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	}
	r := post(t, in.token(), url.Values{"grant_type": {"authorization_code"}, "client_id": {"demo-app"}, "code": {hostile}, "code_verifier": {hostile}})
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Regexp(t, allowed, r.str("error_description"))
	require.NotContains(t, r.raw, "<script>")
}

// A14: no CORS on the native endpoint.
func TestNAE_NoPermissiveCORS(t *testing.T) {
	in := wrap(start(t, nil))
	for _, m := range []string{http.MethodOptions, http.MethodPost} {
		req, _ := http.NewRequest(m, in.native(), strings.NewReader("client_id=demo-app"))
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r := do(t, req)
		require.Empty(t, r.header.Get("Access-Control-Allow-Origin"), m)
		require.Empty(t, r.header.Get("Access-Control-Allow-Credentials"), m)
	}
}

// A15: oversized bodies, too many parameters, repeated parameters, wrong
// content types: all 4xx before any state is created.
func TestNAE_BodyLimitsAndDuplicateParams(t *testing.T) {
	in, rs := redisInstance(t)
	many := make([]string, 10000)
	for i := range many {
		many[i] = "p" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + "=" + "1"
	}
	tests := []struct {
		name, ctype, body string
		status            int
	}{
		{"1 MB body", "application/x-www-form-urlencoded", "client_id=demo-app&x=" + strings.Repeat("a", 1<<20), http.StatusRequestEntityTooLarge},
		{"10000 params", "application/x-www-form-urlencoded", strings.Join(many[:6000], "&"), http.StatusBadRequest},
		{"client_id twice", "application/x-www-form-urlencoded", "client_id=demo-app&client_id=c2&response_type=code", http.StatusBadRequest},
		{"text/plain", "text/plain", "client_id=demo-app", http.StatusBadRequest},
		{"bad encoding", "application/x-www-form-urlencoded", "client_id=%zz", http.StatusBadRequest},
		{"json on initial is an object of strings only", "application/json", `{"client_id": ["a","b"]}`, http.StatusBadRequest},
		{"no content type", "", "client_id=demo-app", http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := postBody(t, in.native(), tc.ctype, tc.body)
			requireOAuthError(t, r, tc.status, "invalid_request")
		})
	}
	require.Equal(t, "0", dbsize(t, rs))
}

// D01: a code redeemed twice: the second gets invalid_grant and the
// tokens of the first are revoked.
func TestCode_ReuseAfterOneSecond(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			in := wrap(start(t, b.store(t)))
			code, pk := in.signIn(t, "demo-app", "carol", "carol-pw", "")
			first := in.redeem(t, "demo-app", code, pk)
			require.Equal(t, http.StatusOK, first.status)
			time.Sleep(time.Second)
			second := in.redeem(t, "demo-app", code, pk)
			requireOAuthError(t, second, http.StatusBadRequest, "invalid_grant")
			require.Equal(t, false, in.introspect(t, first.str("access_token")).body["active"])
			require.Equal(t, false, in.introspect(t, first.str("refresh_token")).body["active"])
		})
	}
}

// D02: a code expires with its lifetime (60 s by default; shortened here).
func TestCode_Expires(t *testing.T) {
	in, clock := startClocked(t, func(c *config.Config) { c.Lifetimes.AuthorizationCode = time.Second })
	code, pk := in.signIn(t, "demo-app", "carol", "carol-pw", "")
	clock.Advance(1500 * time.Millisecond)
	requireOAuthError(t, in.redeem(t, "demo-app", code, pk), http.StatusBadRequest, "invalid_grant")
}

// D03: a code is bound to its client.
func TestCode_BoundToClient(t *testing.T) {
	in := wrap(start(t, nil))
	code, pk := in.signIn(t, "demo-app", "carol", "carol-pw", "")
	r := post(t, in.token(), url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {pk.Verifier}}, basic("demo-partner", partnerSecret))
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_grant")
	requireOAuthError(t, in.redeem(t, "c2", code, pk), http.StatusBadRequest, "invalid_grant")
}

// D04: codes, tokens and request_uris are unique and ≥128 bits.
func TestCredentials_Entropy(t *testing.T) {
	in := wrap(start(t, nil, noRateLimits, wideGate)) // 200 sign-ins of one account, 1000 PARs at once
	seen := map[string]bool{}
	check := func(kind, v string, prefix string) {
		require.True(t, strings.HasPrefix(v, prefix), "%s %q", kind, v)
		require.False(t, seen[v], "duplicate %s", kind)
		seen[v] = true
		secret := strings.SplitN(strings.TrimPrefix(v, prefix), ".", 2)[0]
		raw, err := base64.RawURLEncoding.DecodeString(secret)
		require.NoError(t, err, kind)
		require.GreaterOrEqual(t, len(raw)*8, 128, kind)
	}
	for i := 0; i < 200; i++ {
		code, pk := in.signIn(t, "demo-app", "carol", "carol-pw", "")
		check("code", code, "ory_ac_")
		tok := in.redeem(t, "demo-app", code, pk)
		check("access token", tok.str("access_token"), "ory_at_")
		check("refresh token", tok.str("refresh_token"), "ory_rt_")
	}
	for i := 0; i < 1000; i++ {
		r := post(t, in.parURL(), url.Values{"response_type": {"code"}, "client_id": {"demo-partner"}, "redirect_uri": {"https://partner.example/cb"}, "state": {"state-12345"}}, basic("demo-partner", partnerSecret))
		require.Equal(t, http.StatusCreated, r.status, r.raw)
		check("request_uri", r.str("request_uri"), "urn:ietf:params:oauth:request_uri:")
	}
}

// D05: no resource-owner password grant, and metadata does not offer it.
func TestToken_NoROPC(t *testing.T) {
	in := wrap(start(t, nil))
	r := post(t, in.token(), url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wonderland"}, "client_id": {"demo-app"}})
	requireOAuthError(t, r, http.StatusBadRequest, "unsupported_grant_type")
	req, _ := http.NewRequest(http.MethodGet, in.URL+"/.well-known/oauth-authorization-server", nil)
	meta := do(t, req)
	require.NotContains(t, meta.body["grant_types_supported"], "password")
}

// D06: a client_id that disagrees with the authenticated client.
func TestToken_ClientIDMismatch(t *testing.T) {
	in := wrap(start(t, nil))
	code, pk := in.signIn(t, "demo-app", "carol", "carol-pw", "")
	r := post(t, in.token(), url.Values{"grant_type": {"authorization_code"}, "client_id": {"demo-app"}, "code": {code}, "code_verifier": {pk.Verifier}}, basic("demo-partner", partnerSecret))
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
}

// D07: the token response shape.
func TestToken_ResponseShape(t *testing.T) {
	in := wrap(start(t, nil))
	code, pk := in.signIn(t, "demo-app", "carol", "carol-pw", "")
	r := in.redeem(t, "demo-app", code, pk)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	require.True(t, strings.EqualFold(r.str("token_type"), "bearer"))
	require.Positive(t, r.body["expires_in"])
	require.NotEmpty(t, r.str("access_token"))
	require.Equal(t, "openid offline_access", r.str("scope"))
}

// D08: an unknown code is 400 invalid_grant, not 500.
func TestToken_UnknownCodeIs400(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			in := wrap(start(t, b.store(t)))
			for _, code := range []string{"ory_ac_random.random", "garbage", strings.Repeat("a", 4000)} {
				r := post(t, in.token(), url.Values{"grant_type": {"authorization_code"}, "client_id": {"demo-app"}, "code": {code}, "code_verifier": {sdk.NewPKCE().Verifier}})
				requireOAuthError(t, r, http.StatusBadRequest, "invalid_grant", "invalid_request")
			}
		})
	}
}

// D09: a refresh token is bound to its client.
func TestRefresh_BoundToClientAndKey(t *testing.T) {
	in := wrap(start(t, nil))
	code, pk := in.signIn(t, "demo-app", "carol", "carol-pw", "")
	rt := in.redeem(t, "demo-app", code, pk).str("refresh_token")
	r := post(t, in.token(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, basic("demo-partner", partnerSecret))
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_grant")
	r = post(t, in.token(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"c2"}})
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_grant")
	r = post(t, in.token(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"fp-conf"}})
	requireOAuthError(t, r, http.StatusUnauthorized, "invalid_client")
}

// E01–E02: PKCE S256 is required for public clients; plain is rejected.
func TestPKCE_RequiredS256(t *testing.T) {
	in := wrap(start(t, nil))
	tests := []struct {
		name string
		form url.Values
	}{
		{"no challenge", url.Values{"code_challenge": {""}, "code_challenge_method": {""}}},
		{"plain", url.Values{"code_challenge_method": {"plain"}}},
		{"method missing", url.Values{"code_challenge_method": {""}}},
		{"challenge malformed", url.Values{"code_challenge": {"short"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := in.initial(t, "demo-app", tc.form)
			requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
		})
	}
}

// E03–E06: the token endpoint checks the verifier: required, right,
// well-formed, and never accepted for a code issued without a challenge.
func TestPKCE_Verifier(t *testing.T) {
	in := wrap(start(t, nil))
	tests := []struct {
		name     string
		verifier func(sdk.PKCE) string
		codes    []string
	}{
		{"E03 missing", func(sdk.PKCE) string { return "" }, []string{"invalid_grant", "invalid_request"}},
		{"E04 wrong", func(sdk.PKCE) string { return sdk.NewPKCE().Verifier }, []string{"invalid_grant"}},
		{"E06 42 chars", func(p sdk.PKCE) string { return p.Verifier[:42] }, []string{"invalid_grant", "invalid_request"}},
		{"E06 129 chars", func(p sdk.PKCE) string { return strings.Repeat("a", 129) }, []string{"invalid_grant", "invalid_request"}},
		{"E06 illegal chars", func(p sdk.PKCE) string { return p.Verifier[:40] + "!!!$" }, []string{"invalid_grant", "invalid_request"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, pk := in.signIn(t, "demo-app", "carol", "carol-pw", "")
			r := post(t, in.token(), url.Values{"grant_type": {"authorization_code"}, "client_id": {"demo-app"}, "code": {code}, "code_verifier": {tc.verifier(pk)}})
			requireOAuthError(t, r, http.StatusBadRequest, tc.codes...)
			// The real verifier no longer works either: a failed attempt
			// does not leave the code redeemable for a guessing loop.
			r = in.redeem(t, "demo-app", code, pk)
			require.Equal(t, http.StatusBadRequest, r.status, r.raw)
		})
	}
	t.Run("E05 downgrade", func(t *testing.T) {
		// A confidential first-party client may omit PKCE; a verifier
		// sent for such a code is rejected (RFC 9700 §4.8.2).
		r := post(t, in.native(), url.Values{"client_id": {"fp-conf"}, "response_type": {"code"}, "scope": {"openid"}}, basic("fp-conf", "fp-conf-secret"))
		require.Equal(t, http.StatusForbidden, r.status, r.raw)
		r = post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "username": {"carol"}, "password": {"carol-pw"}}, basic("fp-conf", "fp-conf-secret"))
		require.Equal(t, http.StatusOK, r.status, r.raw)
		tr := post(t, in.token(), url.Values{"grant_type": {"authorization_code"}, "code": {r.str("authorization_code")}, "code_verifier": {sdk.NewPKCE().Verifier}}, basic("fp-conf", "fp-conf-secret"))
		requireOAuthError(t, tr, http.StatusBadRequest, "invalid_grant", "invalid_request")
	})
}

// PAR (RFC 9126): confidential clients only, single-use request_uri,
// at most 90 s.
func TestPAR_ConfidentialOnlyAndShape(t *testing.T) {
	in := wrap(start(t, nil))
	ok := url.Values{"response_type": {"code"}, "client_id": {"demo-partner"}, "redirect_uri": {"https://partner.example/cb"}, "state": {"state-12345"}, "code_challenge": {sdk.NewPKCE().Challenge}, "code_challenge_method": {"S256"}}
	r := post(t, in.parURL(), ok, basic("demo-partner", partnerSecret))
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	require.LessOrEqual(t, r.body["expires_in"], float64(90))
	require.Positive(t, r.body["expires_in"])

	tests := []struct {
		name   string
		form   url.Values
		auth   func(*http.Request)
		status int
		code   string
	}{
		{"public client", url.Values{"response_type": {"code"}, "client_id": {"demo-app"}, "state": {"state-12345"}}, nil, http.StatusUnauthorized, "invalid_client"},
		{"wrong secret", ok, basic("demo-partner", "nope"), http.StatusUnauthorized, "invalid_client"},
		{"no auth", ok, nil, http.StatusUnauthorized, "invalid_client"},
		{"request_uri inside", url.Values{"request_uri": {"urn:x"}, "client_id": {"demo-partner"}}, basic("demo-partner", partnerSecret), http.StatusBadRequest, "invalid_request"},
		{"plain pkce", url.Values{"response_type": {"code"}, "client_id": {"demo-partner"}, "code_challenge": {"abc"}, "code_challenge_method": {"plain"}}, basic("demo-partner", partnerSecret), http.StatusBadRequest, "invalid_request"},
		{"unregistered redirect", url.Values{"response_type": {"code"}, "client_id": {"demo-partner"}, "redirect_uri": {"https://evil.example/cb"}, "state": {"state-12345"}}, basic("demo-partner", partnerSecret), http.StatusBadRequest, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opts []func(*http.Request)
			if tc.auth != nil {
				opts = append(opts, tc.auth)
			}
			requireOAuthError(t, post(t, in.parURL(), tc.form, opts...), tc.status, tc.code)
		})
	}
}

// L01 (part): metadata publishes the native endpoint under both names and
// only S256.
func TestMetadata_Contents(t *testing.T) {
	in := wrap(start(t, nil))
	req, _ := http.NewRequest(http.MethodGet, in.URL+"/.well-known/oauth-authorization-server", nil)
	m := do(t, req)
	require.Equal(t, http.StatusOK, m.status)
	require.Equal(t, in.URL, m.str("issuer"))
	require.Equal(t, in.native(), m.str("authorization_challenge_endpoint"))
	require.Equal(t, in.native(), m.str("native_authorization_endpoint"))
	require.Equal(t, []any{"S256"}, m.body["code_challenge_methods_supported"])
	req, _ = http.NewRequest(http.MethodGet, m.str("jwks_uri"), nil)
	jwks := do(t, req)
	keys := jwks.body["keys"].([]any)
	require.Len(t, keys, 1)
	k := keys[0].(map[string]any)
	require.Equal(t, "ES256", k["alg"])
	require.NotContains(t, k, "d", "private part never published")
}

// RFC 7009: revoking an access token deactivates it; revoking a refresh
// token deactivates it and the access tokens of its grant. An unknown
// token is a 200 too (§2.2).
func TestRevocation(t *testing.T) {
	in := wrap(start(t, nil))
	code, pk := in.signIn(t, "demo-app", "carol", "carol-pw", "")
	tok := in.redeem(t, "demo-app", code, pk)
	at, rt := tok.str("access_token"), tok.str("refresh_token")

	// Revoking the access token revokes its grant's refresh token too
	// (fosite's choice; RFC 7009 §2.1 allows it).
	r := post(t, in.revoke(), url.Values{"token": {at}, "token_type_hint": {"access_token"}, "client_id": {"demo-app"}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, false, in.introspect(t, at).body["active"])
	require.Equal(t, false, in.introspect(t, rt).body["active"])

	code, pk = in.signIn(t, "demo-app", "carol", "carol-pw", "")
	rt = in.redeem(t, "demo-app", code, pk).str("refresh_token")
	ref, err := in.Client(t, "demo-app").Refresh(context.Background(), rt)
	require.NoError(t, err)
	// demo-app's refresh tokens rotate: the current one revokes the grant,
	// and so does the used one, rotated away (revoke_rotated.go: a client
	// signing out with it after a thief refreshed first must end the
	// thief's chain; SECURITY-RESULTS.md AB12).
	r = post(t, in.revoke(), url.Values{"token": {ref.RefreshToken}, "client_id": {"demo-app"}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, false, in.introspect(t, ref.RefreshToken).body["active"])
	require.Equal(t, false, in.introspect(t, ref.AccessToken).body["active"])
	code, pk = in.signIn(t, "demo-app", "carol", "carol-pw", "")
	rt = in.redeem(t, "demo-app", code, pk).str("refresh_token")
	ref, err = in.Client(t, "demo-app").Refresh(context.Background(), rt)
	require.NoError(t, err)
	r = post(t, in.revoke(), url.Values{"token": {rt}, "client_id": {"demo-app"}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, false, in.introspect(t, ref.AccessToken).body["active"])
	require.Equal(t, false, in.introspect(t, ref.RefreshToken).body["active"])

	r = post(t, in.revoke(), url.Values{"token": {"ory_at_unknown.unknown"}, "client_id": {"demo-app"}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	// Another client cannot revoke demo-app's tokens.
	code, pk = in.signIn(t, "demo-app", "carol", "carol-pw", "")
	at = in.redeem(t, "demo-app", code, pk).str("access_token")
	_ = post(t, in.revoke(), url.Values{"token": {at}}, basic("demo-partner", partnerSecret))
	require.Equal(t, true, in.introspect(t, at).body["active"])
}

// The PAR endpoint takes every confidential authentication method we
// publish: client_secret_basic, client_secret_post (private_key_jwt is
// exercised by every federation test).
func TestPAR_ClientAuthMethods(t *testing.T) {
	in := wrap(start(t, nil))
	tests := []struct {
		name string
		form url.Values
		auth func(*http.Request)
	}{
		{"client_secret_basic", url.Values{"client_id": {"demo-partner"}, "redirect_uri": {"https://partner.example/cb"}}, basic("demo-partner", partnerSecret)},
		{"client_secret_post", url.Values{"client_id": {"post-client"}, "client_secret": {"post-secret"}, "redirect_uri": {"https://post.example/cb"}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("response_type", "code")
			tc.form.Set("state", "state-12345")
			var opts []func(*http.Request)
			if tc.auth != nil {
				opts = append(opts, tc.auth)
			}
			r := post(t, in.parURL(), tc.form, opts...)
			require.Equal(t, http.StatusCreated, r.status, r.raw)
			require.True(t, strings.HasPrefix(r.str("request_uri"), "urn:ietf:params:oauth:request_uri:"))
		})
	}
	t.Run("client_secret_post with a wrong secret", func(t *testing.T) {
		r := post(t, in.parURL(), url.Values{"client_id": {"post-client"}, "client_secret": {"nope"}, "redirect_uri": {"https://post.example/cb"}, "response_type": {"code"}, "state": {"state-12345"}})
		requireOAuthError(t, r, http.StatusUnauthorized, "invalid_client")
	})
}
