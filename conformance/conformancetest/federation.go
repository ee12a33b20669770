package conformancetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/federation/fedtest"
	"github.com/fedas/fedas/server/servertest"
)

// The federation setup's test inputs.
const (
	// FedClient is a federating client with a secret (downstream profile).
	FedClient   = "fed-basic"
	FedSecret   = "fed-basic-secret"
	FedRedirect = "https://fed-basic.example/cb"
	// FedCallback is demo-app's native_callback_uri that AS1 forwards.
	FedCallback = "https://app.example/cb"
	// CarolPassword is carol's password at AS2.
	CarolPassword = "carol-pw"
)

// Federation is AS1, which federates @as2.example to AS2 and
// @legacy.example to a downstream without a native endpoint, and AS2,
// where AS1 is a federating client (private_key_jwt, credential
// challenges allowed) and an app of AS2 takes over a request that
// carries a native callback (redirect_to_app). Both register FedBasic,
// a federating client with a secret, for the downstream profile.
type Federation struct {
	AS1, AS2 *servertest.Instance
	// AS1Key is AS1's private JWK (JSON) for private_key_jwt at AS2.
	AS1Key string
}

// FedBasic is a federating client with a secret (downstream profile),
// allowed credential challenges so that its pushes start with one.
func FedBasic() config.Client {
	return config.Client{ID: FedClient, Federating: true, AllowCredentialChallenges: true, TokenEndpointAuthMethod: "client_secret_basic",
		SecretSHA256: config.SecretDigest(FedSecret), Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code"},
		RedirectURIs: []string{FedRedirect}}
}

// StartFederation starts AS2, the legacy downstream and AS1 on loopback.
func StartFederation(tb testing.TB) Federation {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	priv := jose.JSONWebKey{Key: k, KeyID: "as1-at-as2", Algorithm: string(jose.ES256), Use: "sig"}
	privJSON, err := json.Marshal(priv)
	require.NoError(tb, err)
	pubJSON, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{priv.Public()}})
	require.NoError(tb, err)
	hash, err := bcrypt.GenerateFromPassword([]byte(CarolPassword), bcrypt.MinCost)
	require.NoError(tb, err)
	basic := FedBasic()

	as2 := servertest.Start(tb, servertest.Options{Configure: func(c *config.Config) {
		c.Users = append(c.Users, config.User{Username: "carol", Subject: "carol", PasswordHash: string(hash)})
		c.Clients = append(c.Clients, basic, config.Client{
			ID: "as1", Federating: true, AllowCredentialChallenges: true,
			TokenEndpointAuthMethod: "private_key_jwt", JWKS: string(pubJSON), SigningAlg: "ES256",
			Scopes: []string{"openid", "profile", "email"}, GrantTypes: []string{"authorization_code"},
			RedirectURIs: []string{"https://as1.example/web-callback"}, NativeCallbackURIs: []string{FedCallback},
		})
		c.Apps = append(c.Apps, config.App{ID: "as2app", ClientID: "demo-app", DeepLink: "https://as2.example/app", DownstreamRole: true})
	}})
	legacy := fedtest.Start(tb, fedtest.Options{NoNative: true})
	as1 := servertest.Start(tb, servertest.Options{Configure: func(c *config.Config) {
		c.Clients = append(c.Clients, basic)
		for _, d := range []struct{ id, issuer string }{{"as2", as2.URL}, {"legacy", legacy.URL}} {
			c.Downstreams = append(c.Downstreams, config.Downstream{
				ID: d.id, Issuer: d.issuer, Name: d.id, ClientID: "as1",
				Auth:   config.DownstreamAuth{Method: "private_key_jwt", Key: string(privJSON)},
				Scopes: map[string]string{"openid": "openid", "profile": "profile", "email": "email"},
			})
		}
		c.Prompt = &config.Prompt{Inputs: []config.PromptInput{{Key: "email", Title: "Email", Hint: "you@example.com"}}}
		c.Routes = append(c.Routes,
			config.Route{Downstream: "as2", EmailDomains: []string{"as2.example"}},
			config.Route{Downstream: "legacy", EmailDomains: []string{"legacy.example"}})
	}})
	return Federation{AS1: as1, AS2: as2, AS1Key: string(privJSON)}
}
