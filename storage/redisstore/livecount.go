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

var _ storage.LiveCounter = (*Store)(nil)

// liveKey is the sorted set of one live-session scope: member = a random
// slot id, score = its expiry in Unix milliseconds (docs/redis.md
// "Live-session caps").
func (s *Store) liveKey(k string) string { return s.prefix + "live:{" + k + "}" }

// liveAdmit admits a member to one scope if it is below its cap, in one
// step on the scope's slot: drop the members expired at now, admit a
// member already there again (a retried call), refuse at the cap with the
// oldest member's expiry, else add it and extend the key's TTL to at
// least the member's (never shortening it: the key lives as long as its
// longest member, so it always has a TTL and it is bounded by the
// longest auth-session lifetime).
// KEYS: scope; ARGV: member, expiry unix ms, cap, now unix ms, ttl ms.
// Returns {1} added, {2} already held, {0, oldest expiry ms} refused.
var liveAdmit = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return {2}
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  local o = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, o[2]}
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[5]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
return {1}
`)

// Admit implements storage.LiveCounter. The scopes of one admission (a
// client, a client address) are different keys in different hash slots,
// and none may be pinned to one slot without making it a hot spot for
// every sign-in, so the cap of each is checked and applied by its own
// script, atomically on its slot (docs/redis.md rule 1), and the scripts
// go out in one pipeline (one round trip). When one scope refuses, the
// member is removed again from the scopes that added it: a refused
// admission leaves nothing behind. Meanwhile the member held a slot there
// for one round trip, so a concurrent admission at that scope's very
// edge may be refused when it would have fit: a transient refusal, never
// a cap exceeded — each scope's count never exceeds its cap.
func (s *Store) Admit(ctx context.Context, keys []string, member string, expires time.Time, caps []int, now time.Time) (storage.Admission, error) {
	switch {
	case len(keys) != len(caps):
		return storage.Admission{}, errors.New("redisstore: Admit: keys and caps differ in length")
	case !validKey(member):
		return storage.Admission{}, fmt.Errorf("redisstore: Admit: member: %w", ErrInvalidKey)
	case !expires.After(now):
		return storage.Admission{}, errors.New("redisstore: Admit: expiry is not after now: every key needs a TTL")
	}
	type call struct {
		i    int
		key  []string
		args []any
		cmd  *redis.Cmd
	}
	exp, nowMS := unixMillis(expires), now.UnixMilli()
	ttl := exp - nowMS
	var calls []*call
	for i, k := range keys {
		if caps[i] <= 0 {
			continue
		}
		if !validKey(k) {
			return storage.Admission{}, fmt.Errorf("redisstore: Admit: key: %w", ErrInvalidKey)
		}
		calls = append(calls, &call{i: i, key: []string{s.liveKey(k)}, args: []any{member, exp, caps[i], nowMS, ttl}})
	}
	if len(calls) == 0 {
		return storage.Admission{Admitted: true}, nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	pipe := s.client.Pipeline()
	for _, c := range calls {
		c.cmd = liveAdmit.EvalSha(ctx, pipe, c.key, c.args...)
	}
	_, _ = pipe.Exec(ctx)
	var added []string
	refused := storage.Admission{Full: -1}
	var failure error
	for _, c := range calls {
		err := c.cmd.Err()
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			// First use on this node: Run loads the script (EVAL).
			c.cmd = liveAdmit.Run(ctx, s.client, c.key, c.args...)
			err = c.cmd.Err()
		}
		if err != nil {
			failure = err
			continue
		}
		vals, err := c.cmd.Slice()
		if err != nil || len(vals) == 0 {
			failure = fmt.Errorf("unexpected reply %v: %w", vals, err)
			continue
		}
		switch n, _ := vals[0].(int64); n {
		case 1:
			added = append(added, c.key[0])
		case 2:
		default:
			oldest := now
			if len(vals) > 1 {
				if str, ok := vals[1].(string); ok {
					if ms, err := strconv.ParseFloat(str, 64); err == nil {
						oldest = time.UnixMilli(int64(ms))
					}
				}
			}
			// The first full scope is reported; the wait is the longest,
			// since every full scope must free a slot.
			if refused.Full < 0 || c.i < refused.Full {
				refused.Full = c.i
			}
			refused.RetryAfter = max(refused.RetryAfter, storage.LiveRetryAfter(oldest, now))
		}
	}
	if failure == nil && refused.Full < 0 {
		return storage.Admission{Admitted: true}, nil
	}
	// Refused or failed somewhere: take the member back where it was
	// added, so that nothing is left behind.
	if len(added) > 0 {
		undo, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opTimeout)
		defer cancel()
		pipe := s.client.Pipeline()
		for _, k := range added {
			pipe.ZRem(undo, k, member)
		}
		if _, err := pipe.Exec(undo); err != nil {
			s.log.Warn("live-session admission: could not undo a refused admission; expiry frees it")
		}
	}
	if failure != nil {
		return storage.Admission{}, s.fail("Admit", failure)
	}
	return refused, nil
}

// Release implements storage.LiveCounter: one ZREM per scope, in one
// pipeline.
func (s *Store) Release(ctx context.Context, keys []string, member string) error {
	if !validKey(member) {
		return nil // never admitted
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	pipe := s.client.Pipeline()
	n := 0
	for _, k := range keys {
		if validKey(k) {
			pipe.ZRem(ctx, s.liveKey(k), member)
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return s.fail("Release", err)
	}
	return nil
}
