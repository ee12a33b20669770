package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"
	"go.uber.org/zap"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/internal/compactjws"
	"github.com/fedas/fedas/policy"
)

// IDTokenLifetime is the life of the ID tokens we sign (their exp - iat).
// A signing key that stopped signing must stay published for at least this
// long, plus the verifiers' clock leeway (docs/operations.md "Rotating the
// signing key").
const IDTokenLifetime = 5 * time.Minute

// KeyRetirementWait is how long a signing key must stay published after
// it stopped signing on every instance: the ID token lifetime plus one
// minute of the verifiers' clock leeway (our own federation client allows
// 60 s, federation.DefaultIDTokenLeeway).
const KeyRetirementWait = IDTokenLifetime + time.Minute

// keyRing is this instance's signing keys: every one is published at
// jwks_uri (RFC 7517 §5) with its kid, alg ES256 and use sig; the policy
// snapshot of a request says which one signs (config.PolicyKeys). It is
// immutable: key files take effect at a restart.
type keyRing struct {
	keys    []config.SigningKey
	jwks    jose.JSONWebKeySet
	signers map[string]*compactjws.Signer
}

// newES256Signer is the ID-token signer of one key: compact JWS (RFC 7515
// §7.1) with ES256 (RFC 7518 §3.4) under the fixed protected header
// {"alg":"ES256","kid":…,"typ":"JWT"}, encoded once (internal/compactjws:
// no reflective header and claims encoding per token, which is on every
// openid token exchange: docs/performance.md).
func newES256Signer(key *ecdsa.PrivateKey, kid string) (*compactjws.Signer, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return nil, errors.New("server: a signing key must be an EC P-256 key (ES256)")
	}
	return compactjws.New(key, jose.ES256, map[string]any{"kid": kid, "typ": "JWT"})
}

// newKeyRing builds the ring; keys must be non-empty with distinct kids
// (config.Keys.LoadSigningKeys makes sure of both).
func newKeyRing(keys []config.SigningKey) (*keyRing, error) {
	if len(keys) == 0 {
		return nil, errors.New("server: no signing key")
	}
	r := &keyRing{keys: keys, signers: map[string]*compactjws.Signer{}}
	for _, k := range keys {
		if _, dup := r.signers[k.KID]; dup {
			return nil, fmt.Errorf("server: two signing keys with kid %q", k.KID)
		}
		// docs/performance.md trap 2: ES256. RFC 7515 §4.1.4: the kid
		// header names the key among those published.
		s, err := newES256Signer(k.Key, k.KID)
		if err != nil {
			return nil, err
		}
		r.signers[k.KID] = s
		r.jwks.Keys = append(r.jwks.Keys, jose.JSONWebKey{Key: &k.Key.PublicKey, KeyID: k.KID, Algorithm: string(jose.ES256), Use: "sig"})
	}
	return r, nil
}

// initKeys builds the ring from the configured keys (config.Keys.Signing),
// else Options.SigningKey (kid: its thumbprint), else an ephemeral key;
// and checks that the current policy's active key is one of them.
func (s *Server) initKeys(o Options) error {
	keys, err := o.Config.Keys.Signing()
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		k := o.SigningKey
		if k == nil {
			if k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
				return err
			}
			s.EphemeralSigningKey = true
		}
		kid, err := config.Thumbprint(&k.PublicKey)
		if err != nil {
			return err
		}
		keys = []config.SigningKey{{KID: kid, Key: k, Path: "ephemeral"}}
	}
	if s.keys, err = newKeyRing(keys); err != nil {
		return err
	}
	if kid := s.policy.Current().Config.Keys.ActiveSigningKey; kid != "" && s.keys.signers[kid] == nil {
		return fmt.Errorf("keys.active_signing_key: %q is not one of this instance's signing keys", kid)
	}
	return nil
}

// activeKID is the kid that signs for snap: its active_signing_key, else
// this instance's first key.
func (r *keyRing) activeKID(snap *policy.Snapshot) string {
	if kid := snap.Config.Keys.ActiveSigningKey; kid != "" {
		return kid
	}
	return r.keys[0].KID
}

// signJWT signs a JSON claims set (payload) as a JWT (RFC 7519) with the active key of the
// request's policy snapshot — never of the process's current one, so that
// a request switching keys midway cannot happen. Everything we sign goes
// through here. A snapshot naming a key this instance lacks cannot be
// published (config.Validate checks it against the loaded keys); should
// one be, nothing is signed rather than signed with a key the policy did
// not choose.
func (s *Server) signJWT(ctx context.Context, payload []byte) (string, error) {
	kid := s.keys.activeKID(s.snapshot(ctx))
	signer := s.keys.signers[kid]
	if signer == nil {
		s.log.Error("the policy's active signing key is not one of this instance's keys: nothing signed", zap.String("kid", kid))
		return "", fosite.ErrServerError.WithDebug("active signing key not loaded")
	}
	return signer.Sign(payload)
}

// SigningKeys returns this instance's signing keys, in configuration
// order (the admin API lists their kids).
func (s *Server) SigningKeys() []config.SigningKey {
	return append([]config.SigningKey(nil), s.keys.keys...)
}

// ActiveKID returns the kid that signs for a request served with the
// current policy.
func (s *Server) ActiveKID() string { return s.keys.activeKID(s.policy.Current()) }
