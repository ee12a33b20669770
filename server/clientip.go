package server

import (
	"net"

	"github.com/labstack/echo/v4"
)

// clientIP is the one place that decides the caller's address for rate
// limits, lockout and caps (docs/security.md "Client addresses"): the TCP
// peer. Forwarded headers are never read unless the peer is a configured
// trusted proxy.
func (s *Server) clientIP(c echo.Context) string {
	host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
	if err != nil {
		return c.Request().RemoteAddr
	}
	return host
}
