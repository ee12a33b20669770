package federation

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/internal/testkeys"
)

// The downstream of the federation fuzz targets: fixed issuer, client,
// nonce and clock, keys from internal/testkeys.
const (
	fzIssuer   = "https://ds.example"
	fzJWKSURI  = fzIssuer + "/jwks"
	fzClientID = "us"
	fzNonce    = "nonce-1"
)

var fzNow = time.Unix(1_800_000_000, 0)

func fzClock() time.Time { return fzNow }

// fzKeys are the downstream's published keys by kid; "es-b" is published
// without alg. testkeys.P256B signs under "es" only as a forgery.
var fzKeys = map[string]struct {
	alg jose.SignatureAlgorithm // published alg, "" for none
	key crypto.Signer
}{
	"es":   {jose.ES256, testkeys.P256A},
	"ed":   {"", testkeys.Ed25519A},
	"ps":   {jose.PS256, testkeys.RSAA},
	"es-b": {"", testkeys.P256B},
}

func fzJWKS() string {
	var keys []jose.JSONWebKey
	for _, kid := range []string{"es", "ed", "ps", "es-b"} {
		k := fzKeys[kid]
		keys = append(keys, testkeys.Public(k.key, kid, k.alg))
	}
	return testkeys.SetJSON(keys...)
}

// fzSigners are the keys the targets sign the fuzzer's JWTs with.
var fzSigners = []struct {
	alg jose.SignatureAlgorithm
	key crypto.Signer
}{
	{jose.ES256, testkeys.P256A}, {jose.EdDSA, testkeys.Ed25519A}, {jose.PS256, testkeys.RSAA},
	{jose.ES256, testkeys.P256B}, {"none", testkeys.P256A},
}

// fzDownstream answers our HTTP requests in memory (no listener): its
// metadata, its JWKS, and at the token endpoint whatever the current
// fuzz input says.
type fzDownstream struct {
	mu          sync.Mutex
	tokenStatus int
	tokenBody   []byte
}

func (d *fzDownstream) RoundTrip(r *http.Request) (*http.Response, error) {
	status, body := http.StatusNotFound, []byte(`{"error":"not_found"}`)
	switch r.URL.String() {
	case fzIssuer + "/.well-known/oauth-authorization-server":
		status, body = http.StatusOK, []byte(fzMetadataJSON)
	case fzJWKSURI:
		status, body = http.StatusOK, []byte(fzJWKS())
	case fzIssuer + "/token":
		d.mu.Lock()
		status, body = d.tokenStatus, d.tokenBody
		d.mu.Unlock()
	}
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
}

func (d *fzDownstream) client() *http.Client {
	return &http.Client{Transport: d, Timeout: 5 * time.Second}
}

const fzMetadataJSON = `{"issuer":"` + fzIssuer + `","authorization_endpoint":"` + fzIssuer + `/authorize",` +
	`"pushed_authorization_request_endpoint":"` + fzIssuer + `/par","token_endpoint":"` + fzIssuer + `/token",` +
	`"authorization_challenge_endpoint":"` + fzIssuer + `/challenge","jwks_uri":"` + fzJWKSURI + `",` +
	`"dpop_signing_alg_values_supported":["ES256","EdDSA"],"code_challenge_methods_supported":["S256"]}`

// fzKeyCache is a JWKS cache over the in-memory downstream, filled before
// the first input so that every input sees the same keys.
func fzKeyCache(tb testing.TB, d *fzDownstream) *JWKSCache {
	tb.Helper()
	c := NewJWKSCache(JWKSOptions{HTTPClient: d.client(), Now: fzClock})
	if _, err := c.Key(context.Background(), fzJWKSURI, "es"); err != nil {
		tb.Fatal(err)
	}
	return c
}

func fzIDClaims(mod func(map[string]any)) string {
	c := map[string]any{"iss": fzIssuer, "sub": "248289761001", "aud": fzClientID, "exp": fzNow.Add(5 * time.Minute).Unix(),
		"iat": fzNow.Unix(), "auth_time": fzNow.Add(-10 * time.Second).Unix(), "nonce": fzNonce, "amr": []string{"pwd"}, "acr": "urn:loa:2"}
	if mod != nil {
		mod(c)
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// fzIDTokenSeeds are header/claims/signer triples: valid tokens by every
// published key, and the classic refusals.
func fzIDTokenSeeds() [][3]any {
	es := `{"alg":"ES256","kid":"es","typ":"JWT"}`
	return [][3]any{
		{es, fzIDClaims(nil), uint8(0)},
		{`{"alg":"EdDSA","kid":"ed"}`, fzIDClaims(nil), uint8(1)},
		{`{"alg":"PS256","kid":"ps"}`, fzIDClaims(nil), uint8(2)},
		{`{"alg":"ES256","kid":"es-b"}`, fzIDClaims(nil), uint8(3)},
		{es, fzIDClaims(nil), uint8(3)},                           // forged with an unpublished key
		{`{"alg":"none","kid":"es"}`, fzIDClaims(nil), uint8(4)},  // alg none
		{`{"alg":"HS256","kid":"es"}`, fzIDClaims(nil), uint8(0)}, // HMAC confusion
		{`{"alg":"ES256","kid":"ed"}`, fzIDClaims(nil), uint8(0)}, // kid of another key
		{`{"alg":"ES256","kid":"ps"}`, fzIDClaims(nil), uint8(0)}, // alg not the key's
		{`{"alg":"ES256"}`, fzIDClaims(nil), uint8(0)},            // no kid
		{`{"alg":"ES256","kid":"zz"}`, fzIDClaims(nil), uint8(0)}, // unknown kid
		{`{"alg":"ES256","kid":"es","jku":"https://evil.example/jwks"}`, fzIDClaims(nil), uint8(0)},
		{es, fzIDClaims(func(c map[string]any) { c["iss"] = fzIssuer + "/" }), uint8(0)},
		{es, fzIDClaims(func(c map[string]any) { c["ISS"], c["iss"] = fzIssuer, "https://evil.example" }), uint8(0)},
		{es, fzIDClaims(func(c map[string]any) { c["Iss"] = fzIssuer; delete(c, "iss") }), uint8(0)},
		{es, fzIDClaims(func(c map[string]any) { c["aud"] = []string{fzClientID, "other"} }), uint8(0)},
		{es, fzIDClaims(func(c map[string]any) { c["aud"] = []string{fzClientID, "other"}; c["azp"] = fzClientID }), uint8(0)},
		{es, fzIDClaims(func(c map[string]any) { c["aud"] = "other" }), uint8(0)},
		{es, fzIDClaims(func(c map[string]any) { c["exp"] = fzNow.Add(-2 * time.Minute).Unix() }), uint8(0)},
		{es, fzIDClaims(func(c map[string]any) { delete(c, "exp") }), uint8(0)},
		{es, fzIDClaims(func(c map[string]any) { c["exp"] = "1800000300" }), uint8(0)},
		{es, fzIDClaims(func(c map[string]any) { c["iat"] = fzNow.Add(2 * time.Minute).Unix() }), uint8(0)},
		{es, fzIDClaims(func(c map[string]any) { c["nbf"] = fzNow.Add(2 * time.Minute).Unix() }), uint8(0)},
		{es, fzIDClaims(func(c map[string]any) { c["nonce"] = "other" }), uint8(0)},
		{es, fzIDClaims(func(c map[string]any) { c["sub"] = "" }), uint8(0)},
		{es, fzIDClaims(func(c map[string]any) { c["sub"] = strings.Repeat("s", 256) }), uint8(0)},
		{es, `{"iss":"` + fzIssuer + `","iss":"https://evil.example"}`, uint8(0)},
		{es, `[]`, uint8(0)},
	}
}

// FuzzVerifyIDToken: VerifyIDToken (OIDC Core §3.1.3.7) never panics, and
// a token it accepts has (read here from the raw JSON, case-sensitively)
// an alg among ES256, PS256 and EdDSA (never none or HS*), a kid the
// downstream publishes, whose key has that alg if it names one and
// verifies the signature by the standard library; iss equal to the pinned
// issuer; aud containing our client_id (and azp ours when there are
// several audiences or an azp); a sub of 1 to 255 characters; exp in the
// future and iat and nbf not in the future, within a minute; our nonce;
// and the returned claims are those.
func FuzzVerifyIDToken(f *testing.F) {
	d := &fzDownstream{}
	keys := fzKeyCache(f, d)
	for _, s := range fzIDTokenSeeds() {
		f.Add(s[0].(string), s[1].(string), s[2].(uint8), "")
	}
	f.Add("", "", uint8(0), "a.b.c")
	f.Add("", "", uint8(0), "eyJhbGciOiJub25lIn0.e30.")
	f.Add("", "", uint8(0), "a.b.c.d.e")
	f.Fuzz(func(t *testing.T, protected, claims string, signer uint8, raw string) {
		token := raw
		if token == "" {
			k := fzSigners[int(signer)%len(fzSigners)]
			token = testkeys.Compact(protected, claims, k.alg, k.key)
		}
		got, err := VerifyIDToken(context.Background(), token, IDTokenParams{Issuer: fzIssuer, ClientID: fzClientID, Nonce: fzNonce,
			JWKSURI: fzJWKSURI, Keys: keys, Now: fzClock})
		if err != nil {
			return
		}
		c := checkFzIDToken(t, token)
		if got.Subject != c["sub"] || got.Issuer != c["iss"] || got.Nonce != c["nonce"] {
			t.Fatalf("returned sub %q iss %q nonce %q, the token says %v %v %v", got.Subject, got.Issuer, got.Nonce, c["sub"], c["iss"], c["nonce"])
		}
	})
}

// checkFzIDToken is the oracle of an accepted ID token (see
// FuzzVerifyIDToken); it returns the claims.
func checkFzIDToken(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("accepted %d parts", len(parts))
	}
	var hdr map[string]any
	if err := testkeys.DecodeSegment(parts[0], &hdr); err != nil {
		t.Fatalf("accepted a header that is not a JSON object: %v", err)
	}
	alg, _ := hdr["alg"].(string)
	if alg != "ES256" && alg != "PS256" && alg != "EdDSA" {
		t.Fatalf("accepted alg %q", alg)
	}
	kid, _ := hdr["kid"].(string)
	k, ok := fzKeys[kid]
	if !ok {
		t.Fatalf("accepted kid %q, which is not published", kid)
	}
	if k.alg != "" && string(k.alg) != alg {
		t.Fatalf("accepted alg %s with key %s published for %s", alg, kid, k.alg)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !testkeys.Verify(alg, k.key.Public(), parts[0]+"."+parts[1], sig) {
		t.Fatalf("accepted a signature that key %s does not verify", kid)
	}
	var c map[string]any
	if err := testkeys.DecodeSegment(parts[1], &c); err != nil {
		t.Fatalf("accepted claims that are not a JSON object: %v", err)
	}
	if c["iss"] != fzIssuer {
		t.Fatalf("accepted iss %v", c["iss"])
	}
	if sub, _ := c["sub"].(string); sub == "" || len(sub) > 255 {
		t.Fatalf("accepted sub %v", c["sub"])
	}
	var auds []any
	switch a := c["aud"].(type) {
	case string:
		auds = []any{a}
	case []any:
		auds = a
	}
	found := false
	for _, a := range auds {
		found = found || a == fzClientID
	}
	azp, hasAZP := c["azp"]
	if !found || ((len(auds) > 1 || hasAZP) && azp != fzClientID) {
		t.Fatalf("accepted aud %v azp %v", c["aud"], azp)
	}
	date := func(name string, required bool) (int64, bool) {
		v, present := c[name]
		if !present {
			if required {
				t.Fatalf("accepted without %s", name)
			}
			return 0, false
		}
		n, ok := v.(json.Number)
		f, err := n.Float64()
		if !ok || err != nil {
			t.Fatalf("accepted %s %v", name, v)
		}
		return int64(f), true
	}
	leeway := int64(DefaultIDTokenLeeway / time.Second)
	now := fzNow.Unix()
	if exp, _ := date("exp", true); now >= exp+leeway {
		t.Fatalf("accepted exp %d at %d", exp, now)
	}
	if iat, _ := date("iat", true); iat > now+leeway {
		t.Fatalf("accepted iat %d at %d", iat, now)
	}
	if nbf, ok := date("nbf", false); ok && nbf > now+leeway {
		t.Fatalf("accepted nbf %d at %d", nbf, now)
	}
	if c["nonce"] != fzNonce {
		t.Fatalf("accepted nonce %v", c["nonce"])
	}
	return c
}

// TestFuzzVerifyIDToken_Controls: the target's valid seeds verify, so
// the fuzzer starts from tokens that pass every check.
func TestFuzzVerifyIDToken_Controls(t *testing.T) {
	keys := fzKeyCache(t, &fzDownstream{})
	for _, s := range fzIDTokenSeeds()[:4] {
		k := fzSigners[s[2].(uint8)]
		token := testkeys.Compact(s[0].(string), s[1].(string), k.alg, k.key)
		if _, err := VerifyIDToken(context.Background(), token, IDTokenParams{Issuer: fzIssuer, ClientID: fzClientID, Nonce: fzNonce,
			JWKSURI: fzJWKSURI, Keys: keys, Now: fzClock}); err != nil {
			t.Fatalf("%s: %v", s[0], err)
		}
	}
}
