package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"

	"github.com/fedas/fedas/storage"
)

// Which tokens a caller may introspect (RFC 7662 §4 leaves it to the AS):
//
//   - only confidential clients that authenticate may call introspection
//     at all (RFC 7662 §2.1); a public client is invalid_client;
//   - an access token of any client: the caller acts as a resource server,
//     which is what introspection is for (RFC 7662 §1);
//   - a refresh token only when it was issued to the caller: refresh tokens
//     are meant for the client alone and never reach a resource server
//     (RFC 6749 §1.5, §10.4), so for any other caller it is
//     {"active": false}, indistinguishable from an unknown token.
//
// Revocation (RFC 7009 §2.1) takes public clients too, by client_id
// (RFC 6749 §2.3), and only for the caller's own tokens (fosite's
// handler refuses another client's with unauthorized_client).

// callerClient authenticates the client calling introspection or
// revocation by the methods the metadata publishes: client_secret_basic,
// client_secret_post, private_key_jwt, and "none" (client_id only) where
// allowPublic. A bearer token (or any Authorization scheme but Basic)
// never authorises these endpoints: it is answered 401 invalid_client,
// and writeError adds the Basic challenge (RFC 6749 §5.2).
func (s *Server) callerClient(c echo.Context, form url.Values, allowPublic bool) (fosite.Client, error) {
	r := c.Request()
	switch auths := r.Header.Values("Authorization"); {
	case len(auths) > 1:
		return nil, errInvalidRequest("Send at most one Authorization header.")
	case len(auths) == 1:
		if _, _, basic := r.BasicAuth(); !basic {
			return nil, newError(http.StatusUnauthorized, "invalid_client",
				"This endpoint takes client authentication (HTTP Basic, client_secret_post or private_key_jwt), never a bearer token.")
		}
	}
	client, authed, err := s.caller(c, form)
	switch {
	case err != nil:
		return nil, err
	case client == nil:
		return nil, newError(http.StatusUnauthorized, "invalid_client", "Client authentication is required.")
	case !client.IsPublic() && !authed:
		return nil, newError(http.StatusUnauthorized, "invalid_client", "This client must authenticate.")
	case client.IsPublic() && !allowPublic:
		return nil, newError(http.StatusUnauthorized, "invalid_client", "Only clients that authenticate may introspect tokens (RFC 7662 §2.1).")
	}
	return client, nil
}

// unavailable reports a storage outage anywhere in err's chain: such a
// failure is 503 temporarily_unavailable, never an answer about the token.
func unavailable(err error) bool {
	return errors.Is(err, storage.ErrUnavailable) || errors.Is(err, fosite.ErrTemporarilyUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

func errUnavailable() *protoError {
	return newError(http.StatusServiceUnavailable, "temporarily_unavailable", "The service is temporarily unavailable; retry shortly.")
}

// revoke serves token revocation (RFC 7009 §2): the caller authenticates
// (public clients by client_id), and may revoke only its own tokens.
// Revoking either token of a grant revokes both. An unknown token is a
// 200 (§2.2); a storage failure is a 503, never a 200 that would leave
// the token alive (CVE-2020-15223).
func (s *Server) revoke(c echo.Context) error {
	ctx := c.Request().Context()
	form := formOf(c)
	client, err := s.callerClient(c, form, true)
	if err != nil {
		return s.writeError(c, err)
	}
	token := form.Get("token")
	if token == "" {
		return s.writeError(c, errInvalidRequest("The token parameter is required (RFC 7009 §2.1)."))
	}
	// fosite's NewRevocationRequest would authenticate the client a second
	// time (a private_key_jwt assertion is single-use), so run its
	// revocation handlers for the client authenticated above. An invalid
	// token_type_hint only changes the lookup order (§2.1).
	found := false
	for _, h := range s.fcfg.GetRevocationHandlers(ctx) {
		switch err := h.RevokeToken(ctx, token, fosite.TokenType(form.Get("token_type_hint")), client); {
		case err == nil:
			found = true
		case errors.Is(err, fosite.ErrUnknownRequest):
		case unavailable(err):
			return s.writeError(c, errUnavailable())
		default:
			return s.writeError(c, err)
		}
	}
	if !found {
		return s.writeError(c, fosite.ErrServerError.WithDebug("no revocation handler took the token"))
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	c.Response().Header().Set("Pragma", "no-cache")
	return c.NoContent(http.StatusOK)
}

// introspect serves token introspection (RFC 7662 §2) for authenticated
// confidential clients, by the rules at the top of this file. An unknown,
// expired, revoked or not-for-you token is {"active": false} (§2.2); a
// storage outage is 503 (never a false "inactive").
func (s *Server) introspect(c echo.Context) error {
	ctx := c.Request().Context()
	form := formOf(c)
	caller, err := s.callerClient(c, form, false)
	if err != nil {
		return s.writeError(c, err)
	}
	token := form.Get("token")
	if token == "" {
		return s.writeError(c, errInvalidRequest("The token parameter is required (RFC 7662 §2.1)."))
	}
	// §2.1: token_type_hint orders the lookup; an unknown hint is ignored.
	use := fosite.AccessToken
	if form.Get("token_type_hint") == "refresh_token" {
		use = fosite.RefreshToken
	}
	tu, ar, err := s.oauth.IntrospectToken(ctx, token, use, newSession())
	switch {
	case err == nil:
	case unavailable(err):
		return s.writeError(c, errUnavailable())
	case errors.Is(err, fosite.ErrServerError):
		return s.writeError(c, fosite.ErrServerError.WithWrap(err))
	default:
		// Not found, expired, inactive, malformed, wrong signature.
		return inactive(c)
	}
	if tu == fosite.RefreshToken && ar.GetClient().GetID() != caller.GetID() {
		return inactive(c)
	}
	out := map[string]any{
		"active":     true,
		"client_id":  ar.GetClient().GetID(),
		"scope":      joinScopes(ar.GetGrantedScopes()),
		"iat":        ar.GetRequestedAt().Unix(),
		"iss":        s.cfg.Issuer,
		"token_type": "Bearer",
	}
	sess := ar.GetSession()
	if sub := sess.GetSubject(); sub != "" {
		out["sub"] = sub
	}
	if u := sess.GetUsername(); u != "" {
		out["username"] = u
	}
	if exp := sess.GetExpiresAt(fosite.TokenType(tu)); !exp.IsZero() {
		out["exp"] = exp.Unix()
	}
	if tu == fosite.RefreshToken {
		out["token_type"] = "refresh_token"
	}
	if ds, ok := sess.(*fosite.DefaultSession); ok {
		for _, k := range []string{"auth_time", "amr", "idp"} {
			if v, ok := ds.Extra[k]; ok {
				out[k] = v
			}
		}
		if jkt, ok := ds.Extra["dpop_jkt"].(string); ok && jkt != "" {
			// RFC 9449 §6.2: confirmation of a DPoP-bound token.
			out["cnf"] = map[string]string{"jkt": jkt}
			if tu == fosite.AccessToken {
				out["token_type"] = "DPoP"
			}
		}
		if ad, ok := grantedDetails(ds); ok {
			out["authorization_details"] = ad // RFC 9396 §9.1
		}
		if f, ok := out["auth_time"].(float64); ok {
			out["auth_time"] = int64(f)
		}
	}
	return writeJSON(c, http.StatusOK, out)
}

func inactive(c echo.Context) error {
	return writeJSON(c, http.StatusOK, map[string]any{"active": false})
}

func joinScopes(a fosite.Arguments) string {
	out := ""
	for i, s := range a {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out
}
