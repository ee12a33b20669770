package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/storage"
)

// The AAuth-shaped interaction relay (docs/reach.md "Interaction relay";
// AAuth interaction endpoint and deferred responses; docs/decisions.md
// Q23, Q24, Q26): a client holding a user-bound DPoP access token with
// scope reach:interaction asks us to show its user an interaction URL on
// our app; we answer 202 + Location while the task lives, 424
// interaction_unavailable when no channel reaches the user (the client
// shows url and code itself), and the result at the Location.

// PathInteractions is the relay's endpoint (metadata interaction_endpoint).
const PathInteractions = "/reach/interactions"

// relayFront is the relay's private state of a task (taskRecord.Front).
type relayFront struct {
	Client  string `json:"client"`
	JKT     string `json:"jkt"`
	MaxWait int    `json:"max_wait"`
}

// relayRoutes mounts the relay (reach.go reachRoutes). relayNegotiate runs
// first so that every error, the rate limiter's too, is negotiated (Q24).
func (s *Server) relayRoutes(e *echo.Echo, limit func(string) echo.MiddlewareFunc) {
	l := limit(config.RateReachClient)
	e.POST(PathInteractions, s.relayCreate, relayNegotiate, l)
	e.GET(PathInteractions+"/:id", s.relayPoll, relayNegotiate, l)
	e.DELETE(PathInteractions+"/:id", s.relayCancel, relayNegotiate, l)
}

// relayMetadata publishes the relay as AAuth's interaction_endpoint.
func (s *Server) relayMetadata(m map[string]any) {
	m["interaction_endpoint"] = s.cfg.Issuer + PathInteractions
}

// relayCreate serves POST /reach/interactions.
func (s *Server) relayCreate(c echo.Context) error {
	defer s.holdRequest(c, s.preferWait(c))()
	ctx := c.Request().Context()
	caller, err := s.reachToken(c, config.ScopeReachInteraction, true)
	if err != nil {
		return s.writeError(c, err)
	}
	if caller.User == "" {
		return s.writeError(c, errInvalidRequest("Interactions are relayed to a user: use an access token issued for the user."))
	}
	cl, _ := s.snapshot(ctx).Client(caller.ClientID)
	if cl == nil || cl.Reach == nil || len(cl.Reach.InteractionOrigins) == 0 {
		return s.writeError(c, newError(http.StatusForbidden, "unauthorized_client", "This client may not relay interactions (it has no interaction_origins)."))
	}
	body, perr := s.relayBody(c)
	if perr != nil {
		return s.writeError(c, perr)
	}
	req, err := parseRelayRequest(body, s.reach.cfg.TaskTTL, s.cfg.Dev.AllowLoopbackHTTP, cl.Reach.InteractionOrigins)
	if err != nil {
		return s.writeError(c, errInvalidRequest(err.Error()))
	}
	if ok, retry := s.reachAllow(ctx, "relay.create."+caller.ClientID, s.createBudget()); !ok {
		return s.writeError(c, errSlowDown(retry, "Too many interactions relayed by this client."))
	}
	now := s.now()
	t := reach.Task{ID: reach.NewID(), Kind: reach.KindInteraction, User: caller.User, ClientID: caller.ClientID,
		State: reach.StateCreated, Ref: reach.NewID(), ExpiresAt: now.Add(req.MaxWait)}
	front, _ := json.Marshal(relayFront{Client: caller.ClientID, JKT: caller.JKT, MaxWait: int(req.MaxWait / time.Second)})
	rec := taskRecord{Display: taskDisplay{ClientID: caller.ClientID, ClientName: s.relayClientName(ctx, caller.ClientID),
		Interaction: &taskInteraction{URL: req.URL, Code: req.Code, Description: req.Description}}, Front: front}
	if err := rec.encode(&t); err != nil {
		return s.writeError(c, errInvalidRequest("The interaction is too large."))
	}
	if err := s.reach.store.CreateTask(ctx, t); err != nil {
		if errors.Is(err, reach.ErrInvalid) {
			// A task the store cannot keep (as on the other front ends).
			return s.writeError(c, errInvalidRequest("This interaction cannot be relayed to this user."))
		}
		return s.writeError(c, err)
	}
	_, err = s.reach.reacher.Reach(ctx, t.User, &t)
	switch {
	case errors.Is(err, reach.ErrNoChannel), errors.Is(err, reach.ErrQuota):
		if !req.CanInteract {
			return s.writeError(c, newError(http.StatusForbidden, "user_unreachable", "No channel reaches the user, and the caller cannot drive the interaction itself."))
		}
		return s.writeError(c, relayUnavailable())
	case errors.Is(err, reach.ErrState):
		// The task ended meanwhile (it cannot be cancelled before its id
		// is known; an expiry): answer what it is now.
	case err != nil:
		return s.writeError(c, err)
	}
	// A hold on the create ends before max_wait does, so that it answers
	// 202 or the user's answer, never 408 (that belongs to the poll).
	return s.relayAnswer(c, t.ID, t.ExpiresAt.Add(-time.Second))
}

// relayPoll serves GET /reach/interactions/{id}: the creator only (same
// client, same DPoP key), at most one poll per reach.poll_interval (Q26).
func (s *Server) relayPoll(c echo.Context) error {
	defer s.holdRequest(c, s.preferWait(c))()
	t, err := s.relayTask(c)
	if err != nil {
		return s.writeError(c, err)
	}
	if ok, retry := s.reachAllow(c.Request().Context(), "relay.poll."+t.ID, storage.Limit{Rate: 1, Period: s.reach.cfg.PollInterval, Burst: 1}); !ok {
		return s.writeError(c, errSlowDown(retry, "Polled sooner than the interval (Retry-After)."))
	}
	return s.relayAnswer(c, t.ID, t.ExpiresAt)
}

// relayCancel serves DELETE /reach/interactions/{id}: the creator cancels
// (the task is SUPERSEDED; the app stops showing it). Idempotent: a task
// that already ended answers 204 too (RFC 9110 §9.3.5).
func (s *Server) relayCancel(c echo.Context) error {
	ctx := c.Request().Context()
	t, err := s.relayTask(c)
	if err != nil {
		return s.writeError(c, err)
	}
	got, err := s.reach.store.TransitionTask(ctx, t.ID, []reach.State{reach.StateCreated, reach.StateDelivered, reach.StateSeen}, reach.StateSuperseded, nil)
	switch {
	case err == nil:
		s.taskEnded(ctx, got)
	case errors.Is(err, reach.ErrState):
		s.relayObserveExpiry(ctx, t)
	default:
		return s.writeError(c, err)
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	return c.NoContent(http.StatusNoContent)
}

// relayTask authenticates a poll or cancel and finds its task: one of
// ours of kind interaction, created by this client with this DPoP key
// for this user. Anything else is 404 as an unknown id, so that the
// endpoint tells nobody else whether a task exists.
func (s *Server) relayTask(c echo.Context) (reach.Task, error) {
	caller, err := s.reachToken(c, config.ScopeReachInteraction, true)
	if err != nil {
		return reach.Task{}, err
	}
	notFound := newError(http.StatusNotFound, "not_found", "No such interaction.")
	id := c.Param("id")
	if !reach.ValidID(id) {
		return reach.Task{}, notFound
	}
	t, err := s.reach.store.Task(c.Request().Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return reach.Task{}, notFound
	}
	if err != nil {
		return reach.Task{}, err
	}
	rec, err := recordOf(t)
	if err != nil {
		return reach.Task{}, err
	}
	var f relayFront
	if t.Kind != reach.KindInteraction || json.Unmarshal(rec.Front, &f) != nil ||
		t.ClientID != caller.ClientID || f.Client != caller.ClientID || f.JKT != caller.JKT || t.User != caller.User {
		return reach.Task{}, notFound
	}
	return t, nil
}

// relayAnswer answers a task's state (docs/reach.md "Interaction relay"),
// after holding up to the request's Prefer: wait (RFC 7240 §4.3), bounded
// by reach.max_hold, the request's deadline and until: while it lives,
// 202 {status: pending | interacting} with Location, Retry-After and
// Cache-Control: no-store; then 200 completed, 403 denied, 408 expired,
// 424 interaction_unavailable, or 404 once cancelled.
func (s *Server) relayAnswer(c echo.Context, id string, until time.Time) error {
	ctx := c.Request().Context()
	hold := s.relayHold(c, until)
	t, err := s.waitTask(ctx, id, hold, func(t reach.Task) bool { return !t.Effective(s.now()).Live() })
	if errors.Is(err, storage.ErrNotFound) {
		return s.writeError(c, newError(http.StatusNotFound, "not_found", "No such interaction."))
	}
	if err != nil {
		return s.writeError(c, err)
	}
	h := c.Response().Header()
	if hold > 0 {
		h.Set("Preference-Applied", "wait="+strconv.Itoa(int(hold/time.Second)))
	}
	switch st := t.Effective(s.now()); st {
	case reach.StateCreated, reach.StateDelivered, reach.StateSeen:
		status := "pending"
		if st == reach.StateSeen {
			status = "interacting"
		}
		h.Set("Location", s.cfg.Issuer+PathInteractions+"/"+t.ID)
		h.Set("Retry-After", retryAfterSeconds(s.reach.cfg.PollInterval))
		return writeJSON(c, http.StatusAccepted, map[string]string{"status": status})
	case reach.StateApproved, reach.StateAnswered:
		return writeJSON(c, http.StatusOK, map[string]string{"status": "completed"})
	case reach.StateDenied, reach.StateFailed:
		return s.writeError(c, newError(http.StatusForbidden, "denied", "The user declined the interaction."))
	case reach.StateExpired:
		s.relayObserveExpiry(ctx, t)
		return s.writeError(c, newError(http.StatusRequestTimeout, "expired", "The interaction was not completed within max_wait."))
	case reach.StateUnavailable:
		return s.writeError(c, relayUnavailable())
	default: // SUPERSEDED: cancelled by its creator.
		return s.writeError(c, newError(http.StatusNotFound, "not_found", "No such interaction (it was cancelled)."))
	}
}

// relayObserveExpiry records EXPIRED for a live task seen past its
// ExpiresAt, and announces it (taskEnded: the app stops showing it, the
// user's live-task slot is freed).
func (s *Server) relayObserveExpiry(ctx context.Context, t reach.Task) {
	if !t.State.Live() || t.Effective(s.now()) != reach.StateExpired {
		return
	}
	got, err := s.reach.store.TransitionTask(ctx, t.ID, []reach.State{reach.StateCreated, reach.StateDelivered, reach.StateSeen}, reach.StateExpired, nil)
	if err == nil {
		s.taskEnded(ctx, got)
	}
}

// relayHold is how long to hold this request: Prefer: wait=N (RFC 7240
// §4.3, preferWait), ending a second before the request's (held)
// deadline and no later than until; 0 without the preference.
func (s *Server) relayHold(c echo.Context, until time.Time) time.Duration {
	hold := min(s.preferWait(c), until.Sub(s.now()))
	if dl, ok := c.Request().Context().Deadline(); ok {
		hold = min(hold, time.Until(dl)-time.Second)
	}
	hold = hold.Truncate(time.Second)
	if hold < time.Second {
		return 0
	}
	return hold
}

// relayBody reads the create request's body: application/json, at most
// limits.max_body_bytes (413 beyond).
func (s *Server) relayBody(c echo.Context) ([]byte, *protoError) {
	r := c.Request()
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != mediaJSON {
		return nil, errInvalidRequest("The request must be application/json.")
	}
	limit := s.cfg.Limits.MaxBodyBytes
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, errInvalidRequest("The request body could not be read.")
	}
	if int64(len(body)) > limit {
		return nil, newError(http.StatusRequestEntityTooLarge, "invalid_request", "The request body is too large.")
	}
	return body, nil
}

// relayClientName is the registered display name of a client (its id when it
// has none), for the app to show who asks.
func (s *Server) relayClientName(ctx context.Context, id string) string {
	if snap := s.snapshot(ctx); snap != nil && snap.Config != nil {
		for _, cl := range snap.Config.Clients {
			if cl.ID == id && cl.Name != "" {
				return cl.Name
			}
		}
	}
	return id
}

// relayUnavailable is AAuth's non-terminal 424: no channel of
// ours reaches the user now (or their task quota is full, answered alike:
// docs/reach.md); the caller drives the interaction itself (url and code).
func relayUnavailable() *protoError {
	return newError(http.StatusFailedDependency, "interaction_unavailable", "No channel reaches the user now: show the url and code to the user yourself.")
}
