// Package dcql parses, validates and matches the subset of the Digital
// Credentials Query Language (DCQL, OpenID for Verifiable Presentations 1.0
// §6) that fedas supports, and resolves claims path pointers (OpenID4VP 1.0
// §7).
//
// Supported: credential queries (§6.1) of format "dc+sd-jwt" only (SD-JWT VC,
// draft-ietf-oauth-sd-jwt-vc) with meta.vct_values (OpenID4VP 1.0 App. B.3.5),
// claims queries (§6.3) with path, optional id and values, claim_sets,
// multiple, require_cryptographic_holder_binding (default true) and
// credential set queries (§6.2) with options and required (default true).
// Not supported, and refused at Parse: other formats (mso_mdoc, jwt_vc_json,
// ldp_vc), trusted_authorities (fedas applies its own issuer trust policy)
// and any member this package does not know. OpenID4VP says a wallet ignores
// unknown members; a query here is verifier configuration, so a typo must
// fail loudly instead of silently widening what is accepted.
//
// Parse is strict: duplicate object member names, trailing data, nesting
// deeper than maxDepth and inputs or arrays beyond the documented caps are
// refused, so one query has one meaning for every reader.
//
// What Match verifies (OpenID4VP 1.0 §8.1, §8.6, §14.9: the verifier checks
// the DCQL constraints itself and never trusts the wallet's selection):
//   - every vp_token key is the id of a credential query (no unknown ids);
//   - each value holds exactly one presentation unless multiple is true;
//   - each presentation has the query's format and a vct in vct_values;
//   - the requested claims are present: all claims when claim_sets is absent,
//     otherwise the first claim set (in query order) that the presentation
//     satisfies;
//   - holder binding was verified when the query requires it;
//   - every required credential set has one option whose ids are all
//     present; without credential_sets every credential query is required.
//
// What Match does NOT verify: signatures, disclosures, key binding, nonce,
// audience, validity and status — those belong to the format verifier
// (dc/sdjwt) whose output Presented is. Presented must only ever be built
// from a fully verified credential.
//
// The values constraint (§6.3, §6.4.1) is evaluated, and a presentation whose
// claim has none of the listed values does not match, but it is a
// best-effort filter on wallet behaviour and never a security check: the
// issuer, not the query, vouches for a claim's value. Authorization
// decisions must use the verified claims themselves.
//
// Errors are sentinels (ErrInvalidQuery, ErrUnsupported, ErrTooLarge,
// ErrPath and the Err* matching errors) wrapped with context that names
// query ids and paths only, never claim values or other personal data.
package dcql
