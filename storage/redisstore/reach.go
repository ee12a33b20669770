package redisstore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/storage"
)

var _ storage.ReachStore = (*Store)(nil)

// Keys of the reach core (docs/reach.md, docs/redis.md "Keys"). A
// device's hash, inbox and presence share the hash tag {d:<id>}, so a
// script may check the device while writing its inbox (one slot). The
// JKT pointer, the user's device set and a task's ref live in their own
// slots; a task's hash is alone in {t:<id>}.
func (s *Store) devKey(id string) string      { return s.prefix + "reach:{d:" + id + "}" }
func (s *Store) inboxKey(id string) string    { return s.devKey(id) + ":inbox" }
func (s *Store) presenceKey(id string) string { return s.devKey(id) + ":presence" }
func (s *Store) jktKey(jkt string) string     { return s.prefix + "reach:jkt:{" + jkt + "}" }
func (s *Store) taskKey(id string) string     { return s.prefix + "reach:{t:" + id + "}" }
func (s *Store) refKey(ref string) string     { return s.prefix + "reach:ref:{" + ref + "}" }

// userDevsKey is the sorted set of a user's devices (member = device id,
// score = its expiry in Unix ms), named by a digest of the user id so
// that no user id appears in a key name.
func (s *Store) userDevsKey(user string) string {
	h := sha256.Sum256([]byte("fedas reach user\x00" + user))
	return s.prefix + "reach:u:{" + base64.RawURLEncoding.EncodeToString(h[:16]) + "}"
}

var (
	// reachAdmit keeps a user's device set: drops expired members, admits
	// a member already there (re-registration, touch) with its new expiry,
	// refuses a new member at the cap, and keeps the key's TTL at its
	// latest member's expiry. KEYS: set; ARGV: id, expiry ms, now ms, cap.
	// Returns 1 admitted, -1 full.
	reachAdmit = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
  return -1
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local top = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], top[2])
return 1
`)

	// reachTouch slides a live device's expiry and records its last use;
	// returns {jkt, user set key suffix} or false when gone.
	// KEYS: device; ARGV: seen ms, ttl ms.
	reachTouch = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSET', KEYS[1], 'seen', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('HMGET', KEYS[1], 'j', 'u')
`)

	// reachAppend appends to a live device's inbox, bounded (MAXLEN ~)
	// and with a TTL, in one step; false when the device is gone.
	// KEYS: device, inbox; ARGV: data, maxlen, ttl ms.
	reachAppend = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'd', ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return id
`)

	// reachPresence marks a live device present. KEYS: device, presence;
	// ARGV: ttl ms. Returns 1, or 0 when the device is gone.
	reachPresence = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return 1
`)

	// reachCreateTask writes a new task unless the id exists; a retry of
	// a create that applied finds its own record. KEYS: task; ARGV: rec,
	// expiry ms (ExpiresAt), key expiry ms (+ grace).
	reachCreateTask = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'rec') == ARGV[1] then return 1 end
  return -1
end
redis.call('HSET', KEYS[1], 'rec', ARGV[1], 'st', 'CREATED', 'v', 0, 'exp', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
`)

	// reachCAS is the one compare-and-swap of a task (§4.4): it applies
	// when the state is one of the from states, the task has not expired
	// by the server's clock (unless moving to EXPIRED) and, when a version
	// is given, nobody wrote since it was read. The key keeps its TTL.
	// KEYS: task; ARGV: to, rec or '', version or '', from states...
	// Returns the record written when applied (the state is ARGV[1]), else
	// 0 gone, -1 state, -2 expired, -3 version moved.
	reachCAS = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'st', 'v', 'exp')
if not cur[1] then return 0 end
local ok = false
for i = 4, #ARGV do
  if ARGV[i] == cur[1] then ok = true end
end
if not ok then return -1 end
if ARGV[1] ~= 'EXPIRED' then
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) >= tonumber(cur[3]) then return -2 end
end
if ARGV[3] ~= '' and cur[2] ~= ARGV[3] then return -3 end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'rec', ARGV[2]) end
redis.call('HSET', KEYS[1], 'st', ARGV[1], 'v', tonumber(cur[2]) + 1)
return redis.call('HGET', KEYS[1], 'rec')
`)
)

// casRetries bounds TransitionTask's re-reads after a concurrent write;
// each retry follows a write that applied, and a task's live life has few
// (one per pick or delivery), so this is never reached in practice.
const casRetries = 64

func encodeDevice(d reach.Device) (string, error) {
	d.LastSeen = time.Time{}
	b, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("redisstore: encode device: %w", err)
	}
	return string(b), nil
}

func decodeDevice(rec, seen string) (reach.Device, error) {
	var d reach.Device
	if err := json.Unmarshal([]byte(rec), &d); err != nil {
		return reach.Device{}, fmt.Errorf("redisstore: decode device: %w", err)
	}
	ms, err := strconv.ParseInt(seen, 10, 64)
	if err != nil {
		return reach.Device{}, fmt.Errorf("redisstore: decode device: last seen: %w", err)
	}
	d.LastSeen = time.UnixMilli(ms).UTC()
	return d, nil
}

// readDevice is one HMGET; ErrReachNotFound when the device is gone.
func (s *Store) readDevice(ctx context.Context, id string) (reach.Device, error) {
	vals, err := s.client.HMGet(ctx, s.devKey(id), "rec", "seen").Result()
	if err != nil {
		return reach.Device{}, s.fail("Device", err)
	}
	rec, ok1 := vals[0].(string)
	seen, ok2 := vals[1].(string)
	if !ok1 || !ok2 {
		return reach.Device{}, storage.ErrReachNotFound
	}
	return decodeDevice(rec, seen)
}

// PutDevice implements storage.ReachStore. A re-registration (the key's
// device exists): GET pointer, HMGET device, then one pipeline (device
// hash, pointer TTL, quota set) — 3 round trips. A new device: GET
// pointer, the quota script, then one pipeline writing the device and
// SET NX of the pointer — 3 round trips; when another registration of
// the same key won the SET NX, ours is undone and the call continues as
// a re-registration.
func (s *Store) PutDevice(ctx context.Context, d reach.Device, ttl time.Duration) (reach.Device, error) {
	if err := checkTTL(ttl); err != nil {
		return reach.Device{}, err
	}
	if err := d.Validate(); err != nil {
		return reach.Device{}, err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	d = storage.CloneDevice(d)
	for range 3 {
		got, done, err := s.putDevice(ctx, d, ttl)
		if done || err != nil {
			return got, err
		}
	}
	return reach.Device{}, fmt.Errorf("redisstore: PutDevice: concurrent registrations of one key: %w", storage.ErrConflict)
}

// putDevice is one attempt; done=false asks for another (lost a race).
func (s *Store) putDevice(ctx context.Context, d reach.Device, ttl time.Duration) (reach.Device, bool, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	ms := millis(ttl)
	exp := now.Add(time.Duration(ms) * time.Millisecond)
	userKey := s.userDevsKey(d.User)
	existing, err := s.client.Get(ctx, s.jktKey(d.JKT)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return reach.Device{}, true, s.fail("PutDevice", err)
	}
	if existing != "" {
		old, err := s.readDevice(ctx, existing)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			// A pointer outliving its device: registered anew below.
		case err != nil:
			return reach.Device{}, true, err
		case old.User != d.User:
			return reach.Device{}, true, fmt.Errorf("redisstore: PutDevice: key registered to another user: %w", storage.ErrConflict)
		default:
			d.ID, d.Created, d.LastSeen = old.ID, old.Created, now
			rec, err := encodeDevice(d)
			if err != nil {
				return reach.Device{}, true, err
			}
			pipe := s.pipeline()
			upd := pipe.script(ctx, reachUpdateDevice, []string{s.devKey(d.ID)}, rec, now.UnixMilli(), ms)
			pipe.PExpire(ctx, s.jktKey(d.JKT), time.Duration(ms)*time.Millisecond)
			pipe.script(ctx, reachAdmit, []string{userKey}, d.ID, exp.UnixMilli(), now.UnixMilli(), reach.MaxDevicesPerUser)
			if err := pipe.exec(ctx, s.client); err != nil {
				return reach.Device{}, true, s.fail("PutDevice", err)
			}
			if n, _ := (*upd).Int(); n != 1 {
				// Deleted meanwhile (a sign-out): take it from the top;
				// the quota entry just re-added is dropped there.
				s.client.ZRem(ctx, userKey, d.ID)
				return reach.Device{}, false, nil
			}
			return d, true, nil
		}
	}
	d.Created, d.LastSeen = now, now
	n, err := reachAdmit.Run(ctx, s.client, []string{userKey}, d.ID, exp.UnixMilli(), now.UnixMilli(), reach.MaxDevicesPerUser).Int()
	if err != nil {
		return reach.Device{}, true, s.fail("PutDevice", err)
	}
	if n != 1 {
		return reach.Device{}, true, reach.ErrQuota
	}
	rec, err := encodeDevice(d)
	if err != nil {
		return reach.Device{}, true, err
	}
	pipe := s.pipeline()
	created := pipe.script(ctx, reachCreateDevice, []string{s.devKey(d.ID)}, rec, now.UnixMilli(), d.JKT, userKey, ms)
	ptr := pipe.script(ctx, reachPointer, []string{s.jktKey(d.JKT)}, d.ID, existing, ms)
	_ = pipe.exec(ctx, s.client)
	cn, cerr := (*created).Int()
	pn, perr := (*ptr).Int()
	switch {
	case cerr != nil || perr != nil:
		return reach.Device{}, true, s.fail("PutDevice", errors.Join(cerr, perr))
	case cn != 1:
		// The id names another device (ids are random: a broken caller).
		if pn == 1 {
			s.client.Del(ctx, s.jktKey(d.JKT))
		}
		return reach.Device{}, true, fmt.Errorf("redisstore: PutDevice: id in use: %w", storage.ErrConflict)
	case pn != 1:
		// Another registration of this key won: undo ours, go again as
		// a re-registration.
		pipe := s.pipeline()
		pipe.Del(ctx, s.devKey(d.ID))
		pipe.ZRem(ctx, userKey, d.ID)
		if err := pipe.exec(ctx, s.client); err != nil {
			return reach.Device{}, true, s.fail("PutDevice", err)
		}
		return reach.Device{}, false, nil
	}
	return d, true, nil
}

var (
	// reachCreateDevice writes a new device hash unless the id exists.
	// KEYS: device; ARGV: rec, seen ms, jkt, user set key, ttl ms.
	reachCreateDevice = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'rec') == ARGV[1] then return 1 end
  return -1
end
redis.call('HSET', KEYS[1], 'rec', ARGV[1], 'seen', ARGV[2], 'j', ARGV[3], 'u', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`)

	// reachUpdateDevice rewrites a device that still exists (a concurrent
	// delete wins). KEYS: device; ARGV: rec, seen ms, ttl ms. Returns 1,
	// or 0 when gone.
	reachUpdateDevice = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'rec', ARGV[1], 'seen', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

	// reachPointer points a JKT at a device if the pointer is absent or
	// still names the expected (gone) device, or already names this one
	// (a retry). KEYS: pointer; ARGV: id, expected id or '', ttl ms.
	reachPointer = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[2] and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
`)
)

// Device implements storage.ReachStore: one HMGET.
func (s *Store) Device(ctx context.Context, id string) (reach.Device, error) {
	if !reach.ValidID(id) {
		return reach.Device{}, storage.ErrReachNotFound
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return s.readDevice(ctx, id)
}

// DeviceByJKT implements storage.ReachStore: GET, then HMGET.
func (s *Store) DeviceByJKT(ctx context.Context, jkt string) (reach.Device, error) {
	if !reach.ValidJKT(jkt) {
		return reach.Device{}, storage.ErrReachNotFound
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	id, err := s.client.Get(ctx, s.jktKey(jkt)).Result()
	if errors.Is(err, redis.Nil) {
		return reach.Device{}, storage.ErrReachNotFound
	}
	if err != nil {
		return reach.Device{}, s.fail("DeviceByJKT", err)
	}
	d, err := s.readDevice(ctx, id)
	if err == nil && d.JKT != jkt {
		return reach.Device{}, storage.ErrReachNotFound
	}
	return d, err
}

// UserDevices implements storage.ReachStore: ZRANGE of the user's live
// members, then one pipeline of HMGETs (2 round trips).
func (s *Store) UserDevices(ctx context.Context, user string) ([]reach.Device, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	ids, err := s.client.ZRangeArgs(ctx, redis.ZRangeArgs{
		Key: s.userDevsKey(user), ByScore: true,
		Start: strconv.FormatInt(time.Now().UnixMilli()+1, 10), Stop: "+inf",
	}).Result()
	if err != nil {
		return nil, s.fail("UserDevices", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.pipeline()
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HMGet(ctx, s.devKey(id), "rec", "seen")
	}
	if err := pipe.exec(ctx, s.client); err != nil {
		return nil, s.fail("UserDevices", err)
	}
	var out []reach.Device
	for _, c := range cmds {
		rec, ok1 := c.Val()[0].(string)
		seen, ok2 := c.Val()[1].(string)
		if !ok1 || !ok2 {
			continue // expired or deleted meanwhile
		}
		d, err := decodeDevice(rec, seen)
		if err != nil {
			return nil, err
		}
		if d.User == user {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b reach.Device) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// TouchDevice implements storage.ReachStore: the touch script on the
// device's slot, then one pipeline sliding the pointer and the user's
// quota entry (2 round trips).
func (s *Store) TouchDevice(ctx context.Context, id string, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	if !reach.ValidID(id) {
		return storage.ErrReachNotFound
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	now := time.Now()
	ms := millis(ttl)
	v, err := reachTouch.Run(ctx, s.client, []string{s.devKey(id)}, now.UnixMilli(), ms).StringSlice()
	if errors.Is(err, redis.Nil) {
		return storage.ErrReachNotFound
	}
	if err != nil {
		return s.fail("TouchDevice", err)
	}
	if len(v) != 2 || !reach.ValidJKT(v[0]) || !strings.HasPrefix(v[1], s.prefix+"reach:u:{") {
		return fmt.Errorf("redisstore: TouchDevice: corrupt device record")
	}
	pipe := s.pipeline()
	pipe.PExpire(ctx, s.jktKey(v[0]), time.Duration(ms)*time.Millisecond)
	pipe.script(ctx, reachAdmit, []string{v[1]}, id, now.UnixMilli()+ms, now.UnixMilli(), reach.MaxDevicesPerUser)
	if err := pipe.exec(ctx, s.client); err != nil {
		return s.fail("TouchDevice", err)
	}
	return nil
}

// reachDelete removes a device with its inbox and presence (one slot)
// and returns {jkt, user set key}, or false when gone. KEYS: device,
// inbox, presence.
var reachDelete = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'j', 'u')
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
if not v[1] then return false end
return v
`)

// reachUnpoint deletes a JKT pointer only if it names the device.
// KEYS: pointer; ARGV: id.
var reachUnpoint = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`)

// DeleteDevice implements storage.ReachStore: the delete script on the
// device's slot, then one pipeline for the pointer and the quota entry
// (2 round trips).
func (s *Store) DeleteDevice(ctx context.Context, id string) error {
	if !reach.ValidID(id) {
		return nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	v, err := reachDelete.Run(ctx, s.client, []string{s.devKey(id), s.inboxKey(id), s.presenceKey(id)}).StringSlice()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return s.fail("DeleteDevice", err)
	}
	if len(v) != 2 || !reach.ValidJKT(v[0]) || !strings.HasPrefix(v[1], s.prefix+"reach:u:{") {
		return fmt.Errorf("redisstore: DeleteDevice: corrupt device record")
	}
	pipe := s.pipeline()
	pipe.script(ctx, reachUnpoint, []string{s.jktKey(v[0])}, id)
	pipe.ZRem(ctx, v[1], id)
	if err := pipe.exec(ctx, s.client); err != nil {
		return s.fail("DeleteDevice", err)
	}
	return nil
}

// AppendInbox implements storage.ReachStore: one script (device check,
// XADD MAXLEN ~, PEXPIRE).
func (s *Store) AppendInbox(ctx context.Context, deviceID string, data []byte) (string, error) {
	if len(data) == 0 || len(data) > storage.MaxInboxEntry {
		return "", fmt.Errorf("redisstore: AppendInbox: entry size: %w", reach.ErrInvalid)
	}
	if !reach.ValidID(deviceID) {
		return "", storage.ErrReachNotFound
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	id, err := reachAppend.Run(ctx, s.client, []string{s.devKey(deviceID), s.inboxKey(deviceID)},
		string(data), storage.InboxMaxLen, millis(storage.InboxTTL)).Text()
	if errors.Is(err, redis.Nil) {
		return "", storage.ErrReachNotFound
	}
	if err != nil {
		return "", s.fail("AppendInbox", err)
	}
	return id, nil
}

// ReadInbox implements storage.ReachStore: one XRANGE from after the
// cursor (exclusive), never blocking.
func (s *Store) ReadInbox(ctx context.Context, deviceID, afterID string, max int) ([]storage.InboxEntry, error) {
	ms, seq, err := storage.ParseInboxCursor(afterID)
	if err != nil {
		return nil, err
	}
	start := "-"
	if afterID != "" {
		start = "(" + strconv.FormatUint(ms, 10) + "-" + strconv.FormatUint(seq, 10)
	}
	if !reach.ValidID(deviceID) {
		return nil, nil
	}
	if max <= 0 || max > storage.MaxInboxRead {
		max = storage.MaxInboxRead
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	msgs, err := s.client.XRangeN(ctx, s.inboxKey(deviceID), start, "+", int64(max)).Result()
	if err != nil {
		return nil, s.fail("ReadInbox", err)
	}
	out := make([]storage.InboxEntry, 0, len(msgs))
	for _, m := range msgs {
		d, _ := m.Values["d"].(string)
		out = append(out, storage.InboxEntry{ID: m.ID, Data: []byte(d)})
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// SetPresence implements storage.ReachStore: one script.
func (s *Store) SetPresence(ctx context.Context, deviceID string, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	if !reach.ValidID(deviceID) {
		return storage.ErrReachNotFound
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	n, err := reachPresence.Run(ctx, s.client, []string{s.devKey(deviceID), s.presenceKey(deviceID)}, millis(ttl)).Int()
	if err != nil {
		return s.fail("SetPresence", err)
	}
	if n != 1 {
		return storage.ErrReachNotFound
	}
	return nil
}

// Present implements storage.ReachStore: one EXISTS.
func (s *Store) Present(ctx context.Context, deviceID string) (bool, error) {
	if !reach.ValidID(deviceID) {
		return false, nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	n, err := s.client.Exists(ctx, s.presenceKey(deviceID)).Result()
	if err != nil {
		return false, s.fail("Present", err)
	}
	return n == 1, nil
}

func encodeTask(t reach.Task) (string, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return "", fmt.Errorf("redisstore: encode task: %w", err)
	}
	return string(b), nil
}

// CreateTask implements storage.ReachStore: the create script and SET NX
// of the ref in one pipeline (one round trip; two slots). When the ref
// is taken by another task, the new task is deleted again.
func (s *Store) CreateTask(ctx context.Context, t reach.Task) error {
	if err := t.Validate(); err != nil {
		return err
	}
	if t.State != reach.StateCreated {
		return fmt.Errorf("redisstore: CreateTask: state %s: %w", t.State, reach.ErrState)
	}
	keyExp := t.ExpiresAt.Add(reach.TaskGrace)
	if now := time.Now(); !now.Before(keyExp) || t.ExpiresAt.Sub(now) > reach.MaxTaskLifetime {
		return fmt.Errorf("redisstore: CreateTask: lifetime outside (0, %s]: %w", reach.MaxTaskLifetime, reach.ErrInvalid)
	}
	t = storage.CloneTask(t)
	rec, err := encodeTask(t)
	if err != nil {
		return err
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	pipe := s.pipeline()
	created := pipe.script(ctx, reachCreateTask, []string{s.taskKey(t.ID)}, rec, unixMillis(t.ExpiresAt), unixMillis(keyExp))
	ref := pipe.SetArgs(ctx, s.refKey(t.Ref), t.ID, redis.SetArgs{Mode: "NX", Get: true, ExpireAt: time.UnixMilli(unixMillis(keyExp))})
	_ = pipe.exec(ctx, s.client)
	cn, cerr := (*created).Int()
	prev, rerr := ref.Result()
	if errors.Is(rerr, redis.Nil) {
		rerr, prev = nil, t.ID // set: there was no previous value
	}
	switch {
	case cerr != nil || rerr != nil:
		return s.fail("CreateTask", errors.Join(cerr, rerr))
	case cn != 1:
		return storage.ErrConflict
	case prev != t.ID:
		if err := s.client.Del(ctx, s.taskKey(t.ID)).Err(); err != nil {
			return s.fail("CreateTask", err)
		}
		return storage.ErrConflict
	}
	return nil
}

// readTask is one HMGET: the task, its state and version.
func (s *Store) readTask(ctx context.Context, id string) (reach.Task, string, error) {
	vals, err := s.client.HMGet(ctx, s.taskKey(id), "rec", "st", "v").Result()
	if err != nil {
		return reach.Task{}, "", s.fail("Task", err)
	}
	rec, ok1 := vals[0].(string)
	st, ok2 := vals[1].(string)
	v, ok3 := vals[2].(string)
	if !ok1 || !ok2 || !ok3 {
		return reach.Task{}, "", storage.ErrReachNotFound
	}
	var t reach.Task
	if err := json.Unmarshal([]byte(rec), &t); err != nil {
		return reach.Task{}, "", fmt.Errorf("redisstore: decode task: %w", err)
	}
	t.State = reach.State(st)
	return t, v, nil
}

// Task implements storage.ReachStore: one HMGET.
func (s *Store) Task(ctx context.Context, id string) (reach.Task, error) {
	if !reach.ValidID(id) {
		return reach.Task{}, storage.ErrReachNotFound
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	t, _, err := s.readTask(ctx, id)
	return t, err
}

// TransitionTask implements storage.ReachStore. Without mutate: the CAS
// script alone (one round trip; it rewrites only the state and returns
// the record). With
// mutate: HMGET, storage.PrepareTransition, then the CAS script guarded
// by the version read (two round trips), again after a concurrent write.
func (s *Store) TransitionTask(ctx context.Context, id string, from []reach.State, to reach.State, mutate func(*reach.Task) error) (reach.Task, error) {
	if err := storage.CheckTransition(from, to); err != nil {
		return reach.Task{}, err
	}
	if !reach.ValidID(id) {
		return reach.Task{}, storage.ErrReachNotFound
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	args := []any{string(to), "", ""}
	for _, f := range from {
		args = append(args, string(f))
	}
	if mutate == nil {
		v, err := reachCAS.Run(ctx, s.client, []string{s.taskKey(id)}, args...).Result()
		if err != nil {
			return reach.Task{}, s.fail("TransitionTask", err)
		}
		rec, ok := v.(string)
		if !ok {
			n, _ := v.(int64)
			return reach.Task{}, reachCASResult(int(n))
		}
		var t reach.Task
		if err := json.Unmarshal([]byte(rec), &t); err != nil {
			return reach.Task{}, fmt.Errorf("redisstore: decode task: %w", err)
		}
		t.State = to
		return t, nil
	}
	for range casRetries {
		cur, ver, err := s.readTask(ctx, id)
		if err != nil {
			return reach.Task{}, err
		}
		next, err := storage.PrepareTransition(cur, from, to, mutate, time.Now())
		if err != nil {
			return reach.Task{}, err
		}
		rec, err := encodeTask(next)
		if err != nil {
			return reach.Task{}, err
		}
		args[0], args[1], args[2] = string(next.State), rec, ver
		v, err := reachCAS.Run(ctx, s.client, []string{s.taskKey(id)}, args...).Result()
		if err != nil {
			return reach.Task{}, s.fail("TransitionTask", err)
		}
		if n, ok := v.(int64); ok {
			if n == -3 {
				continue // written meanwhile: read again
			}
			return reach.Task{}, reachCASResult(int(n))
		}
		return next, nil
	}
	return reach.Task{}, fmt.Errorf("redisstore: TransitionTask: too much contention: %w", storage.ErrConflict)
}

func reachCASResult(n int) error {
	switch n {
	case 0:
		return storage.ErrReachNotFound
	case -2:
		return fmt.Errorf("%w: task expired", reach.ErrState)
	}
	return fmt.Errorf("%w: task not in a from state", reach.ErrState)
}

// TakeRef implements storage.ReachStore: one GETDEL (single use).
func (s *Store) TakeRef(ctx context.Context, ref string) (string, error) {
	if !reach.ValidID(ref) {
		return "", storage.ErrReachNotFound
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	id, err := s.client.GetDel(ctx, s.refKey(ref)).Result()
	if errors.Is(err, redis.Nil) {
		return "", storage.ErrReachNotFound
	}
	if err != nil {
		return "", s.fail("TakeRef", err)
	}
	return id, nil
}

// scriptPipe is a pipeline that may carry scripts. They are queued by
// SHA (EVALSHA); a pipeline cannot fall back to EVAL by itself, so exec
// re-runs a script that met NOSCRIPT (its first use on a node) with Run,
// which loads it, as livecount.go and CreateToken do.
type scriptPipe struct {
	redis.Pipeliner
	scripts map[*redis.Cmd]pipedScript
}

type pipedScript struct {
	sc   *redis.Script
	keys []string
	args []any
	out  **redis.Cmd
}

func (s *Store) pipeline() *scriptPipe {
	return &scriptPipe{Pipeliner: s.client.Pipeline(), scripts: map[*redis.Cmd]pipedScript{}}
}

// script queues sc; the returned pointer holds its command once exec ran.
func (p *scriptPipe) script(ctx context.Context, sc *redis.Script, keys []string, args ...any) **redis.Cmd {
	cmd := sc.EvalSha(ctx, p.Pipeliner, keys, args...)
	out := &cmd
	p.scripts[cmd] = pipedScript{sc, keys, args, out}
	return out
}

// exec sends the pipeline (one round trip, two after a NOSCRIPT) and
// returns the first error other than a nil reply.
func (p *scriptPipe) exec(ctx context.Context, c redis.Scripter) error {
	cmds, _ := p.Exec(ctx)
	var first error
	for _, cmd := range cmds {
		err := cmd.Err()
		if sc, ok := cmd.(*redis.Cmd); ok && redis.HasErrorPrefix(err, "NOSCRIPT") {
			if ps, ok := p.scripts[sc]; ok {
				*ps.out = ps.sc.Run(ctx, c, ps.keys, ps.args...)
				err = (*ps.out).Err()
			}
		}
		if err != nil && !errors.Is(err, redis.Nil) && first == nil {
			first = err
		}
	}
	return first
}
