package admin

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

func (a *Admin) discover(c echo.Context) error {
	return writeErr(c, errf(http.StatusNotImplemented, "not_implemented", "soon"))
}

func (a *Admin) checkDownstream(c echo.Context) error {
	return writeErr(c, errf(http.StatusNotImplemented, "not_implemented", "soon"))
}
