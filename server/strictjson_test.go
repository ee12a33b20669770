package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/sdk"
)

// TestNAE_StrictJSONBody (FiPA-04 §5.3; RFC 8259; the form parser's rules,
// RFC 6749 §3.1): a JSON body at the native authorization endpoint is one
// object of string members, each at most once, valid UTF-8, nothing after
// it, at most limits.max_params members. Everything else is 400
// invalid_request with Cache-Control: no-store, through the real handler.
func TestNAE_StrictJSONBody(t *testing.T) {
	in := wrap(start(t, nil))
	pk := sdk.NewPKCE()
	base := `"client_id":"demo-app","response_type":"code","code_challenge":"` + pk.Challenge + `","code_challenge_method":"S256"`
	obj := "{" + base + "}"
	many := func(n int) string {
		var b strings.Builder
		b.WriteString("{" + base)
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, `,"x%d":"v"`, i)
		}
		return b.String() + "}"
	}
	maxParams := in.Config.Limits.MaxParams
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"control: a valid object", obj, true},
		{"control: trailing whitespace", obj + " \r\n\t", true},
		{"control: a surrogate pair escape", "{" + base + `,"state":"\ud83d\ude00"}`, true},
		{"control: an escaped backslash before u", "{" + base + `,"state":"\\ud800"}`, true},
		{"control: max_params members", many(maxParams - 4), true},
		{"duplicate client_id", "{" + base + `,"client_id":"demo-app"}`, false},
		{"duplicate client_id with different values", "{" + base + `,"client_id":"c2"}`, false},
		{"duplicate by escape", "{" + base + `,"client\u005fid":"demo-app"}`, false},
		{"duplicate email", "{" + base + `,"email":"a@example.com","email":"b@example.com"}`, false},
		{"trailing object", obj + `{"client_id":"c2"}`, false},
		{"trailing garbage", obj + "x", false},
		{"trailing array", obj + "[]", false},
		{"trailing string", obj + ` "x"`, false},
		{"two objects with whitespace", obj + "\n" + obj, false},
		{"invalid UTF-8 in a value", "{" + base + `,"state":"a` + "\xff" + `b"}`, false},
		{"invalid UTF-8 in a name", "{" + base + `,"st` + "\xc3" + `":"x"}`, false},
		{"overlong UTF-8", "{" + base + `,"state":"` + "\xc0\xaf" + `"}`, false},
		{"UTF-8-encoded surrogate", "{" + base + `,"state":"` + "\xed\xa0\x80" + `"}`, false},
		{"invalid UTF-8 after the object", obj + "\xff", false},
		{"lone high surrogate escape", "{" + base + `,"state":"\ud800"}`, false},
		{"lone low surrogate escape", "{" + base + `,"state":"\udc00"}`, false},
		{"high surrogate then a non-surrogate", "{" + base + `,"state":"\ud800\u0041"}`, false},
		{"high surrogate at the end of a string", "{" + base + `,"state":"x\uD800"}`, false},
		{"number value", "{" + base + `,"max_age":300}`, false},
		{"boolean value", "{" + base + `,"state":true}`, false},
		{"null value", "{" + base + `,"state":null}`, false},
		{"array value", "{" + base + `,"scope":["openid"]}`, false},
		{"nested object", "{" + base + `,"state":{"a":"b"}}`, false},
		{"client_id as a number", `{"client_id":1,"response_type":"code"}`, false},
		{"top-level array", "[" + obj + "]", false},
		{"top-level string", `"client_id=demo-app"`, false},
		{"top-level number", "1", false},
		{"top-level null", "null", false},
		{"empty body", "", false},
		{"unterminated object", "{" + base, false},
		{"trailing comma", "{" + base + ",}", false},
		{"missing colon", `{"client_id" "demo-app"}`, false},
		{"byte order mark", "\xef\xbb\xbf" + obj, false},
		{"too many members", many(maxParams - 3), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := postBody(t, in.native(), "application/json", tc.body)
			if tc.ok {
				require.NotEqual(t, "invalid_request", r.str("error"), r.raw)
				require.Equal(t, http.StatusForbidden, r.status, r.raw)
				require.NotEmpty(t, r.str("auth_session"), r.raw)
				return
			}
			requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
			require.NotContains(t, r.body, "auth_session")
		})
	}
}
