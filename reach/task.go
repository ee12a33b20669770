package reach

import (
	"fmt"
	"time"
)

// Kind is what a task asks of the user (§4.3): sign in on the other
// device (cross-device redirect_to_app), answer a User Questioning
// question, or complete an AAuth-shaped interaction.
type Kind string

// The task kinds; they double as device capabilities (§4.1).
const (
	KindAppAuth     Kind = "app_auth"
	KindQuestion    Kind = "question"
	KindInteraction Kind = "interaction"
)

func (k Kind) valid() bool {
	return k == KindAppAuth || k == KindQuestion || k == KindInteraction
}

// State is a task's state (§4.4).
type State string

// The task states of §4.4. CREATED, DELIVERED and SEEN are live; the
// others are terminal.
const (
	StateCreated     State = "CREATED"
	StateDelivered   State = "DELIVERED"
	StateSeen        State = "SEEN" // "interacting" on the wire
	StateApproved    State = "APPROVED"
	StateDenied      State = "DENIED"
	StateAnswered    State = "ANSWERED"
	StateUnavailable State = "UNAVAILABLE"
	StateExpired     State = "EXPIRED"
	StateSuperseded  State = "SUPERSEDED"
	StateFailed      State = "FAILED"
)

// States lists every state, live first.
var States = []State{StateCreated, StateDelivered, StateSeen, StateApproved, StateDenied,
	StateAnswered, StateUnavailable, StateExpired, StateSuperseded, StateFailed}

// Live reports whether s can still change.
func (s State) Live() bool { return s == StateCreated || s == StateDelivered || s == StateSeen }

// Event is what happens to a task (§4.4).
type Event string

// The events of §4.4.
const (
	// EventDeliver: a channel accepted the task (another device's
	// delivery keeps it DELIVERED).
	EventDeliver Event = "deliver"
	// EventNoChannel: no channel, or a quota, at creation → UNAVAILABLE
	// (424 interaction_unavailable / unreachable_user).
	EventNoChannel Event = "no_channel"
	// EventAck: the app opened the task. Allowed from CREATED too: the
	// QR deep link carries the same ref and may beat the delivery.
	EventAck Event = "ack"
	// EventApprove, EventDeny, EventAnswer: the user's response, only
	// once the task was seen.
	EventApprove Event = "approve"
	EventDeny    Event = "deny"
	EventAnswer  Event = "answer"
	// EventWrongPick: a wrong number-matching pick with picks left.
	EventWrongPick Event = "wrong_pick"
	// EventFail: the MaxPicks-th wrong pick → FAILED.
	EventFail Event = "fail"
	// EventExpire: the task's lifetime passed.
	EventExpire Event = "expire"
	// EventSupersede: the client cancelled, or a new task for the same
	// auth_session replaced this one.
	EventSupersede Event = "supersede"
)

// Events lists every event.
var Events = []Event{EventDeliver, EventNoChannel, EventAck, EventApprove, EventDeny,
	EventAnswer, EventWrongPick, EventFail, EventExpire, EventSupersede}

type edge struct {
	from State
	ev   Event
}

// machine is the whole of §4.4: every allowed (state, event) pair. Any
// pair missing is refused; terminal states have no edges.
var machine = map[edge]State{
	{StateCreated, EventDeliver}:     StateDelivered,
	{StateDelivered, EventDeliver}:   StateDelivered,
	{StateCreated, EventNoChannel}:   StateUnavailable,
	{StateCreated, EventAck}:         StateSeen,
	{StateDelivered, EventAck}:       StateSeen,
	{StateSeen, EventApprove}:        StateApproved,
	{StateSeen, EventDeny}:           StateDenied,
	{StateSeen, EventAnswer}:         StateAnswered,
	{StateSeen, EventWrongPick}:      StateSeen,
	{StateSeen, EventFail}:           StateFailed,
	{StateCreated, EventExpire}:      StateExpired,
	{StateDelivered, EventExpire}:    StateExpired,
	{StateSeen, EventExpire}:         StateExpired,
	{StateCreated, EventSupersede}:   StateSuperseded,
	{StateDelivered, EventSupersede}: StateSuperseded,
	{StateSeen, EventSupersede}:      StateSuperseded,
}

// Next is the task state machine of docs/reach.md, the one place it is
// decided: the state event e leads to from s, or ErrState.
func Next(s State, e Event) (State, error) {
	if to, ok := machine[edge{s, e}]; ok {
		return to, nil
	}
	return s, fmt.Errorf("%w: %s on %s", ErrState, e, s)
}

// Allowed reports whether some event leads from one state to another (a
// storage compare-and-swap checks its arguments with it, so no store can
// write a transition Next refuses).
func Allowed(from, to State) bool {
	for _, e := range Events {
		if got, err := Next(from, e); err == nil && got == to {
			return true
		}
	}
	return false
}

// TaskGrace is how long a task's record outlives ExpiresAt, so that a
// poll after the end still reads EXPIRED instead of not-found (§4.6
// "expires_in (+60 s)").
const TaskGrace = 60 * time.Second

// MaxTaskLifetime bounds a task's lifetime (ExpiresAt − creation): the
// longest front end, a UQ question, lives 10 min (§4.6); a store refuses
// a longer one, so every task key has a bounded TTL.
const MaxTaskLifetime = 10 * time.Minute

// MaxTaskDevices caps the devices a task was delivered to (at most every
// device of the user).
const MaxTaskDevices = MaxDevicesPerUser

// MaxResultLen caps a task's result (a UQ statement and amr, an approval
// with its amr): an opaque value the front end encodes.
const MaxResultLen = 16 << 10

// Task is one attempt to reach a user (§4.4). ID names it to the client,
// Ref is the single-use reference carried by the push and the QR deep
// link (§4.3 (a)); both are NewIDs. Result is opaque to the core.
type Task struct {
	ID        string    `json:"id"`
	Kind      Kind      `json:"kind"`
	User      string    `json:"user"`
	ClientID  string    `json:"client_id"`
	State     State     `json:"state"`
	Ref       string    `json:"ref"`
	Binding   Binding   `json:"binding,omitzero"`
	Devices   []string  `json:"devices,omitempty"`
	Attempts  int       `json:"attempts,omitempty"`
	Result    []byte    `json:"result,omitempty"`
	ExpiresAt time.Time `json:"exp"`
}

// Validate checks a task's shape; every refusal wraps ErrInvalid.
func (t Task) Validate() error {
	bad := func(f string) error { return fmt.Errorf("%w: task: %s", ErrInvalid, f) }
	switch {
	case !ValidID(t.ID):
		return bad("id")
	case !t.Kind.valid():
		return bad("kind")
	case t.User == "" || len(t.User) > 255:
		return bad("user")
	case t.ClientID == "" || len(t.ClientID) > 255:
		return bad("client_id")
	case !ValidID(t.Ref):
		return bad("ref")
	case t.ExpiresAt.IsZero():
		return bad("expiry")
	case len(t.Devices) > MaxTaskDevices:
		return bad("devices")
	case t.Attempts < 0 || t.Attempts > MaxPicks:
		return bad("attempts")
	case len(t.Result) > MaxResultLen:
		return bad("result")
	case !t.Binding.IsZero() && t.Binding.validate() != nil:
		return bad("binding")
	case t.Kind == KindAppAuth && t.Binding.IsZero():
		return bad("binding required for app_auth") // Q27: number matching
	}
	for _, s := range States {
		if s == t.State {
			return nil
		}
	}
	return bad("state")
}

// Effective is the task's state at now: a live task past ExpiresAt is
// EXPIRED even before anyone recorded it.
func (t Task) Effective(now time.Time) State {
	if t.State.Live() && !now.Before(t.ExpiresAt) {
		return StateExpired
	}
	return t.State
}
