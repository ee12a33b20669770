// Package password is the username-and-password step (RFC 8176 "pwd").
package password

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fedas/fedas/authn/lockout"
	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/storage"
)

// Step checks a password against the user's bcrypt hash, behind the
// account lockout and the CPU gate (docs/security.md "Account lockout";
// docs/decisions.md Q29).
type Step struct {
	// dummies by bcrypt cost: an unknown user's check compares against
	// one of the users' own cost, so it takes as long as a wrong password.
	dummies sync.Map
	lock    *lockout.Service
	second  SecondFactor
	gate    *gate
	checks  atomic.Int64
}

var _ flow.Step = (*Step)(nil)

// SecondFactor is a later step whose answer may come with the password
// in one answer (docs/protocol.md "Lockout"): the way past an
// account-wide delay, which applies to password-only answers. authn/totp
// implements it.
type SecondFactor interface {
	// Name is the step's name (flow.Step.Name): the step such an answer
	// satisfies too.
	Name() string
	// Input is the answer field that carries the factor ("otp").
	Input() string
	// AMR is the factor's method reference (RFC 8176 §2).
	AMR() string
	// Check verifies answer for u at now without side effects, with the
	// same work for a nil u (no such account) or one without the factor,
	// which never match. A match names the single-use marker to record
	// (storage.ReplayStore.MarkUsed) before the answer counts.
	Check(u *policy.User, answer string, now time.Time) (replayKey string, exp time.Time, ok bool)
}

// Option configures the step.
type Option func(*Step)

// WithLockout counts failures and delays answers with l
// (docs/security.md "Account lockout"); without it nothing is delayed.
func WithLockout(l *lockout.Service) Option { return func(s *Step) { s.lock = l } }

// WithSecondFactor accepts f's answer together with the password.
func WithSecondFactor(f SecondFactor) Option { return func(s *Step) { s.second = f } }

// WithGate bounds the comparisons running at once to slots (0:
// DefaultSlots, half the CPUs) and a check's wait for one to wait (0: 1 s; config
// limits.password_concurrency, limits.password_queue_timeout).
func WithGate(slots int, wait time.Duration) Option {
	return func(s *Step) { s.gate = newGate(slots, wait) }
}

// New returns the password step.
func New(opts ...Option) *Step {
	s := &Step{}
	for _, o := range opts {
		o(s)
	}
	if s.gate == nil {
		s.gate = newGate(0, 0)
	}
	return s
}

// Checks reports how many bcrypt comparisons the step has run: tests
// count the work an answer costs with it, rather than time it.
func (s *Step) Checks() int64 { return s.checks.Load() }

// dummy is a hash of the cost the user store's hashes have
// (policy.HashCoster; bcrypt.DefaultCost otherwise).
func (s *Step) dummy(users policy.UserStore) ([]byte, error) {
	cost := bcrypt.DefaultCost
	if hc, ok := users.(policy.HashCoster); ok && hc.HashCost() > 0 {
		cost = hc.HashCost()
	}
	if h, ok := s.dummies.Load(cost); ok {
		return h.([]byte), nil
	}
	h, err := bcrypt.GenerateFromPassword([]byte("fedas-dummy"), cost)
	if err != nil {
		return nil, err
	}
	s.dummies.Store(cost, h)
	return h, nil
}

// Cost reports the bcrypt cost an unknown user's check spends with users
// (for tests).
func (s *Step) Cost(users policy.UserStore) int {
	h, err := s.dummy(users)
	if err != nil {
		return 0
	}
	c, _ := bcrypt.Cost(h)
	return c
}

// Name implements flow.Step.
func (*Step) Name() string { return "password" }

// Applies implements flow.Step: the password identifies the user, so it
// applies while none is identified.
func (*Step) Applies(u *policy.User) bool { return u == nil }

// Challenge implements flow.Step.
func (*Step) Challenge(_ context.Context, sc flow.StepContext) (flow.ChallengeSpec, json.RawMessage, error) {
	spec := flow.ChallengeSpec{Type: "password", Inputs: map[string]flow.Input{}, Description: "Sign in with your username and password."}
	if sc.Username == "" {
		spec.Inputs["username"] = flow.Input{Title: "Username", Hint: "username"}
	}
	spec.Inputs["password"] = flow.Input{Title: "Password", Hint: "current-password", Secret: true}
	return spec, nil, nil
}

// The counters each answer counts on, and those whose delay refuses it.
var (
	passwordCounters = []lockout.Counter{lockout.AccountIP, lockout.Account}
	// A password-only answer is refused by either delay.
	passwordOnlyGuard = passwordCounters
	// An answer with the second factor is refused only by the (account,
	// address) delay: an account-wide one, which anyone can cause from
	// many addresses, must not lock the owner out.
	combinedGuard = []lockout.Counter{lockout.AccountIP}
	otpCounter    = []lockout.Counter{lockout.OTP}
	allCounters   = []lockout.Counter{lockout.AccountIP, lockout.Account, lockout.OTP}
)

// Verify implements flow.Step. The answer, its timing and its work are
// the same whether or not the user exists, at every stage of the
// lockout: the counters are keyed by the username as typed (normalised),
// and an unknown user's check compares against a dummy hash.
//
// An answer over a delay is refused before any hash is compared
// (lockout.Throttled). Otherwise the attempt is counted as a failure
// first (so that concurrent attempts cannot share the last free one),
// the hash is compared behind the CPU gate, and a success resets the
// counters.
func (s *Step) Verify(ctx context.Context, sc flow.StepContext, answers url.Values) (flow.StepResult, error) {
	username := sc.Username
	if username == "" {
		u, bad := field(answers, "username", 256)
		if bad != nil {
			return *bad, nil
		}
		username = u
	}
	pw, bad := field(answers, "password", 1024)
	if bad != nil {
		return *bad, nil
	}
	var code string
	if s.second != nil {
		if code = answers.Get(s.second.Input()); len(code) > 64 {
			return flow.StepResult{Result: flow.Malformed, Description: fmt.Sprintf("The %s input is too long.", s.second.Input())}, nil
		}
	}
	combined := code != ""
	guard := passwordOnlyGuard
	if combined {
		guard = combinedGuard
	}
	sub := s.lock.For(username, sc.ClientIP)
	if w, err := s.lock.Check(ctx, sub, guard, sc.Now); err != nil {
		return flow.StepResult{}, err
	} else if w.Blocked() {
		return lockout.Throttled(w), nil
	}
	user, ok, w, err := s.gated(ctx, sc, sub, guard, username, pw)
	if err != nil {
		return flow.StepResult{}, err
	} else if w.Blocked() {
		return lockout.Throttled(w), nil
	}
	if !combined {
		if !ok {
			return wrong(), nil
		}
		if err := s.lock.Reset(ctx, sub, passwordCounters); err != nil {
			return flow.StepResult{}, err
		}
		return flow.StepResult{Result: flow.Passed, User: user, AMR: "pwd"}, nil
	}
	return s.verifyFactor(ctx, sc, sub, user, ok, code)
}

// verifyFactor finishes an answer that carried the second factor too:
// it passes only if both match, and then satisfies the factor's step.
// Which of the two was wrong is never told, by the answer or by the
// work: the factor is checked in both cases, and both branches make one
// storage round trip. A wrong factor with a right password counts on the
// account's own code counter, whose delay then makes every factor wrong
// without saying so (the one-time code must not be guessable through
// this door either).
func (s *Step) verifyFactor(ctx context.Context, sc flow.StepContext, sub lockout.Subject, user *policy.User, pwOK bool, code string) (flow.StepResult, error) {
	var u *policy.User
	if pwOK {
		u = user
	}
	key, exp, ok := s.second.Check(u, code, sc.Now)
	if !pwOK {
		if err := s.lock.Touch(ctx, sub, otpCounter); err != nil {
			return flow.StepResult{}, err
		}
		return wrong(), nil
	}
	w, err := s.lock.Record(ctx, sub, otpCounter, otpCounter, sc.Now)
	if err != nil {
		return flow.StepResult{}, err
	}
	ok = ok && !w.Blocked()
	if ok {
		err := sc.Replay.MarkUsed(ctx, key, exp)
		if errors.Is(err, storage.ErrConflict) {
			ok = false // a code is good once (RFC 6238 §5.2)
		} else if err != nil {
			return flow.StepResult{}, err
		}
	}
	if !ok {
		return wrong(), nil
	}
	if err := s.lock.Reset(ctx, sub, allCounters); err != nil {
		return flow.StepResult{}, err
	}
	return flow.StepResult{Result: flow.Passed, User: user, AMR: "pwd",
		Satisfied: []flow.Satisfied{{Step: s.second.Name(), AMR: s.second.AMR()}}}, nil
}

// gated runs the counted comparison in a gate slot: a check that finds
// no slot in time (flow.ErrOverloaded) has counted nothing. The slot is
// held for the comparison only, not for what follows.
func (s *Step) gated(ctx context.Context, sc flow.StepContext, sub lockout.Subject, guard []lockout.Counter, username, pw string) (*policy.User, bool, lockout.Wait, error) {
	release, err := s.gate.acquire(ctx)
	if err != nil {
		return nil, false, lockout.Wait{}, err
	}
	defer release()
	if w, err := s.lock.Record(ctx, sub, passwordCounters, guard, sc.Now); err != nil || w.Blocked() {
		return nil, false, w, err
	}
	user, ok, err := s.compare(ctx, sc.Users, username, pw)
	return user, ok, lockout.Wait{}, err
}

// compare looks the user up and compares pw with their hash, or with a
// dummy of the same cost when there is no such user: one bcrypt
// comparison either way. The caller holds a gate slot.
func (s *Step) compare(ctx context.Context, users policy.UserStore, username, pw string) (*policy.User, bool, error) {
	user, known, err := users.User(ctx, username)
	if err != nil {
		return nil, false, err
	}
	hash := []byte(user.PasswordHash)
	if !known {
		if hash, err = s.dummy(users); err != nil {
			return nil, false, err
		}
	}
	s.checks.Add(1)
	if bcrypt.CompareHashAndPassword(hash, []byte(pw)) != nil || !known {
		return nil, false, nil
	}
	return &user, true, nil
}

func wrong() flow.StepResult {
	return flow.StepResult{Result: flow.Failed, Description: "The username or password is not correct."}
}

func field(answers url.Values, name string, max int) (string, *flow.StepResult) {
	v := answers.Get(name)
	if v == "" {
		return "", &flow.StepResult{Result: flow.Malformed, Description: fmt.Sprintf("The %s input is required.", name)}
	}
	if len(v) > max {
		return "", &flow.StepResult{Result: flow.Malformed, Description: fmt.Sprintf("The %s input is too long.", name)}
	}
	return v, nil
}
