package compactjws

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// TestSign_VerifiesWithGoJose: what we sign go-jose parses and verifies,
// with the header we set (kid, typ, an embedded jwk) and the payload
// unchanged, many times over (ES256's r and s are sometimes shorter than
// 32 bytes and must be left-padded, RFC 7518 §3.4).
func TestSign_VerifiesWithGoJose(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name string
		key  any
		pub  any
		alg  jose.SignatureAlgorithm
	}{
		{"ES256", ec, &ec.PublicKey, jose.ES256},
		{"EdDSA", ed, ed.Public(), jose.EdDSA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			jwk := jose.JSONWebKey{Key: tc.pub}
			s, err := New(tc.key, tc.alg, map[string]any{"kid": "k1", "typ": "dpop+jwt", "jwk": jwk})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 300 {
				payload := []byte(`{"jti":"` + strings.Repeat("x", i%7) + `","n":` + string(rune('0'+i%10)) + `}`)
				tok, err := s.Sign(payload)
				if err != nil {
					t.Fatal(err)
				}
				jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{tc.alg})
				if err != nil {
					t.Fatalf("parse %q: %v", tok, err)
				}
				h := jws.Signatures[0].Protected
				if h.Algorithm != string(tc.alg) || h.KeyID != "k1" || h.ExtraHeaders[jose.HeaderType] != "dpop+jwt" || h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
					t.Fatalf("header %+v", h)
				}
				got, err := jws.Verify(tc.pub)
				if err != nil {
					t.Fatalf("verify %d: %v", i, err)
				}
				if string(got) != string(payload) {
					t.Fatalf("payload %q, want %q", got, payload)
				}
			}
		})
	}
}

// TestNew_Refuses: keys and algorithms we do not sign, and headers the
// caller may not set.
func TestNew_Refuses(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	tests := []struct {
		name   string
		key    any
		alg    jose.SignatureAlgorithm
		header map[string]any
	}{
		{"P-384 as ES256", ec384, jose.ES256, nil},
		{"P-256 as ES384", ec, jose.ES384, nil},
		{"Ed25519 as ES256", ed, jose.ES256, nil},
		{"RSA", rk, jose.PS256, nil},
		{"public key", &ec.PublicKey, jose.ES256, nil},
		{"alg header", ec, jose.ES256, map[string]any{"alg": "none"}},
		{"crit header", ec, jose.ES256, map[string]any{"crit": []string{"b64"}}},
		{"b64 header", ed, jose.EdDSA, map[string]any{"b64": false}},
	}
	for _, tc := range tests {
		if _, err := New(tc.key, tc.alg, tc.header); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
