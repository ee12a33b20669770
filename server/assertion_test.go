package server_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
)

// assertionEnv is our AS with a private_key_jwt client "pkjwt".
type assertionEnv struct {
	in  instance
	key jose.JSONWebKey // private, ES256
}

func newAssertionEnv(t *testing.T) assertionEnv {
	t.Helper()
	fk := newFedKey(t, "pkjwt-key")
	var k jose.JSONWebKey
	require.NoError(t, json.Unmarshal([]byte(fk.private), &k))
	in := wrap(start(t, nil, func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "pkjwt", TokenEndpointAuthMethod: "private_key_jwt", JWKS: fk.public, SigningAlg: "ES256",
			Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"https://pkjwt.example/cb"}})
	}))
	return assertionEnv{in: in, key: k}
}

func (e assertionEnv) claims() map[string]any {
	now := time.Now()
	return map[string]any{"iss": "pkjwt", "sub": "pkjwt", "aud": e.in.URL, "jti": base64.RawURLEncoding.EncodeToString([]byte(now.String())),
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
}

func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, c map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid).WithType("JWT"))
	require.NoError(t, err)
	b, _ := json.Marshal(c)
	jws, err := s.Sign(b)
	require.NoError(t, err)
	out, err := jws.CompactSerialize()
	require.NoError(t, err)
	return out
}

func (e assertionEnv) par(t *testing.T, assertion string, opts ...func(*http.Request)) reply {
	t.Helper()
	return post(t, e.in.parURL(), url.Values{"response_type": {"code"}, "client_id": {"pkjwt"}, "redirect_uri": {"https://pkjwt.example/cb"},
		"state": {"state-12345"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion": {assertion}}, opts...)
}

// G01: an assertion is accepted once.
func TestClientAssertion_JTIReplay(t *testing.T) {
	e := newAssertionEnv(t)
	a := sign(t, jose.ES256, e.key.Key, e.key.KeyID, e.claims())
	require.Equal(t, http.StatusCreated, e.par(t, a).status)
	requireOAuthError(t, e.par(t, a), http.StatusUnauthorized, "invalid_client")
}

// G02–G04: audience, time window, algorithm and claims.
func TestClientAssertion_Table(t *testing.T) {
	e := newAssertionEnv(t)
	now := time.Now()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	with := func(k string, v any) map[string]any { c := e.claims(); c[k] = v; return c }
	without := func(k string) map[string]any { c := e.claims(); delete(c, k); return c }
	es := func(c map[string]any) string { return sign(t, jose.ES256, e.key.Key, e.key.KeyID, c) }
	tests := []struct {
		name      string
		assertion func() string
		ok        bool
	}{
		{"G02 aud = issuer string", func() string { return es(e.claims()) }, true},
		{"G02 aud = token URL", func() string { return es(with("aud", e.in.token())) }, false},
		{"G02 aud = PAR URL", func() string { return es(with("aud", e.in.parURL())) }, false},
		{"G02 aud = [issuer, x]", func() string { return es(with("aud", []string{e.in.URL, "x"})) }, false},
		{"G02 aud = [issuer]", func() string { return es(with("aud", []string{e.in.URL})) }, false},
		{"G03 exp -5 min", func() string { return es(with("exp", now.Add(-5*time.Minute).Unix())) }, false},
		{"G03 iat +8 s", func() string { return es(with("iat", now.Add(8*time.Second).Unix())) }, true},
		{"G03 nbf +8 s", func() string { return es(with("nbf", now.Add(8*time.Second).Unix())) }, true},
		{"G03 iat +61 s", func() string { return es(with("iat", now.Add(61*time.Second).Unix())) }, false},
		{"G04 RS256", func() string { return sign(t, jose.RS256, rsaKey, e.key.KeyID, e.claims()) }, false},
		{"G04 HS256 keyed with the public key", func() string {
			pub, _ := json.Marshal(e.key.Public())
			return sign(t, jose.HS256, pub, e.key.KeyID, e.claims())
		}, false},
		{"G04 alg none", func() string {
			h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"pkjwt-key"}`))
			b, _ := json.Marshal(e.claims())
			return h + "." + base64.RawURLEncoding.EncodeToString(b) + "."
		}, false},
		{"G04 missing sub", func() string { return es(without("sub")) }, false},
		{"G04 iss != sub", func() string { return es(with("iss", "someone-else")) }, false},
		{"garbage", func() string { return "a.b.c" }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.par(t, tc.assertion())
			if tc.ok {
				require.Equal(t, http.StatusCreated, r.status, r.raw)
				return
			}
			requireOAuthError(t, r, http.StatusUnauthorized, "invalid_client")
			require.False(t, strings.Contains(r.raw, "request_uri"))
		})
	}
}

// G05: one authentication method per request.
func TestClientAuth_SingleMethod(t *testing.T) {
	e := newAssertionEnv(t)
	a := sign(t, jose.ES256, e.key.Key, e.key.KeyID, e.claims())
	requireOAuthError(t, e.par(t, a, basic("pkjwt", "whatever")), http.StatusBadRequest, "invalid_request")
	r := post(t, e.in.parURL(), url.Values{"response_type": {"code"}, "client_id": {"demo-partner"}, "client_secret": {partnerSecret},
		"redirect_uri": {"https://partner.example/cb"}, "state": {"state-12345"}}, basic("demo-partner", partnerSecret))
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
}
