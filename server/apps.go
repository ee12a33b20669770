package server

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"

	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/flow"
)

// PathAppComplete is the app completion API: our own app, invoked by a
// redirect_to_app deep link, completes the pushed request for its user.
const PathAppComplete = "/native/app/complete"

func randomURLSafe(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// appComplete serves the app completion API. The app presents an access
// token of ours for its signed-in user, validated as a resource server
// would (protectedUser); the engine checks the deep link and the user and
// answers with the callback the app invokes (docs/protocol.md
// "App-to-app").
func (s *Server) appComplete(c echo.Context) error {
	ctx := c.Request().Context()
	user, err := s.protectedUser(c, PathAppComplete)
	if err != nil {
		return s.writeError(c, err)
	}
	out, err := s.flow.Handle(ctx, flow.Request{Channel: flow.ChannelAppComplete, Policy: s.snapshot(ctx), Form: formOf(c), AppUser: user, ClientIP: s.clientIP(c)})
	if err != nil {
		return s.writeError(c, err)
	}
	return s.renderJSON(c, out)
}

// protectedUser validates the access token of a request to a protected
// endpoint of ours (RFC 6750 §2.1; RFC 9449 §7): an access token only —
// never a refresh token or a code —, in the Authorization header only;
// a DPoP-bound token only with the DPoP scheme and a valid proof for its
// key and for this token (ath); a bearer token only with the Bearer
// scheme. Failures are 401 invalid_token with WWW-Authenticate.
func (s *Server) protectedUser(c echo.Context, path string) (*flow.AppUser, error) {
	ar, ds, _, err := s.protectedToken(c, path)
	if err != nil {
		return nil, err
	}
	return appUser(ar.GetClient().GetID(), ds), nil
}

// protectedToken is the one access-token check of our protected
// endpoints (the app completion API, the reach endpoints): see
// protectedUser. It returns the token's request, its session and the
// DPoP key it is bound to ("" for a bearer token).
func (s *Server) protectedToken(c echo.Context, path string) (fosite.AccessRequester, *fosite.DefaultSession, string, error) {
	ctx := c.Request().Context()
	h := c.Request().Header.Values("Authorization")
	challenge := func(desc string) error {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="fedas", error="invalid_token"`)
		c.Response().Header().Add("WWW-Authenticate", `DPoP realm="fedas", error="invalid_token", algs="`+dpopAlgs()+`"`)
		return newError(http.StatusUnauthorized, "invalid_token", desc)
	}
	if len(h) != 1 {
		return nil, nil, "", challenge("An access token is required in the Authorization header.")
	}
	scheme, token, ok := strings.Cut(h[0], " ")
	if !ok || token == "" || strings.ContainsAny(token, " \t") {
		return nil, nil, "", challenge("The Authorization header is malformed.")
	}
	sess := newSession()
	use, ar, err := s.oauth.IntrospectToken(ctx, token, fosite.AccessToken, sess)
	if err != nil {
		if unavailable(err) {
			return nil, nil, "", errUnavailable()
		}
		return nil, nil, "", challenge("The access token is not valid.")
	}
	if use != fosite.AccessToken {
		return nil, nil, "", challenge("Only an access token is accepted here.")
	}
	ds, ok := ar.GetSession().(*fosite.DefaultSession)
	if !ok {
		return nil, nil, "", challenge("The access token is not valid.")
	}
	bound, _ := ds.Extra["dpop_jkt"].(string)
	switch {
	case bound == "" && strings.EqualFold(scheme, "Bearer"):
	case bound != "" && strings.EqualFold(scheme, "DPoP"):
		jkt, err := s.dpopProof(c, path, token)
		if err != nil {
			var pe *protoError
			if errors.As(err, &pe) {
				return nil, nil, "", challenge("The DPoP proof is not valid for this access token.")
			}
			return nil, nil, "", err
		}
		if jkt != bound {
			return nil, nil, "", challenge("The DPoP proof is not for the key this access token is bound to.")
		}
	case bound != "":
		// RFC 9449 §7.1: a DPoP-bound token used as a bearer token.
		return nil, nil, "", challenge("This access token is bound to a DPoP key: use the DPoP scheme with a proof.")
	default:
		return nil, nil, "", challenge("This access token is a bearer token: use the Bearer scheme.")
	}
	return ar, ds, bound, nil
}

// appUser recovers who an access token of the app's client was issued
// for, and when and how that user authenticated.
func appUser(clientID string, sess *fosite.DefaultSession) *flow.AppUser {
	g := &flow.AppUser{ClientID: clientID, Subject: sess.Subject, Username: sess.Username}
	// Stored sessions come back from JSON: numbers as float64.
	switch at := sess.Extra["auth_time"].(type) {
	case float64:
		g.AuthTime = time.Unix(int64(at), 0)
	case int64:
		g.AuthTime = time.Unix(at, 0)
	}
	g.ACR, _ = sess.Extra["acr"].(string)
	if list, ok := sess.Extra["amr"].([]any); ok {
		for _, a := range list {
			if str, ok := a.(string); ok && str != "app" {
				g.AMR = append(g.AMR, str)
			}
		}
	}
	return g
}

func dpopAlgs() string {
	out := make([]string, len(dpop.Algs))
	for i, a := range dpop.Algs {
		out[i] = string(a)
	}
	return strings.Join(out, " ")
}

func sep(u string) string {
	if strings.Contains(u, "?") {
		return "&"
	}
	return "?"
}
