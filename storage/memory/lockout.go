package memory

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/fedas/fedas/storage"
)

var _ storage.FailureCounter = (*Store)(nil)

// MaxFailureCounters bounds the lockout's failure counters in memory
// (docs/security.md "Account lockout"). Each failed password check makes
// at most two (the account's and the account and address's), and each
// check costs a bcrypt comparison behind the password gate, so filling
// the table takes hours of a flood; when it is full, expired counters go
// first, then arbitrary ones, a sixteenth of the table at a time (the
// memory backend serves one instance; Redis has no such bound).
const MaxFailureCounters = 1 << 18

// failureState holds the lockout counters; its zero value is empty.
// Guarded by Store.mu.
type failureState struct {
	m map[string]failureEntry
	// max overrides MaxFailureCounters (tests).
	max int
}

type failureEntry struct {
	st  storage.FailureState
	exp time.Time
}

func failureKey(group, name string) string { return group + "\x00" + name }

func checkFailureArgs(group string, names []string) error {
	if group == "" || len(names) == 0 {
		return errors.New("memory: failure counters need a group and at least one name")
	}
	for _, n := range names {
		if n == "" {
			return errors.New("memory: empty failure counter name")
		}
	}
	return nil
}

// Failures implements storage.FailureCounter.
func (s *Store) Failures(_ context.Context, group string, names []string) ([]storage.FailureState, error) {
	if err := checkFailureArgs(group, names); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	out := make([]storage.FailureState, len(names))
	for i, n := range names {
		if e, ok := s.failures.m[failureKey(group, n)]; ok && now.Before(e.exp) {
			out[i] = e.st
		}
	}
	return out, nil
}

// RecordFailure implements storage.FailureCounter: one step under the
// store's mutex.
func (s *Store) RecordFailure(_ context.Context, group string, names []string, window time.Duration, now time.Time) ([]storage.FailureState, error) {
	if err := checkFailureArgs(group, names); err != nil {
		return nil, err
	}
	if err := checkTTL(window); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures.m == nil {
		s.failures.m = map[string]failureEntry{}
	}
	clock := s.now()
	s.makeRoom(clock, len(names))
	out := make([]storage.FailureState, len(names))
	for i, n := range names {
		k := failureKey(group, n)
		e, ok := s.failures.m[k]
		if !ok || !clock.Before(e.exp) {
			e = failureEntry{}
		}
		out[i] = e.st
		e.st.Count++
		if now.After(e.st.Last) {
			e.st.Last = now
		}
		e.exp = clock.Add(window)
		s.failures.m[k] = e
	}
	return out, nil
}

// makeRoom keeps the counters within their bound before n more are
// added. A full table sheds a sixteenth at once, so that a flood pays
// for the scan once per many inserts, not on each. The caller holds s.mu.
func (s *Store) makeRoom(now time.Time, n int) {
	limit := s.failures.max
	if limit <= 0 {
		limit = MaxFailureCounters
	}
	if len(s.failures.m)+n <= limit {
		return
	}
	maps.DeleteFunc(s.failures.m, func(_ string, e failureEntry) bool { return !now.Before(e.exp) })
	target := limit - limit/16 - n
	for k := range s.failures.m {
		if len(s.failures.m) <= target {
			return
		}
		delete(s.failures.m, k) // map order is random: no victim is chosen
	}
}

// ResetFailures implements storage.FailureCounter.
func (s *Store) ResetFailures(_ context.Context, group string, names []string) error {
	if err := checkFailureArgs(group, names); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		delete(s.failures.m, failureKey(group, n))
	}
	return nil
}

// sweepFailures deletes expired counters. The caller holds s.mu.
func (s *Store) sweepFailures(now time.Time) {
	maps.DeleteFunc(s.failures.m, func(_ string, e failureEntry) bool { return !now.Before(e.exp) })
}
