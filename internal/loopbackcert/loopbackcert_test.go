package loopbackcert

import (
	"crypto/x509"
	"slices"
	"testing"
	"time"
)

func TestNew(t *testing.T) {
	for _, serverAuth := range []bool{false, true} {
		k, c, err := New("test", serverAuth, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if !k.PublicKey.Equal(c.PublicKey) {
			t.Fatal("certificate is not for the key")
		}
		if err := c.CheckSignatureFrom(c); err != nil {
			t.Fatalf("not self-signed: %v", err)
		}
		if err := c.VerifyHostname("127.0.0.1"); err != nil {
			t.Fatal(err)
		}
		if got := slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth); got != serverAuth {
			t.Fatalf("serverAuth = %v, want %v", got, serverAuth)
		}
		if time.Until(c.NotAfter) > time.Hour || time.Until(c.NotAfter) < 59*time.Minute {
			t.Fatalf("NotAfter %v is not an hour ahead", c.NotAfter)
		}
	}
}
