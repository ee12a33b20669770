package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"
)

// traces is the process's tracing (docs/operations.md "Traces"): the
// provider every part of `serve` gets, and how to flush it on exit.
type traces struct {
	tp       trace.TracerProvider
	shutdown func(context.Context) error
	log      *zap.Logger
}

// traceFlushTimeout bounds the flush of buffered spans at exit: a
// collector that is down must not hold the shutdown for long.
const traceFlushTimeout = 5 * time.Second

// tracingSettings is what the OTEL_* environment selects. The exporter's
// own variables (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS,
// _TIMEOUT, _COMPRESSION, _CERTIFICATE, …) and OTEL_BSP_* are read by the
// OTLP exporter and the batch processor themselves; OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES by the resource.
type tracingSettings struct {
	on          bool
	sampler     sdktrace.Sampler // nil: the SDK default, parentbased_always_on
	samplerName string
}

// tracingFromEnv reads the OTEL_* variables. Tracing is off unless
// OTEL_TRACES_EXPORTER names otlp — unlike the OpenTelemetry default, an
// authorization server exports nothing nobody asked for. When it is on,
// every value fedas cannot honour is an error, so that a typo fails the
// start instead of silently tracing something else.
func tracingFromEnv(getenv func(string) string) (tracingSettings, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return tracingSettings{}, nil
	}
	var otlp, none bool
	for _, e := range strings.Split(getenv("OTEL_TRACES_EXPORTER"), ",") {
		switch strings.ToLower(strings.TrimSpace(e)) {
		case "":
		case "otlp":
			otlp = true
		case "none":
			none = true
		default:
			return tracingSettings{}, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: fedas exports traces with otlp or none", getenv("OTEL_TRACES_EXPORTER"))
		}
	}
	if otlp && none {
		return tracingSettings{}, errors.New("OTEL_TRACES_EXPORTER: none excludes otlp")
	}
	if !otlp {
		return tracingSettings{}, nil
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if p := strings.TrimSpace(proto); p != "" && p != "http/protobuf" {
		return tracingSettings{}, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: fedas exports traces over OTLP/HTTP with protobuf (http/protobuf) only", proto)
	}
	s := tracingSettings{on: true, samplerName: "parentbased_always_on"}
	name := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER")))
	arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
	ratio := func() (sdktrace.Sampler, error) {
		if arg == "" {
			return sdktrace.TraceIDRatioBased(1), nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: a ratio between 0 and 1", arg)
		}
		return sdktrace.TraceIDRatioBased(r), nil
	}
	switch name {
	case "":
		return s, nil
	case "always_on":
		s.sampler = sdktrace.AlwaysSample()
	case "always_off":
		s.sampler = sdktrace.NeverSample()
	case "parentbased_always_on":
		s.sampler = sdktrace.ParentBased(sdktrace.AlwaysSample())
	case "parentbased_always_off":
		s.sampler = sdktrace.ParentBased(sdktrace.NeverSample())
	case "traceidratio", "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return tracingSettings{}, err
		}
		s.sampler = r
		if name == "parentbased_traceidratio" {
			s.sampler = sdktrace.ParentBased(r)
		}
	default:
		return tracingSettings{}, fmt.Errorf("OTEL_TRACES_SAMPLER=%q: one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio", name)
	}
	s.samplerName = name
	return s, nil
}

// startTracing sets up tracing from the environment. Off, the provider is
// the API's no-op one, which the instrumentation recognises and does not
// even install (package tracing): no exporter, no goroutine, no cost.
func startTracing(ctx context.Context, log *zap.Logger) (*traces, error) {
	log = log.Named("tracing")
	off := &traces{tp: noop.NewTracerProvider(), shutdown: func(context.Context) error { return nil }, log: log}
	set, err := tracingFromEnv(os.Getenv)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	if !set.on {
		return off, nil
	}
	// Export failures (a collector down) and ignored exporter settings go
	// to our log, not to stderr through the standard logger; they carry
	// the endpoint and the error, never span contents.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing: export failed", zap.Error(err)) }))
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	// The process detectors stay out: process.command_args would carry
	// `--redis redis://user:password@…`.
	attrs := []resource.Option{resource.WithAttributes(semconv.ServiceName("fedas"))}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceVersion(bi.Main.Version)))
	}
	res, err := resource.New(ctx, append(attrs, resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithHost())...)
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp), sdktrace.WithResource(res)}
	if set.sampler != nil {
		opts = append(opts, sdktrace.WithSampler(set.sampler))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	service, _ := res.Set().Value(semconv.ServiceNameKey)
	log.Info("tracing on", zap.String("exporter", "otlp"), zap.String("protocol", "http/protobuf"),
		zap.String("sampler", set.samplerName), zap.String("service_name", service.AsString()))
	return &traces{tp: tp, shutdown: tp.Shutdown, log: log}, nil
}

// stop flushes the spans still buffered and stops the exporter.
func (t *traces) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), traceFlushTimeout)
	defer cancel()
	if err := t.shutdown(ctx); err != nil {
		t.log.Warn("tracing: flush at exit failed", zap.Error(err))
	}
}
