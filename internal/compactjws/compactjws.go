// Package compactjws signs JWS compact serializations (RFC 7515 §3.1,
// §7.1) whose protected header is fixed per key: our client assertions
// (RFC 7523 §2.2) and DPoP proofs (RFC 9449 §4.2). go-jose's generic
// signer re-marshals the header through its reflective JSON encoder and
// copies the signing input several times on every call; with a header
// that never changes, that is most of what signing costs besides the
// curve arithmetic (issue 13 profile: ~13 % of a federated flow's bytes
// allocated). The output is the same JWS: verifiers (go-jose, fosite)
// parse it as before.
//
// Only ES256 on P-256 (RFC 7518 §3.4: r||s, 32 bytes each) and EdDSA
// with Ed25519 (RFC 8037 §3.1) are signed here; New refuses anything
// else, and callers keep go-jose for other algorithms.
package compactjws

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

var b64 = base64.RawURLEncoding

// Signer signs payloads under one key and one protected header.
type Signer struct {
	prefix string // base64url(protected header) "."
	ec     *ecdsa.PrivateKey
	ed     ed25519.PrivateKey
}

// Supported reports whether New accepts key for alg: ES256 with a P-256
// *ecdsa.PrivateKey, or EdDSA with an ed25519.PrivateKey.
func Supported(key any, alg jose.SignatureAlgorithm) bool {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		return alg == jose.ES256 && k.Curve == elliptic.P256()
	case ed25519.PrivateKey:
		return alg == jose.EdDSA && len(k) == ed25519.PrivateKeySize
	}
	return false
}

// New returns a Signer for key and alg whose protected header is header
// plus "alg" (RFC 7515 §4.1.1). header must not hold "alg", "crit" or
// "b64" (RFC 7797: the payload is always base64url-encoded here); its
// values are marshalled with encoding/json once, here.
func New(key any, alg jose.SignatureAlgorithm, header map[string]any) (*Signer, error) {
	if !Supported(key, alg) {
		return nil, fmt.Errorf("compactjws: %T with %s is not supported", key, alg)
	}
	h := make(map[string]any, len(header)+1)
	for k, v := range header {
		switch k {
		case "alg", "crit", "b64":
			return nil, fmt.Errorf("compactjws: header %q is not settable", k)
		}
		h[k] = v
	}
	h["alg"] = string(alg)
	raw, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("compactjws: header: %w", err)
	}
	s := &Signer{prefix: b64.EncodeToString(raw) + "."}
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		s.ec = k
	case ed25519.PrivateKey:
		s.ed = k
	}
	return s, nil
}

// Sign returns the compact serialization of payload (RFC 7515 §7.1):
// BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature).
func (s *Signer) Sign(payload []byte) (string, error) {
	sigLen := ed25519.SignatureSize // 64, as ES256's r||s
	buf := make([]byte, 0, len(s.prefix)+b64.EncodedLen(len(payload))+1+b64.EncodedLen(sigLen))
	buf = append(buf, s.prefix...)
	buf = b64.AppendEncode(buf, payload)
	var sig [64]byte
	if s.ec != nil {
		digest := sha256.Sum256(buf)
		der, err := ecdsa.SignASN1(rand.Reader, s.ec, digest[:])
		if err != nil {
			return "", fmt.Errorf("compactjws: sign: %w", err)
		}
		if err := rawES256(der, &sig); err != nil {
			return "", err
		}
	} else {
		copy(sig[:], ed25519.Sign(s.ed, buf))
	}
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, sig[:])
	return string(buf), nil
}

// rawES256 converts an ASN.1 ECDSA signature into the fixed-width r||s
// of RFC 7518 §3.4.
func rawES256(der []byte, out *[64]byte) error {
	var (
		inner cryptobyte.String
		r, s  []byte
	)
	in := cryptobyte.String(der)
	if !in.ReadASN1(&inner, asn1.SEQUENCE) || !in.Empty() ||
		!inner.ReadASN1Integer(&r) || !inner.ReadASN1Integer(&s) || !inner.Empty() {
		return errors.New("compactjws: malformed ECDSA signature")
	}
	r, s = trimZero(r), trimZero(s)
	if len(r) > 32 || len(s) > 32 {
		return errors.New("compactjws: ECDSA signature too long")
	}
	copy(out[32-len(r):32], r)
	copy(out[64-len(s):], s)
	return nil
}

func trimZero(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}
