package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/storage"
)

// The cross-device redirect_to_app front end (docs/reach.md
// "Cross-device redirect_to_app"; RFC 10027): POST /native/reach asks us
// to reach the user of a redirect_to_app session on their other device,
// GET /native/reach/{id} polls the task. Every decision about the auth
// session is the engine's (flow/reach.go); this file stores and delivers
// the tasks (flow.CrossDevice) and renders the answers.

// PathNativeReach is the cross-device sign-in endpoint (the reach_uri of
// redirect_to_app); its tasks are polled at PathNativeReach + "/{id}".
const PathNativeReach = "/native/reach"

// createBudget is a client's budget of task creations of one front end
// (reach.creations_per_minute; 429 slow_down beyond it, docs/decisions.md
// Q28), on top of the per-user quota of the Reacher.
func (s *Server) createBudget() storage.Limit {
	n := s.reach.cfg.CreationsPerMinute
	return storage.Limit{Rate: n, Period: time.Minute, Burst: n}
}

// nativeFront is this front end's private part of a task record
// (taskRecord.Front): the session it completes and the caller's bindings
// the polls must repeat.
type nativeFront struct {
	Session    string `json:"s"`
	JKT        string `json:"jkt,omitempty"`
	ClientAuth bool   `json:"ca,omitempty"`
	// App is the app (apps[].id) whose devices alone may open and
	// answer the task (flow.ReachSpec.App).
	App string `json:"app,omitempty"`
}

// reachNativeRoutes mounts this front end's endpoints (reach.go reachRoutes).
func (s *Server) reachNativeRoutes(e *echo.Echo, limit func(string) echo.MiddlewareFunc) {
	e.POST(PathNativeReach, s.nativeReach, s.formParser(false), limit(config.RateReachClient))
	e.GET(PathNativeReach+"/:id", s.nativeReachPoll, limit(config.RateReachClient))
}

// reachNativeMetadata adds this front end's metadata members (reach.go).
// It adds none: the endpoint is offered in redirect_to_app (reach_uri),
// only to the sessions it applies to.
func (s *Server) reachNativeMetadata(m map[string]any) {}

// crossDevice is the engine's view of the reach core (flow.CrossDevice);
// nil when reach is off.
func (s *Server) crossDevice() flow.CrossDevice {
	if s.reach == nil {
		return nil
	}
	return crossDevice{s}
}

type crossDevice struct{ s *Server }

// URI offers reach_uri unless the client turned cross-device off
// (clients[].reach.disable_cross_device; RFC 10027 §6.1).
func (d crossDevice) URI(c *policy.Client) string {
	if c.Reach != nil && c.Reach.DisableCrossDevice {
		return ""
	}
	return d.s.cfg.Issuer + PathNativeReach
}

// Create stores a CREATED app_auth task with number matching, living
// reach.task_ttl at most and never past the session, whose record shows
// the user who asks and from where (RFC 10027 §6.1.1).
func (d crossDevice) Create(ctx context.Context, spec flow.ReachSpec) (reach.Task, error) {
	s := d.s
	if !spec.Fallback {
		if ok, wait := s.reachAllow(ctx, "rn.c."+digestKey(spec.ClientID), s.createBudget()); !ok {
			return reach.Task{}, flow.SlowDownError(wait, "Too many cross-device sign-ins for this client; retry later.")
		}
	}
	now := s.now()
	exp := now.Add(s.reach.cfg.TaskTTL)
	if spec.ExpiresAt.Before(exp) {
		exp = spec.ExpiresAt
	}
	if exp.Sub(now) < time.Second {
		return reach.Task{}, flow.Refuse(http.StatusBadRequest, "invalid_request", "This sign-in is about to expire; start again.")
	}
	b, err := reach.NewBinding()
	if err != nil {
		return reach.Task{}, err
	}
	t := reach.Task{ID: reach.NewID(), Kind: reach.KindAppAuth, User: spec.User, ClientID: spec.ClientID, State: reach.StateCreated,
		Ref: reach.NewID(), Binding: b, ExpiresAt: exp}
	front, err := json.Marshal(nativeFront{Session: spec.SessionID, JKT: spec.JKT, ClientAuth: spec.ClientAuth, App: spec.App})
	if err != nil {
		return reach.Task{}, err
	}
	rec := taskRecord{Display: taskDisplay{ClientID: spec.ClientID, ClientName: clientName(spec.Policy, spec.ClientID),
		Initiator: &taskInitiator{IP: spec.ClientIP, UserAgent: clip(spec.UserAgent, 256)}}, Front: front}
	if err := rec.encode(&t); err != nil {
		return reach.Task{}, err
	}
	if err := s.reach.store.CreateTask(ctx, t); err != nil {
		if errors.Is(err, reach.ErrInvalid) {
			// A hint too long for a task's user, say.
			return reach.Task{}, flow.Refuse(http.StatusBadRequest, "invalid_request", "Cross-device sign-in is not available for this auth_session.")
		}
		return reach.Task{}, err
	}
	return t, nil
}

// Deliver reaches the user's app_auth devices (deliver.Reacher).
func (d crossDevice) Deliver(ctx context.Context, t *reach.Task) error {
	_, err := d.s.reach.reacher.Reach(ctx, t.User, t)
	if errors.Is(err, reach.ErrState) {
		return flow.Refuse(http.StatusBadRequest, "invalid_request", "The cross-device sign-in ended meanwhile; ask again.")
	}
	return err
}

// Supersede ends a live task (a newer one of the same session replaced
// it) and announces it.
func (d crossDevice) Supersede(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	t, err := d.s.reach.store.TransitionTask(ctx, id, []reach.State{reach.StateCreated, reach.StateDelivered, reach.StateSeen}, reach.StateSuperseded, nil)
	if err == nil {
		d.s.taskEnded(ctx, t)
	}
}

func clip(v string, n int) string {
	if len(v) > n {
		return v[:n]
	}
	return v
}

// digestKey names a value in a budget's key without putting it there.
func digestKey(v string) string {
	h := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(h[:16])
}

// nativeReach serves POST /native/reach: the engine checks the
// auth_session and its caller as for any native follow-up (client,
// client authentication, DPoP key) and creates the task.
func (s *Server) nativeReach(c echo.Context) error {
	ctx := c.Request().Context()
	form := formOf(c)
	jkt, err := s.dpopProof(c, PathNativeReach, "")
	if err != nil {
		return s.writeError(c, err)
	}
	client, authed, err := s.caller(c, form)
	if err != nil {
		return s.writeError(c, err)
	}
	out, err := s.flow.Handle(ctx, flow.Request{Channel: flow.ChannelReach, Policy: s.snapshot(ctx), Client: client, Authenticated: authed,
		DPoPJKT: jkt, Form: form, ClientIP: s.clientIP(c), UserAgent: c.Request().UserAgent()})
	if err != nil {
		return s.writeError(c, err)
	}
	if r, ok := out.(flow.Reaching); ok {
		return s.renderReaching(c, r)
	}
	return s.renderJSON(c, out)
}

// reachStatus is the body of a pending or completed cross-device task
// (202 pending/interacting, 200 completed).
type reachStatus struct {
	Status      string `json:"status"`
	ExpiresIn   int    `json:"expires_in,omitempty"`
	Interval    int    `json:"interval,omitempty"`
	BindingCode string `json:"binding_code,omitempty"`
	AuthSession string `json:"auth_session,omitempty"`
}

// reachUnavailable is 424 interaction_unavailable (AAuth; Q23): no
// channel reaches the user; show deep_link as a QR code and poll
// Location.
type reachUnavailable struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	DeepLink         string `json:"deep_link,omitempty"`
	BindingCode      string `json:"binding_code,omitempty"`
	ExpiresIn        int    `json:"expires_in,omitempty"`
	Interval         int    `json:"interval,omitempty"`
}

func (s *Server) pollInterval() int { return int(s.reach.cfg.PollInterval / time.Second) }

func (s *Server) expiresIn(at time.Time) int {
	sec := int(at.Sub(s.now()) / time.Second)
	if sec < 1 {
		sec = 1
	}
	return sec
}

// renderReaching answers a created task: 202 + Location + Retry-After
// when delivered, else 424 with the QR task's deep link and Location.
func (s *Server) renderReaching(c echo.Context, r flow.Reaching) error {
	h := c.Response().Header()
	h.Set("Location", s.cfg.Issuer+PathNativeReach+"/"+r.TaskID)
	if r.Delivered {
		h.Set("Retry-After", strconv.Itoa(s.pollInterval()))
		return writeJSON(c, http.StatusAccepted, reachStatus{Status: "pending", ExpiresIn: s.expiresIn(r.ExpiresAt), Interval: s.pollInterval(), BindingCode: r.BindingCode})
	}
	return writeJSON(c, http.StatusFailedDependency, reachUnavailable{Error: "interaction_unavailable",
		ErrorDescription: "No device of the user can be reached: show deep_link as a QR code for our app to scan, and poll Location.",
		DeepLink:         r.DeepLink, BindingCode: r.BindingCode, ExpiresIn: s.expiresIn(r.ExpiresAt), Interval: s.pollInterval()})
}

// preferWait reads RFC 7240 §4.3 Prefer: wait=N (the last wait
// preference counts; a quoted value and its parameters are allowed),
// capped at reach.max_hold; 0 without a usable preference. The one
// parser of every reach long poll (native poll, relay).
func (s *Server) preferWait(c echo.Context) time.Duration {
	n := -1
	for _, line := range c.Request().Header.Values("Prefer") {
		for _, p := range strings.Split(line, ",") {
			name, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(name), "wait") {
				continue
			}
			v, _, _ = strings.Cut(strings.Trim(strings.TrimSpace(v), `"`), ";")
			if x, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && x >= 0 {
				n = x
			}
		}
	}
	if n <= 0 {
		return 0
	}
	// Compared in seconds before the conversion: n seconds as a
	// time.Duration overflows past 292 years (wait=9223372036854775807
	// would become -1 s and no hold at all).
	if maxSec := int(s.reach.cfg.MaxHold / time.Second); n >= maxSec {
		return s.reach.cfg.MaxHold
	}
	return time.Duration(n) * time.Second
}

// nativeReachPoll serves GET /native/reach/{id} (docs/reach.md table):
// 202 while pending, 200 with a rotated auth_session once approved (once
// only), 403 access_denied, 400 expired_token, 424 unavailable. A task of
// another client, or of another front end, answers as an unknown one.
// The poll repeats the creator's DPoP key and client authentication;
// polling faster than the interval is 429 slow_down (Q26).
func (s *Server) nativeReachPoll(c echo.Context) error {
	defer s.holdRequest(c, s.preferWait(c))()
	ctx := c.Request().Context()
	id := c.Param("id")
	unknown := newError(http.StatusNotFound, "invalid_request", "Unknown or expired cross-device sign-in.")
	if !reach.ValidID(id) {
		return s.writeError(c, unknown)
	}
	t, err := s.reach.store.Task(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return s.writeError(c, unknown)
	} else if err != nil {
		return s.writeError(c, err)
	}
	rec, err := recordOf(t)
	var front nativeFront
	if err != nil || t.Kind != reach.KindAppAuth || json.Unmarshal(rec.Front, &front) != nil || front.Session == "" {
		return s.writeError(c, unknown)
	}
	form := url.Values{}
	if v := c.QueryParam("client_id"); v != "" {
		form.Set("client_id", v)
	}
	client, authed, err := s.caller(c, form)
	switch {
	case err != nil:
		return s.writeError(c, err)
	case client != nil && client.GetID() != t.ClientID:
		return s.writeError(c, unknown)
	case front.ClientAuth && !authed:
		return s.writeError(c, newError(http.StatusUnauthorized, "invalid_client", "This client must authenticate on every request of the session."))
	}
	path := PathNativeReach + "/" + id
	jkt, err := s.dpopProof(c, path, "")
	if err != nil {
		return s.writeError(c, err)
	}
	if front.JKT != "" && jkt != front.JKT {
		return s.writeError(c, errInvalidDPoP("This cross-device sign-in is bound to a DPoP key: send a proof for that key."))
	}
	interval := s.reach.cfg.PollInterval
	if ok, wait := s.reachAllow(ctx, "rn.p."+id, storage.Limit{Rate: 1, Period: interval, Burst: 1}); !ok {
		return s.writeError(c, errSlowDown(wait, "Poll this sign-in no faster than its interval."))
	}
	if hold := s.preferWait(c); hold > 0 {
		start := t.Effective(s.now())
		if start.Live() {
			if t, err = s.waitTask(ctx, id, hold, func(x reach.Task) bool { return x.Effective(s.now()) != start }); err != nil {
				return s.writeError(c, err)
			}
			if rec, err = recordOf(t); err != nil {
				return s.writeError(c, err)
			}
		}
	}
	pending := func(status string) error {
		c.Response().Header().Set("Retry-After", strconv.Itoa(s.pollInterval()))
		return writeJSON(c, http.StatusAccepted, reachStatus{Status: status, ExpiresIn: s.expiresIn(t.ExpiresAt), Interval: s.pollInterval()})
	}
	switch t.Effective(s.now()) {
	case reach.StateCreated, reach.StateDelivered:
		return pending("pending")
	case reach.StateSeen:
		return pending("interacting")
	case reach.StateApproved:
		return s.completeReach(c, t, rec, front)
	case reach.StateDenied, reach.StateFailed:
		return s.writeError(c, newError(http.StatusForbidden, "access_denied", "The user did not approve the sign-in on their other device."))
	case reach.StateExpired:
		if t.State.Live() {
			if got, err := s.reach.store.TransitionTask(ctx, id, []reach.State{reach.StateCreated, reach.StateDelivered, reach.StateSeen}, reach.StateExpired, nil); err == nil {
				s.taskEnded(ctx, got)
			}
		}
		return s.writeError(c, newError(http.StatusBadRequest, "expired_token", "The cross-device sign-in expired; ask again or use the deep link."))
	case reach.StateUnavailable:
		return writeJSON(c, http.StatusFailedDependency, reachUnavailable{Error: "interaction_unavailable", ErrorDescription: "No device of the user could be reached."})
	}
	return s.writeError(c, errInvalidRequest("A newer cross-device request replaced this one."))
}

// completeReach hands an approved task to the engine, which completes
// its session once and rotates the auth_session.
func (s *Server) completeReach(c echo.Context, t reach.Task, rec taskRecord, front nativeFront) error {
	ctx := c.Request().Context()
	a := rec.Answer
	if a == nil || a.User == "" {
		return s.writeError(c, newError(http.StatusForbidden, "access_denied", "The approval carries no user."))
	}
	acr := a.ACR
	if acr == "" {
		acr = s.reach.cfg.ACRFor(a.AMR)
	}
	value, rf, err := s.flow.CompleteReach(ctx, s.snapshot(ctx), front.Session, t.ID, flow.ReachAnswer{User: a.User, AMR: a.AMR, ACR: acr, At: time.Unix(a.At, 0)})
	switch {
	case err != nil:
		return s.writeError(c, err)
	case rf != nil:
		return s.renderJSON(c, *rf)
	}
	return writeJSON(c, http.StatusOK, reachStatus{Status: "completed", AuthSession: value})
}
