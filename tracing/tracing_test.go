package tracing_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/fedas/fedas/tracing"
	"github.com/fedas/fedas/tracing/tracingtest"
)

const (
	clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID  = "00f067aa0ba902b7"
	traceparent   = "00-" + clientTraceID + "-" + clientSpanID + "-01"
)

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, a := range s.Attributes() {
		m[a.Key] = a.Value
	}
	return m
}

func newEcho(tp trace.TracerProvider) *echo.Echo {
	e := echo.New()
	e.Use(tracing.Middleware(tp, "public", "/healthz"))
	e.GET("/healthz", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	e.POST("/native/response/:hop", func(c echo.Context) error {
		return c.JSON(http.StatusBadRequest, map[string]string{"error": "invalid_request"})
	})
	e.GET("/boom", func(echo.Context) error { return errors.New("broken") })
	return e
}

// A request with a traceparent gets one server span, its child, named
// after the route template; the path parameter, the query, the body and
// the headers other than traceparent stay out of it.
func TestMiddleware_SpanPerRequest(t *testing.T) {
	rec := tracingtest.New(t)
	e := newEcho(rec)
	req := httptest.NewRequest(http.MethodPost, "/native/response/hop-secret-1234?code=query-secret",
		strings.NewReader("auth_session=body-secret"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("traceparent", traceparent)
	req.Header.Set("baggage", "user=baggage-secret")
	req.Header.Set("Authorization", "Bearer header-secret")
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	require.Equal(t, http.StatusBadRequest, w.Code)

	spans := rec.Ended()
	require.Len(t, spans, 1)
	s := spans[0]
	assert.Equal(t, "POST /native/response/:hop", s.Name())
	assert.Equal(t, trace.SpanKindServer, s.SpanKind())
	assert.Equal(t, clientTraceID, s.SpanContext().TraceID().String())
	assert.Equal(t, clientSpanID, s.Parent().SpanID().String())
	assert.True(t, s.Parent().IsRemote())
	a := attrs(s)
	assert.Equal(t, "POST", a["http.request.method"].AsString())
	assert.Equal(t, "/native/response/:hop", a["http.route"].AsString())
	assert.Equal(t, int64(400), a["http.response.status_code"].AsInt64())
	assert.Equal(t, "public", a["fedas.listener"].AsString())
	assert.Equal(t, "http", a["url.scheme"].AsString())
	assert.Equal(t, codes.Unset, s.Status().Code, "a 4xx is the client's error, not the server span's")
	tracingtest.AssertNoSecrets(t, spans, "hop-secret-1234", "query-secret", "body-secret", "baggage-secret", "header-secret")
}

// A 5xx (here an error echo renders after the middleware) marks the span
// as an error; an unknown path is named by its method only.
func TestMiddleware_ErrorsAndUnknownRoutes(t *testing.T) {
	rec := tracingtest.New(t)
	e := newEcho(rec)
	e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/boom", nil))
	e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/unknown/path-secret", nil))
	e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("BREW", "/boom", nil))
	spans := rec.Ended()
	require.Len(t, spans, 3)

	assert.Equal(t, "GET /boom", spans[0].Name())
	assert.Equal(t, codes.Error, spans[0].Status().Code)
	assert.Equal(t, int64(500), attrs(spans[0])["http.response.status_code"].AsInt64())
	assert.Equal(t, "500", attrs(spans[0])["error.type"].AsString())

	assert.Equal(t, int64(404), attrs(spans[1])["http.response.status_code"].AsInt64())
	assert.NotContains(t, spans[1].Name(), "path-secret")

	assert.True(t, strings.HasPrefix(spans[2].Name(), "_OTHER"), spans[2].Name())
	assert.Equal(t, "_OTHER", attrs(spans[2])["http.request.method"].AsString())
	tracingtest.AssertNoSecrets(t, spans, "path-secret", "BREW")
}

// Untraced routes (the health probes) get no span, with or without a
// traceparent.
func TestMiddleware_Untraced(t *testing.T) {
	rec := tracingtest.New(t)
	e := newEcho(rec)
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	req.Header.Set("traceparent", traceparent)
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	require.Equal(t, http.StatusOK, w.Code)
	assert.Empty(t, rec.Ended())
}

// Without a traceparent the span is a root; a malformed one is ignored.
func TestMiddleware_NoOrBadTraceparent(t *testing.T) {
	rec := tracingtest.New(t)
	e := newEcho(rec)
	for _, h := range []string{"", "00-zzzz-00f067aa0ba902b7-01", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"} {
		req := httptest.NewRequest(http.MethodPost, "/native/response/x", nil)
		if h != "" {
			req.Header.Set("traceparent", h)
		}
		e.ServeHTTP(httptest.NewRecorder(), req)
	}
	for _, s := range rec.Ended() {
		assert.False(t, s.Parent().IsValid(), "root span")
	}
	require.Len(t, rec.Ended(), 3)
}

// Tracing off (a no-op provider) installs nothing: the middleware is the
// identity, so a request costs what it cost before tracing existed.
func TestMiddleware_OffIsIdentity(t *testing.T) {
	assert.False(t, tracing.Enabled(nil))
	assert.False(t, tracing.Enabled(noop.NewTracerProvider()))
	assert.True(t, tracing.Enabled(tracingtest.New(t)))
	h := func(echo.Context) error { return nil }
	got := tracing.Middleware(noop.NewTracerProvider(), "public")(h)
	assert.Equal(t, reflect.ValueOf(h).Pointer(), reflect.ValueOf(got).Pointer())
}

// nil is off too; the global provider is used only when passed.
func TestMiddleware_NilIsOffGlobalWhenPassed(t *testing.T) {
	h := func(echo.Context) error { return nil }
	assert.Equal(t, reflect.ValueOf(h).Pointer(), reflect.ValueOf(tracing.Middleware(nil, "public")(h)).Pointer())

	rec := tracingtest.New(t)
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(rec)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	e := newEcho(otel.GetTracerProvider())
	e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/native/response/x", nil))
	require.Len(t, rec.Ended(), 1)
}

// An outbound call within a span gets a client span, child of it, and
// carries that client span's traceparent to the downstream; its
// credentials and body stay out of the span.
func TestTransport_PropagatesTraceparent(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"request_uri":"urn:ietf:params:oauth:request_uri:response-secret"}`)
	}))
	defer srv.Close()
	rec := tracingtest.New(t)
	ctx, parent := rec.Tracer("test").Start(context.Background(), "request")
	hc := &http.Client{Transport: tracing.Transport(http.DefaultTransport)}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/oauth2/par", strings.NewReader("client_assertion=body-secret"))
	require.NoError(t, err)
	req.SetBasicAuth("as1", "basic-secret")
	resp, err := hc.Do(req)
	require.NoError(t, err)
	_, _ = io.ReadAll(resp.Body)
	require.NoError(t, resp.Body.Close())
	parent.End()

	spans := rec.Ended()
	require.Len(t, spans, 2)
	client := spans[0]
	assert.Equal(t, "POST /oauth2/par", client.Name())
	assert.Equal(t, trace.SpanKindClient, client.SpanKind())
	assert.Equal(t, parent.SpanContext().SpanID(), client.Parent().SpanID())
	assert.Equal(t, int64(201), attrs(client)["http.response.status_code"].AsInt64())
	want := "00-" + client.SpanContext().TraceID().String() + "-" + client.SpanContext().SpanID().String() + "-01"
	assert.Equal(t, want, got.Get("traceparent"))
	assert.Empty(t, got.Get("baggage"))
	tracingtest.AssertNoSecrets(t, spans, "body-secret", "basic-secret", "response-secret")
}

// Outside any span (tracing off, background work) the transport adds no
// header and records nothing; an unsampled parent is propagated as such.
func TestTransport_NoSpanNoHeader(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get("traceparent"))
	}))
	defer srv.Close()
	hc := &http.Client{Transport: tracing.Transport(nil)}
	resp, err := hc.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()

	rec := tracingtest.New(t)
	tid, _ := trace.TraceIDFromHex(clientTraceID)
	sid, _ := trace.SpanIDFromHex(clientSpanID)
	unsampled := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, Remote: true}))
	ctx, span := rec.Tracer("test").Start(unsampled, "request")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	resp, err = hc.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	span.End()

	require.Len(t, got, 2)
	assert.Empty(t, got[0])
	assert.True(t, strings.HasPrefix(got[1], "00-"+clientTraceID+"-"), got[1])
	assert.True(t, strings.HasSuffix(got[1], "-00"), "unsampled stays unsampled: %s", got[1])
	assert.Empty(t, rec.Ended())
}
