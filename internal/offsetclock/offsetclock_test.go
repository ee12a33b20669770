package offsetclock

import (
	"testing"
	"time"
)

// TestAdvance: Advance moves Now forward by exactly its duration (against
// real time, which only grows).
func TestAdvance(t *testing.T) {
	var c Clock
	before := time.Now()
	c.Advance(time.Hour)
	if got := c.Now(); got.Before(before.Add(time.Hour)) || got.After(time.Now().Add(time.Hour+time.Second)) {
		t.Fatalf("Now after Advance(1h) = %v, want about %v", got, before.Add(time.Hour))
	}
}
