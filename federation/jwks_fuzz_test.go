package federation

import (
	"encoding/json"
	"fmt"
	"testing"

	"go.uber.org/zap"
)

// fzJWKSSeeds are JWK Sets with every kind of key, and the keys a set must
// not hand out.
func fzJWKSSeeds() []string {
	pub := fzJWKS()
	return []string{
		pub,
		`{"keys":[]}`,
		`{"keys":null}`,
		`{}`,
		`[]`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"F6Ohuf10rqYXKQ8AgdP_bWkHyIROKZJlnyHDIA0JDBo","y":"nWB89OiLwiYxRQ1xuZin62myvXolV4Nwgr1t_O3PXso","kid":"a","d":"MA78LjFwNyoEvLSL0vAEOTQSeDFzELfRBa_VXm3n_6Q"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"F6Ohuf10rqYXKQ8AgdP_bWkHyIROKZJlnyHDIA0JDBo","y":"nWB89OiLwiYxRQ1xuZin62myvXolV4Nwgr1t_O3PXso","kid":"a","D":"MA78LjFwNyoEvLSL0vAEOTQSeDFzELfRBa_VXm3n_6Q"}]}`,
		`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"F6Ohuf10rqYXKQ8AgdP_bWkHyIROKZJlnyHDIA0JDBo","y":"nWB89OiLwiYxRQ1xuZin62myvXolV4Nwgr1t_O3PXso"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"F6Ohuf10rqYXKQ8AgdP_bWkHyIROKZJlnyHDIA0JDBo","y":"nWB89OiLwiYxRQ1xuZin62myvXolV4Nwgr1t_O3PXso","kid":"e","use":"enc"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"F6Ohuf10rqYXKQ8AgdP_bWkHyIROKZJlnyHDIA0JDBo","y":"AAAA","kid":"bad"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"ed"},{"kty":"OKP","crv":"Ed25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","kid":"ed"}]}`,
		`{"keys":[1,"x",null,{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"tiny"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"F6Ohuf10rqYXKQ8AgdP_bWkHyIROKZJlnyHDIA0JDBo","y":"nWB89OiLwiYxRQ1xuZin62myvXolV4Nwgr1t_O3PXso","KID":"upper"}]}`,
	}
}

// FuzzParseJWKS: a downstream JWK Set (RFC 7517 §5; jwks.go parseJWKS)
// never panics, and every key it keeps is a valid public signing key
// (EC, OKP or RSA public key; no private or symmetric material, whatever
// the member spelling), under a non-empty kid that is the exact "kid" of
// a key in the set, with use absent or "sig".
func FuzzParseJWKS(f *testing.F) {
	for _, s := range fzJWKSSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		keys, err := parseJWKS(fzJWKSURI, body, zap.NewNop())
		if err != nil {
			return
		}
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		_ = json.Unmarshal(body, &set)
		kids := map[string]bool{}
		for _, raw := range set.Keys {
			var m map[string]any
			if json.Unmarshal(raw, &m) == nil {
				if kid, ok := m["kid"].(string); ok {
					kids[kid] = true
				}
			}
		}
		for kid, k := range keys {
			if kid == "" || k.KeyID != kid || !kids[kid] {
				t.Fatalf("kept a key under kid %q (key's kid %q), the set's kids are %v", kid, k.KeyID, kids)
			}
			if k.Use != "" && k.Use != "sig" {
				t.Fatalf("kept a key with use %q", k.Use)
			}
			if !k.IsPublic() || !k.Valid() {
				t.Fatalf("kept key %q, which is not a valid public key", kid)
			}
			switch typeName(k.Key) {
			case "*ecdsa.PublicKey", "ed25519.PublicKey", "*rsa.PublicKey":
			default:
				t.Fatalf("kept key %q of type %s", kid, typeName(k.Key))
			}
		}
	})
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }
