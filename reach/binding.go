package reach

import (
	"crypto/rand"
	"fmt"
	"math/big"
)

// Number matching (docs/reach.md (a), Q27; RFC 10027 consent-phishing
// and push-bombing defences): the initiating device shows one number,
// the app offers BindingChoices numbers and the user must pick the one
// shown. A blind approval succeeds with probability 1/BindingChoices per
// pick and the task fails after MaxPicks wrong picks.
const (
	BindingChoices = 3
	MaxPicks       = 3
)

// Binding is a task's number-matching challenge: Choices (distinct
// two-digit numbers, in the order the app shows them) and Right, the one
// the initiating device shows.
type Binding struct {
	Choices []int `json:"c,omitempty"`
	Right   int   `json:"r,omitempty"`
}

// IsZero reports whether the task has no binding (UQ questions and
// interactions need none).
func (b Binding) IsZero() bool { return len(b.Choices) == 0 && b.Right == 0 }

func (b Binding) validate() error {
	if len(b.Choices) != BindingChoices {
		return ErrInvalid
	}
	right := false
	for i, c := range b.Choices {
		if c < 10 || c > 99 {
			return ErrInvalid
		}
		for _, o := range b.Choices[:i] {
			if o == c {
				return ErrInvalid
			}
		}
		right = right || c == b.Right
	}
	if !right {
		return ErrInvalid
	}
	return nil
}

// NewBinding draws BindingChoices distinct numbers in 10..99 and the
// right one among them, all from crypto/rand.
func NewBinding() (Binding, error) {
	var b Binding
	for len(b.Choices) < BindingChoices {
		n, err := rand.Int(rand.Reader, big.NewInt(90))
		if err != nil {
			return Binding{}, fmt.Errorf("reach: binding: %w", err)
		}
		c := int(n.Int64()) + 10
		dup := false
		for _, o := range b.Choices {
			dup = dup || o == c
		}
		if !dup {
			b.Choices = append(b.Choices, c)
		}
	}
	i, err := rand.Int(rand.Reader, big.NewInt(BindingChoices))
	if err != nil {
		return Binding{}, fmt.Errorf("reach: binding: %w", err)
	}
	b.Right = b.Choices[i.Int64()]
	return b, nil
}

// Pick applies the user's number-matching choice to a SEEN task. The
// right number returns nil and changes nothing (the caller then records
// the approval). A wrong one counts an attempt and returns ErrBinding;
// the MaxPicks-th wrong one also moves the task to FAILED (Next with
// EventFail). Not SEEN, or no binding: ErrState, nothing changed. Pick
// is meant to run inside a storage compare-and-swap (the mutate of
// storage.ReachStore.TransitionTask), so the count cannot be raced.
func (t *Task) Pick(choice int) error {
	if t.State != StateSeen || t.Binding.IsZero() {
		return fmt.Errorf("%w: pick on %s", ErrState, t.State)
	}
	if choice == t.Binding.Right {
		return nil
	}
	ev := EventWrongPick
	if t.Attempts+1 >= MaxPicks {
		ev = EventFail
	}
	to, err := Next(t.State, ev)
	if err != nil {
		return err
	}
	t.Attempts++
	t.State = to
	return ErrBinding
}
