package dpop

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/internal/testkeys"
)

const fuzzHTU = "https://as.example/native/authorize"

var fuzzNow = time.Unix(1_800_000_000, 0)

// fuzzSigners are the keys the target signs the fuzzer's header and
// claims with.
var fuzzSigners = []struct {
	alg jose.SignatureAlgorithm
	key crypto.Signer
}{
	{jose.ES256, testkeys.P256A}, {jose.EdDSA, testkeys.Ed25519A}, {jose.PS256, testkeys.RSAA},
	{jose.ES256, testkeys.P256B}, {"none", testkeys.P256A},
}

// fuzzReplay is an in-memory jti store.
type fuzzReplay struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (r *fuzzReplay) MarkUsed(_ context.Context, k string, _ time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[k] {
		return ErrReplay
	}
	r.seen[k] = true
	return nil
}

func fuzzHeader(alg jose.SignatureAlgorithm, key crypto.Signer) string {
	return `{"typ":"dpop+jwt","alg":"` + string(alg) + `","jwk":` + testkeys.PublicJSON(key, "", "") + `}`
}

func fuzzProofClaims(mod func(map[string]any)) string {
	c := map[string]any{"jti": "jti-1", "htm": "POST", "htu": fuzzHTU, "iat": fuzzNow.Unix()}
	if mod != nil {
		mod(c)
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// privateMembers carry private or symmetric key material (RFC 7518 §6).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// FuzzVerify: the DPoP proof verifier (RFC 9449 §4.3) never panics, and a
// proof it accepts has (read here from the raw JSON, case-sensitively) typ
// dpop+jwt, an alg among ES256, EdDSA and PS256 (never none or HS*), a
// public jwk with no private members whose key verifies the signature by
// the standard library, the returned thumbprint of that jwk, a jti, the
// request's htm and htu, an integer iat within 60 s back and 10 s ahead,
// and ath when an access token is presented. The fuzzer writes the header
// and claims JSON; the target signs them with one of its keys (or uses raw
// as the whole proof).
func FuzzVerify(f *testing.F) {
	add := func(hdr, claims string, signer uint8, method, token string) {
		f.Add(hdr, claims, signer, method, token, "")
	}
	for i := uint8(0); i < 3; i++ {
		add(fuzzHeader(fuzzSigners[i].alg, fuzzSigners[i].key), fuzzProofClaims(nil), i, "POST", "")
	}
	es := fuzzHeader(jose.ES256, testkeys.P256A)
	sum := sha256.Sum256([]byte("at"))
	add(es, fuzzProofClaims(func(c map[string]any) { c["ath"] = base64.RawURLEncoding.EncodeToString(sum[:]) }), 0, "POST", "at")
	add(es, fuzzProofClaims(nil), 0, "POST", "at") // no ath
	add(es, fuzzProofClaims(nil), 3, "POST", "")   // another key signed
	add(es, fuzzProofClaims(nil), 0, "GET", "")
	add(strings.Replace(es, "ES256", "none", 1), fuzzProofClaims(nil), 4, "POST", "")
	add(strings.Replace(es, "ES256", "HS256", 1), fuzzProofClaims(nil), 0, "POST", "")
	add(strings.Replace(es, "ES256", "RS256", 1), fuzzProofClaims(nil), 2, "POST", "")
	add(strings.Replace(es, "dpop+jwt", "JWT", 1), fuzzProofClaims(nil), 0, "POST", "")
	add(`{"typ":"dpop+jwt","alg":"ES256"}`, fuzzProofClaims(nil), 0, "POST", "")
	add(`{"typ":"dpop+jwt","alg":"ES256","jwk":`+`{"kty":"EC","crv":"P-256","x":"F6Ohuf10rqYXKQ8AgdP_bWkHyIROKZJlnyHDIA0JDBo","y":"nWB89OiLwiYxRQ1xuZin62myvXolV4Nwgr1t_O3PXso","d":"MA78LjFwNyoEvLSL0vAEOTQSeDFzELfRBa_VXm3n_6Q"}}`, fuzzProofClaims(nil), 0, "POST", "")
	add(`{"typ":"dpop+jwt","alg":"HS256","jwk":{"kty":"oct","k":"c2VjcmV0"}}`, fuzzProofClaims(nil), 0, "POST", "")
	add(es, fuzzProofClaims(func(c map[string]any) { c["iat"] = fuzzNow.Add(-61 * time.Second).Unix() }), 0, "POST", "")
	add(es, fuzzProofClaims(func(c map[string]any) { c["iat"] = fuzzNow.Add(11 * time.Second).Unix() }), 0, "POST", "")
	add(es, fuzzProofClaims(func(c map[string]any) { c["iat"] = 1.8e9 + 0.5 }), 0, "POST", "")
	add(es, fuzzProofClaims(func(c map[string]any) { delete(c, "iat") }), 0, "POST", "")
	add(es, fuzzProofClaims(func(c map[string]any) { delete(c, "jti") }), 0, "POST", "")
	add(es, fuzzProofClaims(func(c map[string]any) { c["htu"] = fuzzHTU + "?x=1#f" }), 0, "POST", "")
	add(es, fuzzProofClaims(func(c map[string]any) { c["htu"] = "HTTPS://AS.EXAMPLE/native/authorize" }), 0, "POST", "")
	add(es, fuzzProofClaims(func(c map[string]any) { c["htu"] = "https://as.example/native/authorize/" }), 0, "POST", "")
	add(es, fuzzProofClaims(func(c map[string]any) { c["HTM"] = "POST"; delete(c, "htm") }), 0, "POST", "")
	add(es, `{"jti":"a","htm":"GET","htm":"POST","htu":"`+fuzzHTU+`","iat":1800000000}`, 0, "POST", "")
	add(es, `[]`, 0, "POST", "")
	f.Add("", "", uint8(0), "POST", "", "a.b.c")
	f.Add("", "", uint8(0), "POST", "", "a.b.c,d.e.f")
	f.Add("", "", uint8(0), "POST", "", "eyJhbGciOiJub25lIiwidHlwIjoiZHBvcCtqd3QifQ.e30.")
	f.Fuzz(func(t *testing.T, protected, claims string, signer uint8, method, token, raw string) {
		proof := raw
		if proof == "" {
			k := fuzzSigners[int(signer)%len(fuzzSigners)]
			proof = testkeys.Compact(protected, claims, k.alg, k.key)
		}
		// A fresh jti store per input: each is judged alone, and a
		// finding replays the same way.
		v := &Verifier{Replay: &fuzzReplay{seen: map[string]bool{}}, Now: func() time.Time { return fuzzNow }}
		p, err := v.Verify(context.Background(), proof, method, fuzzHTU, token)
		if err != nil {
			return
		}
		parts := strings.Split(proof, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted %d parts", len(parts))
		}
		var hdr map[string]json.RawMessage
		if err := testkeys.DecodeSegment(parts[0], &hdr); err != nil {
			t.Fatalf("accepted a header that is not a JSON object: %v", err)
		}
		var typ, alg string
		_ = json.Unmarshal(hdr["typ"], &typ)
		_ = json.Unmarshal(hdr["alg"], &alg)
		if typ != "dpop+jwt" {
			t.Fatalf("accepted typ %q", typ)
		}
		if alg != "ES256" && alg != "EdDSA" && alg != "PS256" {
			t.Fatalf("accepted alg %q", alg)
		}
		var members map[string]json.RawMessage
		if err := json.Unmarshal(hdr["jwk"], &members); err != nil {
			t.Fatalf("accepted a jwk that is not an object: %v", err)
		}
		for _, m := range privateMembers {
			if _, ok := members[m]; ok {
				t.Fatalf("accepted a jwk with private member %q", m)
			}
		}
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(hdr["jwk"]); err != nil {
			t.Fatalf("accepted a jwk go-jose cannot read: %v", err)
		}
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || !testkeys.Verify(alg, jwk.Key, parts[0]+"."+parts[1], sig) {
			t.Fatal("accepted a signature that the embedded jwk does not verify")
		}
		tp, err := jwk.Thumbprint(crypto.SHA256)
		if err != nil || p.JKT != base64.RawURLEncoding.EncodeToString(tp) {
			t.Fatalf("JKT %q is not the jwk's thumbprint", p.JKT)
		}
		var c map[string]any
		if err := testkeys.DecodeSegment(parts[1], &c); err != nil {
			t.Fatalf("accepted claims that are not a JSON object: %v", err)
		}
		if jti, _ := c["jti"].(string); jti == "" || len(jti) > 256 {
			t.Fatalf("accepted jti %v", c["jti"])
		}
		if c["htm"] != method {
			t.Fatalf("accepted htm %v for %s", c["htm"], method)
		}
		if htu, _ := c["htu"].(string); !sameURI(htu, fuzzHTU) {
			t.Fatalf("accepted htu %v", c["htu"])
		}
		n, _ := c["iat"].(json.Number)
		iat, err := n.Int64()
		if err != nil || iat < fuzzNow.Add(-60*time.Second).Unix() || iat > fuzzNow.Add(10*time.Second).Unix() {
			t.Fatalf("accepted iat %v", c["iat"])
		}
		if token != "" {
			sum := sha256.Sum256([]byte(token))
			if c["ath"] != base64.RawURLEncoding.EncodeToString(sum[:]) {
				t.Fatalf("accepted ath %v", c["ath"])
			}
		}
	})
}

// TestFuzzVerify_Controls: the target's valid seeds verify (so the fuzzer
// starts from proofs that pass every check), and a replay does not.
func TestFuzzVerify_Controls(t *testing.T) {
	v := &Verifier{Replay: &fuzzReplay{seen: map[string]bool{}}, Now: func() time.Time { return fuzzNow }}
	for _, k := range fuzzSigners[:3] {
		proof := testkeys.Compact(fuzzHeader(k.alg, k.key), fuzzProofClaims(nil), k.alg, k.key)
		if _, err := v.Verify(context.Background(), proof, "POST", fuzzHTU, ""); err != nil {
			t.Fatalf("%s: %v", k.alg, err)
		}
		if _, err := v.Verify(context.Background(), proof, "POST", fuzzHTU, ""); err == nil {
			t.Fatalf("%s: replay accepted", k.alg)
		}
	}
}
