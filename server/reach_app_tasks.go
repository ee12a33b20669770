package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/storage"
)

// The app's side of a task (docs/reach.md "App API"): the app reads the
// task delivered to its device (or whose QR ref it scanned), acks it
// (SEEN, "interacting") and answers it. A task is visible only to the
// devices on its Devices list: every other device — of this user or
// another — gets the not-found answer, so that no task is revealed.

// taskView is what the app is shown of a task (server/reach.go
// taskDisplay plus the state and the number-matching choices).
type taskView struct {
	ID        string     `json:"id"`
	Kind      reach.Kind `json:"kind"`
	Status    string     `json:"status"`
	ExpiresIn int64      `json:"expires_in"`
	taskDisplay
	BindingChoices []int `json:"binding_choices,omitempty"`
}

// taskStatus is a state's name for the app: CREATED and DELIVERED are
// pending, SEEN is interacting, the others their lower-case names.
func taskStatus(st reach.State) string {
	switch st {
	case reach.StateCreated, reach.StateDelivered:
		return "pending"
	case reach.StateSeen:
		return "interacting"
	case reach.StateApproved:
		return "approved"
	case reach.StateDenied:
		return "denied"
	case reach.StateAnswered:
		return "answered"
	case reach.StateUnavailable:
		return "unavailable"
	case reach.StateExpired:
		return "expired"
	case reach.StateSuperseded:
		return "superseded"
	}
	return "failed"
}

func (s *Server) viewOfTask(t reach.Task) (taskView, error) {
	rec, err := recordOf(t)
	if err != nil {
		return taskView{}, err
	}
	d := rec.Display
	st := t.Effective(s.now())
	v := taskView{ID: t.ID, Kind: t.Kind, Status: taskStatus(st), taskDisplay: d}
	if v.ClientID == "" {
		v.ClientID = t.ClientID
	}
	if st.Live() {
		v.ExpiresIn = max(int64(t.ExpiresAt.Sub(s.now())/time.Second), 0)
		if !t.Binding.IsZero() {
			v.BindingChoices = slices.Clone(t.Binding.Choices)
		}
	}
	return v, nil
}

// appTask is the caller, its device and the task the path names, when
// the device may see it.
func (s *Server) appTask(c echo.Context) (*appCaller, reach.Device, reach.Task, error) {
	ctx := c.Request().Context()
	ac, err := s.reachAppCaller(c)
	if err != nil {
		return nil, reach.Device{}, reach.Task{}, err
	}
	dev, err := s.callerDevice(ctx, ac)
	if err != nil {
		return nil, dev, reach.Task{}, err
	}
	t, err := s.visibleTask(ctx, ac.App, dev, c.Param("id"))
	return ac, dev, t, err
}

// forApp reports whether app (apps[].id) may open t: a cross-device
// sign-in only by the app its redirect_to_app named (nativeFront.App),
// as the same-device app completion refuses another app; every other
// task by any of our apps.
func forApp(t reach.Task, app string) bool {
	if t.Kind != reach.KindAppAuth {
		return true
	}
	rec, err := recordOf(t)
	if err != nil {
		return false
	}
	var f nativeFront
	if len(rec.Front) > 0 && json.Unmarshal(rec.Front, &f) != nil {
		return false
	}
	return f.App == "" || f.App == app
}

// inboxHolds reports whether the device's inbox has an entry for task id
// (the inbox keeps at most storage.InboxMaxLen entries, read at once).
func (s *Server) inboxHolds(ctx context.Context, deviceID, id string) (bool, error) {
	entries, err := s.reach.store.ReadInbox(ctx, deviceID, "", storage.MaxInboxRead)
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		var ref reach.TaskRef
		if json.Unmarshal(e.Data, &ref) == nil && ref.ID == id {
			return true, nil
		}
	}
	return false, nil
}

func errNoTask() *protoError {
	return newError(http.StatusNotFound, "not_found", "No such task for this device.")
}

// visibleTask reads task id if dev, a device of app, may see it (it is
// on the task's Devices: delivered to it, or its ref scanned by it — or,
// while the delivery is still being recorded, in its inbox; and the task
// is for app: forApp).
func (s *Server) visibleTask(ctx context.Context, app string, dev reach.Device, id string) (reach.Task, error) {
	if !reach.ValidID(id) {
		return reach.Task{}, errNoTask()
	}
	t, err := s.reach.store.Task(ctx, id)
	switch {
	case errors.Is(err, reach.ErrNotFound):
		return t, errNoTask()
	case err != nil:
		return t, err
	case !forApp(t, app):
		return t, errNoTask()
	case slices.Contains(t.Devices, dev.ID):
		return t, nil
	case t.State == reach.StateCreated:
		// Still being delivered: the inbox's long poll may hand the
		// device the task before Reach records the device on it. The
		// device must find what it was just told about, and only that:
		// its inbox holds the task.
		held, err := s.inboxHolds(ctx, dev.ID, t.ID)
		if err != nil {
			return t, err
		}
		if held {
			return t, nil
		}
	}
	return t, errNoTask()
}

// errTaskState is a transition the task's state refuses: ended, or not
// yet interacting.
func (s *Server) errTaskState(ctx context.Context, id string) error {
	t, err := s.reach.store.Task(ctx, id)
	if err != nil {
		return err
	}
	st := t.Effective(s.now())
	if st == reach.StateExpired && t.State.Live() {
		// Record the expiry (and announce it) so that every poller
		// sees it now.
		if got, err := s.reach.store.TransitionTask(ctx, id, []reach.State{t.State}, reach.StateExpired, nil); err == nil {
			s.taskEnded(ctx, got)
		}
	}
	if st.Live() {
		return newError(http.StatusConflict, "invalid_state", "The task is "+taskStatus(st)+": open it (ack) before answering.")
	}
	return newError(http.StatusConflict, "invalid_state", "The task has ended ("+taskStatus(st)+").")
}

// acked moves the task to SEEN for dev (CREATED, DELIVERED or already
// SEEN: acking again changes nothing but the record of dev) and
// announces it.
func (s *Server) acked(ctx context.Context, dev reach.Device, id string) (reach.Task, error) {
	live := []reach.State{reach.StateCreated, reach.StateDelivered, reach.StateSeen}
	t, err := s.reach.store.TransitionTask(ctx, id, live, reach.StateSeen, func(n *reach.Task) error {
		if !slices.Contains(n.Devices, dev.ID) && len(n.Devices) < reach.MaxTaskDevices {
			n.Devices = append(n.Devices, dev.ID)
		}
		return nil
	})
	if errors.Is(err, reach.ErrState) {
		return t, s.errTaskState(ctx, id)
	}
	if err != nil {
		return t, err
	}
	s.taskEnded(ctx, t)
	return t, nil
}

// reachTaskView serves GET /reach/tasks/{id}.
func (s *Server) reachTaskView(c echo.Context) error {
	_, _, t, err := s.appTask(c)
	if err != nil {
		return s.reachError(c, err)
	}
	v, err := s.viewOfTask(t)
	if err != nil {
		return s.reachError(c, err)
	}
	return writeJSON(c, http.StatusOK, v)
}

type statusBody struct {
	Status string `json:"status"`
}

// reachTaskAck serves POST /reach/tasks/{id}/ack: the app shows the task
// (SEEN, "interacting"), which the initiating side's poll learns.
func (s *Server) reachTaskAck(c echo.Context) error {
	ctx := c.Request().Context()
	_, dev, t, err := s.appTask(c)
	if err != nil {
		return s.reachError(c, err)
	}
	if _, err := s.acked(ctx, dev, t.ID); err != nil {
		return s.reachError(c, err)
	}
	return writeJSON(c, http.StatusOK, statusBody{Status: taskStatus(reach.StateSeen)})
}

// reachScan serves POST /reach/scan {ref}: a QR code or deep link's
// single-use ref is taken (once only), the task acked for the scanning
// device and its view returned. A device of another user than the
// task's may scan (that is what consent phishing looks like): its answer
// is then refused as other_user.
func (s *Server) reachScan(c echo.Context) error {
	ctx := c.Request().Context()
	ac, err := s.reachAppCaller(c)
	if err != nil {
		return s.writeError(c, err)
	}
	var in struct {
		Ref string `json:"ref"`
	}
	if err := readAppJSON(c, &in, []string{"ref"}, nil); err != nil {
		return s.writeError(c, err)
	}
	if !reach.ValidID(in.Ref) {
		return s.writeError(c, errInvalidRequest("ref is missing or malformed."))
	}
	dev, err := s.callerDevice(ctx, ac)
	if err != nil {
		return s.reachError(c, err)
	}
	unknown := newError(http.StatusNotFound, "not_found", "The code is unknown, used or expired.")
	id, err := s.reach.store.TakeRef(ctx, in.Ref)
	if errors.Is(err, reach.ErrNotFound) {
		return s.writeError(c, unknown)
	}
	if err != nil {
		return s.reachError(c, err)
	}
	// A QR code of a sign-in for another of our apps: that app's link
	// (its deep_link base) only; scanned here it opens nothing.
	if t, err := s.reach.store.Task(ctx, id); err != nil && !errors.Is(err, reach.ErrNotFound) {
		return s.reachError(c, err)
	} else if err == nil && !forApp(t, ac.App) {
		return s.writeError(c, unknown)
	}
	t, err := s.acked(ctx, dev, id)
	if err != nil {
		return s.reachError(c, err)
	}
	v, err := s.viewOfTask(t)
	if err != nil {
		return s.reachError(c, err)
	}
	return writeJSON(c, http.StatusOK, v)
}

// taskResponse is the body of POST /reach/tasks/{id}/response.
type taskResponse struct {
	Decision      string   `json:"decision"`
	BindingChoice *int     `json:"binding_choice"`
	Statement     string   `json:"statement"`
	AMR           []string `json:"amr"`
}

var responseMembers = []string{"decision", "binding_choice", "statement", "amr"}

// Bounds of a response's amr (RFC 8176 values are short names).
const (
	maxAMRValues = 8
	maxAMRLen    = 32
)

// check refuses a response whose shape does not fit the task's kind,
// before anything is read or written.
func (r taskResponse) check(kind reach.Kind) *protoError {
	switch {
	case r.Decision == "deny":
	case r.Decision == "approve" && kind != reach.KindQuestion:
	case r.Decision == "answer" && kind == reach.KindQuestion:
	default:
		return errInvalidRequest("decision must be approve or deny (answer or deny for a question).")
	}
	if len(r.AMR) > maxAMRValues {
		return errInvalidRequest("amr holds too many values.")
	}
	for _, a := range r.AMR {
		if a == "" || len(a) > maxAMRLen || !printable(a) {
			return errInvalidRequest("amr values must be short printable names (RFC 8176).")
		}
	}
	if r.Decision == "answer" && (r.Statement == "" || len(r.AMR) == 0) {
		return errInvalidRequest("An answer needs its statement and the amr of the local user verification.")
	}
	if r.Decision != "answer" && r.Statement != "" {
		return errInvalidRequest("statement is only for an answer.")
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// acrMeets reports whether the answer's acr (reach.acrs) satisfies the
// question's wished_acr: the same value, or any for "app", the weakest
// acr we report (config Reach.ACRFor).
func acrMeets(got, wished string) bool { return wished == "" || wished == "app" || got == wished }

// amrMeets reports whether one of the question's wished_amr (in priority
// order, any suffices) is among the answer's amr.
func amrMeets(got, wished []string) bool {
	if len(wished) == 0 {
		return true
	}
	for _, w := range wished {
		if slices.Contains(got, w) {
			return true
		}
	}
	return false
}

// Outcomes of a response (what the one compare-and-swap decided).
const (
	outcomeDone = iota
	outcomeWrongPick
	outcomeFailed
	outcomeOtherUser
)

// reachTaskResponse serves POST /reach/tasks/{id}/response. The whole
// decision is one storage compare-and-swap from SEEN (TransitionTask): a
// device of another user than the task's denies it (reason other_user,
// 403 access_denied: consent phishing); a number-matching pick counts
// inside the swap (reach.Task.Pick), so concurrent answers cannot race
// the count: a wrong pick is 400 binding_mismatch with attempts_left,
// the third 403 access_denied (FAILED); a question's statement must be
// one of its statements exactly and its acr/amr meet wished_acr and
// wished_amr. Of concurrent answers exactly one is recorded; the others,
// and any answer to a task not interacting, are 409 invalid_state.
func (s *Server) reachTaskResponse(c echo.Context) error {
	ctx := c.Request().Context()
	ac, dev, t, err := s.appTask(c)
	if err != nil {
		return s.reachError(c, err)
	}
	var in taskResponse
	if err := readAppJSON(c, &in, responseMembers, nil); err != nil {
		return s.writeError(c, err)
	}
	if pe := in.check(t.Kind); pe != nil {
		return s.writeError(c, pe)
	}
	if in.Decision == "approve" && !t.Binding.IsZero() && in.BindingChoice == nil {
		return s.writeError(c, errInvalidRequest("binding_choice is required: the number the user picked."))
	}
	acr := s.reach.cfg.ACRFor(in.AMR)
	answer := func() *taskAnswer {
		return &taskAnswer{Decision: in.Decision, Statement: in.Statement, AMR: in.AMR, ACR: acr, User: ac.User, Device: dev.ID, At: s.now().Unix()}
	}
	to := reach.StateDenied
	switch {
	case dev.User != t.User:
	case in.Decision == "approve":
		to = reach.StateApproved
	case in.Decision == "answer":
		to = reach.StateAnswered
	}
	var outcome int
	got, err := s.reach.store.TransitionTask(ctx, t.ID, []reach.State{reach.StateSeen}, to, func(n *reach.Task) error {
		outcome = outcomeDone
		rec, err := recordOf(*n)
		if err != nil {
			return err
		}
		a := answer()
		switch {
		case dev.User != n.User:
			outcome, a.Reason = outcomeOtherUser, "other_user"
		case to == reach.StateApproved && !n.Binding.IsZero():
			n.State = reach.StateSeen
			if err := n.Pick(*in.BindingChoice); errors.Is(err, reach.ErrBinding) {
				if n.State != reach.StateFailed {
					outcome = outcomeWrongPick
					return nil // the count, nothing else
				}
				outcome, a.Reason = outcomeFailed, "binding"
			} else if err != nil {
				return err
			} else {
				n.State = reach.StateApproved
			}
		case to == reach.StateAnswered:
			d := rec.Display
			if !slices.Contains(d.Statements, in.Statement) {
				return errInvalidRequest("statement must be one of the question's statements, exactly.")
			}
			if !acrMeets(acr, d.WishedACR) || !amrMeets(in.AMR, d.WishedAMR) {
				return newError(http.StatusBadRequest, "insufficient_user_authentication",
					"The local user verification does not meet the question's wished_acr or wished_amr.")
			}
		}
		rec.Answer = a
		return rec.encode(n)
	})
	if errors.Is(err, reach.ErrState) {
		return s.reachError(c, s.errTaskState(ctx, t.ID))
	}
	if err != nil {
		return s.reachError(c, err)
	}
	s.taskEnded(ctx, got)
	switch outcome {
	case outcomeWrongPick:
		pe := newError(http.StatusBadRequest, "binding_mismatch", "That is not the number shown on the other device.")
		pe.body.Members = map[string]any{"attempts_left": reach.MaxPicks - got.Attempts}
		return s.writeError(c, pe)
	case outcomeFailed:
		return s.writeError(c, newError(http.StatusForbidden, "access_denied", "The wrong number was picked too often: the request failed."))
	case outcomeOtherUser:
		return s.writeError(c, newError(http.StatusForbidden, "access_denied", "This device is signed in to another account than the one the request is for: it was refused."))
	}
	return writeJSON(c, http.StatusOK, statusBody{Status: taskStatus(got.State)})
}
