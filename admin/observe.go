package admin

import (
	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/accesslog"
	"github.com/fedas/fedas/metrics"
)

// accessLog is the public listener's access log on the admin listener:
// request ids, one line per request, and the HTTP metrics under
// listener="admin" when o.Metrics counts them.
func (a *Admin) accessLog(o Options) echo.MiddlewareFunc {
	hm, _ := o.Metrics.(accesslog.HTTPMetrics)
	return accesslog.Middleware(accesslog.Options{Log: a.log.Named("access"), Base: a.log, Listener: metrics.ListenerAdmin, Metrics: hm})
}

// NoTokens is a tokens set that admits nobody: the admin listener started
// without a tokens file (for /metrics) answers every API and console
// request 401, as with an empty file.
func NoTokens() *Tokens { return &Tokens{list: []Token{}} }
