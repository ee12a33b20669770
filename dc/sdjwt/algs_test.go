package sdjwt_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/dc/sdjwt"
	"github.com/fedas/fedas/dc/sdjwt/sdjwttest"
)

// TestVerifyIssuerAlgs: every allowlisted issuer alg verifies, for the
// issuer JWT and for the KB-JWT; flattened JSON serialization is refused.
func TestVerifyIssuerAlgs(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		sign jose.SigningKey
		pub  crypto.PublicKey
	}{
		{"ES256", es256(issKey), &issKey.PublicKey},
		{"ES384", jose.SigningKey{Algorithm: jose.ES384, Key: p384}, &p384.PublicKey},
		{"EdDSA", jose.SigningKey{Algorithm: jose.EdDSA, Key: edPriv}, edPriv.Public()},
		{"PS256", jose.SigningKey{Algorithm: jose.PS256, Key: rsaKey}, &rsaKey.PublicKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := sdjwttest.Issue(baseClaims(), disclosable, tc.sign, sdjwttest.Options{HolderKey: tc.pub})
			if err != nil {
				t.Fatal(err)
			}
			// The holder key is the same key pair here: covers KB algs too.
			pres, err := sdjwttest.Present(c, nil, tc.sign, nonce, aud, now)
			if err != nil {
				t.Fatal(err)
			}
			o := opts()
			o.IssuerKeys = func(string, jose.Header) (crypto.PublicKey, error) { return tc.pub, nil }
			if _, err := sdjwt.Verify(pres, o); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
	t.Run("JSON serialization refused", func(t *testing.T) {
		s, err := jose.NewSigner(es256(issKey), (&jose.SignerOptions{}).WithType(sdjwt.TypVC))
		if err != nil {
			t.Fatal(err)
		}
		obj, err := s.Sign([]byte(`{"iss":"https://issuer.example","vct":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		o := opts()
		o.RequireKB = false
		if _, err := sdjwt.Verify(obj.FullSerialize()+"~", o); !errors.Is(err, sdjwt.ErrMalformed) {
			t.Fatalf("Verify: %v", err)
		}
	})
}

// FuzzDisclosures keeps a valid issuer JWT and fuzzes the disclosure part,
// so the fuzzer reaches disclosure processing. Invariant: accepted ⇒ every
// presented disclosure is referenced (its digest appears in the payload or
// in another disclosure) and no digest is presented twice.
func FuzzDisclosures(f *testing.F) {
	c, err := sdjwttest.Issue(baseClaims(), disclosable, es256(issKey), sdjwttest.Options{HolderKey: &holderKey.PublicKey, Decoys: 1})
	if err != nil {
		f.Fatal(err)
	}
	var all []string
	for _, d := range c.Disclosures {
		all = append(all, d.Encoded)
	}
	f.Add(strings.Join(all, "~"))
	f.Add(all[0])
	f.Add("")
	f.Fuzz(func(t *testing.T, discs string) {
		pres := c.JWT + "~" + discs + "~"
		if discs == "" {
			pres = c.JWT + "~"
		}
		o := opts()
		o.RequireKB = false
		if _, err := sdjwt.Verify(pres, o); err != nil {
			return
		}
		parts := strings.Split(pres, "~")
		seen := map[string]bool{}
		for _, d := range parts[1 : len(parts)-1] {
			if seen[d] {
				t.Fatal("accepted a repeated disclosure")
			}
			seen[d] = true
		}
		for _, d := range parts[1 : len(parts)-1] {
			if !referenced(c, d) {
				t.Fatalf("accepted unreferenced disclosure")
			}
		}
	})
}

// referenced: d is one of the issued disclosures (the issuer JWT is fixed,
// so only issued disclosures can be referenced by it or by each other).
func referenced(c *sdjwttest.Credential, d string) bool {
	for _, x := range c.Disclosures {
		if x.Encoded == d {
			return true
		}
	}
	return false
}
