// Package loopbackcert makes the self-signed P-256 certificates that
// fedas's demo and load driver use on 127.0.0.1: a TLS server
// certificate (RFC 5280 §4.2.1.12 serverAuth) for the HTTPS base URL the
// verifier requires, or a signing certificate for a simulated
// credential issuer or verifier. Never for a deployment.
package loopbackcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"time"
)

// New returns a fresh P-256 key and a self-signed CA certificate for it
// naming 127.0.0.1 (as an IP address and a DNS name), valid from an hour
// ago for lifetime; serverAuth adds the TLS server usage.
func New(cn string, serverAuth bool, lifetime time.Duration) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(lifetime),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"127.0.0.1"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true, IsCA: true}
	if serverAuth {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return k, cert, err
}
