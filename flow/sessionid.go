package flow

// SessionID returns the session an auth_session value belongs to: the
// part of the value that stays the same across its rotations
// (docs/protocol.md "auth_session"), so that a per-session rate limit
// (package ratelimit) holds for the whole sign-in and not only for one
// single-use value. ok is false for a value of any other shape. It says
// nothing about whether the session exists or the value is current.
func SessionID(value string) (id string, ok bool) {
	h, ok := parseHandle(value)
	return h.id, ok
}
