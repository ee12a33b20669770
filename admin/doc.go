// Package admin is fedas's admin surface: a REST API and a web console on
// a listener of their own (never the public one) through which admins
// edit the live policy — downstreams, routes, the prompt, clients and
// apps — while every instance keeps serving (docs/admin.md).
//
// The policy lives in a storage.PolicyStore as versioned documents in the
// config file's format. Every write is one commit: the whole new document
// is validated by config.Compose (the config file's own Validate) and
// stored as the next version together with its audit entry, or rejected
// whole with every problem listed. Instances follow the store's head
// (policy.Follower) and publish each version as one immutable snapshot, so
// a request never sees half a change.
package admin
