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

	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/storage"
)

// Step checks a TOTP code for users who have a secret.
type Step struct{}

var _ flow.Step = Step{}

// Name implements flow.Step.
func (Step) Name() string { return "otp" }

// Applies implements flow.Step: users with a TOTP secret.
func (Step) Applies(u *policy.User) bool { return u != nil && u.TOTPSecret != "" }

// Challenge implements flow.Step.
func (Step) Challenge(context.Context, flow.StepContext) (flow.ChallengeSpec, json.RawMessage, error) {
	return flow.ChallengeSpec{Type: "otp", Description: "Enter the one-time code from your authenticator app.", Inputs: map[string]flow.Input{
		"otp": {Title: "One-time code", Hint: "one-time-code", Description: "The 6-digit code from your authenticator app."},
	}}, nil, nil
}

// Verify implements flow.Step. A code is accepted once (RFC 6238 §5.2):
// the replay marker outlives the ±1 step window.
func (Step) Verify(ctx context.Context, sc flow.StepContext, answers url.Values) (flow.StepResult, error) {
	code := answers.Get("otp")
	switch {
	case code == "":
		return flow.StepResult{Result: flow.Malformed, Description: "The otp input is required."}, nil
	case len(code) > 10:
		return flow.StepResult{Result: flow.Malformed, Description: "The otp input is too long."}, nil
	}
	user, known, err := sc.Users.User(ctx, sc.Username)
	if err != nil {
		return flow.StepResult{}, err
	}
	if !known || user.TOTPSecret == "" {
		return flow.StepResult{Result: flow.Failed, Description: "The one-time code is not correct."}, nil
	}
	counter, ok := match(user.TOTPSecret, code, sc.Now)
	if ok {
		exp := time.Unix((counter+3)*30, 0)
		err := sc.Replay.MarkUsed(ctx, "totp:"+user.Subject+":"+strconv.FormatInt(counter, 10), exp)
		if errors.Is(err, storage.ErrConflict) {
			ok = false
		} else if err != nil {
			return flow.StepResult{}, err
		}
	}
	if !ok {
		return flow.StepResult{Result: flow.Failed, Description: "The one-time code is not correct."}, nil
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
