package admin

import (
	"context"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/admin/probe"
	"github.com/fedas/fedas/config"
)

// CheckDownstream probes the stored downstream id as this instance would
// use it (admin/probe: metadata, issuer, endpoints, JWKS, and a real PAR
// with our client authentication), through the SSRF guard.
func (s *Service) CheckDownstream(ctx context.Context, id string) (probe.Report, error) {
	_, p, err := s.head(ctx)
	if err != nil {
		return probe.Report{}, err
	}
	i := collections[Downstreams].index(p, id)
	if i < 0 {
		return probe.Report{}, errNotFound("downstream " + strconv.Quote(id))
	}
	// Compose resolves the downstream's secret references on this
	// instance, exactly as serving it would.
	cfg, err := config.Compose(s.o.Base, p)
	if err != nil {
		return probe.Report{}, validationError(err, "")
	}
	return probe.Check(ctx, cfg.Downstreams[i], s.o.Base.Issuer, "", probe.Options{Net: s.net}), nil
}

// Discover prefills a downstream from issuer's metadata (RFC 8414 §3),
// fetched through the SSRF guard; the admin adds its id and our
// client_id there before creating it.
func (s *Service) Discover(ctx context.Context, issuer string) (Resource, []probe.Step, error) {
	if issuer == "" {
		return nil, nil, &Error{Status: 400, Code: "invalid_request", Description: "issuer is required", Problems: []Problem{{Path: "issuer", Field: "issuer", Message: "required"}}}
	}
	d, steps, err := probe.Discover(ctx, issuer, probe.Options{Net: s.net})
	if err != nil {
		if len(steps) == 0 {
			return nil, nil, &Error{Status: 400, Code: "invalid_request", Description: "discovery failed", Problems: []Problem{{Path: "issuer", Field: "issuer", Message: err.Error()}}}
		}
		return nil, steps, nil
	}
	r, err := toResource(&d)
	if err != nil {
		return nil, nil, err
	}
	return r, steps, nil
}

func (a *Admin) discover(c echo.Context) error {
	body, err := jsonObject(c)
	if err != nil {
		return writeErr(c, err)
	}
	iss, ok := body["issuer"].(string)
	if !ok || len(body) != 1 {
		return writeErr(c, &Error{Status: 400, Code: "invalid_request", Description: `the body must be {"issuer": "https://…"}`, Problems: []Problem{{Path: "issuer", Field: "issuer", Message: "required, a string"}}})
	}
	d, steps, err := a.svc.Discover(c.Request().Context(), iss)
	if err != nil {
		return writeErr(c, err)
	}
	if steps == nil {
		steps = []probe.Step{}
	}
	return c.JSON(http.StatusOK, map[string]any{"downstream": d, "steps": steps})
}

func (a *Admin) checkDownstream(c echo.Context) error {
	rep, err := a.svc.CheckDownstream(c.Request().Context(), idParam(c))
	if err != nil {
		return writeErr(c, err)
	}
	return c.JSON(http.StatusOK, rep)
}
