package server

import "github.com/labstack/echo/v4"

// reachNativeRoutes mounts this front end's endpoints (reach.go reachRoutes).
func (s *Server) reachNativeRoutes(e *echo.Echo, limit func(string) echo.MiddlewareFunc) {}

// reachNativeMetadata adds this front end's metadata members (reach.go).
func (s *Server) reachNativeMetadata(m map[string]any) {}
