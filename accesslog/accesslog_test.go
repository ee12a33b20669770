package accesslog_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fedas/fedas/accesslog"
	"github.com/fedas/fedas/events"
)

func TestValidID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"a", true},
		{"req-1.A_z", true},
		{strings.Repeat("x", 128), true},
		{"", false},
		{strings.Repeat("x", 129), false},
		{"a b", false},
		{"a\nb", false},
		{"a/b", false},
		{"a=b", false},
		{"ü", false},
	} {
		require.Equal(t, tc.ok, accesslog.ValidID(tc.id), "%q", tc.id)
	}
	a, b := accesslog.NewID(), accesslog.NewID()
	require.True(t, accesslog.ValidID(a))
	require.NotEqual(t, a, b)
}

type recorder struct{ route, method string }

func (r *recorder) ObserveHTTP(_, route, method string, _ int, _ time.Duration) {
	r.route, r.method = route, method
}

// TestMiddleware_ErrorStatus: a handler's error is written before the
// line, so the line and the metrics see the status it gets; the context
// record and logger are the handlers'.
func TestMiddleware_ErrorStatus(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	rec := &recorder{}
	e := echo.New()
	e.Use(accesslog.Middleware(accesslog.Options{Log: zap.New(core).Named("access"), Listener: "public", Metrics: rec}))
	e.GET("/x/:id", func(c echo.Context) error {
		ctx := c.Request().Context()
		events.NoteClient(ctx, "demo-app")
		events.Logger(ctx, nil).Info("inside")
		return echo.NewHTTPError(http.StatusTeapot, "no")
	})
	req := httptest.NewRequest(http.MethodGet, "/x/secret-value", nil)
	req.Header.Set(accesslog.HeaderRequestID, "given-1")
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	require.Equal(t, http.StatusTeapot, w.Code)
	require.Equal(t, "given-1", w.Header().Get(accesslog.HeaderRequestID))
	require.Equal(t, "/x/:id", rec.route)
	all := logs.All()
	require.Len(t, all, 2)
	require.Equal(t, map[string]any{"request_id": "given-1"}, all[0].ContextMap())
	line := all[1].ContextMap()
	require.Equal(t, "/x/:id", line["route"], "the template, never the path")
	require.Equal(t, int64(http.StatusTeapot), line["status"])
	require.Equal(t, "demo-app", line["client_id"])
	require.Equal(t, "given-1", line["request_id"])
	require.NotContains(t, all[1].Message+strings.Join(keys(line), ","), "secret-value")
	for _, v := range line {
		if s, ok := v.(string); ok {
			require.NotContains(t, s, "secret-value")
		}
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
