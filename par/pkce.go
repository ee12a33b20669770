package par

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
)

// NewPKCE returns a fresh code_verifier and its S256 code_challenge
// (RFC 7636 §4.1, §4.2). The verifier is 32 random bytes, base64url without
// padding (43 characters, 256 bits), as §4.1 recommends; "plain" is never
// offered (RFC 9700 §2.1.1). Use one pair per federation hop, kept
// server-side, so an injected or stolen downstream code cannot be redeemed
// (RFC 9700 §4.5.3.1).
func NewPKCE() (verifier, challenge string) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	verifier = base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// validVerifier checks RFC 7636 §4.1: 43-128 characters of
// ALPHA / DIGIT / "-" / "." / "_" / "~".
func validVerifier(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// tlsConfig refuses TLS below 1.2 (FAPI 2.0 SP §5.2.1, BCP 195) and leaves
// certificate verification on.
func tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12}
}
