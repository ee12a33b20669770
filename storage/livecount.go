package storage

import (
	"context"
	"time"
)

// Admission is the answer of LiveCounter.Admit.
type Admission struct {
	// Admitted: the member now holds a slot in every scope.
	Admitted bool
	// Full is, when not admitted, the index in keys of the first scope
	// that is at its cap.
	Full int
	// RetryAfter is, when not admitted, how long until the oldest member
	// of a full scope expires and frees a slot: the wait a client is told
	// (Retry-After, docs/decisions.md Q28). Never below one second.
	RetryAfter time.Duration
}

// LiveCounter bounds how many live things (auth sessions) a scope — a
// client, a client address — holds at once (docs/security.md "Caps"). A
// scope is a set of members, each with its own expiry; an expired member
// no longer counts, so a slot whose Release was lost frees itself when
// the member would have expired.
//
// Keys and members are digests or random values the caller made, never
// raw client input (docs/redis.md "Live-session caps"); on Redis they
// must match the backend's key alphabet.
type LiveCounter interface {
	// Admit adds member, expiring at expires, to the scope of every key
	// whose caps entry (same index) is positive, if and only if none of
	// those scopes holds caps[i] unexpired members already; then it
	// returns Admitted. Otherwise it adds nothing anywhere and reports
	// the first full scope and the wait. Members expired at now are
	// dropped first. Re-admitting a member a scope already holds does not
	// count it twice (a retried call is idempotent). now is the caller's
	// clock; expires must be after it. Each scope's cap holds exactly
	// under concurrency: of N concurrent admissions to a scope with k
	// free slots, at most k succeed.
	Admit(ctx context.Context, keys []string, member string, expires time.Time, caps []int, now time.Time) (Admission, error)
	// Release removes member from every key's scope (best effort: a
	// failed release is freed by expiry).
	Release(ctx context.Context, keys []string, member string) error
}

// LiveRetryAfter is the wait until oldest expires, at least one second
// (docs/decisions.md Q28: Retry-After is whole seconds, never zero). Both
// backends use it.
func LiveRetryAfter(oldest, now time.Time) time.Duration {
	d := oldest.Sub(now)
	if d < time.Second {
		d = time.Second
	}
	return d
}
