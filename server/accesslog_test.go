package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fedas/fedas/accesslog"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/server/servertest"
)

// jsonLog is a zap logger writing JSON lines, as fedas serve writes them
// (production encoder, ISO 8601 times, info level), into a buffer.
type jsonLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *jsonLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *jsonLog) Sync() error { return nil }

func newJSONLog() (*zap.Logger, *jsonLog) {
	l := &jsonLog{}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(ec), l, zap.InfoLevel)), l
}

// logLine is one parsed line with its raw text.
type logLine struct {
	raw    string
	fields map[string]any
}

func (l logLine) str(k string) string { s, _ := l.fields[k].(string); return s }

// lines parses every line; each must be a JSON object with an ISO 8601
// timestamp.
func (l *jsonLog) lines(tb testing.TB) []logLine {
	tb.Helper()
	l.mu.Lock()
	text := l.buf.String()
	l.mu.Unlock()
	var out []logLine
	for _, raw := range strings.Split(strings.TrimSpace(text), "\n") {
		if raw == "" {
			continue
		}
		var f map[string]any
		require.NoError(tb, json.Unmarshal([]byte(raw), &f), "not a JSON line: %s", raw)
		ts, _ := f["ts"].(string)
		_, err := time.Parse("2006-01-02T15:04:05.000Z0700", ts)
		require.NoError(tb, err, "ts %q is not ISO 8601: %s", ts, raw)
		out = append(out, logLine{raw: raw, fields: f})
	}
	return out
}

// where returns the lines whose logger name ends with suffix (".access"
// matches "access" and "….access") and, when id is not "", whose
// request_id is id.
func where(ls []logLine, suffix, id string) []logLine {
	var out []logLine
	for _, l := range ls {
		name := l.str("logger")
		if (strings.HasSuffix(name, suffix) || "."+name == suffix) && (id == "" || l.str("request_id") == id) {
			out = append(out, l)
		}
	}
	return out
}

func withID(id string) func(*http.Request) {
	return func(r *http.Request) {
		if id != "" {
			r.Header.Set(accesslog.HeaderRequestID, id)
		}
	}
}

// TestAccessLog_RequestID: a well-formed X-Request-Id is kept, anything
// else is replaced by a generated one; either way the response echoes it,
// the request's access line and its security event carry it, and no other
// request's lines do.
func TestAccessLog_RequestID(t *testing.T) {
	log, out := newJSONLog()
	in := wrap(servertest.Start(t, servertest.Options{Logger: log, Configure: func(c *config.Config) {
		testConfig(c)
		c.Limits.Lockout.AccountIPFreeFailures = 100 // eight wrong passwords, none delayed
	}}))
	for _, tc := range []struct {
		name, sent string
		kept       bool
	}{
		{"well-formed", "req-1.A_z", true},
		{"128 characters", strings.Repeat("a", 128), true},
		{"absent", "", false},
		{"129 characters", strings.Repeat("b", 129), false},
		{"space", "a b", false},
		{"slash", "a/b", false},
		{"quote", `a"b`, false},
		{"non-ASCII", "réq", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := in.initial(t, "demo-app", nil)
			r = post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "username": {"carol"}, "password": {"wrong-password"}}, withID(tc.sent))
			require.Equal(t, http.StatusForbidden, r.status, r.raw)
			id := r.header.Get(accesslog.HeaderRequestID)
			require.True(t, accesslog.ValidID(id), "echoed id %q", id)
			if tc.kept {
				require.Equal(t, tc.sent, id)
			} else {
				require.NotEqual(t, tc.sent, id)
				require.Len(t, id, 16, "generated ids are 12 random bytes, base64url")
			}
			ls := out.lines(t)
			access := where(ls, ".access", id)
			require.Len(t, access, 1, "one access line for the request")
			a := access[0]
			require.Equal(t, "info", a.str("level"))
			require.Equal(t, "request", a.str("msg"))
			require.Equal(t, "POST", a.str("method"))
			require.Equal(t, "/native/authorize", a.str("route"))
			require.Equal(t, float64(http.StatusForbidden), a.fields["status"])
			require.Equal(t, "127.0.0.1", a.str("remote"))
			require.Equal(t, "demo-app", a.str("client_id"))
			require.Equal(t, "challenge", a.str("outcome"))
			require.Equal(t, "insufficient_authorization", a.str("error"))
			require.Contains(t, a.fields, "took")
			ev := where(ls, ".event", id)
			require.Len(t, ev, 1, "the request's sign_in.failure carries its id")
			require.Equal(t, "sign_in.failure", ev[0].str("event"))
			var all []logLine
			for _, l := range ls {
				if l.str("request_id") == id {
					all = append(all, l)
				}
			}
			require.Len(t, all, 2, "no other line has this request's id")
		})
	}
}

// TestLogs_FlowJSON: the JSON lines of a federated and a local flow on two
// servers. Every line is JSON with an ISO 8601 time; every request has
// exactly one access line with its fields; every security event has the
// schema of docs/operations.md "Events" and the id of the request that
// caused it; and no logged value holds a password, a code, a token, an
// auth_session or a request_uri.
func TestLogs_FlowJSON(t *testing.T) {
	log, out := newJSONLog()
	key := newFedKey(t, "as1-key")
	as2 := wrap(servertest.Start(t, servertest.Options{Logger: log, Configure: func(c *config.Config) {
		testConfig(c)
		c.Clients = append(c.Clients, federatingClient("as1", key, true))
	}}))
	as1 := wrap(servertest.Start(t, servertest.Options{Logger: log, Configure: func(c *config.Config) {
		testConfig(c)
		c.Downstreams = append(c.Downstreams, downstreamOf("as2", as2.URL, "as1", key))
		emailPrompt(c, "as2.example", "as2")
	}}))

	secrets := []string{"carol-pw", "wrong-password"}
	keep := func(r reply) reply {
		for _, k := range []string{"auth_session", "authorization_code", "access_token", "refresh_token", "id_token", "request_uri"} {
			if v := r.str(k); v != "" {
				secrets = append(secrets, v)
			}
		}
		if fb := r.str("federation_body"); fb != "" {
			q, err := url.ParseQuery(fb)
			require.NoError(t, err)
			secrets = append(secrets, q.Get("request_uri"))
		}
		return r
	}
	// The federated flow, one given request id per step.
	r, pk := as1.initial(t, "demo-app", nil)
	keep(r)
	fed := keep(post(t, as1.native(), url.Values{"auth_session": {r.str("auth_session")}, "email": {"carol@as2.example"}}, withID("fed-2")))
	requireOAuthError(t, fed, http.StatusBadRequest, "federate")
	r = keep(postBody(t, fed.str("federation_uri"), "application/x-www-form-urlencoded", fed.str("federation_body"), withID("fed-3")))
	r = keep(post(t, as2.native(), url.Values{"auth_session": {r.str("auth_session")}, "username": {"carol"}, "password": {"carol-pw"}}, withID("fed-4")))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	r = keep(post(t, fed.str("response_uri"), url.Values{"auth_session": {fed.str("auth_session")}, "authorization_code": {r.str("authorization_code")}}, withID("fed-5")))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	code := r.str("authorization_code")
	tok := keep(post(t, as1.token(), url.Values{"grant_type": {"authorization_code"}, "client_id": {"demo-app"}, "code": {code}, "code_verifier": {pk.Verifier}}, withID("fed-6")))
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	// A replayed code and refused client credentials.
	requireOAuthError(t, post(t, as1.token(), url.Values{"grant_type": {"authorization_code"}, "client_id": {"demo-app"}, "code": {code}, "code_verifier": {pk.Verifier}}, withID("fed-7")),
		http.StatusBadRequest, "invalid_grant")
	requireOAuthError(t, post(t, as1.token(), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.str("refresh_token")}}, basic("fp-conf", "wrong-password"), withID("fed-8")),
		http.StatusUnauthorized, "invalid_client")
	// A local flow on AS2 with generated ids: a wrong password first.
	r, _ = as2.initial(t, "demo-app", nil)
	r = keep(post(t, as2.native(), url.Values{"auth_session": {keep(r).str("auth_session")}, "username": {"carol"}, "password": {"wrong-password"}}))
	r = keep(post(t, as2.native(), url.Values{"auth_session": {r.str("auth_session")}, "username": {"carol"}, "password": {"carol-pw"}}))
	require.Equal(t, http.StatusOK, r.status, r.raw)

	ls := out.lines(t)
	for _, l := range ls {
		for _, s := range secrets {
			require.False(t, len(s) >= 6 && strings.Contains(l.raw, s), "a secret (%q…) reached the logs: %s", s[:6], l.raw)
		}
	}
	// Every access line has the access schema; request ids are unique.
	ids := map[string]bool{}
	for _, a := range where(ls, ".access", "") {
		require.Equal(t, "request", a.str("msg"))
		for _, k := range []string{"method", "route", "status", "took", "request_id", "remote"} {
			require.Contains(t, a.fields, k, a.raw)
		}
		for k := range a.fields {
			require.Contains(t, []string{"level", "ts", "logger", "msg", "method", "route", "status", "took", "request_id", "remote", "client_id", "outcome", "error"}, k, a.raw)
		}
		id := a.str("request_id")
		require.True(t, accesslog.ValidID(id), a.raw)
		require.False(t, ids[id], "request id %s on two access lines", id)
		ids[id] = true
	}
	for _, id := range []string{"fed-2", "fed-3", "fed-4", "fed-5", "fed-6", "fed-7", "fed-8"} {
		require.True(t, ids[id], "access line of %s", id)
	}
	fedLine := where(ls, ".access", "fed-2")[0]
	require.Equal(t, "federate", fedLine.str("outcome"))
	require.Equal(t, "demo-app", fedLine.str("client_id"))
	require.Equal(t, float64(400), fedLine.fields["status"])

	// Events: the schema, and the request that caused each.
	type ev struct{ event, method, client, downstream, reason, grant, call, id string }
	var got []ev
	for _, e := range where(ls, ".event", "") {
		require.Equal(t, e.str("event"), e.str("msg"), e.raw)
		for k := range e.fields {
			require.Contains(t, []string{"level", "ts", "logger", "msg", "event", "method", "client_id", "downstream", "reason", "grant_type", "scope", "call", "duration", "request_id"}, k, e.raw)
		}
		require.Equal(t, e.str("call") != "", e.fields["duration"] != nil, "duration only with a call: %s", e.raw)
		id := e.str("request_id")
		require.True(t, ids[id], "an event of a request without an access line: %s", e.raw)
		if !strings.HasPrefix(id, "fed-") {
			id = "generated"
		}
		got = append(got, ev{e.str("event"), e.str("method"), e.str("client_id"), e.str("downstream"), e.str("reason"), e.str("grant_type"), e.str("call"), id})
	}
	require.Equal(t, []ev{
		{event: "federation.started", client: "demo-app", downstream: "as2", call: "push", id: "fed-2"},
		{event: "sign_in.success", method: "password", client: "as1", id: "fed-4"},
		// AS1 redeems AS2's code while serving fed-5: AS2's token request
		// has an id of its own.
		{event: "token.issued", client: "as1", grant: "authorization_code", id: "generated"},
		{event: "federation.completed", client: "demo-app", downstream: "as2", call: "redeem", id: "fed-5"},
		{event: "sign_in.success", method: "federation", client: "demo-app", downstream: "as2", id: "fed-5"},
		{event: "token.issued", client: "demo-app", grant: "authorization_code", id: "fed-6"},
		{event: "code.reuse", client: "demo-app", reason: "redeemed", id: "fed-7"},
		{event: "client_auth.failure", method: "client_secret_basic", client: "fp-conf", reason: "invalid_client", id: "fed-8"},
		{event: "sign_in.failure", method: "password", client: "demo-app", reason: "wrong_answer", id: "generated"},
		{event: "sign_in.success", method: "password", client: "demo-app", id: "generated"},
	}, got)
	for _, e := range where(ls, ".event", "") {
		want := "info"
		if strings.Contains(e.str("event"), "failure") || e.str("event") == "code.reuse" {
			want = "warn"
		}
		require.Equal(t, want, e.str("level"), e.raw)
	}
}
