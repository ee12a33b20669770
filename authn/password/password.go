// Package password is the username-and-password step (RFC 8176 "pwd").
package password

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	"golang.org/x/crypto/bcrypt"

	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/policy"
)

// Step checks a password against the user's bcrypt hash.
type Step struct {
	// dummy equalises the time of an unknown-user check with a
	// wrong-password check.
	dummy []byte
}

var _ flow.Step = (*Step)(nil)

// New returns the password step.
func New() *Step {
	h, err := bcrypt.GenerateFromPassword([]byte("fedas-dummy"), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return &Step{dummy: h}
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

// Verify implements flow.Step. The answer is the same whether or not the
// user exists, and takes the same time.
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
	user, known, err := sc.Users.User(ctx, username)
	if err != nil {
		return flow.StepResult{}, err
	}
	hash := s.dummy
	if known {
		hash = []byte(user.PasswordHash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pw)) != nil || !known {
		return flow.StepResult{Result: flow.Failed, Description: "The username or password is not correct."}, nil
	}
	return flow.StepResult{Result: flow.Passed, User: &user, AMR: "pwd"}, nil
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
