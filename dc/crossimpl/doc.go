// Package crossimpl holds only tests: the cross-implementation test of
// fedas's SD-JWT VC code (dc/sdjwt, dc/sdjwt/sdjwttest, dc.VerifyVPToken)
// against an independent implementation, the npm package
// @sd-jwt/sd-jwt-vc (issue 11, "Tests"). Each side issues and presents a
// dc+sd-jwt credential with a key binding JWT (RFC 9901 §4, §4.3;
// draft-ietf-oauth-sd-jwt-vc §2) that the other side must verify, and a
// tampered one that both must refuse.
//
// The npm side runs from testdata/: package.json and package-lock.json pin
// the exact versions (installed with `npm ci` into a temporary folder once
// per test binary run) and crossimpl.mjs is the driver. Node.js >= 20 and npm are
// required: the tests fail, never skip, without them (the README's test
// command installs them).
package crossimpl
