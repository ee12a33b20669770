package server

import (
	"context"
	"time"
)

// PasswordChecks reports how many bcrypt comparisons s's password step
// has run: the lockout tests count an answer's work with it instead of
// timing it.
func PasswordChecks(s *Server) int64 { return s.password.Checks() }

// UQFastRetries makes the UQ notifier's retries wait no time (they wait
// 1 s and 2 s in production).
func UQFastRetries(s *Server) {
	s.reach.uq.notifier.Sleep = func(context.Context, time.Duration) error { return nil }
}

// UQTaskID is the reach task id of a question_id: the app API shows the
// app tasks, never question_ids, so a test that answers a given
// question through the app (uq_env_test.go answerQuestion) or reads its
// poll gate needs to know which task it is.
func UQTaskID(s *Server, qid string) string {
	id, _ := s.reach.uq.uqTaskID(qid)
	return id
}

// UQPushesDone waits for the UQ pushes in flight on s to finish.
func UQPushesDone(s *Server) { s.reach.uq.wg.Wait() }

// UQExpiryTimersNow runs now the Pushed-To-Client expiry timers armed on
// s (uq_push.go uqExpireAt) of the live questions whose lifetime has
// passed on s's clock, and returns how many. The timers are real-time
// time.AfterFunc timers that a test clock does not drive, and no HTTP
// request makes a pushed question expire (the client may not poll it):
// a test advances the deployment's clock past the lifetime and then lets
// the timers run what they run at that moment (the same callback).
func UQExpiryTimersNow(s *Server) int {
	st := s.reach.uq
	st.mu.Lock()
	armed := make(map[string]*time.Timer, len(st.timers))
	for id, tm := range st.timers {
		armed[id] = tm
	}
	st.mu.Unlock()
	n := 0
	for id, tm := range armed {
		t, err := s.reach.store.Task(context.Background(), id)
		if err == nil && t.State.Live() && !t.ExpiresAt.After(s.now()) && tm.Reset(0) {
			n++
		}
	}
	return n
}
