package memory

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/fedas/fedas/storage"
)

var _ storage.RateLimiter = (*Store)(nil)

// rateEntry is one key's GCRA state: its theoretical arrival time in the
// caller's clock (Unix microseconds), and when the entry may go by the
// store's clock (once the TAT has passed, the key is as good as fresh).
type rateEntry struct {
	tat int64
	exp time.Time
}

// rateState holds every rate-limit key; the zero value is empty. The
// store's mutex guards it.
type rateState struct {
	m map[string]rateEntry
}

// sweep deletes the entries whose window has passed, so that memory is
// bounded by the keys seen within the longest window.
func (r *rateState) sweep(now time.Time) {
	maps.DeleteFunc(r.m, func(_ string, e rateEntry) bool { return !now.Before(e.exp) })
}

// Allow implements storage.RateLimiter: one GCRA step (storage.GCRA)
// under the store's mutex, so that concurrent requests on a key are
// decided one at a time.
func (s *Store) Allow(_ context.Context, key string, l storage.Limit, now time.Time) (storage.Decision, error) {
	if err := checkRate(key, l); err != nil {
		return storage.Decision{}, fmt.Errorf("memory: Allow: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.allowLocked(key, l, now), nil
}

// AllowEach implements storage.RateLimiter: the whole sequence under one
// hold of the store's mutex, so it is one atomic step.
func (s *Store) AllowEach(_ context.Context, checks []storage.RateCheck, now time.Time) (int, storage.Decision, error) {
	for _, c := range checks {
		if err := checkRate(c.Key, c.Limit); err != nil {
			return -1, storage.Decision{}, fmt.Errorf("memory: AllowEach: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var d storage.Decision
	for i, c := range checks {
		if d = s.allowLocked(c.Key, c.Limit, now); !d.Allowed {
			return i, d, nil
		}
	}
	return -1, d, nil
}

func checkRate(key string, l storage.Limit) error {
	if err := l.Validate(); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("empty key")
	}
	return nil
}

// allowLocked is one GCRA step on key; the caller holds s.mu.
func (s *Store) allowLocked(key string, l storage.Limit, now time.Time) storage.Decision {
	clock := s.now()
	nowUS := now.UnixMicro()
	e, ok := s.rates.m[key]
	if !ok || !clock.Before(e.exp) {
		e = rateEntry{}
	}
	d, tat := storage.GCRA(e.tat, l, nowUS)
	if !d.Allowed {
		return d
	}
	if s.rates.m == nil {
		s.rates.m = map[string]rateEntry{}
	}
	// The entry lives as long as its TAT lies ahead of now, measured on
	// the store's clock (as Redis measures a PX TTL on its own).
	s.rates.m[key] = rateEntry{tat: tat, exp: clock.Add(time.Duration(tat-nowUS) * time.Microsecond)}
	return d
}
