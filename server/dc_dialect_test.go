package server_test

// Dialect conformance (issue 11 items 4 and 5): "a client written to the
// seed texts works unchanged". Each test drives fedas with a client that
// speaks only one seed text's member names — the federation draft -00
// appendix "Usage with Digital Credentials", presentation during issuance,
// OpenID4VCI 1.1 Interactive Authorization — over real HTTPS, memory and
// Redis, with DPoP. The seed clients never read fedas's own `challenge`
// object nor the wallet-presentation names (credentials_request,
// response_code): seedAnswer exposes only the members a test names.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/authn/presentation"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/rar"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
)

// ticketConfig is the credential configuration the issuer behind fedas
// offers (OpenID4VCI 1.0 §5.1.1 credential_configuration_id).
const ticketConfig = "org.example.ticket"

// ticketDetails is the OID4VCI authorization_details of a wallet asking
// for that credential (OpenID4VCI 1.0 §5.1.1).
const ticketDetails = `[{"type":"openid_credential","credential_configuration_id":"` + ticketConfig + `"}]`

// issuanceEdit makes fedas the authorization server of a credential
// issuer: the built-in openid_credential type (config/rar.go), allowed to
// the wallet-as-client dialects, and the rule that every request for a
// credential presents a PID first (digital_credentials.rules[]
// .authorization_details_type).
func issuanceEdit(plain bool) func(*config.Config) {
	return func(c *config.Config) {
		c.AuthorizationDetailsTypes = append(c.AuthorizationDetailsTypes,
			config.AuthorizationDetailsType{Type: rar.OpenIDCredential, CredentialConfigurationIDs: []string{ticketConfig}})
		for i := range c.Clients {
			switch c.Clients[i].ID {
			case "dc-pdi", "dc-ia", "demo-app":
				c.Clients[i].AuthorizationDetailsTypes = []string{rar.OpenIDCredential}
			}
		}
		c.DigitalCredentials.Rules = append(c.DigitalCredentials.Rules,
			config.DCRule{AuthorizationDetailsType: rar.OpenIDCredential, Query: "pid", ACR: "urn:fedas:acr:wallet"})
		c.DigitalCredentials.PlainResponses = plain
	}
}

// seedClient is a native client written to one seed text. key nil sends
// no DPoP proof; pkce nil sends no PKCE.
type seedClient struct {
	e        *dcEnv
	clientID string
	key      *dpop.Key
	pkce     *sdk.PKCE
}

func (e *dcEnv) seed(tb testing.TB, clientID string, withPKCE bool) *seedClient {
	c := &seedClient{e: e, clientID: clientID, key: newDPoPKey(tb)}
	if withPKCE {
		p := sdk.NewPKCE()
		c.pkce = &p
	}
	return c
}

// seedAnswer is an endpoint's answer; tests read members by name only.
type seedAnswer struct {
	status int
	m      map[string]any
	raw    string
}

func (a seedAnswer) str(name string) string { v, _ := a.m[name].(string); return v }

// insufficient reports whether a is the seed texts' "more is needed"
// answer: error insufficient_authorization with an auth_session. The
// seeds' examples show 400; fedas answers 403 (FiPA-04 §5.2.2.1,
// docs/decisions.md Q2), so a seed client accepts either.
func (a seedAnswer) insufficient() bool {
	return (a.status == http.StatusBadRequest || a.status == http.StatusForbidden) &&
		a.str("error") == "insufficient_authorization" && a.str("auth_session") != ""
}

// do posts body with content type ct to path, with a DPoP proof when the
// client has a key.
func (c *seedClient) do(tb testing.TB, path, ct string, body string) seedAnswer {
	tb.Helper()
	endpoint := c.e.in.URL + path
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	require.NoError(tb, err)
	req.Header.Set("Content-Type", ct)
	if c.key != nil {
		proof, err := c.key.Proof(http.MethodPost, endpoint, "")
		require.NoError(tb, err)
		req.Header.Set("DPoP", proof)
	}
	resp, err := c.e.hc.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	out := seedAnswer{status: resp.StatusCode, raw: string(raw), m: map[string]any{}}
	require.NoError(tb, json.Unmarshal(raw, &out.m), string(raw))
	require.Equal(tb, "no-store", resp.Header.Get("Cache-Control"))
	return out
}

// form posts form parameters to the native endpoint.
func (c *seedClient) form(tb testing.TB, f url.Values) seedAnswer {
	tb.Helper()
	return c.do(tb, server.PathNative, "application/x-www-form-urlencoded", f.Encode())
}

// json posts a JSON body to the native endpoint.
func (c *seedClient) json(tb testing.TB, body map[string]any) seedAnswer {
	tb.Helper()
	b, err := json.Marshal(body)
	require.NoError(tb, err)
	return c.do(tb, server.PathNative, "application/json", string(b))
}

// initial is the client's first request: the common OAuth parameters
// (response_type and PKCE when the client uses PKCE) plus the dialect's.
func (c *seedClient) initial(tb testing.TB, params url.Values) seedAnswer {
	tb.Helper()
	f := url.Values{"client_id": {c.clientID}}
	if c.pkce != nil {
		f.Set("response_type", "code")
		f.Set("code_challenge", c.pkce.Challenge)
		f.Set("code_challenge_method", "S256")
	}
	for k, v := range params {
		f[k] = v
	}
	return c.form(tb, f)
}

// token redeems code (RFC 6749 §4.1.3) with the client's DPoP key and,
// when it used PKCE, its verifier.
func (c *seedClient) token(tb testing.TB, code string) seedAnswer {
	tb.Helper()
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {c.clientID}}
	if c.pkce != nil {
		f.Set("code_verifier", c.pkce.Verifier)
	}
	return c.do(tb, server.PathToken, "application/x-www-form-urlencoded", f.Encode())
}

// requireTokens checks a token response: DPoP-bound tokens (RFC 9449 §5).
func requireTokens(tb testing.TB, tok seedAnswer) {
	tb.Helper()
	require.Equal(tb, http.StatusOK, tok.status, tok.raw)
	require.NotEmpty(tb, tok.str("access_token"))
	require.Equal(tb, "DPoP", tok.str("token_type"))
}

// requireRedirected is the wallet's same-device return: the handle the
// verifier put in the client's openid4vp_redirect_uri under name.
func requireRedirected(tb testing.TB, redirect, name string) string {
	tb.Helper()
	ru, err := url.Parse(redirect)
	require.NoError(tb, err)
	require.Equal(tb, dcReturn, ru.Scheme+"://"+ru.Host+ru.Path, redirect)
	require.NotContains(tb, ru.Query(), "response_code", "the draft -00 client gets its own handle name")
	h := ru.Query().Get(name)
	require.GreaterOrEqual(tb, len(h), 22)
	return h
}

// TestDCDialect_Draft00: a client written to the federation draft -00
// appendix "Usage with Digital Credentials" (steps 2–26), speaking only its
// names: the initial request of its example (client_id, scope=profile,
// dc_api, login_hint=wallet, openid4vp_flow_type, openid4vp_redirect_uri),
// `type: digital_credentials_required` and `request` in the answer, the
// wallet's return carrying the handle as presentation_id, the follow-up
// {auth_session, presentation_id} as JSON (step 13), the DC API branch with
// {auth_session, vp_token} (step 6) and the cross-device poll with the
// auth_session alone reading `status: pending` (steps 19–22). The example
// omits response_type and PKCE; fedas requires both of a public client
// (docs/decisions.md "PKCE S256"; FiPA-04 §5.1), so the client sends them
// and a request without PKCE is refused with invalid_request.
func TestDCDialect_Draft00(t *testing.T) {
	for _, b := range dcBackends() {
		t.Run(b.name, func(t *testing.T) {
			e := newDCEnv(t, dcEnvOptions{store: b.store(t), x5c: true, edit: issuanceEdit(true)})
			start := func(t *testing.T, c *seedClient, extra ...string) seedAnswer {
				p := url.Values{"scope": {"profile"}, "login_hint": {"wallet"}}
				for i := 0; i+1 < len(extra); i += 2 {
					p.Set(extra[i], extra[i+1])
				}
				a := c.initial(t, p)
				require.True(t, a.insufficient(), a.raw)
				require.Equal(t, "digital_credentials_required", a.str("type"), a.raw)
				require.NotEmpty(t, a.str("request"), a.raw)
				return a
			}
			t.Run("same_device", func(t *testing.T) {
				c := e.seed(t, "dc-draft00", true)
				a := start(t, c, "dc_api", "false", "openid4vp_flow_type", "same_device", "openid4vp_redirect_uri", dcReturn)
				require.True(t, strings.HasPrefix(a.str("request"), "openid4vp://?"), a.str("request"))
				ans, err := e.wallet.Present(context.Background(), a.str("request"))
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, ans.Status, string(ans.Body))
				handle := requireRedirected(t, ans.RedirectURI, "presentation_id")
				done := c.json(t, map[string]any{"auth_session": a.str("auth_session"), "presentation_id": handle})
				require.Equal(t, http.StatusOK, done.status, done.raw)
				requireTokens(t, c.token(t, done.str("authorization_code")))
			})
			t.Run("dc_api", func(t *testing.T) {
				c := e.seed(t, "dc-draft00", true)
				a := start(t, c, "dc_api", "true")
				e.wallet.Knobs.Unencrypted = true // the DC API hands back a vp_token (step 5)
				data, err := e.wallet.DCAPI(a.str("request"), dcOrigin)
				e.wallet.Knobs.Unencrypted = false
				require.NoError(t, err)
				var got struct {
					VPToken json.RawMessage `json:"vp_token"`
				}
				require.NoError(t, json.Unmarshal(data, &got))
				require.NotEmpty(t, got.VPToken)
				done := c.json(t, map[string]any{"auth_session": a.str("auth_session"), "vp_token": got.VPToken})
				require.Equal(t, http.StatusOK, done.status, done.raw)
				requireTokens(t, c.token(t, done.str("authorization_code")))
			})
			t.Run("cross_device", func(t *testing.T) {
				c := e.seed(t, "dc-draft00", true)
				a := start(t, c, "dc_api", "false", "openid4vp_flow_type", "cross_device")
				as := a.str("auth_session")
				e.clock.Advance(11 * time.Second)
				p := c.json(t, map[string]any{"auth_session": as})
				require.True(t, p.insufficient(), p.raw)
				require.Equal(t, "pending", p.str("status"), p.raw)
				require.Equal(t, as, p.str("auth_session"))
				ans, err := e.wallet.Present(context.Background(), a.str("request"))
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, ans.Status, string(ans.Body))
				e.clock.Advance(11 * time.Second)
				done := c.json(t, map[string]any{"auth_session": as})
				require.Equal(t, http.StatusOK, done.status, done.raw)
				requireTokens(t, c.token(t, done.str("authorization_code")))
			})
			t.Run("example_without_pkce", func(t *testing.T) {
				c := e.seed(t, "dc-draft00", false)
				a := c.initial(t, url.Values{"response_type": {"code"}, "scope": {"profile"}, "dc_api": {"false"}, "login_hint": {"wallet"},
					"openid4vp_flow_type": {"same_device"}, "openid4vp_redirect_uri": {dcReturn}})
				require.Equal(t, http.StatusBadRequest, a.status, a.raw)
				require.Equal(t, "invalid_request", a.str("error"), a.raw)
			})
		})
	}
}

// TestDCDialect_PDI: a wallet written to "Presentation during Issuance" is
// the client: it asks fedas, the authorization server of a credential
// issuer, for an OID4VCI credential (authorization_details of type
// openid_credential, no response_type, no PKCE — the text forbids them —
// but DPoP, which binds the code instead: flow/request.go pkceByDPoP), gets
// `presentation` (the openid4vp:// request), presents its own PID to our
// verifier, takes `presentation_during_issuance_session` from the
// response_uri's 200 body, posts it with client_id and auth_session, gets
// an authorization_code and redeems it with its DPoP key alone; the token
// response carries the granted authorization_details (RFC 9396 §7). Also:
// its error follow-up error=access_denied&auth_session=… ends in
// access_denied; a session value from another sign-in does not complete
// this one (the text's session-fixation rationale); without DPoP and
// without PKCE the request is invalid_request; details the configured
// openid_credential type does not allow are invalid_authorization_details.
func TestDCDialect_PDI(t *testing.T) {
	for _, b := range dcBackends() {
		t.Run(b.name, func(t *testing.T) {
			e := newDCEnv(t, dcEnvOptions{store: b.store(t), edit: issuanceEdit(false)})
			ask := func(t *testing.T, c *seedClient) seedAnswer {
				a := c.initial(t, url.Values{"authorization_details": {ticketDetails}})
				require.True(t, a.insufficient(), a.raw)
				require.True(t, strings.HasPrefix(a.str("presentation"), "openid4vp://?"), a.raw)
				return a
			}
			present := func(t *testing.T, a seedAnswer) string {
				ans, err := e.wallet.Present(context.Background(), a.str("presentation"))
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, ans.Status, string(ans.Body))
				require.Empty(t, ans.RedirectURI, "the response_uri hands the session to the wallet itself")
				require.NotEmpty(t, ans.PresentationDuringIssuanceSession, string(ans.Body))
				return ans.PresentationDuringIssuanceSession
			}
			t.Run("issuance", func(t *testing.T) {
				c := e.seed(t, "dc-pdi", false)
				a := ask(t, c)
				pdis := present(t, a)
				done := c.form(t, url.Values{"client_id": {c.clientID}, "auth_session": {a.str("auth_session")}, "presentation_during_issuance_session": {pdis}})
				require.Equal(t, http.StatusOK, done.status, done.raw)
				tok := c.token(t, done.str("authorization_code"))
				requireTokens(t, tok)
				ad, err := json.Marshal(tok.m["authorization_details"])
				require.NoError(t, err)
				require.JSONEq(t, ticketDetails, string(ad))
			})
			// The code stands in for PKCE only with a proof of its key
			// (RFC 9449 §10): another key, or none, redeems nothing.
			for name, key := range map[string]*dpop.Key{"token_other_key": newDPoPKey(t), "token_no_proof": nil} {
				t.Run(name, func(t *testing.T) {
					c := e.seed(t, "dc-pdi", false)
					a := ask(t, c)
					done := c.form(t, url.Values{"auth_session": {a.str("auth_session")}, "presentation_during_issuance_session": {present(t, a)}})
					require.Equal(t, http.StatusOK, done.status, done.raw)
					c.key = key
					tok := c.token(t, done.str("authorization_code"))
					require.Equal(t, http.StatusBadRequest, tok.status, tok.raw)
					require.Empty(t, tok.str("access_token"))
				})
			}
			t.Run("wallet_error", func(t *testing.T) {
				c := e.seed(t, "dc-pdi", false)
				a := ask(t, c)
				r := c.form(t, url.Values{"error": {"access_denied"}, "auth_session": {a.str("auth_session")}})
				require.Equal(t, http.StatusBadRequest, r.status, r.raw)
				require.Equal(t, "access_denied", r.str("error"), r.raw)
			})
			t.Run("session_of_another_sign_in", func(t *testing.T) {
				victim, attacker := e.seed(t, "dc-pdi", false), e.seed(t, "dc-pdi", false)
				va := ask(t, victim)
				aa := ask(t, attacker)
				pdis := present(t, aa)
				r := victim.form(t, url.Values{"client_id": {"dc-pdi"}, "auth_session": {va.str("auth_session")}, "presentation_during_issuance_session": {pdis}})
				require.NotEqual(t, http.StatusOK, r.status, r.raw)
				require.Empty(t, r.str("authorization_code"))
			})
			t.Run("no_dpop_no_pkce", func(t *testing.T) {
				c := e.seed(t, "dc-pdi", false)
				c.key = nil
				r := c.initial(t, url.Values{"authorization_details": {ticketDetails}})
				require.Equal(t, http.StatusBadRequest, r.status, r.raw)
				require.Equal(t, "invalid_request", r.str("error"), r.raw)
			})
			for name, details := range map[string]string{
				"unknown_configuration": `[{"type":"openid_credential","credential_configuration_id":"org.example.other"}]`,
				"unknown_type":          `[{"type":"payment_initiation","amount":"10"}]`,
				"extra_member":          `[{"type":"openid_credential","credential_configuration_id":"` + ticketConfig + `","format":"dc+sd-jwt"}]`,
			} {
				t.Run(name, func(t *testing.T) {
					r := e.seed(t, "dc-pdi", false).initial(t, url.Values{"authorization_details": {details}})
					require.Equal(t, http.StatusBadRequest, r.status, r.raw)
					require.Equal(t, rar.ErrorCode, r.str("error"), r.raw)
				})
			}
		})
	}
}

// TestDCDialect_IA: a wallet written to OpenID4VCI 1.1 Interactive
// Authorization (on FiPA: openid/OpenID4VCI PR #736) sends an
// authorization request with interaction_types_supported=
// urn:openid:dcp:ia:openid4vp_presentation, reads insufficient_authorization
// with interaction_type_required and the openid4vp_request object, and
// answers with openid4vp_response (what dctest Wallet.Interactive built) —
// as a JSON object in a JSON body, and as its text in a form — to get an
// authorization_code. The request parameter alone selects the vocabulary,
// so a client configured with the wallet dialect works too. A wallet's
// OpenID4VP error inside openid4vp_response ends in access_denied; a
// request whose interaction_types_supported lacks the presentation type is
// 400 missing_interaction_type.
func TestDCDialect_IA(t *testing.T) {
	for _, b := range dcBackends() {
		t.Run(b.name, func(t *testing.T) {
			e := newDCEnv(t, dcEnvOptions{store: b.store(t), edit: issuanceEdit(false)})
			ask := func(t *testing.T, c *seedClient, types string) seedAnswer {
				a := c.initial(t, url.Values{"authorization_details": {ticketDetails}, "interaction_types_supported": {types}})
				require.True(t, a.insufficient(), a.raw)
				require.Equal(t, presentation.InteractionType, a.str("interaction_type_required"), a.raw)
				obj, ok := a.m["openid4vp_request"].(map[string]any)
				require.True(t, ok, "openid4vp_request is an object: %s", a.raw)
				jar, _ := obj["request"].(string)
				require.NotEmpty(t, jar, a.raw)
				// The wallet returns the response to the endpoint it asked
				// (OpenID4VCI 1.1): the signed request names it, and the
				// wallet checks that before it posts (expected_url).
				parts := strings.Split(jar, ".")
				require.Len(t, parts, 3)
				payload, err := base64.RawURLEncoding.DecodeString(parts[1])
				require.NoError(t, err)
				var ro map[string]any
				require.NoError(t, json.Unmarshal(payload, &ro))
				require.Equal(t, "iae_post.jwt", ro["response_mode"])
				require.Equal(t, e.in.URL+server.PathNative, ro["expected_url"])
				require.NotContains(t, ro, "response_uri")
				return a
			}
			respond := func(t *testing.T, a seedAnswer) json.RawMessage {
				req, err := json.Marshal(a.m["openid4vp_request"])
				require.NoError(t, err)
				resp, err := e.wallet.Interactive(string(req))
				require.NoError(t, err)
				return resp
			}
			for _, tc := range []struct {
				name, client string
				asForm       bool
			}{
				{"ia_client_json", "dc-ia", false},
				{"ia_client_form", "dc-ia", true},
				{"wallet_dialect_client_json", "demo-app", false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					c := e.seed(t, tc.client, true)
					a := ask(t, c, presentation.InteractionType+",urn:openid:dcp:ia:redirect_to_web")
					resp := respond(t, a)
					var done seedAnswer
					if tc.asForm {
						done = c.form(t, url.Values{"auth_session": {a.str("auth_session")}, "openid4vp_response": {string(resp)}})
					} else {
						done = c.json(t, map[string]any{"auth_session": a.str("auth_session"), "openid4vp_response": resp})
					}
					require.Equal(t, http.StatusOK, done.status, done.raw)
					tok := c.token(t, done.str("authorization_code"))
					requireTokens(t, tok)
					ad, err := json.Marshal(tok.m["authorization_details"])
					require.NoError(t, err)
					require.JSONEq(t, ticketDetails, string(ad))
				})
			}
			t.Run("wallet_error", func(t *testing.T) {
				c := e.seed(t, "dc-ia", true)
				a := ask(t, c, presentation.InteractionType)
				r := c.json(t, map[string]any{"auth_session": a.str("auth_session"),
					"openid4vp_response": map[string]string{"error": "access_denied", "error_description": "no credential"}})
				require.Equal(t, http.StatusBadRequest, r.status, r.raw)
				require.Equal(t, "access_denied", r.str("error"), r.raw)
			})
			for _, tc := range []struct{ name, client, types string }{
				{"ia_client_without_types", "dc-ia", ""},
				{"ia_client_web_only", "dc-ia", "urn:openid:dcp:ia:redirect_to_web"},
				{"ia_client_pre_fipa_name", "dc-ia", "openid4vp_presentation"},
				{"wallet_dialect_web_only", "demo-app", "urn:openid:dcp:ia:redirect_to_web"},
			} {
				t.Run("missing_interaction_type/"+tc.name, func(t *testing.T) {
					p := url.Values{"authorization_details": {ticketDetails}}
					if tc.types != "" {
						p.Set("interaction_types_supported", tc.types)
					}
					r := e.seed(t, tc.client, true).initial(t, p)
					require.Equal(t, http.StatusBadRequest, r.status, r.raw)
					require.Equal(t, "missing_interaction_type", r.str("error"), r.raw)
					require.Empty(t, r.str("auth_session"))
				})
			}
		})
	}
}
