package flow

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"time"

	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/reach"
)

// The cross-device redirect_to_app (docs/reach.md "Cross-device
// redirect_to_app"; RFC 10027): when our app is not on the device that
// asked, the client asks us to reach the session's user on another
// device. The engine decides everything about the auth session — who may
// ask, which task is the session's current one, and what completes it —
// and the reach core (server/reach_native.go, behind CrossDevice) stores
// and delivers the tasks.

// ChannelReach is POST /native/reach: a follow-up of a redirect_to_app
// session, bound to the session's client, client authentication and
// DPoP key exactly as a native follow-up is (checkCaller).
const ChannelReach Channel = 100

// StageReached: the user approved a cross-device sign-in on their other
// device; the device's next post of the rotated auth_session to the
// native endpoint gets our code.
const StageReached = "reached"

// CrossDevice is the reach core as the engine sees it (nil: reach off).
type CrossDevice interface {
	// URI is the reach_uri to offer client c in redirect_to_app, "" when
	// cross-device sign-in is off for it (clients[].reach
	// disable_cross_device: RFC 10027 §6.1 per-client switch).
	URI(c *policy.Client) string
	// Create stores a new CREATED app_auth task for spec (number
	// matching: reach.NewBinding). A refusal (the client's creation
	// budget) is a Refuse/SlowDownError error.
	Create(ctx context.Context, spec ReachSpec) (reach.Task, error)
	// Deliver reaches the user's devices for t: nil when one was told;
	// reach.ErrNoChannel or reach.ErrQuota when none can be (the task is
	// then UNAVAILABLE); any other error is a failure (503).
	Deliver(ctx context.Context, t *reach.Task) error
	// Supersede ends task id if it is still live (best effort: a newer
	// task of the same session replaced it).
	Supersede(ctx context.Context, id string)
}

// ReachSpec is a cross-device task to create for a session.
type ReachSpec struct {
	Policy    *policy.Snapshot
	SessionID string
	ClientID  string
	// User is the session's hinted user (docs/decisions.md Q27).
	User string
	// App is the app (apps[].id) the session's redirect_to_app named:
	// only its devices may open and answer the task, as only its token
	// may complete the same-device deep link (app completion,
	// "wrong_app").
	App string
	// JKT is the DPoP key of the caller, which the task's polls must
	// prove too; "" without.
	JKT string
	// ClientAuth: the session's client authenticates on every request.
	ClientAuth bool
	// ExpiresAt is the session's own expiry: the task never outlives it.
	ExpiresAt time.Time
	// ClientIP and UserAgent describe the initiating device, shown to the
	// user (RFC 10027 §6.1.1 risk signals).
	ClientIP, UserAgent string
	// Fallback marks the QR task made after the delivered one was
	// unavailable (charged to no budget twice).
	Fallback bool
}

// Reaching answers POST /native/reach: the task the client polls.
// Delivered: 202 pending; else 424 interaction_unavailable with DeepLink,
// the QR code to show (the app scans it on the other device).
type Reaching struct {
	TaskID      string
	BindingCode string
	ExpiresAt   time.Time
	Delivered   bool
	DeepLink    string
}

func (Reaching) outcome() {}

// ReachAnswer is the user's approval on the other device, as the reach
// core checked it (number matching, the app's user verification).
type ReachAnswer struct {
	// User is the app's signed-in user (username, else subject).
	User string
	AMR  []string
	ACR  string
	At   time.Time
}

// SlowDownError is SlowDown as an error (a CrossDevice refusal).
func SlowDownError(retry time.Duration, desc string) error { return refused(SlowDown(retry, desc)) }

// reachOffer is the reach_uri a redirect_to_app for s carries, or "": a
// local (not federating, not downstream) client with cross-device on,
// and a session that names its user (docs/decisions.md Q27: never
// without a hint — the task goes to that user's devices, and only that
// user may approve it).
func (e *Engine) reachOffer(snap *policy.Snapshot, s *session) string {
	if e.o.Reach == nil || s.x.Downstream || s.x.User == "" || s.Stage != StageApp {
		return ""
	}
	c, ok := snap.Client(s.ClientID)
	if !ok || c.Federating {
		return ""
	}
	return e.o.Reach.URI(c)
}

// reachSession loads the session a POST /native/reach names and checks
// that cross-device sign-in may start for it.
func (e *Engine) reachSession(ctx context.Context, r Request) (*session, error) {
	v := r.Form.Get("auth_session")
	if v == "" {
		return nil, refused(invalidRequest("The auth_session is required."))
	}
	s, err := e.load(ctx, v)
	if err != nil {
		return nil, err
	}
	if err := e.checkCaller(r, s); err != nil {
		return nil, err
	}
	if e.reachOffer(r.Policy, s) == "" {
		return nil, refused(invalidRequest("Cross-device sign-in is not available for this auth_session."))
	}
	if _, ok := r.Policy.App(s.x.App); !ok {
		return nil, refused(invalidRequest("Cross-device sign-in is not available for this auth_session."))
	}
	return s, nil
}

// reachStart serves POST /native/reach: a new task for the session (a
// previous one is superseded), delivered to the user's devices, or — no
// channel — a QR task the app on the other device scans. The
// auth_session is not rotated: the same-device deep link still works.
func (e *Engine) reachStart(ctx context.Context, r Request) (Outcome, error) {
	if e.o.Reach == nil {
		return invalidRequest("Cross-device sign-in is not available."), nil
	}
	s, err := e.reachSession(ctx, r)
	if err != nil {
		return nil, err
	}
	spec := ReachSpec{Policy: r.Policy, SessionID: s.ID, ClientID: s.ClientID, User: s.x.User, App: s.x.App, JKT: r.DPoPJKT,
		ClientAuth: s.x.ClientAuth, ExpiresAt: s.ExpiresAt, ClientIP: r.ClientIP, UserAgent: r.UserAgent}
	t, err := e.o.Reach.Create(ctx, spec)
	if err != nil {
		return nil, err
	}
	if s, err = e.setReachTask(ctx, r, s, t.ID); err != nil {
		e.o.Reach.Supersede(ctx, t.ID)
		return nil, err
	}
	err = e.o.Reach.Deliver(ctx, &t)
	switch {
	case err == nil:
		return Reaching{TaskID: t.ID, BindingCode: strconv.Itoa(t.Binding.Right), ExpiresAt: t.ExpiresAt, Delivered: true}, nil
	case !errors.Is(err, reach.ErrNoChannel) && !errors.Is(err, reach.ErrQuota):
		e.o.Reach.Supersede(ctx, t.ID)
		return nil, err
	}
	// No channel (or the user's quota, answered alike: push bombing gets
	// nothing, docs/reach.md): a fresh task that is never delivered, for
	// the QR code. Its deep link carries only configuration and the
	// task's single-use ref — never the auth_session — and leads the app
	// to the same number matching.
	spec.Fallback = true
	qr, err := e.o.Reach.Create(ctx, spec)
	if err != nil {
		return nil, err
	}
	if s, err = e.setReachTask(ctx, r, s, qr.ID); err != nil {
		e.o.Reach.Supersede(ctx, qr.ID)
		return nil, err
	}
	app, _ := r.Policy.App(s.x.App)
	link := app.DeepLink + "?" + url.Values{"client_id": {s.ClientID}, "reach_ref": {qr.Ref}}.Encode()
	return Reaching{TaskID: qr.ID, BindingCode: strconv.Itoa(qr.Binding.Right), ExpiresAt: qr.ExpiresAt, DeepLink: link}, nil
}

// setReachTask records id as the session's current task (the device's
// auth_session stays valid: keep) and supersedes the previous one. A lost
// compare-and-swap (the app completed, another POST) reloads and checks
// again, a few times.
func (e *Engine) setReachTask(ctx context.Context, r Request, s *session, id string) (*session, error) {
	for i := 0; ; i++ {
		prev := s.x.ReachTask
		s.x.ReachTask = id
		err := e.keep(ctx, s)
		if err == nil {
			if prev != "" && prev != id {
				e.o.Reach.Supersede(ctx, prev)
			}
			return s, nil
		}
		if !IsRefusal(err) || i == 2 {
			return nil, err
		}
		if s, err = e.reachSession(ctx, r); err != nil {
			return nil, err
		}
	}
}

// CompleteReach is the one place an approved cross-device task completes
// its session: the session (locked by compare-and-swap) must still wait
// at StageApp with taskID as its current task, the approving user must be
// the hinted user (Q27) and a registered one; then the session is
// authenticated (amr = the app's + "app", acr, auth_time of the app's
// user verification) and moves to StageReached under a ROTATED
// auth_session, returned once. The device posts it to the native endpoint
// for the code (mint, bound to the session's PKCE and DPoP key).
// Refusals leave the session as it was (the same-device deep link or a
// new POST /native/reach still work).
func (e *Engine) CompleteReach(ctx context.Context, snap *policy.Snapshot, sessionID, taskID string, a ReachAnswer) (string, *Refusal, error) {
	done := invalidRequest("This sign-in was already completed or has ended.")
	s, err := e.loadByID(ctx, sessionID)
	if IsRefusal(err) {
		return "", &done, nil
	} else if err != nil {
		return "", nil, err
	}
	events.NoteClient(ctx, s.ClientID)
	switch {
	case s.Stage != StageApp || s.x.ReachTask != taskID:
		return "", &done, nil
	case s.x.User == "" || a.User != s.x.User:
		e.signIn(ctx, false, events.MethodApp, s.ClientID, "", "other_user")
		rf := refuse(statusForbidden, "access_denied", "The user who approved is not the user this sign-in is for.")
		return "", &rf, nil
	}
	app, okApp := snap.App(s.x.App)
	u, known, err := snap.Users().User(ctx, a.User)
	switch {
	case err != nil:
		return "", nil, err
	case !known || !okApp || (app.EnrolledOnly && !contains(u.Apps, app.ID)):
		e.signIn(ctx, false, events.MethodApp, s.ClientID, "", "unknown_user")
		rf := refuse(statusForbidden, "access_denied", "The user who approved cannot sign in here.")
		return "", &rf, nil
	}
	if ma := s.Request["max_age"]; ma != "" {
		limit, _ := strconv.Atoi(ma)
		if a.At.IsZero() || e.o.Now().Sub(a.At) > time.Duration(limit)*time.Second {
			rf := refuse(statusForbidden, "access_denied", "The approval is older than max_age allows.")
			return "", &rf, nil
		}
	}
	s.Subject, s.Username, s.x.User, s.x.Hinted = u.Subject, u.Username, u.Username, false
	s.AMR = append(append([]string(nil), a.AMR...), "app")
	s.AuthTime, s.x.ACR, s.Stage = a.At, a.ACR, StageReached
	value, err := e.advance(ctx, s)
	if IsRefusal(err) {
		return "", &done, nil
	} else if err != nil {
		return "", nil, err
	}
	e.signIn(ctx, true, events.MethodApp, s.ClientID, "", "")
	return value, nil, nil
}
