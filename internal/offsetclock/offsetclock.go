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
