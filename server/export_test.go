package server

import (
	"context"
	"fmt"
	"time"

	"github.com/fedas/fedas/reach"
)

// PasswordChecks reports how many bcrypt comparisons s's password step
// has run: the lockout tests count an answer's work with it instead of
// timing it.
func PasswordChecks(s *Server) int64 { return s.password.Checks() }

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
