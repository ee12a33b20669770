// Package verifier is fedas's internal OpenID for Verifiable Presentations
// 1.0 verifier: Internal implements dc.Verifier over a storage.DCStore and
// serves the wallet-facing endpoints (docs/protocol.md "Digital credentials").
//
// One transaction per Begin, its flow fixed at creation (docs/decisions.md Q30–Q35):
//   - same device / cross device: Begin stores the transaction and returns
//     the wallet URL openid4vp://?client_id=…&request_uri=…/dc/request/<id>
//     &request_uri_method=post. The request object is signed when the
//     wallet fetches it, once (RequestHandler; OpenID4VP 1.0 §5.10,
//     wallet_nonce echoed). The wallet posts direct_post.jwt to
//     /dc/response (ResponseHandler), which decrypts, checks the inner
//     state, verifies the presentation (dc.VerifyVPToken,
//     dc.CheckTransactionData) and records the minimised result first-wins
//     — so a poll (Result) is one storage read and no crypto;
//   - DC API / interactive: Begin signs the request at once
//     (dc_api.jwt with expected_origins, App. A.2; iae_post.jwt with
//     expected_url, OpenID4VCI 1.1), and the flow hands the wallet's answer
//     to Submit.
//
// A KB-JWT may not predate its transaction (beyond the sdjwt leeway) nor
// be older than KBMaxAge (docs/security.md "Digital credentials").
//
// Ids are 128-bit random: the request id is the wallet-facing state (and
// the response key's kid, so a response without an outer state is still
// found); the transaction id is separate and never leaves fedas (OpenID4VP
// 1.0 §14.3). Each transaction has a fresh ephemeral ECDH-ES P-256
// response key (§8.3). Same-device results carry a 128-bit response_code,
// stored as its SHA-256 and returned only to the wallet (§13.3, §14.2).
// Only the minimised verified result is stored (subject, issuer, vct, kept
// claims, holder thumbprint), never the vp_token (§15).
package verifier
