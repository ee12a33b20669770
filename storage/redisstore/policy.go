package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/fedas/fedas/storage"
)

var _ storage.PolicyStore = (*Store)(nil)

// The live policy's keys (docs/redis.md "Policy keys"). They all carry
// the hash tag {p}, so the commit script touches one slot on Redis
// Cluster, and every script key is declared in KEYS:
//
//	P policy:{p}:head      string: the head version number
//	P policy:{p}:versions  sorted set: score version, member the version's
//	                       JSON without its Doc (history, trimming)
//	P policy:{p}:docs      hash: field version, value the whole version
//	                       as JSON, Doc included
//	P policy:{p}:audit     sorted set: score version, member the audit
//	                       entry as JSON
//
// and commits are announced on the channel P policy:{p}:changed.
//
// Unlike every other key of the backend these have no TTL, on purpose:
// a policy version is configuration, not a session, and an instance must
// be able to read the head however long ago it was committed. They are
// bounded by retention instead: each commit deletes the versions and
// audit entries older than its keep newest, so the four keys hold at
// most keep entries each.
const (
	policyHeadKey     = "policy:{p}:head"
	policyVersionsKey = "policy:{p}:versions"
	policyDocsKey     = "policy:{p}:docs"
	policyAuditKey    = "policy:{p}:audit"
	policyChannelName = "policy:{p}:changed"
)

// maxPolicyVersion bounds version numbers: they are sorted-set scores
// and Lua numbers, both doubles, which are exact integers only up to
// 2^53. At one commit a second that is 285 million years.
const maxPolicyVersion = 1 << 53

// commitPolicy is CommitPolicy's single atomic step: compare the head,
// store the version and its audit entry, trim both to the newest keep,
// and announce the new head. PUBLISH from a script is allowed on Redis
// Cluster too and reaches subscribers on every node.
//
// Idempotent like updateSession: go-redis retries a command once after a
// lost reply, and a retry of a commit that did apply finds the head at
// its version with exactly its JSON stored (the JSON carries the commit
// time to the nanosecond and the author, so another commit of the same
// number is never mistaken for it).
//
// Versions are contiguous (each is its parent+1), so trimming walks the
// numbers from the oldest retained one up to the cutoff; normally that
// is one version per commit. KEYS: head, versions, docs, audit; ARGV:
// parent, version, version JSON, metadata JSON, audit JSON, keep,
// channel.
var commitPolicy = redis.NewScript(`
local head = tonumber(redis.call('GET', KEYS[1]) or '0')
local version = tonumber(ARGV[2])
if head == version and redis.call('HGET', KEYS[3], ARGV[2]) == ARGV[3] then return 1 end
if head ~= tonumber(ARGV[1]) or version ~= head + 1 then return -1 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[5])
local cutoff = version - tonumber(ARGV[6])
if cutoff >= 1 then
  local low = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if low[2] then
    for n = tonumber(low[2]), cutoff do
      redis.call('HDEL', KEYS[3], string.format('%d', n))
    end
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%d', cutoff))
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', string.format('%d', cutoff))
end
redis.call('PUBLISH', ARGV[7], ARGV[2])
return 1
`)

func (s *Store) policyKeys() []string {
	return []string{s.prefix + policyHeadKey, s.prefix + policyVersionsKey, s.prefix + policyDocsKey, s.prefix + policyAuditKey}
}

func (s *Store) policyChannel() string { return s.prefix + policyChannelName }

// PolicyHead implements storage.PolicyStore.
func (s *Store) PolicyHead(ctx context.Context) (uint64, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	v, err := s.client.Get(ctx, s.prefix+policyHeadKey).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil // never committed
	}
	if err != nil {
		return 0, s.fail("PolicyHead", err)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redisstore: PolicyHead: corrupt head: %w", err)
	}
	return n, nil
}

// PolicyVersion implements storage.PolicyStore.
func (s *Store) PolicyVersion(ctx context.Context, version uint64) (storage.PolicyVersion, error) {
	if version == 0 || version > maxPolicyVersion {
		return storage.PolicyVersion{}, storage.ErrNotFound // never stored
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	v, err := s.client.HGet(ctx, s.prefix+policyDocsKey, strconv.FormatUint(version, 10)).Result()
	if errors.Is(err, redis.Nil) {
		return storage.PolicyVersion{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.PolicyVersion{}, s.fail("PolicyVersion", err)
	}
	var pv storage.PolicyVersion
	if err := json.Unmarshal([]byte(v), &pv); err != nil {
		return storage.PolicyVersion{}, fmt.Errorf("redisstore: PolicyVersion: decode version: %w", err)
	}
	return pv, nil
}

// CommitPolicy implements storage.PolicyStore with one script
// (commitPolicy) on the {p} slot.
func (s *Store) CommitPolicy(ctx context.Context, v storage.PolicyVersion, a storage.AuditEntry, keep int) error {
	if v.Version == 0 || v.Version != v.Parent+1 {
		return fmt.Errorf("redisstore: CommitPolicy: version %d does not follow parent %d", v.Version, v.Parent)
	}
	if v.Version > maxPolicyVersion {
		return fmt.Errorf("redisstore: CommitPolicy: version %d is above 2^53", v.Version)
	}
	if keep < 1 {
		return errors.New("redisstore: CommitPolicy: keep must be at least 1: the head itself is retained")
	}
	a.Version = v.Version
	full, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("redisstore: CommitPolicy: encode version: %w", err)
	}
	meta := v
	meta.Doc = nil
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("redisstore: CommitPolicy: encode version: %w", err)
	}
	audit, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("redisstore: CommitPolicy: encode audit entry: %w", err)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	n, err := commitPolicy.Run(ctx, s.client, s.policyKeys(),
		v.Parent, v.Version, full, metaJSON, audit, keep, s.policyChannel()).Int()
	if err != nil {
		return s.fail("CommitPolicy", err)
	}
	if n != 1 {
		return storage.ErrConflict
	}
	return nil
}

// PolicyHistory implements storage.PolicyStore with one
// ZREVRANGEBYSCORE on the metadata index, which never holds a Doc.
func (s *Store) PolicyHistory(ctx context.Context, before uint64, limit int) ([]storage.PolicyVersion, error) {
	if limit < 1 {
		return nil, fmt.Errorf("redisstore: PolicyHistory: limit %d is not positive", limit)
	}
	vals, err := s.policyRange(ctx, "PolicyHistory", s.prefix+policyVersionsKey, before, limit)
	if err != nil {
		return nil, err
	}
	out := make([]storage.PolicyVersion, 0, len(vals))
	for _, v := range vals {
		var pv storage.PolicyVersion
		if err := json.Unmarshal([]byte(v), &pv); err != nil {
			return nil, fmt.Errorf("redisstore: PolicyHistory: decode version: %w", err)
		}
		out = append(out, pv)
	}
	return out, nil
}

// PolicyAudit implements storage.PolicyStore with one ZREVRANGEBYSCORE.
func (s *Store) PolicyAudit(ctx context.Context, before uint64, limit int) ([]storage.AuditEntry, error) {
	if limit < 1 {
		return nil, fmt.Errorf("redisstore: PolicyAudit: limit %d is not positive", limit)
	}
	vals, err := s.policyRange(ctx, "PolicyAudit", s.prefix+policyAuditKey, before, limit)
	if err != nil {
		return nil, err
	}
	out := make([]storage.AuditEntry, 0, len(vals))
	for _, v := range vals {
		var a storage.AuditEntry
		if err := json.Unmarshal([]byte(v), &a); err != nil {
			return nil, fmt.Errorf("redisstore: PolicyAudit: decode audit entry: %w", err)
		}
		out = append(out, a)
	}
	return out, nil
}

// policyRange returns up to limit members of a version-scored sorted set
// with scores below before (all when before is 0), highest first.
func (s *Store) policyRange(ctx context.Context, op, key string, before uint64, limit int) ([]string, error) {
	maxScore := "+inf"
	if before != 0 {
		maxScore = "(" + strconv.FormatUint(before, 10)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	vals, err := s.client.ZRevRangeByScore(ctx, key, &redis.ZRangeBy{Max: maxScore, Min: "-inf", Count: int64(limit)}).Result()
	if err != nil {
		return nil, s.fail(op, err)
	}
	return vals, nil
}

// WatchPolicy implements storage.PolicyStore with one subscription per
// call to the commit channel; client.Subscribe serves a single node, a
// Sentinel master and a cluster alike, and go-redis resubscribes after a
// reconnect (what is published meanwhile is lost: watchers also poll).
// It returns once Redis has confirmed the subscription, so a commit that
// completes afterwards is announced to it. The channel also closes if
// the subscription ends early because the Store was closed.
func (s *Store) WatchPolicy(ctx context.Context) (<-chan uint64, error) {
	sctx, cancel := s.ctx(ctx)
	defer cancel()
	sub := s.client.Subscribe(sctx, s.policyChannel())
	if _, err := sub.Receive(sctx); err != nil {
		_ = sub.Close()
		return nil, s.fail("WatchPolicy", err)
	}
	msgs := sub.Channel()
	out := make(chan uint64, 1)
	go func() {
		defer close(out)
		defer func() { _ = sub.Close() }()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-msgs:
				if !ok {
					return
				}
				n, err := strconv.ParseUint(m.Payload, 10, 64)
				if err != nil {
					continue // not a commit announcement: only the script publishes here
				}
				offerVersion(out, n)
			}
		}
	}()
	return out, nil
}

// offerVersion puts v into a one-slot wake-up channel without blocking.
// A value still waiting there is older, so it is replaced: a slow
// watcher then reads the newest head rather than a stale one. Only the
// forwarding goroutine sends on ch, so the second send cannot find the
// slot filled.
func offerVersion(ch chan uint64, v uint64) {
	select {
	case ch <- v:
		return
	default:
	}
	select {
	case <-ch:
	default:
	}
	select {
	case ch <- v:
	default:
	}
}
