package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
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
	code, err := s.flow.Respond(c.Request().Context(), hop, as, form)
	if err != nil {
		return s.writeError(c, err)
	}
	return writeJSON(c, http.StatusOK, map[string]string{"authorization_code": code.Code})
}
