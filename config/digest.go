package config

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"strings"
)

func hexSHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// checkBase32 accepts an RFC 4648 base32 TOTP secret of at least 80 bits
// (RFC 4226 §4 R6 recommends 160).
func checkBase32(s string) error {
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimRight(strings.ToUpper(s), "="))
	if err != nil {
		return errors.New("not valid base32")
	}
	if len(b) < 10 {
		return errors.New("shorter than 80 bits")
	}
	return nil
}
