// Package probe checks a downstream authorization server before (or after)
// an admin adds it: it fetches the downstream's RFC 8414 §3 metadata, checks
// the issuer (§3.3) and the endpoints fedas federates through, fetches its
// JWK Set (RFC 7517 §5), and pushes one real authorization request to its
// PAR endpoint (RFC 9126 §2) with our client authentication, as the
// federator would. Each check is a Step with a status and plain-words
// detail that the admin console can show as is.
//
// The downstream's URLs are typed by an admin and the metadata is written
// by the downstream: both are someone else's choice of where the server
// connects, which is the server-side request forgery (SSRF) setting. So:
//
//   - Every connection goes through netguard.Client(Options.Net): the
//     request URL is re-checked with netguard.CheckURL, the dialer
//     re-checks the resolved address (DNS rebinding), environment proxies
//     are ignored, and every request is bounded in time. Nothing in this
//     package opens a connection any other way.
//   - Every URL (the issuer, then each endpoint the metadata names) passes
//     netguard.CheckURL before it is used; a refused URL fails its step and
//     is never fetched.
//   - Redirects are never followed, for GETs and for the PAR alike: a 3xx
//     fails the step and its Location is not fetched. A redirected POST
//     would carry our client credentials to a URL the downstream chose.
//   - Every response body is bounded by Options.MaxBytes, and read
//     through netguard.Get for the GETs.
//   - Loopback (and plain http on loopback) is admitted only with
//     Options.Net.AllowLoopback, which is for development and tests; the
//     admin API sets it from config Dev.AllowLoopbackHTTP. Private,
//     link-local and instance-metadata addresses stay refused regardless.
//
// Secrets never leave the package: client assertions, client secrets and
// keys appear in no Detail, and nothing is logged. Strings the downstream
// chose (issuer, error codes and descriptions, URLs) are quoted and capped
// before they reach a Detail.
package probe
