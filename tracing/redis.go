package tracing

import (
	"context"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// InstrumentRedis adds a tracing hook to c (single node, Sentinel or
// Cluster client; for a cluster, to every node client it creates) before
// the client is used. A nil or no-op tp adds nothing: Redis tracing is off
// unless a provider is injected.
//
// Each command gets a client span named after the command ("evalsha",
// "get", "redis.pipeline …") with db.system, the server address and
// db.connection_string (host and port, never credentials). Command
// arguments are never recorded — keys hold session IDs and token
// signatures, values hold sessions and codes — so db.statement and the
// caller attributes stay off, and AUTH/HELLO are not traced at all.
//
// Only commands issued within a traced operation (a request's span in
// their context) are traced: the policy follower's periodic reads and the
// startup checks would otherwise open a new root trace every second.
func InstrumentRedis(c redis.UniversalClient, tp trace.TracerProvider) error {
	if !Enabled(tp) {
		return nil
	}
	return redisotel.InstrumentTracing(c,
		redisotel.WithTracerProvider(childOnly{tp: tp}),
		redisotel.WithDBStatement(false),
		redisotel.WithCallerEnabled(false),
		redisotel.WithCommandFilter(redisotel.DefaultCommandFilter),
	)
}

// childOnly is a TracerProvider whose tracers start spans only under an
// existing span; without one they return the context's (no-op) span.
type childOnly struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (p childOnly) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childOnlyTracer{t: p.tp.Tracer(name, opts...)}
}

type childOnlyTracer struct {
	embedded.Tracer
	t trace.Tracer
}

func (t childOnlyTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanFromContext(ctx)
	}
	return t.t.Start(ctx, name, opts...)
}
