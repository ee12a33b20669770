package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"

	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/storage"
)

// token serves the token endpoint (RFC 6749 §3.2) through fosite: the
// authorization_code grant with PKCE and no redirect_uri (FiPA-04 §6), and
// refresh_token (refresh.go: rotation per client, RFC 9700 §4.14.2). A
// client_credentials grant (RFC 6749 §4.4) for confidential clients that
// list it, granting the requested scopes the client is registered for. A
// second redemption of a code gets invalid_grant and revokes what the
// first issued (RFC 6749 §4.1.2); so does a rotated refresh token.
func (s *Server) token(c echo.Context) error {
	ctx := c.Request().Context()
	if gt := formOf(c).Get("grant_type"); gt != "authorization_code" && gt != "refresh_token" && gt != "client_credentials" {
		if gt == "" {
			return s.writeError(c, errInvalidRequest("The grant_type parameter is required."))
		}
		return s.writeError(c, newError(http.StatusBadRequest, "unsupported_grant_type", "Only authorization_code, refresh_token and client_credentials are supported."))
	}
	jkt, err := s.dpopProof(c, PathToken, "")
	if err != nil {
		return s.writeError(c, err)
	}
	ctx = withCodeMemo(ctx)
	ar, err := s.oauth.NewAccessRequest(ctx, c.Request(), newSession())
	if err = fositeErr(err); err != nil {
		s.codeReused(ctx)
		return s.writeError(c, err)
	}
	// RFC 9449 §5, §10: a code or refresh token bound to a key is used only
	// with a proof for that key; a proof binds the new tokens. A failed
	// attempt on a code burns it (its PKCE record is already consumed), as
	// a wrong code_verifier does.
	sess, ok := ar.GetSession().(*fosite.DefaultSession)
	if !ok || sess.Extra == nil {
		return s.writeError(c, fosite.ErrServerError.WithDebug("unexpected session type"))
	}
	if ar.GetGrantTypes().ExactOne("client_credentials") {
		// fosite's handler has checked every requested scope against the
		// client's; it grants none itself. No refresh token is issued
		// (RFC 6749 §4.4.3).
		for _, sc := range ar.GetRequestedScopes() {
			ar.GrantScope(sc)
		}
	}
	bound, _ := sess.Extra["dpop_jkt"].(string)
	switch {
	case bound != "" && jkt != bound:
		return s.writeError(c, errInvalidDPoP("This grant is bound to a DPoP key: send a proof for that key."))
	case bound == "" && jkt != "":
		sess.Extra["dpop_jkt"] = jkt
	}
	resp, err := s.oauth.NewAccessResponse(ctx, ar)
	if err != nil {
		if ar.GetGrantTypes().ExactOne("authorization_code") && (errors.Is(err, fosite.ErrInvalidGrant) || errors.Is(err, fosite.ErrInvalidatedAuthorizeCode)) {
			// fosite wraps our store's "already redeemed" answer from the
			// atomic invalidation in a server_error: the loser of a
			// redemption race gets invalid_grant, not a 500 (SECURITY-RESULTS.md C1).
			err = fosite.ErrInvalidGrant.WithHint("The authorization code has already been used.")
			s.codeRaceLost(ctx, ar)
		}
		return s.writeError(c, err)
	}
	out := resp.ToMap()
	if sess.Extra["dpop_jkt"] != nil {
		out["token_type"] = "DPoP"
	}
	if ad, ok := grantedDetails(sess); ok {
		// RFC 9396 §7, on refresh too: the details the code was bound to.
		out["authorization_details"] = ad
	}
	if ar.GetGrantTypes().ExactOne("authorization_code") && ar.GetGrantedScopes().Has("openid") {
		idt, err := s.idToken(ctx, ar)
		if err != nil {
			return s.writeError(c, err)
		}
		out["id_token"] = idt
	}
	s.tokenIssued(ctx, ar)
	if body, ok := tokenResponseJSON(out); ok {
		return writeRawJSON(c, http.StatusOK, body)
	}
	return writeJSON(c, http.StatusOK, out)
}

// tokenResponseKeys are the members a token response (RFC 6749 §5.1,
// OIDC Core §3.1.3.3, RFC 9396 §7) may have, in the order encoding/json
// sorts a map's keys.
var tokenResponseKeys = [...]string{"access_token", "authorization_details", "expires_in", "id_token", "refresh_token", "scope", "token_type"}

// tokenResponseJSON encodes a token response without reflection, byte
// for byte as writeJSON would: the known members in key order. ok is
// false, and writeJSON must encode out, when out has any other member, a
// member of another type, or a string encoding/json would escape.
func tokenResponseJSON(out map[string]any) (body []byte, ok bool) {
	b := make([]byte, 0, 512)
	n := 0
	for _, k := range tokenResponseKeys {
		v, has := out[k]
		if !has {
			continue
		}
		n++
		if len(b) == 0 {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		switch v := v.(type) {
		case string:
			if !plainJSONString(v) {
				return nil, false
			}
			b = append(b, '"')
			b = append(b, v...)
			b = append(b, '"')
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case json.RawMessage:
			// Canonical JSON text the flow validated (grantedDetails);
			// compacted as encoding/json compacts a RawMessage.
			var cb bytes.Buffer
			if err := json.Compact(&cb, v); err != nil {
				return nil, false
			}
			b = append(b, cb.Bytes()...)
		default:
			return nil, false
		}
	}
	if n != len(out) || n == 0 {
		return nil, false
	}
	return append(b, '}'), true
}

// plainJSONString: s is printable ASCII without the characters JSON
// escapes, so its JSON encoding is s in quotes.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// par serves the pushed authorization request endpoint (RFC 9126 §2)
// through fosite: authenticated confidential clients only; the request_uri
// lives at most lifetimes.pushed_request and is consumed atomically.
func (s *Server) par(c echo.Context) error {
	ctx := c.Request().Context()
	form := formOf(c)
	if form.Get("request_uri") != "" {
		return s.writeError(c, errInvalidRequest("request_uri must not be sent to the PAR endpoint (RFC 9126 §2.1)."))
	}
	// RFC 9449 §10.1: dpop_jkt (or a DPoP proof) binds the code to be
	// issued to that key; both must agree (SECURITY-RESULTS.md F04).
	jkt, err := s.dpopProof(c, PathPAR, "")
	if err != nil {
		return s.writeError(c, err)
	}
	switch dj := form.Get("dpop_jkt"); {
	case dj != "" && !flow.IsSHA256Value(dj):
		return s.writeError(c, errInvalidRequest("dpop_jkt is not a SHA-256 JWK thumbprint."))
	case dj != "" && jkt != "" && dj != jkt:
		return s.writeError(c, errInvalidDPoP("dpop_jkt does not match the DPoP proof's key."))
	case dj == "" && jkt != "":
		form.Set("dpop_jkt", jkt)
	}
	if m := form.Get("code_challenge_method"); m != "" && m != "S256" {
		return s.writeError(c, errInvalidRequest("Only code_challenge_method=S256 is supported."))
	}
	if form.Get("code_challenge") != "" && !flow.IsSHA256Value(form.Get("code_challenge")) {
		return s.writeError(c, errInvalidRequest("The code_challenge is not a valid S256 challenge."))
	}
	if _, _, basic := c.Request().BasicAuth(); !basic && form.Get("client_secret") == "" && form.Get("client_assertion") == "" {
		// RFC 9126 §2: fedas takes pushed requests only from clients that
		// authenticate; say so before validating anything else.
		return s.writeError(c, newError(http.StatusUnauthorized, "invalid_client", "The PAR endpoint requires client authentication."))
	}
	if form.Get("redirect_uri") == "" {
		// RFC 9126 §2.1 leaves redirect_uri to the AS: native federation
		// needs none (docs/decisions.md Q14), but fosite insists on one for
		// openid requests, so use the client's only registered one. The
		// client is the one the request names however it authenticates
		// (HTTP Basic's user, client_id, or the assertion's sub): fosite
		// then authenticates that same client.
		if cl, ok := s.snapshot(ctx).Client(namedClient(c.Request(), form)); ok && cl.Federating && len(cl.GetRedirectURIs()) == 1 {
			form.Set("redirect_uri", cl.GetRedirectURIs()[0])
		}
	}
	if form.Get("redirect_uri") == "" {
		// FAPI 2.0 §5.3.2.2-6 (SECURITY-RESULTS.md H06): a pushed request names
		// its redirect_uri; fosite would quietly use the only registered one.
		return s.writeError(c, errInvalidRequest("The redirect_uri parameter is required."))
	}
	ar, err := s.oauth.NewPushedAuthorizeRequest(ctx, c.Request())
	if err = fositeErr(err); err != nil {
		return s.writeError(c, err)
	}
	if ar.GetClient().IsPublic() {
		return s.writeError(c, newError(http.StatusUnauthorized, "invalid_client", "The PAR endpoint requires client authentication."))
	}
	if err := checkPushedDetails(ar.GetClient(), form); err != nil {
		return s.writeError(c, err)
	}
	resp, err := s.oauth.NewPushedAuthorizeResponse(ctx, ar, newSession())
	if err != nil {
		return s.writeError(c, err)
	}
	return writeJSON(c, http.StatusCreated, map[string]any{"request_uri": resp.GetRequestURI(), "expires_in": resp.GetExpiresIn()})
}

// fositeErr keeps plain errors from client authentication out of a 500:
// fosite's own assertion parser once leaked bare jwt validation errors
// (client assertions are now verified in clientauth.go, which answers
// RFC 6749 errors, but fosite's secret path is still fosite's). Anything
// that is neither an RFC 6749 error nor a storage failure is a
// client-authentication failure.
func fositeErr(err error) error {
	var re *fosite.RFC6749Error
	if err == nil || errors.As(err, &re) || errors.Is(err, storage.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fosite.ErrInvalidClient.WithHint("The client authentication could not be validated.").WithWrap(err)
}
