package admin

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// registerConsole mounts the web console (docs/admin.md "Console").
func (a *Admin) registerConsole(e *echo.Echo) {
	e.GET("/", func(c echo.Context) error { return c.Redirect(http.StatusSeeOther, PathConsole+"/") })
}
