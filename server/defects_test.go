package server_test

// End-to-end tests for defects found by black-box testing of the binary
// before the flow.Engine redesign (SECURITY-RESULTS.md). Each test starts
// real servers on loopback and drives them over HTTP as a native app, a
// browser or an upstream AS would, and fails on the old code.

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server/servertest"
)

// fastHash is a minimum-cost bcrypt hash of pw.
func fastHash(pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
}

// withHeader sets a request header.
func withHeader(k, v string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

// withTokenProof adds a DPoP proof for k at htu bound to accessToken (ath,
// RFC 9449 §4.2).
func withTokenProof(t *testing.T, k *dpop.Key, htu, accessToken string) func(*http.Request) {
	return func(r *http.Request) {
		p, err := k.Proof(http.MethodPost, htu, accessToken)
		require.NoError(t, err)
		r.Header.Set("DPoP", p)
	}
}

func (in instance) appCompleteURL() string { return in.URL + "/native/app/complete" }

// appCompleteWith posts to the app completion API with opts (Authorization,
// DPoP headers).
func (in instance) appCompleteWith(t *testing.T, form url.Values, opts ...func(*http.Request)) reply {
	t.Helper()
	return post(t, in.appCompleteURL(), form, opts...)
}

// codeForm is a token request for an authorization code.
func codeForm(client, code string, pk sdk.PKCE) url.Values {
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {pk.Verifier}}
	if client != "" {
		f.Set("client_id", client)
	}
	return f
}

// answerPassword answers a password challenge r at endpoint as user.
func answerPassword(t *testing.T, endpoint string, r reply, user, pw string, opts ...func(*http.Request)) reply {
	t.Helper()
	requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
	ch, _ := r.body["challenge"].(map[string]any)
	require.Equal(t, "password", ch["type"], r.raw)
	f := url.Values{"auth_session": {r.str("auth_session")}, "password": {pw}}
	if inputs, _ := ch["inputs"].(map[string]any); inputs["username"] != nil {
		f.Set("username", user)
	}
	return post(t, endpoint, f, opts...)
}

// userToken signs user in to client at in (optionally DPoP-bound to k) and
// returns the token response.
func userToken(t *testing.T, in instance, client, user, pw, scope string, k *dpop.Key) sdk.Token {
	t.Helper()
	c := in.Client(t, client)
	if k != nil {
		c.DPoP = k
	}
	code, pk, err := c.Authorize(context.Background(), url.Values{"scope": {scope}}, userUI(user, pw, ""))
	require.NoError(t, err)
	tok, err := c.Exchange(context.Background(), code, pk)
	require.NoError(t, err)
	require.NotEmpty(t, tok.AccessToken)
	return tok
}

// bankAppOffline lets the bank app get refresh tokens.
func bankAppOffline(c *config.Config) {
	for i := range c.Clients {
		if c.Clients[i].ID == "bank-app" {
			c.Clients[i].Scopes = []string{"openid", "offline_access"}
		}
	}
}

// requireInvalidToken asserts RFC 6750 §3 / RFC 9449 §7.1: 401 invalid_token
// with a WWW-Authenticate challenge, and nothing completed.
func requireInvalidToken(t *testing.T, r reply) {
	t.Helper()
	requireNoCompletion(t, r, http.StatusUnauthorized, "invalid_token")
	require.NotEmpty(t, r.header.Values("WWW-Authenticate"), r.raw)
	require.Contains(t, strings.Join(r.header.Values("WWW-Authenticate"), ", "), `error="invalid_token"`)
}

// Defect 1 (RFC 9449 §7.1; RFC 6750 §2.1): the app completion API took a
// DPoP-bound access token as a plain Bearer token with no proof, and a
// refresh token as the Bearer. Now: 401 invalid_token with WWW-Authenticate
// for each, the deep link unconsumed; the DPoP scheme with a proof for the
// token's key and the token (ath) completes.
func TestDefect_AppCompletionTokenBinding(t *testing.T) {
	in := wrap(start(t, nil, appSecConfig, bankAppOffline))
	k := dpopKey(t)
	bound := userToken(t, in, "bank-app", "carol", "carol-pw", "openid offline_access", k)
	require.Equal(t, "DPoP", bound.TokenType)
	require.NotEmpty(t, bound.RefreshToken)
	plain := userToken(t, in, "bank-app", "carol", "carol-pw", "openid offline_access", nil)
	require.True(t, strings.EqualFold("Bearer", plain.TokenType), plain.TokenType)
	require.NotEmpty(t, plain.RefreshToken)

	r, pk := in.localDeepLink(t, nil)
	ru := requireDeepLink(t, r, "demo-app")
	as := r.str("auth_session")
	form := url.Values{"client_id": {"demo-app"}, "request_uri": {ru}}
	htu := in.appCompleteURL()

	refused := []struct {
		name string
		opts []func(*http.Request)
	}{
		{"DPoP-bound token as Bearer without proof", []func(*http.Request){withHeader("Authorization", "Bearer "+bound.AccessToken)}},
		{"DPoP-bound token as Bearer with a proof", []func(*http.Request){withHeader("Authorization", "Bearer "+bound.AccessToken), withTokenProof(t, k, htu, bound.AccessToken)}},
		{"DPoP scheme without proof", []func(*http.Request){withHeader("Authorization", "DPoP "+bound.AccessToken)}},
		{"DPoP scheme, proof without ath", []func(*http.Request){withHeader("Authorization", "DPoP "+bound.AccessToken), withProof(t, k, htu)}},
		{"DPoP scheme, proof of another key", []func(*http.Request){withHeader("Authorization", "DPoP "+bound.AccessToken), withTokenProof(t, dpopKey(t), htu, bound.AccessToken)}},
		{"DPoP scheme, proof for another endpoint", []func(*http.Request){withHeader("Authorization", "DPoP "+bound.AccessToken), withTokenProof(t, k, in.native(), bound.AccessToken)}},
		{"DPoP-bound refresh token as Bearer", []func(*http.Request){withHeader("Authorization", "Bearer "+bound.RefreshToken)}},
		{"DPoP-bound refresh token with DPoP and a proof", []func(*http.Request){withHeader("Authorization", "DPoP "+bound.RefreshToken), withTokenProof(t, k, htu, bound.RefreshToken)}},
		{"refresh token as Bearer", []func(*http.Request){withHeader("Authorization", "Bearer "+plain.RefreshToken)}},
		{"bearer token with the DPoP scheme", []func(*http.Request){withHeader("Authorization", "DPoP "+plain.AccessToken), withTokenProof(t, k, htu, plain.AccessToken)}},
		{"token in the body", []func(*http.Request){}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			f := form
			if len(tc.opts) == 0 {
				f = url.Values{"client_id": {"demo-app"}, "request_uri": {ru}, "access_token": {plain.AccessToken}}
			}
			requireInvalidToken(t, in.appCompleteWith(t, f, tc.opts...))
		})
	}

	// None of that consumed the deep link: the bound token with the DPoP
	// scheme and a proof for its key and this token completes it.
	done := in.appCompleteWith(t, form, withHeader("Authorization", "DPoP "+bound.AccessToken), withTokenProof(t, k, htu, bound.AccessToken))
	require.Equal(t, http.StatusOK, done.status, done.raw)
	require.NotEmpty(t, done.str("authorization_code"))
	out := post(t, in.native(), url.Values{"auth_session": {as}, "authorization_code": {done.str("authorization_code")}})
	require.Equal(t, http.StatusOK, out.status, out.raw)
	tok := post(t, in.token(), codeForm("demo-app", out.str("authorization_code"), pk))
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	require.Equal(t, "carol", in.introspect(t, tok.str("access_token")).str("sub"))

	// An unbound access token with the Bearer scheme works as before.
	r, _ = in.localDeepLink(t, nil)
	done = in.appCompleteWith(t, url.Values{"client_id": {"demo-app"}, "request_uri": {requireDeepLink(t, r, "demo-app")}}, withHeader("Authorization", "Bearer "+plain.AccessToken))
	require.Equal(t, http.StatusOK, done.status, done.raw)
}

// fedasHopCode runs a native sign-in at as1 federated to the fedas as2
// (pair): the session at as1 bound to k (nil: no DPoP), the device at as2
// without proofs (docs/decisions.md Q5). It returns as1's code.
func fedasHopCode(t *testing.T, as1 instance, k *dpop.Key) (string, sdk.PKCE) {
	t.Helper()
	proof := func(htu string) []func(*http.Request) {
		if k == nil {
			return nil
		}
		return []func(*http.Request){withProof(t, k, htu)}
	}
	pk := sdk.NewPKCE()
	r := post(t, as1.native(), url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"},
		"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}, proof(as1.native())...)
	requireOAuthError(t, r, http.StatusBadRequest, "insufficient_information")
	fed := post(t, as1.native(), url.Values{"auth_session": {r.str("auth_session")}, "email": {"carol@as2.example"}}, proof(as1.native())...)
	requireFederate(t, fed)
	r = postBody(t, fed.str("federation_uri"), "application/x-www-form-urlencoded", fed.str("federation_body"))
	r = answerPassword(t, fed.str("federation_uri"), r, "carol", "carol-pw")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	r = post(t, fed.str("response_uri"), url.Values{"auth_session": {fed.str("auth_session")}, "authorization_code": {r.str("authorization_code")}}, proof(fed.str("response_uri"))...)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	return r.str("authorization_code"), pk
}

// mockHopCode runs a native sign-in at e.as1 federated to the mock ds1,
// the session bound to k (nil: no DPoP). It returns as1's code.
func mockHopCode(t *testing.T, e *mockFed, client string, k *dpop.Key, auth ...func(*http.Request)) (string, sdk.PKCE) {
	t.Helper()
	opts := func(htu string) []func(*http.Request) {
		o := append([]func(*http.Request){}, auth...)
		if k != nil {
			o = append(o, withProof(t, k, htu))
		}
		return o
	}
	pk := sdk.NewPKCE()
	in := e.as1
	r := post(t, in.native(), url.Values{"client_id": {client}, "response_type": {"code"}, "scope": {"openid"},
		"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}, opts(in.native())...)
	requireOAuthError(t, r, http.StatusBadRequest, "insufficient_information")
	fed := post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "bank": {"ds1"}}, opts(in.native())...)
	requireFederate(t, fed)
	code := atDownstream(t, fed)
	r = post(t, fed.str("response_uri"), url.Values{"auth_session": {fed.str("auth_session")}, "authorization_code": {code}}, opts(fed.str("response_uri"))...)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	return r.str("authorization_code"), pk
}

// requireBoundCode redeems three codes from mint (each failure burns its
// code): no proof → invalid_dpop_proof, a proof of another key →
// invalid_dpop_proof, a proof of k → 200 with token_type DPoP.
func requireBoundCode(t *testing.T, tokenURL string, k *dpop.Key, mint func() url.Values, auth ...func(*http.Request)) {
	t.Helper()
	withOpts := func(extra ...func(*http.Request)) []func(*http.Request) {
		return append(append([]func(*http.Request){}, auth...), extra...)
	}
	requireOAuthError(t, post(t, tokenURL, mint(), withOpts()...), http.StatusBadRequest, "invalid_dpop_proof")
	requireOAuthError(t, post(t, tokenURL, mint(), withOpts(withProof(t, dpopKey(t), tokenURL))...), http.StatusBadRequest, "invalid_dpop_proof")
	r := post(t, tokenURL, mint(), withOpts(withProof(t, k, tokenURL))...)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "DPoP", r.str("token_type"))
}

// Defect 2 (RFC 9449 §10; FiPA-04 §9.5.1): a session bound to the device
// key K1 and federated yielded a code redeemable without a proof or with
// another key's. Now our code after a hop is bound to K1, through another
// fedas and through a mock downstream; and in the downstream role a PAR's
// dpop_jkt binds our code even when we federate on.
func TestDefect_DPoPBindingAcrossHops(t *testing.T) {
	t.Run("fedas downstream", func(t *testing.T) {
		as1, _ := pair(t, nil, nil, nil, nil)
		k1 := dpopKey(t)
		requireBoundCode(t, as1.token(), k1, func() url.Values {
			code, pk := fedasHopCode(t, as1, k1)
			return codeForm("demo-app", code, pk)
		})
	})
	t.Run("mock downstream", func(t *testing.T) {
		e := newMockFed(t, mockFedOpts{})
		k1 := dpopKey(t)
		requireBoundCode(t, e.as1.token(), k1, func() url.Values {
			code, pk := mockHopCode(t, e, "demo-app", k1)
			return codeForm("demo-app", code, pk)
		})
	})
	t.Run("downstream role: PAR dpop_jkt, federated on", func(t *testing.T) {
		as2, kj := chainedDownstream(t)
		requireBoundCode(t, as2.token(), kj, func() url.Values {
			code, pk := chainedDownstreamCode(t, as2, kj)
			return codeForm("", code, pk)
		}, basic("fed-partner", fedPartnerSecret))
	})
}

// chainedDownstream starts AS3 and AS2, where AS2 serves the federating
// client fed-partner (client_secret_basic) and routes it on to AS3. It
// returns AS2 and the key fed-partner names in its PARs.
func chainedDownstream(t *testing.T) (instance, *dpop.Key) {
	t.Helper()
	k23 := newFedKey(t, "k23")
	as3 := wrap(start(t, nil, func(c *config.Config) {
		c.Clients = append(c.Clients, federatingClient("as2", k23, true))
	}))
	as2 := wrap(start(t, nil, func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "fed-partner", Federating: true, TokenEndpointAuthMethod: "client_secret_basic",
			SecretSHA256: config.SecretDigest(fedPartnerSecret), Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code"},
			RedirectURIs: []string{"https://fed.example/web-cb"}})
		c.Downstreams = append(c.Downstreams, downstreamOf("as3", as3.URL, "as2", k23))
		c.Routes = append(c.Routes, config.Route{Downstream: "as3", Clients: []string{"fed-partner"}})
	}))
	return as2, dpopKey(t)
}

// chainedDownstreamCode plays fed-partner and its device: a PAR at as2
// with dpop_jkt (kj's, when kj is set), client_id + request_uri at as2's
// native endpoint, the hop to AS3 signed in as carol, AS3's code posted to
// as2's response_uri — all without proofs. It returns as2's code.
func chainedDownstreamCode(t *testing.T, as2 instance, kj *dpop.Key) (string, sdk.PKCE) {
	t.Helper()
	pk := sdk.NewPKCE()
	f := url.Values{"response_type": {"code"}, "client_id": {"fed-partner"}, "scope": {"openid"}, "state": {"state-12345"},
		"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}
	if kj != nil {
		f.Set("dpop_jkt", kj.JKT)
	}
	par := post(t, as2.parURL(), f, basic("fed-partner", fedPartnerSecret))
	require.Equal(t, http.StatusCreated, par.status, par.raw)
	fed := post(t, as2.native(), url.Values{"client_id": {"fed-partner"}, "request_uri": {par.str("request_uri")}})
	requireFederate(t, fed)
	r := postBody(t, fed.str("federation_uri"), "application/x-www-form-urlencoded", fed.str("federation_body"))
	r = answerPassword(t, fed.str("federation_uri"), r, "carol", "carol-pw")
	require.Equal(t, http.StatusOK, r.status, r.raw)
	r = post(t, fed.str("response_uri"), url.Values{"auth_session": {fed.str("auth_session")}, "authorization_code": {r.str("authorization_code")}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	return r.str("authorization_code"), pk
}

// fpConfFallback runs fp-conf to its deep link, reports no app and
// returns the redirect_to_web request_uri (a push of ours for the browser
// endpoint).
func fpConfFallback(t *testing.T, in instance) (string, sdk.PKCE) {
	t.Helper()
	pk := sdk.NewPKCE()
	r := post(t, in.native(), url.Values{"client_id": {"fp-conf"}, "response_type": {"code"}, "scope": {"openid"},
		"native_callback_uri": {fpConfCallback}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}},
		basic("fp-conf", "fp-conf-secret"))
	requireDeepLink(t, r, "fp-conf")
	web := post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "deep_link_unavailable": {"true"}}, basic("fp-conf", "fp-conf-secret"))
	requireOAuthError(t, web, http.StatusForbidden, "redirect_to_web")
	require.NotEmpty(t, web.str("request_uri"), web.raw)
	return web.str("request_uri"), pk
}

// fedPartnerPAR pushes a request of the federating fed-partner (with a
// native callback, so that our app serves it) and returns its request_uri.
func fedPartnerPAR(t *testing.T, in instance, extra url.Values) (string, sdk.PKCE) {
	t.Helper()
	pk := sdk.NewPKCE()
	f := url.Values{"response_type": {"code"}, "client_id": {"fed-partner"}, "redirect_uri": {"https://fed.example/web-cb"},
		"scope": {"openid"}, "state": {"state-12345"}, "native_callback_uri": {"https://app.example/cb"},
		"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}
	for k, v := range extra {
		f[k] = v
	}
	par := post(t, in.parURL(), f, basic("fed-partner", fedPartnerSecret))
	require.Equal(t, http.StatusCreated, par.status, par.raw)
	return par.str("request_uri"), pk
}

// Defect 3 (docs/decisions.md Q3; RFC 9126 §4): the request_uri of our own
// redirect_to_app deep link, or of our redirect_to_web fallback, was
// accepted at the native endpoint as if a client had pushed it. Now it is
// invalid_request there and stays usable by its owner; and refused uses of
// a client's PAR (wrong client, wrong endpoint) do not consume it.
func TestDefect_OwnPushesNotAcceptedAsPAR(t *testing.T) {
	in := wrap(start(t, nil, appSecConfig, webConfig(partnerCB)))
	bank := "Bearer " + appToken(t, in, "bank-app")

	t.Run("deep link request_uri at the native endpoint", func(t *testing.T) {
		r, pk := in.localDeepLink(t, nil)
		ru := requireDeepLink(t, r, "demo-app")
		for _, client := range []string{"demo-app", "fed-partner", "c2"} {
			out := post(t, in.native(), url.Values{"client_id": {client}, "request_uri": {ru}})
			requireOAuthError(t, out, http.StatusBadRequest, "invalid_request")
			require.Empty(t, out.str("deep_link"))
			require.Empty(t, out.str("auth_session"))
		}
		// Not consumed: the app completes it, the device gets its code.
		done := in.appCompleteWith(t, url.Values{"client_id": {"demo-app"}, "request_uri": {ru}}, withHeader("Authorization", bank))
		require.Equal(t, http.StatusOK, done.status, done.raw)
		out := post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "authorization_code": {done.str("authorization_code")}})
		require.Equal(t, http.StatusOK, out.status, out.raw)
		require.Equal(t, http.StatusOK, post(t, in.token(), codeForm("demo-app", out.str("authorization_code"), pk)).status)
	})
	t.Run("browser fallback request_uri at the native endpoint", func(t *testing.T) {
		ru, pk := fpConfFallback(t, in)
		for _, opts := range [][]func(*http.Request){nil, {basic("fp-conf", "fp-conf-secret")}} {
			out := post(t, in.native(), url.Values{"client_id": {"fp-conf"}, "request_uri": {ru}}, opts...)
			requireOAuthError(t, out, http.StatusBadRequest, "invalid_request")
			require.Empty(t, out.str("auth_session"))
		}
		out := post(t, in.native(), url.Values{"client_id": {"demo-app"}, "request_uri": {ru}})
		requireOAuthError(t, out, http.StatusBadRequest, "invalid_request")
		// Not consumed: the browser completes it at our browser endpoint.
		s := requireFormPage(t, getURL(t, in.authorizeURL("fp-conf", ru)), "username", "password")
		code := requireCodeRedirect(t, in, in.carolSignsIn(t, s), fpConfWeb)
		tok := post(t, in.token(), url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {pk.Verifier}, "redirect_uri": {fpConfWeb}},
			basic("fp-conf", "fp-conf-secret"))
		require.Equal(t, http.StatusOK, tok.status, tok.raw)
	})
	t.Run("refused uses do not consume a client's PAR", func(t *testing.T) {
		p := pushAs(t, in, "demo-partner", partnerSecret, partnerCB)
		requireOAuthError(t, post(t, in.native(), url.Values{"client_id": {"fed-partner"}, "request_uri": {p.requestURI}}), http.StatusBadRequest, "invalid_request")
		requireOAuthError(t, post(t, in.native(), url.Values{"client_id": {"demo-app"}, "request_uri": {p.requestURI}}), http.StatusBadRequest, "invalid_request")
		requireErrorPage(t, getURL(t, in.authorizeURL("partner2", p.requestURI)), http.StatusBadRequest)
		requireNoCompletion(t, in.appCompleteWith(t, url.Values{"client_id": {"demo-partner"}, "request_uri": {p.requestURI}}, withHeader("Authorization", bank)), http.StatusBadRequest, "invalid_request")
		s := requireFormPage(t, getURL(t, in.authorizeURL("demo-partner", p.requestURI)), "username")
		code := requireAuthzResponse(t, in, in.carolSignsIn(t, s), partnerCB, p.state)
		tok := post(t, in.token(), url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {p.pk.Verifier}, "redirect_uri": {partnerCB}}, basic("demo-partner", partnerSecret))
		require.Equal(t, http.StatusOK, tok.status, tok.raw)

		ru, _ := fedPartnerPAR(t, in, nil)
		requireOAuthError(t, post(t, in.native(), url.Values{"client_id": {"demo-app"}, "request_uri": {ru}}), http.StatusBadRequest, "invalid_request")
		requireOAuthError(t, post(t, in.native(), url.Values{"client_id": {"demo-partner"}, "request_uri": {ru}}), http.StatusBadRequest, "invalid_request")
		requireErrorPage(t, getURL(t, in.authorizeURL("demo-partner", ru)), http.StatusBadRequest)
		requireNoCompletion(t, in.appCompleteWith(t, url.Values{"client_id": {"fed-partner"}, "request_uri": {ru}}, withHeader("Authorization", bank)), http.StatusBadRequest, "invalid_request")
		requireDeepLink(t, post(t, in.native(), url.Values{"client_id": {"fed-partner"}, "request_uri": {ru}}), "fed-partner")
	})
}

// fixationUsers adds dave (enrolled in bank) and erin@bank.example, both
// with fast hashes, and lets carol enrol bank too.
func fixationUsers(c *config.Config) {
	c.Users = append(c.Users,
		config.User{Username: "dave", Subject: "dave", PasswordHash: fastHash("dave-pw"), Apps: []string{"bank"}},
		config.User{Username: "erin@bank.example", Subject: "erin", PasswordHash: fastHash("erin-pw"), Apps: []string{"bank"}})
	for i := range c.Users {
		if c.Users[i].Username == "carol" {
			c.Users[i].Apps = []string{"bank"}
		}
	}
}

// requireFixationRefused: the attacker's app token (carol) cannot complete
// the victim's deep link (access_denied, nothing consumed); the victim's
// own app completes it, and the device's code signs the victim in.
func requireFixationRefused(t *testing.T, in instance, r reply, pk sdk.PKCE, victim, victimPW, victimSub string) {
	t.Helper()
	ru := requireDeepLink(t, r, "demo-app")
	form := url.Values{"client_id": {"demo-app"}, "request_uri": {ru}}
	attacker := in.appCompleteWith(t, form, withHeader("Authorization", "Bearer "+appToken(t, in, "bank-app")))
	requireNoCompletion(t, attacker, http.StatusBadRequest, "access_denied")
	require.Empty(t, attacker.str("authorization_code"))

	own := userToken(t, in, "bank-app", victim, victimPW, "openid", nil)
	done := in.appCompleteWith(t, form, withHeader("Authorization", "Bearer "+own.AccessToken))
	require.Equal(t, http.StatusOK, done.status, done.raw)
	out := post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "authorization_code": {done.str("authorization_code")}})
	require.Equal(t, http.StatusOK, out.status, out.raw)
	tok := post(t, in.token(), codeForm("demo-app", out.str("authorization_code"), pk))
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	require.Equal(t, victimSub, in.introspect(t, tok.str("access_token")).str("sub"))
}

// Defect 4: a deep link whose session names its user could be completed
// with another user's app token, signing the victim's device in as the
// attacker (login CSRF / session fixation). Now access_denied when the
// session names its user — by login_hint, for an enrolled_only app, or by
// the email a prompt routed to the app — and the victim's own completion
// still works afterwards.
func TestDefect_DeepLinkUserFixation(t *testing.T) {
	t.Run("login_hint", func(t *testing.T) {
		in := wrap(start(t, nil, appSecConfig, fixationUsers))
		r, pk := in.localDeepLink(t, url.Values{"login_hint": {"dave"}})
		requireFixationRefused(t, in, r, pk, "dave", "dave-pw", "dave")
	})
	t.Run("enrolled_only", func(t *testing.T) {
		in := wrap(start(t, nil, fixationUsers, withBankApp(func(a *config.App) {
			a.Clients = []string{"demo-app"}
			a.EnrolledOnly = true
		})))
		r, pk := in.localDeepLink(t, url.Values{"login_hint": {"dave"}})
		requireFixationRefused(t, in, r, pk, "dave", "dave-pw", "dave")
	})
	t.Run("email from a prompt", func(t *testing.T) {
		in := wrap(start(t, nil, fixationUsers, withBankApp(func(*config.App) {}), func(c *config.Config) {
			c.Prompt = &config.Prompt{Inputs: []config.PromptInput{{Key: "email", Title: "Email"}}}
			c.Routes = append(c.Routes,
				config.Route{Local: true, Clients: []string{"bank-app"}},
				config.Route{App: "bank", EmailDomains: []string{"bank.example"}})
		}))
		p, pk := in.localDeepLink(t, nil)
		requireOAuthError(t, p, http.StatusBadRequest, "insufficient_information")
		r := post(t, in.native(), url.Values{"auth_session": {p.str("auth_session")}, "email": {"erin@bank.example"}})
		requireFixationRefused(t, in, r, pk, "erin@bank.example", "erin-pw", "erin")
	})
}

// Defect 6 (FiPA-04 §4.1): a confidential client authenticated its initial
// request only; follow-ups with a wrong secret or none went through. Now
// they are 401 invalid_client and issue no code, the session surviving for
// the authenticated client; also at a hop's response_uri.
func TestDefect_ConfidentialFollowUpsAuthenticated(t *testing.T) {
	wrongs := []struct {
		name string
		opts []func(*http.Request)
		form url.Values
	}{
		{"no authentication", nil, nil},
		{"client_id only", nil, url.Values{"client_id": {"fp-conf"}}},
		{"wrong secret", []func(*http.Request){basic("fp-conf", "wrong")}, nil},
		{"empty secret", []func(*http.Request){basic("fp-conf", "")}, nil},
		{"secret in the body", nil, url.Values{"client_id": {"fp-conf"}, "client_secret": {"fp-conf-secret"}}},
		{"another client's credentials", []func(*http.Request){basic("demo-partner", partnerSecret)}, nil},
	}
	// Authenticated as another client than the session's: that client's
	// client_id does not match (invalid_request), or invalid_client.
	expect := func(t *testing.T, out reply, name string) {
		t.Helper()
		if strings.HasPrefix(name, "another client") {
			requireOAuthError(t, out, out.status, "invalid_request", "invalid_client")
			require.Contains(t, []int{http.StatusBadRequest, http.StatusUnauthorized}, out.status)
			return
		}
		requireOAuthError(t, out, http.StatusUnauthorized, "invalid_client")
	}
	withWrong := func(base url.Values, extra url.Values) url.Values {
		f := url.Values{}
		for k, v := range base {
			f[k] = v
		}
		for k, v := range extra {
			f[k] = v
		}
		return f
	}
	t.Run("local follow-up", func(t *testing.T) {
		in := wrap(start(t, nil))
		r := post(t, in.native(), url.Values{"client_id": {"fp-conf"}, "response_type": {"code"}, "scope": {"openid"}}, basic("fp-conf", "fp-conf-secret"))
		requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
		answer := url.Values{"auth_session": {r.str("auth_session")}, "username": {"carol"}, "password": {"carol-pw"}}
		for _, w := range wrongs {
			t.Run(w.name, func(t *testing.T) {
				out := post(t, in.native(), withWrong(answer, w.form), w.opts...)
				expect(t, out, w.name)
				require.Empty(t, out.str("authorization_code"))
			})
		}
		out := post(t, in.native(), answer, basic("fp-conf", "fp-conf-secret"))
		require.Equal(t, http.StatusOK, out.status, out.raw)
		tok := post(t, in.token(), url.Values{"grant_type": {"authorization_code"}, "code": {out.str("authorization_code")}}, basic("fp-conf", "fp-conf-secret"))
		require.Equal(t, http.StatusOK, tok.status, tok.raw)
	})
	t.Run("response_uri of a federated session", func(t *testing.T) {
		e := newMockFed(t, mockFedOpts{})
		in := e.as1
		auth := basic("fp-conf", "fp-conf-secret")
		r := post(t, in.native(), url.Values{"client_id": {"fp-conf"}, "response_type": {"code"}, "scope": {"openid"}}, auth)
		requireOAuthError(t, r, http.StatusBadRequest, "insufficient_information")
		p := post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "bank": {"ds1"}})
		requireOAuthError(t, p, http.StatusUnauthorized, "invalid_client")
		fed := post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "bank": {"ds1"}}, auth)
		requireFederate(t, fed)
		code := atDownstream(t, fed)
		answer := url.Values{"auth_session": {fed.str("auth_session")}, "authorization_code": {code}}
		for _, w := range wrongs {
			t.Run(w.name, func(t *testing.T) {
				out := post(t, fed.str("response_uri"), withWrong(answer, w.form), w.opts...)
				expect(t, out, w.name)
				require.Empty(t, out.str("authorization_code"))
			})
		}
		require.EqualValues(t, 0, e.tokens(), "a refused response_uri post redeems nothing downstream")
		out := post(t, fed.str("response_uri"), answer, auth)
		require.Equal(t, http.StatusOK, out.status, out.raw)
		tok := post(t, in.token(), url.Values{"grant_type": {"authorization_code"}, "code": {out.str("authorization_code")}}, auth)
		require.Equal(t, http.StatusOK, tok.status, tok.raw)
	})
}

const partnerCB2 = "https://partner.example/cb2"

// twoRedirects gives demo-partner a second registered redirect_uri.
func twoRedirects(c *config.Config) {
	for i := range c.Clients {
		if c.Clients[i].ID == "demo-partner" {
			c.Clients[i].RedirectURIs = []string{partnerCB, partnerCB2}
		}
	}
}

// browserCode pushes a request of demo-partner for partnerCB (bound to k
// by dpop_jkt when set), signs carol in on our pages and returns the code.
func browserCode(t *testing.T, in instance, k *dpop.Key) (string, sdk.PKCE) {
	t.Helper()
	pk := sdk.NewPKCE()
	f := url.Values{"response_type": {"code"}, "client_id": {"demo-partner"}, "redirect_uri": {partnerCB}, "scope": {"openid"},
		"state": {"state-12345"}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}
	if k != nil {
		f.Set("dpop_jkt", k.JKT)
	}
	par := post(t, in.parURL(), f, basic("demo-partner", partnerSecret))
	require.Equal(t, http.StatusCreated, par.status, par.raw)
	s := requireFormPage(t, getURL(t, in.authorizeURL("demo-partner", par.str("request_uri"))), "username")
	return requireAuthzResponse(t, in, in.carolSignsIn(t, s), partnerCB, "state-12345"), pk
}

// Defect 8 (RFC 6749 §4.1.3; FiPA-04 §9.5.1): a code delivered through the
// browser was redeemable without its redirect_uri or with another one; and
// after an app-to-app step the app's DPoP key ended up in the client's
// code. Now the browser code needs its redirect_uri (invalid_grant
// otherwise), and the code after our app is bound to the client's own key
// or to none.
func TestDefect_CodeBindings(t *testing.T) {
	t.Run("browser code needs its redirect_uri", func(t *testing.T) {
		in := wrap(start(t, nil, twoRedirects))
		for _, tc := range []struct {
			name, redirect string
		}{{"without redirect_uri", ""}, {"another registered redirect_uri", partnerCB2}, {"an unregistered redirect_uri", "https://evil.example/cb"}} {
			t.Run(tc.name, func(t *testing.T) {
				code, pk := browserCode(t, in, nil)
				f := codeForm("", code, pk)
				if tc.redirect != "" {
					f.Set("redirect_uri", tc.redirect)
				}
				requireOAuthError(t, post(t, in.token(), f, basic("demo-partner", partnerSecret)), http.StatusBadRequest, "invalid_grant")
			})
		}
		code, pk := browserCode(t, in, nil)
		f := codeForm("", code, pk)
		f.Set("redirect_uri", partnerCB)
		r := post(t, in.token(), f, basic("demo-partner", partnerSecret))
		require.Equal(t, http.StatusOK, r.status, r.raw)
	})

	t.Run("the app's key stays out of the client's code", func(t *testing.T) {
		in := wrap(start(t, nil, appSecConfig))
		kApp := dpopKey(t)
		app := userToken(t, in, "bank-app", "carol", "carol-pw", "openid", kApp)
		require.Equal(t, "DPoP", app.TokenType)
		complete := func(t *testing.T, ru string, clientID string) reply {
			t.Helper()
			done := in.appCompleteWith(t, url.Values{"client_id": {clientID}, "request_uri": {ru}},
				withHeader("Authorization", "DPoP "+app.AccessToken), withTokenProof(t, kApp, in.appCompleteURL(), app.AccessToken))
			require.Equal(t, http.StatusOK, done.status, done.raw)
			return done
		}
		// localCode: demo-app's deep link, completed by the app, code by
		// the device bound to kc (nil: none).
		localCode := func(t *testing.T, kc *dpop.Key) (string, sdk.PKCE) {
			pk := sdk.NewPKCE()
			var opts []func(*http.Request)
			if kc != nil {
				opts = append(opts, withProof(t, kc, in.native()))
			}
			r := post(t, in.native(), url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"},
				"native_callback_uri": {"https://app.example/cb"}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}, opts...)
			done := complete(t, requireDeepLink(t, r, "demo-app"), "demo-app")
			if kc != nil {
				opts = []func(*http.Request){withProof(t, kc, in.native())}
			}
			out := post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "authorization_code": {done.str("authorization_code")}}, opts...)
			require.Equal(t, http.StatusOK, out.status, out.raw)
			return out.str("authorization_code"), pk
		}
		t.Run("local client without DPoP", func(t *testing.T) {
			code, pk := localCode(t, nil)
			r := post(t, in.token(), codeForm("demo-app", code, pk))
			require.Equal(t, http.StatusOK, r.status, r.raw)
			require.True(t, strings.EqualFold("Bearer", r.str("token_type")), r.raw)
		})
		t.Run("local client with its own key", func(t *testing.T) {
			kc := dpopKey(t)
			code, pk := localCode(t, kc)
			requireOAuthError(t, post(t, in.token(), codeForm("demo-app", code, pk), withProof(t, kApp, in.token())), http.StatusBadRequest, "invalid_dpop_proof")
			code, pk = localCode(t, kc)
			r := post(t, in.token(), codeForm("demo-app", code, pk), withProof(t, kc, in.token()))
			require.Equal(t, http.StatusOK, r.status, r.raw)
			require.Equal(t, "DPoP", r.str("token_type"))
		})
		t.Run("downstream role without dpop_jkt", func(t *testing.T) {
			ru, pk := fedPartnerPAR(t, in, nil)
			link := requireDeepLink(t, post(t, in.native(), url.Values{"client_id": {"fed-partner"}, "request_uri": {ru}}), "fed-partner")
			done := complete(t, link, "fed-partner")
			r := post(t, in.token(), codeForm("", done.str("authorization_code"), pk), basic("fed-partner", fedPartnerSecret))
			require.Equal(t, http.StatusOK, r.status, r.raw)
			require.True(t, strings.EqualFold("Bearer", r.str("token_type")), r.raw)
		})
		t.Run("downstream role with dpop_jkt", func(t *testing.T) {
			kj := dpopKey(t)
			requireBoundCode(t, in.token(), kj, func() url.Values {
				ru, pk := fedPartnerPAR(t, in, url.Values{"dpop_jkt": {kj.JKT}})
				link := requireDeepLink(t, post(t, in.native(), url.Values{"client_id": {"fed-partner"}, "request_uri": {ru}}), "fed-partner")
				return codeForm("", complete(t, link, "fed-partner").str("authorization_code"), pk)
			}, basic("fed-partner", fedPartnerSecret))
		})
	})
}

// webFallbackPair starts AS2, which may not challenge AS1's users and so
// falls back to the browser, and AS1 on a known listener whose web
// callback AS2 has registered (docs/decisions.md Q7).
func webFallbackPair(t *testing.T) (as1, as2 instance) {
	t.Helper()
	ln1 := listen(t)
	key := newFedKey(t, "as1-key")
	as2 = wrap(start(t, nil, func(c *config.Config) {
		fc := federatingClient("as1", key, false)
		fc.RedirectURIs = []string{"http://" + ln1.Addr().String() + "/federation/callback"}
		c.Clients = append(c.Clients, fc)
	}))
	as1 = wrap(servertest.Start(t, servertest.Options{Listener: ln1, Configure: func(c *config.Config) {
		testConfig(c)
		c.Downstreams = append(c.Downstreams, downstreamOf("as2", as2.URL, "as1", key))
		emailPrompt(c, "as2.example", "as2")
	}}))
	return as1, as2
}

// webLeg runs AS1 → AS2 (browser fallback) up to the browser's return to
// the app's native_callback_uri: it returns the federate answer (auth
// session and response_uri at AS1), the callback's query and the PKCE.
func webLeg(t *testing.T, as1, as2 instance, k *dpop.Key) (reply, url.Values, sdk.PKCE) {
	t.Helper()
	var opts []func(*http.Request)
	if k != nil {
		opts = append(opts, withProof(t, k, as1.native()))
	}
	pk := sdk.NewPKCE()
	r := post(t, as1.native(), url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"},
		"native_callback_uri": {"https://app.example/cb"}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}, opts...)
	requireOAuthError(t, r, http.StatusBadRequest, "insufficient_information")
	if k != nil {
		opts = []func(*http.Request){withProof(t, k, as1.native())}
	}
	fed := post(t, as1.native(), url.Values{"auth_session": {r.str("auth_session")}, "email": {"carol@as2.example"}}, opts...)
	requireFederate(t, fed)
	web := postBody(t, fed.str("federation_uri"), "application/x-www-form-urlencoded", fed.str("federation_body"))
	requireOAuthError(t, web, http.StatusForbidden, "redirect_to_web")
	require.NotEmpty(t, web.str("request_uri"), web.raw)
	s := requireFormPage(t, getURL(t, as2.authorizeURL("as1", web.str("request_uri"))), "username")
	out := as2.carolSignsIn(t, s)
	require.Equal(t, http.StatusSeeOther, out.status, out.raw)
	cbURL := out.header.Get("Location")
	require.True(t, strings.HasPrefix(cbURL, as1.URL+"/federation/callback?"), cbURL)
	back := getURL(t, cbURL)
	require.Equal(t, http.StatusSeeOther, back.status, back.raw)
	loc, err := url.Parse(back.header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, "https://app.example/cb", loc.Scheme+"://"+loc.Host+loc.Path)
	// The web callback is single-use.
	requireErrorPage(t, getURL(t, cbURL), http.StatusBadRequest)
	return fed, loc.Query(), pk
}

// Defect 10 (docs/decisions.md Q7): after a downstream's browser fallback the
// device got our code by posting only its auth_session, so whoever
// finished the browser part signed another device in. Now the browser
// returns to native_callback_uri with a one-time response_code, and only
// auth_session + that value gets the code: auth_session alone is
// invalid_request, a wrong or another session's response_code is
// access_denied.
func TestDefect_WebCallbackResponseCode(t *testing.T) {
	as1, as2 := webFallbackPair(t)
	fed, cb, _ := webLeg(t, as1, as2, nil)
	require.ElementsMatch(t, []string{"response_code"}, mapKeys(cb), "the callback carries the one-time value only: %v", cb)
	require.NotContains(t, cb.Encode(), fed.str("auth_session"))

	only := post(t, fed.str("response_uri"), url.Values{"auth_session": {fed.str("auth_session")}})
	requireOAuthError(t, only, http.StatusBadRequest, "invalid_request")
	// A value for another session (a fixation attempt) and a wrong value.
	other, otherCB, _ := webLeg(t, as1, as2, nil)
	cross := post(t, other.str("response_uri"), url.Values{"auth_session": {other.str("auth_session")}, "response_code": {cb.Get("response_code")}})
	requireOAuthError(t, cross, http.StatusBadRequest, "access_denied")
	wrong := post(t, fed.str("response_uri"), url.Values{"auth_session": {fed.str("auth_session")}, "response_code": {otherCB.Get("response_code") + "x"}})
	requireOAuthError(t, wrong, http.StatusBadRequest, "access_denied")
	// A wrong value ends that sign-in.
	dead := post(t, fed.str("response_uri"), url.Values{"auth_session": {fed.str("auth_session")}, "response_code": {cb.Get("response_code")}})
	require.GreaterOrEqual(t, dead.status, 400, dead.raw)
	require.Empty(t, dead.str("authorization_code"))

	fed, cb, pk := webLeg(t, as1, as2, nil)
	ok := post(t, fed.str("response_uri"), url.Values{"auth_session": {fed.str("auth_session")}, "response_code": {cb.Get("response_code")}})
	require.Equal(t, http.StatusOK, ok.status, ok.raw)
	tok := post(t, as1.token(), codeForm("demo-app", ok.str("authorization_code"), pk))
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	require.Equal(t, as2.URL+"|carol", as1.introspect(t, tok.str("access_token")).str("sub"))
	// Once.
	again := post(t, fed.str("response_uri"), url.Values{"auth_session": {fed.str("auth_session")}, "response_code": {cb.Get("response_code")}})
	require.GreaterOrEqual(t, again.status, 400, again.raw)
	require.Empty(t, again.str("authorization_code"))
}

// listen opens a loopback listener (to know an instance's URL before it
// starts).
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}

// requireCodeRedirect asserts a 303 to redirect with code and iss (and
// state only if the request had one) and returns the code.
func requireCodeRedirect(t *testing.T, in instance, r reply, redirect string) string {
	t.Helper()
	require.Equal(t, http.StatusSeeOther, r.status, r.raw)
	loc, err := url.Parse(r.header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, redirect, loc.Scheme+"://"+loc.Host+loc.Path)
	require.Equal(t, in.URL, loc.Query().Get("iss"))
	require.NotEmpty(t, loc.Query().Get("code"))
	return loc.Query().Get("code")
}
