package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/storage"
)

// dpopReplay adapts the store's single-use markers to dpop.Replay.
type dpopReplay struct{ st storage.ReplayStore }

// MarkUsed implements dpop.Replay.
func (r dpopReplay) MarkUsed(ctx context.Context, key string, exp time.Time) error {
	err := r.st.MarkUsed(ctx, key, exp)
	if errors.Is(err, storage.ErrConflict) {
		return dpop.ErrReplay
	}
	return err
}

// dpopProof verifies the request's DPoP proof, if it carries one, for
// the endpoint path (RFC 9449 §4.3; htu from our configured issuer, never
// from forwarded headers: SECURITY-RESULTS.md F07). It returns the key thumbprint,
// or "" without a proof.
func (s *Server) dpopProof(c echo.Context, path, accessToken string) (string, error) {
	vals := c.Request().Header.Values("DPoP")
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", errInvalidDPoP("Send exactly one DPoP header.")
	}
	p, err := s.dpop.Verify(c.Request().Context(), vals[0], c.Request().Method, s.url(path), accessToken)
	switch {
	case errors.Is(err, dpop.ErrInvalidProof):
		return "", errInvalidDPoP("The DPoP proof is not valid: " + err.Error())
	case err != nil:
		return "", err
	}
	return p.JKT, nil
}

func errInvalidDPoP(desc string) *protoError {
	return newError(http.StatusBadRequest, "invalid_dpop_proof", desc)
}
