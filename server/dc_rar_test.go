package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dc/dctest"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage/redistest"
)

// The SCA payment of these tests: a RAR type whose details map onto the
// EUDI TS12 payment confirmation (§4.3.1 urn:eudi:sca:payment:1: a payload
// object with transaction_id, payee{name,id}, currency, amount), approved
// with a presentation.
const (
	scaType   = "sca_payment"
	scaTDType = "urn:eudi:sca:payment:1"
	// scaDetails is what the app sends (whitespace and member order the
	// server normalises); scaCanonical what the grant carries back.
	scaDetails = `[ {"type":"sca_payment", "transaction_id":"8D8AC610-566D-4EF0-9C22-186B2A5ED793",
	  "payee":{"name":"Merchant A","id":"DE89370400440532013000"}, "currency":"EUR", "amount":123.50} ]`
	scaCanonical = `[{"amount":123.50,"currency":"EUR","payee":{"id":"DE89370400440532013000","name":"Merchant A"},` +
		`"transaction_id":"8D8AC610-566D-4EF0-9C22-186B2A5ED793","type":"sca_payment"}]`
	// scaTD is the transaction_data entry the wallet must be shown: the
	// canonical JSON of the mapped payment (OpenID4VP 1.0 §5.1).
	scaTD = `{"credential_ids":["pid"],"payload":{"amount":123.50,"currency":"EUR","payee":{"id":"DE89370400440532013000","name":"Merchant A"},` +
		`"transaction_id":"8D8AC610-566D-4EF0-9C22-186B2A5ED793"},"transaction_data_hashes_alg":["sha-256"],"type":"urn:eudi:sca:payment:1"}`
	// unmappedDetails is a type without a transaction_data mapping.
	unmappedDetails = `[{"type":"account_info","iban":"DE89370400440532013000"}]`
)

// rarDCConfig adds the payment type (mapped) and account_info (not
// mapped), allows both to demo-app only, and puts a rule first that asks
// a PID presentation of every request carrying a payment.
func rarDCConfig(c *config.Config) {
	c.AuthorizationDetailsTypes = append(c.AuthorizationDetailsTypes,
		config.AuthorizationDetailsType{Type: scaType, Fields: map[string]config.AuthorizationDetailsField{
			"transaction_id": {Required: true, Type: "string"},
			"payee":          {Required: true, Type: "object"},
			"currency":       {Required: true, Type: "string"},
			"amount":         {Required: true, Type: "number"},
		}, TransactionData: &config.TransactionDataMapping{Type: scaTDType, CredentialIDs: []string{"pid"},
			Payload: map[string]string{"payload.transaction_id": "transaction_id", "payload.payee": "payee", "payload.currency": "currency", "payload.amount": "amount"}}},
		config.AuthorizationDetailsType{Type: "account_info", Fields: map[string]config.AuthorizationDetailsField{"iban": {Type: "string"}}})
	for i := range c.Clients {
		if c.Clients[i].ID == "demo-app" {
			c.Clients[i].AuthorizationDetailsTypes = []string{scaType, "account_info"}
		}
	}
	c.DigitalCredentials.Rules = append([]config.DCRule{{AuthorizationDetailsType: scaType, Query: "pid", ACR: "urn:fedas:acr:sca"}},
		c.DigitalCredentials.Rules...)
}

// tokenCall posts form to the token endpoint with a DPoP proof of the
// app's key and returns status and raw body.
func (a *dcApp) tokenCall(tb testing.TB, form url.Values) (int, string) {
	tb.Helper()
	endpoint := a.e.in.URL + server.PathToken
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	require.NoError(tb, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	proof, err := a.key.Proof(http.MethodPost, endpoint, "")
	require.NoError(tb, err)
	req.Header.Set("DPoP", proof)
	resp, err := a.e.hc.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// introspectRaw introspects tok as the confidential demo-partner.
func (e *dcEnv) introspectRaw(tb testing.TB, tok string) string {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, e.in.URL+server.PathIntrospect, strings.NewReader(url.Values{"token": {tok}}.Encode()))
	require.NoError(tb, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("demo-partner", partnerSecret)
	resp, err := e.hc.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	require.Equal(tb, http.StatusOK, resp.StatusCode, string(raw))
	return string(raw)
}

func jsonString(tb testing.TB, raw, member string) string {
	tb.Helper()
	var m map[string]any
	require.NoError(tb, json.Unmarshal([]byte(raw), &m), raw)
	s, _ := m[member].(string)
	return s
}

// requireSCARequest asserts the signed request object the wallet verified
// carries exactly the mapped payment as its one transaction_data entry.
func requireSCARequest(tb testing.TB, ans *dctest.Answer) {
	tb.Helper()
	require.NotNil(tb, ans.Request)
	require.Equal(tb, []string{base64.RawURLEncoding.EncodeToString([]byte(scaTD))}, ans.Request.TransactionData)
}

// redeemSCA redeems code and asserts the grant's authorization_details in
// the token response, in introspection, and again after a DPoP-bound
// refresh (RFC 9396 §7, §9.1).
func redeemSCA(t *testing.T, e *dcEnv, a *dcApp, code string) {
	t.Helper()
	want := `"authorization_details":` + scaCanonical
	st, tr := a.tokenCall(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {a.clientID}, "code_verifier": {a.pkce.Verifier}})
	require.Equal(t, http.StatusOK, st, tr)
	require.Contains(t, tr, want)
	require.Contains(t, e.introspectRaw(t, jsonString(t, tr, "access_token")), want)
	rt := jsonString(t, tr, "refresh_token")
	require.NotEmpty(t, rt, tr)
	st, ref := a.tokenCall(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {a.clientID}, "refresh_token": {rt}})
	require.Equal(t, http.StatusOK, st, ref)
	require.Contains(t, ref, want)
	require.Contains(t, e.introspectRaw(t, jsonString(t, ref, "access_token")), want)
}

// TestDCRAR_PaymentApproval: a payment in authorization_details (RFC
// 9396) is approved with a presentation end to end over real HTTPS, memory
// and Redis, with DPoP: the rule for its type asks the PID; the signed
// request object carries the payment mapped onto transaction_data
// (OpenID4VP 1.0 §5.1, TS12 urn:eudi:sca:payment:1); the wallet's KB-JWT
// hashes it; the code's token response, introspection and refresh return
// the same canonical authorization_details; the acr is the rule's. Form
// text on the same-device path, a JSON-body array on the cross-device path.
func TestDCRAR_PaymentApproval(t *testing.T) {
	for _, b := range dcBackends() {
		t.Run(b.name, func(t *testing.T) {
			e := newDCEnv(t, dcEnvOptions{store: b.store(t), edit: rarDCConfig})
			t.Run("form same device", func(t *testing.T) {
				a := e.app(t, "demo-app")
				ch := a.initial(t, "scope", "openid profile offline_access", "authorization_details", scaDetails,
					"openid4vp_flow_type", "same_device", "openid4vp_redirect_uri", dcReturn)
				requireDCChallenge(t, ch, "same_device")
				ans, err := e.wallet.Present(context.Background(), ch.s("credentials_request"))
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, ans.Status, string(ans.Body))
				requireSCARequest(t, ans)
				ru, _ := url.Parse(ans.RedirectURI)
				done := a.post(t, url.Values{"auth_session": {ch.s("auth_session")}, "response_code": {ru.Query().Get("response_code")}})
				require.Equal(t, http.StatusOK, done.status, string(done.raw))
				redeemSCA(t, e, a, done.s("authorization_code"))
			})
			t.Run("json cross device", func(t *testing.T) {
				a := e.app(t, "demo-app")
				body, _ := json.Marshal(map[string]any{"client_id": "demo-app", "response_type": "code", "scope": "openid profile offline_access",
					"code_challenge": a.pkce.Challenge, "code_challenge_method": "S256", "openid4vp_flow_type": "cross_device",
					"authorization_details": json.RawMessage(scaDetails)})
				ch := a.post(t, nil, string(body))
				requireDCChallenge(t, ch, "cross_device")
				ans, err := e.wallet.Present(context.Background(), ch.s("credentials_request"))
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, ans.Status, string(ans.Body))
				requireSCARequest(t, ans)
				e.clock.Advance(6 * time.Second)
				done := a.post(t, url.Values{"auth_session": {ch.s("auth_session")}})
				require.Equal(t, http.StatusOK, done.status, string(done.raw))
				redeemSCA(t, e, a, done.s("authorization_code"))
			})
		})
	}
}

// TestDCRAR_KBJWTHashes: the wallet's KB-JWT carries one
// transaction_data_hashes entry, sha-256 over the exact base64url string
// of the request object (OpenID4VP 1.0 App. B.3.3.1). Seen on the wire:
// plain direct_post (plain_responses) lets the test read what the wallet
// posted to our response_uri.
func TestDCRAR_KBJWTHashes(t *testing.T) {
	var mu sync.Mutex
	var posted []string
	e := newDCEnv(t, dcEnvOptions{edit: func(c *config.Config) { rarDCConfig(c); c.DigitalCredentials.PlainResponses = true },
		observe: func(x servertest.Exchange) {
			if x.Request.URL.Path == server.PathDCResponse {
				mu.Lock()
				posted = append(posted, string(x.RequestBody))
				mu.Unlock()
			}
		}})
	e.wallet.Knobs.Unencrypted = true
	a := e.app(t, "demo-app")
	ch := a.initial(t, "authorization_details", scaDetails, "openid4vp_flow_type", "same_device", "openid4vp_redirect_uri", dcReturn)
	requireDCChallenge(t, ch, "same_device")
	ans, err := e.wallet.Present(context.Background(), ch.s("credentials_request"))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, ans.Status, string(ans.Body))
	mu.Lock()
	require.Len(t, posted, 1)
	form, err := url.ParseQuery(posted[0])
	mu.Unlock()
	require.NoError(t, err)
	var vp map[string][]string
	require.NoError(t, json.Unmarshal([]byte(form.Get("vp_token")), &vp))
	require.Len(t, vp["pid"], 1)
	parts := strings.Split(vp["pid"][0], "~")
	kb := strings.Split(parts[len(parts)-1], ".")
	require.Len(t, kb, 3)
	payload, err := base64.RawURLEncoding.DecodeString(kb[1])
	require.NoError(t, err)
	var claims map[string]any
	require.NoError(t, json.Unmarshal(payload, &claims))
	require.Equal(t, []any{dctest.TDHash(ans.Request.TransactionData[0])}, claims["transaction_data_hashes"])
	ru, _ := url.Parse(ans.RedirectURI)
	done := a.post(t, url.Values{"auth_session": {ch.s("auth_session")}, "response_code": {ru.Query().Get("response_code")}})
	require.Equal(t, http.StatusOK, done.status, string(done.raw))
}

// TestDCRAR_WalletTampering: a wallet that hashes altered transaction
// data, or omits the hashes, gets the app 400 access_denied and no code
// (OpenID4VP 1.0 App. B.3.3: the presentation approves nothing else).
func TestDCRAR_WalletTampering(t *testing.T) {
	for _, b := range dcBackends() {
		t.Run(b.name, func(t *testing.T) {
			e := newDCEnv(t, dcEnvOptions{store: b.store(t), edit: rarDCConfig})
			for _, tc := range []struct {
				name  string
				knobs dctest.Knobs
			}{
				{"altered transaction data", dctest.Knobs{AlterTransactionData: true}},
				{"hashes omitted", dctest.Knobs{OmitTDHashes: true}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					e.wallet.Knobs = tc.knobs
					defer func() { e.wallet.Knobs = dctest.Knobs{} }()
					a := e.app(t, "demo-app")
					ch := a.initial(t, "authorization_details", scaDetails, "openid4vp_flow_type", "same_device", "openid4vp_redirect_uri", dcReturn)
					requireDCChallenge(t, ch, "same_device")
					ans, err := e.wallet.Present(context.Background(), ch.s("credentials_request"))
					require.NoError(t, err)
					requireSCARequest(t, ans)
					ru, _ := url.Parse(ans.RedirectURI)
					r := a.post(t, url.Values{"auth_session": {ch.s("auth_session")}, "response_code": {ru.Query().Get("response_code")}})
					require.Equal(t, http.StatusBadRequest, r.status, string(r.raw))
					require.Equal(t, "access_denied", r.s("error"))
					require.Empty(t, r.s("authorization_code"))
					require.NotContains(t, string(r.raw), "Merchant")
				})
			}
		})
	}
}

// TestDCRAR_Refusals: authorization_details a presentation cannot approve
// are refused at the initial request with 400 invalid_authorization_details
// (RFC 9396 §5) and nothing is stored in Redis (no auth session, live
// reservation, verifier transaction, code or token): a type without a
// transaction_data mapping while a rule asks a presentation (alone, or
// beside a mapped payment), and a type the client may not request.
func TestDCRAR_Refusals(t *testing.T) {
	rs := redistest.Start(t)
	e := newDCEnv(t, dcEnvOptions{store: redisStore(t, rs.URL()), edit: rarDCConfig})
	opt, err := redis.ParseURL(rs.URL())
	require.NoError(t, err)
	rc := redis.NewClient(opt)
	t.Cleanup(func() { _ = rc.Close() })
	stored := func() []string {
		keys, err := rc.Keys(context.Background(), "fedas:*").Result()
		require.NoError(t, err)
		var out []string
		for _, k := range keys {
			if !strings.HasPrefix(k, "fedas:used:") { // the DPoP proof's jti (RFC 9449 §11.1) is spent by design
				out = append(out, k)
			}
		}
		return out
	}
	both := strings.Replace(scaCanonical, `]`, `,{"type":"account_info"}]`, 1)
	for _, tc := range []struct {
		name, client string
		extra        []string
	}{
		{"unmapped type with login_hint=wallet", "demo-app", []string{"login_hint", "wallet", "authorization_details", unmappedDetails}},
		{"unmapped type beside the payment", "demo-app", []string{"authorization_details", both}},
		{"payment not allowed for the client", "dc-draft00", []string{"authorization_details", scaDetails}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := stored()
			a := e.app(t, tc.client)
			r := a.initial(t, append(tc.extra, "openid4vp_flow_type", "same_device", "openid4vp_redirect_uri", dcReturn)...)
			require.Equal(t, http.StatusBadRequest, r.status, string(r.raw))
			require.Equal(t, "invalid_authorization_details", r.s("error"), string(r.raw))
			require.NotContains(t, r.m, "auth_session")
			require.NotContains(t, string(r.raw), "Merchant")
			require.ElementsMatch(t, before, stored())
		})
	}
}
