package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server/servertest"
)

// exampleTransport records a simulated wallet's requests as steps of an
// example, captioned in order: the wallet is a party of the exchange the
// document shows, not a test helper.
type exampleTransport struct {
	x        *example
	captions []string
	base     http.RoundTripper
}

func (t *exampleTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	caption := "wallet → AS"
	if len(t.captions) > 0 {
		caption, t.captions = t.captions[0], t.captions[1:]
	}
	req = req.Clone(req.Context())
	n := t.x.begin(caption, req)
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	t.x.end(n)
	return resp, nil
}

// dcExampleEnv starts the presentation environment as a recorded
// instance named AS.
func dcExampleEnv(t *testing.T, log *exampleLog) *dcEnv {
	return newDCEnv(t, dcEnvOptions{start: func(tb testing.TB, o servertest.Options) *servertest.Instance {
		o.Observe = log.observe
		in := servertest.Start(tb, o)
		log.name(in.URL, "AS", "https://as.example")
		return in
	}})
}

// dcExample is one recorded presentation example: the environment, the
// app's DPoP key and PKCE pair, and the challenge its initial request got.
type dcExample struct {
	x   *example
	e   *dcEnv
	as  instance
	key *dpop.Key
	pk  sdk.PKCE
	r   reply
}

// beginDCExample records example name: demo-app's initial request (login_hint
// wallet plus params) and its insufficient_authorization challenge.
func beginDCExample(t *testing.T, name, caption string, params url.Values) dcExample {
	log := newExampleLog()
	e := dcExampleEnv(t, log)
	d := dcExample{x: newExample(name, log), e: e, as: wrap(e.in), key: newDPoPKey(t), pk: sdk.NewPKCE()}
	form := url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"}, "login_hint": {"wallet"}}
	for k, v := range params {
		form[k] = v
	}
	d.r = d.x.postForm(t, caption, d.as.native(), pkceParams(d.pk, form), withDPoP(t, d.key, ""))
	requireOAuthError(t, d.r, http.StatusForbidden, "insufficient_authorization")
	return d
}

// exampleDCSameDevice: a same-device presentation (docs/protocol.md
// "Digital credentials"), the wallet's two requests included.
func exampleDCSameDevice(t *testing.T) *example {
	d := beginDCExample(t, "dc-same-device", "app → AS: the initial request asks for a wallet, on this device, and names where the wallet returns", url.Values{
		"dc_api": {"false"}, "openid4vp_flow_type": {"same_device"}, "openid4vp_redirect_uri": {dcReturn}})
	x, e, as, key, pk, r := d.x, d.e, d.as, d.key, d.pk, d.r
	e.wallet.HTTP = &http.Client{Timeout: 10 * time.Second, Transport: &exampleTransport{x: x, base: e.in.HTTPClient().Transport, captions: []string{
		"wallet → AS: the app opened the wallet with credentials_request; it fetches the signed request object once, with its nonce (OpenID4VP §5.10)",
		"wallet → AS: the wallet posts the encrypted response (direct_post.jwt, OpenID4VP §8.2, §8.3) and is told where to return",
	}}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ans, err := e.wallet.Present(context.Background(), r.str("credentials_request"))
	require.NoError(t, err)
	ru, err := url.Parse(ans.RedirectURI)
	require.NoError(t, err)
	done := x.postForm(t, "app → AS: the wallet opened the openid4vp_redirect_uri; the app posts the response_code", as.native(), url.Values{
		"auth_session": {r.str("auth_session")}, "response_code": {ru.Query().Get("response_code")}}, withDPoP(t, key, ""))
	require.Equal(t, http.StatusOK, done.status, done.raw)
	tok := x.postForm(t, "app → AS: redeem the code; the ID token's sub is derived from the credential's issuer and subject claim", as.token(), url.Values{
		"grant_type": {"authorization_code"}, "client_id": {"demo-app"}, "code": {done.str("authorization_code")}, "code_verifier": {pk.Verifier}}, withDPoP(t, key, ""))
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	return x
}

// exampleDCCrossDevice: a cross-device presentation: pending, slow_down,
// and the code once the wallet on the other device has answered.
func exampleDCCrossDevice(t *testing.T) *example {
	d := beginDCExample(t, "dc-cross-device", "app → AS: the initial request asks for a wallet on another device (the app shows credentials_request as a QR code)", url.Values{
		"openid4vp_flow_type": {"cross_device"}})
	x, e, as, key, r := d.x, d.e, d.as, d.key, d.r
	poll := url.Values{"auth_session": {r.str("auth_session")}}
	fast := x.postForm(t, "app → AS: polling before interval has passed gets slow_down, and a longer interval", as.native(), poll, withDPoP(t, key, ""))
	require.Equal(t, "slow_down", fast.str("status"))
	e.clock.Advance(11 * time.Second)
	p := x.postForm(t, "app → AS: the wallet has not answered yet: pending, with the same auth_session", as.native(), poll, withDPoP(t, key, ""))
	require.Equal(t, "pending", p.str("status"))
	_, err := e.wallet.Present(context.Background(), r.str("credentials_request"))
	require.NoError(t, err)
	e.clock.Advance(11 * time.Second)
	done := x.postForm(t, "app → AS: (the user scanned the code and presented) the next poll gets the code", as.native(), poll, withDPoP(t, key, ""))
	require.Equal(t, http.StatusOK, done.status, done.raw)
	return x
}

// exampleDCAPI: the Digital Credentials API path: the request is the
// text the platform takes; the app forwards what it returned.
func exampleDCAPI(t *testing.T) *example {
	d := beginDCExample(t, "dc-api", "app → AS: the initial request says the app can use the Digital Credentials API", url.Values{"dc_api": {"true"}})
	x, e, as, key, r := d.x, d.e, d.as, d.key, d.r
	data, err := e.wallet.DCAPI(r.str("credentials_request"), dcOrigin)
	require.NoError(t, err)
	var m map[string]string
	require.NoError(t, json.Unmarshal(data, &m))
	body, _ := json.Marshal(map[string]string{"auth_session": r.str("auth_session"), "response": m["response"]})
	req, err := http.NewRequest(http.MethodPost, as.native(), strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	withDPoP(t, key, "")(req)
	done := x.send(t, "app → AS: the app passes on what the platform returned (the encrypted response, dc_api.jwt)", req)
	require.Equal(t, http.StatusOK, done.status, done.raw)
	return x
}

// requestObjectDisplay shows a signed request object by its decoded
// header and payload (the JWS itself is volatile and long).
func requestObjectDisplay(body []byte) string {
	parts := strings.Split(strings.TrimSpace(string(body)), ".")
	if len(parts) != 3 {
		return string(body)
	}
	dec := func(s string) string {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return s
		}
		var v map[string]any
		if json.Unmarshal(b, &v) != nil {
			return string(b)
		}
		if _, ok := v["x5c"]; ok {
			v["x5c"] = []string{"<the verifier's certificate chain>"}
		}
		for _, k := range []string{"iat", "exp"} {
			if _, ok := v[k]; ok {
				v[k] = "<" + k + ">"
			}
		}
		var out strings.Builder
		enc := json.NewEncoder(&out)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
		return strings.TrimRight(out.String(), "\n")
	}
	return "<JWS> header:\n" + dec(parts[0]) + "\npayload:\n" + dec(parts[1])
}
