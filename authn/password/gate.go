package password

import (
	"context"
	"runtime"
	"time"

	"github.com/fedas/fedas/flow"
)

// DefaultQueueTimeout is how long a password check waits for a slot by
// default (config limits.password_queue_timeout).
const DefaultQueueTimeout = time.Second

// gate bounds the CPU that password checks take (docs/security.md
// "Account lockout"): a bcrypt comparison at cost 10 is ~90 ms of a
// core, so a flood of wrong passwords would otherwise starve every other
// request. At most cap(slots) comparisons run at once; a check waits up
// to wait for a slot and then fails with flow.ErrOverloaded (503
// temporarily_unavailable, the session unchanged). Token, metadata and
// federation requests never pass through it.
type gate struct {
	slots chan struct{}
	wait  time.Duration
}

// DefaultSlots is the gate's size without configuration: half the CPUs
// (at least one), so that however many wrong passwords arrive, bcrypt
// takes at most half the machine and token, federation and metadata
// traffic keep the rest.
func DefaultSlots() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// newGate makes a gate of n slots (0: DefaultSlots) and a queue wait of
// wait (0: DefaultQueueTimeout).
func newGate(n int, wait time.Duration) *gate {
	if n <= 0 {
		n = DefaultSlots()
	}
	if wait <= 0 {
		wait = DefaultQueueTimeout
	}
	return &gate{slots: make(chan struct{}, n), wait: wait}
}

// acquire takes a slot; the caller runs release when its comparison is
// done.
func (g *gate) acquire(ctx context.Context) (release func(), err error) {
	release = func() { <-g.slots }
	select {
	case g.slots <- struct{}{}:
		return release, nil
	default:
	}
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return release, nil
	case <-t.C:
		return nil, flow.ErrOverloaded
	case <-ctx.Done():
		// The request's deadline passed or its client left: nothing was
		// checked, and the answer is the same as for a full queue.
		return nil, flow.ErrOverloaded
	}
}
