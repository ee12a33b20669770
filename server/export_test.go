package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/storage"
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

// ReachStore is s's reach store: the cross-device tests drive the app
// side through it (register a device, mark it present, read its inbox,
// take a QR ref) until they switch to the app API.
func ReachStore(s *Server) storage.ReachStore { return s.reach.store }

// ReachAck opens task id on the app (SEEN; an already open task is
// fine), as the app's ack or a QR scan does, and announces it.
func ReachAck(ctx context.Context, s *Server, id string) error {
	t, err := s.reach.store.TransitionTask(ctx, id, []reach.State{reach.StateCreated, reach.StateDelivered}, reach.StateSeen, nil)
	if err == nil {
		s.taskEnded(ctx, t)
	} else if !errors.Is(err, reach.ErrState) {
		return err
	}
	return nil
}

// ReachTestAnswer is an app's answer to a task (ReachAnswer).
type ReachTestAnswer struct {
	// Device is the answering device (its User is the app's user).
	Device reach.Device
	// Decision is approve or deny.
	Decision string
	// Pick is the number-matching choice of an approval.
	Pick int
	AMR  []string
}

// ReachAnswer applies an app's answer to task id as the app API does
// (docs/reach.md): the ack (SEEN), then — a device of another user than
// the task's: DENIED, reason other_user; deny: DENIED; approve: the
// number-matching pick (wrong: an attempt, the third FAILED; right:
// APPROVED with the answer recorded). Each stored transition is
// announced (taskEnded).
func ReachAnswer(ctx context.Context, s *Server, id string, a ReachTestAnswer) (reach.Task, error) {
	if err := ReachAck(ctx, s, id); err != nil {
		return reach.Task{}, err
	}
	t, err := s.reach.store.TransitionTask(ctx, id, []reach.State{reach.StateSeen}, reach.StateApproved, func(n *reach.Task) error {
		rec, err := recordOf(*n)
		if err != nil {
			return err
		}
		ans := &taskAnswer{Decision: a.Decision, AMR: a.AMR, ACR: s.reach.cfg.ACRFor(a.AMR), User: a.Device.User, Device: a.Device.ID, At: s.now().Unix()}
		switch {
		case a.Device.User != n.User:
			n.State, ans.Reason = reach.StateDenied, "other_user"
		case a.Decision == "deny":
			n.State = reach.StateDenied
		default:
			n.State = reach.StateSeen
			if err := n.Pick(a.Pick); errors.Is(err, reach.ErrBinding) {
				if n.State != reach.StateFailed {
					return nil
				}
				ans.Reason = "binding"
			} else if err != nil {
				return err
			} else {
				n.State = reach.StateApproved
			}
		}
		rec.Answer = ans
		return rec.encode(n)
	})
	if err != nil {
		return t, err
	}
	s.taskEnded(ctx, t)
	return t, nil
}

// AnswerQuestion answers the User Questioning question qid as the app
// would through its task API (reach_app.go): the task is acked (SEEN)
// unless it already was, then moved to ANSWERED (decision "answer") or
// DENIED ("deny") with the answer in its record, and announced
// (taskEnded). A test seam until the app-side API is merged; the tests
// call it through one helper (uq_env_test.go answerQuestion).
func AnswerQuestion(s *Server, qid, decision, statement string, amr []string, acr string) error {
	ctx := context.Background()
	id, ok := s.reach.uq.uqTaskID(qid)
	if !ok {
		return fmt.Errorf("not a question id")
	}
	t, err := s.reach.store.Task(ctx, id)
	if err != nil {
		return err
	}
	if t.State != reach.StateSeen {
		if t, err = s.reach.store.TransitionTask(ctx, id, []reach.State{t.State}, reach.StateSeen, nil); err != nil {
			return err
		}
		s.taskEnded(ctx, t)
	}
	to := reach.StateAnswered
	if decision == "deny" {
		to = reach.StateDenied
	}
	t, err = s.reach.store.TransitionTask(ctx, id, []reach.State{reach.StateSeen}, to, func(n *reach.Task) error {
		rec, err := recordOf(*n)
		if err != nil {
			return err
		}
		rec.Answer = &taskAnswer{Decision: decision, Statement: statement, AMR: amr, ACR: acr, User: n.User, Device: "test", At: s.now().Unix()}
		return rec.encode(n)
	})
	if err != nil {
		return err
	}
	s.taskEnded(ctx, t)
	return nil
}

// ExpireQuestion runs what a Pushed-To-Client question's expiry timer
// runs (uq_push.go uqExpire), without waiting for it.
func ExpireQuestion(s *Server, qid string) {
	id, _ := s.reach.uq.uqTaskID(qid)
	s.uqExpire(context.Background(), id)
}

// UQFastRetries makes the UQ notifier's retries wait no time (they wait
// 1 s and 2 s in production).
func UQFastRetries(s *Server) {
	s.reach.uq.notifier.Sleep = func(context.Context, time.Duration) error { return nil }
}

// UQTaskID is the reach task id of a question_id.
func UQTaskID(s *Server, qid string) string {
	id, _ := s.reach.uq.uqTaskID(qid)
	return id
}

// UQPushesDone waits for the UQ pushes in flight on s to finish.
func UQPushesDone(s *Server) { s.reach.uq.wg.Wait() }
