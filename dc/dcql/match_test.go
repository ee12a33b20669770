package dcql

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func mustParse(tb testing.TB, s string) *Query {
	tb.Helper()
	q, err := Parse([]byte(s))
	if err != nil {
		tb.Fatalf("Parse: %v", err)
	}
	return q
}

// pid is a holder-bound PID presentation with the given processed claims
// (a fixture: bad JSON panics).
func pid(claims string) Presented {
	var m map[string]any
	if err := json.Unmarshal([]byte(claims), &m); err != nil {
		panic(err)
	}
	return Presented{Format: FormatSDJWTVC, VCT: "urn:eudi:pid:1", Claims: m, HolderBound: true}
}

const (
	fullPID  = `{"given_name":"A","family_name":"B","address":{"street_address":"S"},"nationalities":["DE"]}`
	shortPID = `{"given_name":"A","family_name":"B"}`

	twoCreds = `{"credentials":[
	 {"id":"pid","format":"dc+sd-jwt","meta":{"vct_values":["urn:eudi:pid:1"]},"claims":[{"path":["given_name"]}]},
	 {"id":"mdl","format":"dc+sd-jwt","meta":{"vct_values":["urn:mdl"]},"require_cryptographic_holder_binding":false}]}`

	sets = `{"credentials":[
	 {"id":"pid","format":"dc+sd-jwt","meta":{"vct_values":["urn:eudi:pid:1"]}},
	 {"id":"other_pid","format":"dc+sd-jwt","meta":{"vct_values":["urn:other:pid"]}},
	 {"id":"loyalty","format":"dc+sd-jwt","meta":{"vct_values":["urn:loyalty"]}}],
	 "credential_sets":[{"options":[["pid"],["other_pid"]]},{"options":[["loyalty"]],"required":false}]}`

	valuesQ = `{"credentials":[{"id":"pid","format":"dc+sd-jwt","meta":{"vct_values":["urn:eudi:pid:1"]},
	 "claims":[{"path":["nationalities",null],"values":["FR","DE"]},{"path":["age"],"values":[18,true]}]}]}`

	multiQ = `{"credentials":[{"id":"pid","format":"dc+sd-jwt","multiple":true,"meta":{"vct_values":["urn:eudi:pid:1"]}}]}`
)

func TestMatch(t *testing.T) {
	mdl := Presented{Format: FormatSDJWTVC, VCT: "urn:mdl", Claims: map[string]any{}}
	other := Presented{Format: FormatSDJWTVC, VCT: "urn:other:pid", Claims: map[string]any{}, HolderBound: true}
	loyalty := Presented{Format: FormatSDJWTVC, VCT: "urn:loyalty", Claims: map[string]any{}, HolderBound: true}
	unbound := pid(fullPID)
	unbound.HolderBound = false
	wrongVCT := pid(fullPID)
	wrongVCT.VCT = "urn:eudi:pid:2"
	wrongFormat := pid(fullPID)
	wrongFormat.Format = "mso_mdoc"
	tests := []struct {
		name  string
		query string
		vp    map[string][]Presented
		want  error // nil: match
		res   *Result
	}{
		{"first claim set", pidQuery, map[string][]Presented{"pid": {pid(fullPID)}}, nil,
			&Result{Credentials: map[string][]CredentialMatch{"pid": {{ClaimSet: 0}}}}},
		{"claim_sets fallback", pidQuery, map[string][]Presented{"pid": {pid(shortPID)}}, nil,
			&Result{Credentials: map[string][]CredentialMatch{"pid": {{ClaimSet: 1}}}}},
		{"no claim set satisfied", pidQuery, map[string][]Presented{"pid": {pid(`{"given_name":"A"}`)}}, ErrClaims, nil},
		{"missing claim (no claim_sets)", twoCreds, map[string][]Presented{"pid": {pid(`{"family_name":"B"}`)}, "mdl": {mdl}}, ErrClaims, nil},
		{"all claims, both credentials", twoCreds, map[string][]Presented{"pid": {pid(shortPID)}, "mdl": {mdl}}, nil,
			&Result{Credentials: map[string][]CredentialMatch{"pid": {{ClaimSet: -1}}, "mdl": {{ClaimSet: -1}}}}},
		{"required credential missing (no credential_sets)", twoCreds, map[string][]Presented{"pid": {pid(shortPID)}}, ErrCredentialSets, nil},
		{"wrong vct", pidQuery, map[string][]Presented{"pid": {wrongVCT}}, ErrVCT, nil},
		{"wrong format", pidQuery, map[string][]Presented{"pid": {wrongFormat}}, ErrFormat, nil},
		{"holder binding missing", pidQuery, map[string][]Presented{"pid": {unbound}}, ErrHolderBinding, nil},
		{"holder binding not required", twoCreds, map[string][]Presented{"pid": {pid(shortPID)}, "mdl": {mdl}}, nil, nil},
		{"unknown id in vp_token", pidQuery, map[string][]Presented{"pid": {pid(fullPID)}, "evil": {pid(fullPID)}}, ErrUnknownCredential, nil},
		{"empty vp_token", pidQuery, map[string][]Presented{}, ErrCredentialSets, nil},
		{"nil vp_token", pidQuery, nil, ErrCredentialSets, nil},
		{"empty array", pidQuery, map[string][]Presented{"pid": {}}, ErrCardinality, nil},
		{"two without multiple", pidQuery, map[string][]Presented{"pid": {pid(fullPID), pid(fullPID)}}, ErrCardinality, nil},
		{"two with multiple", multiQ, map[string][]Presented{"pid": {pid(fullPID), pid(shortPID)}}, nil,
			&Result{Credentials: map[string][]CredentialMatch{"pid": {{ClaimSet: -1}, {ClaimSet: -1}}}}},
		{"multiple, one bad element", multiQ, map[string][]Presented{"pid": {pid(fullPID), unbound}}, ErrHolderBinding, nil},
		{"credential_sets first option", sets, map[string][]Presented{"pid": {pid(fullPID)}}, nil,
			&Result{Credentials: map[string][]CredentialMatch{"pid": {{ClaimSet: -1}}}, CredentialSets: []int{0, -1}}},
		{"credential_sets second option and optional set", sets, map[string][]Presented{"other_pid": {other}, "loyalty": {loyalty}}, nil,
			&Result{Credentials: map[string][]CredentialMatch{"other_pid": {{ClaimSet: -1}}, "loyalty": {{ClaimSet: -1}}}, CredentialSets: []int{1, 0}}},
		{"credential_sets required unsatisfied", sets, map[string][]Presented{"loyalty": {loyalty}}, ErrCredentialSets, nil},
		{"values: one element matches", valuesQ, map[string][]Presented{"pid": {pid(`{"nationalities":["IT","DE"],"age":18}`)}}, nil, nil},
		{"values: bool matches", valuesQ, map[string][]Presented{"pid": {pid(`{"nationalities":["FR"],"age":true}`)}}, nil, nil},
		{"values: claim differs", valuesQ, map[string][]Presented{"pid": {pid(`{"nationalities":["IT"],"age":18}`)}}, ErrClaims, nil},
		{"values: type differs (string vs int)", valuesQ, map[string][]Presented{"pid": {pid(`{"nationalities":["FR"],"age":"18"}`)}}, ErrClaims, nil},
		{"values: non-integer number", valuesQ, map[string][]Presented{"pid": {pid(`{"nationalities":["FR"],"age":18.5}`)}}, ErrClaims, nil},
		{"path type mismatch is a missing claim", valuesQ, map[string][]Presented{"pid": {pid(`{"nationalities":"FR","age":18}`)}}, ErrClaims, nil},
		{"nil claims", pidQuery, map[string][]Presented{"pid": {{Format: FormatSDJWTVC, VCT: "urn:eudi:pid:1", HolderBound: true}}}, ErrClaims, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustParse(t, tt.query)
			res, err := Match(q, tt.vp)
			if tt.want != nil {
				if !errors.Is(err, tt.want) || !errors.Is(err, ErrNoMatch) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				if res != nil {
					t.Fatalf("result with error: %+v", res)
				}
				return
			}
			if err != nil {
				t.Fatalf("Match: %v", err)
			}
			if tt.res != nil && !reflect.DeepEqual(res, tt.res) {
				t.Fatalf("result = %+v, want %+v", res, tt.res)
			}
		})
	}
	if _, err := Match(nil, nil); !errors.Is(err, ErrInvalidQuery) {
		t.Fatalf("nil query: %v", err)
	}
	// A query built in code is validated before matching.
	dup := &Query{Credentials: []CredentialQuery{
		{ID: "pid", Format: FormatSDJWTVC, Meta: Meta{VCTValues: []string{"urn:eudi:pid:1"}}},
		{ID: "pid", Format: FormatSDJWTVC, Meta: Meta{VCTValues: []string{"urn:x"}}},
	}}
	if _, err := Match(dup, map[string][]Presented{"pid": {pid(fullPID)}}); !errors.Is(err, ErrInvalidQuery) {
		t.Fatalf("duplicate ids: %v", err)
	}
}

// TestMatchErrorsCarryNoClaimData: error text names ids and paths, never a
// presented claim value or vct (docs: no personal data in errors).
func TestMatchErrorsCarryNoClaimData(t *testing.T) {
	secret := "Sekr3tValue"
	q := mustParse(t, valuesQ)
	for name, p := range map[string]Presented{
		"claim":  pid(`{"nationalities":["` + secret + `"],"age":18}`),
		"vct":    {Format: FormatSDJWTVC, VCT: secret, HolderBound: true},
		"format": {Format: secret, VCT: "urn:eudi:pid:1", HolderBound: true},
	} {
		_, err := Match(q, map[string][]Presented{"pid": {p}})
		if err == nil {
			t.Fatalf("%s: matched", name)
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("%s: error leaks presented data: %v", name, err)
		}
	}
	_, err := Match(q, map[string][]Presented{secret: {pid(fullPID)}})
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("unknown id error leaks the key: %v", err)
	}
}
