package reach

import "errors"

// Sentinels of the reach core. They carry no personal data; callers map
// them to RFC 6749 §5.2 error bodies (docs/reach.md, Q24).
var (
	// ErrNotFound: no such device, task, inbox or ref (unknown, deleted or
	// expired).
	ErrNotFound = errors.New("reach: not found")
	// ErrState: the transition is not allowed from the task's current
	// state (§4.4), or the task expired.
	ErrState = errors.New("reach: transition not allowed in this state")
	// ErrQuota: a per-user bound was hit (at most MaxDevicesPerUser
	// devices, §4.1); front ends answer 424 interaction_unavailable or a
	// registration error, never an oracle.
	ErrQuota = errors.New("reach: quota exceeded")
	// ErrBinding: a wrong number-matching pick (§4.3 (a)); after MaxPicks
	// wrong picks the task is FAILED.
	ErrBinding = errors.New("reach: wrong binding choice")
	// ErrNoChannel: no channel can reach the user now (§4.2); front ends
	// answer 424 interaction_unavailable (AAuth) or unreachable_user (UQ).
	ErrNoChannel = errors.New("reach: no channel can reach the user")
	// ErrInvalid: a device or task fails validation (invalid_request).
	ErrInvalid = errors.New("reach: invalid")
)
