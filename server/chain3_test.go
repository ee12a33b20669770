package server_test

// Three real fedas instances on loopback, AS1 → AS2 → AS3, with the device
// proving its DPoP key towards AS1 only (sdk Client.DPoP; docs/decisions.md
// Q5). AS3 either falls back to the browser (its browser flow ends at AS2's
// web callback, which sends the browser to native_callback_uri with a
// response_code) or sends the device to its own app (redirect_to_app in
// the downstream role). Each hop's code is bound to the key of the AS that
// redeems it: AS1's code to the device key, AS2's code to AS1's server key,
// AS3's code to AS2's server key — never to the app's key.

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage"
)

// chain3 is AS1 → AS2 → AS3. AS1 routes @as2.example to AS2; AS2 routes
// its federating client as1 to AS3; neither downstream allows credential
// challenges to its federating client. Each instance has a known HMAC
// secret, so the test knows each one's downstream DPoP key.
type chain3 struct {
	as1, as2, as3              instance
	k12                        fedKey // AS1's client key at AS2
	as1Server, as2Server       *dpop.Key
	as1ServerJKT, as2ServerJKT string
}

func chainSecret(b byte) []byte {
	s := make([]byte, 32)
	for i := range s {
		s[i] = b ^ byte(i*7)
	}
	return s
}

// downstreamKey is the DPoP key an instance with this HMAC secret uses
// for downstream codes (server.DownstreamDPoPSeed, an Ed25519 key as
// federation.New derives it).
func downstreamKey(t *testing.T, secret []byte) *dpop.Key {
	t.Helper()
	k, err := dpop.NewKey(ed25519.NewKeyFromSeed(server.DownstreamDPoPSeed(secret)), jose.EdDSA)
	require.NoError(t, err)
	return k
}

func startChain3(t *testing.T, edit3 func(*config.Config)) chain3 {
	t.Helper()
	secret1, secret2 := chainSecret(0x11), chainSecret(0x22)
	e := chain3{as1Server: downstreamKey(t, secret1), as2Server: downstreamKey(t, secret2)}
	e.as1ServerJKT, e.as2ServerJKT = e.as1Server.JKT, e.as2Server.JKT
	k12, k23 := newFedKey(t, "k12"), newFedKey(t, "k23")
	e.k12 = k12
	ln2 := listen(t)
	e.as3 = wrap(servertest.Start(t, servertest.Options{HMACSecret: chainSecret(0x33), Configure: func(c *config.Config) {
		testConfig(c)
		fc := federatingClient("as2", k23, false)
		fc.RedirectURIs = []string{"http://" + ln2.Addr().String() + "/federation/callback"}
		c.Clients = append(c.Clients, fc)
		if edit3 != nil {
			edit3(c)
		}
	}}))
	e.as2 = wrap(servertest.Start(t, servertest.Options{Listener: ln2, HMACSecret: secret2, Configure: func(c *config.Config) {
		testConfig(c)
		c.Clients = append(c.Clients, federatingClient("as1", k12, false))
		c.Downstreams = append(c.Downstreams, downstreamOf("as3", e.as3.URL, "as2", k23))
		c.Routes = append(c.Routes, config.Route{Downstream: "as3", Clients: []string{"as1"}})
	}}))
	e.as1 = wrap(servertest.Start(t, servertest.Options{HMACSecret: secret1, Configure: func(c *config.Config) {
		testConfig(c)
		c.Downstreams = append(c.Downstreams, downstreamOf("as2", e.as2.URL, "as1", k12))
		emailPrompt(c, "as2.example", "as2")
	}}))
	return e
}

// as1Client is AS1 as a private_key_jwt client of AS2.
func (e chain3) as1Client(t *testing.T) jwtClient {
	t.Helper()
	var jwk jose.JSONWebKey
	require.NoError(t, json.Unmarshal([]byte(e.k12.private), &jwk))
	return jwtClient{id: "as1", alg: jose.ES256, key: jwk}
}

// codeBinding reads the dpop_jkt a code was bound to from the issuing
// instance's store (a redeemed code stays readable until its TTL).
func codeBinding(t *testing.T, in instance, code string) string {
	t.Helper()
	require.Contains(t, code, ".", "code %q", code)
	sig := code[strings.LastIndex(code, ".")+1:]
	rec, err := in.Store.Token(context.Background(), storage.KindCode, sig)
	if err != nil && !errors.Is(err, storage.ErrInvalidated) {
		require.NoError(t, err, "code record at %s", in.URL)
	}
	var sess struct {
		Extra map[string]any `json:"extra"`
	}
	require.NoError(t, json.Unmarshal(rec.Session, &sess))
	jkt, _ := sess.Extra["dpop_jkt"].(string)
	return jkt
}

// chainRun is what the device saw during one SDK run.
type chainRun struct {
	code     string   // AS1's code
	pk       sdk.PKCE // for AS1's code
	as2Code  string   // AS2's code, as delivered to AS1's response_uri
	as3Code  string   // AS3's code (app path), as delivered to AS2's response_uri
	respCode string   // AS2's response_code (browser path)
	errs     []string // the error member of every native answer, in order
	fedFrom  []string // where each federate came from
}

// device returns an SDK client for demo-app at AS1 proving k, recording
// the run into out.
func (e chain3) device(t *testing.T, k *dpop.Key, out *chainRun) *sdk.Client {
	c := e.as1.Client(t, "demo-app")
	c.DPoP = k
	c.OnExchange = func(_ string, u string, form url.Values, _ int, body []byte) {
		var r sdk.Response
		_ = json.Unmarshal(body, &r)
		out.errs = append(out.errs, r.Error)
		if r.Error == "federate" {
			out.fedFrom = append(out.fedFrom, u)
		}
		if strings.HasPrefix(u, e.as1.URL+"/native/response/") {
			out.as2Code = form.Get("authorization_code")
		}
		if strings.HasPrefix(u, e.as2.URL+"/native/response/") {
			out.as3Code = form.Get("authorization_code")
		}
	}
	return c
}

func (e chain3) authorize(t *testing.T, c *sdk.Client, out *chainRun) {
	t.Helper()
	code, pk, err := c.Authorize(context.Background(),
		url.Values{"scope": {"openid offline_access"}, "native_callback_uri": {"https://app.example/cb"}}, answerAll("carol@as2.example"))
	require.NoError(t, err)
	require.NotEmpty(t, code)
	out.code, out.pk = code, pk
}

// webRun runs the chain with AS3's browser fallback through the SDK.
func (e chain3) webRun(t *testing.T, k *dpop.Key) chainRun {
	t.Helper()
	var out chainRun
	c := e.device(t, k, &out)
	browser := browserSim(t, "carol", "carol-pw", "https://app.example/cb")
	c.OpenBrowser = func(ctx context.Context, u string) (url.Values, error) {
		require.True(t, strings.HasPrefix(u, e.as3.URL+"/oauth2/authorize?"), "the browser goes to AS3: %s", u)
		q, err := browser(ctx, u)
		out.respCode = q.Get("response_code")
		return q, err
	}
	e.authorize(t, c, &out)
	require.Equal(t, []string{"insufficient_information", "federate", "federate", "redirect_to_web", "", ""}, out.errs)
	require.Equal(t, []string{e.as1.native(), e.as2.native()}, out.fedFrom)
	require.NotEmpty(t, out.respCode)
	require.NotEmpty(t, out.as2Code)
	return out
}

func (e chain3) redeemAt1(t *testing.T, r chainRun, k *dpop.Key) reply {
	t.Helper()
	return post(t, e.as1.token(), codeForm("demo-app", r.code, r.pk), proofs(t, k, e.as1.token())...)
}

// TestChain3_BrowserFallbackAtAS3: AS3 answers redirect_to_web (AS2 may
// not challenge there); AS3's browser flow ends at AS2's web callback,
// AS2 redeems AS3's code and sends the browser to native_callback_uri with
// a response_code; the device posts auth_session + response_code to AS2's
// response_uri, AS2's code to AS1's response_uri, and redeems AS1's code.
func TestChain3_BrowserFallbackAtAS3(t *testing.T) {
	e := startChain3(t, nil)
	k := dpopKey(t)

	t.Run("AS1's code redeems only with the device's proof", func(t *testing.T) {
		r := e.webRun(t, k)
		requireOAuthError(t, e.redeemAt1(t, r, nil), http.StatusBadRequest, "invalid_dpop_proof")
		r = e.webRun(t, k)
		requireOAuthError(t, e.redeemAt1(t, r, dpopKey(t)), http.StatusBadRequest, "invalid_dpop_proof")
		r = e.webRun(t, k)
		tok := e.redeemAt1(t, r, k)
		require.Equal(t, http.StatusOK, tok.status, tok.raw)
		require.Equal(t, "DPoP", tok.str("token_type"))
		ir := e.as1.introspect(t, tok.str("access_token"))
		require.Equal(t, true, ir.body["active"])
		// AS1's mapping of AS2's mapping of AS3's carol.
		require.Equal(t, e.as2.URL+"|"+e.as3.URL+"|carol", ir.str("sub"))
		require.Equal(t, map[string]any{"jkt": k.JKT}, ir.body["cnf"])
	})

	t.Run("each hop's code is bound to the redeeming AS's key", func(t *testing.T) {
		r := e.webRun(t, k)
		// Positive control of the store lookup: AS1's code carries the device key.
		require.Equal(t, k.JKT, codeBinding(t, e.as1, r.code))
		// AS2's code (delivered through the device to AS1) is bound to
		// AS1's server key, not the device's: the device never proves
		// anything towards AS2.
		require.NotEqual(t, e.as1ServerJKT, k.JKT)
		require.Equal(t, e.as1ServerJKT, codeBinding(t, e.as2, r.as2Code))
		// AS1 redeemed it; a second redemption, even authenticated as AS1
		// (its private_key_jwt) with AS1's own server key, is refused; so
		// is one with the device's key.
		as1 := e.as1Client(t)
		for _, key := range []*dpop.Key{e.as1Server, k} {
			f := codeForm("", r.as2Code, r.pk)
			f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
			f.Set("client_assertion", as1.assertion(t, e.as2.URL))
			again := post(t, e.as2.token(), f, withProof(t, key, e.as2.token()))
			requireOAuthError(t, again, http.StatusBadRequest, "invalid_grant")
		}
		// AS1's code is unaffected.
		tok := e.redeemAt1(t, r, k)
		require.Equal(t, http.StatusOK, tok.status, tok.raw)
	})

	t.Run("response_code only at its hop", func(t *testing.T) {
		// The device by hand, to stop between the legs.
		pk := sdk.NewPKCE()
		p1 := func(htu string) func(*http.Request) { return withProof(t, k, htu) }
		r := post(t, e.as1.native(), url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"},
			"native_callback_uri": {"https://app.example/cb"}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}, p1(e.as1.native()))
		requireOAuthError(t, r, http.StatusBadRequest, "insufficient_information")
		fed1 := post(t, e.as1.native(), url.Values{"auth_session": {r.str("auth_session")}, "email": {"carol@as2.example"}}, p1(e.as1.native()))
		requireFederate(t, fed1)
		require.True(t, strings.HasPrefix(fed1.str("federation_uri"), e.as2.URL), fed1.raw)
		fed2 := postBody(t, fed1.str("federation_uri"), "application/x-www-form-urlencoded", fed1.str("federation_body"))
		requireFederate(t, fed2)
		require.True(t, strings.HasPrefix(fed2.str("federation_uri"), e.as3.URL), fed2.raw)
		require.True(t, strings.HasPrefix(fed2.str("response_uri"), e.as2.URL+"/native/response/"), fed2.raw)
		web := postBody(t, fed2.str("federation_uri"), "application/x-www-form-urlencoded", fed2.str("federation_body"))
		requireOAuthError(t, web, http.StatusForbidden, "redirect_to_web")
		require.NotEmpty(t, web.str("request_uri"), web.raw)
		cb, err := browserSim(t, "carol", "carol-pw", "https://app.example/cb")(context.Background(), e.as3.authorizeURL("as2", web.str("request_uri")))
		require.NoError(t, err)
		require.ElementsMatch(t, []string{"response_code"}, mapKeys(cb), "the callback carries the one-time value only: %v", cb)
		rc := cb.Get("response_code")

		// Wrong hop: AS2's response_code at AS1's response_uri (with the
		// device's proof) is no code: invalid_request; at AS1's native
		// endpoint the federate hop's auth_session is not a session of
		// that channel: invalid_session. Neither issues anything.
		wrong := post(t, fed1.str("response_uri"), url.Values{"auth_session": {fed1.str("auth_session")}, "response_code": {rc}}, p1(fed1.str("response_uri")))
		requireOAuthError(t, wrong, http.StatusBadRequest, "invalid_request")
		wrong = post(t, e.as1.native(), url.Values{"auth_session": {fed1.str("auth_session")}, "response_code": {rc}}, p1(e.as1.native()))
		requireOAuthError(t, wrong, http.StatusBadRequest, "invalid_session")

		// The auth_session alone at AS2 issues nothing.
		only := post(t, fed2.str("response_uri"), url.Values{"auth_session": {fed2.str("auth_session")}})
		requireOAuthError(t, only, http.StatusBadRequest, "invalid_request")

		// The right hop: auth_session + response_code at AS2 → AS2's code,
		// bound to AS1's server key.
		ok := post(t, fed2.str("response_uri"), url.Values{"auth_session": {fed2.str("auth_session")}, "response_code": {rc}})
		require.Equal(t, http.StatusOK, ok.status, ok.raw)
		as2Code := ok.str("authorization_code")
		require.NotEmpty(t, as2Code)
		require.Equal(t, e.as1ServerJKT, codeBinding(t, e.as2, as2Code))
		// Once.
		again := post(t, fed2.str("response_uri"), url.Values{"auth_session": {fed2.str("auth_session")}, "response_code": {rc}})
		require.GreaterOrEqual(t, again.status, 400, again.raw)
		require.Empty(t, again.str("authorization_code"))

		// AS2's code at AS1's response_uri: without the device's proof it is
		// refused, and the session survives for the device.
		deliver := url.Values{"auth_session": {fed1.str("auth_session")}, "authorization_code": {as2Code}}
		requireOAuthError(t, post(t, fed1.str("response_uri"), deliver), http.StatusBadRequest, "invalid_dpop_proof")
		requireOAuthError(t, post(t, fed1.str("response_uri"), deliver, withProof(t, dpopKey(t), fed1.str("response_uri"))), http.StatusBadRequest, "invalid_dpop_proof")
		done := post(t, fed1.str("response_uri"), deliver, p1(fed1.str("response_uri")))
		require.Equal(t, http.StatusOK, done.status, done.raw)
		tok := post(t, e.as1.token(), codeForm("demo-app", done.str("authorization_code"), pk), p1(e.as1.token()))
		require.Equal(t, http.StatusOK, tok.status, tok.raw)
		require.Equal(t, "DPoP", tok.str("token_type"))
		require.Equal(t, e.as2.URL+"|"+e.as3.URL+"|carol", e.as1.introspect(t, tok.str("access_token")).str("sub"))
	})
}

// bankAt3 registers the bank app at AS3 for the downstream role.
func bankAt3(c *config.Config) { withBankApp(func(a *config.App) { a.DownstreamRole = true })(c) }

// appRun runs the chain with AS3's redirect_to_app: the bank app, signed
// in at AS3 as its own user with tok (DPoP-bound to appKey when set),
// completes the deep link; the device carries AS3's code to AS2's
// response_uri and AS2's code to AS1's.
func (e chain3) appRun(t *testing.T, k *dpop.Key, tok string, appKey *dpop.Key) chainRun {
	t.Helper()
	var out chainRun
	c := e.device(t, k, &out)
	var links int
	c.OpenApp = func(ctx context.Context, link string) (url.Values, error) {
		links++
		u, err := url.Parse(link)
		require.NoError(t, err)
		require.Equal(t, bankApp, u.Scheme+"://"+u.Host+u.Path)
		require.ElementsMatch(t, []string{"client_id", "request_uri"}, mapKeys(u.Query()))
		require.Equal(t, "as2", u.Query().Get("client_id"), "AS3's deep link is for AS2's request")
		form := url.Values{"client_id": {"as2"}, "request_uri": {u.Query().Get("request_uri")}}
		var done reply
		if appKey != nil {
			done = e.as3.appCompleteWith(t, form, withHeader("Authorization", "DPoP "+tok), withTokenProof(t, appKey, e.as3.appCompleteURL(), tok))
		} else {
			done = e.as3.appCompleteWith(t, form, withHeader("Authorization", "Bearer "+tok))
		}
		require.Equal(t, http.StatusOK, done.status, done.raw)
		cb, err := url.Parse(done.str("callback"))
		require.NoError(t, err)
		require.Equal(t, "https://app.example/cb", cb.Scheme+"://"+cb.Host+cb.Path)
		require.ElementsMatch(t, []string{"authorization_code", "iss"}, mapKeys(cb.Query()))
		require.Equal(t, e.as3.URL, cb.Query().Get("iss"))
		return cb.Query(), nil
	}
	e.authorize(t, c, &out)
	require.Equal(t, 1, links)
	require.Equal(t, []string{"insufficient_information", "federate", "federate", "redirect_to_app", "", ""}, out.errs)
	require.Equal(t, []string{e.as1.native(), e.as2.native()}, out.fedFrom)
	require.NotEmpty(t, out.as3Code)
	require.NotEmpty(t, out.as2Code)
	return out
}

// TestChain3_AppAtAS3: AS3 sends the device to its own app (downstream
// role); the app completes with an access token of its own user; AS3's
// code goes to AS2's response_uri, AS2's code to AS1's. AS1's code is
// bound to the device key only; the app's key binds nothing outside AS3's
// app completion.
func TestChain3_AppAtAS3(t *testing.T) {
	e := startChain3(t, bankAt3)
	k := dpopKey(t)

	t.Run("DPoP-bound app token", func(t *testing.T) {
		appKey := dpopKey(t)
		app := userToken(t, e.as3, "bank-app", "alice", "wonderland", "openid", appKey)
		require.Equal(t, "DPoP", app.TokenType)
		require.Equal(t, map[string]any{"jkt": appKey.JKT}, e.as3.introspect(t, app.AccessToken).body["cnf"])

		r := e.appRun(t, k, app.AccessToken, appKey)
		require.Equal(t, k.JKT, codeBinding(t, e.as1, r.code))
		require.Equal(t, e.as1ServerJKT, codeBinding(t, e.as2, r.as2Code))
		require.Equal(t, e.as2ServerJKT, codeBinding(t, e.as3, r.as3Code), "AS3's code is bound to AS2's PAR (dpop_jkt of AS2's key)")
		for _, jkt := range []string{codeBinding(t, e.as1, r.code), codeBinding(t, e.as2, r.as2Code), codeBinding(t, e.as3, r.as3Code)} {
			require.NotEqual(t, appKey.JKT, jkt, "the app's key binds nothing of the chain")
		}
		// The app's key cannot redeem AS1's code (the failure burns it).
		requireOAuthError(t, e.redeemAt1(t, r, appKey), http.StatusBadRequest, "invalid_dpop_proof")

		r = e.appRun(t, k, app.AccessToken, appKey)
		requireOAuthError(t, e.redeemAt1(t, r, nil), http.StatusBadRequest, "invalid_dpop_proof")
		r = e.appRun(t, k, app.AccessToken, appKey)
		tok := e.redeemAt1(t, r, k)
		require.Equal(t, http.StatusOK, tok.status, tok.raw)
		require.Equal(t, "DPoP", tok.str("token_type"))
		ir := e.as1.introspect(t, tok.str("access_token"))
		require.Equal(t, e.as2.URL+"|"+e.as3.URL+"|alice", ir.str("sub"), "the app's user, mapped by AS2 and then AS1")
		require.Equal(t, map[string]any{"jkt": k.JKT}, ir.body["cnf"])
		// AS1's refresh token works only with the device key, not the app's.
		rt := tok.str("refresh_token")
		require.NotEmpty(t, rt, tok.raw)
		refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"demo-app"}}
		requireOAuthError(t, post(t, e.as1.token(), refresh, withProof(t, appKey, e.as1.token())), http.StatusBadRequest, "invalid_dpop_proof")
		ref := post(t, e.as1.token(), refresh, withProof(t, k, e.as1.token()))
		require.Equal(t, http.StatusOK, ref.status, ref.raw)
		require.Equal(t, "DPoP", ref.str("token_type"))
		// The app's AS3 token means nothing at AS1.
		require.Equal(t, false, e.as1.introspect(t, app.AccessToken).body["active"])
	})

	t.Run("bearer app token through sdk CompleteApp", func(t *testing.T) {
		var links []string
		var out chainRun
		c := e.device(t, k, &out)
		c.OpenApp = simulatedApp(t, e.as3, &links)
		e.authorize(t, c, &out)
		require.Len(t, links, 1)
		require.Equal(t, e.as2ServerJKT, codeBinding(t, e.as3, out.as3Code))
		require.Equal(t, e.as1ServerJKT, codeBinding(t, e.as2, out.as2Code))
		tok := e.redeemAt1(t, out, k)
		require.Equal(t, http.StatusOK, tok.status, tok.raw)
		require.Equal(t, "DPoP", tok.str("token_type"))
		require.Equal(t, e.as2.URL+"|"+e.as3.URL+"|carol", e.as1.introspect(t, tok.str("access_token")).str("sub"))
	})
}
