// Package reach is the storage-agnostic core of reaching a user on
// another channel (issue 12; design docs/reach.md, docs to come): the
// types and pure logic shared by every front end — the cross-device
// redirect_to_app, the OpenID Connect User Questioning API (-10) and the
// AAuth-shaped interaction relay.
//
// Built here:
//   - Device (§4.1): our first-party app's registration, keyed by the RFC
//     7638 thumbprint of its DPoP key (RFC 9449 §6 "jkt"), with its
//     capabilities and channels, and Device.Validate (length caps, enums,
//     https webhook URLs checked by netguard.CheckURL, at most MaxChannels
//     channels);
//   - Task (§4.4): one attempt to reach the user, and its state machine as
//     one pure function, Next, from which Allowed is derived;
//   - number matching (§4.3 (a); RFC 10027 consent-phishing and push-bombing
//     defences): NewBinding and Task.Pick with a bound on wrong picks;
//   - the sentinels a later caller maps to RFC 6749 §5.2 bodies.
//
// Storage lives in storage.ReachStore (storage/reach.go) with memory and
// Redis backends. The Channel interface, TaskRef (all a channel learns
// of a task), ErrUnavailable and InboxTopic are here (channel.go); the
// channels and the Reacher of §4.2 with the per-user quota of §4.7 are in
// reach/deliver (it uses storage, which imports this package). Not built
// here (later sessions): the HTTP front ends, the other rate limits of
// §4.7 and config.
// The package imports neither server nor flow.
package reach
