//go:build !race

package compactjws

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// TestSign_Allocs gates what one EdDSA signature allocates (the buffer,
// the string; go-jose's signer, with its
// per-call header encoding, took 89): a change that
// re-encodes the header per call shows here. Not run under -race, which
// allocates on its own.
func TestSign_Allocs(t *testing.T) {
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	s, err := New(ed, jose.EdDSA, map[string]any{"typ": "dpop+jwt", "jwk": jose.JSONWebKey{Key: ed.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"jti":"abc","htm":"POST","htu":"https://as.example/native","iat":1700000000}`)
	got := testing.AllocsPerRun(200, func() {
		if _, err := s.Sign(payload); err != nil {
			t.Fatal(err)
		}
	})
	if got > 4 {
		t.Errorf("Sign allocates %.0f times, want at most 4", got)
	}
	t.Logf("EdDSA Sign: %.0f allocs", got)
}
