package server

import (
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/flow"
)

// PathWebCallback is where a downstream's browser flow ends (docs/decisions.md
// Q7, Q19). Register <issuer>/federation/callback as our redirect_uri at
// each downstream.
const PathWebCallback = "/federation/callback"

// webCallback receives code (or error), state and iss from a downstream's
// browser flow; the engine completes the hop and the browser goes back to
// the app's registered native_callback_uri with a one-time response_code
// the device must post with its auth_session (docs/protocol.md
// "Browser legs").
func (s *Server) webCallback(c echo.Context) error {
	ctx := c.Request().Context()
	q := c.Request().URL.Query()
	form := url.Values{}
	for _, k := range []string{"state", "code", "iss", "error"} {
		if len(q[k]) > 1 {
			return s.errorPage(c, 400, "The response repeats a parameter.")
		}
		if v := q.Get(k); v != "" {
			form.Set(k, v)
		}
	}
	out, err := s.flow.Handle(ctx, flow.Request{Channel: flow.ChannelWebCallback, Policy: s.snapshot(ctx), Form: form, ClientIP: s.clientIP(c)})
	if err != nil {
		return s.errorPage(c, 503, "The service is temporarily unavailable; reload this page shortly.")
	}
	return s.renderPageOutcome(c, out)
}
