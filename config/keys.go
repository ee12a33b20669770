package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// SigningKey loads keys.signing_key_file: a PEM EC P-256 private key
// (SEC 1 or PKCS#8). Nil without a file: the server then makes an
// ephemeral key. It lives here, not in the server, so that `fedas config
// check` refuses exactly the key files serve would.
func (k Keys) SigningKey() (*ecdsa.PrivateKey, error) {
	path := k.SigningKeyFile
	if path == "" {
		return nil, nil
	}
	fail := func(format string, a ...any) (*ecdsa.PrivateKey, error) {
		return nil, fmt.Errorf("keys.signing_key_file: %s", fmt.Sprintf(format, a...))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fail("%v", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return fail("%s: no PEM block", path)
	}
	var ek *ecdsa.PrivateKey
	if k, err := x509.ParseECPrivateKey(blk.Bytes); err == nil {
		ek = k
	} else {
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return fail("%s: %v", path, err)
		}
		var ok bool
		if ek, ok = k.(*ecdsa.PrivateKey); !ok {
			return fail("%s: not an EC private key", path)
		}
	}
	if ek.Curve != elliptic.P256() {
		// We sign with ES256 only (RFC 7518 §3.4: P-256).
		return fail("%s: the key must be on P-256 (ES256), not %s", path, ek.Curve.Params().Name)
	}
	return ek, nil
}
