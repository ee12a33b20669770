package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/netguard"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage/redistest"
	"github.com/fedas/fedas/uq"
)

// TestUQ_ClientCredentials (RQ01): the client_credentials grant is
// served to a confidential client that lists it, with the scopes it
// asked among its own, no refresh token and no user; a public client, a
// client without the grant and a scope outside the client's are refused;
// config refuses the grant on a public client.
func TestUQ_ClientCredentials(t *testing.T) {
	env := newUQEnv(t, nil, uqEnvOptions{one: true})
	st, _, body := ccRequest(t, env.a, "uq-backend", uqBackendSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {config.ScopeQuestion}})
	require.Equal(t, http.StatusOK, st, "%v", body)
	require.Equal(t, config.ScopeQuestion, body["scope"])
	require.Equal(t, "bearer", strings.ToLower(body["token_type"].(string)))
	require.NotContains(t, body, "refresh_token")
	require.NotContains(t, body, "id_token")

	st, _, body = ccRequest(t, env.a, "uq-backend", uqBackendSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}})
	require.Equal(t, http.StatusBadRequest, st)
	require.Equal(t, "invalid_scope", body["error"])
	// A public client (demo-app) cannot use the grant.
	st, _, body = ccRequest(t, env.a, "demo-app", "", url.Values{"grant_type": {"client_credentials"}, "client_id": {"demo-app"}, "scope": {config.ScopeQuestion}})
	require.Equal(t, http.StatusBadRequest, st, "%v", body)
	require.Equal(t, "invalid_grant", body["error"])
	// A confidential client whose grant_types do not list it.
	st, _, body = ccRequest(t, env.a, "fp-conf", "fp-conf-secret", url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}})
	require.Equal(t, http.StatusBadRequest, st, "%v", body)
	require.Equal(t, "unauthorized_client", body["error"])

	c := config.Default()
	c.Clients = append(c.Clients, config.Client{ID: "pub-cc", TokenEndpointAuthMethod: "none", GrantTypes: []string{"client_credentials"}})
	require.ErrorContains(t, c.Validate(), "client_credentials needs a confidential client")
}

// TestUQ_PullAcrossInstances (RQ02): a question asked and polled at
// instance a is answered through instance b: 304 (no body) while
// pending, then 200 with a UST that verifies against the JWKS and
// carries exactly what was asked and answered — for a client-credentials
// token with each user_id_type (user_id echoed) and for carol's own
// token (no user_id). On memory and on Redis.
func TestUQ_PullAcrossInstances(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := newUQEnv(t, b.store(t), uqEnvOptions{})
			cc := ccToken(t, env.a, "uq-backend", uqBackendSecret, config.ScopeQuestion)
			user := userQuestionToken(t, env.a, "carol", "carol-pw")
			keys := uqKeys(t, env.a)
			for _, tc := range []struct {
				name, token, typ, id string
			}{
				{"email", cc, uq.UserIDEmail, uqCarolEmail},
				{"msisdn", cc, uq.UserIDMSISDN, uqCarolPhone},
				{"sub", cc, uq.UserIDSub, "carol"},
				{"user token", user, "", ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					body := question(tc.typ, tc.id)
					body["statements_to_display"] = []string{"Yes", "No", "Call me"}
					body["wished_acr"] = "phr"
					body["wished_amr"] = []string{"face", "hwk"}
					qid := mustAsk(t, env.a, tc.token, body)
					require.True(t, uq.ValidQuestionID(qid))
					st, h, m := poll(t, env.a, tc.token, qid, nil)
					require.Equal(t, http.StatusNotModified, st)
					require.Nil(t, m)
					require.Equal(t, "no-store", h.Get("Cache-Control"))

					before := time.Now().Unix()
					answerQuestion(t, env.phone, qid, "Call me", "hwk", "face")
					env.clock.Advance(time.Second)
					st, h, m = poll(t, env.a, tc.token, qid, nil)
					require.Equal(t, http.StatusOK, st, "%v", m)
					require.Equal(t, "no-store", h.Get("Cache-Control"))
					ust := m["user_statement_token"].(string)
					clientID := "uq-backend"
					if tc.token == user {
						clientID = "demo-app"
					}
					c, err := uq.Verify(ust, keys, uq.Expect{ClientID: clientID, QuestionID: qid, Issuer: env.a.URL,
						Question: body["question_to_display"].(string), Statements: []string{"Yes", "No", "Call me"}, UserID: tc.id, UserIDType: tc.typ})
					require.NoError(t, err)
					require.Equal(t, []string{clientID}, c.Audience)
					require.Equal(t, "carol", c.Subject)
					require.Equal(t, "Call me", c.Statement)
					require.Equal(t, []string{"hwk", "face"}, c.UsedAMR)
					require.Equal(t, "phr", c.UsedACR, "acr of the answer's amr (wished_acr met)")
					require.GreaterOrEqual(t, c.StatementDate, before-1)
					require.Equal(t, tc.id, c.UserID)
					require.Equal(t, tc.typ, c.UserIDType)
					// Exactly the -10 claims plus iat and jti; no key headers.
					parts := strings.Split(ust, ".")
					var claims, hdr map[string]any
					pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
					hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
					require.NoError(t, json.Unmarshal(pb, &claims))
					require.NoError(t, json.Unmarshal(hb, &hdr))
					want := []string{"question_id", "iss", "sub", "aud", "question_displayed", "displayed_statements", "statement",
						"statement_date", "used_amr", "used_acr", "iat", "jti"}
					if tc.id != "" {
						want = append(want, "user_id", "user_id_type")
					}
					require.ElementsMatch(t, want, keysOf(claims))
					require.ElementsMatch(t, []string{"alg", "kid", "typ"}, keysOf(hdr))
					require.Equal(t, "ES256", hdr["alg"])
					// Every poll answers a UST that verifies (the same claims).
					env.clock.Advance(time.Second)
					st, _, m = poll(t, env.b, tc.token, qid, nil)
					require.Equal(t, http.StatusOK, st)
					c2, err := uq.Verify(m["user_statement_token"].(string), keys, uq.Expect{ClientID: clientID, QuestionID: qid,
						Question: body["question_to_display"].(string), Statements: []string{"Yes", "No", "Call me"}, UserID: tc.id, UserIDType: tc.typ})
					require.NoError(t, err)
					require.Equal(t, c.JTI, c2.JTI)
				})
			}
		})
	}
}

func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestUQ_LongPollReleasedByAnswer (RQ03): a poll held with
// Client-Timeout (and with -10's Client_timeout spelling) at instance a
// returns the UST as soon as the answer is stored through instance b —
// the periodic re-check is switched off, so only the wake-up can release
// it before the hold ends (it would then answer 304). Memory and Redis.
func TestUQ_LongPollReleasedByAnswer(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			never := make(chan time.Time)
			env := newUQEnv(t, b.store(t), uqEnvOptions{reach: server.ReachOptions{Recheck: never}})
			cc := ccToken(t, env.a, "uq-backend", uqBackendSecret, config.ScopeQuestion)
			for _, header := range []string{"Client-Timeout", "Client_timeout"} {
				t.Run(header, func(t *testing.T) {
					qid := mustAsk(t, env.a, cc, question(uq.UserIDEmail, uqCarolEmail))
					type res struct {
						st int
						m  map[string]any
					}
					done := make(chan res, 1)
					go func() {
						st, _, m := poll(t, env.a, cc, qid, map[string]string{header: "25"})
						done <- res{st, m}
					}()
					waitHeld(t, env, qid, 1)
					answerQuestion(t, env.phone, qid, "Yes")
					r := <-done
					require.Equal(t, http.StatusOK, r.st, "%v", r.m)
					require.NotEmpty(t, r.m["user_statement_token"])
				})
			}
		})
	}
}

// TestUQ_Push (RQ04): a Pushed-To-Client question answered through
// instance b is POSTed to the client's notification endpoint with its
// client_notification_token as Bearer: the endpoint fails twice (500)
// and the third attempt delivers a UST that verifies; a refusal pushes
// user_refused_to_answer and an expiry timeout, each with question_id;
// and the push client may not poll (forbidden).
func TestUQ_Push(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := newUQEnv(t, b.store(t), uqEnvOptions{})
			tok := ccToken(t, env.a, "uq-push", uqPushSecret, config.ScopeQuestion)
			body := question(uq.UserIDSub, "carol")
			body["client_notification_token"] = uqNotifyToken
			qid := mustAsk(t, env.a, tok, body)

			env.sink.failNext(500, 500)
			answerQuestion(t, env.phone, qid, "No")
			for i := 0; i < 3; i++ {
				n := env.sink.next(t)
				require.Equal(t, "Bearer "+uqNotifyToken, n.auth, "attempt %d", i+1)
				if i < 2 {
					continue
				}
				_, err := uq.Verify(n.body["user_statement_token"].(string), uqKeys(t, env.a), uq.Expect{ClientID: "uq-push", QuestionID: qid,
					Question: body["question_to_display"].(string), Statements: []string{"Yes", "No"}, UserID: "carol", UserIDType: uq.UserIDSub})
				require.NoError(t, err)
			}

			qid2 := mustAsk(t, env.a, tok, body)
			answerQuestion(t, env.phone, qid2, "")
			n := env.sink.next(t)
			require.Equal(t, map[string]any{"question_id": qid2, "error": "user_refused_to_answer", "error_description": "The user refused to answer."}, n.body)

			// Past the question's lifetime on the deployment's clock, the
			// expiry timer instance a armed runs (UQExpiryTimersNow: the
			// timers run on real time, which the test clock does not drive).
			qid3 := mustAsk(t, env.a, tok, body)
			env.clock.Advance(config.DefaultReachQuestionTTL + time.Second)
			require.Equal(t, 1, server.UQExpiryTimersNow(env.a.Server), "qid3's timer, the only live question")
			n = env.sink.next(t)
			require.Equal(t, qid3, n.body["question_id"])
			require.Equal(t, "timeout", n.body["error"])
			require.Equal(t, "Bearer "+uqNotifyToken, n.auth)

			st, _, m := poll(t, env.a, tok, qid3, nil)
			require.Equal(t, http.StatusBadRequest, st)
			require.Equal(t, "forbidden", m["error"])
		})
	}
}

// TestUQ_NotificationEndpointSSRF (RQ05): a client_notification_endpoint
// on a loopback address is refused by configuration without
// dev.allow_loopback_http, and a private, link-local or metadata
// address always; at delivery the notifier checks the URL again with the
// same guard (uq.Notifier, netguard), so a refused destination gets no
// request.
func TestUQ_NotificationEndpointSSRF(t *testing.T) {
	for _, tc := range []struct {
		url      string
		loopback bool
	}{
		{"http://127.0.0.1:8080/notify", false},
		{"https://127.0.0.1/notify", false},
		{"https://10.0.0.7/notify", true},
		{"https://169.254.169.254/latest", true},
		{"https://[fd00::1]/notify", true},
		{"https://localhost/notify", false},
	} {
		c := config.Default()
		c.Dev.AllowLoopbackHTTP = tc.loopback
		c.Reach.Enabled = true
		c.Scopes = append(c.Scopes, config.ScopeQuestion)
		c.Clients = append(c.Clients, config.Client{ID: "n", TokenEndpointAuthMethod: "client_secret_basic", SecretSHA256: config.SecretDigest("x"),
			GrantTypes: []string{"client_credentials"}, Reach: &config.ClientReach{NotificationEndpoint: tc.url}})
		require.ErrorContains(t, c.Validate(), "client_notification_endpoint", tc.url)
	}
}

// TestUQ_ErrorCodes (RQ06): every error code of -10 provoked at the HTTP
// level, each 400 with an RFC 6749 body and no-store (503 with
// Retry-After for the outage), the rate limits with Retry-After.
func TestUQ_ErrorCodes(t *testing.T) {
	env := newUQEnv(t, nil, uqEnvOptions{edit: func(c *config.Config) {
		c.Reach.QuestionsPerMinute = 20
		c.Reach.PollsPerMinute = 40
		c.Reach.MaxLiveTasks, c.Reach.TasksPerUser = 50, 1000
		// A short lifetime, so that the clock advanced past it (expired
		// below) stays within what the store accepts for the questions
		// asked after: the store runs on real time.
		c.Reach.QuestionTTL = time.Minute
	}})
	cc := ccToken(t, env.a, "uq-backend", uqBackendSecret, config.ScopeQuestion)
	push := ccToken(t, env.a, "uq-push", uqPushSecret, config.ScopeQuestion)
	noScope := ccToken(t, env.a, "uq-backend", uqBackendSecret, "")
	user := userQuestionToken(t, env.a, "carol", "carol-pw")
	carol := question(uq.UserIDEmail, uqCarolEmail)
	with := func(m map[string]any, k string, v any) map[string]any {
		out := map[string]any{}
		for a, b := range m {
			out[a] = b
		}
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	denied := mustAsk(t, env.a, cc, carol)
	answerQuestion(t, env.phone, denied, "")
	// expired's lifetime passes on the deployment's clock before the
	// other questions are asked (they stay live); its poll then records
	// the expiry.
	expired := mustAsk(t, env.a, cc, carol)
	env.clock.Advance(time.Minute + time.Second)
	pushed := mustAsk(t, env.a, push, with(carol, "client_notification_token", uqNotifyToken))
	pending := mustAsk(t, env.a, cc, carol)
	other := mustAsk(t, env.a, user, question("", ""))

	type check struct {
		name string
		do   func() (int, http.Header, map[string]any)
		code string
	}
	askWith := func(tok string, b any) func() (int, http.Header, map[string]any) {
		return func() (int, http.Header, map[string]any) { return ask(t, env.a, tok, b) }
	}
	pollWith := func(tok, qid string, h map[string]string) func() (int, http.Header, map[string]any) {
		return func() (int, http.Header, map[string]any) { return poll(t, env.a, tok, qid, h) }
	}
	long := strings.Repeat("é", 257)
	table := []check{
		{"malformed body", askWith(cc, `{"question_to_display":`), "invalid_request"},
		{"user_id with a user token", askWith(user, carol), "invalid_request"},
		{"no user_id with a client token", askWith(cc, question("", "")), "invalid_request"},
		{"notification token from a pull client", askWith(cc, with(carol, "client_notification_token", uqNotifyToken)), "invalid_request"},
		{"push client without notification token", askWith(push, carol), "invalid_request"},
		{"question over 256 characters", askWith(cc, with(carol, "question_to_display", long)), "invalid_request"},
		{"statement over 64 characters", askWith(cc, with(carol, "statements_to_display", []string{"Yes", strings.Repeat("n", 65)})), "invalid_request"},
		{"one statement", askWith(cc, with(carol, "statements_to_display", []string{"Yes"})), "invalid_request"},
		{"no question_id", pollWith(cc, "", nil), "invalid_request"},
		{"bad Client-Timeout", pollWith(cc, pending, map[string]string{"Client-Timeout": "soon"}), "invalid_request"},
		{"ask without token", askWith("", carol), "unauthorized"},
		{"ask with a bad token", askWith("not-a-token", carol), "unauthorized"},
		{"poll without token", pollWith("", pending, nil), "unauthorized"},
		{"ask without the question scope", askWith(noScope, carol), "unauthorized"},
		{"poll without the question scope", pollWith(noScope, pending, nil), "unauthorized"},
		{"wished_acr unknown", askWith(cc, with(carol, "wished_acr", "loa4")), "no_suitable_method"},
		{"wished_amr unknown", askWith(cc, with(carol, "wished_amr", []string{"retina"})), "no_suitable_method"},
		{"unknown sub", askWith(cc, question(uq.UserIDSub, "nobody")), "unknown_user"},
		{"unknown email", askWith(cc, question(uq.UserIDEmail, "nobody@example.com")), "unknown_user"},
		{"user without a device", askWith(cc, question(uq.UserIDEmail, "alice@wonderland.example")), "unreachable_user"},
		{"refused", pollWith(cc, denied, nil), "user_refused_to_answer"},
		{"expired", pollWith(cc, expired, nil), "timeout"},
		{"push client polls", pollWith(push, pushed, nil), "forbidden"},
		{"unknown question", pollWith(cc, uq.NewQuestionID(), nil), "invalid_question_id"},
		{"garbage question", pollWith(cc, "984dcc7d3d4d4b0f9f8022e344f9", nil), "invalid_question_id"},
		{"another client's question", pollWith(cc, other, nil), "invalid_question_id"},
	}
	for _, tc := range table {
		t.Run(tc.name, func(t *testing.T) {
			st, h, m := tc.do()
			require.Equal(t, http.StatusBadRequest, st, "%v", m)
			require.Equal(t, tc.code, m["error"], "%v", m)
			require.Equal(t, "no-store", h.Get("Cache-Control"))
			require.Empty(t, h.Values("WWW-Authenticate"), "a 400 carries no RFC 6750 challenge")
		})
	}
	// The boundaries are accepted: 256 and 64 characters.
	mustAsk(t, env.a, cc, with(with(carol, "question_to_display", strings.Repeat("é", 256)), "statements_to_display", []string{"Yes", strings.Repeat("n", 64)}))

	t.Run("high_rate_question", func(t *testing.T) {
		st, _, _ := poll(t, env.a, cc, pending, nil)
		require.Equal(t, http.StatusNotModified, st)
		st, h, m := poll(t, env.b, cc, pending, nil)
		require.Equal(t, http.StatusBadRequest, st)
		require.Equal(t, "high_rate_question", m["error"])
		require.Equal(t, "1", h.Get("Retry-After"))
	})
	t.Run("duplicate_requests", func(t *testing.T) {
		env.clock.Advance(time.Second)
		done := make(chan map[string]any, 1)
		gen := pollGen(t, env, pending)
		go func() {
			_, _, m := poll(t, env.a, cc, pending, map[string]string{"Client-Timeout": "25"})
			done <- m
		}()
		waitHeld(t, env, pending, gen+1)
		env.clock.Advance(time.Second)
		st, _, _ := poll(t, env.b, cc, pending, nil)
		require.Equal(t, http.StatusNotModified, st, "the newest poll is served")
		m := <-done
		require.Equal(t, "duplicate_requests", m["error"], "the older poll is told")
	})
	t.Run("high_rate_client", func(t *testing.T) {
		var h http.Header
		var m map[string]any
		for i := 0; i < 25 && m["error"] != "high_rate_client"; i++ {
			_, h, m = ask(t, env.a, cc, question(uq.UserIDSub, "nobody"))
		}
		require.Equal(t, "high_rate_client", m["error"])
		require.NotEmpty(t, h.Get("Retry-After"))
		// Polls have their own budget, across all the client's questions.
		m = nil
		for i := 0; i < 60 && m["error"] != "high_rate_client"; i++ {
			_, h, m = poll(t, env.b, cc, uq.NewQuestionID(), nil)
		}
		require.Equal(t, "high_rate_client", m["error"], "polls have their own budget")
		require.NotEmpty(t, h.Get("Retry-After"))
	})
}

// TestUQ_FoldUnknownUserAndOutage (RQ07): with reach.fold_unknown_user
// an unknown user_id answers unreachable_user (no account oracle); with
// Redis down both endpoints answer 503 temporarily_unavailable with
// Retry-After.
func TestUQ_FoldUnknownUserAndOutage(t *testing.T) {
	rs := redistest.Start(t)
	env := newUQEnv(t, redisStore(t, rs.URL()), uqEnvOptions{one: true, reach: server.ReachOptions{NoRedisHub: true},
		edit: func(c *config.Config) { c.Reach.FoldUnknownUser = true }})
	cc := ccToken(t, env.a, "uq-backend", uqBackendSecret, config.ScopeQuestion)
	st, _, m := ask(t, env.a, cc, question(uq.UserIDSub, "nobody"))
	require.Equal(t, http.StatusBadRequest, st)
	require.Equal(t, "unreachable_user", m["error"])
	qid := mustAsk(t, env.a, cc, question(uq.UserIDSub, "carol"))

	rs.Stop()
	for _, do := range []func() (int, http.Header, map[string]any){
		func() (int, http.Header, map[string]any) { return ask(t, env.a, cc, question(uq.UserIDSub, "carol")) },
		func() (int, http.Header, map[string]any) { return poll(t, env.a, cc, qid, nil) },
	} {
		st, h, m := do()
		require.Equal(t, http.StatusServiceUnavailable, st, "%v", m)
		require.Equal(t, "temporarily_unavailable", m["error"])
		require.Equal(t, "1", h.Get("Retry-After"))
	}
}

// TestUQ_Metadata (RQ08): the discovery document carries -10 §3's
// members: both endpoints, amr_list and acr_list, and question in
// scopes_supported; client_credentials in grant_types_supported.
func TestUQ_Metadata(t *testing.T) {
	env := newUQEnv(t, nil, uqEnvOptions{one: true})
	resp, err := servertest.HTTP().Get(env.a.URL + "/.well-known/openid-configuration")
	require.NoError(t, err)
	defer resp.Body.Close()
	var m map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	require.Equal(t, env.a.URL+server.PathUQQuestions, m["user_questioning_request_endpoint"])
	require.Equal(t, env.a.URL+server.PathUQPolling, m["user_questioning_polling_endpoint"])
	require.Equal(t, []any{"hwk", "face", "fpt", "pin"}, m["amr_list"])
	require.Equal(t, []any{"phr", "app"}, m["acr_list"])
	require.Contains(t, m["scopes_supported"], config.ScopeQuestion)
	require.Contains(t, m["grant_types_supported"], "client_credentials")
}

func uqKeys(tb testing.TB, in *servertest.Instance) jose.JSONWebKeySet {
	set, _ := jwksOf(tb, in.URL)
	return set
}

// TestUQ_AddressRateLimit (RQ09): both endpoints sit behind the
// reach_client per-address limit, answered 429 slow_down with
// Retry-After (docs/decisions.md Q28) before any token or question is
// looked at.
func TestUQ_AddressRateLimit(t *testing.T) {
	env := newUQEnv(t, nil, uqEnvOptions{one: true, edit: func(c *config.Config) {
		c.Limits.Rate.Rules = append(c.Limits.Rate.Rules, config.RateRule{Endpoint: config.RateReachClient, Scope: config.ScopeIP, Rate: 1, Period: time.Hour, Burst: 1})
	}})
	st, _, _ := ask(t, env.a, "", question("", ""))
	require.Equal(t, http.StatusBadRequest, st)
	for _, do := range []func() (int, http.Header, map[string]any){
		func() (int, http.Header, map[string]any) { return ask(t, env.a, "", question("", "")) },
		func() (int, http.Header, map[string]any) { return poll(t, env.a, "", uq.NewQuestionID(), nil) },
	} {
		st, h, m := do()
		require.Equal(t, http.StatusTooManyRequests, st)
		require.Equal(t, "slow_down", m["error"])
		require.NotEmpty(t, h.Get("Retry-After"))
	}
}

// TestUQ_SDK (RQ10): the Go SDK's UQ client against two instances:
// discovery, Ask with a client-credentials token, Wait holding a poll
// with Client-Timeout at a while the answer arrives through b, and
// VerifyUST against the JWKS.
func TestUQ_SDK(t *testing.T) {
	env := newUQEnv(t, nil, uqEnvOptions{})
	ctx := context.Background()
	meta, err := sdk.DiscoverUQ(ctx, servertest.HTTP(), env.a.URL)
	require.NoError(t, err)
	c := &sdk.UQClient{HTTP: servertest.HTTP(), Meta: meta, AccessToken: ccToken(t, env.a, "uq-backend", uqBackendSecret, config.ScopeQuestion)}
	q := uq.Request{UserID: uqCarolPhone, UserIDType: uq.UserIDMSISDN, QuestionToDisplay: "Is this your new payee?", StatementsToDisplay: []string{"Yes", "No"}, WishedACR: "app"}
	qid, err := c.Ask(ctx, q)
	require.NoError(t, err)
	got := make(chan string, 1)
	go func() {
		ust, err := c.Wait(ctx, qid, 20*time.Second)
		if err != nil {
			ust = "error: " + err.Error()
		}
		got <- ust
	}()
	waitHeld(t, env, qid, 1)
	answerQuestion(t, env.phone, qid, "Yes", "hwk", "pin")
	ust := <-got
	claims, err := c.VerifyUST(ctx, ust, uq.Expect{ClientID: "uq-backend", QuestionID: qid, Question: q.QuestionToDisplay, Statements: q.StatementsToDisplay,
		UserID: uqCarolPhone, UserIDType: uq.UserIDMSISDN})
	require.NoError(t, err, ust)
	require.Equal(t, "Yes", claims.Statement)
	require.Equal(t, "phr", claims.UsedACR)

	_, err = c.Ask(ctx, uq.Request{UserID: "+15550000000", UserIDType: uq.UserIDMSISDN, QuestionToDisplay: "?", StatementsToDisplay: []string{"a", "b"}, WishedACR: "app"})
	require.ErrorIs(t, err, uq.ErrUnknownUser)
}

// TestUQ_PushRefusedAtDelivery (RQ05): a notification endpoint whose
// name passes configuration but resolves to a private address at
// delivery is refused by the guarded dialer: one resolution, no
// connection, no retry (a refusal is final; a network error would be
// retried 3 times).
func TestUQ_PushRefusedAtDelivery(t *testing.T) {
	var lookups atomic.Int32
	guarded := netguard.Client(netguard.Options{AllowLoopback: true, LookupIP: func(context.Context, string) ([]net.IP, error) {
		lookups.Add(1)
		return []net.IP{net.ParseIP("10.0.0.7")}, nil
	}})
	env := newUQEnv(t, nil, uqEnvOptions{one: true, reach: server.ReachOptions{HTTP: guarded}, edit: func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "uq-push" {
				c.Clients[i].Reach = &config.ClientReach{NotificationEndpoint: "https://notify.bank.example/uq"}
			}
		}
	}})
	tok := ccToken(t, env.a, "uq-push", uqPushSecret, config.ScopeQuestion)
	body := question(uq.UserIDSub, "carol")
	body["client_notification_token"] = uqNotifyToken
	qid := mustAsk(t, env.a, tok, body)
	answerQuestion(t, env.phone, qid, "Yes")
	server.UQPushesDone(env.a.Server)
	require.Equal(t, int32(1), lookups.Load())
}
