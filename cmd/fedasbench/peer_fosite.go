package main

// The fosite peer: a bare github.com/ory/fosite (the version fedas builds
// on) composed with the authorization code grant, PKCE (enforced, S256
// only), OpenID Connect (ES256 ID tokens) and PAR, on fosite's
// storage.MemoryStore, served by net/http in this process:
// POST /token through NewAccessRequest/NewAccessResponse/
// WriteAccessResponse, POST /par through NewPushedAuthorizeRequest/
// NewPushedAuthorizeResponse/WritePushedAuthorizeResponse. Opaque HMAC
// access tokens, like fedas. The client is fedas's (same id, same
// method); its secret is stored as a SHA-256 digest compared with fedas's
// own hasher (policy.SecretHasher) rather than fosite's default bcrypt
// (cost 12: that would measure bcrypt, docs/performance.md trap 1).
//
// The token scenario's codes are minted in process before the window:
// an authorize request built in memory through NewAuthorizeRequest and
// NewAuthorizeResponse, the scope granted, a subject in the session.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/storage"
	"github.com/ory/fosite/token/jwt"

	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/sdk"
)

// fositeVersion is go.mod's github.com/ory/fosite.
const fositeVersion = "fosite v0.49.0"

func startFositePeer(ctx context.Context, ps *peerSetup) (*peerServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	issuer := "http://" + ln.Addr().String()
	idKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ln.Close()
		return nil, err
	}
	cfg := &fosite.Config{
		AccessTokenLifespan:             time.Hour,
		AuthorizeCodeLifespan:           codeLifetime,
		IDTokenLifespan:                 time.Hour,
		IDTokenIssuer:                   issuer,
		AccessTokenIssuer:               issuer,
		PushedAuthorizeContextLifespan:  90 * time.Second,
		PushedAuthorizeRequestURIPrefix: "urn:ietf:params:oauth:request_uri:",
		GlobalSecret:                    []byte(randHex(16)), // 32 bytes
		// The client assertion's aud is the issuer (RFC 9126 §2), which
		// fosite checks against its token URLs.
		TokenURL:                       issuer,
		EnforcePKCE:                    true,
		EnablePKCEPlainChallengeMethod: false,
		ScopeStrategy:                  fosite.ExactScopeStrategy,
		// Set, not left to fosite: its getters fill nil strategies in on
		// first use, a write that races under concurrent requests.
		AudienceMatchingStrategy: fosite.DefaultAudienceMatchingStrategy,
		ClientSecretsHasher:      policy.SecretHasher{},
		JWKSFetcherStrategy:      fosite.NewDefaultJWKSFetcherStrategy(),
	}
	store := storage.NewMemoryStore()
	dc := &fosite.DefaultClient{ID: ps.creds.id, RedirectURIs: []string{parRedirect},
		GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"}, Scopes: []string{"openid", "profile", "email"}}
	client := &fosite.DefaultOpenIDConnectClient{DefaultClient: dc, TokenEndpointAuthMethod: ps.creds.method}
	if ps.creds.method == authJWT {
		// fosite v0.49 speaks go-jose v3: the same JWK Set, through our one
		// boundary between the two.
		set, err := policy.FositeJWKS(ps.creds.pubJWKS)
		if err != nil {
			ln.Close()
			return nil, err
		}
		client.JSONWebKeys = set
		client.TokenEndpointAuthSigningAlgorithm = string(jose.ES256)
	} else {
		digest, _ := policy.SecretHasher{}.Hash(ctx, []byte(ps.creds.secret))
		dc.Secret = digest
	}
	store.Clients[ps.creds.id] = client
	keyGetter := func(context.Context) (any, error) { return idKey, nil }
	provider := compose.Compose(cfg, store, &compose.CommonStrategy{
		CoreStrategy:               compose.NewOAuth2HMACStrategy(cfg),
		OpenIDConnectTokenStrategy: compose.NewOpenIDConnectStrategy(keyGetter, cfg),
		Signer:                     &jwt.DefaultSigner{GetPrivateKey: keyGetter},
	},
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2PKCEFactory,
		compose.OpenIDConnectExplicitFactory,
		compose.PushedAuthorizeHandlerFactory,
	)

	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		ar, err := provider.NewAccessRequest(ctx, r, &openid.DefaultSession{})
		if err != nil {
			provider.WriteAccessError(ctx, w, ar, err)
			return
		}
		resp, err := provider.NewAccessResponse(ctx, ar)
		if err != nil {
			provider.WriteAccessError(ctx, w, ar, err)
			return
		}
		provider.WriteAccessResponse(ctx, w, ar, resp)
	})
	mux.HandleFunc("POST /par", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		ar, err := provider.NewPushedAuthorizeRequest(ctx, r)
		if err != nil {
			provider.WritePushedAuthorizeError(ctx, w, ar, err)
			return
		}
		resp, err := provider.NewPushedAuthorizeResponse(ctx, ar, &openid.DefaultSession{})
		if err != nil {
			provider.WritePushedAuthorizeError(ctx, w, ar, err)
			return
		}
		provider.WritePushedAuthorizeResponse(ctx, w, ar, resp)
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	srv := &peerServer{issuer: issuer, parEndpoint: issuer + "/par", tokenEndpoint: issuer + "/token", version: fositeVersion,
		note: "in this process; compose with the authorization code grant, PKCE, OpenID Connect (ES256 ID tokens), PAR; storage.MemoryStore (one mutex); HMAC access tokens; the secret as a SHA-256 digest (fedas's hasher, not fosite's bcrypt default)",
		stop: func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = hs.Shutdown(ctx)
			<-done
		}}
	if ps.o.scenario == "token" {
		srv.codes = make(chan mintedCode, ps.codes)
		for i := range ps.codes {
			mc, err := fositeMint(ctx, provider, issuer, ps, fmt.Sprintf("bench-%d", i%ps.o.concurrency))
			if err != nil {
				srv.stop()
				return nil, fmt.Errorf("minting codes: %w", err)
			}
			srv.codes <- mc
		}
	}
	return srv, nil
}

// fositeMint issues one code for sub through fosite's authorize endpoint
// functions, with an authorize request built in memory.
func fositeMint(ctx context.Context, provider fosite.OAuth2Provider, issuer string, ps *peerSetup, sub string) (mintedCode, error) {
	pk := sdk.NewPKCE()
	q := url.Values{"client_id": {ps.creds.id}, "response_type": {"code"}, "redirect_uri": {parRedirect}, "scope": {ps.scope},
		"state": {pk.Verifier[:16]}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}
	if ps.openid {
		q.Set("nonce", pk.Verifier[16:32])
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+"/authorize?"+q.Encode(), nil)
	if err != nil {
		return mintedCode{}, err
	}
	ar, err := provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		return mintedCode{}, fositeErr(err)
	}
	for _, s := range strings.Fields(ps.scope) {
		ar.GrantScope(s)
	}
	now := time.Now().UTC()
	sess := &openid.DefaultSession{Subject: sub, Headers: &jwt.Headers{},
		Claims: &jwt.IDTokenClaims{Subject: sub, Issuer: issuer, AuthTime: now, RequestedAt: now}}
	resp, err := provider.NewAuthorizeResponse(ctx, ar, sess)
	if err != nil {
		return mintedCode{}, fositeErr(err)
	}
	code := resp.GetParameters().Get("code")
	if code == "" {
		return mintedCode{}, errors.New("fosite authorize response without a code")
	}
	return mintedCode{code: code, verifier: pk.Verifier, redirectURI: parRedirect}, nil
}

func fositeErr(err error) error {
	var re *fosite.RFC6749Error
	if errors.As(err, &re) {
		return fmt.Errorf("%s: %s", re.ErrorField, re.GetDescription())
	}
	return err
}
