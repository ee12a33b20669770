package server

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/ory/fosite"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/storage"
)

// refreshGrant is the refresh_token grant (RFC 6749 §6) with rotation
// (RFC 9700 §4.14.2; README.md "Refresh tokens"). It replaces fosite's
// RefreshTokenGrantHandler, whose order of checks does not fit: fosite
// revokes a grant on a rotated token before it checks that the presenter
// is the token's client, and before token() checks the DPoP proof, so a
// refused use could burn a grant; it also ignores the scope parameter.
//
// HandleTokenEndpointRequest only reads and checks: the token belongs to
// the authenticated client, is not expired, has a valid HMAC, and the
// requested scope is a subset of the grant's. token() then checks the DPoP
// binding. Only a request that passed all of that reaches
// PopulateTokenEndpointResponse, which writes the successor and then, if
// the client's tokens rotate, invalidates the used token in one atomic
// storage step (storage.TokenStore.InvalidateRefresh). So a refused use
// burns nothing, and a rotated token — presented again, or losing a
// concurrent rotation — revokes its whole grant (refreshReused).
type refreshGrant struct{ s *Server }

var _ fosite.TokenEndpointHandler = (*refreshGrant)(nil)

// refreshState is what one refresh request's Handle hands its Populate
// (in the request's codeMemo).
type refreshState struct {
	// sig is the presented refresh token's signature.
	sig string
	// rotated: the token was already rotated when it was read.
	rotated bool
	// bound: the token was DPoP-bound before this request (RFC 9449 §5),
	// whatever binding the request's proof adds.
	bound bool
	// granted is the grant's scope, which a new refresh token keeps
	// (RFC 6749 §6) however the access token's scope was narrowed.
	granted fosite.Arguments
	// rotation is the client's RefreshTokenRotation.
	rotation string
}

// rotates is the one rotation decision (config.Client.RefreshTokenRotation):
// always rotates every token; never (refused for public clients by
// config.Validate) none; auto, the default, rotates the tokens of a
// public client unless the token is DPoP-bound (RFC 9700 §4.14.2), and
// keeps confidential clients' valid (FAPI 2.0 §5.3.2.1-9).
func rotates(rotation string, public, bound bool) bool {
	switch rotation {
	case config.RotationAlways:
		return true
	case config.RotationNever:
		if !public {
			return false
		}
	}
	return public && !bound
}

// CanHandleTokenEndpointRequest implements fosite.TokenEndpointHandler.
func (g *refreshGrant) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne("refresh_token")
}

// CanSkipClientAuth implements fosite.TokenEndpointHandler: a refresh
// always authenticates the client (RFC 6749 §6), public ones by client_id.
func (g *refreshGrant) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool {
	return false
}

// HandleTokenEndpointRequest implements fosite.TokenEndpointHandler: it
// validates the refresh request and changes nothing in storage.
func (g *refreshGrant) HandleTokenEndpointRequest(ctx context.Context, req fosite.AccessRequester) error {
	if !g.CanHandleTokenEndpointRequest(ctx, req) {
		return fosite.ErrUnknownRequest
	}
	s := g.s
	client := req.GetClient()
	if !client.GetGrantTypes().Has("refresh_token") {
		return fosite.ErrUnauthorizedClient.WithHint("The client may not use the refresh_token grant.")
	}
	m := memoOf(ctx)
	if m == nil {
		return fosite.ErrServerError.WithDebug("refresh grant without a request memo")
	}
	token := req.GetRequestForm().Get("refresh_token")
	if token == "" {
		return fosite.ErrInvalidRequest.WithHint("The refresh_token parameter is required.")
	}
	sig := s.strategy.RefreshTokenSignature(ctx, token)
	rec, err := s.store.Token(ctx, storage.KindRefresh, sig)
	rotated := errors.Is(err, storage.ErrInvalidated)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return errRefreshInvalid()
	case err != nil && !rotated:
		return storageErr(err)
	}
	orig, err := s.fstore.fromRecord(ctx, rec, req.GetSession())
	if errors.Is(err, fosite.ErrNotFound) {
		return errRefreshInvalid() // its client is no longer registered
	} else if err != nil {
		return err
	}
	// RFC 6749 §6: the token must have been issued to the authenticated
	// client. Checked first: another client's attempt is not the holder's
	// use and changes nothing (not even for a rotated token).
	if orig.GetClient().GetID() != client.GetID() {
		return errRefreshInvalid()
	}
	// The HMAC, and the session's expiry by fosite's clock (which stamped
	// it at the code exchange); the storage TTL, by the server's clock,
	// is the lifetime itself.
	if err := s.strategy.ValidateRefreshToken(ctx, orig, token); errors.Is(err, fosite.ErrTokenExpired) {
		return fosite.ErrInvalidGrant.WithHint("The refresh token expired.")
	} else if err != nil {
		return errRefreshInvalid()
	}
	sess := req.GetSession()
	now := s.now().UTC()
	granted := orig.GetGrantedScopes()
	if rs := s.fcfg.GetRefreshTokenScopes(ctx); len(rs) > 0 && !granted.HasOneOf(rs...) {
		return fosite.ErrInvalidGrant.WithHint("The grant has no offline_access scope.")
	}
	scopeOK := s.fcfg.GetScopeStrategy(ctx)
	for _, sc := range granted {
		// The client may have lost a scope since the grant.
		if !scopeOK(client.GetScopes(), sc) {
			return fosite.ErrInvalidScope.WithHint("The client may no longer use a scope of this grant.")
		}
	}
	// RFC 6749 §6: a scope parameter narrows the new access token to a
	// subset of the grant's scope; omitted, the grant's scope.
	scope := granted
	if asked := req.GetRequestedScopes(); len(asked) > 0 {
		for _, sc := range asked {
			// Exact: scope tokens are case-sensitive (RFC 6749 §3.3);
			// fosite's Arguments.Has is not.
			if !slices.Contains(granted, sc) {
				return fosite.ErrInvalidScope.WithHint("The scope must be a subset of the scope of the grant (RFC 6749 section 6).")
			}
		}
		scope = asked
	}
	if err := s.fcfg.GetAudienceStrategy(ctx)(client.GetAudience(), orig.GetGrantedAudience()); err != nil {
		return err
	}
	req.SetID(orig.GetID())
	req.SetRequestedScopes(orig.GetRequestedScopes())
	req.SetRequestedAudience(orig.GetRequestedAudience())
	for _, sc := range scope {
		req.GrantScope(sc)
	}
	for _, a := range orig.GetGrantedAudience() {
		req.GrantAudience(a)
	}
	at := fosite.GetEffectiveLifespan(client, fosite.GrantTypeRefreshToken, fosite.AccessToken, s.fcfg.GetAccessTokenLifespan(ctx))
	sess.SetExpiresAt(fosite.AccessToken, now.Add(at).Round(time.Second))
	if rt := fosite.GetEffectiveLifespan(client, fosite.GrantTypeRefreshToken, fosite.RefreshToken, s.fcfg.GetRefreshTokenLifespan(ctx)); rt > -1 {
		sess.SetExpiresAt(fosite.RefreshToken, now.Add(rt).Round(time.Second))
	}
	st := &refreshState{sig: sig, rotated: rotated, granted: append(fosite.Arguments(nil), granted...)}
	if ds, ok := sess.(*fosite.DefaultSession); ok {
		jkt, _ := ds.Extra["dpop_jkt"].(string)
		st.bound = jkt != ""
	}
	if c, ok := client.(*policy.Client); ok {
		st.rotation = c.RefreshTokenRotation
	}
	m.refresh = st
	return nil
}

// PopulateTokenEndpointResponse implements fosite.TokenEndpointHandler:
// the successor is stored first, then the used token is invalidated if
// it rotates, so that a storage failure burns nothing and the loser of a
// concurrent rotation finds the winner's tokens in the grant it revokes.
func (g *refreshGrant) PopulateTokenEndpointResponse(ctx context.Context, req fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !g.CanHandleTokenEndpointRequest(ctx, req) {
		return fosite.ErrUnknownRequest
	}
	s := g.s
	m := memoOf(ctx)
	if m == nil || m.refresh == nil {
		return fosite.ErrServerError.WithDebug("refresh response without its request")
	}
	st := m.refresh
	if st.rotated {
		return s.refreshReused(ctx, req, "reused")
	}
	access, accessSig, err := s.strategy.GenerateAccessToken(ctx, req)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	refresh, refreshSig, err := s.strategy.GenerateRefreshToken(ctx, req)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	stored := req.Sanitize(nil)
	stored.SetID(req.GetID())
	atRec, err := toRecord(stored)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	rtRec := atRec
	rtRec.GrantedScopes = st.granted
	writes := []storage.TokenWrite{
		{Kind: storage.KindAccess, Signature: accessSig, Rec: atRec, TTL: s.fstore.lifetimes(storage.KindAccess)},
		{Kind: storage.KindRefresh, Signature: refreshSig, Rec: rtRec, TTL: s.fstore.lifetimes(storage.KindRefresh)},
	}
	if rotates(st.rotation, req.GetClient().IsPublic(), st.bound) {
		var err error
		if rr, ok := s.store.(storage.RefreshRotator); ok {
			// The same two steps, in one round trip where the backend can.
			err = rr.RotateRefresh(ctx, writes, st.sig, refreshSig)
		} else {
			if err := s.fstore.writeTokens(ctx, writes); err != nil {
				return err
			}
			err = s.store.InvalidateRefresh(ctx, st.sig, refreshSig)
		}
		switch {
		case errors.Is(err, storage.ErrConflict):
			// Another request rotated it first: indistinguishable from
			// reuse (no grace window).
			return s.refreshReused(ctx, req, "concurrent")
		case errors.Is(err, storage.ErrNotFound):
			// Revoked (or expired) since it was read: the successor must
			// not outlive it.
			_ = s.store.DeleteToken(ctx, storage.KindAccess, accessSig)
			_ = s.store.DeleteToken(ctx, storage.KindRefresh, refreshSig)
			return errRefreshInvalid()
		case err != nil:
			return storageErr(err)
		}
	} else if err := s.fstore.writeTokens(ctx, writes); err != nil {
		return err
	}
	now := s.now().UTC()
	resp.SetAccessToken(access)
	resp.SetTokenType("bearer")
	resp.SetExpiresIn(req.GetSession().GetExpiresAt(fosite.AccessToken).Sub(now))
	resp.SetScopes(req.GetGrantedScopes())
	resp.SetExtra("refresh_token", refresh)
	return nil
}

// refreshReused answers the use of a rotated refresh token, or a lost
// rotation race: the AS cannot tell the attacker from the client, so
// every access and refresh token of the grant is revoked (RFC 9700
// §4.14.2, RFC 6819 §5.2.2.3) and refresh.reuse is logged. A revocation
// that did not happen is a 503, never an answer that implies it did.
func (s *Server) refreshReused(ctx context.Context, req fosite.AccessRequester, reason string) error {
	if err := s.endGrant(ctx, req, reason); err != nil {
		return storageErr(err)
	}
	return fosite.ErrInvalidGrant.WithHint("The refresh token was already used; the grant has been revoked.")
}

// endGrant is the one place that ends a grant whose rotated-away refresh
// token came back (RFC 9700 §4.14.2) — reused or raced at the token
// endpoint, or revoked by its client (revoke_rotated.go): every access
// and refresh token of the grant is revoked and refresh.reuse emitted
// with reason.
func (s *Server) endGrant(ctx context.Context, req fosite.Requester, reason string) error {
	id := req.GetID()
	errR := s.store.RevokeRequest(ctx, storage.KindRefresh, id)
	errA := s.store.RevokeRequest(ctx, storage.KindAccess, id)
	s.obs.events.Emit(ctx, events.Event{Name: events.RefreshReuse, Reason: reason, ClientID: s.registeredClient(ctx, req.GetClient().GetID())})
	return errors.Join(errR, errA)
}

func errRefreshInvalid() error {
	return fosite.ErrInvalidGrant.WithHint("The refresh token is invalid, expired or revoked.")
}
