package server_test

import (
	"encoding/json"
	"github.com/fedas/fedas/storage"
	"net/http"
	"strings"
	"testing"
	"time"

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
	d, err := env.store.(storage.ReachStore).Device(t.Context(), id)
	require.NoError(t, err)
	require.Len(t, d.Channels, 1)
	require.Equal(t, "inbox", string(d.Channels[0].Type))
}

// TestRedteam_UQOtherUsersQuestion (RR14): a question asked with a
// user's token is that user's: the same client's token for another user
// (another installation of a public app) polling its question_id gets
// invalid_question_id exactly as for an unknown one, before and after
// the answer, and the
// asker's poll then gets the User Statement Token; a client-credentials
// question is polled by the client's tokens.
func TestRedteam_UQOtherUsersQuestion(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := newReachEnv(t, b.store(t), reachEnvOptions{edit: redteamConfig})
			phone := signInApp(t, env.b, "carol", "carol-pw", "")
			phone.register(t, "", http.StatusCreated)
			require.Zero(t, phoneEntries(t, phone))
			carolTok := userQuestionToken(t, env.a, "carol", "carol-pw")
			aliceTok := userQuestionToken(t, env.a, "alice", "wonderland")
			cc := ccToken(t, env.a, "rt-cc", rtCCSecret, "question")
			post := func(tok, body string) reply {
				req, err := http.NewRequest(http.MethodPost, env.a.URL+server.PathUQQuestions, strings.NewReader(body))
				require.NoError(t, err)
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/json")
				return do(t, req)
			}
			pollQ := func(tok, qid string) reply {
				req, err := http.NewRequest(http.MethodGet, env.b.URL+server.PathUQPolling+"?question_id="+qid, nil)
				require.NoError(t, err)
				req.Header.Set("Authorization", "Bearer "+tok)
				return do(t, req)
			}
			a := post(carolTok, `{"question_to_display":"Pay 12 EUR?","statements_to_display":["Yes","No"],"wished_acr":"app"}`)
			require.Equal(t, http.StatusOK, a.status, a.raw)
			qid := a.str("question_id")
			other := "A"
			if qid[0] == 'A' {
				other = "B"
			}
			unknown := pollQ(carolTok, other+qid[1:])
			require.Equal(t, http.StatusBadRequest, unknown.status, unknown.raw)
			require.Equal(t, "invalid_question_id", unknown.str("error"))
			for name, tok := range map[string]string{"alice": aliceTok} {
				r := pollQ(tok, qid)
				require.Equal(t, unknown.status, r.status, "%s: %s", name, r.raw)
				require.Equal(t, unknown.raw, r.raw, name)
			}
			// The app answers; only carol's token gets the UST.
			st, _, body := phone.do(t, http.MethodGet, "/reach/inbox?wait=0", "")
			require.Equal(t, http.StatusOK, st, "%s", body)
			var page struct {
				Entries []struct {
					Task string `json:"task"`
				} `json:"entries"`
			}
			require.NoError(t, json.Unmarshal(body, &page))
			require.Len(t, page.Entries, 1)
			task := page.Entries[0].Task
			st, _, body = phone.do(t, http.MethodPost, "/reach/tasks/"+task+"/ack", "")
			require.Equal(t, http.StatusOK, st, "%s", body)
			st, _, body = phone.do(t, http.MethodPost, "/reach/tasks/"+task+"/response", `{"decision":"answer","statement":"Yes","amr":["pin"]}`)
			require.Equal(t, http.StatusOK, st, "%s", body)
			r := pollQ(aliceTok, qid)
			require.Equal(t, unknown.raw, r.raw, "alice after the answer")
			r = pollQ(carolTok, qid)
			require.Equal(t, http.StatusOK, r.status, r.raw)
			require.NotEmpty(t, r.str("user_statement_token"))

			// A client-credentials question: the client's own token polls.
			a = post(cc, `{"question_to_display":"Pay 12 EUR?","statements_to_display":["Yes","No"],"wished_acr":"app","user_id_type":"sub","user_id":"carol"}`)
			require.Equal(t, http.StatusOK, a.status, a.raw)
			r = pollQ(cc, a.str("question_id"))
			require.Equal(t, http.StatusNotModified, r.status, r.raw)
		})
	}
}

// TestRedteam_UQStoreRefusesTask (RR16): a question the store cannot
// keep — here its lifetime, since this instance's clock runs 6 minutes
// ahead of the store's — is a 400 invalid_request with no-store, never a
// 500, and nothing is delivered (memory, Redis).
func TestRedteam_UQStoreRefusesTask(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := newUQEnv(t, b.store(t), uqEnvOptions{})
			tok := ccToken(t, env.a, "uq-backend", uqBackendSecret, "question")
			env.clock.Advance(6 * time.Minute)
			st, h, m := ask(t, env.a, tok, question("email", uqCarolEmail))
			require.Equal(t, http.StatusBadRequest, st, "%v", m)
			require.Equal(t, "invalid_request", m["error"])
			require.Equal(t, "no-store", h.Get("Cache-Control"))
		})
	}
}
