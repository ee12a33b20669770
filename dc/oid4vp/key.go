package oid4vp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// ErrKey reports a malformed stored response key.
var ErrKey = errors.New("oid4vp: invalid response key")

const keyFormatV1 = "k1"

// ResponseKey is the ephemeral P-256 key a transaction's response is
// encrypted to (OpenID4VP 1.0 §8.3). One key per transaction: the private
// half is stored with it and forgotten when it ends.
type ResponseKey struct {
	priv *ecdsa.PrivateKey
	kid  string
}

// NewResponseKey generates a P-256 key with a random 128-bit kid.
func NewResponseKey() (*ResponseKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return &ResponseKey{priv: priv, kid: base64.RawURLEncoding.EncodeToString(b)}, nil
}

// KID is the key id wallets must echo in the JWE header (§8.3).
func (k *ResponseKey) KID() string { return k.kid }

// Public returns the public key (for tests and wallets' side).
func (k *ResponseKey) Public() *ecdsa.PublicKey { return &k.priv.PublicKey }

// PublicJWK is the client_metadata.jwks entry: kid, use=enc, alg=ECDH-ES
// (§8.3: each key needs kid and alg).
func (k *ResponseKey) PublicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: string(jose.ECDH_ES), Use: "enc"}
}

// MarshalText encodes the private key compactly for storage with the
// transaction: "k1.<kid>.<base64url 32-byte scalar>" (~70 bytes). It is a
// secret: store it like a token, never log it.
func (k *ResponseKey) MarshalText() ([]byte, error) {
	raw, err := k.priv.Bytes()
	if err != nil {
		return nil, err
	}
	return []byte(keyFormatV1 + "." + k.kid + "." + base64.RawURLEncoding.EncodeToString(raw)), nil
}

// UnmarshalResponseKey parses the MarshalText form.
func UnmarshalResponseKey(b []byte) (*ResponseKey, error) {
	parts := strings.Split(string(b), ".")
	if len(parts) != 3 || parts[0] != keyFormatV1 || parts[1] == "" || len(parts[1]) > 64 || !URLSafe(parts[1]) {
		return nil, fmt.Errorf("%w: format", ErrKey)
	}
	// One encoding per key: Strict refuses non-canonical trailing bits,
	// and the alphabet check the CR and LF that Go's base64 decoder skips
	// even in strict mode (a fuzz finding).
	if !URLSafe(parts[2]) {
		return nil, fmt.Errorf("%w: scalar", ErrKey)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("%w: scalar", ErrKey)
	}
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
	if err != nil {
		return nil, fmt.Errorf("%w: scalar", ErrKey)
	}
	return &ResponseKey{priv: priv, kid: parts[1]}, nil
}
