package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fedas/fedas/storage"
)

var _ storage.RateLimiter = (*Store)(nil)

// gcra is one GCRA step (storage.GCRA in Lua) on one key, so it is atomic
// on the key's primary and safe on Redis Cluster (docs/redis.md rule 1).
// The key holds the TAT in Unix microseconds of the caller's clock and
// expires with PX when the TAT passes, so its TTL is never more than the
// limit's window (Burst × T). A refused request writes nothing. Numbers
// are formatted with %.0f: Lua's default formatting would round integers
// above 10^14 to 14 significant digits. Every value stays below 2^53, so
// the double arithmetic is exact (storage.MaxRateWindow).
// KEYS: the key; ARGV: now µs, T µs, burst. Returns {allowed, remaining,
// retry µs}.
var gcra = redis.NewScript(`
local now = tonumber(ARGV[1])
local t = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0) or 0
if tat < now then tat = now end
local nxt = tat + t
local allow_at = nxt - burst * t
if now < allow_at then
  return {0, 0, allow_at - now}
end
local ttl = math.ceil((nxt - now) / 1000)
if ttl < 1 then ttl = 1 end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', string.format('%.0f', ttl))
return {1, math.floor((now - allow_at) / t), 0}
`)

func (s *Store) rateKey(key string) string { return s.prefix + "rl:{" + key + "}" }

// Allow implements storage.RateLimiter with one script call (gcra). A
// retry by the driver after a lost reply may spend one more unit: the
// limiter errs on the strict side, never the lenient one.
func (s *Store) Allow(ctx context.Context, key string, l storage.Limit, now time.Time) (storage.Decision, error) {
	if err := l.Validate(); err != nil {
		return storage.Decision{}, fmt.Errorf("redisstore: Allow: %w", err)
	}
	if !validKey(key) {
		return storage.Decision{}, fmt.Errorf("redisstore: Allow: key: %w", ErrInvalidKey)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	vals, err := gcra.Run(ctx, s.client, []string{s.rateKey(key)}, now.UnixMicro(), l.Interval().Microseconds(), l.Burst).Int64Slice()
	if err != nil {
		return storage.Decision{}, s.fail("Allow", err)
	}
	if len(vals) != 3 {
		return storage.Decision{}, fmt.Errorf("redisstore: Allow: unexpected reply of %d values", len(vals))
	}
	return storage.Decision{Allowed: vals[0] == 1, Remaining: int(vals[1]), RetryAfter: time.Duration(vals[2]) * time.Microsecond}, nil
}
