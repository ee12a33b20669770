package dc_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/fedas/fedas/dc"
	"github.com/fedas/fedas/dc/dcql"
)

// TestVerifyVPTokenX5C: an x5c issuer key is accepted only when the chain
// reaches the issuer's roots and the leaf is bound to the configured iss
// (SD-JWT VC §3); a static-JWKS issuer never accepts an x5c-only header.
func TestVerifyVPTokenX5C(t *testing.T) {
	caKey, leafKey := mustKey(), mustKey()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "issuer"}, DNSNames: []string{"x5c-issuer.example"},
		KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	chain := []string{base64.StdEncoding.EncodeToString(leafDER)}
	const iss = "https://x5c-issuer.example"
	ti := dc.TrustedIssuer{Issuer: iss, X5CRoots: roots, VCTValues: []string{vctPID}, SubjectClaim: dcql.Path{"sub"}}

	tests := []struct {
		name  string
		c     cred
		roots *x509.CertPool
		want  error
	}{
		{"chain to roots", cred{iss: iss, key: leafKey, vct: vctPID, x5c: chain}, roots, nil},
		{"untrusted roots", cred{iss: iss, key: leafKey, vct: vctPID, x5c: chain}, x509.NewCertPool(), dc.ErrIssuer},
		{"signed by another key", cred{iss: iss, key: keyA, vct: vctPID, x5c: chain}, roots, dc.ErrPresentation},
		{"x5c ignored for a static-key issuer", cred{iss: issA, key: leafKey, vct: vctPID, x5c: chain}, roots, dc.ErrPresentation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := policy(t, pidQuery)
			ti := ti
			ti.X5CRoots = tc.roots
			p.Issuers = append(p.Issuers, ti)
			vc, err := dc.VerifyVPToken(context.Background(), map[string][]string{"pid": {tc.c.present(t)}}, p, checker)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if tc.want == nil && (len(vc) != 1 || vc[0].Subject != iss+"|user-1") {
				t.Errorf("got %+v", vc)
			}
		})
	}
}
