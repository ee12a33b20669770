package policy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	josev3 "github.com/go-jose/go-jose/v3"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/rar"
)

// Client is a registered client as fosite sees it, plus the fedas
// registration fields (FiPA first-party flag, native callbacks, federation).
type Client struct {
	*fosite.DefaultOpenIDConnectClient
	FirstParty                bool
	NativeCallbackURIs        []string
	Federating                bool
	AllowCredentialChallenges bool
	// RefreshTokenRotation is config.Client.RefreshTokenRotation
	// ("" is auto); server/refresh.go decides with it.
	RefreshTokenRotation string
	// DC is the client's digital-credential settings (config.ClientDC),
	// nil when it has none.
	DC *config.ClientDC
	// Reach is the client's reach settings (config.ClientReach), nil when
	// it has none.
	Reach *config.ClientReach

	// AuthorizationDetailsTypes are the RFC 9396 types this client may
	// request (config clients[].authorization_details_types resolved
	// against the top-level types); flow/request.go parses with them.
	AuthorizationDetailsTypes map[string]rar.TypeConfig
}

var _ fosite.OpenIDConnectClient = (*Client)(nil)

// buildClients builds the immutable set of clients of a snapshot.
func buildClients(cfg []config.Client) (map[string]*Client, error) {
	r := make(map[string]*Client, len(cfg))
	for _, cc := range cfg {
		c := &Client{
			DefaultOpenIDConnectClient: &fosite.DefaultOpenIDConnectClient{
				DefaultClient: &fosite.DefaultClient{
					ID:            cc.ID,
					Secret:        []byte(cc.SecretSHA256),
					RedirectURIs:  append([]string(nil), cc.RedirectURIs...),
					GrantTypes:    append([]string(nil), cc.GrantTypes...),
					ResponseTypes: []string{"code"},
					Scopes:        append([]string(nil), cc.Scopes...),
					Public:        cc.Public(),
				},
				TokenEndpointAuthMethod:           cc.TokenEndpointAuthMethod,
				TokenEndpointAuthSigningAlgorithm: cc.SigningAlg,
			},
			FirstParty:                cc.FirstParty,
			NativeCallbackURIs:        append([]string(nil), cc.NativeCallbackURIs...),
			Federating:                cc.Federating,
			AllowCredentialChallenges: cc.AllowCredentialChallenges,
			RefreshTokenRotation:      cc.RefreshTokenRotation,
		}
		if cc.DigitalCredentials != nil {
			dc := *cc.DigitalCredentials
			c.DC = &dc
		}
		if cc.Reach != nil {
			r := *cc.Reach
			r.InteractionOrigins = append([]string(nil), r.InteractionOrigins...)
			c.Reach = &r
		}
		if cc.JWKS != "" {
			set, err := FositeJWKS(cc.JWKS)
			if err != nil {
				return nil, fmt.Errorf("client %s: %w", cc.ID, err)
			}
			c.JSONWebKeys = set
		}
		r[cc.ID] = c
	}
	return r, nil
}

// FositeJWKS parses a public JWKS with go-jose v4 (our JOSE library) and
// hands it to fosite, which still uses go-jose v3: this is the one
// boundary where keys cross between the two (fosite.DefaultOpenIDConnectClient
// JSONWebKeys, RFC 7517 §5).
func FositeJWKS(raw string) (*josev3.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(raw), &set); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	out := &josev3.JSONWebKeySet{}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return nil, errors.New("jwks: must hold public keys only")
		}
		b, err := k.MarshalJSON()
		if err != nil {
			return nil, err
		}
		var k3 josev3.JSONWebKey
		if err := k3.UnmarshalJSON(b); err != nil {
			return nil, err
		}
		out.Keys = append(out.Keys, k3)
	}
	return out, nil
}

// SecretHasher compares client secrets against their stored SHA-256
// digests in constant time. Client secrets are high-entropy server-made
// values, so bcrypt would only add an 80 ms-per-request CPU cliff
// (docs/performance.md trap 1).
type SecretHasher struct{}

var _ fosite.Hasher = SecretHasher{}

// Compare implements fosite.Hasher.
func (SecretHasher) Compare(_ context.Context, hash, data []byte) error {
	sum := sha256.Sum256(data)
	want := make([]byte, hex.EncodedLen(len(sum)))
	hex.Encode(want, sum[:])
	if len(hash) == 0 || subtle.ConstantTimeCompare(want, hash) != 1 {
		return errors.New("client secret mismatch")
	}
	return nil
}

// Hash implements fosite.Hasher.
func (SecretHasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	sum := sha256.Sum256(data)
	return []byte(hex.EncodeToString(sum[:])), nil
}
