package server_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
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
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/storage/redistest"
)

// jwtClient is a private_key_jwt client registered for the tests below.
type jwtClient struct {
	id  string
	alg jose.SignatureAlgorithm
	key jose.JSONWebKey // private
}

func newJWTClient(tb testing.TB, id string, alg jose.SignatureAlgorithm) jwtClient {
	tb.Helper()
	var k crypto.Signer
	var err error
	switch alg {
	case jose.ES256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.PS256:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.EdDSA:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		tb.Fatalf("no key type for %s", alg)
	}
	require.NoError(tb, err)
	return jwtClient{id: id, alg: alg, key: jose.JSONWebKey{Key: k, KeyID: id + "-key", Algorithm: string(alg), Use: "sig"}}
}

func (j jwtClient) config(tb testing.TB) config.Client {
	tb.Helper()
	pub, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{j.key.Public()}})
	require.NoError(tb, err)
	return config.Client{ID: j.id, TokenEndpointAuthMethod: "private_key_jwt", JWKS: string(pub), SigningAlg: string(j.alg),
		Scopes: []string{"openid", "offline_access"}, GrantTypes: []string{"authorization_code", "refresh_token"}}
}

// assertion signs a fresh client assertion for audience aud, with claims
// overridden by edit.
func (j jwtClient) assertion(tb testing.TB, aud string, edit ...func(map[string]any)) string {
	tb.Helper()
	now := time.Now()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	c := map[string]any{"iss": j.id, "sub": j.id, "aud": aud, "jti": base64.RawURLEncoding.EncodeToString(jti),
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	for _, e := range edit {
		e(c)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: j.alg, Key: j.key}, (&jose.SignerOptions{}).WithType("JWT"))
	require.NoError(tb, err)
	b, err := json.Marshal(c)
	require.NoError(tb, err)
	jws, err := s.Sign(b)
	require.NoError(tb, err)
	out, err := jws.CompactSerialize()
	require.NoError(tb, err)
	return out
}

// clientAuth adds one client authentication to a request: it may edit
// the form and returns request options.
type clientAuth func(tb testing.TB, form url.Values) []func(*http.Request)

func authBasic(id, secret string) clientAuth {
	return func(testing.TB, url.Values) []func(*http.Request) { return []func(*http.Request){basic(id, secret)} }
}

func authPost(id, secret string) clientAuth {
	return func(_ testing.TB, f url.Values) []func(*http.Request) {
		f.Set("client_id", id)
		f.Set("client_secret", secret)
		return nil
	}
}

func authNone(id string) clientAuth {
	return func(_ testing.TB, f url.Values) []func(*http.Request) { f.Set("client_id", id); return nil }
}

func authJWT(j jwtClient, aud string, edit ...func(map[string]any)) clientAuth {
	return func(tb testing.TB, f url.Values) []func(*http.Request) {
		f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		f.Set("client_assertion", j.assertion(tb, aud, edit...))
		return nil
	}
}

func authHeader(v string) clientAuth {
	return func(testing.TB, url.Values) []func(*http.Request) {
		return []func(*http.Request){func(r *http.Request) { r.Header.Add("Authorization", v) }}
	}
}

func noAuth(testing.TB, url.Values) []func(*http.Request) { return nil }

// authEnv is one server with a client for every authentication method
// and private_key_jwt algorithm we publish.
type authEnv struct {
	in   instance
	jwts map[jose.SignatureAlgorithm]jwtClient
}

const postRTSecret = "post-rt-secret"

func newAuthEnv(tb testing.TB, st ...func(*config.Config)) authEnv {
	tb.Helper()
	jwts := map[jose.SignatureAlgorithm]jwtClient{}
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.PS256, jose.EdDSA} {
		jwts[alg] = newJWTClient(tb, "pk-"+strings.ToLower(string(alg)), alg)
	}
	edits := append([]func(*config.Config){func(c *config.Config) {
		for _, j := range jwts {
			c.Clients = append(c.Clients, j.config(tb))
		}
		c.Clients = append(c.Clients, config.Client{ID: "post-rt", TokenEndpointAuthMethod: "client_secret_post", SecretSHA256: config.SecretDigest(postRTSecret),
			Scopes: []string{"openid", "offline_access"}, GrantTypes: []string{"authorization_code", "refresh_token"}})
	}}, st...)
	return authEnv{in: wrap(start(tb, nil, edits...)), jwts: jwts}
}

// byMethod returns the test client and its authentication for an
// advertised method (and algorithm, for private_key_jwt).
func (e authEnv) byMethod(tb testing.TB, method, alg string) (string, clientAuth) {
	tb.Helper()
	switch method {
	case "none":
		return "demo-app", authNone("demo-app")
	case "client_secret_basic":
		return "fp-conf", authBasic("fp-conf", "fp-conf-secret")
	case "client_secret_post":
		return "post-rt", authPost("post-rt", postRTSecret)
	case "private_key_jwt":
		j, ok := e.jwts[jose.SignatureAlgorithm(alg)]
		require.True(tb, ok, "metadata advertises private_key_jwt with %q, which no test client uses", alg)
		return j.id, authJWT(j, e.in.URL)
	}
	tb.Fatalf("metadata advertises auth method %q, which this test does not know", method)
	return "", nil
}

// tokens gets an access and a refresh token issued to clientID: the code
// is minted as the flow engine would, then redeemed at the token endpoint
// with the client's own authentication.
func (e authEnv) tokens(tb testing.TB, clientID string, auth clientAuth) (at, rt string) {
	tb.Helper()
	pk := sdk.NewPKCE()
	code, err := e.in.Server.IssueCode(context.Background(), flow.Grant{ClientID: clientID, Subject: "carol", Username: "carol", AuthTime: time.Now(), AMR: []string{"pwd"},
		CodeChallenge: pk.Challenge, CodeChallengeMethod: "S256", Scope: "openid offline_access"})
	require.NoError(tb, err)
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {pk.Verifier}}
	r := post(tb, e.in.token(), f, auth(tb, f)...)
	require.Equal(tb, http.StatusOK, r.status, r.raw)
	require.NotEmpty(tb, r.str("access_token"))
	require.NotEmpty(tb, r.str("refresh_token"))
	return r.str("access_token"), r.str("refresh_token")
}

func (e authEnv) call(tb testing.TB, endpoint string, form url.Values, auth clientAuth) reply {
	tb.Helper()
	return post(tb, endpoint, form, auth(tb, form)...)
}

// active introspects tok as demo-partner (a resource server) and reports
// whether the access token is active.
func (e authEnv) active(tb testing.TB, tok string) bool {
	tb.Helper()
	return e.in.introspect(tb, tok).body["active"] == true
}

func requireInactive(tb testing.TB, r reply) {
	tb.Helper()
	require.Equal(tb, http.StatusOK, r.status, r.raw)
	require.Equal(tb, map[string]any{"active": false}, r.body, r.raw)
	require.Equal(tb, "no-store", r.header.Get("Cache-Control"))
}

// requireRefused asserts an RFC 6749 §5.2 error that says nothing about
// the token.
func requireRefused(tb testing.TB, r reply, status int, code string) {
	tb.Helper()
	requireOAuthError(tb, r, status, code)
	require.NotContains(tb, r.body, "active")
	require.NotContains(tb, r.raw, "carol")
	if code == "invalid_client" && r.header.Get("WWW-Authenticate") != "" {
		require.True(tb, strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic "), r.header.Get("WWW-Authenticate"))
	}
}

// TestIntrospection_CallerAuthentication (RFC 7662 §2.1): every advertised
// confidential method authenticates the caller; nothing else does — not a
// bearer access token (header or access_token parameter), not a public
// client, not a wrong or mismatched credential, not a replayed assertion.
func TestIntrospection_CallerAuthentication(t *testing.T) {
	e := newAuthEnv(t)
	at, _ := e.tokens(t, "demo-app", authNone("demo-app"))
	es := e.jwts[jose.ES256]
	replayed := authJWT(es, e.in.URL)
	f := url.Values{}
	replayedOpts := replayed(t, f)
	require.Equal(t, http.StatusOK, post(t, e.in.intro(), url.Values{"token": {at}, "client_assertion_type": f["client_assertion_type"], "client_assertion": f["client_assertion"]}, replayedOpts...).status)
	otherKey := newJWTClient(t, es.id, jose.ES256) // same client_id and kid, another key

	tests := []struct {
		name   string
		auth   clientAuth
		form   url.Values
		status int
		code   string // "" for an active answer
	}{
		{"client_secret_basic", authBasic("demo-partner", partnerSecret), nil, 200, ""},
		{"client_secret_post", authPost("post-rt", postRTSecret), nil, 200, ""},
		{"private_key_jwt ES256", authJWT(e.jwts[jose.ES256], e.in.URL), nil, 200, ""},
		{"private_key_jwt PS256", authJWT(e.jwts[jose.PS256], e.in.URL), nil, 200, ""},
		{"private_key_jwt EdDSA", authJWT(e.jwts[jose.EdDSA], e.in.URL), nil, 200, ""},
		{"no authentication", noAuth, nil, 401, "invalid_client"},
		{"Bearer header with a live access token", authHeader("Bearer " + at), nil, 401, "invalid_client"},
		{"DPoP header scheme with a live access token", authHeader("DPoP " + at), nil, 401, "invalid_client"},
		{"access_token parameter", noAuth, url.Values{"access_token": {at}}, 401, "invalid_client"},
		{"Bearer header and client_id of a public client", authHeader("Bearer " + at), url.Values{"client_id": {"demo-app"}}, 401, "invalid_client"},
		{"two Authorization headers", func(tb testing.TB, f url.Values) []func(*http.Request) {
			return append(authBasic("demo-partner", partnerSecret)(tb, f), authHeader("Bearer "+at)(tb, f)...)
		}, nil, 400, "invalid_request"},
		{"public client by client_id", authNone("demo-app"), nil, 401, "invalid_client"},
		{"public client by Basic without secret", authBasic("demo-app", ""), nil, 401, "invalid_client"},
		{"wrong secret", authBasic("demo-partner", "nope"), nil, 401, "invalid_client"},
		{"unknown client", authBasic("nobody", "x"), nil, 401, "invalid_client"},
		{"client_secret_post client by Basic", authBasic("post-rt", postRTSecret), nil, 401, "invalid_client"},
		{"client_secret_basic client by post", authPost("demo-partner", partnerSecret), nil, 401, "invalid_client"},
		{"private_key_jwt client by secret", authPost(es.id, "guess"), nil, 401, "invalid_client"},
		{"replayed assertion", func(testing.TB, url.Values) []func(*http.Request) { return replayedOpts }, url.Values{
			"client_assertion_type": f["client_assertion_type"], "client_assertion": f["client_assertion"]}, 401, "invalid_client"},
		{"assertion signed with an unregistered key", authJWT(otherKey, e.in.URL), nil, 401, "invalid_client"},
		{"assertion for another client's id", authJWT(es, e.in.URL, func(c map[string]any) { c["iss"], c["sub"] = "pk-ps256", "pk-ps256" }), nil, 401, "invalid_client"},
		{"assertion aud = introspection URL", authJWT(es, e.in.intro()), nil, 401, "invalid_client"},
		{"assertion without exp", authJWT(es, e.in.URL, func(c map[string]any) { delete(c, "exp") }), nil, 401, "invalid_client"},
		{"assertion with a string exp", authJWT(es, e.in.URL, func(c map[string]any) { c["exp"] = "soon" }), nil, 401, "invalid_client"},
		{"assertion without jti", authJWT(es, e.in.URL, func(c map[string]any) { delete(c, "jti") }), nil, 401, "invalid_client"},
		{"assertion without its type", noAuth, url.Values{"client_assertion": {es.assertion(t, e.in.URL)}}, 400, "invalid_request"},
		{"assertion with a wrong type", noAuth, url.Values{"client_assertion": {es.assertion(t, e.in.URL)}, "client_assertion_type": {"urn:x"}}, 400, "invalid_request"},
		{"assertion and Basic", func(tb testing.TB, f url.Values) []func(*http.Request) {
			authJWT(es, e.in.URL)(tb, f)
			return authBasic("demo-partner", partnerSecret)(tb, f)
		}, nil, 400, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"token": {at}}
			for k, v := range tc.form {
				form[k] = v
			}
			r := e.call(t, e.in.intro(), form, tc.auth)
			if tc.code != "" {
				requireRefused(t, r, tc.status, tc.code)
				return
			}
			require.Equal(t, http.StatusOK, r.status, r.raw)
			require.Equal(t, true, r.body["active"], r.raw)
			require.Equal(t, "demo-app", r.body["client_id"])
			require.Equal(t, "carol", r.body["sub"])
		})
	}
	t.Run("a bearer challenge says Basic", func(t *testing.T) {
		r := e.call(t, e.in.intro(), url.Values{"token": {at}}, authHeader("Bearer "+at))
		require.Equal(t, `Basic realm="fedas", error="invalid_client"`, r.header.Get("WWW-Authenticate"))
	})
}

// TestIntrospection_WhichTokens: the policy in introspect.go — a
// confidential client sees any access token, but only its own refresh
// tokens; anything unknown, revoked or of another kind is {"active":false}
// and the hint only orders the lookup (RFC 7662 §2.1, §2.2, §4).
func TestIntrospection_WhichTokens(t *testing.T) {
	e := newAuthEnv(t)
	partner := authBasic("demo-partner", partnerSecret)
	at, rt := e.tokens(t, "demo-app", authNone("demo-app"))
	ownAT, ownRT := e.tokens(t, "fp-conf", authBasic("fp-conf", "fp-conf-secret"))
	revokedAT, _ := e.tokens(t, "demo-app", authNone("demo-app"))
	require.Equal(t, http.StatusOK, e.call(t, e.in.revoke(), url.Values{"token": {revokedAT}}, authNone("demo-app")).status)
	pk := sdk.NewPKCE()
	code, err := e.in.Server.IssueCode(context.Background(), flow.Grant{ClientID: "demo-app", Subject: "carol", AuthTime: time.Now(),
		CodeChallenge: pk.Challenge, CodeChallengeMethod: "S256", Scope: "openid"})
	require.NoError(t, err)

	tests := []struct {
		name      string
		auth      clientAuth
		token     string
		hint      string
		tokenType string // "" for inactive
	}{
		{"another client's access token", partner, at, "", "Bearer"},
		{"another client's access token, refresh hint", partner, at, "refresh_token", "Bearer"},
		{"another client's access token, unknown hint", partner, at, "id_token", "Bearer"},
		{"another client's refresh token", partner, rt, "", ""},
		{"another client's refresh token, refresh hint", partner, rt, "refresh_token", ""},
		{"own access token", authBasic("fp-conf", "fp-conf-secret"), ownAT, "", "Bearer"},
		{"own refresh token", authBasic("fp-conf", "fp-conf-secret"), ownRT, "", "refresh_token"},
		{"own refresh token, access hint", authBasic("fp-conf", "fp-conf-secret"), ownRT, "access_token", "refresh_token"},
		{"revoked access token", partner, revokedAT, "", ""},
		{"an authorization code", partner, code, "", ""},
		{"unknown token of the right shape", partner, "ory_at_AAAA.BBBB", "", ""},
		{"an access token with its signature changed", partner, at[:len(at)-2] + "xx", "", ""},
		{"garbage", partner, "not a token", "", ""},
		{"an ID-token-like JWT", partner, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJjYXJvbCJ9.", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := url.Values{"token": {tc.token}}
			if tc.hint != "" {
				f.Set("token_type_hint", tc.hint)
			}
			r := e.call(t, e.in.intro(), f, tc.auth)
			if tc.tokenType == "" {
				requireInactive(t, r)
				return
			}
			require.Equal(t, http.StatusOK, r.status, r.raw)
			require.Equal(t, true, r.body["active"])
			require.Equal(t, tc.tokenType, r.body["token_type"])
			for _, k := range []string{"client_id", "scope", "iat", "exp", "iss", "sub", "username", "auth_time", "amr"} {
				require.Contains(t, r.body, k)
			}
			require.Equal(t, e.in.URL, r.body["iss"])
			require.Equal(t, "openid offline_access", r.body["scope"])
		})
	}
	t.Run("missing token", func(t *testing.T) {
		requireRefused(t, e.call(t, e.in.intro(), url.Values{}, partner), 400, "invalid_request")
	})
	t.Run("repeated token", func(t *testing.T) {
		requireRefused(t, e.call(t, e.in.intro(), url.Values{"token": {at, rt}}, partner), 400, "invalid_request")
	})
	t.Run("GET", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, e.in.intro()+"?token="+url.QueryEscape(at), nil)
		basic("demo-partner", partnerSecret)(req)
		r := do(t, req)
		require.Equal(t, http.StatusMethodNotAllowed, r.status, r.raw)
		require.NotContains(t, r.body, "active")
	})
}

// TestRevocation_CallerAuthentication (RFC 7009 §2.1): each advertised
// method revokes the caller's own token; a bearer token, no or wrong
// credentials, and another client's token are refused and leave the token
// alive.
func TestRevocation_CallerAuthentication(t *testing.T) {
	e := newAuthEnv(t)
	es := e.jwts[jose.ES256]
	tests := []struct {
		name   string
		owner  string
		ownerA clientAuth
		auth   func(at string) clientAuth
		status int
		code   string
	}{
		{"none, own token", "demo-app", authNone("demo-app"), func(string) clientAuth { return authNone("demo-app") }, 200, ""},
		{"client_secret_basic, own token", "fp-conf", authBasic("fp-conf", "fp-conf-secret"), func(string) clientAuth { return authBasic("fp-conf", "fp-conf-secret") }, 200, ""},
		{"client_secret_post, own token", "post-rt", authPost("post-rt", postRTSecret), func(string) clientAuth { return authPost("post-rt", postRTSecret) }, 200, ""},
		{"private_key_jwt, own token", es.id, authJWT(es, e.in.URL), func(string) clientAuth { return authJWT(es, e.in.URL) }, 200, ""},
		{"bearer header with the token itself", "demo-app", authNone("demo-app"), func(at string) clientAuth { return authHeader("Bearer " + at) }, 401, "invalid_client"},
		{"bearer header and client_id", "demo-app", authNone("demo-app"), func(at string) clientAuth {
			return func(tb testing.TB, f url.Values) []func(*http.Request) {
				f.Set("client_id", "demo-app")
				return authHeader("Bearer "+at)(tb, f)
			}
		}, 401, "invalid_client"},
		{"no authentication", "demo-app", authNone("demo-app"), func(string) clientAuth { return noAuth }, 401, "invalid_client"},
		{"wrong secret", "fp-conf", authBasic("fp-conf", "fp-conf-secret"), func(string) clientAuth { return authBasic("fp-conf", "nope") }, 401, "invalid_client"},
		{"another confidential client's token", "fp-conf", authBasic("fp-conf", "fp-conf-secret"), func(string) clientAuth { return authBasic("demo-partner", partnerSecret) }, 400, "unauthorized_client"},
		{"a public client revoking a confidential client's token", "fp-conf", authBasic("fp-conf", "fp-conf-secret"), func(string) clientAuth { return authNone("c2") }, 400, "unauthorized_client"},
		{"a confidential client revoking a public client's token", "demo-app", authNone("demo-app"), func(string) clientAuth { return authJWT(es, e.in.URL) }, 400, "unauthorized_client"},
		{"the owner's id with another client's secret", "fp-conf", authBasic("fp-conf", "fp-conf-secret"), func(string) clientAuth { return authBasic("fp-conf", partnerSecret) }, 401, "invalid_client"},
	}
	for _, tc := range tests {
		for _, which := range []string{"access_token", "refresh_token"} {
			t.Run(tc.name+"/"+which, func(t *testing.T) {
				at, rt := e.tokens(t, tc.owner, tc.ownerA)
				tok := map[string]string{"access_token": at, "refresh_token": rt}[which]
				r := e.call(t, e.in.revoke(), url.Values{"token": {tok}, "token_type_hint": {which}}, tc.auth(at))
				if tc.code != "" {
					requireRefused(t, r, tc.status, tc.code)
					require.True(t, e.active(t, at), "a refused revocation leaves the token alive")
					return
				}
				require.Equal(t, http.StatusOK, r.status, r.raw)
				require.Equal(t, "no-store", r.header.Get("Cache-Control"))
				require.False(t, e.active(t, at), "revoking either token revokes the grant")
				// Replaying the revocation is harmless: 200 (RFC 7009 §2.2).
				f := url.Values{"token": {tok}}
				require.Equal(t, http.StatusOK, e.call(t, e.in.revoke(), f, tc.auth(at)).status)
			})
		}
	}
	t.Run("missing token", func(t *testing.T) {
		requireRefused(t, e.call(t, e.in.revoke(), url.Values{}, authNone("demo-app")), 400, "invalid_request")
	})
	t.Run("repeated token", func(t *testing.T) {
		at, rt := e.tokens(t, "demo-app", authNone("demo-app"))
		requireRefused(t, e.call(t, e.in.revoke(), url.Values{"token": {at, rt}}, authNone("demo-app")), 400, "invalid_request")
		require.True(t, e.active(t, at))
	})
	t.Run("replayed assertion", func(t *testing.T) {
		at, _ := e.tokens(t, es.id, authJWT(es, e.in.URL))
		a := es.assertion(t, e.in.URL)
		f := func(tok string) url.Values {
			return url.Values{"token": {tok}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
		}
		require.Equal(t, http.StatusOK, post(t, e.in.revoke(), f("ory_at_unknown.unknown")).status)
		requireRefused(t, post(t, e.in.revoke(), f(at)), 401, "invalid_client")
		require.True(t, e.active(t, at))
	})
}

// TestIntrospectionRevocation_StorageDown: with Redis down, introspection
// and revocation answer 503 temporarily_unavailable with Retry-After —
// never {"active":false} and never a 200 that leaves the token alive —
// for every authentication method.
func TestIntrospectionRevocation_StorageDown(t *testing.T) {
	rs := redistest.Start(t)
	e := authEnv{jwts: map[jose.SignatureAlgorithm]jwtClient{jose.ES256: newJWTClient(t, "pk-es256", jose.ES256)}}
	e.in = wrap(start(t, redisStore(t, rs.URL()), func(c *config.Config) {
		c.Clients = append(c.Clients, e.jwts[jose.ES256].config(t), config.Client{ID: "post-rt", TokenEndpointAuthMethod: "client_secret_post",
			SecretSHA256: config.SecretDigest(postRTSecret), Scopes: []string{"openid", "offline_access"}, GrantTypes: []string{"authorization_code", "refresh_token"}})
	}))
	at, rt := e.tokens(t, "demo-app", authNone("demo-app"))
	rs.Stop()
	tests := []struct {
		name     string
		endpoint string
		auth     clientAuth
		token    string
	}{
		{"introspect access token, basic", e.in.intro(), authBasic("demo-partner", partnerSecret), at},
		{"introspect refresh token, post", e.in.intro(), authPost("post-rt", postRTSecret), rt},
		{"introspect unknown token, basic", e.in.intro(), authBasic("demo-partner", partnerSecret), "ory_at_x.y"},
		{"revoke access token, none", e.in.revoke(), authNone("demo-app"), at},
		{"revoke refresh token, none", e.in.revoke(), authNone("demo-app"), rt},
		{"revoke unknown token, basic", e.in.revoke(), authBasic("demo-partner", partnerSecret), "ory_rt_x.y"},
		// The assertion's jti cannot be recorded: no authentication.
		{"introspect with private_key_jwt", e.in.intro(), authJWT(e.jwts[jose.ES256], e.in.URL), at},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call(t, tc.endpoint, url.Values{"token": {tc.token}}, tc.auth)
			requireRefused(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
			require.Equal(t, "1", r.header.Get("Retry-After"))
		})
	}
}

// TestMetadata_AdvertisedAuthWorks (RFC 8414 §2): every client
// authentication method, and for private_key_jwt every algorithm, that the
// metadata advertises for introspection, revocation and the token endpoint
// works there; introspection advertises exactly the confidential methods;
// DPoP algorithms are the dpop package's allow-list (RFC 9449 §5.1).
func TestMetadata_AdvertisedAuthWorks(t *testing.T) {
	e := newAuthEnv(t)
	req, _ := http.NewRequest(http.MethodGet, e.in.URL+"/.well-known/oauth-authorization-server", nil)
	m := do(t, req)
	require.Equal(t, http.StatusOK, m.status)
	strs := func(k string) []string {
		raw, ok := m.body[k].([]any)
		require.True(t, ok, "metadata %s is missing", k)
		out := make([]string, len(raw))
		for i, v := range raw {
			out[i] = v.(string)
		}
		return out
	}
	confidential := []string{"client_secret_basic", "client_secret_post", "private_key_jwt"}
	require.ElementsMatch(t, confidential, strs("introspection_endpoint_auth_methods_supported"))
	require.ElementsMatch(t, append([]string{"none"}, confidential...), strs("revocation_endpoint_auth_methods_supported"))
	require.ElementsMatch(t, append([]string{"none"}, confidential...), strs("token_endpoint_auth_methods_supported"))
	require.ElementsMatch(t, confidential, strs("pushed_authorization_request_endpoint_auth_methods_supported"))
	var dpopAlgs []string
	for _, a := range dpop.Algs {
		dpopAlgs = append(dpopAlgs, string(a))
	}
	require.Equal(t, dpopAlgs, strs("dpop_signing_alg_values_supported"))
	for _, ep := range []string{"token", "introspection", "revocation"} {
		algs := strs(ep + "_endpoint_auth_signing_alg_values_supported")
		require.NotContains(t, algs, "none")
		require.NotContains(t, algs, "HS256")
		require.NotContains(t, algs, "RS256")
	}

	type combo struct{ endpoint, method, alg string }
	var combos []combo
	for _, ep := range []string{"token", "introspection", "revocation"} {
		for _, method := range strs(ep + "_endpoint_auth_methods_supported") {
			if method != "private_key_jwt" {
				combos = append(combos, combo{ep, method, ""})
				continue
			}
			for _, alg := range strs(ep + "_endpoint_auth_signing_alg_values_supported") {
				combos = append(combos, combo{ep, method, alg})
			}
		}
	}
	require.Len(t, combos, 6+5+6) // token, revocation: none, 2 secrets, 3 algs; introspection: no none
	for _, c := range combos {
		t.Run(c.endpoint+"/"+c.method+"/"+c.alg, func(t *testing.T) {
			id, auth := e.byMethod(t, c.method, c.alg)
			at, rt := e.tokens(t, id, auth) // the token endpoint, by this method
			switch c.endpoint {
			case "token":
				f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
				r := e.call(t, e.in.token(), f, auth)
				require.Equal(t, http.StatusOK, r.status, r.raw)
				require.NotEmpty(t, r.str("access_token"))
			case "introspection":
				r := e.call(t, e.in.intro(), url.Values{"token": {rt}}, auth)
				require.Equal(t, http.StatusOK, r.status, r.raw)
				require.Equal(t, true, r.body["active"], r.raw)
				require.Equal(t, id, r.body["client_id"])
			case "revocation":
				r := e.call(t, e.in.revoke(), url.Values{"token": {at}}, auth)
				require.Equal(t, http.StatusOK, r.status, r.raw)
				require.False(t, e.active(t, at))
			}
		})
	}
	t.Run("introspection/none is refused", func(t *testing.T) {
		at, _ := e.tokens(t, "demo-app", authNone("demo-app"))
		requireRefused(t, e.call(t, e.in.intro(), url.Values{"token": {at}}, authNone("demo-app")), 401, "invalid_client")
	})
}
