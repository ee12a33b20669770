package policy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/storage"
)

// DefaultFollowInterval is how often a Follower checks the store's head
// besides being woken: pub/sub is at most once, so a missed wake-up is
// caught within this interval (docs/admin.md "Live on every instance").
const DefaultFollowInterval = 500 * time.Millisecond

// Follower keeps a Source serving the head of a policy store: every
// instance sharing the store runs one, and a committed version becomes
// this instance's snapshot within a second — one atomic Publish, so a
// request never sees half a change.
type Follower struct {
	Store  storage.PolicyStore
	Source *Source
	// Base is this instance's configuration; each version's policy
	// document replaces its policy part (config.Compose).
	Base  *config.Config
	Build BuildOptions
	Log   *zap.Logger
	// Interval between head checks (DefaultFollowInterval when zero).
	Interval time.Duration

	mu      sync.Mutex
	applied uint64
	failed  uint64
}

// Applied returns the store version this instance serves (0: none yet).
func (f *Follower) Applied() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

// Sync publishes the store's head if it is not the version being served.
// A version this instance cannot build (a key file missing here) keeps
// the current policy and is reported once per version.
func (f *Follower) Sync(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	log := f.Log
	if log == nil {
		log = zap.NewNop()
	}
	head, err := f.Store.PolicyHead(ctx)
	if err != nil {
		return err
	}
	if head == 0 || head == f.applied {
		return nil
	}
	pv, err := f.Store.PolicyVersion(ctx, head)
	if err != nil {
		return err
	}
	p, err := config.ParsePolicy(pv.Doc)
	var snap *Snapshot
	if err == nil {
		var cfg *config.Config
		if cfg, err = config.Compose(f.Base, p); err == nil {
			snap, err = Build(cfg, f.Build)
		}
	}
	if err != nil {
		if f.failed != head {
			f.failed = head
			for _, pr := range config.Problems(err) {
				log.Error("policy version cannot be applied on this instance: keeping the current policy",
					zap.Uint64("version", head), zap.String("problem", pr))
			}
		}
		return fmt.Errorf("policy version %d: %w", head, err)
	}
	snap.PolicyVersion = head
	old := f.Source.Current()
	f.Source.Publish(snap)
	f.applied = head
	changes := []string{"first policy"}
	if old != nil {
		changes = Diff(old, snap)
	}
	log.Info("policy version applied", zap.Uint64("version", head), zap.String("author", pv.Author),
		zap.String("origin", pv.Origin), zap.String("summary", pv.Summary), zap.Strings("changes", changes))
	return nil
}

// Run follows the store until ctx ends: it wakes on the store's
// notifications and checks the head every Interval regardless.
func (f *Follower) Run(ctx context.Context) {
	iv := f.Interval
	if iv <= 0 {
		iv = DefaultFollowInterval
	}
	log := f.Log
	if log == nil {
		log = zap.NewNop()
	}
	var wake <-chan uint64
	if ch, err := f.Store.WatchPolicy(ctx); err == nil {
		wake = ch
	} else {
		log.Warn("policy notifications unavailable: polling only", zap.Error(err))
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-wake:
			if !ok {
				wake = nil
				if ctx.Err() != nil {
					return
				}
			}
		case <-t.C:
		}
		err := f.Sync(ctx)
		switch {
		case err == nil:
			lastErr = ""
		case errors.Is(err, context.Canceled):
			return
		case err.Error() != lastErr:
			lastErr = err.Error()
			if errors.Is(err, storage.ErrUnavailable) {
				log.Warn("policy store unavailable: serving the current policy", zap.Error(err))
			}
		}
	}
}
