package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/sdk"
)

func dpopKey(t *testing.T) *dpop.Key {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	dk, err := dpop.NewKey(k, jose.ES256)
	require.NoError(t, err)
	return dk
}

func withProof(t *testing.T, k *dpop.Key, htu string) func(*http.Request) {
	return func(r *http.Request) {
		p, err := k.Proof(http.MethodPost, htu, "")
		require.NoError(t, err)
		r.Header.Set("DPoP", p)
	}
}

// The whole native flow with DPoP: session, code and tokens bound to the
// device key; token_type DPoP; introspection shows cnf.jkt.
func TestDPoP_BoundFlow(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			in := wrap(start(t, b.store(t)))
			k := dpopKey(t)
			c := in.Client(t, "demo-app")
			c.DPoP = k
			code, pk, err := c.Authorize(context.Background(), url.Values{"scope": {"openid offline_access"}}, userUI("carol", "carol-pw", ""))
			require.NoError(t, err)
			tok, err := c.Exchange(context.Background(), code, pk)
			require.NoError(t, err)
			require.Equal(t, "DPoP", tok.TokenType)
			ir := in.introspect(t, tok.AccessToken)
			require.Equal(t, map[string]any{"jkt": k.JKT}, ir.body["cnf"])
			require.Equal(t, "DPoP", ir.str("token_type"))
			// D09 with keys: the refresh token works only with the same key.
			other := in.Client(t, "demo-app")
			other.DPoP = dpopKey(t)
			_, err = other.Refresh(context.Background(), tok.RefreshToken)
			var serr *sdk.Err
			require.ErrorAs(t, err, &serr)
			require.Equal(t, "invalid_dpop_proof", serr.Response.Error)
			_, err = in.Client(t, "demo-app").Refresh(context.Background(), tok.RefreshToken) // no proof
			require.ErrorAs(t, err, &serr)
			ref, err := c.Refresh(context.Background(), tok.RefreshToken)
			require.NoError(t, err)
			require.Equal(t, "DPoP", ref.TokenType)
		})
	}
}

// A08: a stolen auth_session with another key: rejected, the session
// unchanged, and the victim (K1) can still continue. A09: no proof at all.
func TestAuthSession_DPoPBound(t *testing.T) {
	in := wrap(start(t, nil))
	k1, k2 := dpopKey(t), dpopKey(t)
	pk := sdk.NewPKCE()
	r := post(t, in.native(), url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}, "scope": {"openid"}}, withProof(t, k1, in.native()))
	require.Equal(t, http.StatusForbidden, r.status, r.raw)
	s := r.str("auth_session")
	answer := url.Values{"auth_session": {s}, "username": {"carol"}, "password": {"carol-pw"}}

	requireOAuthError(t, post(t, in.native(), answer, withProof(t, k2, in.native())), http.StatusBadRequest, "invalid_dpop_proof")
	requireOAuthError(t, post(t, in.native(), answer), http.StatusBadRequest, "invalid_dpop_proof")
	// A proof for another endpoint is not a proof for this one.
	requireOAuthError(t, post(t, in.native(), answer, withProof(t, k1, in.token())), http.StatusBadRequest, "invalid_dpop_proof")

	r = post(t, in.native(), answer, withProof(t, k1, in.native()))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	code := r.str("authorization_code")

	// F03/F05: the code needs a proof for K1 at the token endpoint. A
	// failed attempt burns it, like a wrong code_verifier: whoever holds
	// a stolen code without the key gets nothing, and neither does the
	// code afterwards.
	tokenForm := url.Values{"grant_type": {"authorization_code"}, "client_id": {"demo-app"}, "code": {code}, "code_verifier": {pk.Verifier}}
	requireOAuthError(t, post(t, in.token(), tokenForm, withProof(t, k2, in.token())), http.StatusBadRequest, "invalid_dpop_proof")
	requireOAuthError(t, post(t, in.token(), tokenForm, withProof(t, k1, in.token())), http.StatusBadRequest, "invalid_grant")

	code2 := boundCode(t, in, k1, pk)
	tokenForm.Set("code", code2)
	requireOAuthError(t, post(t, in.token(), tokenForm), http.StatusBadRequest, "invalid_dpop_proof")
	code3 := boundCode(t, in, k1, pk)
	tokenForm.Set("code", code3)
	r = post(t, in.token(), tokenForm, withProof(t, k1, in.token()))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "DPoP", r.str("token_type"))
}

// boundCode signs carol in with a session bound to k and returns the code.
func boundCode(t *testing.T, in instance, k *dpop.Key, pk sdk.PKCE) string {
	t.Helper()
	r := post(t, in.native(), url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}, "scope": {"openid"}}, withProof(t, k, in.native()))
	require.Equal(t, http.StatusForbidden, r.status, r.raw)
	r = post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "username": {"carol"}, "password": {"carol-pw"}}, withProof(t, k, in.native()))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	return r.str("authorization_code")
}

// F02 at the native endpoint: a proof is accepted once.
func TestDPoP_JTIReplay(t *testing.T) {
	in := wrap(start(t, nil))
	k := dpopKey(t)
	proof, err := k.Proof(http.MethodPost, in.native(), "")
	require.NoError(t, err)
	same := func(r *http.Request) { r.Header.Set("DPoP", proof) }
	pk := sdk.NewPKCE()
	form := url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}
	require.Equal(t, http.StatusForbidden, post(t, in.native(), form, same).status)
	requireOAuthError(t, post(t, in.native(), form, same), http.StatusBadRequest, "invalid_dpop_proof")
	// Two DPoP headers are refused.
	two := func(r *http.Request) {
		p1, _ := k.Proof(http.MethodPost, in.native(), "")
		p2, _ := k.Proof(http.MethodPost, in.native(), "")
		r.Header.Add("DPoP", p1)
		r.Header.Add("DPoP", p2)
	}
	requireOAuthError(t, post(t, in.native(), form, two), http.StatusBadRequest, "invalid_dpop_proof")
}

// docs/decisions.md Q5: the SDK sends DPoP only to our AS; the federated flow
// still works with a bound session at AS1 and an unbound one at AS2.
func TestDPoP_FederatedOnlyToOurAS(t *testing.T) {
	as1, _ := pair(t, nil, nil, nil, nil)
	c := as1.Client(t, "demo-app")
	c.DPoP = dpopKey(t)
	code, pk, err := c.Authorize(context.Background(), url.Values{"scope": {"openid"}}, answerAll("carol@as2.example"))
	require.NoError(t, err)
	tok, err := c.Exchange(context.Background(), code, pk)
	require.NoError(t, err)
	require.Equal(t, "DPoP", tok.TokenType)
}

// Q5 / F04: our PAR binds the downstream code to our key (dpop_jkt), the
// redemption carries a proof for it, and a fedas downstream refuses the
// code without that proof; a PAR whose DPoP proof disagrees with its
// dpop_jkt is refused.
func TestDPoP_DownstreamCodeBoundToOurKey(t *testing.T) {
	as1, as2 := pair(t, nil, nil, nil, nil)
	c := as1.Client(t, "demo-app")
	var downstreamCode string
	c.OnExchange = func(_ string, u string, _ url.Values, _ int, body []byte) {
		var r sdk.Response
		_ = json.Unmarshal(body, &r)
		if strings.HasPrefix(u, as2.URL) && r.AuthorizationCode != "" {
			downstreamCode = r.AuthorizationCode
		}
	}
	code, pk, err := c.Authorize(context.Background(), url.Values{"scope": {"openid"}}, answerAll("carol@as2.example"))
	require.NoError(t, err)
	_, err = c.Exchange(context.Background(), code, pk)
	require.NoError(t, err)
	require.NotEmpty(t, downstreamCode)
	// The code was for AS1's client and is spent now; what matters is that
	// a code bound at PAR time is refused without a proof: push one.
	k := dpopKey(t)
	r := post(t, as2.parURL(), url.Values{"response_type": {"code"}, "client_id": {"demo-partner"}, "redirect_uri": {"https://partner.example/cb"},
		"state": {"state-12345"}, "dpop_jkt": {k.JKT}}, basic("demo-partner", partnerSecret), withProof(t, dpopKey(t), as2.parURL()))
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_dpop_proof")
	r = post(t, as2.parURL(), url.Values{"response_type": {"code"}, "client_id": {"demo-partner"}, "redirect_uri": {"https://partner.example/cb"},
		"state": {"state-12345"}, "dpop_jkt": {"not-a-thumbprint"}}, basic("demo-partner", partnerSecret))
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
	r = post(t, as2.parURL(), url.Values{"response_type": {"code"}, "client_id": {"demo-partner"}, "redirect_uri": {"https://partner.example/cb"},
		"state": {"state-12345"}, "dpop_jkt": {k.JKT}}, basic("demo-partner", partnerSecret), withProof(t, k, as2.parURL()))
	require.Equal(t, http.StatusCreated, r.status, r.raw)

	// Turn that pushed request into a code (browser pages) and redeem it.
	params, err := browserSim(t, "carol", "carol-pw", "https://partner.example/cb")(context.Background(),
		as2.URL+"/oauth2/authorize?"+url.Values{"client_id": {"demo-partner"}, "request_uri": {r.str("request_uri")}}.Encode())
	require.NoError(t, err)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {params.Get("code")}, "redirect_uri": {"https://partner.example/cb"}}
	requireOAuthError(t, post(t, as2.token(), form, basic("demo-partner", partnerSecret)), http.StatusBadRequest, "invalid_dpop_proof")
	params, err = browserSim(t, "carol", "carol-pw", "https://partner.example/cb")(context.Background(),
		as2.URL+"/oauth2/authorize?"+url.Values{"client_id": {"demo-partner"}, "request_uri": {pushBound(t, as2, k)}}.Encode())
	require.NoError(t, err)
	form.Set("code", params.Get("code"))
	r = post(t, as2.token(), form, basic("demo-partner", partnerSecret), withProof(t, k, as2.token()))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.Equal(t, "DPoP", r.str("token_type"))
}

func pushBound(t *testing.T, in instance, k *dpop.Key) string {
	t.Helper()
	r := post(t, in.parURL(), url.Values{"response_type": {"code"}, "client_id": {"demo-partner"}, "redirect_uri": {"https://partner.example/cb"},
		"state": {"state-12345"}, "dpop_jkt": {k.JKT}}, basic("demo-partner", partnerSecret))
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	return r.str("request_uri")
}
