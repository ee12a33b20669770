package storage

import (
	"context"
	"time"
)

// FailureState is one failure counter of the account lockout
// (docs/security.md "Account lockout"): how many failed credential checks
// its key saw since the counter was last reset or expired, and when the
// last one was. The zero value is a counter that never failed.
type FailureState struct {
	Count int
	Last  time.Time
}

// FailureCounter is the storage capability behind the account lockout
// (docs/security.md "Account lockout"; docs/decisions.md Q29): failure
// counters per key, shared by every instance on the store.
//
// Counters come in groups: every counter one call names belongs to group,
// so that the call is one atomic step on one Redis Cluster slot (the
// group is the hash tag). The caller makes group and names from digests
// (never a username or a client address) in the key alphabet of the
// backends, ^[A-Za-z0-9._~:+/=-]{1,512}$.
//
// Every counter has a lifetime: it expires window after its last
// failure (RecordFailure), so what an attacker sprays stays bounded.
type FailureCounter interface {
	// Failures reads the named counters of group, in order; a missing or
	// expired counter is the zero FailureState.
	Failures(ctx context.Context, group string, names []string) ([]FailureState, error)
	// RecordFailure adds one failure at now to every named counter of
	// group, all in one atomic step, and returns each counter as it was
	// just before: a caller that read the counters earlier learns whether
	// another request recorded a failure in between (and so whether it
	// lost a race for the last free attempt). A counter's Last never moves
	// backwards. Each counter then expires window after now; window must
	// be positive.
	RecordFailure(ctx context.Context, group string, names []string, window time.Duration, now time.Time) ([]FailureState, error)
	// ResetFailures deletes the named counters of group (a successful
	// sign-in); deleting a missing counter is not an error.
	ResetFailures(ctx context.Context, group string, names []string) error
}
