package server

import (
	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/storage"
)

// liveCaps configures the engine's live-session caps (docs/security.md
// "Caps") from limits.max_live_sessions_per_ip and _per_client on the
// store's storage.LiveCounter, so that every instance sharing the store
// counts the same sessions. The scopes are named by digests keyed by a
// key derived from the shared secret: no client address reaches storage.
func liveCaps(o Options) flow.LiveCaps {
	counter, ok := o.Store.(storage.LiveCounter)
	if !ok {
		return flow.LiveCaps{}
	}
	l := o.Config.Limits
	return flow.LiveCaps{Counter: counter, PerIP: max(l.MaxLiveSessionsPerIP, 0), PerClient: max(l.MaxLiveSessionsPerClient, 0),
		Key: derivedKey(o.HMACSecret, "fedas/live-caps/v1")}
}
