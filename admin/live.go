package admin

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/storage"
)

// LiveOptions wire one instance to the policy store.
type LiveOptions struct {
	Store storage.PolicyStore
	// Base is the instance's configuration; File is the config file's
	// policy, which bootstraps an empty store.
	Base  *config.Config
	File  config.Policy
	Build policy.BuildOptions
	Log   *zap.Logger
	// Interval between head checks (policy.DefaultFollowInterval).
	Interval time.Duration
	Now      func() time.Time
}

// StartLive bootstraps the store from the config file when it is empty,
// publishes its head, and follows it until ctx ends (docs/admin.md "Live
// on every instance"). The head must apply here: an instance that cannot
// build it does not start rather than serve a policy the others do not.
func StartLive(ctx context.Context, o LiveOptions) (*policy.Source, *policy.Follower, error) {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	head, created, err := Bootstrap(ctx, o.Store, o.File, o.Base.Admin.Retention, o.Now())
	if err != nil {
		return nil, nil, fmt.Errorf("policy store: %w", err)
	}
	if created {
		o.Log.Info("policy store was empty: bootstrapped from the config file", zap.Uint64("version", head))
	} else {
		o.Log.Info("policy from the store (the config file's policy is not used: the store is the source of truth)", zap.Uint64("version", head))
	}
	src := &policy.Source{}
	f := &policy.Follower{Store: o.Store, Source: src, Base: o.Base, Build: o.Build, Log: o.Log.Named("policy"), Interval: o.Interval}
	if err := f.Sync(ctx); err != nil {
		return nil, nil, err
	}
	go f.Run(ctx)
	return src, f, nil
}
