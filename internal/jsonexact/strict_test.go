package jsonexact

import (
	"strings"
	"testing"
)

// TestStrictObject: the one strict-body rule admits exactly one JSON
// object and names what is wrong otherwise, never a value.
func TestStrictObject(t *testing.T) {
	for _, c := range []struct{ name, body, want string }{
		{"object", `{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`, ""},
		{"empty", ``, "the body is empty"},
		{"whitespace", `  `, "the body is empty"},
		{"array", `[{"a":1}]`, "the body must be a JSON object"},
		{"string", `"a"`, "the body must be a JSON object"},
		{"null", `null`, "the body must be a JSON object"},
		{"duplicate", `{"a":1,"a":2}`, "a member name appears twice"},
		{"escaped duplicate", `{"a":1,"\u0061":2}`, "a member name appears twice"},
		{"nested duplicate", `{"x":[{"a":1,"a":1}]}`, "a member name appears twice"},
		{"same name in siblings", `{"x":{"a":1},"y":{"a":1}}`, ""},
		{"value equal to a name", `{"a":"a","b":"a"}`, ""},
		{"truncated", `{"a":`, "the body is not valid JSON"},
		{"unclosed", `{"a":1`, "the body is not valid JSON"},
		{"trailing", `{"a":1} {}`, "data after the JSON object"},
		{"trailing garbage", `{"a":1}x`, "the body is not valid JSON"},
		{"invalid UTF-8", "{\"a\":\"\xff\"}", "the body is not valid UTF-8"},
		{"at depth", `{"a":{"b":{"c":1}}}`, ""},
		{"too deep", `{"a":{"b":{"c":{"d":1}}}}`, "the body is nested too deeply"},
		{"deep arrays", "{\"a\":" + strings.Repeat("[", 50) + strings.Repeat("]", 50) + "}", "the body is nested too deeply"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := StrictObject([]byte(c.body), 3); got != c.want {
				t.Fatalf("StrictObject(%q) = %q, want %q", c.body, got, c.want)
			}
		})
	}
}
