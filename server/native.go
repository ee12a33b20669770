package server

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/policy"
)

// native serves the native authorization endpoint (FiPA-04 §5: the
// "authorization challenge endpoint"; the federation draft's "native
// authorization endpoint"): initial requests, follow-ups, and client_id +
// request_uri in the downstream role. Every decision is the engine's.
func (s *Server) native(c echo.Context) error {
	return s.engineJSON(c, flow.ChannelNative, PathNative, "")
}

// respond serves a hop's response_uri (federation draft §4.3.1): the
// device posts the downstream's authorization_code (or error) with our
// auth_session; we redeem it at the pinned downstream and answer with our
// own authorization_code.
func (s *Server) respond(c echo.Context) error {
	hop := c.Param("hop")
	if len(hop) > 64 {
		return s.writeError(c, errInvalidRequest("Unknown response_uri."))
	}
	return s.engineJSON(c, flow.ChannelResponse, PathResponse+hop, hop)
}

// engineJSON runs one JSON-channel request through the engine: the DPoP
// proof, the calling client, then flow.Handle, then render.
func (s *Server) engineJSON(c echo.Context, ch flow.Channel, path, hop string) error {
	ctx := c.Request().Context()
	form := formOf(c)
	jkt, err := s.dpopProof(c, path, "")
	if err != nil {
		return s.writeError(c, err)
	}
	client, authed, err := s.caller(c, form)
	if err != nil {
		return s.writeError(c, err)
	}
	out, err := s.flow.Handle(ctx, flow.Request{Channel: ch, Policy: s.snapshot(ctx), Client: client, Authenticated: authed,
		DPoPJKT: jkt, Form: form, HopID: hop, ClientIP: s.clientIP(c)})
	if err != nil {
		return s.writeError(c, err)
	}
	return s.renderJSON(c, out)
}

// caller identifies the client of a request (native endpoint, response_uri,
// introspection, revocation). With credentials
// (HTTP Basic, client_secret, client_assertion) it authenticates them —
// FiPA-04 §4.1: a client that authenticates at the token endpoint
// authenticates here too — and a failure is invalid_client. Without, a
// client_id names the client unauthenticated; the engine decides whether
// that is enough for the request at hand.
func (s *Server) caller(c echo.Context, form url.Values) (*policy.Client, bool, error) {
	ctx := c.Request().Context()
	_, _, basic := c.Request().BasicAuth()
	if basic || form.Get("client_secret") != "" || form.Get("client_assertion") != "" || form.Get("client_assertion_type") != "" {
		fc, err := s.authenticateClient(ctx, c.Request(), form)
		if err = fositeErr(err); err != nil {
			return nil, false, err
		}
		pc, ok := fc.(*policy.Client)
		if !ok {
			return nil, false, newError(http.StatusUnauthorized, "invalid_client", "Unknown client.")
		}
		events.NoteClient(ctx, pc.GetID())
		return pc, !pc.IsPublic(), nil
	}
	id := form.Get("client_id")
	if id == "" {
		return nil, false, nil
	}
	pc, ok := s.snapshot(ctx).Client(id)
	if !ok {
		return nil, false, newError(http.StatusUnauthorized, "invalid_client", "Unknown client.")
	}
	events.NoteClient(ctx, pc.GetID())
	return pc, false, nil
}
