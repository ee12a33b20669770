package tracing

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
)

// Transport wraps base (an outbound transport to downstream ASes:
// metadata, JWKS, PAR, token) so that a call made within a traced request
// gets a client span, child of that request's span, and carries its
// traceparent to the downstream: a federated sign-in across AS1 → AS2 is
// one trace.
//
// The span comes from the TracerProvider of the span in the request's
// context (each server instance's own), never from a global one. A call
// whose context holds no span at all (tracing off, or work outside a
// request) goes straight to base: nothing is allocated and no header is
// added. The span records method, url.full (our downstream endpoint,
// without credentials), server address and port, and the status; never
// headers or bodies, which hold client assertions, secrets and codes.
// otelhttp's HTTP metrics stay off: metrics are not this package's.
func Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{base: base, traced: otelhttp.NewTransport(base,
		otelhttp.WithPropagators(Propagator),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(clientSpanName),
	)}
}

type transport struct {
	base   http.RoundTripper
	traced http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !trace.SpanContextFromContext(r.Context()).IsValid() {
		return t.base.RoundTrip(r)
	}
	return t.traced.RoundTrip(r)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// wrapped transport's pool.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// clientSpanName is "METHOD /path" of the downstream endpoint (e.g.
// "POST /oauth2/par"): the path comes from configuration and the
// downstream's validated metadata, never from a request, so it is bounded
// and holds nothing secret; the query is left out.
func clientSpanName(_ string, r *http.Request) string {
	return methodAttr(r.Method).Value.AsString() + " " + r.URL.EscapedPath()
}
