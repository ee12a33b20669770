package reach_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/reach"
)

// TestNext: every (state, event) pair of §4.4, allowed or refused. The
// allowed list is written out here independently of the package's table,
// so a changed edge fails the test.
func TestNext(t *testing.T) {
	type edge struct {
		from reach.State
		ev   reach.Event
	}
	allowed := map[edge]reach.State{
		{reach.StateCreated, reach.EventDeliver}:     reach.StateDelivered,
		{reach.StateDelivered, reach.EventDeliver}:   reach.StateDelivered,
		{reach.StateCreated, reach.EventNoChannel}:   reach.StateUnavailable,
		{reach.StateCreated, reach.EventAck}:         reach.StateSeen,
		{reach.StateDelivered, reach.EventAck}:       reach.StateSeen,
		{reach.StateSeen, reach.EventApprove}:        reach.StateApproved,
		{reach.StateSeen, reach.EventDeny}:           reach.StateDenied,
		{reach.StateSeen, reach.EventAnswer}:         reach.StateAnswered,
		{reach.StateSeen, reach.EventWrongPick}:      reach.StateSeen,
		{reach.StateSeen, reach.EventFail}:           reach.StateFailed,
		{reach.StateCreated, reach.EventExpire}:      reach.StateExpired,
		{reach.StateDelivered, reach.EventExpire}:    reach.StateExpired,
		{reach.StateSeen, reach.EventExpire}:         reach.StateExpired,
		{reach.StateCreated, reach.EventSupersede}:   reach.StateSuperseded,
		{reach.StateDelivered, reach.EventSupersede}: reach.StateSuperseded,
		{reach.StateSeen, reach.EventSupersede}:      reach.StateSuperseded,
	}
	require.Len(t, reach.States, 10)
	require.Len(t, reach.Events, 10)
	n := 0
	for _, s := range reach.States {
		for _, e := range reach.Events {
			t.Run(string(s)+"/"+string(e), func(t *testing.T) {
				got, err := reach.Next(s, e)
				if want, ok := allowed[edge{s, e}]; ok {
					require.NoError(t, err)
					require.Equal(t, want, got)
					n++
					return
				}
				require.ErrorIs(t, err, reach.ErrState)
				require.Equal(t, s, got, "a refused event leaves the state")
				if !s.Live() {
					require.False(t, reach.Allowed(s, got), "terminal %s has no way out", s)
				}
			})
		}
	}
	require.Equal(t, len(allowed), n)
}

// TestAllowed: Allowed is exactly the set of (from, to) pairs some event
// of Next connects.
func TestAllowed(t *testing.T) {
	for _, from := range reach.States {
		for _, to := range reach.States {
			want := false
			for _, e := range reach.Events {
				if got, err := reach.Next(from, e); err == nil && got == to {
					want = true
				}
			}
			require.Equal(t, want, reach.Allowed(from, to), "%s → %s", from, to)
		}
	}
	require.True(t, reach.Allowed(reach.StateSeen, reach.StateFailed))
	require.False(t, reach.Allowed(reach.StateCreated, reach.StateApproved), "no approval unseen")
	require.False(t, reach.Allowed(reach.StateApproved, reach.StateDenied))
}

func validTask() reach.Task {
	return reach.Task{
		ID: reach.NewID(), Kind: reach.KindAppAuth, User: "u1", ClientID: "c1", State: reach.StateCreated,
		Ref: reach.NewID(), Binding: reach.Binding{Choices: []int{12, 34, 56}, Right: 34},
		ExpiresAt: time.Unix(1_900_000_000, 0),
	}
}

// TestTaskValidate: the valid task passes; each broken field fails with
// ErrInvalid.
func TestTaskValidate(t *testing.T) {
	require.NoError(t, validTask().Validate())
	q := validTask()
	q.Kind, q.Binding = reach.KindQuestion, reach.Binding{}
	require.NoError(t, q.Validate(), "a question needs no binding")
	tests := []struct {
		name string
		mut  func(*reach.Task)
	}{
		{"id", func(t *reach.Task) { t.ID = "short" }},
		{"kind", func(t *reach.Task) { t.Kind = "payment" }},
		{"user", func(t *reach.Task) { t.User = "" }},
		{"client", func(t *reach.Task) { t.ClientID = "" }},
		{"ref", func(t *reach.Task) { t.Ref = "x{y}" }},
		{"expiry", func(t *reach.Task) { t.ExpiresAt = time.Time{} }},
		{"state", func(t *reach.Task) { t.State = "PENDING" }},
		{"attempts", func(t *reach.Task) { t.Attempts = reach.MaxPicks + 1 }},
		{"result", func(t *reach.Task) { t.Result = make([]byte, reach.MaxResultLen+1) }},
		{"devices", func(t *reach.Task) { t.Devices = make([]string, reach.MaxTaskDevices+1) }},
		{"no binding for app_auth", func(t *reach.Task) { t.Binding = reach.Binding{} }},
		{"binding right not a choice", func(t *reach.Task) { t.Binding.Right = 99 }},
		{"binding duplicate", func(t *reach.Task) { t.Binding = reach.Binding{Choices: []int{12, 12, 56}, Right: 12} }},
		{"binding one digit", func(t *reach.Task) { t.Binding = reach.Binding{Choices: []int{1, 34, 56}, Right: 34} }},
		{"binding two choices", func(t *reach.Task) { t.Binding = reach.Binding{Choices: []int{12, 34}, Right: 34} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := validTask()
			tt.mut(&task)
			require.ErrorIs(t, task.Validate(), reach.ErrInvalid)
		})
	}
}

// TestEffective: a live task past its expiry reads EXPIRED; a terminal
// one keeps its state.
func TestEffective(t *testing.T) {
	task := validTask()
	before, after := task.ExpiresAt.Add(-time.Second), task.ExpiresAt
	require.Equal(t, reach.StateCreated, task.Effective(before))
	require.Equal(t, reach.StateExpired, task.Effective(after))
	task.State = reach.StateApproved
	require.Equal(t, reach.StateApproved, task.Effective(after))
}

// TestNewBinding: three distinct two-digit numbers, the right one among
// them, and every choice drawn over many bindings (not a fixed slot).
func TestNewBinding(t *testing.T) {
	slots := map[int]bool{}
	for range 300 {
		b, err := reach.NewBinding()
		require.NoError(t, err)
		task := validTask()
		task.Binding = b
		require.NoError(t, task.Validate())
		for i, c := range b.Choices {
			if c == b.Right {
				slots[i] = true
			}
		}
	}
	require.Len(t, slots, reach.BindingChoices, "the right number appears in every position")
}

// TestPick: the right pick changes nothing; wrong picks count and the
// third fails the task; a pick outside SEEN or without a binding is
// ErrState and changes nothing.
func TestPick(t *testing.T) {
	seen := validTask()
	seen.State = reach.StateSeen
	tests := []struct {
		name     string
		picks    []int
		errs     []error
		state    reach.State
		attempts int
	}{
		{"right", []int{34}, []error{nil}, reach.StateSeen, 0},
		{"wrong then right", []int{12, 34}, []error{reach.ErrBinding, nil}, reach.StateSeen, 1},
		{"two wrong then right", []int{12, 56, 34}, []error{reach.ErrBinding, reach.ErrBinding, nil}, reach.StateSeen, 2},
		{"three wrong", []int{12, 56, 0}, []error{reach.ErrBinding, reach.ErrBinding, reach.ErrBinding}, reach.StateFailed, 3},
		{"after failure", []int{12, 56, 0, 34}, []error{reach.ErrBinding, reach.ErrBinding, reach.ErrBinding, reach.ErrState}, reach.StateFailed, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := seen
			for i, c := range tt.picks {
				err := task.Pick(c)
				if tt.errs[i] == nil {
					require.NoError(t, err)
				} else {
					require.ErrorIs(t, err, tt.errs[i])
				}
			}
			require.Equal(t, tt.state, task.State)
			require.Equal(t, tt.attempts, task.Attempts)
		})
	}
	for _, s := range reach.States {
		if s == reach.StateSeen {
			continue
		}
		task := validTask()
		task.State = s
		require.ErrorIs(t, task.Pick(34), reach.ErrState, s)
		require.Equal(t, s, task.State)
	}
	none := seen
	none.Binding = reach.Binding{}
	require.True(t, errors.Is(none.Pick(0), reach.ErrState))
	require.Zero(t, none.Attempts)
}
