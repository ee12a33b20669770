package deliver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/reach/wake"
	"github.com/fedas/fedas/reach/webhook"
	"github.com/fedas/fedas/storage"
)

// InboxEntry is the one thing the inbox channel writes to a device's
// inbox (docs/reach.md): the task's id and kind, nothing else — no
// user, client, question or binding (§4.1 "content-free"; the app reads
// the task through its DPoP-authenticated inbox API). It is
// reach.TaskRef's JSON: {"task": "<id>", "kind": "<kind>"}.
type InboxEntry = reach.TaskRef

// Inbox is the inbox channel (§4.2): the device's own long poll / SSE.
type Inbox struct {
	Store storage.ReachStore
	Hub   wake.Hub
}

var _ reach.Channel = (*Inbox)(nil)

// Kind implements reach.Channel.
func (c *Inbox) Kind() string { return string(reach.ChannelInbox) }

// Deliver implements reach.Channel. The inbox is available iff the
// device's presence is alive (an open long poll or SSE within
// storage.PresenceTTL); then the entry is appended and the device's
// inbox topic notified. The entry is stored before the Notify, which is
// only a hint (wake.Hub): a lost Notify is made up for by the hub's
// re-check, so a failed Notify still counts as delivered.
func (c *Inbox) Deliver(ctx context.Context, d reach.Device, t reach.TaskRef) error {
	ok, err := c.Store.Present(ctx, d.ID)
	if err != nil {
		return err
	}
	if !ok {
		return reach.ErrUnavailable
	}
	data, err := json.Marshal(t) // InboxEntry: task id and kind only
	if err != nil {
		return err
	}
	if _, err := c.Store.AppendInbox(ctx, d.ID, data); err != nil {
		return err
	}
	_ = c.Hub.Notify(ctx, reach.InboxTopic(d.ID))
	return nil
}

// Webhook is the webhook channel (§4.2): a signed, content-free wake-up
// (reach/webhook) POSTed to the device's registered https URLs, in their
// registered order, until one accepts. The wake-up names only the
// device; the app then reads its inbox. A device without a webhook is
// reach.ErrUnavailable; nil Sender (webhooks not configured) too.
type Webhook struct {
	Sender *webhook.Sender
}

var _ reach.Channel = (*Webhook)(nil)

// Kind implements reach.Channel.
func (c *Webhook) Kind() string { return string(reach.ChannelWebhook) }

// Deliver implements reach.Channel.
func (c *Webhook) Deliver(ctx context.Context, d reach.Device, _ reach.TaskRef) error {
	if c.Sender == nil {
		return reach.ErrUnavailable
	}
	var errs []error
	for _, ch := range d.Channels {
		if ch.Type != reach.ChannelWebhook {
			continue
		}
		err := c.Sender.Deliver(ctx, ch.URL, d.ID)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return reach.ErrUnavailable
	}
	return errors.Join(errs...)
}

// PushSender sends one push message to a provider token (an APNs device
// token, an FCM registration token). It is the seam for a real APNs or
// FCM client, which needs the provider's network and credentials and so
// is not built here.
type PushSender func(ctx context.Context, token string, payload []byte) error

// Push is the APNs or FCM adapter (§4.2), off by default: with Send nil
// every delivery is reach.ErrUnavailable. What it would send is
// PushPayload: a content-free wake-up, so the provider sees no personal
// data and not even the task id.
type Push struct {
	// Type is reach.ChannelAPNs or reach.ChannelFCM.
	Type reach.ChannelType
	// Send, when set, switches the adapter on.
	Send PushSender
}

var _ reach.Channel = (*Push)(nil)

// Kind implements reach.Channel.
func (c *Push) Kind() string { return string(c.Type) }

// Deliver implements reach.Channel: the device's tokens of this type are
// tried in their registered order until one is accepted.
func (c *Push) Deliver(ctx context.Context, d reach.Device, _ reach.TaskRef) error {
	if c.Send == nil {
		return reach.ErrUnavailable
	}
	payload, err := PushPayload(c.Type)
	if err != nil {
		return err
	}
	var errs []error
	for _, ch := range d.Channels {
		if ch.Type != c.Type {
			continue
		}
		err := c.Send(ctx, ch.Token, payload)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return reach.ErrUnavailable
	}
	return errors.Join(errs...)
}

// PushPayload is the body of a push wake-up (§4.1: "push payloads are
// content-free wake-ups"; the app fetches the task from its inbox):
//
//   - APNs (HTTP/2 provider API, sent with apns-push-type: background and
//     apns-priority: 5): {"aps":{"content-available":1},"fedas":{"type":"wake"}}
//   - FCM (HTTP v1 message.data; the token goes in message.token, set by
//     the sender): {"data":{"fedas":"wake"}}
//
// Neither carries the task id, the user, the client or any text.
func PushPayload(t reach.ChannelType) ([]byte, error) {
	switch t {
	case reach.ChannelAPNs:
		return []byte(`{"aps":{"content-available":1},"fedas":{"type":"wake"}}`), nil
	case reach.ChannelFCM:
		return []byte(`{"data":{"fedas":"wake"}}`), nil
	}
	return nil, fmt.Errorf("deliver: no push payload for channel type %q", t)
}
