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

// gcraEach is gcra over several keys in order, stopping at the first
// refusal (storage.RateLimiter.AllowEach): the keys before it spend their
// unit, the keys after it are not touched. KEYS: the keys; ARGV: now µs,
// then T µs and burst of each key. Returns {refused (1-based index, 0
// when all allowed), allowed, remaining, retry µs} of the refusing key,
// or of the last key when all allowed.
var gcraEach = redis.NewScript(`
local now = tonumber(ARGV[1])
local out = {0, 0, 0, 0}
for i, k in ipairs(KEYS) do
  local t = tonumber(ARGV[2*i])
  local burst = tonumber(ARGV[2*i+1])
  local tat = tonumber(redis.call('GET', k) or 0) or 0
  if tat < now then tat = now end
  local nxt = tat + t
  local allow_at = nxt - burst * t
  if now < allow_at then
    return {i, 0, 0, allow_at - now}
  end
  local ttl = math.ceil((nxt - now) / 1000)
  if ttl < 1 then ttl = 1 end
  redis.call('SET', k, string.format('%.0f', nxt), 'PX', string.format('%.0f', ttl))
  out = {0, 1, math.floor((now - allow_at) / t), 0}
end
return out
`)

// AllowEach implements storage.RateLimiter with one script call
// (gcraEach): one round trip for all of a request's budgets, decided in
// one atomic step. On Redis Cluster the keys lie in different slots, and
// a script may only touch one: there the checks go key by key
// (storage.AllowInTurn), one round trip each, exactly as before.
func (s *Store) AllowEach(ctx context.Context, checks []storage.RateCheck, now time.Time) (int, storage.Decision, error) {
	// Every check is validated first, so that an invalid one spends
	// nothing of those before it on either path.
	for _, c := range checks {
		if err := c.Limit.Validate(); err != nil {
			return -1, storage.Decision{}, fmt.Errorf("redisstore: AllowEach: %w", err)
		}
		if !validKey(c.Key) {
			return -1, storage.Decision{}, fmt.Errorf("redisstore: AllowEach: key: %w", ErrInvalidKey)
		}
	}
	switch {
	case len(checks) == 0:
		return -1, storage.Decision{}, nil
	case len(checks) == 1 || s.cluster != nil:
		return storage.AllowInTurn(ctx, s, checks, now)
	}
	keys := make([]string, len(checks))
	args := make([]any, 1, 1+2*len(checks))
	args[0] = now.UnixMicro()
	for i, c := range checks {
		keys[i] = s.rateKey(c.Key)
		args = append(args, c.Limit.Interval().Microseconds(), c.Limit.Burst)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	vals, err := gcraEach.Run(ctx, s.client, keys, args...).Int64Slice()
	if err != nil {
		return -1, storage.Decision{}, s.fail("AllowEach", err)
	}
	if len(vals) != 4 || vals[0] < 0 || vals[0] > int64(len(checks)) {
		return -1, storage.Decision{}, fmt.Errorf("redisstore: AllowEach: unexpected reply %v", vals)
	}
	d := storage.Decision{Allowed: vals[1] == 1, Remaining: int(vals[2]), RetryAfter: time.Duration(vals[3]) * time.Microsecond}
	return int(vals[0]) - 1, d, nil
}
