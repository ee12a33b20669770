package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/docs"
)

// PathOpenAPI serves the OpenAPI 3.1 description of the public endpoints
// (docs/openapi.json; docs/protocol.md). The admin API has its own, on the
// admin listener only (/admin/openapi.json).
const PathOpenAPI = "/.well-known/openapi.json"

func (s *Server) openAPI(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, "application/json", docs.OpenAPI)
}
