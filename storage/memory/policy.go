package memory

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/fedas/fedas/storage"
)

var _ storage.PolicyStore = (*Store)(nil)

// policyState is the versioned live policy. Versions are kept by count
// (the keep of the latest commit), not by TTL: they are configuration,
// not sessions, and an instance must be able to read its policy however
// long ago it was committed. Its zero value is an empty store.
type policyState struct {
	head     uint64
	versions []storage.PolicyVersion // retained, oldest first, contiguous
	audit    []storage.AuditEntry    // retained, oldest first
	watchers map[chan uint64]struct{}
}

// PolicyHead implements storage.PolicyStore.
func (s *Store) PolicyHead(context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.policy.head, nil
}

// PolicyVersion implements storage.PolicyStore.
func (s *Store) PolicyVersion(_ context.Context, version uint64) (storage.PolicyVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := slices.BinarySearchFunc(s.policy.versions, version, func(v storage.PolicyVersion, n uint64) int {
		return cmp.Compare(v.Version, n)
	})
	if !ok {
		return storage.PolicyVersion{}, storage.ErrNotFound
	}
	return clonePolicyVersion(s.policy.versions[i]), nil
}

// CommitPolicy implements storage.PolicyStore.
func (s *Store) CommitPolicy(_ context.Context, v storage.PolicyVersion, a storage.AuditEntry, keep int) error {
	if err := checkCommit(v, keep); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &s.policy
	if p.head == v.Version && len(p.versions) > 0 && samePolicyVersion(p.versions[len(p.versions)-1], v) {
		return nil // idempotent: this very commit already applied
	}
	if p.head != v.Parent {
		return storage.ErrConflict
	}
	a.Version = v.Version
	p.head = v.Version
	p.versions = append(p.versions, clonePolicyVersion(v))
	p.audit = append(p.audit, a) // AuditEntry holds no slices or maps
	// Trim by version number, as the Redis backend does: everything at or
	// below cutoff goes. slices.Delete zeroes the vacated tail, so the
	// trimmed documents do not stay reachable through the backing array.
	if v.Version > uint64(keep) {
		cutoff := v.Version - uint64(keep)
		n := 0
		for n < len(p.versions) && p.versions[n].Version <= cutoff {
			n++
		}
		p.versions = slices.Delete(p.versions, 0, n)
		n = 0
		for n < len(p.audit) && p.audit[n].Version <= cutoff {
			n++
		}
		p.audit = slices.Delete(p.audit, 0, n)
	}
	for ch := range p.watchers {
		offer(ch, p.head)
	}
	return nil
}

// PolicyHistory implements storage.PolicyStore.
func (s *Store) PolicyHistory(_ context.Context, before uint64, limit int) ([]storage.PolicyVersion, error) {
	if limit < 1 {
		return nil, fmt.Errorf("memory: PolicyHistory: limit %d is not positive", limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []storage.PolicyVersion{}
	for i := len(s.policy.versions) - 1; i >= 0 && len(out) < limit; i-- {
		v := s.policy.versions[i]
		if before != 0 && v.Version >= before {
			continue
		}
		v.Doc = nil // history lists versions; the documents can be large
		out = append(out, v)
	}
	return out, nil
}

// PolicyAudit implements storage.PolicyStore.
func (s *Store) PolicyAudit(_ context.Context, before uint64, limit int) ([]storage.AuditEntry, error) {
	if limit < 1 {
		return nil, fmt.Errorf("memory: PolicyAudit: limit %d is not positive", limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []storage.AuditEntry{}
	for i := len(s.policy.audit) - 1; i >= 0 && len(out) < limit; i-- {
		if a := s.policy.audit[i]; before == 0 || a.Version < before {
			out = append(out, a)
		}
	}
	return out, nil
}

// WatchPolicy implements storage.PolicyStore. Each watcher has its own
// one-slot channel that CommitPolicy fills without blocking, under the
// store's mutex; the channel is closed under the same mutex once ctx
// ends, so a commit can never send on a closed channel.
func (s *Store) WatchPolicy(ctx context.Context) (<-chan uint64, error) {
	ch := make(chan uint64, 1)
	s.mu.Lock()
	if s.policy.watchers == nil {
		s.policy.watchers = map[chan uint64]struct{}{}
	}
	s.policy.watchers[ch] = struct{}{}
	s.mu.Unlock()
	go func() {
		<-ctx.Done()
		s.mu.Lock()
		delete(s.policy.watchers, ch)
		close(ch)
		s.mu.Unlock()
	}()
	return ch, nil
}

// offer puts v into a one-slot wake-up channel without blocking. A value
// still waiting there is older, so it is replaced: a slow watcher then
// reads the newest head rather than a stale one. Only the caller sends
// on ch (under the store's mutex), so the second send cannot find the
// slot filled.
func offer(ch chan uint64, v uint64) {
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

func checkCommit(v storage.PolicyVersion, keep int) error {
	if v.Version == 0 || v.Version != v.Parent+1 {
		return fmt.Errorf("memory: CommitPolicy: version %d does not follow parent %d", v.Version, v.Parent)
	}
	if keep < 1 {
		return errors.New("memory: CommitPolicy: keep must be at least 1: the head itself is retained")
	}
	return nil
}

// samePolicyVersion reports whether a stored version has v's content, so
// that a repeated commit counts as already applied.
func samePolicyVersion(stored, v storage.PolicyVersion) bool {
	return stored.Version == v.Version && stored.Parent == v.Parent &&
		bytes.Equal(stored.Doc, v.Doc) && stored.Author == v.Author &&
		stored.Origin == v.Origin && stored.Time.Equal(v.Time) && stored.Summary == v.Summary
}

func clonePolicyVersion(v storage.PolicyVersion) storage.PolicyVersion {
	v.Doc = bytes.Clone(v.Doc)
	return v
}
