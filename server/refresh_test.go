package server_test

// Refresh-token rotation (README.md "Refresh tokens"; RFC 9700 §4.14.2):
// public clients' unbound refresh tokens rotate, a rotated token used
// again revokes its grant, concurrent refreshes have one winner, the
// scope parameter narrows (RFC 6749 §6), and a refused use burns nothing.
// Everything over real HTTP on loopback, on memory and real Redis.

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/metrics/metricstest"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage"
)

// refreshClients adds clients with each rotation setting to testConfig's
// (demo-app: public, auto; fp-conf: confidential, auto).
func refreshClients(c *config.Config) {
	grants := []string{"authorization_code", "refresh_token"}
	scopes := []string{"openid", "offline_access"}
	c.Clients = append(c.Clients,
		config.Client{ID: "conf-always", FirstParty: true, TokenEndpointAuthMethod: "client_secret_basic", SecretSHA256: config.SecretDigest("conf-always-secret"),
			Scopes: scopes, GrantTypes: grants, RefreshTokenRotation: config.RotationAlways},
		config.Client{ID: "conf-never", FirstParty: true, TokenEndpointAuthMethod: "client_secret_basic", SecretSHA256: config.SecretDigest("conf-never-secret"),
			Scopes: scopes, GrantTypes: grants, RefreshTokenRotation: config.RotationNever},
		config.Client{ID: "pub-always", FirstParty: true, TokenEndpointAuthMethod: "none", Scopes: scopes, GrantTypes: grants, RefreshTokenRotation: config.RotationAlways},
	)
}

// rtClient is how a test client talks to the token endpoint: a public
// client by client_id, a confidential one with HTTP Basic, and with a
// DPoP proof for every request when it has a key.
type rtClient struct {
	id, secret string
	key        *dpop.Key
}

func (c rtClient) opts(tb testing.TB) []func(*http.Request) {
	var o []func(*http.Request)
	if c.secret != "" {
		o = append(o, basic(c.id, c.secret))
	}
	if c.key != nil {
		o = append(o, withDPoP(tb, c.key, ""))
	}
	return o
}

func (c rtClient) form(f url.Values) url.Values {
	if c.secret == "" {
		f.Set("client_id", c.id)
	}
	return f
}

// startRefresh is an instance with the refresh clients on st (nil:
// memory), logging JSON so that tests read its events.
func startRefresh(tb testing.TB, st storage.Store, clock *servertest.Clock) (instance, *jsonLog) {
	tb.Helper()
	log, out := newJSONLog()
	return wrap(servertest.Start(tb, servertest.Options{Store: st, Logger: log, Clock: clock, Configure: func(c *config.Config) {
		testConfig(c)
		refreshClients(c)
	}})), out
}

// grant signs carol in for c (scope openid offline_access) and redeems
// the code: the token response.
func (in instance) grant(tb testing.TB, c rtClient) reply {
	tb.Helper()
	pk := sdk.NewPKCE()
	r := post(tb, in.native(), c.form(url.Values{"response_type": {"code"}, "scope": {"openid offline_access"},
		"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}), c.opts(tb)...)
	require.Equal(tb, http.StatusForbidden, r.status, r.raw)
	r = post(tb, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "username": {"carol"}, "password": {"carol-pw"}}, c.opts(tb)...)
	require.Equal(tb, http.StatusOK, r.status, r.raw)
	tok := post(tb, in.token(), c.form(url.Values{"grant_type": {"authorization_code"}, "code": {r.str("authorization_code")}, "code_verifier": {pk.Verifier}}), c.opts(tb)...)
	require.Equal(tb, http.StatusOK, tok.status, tok.raw)
	require.NotEmpty(tb, tok.str("refresh_token"))
	return tok
}

// refresh sends a refresh_token grant for c.
func (in instance) refresh(tb testing.TB, c rtClient, rt string, extra url.Values) reply {
	tb.Helper()
	f := c.form(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	for k, v := range extra {
		f[k] = v
	}
	return post(tb, in.token(), f, c.opts(tb)...)
}

// mustRefresh refreshes and requires a token response with a refresh token.
func (in instance) mustRefresh(tb testing.TB, c rtClient, rt string) reply {
	tb.Helper()
	r := in.refresh(tb, c, rt, nil)
	require.Equal(tb, http.StatusOK, r.status, r.raw)
	require.NotEmpty(tb, r.str("access_token"))
	require.NotEmpty(tb, r.str("refresh_token"))
	return r
}

func (in instance) active(tb testing.TB, at string) bool {
	tb.Helper()
	return in.introspect(tb, at).body["active"] == true
}

// reuseEvents are the refresh.reuse lines logged so far.
func reuseEvents(tb testing.TB, out *jsonLog) []logLine {
	tb.Helper()
	var got []logLine
	for _, l := range where(out.lines(tb), ".event", "") {
		if l.str("event") == events.RefreshReuse {
			got = append(got, l)
		}
	}
	return got
}

var demoApp = rtClient{id: "demo-app"}

// TestRefresh_RotatesForPublicClients (SECURITY-RESULTS.md RT01): each
// refresh of a public client's unbound token answers a new refresh token
// and a new access token; the used refresh token is then refused; a chain
// of refreshes keeps working; the answer keeps the grant's scope.
func TestRefresh_RotatesForPublicClients(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			in, _ := startRefresh(t, b.store(t), nil)
			tok := in.grant(t, demoApp)
			rt := tok.str("refresh_token")
			seen := map[string]bool{rt: true}
			for i := range 3 {
				r := in.mustRefresh(t, demoApp, rt)
				require.False(t, seen[r.str("refresh_token")], "refresh %d answered a refresh token seen before", i)
				seen[r.str("refresh_token")] = true
				require.Equal(t, "bearer", r.str("token_type"))
				require.Equal(t, "openid offline_access", r.str("scope"))
				require.Positive(t, r.body["expires_in"])
				require.True(t, in.active(t, r.str("access_token")))
				rt = r.str("refresh_token")
			}
			// The first token, rotated three refreshes ago, is refused.
			requireOAuthError(t, in.refresh(t, demoApp, tok.str("refresh_token"), nil), http.StatusBadRequest, "invalid_grant")
		})
	}
}

// TestRefresh_ReuseRevokesFamily (SECURITY-RESULTS.md RT02): a rotated
// refresh token presented again is invalid_grant and revokes every access
// and refresh token of its grant — and only of its grant — and logs one
// refresh.reuse event (warn, client_id, reason reused, no token) and
// counts it.
func TestRefresh_ReuseRevokesFamily(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			in, out := startRefresh(t, b.store(t), nil)
			other := in.grant(t, demoApp) // carol's second grant on another device
			tok := in.grant(t, demoApp)
			r1 := in.mustRefresh(t, demoApp, tok.str("refresh_token"))
			r2 := in.mustRefresh(t, demoApp, r1.str("refresh_token"))
			before := snapshot(t, in)
			require.Empty(t, reuseEvents(t, out))

			// The thief (or a replaying client) presents the first token.
			requireOAuthError(t, in.refresh(t, demoApp, tok.str("refresh_token"), nil), http.StatusBadRequest, "invalid_grant")

			for i, at := range []string{tok.str("access_token"), r1.str("access_token"), r2.str("access_token")} {
				require.False(t, in.active(t, at), "access token %d of the grant", i)
			}
			requireOAuthError(t, in.refresh(t, demoApp, r2.str("refresh_token"), nil), http.StatusBadRequest, "invalid_grant")
			requireOAuthError(t, in.refresh(t, demoApp, r1.str("refresh_token"), nil), http.StatusBadRequest, "invalid_grant")
			// The other grant is untouched.
			require.True(t, in.active(t, other.str("access_token")))
			in.mustRefresh(t, demoApp, other.str("refresh_token"))

			got := reuseEvents(t, out)
			require.Len(t, got, 1, "one event: the later uses find the grant revoked")
			require.Equal(t, "warn", got[0].str("level"))
			require.Equal(t, "demo-app", got[0].str("client_id"))
			require.Equal(t, "reused", got[0].str("reason"))
			require.NotEmpty(t, got[0].str("request_id"))
			for _, secret := range []string{tok.str("refresh_token"), r1.str("refresh_token"), r2.str("refresh_token"), tok.str("access_token")} {
				require.NotContains(t, got[0].raw, secret)
			}
			d := metricstest.Delta(before, snapshot(t, in))
			require.Equal(t, 1.0, d[metricstest.Key("fedas_refresh_reuse_total", "client_id", "demo-app", "reason", "reused")], "%v", d)
		})
	}
}

// TestRefresh_ConcurrentUseOneSuccessor (SECURITY-RESULTS.md RT03, C7):
// racers refresh with one rotating token at once, on memory, Redis and a
// Redis Cluster: exactly one gets tokens, every other gets invalid_grant,
// none a 5xx; a lost race is indistinguishable from reuse, so the grant
// ends revoked, the winner's tokens too. A confidential client's token,
// which does not rotate, serves every racer.
func TestRefresh_ConcurrentUseOneSuccessor(t *testing.T) {
	for _, b := range backends2() {
		t.Run(b.name, func(t *testing.T) {
			in, out := startRefresh(t, b.store(t), nil)
			t.Run("rotating: one successor", func(t *testing.T) {
				tok := in.grant(t, demoApp)
				form := url.Values{"grant_type": {"refresh_token"}, "client_id": {"demo-app"}, "refresh_token": {tok.str("refresh_token")}}
				replies := race(t, func() (reply, error) { return tryReq(postReq(in.token(), form, "")) })
				var winners []reply
				for _, r := range replies {
					r = decoded(t, r)
					if r.status == http.StatusOK {
						winners = append(winners, r)
						continue
					}
					require.Equal(t, http.StatusBadRequest, r.status, r.raw)
					require.Equal(t, "invalid_grant", r.str("error"), r.raw)
				}
				require.Len(t, winners, 1, "exactly one successor")
				w := winners[0]
				require.False(t, in.active(t, w.str("access_token")), "the grant was revoked by a loser")
				requireOAuthError(t, in.refresh(t, demoApp, w.str("refresh_token"), nil), http.StatusBadRequest, "invalid_grant")
				got := reuseEvents(t, out)
				require.NotEmpty(t, got)
				for _, e := range got {
					require.Contains(t, []string{"concurrent", "reused"}, e.str("reason"))
					require.Equal(t, "demo-app", e.str("client_id"))
				}
			})
			t.Run("not rotating: every racer", func(t *testing.T) {
				conf := rtClient{id: "fp-conf", secret: "fp-conf-secret"}
				tok := in.grant(t, conf)
				form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.str("refresh_token")}}
				authz := "Basic " + basicValue("fp-conf", "fp-conf-secret")
				for _, r := range race(t, func() (reply, error) { return tryReq(postReq(in.token(), form, authz)) }) {
					require.Equal(t, http.StatusOK, r.status, r.raw)
				}
			})
		})
	}
}

// decoded parses a tryReq reply's JSON body.
func decoded(tb testing.TB, r reply) reply {
	tb.Helper()
	if r.raw != "" {
		require.NoError(tb, json.Unmarshal([]byte(r.raw), &r.body), r.raw)
	}
	return r
}

func basicValue(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
}

// TestRefresh_ConfidentialAndDPoPKeepToday (SECURITY-RESULTS.md RT04):
// by the rotation setting, a refresh token that does not rotate — a
// confidential client's (auto, never) or a DPoP-bound one (auto) — keeps
// working after each refresh, which answers a new one too, as before
// rotation existed; always rotates even those, and the rotated token then
// introspects inactive for its own client. An unbound public token
// refreshed with a proof rotates (the decision follows the token used),
// and its bound successor then does not.
func TestRefresh_ConfidentialAndDPoPKeepToday(t *testing.T) {
	in, _ := startRefresh(t, nil, nil)
	tests := []struct {
		name    string
		c       rtClient
		rotates bool
	}{
		{"public, DPoP-bound, auto", rtClient{id: "demo-app", key: newDPoPKey(t)}, false},
		{"confidential, auto", rtClient{id: "fp-conf", secret: "fp-conf-secret"}, false},
		{"confidential, never", rtClient{id: "conf-never", secret: "conf-never-secret"}, false},
		{"confidential, always", rtClient{id: "conf-always", secret: "conf-always-secret"}, true},
		{"public, DPoP-bound, always", rtClient{id: "pub-always", key: newDPoPKey(t)}, true},
		{"public, unbound, always", rtClient{id: "pub-always"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := in.grant(t, tc.c)
			rt := tok.str("refresh_token")
			r1 := in.mustRefresh(t, tc.c, rt)
			require.NotEqual(t, rt, r1.str("refresh_token"), "a refresh answers a new refresh token either way")
			if tc.c.key != nil {
				require.Equal(t, "DPoP", r1.str("token_type"))
			}
			again := in.refresh(t, tc.c, rt, nil)
			if !tc.rotates {
				require.Equal(t, http.StatusOK, again.status, again.raw)
				in.mustRefresh(t, tc.c, rt)
				in.mustRefresh(t, tc.c, r1.str("refresh_token"))
				require.True(t, in.active(t, tok.str("access_token")))
				return
			}
			requireOAuthError(t, again, http.StatusBadRequest, "invalid_grant")
			require.False(t, in.active(t, r1.str("access_token")), "reuse revoked the grant")
			if tc.c.secret != "" {
				// Introspection of a rotated token by its own client.
				tok := in.grant(t, tc.c)
				r := in.mustRefresh(t, tc.c, tok.str("refresh_token"))
				ir := post(t, in.intro(), url.Values{"token": {tok.str("refresh_token")}, "token_type_hint": {"refresh_token"}}, basic(tc.c.id, tc.c.secret))
				require.Equal(t, map[string]any{"active": false}, ir.body)
				ir = post(t, in.intro(), url.Values{"token": {r.str("refresh_token")}, "token_type_hint": {"refresh_token"}}, basic(tc.c.id, tc.c.secret))
				require.Equal(t, true, ir.body["active"], ir.raw)
				require.Equal(t, "refresh_token", ir.str("token_type"))
			}
		})
	}
	t.Run("unbound public token refreshed with a proof", func(t *testing.T) {
		tok := in.grant(t, demoApp)
		bound := rtClient{id: "demo-app", key: newDPoPKey(t)}
		r1 := in.mustRefresh(t, bound, tok.str("refresh_token"))
		require.Equal(t, "DPoP", r1.str("token_type"), "the proof binds the successor")
		requireOAuthError(t, in.refresh(t, bound, tok.str("refresh_token"), nil), http.StatusBadRequest, "invalid_grant")
		tok = in.grant(t, demoApp)
		r1 = in.mustRefresh(t, bound, tok.str("refresh_token"))
		in.mustRefresh(t, bound, r1.str("refresh_token"))
		in.mustRefresh(t, bound, r1.str("refresh_token"))
	})
}

// TestRefresh_ScopeNarrowing (SECURITY-RESULTS.md RT05, RFC 6749 §6): a
// scope parameter narrows the new access token to a subset of the grant's
// scope; the new refresh token keeps the grant's scope; omitted (or
// empty), the grant's scope; a scope outside the grant is invalid_scope
// and burns nothing.
func TestRefresh_ScopeNarrowing(t *testing.T) {
	in, _ := startRefresh(t, nil, nil)
	tests := []struct {
		scope string
		want  string // "" means invalid_scope
	}{
		{"openid", "openid"},
		{"offline_access", "offline_access"},
		{"openid offline_access", "openid offline_access"},
		{"  openid  ", "openid"},
		{"openid openid", "openid"},
		{"", "openid offline_access"},
		{"profile", ""}, // demo-app may ask for it, but the grant has not
		{"openid email", ""},
		{"OPENID", ""},
		{"openid-x", ""},
	}
	for _, tc := range tests {
		t.Run("scope="+tc.scope, func(t *testing.T) {
			tok := in.grant(t, demoApp)
			rt := tok.str("refresh_token")
			r := in.refresh(t, demoApp, rt, url.Values{"scope": {tc.scope}})
			if tc.want == "" {
				requireOAuthError(t, r, http.StatusBadRequest, "invalid_scope")
				// Nothing burned: the token still refreshes, unnarrowed.
				r = in.mustRefresh(t, demoApp, rt)
				require.Equal(t, "openid offline_access", r.str("scope"))
				return
			}
			require.Equal(t, http.StatusOK, r.status, r.raw)
			require.Equal(t, tc.want, r.str("scope"))
			require.Equal(t, tc.want, in.introspect(t, r.str("access_token")).str("scope"))
			// The successor carries the grant's whole scope (RFC 6749 §6).
			next := in.mustRefresh(t, demoApp, r.str("refresh_token"))
			require.Equal(t, "openid offline_access", next.str("scope"))
		})
	}
}

// TestRefresh_RefusedUseBurnsNothing (SECURITY-RESULTS.md RT07): every
// refused refresh of a rotating token leaves it usable, its grant alive
// and no refresh.reuse logged — another client's attempt (even with a
// rotated token), a missing or wrong DPoP proof, a confidential client
// without (or with wrong) authentication, an access token or garbage as
// refresh token, a missing parameter, an unknown client. Then the dead
// tokens: revoked (RFC 7009, which revokes the grant's access tokens
// too), expired (fake clock), and after its grant was revoked by reuse —
// each invalid_grant, never a 5xx.
func TestRefresh_RefusedUseBurnsNothing(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			in, out := startRefresh(t, b.store(t), nil)
			dk := newDPoPKey(t)
			boundRot := rtClient{id: "pub-always", key: dk} // DPoP-bound and rotating
			confRot := rtClient{id: "conf-always", secret: "conf-always-secret"}
			tests := []struct {
				name   string
				owner  rtClient
				rotate bool // refresh once first and attack with the rotated token
				send   func(t *testing.T, tok reply) reply
				status int
				codes  []string
			}{
				{"another public client", demoApp, false, func(t *testing.T, tok reply) reply {
					return in.refresh(t, rtClient{id: "c2"}, tok.str("refresh_token"), nil)
				}, 400, []string{"invalid_grant"}},
				{"another public client, rotated token", demoApp, true, func(t *testing.T, tok reply) reply {
					return in.refresh(t, rtClient{id: "c2"}, tok.str("refresh_token"), nil)
				}, 400, []string{"invalid_grant"}},
				{"another confidential client", demoApp, false, func(t *testing.T, tok reply) reply {
					return in.refresh(t, rtClient{id: "fp-conf", secret: "fp-conf-secret"}, tok.str("refresh_token"), nil)
				}, 400, []string{"invalid_grant"}},
				{"DPoP-bound, no proof", boundRot, false, func(t *testing.T, tok reply) reply {
					return in.refresh(t, rtClient{id: "pub-always"}, tok.str("refresh_token"), nil)
				}, 400, []string{"invalid_dpop_proof"}},
				{"DPoP-bound, rotated token, no proof", boundRot, true, func(t *testing.T, tok reply) reply {
					return in.refresh(t, rtClient{id: "pub-always"}, tok.str("refresh_token"), nil)
				}, 400, []string{"invalid_dpop_proof"}},
				{"DPoP-bound, another key", boundRot, false, func(t *testing.T, tok reply) reply {
					return in.refresh(t, rtClient{id: "pub-always", key: newDPoPKey(t)}, tok.str("refresh_token"), nil)
				}, 400, []string{"invalid_dpop_proof"}},
				{"DPoP-bound, proof for another endpoint", boundRot, false, func(t *testing.T, tok reply) reply {
					f := url.Values{"grant_type": {"refresh_token"}, "client_id": {"pub-always"}, "refresh_token": {tok.str("refresh_token")}}
					return post(t, in.token(), f, withProof(t, dk, in.native()))
				}, 400, []string{"invalid_dpop_proof"}},
				{"confidential, no authentication", confRot, false, func(t *testing.T, tok reply) reply {
					f := url.Values{"grant_type": {"refresh_token"}, "client_id": {"conf-always"}, "refresh_token": {tok.str("refresh_token")}}
					return post(t, in.token(), f)
				}, 401, []string{"invalid_client"}},
				{"confidential, wrong secret", confRot, false, func(t *testing.T, tok reply) reply {
					return in.refresh(t, rtClient{id: "conf-always", secret: "guess"}, tok.str("refresh_token"), nil)
				}, 401, []string{"invalid_client"}},
				{"confidential, rotated token, no authentication", confRot, true, func(t *testing.T, tok reply) reply {
					f := url.Values{"grant_type": {"refresh_token"}, "client_id": {"conf-always"}, "refresh_token": {tok.str("refresh_token")}}
					return post(t, in.token(), f)
				}, 401, []string{"invalid_client"}},
				{"access token as refresh token", demoApp, false, func(t *testing.T, tok reply) reply {
					return in.refresh(t, demoApp, tok.str("access_token"), nil)
				}, 400, []string{"invalid_grant"}},
				{"forged token with its signature", demoApp, false, func(t *testing.T, tok reply) reply {
					rt := tok.str("refresh_token")
					i := strings.LastIndexByte(rt, '.')
					return in.refresh(t, demoApp, "ory_rt_"+strings.Repeat("A", 43)+rt[i:], nil)
				}, 400, []string{"invalid_grant"}},
				{"garbage", demoApp, false, func(t *testing.T, tok reply) reply {
					return in.refresh(t, demoApp, "garbage."+strings.Repeat("x", 600), nil)
				}, 400, []string{"invalid_grant"}},
				{"no refresh_token parameter", demoApp, false, func(t *testing.T, tok reply) reply {
					return post(t, in.token(), url.Values{"grant_type": {"refresh_token"}, "client_id": {"demo-app"}})
				}, 400, []string{"invalid_request"}},
				{"scope outside the grant", demoApp, false, func(t *testing.T, tok reply) reply {
					return in.refresh(t, demoApp, tok.str("refresh_token"), url.Values{"scope": {"openid profile"}})
				}, 400, []string{"invalid_scope"}},
				{"unknown client", demoApp, false, func(t *testing.T, tok reply) reply {
					return in.refresh(t, rtClient{id: "nobody"}, tok.str("refresh_token"), nil)
				}, 401, []string{"invalid_client"}},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					tok := in.grant(t, tc.owner)
					current := tok
					if tc.rotate {
						current = in.mustRefresh(t, tc.owner, tok.str("refresh_token"))
					}
					events := len(reuseEvents(t, out))
					requireOAuthError(t, tc.send(t, tok), tc.status, tc.codes...)
					require.Len(t, reuseEvents(t, out), events, "a refused use is no reuse")
					require.True(t, in.active(t, current.str("access_token")), "the grant is alive")
					// The holder's token still works: nothing was burned.
					in.mustRefresh(t, tc.owner, current.str("refresh_token"))
				})
			}
		})
	}
	t.Run("dead tokens", func(t *testing.T) {
		in, _ := startRefresh(t, nil, nil)
		t.Run("revoked (RFC 7009): the grant's access tokens too", func(t *testing.T) {
			tok := in.grant(t, demoApp)
			r1 := in.mustRefresh(t, demoApp, tok.str("refresh_token"))
			rv := post(t, in.revoke(), url.Values{"client_id": {"demo-app"}, "token": {r1.str("refresh_token")}})
			require.Equal(t, http.StatusOK, rv.status, rv.raw)
			require.False(t, in.active(t, tok.str("access_token")))
			require.False(t, in.active(t, r1.str("access_token")))
			requireOAuthError(t, in.refresh(t, demoApp, r1.str("refresh_token"), nil), http.StatusBadRequest, "invalid_grant")
		})
		t.Run("after its grant was revoked by reuse", func(t *testing.T) {
			tok := in.grant(t, demoApp)
			r1 := in.mustRefresh(t, demoApp, tok.str("refresh_token"))
			requireOAuthError(t, in.refresh(t, demoApp, tok.str("refresh_token"), nil), http.StatusBadRequest, "invalid_grant")
			requireOAuthError(t, in.refresh(t, demoApp, r1.str("refresh_token"), nil), http.StatusBadRequest, "invalid_grant")
		})
		t.Run("expired", func(t *testing.T) {
			clock := &servertest.Clock{}
			in, _ := startRefresh(t, nil, clock)
			tok := in.grant(t, demoApp)
			clock.Advance(in.Config.Lifetimes.RefreshToken + time.Second)
			requireOAuthError(t, in.refresh(t, demoApp, tok.str("refresh_token"), nil), http.StatusBadRequest, "invalid_grant")
			conf := rtClient{id: "fp-conf", secret: "fp-conf-secret"}
			tok = in.grant(t, conf)
			// Each refresh answers a token with a fresh lifetime; the used
			// one (which stays valid: fp-conf does not rotate) keeps its own.
			clock.Advance(in.Config.Lifetimes.RefreshToken - time.Minute)
			r := in.mustRefresh(t, conf, tok.str("refresh_token"))
			clock.Advance(2 * time.Minute)
			requireOAuthError(t, in.refresh(t, conf, tok.str("refresh_token"), nil), http.StatusBadRequest, "invalid_grant")
			in.mustRefresh(t, conf, r.str("refresh_token"))
		})
	})
}
