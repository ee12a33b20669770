package sdjwt_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/dc/sdjwt"
	"github.com/fedas/fedas/dc/sdjwt/sdjwttest"
)

var (
	now       = time.Unix(1_800_000_000, 0)
	nonce     = "n-0S6_WzA2Mj"
	aud       = "x509_hash:verifier.example"
	issKey    = mustKey()
	holderKey = mustKey()
	otherKey  = mustKey()
)

func mustKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func es256(k *ecdsa.PrivateKey) jose.SigningKey {
	return jose.SigningKey{Algorithm: jose.ES256, Key: k}
}

func baseClaims() map[string]any {
	return map[string]any{
		"iss":           "https://issuer.example",
		"vct":           "urn:eudi:pid:1",
		"iat":           now.Add(-time.Hour).Unix(),
		"exp":           now.Add(24 * time.Hour).Unix(),
		"given_name":    "Erika",
		"family_name":   "Mustermann",
		"address":       map[string]any{"street_address": "Heidestr. 17", "locality": "Köln"},
		"nationalities": []any{"DE", "FR"},
	}
}

var disclosable = []string{"given_name", "family_name", "address", "address.street_address", "nationalities.0", "nationalities.1"}

func opts() sdjwt.Options {
	return sdjwt.Options{
		IssuerKeys: func(iss string, h jose.Header) (crypto.PublicKey, error) {
			if iss != "https://issuer.example" {
				return nil, errors.New("unknown issuer")
			}
			return &issKey.PublicKey, nil
		},
		Now:       func() time.Time { return now },
		RequireKB: true,
		Nonce:     nonce,
		Audience:  aud,
	}
}

func issue(tb testing.TB, claims map[string]any, disc []string, o sdjwttest.Options) *sdjwttest.Credential {
	tb.Helper()
	if o.HolderKey == nil {
		o.HolderKey = &holderKey.PublicKey
	}
	c, err := sdjwttest.Issue(claims, disc, es256(issKey), o)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func present(tb testing.TB, c *sdjwttest.Credential, sel []string) string {
	tb.Helper()
	p, err := sdjwttest.Present(c, sel, es256(holderKey), nonce, aud, now)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// withKB appends a KB-JWT made from claims edited by edit, signed by key with typ.
func withKB(tb testing.TB, sdPart string, key *ecdsa.PrivateKey, typ string, edit func(map[string]any)) string {
	tb.Helper()
	cl := sdjwttest.KBClaims(sdPart, nonce, aud, now)
	if edit != nil {
		edit(cl)
	}
	kb, err := sdjwttest.SignKB(es256(key), typ, cl)
	if err != nil {
		tb.Fatal(err)
	}
	return sdPart + kb
}

func signRaw(tb testing.TB, key jose.SigningKey, typ string, payload map[string]any) string {
	tb.Helper()
	s, err := sdjwttest.Sign(key, map[jose.HeaderKey]any{jose.HeaderType: typ}, payload)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func disc(tb testing.TB, arr ...any) string {
	tb.Helper()
	e, err := sdjwttest.EncodeDisclosure(arr)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// customSDJWT signs payload (vct/iss/cnf added) whose _sd lists the given
// digests, and presents discs with a valid KB-JWT.
func customSDJWT(tb testing.TB, extra map[string]any, sd []string, discs []string) string {
	tb.Helper()
	p := map[string]any{"iss": "https://issuer.example", "vct": "urn:eudi:pid:1",
		"cnf": map[string]any{"jwk": jose.JSONWebKey{Key: &holderKey.PublicKey}}}
	for k, v := range extra {
		p[k] = v
	}
	if sd != nil {
		l := make([]any, len(sd))
		for i, s := range sd {
			l[i] = s
		}
		p["_sd"] = l
	}
	jwt := signRaw(tb, es256(issKey), sdjwt.TypVC, p)
	return withKB(tb, sdjwttest.Combine(jwt, discs, ""), holderKey, sdjwt.TypKB, nil)
}

func TestVerifyAccepts(t *testing.T) {
	c := issue(t, baseClaims(), disclosable, sdjwttest.Options{Decoys: 3})
	legacy := issue(t, baseClaims(), disclosable, sdjwttest.Options{Typ: sdjwt.TypVCLegacy})
	tdh := func() string {
		sd := sdjwttest.Combine(c.JWT, nil, "")
		return withKB(t, sd, holderKey, sdjwt.TypKB, func(m map[string]any) {
			m["transaction_data_hashes"] = []string{"abc"}
			m["transaction_data_hashes_alg"] = "sha-256"
		})
	}()
	noKB, err := sdjwttest.Present(c, []string{"given_name"}, jose.SigningKey{}, "", "", now)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		pres  string
		opt   func(*sdjwt.Options)
		check func(*testing.T, *sdjwt.Verified)
	}{
		{"all disclosed", present(t, c, nil), nil, func(t *testing.T, v *sdjwt.Verified) {
			addr := v.Claims["address"].(map[string]any)
			if v.Claims["given_name"] != "Erika" || addr["street_address"] != "Heidestr. 17" || addr["locality"] != "Köln" {
				t.Errorf("claims %v", v.Claims)
			}
			if n := v.Claims["nationalities"].([]any); len(n) != 2 || n[0] != "DE" {
				t.Errorf("nationalities %v", n)
			}
			if _, ok := v.Claims["_sd"]; ok {
				t.Error("_sd kept")
			}
			if _, ok := v.Claims["_sd_alg"]; ok {
				t.Error("_sd_alg kept")
			}
			if _, ok := addr["_sd"]; ok {
				t.Error("nested _sd kept")
			}
		}},
		{"selective", present(t, c, []string{"address", "nationalities.1"}), nil, func(t *testing.T, v *sdjwt.Verified) {
			if _, ok := v.Claims["given_name"]; ok {
				t.Error("undisclosed given_name present")
			}
			addr := v.Claims["address"].(map[string]any)
			if _, ok := addr["street_address"]; ok {
				t.Error("undisclosed street present")
			}
			if n := v.Claims["nationalities"].([]any); len(n) != 1 || n[0] != "FR" {
				t.Errorf("nationalities %v", n)
			}
		}},
		{"no KB when not required", noKB, func(o *sdjwt.Options) { o.RequireKB = false }, func(t *testing.T, v *sdjwt.Verified) {
			if v.KeyBound {
				t.Error("KeyBound without KB")
			}
		}},
		{"legacy typ with flag", present(t, legacy, nil), func(o *sdjwt.Options) { o.AllowLegacyTyp = true }, nil},
		{"transaction data hashes", tdh, nil, func(t *testing.T, v *sdjwt.Verified) {
			if len(v.TransactionDataHashes) != 1 || v.TransactionDataHashes[0] != "abc" || v.TransactionDataHashesAlg != "sha-256" {
				t.Errorf("tdh %v %q", v.TransactionDataHashes, v.TransactionDataHashesAlg)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := opts()
			if tc.opt != nil {
				tc.opt(&o)
			}
			v, err := sdjwt.Verify(tc.pres, o)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if v.Issuer != "https://issuer.example" || v.VCT != "urn:eudi:pid:1" {
				t.Errorf("iss/vct %q %q", v.Issuer, v.VCT)
			}
			tp, _ := (&jose.JSONWebKey{Key: &holderKey.PublicKey}).Thumbprint(crypto.SHA256)
			if v.HolderThumbprint != base64.RawURLEncoding.EncodeToString(tp) {
				t.Error("holder thumbprint")
			}
			if o.RequireKB && (!v.KeyBound || !v.KBIssuedAt.Equal(now)) {
				t.Error("KB not reported")
			}
			if tc.check != nil {
				tc.check(t, v)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	c := issue(t, baseClaims(), disclosable, sdjwttest.Options{})
	all := present(t, c, nil)
	var given string
	for _, d := range c.Disclosures {
		if d.Path == "given_name" {
			given = d.Encoded
		}
	}
	sdPart := sdjwttest.Combine(c.JWT, []string{given}, "")
	es512Key, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)

	reissue := func(mut func(map[string]any), disc []string, o sdjwttest.Options) string {
		cl := baseClaims()
		if mut != nil {
			mut(cl)
		}
		return present(t, issue(t, cl, disc, o), nil)
	}
	noneJWT := func() string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"dc+sd-jwt"}`))
		p, _ := json.Marshal(map[string]any{"iss": "https://issuer.example", "vct": "x"})
		return h + "." + base64.RawURLEncoding.EncodeToString(p) + ".~"
	}()
	hsJWT := signRaw(t, jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, sdjwt.TypVC, map[string]any{"iss": "https://issuer.example", "vct": "x"}) + "~"
	es512JWT := signRaw(t, jose.SigningKey{Algorithm: jose.ES512, Key: es512Key}, sdjwt.TypVC, map[string]any{"iss": "https://issuer.example", "vct": "x"}) + "~"
	tampered := sdjwttest.Combine(c.JWT, []string{disc(t, "c2FsdA", "given_name", "Mallory")}, "")
	dupDisc := withKB(t, sdjwttest.Combine(c.JWT, []string{c.Disclosures[0].Encoded, c.Disclosures[0].Encoded}, ""), holderKey, sdjwt.TypKB, nil)
	d1 := disc(t, "c2FsdA", "given_name", "Erika")
	dupPayload := customSDJWT(t, nil, []string{sdjwt.Digest(d1), sdjwt.Digest(d1)}, []string{d1})
	dupNested := customSDJWT(t, map[string]any{"a": map[string]any{"_sd": []any{sdjwt.Digest(d1)}}}, []string{sdjwt.Digest(d1)}, []string{d1})
	unref := customSDJWT(t, nil, nil, []string{d1})
	sdName := disc(t, "c2FsdA", "_sd", []any{"x"})
	dotsName := disc(t, "c2FsdA", "...", "x")
	four := disc(t, "c2FsdA", "a", "b", "c")
	one := disc(t, "c2FsdA")
	arrElem := disc(t, "c2FsdA", "DE")
	collision := customSDJWT(t, map[string]any{"given_name": "X"}, []string{sdjwt.Digest(d1)}, []string{d1})
	arrInSD := customSDJWT(t, nil, []string{sdjwt.Digest(arrElem)}, []string{arrElem})
	objInArr := customSDJWT(t, map[string]any{"n": []any{map[string]any{"...": sdjwt.Digest(d1)}}}, nil, []string{d1})
	cnfDisc := disc(t, "c2FsdA", "cnf", map[string]any{"jwk": jose.JSONWebKey{Key: &holderKey.PublicKey}})
	deep := map[string]any{}
	cur := deep
	for i := 0; i < 40; i++ {
		n := map[string]any{}
		cur["x"] = n
		cur = n
	}

	tests := []struct {
		name string
		pres string
		opt  func(*sdjwt.Options)
		want error
	}{
		{"alg none", noneJWT, func(o *sdjwt.Options) { o.RequireKB = false }, sdjwt.ErrAlg},
		{"alg HS256", hsJWT, func(o *sdjwt.Options) { o.RequireKB = false }, sdjwt.ErrAlg},
		{"alg ES512 not allowlisted", es512JWT, func(o *sdjwt.Options) { o.RequireKB = false }, sdjwt.ErrAlg},
		{"typ JWT", reissue(nil, disclosable, sdjwttest.Options{Typ: "JWT"}), nil, sdjwt.ErrTyp},
		{"typ missing", reissue(nil, disclosable, sdjwttest.Options{Typ: "-"}), nil, sdjwt.ErrTyp},
		{"typ legacy without flag", reissue(nil, disclosable, sdjwttest.Options{Typ: sdjwt.TypVCLegacy}), nil, sdjwt.ErrTyp},
		{"signed by other key", present(t, func() *sdjwttest.Credential {
			x, _ := sdjwttest.Issue(baseClaims(), disclosable, es256(otherKey), sdjwttest.Options{HolderKey: &holderKey.PublicKey})
			return x
		}(), nil), nil, sdjwt.ErrSignature},
		{"unknown issuer", reissue(func(m map[string]any) { m["iss"] = "https://evil.example" }, nil, sdjwttest.Options{}), nil, sdjwt.ErrIssuerKey},
		{"_sd_alg sha-512", reissue(nil, disclosable, sdjwttest.Options{SDAlg: "sha-512"}), nil, sdjwt.ErrSDAlg},
		{"tampered disclosure", withKB(t, tampered, holderKey, sdjwt.TypKB, nil), nil, sdjwt.ErrUnreferenced},
		{"disclosure not base64url", withKB(t, sdjwttest.Combine(c.JWT, []string{"!!!"}, ""), holderKey, sdjwt.TypKB, nil), nil, sdjwt.ErrDisclosure},
		{"empty disclosure", withKB(t, c.JWT+"~~", holderKey, sdjwt.TypKB, nil), nil, sdjwt.ErrDisclosure},
		{"duplicate disclosure", dupDisc, nil, sdjwt.ErrDuplicateDigest},
		{"digest twice in payload", dupPayload, nil, sdjwt.ErrDuplicateDigest},
		{"digest twice nested", dupNested, nil, sdjwt.ErrDuplicateDigest},
		{"unreferenced disclosure", unref, nil, sdjwt.ErrUnreferenced},
		{"name _sd", customSDJWT(t, nil, []string{sdjwt.Digest(sdName)}, []string{sdName}), nil, sdjwt.ErrDisclosure},
		{"name ...", customSDJWT(t, nil, []string{sdjwt.Digest(dotsName)}, []string{dotsName}), nil, sdjwt.ErrDisclosure},
		{"4-element disclosure", customSDJWT(t, nil, []string{sdjwt.Digest(four)}, []string{four}), nil, sdjwt.ErrDisclosure},
		{"1-element disclosure", customSDJWT(t, nil, []string{sdjwt.Digest(one)}, []string{one}), nil, sdjwt.ErrDisclosure},
		{"array disclosure in _sd", arrInSD, nil, sdjwt.ErrDisclosure},
		{"object disclosure in array", objInArr, nil, sdjwt.ErrDisclosure},
		{"name collision", collision, nil, sdjwt.ErrDisclosure},
		{"disclosed iss", reissue(nil, []string{"iss"}, sdjwttest.Options{}), func(o *sdjwt.Options) {
			o.IssuerKeys = func(string, jose.Header) (crypto.PublicKey, error) { return &issKey.PublicKey, nil }
		}, sdjwt.ErrForbiddenDisclose},
		{"disclosed vct", reissue(nil, []string{"vct"}, sdjwttest.Options{}), nil, sdjwt.ErrForbiddenDisclose},
		{"disclosed exp", reissue(nil, []string{"exp"}, sdjwttest.Options{}), nil, sdjwt.ErrForbiddenDisclose},
		{"disclosed status", reissue(func(m map[string]any) {
			m["status"] = map[string]any{"status_list": map[string]any{"idx": 1, "uri": "https://s"}}
		}, []string{"status"}, sdjwttest.Options{}), nil, sdjwt.ErrForbiddenDisclose},
		{"disclosed cnf", customSDJWT(t, nil, []string{sdjwt.Digest(cnfDisc)}, []string{cnfDisc}), nil, sdjwt.ErrForbiddenDisclose},
		{"missing vct", reissue(func(m map[string]any) { delete(m, "vct") }, nil, sdjwttest.Options{}), nil, sdjwt.ErrClaims},
		{"expired", reissue(func(m map[string]any) { m["exp"] = now.Add(-time.Minute).Unix() }, nil, sdjwttest.Options{}), nil, sdjwt.ErrExpired},
		{"nbf in future", reissue(func(m map[string]any) { m["nbf"] = now.Add(time.Minute).Unix() }, nil, sdjwttest.Options{}), nil, sdjwt.ErrNotYetValid},
		{"missing KB when required", sdjwttest.Combine(c.JWT, nil, ""), nil, sdjwt.ErrKBRequired},
		{"KB stripped from full", strings.TrimSuffix(all, all[strings.LastIndex(all, "~")+1:]), nil, sdjwt.ErrKBRequired},
		{"KB wrong nonce", withKB(t, sdPart, holderKey, sdjwt.TypKB, func(m map[string]any) { m["nonce"] = "other" }), nil, sdjwt.ErrKB},
		{"KB wrong aud", withKB(t, sdPart, holderKey, sdjwt.TypKB, func(m map[string]any) { m["aud"] = "verifier.example" }), nil, sdjwt.ErrKB},
		{"KB aud array", withKB(t, sdPart, holderKey, sdjwt.TypKB, func(m map[string]any) { m["aud"] = []string{aud} }), nil, sdjwt.ErrKB},
		{"KB wrong typ", withKB(t, sdPart, holderKey, "JWT", nil), nil, sdjwt.ErrKB},
		{"KB iat future", withKB(t, sdPart, holderKey, sdjwt.TypKB, func(m map[string]any) { m["iat"] = now.Add(time.Hour).Unix() }), nil, sdjwt.ErrKB},
		{"KB iat too old", withKB(t, sdPart, holderKey, sdjwt.TypKB, func(m map[string]any) { m["iat"] = now.Add(-time.Hour).Unix() }), nil, sdjwt.ErrKB},
		{"KB iat missing", withKB(t, sdPart, holderKey, sdjwt.TypKB, func(m map[string]any) { delete(m, "iat") }), nil, sdjwt.ErrKB},
		{"KB wrong sd_hash", withKB(t, sdPart, holderKey, sdjwt.TypKB, func(m map[string]any) { m["sd_hash"] = sdjwt.Digest(c.JWT + "~") }), nil, sdjwt.ErrKB},
		{"KB sd_hash but disclosure dropped", func() string {
			full := withKB(t, sdPart, holderKey, sdjwt.TypKB, nil)
			return strings.Replace(full, "~"+given, "", 1)
		}(), nil, sdjwt.ErrKB},
		{"KB present, not required, wrong nonce", withKB(t, sdPart, holderKey, sdjwt.TypKB, func(m map[string]any) { m["nonce"] = "other" }), func(o *sdjwt.Options) { o.RequireKB = false }, sdjwt.ErrKB},
		{"KB present, not required, no nonce configured", withKB(t, sdPart, holderKey, sdjwt.TypKB, nil), func(o *sdjwt.Options) { o.RequireKB, o.Nonce = false, "" }, sdjwt.ErrKB},
		{"KB signed by other key", withKB(t, sdPart, otherKey, sdjwt.TypKB, nil), nil, sdjwt.ErrKB},
		{"KB without cnf", present(t, func() *sdjwttest.Credential {
			x, _ := sdjwttest.Issue(baseClaims(), nil, es256(issKey), sdjwttest.Options{})
			return x
		}(), nil), nil, sdjwt.ErrKB},
		{"oversize", all, func(o *sdjwt.Options) { o.MaxSize = 100 }, sdjwt.ErrTooLarge},
		{"too many disclosures", all, func(o *sdjwt.Options) { o.MaxDisclosures = 2 }, sdjwt.ErrTooLarge},
		{"too deep", reissue(func(m map[string]any) { m["deep"] = deep }, nil, sdjwttest.Options{}), nil, sdjwt.ErrTooLarge},
		{"no separator", c.JWT, nil, sdjwt.ErrMalformed},
		{"RequireKB without nonce", all, func(o *sdjwt.Options) { o.Nonce = "" }, sdjwt.ErrOptions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := opts()
			if tc.opt != nil {
				tc.opt(&o)
			}
			v, err := sdjwt.Verify(tc.pres, o)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, %v; want %v", v, err, tc.want)
			}
		})
	}
}
