package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts behind every multi-step or single-use transition. Each
// touches only the keys it is given, all under one hash tag, so it runs
// atomically on the slot's primary; scripts returning 1 / 0 / -1 mean
// success / not found / conflict. go-redis sends them by SHA (EVALSHA)
// and falls back to EVAL once per node.
var (
	// createCode writes the code hash {rec, used=0} and, when a second key
	// is given, the PKCE record, both with the same TTL.
	// KEYS: code, [pkce]; ARGV: record JSON, ttl ms.
	createCode = redis.NewScript(`
redis.call('HSET', KEYS[1], 'rec', ARGV[1], 'used', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if KEYS[2] then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
end
return 1
`)

	// invalidateCode marks a code used, keeping its TTL so that a second
	// redemption is still recognised until the code would have expired.
	// KEYS: code.
	invalidateCode = redis.NewScript(`
local used = redis.call('HGET', KEYS[1], 'used')
if not used then return 0 end
if used == '1' then return -1 end
redis.call('HSET', KEYS[1], 'used', '1')
return 1
`)

	// consumeCode reads and deletes a code hash: [rec, used] or nil.
	// KEYS: code.
	consumeCode = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'rec', 'used')
if not v[1] then return false end
redis.call('DEL', KEYS[1])
return v
`)

	// invalidateRefresh marks a refresh token rotated: a marker key beside
	// the token (same hash tag) holding the rotation's id, set only if
	// absent and given the token's remaining TTL, so that it never
	// outlives the token and the token's own value (a plain string, as
	// before rotation existed) is untouched. Idempotent like
	// createSession: finding its own id there means this very call
	// applied before a retry. KEYS: token, marker; ARGV: rotation id.
	invalidateRefresh = redis.NewScript(`
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ttl) then return 1 end
if redis.call('GET', KEYS[2]) == ARGV[1] then return 1 end
return -1
`)

	// consumeRefresh reads and deletes a refresh token and its marker:
	// [rec, marker or nil] or nil. KEYS: token, marker.
	consumeRefresh = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
local used = redis.call('GET', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2])
return {v, used}
`)

	// indexAdd adds a signature to a request's index and extends the
	// index's TTL to at least the token's, never shortening it (a plain
	// PEXPIRE GT would not apply to the fresh key, which has no TTL yet).
	// KEYS: index; ARGV: signature, ttl ms.
	indexAdd = redis.NewScript(`
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
`)

	// createSession stores a new auth session unless the ID exists. It is
	// idempotent: go-redis retries a command once after a timeout, and a
	// retry of a write that did apply finds its own (random) step there.
	// KEYS: session; ARGV: step, data JSON, expiry unix ms.
	createSession = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'step') == ARGV[1] then return 1 end
  return -1
end
redis.call('HSET', KEYS[1], 'step', ARGV[1], 'data', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
`)

	// updateSession swaps step and data if the current step is the
	// expected one. Idempotent like createSession: the next step is a
	// fresh random value, so finding it already current means this very
	// call applied before a retry. KEYS: session; ARGV: expected step,
	// next step, data JSON, expiry unix ms.
	updateSession = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'step')
if not cur then return 0 end
if cur == ARGV[2] then return 1 end
if cur ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[1], 'step', ARGV[2], 'data', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
`)

	// deleteSession deletes a session if the current step is the expected
	// one. KEYS: session; ARGV: expected step.
	deleteSession = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'step')
if not cur then return 0 end
if cur ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1])
return 1
`)
)
