// Package sdjwt verifies SD-JWT presentations (RFC 9901) carrying SD-JWT
// VCs (draft-ietf-oauth-sd-jwt-vc). It is pure: no I/O, no clock of its own
// (Options.Now), no trust policy (Options.IssuerKeys decides which key an
// issuer may use; X5CIssuerKeys is a helper for x5c chains).
//
// What Verify checks, in order, before and after cryptography:
//   - bounds first: presentation size, number of disclosures, JSON nesting
//     depth of the payload and of every disclosure (RFC 9901 Security Considerations on resource use);
//   - RFC 9901 §4 / §7.1: split on "~"; issuer JWT alg on an allowlist
//     (ES256, ES384, EdDSA, PS256; never none or HS*), typ dc+sd-jwt
//     (vc+sd-jwt only with AllowLegacyTyp, SD-JWT VC §2), one signature,
//     verified with the caller-supplied key; _sd_alg absent or sha-256;
//   - RFC 9901 §7.1 disclosures: digest = base64url(SHA-256(ASCII of the
//     encoded disclosure)); object disclosures have 3 elements, array
//     disclosures 2; names "_sd" and "..." rejected; name collisions,
//     digests seen twice and unreferenced disclosures rejected; "_sd" and
//     "_sd_alg" removed from the processed claims;
//   - SD-JWT VC §2: iss, nbf, exp, cnf, vct and status must not be
//     selectively disclosed; vct is required; exp and nbf checked on the
//     processed payload with a small leeway;
//   - RFC 9901 §4.3 / §7.3: KB-JWT required by policy (Options.RequireKB),
//     never inferred from its presence (§9.5 downgrade); when present it is
//     always verified: cnf.jwk key, typ kb+jwt, alg allowlist, iat window,
//     nonce and aud exact, sd_hash over the presented issuer JWT and
//     disclosures exactly as received.
//
// Not verified here (callers' job): issuer trust policy, revocation (the raw
// status claim is returned for the statuslist package), DCQL matching of
// vct/claims, the meaning of transaction_data_hashes (returned as is), and an
// "aud" claim in the issuer JWT (returned in Claims; SD-JWT VCs rarely carry
// one). Errors never contain claim values (personal data).
package sdjwt
