package memory

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/fedas/fedas/storage"
)

var _ storage.LiveCounter = (*Store)(nil)

// liveState holds the live-session scopes: scope key → member → expiry.
// Guarded by Store.mu; the janitor drops expired members and empty
// scopes, so memory stays bounded by the live sessions.
type liveState struct {
	scopes map[string]map[string]time.Time
}

// prune drops the members of scope k expired at now, and the scope when
// it is empty.
func (l *liveState) prune(k string, now time.Time) map[string]time.Time {
	m := l.scopes[k]
	maps.DeleteFunc(m, func(_ string, exp time.Time) bool { return !now.Before(exp) })
	if len(m) == 0 {
		delete(l.scopes, k)
		return nil
	}
	return m
}

func (l *liveState) sweep(now time.Time) {
	for k := range l.scopes {
		l.prune(k, now)
	}
}

func checkLive(keys []string, member string, expires time.Time, caps []int, now time.Time) error {
	switch {
	case len(keys) != len(caps):
		return errors.New("memory: Admit: keys and caps differ in length")
	case member == "":
		return errors.New("memory: Admit: empty member")
	case !expires.After(now):
		return errors.New("memory: Admit: expiry is not after now: every member needs a lifetime")
	}
	return nil
}

// Admit implements storage.LiveCounter: every scope is checked, and only
// then is the member added to all, under the store's one mutex.
func (s *Store) Admit(_ context.Context, keys []string, member string, expires time.Time, caps []int, now time.Time) (storage.Admission, error) {
	if err := checkLive(keys, member, expires, caps, now); err != nil {
		return storage.Admission{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, k := range keys {
		if caps[i] <= 0 {
			continue
		}
		m := s.lives.prune(k, now)
		if _, held := m[member]; held || len(m) < caps[i] {
			continue
		}
		var oldest time.Time
		for _, exp := range m {
			if oldest.IsZero() || exp.Before(oldest) {
				oldest = exp
			}
		}
		return storage.Admission{Full: i, RetryAfter: storage.LiveRetryAfter(oldest, now)}, nil
	}
	if s.lives.scopes == nil {
		s.lives.scopes = map[string]map[string]time.Time{}
	}
	for i, k := range keys {
		if caps[i] <= 0 {
			continue
		}
		m := s.lives.scopes[k]
		if m == nil {
			m = map[string]time.Time{}
			s.lives.scopes[k] = m
		}
		m[member] = expires
	}
	return storage.Admission{Admitted: true}, nil
}

// Release implements storage.LiveCounter.
func (s *Store) Release(_ context.Context, keys []string, member string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if m := s.lives.scopes[k]; m != nil {
			delete(m, member)
			if len(m) == 0 {
				delete(s.lives.scopes, k)
			}
		}
	}
	return nil
}

// LiveScopes returns how many scopes hold members and how many members
// they hold in all, expired ones included until the janitor runs (tests,
// sizing).
func (s *Store) LiveScopes() (scopes, members int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.lives.scopes {
		members += len(m)
	}
	return len(s.lives.scopes), members
}
