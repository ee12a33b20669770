// Package offsetclock is a clock that runs with real time plus an offset
// that Advance grows: what tests (servertest.Clock) and `fedas demo
// wallet` use to let polling intervals and lifetimes pass without waiting.
package offsetclock

import (
	"sync"
	"time"
)

// Clock is real time plus an offset; the zero value is real time. Safe
// for concurrent use.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now is the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// AdvanceTo moves the clock forward so that it reads at least t; it never
// moves back (fedasbench's wallet devices each move it to their own
// poll time, concurrently).
func (c *Clock) AdvanceTo(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := time.Until(t); d > c.offset {
		c.offset = d
	}
}

// Offset is how far the clock runs ahead of real time.
func (c *Clock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}
