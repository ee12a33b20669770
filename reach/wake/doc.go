// Package wake is the wake-up hub behind the reach inbox long poll and the
// task polls (docs/reach.md "Scale-out"; issue 12 item 2): a request that
// waits for something to happen — a task in a device's inbox, an answer to
// a task — parks in Hub.Wait, and whoever makes it happen calls
// Hub.Notify with the same topic.
//
// Built here:
//
//   - Hub, the interface, with two implementations: Memory for the
//     single-instance backend and Redis for scale-out.
//   - Redis: ONE subscription to the channel "<prefix>reach:wake" per
//     instance (the payload is the topic), fanned out to the local waiters
//     of that topic. A waiter never holds a Redis connection of its own (no
//     XREAD BLOCK per waiter): only its check function touches Redis, through
//     the shared pool, so 1,000 waiters cost the pool plus one connection.
//   - A periodic re-check (default every 5 s, the ticker is injectable):
//     Redis pub/sub is at-most-once, so a message lost while the subscriber
//     was reconnecting or paused is made up for by every waiter re-running
//     its check. A re-established subscription also re-checks at once.
//   - Failure: the subscriber pings its own connection when idle; two
//     missed probes, or a broken connection, put the hub "down": every
//     waiter is released with ErrUnavailable (its check's context is
//     cancelled too, so a check stuck on a hung Redis returns) and new
//     waits fail at once, so the caller answers 503 temporarily_unavailable
//     promptly (docs/reach.md R14) instead of holding a long poll against a
//     dead backend. The subscription comes back by itself (go-redis
//     reconnects; a connection silent for three probes is replaced).
//
// Not built here (next session): the inbox streams, presence, the HTTP
// long poll and SSE handlers, config keys, metrics. The hub stores no keys:
// PUBLISH / SUBSCRIBE leave nothing in Redis, so there is nothing to TTL.
//
// Topics are opaque identifiers chosen by the caller (a device or task
// id); they never carry personal data, and the hub never logs them.
package wake
