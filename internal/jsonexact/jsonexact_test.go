package jsonexact

import (
	"reflect"
	"testing"
)

type inner struct {
	B int `json:"b"`
}

type doc struct {
	inner
	A     string   `json:"a,omitempty"`
	L     []string `json:"l"`
	Skip  string   `json:"-"`
	NoTag string
}

// TestUnmarshal: exact names only, last duplicate wins, embedded structs,
// custom types through encoding/json, errors on wrong types and
// non-objects.
func TestUnmarshal(t *testing.T) {
	tests := []struct {
		in   string
		want doc
		err  bool
	}{
		{`{"a":"x","b":2,"l":["y"],"NoTag":"n"}`, doc{inner: inner{B: 2}, A: "x", L: []string{"y"}, NoTag: "n"}, false},
		{`{"A":"x","B":2,"L":["y"],"notag":"n","Skip":"s","-":"s","p":"p"}`, doc{}, false},
		{`{"a":"x","a":"y"}`, doc{A: "y"}, false},
		{`{"a":"x","A":"y"}`, doc{A: "x"}, false},
		{`null`, doc{}, false},
		{`{"a":1}`, doc{}, true},
		{`[]`, doc{}, true},
		{`"a"`, doc{}, true},
		{`{"a":"x"`, doc{}, true},
	}
	for _, tc := range tests {
		var got doc
		err := Unmarshal([]byte(tc.in), &got)
		if (err != nil) != tc.err || (!tc.err && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("Unmarshal(%s) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if err := Unmarshal([]byte(`{}`), doc{}); err == nil {
		t.Error("a non-pointer was accepted")
	}
}
