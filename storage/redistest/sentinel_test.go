package redistest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/storage/redistest"
)

func TestStartSentinel(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s := redistest.StartSentinel(t)
	t.Logf("StartSentinel took %s", time.Since(start))

	require.Equal(t, "fedasmaster", s.MasterName())
	require.Len(t, s.SentinelAddrs(), 3)
	require.Len(t, s.Sentinels(), 3)
	addr, err := s.MasterAddr()
	require.NoError(t, err)
	require.Equal(t, s.Master().Addr(), addr)

	for _, sn := range s.Sentinels() {
		// The startup shortcut is undone: production timings.
		debug, err := sn.Do("SENTINEL", "DEBUG")
		require.NoError(t, err)
		require.Contains(t, debug, "PING-PERIOD\n1000\n")
		// A failover could be authorised right now.
		reply, err := sn.Do("SENTINEL", "CKQUORUM", s.MasterName())
		require.NoError(t, err, sn.Addr())
		require.True(t, strings.HasPrefix(reply, "OK 3 usable Sentinels"), reply)
	}

	// The replica follows the master and refuses writes. (WAIT would
	// need the SET's connection; Do opens a new one per command.)
	_, err = s.Master().Do("SET", "k", "v")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		v, err := s.Replica().Do("GET", "k")
		return err == nil && v == "v"
	}, 2*time.Second, 10*time.Millisecond)
	_, err = s.Replica().Do("SET", "k", "w")
	require.ErrorContains(t, err, "READONLY")

	s.Stop()
	for _, srv := range append(s.Sentinels(), s.Master(), s.Replica()) {
		_, err := srv.Do("PING")
		require.Error(t, err, "%s still answers after Stop", srv.Addr())
	}
	s.Stop() // idempotent
}

// TestStartSentinelMissingRedisFails: like Start, StartSentinel fails
// with an install hint when redis-server is missing; it never skips.
func TestStartSentinelMissingRedisFails(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		redistest.StartSentinel(f)
	}()
	<-done
	require.Contains(t, f.msg, "apt-get install redis-server")
}
