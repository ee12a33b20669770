// Package webhook is the reach webhook channel (docs/reach.md; issue 12
// item 2): a content-free wake-up, signed by us as a compact JWS, POSTed
// to the https URL a device registered. The device (our app, or a push
// gateway standing in for APNs/FCM) verifies it with VerifyWake against
// our JWKS and then fetches its task from its inbox with DPoP — the
// webhook itself never carries the task, the question, the user or any
// other personal data (§4.1 "content-free wake-ups", §5 R18).
//
// Built here: Sender.Deliver (sign, SSRF-guarded POST through
// netguard.Client, no redirects, bounded time, 3 attempts with
// exponential backoff, success on 2xx only) and VerifyWake for the app /
// SDK side. Not built here (next session): the reach.Channel adapter,
// registration-time URL checks in the device API, config keys, metrics.
//
// The token (a JWT, RFC 7519, in the JWS compact serialization, RFC 7515
// §7.1) has header {alg: ES256, typ: "reach-wake+jwt", kid} — an explicit
// typ so that it can never be confused with another of our JWTs (RFC 8725
// §3.11) — and exactly the claims iss, aud (the webhook URL), iat, exp (a
// short lifetime), jti (the receiver's de-duplication key: retries resend
// the same token, delivery is at-least-once) and event {type: "wake",
// device_id}. The body's media type is application/reach-wake+jwt
// (RFC 7515 §4.1.9).
package webhook
