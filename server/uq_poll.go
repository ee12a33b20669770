package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/uq"
)

// uqGate is the polling gate of -10 §4.2.5: one question polled at most
// once a second (high_rate_question); the newest poll wins
// (duplicate_requests for the older). The per-client limit is a store
// budget (uqBudget), so PollGate's own client window is left wide open.
var uqGate = uq.PollGate{QuestionInterval: time.Second, ClientLimit: 1 << 30}

// uqPoll serves the User Questioning polling endpoint (-10 §4.2): the
// asking client's access token; a push client is forbidden; the
// Client-Timeout / Client_timeout hold (uq.Hold, at most reach.max_hold)
// is a long poll on the task (waitTask: the hub, no Redis connection per
// waiter). Pending → 304 without a body; answered → 200
// {user_statement_token}; the other ends → their -10 errors (the
// task→answer table of docs/reach.md).
func (s *Server) uqPoll(c echo.Context) error {
	ctx := c.Request().Context()
	caller, err := s.reachToken(c, config.ScopeQuestion, false)
	if err != nil {
		return s.uqFail(c, err)
	}
	events.NoteClient(ctx, caller.ClientID)
	cl, ok := s.snapshot(ctx).Client(caller.ClientID)
	if !ok {
		return s.uqFail(c, uq.NewError(uq.ErrUnauthorized, "The access token's client is not registered."))
	}
	if cl.Reach != nil && cl.Reach.NotificationEndpoint != "" {
		return s.uqFail(c, uq.NewError(uq.ErrForbidden, "This client is registered for notifications (Pushed-To-Client) and may not poll."))
	}
	q := c.QueryParams()["question_id"]
	if len(q) != 1 || q[0] == "" {
		return s.uqFail(c, uq.NewError(uq.ErrInvalidRequest, "Exactly one question_id is required."))
	}
	hold, err := uq.Hold(c.Request().Header, s.reach.cfg.MaxHold)
	if err != nil {
		return s.uqFail(c, err)
	}
	defer s.holdRequest(c, hold)()
	ctx = c.Request().Context()
	if ok, wait := s.uqBudget(ctx, "p", caller.ClientID, s.reach.cfg.PollsPerMinute); !ok {
		return s.uqFail(c, uqRateError(uq.ErrHighRateClient, wait, "This client polls too fast."))
	}
	unknown := uq.NewError(uq.ErrInvalidQuestionID, "No question of this client has this question_id.")
	id, ok := s.reach.uq.uqTaskID(q[0])
	if !ok {
		return s.uqFail(c, unknown)
	}
	t, err := s.reach.store.Task(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return s.uqFail(c, unknown)
	case err != nil:
		return s.uqFail(c, err)
	case t.Kind != reach.KindQuestion || t.ClientID != caller.ClientID || !uqAskedBy(t, caller.User):
		return s.uqFail(c, unknown)
	}
	t, gen, err := s.uqAdmit(ctx, t)
	if err != nil {
		return s.uqFail(c, err)
	}
	if t.Effective(s.now()).Live() && hold > 0 && gen > 0 {
		t, err = s.waitTask(ctx, id, hold, func(t reach.Task) bool {
			return !t.Effective(s.now()).Live() || uqGenOf(t) > gen
		})
		if err != nil {
			return s.uqFail(c, err)
		}
		if t.Effective(s.now()).Live() {
			if err := uqGate.Superseded(gen, uqGenOf(t)); err != nil {
				return s.uqFail(c, err)
			}
		}
	}
	return s.uqAnswer(c, t)
}

// uqAskedBy reports whether a poll by user (the token's, "" for a
// client-credentials token) may read question t: one asked with a
// user's token only by that user's tokens (uqFront.Asker), one asked
// with the client's own token by any of the client's.
func uqAskedBy(t reach.Task, user string) bool {
	rec, err := recordOf(t)
	if err != nil {
		return false
	}
	f, err := uqFrontOf(rec)
	return err == nil && (f.Asker == "" || f.Asker == user)
}

// uqAdmit passes a poll through the gate. A live question's gate state is
// updated in the task record by the store's compare-and-swap (the same
// state, re-written), the decision taken on the state as stored, so it
// holds across instances; a newer poll then wakes the older ones
// (reach.TaskTopic), which answer duplicate_requests. An ended question
// is answered at once (nothing left to gate); a question past its
// lifetime is recorded EXPIRED first. gen is the poll's generation (0
// when none was taken).
func (s *Server) uqAdmit(ctx context.Context, t reach.Task) (reach.Task, uint64, error) {
	for range 4 {
		now := s.now()
		st := t.Effective(now)
		switch {
		case st == reach.StateExpired && t.State.Live():
			got, err := s.reach.store.TransitionTask(ctx, t.ID, []reach.State{t.State}, reach.StateExpired, nil)
			if errors.Is(err, reach.ErrState) {
				if t, err = s.reach.store.Task(ctx, t.ID); err != nil {
					return t, 0, err
				}
				continue
			}
			if err != nil {
				return t, 0, err
			}
			s.taskEnded(ctx, got)
			return got, 0, nil
		case !st.Live():
			return t, 0, nil
		case t.State == reach.StateCreated:
			// Still being delivered (no edge rewrites CREATED): pending.
			return t, 0, nil
		}
		var gen uint64
		got, err := s.reach.store.TransitionTask(ctx, t.ID, []reach.State{t.State}, t.State, func(n *reach.Task) error {
			rec, err := recordOf(*n)
			if err != nil {
				return err
			}
			f, err := uqFrontOf(rec)
			if err != nil {
				return err
			}
			var last time.Time
			if f.LastPoll > 0 {
				last = time.UnixMilli(f.LastPoll)
			}
			next, err := uqGate.Admit(now, uq.PollState{Generation: f.PollGen, LastQuestionPoll: last})
			if err != nil {
				return err
			}
			f.PollGen, f.LastPoll, gen = next.Generation, now.UnixMilli(), next.Generation
			rec.Front, _ = json.Marshal(f)
			return rec.encode(n)
		})
		if errors.Is(err, reach.ErrState) {
			// Moved on meanwhile (seen, answered, expired): look again.
			if t, err = s.reach.store.Task(ctx, t.ID); err != nil {
				return t, 0, err
			}
			continue
		}
		if err != nil {
			return t, 0, err
		}
		_ = s.reach.hub.Notify(ctx, reach.TaskTopic(t.ID))
		return got, gen, nil
	}
	return t, 0, uq.NewError(uq.ErrHighRateQuestion, "The question is changing too fast; poll again.")
}

// uqGenOf is the poll generation stored in a question's record.
func uqGenOf(t reach.Task) uint64 {
	rec, err := recordOf(t)
	if err != nil {
		return 0
	}
	f, _ := uqFrontOf(rec)
	return f.PollGen
}

// uqAnswer answers a poll with the question's state (docs/reach.md
// task→answer table): pending 304 (no body), ANSWERED 200 with the UST,
// DENIED/FAILED user_refused_to_answer, EXPIRED timeout, UNAVAILABLE
// unreachable_user, SUPERSEDED invalid_question_id.
func (s *Server) uqAnswer(c echo.Context, t reach.Task) error {
	if e := uqEndError(t.Effective(s.now())); e != nil {
		return s.uqFail(c, e)
	}
	if t.Effective(s.now()).Live() {
		h := c.Response().Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Pragma", "no-cache")
		return c.NoContent(http.StatusNotModified)
	}
	ust, err := s.uqUST(t)
	if err != nil {
		return s.uqFail(c, err)
	}
	return writeJSON(c, http.StatusOK, map[string]string{"user_statement_token": ust})
}

// uqEndError is the -10 error of an ended question that has no UST, nil
// for ANSWERED and live ones.
func uqEndError(st reach.State) *uq.Error {
	switch st {
	case reach.StateDenied, reach.StateFailed:
		return uq.NewError(uq.ErrUserRefusedToAnswer, "The user refused to answer.")
	case reach.StateExpired:
		return uq.NewError(uq.ErrTimeout, "The user did not answer in time.")
	case reach.StateUnavailable:
		return uq.NewError(uq.ErrUnreachableUser, "The user could not be reached.")
	case reach.StateSuperseded, reach.StateApproved:
		return uq.NewError(uq.ErrInvalidQuestionID, "The question was withdrawn.")
	}
	return nil
}

// uqUST signs the User Statement Token of an answered question (-10 §2):
// exactly the specification's claims plus iat and jti, ES256 under the
// key published at jwks_uri. The claims are a function of the stored
// answer (iat = statement_date, jti derived from the question), so every
// poll and the push carry the same statement, each signature fresh.
func (s *Server) uqUST(t reach.Task) (string, error) {
	rec, err := recordOf(t)
	if err != nil {
		return "", err
	}
	f, err := uqFrontOf(rec)
	if err != nil {
		return "", err
	}
	a := rec.Answer
	if a == nil || t.State != reach.StateAnswered {
		return "", errors.New("uq: answered question without an answer")
	}
	at := a.At
	if at > 1e12 { // milliseconds
		at /= 1000
	}
	acr := a.ACR
	if acr == "" {
		acr = s.reach.cfg.ACRFor(a.AMR)
	}
	j := sha256.Sum256([]byte("fedas/uq-ust/v1\x00" + f.QuestionID))
	return uq.Sign(uq.Claims{
		QuestionID: f.QuestionID, Issuer: s.cfg.Issuer, Subject: f.Sub, Audience: []string{t.ClientID},
		UserID: f.UserID, UserIDType: f.UserIDType,
		QuestionDisplayed: rec.Display.Question, DisplayedStatements: rec.Display.Statements,
		Statement: a.Statement, StatementDate: at, UsedAMR: a.AMR, UsedACR: acr,
		IssuedAt: at, JTI: base64.RawURLEncoding.EncodeToString(j[:16]),
	}, s.reach.uq.signer)
}
