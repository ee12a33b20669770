// Package password is the username-and-password step (RFC 8176 "pwd").
package password

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/policy"
)

// Step checks a password against the user's bcrypt hash.
type Step struct {
	// dummies by bcrypt cost: an unknown user's check compares against
	// one of the users' own cost, so it takes as long as a wrong password.
	dummies sync.Map
}

var _ flow.Step = (*Step)(nil)

// New returns the password step.
func New() *Step { return &Step{} }

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
	hash := []byte(user.PasswordHash)
	if !known {
		if hash, err = s.dummy(sc.Users); err != nil {
			return flow.StepResult{}, err
		}
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
