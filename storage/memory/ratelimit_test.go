package memory

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/storage"
)

// TestRateEntriesSwept: a rate-limit key leaves the map once its window
// has passed on the store's clock, without anyone asking for it again,
// so memory is bounded by the keys of the last window.
func TestRateEntriesSwept(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	s := newStore(time.Hour) // sweeps are called below, not waited for
	s.mu.Lock()
	s.now = clock
	s.mu.Unlock()
	t.Cleanup(func() { _ = s.Close() })
	short := storage.Limit{Rate: 1, Period: time.Second, Burst: 2}
	long := storage.Limit{Rate: 1, Period: time.Hour, Burst: 2}
	for i := range 100 {
		_, err := s.Allow(t.Context(), fmt.Sprintf("short-%d", i), short, now)
		require.NoError(t, err)
	}
	_, err := s.Allow(t.Context(), "long", long, now)
	require.NoError(t, err)

	s.sweep()
	require.Len(t, s.rates.m, 101, "nothing has expired yet")
	now = now.Add(time.Second) // the short keys' TAT has passed
	s.sweep()
	require.Len(t, s.rates.m, 1)
	// The kept key still remembers what it spent.
	d, err := s.Allow(t.Context(), "long", long, now)
	require.NoError(t, err)
	require.Equal(t, storage.Decision{Allowed: true, Remaining: 0}, d)
}
