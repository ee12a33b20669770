// Package totp is the one-time-code step (RFC 6238; RFC 8176 "otp").
package totp

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/fedas/fedas/authn/lockout"
	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/storage"
)

// Step checks a TOTP code for users who have a secret. With Lockout,
// wrong codes count per account across sessions and, past the free ones,
// delay code answers (docs/security.md "Account lockout"), so that a
// phished password does not buy unlimited guesses. Step is also the
// second factor that may come with the password
// (password.SecondFactor).
type Step struct {
	Lockout *lockout.Service
}

var _ flow.Step = Step{}

// The OTP counter is the only one the step counts on and is delayed by.
var otpCounter = []lockout.Counter{lockout.OTP}

// dummySecret is what an account without a TOTP secret is checked
// against, so that its check costs what a real one does.
const dummySecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

// Name implements flow.Step.
func (Step) Name() string { return "otp" }

// Input names the answer field (password.SecondFactor).
func (Step) Input() string { return "otp" }

// AMR is the method reference (RFC 8176 §2; password.SecondFactor).
func (Step) AMR() string { return "otp" }

// Applies implements flow.Step: users with a TOTP secret.
func (Step) Applies(u *policy.User) bool { return u != nil && u.TOTPSecret != "" }

// Challenge implements flow.Step.
func (Step) Challenge(context.Context, flow.StepContext) (flow.ChallengeSpec, json.RawMessage, error) {
	return flow.ChallengeSpec{Type: "otp", Description: "Enter the one-time code from your authenticator app.", Inputs: map[string]flow.Input{
		"otp": {Title: "One-time code", Hint: "one-time-code", Description: "The 6-digit code from your authenticator app."},
	}}, nil, nil
}

// Check implements password.SecondFactor: code against u's secret at
// now, ±1 step (RFC 6238 §5.2), with the same work for a nil u or one
// without a secret (which never match). A match names the replay marker
// that makes the code single-use: it outlives the ±1 step window.
func (Step) Check(u *policy.User, code string, now time.Time) (string, time.Time, bool) {
	secret, has := dummySecret, false
	if u != nil && u.TOTPSecret != "" {
		secret, has = u.TOTPSecret, true
	}
	counter, ok := match(secret, code, now)
	if !ok || !has {
		return "", time.Time{}, false
	}
	return "totp:" + u.Subject + ":" + strconv.FormatInt(counter, 10), time.Unix((counter+3)*30, 0), true
}

// Verify implements flow.Step. A code is accepted once (RFC 6238 §5.2).
// Like the password step, an answer over a delay is refused unchecked,
// and an attempt counts as a failure before the check, which a success
// resets.
func (st Step) Verify(ctx context.Context, sc flow.StepContext, answers url.Values) (flow.StepResult, error) {
	code := answers.Get("otp")
	switch {
	case code == "":
		return flow.StepResult{Result: flow.Malformed, Description: "The otp input is required."}, nil
	case len(code) > 10:
		return flow.StepResult{Result: flow.Malformed, Description: "The otp input is too long."}, nil
	}
	sub := st.Lockout.For(sc.Username, "")
	if w, err := st.Lockout.Check(ctx, sub, otpCounter, sc.Now); err != nil {
		return flow.StepResult{}, err
	} else if w.Blocked() {
		return lockout.Throttled(w), nil
	}
	if w, err := st.Lockout.Record(ctx, sub, otpCounter, otpCounter, sc.Now); err != nil {
		return flow.StepResult{}, err
	} else if w.Blocked() {
		return lockout.Throttled(w), nil
	}
	user, known, err := sc.Users.User(ctx, sc.Username)
	if err != nil {
		return flow.StepResult{}, err
	}
	var u *policy.User
	if known {
		u = &user
	}
	key, exp, ok := st.Check(u, code, sc.Now)
	if ok {
		err := sc.Replay.MarkUsed(ctx, key, exp)
		if errors.Is(err, storage.ErrConflict) {
			ok = false
		} else if err != nil {
			return flow.StepResult{}, err
		}
	}
	if !ok {
		return flow.StepResult{Result: flow.Failed, Description: "The one-time code is not correct."}, nil
	}
	if err := st.Lockout.Reset(ctx, sub, otpCounter); err != nil {
		return flow.StepResult{}, err
	}
	return flow.StepResult{Result: flow.Passed, AMR: "otp"}, nil
}

// match checks code against the steps t-1, t, t+1 (RFC 6238 §5.2) and
// returns the matching counter.
func match(secret, code string, now time.Time) (int64, bool) {
	opts := totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	base := now.Unix() / 30
	found, counter := false, int64(0)
	for _, d := range []int64{-1, 0, 1} {
		want, err := totp.GenerateCodeCustom(secret, time.Unix((base+d)*30, 0), opts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !found {
			found, counter = true, base+d
		}
	}
	return counter, found
}
