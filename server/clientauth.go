package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"

	"github.com/fedas/fedas/internal/jsonexact"
	"github.com/fedas/fedas/policy"
)

// clientAssertionType is the RFC 7523 §2.2 client_assertion_type.
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// clientAssertionLeeway is the clock skew allowed on a client assertion's
// exp, nbf and iat (RFC 7523 §3 items 4–6 "reasonable clock skew";
// SECURITY-RESULTS.md G03: iat 8 s ahead is accepted, 61 s ahead refused).
const clientAssertionLeeway = 10 * time.Second

// clientAssertionMaxAhead bounds how far ahead a client assertion's exp
// may be. Its jti is recorded until exp (RFC 7523 §3 item 7), so an
// unbounded exp would be a replay marker kept for years: every Redis key
// needs a bounded TTL (SECURITY-RESULTS.md CP07). An hour admits the
// longest default of common client libraries; ours send 60 s
// (par.MaxAssertionLifetime).
const clientAssertionMaxAhead = time.Hour

// assertionAlgs are the private_key_jwt algorithms we verify (FAPI 2.0
// §5.4.1: PS256, ES256, EdDSA; never none, HS* or RS*). The metadata
// publishes exactly this list (RFC 8414 §2
// *_endpoint_auth_signing_alg_values_supported).
var assertionAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.PS256, jose.EdDSA}

// verifyClient is our fosite.ClientAuthenticationStrategy (through
// authenticateClient, which adds the client_auth.failure event), used by
// every fosite endpoint (token, PAR) and by ours (native, introspection,
// revocation). Secrets and public clients stay with fosite's default
// strategy; private_key_jwt (RFC 7523 §2.2, OIDC Core §9) is verified
// here with go-jose v4.
//
// Why not fosite for assertions: fosite v0.49.0 validates the assertion's
// exp/iat/nbf against the package-level clock token/jwt.TimeFunc with no
// leeway and no per-provider hook, so the only way to allow clock skew
// through fosite was to mutate that global (which leaks into every other
// server and fosite user in the process). fosite also cannot verify
// EdDSA assertions although our configuration accepts them. Verifying
// here keeps the clock per Server (Options.Now) and the algorithm list in
// one place.
func (s *Server) verifyClient(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	typ, assertion := form.Get("client_assertion_type"), form.Get("client_assertion")
	switch {
	case typ == "" && assertion == "":
		return s.oauth.(*fosite.Fosite).DefaultClientAuthenticationStrategy(ctx, r, form)
	case typ != clientAssertionType:
		// RFC 7521 §4.2: both parameters, with the JWT bearer type.
		return nil, fosite.ErrInvalidRequest.WithHint("client_assertion_type must be " + clientAssertionType + ".")
	case assertion == "":
		return nil, fosite.ErrInvalidRequest.WithHint("The client_assertion parameter is required with client_assertion_type.")
	}
	return s.verifyClientAssertion(ctx, form.Get("client_id"), assertion)
}

// verifyClientAssertion checks a private_key_jwt assertion (RFC 7523 §3):
// a JWS with one signature in an allowed algorithm equal to the client's
// registered one, verified with the client's registered keys; iss = sub =
// client_id; aud our issuer as a single string (FAPI 2.0 §5.3.2.1-8);
// exp required, exp/nbf/iat within clientAssertionLeeway of our clock;
// and a jti used once (item 7, recorded until exp). Every refusal is
// invalid_client (RFC 6749 §5.2); a storage outage stays a storage error.
func (s *Server) verifyClientAssertion(ctx context.Context, formID, assertion string) (fosite.Client, error) {
	bad := func(hint string) (fosite.Client, error) { return nil, fosite.ErrInvalidClient.WithHint(hint) }
	jws, err := jose.ParseSignedCompact(assertion, assertionAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return bad("The client_assertion is not a compact JWS signed with ES256, PS256 or EdDSA.")
	}
	hdr := jws.Signatures[0].Protected
	// Members keeps the claim names exactly as sent (RFC 7519 §4: they are
	// case-sensitive); each claim is read from its raw value below, not
	// through a map[string]any of the whole payload.
	claims, err := jsonexact.Members(jws.UnsafePayloadWithoutVerification())
	if err != nil {
		return bad("The client_assertion claims are not a JSON object.")
	}
	iss := stringClaim(claims, "iss")
	sub := stringClaim(claims, "sub")
	id := formID
	if id == "" {
		id = sub
	}
	if id == "" || iss != id || sub != id {
		return bad("The client_assertion iss and sub must both be the client_id (RFC 7523 §3).")
	}
	client, ok := s.snapshot(ctx).Client(id)
	if !ok {
		return bad("Unknown client.")
	}
	if client.GetTokenEndpointAuthMethod() != "private_key_jwt" {
		return bad("This client does not authenticate with private_key_jwt.")
	}
	if hdr.Algorithm != client.GetTokenEndpointAuthSigningAlgorithm() {
		return bad("The client_assertion is not signed with the client's registered algorithm.")
	}
	if !verifiesWithClientKey(jws, client, hdr) {
		return bad("The client_assertion signature does not verify with the client's registered keys.")
	}
	// The claims below are read from the payload whose signature verified.
	if aud, ok := claims["aud"]; !ok || !isJSONString(aud) || stringClaim(claims, "aud") != s.cfg.Issuer {
		return bad("The client_assertion aud must be our issuer identifier, as a single string.")
	}
	now := s.now()
	exp, ok := numericDate(claims, "exp", true)
	if !ok || now.After(exp.Add(clientAssertionLeeway)) {
		return bad("The client_assertion has expired or has no valid exp.")
	}
	if exp.After(now.Add(clientAssertionMaxAhead + clientAssertionLeeway)) {
		return bad("The client_assertion exp is more than an hour ahead.")
	}
	for _, k := range []string{"nbf", "iat"} {
		if t, ok := numericDate(claims, k, false); !ok || t.After(now.Add(clientAssertionLeeway)) {
			return bad("The client_assertion is not valid yet (" + k + ").")
		}
	}
	jti := stringClaim(claims, "jti")
	if jti == "" {
		return bad("The client_assertion needs a jti.")
	}
	// The jti must stay recorded for as long as our clock accepts the
	// assertion; the store counts in real time, so convert.
	keep := time.Now().Add(exp.Add(clientAssertionLeeway).Sub(now) + time.Second)
	if err := s.fstore.SetClientAssertionJWT(ctx, jti, keep); err != nil {
		if errors.Is(err, fosite.ErrJTIKnown) {
			return bad("The client_assertion was already used (RFC 7523 §3 item 7).")
		}
		return nil, err
	}
	return client, nil
}

// verifiesWithClientKey reports whether one of the client's registered
// signing keys (by kid when the header names one; use "sig" or unset; alg
// unset or the header's) verifies the assertion.
func verifiesWithClientKey(jws *jose.JSONWebSignature, client *policy.Client, hdr jose.Header) bool {
	set := client.GetJSONWebKeys()
	if set == nil {
		return false
	}
	keys := set.Keys
	if hdr.KeyID != "" {
		keys = set.Key(hdr.KeyID)
	}
	for _, k := range keys {
		if (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != hdr.Algorithm) || !k.IsPublic() {
			continue
		}
		if _, err := jws.Verify(k.Key); err == nil {
			return true
		}
	}
	return false
}

// numericDate reads an RFC 7519 §2 NumericDate claim. ok is false for a
// present claim that is not a number in range (a string, even of digits,
// is not a number), or a required one absent.
func numericDate(claims map[string]json.RawMessage, k string, required bool) (time.Time, bool) {
	v, present := claims[k]
	if !present {
		return time.Time{}, !required
	}
	v = bytes.TrimSpace(v)
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return time.Time{}, false
	}
	f, err := json.Number(v).Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > 253402300799 { // year 9999
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// isJSONString reports whether a raw claim value is a JSON string.
func isJSONString(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	return len(v) > 0 && v[0] == '"'
}

// stringClaim is claim k when it is a JSON string, else "" (absent, null,
// a number, an array: never a usable iss, sub, aud or jti).
func stringClaim(claims map[string]json.RawMessage, k string) string {
	v, ok := claims[k]
	if !ok || !isJSONString(v) {
		return ""
	}
	var out string
	if json.Unmarshal(v, &out) != nil {
		return ""
	}
	return out
}
