// Package testkeys holds fixed, published key pairs for the fuzz targets
// and their seed corpora (CONTRIBUTING.md "Fuzzing"). A corpus entry that
// carries a signed JWT must verify again when it is replayed as a
// regression test, so the keys cannot be generated per run (and Go ignores
// the random source of key generation). These keys are public: never
// configure them anywhere but in tests.
package testkeys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	p256A = `{"kty":"EC","crv":"P-256","x":"F6Ohuf10rqYXKQ8AgdP_bWkHyIROKZJlnyHDIA0JDBo","y":"nWB89OiLwiYxRQ1xuZin62myvXolV4Nwgr1t_O3PXso","d":"MA78LjFwNyoEvLSL0vAEOTQSeDFzELfRBa_VXm3n_6Q"}`
	p256B = `{"kty":"EC","crv":"P-256","x":"H5Aw06-meBAJEKA7eCt5kYKkfFboYKKjD6FCTrOp7f4","y":"1Pza8cPFsnQLAKYwKJnccoyrXeodT84P6dG924LQRQ8","d":"fzFHUTPnKXcQ1Ih8B1bZisC4mwK0kQKXO6ULifMKtFU"}`
	rsaA  = `{"kty":"RSA","n":"o1tFh7YP-eoNhvLGU-zMPdYqr3Ckbzb5WrPfYXHr_D_6_n1Tj3EzxFgywRlhh2B8Y8q6iGqMR2Rr7hEDpJRvXledIogwM607kHJCj0YqGoyTejBhRn_pke57q2WzXJHZqkTCOINmHyDoeygr0r61HCR74NSnBb_8D-lpdTs-BlhJFVQoT6xPIonl52c-QU9YUoZaPFpQ57ArEWe0v9quzfX2fmMbwFFTblHjV0l3TQAI20vEJLmDKLy4URGVhf78Ketjfj6FnCfeZ8DnxSs1ZoRorJ0m-2B6KF0jPL09NPma3-KioZZQ-ScdNMNnx-PVIrTE8ISQxezPvsS9ogaqEQ","e":"AQAB","d":"RrA-0MCsfilVjDFvOC7unM2Z8Awu479mvOS8Q7cf9qqbCtghuh8y1wKRh_TbOtE6UpaODG0K4fPnLoAnUuc2oB0KrsA_F4Wdkl6XRdeHbbCqOsRHu9GrOY547ozWRjcI-UDCyOC3Zr3_TBfwisQirBhvkLWExxyyTxJio6uspeKKNbpIMqKtCqMpN2dP1Xx8GQLS-yw6LqHiaP1CYqwvU8a86ai9C6JVG4ExxNpKtK-lhqPYm9y_6MCKzUZuHeRct9SMPc-eqU3lFiAvxV3yPcxgiakxlhh9G9r9YtJ0RFHp4o9l4D34fYZn7IOf29PMQGreUS4G59XctWGDMyg3Lw","p":"xP7jHp1_r8AwaLgMh9d5c_KRFovpvjsrhnnxH_atKXuR6Cdyjr5JaSuBN8sFJXoodoC1LprDztO59VsKm4mRHAeGyjz9ztIrdHIwRvjZqu85jEwUZBO_1ca7xL_KGP9J3OaG0Accpr8bzYmJ2HyF3eDWk25hOxYCCbj0z9lAIzc","q":"1EkGMOMkZb6FodRO5gztXIYPwjO51khWG8xcEfVyBHCXBmflOqpJFUDbqZfZELeE0K2K59Avr8coN-ujv6fMEiIHjFIOxvKsq7Ye-_KExbwalg6G2GwlpwllPQSQLZhj34gxtmW9vDHnHjqapVRjWYb-y_DsOpgQwQmiFa-40Pc","dp":"BNPSMP_fDymAhjBsbi_DlCnPkGPhWH4OtP7r_8KFv8x9aNj-n6zeE6uzQPDCsYZq02yYBApa3gimN_MBMYqPecZdcTtJZPYVhob9099pRh0SpfN_VGx_ePejxlCE3VP0NWuYxiRGeXeZcNH8BMgYZ7WIzJgZ3d7OMfrMVQOX5MU","dq":"fj5HHj-WX6Nj2Q9nNEwvxDw9luIn_BTckH-BqXRrr9Q9HCQhIDgwaiE-AKc7AUQCCg-Kcb1O_pvTgR3zLYDeTVJLZtlNzGZ45UzTNEXPS8BHl0FgU8hMw_9EY3sZOuRLUJ2v4qaypP6QUVvMp9F9m7o6QJIwCdBw9juCVp8_q5U","qi":"LOF8vU6eLOvdj4F6yDVcQ0AAxBYis2y-yEBWc8E6SnMbJ04fnzgkTZxLQ_Z81eqgKCKd0bOZsq53ilO_fE1lnuntea9iZbUoAD3a9BtXRbn6hbal7eevClVbxTEaQKv44I93eXxL5CtXEGrq7xsPIpx1UBvYWLpbrgTz7fzIp6Y"}`
)

// Fixed private keys: two P-256 keys (ES256), one Ed25519 key (EdDSA) and
// one 2048-bit RSA key (PS256).
var (
	P256A    = mustJWK(p256A).(*ecdsa.PrivateKey)
	P256B    = mustJWK(p256B).(*ecdsa.PrivateKey)
	Ed25519A = ed25519.NewKeyFromSeed([]byte("fedas fuzz test key ed25519 A..."))
	RSAA     = mustJWK(rsaA).(*rsa.PrivateKey)
)

func mustJWK(s string) any {
	var k jose.JSONWebKey
	if err := json.Unmarshal([]byte(s), &k); err != nil {
		panic("testkeys: " + err.Error())
	}
	return k.Key
}

// Public returns the public JWK of a private key, with kid and alg when
// given.
func Public(private crypto.Signer, kid string, alg jose.SignatureAlgorithm) jose.JSONWebKey {
	return jose.JSONWebKey{Key: private.Public(), KeyID: kid, Algorithm: string(alg), Use: "sig"}
}

// PublicJSON is Public as JSON.
func PublicJSON(private crypto.Signer, kid string, alg jose.SignatureAlgorithm) string {
	b, err := json.Marshal(Public(private, kid, alg))
	if err != nil {
		panic("testkeys: " + err.Error())
	}
	return string(b)
}

// SetJSON is a JWK Set (RFC 7517 §5) of the public keys given.
func SetJSON(keys ...jose.JSONWebKey) string {
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		panic("testkeys: " + err.Error())
	}
	return string(b)
}

var b64 = base64.RawURLEncoding

// Compact builds a JWS compact serialization (RFC 7515 §7.1) of exactly
// the protected header and payload bytes given, signed by key with alg
// (ES256, PS256 or EdDSA; anything else gets an empty signature), so that
// a fuzz target can feed arbitrary header and claims JSON to a verifier.
func Compact(protected, payload string, alg jose.SignatureAlgorithm, key crypto.Signer) string {
	input := b64.EncodeToString([]byte(protected)) + "." + b64.EncodeToString([]byte(payload))
	return input + "." + b64.EncodeToString(Sign(alg, key, input))
}

// Sign signs a JWS signing input (RFC 7515 §5.1) with key per RFC 7518
// §3.4 (ES256: r||s), §3.5 (PS256) or RFC 8037 §3.1 (EdDSA); nil for an
// alg or key it does not handle.
func Sign(alg jose.SignatureAlgorithm, key crypto.Signer, input string) []byte {
	sum := sha256.Sum256([]byte(input))
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if alg != jose.ES256 {
			return nil
		}
		r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
		if err != nil {
			return nil
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	case ed25519.PrivateKey:
		if alg != jose.EdDSA {
			return nil
		}
		return ed25519.Sign(k, []byte(input))
	case *rsa.PrivateKey:
		if alg != jose.PS256 {
			return nil
		}
		sig, err := rsa.SignPSS(rand.Reader, k, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			return nil
		}
		return sig
	}
	return nil
}

// Verify checks a JWS signature with the standard library alone, as an
// oracle independent of go-jose: alg must be ES256, PS256 or EdDSA and
// match the public key's type (P-256 for ES256).
func Verify(alg string, pub crypto.PublicKey, input string, sig []byte) bool {
	sum := sha256.Sum256([]byte(input))
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if alg != "ES256" || k.Curve.Params().Name != "P-256" || len(sig) != 64 {
			return false
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k, sum[:], r, s)
	case ed25519.PublicKey:
		return alg == "EdDSA" && len(k) == ed25519.PublicKeySize && ed25519.Verify(k, []byte(input), sig)
	case *rsa.PublicKey:
		return alg == "PS256" && rsa.VerifyPSS(k, crypto.SHA256, sum[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
	}
	return false
}

// DecodeSegment reads a base64url JWS segment (RFC 7515 §7.1) as JSON
// into v, numbers as json.Number: the independent reading the fuzz
// targets compare an accepted input against.
func DecodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// NameSeparators counts the ':' outside strings of a JSON text: in valid
// JSON exactly one per object member, so a fuzz target can count the
// members of an accepted document without the decoder it checks.
func NameSeparators(b []byte) int {
	n, in := 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case in && c == '\\':
			i++
		case c == '"':
			in = !in
		case !in && c == ':':
			n++
		}
	}
	return n
}
