package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/metrics"
	"github.com/fedas/fedas/metrics/metricstest"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage/redisstore"
	"github.com/fedas/fedas/storage/redistest"
)

// TestEvents_StorageLostRecoveredOnce: a real redis-server is frozen
// (SIGSTOP) while requests keep coming, then resumed. The outage is logged
// exactly once when it starts (storage.lost, with the id of the request
// that noticed it) and once when it ends (storage.recovered), however many
// requests fail meanwhile; fedas_storage_available follows, and the
// failed commands are counted.
func TestEvents_StorageLostRecoveredOnce(t *testing.T) {
	rs := redistest.Start(t)
	log, out := newJSONLog()
	m := metrics.New(metrics.Options{})
	avail := events.NewAvailability(events.New(log.Named("event"), m))
	st, err := redisstore.New(context.Background(), redisstore.Options{URL: rs.URL(), Hooks: []redis.Hook{m.RedisHook(avail)}}, log)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	in := wrap(servertest.Start(t, servertest.Options{Store: st, Logger: log, Metrics: m, Configure: testConfig}))
	gauge := func() float64 {
		return metricstest.Snapshot(t, m.Registry())[metricstest.Key("fedas_storage_available")]
	}

	r, _ := in.initial(t, "demo-app", nil)
	require.Equal(t, http.StatusForbidden, r.status, r.raw)
	require.Equal(t, 1.0, gauge())
	before := metricstest.Snapshot(t, m.Registry())

	rs.Pause()
	var failed []string
	for range 3 {
		r, _ := in.initial(t, "demo-app", nil)
		requireOAuthError(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
		failed = append(failed, r.header.Get("X-Request-Id"))
	}
	require.Equal(t, 0.0, gauge())
	rs.Resume()
	for range 3 {
		r, _ := in.initial(t, "demo-app", nil)
		require.Equal(t, http.StatusForbidden, r.status, r.raw)
	}
	require.Equal(t, 1.0, gauge())

	var got []logLine
	for _, e := range where(out.lines(t), ".event", "") {
		if e.str("event") == events.StorageLost || e.str("event") == events.StorageRecovered {
			got = append(got, e)
		}
	}
	require.Len(t, got, 2, "one line when storage is lost, one when it is back")
	require.Equal(t, events.StorageLost, got[0].str("event"))
	require.Equal(t, "error", got[0].str("level"))
	require.Equal(t, "timeout", got[0].str("reason"))
	require.Equal(t, failed[0], got[0].str("request_id"), "the first failing request noticed it")
	require.Equal(t, events.StorageRecovered, got[1].str("event"))
	require.Equal(t, "info", got[1].str("level"))

	d := metricstest.Delta(before, metricstest.Snapshot(t, m.Registry()))
	require.GreaterOrEqual(t, d[metricstest.Key("fedas_redis_errors_total", "command", "evalsha")], 3.0, "%v", d)
	// A new session is a pipeline (its live-session slots, CP01) and a
	// script (the session).
	require.GreaterOrEqual(t, d[metricstest.Key("fedas_redis_command_duration_seconds_count", "command", "evalsha")]+
		d[metricstest.Key("fedas_redis_command_duration_seconds_count", "command", "pipeline")], 6.0, "%v", d)
}
