package admin

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/internal/testkeys"
)

// adminJSONSeeds are bodies of the admin API (resources, imports) and the
// bombs and duplicates it must refuse.
var adminJSONSeeds = []string{
	`{"id":"demo-app","token_endpoint_auth_method":"none","scopes":["openid"],"grant_types":["authorization_code"]}`,
	`{"id":"ds","issuer":"https://ds.example","client_id":"us","auth":{"method":"client_secret_basic","secret_env":"FEDAS_SECRET_DS"}}`,
	`[{"id":"a"},{"id":"b"}]`,
	`{"a":1,"a":2}`,
	`{"a":{"b":1,"b":2}}`,
	`{"a":1,"\u0061":2}`,
	`{"a":[{"b":1},{"b":1,"b":1}]}`,
	`{"a":1}{"b":2}`,
	`{"a":1} x`,
	`{"a":1e400}`,
	`{"a":-0,"b":1.5e-7,"c":true,"d":null,"e":"\ud800"}`,
	strings.Repeat("[", 20) + strings.Repeat("]", 20),
	`{"a":` + strings.Repeat(`{"a":`, 17) + `1` + strings.Repeat("}", 18),
	`[1,{"a":1}]`,
	`{}`,
	`[]`,
	`"x"`,
	``,
	`{"a":1,}`,
	`{"a" 1}`,
}

// FuzzDecodeJSON: the admin API's JSON body decoder (decodeObject,
// decodeArray) never panics, and what it accepts is one JSON value with
// nothing after it, of at most maxDepth levels and maxMembers members per
// object, with no member merged away by a duplicate at any level (as many
// members as the text has name separators), equal to what encoding/json
// reads, and the same after a round trip.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range adminJSONSeeds {
		f.Add([]byte(s), strings.HasPrefix(s, "["))
	}
	f.Fuzz(func(t *testing.T, b []byte, array bool) {
		var got any
		if array {
			items, err := decodeArray(b)
			if err != nil {
				return
			}
			arr := make([]any, len(items))
			for i, it := range items {
				arr[i] = map[string]any(it)
			}
			got = arr
		} else {
			m, err := decodeObject(b)
			if err != nil {
				return
			}
			got = m
		}
		if !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		var std any
		if err := json.Unmarshal(b, &std); err != nil || !reflect.DeepEqual(std, got) {
			t.Fatalf("accepted %v, encoding/json reads %v (%v)", got, std, err)
		}
		if members, depth := shape(got, 1); members != testkeys.NameSeparators(b) || depth > maxDepth+1 {
			t.Fatalf("%d members (text has %d), depth %d", members, testkeys.NameSeparators(b), depth)
		}
		out, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var again any
		if array {
			items, err := decodeArray(out)
			if err != nil {
				t.Fatalf("round trip refused: %v", err)
			}
			arr := make([]any, len(items))
			for i, it := range items {
				arr[i] = map[string]any(it)
			}
			again = arr
		} else if again, err = decodeObject(out); err != nil {
			t.Fatalf("round trip refused: %v", err)
		}
		if !reflect.DeepEqual(again, got) {
			t.Fatalf("round trip changed %v into %v", got, again)
		}
	})
}

// shape counts object members and the nesting depth of a decoded value,
// failing on an object of more than maxMembers members.
func shape(v any, depth int) (members, maxd int) {
	maxd = depth
	switch x := v.(type) {
	case map[string]any:
		if len(x) > maxMembers {
			return -1, depth
		}
		members = len(x)
		for _, c := range x {
			m, d := shape(c, depth+1)
			members, maxd = members+m, max(maxd, d)
		}
	case []any:
		for _, c := range x {
			m, d := shape(c, depth+1)
			members, maxd = members+m, max(maxd, d)
		}
	}
	return members, maxd
}

// FuzzParseYAML: the admin import's YAML front (parseYAML, then
// config.ParsePolicy as Service.Import does) never panics; an accepted
// document is one document with no mapping of more than maxMembers keys,
// and its policy round-trips through config.MarshalPolicy.
func FuzzParseYAML(f *testing.F) {
	for _, s := range []string{
		string(config.DemoYAML()),
		"clients:\n  - id: app\n    scopes: [openid]\n",
		"{}",
		"",
		"# nothing\n",
		"null",
		"a: 1\n---\nb: 2\n",
		"a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n",
		"clients: &c [{id: a}]\nusers: *c\n",
		"a: {b: 1, b: 2}\n",
		"clients:\n  - id: a\n    id: b\n",
		"!!map {? a : b}",
		"clients: [{id: \"\\ud800\"}]\n",
		"\xff: x\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := parseYAML(b)
		if err != nil || n == nil {
			return
		}
		var walk func(*yaml.Node)
		walk = func(n *yaml.Node) {
			if n.Kind == yaml.MappingNode && len(n.Content) > 2*maxMembers {
				t.Fatalf("accepted a mapping of %d keys", len(n.Content)/2)
			}
			for _, c := range n.Content {
				walk(c)
			}
		}
		walk(n)
		p, err := config.ParsePolicy(b)
		if err != nil {
			return
		}
		out, err := config.MarshalPolicy(p)
		if err != nil {
			t.Fatal(err)
		}
		back, err := config.ParsePolicy(out)
		if err != nil || !reflect.DeepEqual(back, p) {
			t.Fatalf("round trip changed the policy (%v):\n%+v\n%+v", err, p, back)
		}
	})
}
