package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fedas/fedas/storage"
)

var _ storage.FailureCounter = (*Store)(nil)

// The lockout's failure counters (docs/redis.md "Lockout keys";
// docs/security.md "Account lockout"):
//
//	P fail:{<group>}:<name>   hash {n, last}: failures and the last one's
//	                          time in Unix ms; expires window after it
//
// group is the account's digest, so the account's counter and its
// (account, address) counters share a hash tag and one script updates
// them together on Redis Cluster. Names and groups are digests the
// lockout makes; a raw username or address never reaches a key.
func (s *Store) failureKeys(op, group string, names []string) ([]string, error) {
	if !validKey(group) || len(names) == 0 {
		return nil, fmt.Errorf("redisstore: %s: group: %w", op, ErrInvalidKey)
	}
	keys := make([]string, len(names))
	for i, n := range names {
		if !validKey(n) {
			return nil, fmt.Errorf("redisstore: %s: name: %w", op, ErrInvalidKey)
		}
		keys[i] = s.prefix + "fail:{" + group + "}:" + n
	}
	return keys, nil
}

var (
	// readFailures returns n, last of every key (0 for a missing one).
	// KEYS: counters.
	readFailures = redis.NewScript(`
local out = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('HMGET', k, 'n', 'last')
  out[2*i-1] = tonumber(v[1]) or 0
  out[2*i] = tonumber(v[2]) or 0
end
return out
`)

	// recordFailure adds one failure to every key and returns n, last of
	// each as they were before. last never moves backwards (instances'
	// clocks differ); every key then expires window after now.
	// KEYS: counters; ARGV: now unix ms, window ms.
	recordFailure = redis.NewScript(`
local now = tonumber(ARGV[1])
local out = {}
for i, k in ipairs(KEYS) do
  local v = redis.call('HMGET', k, 'n', 'last')
  local n = tonumber(v[1]) or 0
  local last = tonumber(v[2]) or 0
  out[2*i-1] = n
  out[2*i] = last
  if now > last then last = now end
  redis.call('HSET', k, 'n', n + 1, 'last', last)
  redis.call('PEXPIRE', k, ARGV[2])
end
return out
`)
)

func failureStates(vals []any, n int) ([]storage.FailureState, error) {
	if len(vals) != 2*n {
		return nil, errors.New("redisstore: failure counters: unexpected reply")
	}
	out := make([]storage.FailureState, n)
	for i := range out {
		c, _ := vals[2*i].(int64)
		ms, _ := vals[2*i+1].(int64)
		out[i].Count = int(c)
		if ms > 0 {
			out[i].Last = time.UnixMilli(ms)
		}
	}
	return out, nil
}

// Failures implements storage.FailureCounter with one read-only script.
func (s *Store) Failures(ctx context.Context, group string, names []string) ([]storage.FailureState, error) {
	keys, err := s.failureKeys("Failures", group, names)
	if err != nil {
		return nil, err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	vals, err := readFailures.Run(ctx, s.client, keys).Slice()
	if err != nil {
		return nil, s.fail("Failures", err)
	}
	return failureStates(vals, len(keys))
}

// RecordFailure implements storage.FailureCounter with one script on
// the group's slot.
//
// go-redis retries a command once after a lost reply, so a failure can
// be counted twice: that errs towards the attacker's delay, never
// towards a free attempt.
func (s *Store) RecordFailure(ctx context.Context, group string, names []string, window time.Duration, now time.Time) ([]storage.FailureState, error) {
	keys, err := s.failureKeys("RecordFailure", group, names)
	if err != nil {
		return nil, err
	}
	if err := checkTTL(window); err != nil {
		return nil, err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	vals, err := recordFailure.Run(ctx, s.client, keys, strconv.FormatInt(now.UnixMilli(), 10), millis(window)).Slice()
	if err != nil {
		return nil, s.fail("RecordFailure", err)
	}
	return failureStates(vals, len(keys))
}

// ResetFailures implements storage.FailureCounter: one DEL of keys that
// share a slot.
func (s *Store) ResetFailures(ctx context.Context, group string, names []string) error {
	keys, err := s.failureKeys("ResetFailures", group, names)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if err := s.client.Del(ctx, keys...).Err(); err != nil {
		return s.fail("ResetFailures", err)
	}
	return nil
}
