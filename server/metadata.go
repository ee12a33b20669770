package server

import (
	"context"
	"net/http"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/dpop"
)

// Client authentication methods each endpoint accepts (RFC 8414 §2):
// every one is exercised per endpoint by TestMetadata_AdvertisedAuthWorks.
// Introspection refuses public clients (introspect.go); revocation takes
// them by client_id (RFC 7009 §2.1); PAR only confidential ones
// (RFC 9126 §2).
var (
	confidentialAuthMethods = []string{"client_secret_basic", "client_secret_post", "private_key_jwt"}
	anyAuthMethods          = append([]string{"none"}, confidentialAuthMethods...)
)

func algNames(algs []jose.SignatureAlgorithm) []string {
	out := make([]string, len(algs))
	for i, a := range algs {
		out[i] = string(a)
	}
	return out
}

// Metadata returns the RFC 8414 §2 authorization server metadata. The
// native endpoint is published under both names (docs/decisions.md Q1):
// authorization_challenge_endpoint (FiPA-04 §8) and
// native_authorization_endpoint (federation draft §4.1). The
// private_key_jwt algorithms are the ones clientauth.go verifies, and the
// DPoP ones the dpop package's allow-list (RFC 9449 §5.1).
func (s *Server) Metadata() map[string]any {
	assertion := algNames(assertionAlgs)
	m := map[string]any{
		"issuer":                                                       s.cfg.Issuer,
		"authorization_challenge_endpoint":                             s.url(PathNative),
		"native_authorization_endpoint":                                s.url(PathNative),
		"authorization_endpoint":                                       s.url(PathAuthorize),
		"authorization_response_iss_parameter_supported":               true,
		"id_token_signing_alg_values_supported":                        []string{"ES256"},
		"subject_types_supported":                                      []string{"public"},
		"token_endpoint":                                               s.url(PathToken),
		"pushed_authorization_request_endpoint":                        s.url(PathPAR),
		"revocation_endpoint":                                          s.url(PathRevoke),
		"introspection_endpoint":                                       s.url(PathIntrospect),
		"jwks_uri":                                                     s.url(PathJWKS),
		"response_types_supported":                                     []string{"code"},
		"grant_types_supported":                                        []string{"authorization_code", "refresh_token", "client_credentials"},
		"code_challenge_methods_supported":                             []string{"S256"},
		"token_endpoint_auth_methods_supported":                        slices.Clone(anyAuthMethods),
		"token_endpoint_auth_signing_alg_values_supported":             assertion,
		"pushed_authorization_request_endpoint_auth_methods_supported": slices.Clone(confidentialAuthMethods),
		"revocation_endpoint_auth_methods_supported":                   slices.Clone(anyAuthMethods),
		"revocation_endpoint_auth_signing_alg_values_supported":        assertion,
		"introspection_endpoint_auth_methods_supported":                slices.Clone(confidentialAuthMethods),
		"introspection_endpoint_auth_signing_alg_values_supported":     assertion,
		"dpop_signing_alg_values_supported":                            algNames(dpop.Algs),
		"scopes_supported":                                             s.policy.Current().Config.Scopes,
		"require_pushed_authorization_requests":                        false,
	}
	if s.dc != nil {
		// Not registered anywhere yet (docs/protocol.md "Digital
		// credentials", "Discovery"): the presentation paths served, and
		// OpenID4VCI 1.1's Interactive Authorization Endpoint, which is our
		// native endpoint speaking that dialect.
		if s.dc.internal != nil {
			m["native_authorization_dc_flows_supported"] = []string{"dc_api", "same_device", "cross_device"}
			m["interactive_authorization_endpoint"] = s.url(PathNative)
		} else {
			// The external verifier serves the wallet URL paths only
			// (dc/external: no DC API, no Interactive Authorization).
			m["native_authorization_dc_flows_supported"] = []string{"same_device", "cross_device"}
		}
	}
	if s.reach != nil {
		s.reachMetadata(m)
	}
	if types := s.policy.Current().Config.RARTypeNames(); len(types) > 0 {
		m["authorization_details_types_supported"] = types // RFC 9396 §10
	}
	return m
}

func (s *Server) metadata(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSON(http.StatusOK, s.Metadata())
}

// jwksHandler publishes our public signing keys (RFC 7517 §5): every
// configured key, the active one and those kept for tokens they signed
// (keys.go).
func (s *Server) jwksHandler(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSON(http.StatusOK, s.keys.jwks)
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz reports ready only while storage answers within a second.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), readinessDeadline)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		c.Response().Header().Set("Retry-After", "1")
		return writeJSON(c, http.StatusServiceUnavailable, errorBody{Error: "temporarily_unavailable", ErrorDescription: "Storage is not reachable."})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}
