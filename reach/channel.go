package reach

import (
	"context"
	"errors"
)

// ErrUnavailable is what a Channel answers when it cannot reach this
// device now (docs/reach.md): the inbox without live presence, a
// device without a webhook, a push adapter switched off. It is not a
// failure: the Reacher quietly tries the device's next channel.
var ErrUnavailable = errors.New("reach: channel not available for this device now")

// TaskRef is all a channel learns of a task (§4.1 "content-free
// wake-ups"): its id and kind, never the user, the client, the question
// or the binding. The app fetches the task itself, with DPoP.
type TaskRef struct {
	ID   string `json:"task"`
	Kind Kind   `json:"kind"`
}

// TaskRef returns what a channel may learn of t.
func (t Task) TaskRef() TaskRef { return TaskRef{ID: t.ID, Kind: t.Kind} }

// Channel is one way of reaching a device (§4.2). Kind names the
// ChannelType it serves. Deliver returns nil once the device was told
// (the wake-up stored or accepted by the receiver), ErrUnavailable when
// this channel cannot serve the device now, or another error when it
// tried and failed (then the next channel is tried too).
type Channel interface {
	Kind() string
	Deliver(ctx context.Context, d Device, t TaskRef) error
}

// InboxTopic is the wake topic (package reach/wake) of a device's inbox:
// the inbox channel notifies it after an append, the inbox long poll and
// SSE wait on it. One place, so both sides agree. It carries only the
// device id (a random NewID), never personal data.
func InboxTopic(deviceID string) string { return "inbox:" + deviceID }

// TaskTopic is the wake topic of a task: every stored transition a
// poller waits for notifies it (server/reach.go taskEnded, the app's
// ack), and the front ends' long polls wait on it. It carries only the
// task id.
func TaskTopic(taskID string) string { return "task:" + taskID }
