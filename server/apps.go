package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"

	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/storage"
)

// PathAppComplete is the app completion API: our own app, invoked by a
// deep link, completes a pushed request for another client.
const PathAppComplete = "/native/app/complete"

func randomURLSafe(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Push implements flow.Pusher: it stores a pushed request of our own
// making (a deep link's, or a browser fallback's) under a fresh
// request_uri, exactly as our PAR endpoint stores a client's (RFC 9126
// §2.2), so one consumer path serves both.
func (s *Server) Push(ctx context.Context, clientID string, params map[string]string, forWeb bool) (string, int, error) {
	client, ok := s.clients.lookup(clientID)
	if !ok {
		return "", 0, fmt.Errorf("push: unknown client %q", clientID)
	}
	form := url.Values{"client_id": {clientID}, "response_type": {"code"}}
	for k, v := range params {
		if v != "" {
			form.Set(k, v)
		}
	}
	redirect := form.Get("redirect_uri")
	if forWeb {
		// PROTOCOL-NOTES Q17: a browser fallback needs a fixed,
		// registered redirect_uri: the one given, or the only one.
		switch {
		case redirect != "" && exactMatch(redirect, client.GetRedirectURIs()):
		case redirect == "" && len(client.GetRedirectURIs()) == 1:
			redirect = client.GetRedirectURIs()[0]
		default:
			return "", 0, flow.ErrNoRedirectURI
		}
		form.Set("redirect_uri", redirect)
	}
	rec := storage.Record{
		RequestID:       randomURLSafe(16),
		ClientID:        clientID,
		RequestedAt:     time.Now().UTC(),
		Form:            form.Encode(),
		RequestedScopes: strings.Fields(form.Get("scope")),
		GrantedScopes:   strings.Fields(form.Get("scope")),
		ResponseTypes:   []string{"code"},
		State:           form.Get("state"),
		RedirectURI:     redirect,
		Session:         json.RawMessage(`{}`),
	}
	ru := requestURIPrefix + randomURLSafe(32)
	ttl := s.cfg.Lifetimes.PushedRequest
	if err := s.store.CreateToken(ctx, storage.KindPAR, ru, rec, ttl); err != nil {
		return "", 0, err
	}
	return ru, int(ttl / time.Second), nil
}

// errCodeRejected is any reason an internal redemption fails; the caller
// answers access_denied without detail.
var errCodeRejected = errors.New("code rejected")

// RedeemCode implements flow.CodeIssuer: the one-time, internal
// redemption of the code our app delivered on native_callback_uri (local
// redirect_to_app). The same checks as the token endpoint: bound to the
// client, unexpired, PKCE S256 against the verifier only we hold, and
// invalidated in one atomic step.
func (s *Server) RedeemCode(ctx context.Context, clientID, code, verifier string) (flow.Grant, error) {
	sig := s.strategy.AuthorizeCodeSignature(ctx, code)
	rec, err := s.store.Token(ctx, storage.KindCode, sig)
	switch {
	case errors.Is(err, storage.ErrUnavailable):
		return flow.Grant{}, err
	case err != nil:
		return flow.Grant{}, fmt.Errorf("%w: %v", errCodeRejected, err)
	case rec.ClientID != clientID:
		return flow.Grant{}, fmt.Errorf("%w: issued to another client", errCodeRejected)
	}
	form, _ := url.ParseQuery(rec.Form)
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(form.Get("code_challenge"))) != 1 {
		return flow.Grant{}, fmt.Errorf("%w: PKCE mismatch", errCodeRejected)
	}
	sess := newSession()
	if err := json.Unmarshal(rec.Session, sess); err != nil {
		return flow.Grant{}, fmt.Errorf("%w: corrupt session", errCodeRejected)
	}
	if exp := sess.GetExpiresAt(fosite.AuthorizeCode); exp.IsZero() || time.Now().After(exp) {
		return flow.Grant{}, fmt.Errorf("%w: expired", errCodeRejected)
	}
	if err := s.store.InvalidateCode(ctx, sig); err != nil {
		if errors.Is(err, storage.ErrUnavailable) {
			return flow.Grant{}, err
		}
		return flow.Grant{}, fmt.Errorf("%w: already used", errCodeRejected)
	}
	_ = s.store.DeleteToken(ctx, storage.KindPKCE, sig)
	return grantFromSession(sess), nil
}

// grantFromSession recovers who a code or token was issued for.
func grantFromSession(sess *fosite.DefaultSession) flow.Grant {
	g := flow.Grant{Subject: sess.Subject, Username: sess.Username, Claims: map[string]any{}}
	for k, v := range sess.Extra {
		switch k {
		case "auth_time":
			if f, ok := v.(float64); ok {
				g.AuthTime = time.Unix(int64(f), 0)
			}
		case "amr":
			if list, ok := v.([]any); ok {
				for _, a := range list {
					if str, ok := a.(string); ok {
						g.AMR = append(g.AMR, str)
					}
				}
			}
		case "nonce":
		default:
			g.Claims[k] = v
		}
	}
	if g.AuthTime.IsZero() {
		g.AuthTime = time.Now()
	}
	return g
}

// appComplete serves the app completion API. Our app, opened by a
// redirect_to_app deep link, holds an access token of ours for its
// signed-in user (it signed in through the native endpoint as a
// first-party client). It posts the deep link's request_uri with that
// token; we consume the request_uri (single use, unexpired), require the
// original client's native_callback_uri to be registered, and return an
// authorization code for the original client, bound to the PKCE
// challenge of the pushed request, with the exact callback to invoke.
func (s *Server) appComplete(c echo.Context) error {
	ctx := c.Request().Context()
	authz := c.Request().Header.Get("Authorization")
	if !strings.HasPrefix(authz, "Bearer ") {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="fedas"`)
		return s.writeError(c, newError(http.StatusUnauthorized, "invalid_token", "An access token of the app's user is required."))
	}
	sess := newSession()
	_, ar, err := s.oauth.IntrospectToken(ctx, strings.TrimPrefix(authz, "Bearer "), fosite.AccessToken, sess)
	if err != nil {
		if errors.Is(err, fosite.ErrTemporarilyUnavailable) {
			return s.writeError(c, err)
		}
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="fedas", error="invalid_token"`)
		return s.writeError(c, newError(http.StatusUnauthorized, "invalid_token", "The access token is not valid."))
	}
	if !s.isApp(ar.GetClient().GetID()) {
		return s.writeError(c, newError(http.StatusForbidden, "insufficient_scope", "Only our own apps may complete requests."))
	}
	form := formOf(c)
	ru := form.Get("request_uri")
	if !strings.HasPrefix(ru, requestURIPrefix) || len(ru) > 256 {
		return s.writeError(c, errInvalidRequest("The request_uri is not valid."))
	}
	if peek, err := s.store.Token(ctx, storage.KindPAR, ru); err == nil && form.Get("client_id") != "" && peek.ClientID != form.Get("client_id") {
		// Checked before consuming: a wrong client_id must not burn the
		// request for its rightful owner.
		return s.writeError(c, errInvalidRequest("The request_uri was not issued for this client."))
	}
	rec, err := s.store.ConsumeToken(ctx, storage.KindPAR, ru)
	if errors.Is(err, storage.ErrNotFound) {
		return s.writeError(c, errInvalidRequest("The request_uri is invalid, expired or already used."))
	} else if err != nil {
		return s.writeError(c, err)
	}
	if cid := form.Get("client_id"); cid != "" && cid != rec.ClientID {
		return s.writeError(c, errInvalidRequest("The request_uri was not issued for this client."))
	}
	client, ok := s.clients.lookup(rec.ClientID)
	if !ok {
		return s.writeError(c, errInvalidRequest("The client is no longer registered."))
	}
	pushed, _ := url.ParseQuery(rec.Form)
	cb := pushed.Get("native_callback_uri")
	if cb == "" || !exactMatch(cb, client.NativeCallbackURIs) {
		return s.writeError(c, errInvalidRequest("The request has no registered native_callback_uri."))
	}
	g := grantFromSession(ar.GetSession().(*fosite.DefaultSession))
	g.ClientID = rec.ClientID
	g.Request = map[string]string{}
	for _, k := range []string{"code_challenge", "code_challenge_method", "scope", "nonce"} {
		if v := pushed.Get(k); v != "" {
			g.Request[k] = v
		}
	}
	g.DPoPJKT = pushed.Get("dpop_jkt")
	if !containsAMR(g.AMR, "app") {
		g.AMR = append(g.AMR, "app")
	}
	code, err := s.IssueCode(ctx, g)
	if err != nil {
		return s.writeError(c, err)
	}
	q := url.Values{"authorization_code": {code}, "iss": {s.cfg.Issuer}}
	return writeJSON(c, http.StatusOK, map[string]string{
		"authorization_code":  code,
		"iss":                 s.cfg.Issuer,
		"native_callback_uri": cb,
		"callback":            cb + sep(cb) + q.Encode(),
	})
}

func sep(u string) string {
	if strings.Contains(u, "?") {
		return "&"
	}
	return "?"
}

func containsAMR(list []string, v string) bool { return exactMatch(v, list) }

func (s *Server) isApp(clientID string) bool {
	for _, a := range s.cfg.Apps {
		if a.ClientID == clientID {
			return true
		}
	}
	return false
}
