package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fedas/fedas/storage"
)

var _ storage.DCStore = (*Store)(nil)

// dcTxKey is an OpenID4VP transaction: hash {tx, res} under the
// transaction id's hash tag, so that the result is set first-wins in one
// step on the slot and a poll reads both with one HMGET (docs/redis.md
// "Keys").
func (s *Store) dcTxKey(id string) string { return s.prefix + "dctx:{" + id + "}" }

// dcReqKey points from a request id (the wallet-facing state) to its
// transaction id: a string "<tx id>", or "!<tx id>" once the request
// object was fetched (single fetch).
func (s *Store) dcReqKey(id string) string { return s.prefix + "dcreq:{" + id + "}" }

var (
	// dcCreate writes a transaction unless the id exists; idempotent like
	// createSession (a retry of a write that applied finds its own value).
	// KEYS: tx; ARGV: record, ttl ms.
	dcCreate = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'tx') == ARGV[1] then return 1 end
  return -1
end
redis.call('HSET', KEYS[1], 'tx', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

	// dcSetResult sets the result once; the key keeps its TTL. Idempotent:
	// a result equal to the stored one (a retry) succeeds again; results
	// carry a fresh random response_code digest, so two wallets' never do.
	// KEYS: tx; ARGV: result.
	dcSetResult = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[1], 'res', ARGV[1]) == 1 then return 1 end
if redis.call('HGET', KEYS[1], 'res') == ARGV[1] then return 1 end
return -1
`)

	// dcTake marks a request taken, keeping its TTL, and returns the
	// transaction id: 0 unknown, -1 taken already. KEYS: request.
	dcTake = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
if string.sub(v, 1, 1) == '!' then return -1 end
redis.call('SET', KEYS[1], '!' .. v, 'KEEPTTL')
return v
`)
)

// CreateDC implements storage.DCStore: the transaction (one script), then
// the request pointer (SET NX PX). They live in different slots; a
// pointer whose write failed leaves a transaction nobody can reach, which
// expires.
func (s *Store) CreateDC(ctx context.Context, txID, requestID string, tx []byte, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	if !validKey(txID) || (requestID != "" && !validKey(requestID)) {
		return fmt.Errorf("redisstore: CreateDC: id: %w", ErrInvalidKey)
	}
	if len(tx) == 0 {
		return errors.New("redisstore: CreateDC: empty record")
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	ms := millis(ttl)
	n, err := dcCreate.Run(ctx, s.client, []string{s.dcTxKey(txID)}, string(tx), ms).Int()
	if err != nil {
		return s.fail("CreateDC", err)
	}
	if n != 1 {
		return storage.ErrConflict
	}
	if requestID == "" {
		return nil
	}
	ok, err := s.client.SetNX(ctx, s.dcReqKey(requestID), txID, time.Duration(ms)*time.Millisecond).Result()
	if err != nil {
		return s.fail("CreateDC", err)
	}
	if !ok {
		v, err := s.client.Get(ctx, s.dcReqKey(requestID)).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return s.fail("CreateDC", err)
		}
		if v != txID && v != "!"+txID {
			return storage.ErrConflict
		}
	}
	return nil
}

// DC implements storage.DCStore: one HMGET.
func (s *Store) DC(ctx context.Context, txID string) (storage.DCRecord, error) {
	if !validKey(txID) {
		return storage.DCRecord{}, storage.ErrNotFound
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	vals, err := s.client.HMGet(ctx, s.dcTxKey(txID), "tx", "res").Result()
	if err != nil {
		return storage.DCRecord{}, s.fail("DC", err)
	}
	tx, ok := vals[0].(string)
	if !ok {
		return storage.DCRecord{}, storage.ErrNotFound
	}
	rec := storage.DCRecord{Tx: []byte(tx)}
	if res, ok := vals[1].(string); ok {
		rec.Result = []byte(res)
	}
	return rec, nil
}

// TakeDCRequest implements storage.DCStore with one script.
func (s *Store) TakeDCRequest(ctx context.Context, requestID string) (string, error) {
	if !validKey(requestID) {
		return "", storage.ErrNotFound
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	v, err := dcTake.Run(ctx, s.client, []string{s.dcReqKey(requestID)}).Result()
	if err != nil {
		return "", s.fail("TakeDCRequest", err)
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case int64:
		if v == 0 {
			return "", storage.ErrNotFound
		}
		return "", storage.ErrConflict
	}
	return "", fmt.Errorf("redisstore: TakeDCRequest: unexpected reply %T", v)
}

// DCRequest implements storage.DCStore: one GET.
func (s *Store) DCRequest(ctx context.Context, requestID string) (string, bool, error) {
	if !validKey(requestID) {
		return "", false, storage.ErrNotFound
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	v, err := s.client.Get(ctx, s.dcReqKey(requestID)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, storage.ErrNotFound
	}
	if err != nil {
		return "", false, s.fail("DCRequest", err)
	}
	if t, ok := strings.CutPrefix(v, "!"); ok {
		return t, true, nil
	}
	return v, false, nil
}

// SetDCResult implements storage.DCStore with one script (first wins).
func (s *Store) SetDCResult(ctx context.Context, txID string, result []byte) error {
	if !validKey(txID) {
		return storage.ErrNotFound
	}
	if len(result) == 0 {
		return errors.New("redisstore: SetDCResult: empty result")
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	n, err := dcSetResult.Run(ctx, s.client, []string{s.dcTxKey(txID)}, string(result)).Int()
	if err != nil {
		return s.fail("SetDCResult", err)
	}
	switch n {
	case 1:
		return nil
	case 0:
		return storage.ErrNotFound
	}
	return storage.ErrConflict
}

// DeleteDC implements storage.DCStore: one DEL per key (two slots), in one
// pipeline.
func (s *Store) DeleteDC(ctx context.Context, txID, requestID string) error {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	pipe := s.client.Pipeline()
	n := 0
	if validKey(txID) {
		pipe.Del(ctx, s.dcTxKey(txID))
		n++
	}
	if requestID != "" && validKey(requestID) {
		pipe.Del(ctx, s.dcReqKey(requestID))
		n++
	}
	if n == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return s.fail("DeleteDC", err)
	}
	return nil
}
