package server

import "github.com/labstack/echo/v4"

// uqRoutes mounts this front end's endpoints (reach.go reachRoutes).
func (s *Server) uqRoutes(e *echo.Echo, limit func(string) echo.MiddlewareFunc) {}

// uqMetadata adds this front end's metadata members (reach.go).
func (s *Server) uqMetadata(m map[string]any) {}
