package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/fedas/fedas/admin"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/storage"
)

// keysGenerateCmd is `fedas keys generate --out FILE [--kid KID]`: a new
// signing key for a rotation (docs/operations.md "Rotating the signing
// key"). It prints the kid and the config entry; the key itself is only
// ever in FILE.
func keysGenerateCmd(args []string, s stdio) error {
	fs := newFlags("keys generate", "keys generate --out FILE [--kid KID]",
		"Writes a new ES256 signing key (EC P-256, PKCS#8 PEM) to FILE, mode 0600, and prints its kid and\n"+
			"the keys.signing_keys entry to add on every instance. An existing FILE is never overwritten.\n"+
			"KID defaults to the key's RFC 7638 JWK thumbprint. Rotating: add the key to every instance,\n"+
			"then make it active (PUT /admin/v1/keys/active or keys.active_signing_key and SIGHUP), then\n"+
			"remove the old one once every token it signed has expired (docs/operations.md).")
	out := fs.String("out", "", "the file to write (required; refused if it exists)")
	kid := fs.String("kid", "", "the key's kid (default: its JWK thumbprint); 1 to 128 of A-Z a-z 0-9 . _ ~ -")
	if done, err := parseFlags(fs, args, s); done {
		return err
	}
	if err := wantArgs(fs, 0, 0, s); err != nil {
		return err
	}
	usage := func(msg string) error {
		fmt.Fprintf(s.err, "fedas keys generate: %s\n", msg)
		printUsage(s.err, fs)
		return usageError{msg}
	}
	if *out == "" {
		return usage("--out FILE is required")
	}
	if *kid != "" && !config.ValidKID(*kid) {
		return usage(fmt.Sprintf("--kid %q: 1 to %d characters of A-Z a-z 0-9 . _ ~ -", *kid, config.MaxKIDLen))
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if *kid == "" {
		if *kid, err = config.Thumbprint(&k.PublicKey); err != nil {
			return err
		}
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists: a key file is never overwritten (choose another --out)", *out)
	}
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	path := *out
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	fmt.Fprintf(s.err, "wrote %s\n", path)
	fmt.Fprintf(s.out, "kid: %s\n\n", *kid)
	fmt.Fprintf(s.out, "# Add to keys.signing_keys on every instance and restart them; make it active only once\n")
	fmt.Fprintf(s.out, "# every instance publishes it (docs/operations.md \"Rotating the signing key\"):\n")
	fmt.Fprintf(s.out, "keys:\n  signing_keys:\n    - file: %s\n      kid: %s\n", path, *kid)
	return nil
}

// warnRetiredKeys logs, at start, the signing keys that signed within the
// last server.KeyRetirementWait but are no longer configured here
// (admin.RetiredKeyWarnings). A failure to tell is not fatal.
func warnRetiredKeys(ctx context.Context, ps storage.PolicyStore, cfg *config.Config, log *zap.Logger) {
	keys, err := cfg.Keys.Signing()
	if err != nil || len(keys) == 0 {
		return
	}
	warns, err := admin.RetiredKeyWarnings(ctx, ps, keys, time.Now(), server.KeyRetirementWait)
	if err != nil {
		log.Warn("could not check the policy history for recently active signing keys", zap.Error(err))
	}
	for _, w := range warns {
		log.Warn("a signing key was removed too early", zap.String("problem", w))
	}
}
