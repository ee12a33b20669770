package server

import "github.com/labstack/echo/v4"

// relayRoutes mounts this front end's endpoints (reach.go reachRoutes).
func (s *Server) relayRoutes(e *echo.Echo, limit func(string) echo.MiddlewareFunc) {}

// relayMetadata adds this front end's metadata members (reach.go).
func (s *Server) relayMetadata(m map[string]any) {}
