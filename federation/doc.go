// Package federation holds what fedas needs to trust a downstream
// authorization server before and after it federates a native client to it:
// the downstream's RFC 8414 metadata (MetadataCache), its signing keys
// (JWKSCache, RFC 7517 §5) and the validation of the ID Token it returns
// from its token endpoint (VerifyIDToken, OpenID Connect Core §3.1.3.7).
//
// Everything fetched here comes from a downstream, so it is untrusted input
// even though the downstream itself is configured by an administrator:
//
//   - Metadata is only ever fetched for a configured issuer, and is
//     discarded unless its "issuer" member equals that issuer exactly
//     (RFC 8414 §3.3; SECURITY-RESULTS.md B14). No URL that reaches this package may
//     come from a client request (SECURITY-RESULTS.md K04).
//   - Redirects are never followed, bodies are read through a size limit
//     and every fetch runs under one deadline (SECURITY-RESULTS.md K05, D3, D4).
//   - Refreshes are bounded: one issuer or JWKS URL is fetched at most once
//     per MinRefresh, whatever the callers do, so a failing or hostile
//     downstream cannot turn our traffic into a retry storm, and an attacker
//     presenting tokens with random "kid" values cannot make us hammer a
//     JWKS endpoint (SECURITY-RESULTS.md D9).
//   - Failures wrap ErrUnavailable or ErrIssuerMismatch; callers answer
//     503 temporarily_unavailable (RFC 6749 §4.1.2.1, docs/decisions.md "fedas
//     decisions"). ID Token rejections wrap ErrInvalidIDToken instead
//     (SECURITY-RESULTS.md B13).
//
// A downstream supports native federation when its metadata carries either
// authorization_challenge_endpoint (FiPA-04 §8) or
// native_authorization_endpoint (ZFed-01 §4.1); docs/decisions.md Q1. A
// downstream without one can still be reached through the browser when it
// publishes an authorization_endpoint (Federator.BeginWeb; docs/decisions.md
// Q19); the browser's response is checked with Federator.CheckResponseIss
// (RFC 9207 §2.4) before its code or error is acted on.
package federation
