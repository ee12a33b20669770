package dctest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/dc/oid4vp"
)

// TestEncryptToEnc: enc is A128GCM when the request lists none, else the
// first listed value the wallet supports (OpenID4VP 1.0 §8.3); the kid of
// the chosen key is echoed; a list of only unknown values is refused.
func TestEncryptToEnc(t *testing.T) {
	tests := []struct {
		list []string
		want string
		err  error
	}{
		{nil, "A128GCM", nil},
		{[]string{"A256GCM", "A128GCM"}, "A256GCM", nil},
		{[]string{"A192CBC-HS384", "A128GCM"}, "A128GCM", nil},
		{[]string{"A192CBC-HS384"}, "", ErrRequest},
	}
	for _, tc := range tests {
		k, err := oid4vp.NewResponseKey()
		if err != nil {
			t.Fatal(err)
		}
		ro := &oid4vp.RequestObject{ClientMetadata: oid4vp.ClientMetadata{JWKS: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.PublicJWK()}}, EncValuesSupported: tc.list}}
		jwe, err := encryptTo(ro, map[string]any{"state": "s", "vp_token": map[string][]string{"pid": {"x"}}})
		if !errors.Is(err, tc.err) {
			t.Fatalf("%v: err %v", tc.list, err)
		}
		if tc.err != nil {
			continue
		}
		h, _ := base64.RawURLEncoding.DecodeString(strings.SplitN(jwe, ".", 2)[0])
		var hdr struct{ Alg, Enc, Kid string }
		_ = json.Unmarshal(h, &hdr)
		if hdr.Alg != "ECDH-ES" || hdr.Enc != tc.want || hdr.Kid != k.KID() {
			t.Fatalf("%v: header %+v", tc.list, hdr)
		}
		if _, err := oid4vp.DecryptResponse(jwe, k, oid4vp.ExpectedResponse{State: "s"}); err != nil {
			t.Fatalf("%v: %v", tc.list, err)
		}
	}
}
