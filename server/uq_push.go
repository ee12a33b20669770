package server

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/uq"
)

// uqPushTimeout bounds one push (three attempts with their backoff and
// netguard's per-request timeout), off the request path.
const uqPushTimeout = 45 * time.Second

// uqEnded is the question's reaction to its end (reach.go taskEnded, on
// whichever instance stored the transition): a Pushed-To-Client question
// is notified (-10 §4.3) — the UST when answered, else the error and the
// question_id (user_refused_to_answer, timeout, unreachable_user).
// Delivery runs in the background with a bounded context, through
// uq.Notifier over the reach core's SSRF-guarded client (https to public
// addresses; 3 attempts on 5xx or a timeout; redirects never followed).
// At least once: the client dedups by question_id (and the UST's jti).
func (s *Server) uqEnded(_ context.Context, t reach.Task) {
	st := s.reach.uq
	st.mu.Lock()
	if tm := st.timers[t.ID]; tm != nil {
		tm.Stop()
		delete(st.timers, t.ID)
	}
	st.mu.Unlock()
	rec, err := recordOf(t)
	if err != nil {
		return
	}
	f, err := uqFrontOf(rec)
	if err != nil || f.Flow != uqFlowPush || t.State == reach.StateSuperseded {
		return
	}
	var note uq.Notification
	if e := uqEndError(t.State); e != nil {
		note = uq.ErrorNotification(f.QuestionID, e)
	} else {
		ust, err := s.uqUST(t)
		if err != nil {
			st.log.Error("uq: push: cannot sign", zap.String("question", digest(f.QuestionID)), zap.Error(err))
			return
		}
		note = uq.SuccessNotification(ust)
	}
	token, err := st.open(t.ID, f.TokenSealed)
	if err != nil {
		st.log.Error("uq: push: notification token does not open", zap.String("question", digest(f.QuestionID)))
		return
	}
	cl, ok := s.policy.Current().Client(t.ClientID)
	if !ok || cl.Reach == nil || cl.Reach.NotificationEndpoint == "" {
		st.log.Warn("uq: push: client has no notification endpoint any more", zap.String("client_id", t.ClientID))
		return
	}
	endpoint := cl.Reach.NotificationEndpoint
	st.goBounded(uqPushTimeout, func(ctx context.Context) {
		err := st.notifier.Notify(ctx, endpoint, token, note)
		var ne *uq.NotifyError
		switch {
		case err == nil:
			st.log.Info("uq: pushed", zap.String("client_id", t.ClientID), zap.String("question", digest(f.QuestionID)), zap.String("state", string(t.State)))
		case errors.As(err, &ne):
			st.log.Warn("uq: push failed", zap.String("client_id", t.ClientID), zap.String("question", digest(f.QuestionID)),
				zap.Int("attempts", ne.Attempts), zap.Int("status", ne.Status), zap.Error(ne.Err))
		default:
			st.log.Warn("uq: push failed", zap.String("client_id", t.ClientID), zap.Error(err))
		}
	})
}

// uqExpireAt arms a timer that ends a Pushed-To-Client question when its
// lifetime passes, so that the client is told timeout (-10 §4.3.2): a
// polling client learns it by polling, a pushed one has nobody asking.
// The timer lives on the instance that created the question; a restart
// loses it (the question then ends silently at its expiry: documented in
// docs/reach.md "User Questioning").
func (s *Server) uqExpireAt(id string, at time.Time) {
	st := s.reach.uq
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return
	}
	st.timers[id] = time.AfterFunc(max(0, at.Sub(s.now())), func() {
		st.mu.Lock()
		delete(st.timers, id)
		st.mu.Unlock()
		ctx, cancel := context.WithTimeout(st.base, 10*time.Second)
		defer cancel()
		s.uqExpire(ctx, id)
	})
}

// uqExpire records a live question EXPIRED and announces it (taskEnded:
// waiters released, the push of timeout). A question that already ended
// is left alone.
func (s *Server) uqExpire(ctx context.Context, id string) {
	t, err := s.reach.store.TransitionTask(ctx, id, []reach.State{reach.StateCreated, reach.StateDelivered, reach.StateSeen}, reach.StateExpired, nil)
	if err != nil {
		return
	}
	s.taskEnded(ctx, t)
}
