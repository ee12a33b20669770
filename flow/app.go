package flow

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/fedas/fedas/federation"
	"github.com/fedas/fedas/storage"
)

// App is one of our own native apps (config apps[]).
type App struct {
	ID             string
	DeepLink       string
	DownstreamRole bool
	Clients        []string
	EnrolledOnly   bool
}

// Pusher stores a pushed authorization request of our own making under a
// fresh single-use request_uri (RFC 9126 §2.2), for a deep link or a
// browser fallback. params are authorization request parameters; the
// implementation resolves redirect_uri when the browser needs one and
// returns ErrNoRedirectURI when it cannot (PROTOCOL-NOTES Q17).
type Pusher interface {
	Push(ctx context.Context, clientID string, params map[string]string, forWeb bool) (requestURI string, expiresIn int, err error)
}

// ErrNoRedirectURI: no registered redirect_uri can be fixed for a browser
// fallback, so redirect_to_web carries no request_uri.
var ErrNoRedirectURI = errors.New("flow: no redirect_uri for a browser fallback")

func (e *Engine) app(id string) *App {
	for i := range e.o.Apps {
		if e.o.Apps[i].ID == id {
			return &e.o.Apps[i]
		}
	}
	return nil
}

// appFor applies the app policy: a federating client's users go to an app
// with downstream_role; a local client's to an app listing it; with
// enrolled_only, only users named by login_hint who enrolled the app. The
// app returns on native_callback_uri, so without one there is no app path.
func (e *Engine) appFor(c Client, req map[string]string) *App {
	if req["native_callback_uri"] == "" {
		return nil
	}
	for i := range e.o.Apps {
		a := &e.o.Apps[i]
		if c.Federating && !a.DownstreamRole {
			continue
		}
		if !c.Federating && !containsStr(a.Clients, c.ID) {
			continue
		}
		if a.EnrolledOnly {
			u, ok := e.users[req["login_hint"]]
			if !ok || !containsStr(u.Apps, a.ID) {
				continue
			}
		}
		return a
	}
	return nil
}

func containsStr(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// deepLink is built from configuration only: the app's base URL plus
// client_id and our request_uri — never the auth_session, never anything
// the request supplied (SECURITY.md A16, C02).
func deepLink(app *App, clientID, requestURI string) string {
	return app.DeepLink + "?" + url.Values{"client_id": {clientID}, "request_uri": {requestURI}}.Encode()
}

func redirectToApp(link, value string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "redirect_to_app", Description: "Continue in the app.", DeepLink: link, AuthSession: value}
}

// startApp answers redirect_to_app for a new request.
//
// Federating client (we are the downstream): the deep link carries a fresh
// request_uri for the upstream's own pushed request (its client and PKCE
// challenge), and the app's code goes back to the upstream's response_uri;
// no session is kept here.
//
// Local client: a "hop to ourselves". We push a request for the client
// bound to a PKCE challenge whose verifier only we hold, so the code the
// app delivers on native_callback_uri cannot be redeemed at the token
// endpoint; the client posts it to us with its auth_session and we issue
// the real code, bound to the client's own PKCE (PROTOCOL-NOTES Q6).
func (e *Engine) startApp(ctx context.Context, c Client, req map[string]string, app *App) error {
	if c.Federating {
		ru, _, err := e.o.Pusher.Push(ctx, c.ID, req, false)
		if err != nil {
			return err
		}
		return redirectToApp(deepLink(app, c.ID, ru), "")
	}
	s, value, _, err := e.newSession(c, req, StageApp, extra{})
	if err != nil {
		return err
	}
	hop, ru, err := e.selfHop(ctx, c.ID, req)
	if err != nil {
		return err
	}
	x := readExtra(s)
	x.Hop = &hop
	x.into(&s)
	if err := e.o.Sessions.CreateAuthSession(ctx, s); err != nil {
		return err
	}
	return redirectToApp(deepLink(app, c.ID, ru), value)
}

// selfHop pushes the request the app will complete.
func (e *Engine) selfHop(ctx context.Context, clientID string, req map[string]string) (federation.Hop, string, error) {
	verifier := randomValue(32)
	sum := sha256.Sum256([]byte(verifier))
	params := map[string]string{
		"code_challenge":        base64.RawURLEncoding.EncodeToString(sum[:]),
		"code_challenge_method": "S256",
		"scope":                 req["scope"],
		"native_callback_uri":   req["native_callback_uri"],
	}
	ru, _, err := e.o.Pusher.Push(ctx, clientID, params, false)
	if err != nil {
		return federation.Hop{}, "", err
	}
	return federation.Hop{ID: randomValue(32), Verifier: verifier, Began: e.o.Now()}, ru, nil
}

// appHop moves an existing session (after a prompt) to redirect_to_app.
func (e *Engine) appHop(ctx context.Context, s storage.AuthSession, h handle, app *App) error {
	hop, ru, err := e.selfHop(ctx, s.ClientID, s.Request)
	if err != nil {
		return err
	}
	value, nh, err := newHandleFor(s.ID)
	if err != nil {
		return err
	}
	x := readExtra(s)
	x.Hop = &hop
	x.into(&s)
	s.Stage, s.Failures, s.StepHash = StageApp, 0, nh.stepHash
	if err := casErr(e.o.Sessions.UpdateAuthSession(ctx, h.stepHash, s)); err != nil {
		return err
	}
	return redirectToApp(deepLink(app, s.ClientID, ru), value)
}

// appReturn handles the follow-up after redirect_to_app: the client posts
// what the app delivered on native_callback_uri (authorization_code, or
// error) with its auth_session, or reports that no app could open the
// deep link (deep_link_unavailable=true), which falls back to the browser.
func (e *Engine) appReturn(ctx context.Context, s storage.AuthSession, h handle, answers url.Values) (Outcome, error) {
	x := readExtra(s)
	if x.Hop == nil {
		return Outcome{}, invalidSession()
	}
	if answers.Get("deep_link_unavailable") == "true" {
		if err := casErr(e.o.Sessions.DeleteAuthSession(ctx, s.ID, h.stepHash)); err != nil {
			return Outcome{}, err
		}
		return Outcome{}, e.webFallback(ctx, s.ClientID, s.Request)
	}
	if answers.Get("error") != "" {
		if err := casErr(e.o.Sessions.DeleteAuthSession(ctx, s.ID, h.stepHash)); err != nil {
			return Outcome{}, err
		}
		return Outcome{}, accessDenied("The app did not complete the sign-in.")
	}
	code := answers.Get("authorization_code")
	if code == "" || len(code) > 4096 {
		return Outcome{}, invalidRequest("The authorization_code from the app is required.")
	}
	locked, lockHash, err := e.lock(ctx, s, h, StageRedeeming)
	if err != nil {
		return Outcome{}, err
	}
	g, err := e.o.Issuer.RedeemCode(ctx, s.ClientID, code, x.Hop.Verifier)
	if err != nil {
		if errors.Is(err, storage.ErrUnavailable) {
			e.unlock(ctx, locked, lockHash, s)
			return Outcome{}, err
		}
		e.o.Logger.Info("app code rejected", zap.Error(err))
		e.end(ctx, s.ID, lockHash)
		return Outcome{}, accessDenied("The code from the app is not valid for this sign-in.")
	}
	if err := casErr(e.o.Sessions.DeleteAuthSession(ctx, s.ID, lockHash)); err != nil {
		return Outcome{}, err
	}
	g.ClientID, g.Request, g.DPoPJKT = s.ClientID, s.Request, codeKey(s)
	return e.issue(ctx, g)
}

// webFallback answers redirect_to_web (FiPA-04 §5.2.2.1.1, 403): with a
// request_uri for our browser authorization endpoint only when the first
// request carried a code_challenge and a redirect_uri can be fixed
// (PROTOCOL-NOTES Q17; SECURITY.md C04).
func (e *Engine) webFallback(ctx context.Context, clientID string, req map[string]string) error {
	out := noNativePath()
	if req["code_challenge"] == "" || e.o.Pusher == nil {
		return out
	}
	ru, exp, err := e.o.Pusher.Push(ctx, clientID, req, true)
	switch {
	case errors.Is(err, ErrNoRedirectURI):
		return out
	case err != nil:
		return err
	}
	out.RequestURI, out.ExpiresIn = ru, exp
	return out
}

// randomValue returns n random bytes, base64url.
func randomValue(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
