package dcql

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

const pathDoc = `{"name":"Ada","address":{"street_address":"Main 1","locality":"X"},
 "degrees":[{"type":"BSc","year":2001},{"type":"MSc"}],"nationalities":["DE","FR"],"empty":[],"n":null}`

func decodeClaims(tb testing.TB, s string) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// TestResolve follows OpenID4VP 1.0 §7.2 (and the §7.3 examples' shapes).
func TestResolve(t *testing.T) {
	claims := decodeClaims(t, pathDoc)
	tests := []struct {
		name string
		path string
		want []any // nil: error
	}{
		{"top-level key", `["name"]`, []any{"Ada"}},
		{"nested key", `["address","street_address"]`, []any{"Main 1"}},
		{"whole object", `["address"]`, []any{map[string]any{"street_address": "Main 1", "locality": "X"}}},
		{"array index", `["nationalities",1]`, []any{"FR"}},
		{"null selects all", `["nationalities",null]`, []any{"DE", "FR"}},
		{"null then key drops missing", `["degrees",null,"year"]`, []any{float64(2001)}},
		{"null then key all", `["degrees",null,"type"]`, []any{"BSc", "MSc"}},
		{"index then key", `["degrees",1,"type"]`, []any{"MSc"}},
		{"null claim value selected", `["n"]`, []any{nil}},
		{"missing key", `["family_name"]`, nil},
		{"index out of range", `["nationalities",2]`, nil},
		{"null over empty array", `["empty",null]`, nil},
		{"key on array", `["nationalities","x"]`, nil},
		{"index on object", `["address",0]`, nil},
		{"null on object", `["address",null]`, nil},
		{"key on string", `["name","x"]`, nil},
		{"key on null value", `["n","x"]`, nil},
		{"null then key, wrong type", `["nationalities",null,"x"]`, nil},
		{"missing then more", `["nope","x"]`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePath([]byte(tt.path))
			if err != nil {
				t.Fatalf("ParsePath: %v", err)
			}
			got, err := Resolve(claims, p)
			if tt.want == nil {
				if !errors.Is(err, ErrPath) {
					t.Fatalf("got %v, %v; want ErrPath", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

func TestParsePathInvalid(t *testing.T) {
	for _, s := range []string{``, `{}`, `"a"`, `[]`, `[-1]`, `[1.5]`, `[1e1]`, `[true]`, `[[]]`, `[{}]`, `[99999999]`,
		`["a","a","a","a","a","a","a","a","a","a","a","a","a","a","a","a","a"]`} {
		t.Run(s, func(t *testing.T) {
			if p, err := ParsePath([]byte(s)); !errors.Is(err, ErrPath) {
				t.Fatalf("got %v, %v; want ErrPath", p, err)
			}
		})
	}
	if _, err := Resolve(nil, Path{"a"}); !errors.Is(err, ErrPath) {
		t.Fatalf("nil claims: %v", err)
	}
	if _, err := Resolve(map[string]any{}, Path{}); !errors.Is(err, ErrPath) {
		t.Fatalf("empty path: %v", err)
	}
}

func FuzzPath(f *testing.F) {
	f.Add([]byte(pathDoc), []byte(`["degrees",null,"type"]`))
	f.Add([]byte(`{"a":[[1,2],[3]]}`), []byte(`["a",null,null]`))
	f.Add([]byte(`{"a":{"b":1}}`), []byte(`["a",0]`))
	f.Fuzz(func(t *testing.T, doc, path []byte) {
		if len(doc) > 4096 {
			return
		}
		var claims map[string]any
		if json.Unmarshal(doc, &claims) != nil {
			return
		}
		p, err := ParsePath(path)
		if err != nil {
			if !errors.Is(err, ErrPath) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if p.Validate() != nil || len(p) == 0 || len(p) > MaxPathLen {
			t.Fatalf("accepted invalid path %v", p)
		}
		got, err := Resolve(claims, p)
		if err != nil {
			if !errors.Is(err, ErrPath) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("success with an empty selection")
		}
	})
}
