package server

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/storage"
)

// deviceRegistration is the body of POST /reach/devices and (every member
// optional but capabilities and platform ignored) PATCH
// /reach/devices/{id} (docs/reach.md "App API").
type deviceRegistration struct {
	Name         string              `json:"name"`
	Platform     string              `json:"platform"`
	Capabilities []reach.Capability  `json:"capabilities"`
	Channels     []reach.ChannelSpec `json:"channels"`
}

var (
	registrationMembers = []string{"name", "platform", "capabilities", "channels"}
	patchMembers        = []string{"name", "channels"}
	channelMembers      = map[string][]string{"channels": {"type", "url", "token"}}
)

// registered is the answer of a registration: the device's id and where
// it reads its inbox.
type registered struct {
	DeviceID  string `json:"device_id"`
	InboxURI  string `json:"inbox_uri"`
	EventsURI string `json:"events_uri"`
}

// deviceView is a device as its user sees it in GET /reach/devices: what
// it is and how it is reached, never a webhook URL or push token (they
// are the device's own secrets).
type deviceView struct {
	DeviceID     string             `json:"device_id"`
	Name         string             `json:"name"`
	Platform     string             `json:"platform"`
	Capabilities []reach.Capability `json:"capabilities"`
	Channels     []string           `json:"channels"`
	Created      int64              `json:"created"`
	LastSeen     int64              `json:"last_seen"`
	// Current marks the device of the request's key.
	Current bool `json:"current"`
}

func viewOfDevice(d reach.Device, jkt string) deviceView {
	v := deviceView{DeviceID: d.ID, Name: d.Name, Platform: d.Platform, Capabilities: d.Capabilities, Channels: []string{},
		Created: d.Created.Unix(), LastSeen: d.LastSeen.Unix(), Current: d.JKT == jkt}
	if v.Capabilities == nil {
		v.Capabilities = []reach.Capability{}
	}
	for _, ch := range d.Channels {
		v.Channels = append(v.Channels, string(ch.Type))
	}
	return v
}

// validateDevice checks a registration (reach.Device.Validate, which
// the store applies again): webhook URLs by netguard's strict rule —
// https to a public host, never loopback, private, link-local or
// metadata addresses, no userinfo or fragment — even with
// dev.allow_loopback_http (SSRF: docs/security.md); the webhook sender's
// dial-time guard checks the resolved address again.
func (s *Server) validateDevice(d reach.Device) error { return d.Validate() }

// reachRegister serves POST /reach/devices: the app registers (or
// registers again) the device of its DPoP key for its user. 201 for a new
// device, 200 for the same key again (idempotent, the registration
// updated); the key under another user is 409 conflict; an eleventh
// device is 403 access_denied.
func (s *Server) reachRegister(c echo.Context) error {
	ctx := c.Request().Context()
	ac, err := s.reachAppCaller(c)
	if err != nil {
		return s.writeError(c, err)
	}
	var in deviceRegistration
	if err := readAppJSON(c, &in, registrationMembers, channelMembers); err != nil {
		return s.writeError(c, err)
	}
	d := reach.Device{ID: reach.NewID(), User: ac.User, JKT: ac.JKT, Name: in.Name, Platform: in.Platform,
		Capabilities: in.Capabilities, Channels: in.Channels}
	if err := s.validateDevice(d); err != nil {
		return s.reachError(c, err)
	}
	got, err := s.reach.store.PutDevice(ctx, d, reach.DeviceIdleTTL)
	switch {
	case errors.Is(err, storage.ErrConflict):
		return s.writeError(c, newError(http.StatusConflict, "conflict",
			"This key is registered as a device of another account: sign that account out on the device first."))
	case errors.Is(err, reach.ErrQuota):
		return s.writeError(c, newError(http.StatusForbidden, "access_denied",
			"This account has the most devices allowed: remove one before registering another."))
	case err != nil:
		return s.reachError(c, err)
	}
	status := http.StatusCreated
	if got.ID != d.ID {
		status = http.StatusOK
	}
	return writeJSON(c, status, registered{DeviceID: got.ID, InboxURI: s.url(PathReachInbox), EventsURI: s.url(PathReachInboxEvents)})
}

// reachListDevices serves GET /reach/devices: the caller's user's
// devices, oldest first.
func (s *Server) reachListDevices(c echo.Context) error {
	ctx := c.Request().Context()
	ac, err := s.reachAppCaller(c)
	if err != nil {
		return s.writeError(c, err)
	}
	devs, err := s.reach.store.UserDevices(ctx, ac.User)
	if err != nil {
		return s.reachError(c, err)
	}
	out := struct {
		Devices []deviceView `json:"devices"`
	}{Devices: []deviceView{}}
	for _, d := range devs {
		out.Devices = append(out.Devices, viewOfDevice(d, ac.JKT))
	}
	return writeJSON(c, http.StatusOK, out)
}

// pathDevice is the device a PATCH or DELETE names, when the caller is
// that device: a token of the device's user bound to the device's key
// (RFC 9449: the proof's key is the device). Anything else is the
// not-found answer.
func (s *Server) pathDevice(c echo.Context, ac *appCaller) (reach.Device, error) {
	id := c.Param("id")
	if !reach.ValidID(id) {
		return reach.Device{}, errNoDevice()
	}
	d, err := s.reach.store.Device(c.Request().Context(), id)
	switch {
	case errors.Is(err, reach.ErrNotFound):
		return d, errNoDevice()
	case err != nil:
		return d, err
	case d.JKT != ac.JKT || d.User != ac.User:
		return d, errNoDevice()
	}
	return d, nil
}

// reachPatchDevice serves PATCH /reach/devices/{id}: the device itself
// renames itself or replaces its channels (a rotated push token).
func (s *Server) reachPatchDevice(c echo.Context) error {
	ctx := c.Request().Context()
	ac, err := s.reachAppCaller(c)
	if err != nil {
		return s.writeError(c, err)
	}
	var in deviceRegistration
	if err := readAppJSON(c, &in, patchMembers, channelMembers); err != nil {
		return s.writeError(c, err)
	}
	d, err := s.pathDevice(c, ac)
	if err != nil {
		return s.reachError(c, err)
	}
	if in.Name != "" {
		d.Name = in.Name
	}
	if in.Channels != nil {
		d.Channels = in.Channels
	}
	if err := s.validateDevice(d); err != nil {
		return s.reachError(c, err)
	}
	got, err := s.reach.store.PutDevice(ctx, d, reach.DeviceIdleTTL)
	if err != nil {
		return s.reachError(c, err)
	}
	return writeJSON(c, http.StatusOK, viewOfDevice(got, ac.JKT))
}

// reachDeleteDevice serves DELETE /reach/devices/{id}: the app deletes
// its own device when it signs out (204); the device's inbox and
// presence go with it.
func (s *Server) reachDeleteDevice(c echo.Context) error {
	ctx := c.Request().Context()
	ac, err := s.reachAppCaller(c)
	if err != nil {
		return s.writeError(c, err)
	}
	d, err := s.pathDevice(c, ac)
	if err != nil {
		return s.reachError(c, err)
	}
	if err := s.reach.store.DeleteDevice(ctx, d.ID); err != nil {
		return s.reachError(c, err)
	}
	s.dropInboxGen(d.ID)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.NoContent(http.StatusNoContent)
}
