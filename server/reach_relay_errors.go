package server

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// The interaction relay's error media types (docs/decisions.md Q24):
// every error is an RFC 6749 §5.2 body; a request whose Accept asks for
// application/problem+json gets the same members plus RFC 9457's type,
// title, status and detail under that media type, so that an AAuth agent
// (which keys on error, AAuth -09 and later) and an OAuth client read one
// shape.

const (
	mediaJSON    = "application/json"
	mediaProblem = "application/problem+json"
	// ctxProblemOK marks a request of a route that may answer
	// application/problem+json (relayNegotiate).
	ctxProblemOK = "fedas.problem_ok"
)

// relayNegotiate marks the relay's requests as ones whose errors s.writeError
// negotiates (wantsProblem), and says so to caches (Vary: Accept; RFC 9110
// §12.5.5). It runs before every other middleware of the route, so that the
// rate limiter's 429 is negotiated too.
func relayNegotiate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Set(ctxProblemOK, true)
		c.Response().Header().Set("Vary", "Accept")
		return next(c)
	}
}

// wantsProblem is the one decision of the error media type: only on a
// route relayNegotiate marked, and only when the request's Accept
// (RFC 9110 §12.5.1) names application/problem+json explicitly with a
// q-value above zero and not below the one application/json gets (from
// its own range or a wildcard). A wildcard alone never selects problem+json:
// application/json is the default.
func wantsProblem(c echo.Context) bool {
	if ok, _ := c.Get(ctxProblemOK).(bool); !ok {
		return false
	}
	return prefersProblem(c.Request().Header.Values("Accept"))
}

// prefersProblem applies wantsProblem's rule to Accept header values.
func prefersProblem(accept []string) bool {
	qProblem, qJSON := -1.0, -1.0
	specJSON := -1 // specificity of the range that set qJSON: 0 */*, 1 type/*, 2 exact
	for _, line := range accept {
		for _, part := range strings.Split(line, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if v, ok := params["q"]; ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || f < 0 || f > 1 {
					continue
				}
				q = f
			}
			switch mt {
			case mediaProblem:
				qProblem = q
			case mediaJSON:
				qJSON, specJSON = q, 2
			case "application/*":
				if specJSON < 1 {
					qJSON, specJSON = q, 1
				}
			case "*/*":
				if specJSON < 0 {
					qJSON, specJSON = q, 0
				}
			}
		}
	}
	return qProblem > 0 && qProblem >= qJSON
}

// writeProblem writes body as application/problem+json (RFC 9457 §3):
// the RFC 6749 members as they are, plus type about:blank (§4.2.1: the
// error member carries the meaning), title (the status phrase), status and
// detail (the error_description), with writeJSON's headers.
func writeProblem(c echo.Context, status int, body errorBody) error {
	members := map[string]any{"type": "about:blank", "title": http.StatusText(status), "status": status}
	if body.ErrorDescription != "" {
		members["detail"] = body.ErrorDescription
	}
	for k, v := range body.Members {
		members[k] = v
	}
	body.Members = members
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", mediaProblem)
	h.Set("X-Content-Type-Options", "nosniff")
	c.Response().WriteHeader(status)
	_, err = c.Response().Write(bytes.TrimRight(b, "\n"))
	return err
}
