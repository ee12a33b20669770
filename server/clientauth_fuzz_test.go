package server

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/internal/testkeys"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
)

const fuzzIssuer = "https://as.example"

// fuzzNow is the fixed clock of the client-assertion target, so that
// corpus entries keep their meaning when replayed.
var fuzzNow = time.Unix(1_800_000_000, 0)

// fuzzAssertionClients are the private_key_jwt clients of the target:
// id → registered alg and key. "pk-none" is registered but not for
// private_key_jwt; testkeys.P256B is nobody's key.
var fuzzAssertionClients = map[string]struct {
	alg jose.SignatureAlgorithm
	key crypto.Signer
}{
	"pk-es": {jose.ES256, testkeys.P256A},
	"pk-ed": {jose.EdDSA, testkeys.Ed25519A},
	"pk-ps": {jose.PS256, testkeys.RSAA},
}

// fuzzSigners are the keys the target signs its header and claims with,
// chosen by the fuzzer.
var fuzzSigners = []struct {
	alg jose.SignatureAlgorithm
	key crypto.Signer
}{
	{jose.ES256, testkeys.P256A}, {jose.EdDSA, testkeys.Ed25519A}, {jose.PS256, testkeys.RSAA},
	{jose.ES256, testkeys.P256B}, {"none", testkeys.P256A},
}

// newFuzzServer is a Server on a memory store with the assertion clients
// and a fixed clock; nothing listens.
func newFuzzServer(tb testing.TB) (*Server, *fuzzStore) {
	tb.Helper()
	cfg := config.Default()
	cfg.Issuer = fuzzIssuer
	for id, c := range fuzzAssertionClients {
		cfg.Clients = append(cfg.Clients, config.Client{ID: id, TokenEndpointAuthMethod: "private_key_jwt", SigningAlg: string(c.alg),
			JWKS:   testkeys.SetJSON(testkeys.Public(c.key, id+"-key", "")),
			Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"https://" + id + ".example/cb"}})
	}
	cfg.Clients = append(cfg.Clients, config.Client{ID: "pk-none", TokenEndpointAuthMethod: "client_secret_basic", SecretSHA256: config.SecretDigest("s"),
		Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code"}})
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	mem := memory.New()
	tb.Cleanup(func() { _ = mem.Close() })
	st := &fuzzStore{Store: mem, used: map[string]bool{}}
	s, err := New(Options{Config: cfg, Store: st, Logger: zap.NewNop(), Now: func() time.Time { return fuzzNow }})
	if err != nil {
		tb.Fatal(err)
	}
	return s, st
}

// fuzzStore is a memory store whose single-use records (MarkUsed) the
// target resets before each input, so that every input is judged alone
// and a finding replays the same way.
type fuzzStore struct {
	*memory.Store // the whole memory backend (its failure counters, caps, …)
	mu            sync.Mutex
	used          map[string]bool
}

func (s *fuzzStore) MarkUsed(_ context.Context, key string, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used[key] {
		return storage.ErrConflict
	}
	s.used[key] = true
	return nil
}

func (s *fuzzStore) reset() {
	s.mu.Lock()
	s.used = map[string]bool{}
	s.mu.Unlock()
}

func fuzzClaims(id string, mod func(map[string]any)) string {
	c := map[string]any{"iss": id, "sub": id, "aud": fuzzIssuer, "jti": "jti-" + id, "iat": fuzzNow.Unix(), "exp": fuzzNow.Add(time.Minute).Unix()}
	if mod != nil {
		mod(c)
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// FuzzClientAssertion: private_key_jwt (RFC 7523 §3; clientauth.go) and
// the shape check before it (middleware.go checkClientAuthShape) never
// panic, and an assertion is accepted only if it is a compact JWS whose
// alg (read here from the raw header) is the client's registered one,
// whose signature verifies, by the standard library, with that client's
// registered key, and whose claims (read case-sensitively) name the
// client as iss and sub, our issuer as a single-string aud, and carry a
// jti and an exp. The fuzzer writes the header and claims JSON; the
// target signs them with one of its keys (or uses raw as the whole
// assertion).
func FuzzClientAssertion(f *testing.F) {
	s, st := newFuzzServer(f)
	es := `{"alg":"ES256","kid":"pk-es-key","typ":"JWT"}`
	f.Add("pk-es", es, fuzzClaims("pk-es", nil), uint8(0), "")
	f.Add("", `{"alg":"EdDSA"}`, fuzzClaims("pk-ed", nil), uint8(1), "")
	f.Add("pk-ps", `{"alg":"PS256","kid":"pk-ps-key"}`, fuzzClaims("pk-ps", nil), uint8(2), "")
	f.Add("pk-es", es, fuzzClaims("pk-es", nil), uint8(3), "")                              // unregistered key
	f.Add("pk-es", `{"alg":"none"}`, fuzzClaims("pk-es", nil), uint8(4), "")                // alg none
	f.Add("pk-es", `{"alg":"HS256"}`, fuzzClaims("pk-es", nil), uint8(0), "")               // HMAC
	f.Add("pk-es", `{"alg":"EdDSA"}`, fuzzClaims("pk-es", nil), uint8(1), "")               // not the registered alg
	f.Add("pk-es", `{"alg":"ES256","kid":"other"}`, fuzzClaims("pk-es", nil), uint8(0), "") // unknown kid
	f.Add("pk-es", `{"alg":"ES256","alg":"none"}`, fuzzClaims("pk-es", nil), uint8(0), "")  // duplicate header
	f.Add("pk-es", es, fuzzClaims("pk-es", func(c map[string]any) { c["aud"] = []string{fuzzIssuer} }), uint8(0), "")
	f.Add("pk-es", es, fuzzClaims("pk-es", func(c map[string]any) { c["aud"] = fuzzIssuer + "/oauth2/token" }), uint8(0), "")
	f.Add("pk-es", es, fuzzClaims("pk-es", func(c map[string]any) { delete(c, "exp") }), uint8(0), "")
	f.Add("pk-es", es, fuzzClaims("pk-es", func(c map[string]any) { c["exp"] = "1800000060" }), uint8(0), "")
	f.Add("pk-es", es, fuzzClaims("pk-es", func(c map[string]any) { c["exp"] = 1e300 }), uint8(0), "")
	f.Add("pk-es", es, fuzzClaims("pk-es", func(c map[string]any) { c["iat"] = fuzzNow.Add(time.Minute).Unix() }), uint8(0), "")
	f.Add("pk-es", es, fuzzClaims("pk-es", func(c map[string]any) { delete(c, "jti") }), uint8(0), "")
	f.Add("pk-es", es, fuzzClaims("pk-es", func(c map[string]any) { c["sub"] = "pk-ed" }), uint8(0), "")
	f.Add("pk-es", es, fuzzClaims("pk-es", func(c map[string]any) { c["ISS"], c["iss"] = "pk-es", "x" }), uint8(0), "")
	f.Add("pk-none", es, fuzzClaims("pk-none", nil), uint8(0), "")
	f.Add("pk-es", es, `[]`, uint8(0), "")
	f.Add("pk-es", "", "", uint8(0), "a.b.c")
	f.Add("pk-es", "", "", uint8(0), "eyJhbGciOiJub25lIn0.eyJpc3MiOiJway1lcyJ9.")
	f.Add("pk-es", "", "", uint8(0), "..")
	f.Fuzz(func(t *testing.T, formID, protected, claims string, signer uint8, raw string) {
		st.reset()
		assertion := raw
		if assertion == "" {
			k := fuzzSigners[int(signer)%len(fuzzSigners)]
			assertion = testkeys.Compact(protected, claims, k.alg, k.key)
		}
		// The shape check runs first on every request; it decides on
		// unverified claims, so it may only refuse.
		form := url.Values{"client_id": {formID}, "client_assertion": {assertion}, "client_assertion_type": {clientAssertionType}}
		r, _ := http.NewRequest(http.MethodPost, fuzzIssuer+PathToken, nil)
		if perr := s.checkClientAuthShape(r, form); perr != nil && perr.status != http.StatusUnauthorized && perr.status != http.StatusBadRequest {
			t.Fatalf("shape check answered %d", perr.status)
		}
		client, err := s.verifyClientAssertion(context.Background(), formID, assertion)
		if err != nil {
			if client != nil {
				t.Fatal("a client returned with an error")
			}
			return
		}
		id := client.GetID()
		want, ok := fuzzAssertionClients[id]
		if !ok {
			t.Fatalf("accepted an assertion for %q, which has no private_key_jwt key", id)
		}
		if formID != "" && formID != id {
			t.Fatalf("form names %q, accepted as %q", formID, id)
		}
		parts := strings.Split(assertion, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted %d parts", len(parts))
		}
		var hdr map[string]any
		if err := testkeys.DecodeSegment(parts[0], &hdr); err != nil {
			t.Fatalf("accepted a header that is not a JSON object: %v", err)
		}
		if hdr["alg"] != string(want.alg) {
			t.Fatalf("accepted alg %v for a client registered with %s", hdr["alg"], want.alg)
		}
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || !testkeys.Verify(string(want.alg), want.key.Public(), parts[0]+"."+parts[1], sig) {
			t.Fatalf("accepted a signature that does not verify with %s's key", id)
		}
		var c map[string]any
		if err := testkeys.DecodeSegment(parts[1], &c); err != nil {
			t.Fatalf("accepted claims that are not a JSON object: %v", err)
		}
		if c["iss"] != id || c["sub"] != id || c["aud"] != fuzzIssuer {
			t.Fatalf("accepted iss %v, sub %v, aud %v for %s", c["iss"], c["sub"], c["aud"], id)
		}
		if jti, _ := c["jti"].(string); jti == "" {
			t.Fatal("accepted without a jti")
		}
		if _, ok := c["exp"].(json.Number); !ok {
			t.Fatal("accepted without a numeric exp")
		}
	})
}

// TestFuzzClientAssertion_Controls: the target's valid seeds are accepted
// (so the fuzzer starts from assertions that pass every check) and a
// replay of one is not.
func TestFuzzClientAssertion_Controls(t *testing.T) {
	s, _ := newFuzzServer(t)
	for i, id := range []string{"pk-es", "pk-ed", "pk-ps"} {
		k := fuzzSigners[i]
		a := testkeys.Compact(`{"alg":"`+string(k.alg)+`"}`, fuzzClaims(id, nil), k.alg, k.key)
		if _, err := s.verifyClientAssertion(context.Background(), id, a); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if _, err := s.verifyClientAssertion(context.Background(), id, a); err == nil {
			t.Fatalf("%s: replay accepted", id)
		}
	}
}
