package server

import (
	"context"
	"errors"

	"github.com/ory/fosite"

	"github.com/fedas/fedas/storage"
)

// rotatedRevocation is RFC 7009 revocation that also ends a grant when
// its client revokes one of the grant's rotated-away refresh tokens.
// fosite's handler finds such a token inactive and answers 200 having
// revoked nothing, so a client that signs out after a thief refreshed
// first (its stored token is then the rotated-away one) would leave the
// thief's chain alive. Presenting an invalidated refresh token is exactly
// the signal RFC 9700 §4.14.2 relies on, so the grant is revoked as on
// reuse at the token endpoint (refresh.go, refreshReused). Another
// client's revocation still changes nothing (RFC 7009 §2.1), and any
// other token goes to fosite's handler.
type rotatedRevocation struct {
	s    *Server
	next fosite.RevocationHandler
}

// RevokeToken implements fosite.RevocationHandler.
func (h rotatedRevocation) RevokeToken(ctx context.Context, token string, tt fosite.TokenType, client fosite.Client) error {
	sig := h.s.strategy.RefreshTokenSignature(ctx, token)
	ar, err := h.s.fstore.GetRefreshTokenSession(ctx, sig, nil)
	if !errors.Is(err, fosite.ErrInactiveToken) || ar == nil || ar.GetClient().GetID() != client.GetID() {
		return h.next.RevokeToken(ctx, token, tt, client)
	}
	if err := h.s.endGrant(ctx, ar, "revoked"); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fosite.ErrTemporarilyUnavailable.WithWrap(err)
	}
	return nil
}
