package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage"
)

// This file is the harness of the User Questioning tests (uq_test.go):
// a deployment of two instances with reach on, a client-credentials
// client (uq-backend), a Pushed-To-Client one (uq-push) whose
// notification endpoint is a test server, carol with an email and a
// phone number and our app on her phone (signed in and registered over
// the app API at instance b, the other one than the questions' waiter),
// and alice without a device.

const (
	uqBackendSecret = "uq-backend-secret"
	uqPushSecret    = "uq-push-secret"
	uqCarolEmail    = "carol@example.com"
	uqCarolPhone    = "+33612345678"
	uqNotifyToken   = "vO4n2DAeRrcWE0VAlo4Iqz7x"
)

// uqNotifySink is a client notification endpoint (-10 §4.3) that
// records every POST and answers the statuses of fail first.
type uqNotifySink struct {
	srv  *httptest.Server
	mu   sync.Mutex
	fail []int
	got  chan uqNote
}

type uqNote struct {
	auth string
	body map[string]any
}

func newNotifySink(tb testing.TB) *uqNotifySink {
	s := &uqNotifySink{got: make(chan uqNote, 16)}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		s.got <- uqNote{auth: r.Header.Get("Authorization"), body: m}
		s.mu.Lock()
		st := http.StatusOK
		if len(s.fail) > 0 {
			st, s.fail = s.fail[0], s.fail[1:]
		}
		s.mu.Unlock()
		w.WriteHeader(st)
	}))
	tb.Cleanup(s.srv.Close)
	return s
}

func (s *uqNotifySink) failNext(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = append(s.fail, statuses...)
}

// next returns the next notification received (the test's deadline
// bounds the wait).
func (s *uqNotifySink) next(tb testing.TB) uqNote {
	tb.Helper()
	select {
	case n := <-s.got:
		return n
	case <-time.After(30 * time.Second):
		tb.Fatal("no notification arrived")
		return uqNote{}
	}
}

type uqEnv struct {
	*reachEnv
	sink  *uqNotifySink
	clock *servertest.Clock
	// phone is carol's app, at instance b (a with one).
	phone *appPhone
}

type uqEnvOptions struct {
	edit  func(*config.Config)
	reach server.ReachOptions
	one   bool
	// deadline is the instances' request deadline (zero: 10 s).
	deadline time.Duration
}

// newUQEnv starts the deployment on st and registers carol's device
// through the app API (inbox channel, present).
func newUQEnv(tb testing.TB, st storage.Store, o uqEnvOptions) *uqEnv {
	tb.Helper()
	sink := newNotifySink(tb)
	clock := &servertest.Clock{}
	env := newReachEnv(tb, st, reachEnvOptions{one: o.one, reach: o.reach, clock: clock, deadline: o.deadline, edit: func(c *config.Config) {
		c.Clients = append(c.Clients,
			config.Client{ID: "uq-backend", Name: "Bank back office", TokenEndpointAuthMethod: "client_secret_basic",
				SecretSHA256: config.SecretDigest(uqBackendSecret), Scopes: []string{config.ScopeQuestion}, GrantTypes: []string{"client_credentials"}},
			config.Client{ID: "uq-push", Name: "Bank notifier", TokenEndpointAuthMethod: "client_secret_basic",
				SecretSHA256: config.SecretDigest(uqPushSecret), Scopes: []string{config.ScopeQuestion}, GrantTypes: []string{"client_credentials"},
				Reach: &config.ClientReach{NotificationEndpoint: sink.srv.URL + "/notify"}},
		)
		for i := range c.Users {
			if c.Users[i].Username == "carol" {
				c.Users[i].Claims = map[string]string{"email": uqCarolEmail, "phone_number": uqCarolPhone}
			}
		}
		if o.edit != nil {
			o.edit(c)
		}
	}})
	e := &uqEnv{reachEnv: env, sink: sink, clock: clock}
	server.UQFastRetries(env.a.Server)
	if env.b != nil {
		server.UQFastRetries(env.b.Server)
	}
	at := env.b
	if at == nil {
		at = env.a
	}
	e.phone = newAppPhone(tb, at, clock, "carol", true, reach.KindQuestion)
	return e
}

// ccToken gets a client-credentials access token (RFC 6749 §4.4).
func ccToken(tb testing.TB, in *servertest.Instance, clientID, secret, scope string) string {
	tb.Helper()
	st, _, body := ccRequest(tb, in, clientID, secret, url.Values{"grant_type": {"client_credentials"}, "scope": {scope}})
	require.Equal(tb, http.StatusOK, st, "%s", body)
	return body["access_token"].(string)
}

func ccRequest(tb testing.TB, in *servertest.Instance, clientID, secret string, form url.Values) (int, http.Header, map[string]any) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, in.URL+server.PathToken, strings.NewReader(form.Encode()))
	require.NoError(tb, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(clientID, secret)
	}
	return uqDo(tb, req)
}

// userQuestionToken signs user in to demo-app and returns its (bearer)
// access token with scope question.
func userQuestionToken(tb testing.TB, in *servertest.Instance, user, password string) string {
	tb.Helper()
	cl := in.Client(tb, "demo-app")
	ctx := context.Background()
	code, pk, err := cl.Authorize(ctx, url.Values{"scope": {"openid " + config.ScopeQuestion}}, userUI(user, password, ""))
	require.NoError(tb, err)
	tok, err := cl.Exchange(ctx, code, pk)
	require.NoError(tb, err)
	return tok.AccessToken
}

func uqDo(tb testing.TB, req *http.Request) (int, http.Header, map[string]any) {
	tb.Helper()
	resp, err := servertest.HTTP().Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	var m map[string]any
	if len(b) > 0 {
		require.NoError(tb, json.Unmarshal(b, &m), "%s", b)
	}
	return resp.StatusCode, resp.Header, m
}

// ask posts a question (-10 §4.1) with token (Bearer; "" sends none).
func ask(tb testing.TB, in *servertest.Instance, token string, body any) (int, http.Header, map[string]any) {
	tb.Helper()
	var raw string
	switch b := body.(type) {
	case string:
		raw = b
	default:
		j, err := json.Marshal(b)
		require.NoError(tb, err)
		raw = string(j)
	}
	req, err := http.NewRequest(http.MethodPost, in.URL+server.PathUQQuestions, strings.NewReader(raw))
	require.NoError(tb, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return uqDo(tb, req)
}

// mustAsk asks and returns the question_id.
func mustAsk(tb testing.TB, in *servertest.Instance, token string, body any) string {
	tb.Helper()
	st, _, m := ask(tb, in, token, body)
	require.Equal(tb, http.StatusOK, st, "%v", m)
	require.Len(tb, m, 1)
	return m["question_id"].(string)
}

// poll polls a question (-10 §4.2); hdr adds headers as given (no
// canonicalization: Client_timeout keeps its underscore).
func poll(tb testing.TB, in *servertest.Instance, token, qid string, hdr map[string]string) (int, http.Header, map[string]any) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, in.URL+server.PathUQPolling+"?question_id="+url.QueryEscape(qid), nil)
	require.NoError(tb, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header[k] = []string{v}
	}
	return uqDo(tb, req)
}

// question is a request body for a client-credentials token.
func question(userIDType, userID string) map[string]any {
	m := map[string]any{"question_to_display": "Do you allow the transfer of 120 EUR to Bob?",
		"statements_to_display": []string{"Yes", "No"}, "wished_acr": "app"}
	if userIDType != "" {
		m["user_id_type"], m["user_id"] = userIDType, userID
	}
	return m
}

// answerQuestion answers qid as carol's app does, over the app API at
// the phone's instance: the question's task arrives in the device's
// inbox, the app shows it (GET /reach/tasks/{id}: the question and its
// statements), opens it (ack) and sends the answer — the statement
// with the amr of the local user verification, or deny when statement
// is "" — which must be recorded (200 answered or denied). The question
// id names its task through the UQTaskID seam: the app never sees a
// question_id, only the task, and the test must know which task it is.
func answerQuestion(tb testing.TB, p *appPhone, qid, statement string, amr ...string) {
	tb.Helper()
	if len(amr) == 0 {
		amr = []string{"hwk", "face"}
	}
	id := server.UQTaskID(p.in.Server, qid)
	require.True(tb, reach.ValidID(id), "a question id names a task")
	p.awaitTask(tb, id)
	v := p.view(tb, id)
	require.Equal(tb, string(reach.KindQuestion), v["kind"])
	require.NotEmpty(tb, v["question"])
	p.ack(tb, id)
	ans, want := map[string]any{"decision": "deny"}, "denied"
	if statement != "" {
		require.Contains(tb, v["statements"], statement, "the app shows the statement it answers")
		ans, want = map[string]any{"decision": "answer", "statement": statement, "amr": amr}, "answered"
	}
	st, body := p.respond(tb, id, ans)
	require.Equal(tb, http.StatusOK, st, "%v", body)
	require.Equal(tb, map[string]any{"status": want}, body)
}

// pollGen reads the poll generation stored in a question's task (the
// gate's state): how a test knows a poll was admitted and is held.
func pollGen(tb testing.TB, env *uqEnv, qid string) uint64 {
	tb.Helper()
	t, err := env.store.(storage.ReachStore).Task(context.Background(), server.UQTaskID(env.a.Server, qid))
	require.NoError(tb, err)
	var rec struct {
		F struct {
			Gen uint64 `json:"gen"`
		} `json:"f"`
	}
	require.NoError(tb, json.Unmarshal(t.Result, &rec))
	return rec.F.Gen
}

// waitHeld waits until the question has been admitted n polls.
func waitHeld(tb testing.TB, env *uqEnv, qid string, n uint64) {
	tb.Helper()
	require.Eventually(tb, func() bool { return pollGen(tb, env, qid) >= n }, 20*time.Second, 5*time.Millisecond)
}
