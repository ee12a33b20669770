package memory

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/storage"
)

// TestJanitorBoundsMemory checks that expired entries leave the maps
// without anyone reading them: lookups alone would hide them, but memory
// would still grow without bound (docs/performance.md trap 5).
func TestJanitorBoundsMemory(t *testing.T) {
	s := newStore(10 * time.Millisecond)
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	ttl := 50 * time.Millisecond
	rec := storage.Record{RequestID: "req-1", ClientID: "c"}
	for i := range 100 {
		sig := fmt.Sprintf("sig-%d", i)
		require.NoError(t, s.CreateToken(ctx, storage.KindAccess, sig, rec, ttl))
		require.NoError(t, s.CreateCode(ctx, sig, rec, ttl))
		require.NoError(t, s.MarkUsed(ctx, sig, time.Now().Add(ttl)))
		require.NoError(t, s.CreateAuthSession(ctx, storage.AuthSession{ID: sig, StepHash: "h", ExpiresAt: time.Now().Add(ttl)}))
	}
	// One long-lived entry of each map must survive the sweeps.
	require.NoError(t, s.CreateToken(ctx, storage.KindRefresh, "keep", storage.Record{RequestID: "req-2"}, time.Hour))
	require.NoError(t, s.MarkUsed(ctx, "keep", time.Now().Add(time.Hour)))
	require.NoError(t, s.CreateAuthSession(ctx, storage.AuthSession{ID: "keep", StepHash: "h", ExpiresAt: time.Now().Add(time.Hour)}))

	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.tokens) == 1 && len(s.index) == 1 && len(s.sessions) == 1 && len(s.used) == 1
	}, 2*time.Second, 10*time.Millisecond, "janitor did not sweep expired entries")

	_, err := s.Token(ctx, storage.KindRefresh, "keep")
	require.NoError(t, err)
}

// TestCloseStopsJanitor checks that Close ends the goroutine and may be
// called twice.
func TestCloseStopsJanitor(t *testing.T) {
	s := newStore(time.Millisecond)
	require.NoError(t, s.Close())
	select {
	case <-s.done:
	default:
		t.Fatal("janitor still running after Close")
	}
	require.NoError(t, s.Close())
}
