package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/reach/wake"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage/memory"
)

// TestRedteam_ReachLogsNoSecrets (RR09): through a cross-device sign-in
// answered with the app API (a wrong pick first), a User Questioning
// question answered and polled, a relayed interaction, and refusals
// (a bad token, a replayed answer), all logged at debug level on both
// instances, no log entry holds an access, refresh or ID token, an
// auth_session, a code, a reach_ref or deep link, a task or question id,
// a User Statement Token, the binding number, or the user's name or
// subject.
func TestRedteam_ReachLogsNoSecrets(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	clock := &servertest.Clock{}
	st := memory.New()
	t.Cleanup(func() { _ = st.Close() })
	hub := wake.NewMemory(wake.Options{})
	t.Cleanup(func() { _ = hub.Close() })
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	opts := servertest.Options{Store: st, HMACSecret: secret, SigningKey: key, Reach: server.ReachOptions{Hub: hub}, Clock: clock, Logger: log,
		Configure: func(c *config.Config) {
			reachConfig(c)
			nativeReachConfig(c)
			relayConfig(c)
		}}
	env := &reachEnv{a: servertest.Start(t, opts), b: servertest.Start(t, opts), store: st, key: key}

	var secrets []string
	keep := func(vs ...string) {
		for _, v := range vs {
			require.NotEmpty(t, v)
			secrets = append(secrets, v)
		}
	}
	phone := signInApp(t, env.b, "carol", "carol-pw", "")
	keep(phone.token.AccessToken, phone.token.IDToken)
	phone.register(t, "", http.StatusCreated)
	require.Zero(t, phoneEntries(t, phone))

	// Cross-device sign-in: a wrong pick, then the right one.
	d := newReachDevice(t, env.a, clock, "demo-app")
	first := d.start(t, "carol")
	r := d.reach(t, first.str("auth_session"))
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	id := taskID(t, r.header.Get("Location"))
	binding := r.str("binding_code")
	keep(first.str("auth_session"), id)
	st1, _, body := phone.do(t, http.MethodPost, "/reach/tasks/"+id+"/ack", "")
	require.Equal(t, http.StatusOK, st1, "%s", body)
	var view struct {
		Choices []int `json:"binding_choices"`
	}
	st1, _, body = phone.do(t, http.MethodGet, "/reach/tasks/"+id, "")
	require.Equal(t, http.StatusOK, st1, "%s", body)
	require.NoError(t, json.Unmarshal(body, &view))
	for _, c := range view.Choices {
		if fmt.Sprint(c) != binding {
			st1, _, body = phone.do(t, http.MethodPost, "/reach/tasks/"+id+"/response", fmt.Sprintf(`{"decision":"approve","binding_choice":%d,"amr":["pin"]}`, c))
			require.Equal(t, http.StatusBadRequest, st1, "%s", body)
			break
		}
	}
	approve := `{"decision":"approve","binding_choice":` + binding + `,"amr":["pin"]}`
	st1, _, body = phone.do(t, http.MethodPost, "/reach/tasks/"+id+"/response", approve)
	require.Equal(t, http.StatusOK, st1, "%s", body)
	st1, _, _ = phone.do(t, http.MethodPost, "/reach/tasks/"+id+"/response", approve)
	require.Equal(t, http.StatusConflict, st1)
	d.next()
	p := d.poll(t, r.header.Get("Location"))
	require.Equal(t, http.StatusOK, p.status, p.raw)
	keep(p.str("auth_session"))
	code := d.authorize(t, map[string][]string{"auth_session": {p.str("auth_session")}})
	require.Equal(t, http.StatusOK, code.status, code.raw)
	keep(code.str("authorization_code"))

	// The QR fallback: a deep link with its ref.
	d2 := newReachDevice(t, env.a, clock, "demo-app")
	f2 := d2.start(t, "dave")
	q := d2.reach(t, f2.str("auth_session"))
	require.Equal(t, http.StatusFailedDependency, q.status, q.raw)
	keep(f2.str("auth_session"), q.str("deep_link"), refOf(t, q.str("deep_link")), taskID(t, q.header.Get("Location")))

	// A question, answered through the app API and polled.
	uqTok := userQuestionToken(t, env.a, "carol", "carol-pw")
	keep(uqTok)
	req, err := http.NewRequest(http.MethodPost, env.a.URL+server.PathUQQuestions, strings.NewReader(`{"question_to_display":"Pay 12 EUR to Shop?","statements_to_display":["Yes","No"],"wished_acr":"app"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+uqTok)
	req.Header.Set("Content-Type", "application/json")
	a := do(t, req)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	qid := a.str("question_id")
	keep(qid)
	st1, _, body = phone.do(t, http.MethodGet, "/reach/inbox?wait=0", "")
	require.Equal(t, http.StatusOK, st1, "%s", body)
	var page struct {
		Entries []struct {
			Task string `json:"task"`
			Kind string `json:"kind"`
		} `json:"entries"`
	}
	require.NoError(t, json.Unmarshal(body, &page))
	qtask := ""
	for _, e := range page.Entries {
		if e.Kind == "question" {
			qtask = e.Task
		}
	}
	require.NotEmpty(t, qtask)
	keep(qtask)
	st1, _, body = phone.do(t, http.MethodPost, "/reach/tasks/"+qtask+"/ack", "")
	require.Equal(t, http.StatusOK, st1, "%s", body)
	st1, _, body = phone.do(t, http.MethodPost, "/reach/tasks/"+qtask+"/response", `{"decision":"answer","statement":"Yes","amr":["pin"]}`)
	require.Equal(t, http.StatusOK, st1, "%s", body)
	req, err = http.NewRequest(http.MethodGet, env.b.URL+server.PathUQPolling+"?question_id="+qid, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+uqTok)
	pq := do(t, req)
	require.Equal(t, http.StatusOK, pq.status, pq.raw)
	keep(pq.str("user_statement_token"))

	// A relayed interaction, and a refused token.
	rc := signInRelay(t, env.a, clock, "carol", "carol-pw", "")
	keep(rc.token.AccessToken)
	ri := rc.call(t, env.a, http.MethodPost, relayPath, relayBody(nil))
	require.Equal(t, http.StatusAccepted, ri.status, ri.raw)
	keep(taskIDOf(t, env.a, ri))
	bad := rtEndpoint{method: http.MethodGet, path: "/reach/devices"}
	st1, _, _ = bad.send(t, env.a, bearerCred("refresh", phone.token.AccessToken+"x"))
	require.Equal(t, http.StatusUnauthorized, st1)
	keep(relayCode)

	require.NotZero(t, logs.Len())
	users := []string{"carol", "dave"}
	for _, e := range logs.All() {
		b, err := json.Marshal(e.ContextMap())
		require.NoError(t, err)
		line := e.Message + " " + string(b)
		for _, s := range secrets {
			require.NotContains(t, line, s, "a secret in the log: %s", line)
		}
		for _, u := range users {
			require.NotContains(t, strings.ToLower(line), `"`+u+`"`, "a user in the log: %s", line)
		}
		for k, v := range e.ContextMap() {
			require.NotContains(t, strings.ToLower(k), "binding", line)
			require.NotEqual(t, binding, fmt.Sprint(v), "the binding number in field %s: %s", k, line)
		}
	}
}
