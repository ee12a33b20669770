package server

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/fedas/fedas/flow"
)

// IssueCode implements flow.CodeIssuer on fosite; flow's mint is its only
// caller. It mints an authorization code with fosite's HMAC strategy and
// stores the code and its PKCE request in one storage step, bound to what
// the grant names: the client, the PKCE challenge, the scopes, the user,
// auth_time, amr, acr, the DPoP key (RFC 9449 §10) and, for codes a
// browser delivers, the redirect_uri (RFC 6749 §4.1.3). The token endpoint
// then redeems it through fosite's authorization-code and PKCE handlers.
func (s *Server) IssueCode(ctx context.Context, g flow.Grant) (string, error) {
	client, ok := s.snapshot(ctx).Client(g.ClientID)
	if !ok {
		return "", newError(http.StatusBadRequest, "invalid_client", "The client is no longer registered.")
	}
	now := s.now().UTC()
	ar := fosite.NewAuthorizeRequest()
	ar.Client = client
	ar.RequestedAt = now
	ar.ResponseTypes = fosite.Arguments{"code"}
	form := url.Values{"client_id": {client.GetID()}, "response_type": {"code"}}
	for k, v := range map[string]string{"code_challenge": g.CodeChallenge, "code_challenge_method": g.CodeChallengeMethod, "nonce": g.Nonce, "scope": g.Scope, "redirect_uri": g.RedirectURI} {
		if v != "" {
			form.Set(k, v)
		}
	}
	ar.Form = form
	for _, sc := range strings.Fields(g.Scope) {
		ar.AppendRequestedScope(sc)
		ar.GrantScope(sc)
	}
	sess := newSession()
	sess.Subject, sess.Username = g.Subject, g.Username
	for k, v := range g.Claims {
		sess.Extra[k] = v
	}
	sess.Extra["auth_time"] = g.AuthTime.Unix()
	if len(g.AMR) > 0 {
		sess.Extra["amr"] = g.AMR
	}
	if g.ACR != "" {
		sess.Extra["acr"] = g.ACR
	}
	if g.Nonce != "" {
		sess.Extra["nonce"] = g.Nonce
	}
	if g.DPoPJKT != "" {
		sess.Extra["dpop_jkt"] = g.DPoPJKT
	}
	if len(g.IDTokenClaims) > 0 {
		sess.Extra["id_token_claims"] = g.IDTokenClaims
	}
	// RFC 9396 §7: the granted details, as the canonical JSON text the
	// flow validated; never a claim of that name from elsewhere.
	delete(sess.Extra, extraAuthorizationDetails)
	if g.AuthorizationDetails != "" {
		sess.Extra[extraAuthorizationDetails] = g.AuthorizationDetails
	}
	ar.Session = sess
	code, sig, err := s.strategy.GenerateAuthorizeCode(ctx, ar)
	if err != nil {
		return "", err
	}
	lifetime := s.cfg.Lifetimes.AuthorizationCode
	sess.SetExpiresAt(fosite.AuthorizeCode, now.Add(lifetime))
	rec, err := toRecord(ar)
	if err != nil {
		return "", err
	}
	// The storage TTL is the real lifetime; the expiry fosite checks
	// follows the server's clock.
	if err := s.store.CreateCode(ctx, sig, rec, lifetime); err != nil {
		return "", err
	}
	return code, nil
}

// newSession is the session prototype for every fosite request: subject,
// username, expiries and extra claims (auth_time, amr), introspectable.
func newSession() *fosite.DefaultSession {
	return &fosite.DefaultSession{ExpiresAt: map[fosite.TokenType]time.Time{}, Extra: map[string]any{}}
}
