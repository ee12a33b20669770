// Package external is a dc.Verifier that delegates the OpenID4VP 1.0
// wallet exchange to a separate verifier service with the transaction API
// of the EUDI reference verifier endpoint (docs/protocol.md "Digital credentials"; the EUDI reference verifier's API):
//
//	POST {base}/ui/presentations                       → {transaction_id, client_id, request_uri}
//	GET  {base}/ui/presentations/{transaction_id}[?response_code=…] → the wallet response
//
// fedas then plays the "verifier frontend" of OpenID4VP 1.0 §13.3: the
// wallet fetches the request object from, and posts its direct_post.jwt
// response to, the external service; the client's wire stays identical
// (credentials_request is openid4vp://?client_id=…&request_uri=…).
//
// What the adapter guarantees (docs/security.md "Digital credentials"):
//   - fedas re-verifies every vp_token the service returns with
//     dc.VerifyVPToken (issuer trust, KB-JWT nonce = our nonce, aud = the
//     service's client_id, DCQL match, status) and dc.CheckTransactionData:
//     the service is trusted to relay, never to judge;
//   - the transaction_id is sealed (AES-256-GCM) inside Transaction.ID,
//     which the flow keeps server-side; it appears in no wallet URL, no
//     Request and no error (errors carry sentinels, never URLs);
//   - the flow is sealed with it, so the fixation guard holds: a same-device
//     transaction completes only with a response_code, a cross-device one
//     only without (dc.ErrWrongFlow);
//   - the channel is authenticated: a bearer token and/or mTLS through the
//     caller's http.Client; redirects are never followed;
//   - any failure of the service (transport, timeout, 5xx, 3xx, 401/403, an
//     unparseable answer) is dc.ErrUnavailable, so the flow answers 503
//     temporarily_unavailable; a 4xx to a response_code is
//     dc.ErrResponseCode.
//
// Not supported in v1: the DC API and interactive flows (the request object
// must be handed to the platform by value and the response reaches fedas,
// not the service) and presentation during issuance (the EUDI-V API has no
// presentation_during_issuance_session answer): Begin returns
// dc.ErrWrongFlow. Cancel is a no-op: the EUDI-V API has no cancel
// operation, the service expires transactions itself, and the flow's
// auth_session compare-and-swap is the single-use gate.
//
// transaction_data: EUDI-V takes the entries as JSON objects and
// base64url-encodes them itself, so Begin sends each entry's decoded JSON
// byte for byte; CheckTransactionData compares the KB-JWT hashes with the
// strings fedas built, so a service that re-encodes differently fails closed
// (build entries as compact JSON).
package external
