// Package accesslog is the echo middleware both fedas listeners share:
// it gives each request an id (X-Request-Id), puts the request record and
// its child logger in the request context (events.Request), counts the
// request in the HTTP metrics, and writes one access line per request at
// info level (docs/operations.md "Access log").
//
// The line carries method, route template, status, latency, the
// registered client, the engine's outcome or the error code, the request
// id and the peer address — never the query, the body, a header value
// other than the request id, or anything else that could hold a secret,
// a code, a token, a password, an auth_session, a request_uri or an
// assertion.
package accesslog

import (
	"crypto/rand"
	"encoding/base64"
	"net"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/fedas/fedas/events"
)

// HeaderRequestID is the request id header, accepted from the client
// when well-formed and always echoed in the response.
const HeaderRequestID = "X-Request-Id"

// HTTPMetrics counts answered requests (*metrics.Metrics implements it).
type HTTPMetrics interface {
	ObserveHTTP(listener, route, method string, status int, d time.Duration)
}

// Options configure the middleware.
type Options struct {
	// Log receives the access lines; Base is the logger the request's
	// child logger (events.Logger) derives from. Either may be nil (no
	// access lines; the access logger as base).
	Log, Base *zap.Logger
	// Listener labels the metrics (metrics.ListenerPublic, …).
	Listener string
	// Metrics, when set, counts every request.
	Metrics HTTPMetrics
}

// Middleware returns the middleware. Mount it first: it must see the
// status a panic or an unknown route ends with, and every later handler
// must find the request record in the context.
func Middleware(o Options) echo.MiddlewareFunc {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Base == nil {
		o.Base = o.Log
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			req := c.Request()
			id := req.Header.Get(HeaderRequestID)
			if !ValidID(id) {
				id = NewID()
			}
			c.Response().Header().Set(HeaderRequestID, id)
			ctx, rec := events.NewRequest(req.Context(), id, o.Base)
			c.SetRequest(req.WithContext(ctx))
			if err := next(c); err != nil {
				// Write the error now, so that the line and the metrics
				// see the status it gets.
				c.Error(err)
			}
			status := c.Response().Status
			took := time.Since(start)
			if o.Metrics != nil {
				o.Metrics.ObserveHTTP(o.Listener, c.Path(), req.Method, status, took)
			}
			if ce := o.Log.Check(zap.InfoLevel, "request"); ce != nil {
				fields := make([]zap.Field, 0, 10)
				fields = append(fields, zap.String("method", req.Method), zap.String("route", route(c.Path())),
					zap.Int("status", status), zap.Duration("took", took), zap.String("request_id", id),
					zap.String("remote", peer(req.RemoteAddr)))
				if rec.ClientID != "" {
					fields = append(fields, zap.String("client_id", rec.ClientID))
				}
				if rec.Outcome != "" {
					fields = append(fields, zap.String("outcome", rec.Outcome))
				}
				if rec.Error != "" {
					fields = append(fields, zap.String("error", rec.Error))
				}
				ce.Write(fields...)
			}
			return nil
		}
	}
}

// route is the route template for the line: "" (no route matched) would
// read as a missing field.
func route(p string) string {
	if p == "" {
		return "unmatched"
	}
	return p
}

// peer is the connection's address without the port: forwarded headers
// are client input and never trusted.
func peer(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// ValidID reports whether a client's request id may be used as ours:
// 1 to 128 characters of A–Z, a–z, 0–9, '.', '_' and '-' (nothing that
// could break a log line or smuggle a secret-looking blob of any size).
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// NewID returns a fresh request id: 12 random bytes, base64url (16
// characters), unique across instances without coordination.
func NewID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
