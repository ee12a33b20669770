package server_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/storage/redistest"
)

const rarFedSecret = "rar-fed-secret"

// paymentDetails is a request's authorization_details (RFC 9396 §2),
// with whitespace and member order the server normalises; rarCanonical
// is what the grant carries back (RFC 9396 §7).
const (
	paymentDetails = `[ {"type":"payment_initiation", "instructedAmount":{"currency":"EUR","amount":"123.50"},
	  "creditorName":"Merchant A"} ]`
	rarCanonical = `[{"creditorName":"Merchant A","instructedAmount":{"amount":"123.50","currency":"EUR"},"type":"payment_initiation"}]`
)

// rarConfig configures the payment_initiation type (mapped to transaction
// data) and openid_credential; demo-app and the federating rar-fed may
// request payment_initiation, c2 none.
func rarConfig(c *config.Config) {
	c.AuthorizationDetailsTypes = []config.AuthorizationDetailsType{
		{Type: "payment_initiation", Fields: map[string]config.AuthorizationDetailsField{
			"instructedAmount": {Required: true, Type: "object"},
			"creditorName":     {Required: true, Type: "string"},
		}, TransactionData: &config.TransactionDataMapping{Type: "urn:eudi:sca:payment:1", Payload: map[string]string{"payee": "creditorName", "amount": "instructedAmount"}}},
		{Type: "openid_credential", CredentialConfigurationIDs: []string{"pid_sd_jwt"}},
	}
	for i := range c.Clients {
		if c.Clients[i].ID == "demo-app" {
			c.Clients[i].AuthorizationDetailsTypes = []string{"payment_initiation", "openid_credential"}
		}
	}
	c.Clients = append(c.Clients, config.Client{ID: "rar-fed", Federating: true, AllowCredentialChallenges: true,
		TokenEndpointAuthMethod: "client_secret_basic", SecretSHA256: config.SecretDigest(rarFedSecret),
		Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"https://rarfed.example/cb"},
		AuthorizationDetailsTypes: []string{"payment_initiation"}})
}

// answerBob answers bob's password and OTP challenges at the native
// endpoint from the first challenge r, and returns the final answer.
func answerBob(t *testing.T, in instance, r reply) reply {
	t.Helper()
	require.Equal(t, http.StatusForbidden, r.status, r.raw)
	r = post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "username": {"bob"}, "password": {"builder"}})
	require.Equal(t, http.StatusForbidden, r.status, r.raw)
	require.Equal(t, "otp", r.body["challenge"].(map[string]any)["type"])
	code, err := totp.GenerateCode(bobTOTP, time.Now())
	require.NoError(t, err)
	r = post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "otp": {code}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	return r
}

// requireDetails asserts the exact canonical authorization_details
// member in a JSON answer.
func requireDetails(t *testing.T, r reply) {
	t.Helper()
	require.Contains(t, r.raw, `"authorization_details":`+rarCanonical, r.raw)
}

// TestRAR_NativeEndToEnd: authorization_details sent at the native
// endpoint are validated, bound to the code of a password + OTP sign-in,
// and returned exactly (canonical JSON) in the token response (RFC 9396
// §7), in introspection (§9.1), and again after refresh; the metadata
// lists the types (§10). Both backends.
func TestRAR_NativeEndToEnd(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			in := wrap(start(t, b.store(t), rarConfig))
			meta := do(t, mustGet(t, in.URL+"/.well-known/oauth-authorization-server"))
			require.Equal(t, []any{"payment_initiation", "openid_credential"}, meta.body["authorization_details_types_supported"])

			r, pk := in.initial(t, "demo-app", url.Values{"authorization_details": {paymentDetails}})
			r = answerBob(t, in, r)
			tr := in.redeem(t, "demo-app", r.str("authorization_code"), pk)
			require.Equal(t, http.StatusOK, tr.status, tr.raw)
			requireDetails(t, tr)
			requireDetails(t, in.introspect(t, tr.str("access_token")))

			ref := post(t, in.token(), url.Values{"grant_type": {"refresh_token"}, "client_id": {"demo-app"}, "refresh_token": {tr.str("refresh_token")}})
			require.Equal(t, http.StatusOK, ref.status, ref.raw)
			requireDetails(t, ref)
			requireDetails(t, in.introspect(t, ref.str("access_token")))

			// Without authorization_details the grant has none.
			code, pk2 := in.signIn(t, "demo-app", "alice", "wonderland", "")
			plain := in.redeem(t, "demo-app", code, pk2)
			require.Equal(t, http.StatusOK, plain.status, plain.raw)
			require.NotContains(t, plain.body, "authorization_details")
			require.NotContains(t, in.introspect(t, plain.str("access_token")).body, "authorization_details")
		})
	}
}

// TestRAR_Refusals: every refused authorization_details at the native
// endpoint is 400 invalid_authorization_details (RFC 9396 §5) with no
// auth_session, and nothing is stored: no auth session, live-session
// reservation, code or token in Redis.
func TestRAR_Refusals(t *testing.T) {
	rs := redistest.Start(t)
	in := wrap(start(t, redisStore(t, rs.URL()), rarConfig))
	opt, err := redis.ParseURL(rs.URL())
	require.NoError(t, err)
	rc := redis.NewClient(opt)
	t.Cleanup(func() { _ = rc.Close() })
	stored := func() []string {
		var all []string
		for _, p := range []string{"fedas:as:*", "fedas:live:*", "fedas:tok:*", "fedas:req:*"} {
			keys, err := rc.Keys(context.Background(), p).Result()
			require.NoError(t, err)
			all = append(all, keys...)
		}
		return all
	}
	for _, tc := range []struct {
		name, client string
		values       []string
	}{
		{"type not allowed for the client", "c2", []string{paymentDetails}},
		{"unknown type", "demo-app", []string{`[{"type":"account_information"}]`}},
		{"missing required field", "demo-app", []string{`[{"type":"payment_initiation","creditorName":"x"}]`}},
		{"wrong value type", "demo-app", []string{`[{"type":"payment_initiation","creditorName":7,"instructedAmount":{}}]`}},
		{"field not allowed", "demo-app", []string{`[{"type":"payment_initiation","creditorName":"x","instructedAmount":{},"iban":"DE00"}]`}},
		{"duplicate member", "demo-app", []string{`[{"type":"payment_initiation","creditorName":"x","creditorName":"y","instructedAmount":{}}]`}},
		{"not an array", "demo-app", []string{`{"type":"payment_initiation"}`}},
		{"empty array", "demo-app", []string{`[]`}},
		{"empty value", "demo-app", []string{``}},
		{"too large", "demo-app", []string{`[{"type":"payment_initiation","instructedAmount":{},"creditorName":"` + strings.Repeat("x", 9000) + `"}]`}},
		{"credential configuration not offered", "demo-app", []string{`[{"type":"openid_credential","credential_configuration_id":"mdl"}]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := stored()
			r, _ := in.initial(t, tc.client, url.Values{"authorization_details": tc.values})
			requireOAuthError(t, r, http.StatusBadRequest, "invalid_authorization_details")
			require.NotContains(t, r.body, "auth_session")
			require.NotContains(t, r.raw, "Merchant")
			require.ElementsMatch(t, before, stored())
		})
	}
	// The same client without the parameter signs in as before.
	r, _ := in.initial(t, "c2", nil)
	require.Equal(t, http.StatusForbidden, r.status, r.raw)
}

// TestRAR_ThroughPAR: in the downstream role (docs/decisions.md Q3) the
// authorization_details of a pushed request (RFC 9126) are bound to the
// code and returned to the federating client; invalid ones are refused
// at the PAR endpoint itself (RFC 9126 §2.1: validated as an
// authorization request) with invalid_authorization_details and no
// request_uri.
func TestRAR_ThroughPAR(t *testing.T) {
	in := wrap(start(t, nil, rarConfig))
	pk := sdk.NewPKCE()
	push := func(details ...string) reply {
		return post(t, in.parURL(), url.Values{"response_type": {"code"}, "client_id": {"rar-fed"}, "redirect_uri": {"https://rarfed.example/cb"},
			"scope": {"openid"}, "state": {"rar-state-1"}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}, "authorization_details": details}, basic("rar-fed", rarFedSecret))
	}
	par := push(paymentDetails)
	require.Equal(t, http.StatusCreated, par.status, par.raw)
	r := post(t, in.native(), url.Values{"client_id": {"rar-fed"}, "request_uri": {par.str("request_uri")}})
	r = answerBob(t, in, r)
	tr := post(t, in.token(), url.Values{"grant_type": {"authorization_code"}, "code": {r.str("authorization_code")}, "code_verifier": {pk.Verifier}}, basic("rar-fed", rarFedSecret))
	require.Equal(t, http.StatusOK, tr.status, tr.raw)
	requireDetails(t, tr)

	for name, details := range map[string][]string{
		"type not allowed for the client": {`[{"type":"openid_credential","credential_configuration_id":"pid_sd_jwt"}]`},
		"duplicate member":                {`[{"type":"payment_initiation","creditorName":"x","creditorName":"y","instructedAmount":{}}]`},
		"not an array":                    {`{}`},
	} {
		t.Run(name, func(t *testing.T) {
			bad := push(details...)
			requireOAuthError(t, bad, http.StatusBadRequest, "invalid_authorization_details")
			require.NotContains(t, bad.body, "request_uri")
		})
	}
}
