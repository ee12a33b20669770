package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// CP06: limits.max_params and limits.max_body_bytes hold on every endpoint
// that parses a body, in every encoding it takes: at the limit the request
// is parsed (whatever the endpoint then answers, never 5xx), one over it
// is 400 invalid_request (parameters) or 413 invalid_request (bytes, also
// far over: the read is bounded), always an RFC 6749 §5.2 JSON body with
// no-store. Prompt answers per session (prompt.max_attempts) hold in both
// encodings of the native endpoint.
func TestCaps_BodyAndParamLimits(t *testing.T) {
	in := wrap(start(t, nil))
	maxParams, maxBody := in.Config.Limits.MaxParams, int(in.Config.Limits.MaxBodyBytes)
	endpoints := []string{"/native/authorize", "/native/response/x", "/native/app/complete", "/oauth2/authorize",
		"/oauth2/token", "/oauth2/par", "/oauth2/revoke", "/oauth2/introspect"}

	form := func(n int) string {
		v := url.Values{}
		for i := range n {
			v.Set(fmt.Sprintf("p%d", i), "v")
		}
		return v.Encode()
	}
	jsonObj := func(n int) string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("p%d", i)] = "v"
		}
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return string(b)
	}
	formOfSize := func(n int) string { return "x=" + strings.Repeat("a", n-2) }
	jsonOfSize := func(n int) string { return `{"x":"` + strings.Repeat("a", n-8) + `"}` }

	type encoding struct {
		contentType    string
		params, ofSize func(int) string
	}
	enc := map[string]encoding{
		"form": {"application/x-www-form-urlencoded", form, formOfSize},
		"json": {"application/json", jsonObj, jsonOfSize},
	}
	parsed := func(t *testing.T, r reply) {
		t.Helper()
		require.Less(t, r.status, 500, r.raw)
		require.NotEqual(t, http.StatusRequestEntityTooLarge, r.status, r.raw)
		require.NotEqual(t, "Too many parameters.", r.str("error_description"), r.raw)
	}
	for _, ep := range endpoints {
		encodings := []string{"form"}
		if ep == "/native/authorize" {
			encodings = append(encodings, "json") // FiPA-04 §5.3
		}
		for _, name := range encodings {
			e := enc[name]
			t.Run(ep+" "+name, func(t *testing.T) {
				send := func(body string) reply { return postBody(t, in.URL+ep, e.contentType, body) }
				require.Len(t, e.ofSize(maxBody), maxBody)
				parsed(t, send(e.params(maxParams)))
				r := send(e.params(maxParams + 1))
				requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
				require.Equal(t, "Too many parameters.", r.str("error_description"))
				parsed(t, send(e.ofSize(maxBody)))
				for _, n := range []int{maxBody + 1, 10 * maxBody} {
					r := send(e.ofSize(n))
					requireOAuthError(t, r, http.StatusRequestEntityTooLarge, "invalid_request")
					require.Equal(t, "The request body is too large.", r.str("error_description"))
				}
			})
		}
	}

	t.Run("prompt answers per session", func(t *testing.T) {
		e := newMockFed(t, mockFedOpts{})
		for _, name := range []string{"form", "json"} {
			t.Run(name, func(t *testing.T) {
				p, _ := e.prompt(t, nil)
				s := p.str("auth_session")
				answer := func(bank string) reply {
					if name == "json" {
						b, err := json.Marshal(map[string]string{"auth_session": s, "bank": bank})
						require.NoError(t, err)
						return postBody(t, e.as1.native(), "application/json", string(b))
					}
					return post(t, e.as1.native(), url.Values{"auth_session": {s}, "bank": {bank}})
				}
				for range 2 { // prompt.max_attempts is 3
					r := answer("no-such-bank")
					requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
					s = r.str("auth_session")
					require.NotEmpty(t, s)
				}
				requireOAuthError(t, answer("no-such-bank"), http.StatusBadRequest, "access_denied")
				requireOAuthError(t, answer("ds1"), http.StatusBadRequest, "invalid_session")
			})
		}
	})
}
