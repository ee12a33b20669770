// Package statuslist is a client for the Token Status List
// (draft-ietf-oauth-status-list, "TSL"): it fetches, verifies and reads the
// status list a credential's `status.status_list{idx,uri}` claim points at
// (SD-JWT VC draft §2.4, TSL §6.2, §8).
//
// What is verified:
//   - the list token is a compact JWS with header typ "statuslist+jwt"
//     (TSL §5.1), signed with one of ES256, ES384, EdDSA, PS256 (never "none"
//     or an HMAC alg), by a key the caller's KeyFunc returns;
//   - `sub` equals the URI it was fetched from (TSL §5.1, §8.3); `iat` is
//     present and not in the future; `exp`, when present, has not passed;
//     `ttl`, when present, is a positive number (TSL §5.1, §13.7) — times
//     come from an injected clock;
//   - `status_list.bits` ∈ {1,2,4,8} and `lst` is unpadded base64url of a
//     zlib (RFC 1950) stream, decompressed under a hard cap
//     (MaxDecompressed, default 16 MiB) so a zlib bomb is refused after at
//     most cap+1 bytes of output (TSL §4.1, §11.1 / §11.4);
//   - an index outside the list is an error, never "valid" (TSL §8.3).
//
// The Client fetches over HTTPS only, with Accept: application/statuslist+jwt
// (TSL §8.1), through a caller-supplied *http.Client (production: one built by
// netguard.Client), after netguard.CheckURL on the URI; the body is size- and
// time-bounded, redirects are never followed, answers are cached per URI until
// min(exp, now+ttl, now+MaxTTL) in a bounded cache, and
// concurrent fetches of one URI are collapsed (single flight).
//
// What is not done: the CWT form (statuslist+cwt), status list aggregation
// (`aggregation_uri` is parsed but never fetched), historical resolution
// (the `time` query parameter, TSL §8.4), x5c chain validation (the KeyFunc
// decides the key), and host allowlisting per trusted issuer (the caller's
// CheckURL/KeyFunc must enforce which hosts and keys belong to which issuer).
// Values other than 0/1/2 are returned as-is for the caller to interpret.
// Errors carry no personal data: a list URI is issuer data, not user data.
package statuslist
