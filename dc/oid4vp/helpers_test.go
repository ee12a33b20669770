package oid4vp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const testQuery = `{"credentials":[{"id":"pid","format":"dc+sd-jwt","meta":{"vct_values":["urn:eudi:pid:1"]},"claims":[{"path":["given_name"]}]}]}`

var fixedNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// testSigner returns a CA-issued P-256 leaf and its chain (leaf, CA).
func testSigner(tb testing.TB) Signer {
	tb.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: fixedNow.Add(-time.Hour), NotAfter: fixedNow.Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "verifier"},
		NotBefore: fixedNow.Add(-time.Hour), NotAfter: fixedNow.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		DNSNames: []string{"as.example"}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	return Signer{Key: key, Chain: []*x509.Certificate{leaf, ca}}
}

func testKey(tb testing.TB) *ResponseKey {
	tb.Helper()
	k, err := NewResponseKey()
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

type encOpts struct {
	alg jose.KeyAlgorithm
	enc jose.ContentEncryption
	kid string
	key any
	zip bool
}

// encrypt is the wallet side: a JWE to the verifier's key with go-jose.
func encrypt(tb testing.TB, rk *ResponseKey, payload any, o encOpts) string {
	tb.Helper()
	if o.alg == "" {
		o.alg = jose.ECDH_ES
	}
	if o.enc == "" {
		o.enc = jose.A128GCM
	}
	if o.kid == "" {
		o.kid = rk.KID()
	}
	var key any = rk.Public()
	if o.key != nil {
		key = o.key
	}
	var b []byte
	if s, ok := payload.(string); ok {
		b = []byte(s)
	} else {
		var err error
		if b, err = json.Marshal(payload); err != nil {
			tb.Fatal(err)
		}
	}
	opts := &jose.EncrypterOptions{}
	if o.zip {
		opts.Compression = jose.DEFLATE
	}
	e, err := jose.NewEncrypter(o.enc, jose.Recipient{Algorithm: o.alg, Key: key, KeyID: o.kid}, opts)
	if err != nil {
		tb.Fatal(err)
	}
	obj, err := e.Encrypt(b)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func rsaKey(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func x509VerifyOpts(s Signer) x509.VerifyOptions {
	roots := x509.NewCertPool()
	roots.AddCert(s.Chain[len(s.Chain)-1])
	return x509.VerifyOptions{Roots: roots, CurrentTime: fixedNow}
}
