// Package tracing instruments fedas with OpenTelemetry traces: a server
// span per request on the public and the admin listener, a client span per
// outbound call to a downstream AS, and a span per Redis command
// (docs/operations.md "Traces").
//
// It depends only on the OpenTelemetry API, never on the SDK: what a span
// becomes (exported, sampled, dropped) is the TracerProvider's business,
// which the caller injects per server instance. A nil or no-op provider
// costs nothing: Middleware returns its next handler unchanged and
// InstrumentRedis adds no hook.
//
// What is never recorded: query strings, request and response bodies,
// headers, URL paths of inbound requests (a route template instead, so a
// per-hop ID in /native/response/{hop} stays out), Redis command
// arguments (keys hold session IDs and token signatures). Only the W3C
// Trace Context header is read from requests and written to downstream
// calls; baggage is neither accepted nor forwarded.
package tracing

import (
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of fedas's own spans.
const ScopeName = "github.com/fedas/fedas/tracing"

// ListenerKey names the listener a server span was served on ("public"
// or "admin"): both speak HTTP on their own ports and share route
// prefixes with nothing, but a trace view groups by it faster than by
// route.
const ListenerKey = attribute.Key("fedas.listener")

// Propagator is the only propagator fedas uses, for extraction and
// injection alike: W3C Trace Context. Baggage is left out on purpose:
// whatever a client puts there must not travel on to downstream ASes.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Enabled reports whether tp may record spans: false for nil and for the
// API's no-op provider, which is what "tracing off" injects so that no
// instrumentation is even installed.
func Enabled(tp trace.TracerProvider) bool {
	if tp == nil {
		return false
	}
	_, off := tp.(noop.TracerProvider)
	return !off
}

// Middleware returns an echo middleware that starts a server span for
// each request, as a child of the request's traceparent when it has a
// valid one. Register it before every other middleware (e.Use order) so
// that the span covers them and the status it records is the one sent.
//
// listener names the listener in the ListenerKey attribute. Requests for
// the untraced routes (templates, such as the health endpoints that
// probes call every few seconds) get no span: each would be a trace of
// its own, and tell nothing a metric does not.
//
// A nil or no-op tp returns the next handler itself, so tracing off adds
// nothing to a request — not even the global provider's delegation
// (measured: 15 allocations a request while no global provider is set);
// a process that wants the global provider passes otel.GetTracerProvider().
//
// The span is named "METHOD route" (e.g. "POST /native/response/:hop")
// and carries http.request.method, http.route, url.scheme,
// network.protocol.version and http.response.status_code; a 5xx marks it
// as an error. Nothing else from the request is read.
func Middleware(tp trace.TracerProvider, listener string, untraced ...string) echo.MiddlewareFunc {
	if !Enabled(tp) {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	tracer := tp.Tracer(ScopeName)
	base := []attribute.KeyValue{ListenerKey.String(listener)}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			route := c.Path()
			if slices.Contains(untraced, route) {
				return next(c)
			}
			r := c.Request()
			ctx := Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			method := methodAttr(r.Method)
			name := method.Value.AsString()
			attrs := append(make([]attribute.KeyValue, 0, 8), base...)
			attrs = append(attrs, method, scheme(r), semconv.NetworkProtocolVersion(protoVersion(r)))
			if route != "" {
				name += " " + route
				attrs = append(attrs, semconv.HTTPRoute(route))
			}
			ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
			defer span.End()
			c.SetRequest(r.WithContext(ctx))

			err := next(c)
			status := c.Response().Status
			if err != nil && !c.Response().Committed {
				// An error no inner middleware rendered: echo's error
				// handler will, after us. Record what it will send.
				status = http.StatusInternalServerError
				var he *echo.HTTPError
				if errors.As(err, &he) {
					status = he.Code
				}
			}
			span.SetAttributes(semconv.HTTPResponseStatusCode(status))
			if status >= 500 {
				// Server spans: only 5xx is an error (4xx is the
				// client's; semconv HTTP spans, status).
				span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
				span.SetStatus(codes.Error, "")
			}
			return err
		}
	}
}

// methodAttr is http.request.method, with methods outside RFC 9110's
// set folded into "_OTHER" so a client cannot mint span names.
func methodAttr(m string) attribute.KeyValue {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead,
		http.MethodPatch, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return semconv.HTTPRequestMethodKey.String(m)
	}
	return semconv.HTTPRequestMethodOther
}

func scheme(r *http.Request) attribute.KeyValue {
	if r.TLS != nil {
		return semconv.URLSchemeKey.String("https")
	}
	return semconv.URLSchemeKey.String("http")
}

func protoVersion(r *http.Request) string {
	switch {
	case r.ProtoMajor == 2:
		return "2"
	case r.ProtoMajor == 1 && r.ProtoMinor == 0:
		return "1.0"
	}
	return "1.1"
}
