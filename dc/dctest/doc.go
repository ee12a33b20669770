// Package dctest is the simulated digital-credential ecosystem of fedas'
// tests (SECURITY-RESULTS.md "Digital credentials"): an SD-JWT VC issuer with a status list server, and an
// OpenID for Verifiable Presentations 1.0 wallet with evil knobs. It is a
// normal package so that tests in server/, sdk/ and cmd/ can import it; it
// imports only dc/... and go-jose, never server or flow. Test support only:
// it makes no security promises and must never run in production code.
//
// Issuer (SD-JWT VC draft; RFC 9901; Token Status List):
//   - an ES256 key, as a static JWKS (kid) or, with IssuerOptions.X5C, a
//     leaf certificate chained to a self-signed root and bound to the
//     issuer identifier (URI SAN = iss, DNS SAN = its host), which is what
//     sdjwt.X5CIssuerKeys checks;
//   - TrustedIssuer returns the dc.TrustedIssuer a verifier configures;
//   - Issue signs a dc+sd-jwt credential with the user claims selectively
//     disclosable (iss, vct, cnf, status, iat, exp never are, SD-JWT VC
//     §2.2.2), cnf.jwk = the holder key and status.status_list{idx,uri};
//   - a status list server over HTTPS on 127.0.0.1 serving statuslist+jwt
//     tokens (2 bits per entry); Revoke and Suspend flip an entry, and
//     StatusClient is a statuslist.Client that reaches only this server.
//
// Wallet (OpenID4VP 1.0):
//   - Present: parses openid4vp://?client_id=…&request_uri=…&request_uri_method=post
//     (any scheme), POSTs wallet_metadata and wallet_nonce with Accept
//     application/oauth-authz-req+jwt (§5.10), verifies the request object
//     (typ, ES256 signature by the x5c leaf, client_id =
//     x509_hash of that leaf, §5.9.3; optional VerifierRoots; redirect_uri:
//     requests unsigned only with AllowUnsigned), checks the echoed
//     wallet_nonce, selects credentials and disclosures per dcql_query,
//     writes the KB-JWT (aud = client_id, nonce, iat, sd_hash,
//     transaction_data_hashes over each transaction_data string exactly as
//     sent, App. B.3.3.1), encrypts the response (state inside) with
//     ECDH-ES to client_metadata.jwks (enc A128GCM unless the request lists
//     others, §8.3) and POSTs response=<JWE> to response_uri; the Answer
//     holds the status and redirect_uri or
//     presentation_during_issuance_session;
//   - DCAPI: the platform's Digital Credentials API (App. A): KB aud
//     "origin:<origin>", expected_origins checked for signed requests;
//     returns the data object ({"response":"<JWE>"} or {"vp_token":{…}});
//   - Interactive: the OpenID4VCI 1.1 Interactive Authorization
//     openid4vp_request → openid4vp_response, KB aud = client_id.
//
// Knobs make the wallet break one rule each (wrong nonce or aud, KB
// stripped, extra or dropped disclosure, stale iat, altered or omitted
// transaction data hashes, typ vc+sd-jwt, alg none or HS256 in the issuer
// JWT or the KB-JWT, a disclosure of iss or cnf, replay, double post, wrong
// state, double request_uri fetch, unencrypted response, access_denied).
// The package's own tests show which verifier check refuses each one.
//
// Example (a same-device presentation against a verifier under test):
//
//	iss := dctest.NewIssuer(t, dctest.IssuerOptions{X5C: true, Now: now})
//	w := dctest.NewWallet()
//	w.HTTP, w.Now = srv.Client(), now
//	if _, err := w.Receive(iss, map[string]any{"sub": "user-1", "given_name": "Erika"}, dctest.IssueOptions{}); err != nil {
//		t.Fatal(err)
//	}
//	// configure the verifier with iss.TrustedIssuer() and
//	// iss.StatusClient(now), begin a transaction, then:
//	ans, err := w.Present(ctx, tx.RequestURI) // the openid4vp:// URL
//	// ans.Status == 200, ans.RedirectURI carries the response_code
//
//	w.Knobs = dctest.Knobs{WrongNonce: true} // the next presentation is refused
package dctest
