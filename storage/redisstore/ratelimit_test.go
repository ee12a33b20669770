package redisstore_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/redisstore"
	"github.com/fedas/fedas/storage/redistest"
)

// TestRateLimit_KeyTTLBounded: a rate-limit key is P rl:{<key>}, its TTL
// is the time until its TAT passes — never more than the limit's window
// (Burst × T) — a refusal does not extend it, and once the TTL has run
// out the key is gone (docs/redis.md "Rate limit keys").
func TestRateLimit_KeyTTLBounded(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	o := redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: uniquePrefix()}
	s := newStore(t, o)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	ctx := t.Context()
	lim := storage.Limit{Rate: 1, Period: 10 * time.Second, Burst: 3}
	now := time.Now()
	for i := 1; i <= 3; i++ {
		d, err := s.Allow(ctx, "ip:abc", lim, now)
		require.NoError(t, err)
		require.True(t, d.Allowed)
		ttl, err := c.PTTL(ctx, o.Prefix+"rl:{ip:abc}").Result()
		require.NoError(t, err)
		// The TAT is now + i×T: the TTL is i×T (less the time spent).
		require.LessOrEqual(t, ttl, time.Duration(i)*lim.Interval())
		require.Greater(t, ttl, time.Duration(i)*lim.Interval()-5*time.Second)
	}
	before, err := c.PTTL(ctx, o.Prefix+"rl:{ip:abc}").Result()
	require.NoError(t, err)
	d, err := s.Allow(ctx, "ip:abc", lim, now)
	require.NoError(t, err)
	require.False(t, d.Allowed)
	after, err := c.PTTL(ctx, o.Prefix+"rl:{ip:abc}").Result()
	require.NoError(t, err)
	require.LessOrEqual(t, after, before, "a refusal must not extend the key's life")
	require.Equal(t, []string{o.Prefix + "rl:{ip:abc}"}, scanAll(t, srv.Addr(), o.Prefix+"*"))

	// A key with a short window disappears by Redis's own clock.
	short := storage.Limit{Rate: 1, Period: 50 * time.Millisecond, Burst: 1}
	_, err = s.Allow(ctx, "ip:short", short, time.Now())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		n, err := c.Exists(ctx, o.Prefix+"rl:{ip:short}").Result()
		return err == nil && n == 0
	}, 2*time.Second, 10*time.Millisecond)
}

// TestRateLimit_MemoryPerKey measures what one rate-limit key costs in
// Redis (MEMORY USAGE), for docs/operations.md: a key as the ratelimit
// package writes it (endpoint, scope and a 22-character digest).
func TestRateLimit_MemoryPerKey(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: "fedas:"})
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	lim := storage.Limit{Rate: 20, Period: time.Second, Burst: 60}
	key := "native_initial:ip:" + strings.Repeat("A", 22)
	_, err := s.Allow(t.Context(), key, lim, time.Now())
	require.NoError(t, err)
	n, err := c.MemoryUsage(t.Context(), "fedas:rl:{"+key+"}").Result()
	require.NoError(t, err)
	t.Logf("one rate-limit key: %d bytes (MEMORY USAGE)", n)
	require.Less(t, n, int64(200), "a rate-limit key should stay small")
}

// TestRateLimit_Unavailable: a stopped server is ErrUnavailable, never a
// decision.
func TestRateLimit_Unavailable(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}})
	srv.Stop()
	_, err := s.Allow(t.Context(), "ip:x", storage.Limit{Rate: 1, Period: time.Second, Burst: 1}, time.Now())
	require.ErrorIs(t, err, storage.ErrUnavailable)
}

// TestRateLimit_HostileKey: a key outside the key alphabet never reaches
// Redis.
func TestRateLimit_HostileKey(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}})
	for _, k := range []string{"a}b", "a{b", "a*", "a\r\nPING", strings.Repeat("a", 513)} {
		_, err := s.Allow(t.Context(), k, storage.Limit{Rate: 1, Period: time.Second, Burst: 1}, time.Now())
		require.ErrorIs(t, err, redisstore.ErrInvalidKey, fmt.Sprintf("%q", k))
	}
}
