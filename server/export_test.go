package server

import (
	"context"

	"github.com/fedas/fedas/reach"
)

// PasswordChecks reports how many bcrypt comparisons s's password step
// has run: the lockout tests count an answer's work with it instead of
// timing it.
func PasswordChecks(s *Server) int64 { return s.password.Checks() }

// RelayTestAck and RelayTestAnswer stand for the app-side API in the
// relay's tests (until they drive POST /reach/tasks/{id}/ack and
// /response over HTTP): the app opens the task (SEEN), then the user
// approves or denies it, each transition stored the way the app API
// stores it and announced with taskEnded.
func RelayTestAck(s *Server, ctx context.Context, id string) error {
	t, err := s.reach.store.TransitionTask(ctx, id, []reach.State{reach.StateCreated, reach.StateDelivered}, reach.StateSeen, nil)
	if err != nil {
		return err
	}
	s.taskEnded(ctx, t)
	return nil
}

// RelayTestAnswer: see RelayTestAck; decision is approve or deny.
func RelayTestAnswer(s *Server, ctx context.Context, id, decision, user, device string) error {
	to := reach.StateApproved
	if decision == "deny" {
		to = reach.StateDenied
	}
	t, err := s.reach.store.TransitionTask(ctx, id, []reach.State{reach.StateSeen}, to, func(t *reach.Task) error {
		rec, err := recordOf(*t)
		if err != nil {
			return err
		}
		rec.Answer = &taskAnswer{Decision: decision, User: user, Device: device, At: s.now().Unix()}
		return rec.encode(t)
	})
	if err != nil {
		return err
	}
	s.taskEnded(ctx, t)
	return nil
}
