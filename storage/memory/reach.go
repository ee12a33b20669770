package memory

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/storage"
)

var _ storage.ReachStore = (*Store)(nil)

// reachState holds the reach core (storage.ReachStore); its zero value is
// empty. Guarded by Store.mu; the janitor drops expired entries.
type reachState struct {
	devices  map[string]*devEntry
	jkts     map[string]string              // jkt → device id
	users    map[string]map[string]struct{} // user → device ids
	inboxes  map[string]*inbox
	presence map[string]time.Time
	tasks    map[string]*taskEntry
	refs     map[string]refEntry
}

type devEntry struct {
	d   reach.Device
	exp time.Time
}

type inbox struct {
	entries []storage.InboxEntry
	lastMS  int64
	seq     int64
	exp     time.Time
}

type taskEntry struct {
	t   reach.Task
	exp time.Time
}

type refEntry struct {
	id  string
	exp time.Time
}

func (r *reachState) init() {
	if r.devices == nil {
		r.devices, r.jkts, r.users = map[string]*devEntry{}, map[string]string{}, map[string]map[string]struct{}{}
		r.inboxes, r.presence = map[string]*inbox{}, map[string]time.Time{}
		r.tasks, r.refs = map[string]*taskEntry{}, map[string]refEntry{}
	}
}

func (r *reachState) sweep(now time.Time) {
	for id, e := range r.devices {
		if !now.Before(e.exp) {
			r.dropDevice(id)
		}
	}
	maps.DeleteFunc(r.inboxes, func(_ string, b *inbox) bool { return !now.Before(b.exp) })
	maps.DeleteFunc(r.presence, func(_ string, exp time.Time) bool { return !now.Before(exp) })
	maps.DeleteFunc(r.tasks, func(_ string, e *taskEntry) bool { return !now.Before(e.exp) })
	maps.DeleteFunc(r.refs, func(_ string, e refEntry) bool { return !now.Before(e.exp) })
}

// device returns the live device entry or nil; an expired one is dropped.
func (r *reachState) device(id string, now time.Time) *devEntry {
	e, ok := r.devices[id]
	if !ok {
		return nil
	}
	if !now.Before(e.exp) {
		r.dropDevice(id)
		return nil
	}
	return e
}

func (r *reachState) dropDevice(id string) {
	e, ok := r.devices[id]
	if !ok {
		return
	}
	delete(r.devices, id)
	if r.jkts[e.d.JKT] == id {
		delete(r.jkts, e.d.JKT)
	}
	if u := r.users[e.d.User]; u != nil {
		delete(u, id)
		if len(u) == 0 {
			delete(r.users, e.d.User)
		}
	}
	delete(r.inboxes, id)
	delete(r.presence, id)
}

// PutDevice implements storage.ReachStore.
func (s *Store) PutDevice(_ context.Context, d reach.Device, ttl time.Duration) (reach.Device, error) {
	if err := checkTTL(ttl); err != nil {
		return reach.Device{}, err
	}
	if err := d.Validate(); err != nil {
		return reach.Device{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reach.init()
	now := s.now()
	d = storage.CloneDevice(d)
	stamp := now.Round(0).UTC().Truncate(time.Millisecond) // as Redis keeps it
	d.LastSeen, d.Created = stamp, stamp
	if id, ok := s.reach.jkts[d.JKT]; ok {
		if old := s.reach.device(id, now); old != nil {
			if old.d.User != d.User {
				return reach.Device{}, fmt.Errorf("memory: PutDevice: key registered to another user: %w", storage.ErrConflict)
			}
			d.ID, d.Created = old.d.ID, old.d.Created
			old.d, old.exp = d, now.Add(ttl)
			return storage.CloneDevice(d), nil
		}
	}
	if _, ok := s.reach.devices[d.ID]; ok {
		return reach.Device{}, fmt.Errorf("memory: PutDevice: id in use: %w", storage.ErrConflict)
	}
	live := 0
	for id := range s.reach.users[d.User] {
		if s.reach.device(id, now) != nil {
			live++
		}
	}
	if live >= reach.MaxDevicesPerUser {
		return reach.Device{}, reach.ErrQuota
	}
	s.reach.devices[d.ID] = &devEntry{d: d, exp: now.Add(ttl)}
	s.reach.jkts[d.JKT] = d.ID
	if s.reach.users[d.User] == nil {
		s.reach.users[d.User] = map[string]struct{}{}
	}
	s.reach.users[d.User][d.ID] = struct{}{}
	return storage.CloneDevice(d), nil
}

// Device implements storage.ReachStore.
func (s *Store) Device(_ context.Context, id string) (reach.Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reach.init()
	e := s.reach.device(id, s.now())
	if e == nil {
		return reach.Device{}, storage.ErrReachNotFound
	}
	return storage.CloneDevice(e.d), nil
}

// DeviceByJKT implements storage.ReachStore.
func (s *Store) DeviceByJKT(_ context.Context, jkt string) (reach.Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reach.init()
	id, ok := s.reach.jkts[jkt]
	if !ok {
		return reach.Device{}, storage.ErrReachNotFound
	}
	e := s.reach.device(id, s.now())
	if e == nil {
		return reach.Device{}, storage.ErrReachNotFound
	}
	return storage.CloneDevice(e.d), nil
}

// UserDevices implements storage.ReachStore.
func (s *Store) UserDevices(_ context.Context, user string) ([]reach.Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reach.init()
	now := s.now()
	var out []reach.Device
	for id := range s.reach.users[user] {
		if e := s.reach.device(id, now); e != nil {
			out = append(out, storage.CloneDevice(e.d))
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

// TouchDevice implements storage.ReachStore.
func (s *Store) TouchDevice(_ context.Context, id string, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reach.init()
	now := s.now()
	e := s.reach.device(id, now)
	if e == nil {
		return storage.ErrReachNotFound
	}
	e.d.LastSeen, e.exp = now.Round(0).UTC().Truncate(time.Millisecond), now.Add(ttl)
	return nil
}

// DeleteDevice implements storage.ReachStore.
func (s *Store) DeleteDevice(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reach.init()
	s.reach.dropDevice(id)
	return nil
}

// AppendInbox implements storage.ReachStore. Ids follow Redis stream ids
// ("<ms>-<seq>", strictly increasing), so cursors mean the same on both
// backends.
func (s *Store) AppendInbox(_ context.Context, deviceID string, data []byte) (string, error) {
	if len(data) == 0 || len(data) > storage.MaxInboxEntry {
		return "", fmt.Errorf("memory: AppendInbox: entry size: %w", reach.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reach.init()
	now := s.now()
	if s.reach.device(deviceID, now) == nil {
		return "", storage.ErrReachNotFound
	}
	b := s.reach.inboxes[deviceID]
	if b == nil || !now.Before(b.exp) {
		b = &inbox{}
		s.reach.inboxes[deviceID] = b
	}
	ms := now.UnixMilli()
	if ms > b.lastMS {
		b.lastMS, b.seq = ms, 0
	} else {
		b.seq++
	}
	id := strconv.FormatInt(b.lastMS, 10) + "-" + strconv.FormatInt(b.seq, 10)
	b.entries = append(b.entries, storage.InboxEntry{ID: id, Data: slices.Clone(data)})
	if n := len(b.entries) - storage.InboxMaxLen; n > 0 {
		b.entries = slices.Delete(b.entries, 0, n)
	}
	b.exp = now.Add(storage.InboxTTL)
	return id, nil
}

// ReadInbox implements storage.ReachStore.
func (s *Store) ReadInbox(_ context.Context, deviceID, afterID string, max int) ([]storage.InboxEntry, error) {
	after, err := parseStreamID(afterID)
	if err != nil {
		return nil, err
	}
	if max <= 0 || max > storage.MaxInboxRead {
		max = storage.MaxInboxRead
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reach.init()
	b := s.reach.inboxes[deviceID]
	if b == nil || !s.now().Before(b.exp) {
		return nil, nil
	}
	var out []storage.InboxEntry
	for _, e := range b.entries {
		id, _ := parseStreamID(e.ID)
		if afterID != "" && !id.after(after) {
			continue
		}
		out = append(out, storage.InboxEntry{ID: e.ID, Data: slices.Clone(e.Data)})
		if len(out) == max {
			break
		}
	}
	return out, nil
}

type streamID struct{ ms, seq uint64 }

func (a streamID) after(b streamID) bool { return a.ms > b.ms || a.ms == b.ms && a.seq > b.seq }

// parseStreamID reads a cursor with storage.ParseInboxCursor.
func parseStreamID(v string) (streamID, error) {
	ms, seq, err := storage.ParseInboxCursor(v)
	return streamID{ms, seq}, err
}

// SetPresence implements storage.ReachStore.
func (s *Store) SetPresence(_ context.Context, deviceID string, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reach.init()
	now := s.now()
	if s.reach.device(deviceID, now) == nil {
		return storage.ErrReachNotFound
	}
	s.reach.presence[deviceID] = now.Add(ttl)
	return nil
}

// Present implements storage.ReachStore.
func (s *Store) Present(_ context.Context, deviceID string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reach.init()
	exp, ok := s.reach.presence[deviceID]
	return ok && s.now().Before(exp), nil
}

// CreateTask implements storage.ReachStore.
func (s *Store) CreateTask(_ context.Context, t reach.Task) error {
	if err := t.Validate(); err != nil {
		return err
	}
	if t.State != reach.StateCreated {
		return fmt.Errorf("memory: CreateTask: state %s: %w", t.State, reach.ErrState)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reach.init()
	now := s.now()
	exp := t.ExpiresAt.Add(reach.TaskGrace)
	if !now.Before(exp) || t.ExpiresAt.Sub(now) > reach.MaxTaskLifetime {
		return fmt.Errorf("memory: CreateTask: lifetime outside (0, %s]: %w", reach.MaxTaskLifetime, reach.ErrInvalid)
	}
	if e, ok := s.reach.tasks[t.ID]; ok && now.Before(e.exp) {
		if reflect.DeepEqual(e.t, storage.CloneTask(t)) && s.reach.refs[t.Ref].id == t.ID {
			return nil // a retry of a create that applied
		}
		return storage.ErrConflict
	}
	if e, ok := s.reach.refs[t.Ref]; ok && now.Before(e.exp) {
		return storage.ErrConflict
	}
	s.reach.tasks[t.ID] = &taskEntry{t: storage.CloneTask(t), exp: exp}
	s.reach.refs[t.Ref] = refEntry{id: t.ID, exp: exp}
	return nil
}

// Task implements storage.ReachStore.
func (s *Store) Task(_ context.Context, id string) (reach.Task, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reach.init()
	e, ok := s.reach.tasks[id]
	if !ok || !s.now().Before(e.exp) {
		return reach.Task{}, storage.ErrReachNotFound
	}
	return storage.CloneTask(e.t), nil
}

// TransitionTask implements storage.ReachStore: under the store's lock,
// so the read, mutate and write are one step.
func (s *Store) TransitionTask(_ context.Context, id string, from []reach.State, to reach.State, mutate func(*reach.Task) error) (reach.Task, error) {
	if err := storage.CheckTransition(from, to); err != nil {
		return reach.Task{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reach.init()
	now := s.now()
	e, ok := s.reach.tasks[id]
	if !ok || !now.Before(e.exp) {
		return reach.Task{}, storage.ErrReachNotFound
	}
	next, err := storage.PrepareTransition(e.t, from, to, mutate, now)
	if err != nil {
		return reach.Task{}, err
	}
	e.t = storage.CloneTask(next)
	return next, nil
}

// TakeRef implements storage.ReachStore.
func (s *Store) TakeRef(_ context.Context, ref string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reach.init()
	e, ok := s.reach.refs[ref]
	if !ok || !s.now().Before(e.exp) {
		return "", storage.ErrReachNotFound
	}
	delete(s.reach.refs, ref)
	return e.id, nil
}
