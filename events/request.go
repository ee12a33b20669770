package events

import (
	"context"

	"go.uber.org/zap"
)

// Request is what the access log learns about one request while it is
// served: its id, and what the handlers note (the client, the engine's
// outcome, the error code). It lives in the request's context; only the
// goroutine serving the request touches it.
type Request struct {
	// ID is the request id (X-Request-Id): the client's when well-formed,
	// else generated.
	ID string
	// ClientID is the registered client the request was for ("" while
	// unknown).
	ClientID string
	// Outcome is the engine's outcome kind (flow.Kind) when the engine
	// answered.
	Outcome string
	// Error is the RFC 6749 error code of an error response.
	Error string

	base, log *zap.Logger
}

type requestKey struct{}

// requestCtx carries a Request in the context it is allocated with: one
// allocation per request instead of two (the record and a WithValue
// node) on every request of both listeners.
type requestCtx struct {
	context.Context
	r Request
}

func (c *requestCtx) Value(key any) any {
	if _, ok := key.(requestKey); ok {
		return &c.r
	}
	return c.Context.Value(key)
}

// NewRequest returns ctx carrying a new request record with id, and the
// record; base is the logger Logger(ctx) derives the request's child
// logger from.
func NewRequest(ctx context.Context, id string, base *zap.Logger) (context.Context, *Request) {
	c := &requestCtx{Context: ctx, r: Request{ID: id, base: base}}
	return c, &c.r
}

// WithRequest returns ctx carrying r (tests and code that build the
// record themselves); base is as for NewRequest.
func WithRequest(ctx context.Context, r *Request, base *zap.Logger) context.Context {
	r.base = base
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestOf returns the request record of ctx, or nil outside a request.
func RequestOf(ctx context.Context) *Request {
	r, _ := ctx.Value(requestKey{}).(*Request)
	return r
}

// RequestID returns the request id of ctx ("" outside a request).
func RequestID(ctx context.Context) string {
	if r := RequestOf(ctx); r != nil {
		return r.ID
	}
	return ""
}

// Logger returns the request's child logger: the base logger with the
// request_id field, built on first use (most requests log nothing but
// their access line). Outside a request it returns fallback.
func Logger(ctx context.Context, fallback *zap.Logger) *zap.Logger {
	r := RequestOf(ctx)
	if r == nil || r.base == nil {
		return fallback
	}
	if r.log == nil {
		r.log = r.base.With(zap.String("request_id", r.ID))
	}
	return r.log
}

// For returns l with the request_id field of ctx, for code that logs
// through its own named logger; l itself outside a request.
func For(ctx context.Context, l *zap.Logger) *zap.Logger {
	if id := RequestID(ctx); id != "" {
		return l.With(zap.String("request_id", id))
	}
	return l
}

// NoteClient records the request's registered client for its access
// line (the first one noted wins).
func NoteClient(ctx context.Context, clientID string) {
	if r := RequestOf(ctx); r != nil && r.ClientID == "" && clientID != "" && clientID != UnknownClient {
		r.ClientID = clientID
	}
}

// NoteOutcome records the engine's outcome kind for the access line.
func NoteOutcome(ctx context.Context, kind string) {
	if r := RequestOf(ctx); r != nil {
		r.Outcome = kind
	}
}

// NoteError records the error code of an error response for the access
// line.
func NoteError(ctx context.Context, code string) {
	if r := RequestOf(ctx); r != nil {
		r.Error = code
	}
}
