// Package lockout slows credential guessing per account and per
// (account, client address) without handing an attacker a weapon against
// the account's owner (docs/security.md "Account lockout";
// docs/decisions.md Q29).
//
// It keeps failure counters in storage (storage.FailureCounter), shared
// by every instance: after a number of free failures, each further
// attempt must wait an exponentially growing delay from the last
// failure. The steps that check credentials (authn/password, authn/totp)
// decide which counters guard which answer; this package only counts,
// names the counters by digests, and computes the delays. A username
// that no account has is counted exactly like one that exists.
package lockout

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/storage"
)

// Policy is when the delays begin and how they grow (config
// limits.lockout; docs/config.md).
type Policy struct {
	// AccountIPFree is the failures an (account, client address) pair
	// may have before its delays begin (default 5).
	AccountIPFree int
	// AccountFree is the failures an account may have from all addresses
	// together before password-only answers for it are delayed (default
	// 20).
	AccountFree int
	// OTPFree is the wrong one-time codes an account may have before its
	// code answers are delayed (default 5).
	OTPFree int
	// BaseDelay is the first delay (default 1 s); each further failure
	// doubles it, up to MaxDelay (default 15 min).
	BaseDelay, MaxDelay time.Duration
	// Window is how long a counter is remembered after its last failure
	// (default 24 h); at least MaxDelay.
	Window time.Duration
}

// Defaults of Policy (docs/config.md limits.lockout).
const (
	DefaultAccountIPFree = 5
	DefaultAccountFree   = 20
	DefaultOTPFree       = 5
	DefaultBaseDelay     = time.Second
	DefaultMaxDelay      = 15 * time.Minute
	DefaultWindow        = 24 * time.Hour
)

func (p Policy) withDefaults() Policy {
	setInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	setInt(&p.AccountIPFree, DefaultAccountIPFree)
	setInt(&p.AccountFree, DefaultAccountFree)
	setInt(&p.OTPFree, DefaultOTPFree)
	setDur(&p.BaseDelay, DefaultBaseDelay)
	setDur(&p.MaxDelay, DefaultMaxDelay)
	setDur(&p.Window, DefaultWindow)
	if p.MaxDelay < p.BaseDelay {
		p.MaxDelay = p.BaseDelay
	}
	if p.Window < p.MaxDelay {
		// A counter must outlive the longest delay it imposes.
		p.Window = p.MaxDelay
	}
	return p
}

// Delay is the wait a counter with n failures imposes after its last one
// when free failures are allowed: none below free, then BaseDelay,
// doubling with each further failure, at most MaxDelay.
func (p Policy) Delay(n, free int) time.Duration {
	if n < free {
		return 0
	}
	shift := n - free
	if shift >= 40 {
		return p.MaxDelay
	}
	d := p.BaseDelay << shift
	if d <= 0 || d > p.MaxDelay {
		return p.MaxDelay
	}
	return d
}

// Counter names one of an account's counters.
type Counter int

// Counters.
const (
	// AccountIP counts password failures for an account from one client
	// address; its delay applies to every password answer from there.
	AccountIP Counter = iota + 1
	// Account counts password failures for an account from every
	// address; its delay applies only to password-only answers, never to
	// one that carries the second factor too.
	Account
	// OTP counts wrong one-time codes for an account (given with a right
	// password); its delay applies to code answers.
	OTP
)

// Scope is the counter's name in events and metrics (sign_in.throttled,
// fedas_rate_limited_total: docs/operations.md).
func (c Counter) Scope() string {
	switch c {
	case AccountIP:
		return "account_ip"
	case Account:
		return "account"
	case OTP:
		return "account_otp"
	}
	return "unknown"
}

func (p Policy) free(c Counter) int {
	switch c {
	case AccountIP:
		return p.AccountIPFree
	case Account:
		return p.AccountFree
	}
	return p.OTPFree
}

// Service counts failures in a store. A nil *Service counts nothing and
// never delays (a step built without a lockout).
type Service struct {
	store storage.FailureCounter
	p     Policy
	key   []byte
}

// New returns a Service on store. key (32 bytes; instances sharing the
// store must share it) keys the digests that name the counters, so a
// key in storage tells neither the username nor the address; nil means
// a random key.
func New(store storage.FailureCounter, p Policy, key []byte) *Service {
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			panic(err)
		}
	}
	return &Service{store: store, p: p.withDefaults(), key: append([]byte(nil), key...)}
}

// Policy returns the policy in force (defaults applied).
func (s *Service) Policy() Policy {
	if s == nil {
		return Policy{}.withDefaults()
	}
	return s.p
}

// Subject names the counters of one account as seen from one client
// address.
type Subject struct {
	group string // the account's digest: the counters' hash tag
	ip    string // the (account, address) counter's name
}

// Normalize is the form of a username the counters are keyed by:
// surrounding space trimmed, case folded, so that "Alice " and "alice"
// share counters whether or not the user store tells them apart.
func Normalize(username string) string {
	return strings.ToLower(strings.TrimSpace(username))
}

func (s *Service) digest(parts ...string) string {
	m := hmac.New(sha256.New, s.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// For returns the counters of username (whether or not an account has
// that name) as seen from clientIP. The address counts by
// flow.AddressScope, as for the caps and the rate limits: an IPv6 caller
// by its /64, so that a /64 does not buy 2^64 times the free failures.
func (s *Service) For(username, clientIP string) Subject {
	if s == nil {
		return Subject{}
	}
	u := Normalize(username)
	return Subject{group: s.digest("account", u), ip: "i." + s.digest("address", flow.AddressScope(clientIP))}
}

func (sub Subject) name(c Counter) string {
	switch c {
	case AccountIP:
		return sub.ip
	case Account:
		return "a"
	}
	return "o"
}

func (sub Subject) names(cs []Counter) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = sub.name(c)
	}
	return out
}

// Wait is a delay in force: how long until the next attempt may be
// checked, and which counter imposes it. The zero Wait is none.
type Wait struct {
	Retry   time.Duration
	Counter Counter
}

// Blocked reports whether a delay is in force.
func (w Wait) Blocked() bool { return w.Retry > 0 }

// Seconds is Retry in whole seconds, rounded up and at least 1: the
// value of Retry-After (RFC 9110 §10.2.3).
func (w Wait) Seconds() int64 {
	sec := int64((w.Retry + time.Second - 1) / time.Second)
	if sec < 1 {
		sec = 1
	}
	return sec
}

// Description is the error_description of the refusal (docs/protocol.md
// "Lockout"). It names what to do, never whether the account exists.
func (w Wait) Description() string {
	switch w.Counter {
	case Account:
		return fmt.Sprintf("Too many failed sign-ins for this account; try again in %d s, or send your one-time code with your password.", w.Seconds())
	case OTP:
		return fmt.Sprintf("Too many wrong one-time codes for this account; try again in %d s.", w.Seconds())
	}
	return fmt.Sprintf("Too many failed sign-ins for this account from here; try again in %d s.", w.Seconds())
}

// wait is the longest delay among states (of cs) at now.
func (s *Service) wait(cs []Counter, states []storage.FailureState, now time.Time) Wait {
	var w Wait
	for i, c := range cs {
		d := s.p.Delay(states[i].Count, s.p.free(c))
		if d == 0 {
			continue
		}
		if left := states[i].Last.Add(d).Sub(now); left > w.Retry {
			w = Wait{Retry: left, Counter: c}
		}
	}
	return w
}

// Check returns the delay in force at now among the counters cs of sub:
// an attempt it blocks must be refused without checking anything, and
// counts nothing.
func (s *Service) Check(ctx context.Context, sub Subject, cs []Counter, now time.Time) (Wait, error) {
	if s == nil || len(cs) == 0 {
		return Wait{}, nil
	}
	states, err := s.store.Failures(ctx, sub.group, sub.names(cs))
	if err != nil {
		return Wait{}, err
	}
	return s.wait(cs, states, now), nil
}

// Record counts a failure on the counters cs of sub at now, in one
// atomic step, before the check it guards (a success then resets them:
// Reset). It returns the delay that was in force just before among
// guard (a subset of cs): non-zero when a concurrent attempt took the
// last free one since Check, and then this attempt must be refused
// unchecked too (it stays counted).
func (s *Service) Record(ctx context.Context, sub Subject, cs, guard []Counter, now time.Time) (Wait, error) {
	if s == nil || len(cs) == 0 {
		return Wait{}, nil
	}
	before, err := s.store.RecordFailure(ctx, sub.group, sub.names(cs), s.p.Window, now)
	if err != nil {
		return Wait{}, err
	}
	var gs []Counter
	var pre, post []storage.FailureState
	for i, c := range cs {
		if !slices.Contains(guard, c) {
			continue
		}
		st := before[i]
		gs, pre = append(gs, c), append(pre, st)
		next := storage.FailureState{Count: st.Count + 1, Last: st.Last}
		if now.After(st.Last) {
			next.Last = now
		}
		post = append(post, next)
	}
	if !s.wait(gs, pre, now).Blocked() {
		return Wait{}, nil
	}
	return s.wait(gs, post, now), nil
}

// Reset clears the counters cs of sub (a successful check).
func (s *Service) Reset(ctx context.Context, sub Subject, cs []Counter) error {
	if s == nil || len(cs) == 0 {
		return nil
	}
	return s.store.ResetFailures(ctx, sub.group, sub.names(cs))
}

// Touch reads the counters cs of sub and discards them: a step calls it
// where the other branch of a decision it must not reveal talks to
// storage, so that both take one round trip.
func (s *Service) Touch(ctx context.Context, sub Subject, cs []Counter) error {
	if s == nil || len(cs) == 0 {
		return nil
	}
	_, err := s.store.Failures(ctx, sub.group, sub.names(cs))
	return err
}

// Throttled is the step result for a delay in force: the engine answers
// 429 slow_down with Retry-After (flow.SlowDown; docs/decisions.md Q28)
// and leaves the session as it was.
func Throttled(w Wait) flow.StepResult {
	return flow.StepResult{Result: flow.Throttled, RetryAfter: w.Retry, Scope: w.Counter.Scope(), Description: w.Description()}
}
