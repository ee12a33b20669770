package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// KeyFile is one signing key of keys.signing_keys.
type KeyFile struct {
	// File is a PEM EC P-256 private key (SEC 1 "EC PRIVATE KEY" or
	// PKCS#8 "PRIVATE KEY"): we sign ES256 only (RFC 7518 §3.4).
	File string `yaml:"file"`
	// KID is the key's "kid" (RFC 7515 §4.1.4) in the JWK Set and in
	// the headers of what it signs: up to 128 of A-Z a-z 0-9 . _ ~ -
	// (default: its RFC 7638 JWK thumbprint, base64url).
	KID string `yaml:"kid"`
}

// SigningKey is one loaded signing key.
type SigningKey struct {
	// KID is the key's kid: configured, or its RFC 7638 thumbprint.
	KID string
	// Key is the ES256 private key.
	Key *ecdsa.PrivateKey
	// Path is where it is configured ("keys.signing_keys[1]").
	Path string
}

// loadedKeys are the signing keys an instance runs with. A pointer to one
// is shared by every copy of a Keys (Compose copies the base config), and
// it is never modified after LoadSigningKeys.
type loadedKeys struct {
	keys []SigningKey
}

// MaxKIDLen bounds a configured kid.
const MaxKIDLen = 128

// ValidKID reports whether kid is a kid we accept in configuration and
// through the admin API: 1 to MaxKIDLen characters of the RFC 3986
// unreserved set, which every thumbprint (base64url) also is. Such a kid
// is safe in a JOSE header, a URL, a log line and a YAML scalar.
func ValidKID(kid string) bool {
	if kid == "" || len(kid) > MaxKIDLen {
		return false
	}
	for i := 0; i < len(kid); i++ {
		c := kid[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_', c == '~', c == '-':
		default:
			return false
		}
	}
	return true
}

// Thumbprint is the RFC 7638 JWK thumbprint (SHA-256, base64url) of an
// ES256 public key: the default kid of a signing key.
func Thumbprint(pub *ecdsa.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// keyEntry is one configured signing key with its place in the file.
type keyEntry struct {
	KeyFile
	// path is the entry's YAML path, filePath its file's.
	path, filePath string
}

// keyFiles is the configured signing keys in one form: signing_key_file
// is the one-key shorthand of signing_keys (its kid is the thumbprint).
func (k Keys) keyFiles() []keyEntry {
	if len(k.SigningKeys) == 0 && k.SigningKeyFile != "" {
		return []keyEntry{{KeyFile{File: k.SigningKeyFile}, "keys.signing_key_file", "keys.signing_key_file"}}
	}
	out := make([]keyEntry, len(k.SigningKeys))
	for i, f := range k.SigningKeys {
		p := fmt.Sprintf("keys.signing_keys[%d]", i)
		out[i] = keyEntry{f, p, p + ".file"}
	}
	return out
}

// validateSigningKeys is the part of Validate about the signing keys: the
// rules that need no key file, and — once LoadSigningKeys has read them —
// that active_signing_key names one of them.
func (k Keys) validateSigningKeys() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if k.SigningKeyFile != "" && len(k.SigningKeys) > 0 {
		add("keys: set only one of signing_key_file and signing_keys (signing_key_file is the one-key form)")
		return errs
	}
	kids := map[string]int{}
	explicit := true
	for i, f := range k.SigningKeys {
		p := fmt.Sprintf("keys.signing_keys[%d]", i)
		if f.File == "" {
			add("%s.file: required", p)
		}
		switch {
		case f.KID == "":
			explicit = false
		case !ValidKID(f.KID):
			add("%s.kid: %q must be 1 to %d characters of A-Z a-z 0-9 . _ ~ -", p, f.KID, MaxKIDLen)
		default:
			if j, dup := kids[f.KID]; dup {
				add("%s.kid: %q duplicates keys.signing_keys[%d]", p, f.KID, j)
			} else {
				kids[f.KID] = i
			}
		}
	}
	active := k.ActiveSigningKey
	switch {
	case active == "":
	case !ValidKID(active):
		add("keys.active_signing_key: %q is not a valid kid", active)
	case k.loaded != nil && len(k.loaded.keys) > 0:
		// The keys the instance runs with decide, whatever the files
		// say now (they take effect at a restart).
		if !k.loaded.has(active) {
			add("keys.active_signing_key: %q is not one of this instance's signing keys (%s)", active, strings.Join(k.loaded.kids(), ", "))
		}
	case k.SigningKeyFile == "" && len(k.SigningKeys) == 0:
		add("keys.active_signing_key: %q names no configured key: there are no keys.signing_keys (the key is ephemeral)", active)
	case explicit && k.SigningKeyFile == "":
		if _, ok := kids[active]; !ok {
			add("keys.active_signing_key: %q is not the kid of any of keys.signing_keys", active)
		}
	}
	return errs
}

// LoadSigningKeys reads the signing key files (keys.signing_keys, or
// keys.signing_key_file), computes the default kids, and keeps the keys
// with k, so that Validate checks active_signing_key against them and
// Signing returns them. It reports every unusable file at once; it
// leaves the rules Validate reports (both forms at once, a duplicate
// configured kid) to Validate. No file configured: no keys (the server
// then makes an ephemeral one).
func (k *Keys) LoadSigningKeys() error {
	keys, err := k.readSigningKeys()
	if err != nil {
		return err
	}
	k.loaded = &loadedKeys{keys: keys}
	return nil
}

// Signing returns the signing keys this instance runs with: those
// LoadSigningKeys read, else the files read now. Empty means none is
// configured.
func (k Keys) Signing() ([]SigningKey, error) {
	if k.loaded != nil {
		return append([]SigningKey(nil), k.loaded.keys...), nil
	}
	return k.readSigningKeys()
}

// WithSigningKeys returns k holding keys as its loaded signing keys: the
// keys a running instance signs with, for a configuration re-read while
// it runs (key files take effect at a restart; the active kid is checked
// against the keys in use).
func (k Keys) WithSigningKeys(keys []SigningKey) Keys {
	k.loaded = &loadedKeys{keys: append([]SigningKey(nil), keys...)}
	return k
}

// ActiveKID is the kid of the key that signs: active_signing_key, else
// the first loaded key's ("" when none is loaded).
func (k Keys) ActiveKID() string {
	if k.ActiveSigningKey != "" {
		return k.ActiveSigningKey
	}
	if k.loaded != nil && len(k.loaded.keys) > 0 {
		return k.loaded.keys[0].KID
	}
	return ""
}

// Instance is the per-instance part of k: without active_signing_key
// (policy) and the loaded keys, for telling whether a restart is needed.
func (k Keys) Instance() Keys {
	k.ActiveSigningKey, k.loaded = "", nil
	return k
}

func (l *loadedKeys) has(kid string) bool {
	for _, k := range l.keys {
		if k.KID == kid {
			return true
		}
	}
	return false
}

func (l *loadedKeys) kids() []string {
	out := make([]string, len(l.keys))
	for i, k := range l.keys {
		out[i] = k.KID
	}
	return out
}

func (k Keys) readSigningKeys() ([]SigningKey, error) {
	if k.SigningKeyFile != "" && len(k.SigningKeys) > 0 {
		return nil, nil // Validate reports it
	}
	var errs []error
	var out []SigningKey
	type seen struct {
		path     string
		explicit bool
	}
	byKID := map[string]seen{}
	byKey := map[string]string{}
	for _, f := range k.keyFiles() {
		if f.File == "" {
			continue // Validate reports it
		}
		key, err := readSigningKey(f.File)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", f.filePath, err))
			continue
		}
		tp, err := Thumbprint(&key.PublicKey)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %v", f.filePath, err))
			continue
		}
		if first, dup := byKey[tp]; dup {
			errs = append(errs, fmt.Errorf("%s: the same key as %s", f.filePath, first))
			continue
		}
		byKey[tp] = f.path
		kid := f.KID
		if kid == "" {
			kid = tp
		}
		if first, dup := byKID[kid]; dup {
			// Two configured kids that are equal are Validate's to report.
			if f.KID == "" || !first.explicit {
				errs = append(errs, fmt.Errorf("%s: its kid %q is the kid of %s", f.path, kid, first.path))
			}
			continue
		}
		byKID[kid] = seen{f.path, f.KID != ""}
		out = append(out, SigningKey{KID: kid, Key: key, Path: f.path})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// readSigningKey reads a PEM EC P-256 private key (SEC 1 or PKCS#8).
func readSigningKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	var ek *ecdsa.PrivateKey
	if k, err := x509.ParseECPrivateKey(blk.Bytes); err == nil {
		ek = k
	} else {
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		var ok bool
		if ek, ok = k.(*ecdsa.PrivateKey); !ok {
			return nil, fmt.Errorf("%s: not an EC private key", path)
		}
	}
	if ek.Curve != elliptic.P256() {
		// We sign with ES256 only (RFC 7518 §3.4: P-256).
		return nil, fmt.Errorf("%s: the key must be on P-256 (ES256), not %s", path, ek.Curve.Params().Name)
	}
	return ek, nil
}

// ReadECKeyFile reads a PEM EC P-256 private key (SEC 1 or PKCS#8), the
// format of every private key file fedas takes.
func ReadECKeyFile(path string) (*ecdsa.PrivateKey, error) { return readSigningKey(path) }
