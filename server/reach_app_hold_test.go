package server

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
)

// TestHoldContext: a long poll's context is not ended by the request
// deadline (the deadline middleware's 10 s; max_hold is 25 s and an
// event stream 5 min), keeps the request's values, and ends as soon as
// the client goes away (the request's own context ends).
func TestHoldContext(t *testing.T) {
	type key struct{}
	base, gone := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	defer gone()
	req := httptest.NewRequest("GET", "/reach/inbox", nil).WithContext(base)
	c := echo.New().NewContext(req, httptest.NewRecorder())
	c.Set(baseContextKey, base)
	expired, cancel := context.WithDeadline(base, time.Now().Add(-time.Second))
	defer cancel()
	c.SetRequest(req.WithContext(expired))
	require.Error(t, c.Request().Context().Err(), "the request deadline has passed")

	ctx, stop := holdContext(c, time.Hour)
	defer stop()
	require.NoError(t, ctx.Err(), "the hold outlives the request deadline")
	require.Equal(t, "v", ctx.Value(key{}))
	gone()
	<-ctx.Done()
	require.ErrorIs(t, ctx.Err(), context.Canceled)
}
