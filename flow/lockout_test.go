package flow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/authn/lockout"
	"github.com/fedas/fedas/authn/password"
	authtotp "github.com/fedas/fedas/authn/totp"
	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/policy"
)

// from sets the request's client address (flow.Request.ClientIP).
func from(ip string) reqMod { return func(r *flow.Request) { r.ClientIP = ip } }

// throttleStep is a first step that refuses every answer as Throttled
// until open is set, then passes bob (who has a TOTP secret) and says
// it satisfied the otp step too.
type throttleStep struct{ open *bool }

func (throttleStep) Name() string                { return "throttle" }
func (throttleStep) Applies(u *policy.User) bool { return u == nil }
func (throttleStep) Challenge(context.Context, flow.StepContext) (flow.ChallengeSpec, json.RawMessage, error) {
	return flow.ChallengeSpec{Type: "throttle", Inputs: map[string]flow.Input{"x": {}}}, nil, nil
}
func (s throttleStep) Verify(ctx context.Context, sc flow.StepContext, _ url.Values) (flow.StepResult, error) {
	if !*s.open {
		return flow.StepResult{Result: flow.Throttled, RetryAfter: 1500 * time.Millisecond, Scope: "account", Description: "wait"}, nil
	}
	u, _, err := sc.Users.User(ctx, "bob")
	return flow.StepResult{Result: flow.Passed, User: &u, AMR: "pwd",
		Satisfied: []flow.Satisfied{{Step: "otp", AMR: "otp"}}}, err
}

// TestEngine_ThrottledAndSatisfied: the engine's side of the lockout,
// for any step. A Throttled answer is 429 slow_down with its Retry-After,
// echoes the auth_session, leaves the session exactly as it was (the same
// value works, no failure counted: more refusals than max_failures do
// not end it) and emits sign_in.throttled; a step's Satisfied list skips
// later steps and adds their AMR.
func TestEngine_ThrottledAndSatisfied(t *testing.T) {
	open := false
	var seen []events.Event
	sink := sinkFunc(func(_ context.Context, ev events.Event) { seen = append(seen, ev) })
	f := newFixture(t, nil, withSteps(throttleStep{&open}, authtotp.Step{}), func(o *flow.Options) {
		o.Events = events.New(nil, sink)
	})
	ch := as[flow.Challenge](t, f.native(initial("app")))
	for i := 0; i < 2*f.cfg.Limits.MaxFailures; i++ {
		r := refusal(t, f.native(vals("auth_session", ch.AuthSession, "x", "1")), "slow_down")
		require.Equal(t, 429, r.Status)
		require.Equal(t, 1500*time.Millisecond, r.RetryAfter)
		require.Equal(t, ch.AuthSession, r.AuthSession, "the value sent stays good")
	}
	require.Len(t, seen, 2*f.cfg.Limits.MaxFailures)
	require.Equal(t, events.Event{Name: events.SignInThrottled, Method: "throttle", ClientID: "app", Scope: "account"}, seen[0])
	open = true
	code := as[flow.Code](t, f.native(vals("auth_session", ch.AuthSession, "x", "1")))
	require.Equal(t, []string{"pwd", "otp"}, f.codes.grant(t, code.Code).AMR, "the satisfied otp step is not asked")
}

type sinkFunc func(context.Context, events.Event)

func (f sinkFunc) Event(ctx context.Context, ev events.Event) { f(ctx, ev) }

// lockoutFixture is the engine with the real password and TOTP steps on
// one lockout over the fixture's memory store: 2 free failures per
// (account, address), 4 per account, delays 1 s doubling to 8 s.
func lockoutFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, nil)
	svc := lockout.New(f.sessions, lockout.Policy{AccountIPFree: 2, AccountFree: 4, OTPFree: 2, BaseDelay: time.Second, MaxDelay: 8 * time.Second}, nil)
	otp := authtotp.Step{Lockout: svc}
	f.opts.Steps = []flow.Step{password.New(password.WithLockout(svc), password.WithSecondFactor(otp)), otp}
	f.eng = flow.New(f.opts)
	return f
}

// TestLockout_SprayFromManyAddresses: one account sprayed from many
// client addresses, each under its own free failures: after the
// account's free failures, password-only answers from every address —
// the right password too — are 429 with a Retry-After that grows as
// failures go on; the owner's password with a one-time code still signs
// in (pwd + otp, the otp step satisfied), and a success clears the
// account's counter.
func TestLockout_SprayFromManyAddresses(t *testing.T) {
	f := lockoutFixture(t)
	answer := func(ip string, kv ...string) flow.Outcome {
		ch := as[flow.Challenge](t, f.native(initial("app"), from(ip)))
		return f.native(with(vals("auth_session", ch.AuthSession), kv...), from(ip))
	}
	wrongFrom := func(ip string) flow.Outcome { return answer(ip, "username", "bob", "password", "guess") }
	for i := range 4 {
		as[flow.Challenge](t, wrongFrom(fmt.Sprintf("10.0.0.%d", i)))
	}
	var retries []time.Duration
	for i := range 3 {
		r := refusal(t, wrongFrom(fmt.Sprintf("10.1.0.%d", i)), "slow_down")
		require.Contains(t, r.Description, "send your one-time code with your password")
		retries = append(retries, r.RetryAfter)
		r = refusal(t, answer("192.0.2.1", "username", "bob", "password", "bob-pw"), "slow_down")
		require.Equal(t, retries[i], r.RetryAfter, "the right password alone waits like any other")
		f.clock.Advance(r.RetryAfter)
		as[flow.Challenge](t, wrongFrom(fmt.Sprintf("10.2.0.%d", i))) // one more failure, once the delay is over
	}
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, retries)

	code := as[flow.Code](t, answer("192.0.2.1", "username", "bob", "password", "bob-pw", "otp", f.otp()))
	g := f.codes.grant(t, code.Code)
	require.Equal(t, []string{"pwd", "otp"}, g.AMR)
	require.Equal(t, "sub-bob", g.Subject)
	// The success reset the account: a password-only answer goes through
	// to the otp challenge again.
	require.Equal(t, "otp", as[flow.Challenge](t, answer("10.3.0.1", "username", "bob", "password", "bob-pw")).Spec.Type)
}
