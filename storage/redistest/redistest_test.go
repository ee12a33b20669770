package redistest_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/storage/redistest"
)

func TestServerLifecycle(t *testing.T) {
	s := redistest.Start(t)
	require.Equal(t, "redis://"+s.Addr()+"/0", s.URL())
	reply, err := s.Do("PING")
	require.NoError(t, err)
	require.Equal(t, "PONG", reply)
	// The harness's own defaults: no persistence, DEBUG allowed.
	save, err := s.Do("CONFIG", "GET", "save")
	require.NoError(t, err)
	require.Equal(t, "save\n", save)
	_, err = s.Do("DEBUG", "SLEEP", "0")
	require.NoError(t, err)

	s.Pause()
	_, err = redistest.Do(s.Addr(), "PING")
	require.Error(t, err, "a paused server must not answer")
	s.Resume()
	reply, err = s.Do("PING")
	require.NoError(t, err)
	require.Equal(t, "PONG", reply)

	start := time.Now()
	s.Stop()
	require.Less(t, time.Since(start), 2*time.Second)
	_, err = s.Do("PING")
	require.Error(t, err)
	s.Stop() // idempotent
}

func TestStartWithArgs(t *testing.T) {
	s := redistest.StartWith(t, "--maxmemory-policy", "allkeys-lru")
	reply, err := s.Do("CONFIG", "GET", "maxmemory-policy")
	require.NoError(t, err)
	require.Equal(t, "maxmemory-policy\nallkeys-lru", reply)
}

// fatalTB records Fatalf and ends the goroutine, as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestMissingRedisFails: without redis-server the harness fails the test
// with an install hint; it never skips.
func TestMissingRedisFails(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		redistest.Start(f)
	}()
	<-done
	require.True(t, strings.Contains(f.msg, "apt-get install redis-server"), f.msg)
}
