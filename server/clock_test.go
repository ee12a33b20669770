package server_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	fositejwt "github.com/ory/fosite/token/jwt"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage/memory"
)

// clockServer starts a server whose clock is now, with the private_key_jwt
// client j. servertest has no clock option, so it is built here the same
// way (real listener, memory store, stopped at cleanup).
func clockServer(tb testing.TB, now func() time.Time, j jwtClient) instance {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	cfg := config.Default()
	cfg.Issuer, cfg.Listen = "http://"+ln.Addr().String(), ln.Addr().String()
	cfg.Clients = append(cfg.Clients, j.config(tb))
	require.NoError(tb, cfg.Validate())
	st := memory.New()
	tb.Cleanup(func() { _ = st.Close() })
	srv, err := server.New(server.Options{Config: cfg, Store: st, Logger: servertest.Logger(tb), Now: now})
	require.NoError(tb, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return wrap(&servertest.Instance{URL: cfg.Issuer, Server: srv, Store: st, Config: cfg})
}

// authenticates reports whether the server accepted the client assertion
// (introspecting an unknown token: 200 inactive vs 401 invalid_client).
func authenticates(tb testing.TB, in instance, assertion string) bool {
	tb.Helper()
	r := post(tb, in.intro(), url.Values{"token": {"ory_at_unknown.unknown"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}})
	if r.status == http.StatusOK {
		require.Equal(tb, map[string]any{"active": false}, r.body)
		return true
	}
	requireOAuthError(tb, r, http.StatusUnauthorized, "invalid_client")
	return false
}

// TestClientAssertion_ClockPerServer (SECURITY-RESULTS.md G03, no process-global
// state): two servers in one process, one with a clock an hour ahead,
// judge the same assertion each by its own clock, concurrently; the
// leeway is 10 s either way of that clock; fosite's package clock is left
// alone.
func TestClientAssertion_ClockPerServer(t *testing.T) {
	realFn := reflect.ValueOf(fositejwt.TimeFunc).Pointer()
	j := newJWTClient(t, "pk-clock", jose.ES256)
	base := time.Now().Truncate(time.Second)
	ahead := base.Add(time.Hour)
	clk := clockServer(t, time.Now, j)
	fixed := clockServer(t, func() time.Time { return ahead }, j)
	require.Equal(t, realFn, reflect.ValueOf(fositejwt.TimeFunc).Pointer(), "server.New must not touch fosite's jwt.TimeFunc")
	require.WithinDuration(t, time.Now(), fositejwt.TimeFunc(), time.Second)

	at := func(in instance, iat, exp time.Time, nbf ...time.Time) string {
		return j.assertion(t, in.URL, func(c map[string]any) {
			c["iat"], c["exp"] = iat.Unix(), exp.Unix()
			if len(nbf) > 0 {
				c["nbf"] = nbf[0].Unix()
			}
		})
	}
	tests := []struct {
		name string
		in   instance
		a    func(instance) string
		ok   bool
	}{
		{"real clock: now", clk, func(in instance) string { return at(in, base, base.Add(time.Minute)) }, true},
		{"real clock: an hour ahead is refused", clk, func(in instance) string { return at(in, ahead, ahead.Add(time.Minute)) }, false},
		{"real clock: iat +8 s", clk, func(in instance) string { return at(in, time.Now().Add(8*time.Second), base.Add(time.Minute)) }, true},
		{"real clock: iat +61 s", clk, func(in instance) string { return at(in, time.Now().Add(61*time.Second), base.Add(2*time.Minute)) }, false},
		{"ahead: its now", fixed, func(in instance) string { return at(in, ahead, ahead.Add(time.Minute)) }, true},
		{"ahead: the real now has expired", fixed, func(in instance) string { return at(in, base, base.Add(time.Minute)) }, false},
		{"ahead: iat +10 s", fixed, func(in instance) string { return at(in, ahead.Add(10*time.Second), ahead.Add(time.Minute)) }, true},
		{"ahead: iat +11 s", fixed, func(in instance) string { return at(in, ahead.Add(11*time.Second), ahead.Add(time.Minute)) }, false},
		{"ahead: nbf +10 s", fixed, func(in instance) string { return at(in, ahead, ahead.Add(time.Minute), ahead.Add(10*time.Second)) }, true},
		{"ahead: nbf +11 s", fixed, func(in instance) string { return at(in, ahead, ahead.Add(time.Minute), ahead.Add(11*time.Second)) }, false},
		{"ahead: exp -10 s", fixed, func(in instance) string { return at(in, ahead.Add(-time.Minute), ahead.Add(-10*time.Second)) }, true},
		{"ahead: exp -11 s", fixed, func(in instance) string { return at(in, ahead.Add(-time.Minute), ahead.Add(-11*time.Second)) }, false},
		{"ahead: exp -5 min", fixed, func(in instance) string { return at(in, ahead.Add(-6*time.Minute), ahead.Add(-5*time.Minute)) }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.ok, authenticates(t, tc.in, tc.a(tc.in)))
		})
	}
	t.Run("concurrently, each by its own clock", func(t *testing.T) {
		// Assertions are signed here; the goroutines only send them.
		type pair struct{ clk, fixed string }
		pairs := make([]pair, 20)
		for i := range pairs {
			pairs[i] = pair{at(clk, base, base.Add(time.Minute)), at(fixed, base, base.Add(time.Minute))}
		}
		statuses := make([][2]int, len(pairs))
		send := func(in instance, a string) int {
			f := url.Values{"token": {"ory_at_unknown.unknown"}, "client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
			resp, err := servertest.HTTP().PostForm(in.intro(), f)
			if err != nil {
				return 0
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		var wg sync.WaitGroup
		for i, p := range pairs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i] = [2]int{send(clk, p.clk), send(fixed, p.fixed)}
			}()
		}
		wg.Wait()
		for _, st := range statuses {
			require.Equal(t, [2]int{http.StatusOK, http.StatusUnauthorized}, st)
		}
	})
	t.Run("an accepted assertion is single-use on its server", func(t *testing.T) {
		a := at(fixed, ahead, ahead.Add(time.Minute))
		require.True(t, authenticates(t, fixed, a))
		require.False(t, authenticates(t, fixed, a))
	})
}
