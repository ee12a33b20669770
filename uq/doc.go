// Package uq holds the storage-free building blocks of the OpenID Connect
// User Questioning API 1.0 (draft -10, whose wire format is kept for
// interop): a client posts a
// question and 2–5 statements, the OP reaches the user, and returns a
// signed User Statement Token (UST) by polling (304 while pending) or by
// a push to the client's notification endpoint.
//
// Built here:
//
//   - ParseRequest: the request endpoint's JSON body (-10 §4.1.1), strict
//     (valid UTF-8, no duplicate member names at any depth, bounded size;
//     unknown members ignored as RFC 6749 §3.1 does for parameters), with
//     configurable Limits on the question and statements;
//   - Error and one table of every UQ error code with its HTTP status
//     (-10 §4.1.4, §4.2.5, §5: all 400, the rate limits included — a
//     deliberate exception to the 429 slow_down of docs/decisions.md
//     Q28, for interop; fedas adds server_error 500 and
//     temporarily_unavailable 503);
//   - polling helpers (-10 §4.2): Hold (the Client-Timeout/Client_timeout
//     header), NewQuestionID, and PollGate, which decides
//     duplicate_requests, high_rate_question and high_rate_client from
//     numbers the caller stores;
//   - the UST (-10 §2): Sign (ES256, typ JWT, kid; never x5c/jwk/jku) and
//     Verify (-10 §2.1, for the SDK and tests);
//   - Notifier (-10 §4.3): the push to the client notification endpoint,
//     SSRF-guarded through netguard, with bounded retries;
//   - DiscoveryMetadata (-10 §3): the OP metadata members.
//
// Not built here (next session): the endpoints themselves, storage of
// questions and poll state, reaching the user (package reach), the
// amr→acr mapping that decides no_suitable_method, and configuration.
// This package never imports server or flow.
package uq
