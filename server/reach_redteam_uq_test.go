package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/server"
)

// TestRedteam_UQBodies (RR10): POST /uq/questions with a wrong or missing
// Content-Type, an empty, truncated, non-object, duplicate-member,
// deeply nested, invalid UTF-8 or oversized body answers 400
// invalid_request as -10 wants it (JSON, no-store, never a 500), and no
// question reaches the user's app.
func TestRedteam_UQBodies(t *testing.T) {
	env := newReachEnv(t, nil, reachEnvOptions{one: true})
	phone := signInApp(t, env.a, "carol", "carol-pw", "")
	phone.register(t, "", http.StatusCreated)
	require.Zero(t, phoneEntries(t, phone))
	tok := userQuestionToken(t, env.a, "carol", "carol-pw")
	valid := `{"question_to_display":"Pay 12 EUR?","statements_to_display":["Yes","No"],"wished_acr":"app"}`
	cases := []struct{ name, ctype, body string }{
		{"no content type", "", valid},
		{"text/plain", "text/plain", valid},
		{"form", "application/x-www-form-urlencoded", "question_to_display=x"},
		{"empty", "application/json", ""},
		{"truncated", "application/json", valid[:20]},
		{"null", "application/json", "null"},
		{"array", "application/json", "[" + valid + "]"},
		{"two objects", "application/json", valid + valid},
		{"duplicate member", "application/json", `{"question_to_display":"Pay 12 EUR?","question_to_display":"Pay 9000 EUR?","statements_to_display":["Yes","No"],"wished_acr":"app"}`},
		{"escaped duplicate", "application/json", `{"question_to_display":"Pay 12 EUR?","question_to_displa\u0079":"Pay 9000 EUR?","statements_to_display":["Yes","No"],"wished_acr":"app"}`},
		{"nested duplicate", "application/json", `{"question_to_display":"Pay?","statements_to_display":["Yes","No"],"wished_acr":"app","x":{"a":1,"a":2}}`},
		{"deep nesting", "application/json", `{"x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`},
		{"invalid utf-8", "application/json", "{\"question_to_display\":\"\xff\",\"statements_to_display\":[\"Yes\",\"No\"],\"wished_acr\":\"app\"}"},
		{"lone surrogate", "application/json", `{"question_to_display":"\ud800","statements_to_display":["Yes","No"],"wished_acr":"app"}`},
		{"oversized", "application/json", `{"question_to_display":"` + strings.Repeat("a", 1<<20) + `"}`},
		{"wrong types", "application/json", `{"question_to_display":12,"statements_to_display":"Yes","wished_acr":"app"}`},
	}
	for _, c := range cases {
		req, err := http.NewRequest(http.MethodPost, env.a.URL+server.PathUQQuestions, strings.NewReader(c.body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		r := do(t, req)
		require.Equal(t, http.StatusBadRequest, r.status, "%s: %s", c.name, r.raw)
		require.Equal(t, "invalid_request", r.str("error"), "%s: %s", c.name, r.raw)
		require.Equal(t, "no-store", r.header.Get("Cache-Control"), c.name)
	}
	require.Zero(t, phoneEntries(t, phone), "no refused question reached the app")
}

// TestRedteam_PatchWebhookSSRF (RR11): replacing a device's channels
// (PATCH /reach/devices/{id}) follows the registration's SSRF rule:
// http, loopback, private, link-local/metadata, userinfo, a numeric host
// or an IPv6 literal are 400 invalid_request and the device keeps its
// channels.
func TestRedteam_PatchWebhookSSRF(t *testing.T) {
	env := newReachEnv(t, nil, reachEnvOptions{one: true})
	phone := signInApp(t, env.a, "carol", "carol-pw", "")
	id := phone.register(t, "", http.StatusCreated).DeviceID
	for _, u := range []string{
		"http://hooks.example/w", "https://127.0.0.1/w", "https://localhost/w", "https://10.1.2.3/w", "https://192.168.0.1/w",
		"https://169.254.169.254/latest/meta-data", "https://metadata.google.internal/", "https://[::1]/w", "https://[fd00::1]/w",
		"https://user:pw@hooks.example/w", "https://2130706433/w", "https://0x7f.0.0.1/w", "https://hooks.example/w#frag",
		"javascript:alert(1)", "file:///etc/passwd", "https://" + strings.Repeat("a", 600) + ".example/",
	} {
		st, h, body := phone.do(t, http.MethodPatch, "/reach/devices/"+id, `{"channels":[{"type":"webhook","url":"`+u+`"}]}`)
		m := requireErrorShape(t, u, st, h, body)
		require.Equal(t, http.StatusBadRequest, st, "%s: %s", u, body)
		require.Equal(t, "invalid_request", m["error"], u)
	}
	d, err := server.ReachStore(env.a.Server).Device(t.Context(), id)
	require.NoError(t, err)
	require.Len(t, d.Channels, 1)
	require.Equal(t, "inbox", string(d.Channels[0].Type))
}
