// Package tracingtest records spans in memory for tests and checks that
// none of them carries a secret.
package tracingtest

import (
	"fmt"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Recorder is a TracerProvider that samples everything a parent does not
// decide otherwise (parentbased_always_on, the SDK default) and keeps
// every ended span in memory.
type Recorder struct {
	*sdktrace.TracerProvider
	rec *tracetest.SpanRecorder
}

// New returns a Recorder that shuts down when the test ends.
func New(tb testing.TB) *Recorder {
	rec := tracetest.NewSpanRecorder()
	r := &Recorder{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)), rec: rec}
	tb.Cleanup(func() { _ = r.Shutdown(tb.Context()) })
	return r
}

// Ended returns the spans ended so far.
func (r *Recorder) Ended() []sdktrace.ReadOnlySpan { return r.rec.Ended() }

// Texts is everything a span would export as text: its name, status
// description, attributes (keys and values), events (names and
// attributes), links' attributes and resource attributes.
func Texts(s sdktrace.ReadOnlySpan) []string {
	out := []string{s.Name(), s.Status().Description}
	kv := func(attrs []attribute.KeyValue) {
		for _, a := range attrs {
			out = append(out, string(a.Key), a.Value.String())
		}
	}
	kv(s.Attributes())
	for _, e := range s.Events() {
		out = append(out, e.Name)
		kv(e.Attributes)
	}
	for _, l := range s.Links() {
		kv(l.Attributes)
	}
	if res := s.Resource(); res != nil {
		kv(res.Attributes())
	}
	return out
}

// Leaks lists, for each span, every secret that occurs in one of its
// texts (empty secrets are skipped).
func Leaks(spans []sdktrace.ReadOnlySpan, secrets ...string) []string {
	var leaks []string
	for _, s := range spans {
		for _, text := range Texts(s) {
			for _, secret := range secrets {
				if secret != "" && strings.Contains(text, secret) {
					leaks = append(leaks, fmt.Sprintf("span %q: %q contains secret %q", s.Name(), text, secret))
				}
			}
		}
	}
	return leaks
}

// AssertNoSecrets fails the test for every secret found in a span.
func AssertNoSecrets(tb testing.TB, spans []sdktrace.ReadOnlySpan, secrets ...string) {
	tb.Helper()
	for _, l := range Leaks(spans, secrets...) {
		tb.Error(l)
	}
}
