package server

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/flow"
)

// respond serves a hop's response_uri (federation draft §4.3.1): the
// device posts the downstream's authorization_code (or error) with our
// auth_session; we redeem it at the pinned downstream and answer with our
// own authorization_code.
func (s *Server) respond(c echo.Context) error {
	form := formOf(c)
	hop := c.Param("hop")
	if len(hop) > 64 {
		return s.writeError(c, errInvalidRequest("Unknown response_uri."))
	}
	as := form.Get("auth_session")
	if as == "" {
		return s.writeError(c, errInvalidRequest("The auth_session parameter is required."))
	}
	jkt, err := s.dpopProof(c, PathResponse+hop, "")
	if err != nil {
		return s.writeError(c, err)
	}
	code, err := s.flow.Respond(c.Request().Context(), hop, as, form, jkt)
	if err != nil {
		return s.writeError(c, err)
	}
	return writeJSON(c, http.StatusOK, map[string]string{"authorization_code": code.Code})
}

// PathWebCallback is where a downstream's browser flow ends when it fell
// back to redirect_to_web during federation (PROTOCOL-NOTES Q7). Register
// <issuer>/federation/callback as our redirect_uri at each downstream.
const PathWebCallback = "/federation/callback"

// webCallback receives code, state and iss from a downstream's browser
// flow, completes the hop, and sends the browser back to the app's
// registered native_callback_uri (without any code: the app then posts
// its auth_session to us and receives our code).
func (s *Server) webCallback(c echo.Context) error {
	q := c.Request().URL.Query()
	cb, err := s.flow.WebCallback(c.Request().Context(), q.Get("state"), q.Get("code"), q.Get("iss"), q.Get("error"))
	if cb != "" {
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Redirect(http.StatusSeeOther, cb)
	}
	var fe *flow.Error
	switch {
	case err == nil:
		return s.renderPage(c, http.StatusOK, pageData{Title: "Signed in", Message: "Return to the app to finish signing in."})
	case errors.As(err, &fe) && fe.Status == http.StatusServiceUnavailable:
		return s.errorPage(c, http.StatusServiceUnavailable, "The service is temporarily unavailable; reload this page shortly.")
	case errors.As(err, &fe):
		return s.errorPage(c, http.StatusBadRequest, "This sign-in has expired or was already completed. Return to the app and start again.")
	}
	return s.errorPage(c, http.StatusServiceUnavailable, "The service is temporarily unavailable; reload this page shortly.")
}
