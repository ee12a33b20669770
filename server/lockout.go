package server

import (
	"errors"

	"github.com/fedas/fedas/authn/lockout"
	"github.com/fedas/fedas/authn/password"
	"github.com/fedas/fedas/authn/totp"
	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/storage"
)

var _ password.SecondFactor = totp.Step{}

// localSteps builds the local sign-in chain: the password step behind
// the account lockout and the CPU gate, then TOTP, both counting on the
// same lockout (docs/security.md "Account lockout"; docs/decisions.md
// Q29). The counters live in the store, so every instance sharing it
// shares them; their names are keyed by a digest of the shared secret.
func (s *Server) localSteps(o Options) ([]flow.Step, error) {
	fc, ok := o.Store.(storage.FailureCounter)
	if !ok {
		return nil, errors.New("server: the store does not count failures (storage.FailureCounter), which the account lockout needs")
	}
	l := o.Config.Limits
	svc := lockout.New(fc, lockout.Policy{
		AccountIPFree: l.Lockout.AccountIPFreeFailures,
		AccountFree:   l.Lockout.AccountFreeFailures,
		OTPFree:       l.Lockout.OTPFreeFailures,
		BaseDelay:     l.Lockout.BaseDelay,
		MaxDelay:      l.Lockout.MaxDelay,
		Window:        l.Lockout.Window,
	}, derivedKey(o.HMACSecret, "fedas/lockout/v1"))
	otp := totp.Step{Lockout: svc}
	s.password = password.New(password.WithLockout(svc), password.WithSecondFactor(otp),
		password.WithGate(l.PasswordConcurrency, l.PasswordQueueTimeout))
	return []flow.Step{s.password, otp}, nil
}
