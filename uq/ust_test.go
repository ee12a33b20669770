package uq

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/internal/testkeys"
)

const t0 = 1796126400 // 2026-12-01T12:00:00Z

func testClaims() Claims {
	return Claims{
		QuestionID:          "984dcc7d3d4d4b0f9f8022e344f9",
		Issuer:              "https://as.example.com",
		Subject:             "g117YBtCZO3mAKPQKP8o",
		Audience:            []string{"s8V3wm8IXMW6TboazXZX"},
		UserID:              "+33612345678",
		UserIDType:          UserIDMSISDN,
		QuestionDisplayed:   "Which is your favourite colour?",
		DisplayedStatements: []string{"blue", "red", "yellow"},
		Statement:           "red",
		StatementDate:       t0,
		UsedAMR:             []string{"hwk", "user"},
		UsedACR:             "2",
		IssuedAt:            t0 + 1,
	}
}

func testExpect() Expect {
	c := testClaims()
	return Expect{ClientID: c.Audience[0], QuestionID: c.QuestionID, Issuer: c.Issuer,
		Question: c.QuestionDisplayed, Statements: c.DisplayedStatements, UserID: c.UserID, UserIDType: c.UserIDType}
}

func testJWKS(key *ecdsa.PrivateKey, kid string) jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{testkeys.Public(key, kid, jose.ES256)}}
}

func mustSigner(tb testing.TB) *Signer {
	tb.Helper()
	s, err := NewSigner("k1", testkeys.P256A)
	require.NoError(tb, err)
	return s
}

func segment(tb testing.TB, tok string, i int) map[string]any {
	tb.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[i])
	require.NoError(tb, err)
	var m map[string]any
	require.NoError(tb, json.Unmarshal(b, &m))
	return m
}

// TestUSTRoundTrip: Sign → Verify returns the claims; the header is
// exactly alg/kid/typ; the payload holds exactly the spec's claims plus
// iat and jti, aud as an array, user_id only when requested.
func TestUSTRoundTrip(t *testing.T) {
	s := mustSigner(t)
	keys := testJWKS(testkeys.P256A, "k1")
	tok, err := Sign(testClaims(), s)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"alg": "ES256", "kid": "k1", "typ": "JWT"}, segment(t, tok, 0))
	p := segment(t, tok, 1)
	var names []string
	for k := range p {
		names = append(names, k)
	}
	require.ElementsMatch(t, []string{"question_id", "iss", "sub", "aud", "user_id", "user_id_type", "question_displayed",
		"displayed_statements", "statement", "statement_date", "used_amr", "used_acr", "iat", "jti"}, names)
	require.Equal(t, []any{"s8V3wm8IXMW6TboazXZX"}, p["aud"])
	c, err := Verify(tok, keys, testExpect())
	require.NoError(t, err)
	require.Equal(t, "red", c.Statement)
	require.NotEmpty(t, c.JTI)

	// user-bound question: no user_id / user_id_type at all
	uc := testClaims()
	uc.UserID, uc.UserIDType = "", ""
	tok, err = Sign(uc, s)
	require.NoError(t, err)
	require.NotContains(t, segment(t, tok, 1), "user_id")
	require.NotContains(t, segment(t, tok, 1), "user_id_type")
	ue := testExpect()
	ue.UserID, ue.UserIDType = "", ""
	_, err = Verify(tok, keys, ue)
	require.NoError(t, err)
	// ... and a verifier that asked with user_id refuses it
	_, err = Verify(tok, keys, testExpect())
	require.ErrorIs(t, err, ErrInvalidUST)
}

// TestSignRefuses: Sign will not issue a UST missing a mandatory claim
// or with a statement not shown, and NewSigner wants a kid and P-256.
func TestSignRefuses(t *testing.T) {
	s := mustSigner(t)
	cases := map[string]func(*Claims){
		"no question_id":           func(c *Claims) { c.QuestionID = "" },
		"no iss":                   func(c *Claims) { c.Issuer = "" },
		"sub too long":             func(c *Claims) { c.Subject = strings.Repeat("s", 256) },
		"sub non-ASCII":            func(c *Claims) { c.Subject = "sübject" },
		"no aud":                   func(c *Claims) { c.Audience = nil },
		"user_id without type":     func(c *Claims) { c.UserIDType = "" },
		"no question_displayed":    func(c *Claims) { c.QuestionDisplayed = "" },
		"no displayed_statements":  func(c *Claims) { c.DisplayedStatements = nil },
		"statement not shown":      func(c *Claims) { c.Statement = "green" },
		"no statement_date":        func(c *Claims) { c.StatementDate = 0 },
		"no used_amr":              func(c *Claims) { c.UsedAMR = nil },
		"no used_acr":              func(c *Claims) { c.UsedACR = "" },
		"no iat":                   func(c *Claims) { c.IssuedAt = 0 },
		"empty string in used_amr": func(c *Claims) { c.UsedAMR = []string{""} },
	}
	for name, mut := range cases {
		t.Run(name, func(t *testing.T) {
			c := testClaims()
			mut(&c)
			_, err := Sign(c, s)
			require.ErrorIs(t, err, ErrInvalidUST)
		})
	}
	_, err := NewSigner("", testkeys.P256A)
	require.ErrorIs(t, err, ErrInvalidUST)
	_, err = Sign(testClaims(), nil)
	require.ErrorIs(t, err, ErrInvalidUST)
}

// forge builds a compact JWS with an arbitrary header and payload,
// signed with ES256 by key (or with a given signature segment).
func forge(tb testing.TB, hdr map[string]any, claims any, key *ecdsa.PrivateKey) string {
	tb.Helper()
	var opts jose.SignerOptions
	for k, v := range hdr {
		opts.WithHeader(jose.HeaderKey(k), v)
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, &opts)
	require.NoError(tb, err)
	p, err := json.Marshal(claims)
	require.NoError(tb, err)
	jws, err := sg.Sign(p)
	require.NoError(tb, err)
	tok, err := jws.CompactSerialize()
	require.NoError(tb, err)
	return tok
}

// TestVerifyRefuses: every refusal of the verifier, each wrapping
// ErrInvalidUST: alg none and HS256, key-carrying headers (x5c, jwk, jku,
// x5u), crit, a wrong typ or no kid, an unknown kid, another key, a
// tampered payload, wrong aud / question_id / iss, a modified statement,
// displayed question or statements differing from what was sent,
// duplicate claims, a string aud.
func TestVerifyRefuses(t *testing.T) {
	s := mustSigner(t)
	keys := testJWKS(testkeys.P256A, "k1")
	keys.Keys = append(keys.Keys, testkeys.Public(testkeys.RSAA, "rsa", jose.PS256))
	good, err := Sign(testClaims(), s)
	require.NoError(t, err)
	// the raw signer makes tokens the verifier accepts
	_, err = Verify(rawES256(t, `{"alg":"ES256","kid":"k1","typ":"JWT"}`, segmentRaw(t, good, 1), testkeys.P256A), keys, testExpect())
	require.NoError(t, err)
	parts := strings.Split(good, ".")
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	std := map[string]any{"typ": "JWT", "kid": "k1"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{"typ": "JWT", "kid": "k1"}
		m[k] = v
		return m
	}
	signedWith := func(mut func(*Claims)) string {
		c := testClaims()
		mut(&c)
		return forge(t, std, c, testkeys.P256A)
	}
	hs, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	require.NoError(t, err)
	hsJWS, err := hs.Sign([]byte(segmentRaw(t, good, 1)))
	require.NoError(t, err)
	hsTok, err := hsJWS.CompactSerialize()
	require.NoError(t, err)
	cases := []struct {
		name string
		tok  string
		want string
		exp  func(*Expect)
	}{
		{"alg none", b64(`{"alg":"none","typ":"JWT","kid":"k1"}`) + "." + parts[1] + ".", "alg must be ES256", nil},
		{"alg HS256", hsTok, "alg must be ES256", nil},
		{"x5c header", forge(t, with("x5c", []string{"MIIB"}), testClaims(), testkeys.P256A), `"x5c"`, nil},
		{"jwk header", forge(t, with("jwk", testkeys.Public(testkeys.P256B, "k1", jose.ES256)), testClaims(), testkeys.P256B), `"jwk"`, nil},
		{"jku header", forge(t, with("jku", "https://evil.example/jwks"), testClaims(), testkeys.P256A), `"jku"`, nil},
		{"x5u header", forge(t, with("x5u", "https://evil.example/cert"), testClaims(), testkeys.P256A), `"x5u"`, nil},
		{"crit header", forge(t, with("crit", []string{"exp"}), testClaims(), testkeys.P256A), `"crit"`, nil},
		{"typ not JWT", forge(t, map[string]any{"typ": "dpop+jwt", "kid": "k1"}, testClaims(), testkeys.P256A), "typ", nil},
		{"no kid", forge(t, map[string]any{"typ": "JWT"}, testClaims(), testkeys.P256A), "kid missing", nil},
		{"unknown kid", forge(t, with("kid", "k2"), testClaims(), testkeys.P256A), "no P-256 key", nil},
		{"other key, same kid", forge(t, std, testClaims(), testkeys.P256B), "signature", nil},
		{"tampered payload", parts[0] + "." + b64(strings.Replace(segmentRaw(t, good, 1), `"statement":"red"`, `"statement":"blue"`, 1)) + "." + parts[2], "signature", nil},
		{"not compact", parts[0] + "." + parts[1], "compact", nil},
		{"wrong aud", good, "aud", func(e *Expect) { e.ClientID = "other-client" }},
		{"wrong question_id", good, "question_id", func(e *Expect) { e.QuestionID = "other" }},
		{"wrong iss", good, "iss", func(e *Expect) { e.Issuer = "https://other.example" }},
		{"question differs", good, "question_displayed", func(e *Expect) { e.Question = "Another question?" }},
		{"statements differ", good, "displayed_statements", func(e *Expect) { e.Statements = []string{"blue", "red"} }},
		{"statement modified (signed)", signedWith(func(c *Claims) { c.Statement = "green" }), "statement is not among", nil},
		{"displayed statements altered (signed)", signedWith(func(c *Claims) { c.DisplayedStatements = []string{"red", "blue", "yellow"} }), "displayed_statements", nil},
		{"used_acr missing (signed)", signedWith(func(c *Claims) { c.UsedACR = "" }), "used_acr", nil},
		{"aud as a string", forge(t, std, map[string]any{"question_id": "984dcc7d3d4d4b0f9f8022e344f9", "aud": "s8V3wm8IXMW6TboazXZX"}, testkeys.P256A), "claims", nil},
		{"duplicate header member", rawES256(t, `{"alg":"ES256","kid":"k1","typ":"JWT","kid":"k2"}`, segmentRaw(t, good, 1), testkeys.P256A), "twice", nil},
		{"raw token signed by another key", rawES256(t, `{"alg":"ES256","kid":"k1","typ":"JWT"}`, segmentRaw(t, good, 1), testkeys.P256B), "signature", nil},
		{"kid of an RSA key", forge(t, with("kid", "rsa"), testClaims(), testkeys.P256A), "no P-256 key", nil},
		{"duplicate claim", forgeRaw(t, `{"alg":"ES256","kid":"k1","typ":"JWT"}`, strings.Replace(segmentRaw(t, good, 1), `{`, `{"statement":"blue",`, 1), testkeys.P256A), "twice", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := testExpect()
			if tc.exp != nil {
				tc.exp(&e)
			}
			_, err := Verify(tc.tok, keys, e)
			require.ErrorIs(t, err, ErrInvalidUST)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

// rawES256 signs exactly the header and payload bytes given.
func rawES256(tb testing.TB, hdr, payload string, key *ecdsa.PrivateKey) string {
	tb.Helper()
	in := base64.RawURLEncoding.EncodeToString([]byte(hdr)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	h := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	require.NoError(tb, err)
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func segmentRaw(tb testing.TB, tok string, i int) string {
	tb.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[i])
	require.NoError(tb, err)
	return string(b)
}

// forgeRaw signs exactly the given header and payload bytes (ES256).
func forgeRaw(tb testing.TB, hdr, payload string, key *ecdsa.PrivateKey) string {
	tb.Helper()
	// go-jose signs the payload bytes as given, so a duplicate member
	// survives; the header is go-jose's, checked to be the expected one.
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	require.NoError(tb, err)
	jws, err := sg.Sign([]byte(payload))
	require.NoError(tb, err)
	tok, err := jws.CompactSerialize()
	require.NoError(tb, err)
	require.JSONEq(tb, hdr, segmentRaw(tb, tok, 0))
	return tok
}
