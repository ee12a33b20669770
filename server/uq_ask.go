package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/uq"
)

// uqAsk serves the User Questioning request endpoint (-10 §4.1): an
// access token with scope question (bearer or DPoP-bound); a JSON body
// checked by uq.ParseRequest against the token (user_id iff it names no
// user) and the client's registration (client_notification_token iff it
// has a client_notification_endpoint); the user found; wished_acr and
// wished_amr checked against what the app's verification can report;
// then a reach task of kind question is stored and delivered to the
// user's devices. 200 {question_id}; every refusal 400 with -10's code,
// an outage 503 (docs/decisions.md Q25).
func (s *Server) uqAsk(c echo.Context) error {
	ctx := c.Request().Context()
	caller, err := s.reachToken(c, config.ScopeQuestion, false)
	if err != nil {
		return s.uqFail(c, err)
	}
	events.NoteClient(ctx, caller.ClientID)
	snap := s.snapshot(ctx)
	cl, ok := snap.Client(caller.ClientID)
	if !ok {
		return s.uqFail(c, uq.NewError(uq.ErrUnauthorized, "The access token's client is not registered."))
	}
	push := cl.Reach != nil && cl.Reach.NotificationEndpoint != ""
	if mt, _, _ := mime.ParseMediaType(c.Request().Header.Get("Content-Type")); mt != "application/json" {
		return s.uqFail(c, uq.NewError(uq.ErrInvalidRequest, "The body must be application/json."))
	}
	lim := uq.DefaultLimits()
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, int64(lim.MaxBodyBytes)+1))
	if err != nil {
		return s.uqFail(c, uq.NewError(uq.ErrInvalidRequest, "The body could not be read."))
	}
	req, err := uq.ParseRequest(body, uq.Context{UserBound: caller.User != "", Push: push, Limits: lim})
	if err != nil {
		return s.uqFail(c, err)
	}
	// -10 §4.1.1: the OP must be able to meet wished_acr (an acr our
	// app's verification can report, config reach.acrs) and, when
	// wished_amr is given, at least one of its methods.
	if !containsStr(s.reach.cfg.ACRValues(), req.WishedACR) {
		return s.uqFail(c, uq.NewError(uq.ErrNoSuitableMethod, "wished_acr is not one of acr_list."))
	}
	if len(req.WishedAMR) > 0 && !s.uqAMRSatisfiable(req.WishedAMR) {
		return s.uqFail(c, uq.NewError(uq.ErrNoSuitableMethod, "No method of wished_amr is in amr_list."))
	}
	// The budget is spent once the request is well formed, before the
	// user is looked up: unknown_user answers are bounded too.
	if ok, wait := s.uqBudget(ctx, "q", caller.ClientID, s.reach.cfg.QuestionsPerMinute); !ok {
		return s.uqFail(c, uqRateError(uq.ErrHighRateClient, wait, "This client asks questions too fast."))
	}
	user, sub := caller.User, caller.Subject
	if caller.User == "" {
		u, found, err := s.uqFindUser(ctx, snap, req.UserIDType, req.UserID)
		switch {
		case err != nil:
			return s.uqFail(c, err)
		case !found && s.reach.cfg.FoldUnknownUser:
			return s.uqFail(c, uq.NewError(uq.ErrUnreachableUser, "The user cannot be reached."))
		case !found:
			return s.uqFail(c, uq.NewError(uq.ErrUnknownUser, "No user has this user_id."))
		}
		user, sub = u.Username, u.Subject
		if sub == "" {
			sub = u.Username
		}
	}
	if sub == "" {
		sub = user
	}

	t := reach.Task{ID: reach.NewID(), Kind: reach.KindQuestion, User: user, ClientID: caller.ClientID,
		State: reach.StateCreated, Ref: reach.NewID(), ExpiresAt: s.now().Add(s.reach.cfg.QuestionTTL)}
	qid := s.reach.uq.uqQuestionID(t.ID)
	front := uqFront{Flow: uqFlowPull, QuestionID: qid, Sub: sub, UserID: req.UserID, UserIDType: req.UserIDType, Asker: caller.User}
	if push {
		front.Flow = uqFlowPush
		front.TokenSHA256 = digest(req.ClientNotificationToken)
		front.TokenSealed = s.reach.uq.seal(t.ID, req.ClientNotificationToken)
	}
	fb, _ := json.Marshal(front)
	// Display: exactly what the client sent (-10 §4.1.1 "SHOULD NOT be
	// modified"; uq.ParseRequest refused what could not be shown as is).
	rec := taskRecord{Display: taskDisplay{ClientID: caller.ClientID, ClientName: clientName(snap, caller.ClientID),
		Question: req.QuestionToDisplay, Statements: req.StatementsToDisplay, WishedACR: req.WishedACR, WishedAMR: req.WishedAMR},
		Front: fb}
	if err := rec.encode(&t); err != nil {
		return s.uqFail(c, uq.NewError(uq.ErrInvalidRequest, "The question is too large."))
	}
	if err := s.reach.store.CreateTask(ctx, t); err != nil {
		if errors.Is(err, reach.ErrInvalid) {
			// The store refuses a task it cannot keep (a user id too long
			// for a task, a lifetime its clock finds outside its bounds):
			// the request, not the server, is what can change.
			return s.uqFail(c, uq.NewError(uq.ErrInvalidRequest, "This question cannot be put to this user."))
		}
		return s.uqFail(c, err)
	}
	if _, err := s.reach.reacher.Reach(ctx, user, &t); err != nil {
		switch {
		case errors.Is(err, reach.ErrNoChannel), errors.Is(err, reach.ErrQuota):
			// A user over the live-task quota is answered like one
			// without a channel (docs/reach.md: nothing for push bombing).
			return s.uqFail(c, uq.NewError(uq.ErrUnreachableUser, "The user cannot be reached now."))
		case errors.Is(err, reach.ErrState):
			// Ended while being delivered (expired, superseded): ask again.
			return s.uqFail(c, uq.NewError(uq.ErrUnreachableUser, "The question ended before it reached the user."))
		}
		return s.uqFail(c, err)
	}
	if push {
		s.uqExpireAt(t.ID, t.ExpiresAt)
	}
	return writeJSON(c, 200, map[string]string{"question_id": qid})
}

// uqAMRSatisfiable: one of wished (priority order, -10 §4.1.1) is an amr
// the app's verification reports (amr_list).
func (s *Server) uqAMRSatisfiable(wished []string) bool {
	have := s.uqAMRList()
	for _, a := range wished {
		if containsStr(have, a) {
			return true
		}
	}
	return false
}

// userFinder is an optional policy.UserStore capability: find an account
// by an attribute (sub, email, phone_number). Without it the configured
// users are searched.
type userFinder interface {
	FindUser(ctx context.Context, attr, value string) (policy.User, bool, error)
}

// uqFindUser resolves a -10 §4.1.1 user_id: sub → the user's subject,
// email → the email claim (case-insensitive), msisdn → the phone_number
// claim. More than one match finds nobody (never a guess).
func (s *Server) uqFindUser(ctx context.Context, snap *policy.Snapshot, typ, id string) (policy.User, bool, error) {
	attr := map[string]string{uq.UserIDSub: "sub", uq.UserIDEmail: "email", uq.UserIDMSISDN: "phone_number"}[typ]
	if f, ok := snap.Users().(userFinder); ok {
		u, found, err := f.FindUser(ctx, attr, id)
		if err != nil {
			return u, false, userStoreErr(err)
		}
		return u, found, nil
	}
	var match []string
	for _, u := range snap.Config.Users {
		var v string
		switch attr {
		case "sub":
			v = u.Subject
			if v == "" {
				v = u.Username
			}
		default:
			v = u.Claims[attr]
		}
		if v != "" && (v == id || attr == "email" && strings.EqualFold(v, id)) {
			match = append(match, u.Username)
		}
	}
	if len(match) != 1 {
		return policy.User{}, false, nil
	}
	u, found, err := snap.Users().User(ctx, match[0])
	if err != nil {
		return u, false, userStoreErr(err)
	}
	return u, found, nil
}

// userStoreErr marks a user store failure as an outage (503).
func userStoreErr(err error) error {
	if errors.Is(err, storage.ErrUnavailable) {
		return err
	}
	return errors.Join(storage.ErrUnavailable, err)
}
