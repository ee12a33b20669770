// Package oid4vp is the cryptographic envelope of fedas' internal
// OpenID for Verifiable Presentations 1.0 verifier: signed request objects
// (JAR, RFC 9101; OpenID4VP 1.0 §5), ephemeral response-encryption keys and
// decryption of encrypted responses (OpenID4VP 1.0 §8.3, App. A). It is pure:
// no HTTP, no storage, no clock of its own (RequestParams.Now).
//
// Request side (SignRequest, UnsignedRequest):
//   - client_id always carries its prefix (§5.9.3): "x509_hash:" is computed
//     from the SHA-256 of the signer's leaf certificate DER and the leaf key
//     must be the signing key; "redirect_uri:" requests cannot be signed
//     (§5.9.3) and are only built as plain parameters, for tests;
//   - response_type vp_token; response_mode direct_post.jwt (response_uri
//     required, redirect_uri forbidden, §8.2) or dc_api.jwt (expected_origins
//     required for signed requests, App. A.2);
//   - nonce: at least 16 random bytes base64url, generated when empty
//     (§5.2, §13.3); a supplied nonce must be URL-safe and as long;
//   - dcql_query validated with dcql.Parse before it is sent;
//   - client_metadata.jwks holds only the ephemeral public key (kid,
//     use=enc, alg=ECDH-ES) and encrypted_response_enc_values_supported
//     [A128GCM, A256GCM] (§8.3), and vp_formats_supported for dc+sd-jwt
//     from dc/sdjwt's algorithm allowlist (§11.1, App. B.3.4);
//   - aud https://self-issued.me/v2 outside the DC API (§5.8), iat/exp;
//     JWS header typ oauth-authz-req+jwt (§5), x5c chain, ES256 only.
//
// Response side (DecryptResponse): the size cap applies before any parsing;
// the compact JWE must use ECDH-ES (no key wrapping, no RSA, no dir) with
// A128GCM or A256GCM, no zip, and the kid of the transaction's key. The
// payload is strict JSON (duplicate members refused at any depth; unknown
// members ignored as OpenID4VP requires); vp_token is an object of query id
// → non-empty array of string presentations; state must equal the
// transaction's (constant-time compare). A wallet error response (§8.5)
// returns *WalletError.
//
// transaction_data and wallet_nonce are passed through unvalidated (the
// caller builds and stores them).
//
// Not verified here: the presentations themselves (dc/sdjwt), the DCQL
// match (dcql.Match), the KB-JWT audience (use Audience to compute it) and
// transaction lifetime. Encryption gives confidentiality only (§14.5): the
// presentation checks remain the integrity protection. Errors are sentinels
// and never contain presentation contents or other personal data.
package oid4vp
