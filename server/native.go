package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"

	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/storage"
)

// pkceChallenge is the shape of an S256 code_challenge (RFC 7636 §4.2).
var pkceChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// paramLimits bound the carried parameters (an auth_session stays small:
// SECURITY.md J05).
var paramLimits = map[string]int{
	"scope": 1024, "state": 512, "nonce": 512, "login_hint": 256, "acr_values": 256,
	"max_age": 10, "native_callback_uri": 2048, "code_challenge": 43, "code_challenge_method": 5,
	"redirect_uri": 2048,
}

// native serves the native authorization endpoint (FiPA-04 §5: the
// "authorization challenge endpoint"; the federation draft's "native
// authorization endpoint"). A request carrying auth_session continues a
// session; any other is an initial request.
func (s *Server) native(c echo.Context) error {
	form := formOf(c)
	ctx := c.Request().Context()
	jkt, err := s.dpopProof(c, PathNative, "")
	if err != nil {
		return s.writeError(c, err)
	}
	if as := form.Get("auth_session"); as != "" {
		code, err := s.flow.ContinueDPoP(ctx, form.Get("client_id"), as, form, jkt)
		if err != nil {
			return s.writeError(c, err)
		}
		return writeJSON(c, http.StatusOK, map[string]string{"authorization_code": code.Code})
	}
	if form.Get("request_uri") != "" {
		return s.writeError(c, s.nativeFromPAR(c, form, jkt))
	}
	client, err := s.nativeClient(c, form)
	if err != nil {
		return s.writeError(c, err)
	}
	req, err := s.validateInitial(client, form)
	if err != nil {
		return s.writeError(c, err)
	}
	fc := flowClient(client)
	fc.DPoPJKT = jkt
	err = s.flow.Start(ctx, fc, req)
	return s.writeError(c, err)
}

// nativeFromPAR starts a session in the downstream role (PROTOCOL-NOTES
// Q3; federation draft §4.3.1): a federating AS pushed the request to our
// PAR endpoint with client authentication, and the device presents
// client_id + request_uri. The request_uri authenticates the client: it is
// consumed atomically, must be unexpired and bound to that client
// (RFC 9126 §4). Password/OTP challenges go to the client only when its
// registration opts in (Q10).
func (s *Server) nativeFromPAR(c echo.Context, form url.Values, jkt string) error {
	ctx := c.Request().Context()
	id, ru := form.Get("client_id"), form.Get("request_uri")
	if id == "" {
		return errInvalidRequest("The client_id parameter is required with request_uri.")
	}
	if !strings.HasPrefix(ru, requestURIPrefix) || len(ru) > 256 {
		// Only our own request_uris: never fetch a URL (SECURITY.md K04).
		return errInvalidRequest("The request_uri is not valid.")
	}
	client, ok := s.clients.lookup(id)
	if !ok {
		return newError(http.StatusUnauthorized, "invalid_client", "Unknown client.")
	}
	// Check the binding before consuming, so that a wrong client_id
	// cannot burn the request for its rightful owner.
	if peek, err := s.store.Token(ctx, storage.KindPAR, ru); err == nil && peek.ClientID != id {
		return errInvalidRequest("The request_uri was not issued to this client.")
	}
	rec, err := s.store.ConsumeToken(ctx, storage.KindPAR, ru)
	if errors.Is(err, storage.ErrNotFound) {
		return errInvalidRequest("The request_uri is invalid, expired or already used.")
	} else if err != nil {
		return err
	}
	if rec.ClientID != id {
		return errInvalidRequest("The request_uri was not issued to this client.")
	}
	if !client.Federating && !client.FirstParty {
		return newError(http.StatusBadRequest, "unauthorized_client", "This client may not use the native authorization endpoint.")
	}
	pushed, err := url.ParseQuery(rec.Form)
	if err != nil {
		return errInvalidRequest("The pushed request is not valid.")
	}
	if rt := pushed.Get("response_type"); rt != "code" {
		return newError(http.StatusBadRequest, "unsupported_response_type", "Only response_type=code is supported.")
	}
	if rec.RedirectURI != "" {
		pushed.Set("redirect_uri", rec.RedirectURI)
	}
	pushed.Set("scope", strings.Join(rec.GrantedScopes, " "))
	if len(rec.GrantedScopes) == 0 {
		pushed.Set("scope", strings.Join(rec.RequestedScopes, " "))
	}
	req, err := s.validateInitial(client, pushed)
	if err != nil {
		return err
	}
	if k := pushed.Get("dpop_jkt"); k != "" {
		// The federating AS bound the code to its key at PAR time.
		req["dpop_jkt"] = k
	}
	fc := flowClient(client)
	fc.DPoPJKT = jkt
	return s.flow.StartFromPAR(ctx, fc, req)
}

func flowClient(c *Client) flow.Client {
	return flow.Client{ID: c.GetID(), Federating: c.Federating, CredentialChallenges: c.FirstParty || c.AllowCredentialChallenges}
}

// nativeClient identifies the client of an initial request. A client that
// must authenticate at the token endpoint must authenticate here too
// (FiPA-04 §4.1, §9.4); only first-party clients may use the endpoint
// (FiPA-04 §1.1, SECURITY.md A17).
func (s *Server) nativeClient(c echo.Context, form url.Values) (*Client, error) {
	id := form.Get("client_id")
	if basic, _, ok := c.Request().BasicAuth(); ok && id == "" {
		id, _ = url.QueryUnescape(basic)
	}
	if id == "" {
		return nil, errInvalidRequest("The client_id parameter is required.")
	}
	client, ok := s.clients.lookup(id)
	if !ok {
		return nil, newError(http.StatusUnauthorized, "invalid_client", "Unknown client.")
	}
	if !client.IsPublic() {
		if _, err := s.oauth.(*fosite.Fosite).AuthenticateClient(c.Request().Context(), c.Request(), form); err != nil {
			return nil, fositeErr(err)
		}
	}
	if !client.FirstParty {
		return nil, newError(http.StatusBadRequest, "unauthorized_client", "This client may not use the native authorization endpoint.")
	}
	return client, nil
}

// validateInitial checks an initial request and returns the parameters the
// session carries (FiPA-04 §5.1).
func (s *Server) validateInitial(client *Client, form url.Values) (map[string]string, error) {
	switch rt := form.Get("response_type"); {
	case rt == "":
		return nil, errInvalidRequest("The response_type parameter is required.")
	case rt != "code":
		return nil, newError(http.StatusBadRequest, "unsupported_response_type", "Only response_type=code is supported.")
	}
	req := map[string]string{}
	for _, k := range flow.Carried {
		v := form.Get(k)
		if len(v) > paramLimits[k] {
			return nil, errInvalidRequest("The " + k + " parameter is too long.")
		}
		if v != "" {
			req[k] = v
		}
	}
	cc, method := req["code_challenge"], req["code_challenge_method"]
	switch {
	case cc == "" && method != "":
		return nil, errInvalidRequest("code_challenge_method without code_challenge.")
	case cc == "" && client.IsPublic():
		// RFC 9700 §2.1.1: PKCE is required for public clients.
		return nil, errInvalidRequest("PKCE is required: send code_challenge and code_challenge_method=S256.")
	case cc != "" && method != "S256":
		return nil, errInvalidRequest("Only code_challenge_method=S256 is supported.")
	case cc != "" && !pkceChallenge.MatchString(cc):
		return nil, errInvalidRequest("The code_challenge is not a valid S256 challenge.")
	}
	for _, sc := range strings.Fields(req["scope"]) {
		if !fosite.ExactScopeStrategy(client.GetScopes(), sc) {
			return nil, newError(http.StatusBadRequest, "invalid_scope", "A requested scope is not allowed for this client.")
		}
	}
	if ru := req["redirect_uri"]; ru != "" && !exactMatch(ru, client.GetRedirectURIs()) {
		return nil, errInvalidRequest("The redirect_uri is not registered for this client.")
	}
	if cb := req["native_callback_uri"]; cb != "" && !exactMatch(cb, client.NativeCallbackURIs) {
		// Exact string comparison only (RFC 9700 §2.1; PROTOCOL-NOTES Q15).
		return nil, errInvalidRequest("The native_callback_uri is not registered for this client.")
	}
	return req, nil
}

func exactMatch(v string, list []string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// IssueCode implements flow.CodeIssuer on fosite: it mints an authorization
// code with fosite's HMAC strategy and stores the code and its PKCE
// request in one storage step, bound to the client, the PKCE challenge,
// the scopes, the user, auth_time and amr. The token endpoint then redeems
// it through fosite's authorization-code and PKCE handlers.
func (s *Server) IssueCode(ctx context.Context, g flow.Grant) (string, error) {
	client, ok := s.clients.lookup(g.ClientID)
	if !ok {
		return "", newError(http.StatusBadRequest, "invalid_client", "The client is no longer registered.")
	}
	now := time.Now().UTC()
	ar := fosite.NewAuthorizeRequest()
	ar.Client = client
	ar.RequestedAt = now
	ar.ResponseTypes = fosite.Arguments{"code"}
	form := url.Values{"client_id": {client.GetID()}, "response_type": {"code"}}
	for _, k := range []string{"code_challenge", "code_challenge_method", "nonce", "scope"} {
		if v := g.Request[k]; v != "" {
			form.Set(k, v)
		}
	}
	ar.Form = form
	for _, sc := range strings.Fields(g.Request["scope"]) {
		ar.AppendRequestedScope(sc)
		ar.GrantScope(sc)
	}
	sess := newSession()
	sess.Subject, sess.Username = g.Subject, g.Username
	sess.Extra = map[string]any{}
	for k, v := range g.Claims {
		sess.Extra[k] = v
	}
	sess.Extra["auth_time"] = g.AuthTime.Unix()
	if len(g.AMR) > 0 {
		sess.Extra["amr"] = g.AMR
	}
	if n := g.Request["nonce"]; n != "" {
		sess.Extra["nonce"] = n
	}
	if g.DPoPJKT != "" {
		// RFC 9449 §10: the code is bound to the device key.
		sess.Extra["dpop_jkt"] = g.DPoPJKT
	}
	ar.Session = sess
	code, sig, err := s.strategy.GenerateAuthorizeCode(ctx, ar)
	if err != nil {
		return "", err
	}
	sess.SetExpiresAt(fosite.AuthorizeCode, now.Add(s.cfg.Lifetimes.AuthorizationCode))
	rec, err := toRecord(ar)
	if err != nil {
		return "", err
	}
	if err := s.store.CreateCode(ctx, sig, rec, s.cfg.Lifetimes.AuthorizationCode); err != nil {
		return "", err
	}
	return code, nil
}

// newSession is the session prototype for every fosite request: subject,
// username, expiries and extra claims (auth_time, amr), introspectable.
func newSession() *fosite.DefaultSession {
	return &fosite.DefaultSession{ExpiresAt: map[fosite.TokenType]time.Time{}, Extra: map[string]any{}}
}
