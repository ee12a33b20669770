package storage

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fedas/fedas/reach"
)

// Bounds of the reach storage (docs/reach.md).
const (
	// InboxMaxLen is the inbox stream's length bound (Redis XADD MAXLEN
	// ~, so a Redis inbox may hold up to about twice as many; the memory
	// backend keeps exactly this many). Older entries are dropped.
	InboxMaxLen = 100
	// InboxTTL is how long an inbox outlives its last append.
	InboxTTL = 24 * time.Hour
	// PresenceTTL is how long a device counts as present after its last
	// long poll or SSE heartbeat (§4.2: the inbox channel is available iff
	// the presence key is alive).
	PresenceTTL = 45 * time.Second
	// MaxInboxEntry caps one inbox entry (content-free wake-ups and task
	// summaries are small).
	MaxInboxEntry = 4096
	// MaxInboxRead caps one ReadInbox.
	MaxInboxRead = 100
)

// ErrReachNotFound is what a ReachStore answers for an unknown, deleted
// or expired device, task, inbox or ref: it matches both ErrNotFound and
// reach.ErrNotFound (errors.Is).
var ErrReachNotFound = fmt.Errorf("%w (%w)", ErrNotFound, reach.ErrNotFound)

// InboxEntry is one entry of a device's inbox: ID is its stream id
// ("<ms>-<seq>", increasing), the cursor of ReadInbox and SSE's
// Last-Event-ID (§4.2).
type InboxEntry struct {
	ID   string
	Data []byte
}

// ReachStore persists the reach core (package reach; docs/reach.md,
// §4.2, §4.4, §4.6): devices keyed by their DPoP key thumbprint, each
// device's inbox and presence, and tasks with their single-use refs.
// Every record expires (docs/redis.md "Keys"). Errors: ErrReachNotFound,
// reach.ErrQuota, reach.ErrState, reach.ErrInvalid, ErrConflict,
// ErrUnavailable.
type ReachStore interface {
	// PutDevice registers d (validated with Device.Validate) and returns
	// the device as stored. Idempotent by JKT: a device already
	// registered under d.JKT for the same user keeps its ID and Created
	// and takes d's other fields; under another user it is ErrConflict
	// (the app signs out, deleting it, before another account registers
	// the key). A new device beyond reach.MaxDevicesPerUser live ones is
	// reach.ErrQuota. LastSeen (and Created, for a new device) are set to
	// the store's clock. The device lives ttl after its last Put or
	// Touch (the 90-day sliding idle expiry, reach.DeviceIdleTTL).
	PutDevice(ctx context.Context, d reach.Device, ttl time.Duration) (reach.Device, error)
	// Device returns the device with this id.
	Device(ctx context.Context, id string) (reach.Device, error)
	// DeviceByJKT returns the device registered under this thumbprint.
	DeviceByJKT(ctx context.Context, jkt string) (reach.Device, error)
	// UserDevices returns the user's live devices, oldest first (empty,
	// not an error, for a user without any).
	UserDevices(ctx context.Context, user string) ([]reach.Device, error)
	// TouchDevice sets LastSeen to now and restarts the idle expiry.
	TouchDevice(ctx context.Context, id string, ttl time.Duration) error
	// DeleteDevice removes the device, its JKT pointer, its place in the
	// user's quota, its inbox and presence. Deleting what is gone is not
	// an error.
	DeleteDevice(ctx context.Context, id string) error

	// AppendInbox appends data to a live device's inbox and returns the
	// entry's id; the inbox keeps about InboxMaxLen entries and expires
	// InboxTTL after the last append.
	AppendInbox(ctx context.Context, deviceID string, data []byte) (string, error)
	// ReadInbox returns up to max (≤ MaxInboxRead) entries after afterID
	// ("" = from the oldest kept), oldest first, without blocking (§4.2:
	// waiters never hold a blocking read on Redis).
	ReadInbox(ctx context.Context, deviceID, afterID string, max int) ([]InboxEntry, error)
	// SetPresence marks the device present for ttl (≈ PresenceTTL).
	SetPresence(ctx context.Context, deviceID string, ttl time.Duration) error
	// Present reports whether the device's presence is alive.
	Present(ctx context.Context, deviceID string) (bool, error)

	// CreateTask stores a new task (validated, State CREATED) and its
	// single-use ref, both until t.ExpiresAt + reach.TaskGrace; a task
	// living longer than reach.MaxTaskLifetime is reach.ErrInvalid. An id or
	// ref in use is ErrConflict; a retried create that applied is not.
	CreateTask(ctx context.Context, t reach.Task) error
	// Task returns the task as stored (its State as last written; see
	// reach.Task.Effective for the expiry).
	Task(ctx context.Context, id string) (reach.Task, error)
	// TransitionTask is the one compare-and-swap of a task (§4.4): if the
	// task's state is one of from, it runs mutate on a copy whose State
	// is already to, and writes it atomically — unless the state changed
	// meanwhile (then it re-reads and, if still in from, runs mutate
	// again). mutate may be nil (then the swap is one round trip) and may
	// change State again, Devices, Attempts and Result; the other fields
	// are kept. A state outside from, a (from, to) pair reach.Allowed
	// refuses, or a task past ExpiresAt moving anywhere but EXPIRED is
	// reach.ErrState and writes nothing; an error from mutate is returned
	// and writes nothing. Of concurrent callers moving a task out of a
	// state exactly one wins.
	TransitionTask(ctx context.Context, id string, from []reach.State, to reach.State, mutate func(*reach.Task) error) (reach.Task, error)
	// TakeRef returns the task id of a ref the first time only (single
	// use, §4.3 (a)); afterwards, or unknown, ErrReachNotFound.
	TakeRef(ctx context.Context, ref string) (string, error)
}

// PrepareTransition is the decision of ReachStore.TransitionTask that
// every backend shares (one place): given the task as read, it checks the
// arguments against the state machine (reach.Allowed), the current state
// against from and the expiry against now, runs mutate on a copy whose
// State is to, restores the fields a transition may not change (id,
// kind, user, client, ref, binding, expiry), and checks the result
// (reach.Allowed from the current state, Task.Validate).
func PrepareTransition(cur reach.Task, from []reach.State, to reach.State, mutate func(*reach.Task) error, now time.Time) (reach.Task, error) {
	if err := CheckTransition(from, to); err != nil {
		return reach.Task{}, err
	}
	if !containsState(from, cur.State) {
		return reach.Task{}, fmt.Errorf("%w: task is %s", reach.ErrState, cur.State)
	}
	if to != reach.StateExpired && !now.Before(cur.ExpiresAt) {
		return reach.Task{}, fmt.Errorf("%w: task expired", reach.ErrState)
	}
	next := CloneTask(cur)
	next.State = to
	if mutate != nil {
		if err := mutate(&next); err != nil {
			return reach.Task{}, err
		}
	}
	next.ID, next.Kind, next.User, next.ClientID, next.Ref = cur.ID, cur.Kind, cur.User, cur.ClientID, cur.Ref
	next.Binding, next.ExpiresAt = CloneTask(cur).Binding, cur.ExpiresAt
	if !reach.Allowed(cur.State, next.State) {
		return reach.Task{}, fmt.Errorf("%w: %s to %s", reach.ErrState, cur.State, next.State)
	}
	if err := next.Validate(); err != nil {
		return reach.Task{}, err
	}
	return next, nil
}

// CheckTransition refuses, before any I/O, a TransitionTask whose
// arguments name a move the state machine never makes.
func CheckTransition(from []reach.State, to reach.State) error {
	if len(from) == 0 {
		return fmt.Errorf("%w: no from state", reach.ErrState)
	}
	for _, f := range from {
		if !reach.Allowed(f, to) {
			return fmt.Errorf("%w: %s to %s", reach.ErrState, f, to)
		}
	}
	return nil
}

func containsState(ss []reach.State, s reach.State) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// CloneTask deep-copies a task, so that neither a caller nor mutate can
// change a stored one through shared slices.
func CloneTask(t reach.Task) reach.Task {
	t.Binding.Choices = append([]int(nil), t.Binding.Choices...)
	t.Devices = append([]string(nil), t.Devices...)
	t.Result = append([]byte(nil), t.Result...)
	if len(t.Binding.Choices) == 0 {
		t.Binding.Choices = nil
	}
	if len(t.Devices) == 0 {
		t.Devices = nil
	}
	if len(t.Result) == 0 {
		t.Result = nil
	}
	return t
}

// CloneDevice deep-copies a device.
func CloneDevice(d reach.Device) reach.Device {
	d.Capabilities = append([]reach.Capability(nil), d.Capabilities...)
	d.Channels = append([]reach.ChannelSpec(nil), d.Channels...)
	return d
}

// ParseInboxCursor reads an inbox cursor (ReadInbox's afterID, SSE's
// Last-Event-ID: outside input): "" is the start, else a stream id
// "<ms>-<seq>" of two decimal uint64s. Both backends parse it here, so a
// cursor Redis would reject never reaches it (a bad cursor is
// reach.ErrInvalid, a 400, never an outage).
func ParseInboxCursor(v string) (ms, seq uint64, err error) {
	if v == "" {
		return 0, 0, nil
	}
	bad := fmt.Errorf("storage: inbox cursor: %w", reach.ErrInvalid)
	a, b, ok := strings.Cut(v, "-")
	if !ok || len(a) == 0 || len(b) == 0 || len(a) > 20 || len(b) > 20 || !digits(a) || !digits(b) {
		return 0, 0, bad
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, bad
	}
	return ms, seq, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
