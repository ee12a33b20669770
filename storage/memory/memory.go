// Package memory is the embedded storage backend: everything lives in
// this process's maps, guarded by one mutex.
//
// It serves single-instance deployments, the demo and tests. Unlike
// fosite's example store it expires entries the way Redis does: every
// entry carries an expiry, lookups treat an expired entry as absent, and a
// janitor goroutine deletes expired entries periodically, so memory stays
// bounded by the live artefacts (docs/performance.md trap 5). Values are copied
// on the way in and out, so a caller mutating a slice or map it passed or
// received can never change what is stored.
package memory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/fedas/fedas/storage"
)

// DefaultSweepInterval is how often the janitor deletes expired entries.
// Lookups never return expired entries regardless; the sweep only bounds
// memory, so it can be infrequent.
const DefaultSweepInterval = 30 * time.Second

var _ storage.Store = (*Store)(nil)

type tokenKey struct {
	kind storage.Kind
	sig  string
}

type tokenEntry struct {
	rec  storage.Record
	used bool   // an invalidated authorization code or rotated refresh token
	by   string // the rotation that invalidated a refresh token
	exp  time.Time
}

type indexKey struct {
	kind      storage.Kind
	requestID string
}

type indexEntry struct {
	sigs map[string]struct{}
	exp  time.Time
}

// Store is an in-memory storage.Store. The zero value is not usable; call
// New.
type Store struct {
	mu       sync.Mutex
	tokens   map[tokenKey]*tokenEntry
	index    map[indexKey]*indexEntry
	sessions map[string]storage.AuthSession
	used     map[string]time.Time
	policy   policyState  // guarded by mu too; its zero value is empty (policy.go)
	rates    rateState    // guarded by mu too; its zero value is empty (ratelimit.go)
	lives    liveState    // guarded by mu too; its zero value is empty (livecount.go)
	failures failureState // guarded by mu too; its zero value is empty (lockout.go)
	dc       dcState      // guarded by mu too; its zero value is empty (dc.go)
	reach    reachState   // guarded by mu too; its zero value is empty (reach.go)
	now      func() time.Time

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// New returns an empty Store whose janitor sweeps expired entries every
// DefaultSweepInterval until Close.
func New() *Store { return newStore(DefaultSweepInterval) }

// NewWithClock is New with an injected clock for every expiry decision,
// so that tests move time instead of sleeping.
func NewWithClock(now func() time.Time) *Store {
	s := newStore(DefaultSweepInterval)
	s.mu.Lock()
	s.now = now
	s.mu.Unlock()
	return s
}

func newStore(sweep time.Duration) *Store {
	s := &Store{
		tokens:   map[tokenKey]*tokenEntry{},
		index:    map[indexKey]*indexEntry{},
		sessions: map[string]storage.AuthSession{},
		used:     map[string]time.Time{},
		now:      time.Now,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go s.janitor(sweep)
	return s
}

func (s *Store) janitor(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep()
		}
	}
}

// sweep deletes every expired entry.
func (s *Store) sweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	maps.DeleteFunc(s.tokens, func(_ tokenKey, e *tokenEntry) bool { return !now.Before(e.exp) })
	maps.DeleteFunc(s.index, func(_ indexKey, e *indexEntry) bool { return !now.Before(e.exp) })
	maps.DeleteFunc(s.sessions, func(_ string, e storage.AuthSession) bool { return !now.Before(e.ExpiresAt) })
	maps.DeleteFunc(s.used, func(_ string, exp time.Time) bool { return !now.Before(exp) })
	s.rates.sweep(now)
	s.lives.sweep(now)
	s.sweepFailures(now)
	s.dc.sweep(now)
	s.reach.sweep(now)
}

func checkKind(kind storage.Kind) error {
	if !slices.Contains(storage.Kinds, kind) {
		return fmt.Errorf("memory: unknown kind %q", kind)
	}
	return nil
}

func checkTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("memory: ttl %s is not positive: every artefact needs a lifetime", ttl)
	}
	return nil
}

// live returns the entry for k unless it is missing or expired. The
// caller holds s.mu.
func (s *Store) live(k tokenKey, now time.Time) (*tokenEntry, bool) {
	e, ok := s.tokens[k]
	if !ok || !now.Before(e.exp) {
		return nil, false
	}
	return e, true
}

// CreateToken implements storage.TokenStore.
func (s *Store) CreateToken(_ context.Context, kind storage.Kind, signature string, rec storage.Record, ttl time.Duration) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	if err := checkTTL(ttl); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	exp := now.Add(ttl)
	s.tokens[tokenKey{kind, signature}] = &tokenEntry{rec: cloneRecord(rec), exp: exp}
	if kind == storage.KindAccess || kind == storage.KindRefresh {
		k := indexKey{kind, rec.RequestID}
		ix, ok := s.index[k]
		if !ok || !now.Before(ix.exp) {
			ix = &indexEntry{sigs: map[string]struct{}{}}
			s.index[k] = ix
		}
		ix.sigs[signature] = struct{}{}
		// The index lives at least as long as its longest token, never
		// shorter.
		if exp.After(ix.exp) {
			ix.exp = exp
		}
	}
	return nil
}

// CreateCode implements storage.TokenStore.
func (s *Store) CreateCode(_ context.Context, signature string, rec storage.Record, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp := s.now().Add(ttl)
	s.tokens[tokenKey{storage.KindCode, signature}] = &tokenEntry{rec: cloneRecord(rec), exp: exp}
	s.tokens[tokenKey{storage.KindPKCE, signature}] = &tokenEntry{rec: cloneRecord(rec), exp: exp}
	return nil
}

// Token implements storage.TokenStore.
func (s *Store) Token(_ context.Context, kind storage.Kind, signature string) (storage.Record, error) {
	if err := checkKind(kind); err != nil {
		return storage.Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(tokenKey{kind, signature}, s.now())
	if !ok {
		return storage.Record{}, storage.ErrNotFound
	}
	if e.used {
		return cloneRecord(e.rec), storage.ErrInvalidated
	}
	return cloneRecord(e.rec), nil
}

// DeleteToken implements storage.TokenStore.
func (s *Store) DeleteToken(_ context.Context, kind storage.Kind, signature string) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, tokenKey{kind, signature})
	return nil
}

// InvalidateCode implements storage.TokenStore.
func (s *Store) InvalidateCode(_ context.Context, signature string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(tokenKey{storage.KindCode, signature}, s.now())
	switch {
	case !ok:
		return storage.ErrNotFound
	case e.used:
		return storage.ErrConflict
	}
	e.used = true
	return nil
}

// InvalidateRefresh implements storage.TokenStore: the same flag as a
// redeemed code's, under the one mutex.
func (s *Store) InvalidateRefresh(_ context.Context, signature, by string) error {
	if by == "" {
		return errors.New("memory: InvalidateRefresh: empty rotation id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(tokenKey{storage.KindRefresh, signature}, s.now())
	switch {
	case !ok:
		return storage.ErrNotFound
	case e.used && e.by == by:
		return nil
	case e.used:
		return storage.ErrConflict
	}
	e.used, e.by = true, by
	return nil
}

// ConsumeToken implements storage.TokenStore. Consuming an invalidated
// code or refresh token returns its record with ErrInvalidated, as Token
// does.
func (s *Store) ConsumeToken(_ context.Context, kind storage.Kind, signature string) (storage.Record, error) {
	if err := checkKind(kind); err != nil {
		return storage.Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := tokenKey{kind, signature}
	e, ok := s.live(k, s.now())
	if !ok {
		return storage.Record{}, storage.ErrNotFound
	}
	delete(s.tokens, k)
	if e.used {
		return e.rec, storage.ErrInvalidated
	}
	return e.rec, nil // the entry is gone: no copy needed
}

// RevokeRequest implements storage.TokenStore.
func (s *Store) RevokeRequest(_ context.Context, kind storage.Kind, requestID string) error {
	if kind != storage.KindAccess && kind != storage.KindRefresh {
		return fmt.Errorf("memory: RevokeRequest: kind %q is not indexed by request", kind)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := indexKey{kind, requestID}
	ix, ok := s.index[k]
	if !ok || !s.now().Before(ix.exp) {
		// An expired index only names expired tokens: it outlives them all.
		return nil
	}
	for sig := range ix.sigs {
		delete(s.tokens, tokenKey{kind, sig})
	}
	delete(s.index, k)
	return nil
}

// CreateAuthSession implements storage.AuthSessionStore.
func (s *Store) CreateAuthSession(_ context.Context, sess storage.AuthSession) error {
	if err := checkSession(sess); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.liveSession(sess.ID); ok {
		if e.StepHash == sess.StepHash {
			return nil // idempotent: this very create already applied
		}
		return storage.ErrConflict
	}
	s.sessions[sess.ID] = cloneSession(sess)
	return nil
}

// AuthSession implements storage.AuthSessionStore.
func (s *Store) AuthSession(_ context.Context, id string) (storage.AuthSession, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.liveSession(id)
	if !ok {
		return storage.AuthSession{}, storage.ErrNotFound
	}
	return cloneSession(e), nil
}

// UpdateAuthSession implements storage.AuthSessionStore.
func (s *Store) UpdateAuthSession(_ context.Context, expectStep string, next storage.AuthSession) error {
	if err := checkSession(next); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.liveSession(next.ID)
	switch {
	case !ok:
		return storage.ErrNotFound
	case e.StepHash == next.StepHash:
		return nil // idempotent: this very update already applied
	case e.StepHash != expectStep:
		return storage.ErrConflict
	}
	s.sessions[next.ID] = cloneSession(next)
	return nil
}

// DeleteAuthSession implements storage.AuthSessionStore.
func (s *Store) DeleteAuthSession(_ context.Context, id, expectStep string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.liveSession(id)
	switch {
	case !ok:
		return storage.ErrNotFound
	case e.StepHash != expectStep:
		return storage.ErrConflict
	}
	delete(s.sessions, id)
	return nil
}

// liveSession returns the session unless it is missing or expired. The
// caller holds s.mu.
func (s *Store) liveSession(id string) (storage.AuthSession, bool) {
	e, ok := s.sessions[id]
	if !ok || !s.now().Before(e.ExpiresAt) {
		return storage.AuthSession{}, false
	}
	return e, true
}

func checkSession(sess storage.AuthSession) error {
	if sess.ID == "" {
		return errors.New("memory: auth session without ID")
	}
	if sess.ExpiresAt.IsZero() {
		return errors.New("memory: auth session without ExpiresAt: every artefact needs a lifetime")
	}
	return nil
}

// MarkUsed implements storage.ReplayStore.
func (s *Store) MarkUsed(_ context.Context, key string, exp time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if !exp.After(now) {
		return fmt.Errorf("memory: MarkUsed: expiry %s is not in the future", exp.Format(time.RFC3339Nano))
	}
	if old, ok := s.used[key]; ok && now.Before(old) {
		return storage.ErrConflict
	}
	s.used[key] = exp
	return nil
}

// Ping implements storage.Store; memory is always reachable.
func (s *Store) Ping(context.Context) error { return nil }

// Close stops the janitor. The maps stay usable, so a late caller during
// shutdown still gets answers rather than a panic.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
	})
	return nil
}

func cloneRecord(r storage.Record) storage.Record {
	r.RequestedScopes = slices.Clone(r.RequestedScopes)
	r.GrantedScopes = slices.Clone(r.GrantedScopes)
	r.RequestedAudience = slices.Clone(r.RequestedAudience)
	r.GrantedAudience = slices.Clone(r.GrantedAudience)
	r.ResponseTypes = slices.Clone(r.ResponseTypes)
	r.Session = cloneRaw(r.Session)
	return r
}

func cloneSession(s storage.AuthSession) storage.AuthSession {
	s.Request = maps.Clone(s.Request)
	s.AMR = slices.Clone(s.AMR)
	s.Extra = cloneRaw(s.Extra)
	return s
}

func cloneRaw(m json.RawMessage) json.RawMessage {
	if m == nil {
		return nil
	}
	return append(json.RawMessage{}, m...)
}

// CreateTokens implements storage.TokenBatcher.
func (s *Store) CreateTokens(ctx context.Context, writes []storage.TokenWrite, kind storage.Kind, deletes []string) error {
	for _, w := range writes {
		if err := s.CreateToken(ctx, w.Kind, w.Signature, w.Rec, w.TTL); err != nil {
			return err
		}
	}
	for _, d := range deletes {
		if err := s.DeleteToken(ctx, kind, d); err != nil {
			return err
		}
	}
	return nil
}

// RedeemCode implements storage.CodeRedeemer under the one mutex.
func (s *Store) RedeemCode(_ context.Context, sig string) (storage.Record, *storage.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var pkce *storage.Record
	if e, ok := s.live(tokenKey{storage.KindPKCE, sig}, now); ok {
		// The entry leaves the map: its record needs no copy.
		pkce = &e.rec
		delete(s.tokens, tokenKey{storage.KindPKCE, sig})
	}
	e, ok := s.live(tokenKey{storage.KindCode, sig}, now)
	if !ok {
		return storage.Record{}, pkce, storage.ErrNotFound
	}
	if e.used {
		return cloneRecord(e.rec), pkce, storage.ErrInvalidated
	}
	e.used = true
	return cloneRecord(e.rec), pkce, nil
}

// RotateRefresh implements storage.RefreshRotator: the writes, then the
// rotation.
func (s *Store) RotateRefresh(ctx context.Context, writes []storage.TokenWrite, signature, by string) error {
	if by == "" {
		return errors.New("memory: RotateRefresh: empty rotation id")
	}
	if err := s.CreateTokens(ctx, writes, storage.KindAccess, nil); err != nil {
		return err
	}
	return s.InvalidateRefresh(ctx, signature, by)
}
