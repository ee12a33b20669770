package events

import (
	"context"
	"sync/atomic"
)

// Availability turns per-command storage results into transitions: the
// first failure after a success emits storage.lost, the first success
// after a failure storage.recovered — once each per outage, however many
// requests fail meanwhile. It starts as available (the store answered
// when it was opened).
type Availability struct {
	e    *Emitter
	down atomic.Bool
}

// NewAvailability returns a tracker emitting through e.
func NewAvailability(e *Emitter) *Availability { return &Availability{e: e} }

// Lost records a failure that says storage is unreachable; reason is a
// short fixed word (timeout, network, …), never the driver's message.
func (a *Availability) Lost(ctx context.Context, reason string) {
	if a != nil && a.down.CompareAndSwap(false, true) {
		a.e.Emit(ctx, Event{Name: StorageLost, Reason: reason})
	}
}

// OK records a command storage answered.
func (a *Availability) OK(ctx context.Context) {
	if a != nil && a.down.Load() && a.down.CompareAndSwap(true, false) {
		a.e.Emit(ctx, Event{Name: StorageRecovered})
	}
}

// Down reports whether storage is currently considered lost.
func (a *Availability) Down() bool { return a != nil && a.down.Load() }
