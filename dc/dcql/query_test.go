package dcql

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const pidQuery = `{"credentials":[{"id":"pid","format":"dc+sd-jwt","meta":{"vct_values":["urn:eudi:pid:1"]},
 "claims":[{"id":"gn","path":["given_name"]},{"id":"fn","path":["family_name"]},{"id":"nat","path":["nationalities",null]},{"id":"street","path":["address","street_address"]}],
 "claim_sets":[["gn","fn","street"],["gn","fn"]]}]}`

// cred builds a one-credential query whose credential object has extra
// members spliced in, for validation rows.
func cred(members string) string {
	return `{"credentials":[{"id":"c1","format":"dc+sd-jwt","meta":{"vct_values":["v"]}` + members + `}]}`
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name  string
		json  string
		check func(testing.TB, *Query)
	}{
		{"minimal, defaults", cred(""), func(tb testing.TB, q *Query) {
			c := q.Credentials[0]
			if c.Multiple || !c.RequireCryptographicHolderBinding || c.Claims != nil {
				tb.Errorf("defaults: %+v", c)
			}
		}},
		{"holder binding off", cred(`,"require_cryptographic_holder_binding":false`), func(tb testing.TB, q *Query) {
			if q.Credentials[0].RequireCryptographicHolderBinding {
				tb.Error("want false")
			}
		}},
		{"multiple", cred(`,"multiple":true`), func(tb testing.TB, q *Query) {
			if !q.Credentials[0].Multiple {
				tb.Error("want multiple")
			}
		}},
		{"pid with claim_sets", pidQuery, func(tb testing.TB, q *Query) {
			c := q.Credentials[0]
			if len(c.Claims) != 4 || len(c.ClaimSets) != 2 {
				tb.Errorf("got %+v", c)
			}
			if !reflect.DeepEqual(c.Claims[2].Path, Path{"nationalities", nil}) {
				tb.Errorf("path %v", c.Claims[2].Path)
			}
		}},
		{"path with index, values", cred(`,"claims":[{"path":["a",0,"b"],"values":["x",7,true]}]`), func(tb testing.TB, q *Query) {
			cl := q.Credentials[0].Claims[0]
			if !reflect.DeepEqual(cl.Path, Path{"a", 0, "b"}) || !reflect.DeepEqual(cl.Values, []any{"x", int64(7), true}) {
				tb.Errorf("got %+v", cl)
			}
		}},
		{"credential_sets, required default", `{"credentials":[
			{"id":"a","format":"dc+sd-jwt","meta":{"vct_values":["v"]}},
			{"id":"b","format":"dc+sd-jwt","meta":{"vct_values":["v"]}}],
			"credential_sets":[{"options":[["a"],["b"]]},{"options":[["a","b"]],"required":false}]}`, func(tb testing.TB, q *Query) {
			if !q.CredentialSets[0].Required || q.CredentialSets[1].Required {
				tb.Errorf("required: %+v", q.CredentialSets)
			}
		}},
		{"id charset", strings.Replace(cred(""), `"c1"`, `"aZ_09-x"`, 1), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Parse([]byte(tt.json))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if tt.check != nil {
				tt.check(t, q)
			}
			assertRoundTrip(t, q)
		})
	}
}

// assertRoundTrip: an accepted query re-validates, and its JSON form parses
// back to the same query.
func assertRoundTrip(tb testing.TB, q *Query) {
	tb.Helper()
	if err := q.Validate(); err != nil {
		tb.Fatalf("accepted query fails Validate: %v", err)
	}
	b, err := json.Marshal(q)
	if err != nil {
		tb.Fatalf("Marshal: %v", err)
	}
	q2, err := Parse(b)
	if err != nil {
		tb.Fatalf("re-Parse of %s: %v", b, err)
	}
	if !reflect.DeepEqual(q, q2) {
		tb.Fatalf("round trip differs:\n%#v\n%#v", q, q2)
	}
}

func TestParseInvalid(t *testing.T) {
	many := func(n int, f func(i int) string) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = f(i)
		}
		return strings.Join(parts, ",")
	}
	credN := func(i int) string {
		return fmt.Sprintf(`{"id":"c%d","format":"dc+sd-jwt","meta":{"vct_values":["v"]}}`, i)
	}
	tests := []struct {
		name string
		json string
		want error
	}{
		{"not JSON", `{`, ErrInvalidQuery},
		{"not an object", `[]`, ErrInvalidQuery},
		{"trailing data", cred("") + `{}`, ErrInvalidQuery},
		{"empty input", ``, ErrInvalidQuery},
		{"unknown top-level member", `{"credentials":[` + credN(0) + `],"x":1}`, ErrInvalidQuery},
		{"unknown credential member", cred(`,"x":1`), ErrInvalidQuery},
		{"unknown meta member", `{"credentials":[{"id":"c","format":"dc+sd-jwt","meta":{"vct_values":["v"],"doctype_value":"x"}}]}`, ErrInvalidQuery},
		{"unknown claim member", cred(`,"claims":[{"path":["a"],"intent_to_retain":true}]`), ErrInvalidQuery},
		{"duplicate member", `{"credentials":[],"credentials":[` + credN(0) + `]}`, ErrInvalidQuery},
		{"duplicate nested member", `{"credentials":[{"id":"a","id":"b","format":"dc+sd-jwt","meta":{"vct_values":["v"]}}]}`, ErrInvalidQuery},
		{"credentials missing", `{}`, ErrInvalidQuery},
		{"credentials empty", `{"credentials":[]}`, ErrInvalidQuery},
		{"credentials null", `{"credentials":null}`, ErrInvalidQuery},
		{"id missing", `{"credentials":[{"format":"dc+sd-jwt","meta":{"vct_values":["v"]}}]}`, ErrInvalidQuery},
		{"id empty", strings.Replace(cred(""), `"c1"`, `""`, 1), ErrInvalidQuery},
		{"id bad character", strings.Replace(cred(""), `"c1"`, `"c.1"`, 1), ErrInvalidQuery},
		{"id space", strings.Replace(cred(""), `"c1"`, `"c 1"`, 1), ErrInvalidQuery},
		{"id too long", strings.Replace(cred(""), `"c1"`, `"`+strings.Repeat("a", MaxIDLen+1)+`"`, 1), ErrInvalidQuery},
		{"id wrong type", strings.Replace(cred(""), `"c1"`, `1`, 1), ErrInvalidQuery},
		{"ids not unique", `{"credentials":[` + credN(0) + `,` + credN(0) + `]}`, ErrInvalidQuery},
		{"format missing", `{"credentials":[{"id":"c","meta":{"vct_values":["v"]}}]}`, ErrInvalidQuery},
		{"format mdoc", `{"credentials":[{"id":"c","format":"mso_mdoc","meta":{"vct_values":["v"]}}]}`, ErrUnsupported},
		{"format legacy vc+sd-jwt", `{"credentials":[{"id":"c","format":"vc+sd-jwt","meta":{"vct_values":["v"]}}]}`, ErrUnsupported},
		{"trusted_authorities", cred(`,"trusted_authorities":[{"type":"aki","values":["x"]}]`), ErrUnsupported},
		{"meta missing", `{"credentials":[{"id":"c","format":"dc+sd-jwt"}]}`, ErrInvalidQuery},
		{"vct_values missing", `{"credentials":[{"id":"c","format":"dc+sd-jwt","meta":{}}]}`, ErrInvalidQuery},
		{"vct_values empty", `{"credentials":[{"id":"c","format":"dc+sd-jwt","meta":{"vct_values":[]}}]}`, ErrInvalidQuery},
		{"vct_values empty string", `{"credentials":[{"id":"c","format":"dc+sd-jwt","meta":{"vct_values":[""]}}]}`, ErrInvalidQuery},
		{"multiple not bool", cred(`,"multiple":"yes"`), ErrInvalidQuery},
		{"claims empty", cred(`,"claims":[]`), ErrInvalidQuery},
		{"path missing", cred(`,"claims":[{"id":"a"}]`), ErrInvalidQuery},
		{"path empty", cred(`,"claims":[{"path":[]}]`), ErrInvalidQuery},
		{"path negative index", cred(`,"claims":[{"path":["a",-1]}]`), ErrInvalidQuery},
		{"path fractional index", cred(`,"claims":[{"path":["a",1.0]}]`), ErrInvalidQuery},
		{"path exponent index", cred(`,"claims":[{"path":["a",1e2]}]`), ErrInvalidQuery},
		{"path leading zero", cred(`,"claims":[{"path":["a",01]}]`), ErrInvalidQuery},
		{"path bool component", cred(`,"claims":[{"path":[true]}]`), ErrInvalidQuery},
		{"path object component", cred(`,"claims":[{"path":[{}]}]`), ErrInvalidQuery},
		{"path index too large", cred(`,"claims":[{"path":["a",99999999]}]`), ErrTooLarge},
		{"path too long", cred(`,"claims":[{"path":[` + many(MaxPathLen+1, func(int) string { return `"a"` }) + `]}]`), ErrTooLarge},
		{"claim id empty", cred(`,"claims":[{"id":"","path":["a"]}]`), ErrInvalidQuery},
		{"claim id bad character", cred(`,"claims":[{"id":"a/b","path":["a"]}]`), ErrInvalidQuery},
		{"claim ids not unique", cred(`,"claims":[{"id":"a","path":["a"]},{"id":"a","path":["b"]}]`), ErrInvalidQuery},
		{"values empty", cred(`,"claims":[{"path":["a"],"values":[]}]`), ErrInvalidQuery},
		{"values float", cred(`,"claims":[{"path":["a"],"values":[1.5]}]`), ErrInvalidQuery},
		{"values null", cred(`,"claims":[{"path":["a"],"values":[null]}]`), ErrInvalidQuery},
		{"values object", cred(`,"claims":[{"path":["a"],"values":[{}]}]`), ErrInvalidQuery},
		{"claim_sets without claims", cred(`,"claim_sets":[["a"]]`), ErrInvalidQuery},
		{"claim_sets empty", cred(`,"claims":[{"id":"a","path":["a"]}],"claim_sets":[]`), ErrInvalidQuery},
		{"claim_sets empty set", cred(`,"claims":[{"id":"a","path":["a"]}],"claim_sets":[[]]`), ErrInvalidQuery},
		{"claim_sets unknown claim id", cred(`,"claims":[{"id":"a","path":["a"]}],"claim_sets":[["b"]]`), ErrInvalidQuery},
		{"claim_sets repeated id", cred(`,"claims":[{"id":"a","path":["a"]}],"claim_sets":[["a","a"]]`), ErrInvalidQuery},
		{"claim_sets with claim lacking id", cred(`,"claims":[{"id":"a","path":["a"]},{"path":["b"]}],"claim_sets":[["a"]]`), ErrInvalidQuery},
		{"credential_sets empty", `{"credentials":[` + credN(0) + `],"credential_sets":[]}`, ErrInvalidQuery},
		{"credential_sets options missing", `{"credentials":[` + credN(0) + `],"credential_sets":[{}]}`, ErrInvalidQuery},
		{"credential_sets options empty", `{"credentials":[` + credN(0) + `],"credential_sets":[{"options":[]}]}`, ErrInvalidQuery},
		{"credential_sets empty option", `{"credentials":[` + credN(0) + `],"credential_sets":[{"options":[[]]}]}`, ErrInvalidQuery},
		{"credential_sets unknown id", `{"credentials":[` + credN(0) + `],"credential_sets":[{"options":[["c9"]]}]}`, ErrInvalidQuery},
		{"credential_sets repeated id", `{"credentials":[` + credN(0) + `],"credential_sets":[{"options":[["c0","c0"]]}]}`, ErrInvalidQuery},
		{"credential_sets unknown member", `{"credentials":[` + credN(0) + `],"credential_sets":[{"options":[["c0"]],"purpose":"x"}]}`, ErrInvalidQuery},
		{"too many credentials", `{"credentials":[` + many(MaxCredentials+1, credN) + `]}`, ErrTooLarge},
		{"too many claims", cred(`,"claims":[` + many(MaxClaims+1, func(int) string { return `{"path":["a"]}` }) + `]`), ErrTooLarge},
		{"too many values", cred(`,"claims":[{"path":["a"],"values":[` + many(MaxValues+1, func(i int) string { return fmt.Sprint(i) }) + `]}]`), ErrTooLarge},
		{"too deep", strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1), ErrTooLarge},
		{"too big", `{"credentials":[` + credN(0) + `],"x":"` + strings.Repeat("a", MaxQueryBytes) + `"}`, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Parse([]byte(tt.json))
			if err == nil {
				t.Fatalf("accepted: %+v", q)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestValidateBuiltQuery: Validate holds the same rules for a Query built in
// code (the path not going through Parse).
func TestValidateBuiltQuery(t *testing.T) {
	ok := func() *Query {
		return &Query{Credentials: []CredentialQuery{{ID: "a", Format: FormatSDJWTVC, Meta: Meta{VCTValues: []string{"v"}}}}}
	}
	tests := []struct {
		name   string
		mutate func(*Query)
		want   error
	}{
		{"valid", func(*Query) {}, nil},
		{"nil credentials", func(q *Query) { q.Credentials = nil }, ErrInvalidQuery},
		{"bad format", func(q *Query) { q.Credentials[0].Format = "jwt_vc_json" }, ErrUnsupported},
		{"path float", func(q *Query) { q.Credentials[0].Claims = []ClaimQuery{{Path: Path{1.5}}} }, ErrInvalidQuery},
		{"path negative", func(q *Query) { q.Credentials[0].Claims = []ClaimQuery{{Path: Path{-1}}} }, ErrInvalidQuery},
		{"value float", func(q *Query) { q.Credentials[0].Claims = []ClaimQuery{{Path: Path{"a"}, Values: []any{1.5}}} }, ErrInvalidQuery},
		{"empty claims slice", func(q *Query) { q.Credentials[0].Claims = []ClaimQuery{} }, ErrInvalidQuery},
		{"empty credential sets slice", func(q *Query) { q.CredentialSets = []CredentialSet{} }, ErrInvalidQuery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := ok()
			tt.mutate(q)
			err := q.Validate()
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if err := (*Query)(nil).Validate(); !errors.Is(err, ErrInvalidQuery) {
		t.Fatalf("nil query: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{pidQuery, cred(""), cred(`,"claims":[{"path":["a",0,null],"values":["x",1,false]}]`),
		`{"credentials":[{"id":"a","format":"dc+sd-jwt","meta":{"vct_values":["v"]}}],"credential_sets":[{"options":[["a"]],"required":false}]}`,
		`{"credentials":[],"credentials":[]}`, `[[[[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidQuery) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if len(data) > MaxQueryBytes || len(q.Credentials) > MaxCredentials {
			t.Fatalf("caps not enforced")
		}
		assertRoundTrip(t, q)
	})
}
