package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/internal/jsonexact"
	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/storage"
)

// The app side of reach (docs/reach.md "App API"): our own first-party
// app registers its device, holds its inbox (long poll or SSE), reads the
// tasks delivered to it and answers them. Every endpoint is a resource
// server endpoint: a DPoP-bound access token of one of our apps' clients
// with scope reach:device, a DPoP proof on every request, and the device
// is the proof's key (RFC 9449 §7; docs/decisions.md Q27).

// Paths of the app side (docs/reach.md "App API").
const (
	PathReachDevices     = "/reach/devices"
	PathReachInbox       = "/reach/inbox"
	PathReachInboxEvents = "/reach/inbox/events"
	PathReachTasks       = "/reach/tasks/"
	PathReachScan        = "/reach/scan"
)

// reachAppRoutes mounts this front end's endpoints (reach.go reachRoutes).
func (s *Server) reachAppRoutes(e *echo.Echo, limit func(string) echo.MiddlewareFunc) {
	l := limit(config.RateReachApp)
	e.POST(PathReachDevices, s.reachRegister, l)
	e.GET(PathReachDevices, s.reachListDevices, l)
	e.PATCH(PathReachDevices+"/:id", s.reachPatchDevice, l)
	e.DELETE(PathReachDevices+"/:id", s.reachDeleteDevice, l)
	e.GET(PathReachInbox, s.reachInbox, l)
	e.GET(PathReachInboxEvents, s.reachInboxEvents, l)
	e.GET(PathReachTasks+":id", s.reachTaskView, l)
	e.POST(PathReachTasks+":id/ack", s.reachTaskAck, l)
	e.POST(PathReachTasks+":id/response", s.reachTaskResponse, l)
	e.POST(PathReachScan, s.reachScan, l)
}

// reachAppMetadata adds this front end's metadata members (reach.go):
// fedas extensions to RFC 8414 §2 (docs/reach.md "App API").
func (s *Server) reachAppMetadata(m map[string]any) {
	m["reach_devices_endpoint"] = s.url(PathReachDevices)
	m["reach_inbox_endpoint"] = s.url(PathReachInbox)
	m["reach_inbox_events_endpoint"] = s.url(PathReachInboxEvents)
	m["reach_scan_endpoint"] = s.url(PathReachScan)
}

// baseContextKey keeps a request's context before the deadline
// middleware bounds it (middleware.go deadline).
const baseContextKey = "fedas.base_context"

// holdContext is the context of a long poll or event stream that may
// outlive the request deadline: it keeps the request's values, ends when
// the client goes away (the request's own context ends) and after d.
func holdContext(c echo.Context, d time.Duration) (context.Context, context.CancelFunc) {
	req := c.Request().Context()
	base, _ := c.Get(baseContextKey).(context.Context)
	if base == nil {
		base = req
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req), d)
	stop := context.AfterFunc(base, cancel)
	return ctx, func() { stop(); cancel() }
}

// holdRequest lets a long poll of hold outlive the request deadline: the
// request's context becomes a holdContext of hold plus one ordinary
// request deadline (the work after the hold is bounded as any request's
// is). It returns the cancel to defer; a zero hold changes nothing.
func (s *Server) holdRequest(c echo.Context, hold time.Duration) context.CancelFunc {
	if hold <= 0 {
		return func() {}
	}
	ctx, cancel := holdContext(c, hold+s.deadlineD)
	c.SetRequest(c.Request().WithContext(ctx))
	return cancel
}

// appCaller is a request of our app: who (the token) and, when
// registered, which device (the proof's key).
type appCaller struct {
	*reachCaller
	App string
}

// reachAppCaller is the one check of every app endpoint: the token as a
// resource server checks it (reachToken: DPoP-bound, scope reach:device)
// and its client one of our apps (policy apps[].client_id) with a user.
// Another client holding the scope is 403 insufficient_scope: the scope
// is meant for our apps only (docs/reach.md "App API").
func (s *Server) reachAppCaller(c echo.Context) (*appCaller, error) {
	rc, err := s.reachToken(c, config.ScopeReachDevice, true)
	if err != nil {
		return nil, err
	}
	app, ok := s.snapshot(c.Request().Context()).AppForClient(rc.ClientID)
	if !ok || rc.User == "" {
		c.Response().Header().Set("WWW-Authenticate", `DPoP realm="fedas", error="insufficient_scope", scope="`+config.ScopeReachDevice+`"`)
		return nil, newError(http.StatusForbidden, "insufficient_scope", "Only our own apps' access tokens for a user may use this endpoint.")
	}
	return &appCaller{reachCaller: rc, App: app.ID}, nil
}

// errNoDevice is the answer for a device that is not the caller's: not
// registered, deleted, expired or another user's — one answer, so that
// nothing reveals another account's devices or tasks.
func errNoDevice() *protoError {
	return newError(http.StatusNotFound, "not_found", "No device of this account is registered with this key.")
}

// callerDevice is the device of the request's DPoP key, which must be
// the caller's user's; its use restarts its idle expiry (touch).
func (s *Server) callerDevice(ctx context.Context, ac *appCaller) (reach.Device, error) {
	d, err := s.reach.store.DeviceByJKT(ctx, ac.JKT)
	switch {
	case errors.Is(err, reach.ErrNotFound):
		return d, errNoDevice()
	case err != nil:
		return d, err
	case d.User != ac.User:
		return d, errNoDevice()
	}
	s.touch(ctx, d)
	return d, nil
}

// touchEvery bounds how often a device's sliding idle expiry is
// restarted (one write per device per period, not one per request).
const touchEvery = time.Hour

// touch restarts the device's idle expiry when it was last seen more
// than touchEvery ago, best effort (a failed touch is caught up later).
func (s *Server) touch(ctx context.Context, d reach.Device) {
	if s.now().Sub(d.LastSeen) >= touchEvery {
		_ = s.reach.store.TouchDevice(ctx, d.ID, reach.DeviceIdleTTL)
	}
}

// reachError maps the reach core's errors to RFC 6749 §5.2 answers and
// writes them (no-store; 503 with Retry-After on an outage).
func (s *Server) reachError(c echo.Context, err error) error {
	var pe *protoError
	switch {
	case errors.As(err, &pe):
	case errors.Is(err, reach.ErrNotFound):
		err = newError(http.StatusNotFound, "not_found", "No such task or device.")
	case errors.Is(err, reach.ErrInvalid):
		err = errInvalidRequest(trimReachPrefix(err.Error()))
	case errors.Is(err, storage.ErrUnavailable):
		err = errUnavailable()
	}
	return s.writeError(c, err)
}

// trimReachPrefix turns a core validation error ("reach: invalid:
// device: name ...") into a description; it names fields, never values.
func trimReachPrefix(m string) string {
	for _, p := range []string{"reach: invalid: ", "storage: "} {
		if len(m) > len(p) && m[:len(p)] == p {
			m = m[len(p):]
		}
	}
	return "Invalid " + m + "."
}

// maxAppBody bounds an app request body (a registration with four
// channels of 512-byte URLs or tokens stays far below).
const maxAppBody = 16 << 10

// readAppJSON reads a strict JSON object into v (a pointer to a struct):
// Content-Type application/json, at most maxAppBody bytes, valid UTF-8,
// one object and nothing after it, no duplicate member at any depth,
// member names exactly as allowed (top) and nested (for the objects of
// the named array members), decoded by exact names (jsonexact): unknown
// members are refused, never ignored.
func readAppJSON(c echo.Context, v any, allowed []string, nested map[string][]string) error {
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return errInvalidRequest("The request must be application/json.")
	}
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, maxAppBody+1))
	if err != nil {
		return errInvalidRequest("The request body could not be read.")
	}
	if len(body) > maxAppBody {
		return newError(http.StatusRequestEntityTooLarge, "invalid_request", "The request body is too large.")
	}
	if !utf8.Valid(body) || !validSurrogateEscapes(body) {
		return errInvalidRequest("The body must be UTF-8.")
	}
	if err := noDuplicates(body); err != nil { // the relay's rule (reach_relay_parse.go)
		return errInvalidRequest(err.Error())
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return errInvalidRequest("The body must be one JSON object.")
	}
	if err := onlyMembers(top, allowed, ""); err != nil {
		return err
	}
	for name, inner := range nested {
		raw, ok := top[name]
		if !ok || string(raw) == "null" {
			continue
		}
		var items []map[string]json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return errInvalidRequest("The " + name + " member must be an array of objects.")
		}
		for _, it := range items {
			if err := onlyMembers(it, inner, name+"[]."); err != nil {
				return err
			}
		}
	}
	if err := jsonexact.Unmarshal(body, v); err != nil {
		return errInvalidRequest("A member of the body has the wrong type.")
	}
	return nil
}

func onlyMembers(obj map[string]json.RawMessage, allowed []string, prefix string) error {
	for k := range obj {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return errInvalidRequest("Unknown member " + prefix + safeName(k) + ".")
		}
	}
	return nil
}
