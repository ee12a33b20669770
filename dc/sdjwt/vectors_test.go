package sdjwt_test

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/dc/sdjwt"
	"github.com/fedas/fedas/dc/sdjwt/sdjwttest"
)

// RFC 9901 §4.2.1 / §4.2.3 known-answer vector: the encoded disclosure of
// ["_26bc4LT-ac6q2KI6cBW5es", "family_name", "Möbius"] and its digest.
const (
	rfcFamilyName       = "WyJfMjZiYzRMVC1hYzZxMktJNmNCVzVlcyIsICJmYW1pbHlfbmFtZSIsICJNw7ZiaXVzIl0"
	rfcFamilyNameDigest = "X9yH0Ajrdm1Oij4tWso9UzzKJvPoDxwmuEcO3XAdRC0"
)

func TestRFC9901DigestVector(t *testing.T) {
	if got := sdjwt.Digest(rfcFamilyName); got != rfcFamilyNameDigest {
		t.Fatalf("digest %q want %q", got, rfcFamilyNameDigest)
	}
}

// TestRFC9901EquivalentVector embeds the RFC's exact disclosure text (with
// its non-canonical JSON spacing) in an issuer JWT signed by a test key: the
// RFC's own issuer JWT uses typ example+sd-jwt and has no vct, so it cannot
// pass SD-JWT VC checks as is.
func TestRFC9901EquivalentVector(t *testing.T) {
	payload := map[string]any{"iss": "https://issuer.example", "vct": "urn:eudi:pid:1", "_sd": []any{rfcFamilyNameDigest}, "_sd_alg": "sha-256",
		"cnf": map[string]any{"jwk": jose.JSONWebKey{Key: &holderKey.PublicKey}}}
	jwt := signRaw(t, es256(issKey), sdjwt.TypVC, payload)
	pres := withKB(t, sdjwttest.Combine(jwt, []string{rfcFamilyName}, ""), holderKey, sdjwt.TypKB, nil)
	v, err := sdjwt.Verify(pres, opts())
	if err != nil {
		t.Fatal(err)
	}
	if v.Claims["family_name"] != "Möbius" {
		t.Fatalf("family_name %v", v.Claims["family_name"])
	}
}

func TestX5CIssuerKeys(t *testing.T) {
	caKey, leafKey := mustKey(), mustKey()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	uri, _ := url.Parse("https://uri-issuer.example/pid")
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "issuer"}, DNSNames: []string{"issuer.example"}, URIs: []*url.URL{uri},
		KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	otherRoots := x509.NewCertPool()
	x5c := []string{base64.StdEncoding.EncodeToString(leafDER)}

	mk := func(iss string, signer *ecdsa.PrivateKey) string {
		cl := baseClaims()
		cl["iss"] = iss
		c, err := sdjwttest.Issue(cl, nil, es256(signer), sdjwttest.Options{HolderKey: &holderKey.PublicKey, Header: map[jose.HeaderKey]any{"x5c": x5c}})
		if err != nil {
			t.Fatal(err)
		}
		return present(t, c, nil)
	}
	tests := []struct {
		name  string
		pres  string
		roots *x509.CertPool
		at    time.Time
		want  error
	}{
		{"dns san", mk("https://issuer.example", leafKey), roots, now, nil},
		{"uri san", mk("https://uri-issuer.example/pid", leafKey), roots, now, nil},
		{"iss not bound", mk("https://evil.example", leafKey), roots, now, sdjwt.ErrIssuerKey},
		{"untrusted root", mk("https://issuer.example", leafKey), otherRoots, now, sdjwt.ErrIssuerKey},
		{"leaf expired", mk("https://issuer.example", leafKey), roots, now.Add(2 * time.Hour), sdjwt.ErrIssuerKey},
		{"signed by other key", mk("https://issuer.example", otherKey), roots, now, sdjwt.ErrSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := opts()
			at := tc.at
			o.IssuerKeys = sdjwt.X5CIssuerKeys(tc.roots, func() time.Time { return at })
			_, err := sdjwt.Verify(tc.pres, o)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzVerify: invariant — an accepted presentation has a valid issuer
// signature under the issuer key and every presented disclosure's digest is
// referenced by the verified payload or another disclosure.
func FuzzVerify(f *testing.F) {
	c, err := sdjwttest.Issue(baseClaims(), disclosable, es256(issKey), sdjwttest.Options{HolderKey: &holderKey.PublicKey, Decoys: 1})
	if err != nil {
		f.Fatal(err)
	}
	full, _ := sdjwttest.Present(c, nil, es256(holderKey), nonce, aud, now)
	sel, _ := sdjwttest.Present(c, []string{"given_name"}, es256(holderKey), nonce, aud, now)
	f.Add(full)
	f.Add(sel)
	f.Add(c.String())
	f.Add(c.JWT + "~~")
	f.Fuzz(func(t *testing.T, pres string) {
		o := opts()
		o.MaxSize = 8 << 10
		v, err := sdjwt.Verify(pres, o)
		if err != nil {
			return
		}
		parts := strings.Split(pres, "~")
		jws, err := jose.ParseSignedCompact(parts[0], sdjwt.AllowedAlgs())
		if err != nil {
			t.Fatalf("accepted but issuer JWT does not parse: %v", err)
		}
		payload, err := jws.Verify(&issKey.PublicKey)
		if err != nil {
			t.Fatalf("accepted but signature invalid: %v", err)
		}
		refs := string(payload)
		for _, d := range parts[1 : len(parts)-1] {
			b, _ := base64.RawURLEncoding.DecodeString(d)
			refs += string(b)
		}
		for _, d := range parts[1 : len(parts)-1] {
			if !strings.Contains(refs, `"`+sdjwt.Digest(d)+`"`) {
				t.Fatalf("accepted unreferenced disclosure")
			}
		}
		if v.VCT == "" {
			t.Fatal("accepted without vct")
		}
	})
}
