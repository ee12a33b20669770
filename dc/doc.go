// Package dc is the contract between fedas and digital-credential
// verification (OpenID4VP 1.0): the Verifier interface a flow step calls,
// its types and errors, and VerifyVPToken, the response validation of
// OpenID4VP 1.0 §8.6 over SD-JWT VC presentations.
//
// VerifyVPToken verifies, all-or-nothing (§8.6 step 7 applied to the whole
// response, since a conforming wallet sends nothing that fails):
//   - every vp_token key is a credential query id of the DCQL query and an
//     entry holds one presentation unless the query sets multiple (§8.1);
//   - each presentation with dc/sdjwt (RFC 9901 §7.1, §7.3; SD-JWT VC §2):
//     the issuer must be a configured TrustedIssuer (by iss; no issuer
//     metadata is fetched), its key a static JWKS key (by kid) or an x5c
//     chain to the issuer's roots bound to iss, its alg in the issuer's
//     list; a KB-JWT is required when the query requires holder binding
//     (§6.1; decided from policy, never from presence: RFC 9901 §9.5), with
//     nonce and aud exactly the policy's (§8.6, §14.1);
//   - the vct is allowed both for that issuer and by the query (§6.1, App.
//     B.3.5), then dcql.Match checks claims, claim_sets and credential_sets;
//   - the status claim through a StatusChecker (Token Status List §8.3;
//     SD-JWT VC §2.4): only VALID passes; a missing status is refused when
//     the issuer has StatusRequired;
//   - the subject: issuer + "|" + the issuer's SubjectClaim value, never
//     the claim alone (OpenID4VP §14.4).
//
// Not verified here: transaction_data hashes are returned for the caller to
// compare (§8.4); mdoc is out of scope; request-side checks (state,
// response_uri, client_id prefixes) belong to the Verifier implementation.
// Errors are the sentinels below, wrapped with the credential query id
// and index only: they never carry claim values.
package dc
