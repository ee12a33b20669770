package flow_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/authn/password"
	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/storage"
)

// TestLocal_Challenges: password only, password then otp, login_hint
// skipping the username input; the code carries every binding of the
// session and no redirect_uri (native channel).
func TestLocal_Challenges(t *testing.T) {
	for _, tc := range []struct {
		name, user, hint string
		wantAMR          []string
	}{
		{name: "password", user: "alice", wantAMR: []string{"pwd"}},
		{name: "password then otp", user: "bob", wantAMR: []string{"pwd", "otp"}},
		{name: "login_hint skips username", user: "alice", hint: "alice", wantAMR: []string{"pwd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			out := f.native(initial("app", "login_hint", tc.hint, "nonce", "n-1", "redirect_uri", appWeb), key(jkt("dev")))
			ch := as[flow.Challenge](t, out)
			require.Equal(t, "password", ch.Spec.Type)
			require.Contains(t, ch.Spec.Inputs, "password")
			require.True(t, ch.Spec.Inputs["password"].Secret)
			_, asksUser := ch.Spec.Inputs["username"]
			require.Equal(t, tc.hint == "", asksUser)
			form := vals("auth_session", ch.AuthSession, "password", tc.user+"-pw")
			if tc.hint == "" {
				form.Set("username", tc.user)
			}
			f.clock.Advance(time.Second)
			out = f.native(form, key(jkt("dev")))
			if tc.user == "bob" {
				otp := as[flow.Challenge](t, out)
				require.Equal(t, "otp", otp.Spec.Type)
				require.Contains(t, otp.Spec.Inputs, "otp")
				require.NotEqual(t, ch.AuthSession, otp.AuthSession)
				out = f.native(vals("auth_session", otp.AuthSession, "otp", f.otp()), key(jkt("dev")))
			}
			code := as[flow.Code](t, out)
			require.Empty(t, code.RedirectURI, "native codes carry no redirect_uri")
			require.Empty(t, code.State)
			g := f.codes.grant(t, code.Code)
			require.Equal(t, flow.Grant{ClientID: "app", Scope: "openid profile", CodeChallenge: pkce("app"), CodeChallengeMethod: "S256",
				Nonce: "n-1", Subject: "sub-" + tc.user, Username: tc.user, AMR: tc.wantAMR, AuthTime: f.clock.Now(), DPoPJKT: jkt("dev")}, g)
			require.Len(t, f.codes.all(), 1)
		})
	}
}

// TestLocal_WrongAnswersAndCap: a wrong answer re-challenges under a new
// value (the old one is spent); at MaxFailures the session ends with
// access_denied; a wrong OTP counts too; a TOTP code is accepted once.
func TestLocal_WrongAnswersAndCap(t *testing.T) {
	f := newFixture(t, nil)
	ch := as[flow.Challenge](t, f.native(initial("app")))
	v := ch.AuthSession
	for i := 1; i < 3; i++ {
		out := f.native(vals("auth_session", v, "username", "alice", "password", "nope"))
		c := as[flow.Challenge](t, out)
		require.Equal(t, "The username or password is not correct.", c.Description)
		refusal(t, f.native(vals("auth_session", v, "username", "alice", "password", "alice-pw")), "invalid_session")
		v = c.AuthSession
	}
	refusal(t, f.native(vals("auth_session", v, "username", "ghost", "password", "x")), "access_denied")
	refusal(t, f.native(vals("auth_session", v, "username", "alice", "password", "alice-pw")), "invalid_session")
	require.Empty(t, f.codes.all())

	t.Run("otp", func(t *testing.T) {
		f := newFixture(t, nil)
		ch := as[flow.Challenge](t, f.native(initial("app")))
		otp := as[flow.Challenge](t, f.native(vals("auth_session", ch.AuthSession, "username", "bob", "password", "bob-pw")))
		bad := as[flow.Challenge](t, f.native(vals("auth_session", otp.AuthSession, "otp", "000000x")))
		require.Equal(t, "otp", bad.Spec.Type)
		code := f.otp()
		as[flow.Code](t, f.native(vals("auth_session", bad.AuthSession, "otp", code)))
		// The same TOTP code in another session is a replay.
		ch2 := as[flow.Challenge](t, f.native(initial("app")))
		otp2 := as[flow.Challenge](t, f.native(vals("auth_session", ch2.AuthSession, "username", "bob", "password", "bob-pw")))
		again := as[flow.Challenge](t, f.native(vals("auth_session", otp2.AuthSession, "otp", code)))
		require.Equal(t, "The one-time code is not correct.", again.Description)
	})

	t.Run("hinted user is the only user", func(t *testing.T) {
		f := newFixture(t, nil)
		// The hint fixes the user: a username input is not asked for,
		// and one sent anyway does not change who signs in.
		ch := as[flow.Challenge](t, f.native(initial("app", "login_hint", "alice")))
		code := as[flow.Code](t, f.native(vals("auth_session", ch.AuthSession, "username", "bob", "password", "alice-pw")))
		require.Equal(t, "sub-alice", f.codes.grant(t, code.Code).Subject)
		// A hint of an unknown user fails like a wrong password.
		ch2 := as[flow.Challenge](t, f.native(initial("app", "login_hint", "ghost")))
		bad := as[flow.Challenge](t, f.native(vals("auth_session", ch2.AuthSession, "password", "alice-pw")))
		require.Equal(t, "The username or password is not correct.", bad.Description)
	})
}

// TestLocal_Malformed: a missing or oversized answer is invalid_request
// and changes nothing: the same value still works and the failure count
// did not move.
func TestLocal_Malformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		form url.Values
	}{
		{"no password", vals("username", "alice")},
		{"no username", vals("password", "x")},
		{"oversized username", vals("username", string(make([]byte, 300)), "password", "x")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			ch := as[flow.Challenge](t, f.native(initial("app")))
			// Two wrong answers: one short of the cap (3).
			v := ch.AuthSession
			for i := 0; i < 2; i++ {
				v = as[flow.Challenge](t, f.native(vals("auth_session", v, "username", "alice", "password", "bad"))).AuthSession
			}
			form := with(tc.form, "auth_session", v)
			r := refusal(t, f.native(form), "invalid_request")
			require.Empty(t, r.AuthSession)
			// Unchanged: the value still works, and the malformed answer
			// did not count towards the cap.
			as[flow.Code](t, f.native(vals("auth_session", v, "username", "alice", "password", "alice-pw")))
		})
	}
	t.Run("otp missing", func(t *testing.T) {
		f := newFixture(t, nil)
		ch := as[flow.Challenge](t, f.native(initial("app")))
		otp := as[flow.Challenge](t, f.native(vals("auth_session", ch.AuthSession, "username", "bob", "password", "bob-pw")))
		refusal(t, f.native(vals("auth_session", otp.AuthSession)), "invalid_request")
		refusal(t, f.native(vals("auth_session", otp.AuthSession, "otp", "12345678901")), "invalid_request")
		as[flow.Code](t, f.native(vals("auth_session", otp.AuthSession, "otp", f.otp())))
	})
}

// waitStep is a step the engine has no case for: it waits (Pending) until
// polled Polls times, keeping its own state in Data, then passes. It
// proves a new method plugs in with no engine change.
type waitStep struct{ Polls int }

func (waitStep) Name() string                { return "wait" }
func (waitStep) Applies(u *policy.User) bool { return u != nil }
func (waitStep) Challenge(context.Context, flow.StepContext) (flow.ChallengeSpec, json.RawMessage, error) {
	return flow.ChallengeSpec{Type: "push", Inputs: map[string]flow.Input{}, Data: map[string]any{"number": 42}, Description: "Approve on your phone."}, json.RawMessage(`0`), nil
}
func (w waitStep) Verify(_ context.Context, sc flow.StepContext, answers url.Values) (flow.StepResult, error) {
	if answers.Get("cancel") != "" {
		return flow.StepResult{Result: flow.Failed, Description: "cancelled"}, nil
	}
	var n int
	if err := json.Unmarshal(sc.Data, &n); err != nil {
		return flow.StepResult{}, err
	}
	if n < w.Polls {
		b, _ := json.Marshal(n + 1)
		return flow.StepResult{Result: flow.Waiting, Description: "Still waiting.", Data: b, Interval: 5}, nil
	}
	return flow.StepResult{Result: flow.Passed, AMR: "mfa"}, nil
}

// badStep returns a result the engine does not know.
type badStep struct{ waitStep }

func (badStep) Verify(context.Context, flow.StepContext, url.Values) (flow.StepResult, error) {
	return flow.StepResult{Result: flow.Result(99)}, nil
}

// TestLocal_PendingStep: a test Step returning Waiting yields Pending with
// the same auth_session each poll (a poll changes no state:
// docs/protocol.md "Polling"), its own state carried between polls, then
// Code with its AMR; the value is dead once the code is issued.
func TestLocal_PendingStep(t *testing.T) {
	f := newFixture(t, nil, withSteps(password.New(), waitStep{Polls: 2}))
	ch := as[flow.Challenge](t, f.native(initial("app")))
	push := as[flow.Challenge](t, f.native(vals("auth_session", ch.AuthSession, "username", "alice", "password", "alice-pw")))
	require.Equal(t, "push", push.Spec.Type)
	require.Equal(t, 42, push.Spec.Data["number"])
	v := push.AuthSession
	for i := 0; i < 2; i++ {
		p := as[flow.Pending](t, f.native(vals("auth_session", v)))
		require.Equal(t, 5, p.Interval)
		require.Equal(t, "Still waiting.", p.Description)
		require.Equal(t, v, p.AuthSession)
	}
	code := as[flow.Code](t, f.native(vals("auth_session", v)))
	require.Equal(t, []string{"pwd", "mfa"}, f.codes.grant(t, code.Code).AMR)
	refusal(t, f.native(vals("auth_session", v)), "invalid_session")

	t.Run("ChainFor chooses per client", func(t *testing.T) {
		f := newFixture(t, nil, func(o *flow.Options) {
			o.ChainFor = func(c *policy.Client, _ map[string]string) []flow.Step {
				if c.GetID() == "app" {
					return []flow.Step{password.New(), waitStep{}}
				}
				return []flow.Step{password.New()}
			}
		})
		ch := as[flow.Challenge](t, f.native(initial("app")))
		as[flow.Challenge](t, f.native(vals("auth_session", ch.AuthSession, "username", "alice", "password", "alice-pw")))
		ch = as[flow.Challenge](t, f.native(initial("routed")))
		as[flow.Code](t, f.native(vals("auth_session", ch.AuthSession, "username", "alice", "password", "alice-pw")))
	})
	t.Run("unknown result is an error", func(t *testing.T) {
		f := newFixture(t, nil, withSteps(password.New(), badStep{}))
		ch := as[flow.Challenge](t, f.native(initial("app")))
		w := as[flow.Challenge](t, f.native(vals("auth_session", ch.AuthSession, "username", "alice", "password", "alice-pw")))
		_, err := f.try(flow.ChannelNative, vals("auth_session", w.AuthSession))
		require.Error(t, err)
	})
	t.Run("chain changed under the session", func(t *testing.T) {
		f := newFixture(t, nil, withSteps(password.New(), waitStep{}))
		ch := as[flow.Challenge](t, f.native(initial("app")))
		w := as[flow.Challenge](t, f.native(vals("auth_session", ch.AuthSession, "username", "alice", "password", "alice-pw")))
		o := f.opts
		o.Steps = []flow.Step{password.New()}
		f.eng = flow.New(o)
		refusal(t, f.native(vals("auth_session", w.AuthSession)), "invalid_session")
	})
}

// TestInitial_Refusals: every initial-request check of parseInitial and
// startInitial; none creates a session.
func TestInitial_Refusals(t *testing.T) {
	long := string(make([]byte, 600))
	for _, tc := range []struct {
		name string
		form url.Values
		mods []reqMod
		want string
	}{
		{"no client", vals("response_type", "code"), nil, "invalid_request"},
		{"confidential unauthenticated", initial("conf"), nil, "invalid_client"},
		{"not first party", initial("third"), nil, "unauthorized_client"},
		{"no response_type", initial("app", "response_type", ""), nil, "invalid_request"},
		{"token response_type", initial("app", "response_type", "token"), nil, "unsupported_response_type"},
		{"public without PKCE", initial("app", "code_challenge", "", "code_challenge_method", ""), nil, "invalid_request"},
		{"method without challenge", initial("conf", "code_challenge", ""), []reqMod{authed()}, "invalid_request"},
		{"plain PKCE", initial("app", "code_challenge_method", "plain"), nil, "invalid_request"},
		{"bad challenge shape", initial("app", "code_challenge", "short"), nil, "invalid_request"},
		{"bad challenge chars", initial("app", "code_challenge", "!"+pkce("x")[1:]), nil, "invalid_request"},
		{"max_age not a number", initial("app", "max_age", "-1"), nil, "invalid_request"},
		{"scope not allowed", initial("app", "scope", "openid admin"), nil, "invalid_scope"},
		{"redirect_uri unregistered", initial("app", "redirect_uri", "https://evil.example/cb"), nil, "invalid_request"},
		{"native_callback_uri unregistered", initial("app", "native_callback_uri", "https://app.example/cb/"), nil, "invalid_request"},
		{"state too long", initial("app", "state", long), nil, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			if tc.form.Get("client_id") == "" {
				tc.mods = append(tc.mods, f.asClient(""))
			}
			refusal(t, f.native(tc.form, tc.mods...), tc.want)
			require.Empty(t, f.codes.all())
		})
	}
	t.Run("dpop_jkt in a native request is ignored", func(t *testing.T) {
		f := newFixture(t, nil)
		ch := as[flow.Challenge](t, f.native(initial("app", "dpop_jkt", jkt("other")), key(jkt("dev"))))
		code := as[flow.Code](t, f.signIn(t, flow.ChannelNative, ch.AuthSession, "alice", key(jkt("dev"))))
		require.Equal(t, jkt("dev"), f.codes.grant(t, code.Code).DPoPJKT)
	})
	t.Run("no policy, unknown channel", func(t *testing.T) {
		f := newFixture(t, nil)
		_, err := f.eng.Handle(context.Background(), flow.Request{Channel: flow.ChannelNative, Form: initial("app")})
		require.Error(t, err)
		_, err = f.eng.Handle(context.Background(), flow.Request{Channel: flow.Channel(42), Policy: f.snap})
		require.Error(t, err)
	})
}

// TestFollowUp_Bindings: a follow-up must match the session's client,
// authentication, DPoP key and channel; a refusal changes nothing.
func TestFollowUp_Bindings(t *testing.T) {
	t.Run("confidential client must authenticate every request", func(t *testing.T) {
		f := newFixture(t, nil)
		ch := as[flow.Challenge](t, f.native(initial("conf"), authed()))
		answer := vals("auth_session", ch.AuthSession, "client_id", "conf", "username", "alice", "password", "alice-pw")
		refusal(t, f.native(answer), "invalid_client")
		refusal(t, f.native(answer, f.asClient("")), "invalid_client")
		refusal(t, f.native(answer, f.asClient(""), authed()), "invalid_client")
		code := as[flow.Code](t, f.native(answer, authed()))
		require.Equal(t, "conf", f.codes.grant(t, code.Code).ClientID)
	})
	t.Run("client_id mismatch", func(t *testing.T) {
		f := newFixture(t, nil)
		ch := as[flow.Challenge](t, f.native(initial("app")))
		answer := vals("auth_session", ch.AuthSession, "username", "alice", "password", "alice-pw")
		r := refusal(t, f.native(with(answer, "client_id", "routed")), "invalid_request")
		require.Contains(t, r.Description, "client_id")
		refusal(t, f.native(answer, f.asClient("conf"), authed()), "invalid_request")
		// Unchanged: no failure counted, same value works, with or
		// without its own client_id.
		as[flow.Code](t, f.native(with(answer, "client_id", "app")))
	})
	t.Run("DPoP key", func(t *testing.T) {
		f := newFixture(t, nil)
		ch := as[flow.Challenge](t, f.native(initial("app"), key(jkt("dev"))))
		answer := vals("auth_session", ch.AuthSession, "username", "alice", "password", "alice-pw")
		refusal(t, f.native(answer), "invalid_dpop_proof")
		refusal(t, f.native(answer, key(jkt("thief"))), "invalid_dpop_proof")
		code := as[flow.Code](t, f.native(answer, key(jkt("dev"))))
		require.Equal(t, jkt("dev"), f.codes.grant(t, code.Code).DPoPJKT)
	})
	t.Run("unbound session accepts any proof", func(t *testing.T) {
		f := newFixture(t, nil)
		ch := as[flow.Challenge](t, f.native(initial("app")))
		code := as[flow.Code](t, f.signIn(t, flow.ChannelNative, ch.AuthSession, "alice", key(jkt("later"))))
		require.Empty(t, f.codes.grant(t, code.Code).DPoPJKT)
	})
	t.Run("step replay and garbage values", func(t *testing.T) {
		f := newFixture(t, nil)
		ch := as[flow.Challenge](t, f.native(initial("app")))
		next := as[flow.Challenge](t, f.native(vals("auth_session", ch.AuthSession, "username", "bob", "password", "bob-pw")))
		refusal(t, f.native(vals("auth_session", ch.AuthSession, "username", "bob", "password", "bob-pw")), "invalid_session")
		as[flow.Code](t, f.native(vals("auth_session", next.AuthSession, "otp", f.otp())))
		refusal(t, f.native(vals("auth_session", next.AuthSession, "otp", f.otp())), "invalid_session")
		for _, v := range []string{"x", ch.AuthSession + "A", "!" + ch.AuthSession[1:]} {
			refusal(t, f.native(vals("auth_session", v)), "invalid_session")
		}
		// A well-formed value of a session that never existed.
		other := newFixture(t, nil)
		foreign := as[flow.Challenge](t, other.native(initial("app"))).AuthSession
		refusal(t, f.native(vals("auth_session", foreign)), "invalid_session")
	})
}

// TestFollowUp_Concurrent: of N concurrent requests with one value
// exactly one wins; the others are invalid_session; one code is minted.
func TestFollowUp_Concurrent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(f *fixture, v string) url.Values
		win    func(t testing.TB, out flow.Outcome) bool
	}{
		{"final step", func(_ *fixture, v string) url.Values {
			return vals("auth_session", v, "username", "alice", "password", "alice-pw")
		}, func(t testing.TB, out flow.Outcome) bool { _, ok := out.(flow.Code); return ok }},
		{"middle step", func(_ *fixture, v string) url.Values {
			return vals("auth_session", v, "username", "bob", "password", "bob-pw")
		}, func(t testing.TB, out flow.Outcome) bool { _, ok := out.(flow.Challenge); return ok }},
		{"wrong answer", func(_ *fixture, v string) url.Values {
			return vals("auth_session", v, "username", "alice", "password", "bad")
		}, func(t testing.TB, out flow.Outcome) bool { _, ok := out.(flow.Challenge); return ok }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			v := as[flow.Challenge](t, f.native(initial("app"))).AuthSession
			const n = 16
			outs := make([]flow.Outcome, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					<-start
					outs[i], errs[i] = f.try(flow.ChannelNative, tc.answer(f, v))
				}(i)
			}
			close(start)
			wg.Wait()
			wins := 0
			for i := range outs {
				require.NoError(t, errs[i])
				if tc.win(t, outs[i]) {
					wins++
					continue
				}
				refusal(t, outs[i], "invalid_session")
			}
			require.Equal(t, 1, wins)
			if tc.name == "final step" {
				require.Len(t, f.codes.all(), 1)
			}
		})
	}
}

// TestSession_TTL: a session expires TTL after it began, by the engine's
// clock. memory.Store judges expiry by time.Now only (its clock is not
// injectable), so the fixture's store wraps it to honour ExpiresAt by
// the fake clock as well.
func TestSession_TTL(t *testing.T) {
	f := newFixture(t, nil)
	v := as[flow.Challenge](t, f.native(initial("app"))).AuthSession
	f.clock.Advance(9 * time.Minute)
	v = as[flow.Challenge](t, f.native(vals("auth_session", v, "username", "bob", "password", "bob-pw"))).AuthSession
	// Advancing steps does not extend the session.
	f.clock.Advance(time.Minute)
	refusal(t, f.native(vals("auth_session", v, "otp", f.otp())), "invalid_session")
}

// brokenSessions fails every write, as an unreachable backend would.
type brokenSessions struct{ clockedSessions }

func (brokenSessions) CreateAuthSession(context.Context, storage.AuthSession) error {
	return storage.ErrUnavailable
}

func (brokenSessions) UpdateAuthSession(context.Context, string, storage.AuthSession) error {
	return storage.ErrUnavailable
}

type brokenCodes struct{}

func (brokenCodes) IssueCode(context.Context, flow.Grant) (string, error) {
	return "", errors.New("code store down")
}

// TestHandle_DependencyFailures: a broken dependency is a Go error, never
// an Outcome the client would see as a protocol answer.
func TestHandle_DependencyFailures(t *testing.T) {
	f := newFixture(t, nil)
	v := as[flow.Challenge](t, f.native(initial("app"))).AuthSession
	o := f.opts
	o.Sessions = brokenSessions{o.Sessions.(clockedSessions)}
	f.eng = flow.New(o)
	_, err := f.try(flow.ChannelNative, initial("app"))
	require.ErrorIs(t, err, storage.ErrUnavailable)
	_, err = f.try(flow.ChannelNative, vals("auth_session", v, "username", "bob", "password", "bob-pw"))
	require.ErrorIs(t, err, storage.ErrUnavailable)

	o = f.opts
	o.Codes = brokenCodes{}
	f.eng = flow.New(o)
	_, err = f.try(flow.ChannelNative, vals("auth_session", v, "username", "alice", "password", "alice-pw"))
	require.Error(t, err)
}
