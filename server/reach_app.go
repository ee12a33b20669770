package server

import "github.com/labstack/echo/v4"

// reachAppRoutes mounts this front end's endpoints (reach.go reachRoutes).
func (s *Server) reachAppRoutes(e *echo.Echo, limit func(string) echo.MiddlewareFunc) {}

// reachAppMetadata adds this front end's metadata members (reach.go).
func (s *Server) reachAppMetadata(m map[string]any) {}
