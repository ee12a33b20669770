package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/storage/memory"
)

// discard is a span exporter that drops every batch: the cost measured is
// fedas's instrumentation and the SDK's, not a collector's.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkNativeTracing is the initial native request (memory store,
// handler called directly) with tracing off (the no-op provider `fedas
// serve` injects without OTEL_TRACES_EXPORTER; nil is the same), with
// the global provider while none is set (what a library user who passes
// otel.GetTracerProvider() pays until a provider is set), and on (the
// SDK, every request sampled and batched to a discarding exporter), each
// with a traceparent.
//
//	go test ./server/ -run '^$' -bench '^BenchmarkNativeTracing$' -benchmem
func BenchmarkNativeTracing(b *testing.B) {
	on := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	b.Cleanup(func() { _ = on.Shutdown(context.Background()) })
	for _, tc := range []struct {
		name string
		tp   trace.TracerProvider
	}{{"off", noop.NewTracerProvider()}, {"nil", nil}, {"global-unset", otel.GetTracerProvider()}, {"on", on}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := config.Default()
			cfg.Issuer = "http://127.0.0.1:1"
			testConfig(cfg)
			if err := cfg.Validate(); err != nil {
				b.Fatal(err)
			}
			st := memory.New()
			b.Cleanup(func() { _ = st.Close() })
			srv, err := server.New(server.Options{Config: cfg, Store: st, Logger: zap.NewNop(), TracerProvider: tc.tp})
			if err != nil {
				b.Fatal(err)
			}
			h := srv.Handler()
			body := initialForm(sdk.NewPKCE(), "").Encode()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, server.PathNative, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusForbidden {
					b.Fatalf("initial: %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
