package server

import (
	"context"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite"
)

// idToken signs an OpenID Connect ID token (OIDC Core §2, §3.1.3.3) for
// an authorization_code grant that was granted the openid scope: what a
// federating AS verifies when it redeems our code. Signed with go-jose v4
// and ES256 by the active signing key, whose kid is in the header (keys.go).
func (s *Server) idToken(ctx context.Context, ar fosite.AccessRequester) (string, error) {
	sess, ok := ar.GetSession().(*fosite.DefaultSession)
	if !ok {
		return "", fosite.ErrServerError.WithDebug("unexpected session type")
	}
	now := s.now()
	claims := map[string]any{
		"iss": s.cfg.Issuer,
		"sub": sess.Subject,
		"aud": ar.GetClient().GetID(),
		"azp": ar.GetClient().GetID(),
		"iat": jwt.NewNumericDate(now),
		"exp": jwt.NewNumericDate(now.Add(IDTokenLifetime)),
	}
	for _, k := range []string{"auth_time", "amr", "acr", "nonce"} {
		if v, ok := sess.Extra[k]; ok {
			claims[k] = v
		}
	}
	// Claims a sign-in step established (a credential's mapped claims);
	// never one of the claims above.
	if m, ok := sess.Extra["id_token_claims"].(map[string]any); ok {
		for k, v := range m {
			if _, taken := claims[k]; !taken && !reservedIDClaims[k] {
				claims[k] = v
			}
		}
	}
	// Stored sessions come back from JSON with numbers as float64.
	if f, ok := claims["auth_time"].(float64); ok {
		claims["auth_time"] = int64(f)
	}
	return s.signJWT(ctx, claims)
}

// reservedIDClaims are never taken from a step's claims (OIDC Core §2).
var reservedIDClaims = map[string]bool{"iss": true, "sub": true, "aud": true, "azp": true, "iat": true, "exp": true,
	"nbf": true, "jti": true, "auth_time": true, "amr": true, "acr": true, "nonce": true, "at_hash": true, "c_hash": true, "sid": true, "cnf": true}
