// Package deliver is the channel layer of the reach core (docs/reach.md
// §4.2, §4.7; issue 12 item 2): it turns "reach this user for this task"
// into deliveries to the user's registered devices.
//
// Built here:
//   - the built-in reach.Channel implementations: Inbox (available iff the
//     device's presence is alive; appends a content-free entry {task,
//     kind} to the device's inbox through storage.ReachStore.AppendInbox,
//     then wakes reach.InboxTopic through a wake.Hub), Webhook (an adapter
//     over reach/webhook.Sender for the device's webhook URLs) and Push,
//     the APNs/FCM adapters, off by default (reach.ErrUnavailable) with
//     their content-free payloads (PushPayload);
//   - Reacher.Reach: the user's live devices with the capability the task
//     kind needs, each device's channels tried in its registered order
//     until one delivers, the per-user live-task quota (§4.7: 3 live, 10
//     per 10 min; storage.LiveCounter and storage.RateLimiter, so it holds
//     across instances), and the task's CREATED→DELIVERED transition
//     recording the devices reached (§4.4).
//
// Not built here (next session): the HTTP front ends and their mapping of
// reach.ErrNoChannel / reach.ErrQuota to 424 interaction_unavailable or
// unreachable_user, config keys, metrics, and a real APNs/FCM client
// (Push.Send is the seam). The package imports neither server nor flow; it
// lives apart from package reach because it uses storage, which imports
// reach.
package deliver
