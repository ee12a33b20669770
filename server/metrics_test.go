package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/metrics/metricstest"
)

func snapshot(tb testing.TB, in instance) metricstest.Series {
	tb.Helper()
	return metricstest.Snapshot(tb, in.Server.Metrics().Registry())
}

func get(tb testing.TB, u string) reply {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(tb, err)
	return do(tb, req)
}

// TestMetrics_LocalSignIn drives a local sign-in over real HTTP — a wrong
// password, the right one, the code, a refresh, a replayed code, refused
// client credentials, an unknown route and a wrong method — and asserts
// exactly which series changed, by how much, and nothing else.
func TestMetrics_LocalSignIn(t *testing.T) {
	in := wrap(start(t, nil))
	before := snapshot(t, in)

	r, pk := in.initial(t, "demo-app", nil)
	require.Equal(t, http.StatusForbidden, r.status, r.raw)
	r = post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "username": {"carol"}, "password": {"wrong-password"}})
	require.Equal(t, http.StatusForbidden, r.status, r.raw)
	r = post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "username": {"carol"}, "password": {"carol-pw"}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	code := r.str("authorization_code")
	tok := in.redeem(t, "demo-app", code, pk)
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	rt := post(t, in.token(), url.Values{"grant_type": {"refresh_token"}, "client_id": {"demo-app"}, "refresh_token": {tok.str("refresh_token")}})
	require.Equal(t, http.StatusOK, rt.status, rt.raw)
	requireOAuthError(t, in.redeem(t, "demo-app", code, pk), http.StatusBadRequest, "invalid_grant")
	grant := url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "code_verifier": {pk.Verifier}}
	requireOAuthError(t, post(t, in.token(), grant, basic("fp-conf", "not-the-secret")), http.StatusUnauthorized, "invalid_client")
	requireOAuthError(t, post(t, in.token(), grant, basic("nobody-"+strings.Repeat("x", 300), "x")), http.StatusUnauthorized, "invalid_client")
	require.Equal(t, http.StatusNotFound, get(t, in.URL+"/no/such/path").status)
	require.Equal(t, http.StatusMethodNotAllowed, get(t, in.native()).status)

	want := metricstest.Series{}.
		HTTP("public", "/native/authorize", "POST", 403).HTTP("public", "/native/authorize", "POST", 403).
		HTTP("public", "/native/authorize", "POST", 200).
		HTTP("public", "/oauth2/token", "POST", 200).HTTP("public", "/oauth2/token", "POST", 200).
		HTTP("public", "/oauth2/token", "POST", 400).
		HTTP("public", "/oauth2/token", "POST", 401).HTTP("public", "/oauth2/token", "POST", 401).
		HTTP("public", "unmatched", "GET", 404).
		HTTP("public", "/native/authorize", "GET", 405).
		Add(2, "fedas_native_outcomes_total", "channel", "native", "kind", "challenge", "challenge", "password").
		Add(1, "fedas_native_outcomes_total", "channel", "native", "kind", "code").
		Add(1, "fedas_sign_ins_total", "method", "password", "result", "failure", "client_id", "demo-app").
		Add(1, "fedas_sign_ins_total", "method", "password", "result", "success", "client_id", "demo-app").
		Add(1, "fedas_tokens_issued_total", "grant_type", "authorization_code", "client_id", "demo-app").
		Add(1, "fedas_tokens_issued_total", "grant_type", "refresh_token", "client_id", "demo-app").
		Add(1, "fedas_code_reuse_total", "client_id", "demo-app", "reason", "redeemed").
		Add(1, "fedas_client_auth_failures_total", "method", "client_secret_basic", "client_id", "fp-conf").
		Add(1, "fedas_client_auth_failures_total", "method", "client_secret_basic", "client_id", "unknown")
	require.Equal(t, want, metricstest.Delta(before, snapshot(t, in)))
}

// TestMetrics_FederatedFlow drives the federation draft's Appendix A.1
// flow step by step over real HTTP (AS1 federates to AS2) and asserts the
// exact deltas on both servers: outcomes, sign-ins, the hop and its two
// timed downstream calls, tokens, and every HTTP request each one served.
func TestMetrics_FederatedFlow(t *testing.T) {
	as1, as2 := pair(t, nil, nil, nil, nil)
	before1, before2 := snapshot(t, as1), snapshot(t, as2)

	r, pk := as1.initial(t, "demo-app", nil)
	requireOAuthError(t, r, http.StatusBadRequest, "insufficient_information")
	r = post(t, as1.native(), url.Values{"auth_session": {r.str("auth_session")}, "email": {"carol@as2.example"}})
	requireOAuthError(t, r, http.StatusBadRequest, "federate")
	fed := r
	r = postBody(t, fed.str("federation_uri"), "application/x-www-form-urlencoded", fed.str("federation_body"))
	requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
	r = post(t, as2.native(), url.Values{"auth_session": {r.str("auth_session")}, "username": {"carol"}, "password": {"carol-pw"}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	r = post(t, fed.str("response_uri"), url.Values{"auth_session": {fed.str("auth_session")}, "authorization_code": {r.str("authorization_code")}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	tok := as1.redeem(t, "demo-app", r.str("authorization_code"), pk)
	require.Equal(t, http.StatusOK, tok.status, tok.raw)

	want1 := metricstest.Series{}.
		HTTP("public", "/native/authorize", "POST", 400).HTTP("public", "/native/authorize", "POST", 400).
		HTTP("public", "/native/response/:hop", "POST", 200).
		HTTP("public", "/oauth2/token", "POST", 200).
		Add(1, "fedas_native_outcomes_total", "channel", "native", "kind", "prompt").
		Add(1, "fedas_native_outcomes_total", "channel", "native", "kind", "federate").
		Add(1, "fedas_native_outcomes_total", "channel", "response", "kind", "code").
		Add(1, "fedas_federation_hops_total", "downstream", "as2", "result", "started").
		Add(1, "fedas_federation_hops_total", "downstream", "as2", "result", "completed").
		Add(1, "fedas_federation_downstream_duration_seconds_count", "downstream", "as2", "call", "push").
		Add(1, "fedas_federation_downstream_duration_seconds_count", "downstream", "as2", "call", "redeem").
		Add(1, "fedas_sign_ins_total", "method", "federation", "result", "success", "client_id", "demo-app").
		Add(1, "fedas_tokens_issued_total", "grant_type", "authorization_code", "client_id", "demo-app")
	require.Equal(t, want1, metricstest.Delta(before1, snapshot(t, as1)), "AS1")

	want2 := metricstest.Series{}.
		HTTP("public", "/.well-known/oauth-authorization-server", "GET", 200).
		HTTP("public", "/oauth2/par", "POST", 201).
		HTTP("public", "/native/authorize", "POST", 403).
		HTTP("public", "/native/authorize", "POST", 200).
		HTTP("public", "/oauth2/token", "POST", 200).
		HTTP("public", "/jwks.json", "GET", 200).
		Add(1, "fedas_native_outcomes_total", "channel", "native", "kind", "challenge", "challenge", "password").
		Add(1, "fedas_native_outcomes_total", "channel", "native", "kind", "code").
		Add(1, "fedas_sign_ins_total", "method", "password", "result", "success", "client_id", "as1").
		Add(1, "fedas_tokens_issued_total", "grant_type", "authorization_code", "client_id", "as1")
	require.Equal(t, want2, metricstest.Delta(before2, snapshot(t, as2)), "AS2")
}

// TestMetrics_NotOnPublicListener: the public listener has no /metrics
// (the exposition belongs to the admin listener only).
func TestMetrics_NotOnPublicListener(t *testing.T) {
	in := wrap(start(t, nil))
	for _, p := range []string{"/metrics", "/metrics/", "/admin/metrics"} {
		r := get(t, in.URL+p)
		require.Equal(t, http.StatusNotFound, r.status, p)
		require.NotContains(t, r.raw, "fedas_", p)
	}
}
