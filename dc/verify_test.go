package dc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/dc"
	"github.com/fedas/fedas/dc/dcql"
	"github.com/fedas/fedas/dc/sdjwt"
	"github.com/fedas/fedas/dc/sdjwt/sdjwttest"
	"github.com/fedas/fedas/dc/statuslist"
)

const (
	issA    = "https://issuer-a.example"
	issB    = "https://issuer-b.example"
	vctPID  = "urn:eudi:pid:1"
	vctMDL  = "urn:example:mdl"
	nonce   = "n-0S6_WzA2Mj"
	aud     = "x509_hash:verifier.example"
	listURI = "https://issuer-a.example/status/1"
	// secret is a claim value that must never appear in an error.
	secret = "SECRET-PAN-4711"
)

var (
	now       = time.Unix(1_800_000_000, 0)
	keyA      = mustKey()
	keyB      = mustKey()
	holderKey = mustKey()
)

func mustKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func jwks(kid string, k *ecdsa.PrivateKey) *jose.JSONWebKeySet {
	return &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: kid, Algorithm: "ES256"}}}
}

// fakeStatus returns the status by list index (Token Status List §6.1).
type fakeStatus struct{ byIdx map[int]statuslist.Status }

func (f fakeStatus) Check(_ context.Context, raw json.RawMessage) (statuslist.Status, error) {
	ref, err := statuslist.ParseClaim(raw)
	if err != nil {
		return 0, err
	}
	st, ok := f.byIdx[ref.Idx]
	if !ok {
		return 0, statuslist.ErrIndex
	}
	return st, nil
}

var checker = fakeStatus{byIdx: map[int]statuslist.Status{0: statuslist.Valid, 1: statuslist.Invalid, 2: statuslist.Suspended}}

type cred struct {
	iss     string
	key     *ecdsa.PrivateKey
	kid     string
	vct     string
	extra   map[string]any
	drop    []string // claims removed before issuing
	noKB    bool
	nonce   string
	aud     string
	selects []string
	x5c     []string // x5c header instead of kid
}

func (c cred) present(tb testing.TB) string {
	tb.Helper()
	claims := map[string]any{
		"iss": c.iss, "vct": c.vct, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"sub": "user-1", "personal_administrative_number": secret,
		"given_name": "Erika", "family_name": "Mustermann",
	}
	for k, v := range c.extra {
		claims[k] = v
	}
	for _, k := range c.drop {
		delete(claims, k)
	}
	key, kid := c.key, c.kid
	if key == nil {
		key = keyA
	}
	if kid == "" {
		kid = "a1"
	}
	var disc []string
	for _, k := range []string{"given_name", "family_name", "personal_administrative_number"} {
		if _, ok := claims[k]; ok {
			disc = append(disc, k)
		}
	}
	hdr := map[jose.HeaderKey]any{jose.HeaderKey("kid"): kid}
	if c.x5c != nil {
		hdr = map[jose.HeaderKey]any{jose.HeaderKey("x5c"): c.x5c}
	}
	issued, err := sdjwttest.Issue(claims, disc, jose.SigningKey{Algorithm: jose.ES256, Key: key},
		sdjwttest.Options{HolderKey: &holderKey.PublicKey, Header: hdr})
	if err != nil {
		tb.Fatal(err)
	}
	holder := jose.SigningKey{Algorithm: jose.ES256, Key: holderKey}
	if c.noKB {
		holder = jose.SigningKey{}
	}
	n, a := c.nonce, c.aud
	if n == "" {
		n = nonce
	}
	if a == "" {
		a = aud
	}
	s, err := sdjwttest.Present(issued, c.selects, holder, n, a, now)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func query(tb testing.TB, s string) *dcql.Query {
	tb.Helper()
	q, err := dcql.Parse([]byte(s))
	if err != nil {
		tb.Fatal(err)
	}
	return q
}

const (
	pidQuery = `{"credentials":[{"id":"pid","format":"dc+sd-jwt","meta":{"vct_values":["urn:eudi:pid:1"]},
		"claims":[{"path":["given_name"]}]}]}`
	twoQuery = `{"credentials":[
		{"id":"pid","format":"dc+sd-jwt","meta":{"vct_values":["urn:eudi:pid:1"]},
		 "claims":[{"id":"pan","path":["personal_administrative_number"]},{"id":"gn","path":["given_name"]},{"id":"fn","path":["family_name"]}],
		 "claim_sets":[["pan"],["gn","fn"]]},
		{"id":"mdl","format":"dc+sd-jwt","meta":{"vct_values":["urn:example:mdl"]},"claims":[{"path":["family_name"]}]}]}`
	noKBQuery = `{"credentials":[{"id":"pid","format":"dc+sd-jwt","meta":{"vct_values":["urn:eudi:pid:1"]},
		"require_cryptographic_holder_binding":false}]}`
	multiQuery = `{"credentials":[{"id":"pid","format":"dc+sd-jwt","multiple":true,"meta":{"vct_values":["urn:eudi:pid:1"]}}]}`
)

func policy(tb testing.TB, q string) dc.Policy {
	return dc.Policy{
		Issuers: []dc.TrustedIssuer{
			{Issuer: issA, Keys: jwks("a1", keyA), VCTValues: []string{vctPID, vctMDL}, Algs: []jose.SignatureAlgorithm{jose.ES256}, SubjectClaim: dcql.Path{"personal_administrative_number"}},
			{Issuer: issB, Keys: jwks("b1", keyB), VCTValues: []string{vctPID}, SubjectClaim: dcql.Path{"sub"}},
		},
		Query:      query(tb, q),
		Nonce:      nonce,
		Audience:   aud,
		Now:        func() time.Time { return now },
		KeepClaims: []string{"given_name"},
	}
}

var credB = cred{iss: issB, key: keyB, kid: "b1", vct: vctPID}

func TestVerifyVPTokenAccepts(t *testing.T) {
	pidA := cred{iss: issA, vct: vctPID}
	tests := []struct {
		name  string
		q     string
		tok   map[string][]string
		pol   func(*dc.Policy)
		check func(*testing.T, []dc.VerifiedCredential)
	}{
		{"one credential", pidQuery, map[string][]string{"pid": {pidA.present(t)}}, nil, func(t *testing.T, vc []dc.VerifiedCredential) {
			v := vc[0]
			if len(vc) != 1 || v.QueryID != "pid" || v.Issuer != issA || v.VCT != vctPID || v.Subject != issA+"|"+secret || v.HolderThumbprint == "" {
				t.Errorf("got %+v", vc)
			}
			if len(v.Claims) != 1 || v.Claims["given_name"] != "Erika" {
				t.Errorf("claims not minimised to KeepClaims: %v", v.Claims)
			}
		}},
		{"two credentials, second claim set", twoQuery, map[string][]string{
			"pid": {cred{iss: issB, key: keyB, kid: "b1", vct: vctPID, selects: []string{"given_name", "family_name"}}.present(t)},
			"mdl": {cred{iss: issA, vct: vctMDL}.present(t)},
		}, nil, func(t *testing.T, vc []dc.VerifiedCredential) {
			if len(vc) != 2 || vc[0].QueryID != "mdl" || vc[1].QueryID != "pid" || vc[1].Subject != issB+"|user-1" {
				t.Errorf("got %+v", vc)
			}
		}},
		{"same sub value, different issuers, different subjects", multiQuery, map[string][]string{"pid": {
			cred{iss: issA, vct: vctPID}.present(t), credB.present(t)}},
			func(p *dc.Policy) { p.Issuers[0].SubjectClaim = dcql.Path{"sub"} },
			func(t *testing.T, vc []dc.VerifiedCredential) {
				if len(vc) != 2 || vc[0].Subject != issA+"|user-1" || vc[1].Subject != issB+"|user-1" || vc[0].Subject == vc[1].Subject {
					t.Errorf("subjects %q %q", vc[0].Subject, vc[1].Subject)
				}
			}},
		{"no KB when the query does not require it", noKBQuery, map[string][]string{"pid": {cred{iss: issA, vct: vctPID, noKB: true}.present(t)}}, nil, nil},
		{"status VALID", pidQuery, map[string][]string{"pid": {cred{iss: issA, vct: vctPID, extra: statusClaim(0)}.present(t)}},
			func(p *dc.Policy) { p.Issuers[0].StatusRequired = true }, nil},
		{"nothing kept", pidQuery, map[string][]string{"pid": {pidA.present(t)}}, func(p *dc.Policy) { p.KeepClaims = nil },
			func(t *testing.T, vc []dc.VerifiedCredential) {
				if len(vc[0].Claims) != 0 {
					t.Errorf("claims kept: %v", vc[0].Claims)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := policy(t, tc.q)
			if tc.pol != nil {
				tc.pol(&p)
			}
			vc, err := dc.VerifyVPToken(context.Background(), tc.tok, p, checker)
			if err != nil {
				t.Fatalf("VerifyVPToken: %v", err)
			}
			if tc.check != nil {
				tc.check(t, vc)
			}
		})
	}
}

func statusClaim(idx int) map[string]any {
	return map[string]any{"status": map[string]any{"status_list": map[string]any{"idx": idx, "uri": listURI}}}
}

func TestVerifyVPTokenRejects(t *testing.T) {
	pid := func(c cred) map[string][]string { return map[string][]string{"pid": {c.present(t)}} }
	good := cred{iss: issA, vct: vctPID}
	tests := []struct {
		name string
		q    string
		tok  map[string][]string
		pol  func(*dc.Policy)
		want []error
	}{
		{"unknown issuer", pidQuery, pid(cred{iss: "https://evil.example", vct: vctPID}), nil, []error{dc.ErrIssuer}},
		{"issuer key not its own", pidQuery, pid(cred{iss: issA, key: keyB, vct: vctPID}), nil, []error{dc.ErrPresentation, sdjwt.ErrSignature}},
		{"alg not allowed for issuer", pidQuery, pid(good), func(p *dc.Policy) { p.Issuers[0].Algs = []jose.SignatureAlgorithm{jose.EdDSA} }, []error{dc.ErrIssuer}},
		{"issuer not allowed for that vct", twoQuery, map[string][]string{"pid": {good.present(t)}, "mdl": {cred{iss: issB, key: keyB, kid: "b1", vct: vctMDL}.present(t)}}, nil, []error{dc.ErrVCT}},
		{"vct not in query", pidQuery, pid(cred{iss: issA, vct: vctMDL}), nil, []error{dc.ErrVCT}},
		{"wrong nonce", pidQuery, pid(cred{iss: issA, vct: vctPID, nonce: "other"}), nil, []error{dc.ErrPresentation, sdjwt.ErrKB}},
		{"wrong audience", pidQuery, pid(cred{iss: issA, vct: vctPID, aud: "x509_hash:other"}), nil, []error{dc.ErrPresentation, sdjwt.ErrKB}},
		{"KB missing when required", pidQuery, pid(cred{iss: issA, vct: vctPID, noKB: true}), nil, []error{dc.ErrPresentation, sdjwt.ErrKBRequired}},
		{"unknown query id", pidQuery, map[string][]string{"pid": {good.present(t)}, "other": {good.present(t)}}, nil, []error{dc.ErrUnknownQuery}},
		{"two presentations without multiple", pidQuery, map[string][]string{"pid": {good.present(t), good.present(t)}}, nil, []error{dc.ErrCardinality}},
		{"empty entry", pidQuery, map[string][]string{"pid": {}}, nil, []error{dc.ErrCardinality}},
		{"required query missing", twoQuery, map[string][]string{"pid": {good.present(t)}}, nil, []error{dc.ErrMatch, dcql.ErrCredentialSets}},
		{"requested claim not disclosed", pidQuery, pid(cred{iss: issA, vct: vctPID, selects: []string{"family_name", "personal_administrative_number"}}), nil, []error{dc.ErrMatch, dcql.ErrClaims}},
		{"status INVALID", pidQuery, pid(cred{iss: issA, vct: vctPID, extra: statusClaim(1)}), nil, []error{dc.ErrStatus}},
		{"status SUSPENDED", pidQuery, pid(cred{iss: issA, vct: vctPID, extra: statusClaim(2)}), nil, []error{dc.ErrStatus}},
		{"status unresolvable", pidQuery, pid(cred{iss: issA, vct: vctPID, extra: statusClaim(9)}), nil, []error{dc.ErrStatus, statuslist.ErrIndex}},
		{"status missing with StatusRequired", pidQuery, pid(good), func(p *dc.Policy) { p.Issuers[0].StatusRequired = true }, []error{dc.ErrStatusMissing}},
		{"subject claim missing", pidQuery, pid(cred{iss: issA, vct: vctPID, drop: []string{"personal_administrative_number"}}), nil, []error{dc.ErrSubject}},
		{"subject claim not disclosed", pidQuery, pid(cred{iss: issA, vct: vctPID, selects: []string{"given_name"}}), nil, []error{dc.ErrSubject}},
		{"subject claim not configured", pidQuery, pid(good), func(p *dc.Policy) { p.Issuers[0].SubjectClaim = nil }, []error{dc.ErrSubject}},
		{"one bad presentation rejects all", multiQuery, map[string][]string{"pid": {good.present(t), cred{iss: issA, vct: vctPID, nonce: "x"}.present(t)}}, nil, []error{dc.ErrPresentation}},
		{"policy without nonce", pidQuery, pid(good), func(p *dc.Policy) { p.Nonce = "" }, []error{dc.ErrPolicy}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := policy(t, tc.q)
			if tc.pol != nil {
				tc.pol(&p)
			}
			vc, err := dc.VerifyVPToken(context.Background(), tc.tok, p, checker)
			if err == nil || vc != nil {
				t.Fatalf("accepted: %+v", vc)
			}
			for _, w := range append(tc.want, dc.ErrRejected) {
				if !errors.Is(err, w) {
					t.Errorf("error %v is not %v", err, w)
				}
			}
			for _, v := range []string{secret, "Erika", "Mustermann", "user-1"} {
				if strings.Contains(err.Error(), v) {
					t.Errorf("error %q contains claim value %q", err, v)
				}
			}
		})
	}
}

// TestErrorsCarryNoClaimValues puts the secret in every position a claim
// value can take (a requested value, the vct, the subject) and checks no
// refusal quotes it.
func TestErrorsCarryNoClaimValues(t *testing.T) {
	q := `{"credentials":[{"id":"pid","format":"dc+sd-jwt","meta":{"vct_values":["urn:eudi:pid:1"]},
		"claims":[{"path":["personal_administrative_number"],"values":["other"]}]}]}`
	toks := []struct {
		q   string
		tok map[string][]string
	}{
		{q, map[string][]string{"pid": {cred{iss: issA, vct: vctPID}.present(t)}}},
		{pidQuery, map[string][]string{"pid": {cred{iss: issA, vct: secret}.present(t)}}},
		{pidQuery, map[string][]string{"pid": {cred{iss: secret, vct: vctPID}.present(t)}}},
		{pidQuery, map[string][]string{"pid": {cred{iss: issA, vct: vctPID, extra: map[string]any{"personal_administrative_number": map[string]any{"x": secret}}}.present(t)}}},
		{pidQuery, map[string][]string{"pid": {secret + "~"}}},
	}
	for i, tc := range toks {
		_, err := dc.VerifyVPToken(context.Background(), tc.tok, policy(t, tc.q), checker)
		if err == nil {
			t.Fatalf("%d: accepted", i)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%d: error %q contains a claim value", i, err)
		}
	}
}
