package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage"
)

// fedKey is a client-assertion key pair for private_key_jwt at a downstream.
type fedKey struct {
	private string // JWK JSON, for downstreams[].auth.key
	public  string // JWKS JSON, for clients[].jwks at the downstream
}

func newFedKey(tb testing.TB, kid string) fedKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	priv := jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}
	pb, err := json.Marshal(priv)
	require.NoError(tb, err)
	pub, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{priv.Public()}})
	require.NoError(tb, err)
	return fedKey{private: string(pb), public: string(pub)}
}

// federatingClient registers an upstream AS at a downstream: it
// authenticates with private_key_jwt, may get credential challenges, and
// may pass the demo app's native callbacks on.
func federatingClient(id string, key fedKey, allowChallenges bool) config.Client {
	return config.Client{
		ID: id, Federating: true, AllowCredentialChallenges: allowChallenges,
		TokenEndpointAuthMethod: "private_key_jwt", JWKS: key.public, SigningAlg: "ES256",
		Scopes: []string{"openid", "profile", "email"}, GrantTypes: []string{"authorization_code"},
		RedirectURIs:       []string{"https://" + id + ".example/web-callback"},
		NativeCallbackURIs: []string{"https://app.example/cb", "com.example.demo:/cb"},
	}
}

// downstreamOf configures issuer as a downstream we federate to as clientID.
func downstreamOf(id, issuer, clientID string, key fedKey) config.Downstream {
	return config.Downstream{
		ID: id, Issuer: issuer, Name: id, ClientID: clientID,
		Auth:   config.DownstreamAuth{Method: "private_key_jwt", Key: key.private},
		Scopes: map[string]string{"openid": "openid", "profile": "profile", "email": "email"},
		Claims: []string{"email"},
	}
}

// emailPrompt routes by email domain.
func emailPrompt(c *config.Config, domain, ds string) {
	c.Prompt = &config.Prompt{Inputs: []config.PromptInput{{Key: "email", Title: "Email", Hint: "you@example.com"}}}
	c.Routes = append(c.Routes, config.Route{Downstream: ds, EmailDomains: []string{domain}})
}

// answerAll answers prompts with email and challenges as carol would.
func answerAll(email string) sdk.UI {
	carol := userUI("carol", "carol-pw", "")
	return func(ctx context.Context, r sdk.Response) (url.Values, error) {
		if r.Error == "insufficient_information" {
			return url.Values{"email": {email}}, nil
		}
		return carol(ctx, r)
	}
}

// pair starts a downstream (AS2) and a federating AS (AS1) routing
// @as2.example to it, each on its own store.
func pair(t *testing.T, st1, st2 storage.Store, edit1, edit2 func(*config.Config)) (as1, as2 instance) {
	t.Helper()
	key := newFedKey(t, "as1-key")
	as2 = wrap(start(t, st2, func(c *config.Config) {
		c.Clients = append(c.Clients, federatingClient("as1", key, true))
		if edit2 != nil {
			edit2(c)
		}
	}))
	as1 = wrap(start(t, st1, func(c *config.Config) {
		c.Downstreams = append(c.Downstreams, downstreamOf("as2", as2.URL, "as1", key))
		emailPrompt(c, "as2.example", "as2")
		if edit1 != nil {
			edit1(c)
		}
	}))
	return as1, as2
}

// TestFederation_AppendixA1 is the reference scenario of the federation
// draft (Appendix A.1) with two fedas instances on real HTTP and real
// Redis: the client asks AS1, answers the email prompt, is told to
// federate to AS2, signs in there with a credential challenge (AS1 opted
// in at AS2), posts AS2's code to AS1's response_uri, and redeems AS1's
// code.
func TestFederation_AppendixA1(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			as1, as2 := pair(t, b.store(t), b.store(t), nil, nil)
			c := as1.Client(t, "demo-app")
			var seen []string
			c.OnExchange = func(_ string, u string, _ url.Values, status int, body []byte) {
				var r sdk.Response
				_ = json.Unmarshal(body, &r)
				seen = append(seen, r.Error)
			}
			code, pk, err := c.Authorize(context.Background(),
				url.Values{"scope": {"openid profile email offline_access"}, "native_callback_uri": {"https://app.example/cb"}},
				answerAll("carol@as2.example"))
			require.NoError(t, err)
			require.Equal(t, []string{"insufficient_information", "federate", "insufficient_authorization", "", ""}, seen)
			tok, err := c.Exchange(context.Background(), code, pk)
			require.NoError(t, err)
			ir := as1.introspect(t, tok.AccessToken)
			require.Equal(t, true, ir.body["active"])
			require.Equal(t, as2.URL+"|carol", ir.str("sub"))
			require.Equal(t, "demo-app", ir.str("client_id"))
			_ = as2
		})
	}
}

// TestFederation_ThreeHops: AS1 → AS2 → AS3, each hop with its own
// response_uri and auth_session; the SDK unwinds the stack.
func TestFederation_ThreeHops(t *testing.T) {
	k12, k23 := newFedKey(t, "k12"), newFedKey(t, "k23")
	as3 := wrap(start(t, nil, func(c *config.Config) {
		c.Clients = append(c.Clients, federatingClient("as2", k23, true))
	}))
	as2 := wrap(start(t, nil, func(c *config.Config) {
		c.Clients = append(c.Clients, federatingClient("as1", k12, false))
		c.Downstreams = append(c.Downstreams, downstreamOf("as3", as3.URL, "as2", k23))
		c.Routes = append(c.Routes, config.Route{Downstream: "as3", Clients: []string{"as1"}})
	}))
	as1 := wrap(start(t, nil, func(c *config.Config) {
		c.Downstreams = append(c.Downstreams, downstreamOf("as2", as2.URL, "as1", k12))
		emailPrompt(c, "as2.example", "as2")
	}))
	c := as1.Client(t, "demo-app")
	var responseURIs, sessions []string
	c.OnExchange = func(_ string, _ string, _ url.Values, _ int, body []byte) {
		var r sdk.Response
		_ = json.Unmarshal(body, &r)
		if r.Error == "federate" {
			responseURIs = append(responseURIs, r.ResponseURI)
			sessions = append(sessions, r.AuthSession)
		}
	}
	code, pk, err := c.Authorize(context.Background(), url.Values{"scope": {"openid email"}}, answerAll("carol@as2.example"))
	require.NoError(t, err)
	require.Len(t, responseURIs, 2)
	require.Contains(t, responseURIs[0], as1.URL+"/native/response/")
	require.Contains(t, responseURIs[1], as2.URL+"/native/response/")
	require.NotEqual(t, sessions[0], sessions[1])
	tok, err := c.Exchange(context.Background(), code, pk)
	require.NoError(t, err)
	require.Equal(t, as2.URL+"|"+as3.URL+"|carol", as1.introspect(t, tok.AccessToken).str("sub"))
}

// A18: as a downstream we never serve credential challenges to a
// federating client that did not opt in.
func TestDownstreamRole_NoCredentialChallengesToFederatingClients(t *testing.T) {
	as1, as2 := pair(t, nil, nil, nil, func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "as1" {
				c.Clients[i].AllowCredentialChallenges = false
			}
		}
	})
	c := as1.Client(t, "demo-app")
	var errs []string
	c.OnExchange = func(_ string, _ string, _ url.Values, _ int, body []byte) {
		var r sdk.Response
		_ = json.Unmarshal(body, &r)
		errs = append(errs, r.Error)
	}
	_, _, err := c.Authorize(context.Background(), url.Values{"scope": {"openid"}}, answerAll("carol@as2.example"))
	var serr *sdk.Err
	require.ErrorAs(t, err, &serr)
	require.Equal(t, "redirect_to_web", serr.Response.Error)
	require.Equal(t, http.StatusForbidden, serr.Status)
	require.Equal(t, serr.From, as2.native())
	require.Equal(t, []string{"insufficient_information", "federate", "redirect_to_web"}, errs)
	_ = servertest.HTTP
}

// An invalid prompt answer is asked again (invalid_request with a fresh
// auth_session and the userPrompt); the SDK re-prompts and the flow goes on.
func TestFederation_InvalidAnswerReprompts(t *testing.T) {
	as1, _ := pair(t, nil, nil, nil, nil)
	c := as1.Client(t, "demo-app")
	var prompts int
	good := answerAll("carol@as2.example")
	code, pk, err := c.Authorize(context.Background(), url.Values{"scope": {"openid"}}, func(ctx context.Context, r sdk.Response) (url.Values, error) {
		if r.UserPrompt != nil {
			prompts++
			if prompts == 1 {
				return url.Values{"email": {"not an email"}}, nil
			}
			require.Equal(t, "invalid_request", r.Error)
			return url.Values{"email": {"carol@as2.example"}}, nil
		}
		return good(ctx, r)
	})
	require.NoError(t, err)
	require.Equal(t, 2, prompts)
	_, err = c.Exchange(context.Background(), code, pk)
	require.NoError(t, err)
}
