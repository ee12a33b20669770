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

// TestAdvanceTo: AdvanceTo never moves the clock back, and the clock is
// never behind real time; Offset says how far ahead it runs.
func TestAdvanceTo(t *testing.T) {
	var c Clock
	if c.Now().Before(time.Now().Add(-time.Millisecond)) || c.Offset() != 0 {
		t.Fatal("the zero clock is not real time")
	}
	target := time.Now().Add(time.Hour)
	c.AdvanceTo(target)
	if c.Now().Before(target) {
		t.Fatalf("Now %v before the target %v", c.Now(), target)
	}
	c.AdvanceTo(time.Now().Add(time.Minute))
	if c.Now().Before(target) {
		t.Fatal("AdvanceTo moved the clock back")
	}
	if off := c.Offset(); off < 59*time.Minute || off > time.Hour {
		t.Fatalf("Offset = %v, want about an hour", off)
	}
}
