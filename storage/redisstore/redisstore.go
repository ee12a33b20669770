package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/tracing"
)

var _ storage.Store = (*Store)(nil)

// ErrInvalidKey is returned by writes whose key part (signature, request
// ID, session ID, replay key) is outside ^[A-Za-z0-9._~:+/=-]{1,512}$.
// Such a value comes from a hostile or broken client; it is refused before
// it reaches Redis.
var ErrInvalidKey = errors.New("redisstore: key part outside [A-Za-z0-9._~:+/=-]{1,512}")

// ErrEvictionPolicy is wrapped by the error New and CheckEvictionPolicy
// return when a master's maxmemory-policy is not noeviction.
var ErrEvictionPolicy = errors.New("redisstore: maxmemory-policy is not noeviction")

// Store is a storage.Store on Redis. It is safe for concurrent use.
type Store struct {
	client    redis.UniversalClient
	cluster   *redis.ClusterClient // nil unless client is one
	prefix    string
	opTimeout time.Duration
	log       *zap.Logger
}

func newStore(client redis.UniversalClient, o Options, logger *zap.Logger) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: nil client")
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	if err := tracing.InstrumentRedis(client, o.TracerProvider); err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	s := &Store{
		client:    client,
		prefix:    o.Prefix,
		opTimeout: o.OpTimeout,
		log:       logger.Named("redisstore"),
	}
	s.cluster, _ = client.(*redis.ClusterClient)
	return s, nil
}

// Client returns the underlying client, e.g. for a benchmark to add a
// hook that counts round trips. Commands sent through it bypass the
// Store's key validation and error mapping.
func (s *Store) Client() redis.UniversalClient { return s.client }

// Prefix returns the namespace every key starts with.
func (s *Store) Prefix() string { return s.prefix }

// ctx bounds one storage call by the operation timeout unless the
// caller's deadline is sooner.
func (s *Store) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= s.opTimeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.opTimeout)
}

// fail wraps a driver error as ErrUnavailable. The driver's message never
// carries command arguments, so it is safe to keep. On a cluster, errors
// that suggest a topology change trigger a slot-map reload at once
// instead of waiting for the next periodic one (docs/redis.md rule 4).
func (s *Store) fail(op string, err error) error {
	if s.cluster != nil && topologyError(err) {
		s.cluster.ReloadState(context.Background())
	}
	return fmt.Errorf("redisstore: %s: %w: %w", op, storage.ErrUnavailable, err)
}

func topologyError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		redis.IsClusterDownError(err) || redis.IsTryAgainError(err) ||
		redis.IsReadOnlyError(err) || redis.IsMasterDownError(err)
}

// validKey reports whether a key part from outside may go into a key:
// ^[A-Za-z0-9._~:+/=-]{1,512}$. Braces are excluded so a value can never
// open or close a hash tag, '*', '?' and '[' so it can never act as a
// pattern, and control bytes so it can never end a protocol line.
func validKey(v string) bool {
	if len(v) == 0 || len(v) > 512 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == '~', c == ':', c == '+', c == '/', c == '=', c == '-':
		default:
			return false
		}
	}
	return true
}

func checkKind(kind storage.Kind) error {
	switch kind {
	case storage.KindCode, storage.KindPKCE, storage.KindAccess, storage.KindRefresh, storage.KindPAR, storage.KindPushApp, storage.KindPushWeb:
		return nil
	}
	return fmt.Errorf("redisstore: unknown kind %q", kind)
}

func (s *Store) tokenKey(kind storage.Kind, sig string) string {
	return s.prefix + "tok:{" + sig + "}:" + string(kind)
}

// rotatedKey marks a rotated refresh token (InvalidateRefresh); it shares
// the token's hash tag, so both are read and written in one step.
func (s *Store) rotatedKey(sig string) string {
	return s.tokenKey(storage.KindRefresh, sig) + ":used"
}

func (s *Store) indexKey(kind storage.Kind, requestID string) string {
	return s.prefix + "req:{" + requestID + "}:" + string(kind)
}

func (s *Store) sessionKey(id string) string { return s.prefix + "as:{" + id + "}" }

func (s *Store) usedKey(key string) string { return s.prefix + "used:{" + key + "}" }

// millis converts a TTL to whole milliseconds, rounding up so that an
// artefact never expires earlier than asked.
func millis(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// unixMillis converts an expiry to Unix milliseconds, rounding up.
func unixMillis(t time.Time) int64 {
	ns := t.UnixNano()
	ms := ns / 1e6
	if ns%1e6 > 0 {
		ms++
	}
	return ms
}

func checkTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("redisstore: ttl %s is not positive: every key needs a TTL", ttl)
	}
	return nil
}

func encodeRecord(rec storage.Record) (string, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("redisstore: encode record: %w", err)
	}
	return string(b), nil
}

func decodeRecord(v string) (storage.Record, error) {
	var rec storage.Record
	if err := json.Unmarshal([]byte(v), &rec); err != nil {
		// A corrupt value is not an outage: report it as an error the
		// server turns into a 500, never into a default-privileged record.
		return storage.Record{}, fmt.Errorf("redisstore: decode record: %w", err)
	}
	return rec, nil
}

// CreateToken implements storage.TokenStore. Access and refresh tokens
// are also added to their request's index; both writes go out in one
// pipeline (one round trip on a single node). They live in different
// slots, so they are not atomic: if either fails the call fails, and the
// caller issues nothing, so no token that was handed out is missing from
// its index. A leftover index entry without a token is harmless.
func (s *Store) CreateToken(ctx context.Context, kind storage.Kind, signature string, rec storage.Record, ttl time.Duration) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	if err := checkTTL(ttl); err != nil {
		return err
	}
	if !validKey(signature) {
		return fmt.Errorf("redisstore: CreateToken: signature: %w", ErrInvalidKey)
	}
	if kind == storage.KindCode {
		return s.createCode(ctx, "CreateToken", signature, rec, ttl, false)
	}
	indexed := kind == storage.KindAccess || kind == storage.KindRefresh
	if indexed && !validKey(rec.RequestID) {
		return fmt.Errorf("redisstore: CreateToken: request ID: %w", ErrInvalidKey)
	}
	v, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	ms := millis(ttl)
	if !indexed {
		if err := s.client.Set(ctx, s.tokenKey(kind, signature), v, time.Duration(ms)*time.Millisecond).Err(); err != nil {
			return s.fail("CreateToken", err)
		}
		return nil
	}
	idxKey := []string{s.indexKey(kind, rec.RequestID)}
	pipe := s.client.Pipeline()
	idx := indexAdd.EvalSha(ctx, pipe, idxKey, signature, ms)
	set := pipe.Set(ctx, s.tokenKey(kind, signature), v, time.Duration(ms)*time.Millisecond)
	_, _ = pipe.Exec(ctx)
	err = idx.Err()
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		// First use on this node: Run loads the script (EVAL).
		err = indexAdd.Run(ctx, s.client, idxKey, signature, ms).Err()
	}
	if err != nil {
		return s.fail("CreateToken", err)
	}
	if err := set.Err(); err != nil {
		return s.fail("CreateToken", err)
	}
	return nil
}

// CreateCode implements storage.TokenStore: the code hash and the PKCE
// record share the signature's hash tag and are written by one script.
func (s *Store) CreateCode(ctx context.Context, signature string, rec storage.Record, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	if !validKey(signature) {
		return fmt.Errorf("redisstore: CreateCode: signature: %w", ErrInvalidKey)
	}
	return s.createCode(ctx, "CreateCode", signature, rec, ttl, true)
}

func (s *Store) createCode(ctx context.Context, op, signature string, rec storage.Record, ttl time.Duration, withPKCE bool) error {
	v, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	keys := []string{s.tokenKey(storage.KindCode, signature)}
	if withPKCE {
		keys = append(keys, s.tokenKey(storage.KindPKCE, signature))
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	if err := createCode.Run(ctx, s.client, keys, v, millis(ttl)).Err(); err != nil {
		return s.fail(op, err)
	}
	return nil
}

// Token implements storage.TokenStore.
func (s *Store) Token(ctx context.Context, kind storage.Kind, signature string) (storage.Record, error) {
	return s.read(ctx, "Token", kind, signature, false)
}

// read fetches a token-like artefact; with consume it deletes it in the
// same atomic step (GETDEL, or a script for a code hash).
func (s *Store) read(ctx context.Context, op string, kind storage.Kind, signature string, consume bool) (storage.Record, error) {
	if err := checkKind(kind); err != nil {
		return storage.Record{}, err
	}
	if !validKey(signature) {
		return storage.Record{}, storage.ErrNotFound
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	key := s.tokenKey(kind, signature)
	if kind == storage.KindCode {
		var vals []any
		var err error
		if consume {
			vals, err = consumeCode.Run(ctx, s.client, []string{key}).Slice()
		} else {
			vals, err = s.client.HMGet(ctx, key, "rec", "used").Result()
		}
		if errors.Is(err, redis.Nil) {
			return storage.Record{}, storage.ErrNotFound
		}
		if err != nil {
			return storage.Record{}, s.fail(op, err)
		}
		return codeResult(vals)
	}
	if kind == storage.KindRefresh {
		var vals []any
		var err error
		if consume {
			vals, err = consumeRefresh.Run(ctx, s.client, []string{key, s.rotatedKey(signature)}).Slice()
		} else {
			vals, err = s.client.MGet(ctx, key, s.rotatedKey(signature)).Result()
		}
		if errors.Is(err, redis.Nil) {
			return storage.Record{}, storage.ErrNotFound
		}
		if err != nil {
			return storage.Record{}, s.fail(op, err)
		}
		return refreshResult(vals)
	}
	get := s.client.Get
	if consume {
		get = s.client.GetDel
	}
	v, err := get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return storage.Record{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.Record{}, s.fail(op, err)
	}
	return decodeRecord(v)
}

// codeResult interprets [rec, used] of a code hash.
func codeResult(vals []any) (storage.Record, error) {
	if len(vals) != 2 {
		return storage.Record{}, storage.ErrNotFound
	}
	v, ok := vals[0].(string)
	if !ok {
		return storage.Record{}, storage.ErrNotFound
	}
	rec, err := decodeRecord(v)
	if err != nil {
		return storage.Record{}, err
	}
	if used, _ := vals[1].(string); used == "1" {
		return rec, storage.ErrInvalidated
	}
	return rec, nil
}

// refreshResult interprets [rec, marker] of a refresh token: a marker
// (the rotation's id) means rotated.
func refreshResult(vals []any) (storage.Record, error) {
	if len(vals) != 2 {
		return storage.Record{}, storage.ErrNotFound
	}
	v, ok := vals[0].(string)
	if !ok {
		return storage.Record{}, storage.ErrNotFound
	}
	rec, err := decodeRecord(v)
	if err != nil {
		return storage.Record{}, err
	}
	if by, _ := vals[1].(string); by != "" {
		return rec, storage.ErrInvalidated
	}
	return rec, nil
}

// DeleteToken implements storage.TokenStore. A signature that cannot be a
// key has nothing to delete.
func (s *Store) DeleteToken(ctx context.Context, kind storage.Kind, signature string) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	if !validKey(signature) {
		return nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	keys := []string{s.tokenKey(kind, signature)}
	if kind == storage.KindRefresh {
		keys = append(keys, s.rotatedKey(signature)) // same slot
	}
	if err := s.client.Del(ctx, keys...).Err(); err != nil {
		return s.fail("DeleteToken", err)
	}
	return nil
}

// InvalidateCode implements storage.TokenStore with one script that sets
// used=1 and keeps the TTL; its return value decides the outcome.
func (s *Store) InvalidateCode(ctx context.Context, signature string) error {
	if !validKey(signature) {
		return storage.ErrNotFound
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	n, err := invalidateCode.Run(ctx, s.client, []string{s.tokenKey(storage.KindCode, signature)}).Int()
	if err != nil {
		return s.fail("InvalidateCode", err)
	}
	return casResult(n)
}

// casResult maps the scripts' 1 / 0 / -1 to success / not found / conflict.
func casResult(n int) error {
	switch n {
	case 1:
		return nil
	case 0:
		return storage.ErrNotFound
	default:
		return storage.ErrConflict
	}
}

// InvalidateRefresh implements storage.TokenStore with one script that
// sets the token's rotation marker to by if absent, with the token's
// remaining TTL; its return value decides the outcome.
func (s *Store) InvalidateRefresh(ctx context.Context, signature, by string) error {
	if !validKey(signature) {
		return storage.ErrNotFound
	}
	if by == "" {
		return errors.New("redisstore: InvalidateRefresh: empty rotation id")
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	n, err := invalidateRefresh.Run(ctx, s.client, []string{s.tokenKey(storage.KindRefresh, signature), s.rotatedKey(signature)}, by).Int()
	if err != nil {
		return s.fail("InvalidateRefresh", err)
	}
	return casResult(n)
}

// ConsumeToken implements storage.TokenStore with GETDEL (a script for
// the code hash and for a refresh token and its rotation marker, which
// return ErrInvalidated with a used one's record, as Token does).
func (s *Store) ConsumeToken(ctx context.Context, kind storage.Kind, signature string) (storage.Record, error) {
	return s.read(ctx, "ConsumeToken", kind, signature, true)
}

// RevokeRequest implements storage.TokenStore: it reads the request's
// index, then deletes the tokens and removes exactly the signatures it
// read, so a token indexed concurrently stays revocable. Tokens live in
// other slots than the index, so the deletes go out as one pipeline of
// single-key commands. A failure is reported, never swallowed: a
// revocation that did not happen must not answer 200 (SECURITY-RESULTS.md R9).
func (s *Store) RevokeRequest(ctx context.Context, kind storage.Kind, requestID string) error {
	if kind != storage.KindAccess && kind != storage.KindRefresh {
		return fmt.Errorf("redisstore: RevokeRequest: kind %q is not indexed by request", kind)
	}
	if !validKey(requestID) {
		return nil // never indexed, so nothing to revoke
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	idx := s.indexKey(kind, requestID)
	sigs, err := s.client.SMembers(ctx, idx).Result()
	if err != nil {
		return s.fail("RevokeRequest", err)
	}
	if len(sigs) == 0 {
		return nil
	}
	pipe := s.client.Pipeline()
	members := make([]any, 0, len(sigs))
	for _, sig := range sigs {
		if validKey(sig) {
			pipe.Unlink(ctx, s.tokenKey(kind, sig))
			if kind == storage.KindRefresh {
				pipe.Unlink(ctx, s.rotatedKey(sig))
			}
		}
		members = append(members, sig)
	}
	pipe.SRem(ctx, idx, members...)
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		return s.fail("RevokeRequest", err)
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			return s.fail("RevokeRequest", err)
		}
	}
	return nil
}

// CreateAuthSession implements storage.AuthSessionStore with one script
// that refuses an existing ID.
func (s *Store) CreateAuthSession(ctx context.Context, sess storage.AuthSession) error {
	data, err := s.sessionData("CreateAuthSession", sess)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	n, err := createSession.Run(ctx, s.client, []string{s.sessionKey(sess.ID)},
		sess.StepHash, data, unixMillis(sess.ExpiresAt)).Int()
	if err != nil {
		return s.fail("CreateAuthSession", err)
	}
	if n != 1 {
		return storage.ErrConflict
	}
	return nil
}

func (s *Store) sessionData(op string, sess storage.AuthSession) (string, error) {
	if !validKey(sess.ID) {
		return "", fmt.Errorf("redisstore: %s: session ID: %w", op, ErrInvalidKey)
	}
	if sess.ExpiresAt.IsZero() {
		return "", fmt.Errorf("redisstore: %s: auth session without ExpiresAt: every key needs a TTL", op)
	}
	b, err := json.Marshal(sess) // ID and StepHash are json:"-"
	if err != nil {
		return "", fmt.Errorf("redisstore: %s: encode session: %w", op, err)
	}
	return string(b), nil
}

// AuthSession implements storage.AuthSessionStore.
func (s *Store) AuthSession(ctx context.Context, id string) (storage.AuthSession, error) {
	if !validKey(id) {
		return storage.AuthSession{}, storage.ErrNotFound
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	vals, err := s.client.HMGet(ctx, s.sessionKey(id), "step", "data").Result()
	if err != nil {
		return storage.AuthSession{}, s.fail("AuthSession", err)
	}
	step, ok1 := vals[0].(string)
	data, ok2 := vals[1].(string)
	if !ok1 || !ok2 {
		return storage.AuthSession{}, storage.ErrNotFound
	}
	var sess storage.AuthSession
	if err := json.Unmarshal([]byte(data), &sess); err != nil {
		return storage.AuthSession{}, fmt.Errorf("redisstore: AuthSession: decode session: %w", err)
	}
	sess.ID, sess.StepHash = id, step
	return sess, nil
}

// UpdateAuthSession implements storage.AuthSessionStore with one
// compare-and-swap script on the step field.
func (s *Store) UpdateAuthSession(ctx context.Context, expectStep string, next storage.AuthSession) error {
	if !validKey(next.ID) {
		return storage.ErrNotFound
	}
	data, err := s.sessionData("UpdateAuthSession", next)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	n, err := updateSession.Run(ctx, s.client, []string{s.sessionKey(next.ID)},
		expectStep, next.StepHash, data, unixMillis(next.ExpiresAt)).Int()
	if err != nil {
		return s.fail("UpdateAuthSession", err)
	}
	return casResult(n)
}

// DeleteAuthSession implements storage.AuthSessionStore with one
// compare-and-swap script on the step field.
func (s *Store) DeleteAuthSession(ctx context.Context, id, expectStep string) error {
	if !validKey(id) {
		return storage.ErrNotFound
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	n, err := deleteSession.Run(ctx, s.client, []string{s.sessionKey(id)}, expectStep).Int()
	if err != nil {
		return s.fail("DeleteAuthSession", err)
	}
	return casResult(n)
}

// MarkUsed implements storage.ReplayStore with SET NX PXAT: the reply
// alone says whether this caller was first.
func (s *Store) MarkUsed(ctx context.Context, key string, exp time.Time) error {
	if !validKey(key) {
		return fmt.Errorf("redisstore: MarkUsed: key: %w", ErrInvalidKey)
	}
	if !exp.After(time.Now()) {
		return fmt.Errorf("redisstore: MarkUsed: expiry %s is not in the future", exp.Format(time.RFC3339Nano))
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	cmd := redis.NewBoolCmd(ctx, "set", s.usedKey(key), "1", "nx", "pxat", unixMillis(exp))
	if err := s.client.Process(ctx, cmd); err != nil {
		return s.fail("MarkUsed", err)
	}
	if !cmd.Val() {
		return storage.ErrConflict
	}
	return nil
}

// Ping implements storage.Store (readiness): on a cluster it pings every
// master, since any of them may hold the next request's keys.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	var err error
	if s.cluster != nil {
		err = s.cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return c.Ping(ctx).Err()
		})
	} else {
		err = s.client.Ping(ctx).Err()
	}
	if err != nil {
		return s.fail("Ping", err)
	}
	return nil
}

// CheckEvictionPolicy reads maxmemory_policy from INFO memory on every
// master (CONFIG GET may be renamed or denied) and returns an error
// wrapping ErrEvictionPolicy unless all say noeviction. New calls it;
// run it periodically too, since an operator can change the policy at run
// time (docs/redis.md rule 5).
func (s *Store) CheckEvictionPolicy(ctx context.Context) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	check := func(ctx context.Context, c redis.Cmdable, where string) error {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			return s.fail("INFO memory", err)
		}
		policy, ok := infoField(info, "maxmemory_policy")
		if !ok {
			return fmt.Errorf("%w: %s: INFO memory has no maxmemory_policy field", ErrEvictionPolicy, where)
		}
		if policy != "noeviction" {
			return fmt.Errorf("%w: %s has %q; evicted replay markers would let replays through: "+
				"set maxmemory-policy noeviction, or AllowEvictionPolicy to accept the risk", ErrEvictionPolicy, where, policy)
		}
		return nil
	}
	if s.cluster != nil {
		return s.cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return check(ctx, c, "master "+c.Options().Addr)
		})
	}
	return check(ctx, s.client, "redis")
}

func infoField(info, name string) (string, bool) {
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r\n"), ":")
		if ok && k == name {
			return v, true
		}
	}
	return "", false
}

// Close implements storage.Store: it closes the client.
func (s *Store) Close() error { return s.client.Close() }

// CreateTokens implements storage.TokenBatcher: one pipeline.
func (s *Store) CreateTokens(ctx context.Context, writes []storage.TokenWrite, kind storage.Kind, deletes []string) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	pipe := s.client.Pipeline()
	type idx struct {
		cmd  *redis.Cmd
		keys []string
		sig  string
		ms   int64
	}
	var idxs []idx
	for _, w := range writes {
		if !validKey(w.Signature) || !validKey(w.Rec.RequestID) {
			return ErrInvalidKey
		}
		v, err := encodeRecord(w.Rec)
		if err != nil {
			return err
		}
		ms := millis(w.TTL)
		if w.Kind == storage.KindAccess || w.Kind == storage.KindRefresh {
			keys := []string{s.indexKey(w.Kind, w.Rec.RequestID)}
			idxs = append(idxs, idx{indexAdd.EvalSha(ctx, pipe, keys, w.Signature, ms), keys, w.Signature, ms})
		}
		pipe.Set(ctx, s.tokenKey(w.Kind, w.Signature), v, time.Duration(ms)*time.Millisecond)
	}
	for _, d := range deletes {
		if validKey(d) {
			pipe.Del(ctx, s.tokenKey(kind, d))
		}
	}
	cmds, _ := pipe.Exec(ctx)
	for _, i := range idxs {
		err := i.cmd.Err()
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			err = indexAdd.Run(ctx, s.client, i.keys, i.sig, i.ms).Err()
		}
		if err != nil {
			return s.fail("CreateTokens", err)
		}
	}
	for _, c := range cmds {
		if err := c.Err(); err != nil && !redis.HasErrorPrefix(err, "NOSCRIPT") {
			return s.fail("CreateTokens", err)
		}
	}
	return nil
}

var redeemCode = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'rec', 'used')
local p = redis.call('GETDEL', KEYS[2])
if v[1] and v[2] ~= '1' then redis.call('HSET', KEYS[1], 'used', '1') end
return {v[1], v[2], p}
`)

// RedeemCode implements storage.CodeRedeemer: one script on the
// signature's hash tag reads the code hash, marks it used (keeping its
// TTL) and consumes the PKCE record; the used flag it read decides.
func (s *Store) RedeemCode(ctx context.Context, sig string) (storage.Record, *storage.Record, error) {
	if !validKey(sig) {
		return storage.Record{}, nil, storage.ErrNotFound
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	vals, err := redeemCode.Run(ctx, s.client, []string{s.tokenKey(storage.KindCode, sig), s.tokenKey(storage.KindPKCE, sig)}).Slice()
	if err != nil {
		return storage.Record{}, nil, s.fail("RedeemCode", err)
	}
	for len(vals) < 3 {
		vals = append(vals, nil)
	}
	var pkce *storage.Record
	if p, ok := vals[2].(string); ok {
		r, err := decodeRecord(p)
		if err != nil {
			return storage.Record{}, nil, err
		}
		pkce = &r
	}
	rec, err := codeResult(vals[:2])
	return rec, pkce, err
}

// RotateRefresh implements storage.RefreshRotator. On a single node or a
// Sentinel group the successor's index additions and SETs and the
// invalidateRefresh script go out as one MULTI/EXEC: the transaction runs
// them in order, or none when it cannot be queued. The scripts are sent
// with EVAL there, never EVALSHA, so a node that lost its script cache
// cannot run the writes and skip the rotation (or the reverse). On Redis
// Cluster the keys live in different slots, so it is CreateTokens, then
// InvalidateRefresh: two round trips, the same order.
func (s *Store) RotateRefresh(ctx context.Context, writes []storage.TokenWrite, signature, by string) error {
	if s.cluster != nil {
		if err := s.CreateTokens(ctx, writes, storage.KindAccess, nil); err != nil {
			return err
		}
		return s.InvalidateRefresh(ctx, signature, by)
	}
	if !validKey(signature) {
		return storage.ErrNotFound
	}
	if by == "" {
		return errors.New("redisstore: RotateRefresh: empty rotation id")
	}
	type write struct {
		key string
		v   string
		ms  int64
		idx []string
		sig string
	}
	ws := make([]write, 0, len(writes))
	for _, w := range writes {
		if !validKey(w.Signature) || !validKey(w.Rec.RequestID) {
			return ErrInvalidKey
		}
		if err := checkKind(w.Kind); err != nil {
			return err
		}
		if err := checkTTL(w.TTL); err != nil {
			return err
		}
		v, err := encodeRecord(w.Rec)
		if err != nil {
			return err
		}
		wr := write{key: s.tokenKey(w.Kind, w.Signature), v: v, ms: millis(w.TTL), sig: w.Signature}
		if w.Kind == storage.KindAccess || w.Kind == storage.KindRefresh {
			wr.idx = []string{s.indexKey(w.Kind, w.Rec.RequestID)}
		}
		ws = append(ws, wr)
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	var inv *redis.Cmd
	_, err := s.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, w := range ws {
			if w.idx != nil {
				indexAdd.Eval(ctx, pipe, w.idx, w.sig, w.ms)
			}
			pipe.Set(ctx, w.key, w.v, time.Duration(w.ms)*time.Millisecond)
		}
		inv = invalidateRefresh.Eval(ctx, pipe, []string{s.tokenKey(storage.KindRefresh, signature), s.rotatedKey(signature)}, by)
		return nil
	})
	if err != nil {
		return s.fail("RotateRefresh", err)
	}
	n, err := inv.Int()
	if err != nil {
		return s.fail("RotateRefresh", err)
	}
	return casResult(n)
}
