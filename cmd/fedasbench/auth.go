package main

// The confidential client's authentication (-auth) for the par and token
// scenarios and their peers: client_secret_basic (RFC 6749 §2.3.1) with a
// random 256-bit secret, or private_key_jwt (RFC 7523 §2.2, OIDC Core §9)
// with an ES256 key generated at set-up and a fresh assertion per request
// (unique jti, aud = the target's issuer, exp 60 s ahead) — what AS1 sends
// AS2 in the federated scenario, signed by the same par.PrivateKeyJWT.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/par"
	"github.com/fedas/fedas/sdk"
)

const (
	authBasic = "client_secret_basic"
	authJWT   = "private_key_jwt"
)

var authMethods = []string{authBasic, authJWT}

// clientCreds are one client's credentials, shared by fedas and every
// peer so that each verifies the same thing.
type clientCreds struct {
	method string
	id     string
	// secret is client_secret_basic's secret (in clear: the client side;
	// fedas and fosite store its SHA-256 digest).
	secret string
	// key is private_key_jwt's signing key; pub its public JWK and
	// pubJWKS the JWK Set fedas registers.
	key     *ecdsa.PrivateKey
	pub     jose.JSONWebKey
	pubJWKS string
	apply   par.ClientAuth
}

// newClientCreds makes fresh credentials for client id.
func newClientCreds(method, id string) (*clientCreds, error) {
	c := &clientCreds{method: method, id: id}
	switch method {
	case authBasic:
		c.secret = randHex(32)
		c.apply = par.ClientSecretBasic{ClientID: id, Secret: c.secret}
	case authJWT:
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		c.key = k
		priv := jose.JSONWebKey{Key: k, KeyID: "fedasbench-" + randHex(4), Algorithm: string(jose.ES256), Use: "sig"}
		c.pub = priv.Public()
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{c.pub}})
		if err != nil {
			return nil, err
		}
		c.pubJWKS = string(b)
		if c.apply, err = par.NewPrivateKeyJWT(id, priv); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown -auth %q", method)
	}
	return c, nil
}

// fedasClient registers the credentials on a fedas client.
func (c *clientCreds) fedasClient(cl config.Client) config.Client {
	cl.ID, cl.TokenEndpointAuthMethod = c.id, c.method
	if c.method == authJWT {
		cl.JWKS, cl.SigningAlg = c.pubJWKS, string(jose.ES256)
	} else {
		cl.SecretSHA256 = config.SecretDigest(c.secret)
	}
	return cl
}

// newFormRequest builds an authenticated form POST to endpoint; audience
// is the target's issuer identifier (the assertion's aud, RFC 9126 §2).
func (c *clientCreds) newFormRequest(ctx context.Context, endpoint, audience string, form url.Values) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		return nil, err
	}
	if c != nil {
		if err := c.apply.Apply(req, form, audience); err != nil {
			return nil, err
		}
	}
	body := form.Encode()
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req, nil
}

// postForm sends an authenticated form and reads at most 1 MiB of the
// answer.
func (c *clientCreds) postForm(ctx context.Context, hc *http.Client, endpoint, audience string, form url.Values) (int, []byte, error) {
	req, err := c.newFormRequest(ctx, endpoint, audience, form)
	if err != nil {
		return 0, nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// parForm is one pushed authorization request's parameters (RFC 9126
// §2.1), the same for fedas and every peer.
func parForm(clientID string) url.Values {
	pk := sdk.NewPKCE()
	return url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {parRedirect},
		"scope": {benchScope}, "state": {pk.Verifier[:16]}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}
}
