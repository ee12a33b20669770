package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/metrics"
	"github.com/fedas/fedas/metrics/metricstest"
)

type fakePolicy struct{ version uint64 }

func (p fakePolicy) PolicyVersion() uint64      { return p.version }
func (fakePolicy) HasClient(id string) bool     { return id == "demo-app" }
func (fakePolicy) HasDownstream(id string) bool { return id == "bank" }

// TestLabels_Bounded: label values never come from a request. Unknown
// clients and downstreams, methods outside the standard set, unmatched
// routes and out-of-range statuses map to fixed values.
func TestLabels_Bounded(t *testing.T) {
	m := metrics.New(metrics.Options{Version: "v9.9.9", Revision: "abc"})
	m.SetPolicy(fakePolicy{version: 7})
	before := metricstest.Snapshot(t, m.Registry())
	ctx := context.Background()
	m.ObserveHTTP("public", "", "BREW", 418, time.Millisecond)
	m.ObserveHTTP("public", "/native/authorize", "POST", 1000, time.Millisecond)
	for _, ev := range []events.Event{
		{Name: events.SignInSuccess, Method: "password", ClientID: "demo-app"},
		{Name: events.SignInFailure, Method: "telepathy", ClientID: "attacker-chosen"},
		{Name: events.TokenIssued, GrantType: "urn:evil", ClientID: "demo-app"},
		{Name: events.ClientAuthFailure, Method: "client_secret_jwt", ClientID: "x' OR 1=1"},
		{Name: events.FederationFailed, Downstream: "not-configured", Reason: "unavailable", Call: events.CallPush, Duration: time.Second},
		{Name: events.FederationStarted, Downstream: "bank", Call: events.CallPush, Duration: time.Second},
		{Name: events.RateLimitHit, Scope: "client"},
		{Name: events.RefreshReuse, ClientID: "attacker-chosen", Reason: "reused"},
	} {
		m.Event(ctx, ev)
	}
	want := metricstest.Series{}.
		HTTP("public", "unmatched", "other", 418).
		HTTP("public", "/native/authorize", "POST", 0).
		Add(1, "fedas_sign_ins_total", "method", "password", "result", "success", "client_id", "demo-app").
		Add(1, "fedas_sign_ins_total", "method", "other", "result", "failure", "client_id", "unknown").
		Add(1, "fedas_tokens_issued_total", "grant_type", "other", "client_id", "demo-app").
		Add(1, "fedas_client_auth_failures_total", "method", "other", "client_id", "unknown").
		Add(1, "fedas_federation_hops_total", "downstream", "unknown", "result", "failed", "reason", "unavailable").
		Add(1, "fedas_federation_hops_total", "downstream", "bank", "result", "started").
		Add(1, "fedas_federation_downstream_duration_seconds_count", "downstream", "unknown", "call", "push").
		Add(1, "fedas_federation_downstream_duration_seconds_count", "downstream", "bank", "call", "push").
		Add(1, "fedas_rate_limited_total", "scope", "client").
		Add(1, "fedas_refresh_reuse_total", "client_id", "unknown", "reason", "reused")
	after := metricstest.Snapshot(t, m.Registry())
	require.Equal(t, want, metricstest.Delta(before, after))
	require.Equal(t, 7.0, after[metricstest.Key("fedas_policy_version")])
	require.Equal(t, 1.0, after[metricstest.Key("fedas_build_info", "version", "v9.9.9", "revision", "abc", "goversion", runtimeVersion(t, after))])
}

func runtimeVersion(t *testing.T, s metricstest.Series) string {
	for k := range s {
		if strings.HasPrefix(k, "fedas_build_info{") {
			i := strings.Index(k, `goversion="`) + len(`goversion="`)
			return k[i : i+strings.IndexByte(k[i:], '"')]
		}
	}
	t.Fatal("no fedas_build_info")
	return ""
}

// TestRegistries_Independent: two Metrics in one process (two servers in
// one test) never share a series, and neither touches the global
// registry.
func TestRegistries_Independent(t *testing.T) {
	a, b := metrics.New(metrics.Options{}), metrics.New(metrics.Options{})
	a.ObserveHTTP("public", "/healthz", "GET", 200, time.Millisecond)
	ka := metricstest.Key("fedas_http_requests_total", "listener", "public", "route", "/healthz", "method", "GET", "status", "200")
	require.Equal(t, 1.0, metricstest.Snapshot(t, a.Registry())[ka])
	require.Zero(t, metricstest.Snapshot(t, b.Registry())[ka])
	n, err := testutil.GatherAndCount(a.Registry(), "fedas_http_requests_total")
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

// TestHotPath_NoAllocations: once a series exists, counting a request,
// an outcome or an event allocates nothing.
func TestHotPath_NoAllocations(t *testing.T) {
	m := metrics.New(metrics.Options{})
	m.SetPolicy(fakePolicy{})
	ev := events.Event{Name: events.SignInSuccess, Method: "password", ClientID: "demo-app"}
	ctx := context.Background()
	run := func() {
		m.ObserveHTTP("public", "/native/authorize", "POST", 403, time.Millisecond)
		m.Outcome("native", "challenge", "password")
		m.Event(ctx, ev)
	}
	run()
	require.Zero(t, testing.AllocsPerRun(100, run))
}

// TestServeHTTP: the exposition in the text format, with every family.
func TestServeHTTP(t *testing.T) {
	m := metrics.New(metrics.Options{})
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	for _, name := range []string{"fedas_build_info", "fedas_policy_version", "fedas_storage_available", "go_goroutines", "process_cpu_seconds_total"} {
		require.Contains(t, body, "\n"+name, name)
	}
}

// replyErr is a Redis error reply.
type replyErr string

func (e replyErr) Error() string { return string(e) }
func (replyErr) RedisError()     {}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestRedisHook_Classify: what one command's result does to the error
// counter and to the storage state.
func TestRedisHook_Classify(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		counted bool
		event   string // the transition from the state given by down
		down    bool
	}{
		{"success while up", nil, false, "", false},
		{"success while down", nil, false, events.StorageRecovered, true},
		{"missing key while down", redis.Nil, false, events.StorageRecovered, true},
		{"cancelled caller", context.Canceled, false, "", false},
		{"client closed", redis.ErrClosed, false, "", false},
		{"script cache miss", replyErr("NOSCRIPT No matching script"), false, "", false},
		{"error reply while down", replyErr("WRONGTYPE Operation against a key"), true, events.StorageRecovered, true},
		{"read-only replica", replyErr("READONLY You can't write against a read only replica."), true, "", false},
		{"read-only replica while down", replyErr("READONLY You can't write against a read only replica."), true, "", true},
		{"out of memory", replyErr("OOM command not allowed"), true, "", false},
		{"loading", replyErr("LOADING Redis is loading the dataset in memory"), true, events.StorageLost, false},
		{"cluster down", replyErr("CLUSTERDOWN The cluster is down"), true, events.StorageLost, false},
		{"deadline", context.DeadlineExceeded, true, events.StorageLost, false},
		{"network timeout", &net.OpError{Op: "read", Err: timeoutErr{}}, true, events.StorageLost, false},
		{"connection refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true, events.StorageLost, false},
		{"network error while down", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zap.InfoLevel)
			m := metrics.New(metrics.Options{})
			avail := events.NewAvailability(events.New(zap.New(core), m))
			if tc.down {
				avail.Lost(context.Background(), "network")
				logs.TakeAll()
			}
			cmd := redis.NewStatusCmd(context.Background(), "set", "k", "v")
			hook := m.RedisHook(avail).ProcessHook(func(context.Context, redis.Cmder) error { return tc.err })
			require.Equal(t, tc.err, hook(context.Background(), cmd))
			errs := metricstest.Snapshot(t, m.Registry())[metricstest.Key("fedas_redis_errors_total", "command", "set")]
			require.Equal(t, tc.counted, errs == 1, "counted")
			var got []string
			for _, e := range logs.All() {
				got = append(got, e.Message)
			}
			if tc.event == "" {
				require.Empty(t, got)
			} else {
				require.Equal(t, []string{tc.event}, got)
			}
			wantUp := !tc.down
			switch tc.event {
			case events.StorageLost:
				wantUp = false
			case events.StorageRecovered:
				wantUp = true
			}
			require.Equal(t, wantUp, !avail.Down(), "state")
		})
	}
}

// TestRedisHook_Pipeline: a pipeline is timed once as "pipeline"; each
// failed command in it counts under its own name.
func TestRedisHook_Pipeline(t *testing.T) {
	m := metrics.New(metrics.Options{})
	ctx := context.Background()
	ok, bad := redis.NewStatusCmd(ctx, "set", "a", "1"), redis.NewStatusCmd(ctx, "incr", "a")
	bad.SetErr(replyErr("WRONGTYPE"))
	hook := m.RedisHook(nil).ProcessPipelineHook(func(context.Context, []redis.Cmder) error { return bad.Err() })
	before := metricstest.Snapshot(t, m.Registry())
	require.Error(t, hook(ctx, []redis.Cmder{ok, bad}))
	require.Equal(t, metricstest.Series{}.
		Add(1, "fedas_redis_command_duration_seconds_count", "command", "pipeline").
		Add(1, "fedas_redis_errors_total", "command", "incr"),
		metricstest.Delta(before, metricstest.Snapshot(t, m.Registry())))
}

func ExampleMetrics_ServeHTTP() {
	m := metrics.New(metrics.Options{Version: "v1.0.0", Revision: "deadbeef"})
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "fedas_storage_available") {
			fmt.Println(line)
		}
	}
	// Output: fedas_storage_available 1
}

// TestEmit_NoAllocations: with logging off, emitting an event through
// an emitter counting into a Metrics allocates nothing.
func TestEmit_NoAllocations(t *testing.T) {
	m := metrics.New(metrics.Options{})
	m.SetPolicy(fakePolicy{})
	e := events.New(zap.NewNop(), m)
	ctx := context.Background()
	ev := events.Event{Name: events.TokenIssued, GrantType: "authorization_code", ClientID: "demo-app"}
	e.Emit(ctx, ev)
	require.Zero(t, testing.AllocsPerRun(100, func() { e.Emit(ctx, ev) }))
}
