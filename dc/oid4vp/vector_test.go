package oid4vp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// TestSpecEncryptedResponseVector decrypts the example encrypted response of
// OpenID4VP 1.0 §8.3 ("Encrypted Responses") with the private JWK printed
// there (kid "ac"): ECDH-ES, A128GCM, no state.
func TestSpecEncryptedResponseVector(t *testing.T) {
	jwe := strings.Join([]string{
		"eyJhbGciOiJFQ0RILUVTIiwiZW5jIjoiQTEyOEdDTSIsImtpZCI6ImFjIiwiZXBrIjp7Imt",
		"0eSI6IkVDIiwieCI6Im5ubVZwbTNWM2piaGNhZlFhUkJrU1ZOSGx3Wkh3dC05ck9wSnVmeVlJdWsiLCJ5I",
		"joicjRmakRxd0p5czlxVU9QLV9iM21SNVNaRy0tQ3dPMm1pYzVWU05UWU45ZyIsImNydiI6IlAtMjU2In1",
		"9..uAYcHRUSSn2X0WPX.yVzlGSYG4qbg0bq18JcUiDRw56yVnbKR8E7S7YlEtzT00RqE3Pw5oTpUG3hdLN",
		"4taHZ9gC1kwak8JOnJgQ.1wR024_3-qtAlx1oFIUpQQ",
	}, "")
	d, err := base64.RawURLEncoding.DecodeString("Et-3ce0omz8_TuZ96Df9lp0GAaaDoUnDe6X-CRO7Aww")
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := base64.RawURLEncoding.DecodeString("YO4epjifD-KWeq1sL2tNmm36BhXnkJ0He-WqMYrp9Fk")
	pub, err := priv.PublicKey.Bytes()
	if err != nil || string(pub[1:33]) != string(x) {
		t.Fatal("spec d does not match spec x")
	}
	k := &ResponseKey{priv: priv, kid: "ac"}
	// Stored form round trip with the short spec kid.
	txt, _ := k.MarshalText()
	k2, err := UnmarshalResponseKey(txt)
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecryptResponse(jwe, k2, ExpectedResponse{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.VPToken) != 1 || len(r.VPToken["example_credential_id"]) != 1 || r.VPToken["example_credential_id"][0] != "eyJhb...YMetA" {
		t.Fatalf("%+v", r.VPToken)
	}
	if _, err := DecryptResponse(jwe, k2, ExpectedResponse{State: "s"}); !errors.Is(err, ErrState) {
		t.Fatalf("state expected but absent: %v", err)
	}
}
