package flow

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/policy"
)

// appFor applies the app policy: a federating client's users go to an app
// with downstream_role; a local client's to an app listing it; with
// enrolled_only, only users named by login_hint who enrolled the app. The
// app returns on native_callback_uri, so without one there is no app path.
func (e *Engine) appFor(ctx context.Context, st starter) (policy.App, bool) {
	if st.req["native_callback_uri"] == "" {
		return policy.App{}, false
	}
	for _, a := range st.snap.Apps {
		if st.client.Federating && !a.DownstreamRole {
			continue
		}
		if !st.client.Federating && !contains(a.Clients, st.client.GetID()) {
			continue
		}
		if a.EnrolledOnly {
			u, ok, err := st.snap.Users().User(ctx, st.req["login_hint"])
			if err != nil || !ok || !contains(u.Apps, a.ID) {
				continue
			}
		}
		return a, true
	}
	return policy.App{}, false
}

// deepLink pushes the request the app completes for session s (kind
// PushApp, naming the session) and builds the link from configuration
// only: the app's base URL plus client_id and that request_uri — never
// the auth_session, never anything the request supplied.
func (e *Engine) deepLink(ctx context.Context, s *session, app policy.App) (string, error) {
	ru, _, err := e.push(ctx, PushApp, s.ClientID, map[string]string{"scope": s.Request["scope"], "native_callback_uri": s.Request["native_callback_uri"]}, s.ID)
	if err != nil {
		return "", err
	}
	return app.DeepLink + "?" + url.Values{"client_id": {s.ClientID}, "request_uri": {ru}}.Encode(), nil
}

// startApp answers redirect_to_app for a new request (federation draft
// §4.3.2). The deep link carries a request_uri of kind PushApp that names
// the session; only the app completion API takes it.
//
// Federating client (we are the downstream): the app completion mints the
// code for the upstream, bound to its pushed PKCE challenge and dpop_jkt;
// the device carries it to the upstream's response_uri, so no auth_session
// is returned.
//
// Local client: a "hop to ourselves". The app completion authenticates the
// session and returns a one-time value on native_callback_uri; the client
// posts it with its auth_session and gets the code, bound to its own PKCE
// and DPoP key (docs/decisions.md Q6).
func (e *Engine) startApp(ctx context.Context, st starter, app policy.App) (Outcome, error) {
	s := st.session(e, StageApp)
	s.x.App, s.x.Downstream = app.ID, st.client.Federating
	s.hint(st.req["login_hint"])
	value, err := e.create(ctx, s)
	if err != nil {
		return nil, err
	}
	link, err := e.deepLink(ctx, s, app)
	if err != nil {
		return nil, err
	}
	out := RedirectToApp{DeepLink: link, ReachURI: e.reachOffer(st.snap, s)}
	if !s.x.Downstream {
		out.AuthSession = value
	}
	return out, nil
}

// appHop moves an existing session (after a prompt) to redirect_to_app.
func (e *Engine) appHop(ctx context.Context, snap *policy.Snapshot, s *session, app policy.App, hint string) (Outcome, error) {
	s.Stage, s.Failures, s.x.App = StageApp, 0, app.ID
	s.hint(hint)
	link, err := e.deepLink(ctx, s, app)
	if err != nil {
		return nil, err
	}
	value, err := e.advance(ctx, s)
	if err != nil {
		return nil, err
	}
	return RedirectToApp{AuthSession: value, DeepLink: link, ReachURI: e.reachOffer(snap, s)}, nil
}

// appFollowUp handles the device's follow-up while the app has not
// completed: it reports that no app could open the deep link
// (deep_link_unavailable=true, which falls back to the browser), or an
// error the app returned. Anything else is refused: only our completion
// moves the session on.
func (e *Engine) appFollowUp(ctx context.Context, r Request, s *session) (Outcome, error) {
	switch {
	case r.Form.Get("deep_link_unavailable") == "true":
		if err := e.finish(ctx, s); err != nil {
			return nil, err
		}
		return e.webFallback(ctx, r.Policy, s.ClientID, s.Request, codeKey(s), "")
	case r.Form.Get("error") != "":
		if err := e.finish(ctx, s); err != nil {
			return nil, err
		}
		return accessDenied("The app did not complete the sign-in."), nil
	case r.Form.Get("authorization_code") == "":
		return invalidRequest("The authorization_code from the app is required."), nil
	}
	e.end(ctx, s)
	return accessDenied("The code from the app is not valid for this sign-in."), nil
}

// appComplete serves our app completing a deep link (app completion API).
// The server has validated the app's access token as a resource server
// would (access tokens only; DPoP-bound ones only with a proof). Before
// anything is consumed: the request_uri must be a deep-link push, the
// token's client must be the app the deep link was made for, and when the
// session names its user (login_hint, an enrolled app's user, a hinted
// email) the app's user must be that user — otherwise access_denied and
// the deep link stays usable by its owner.
func (e *Engine) appComplete(ctx context.Context, r Request) (Outcome, error) {
	if r.AppUser == nil {
		return invalidClient("An access token of the app's user is required."), nil
	}
	ru, cid := r.Form.Get("request_uri"), r.Form.Get("client_id")
	check := useApp
	check.consume = false
	p, err := e.take(ctx, r.Policy, ru, cid, check)
	if err != nil {
		return nil, err
	}
	s, err := e.loadByID(ctx, p.Session)
	if err != nil {
		return nil, err
	}
	app, ok := r.Policy.App(s.x.App)
	switch {
	case s.Stage != StageApp || s.ClientID != p.ClientID || !ok:
		return invalidRequest("The request_uri is invalid, expired or already used."), nil
	case app.ClientID != r.AppUser.ClientID:
		e.signIn(ctx, false, events.MethodApp, s.ClientID, "", "wrong_app")
		return refuse(statusForbidden, "insufficient_scope", "Only the app this request was made for may complete it."), nil
	}
	if s.x.User != "" && s.x.User != r.AppUser.Username {
		e.signIn(ctx, false, events.MethodApp, s.ClientID, "", "other_user")
		return accessDenied("The app is signed in as another user than this sign-in is for."), nil
	}
	if r.AppUser.Username != "" || app.EnrolledOnly {
		// A local account removed since the app signed in signs nobody
		// in; an enrolled_only app completes only for enrolled users.
		u, known, err := r.Policy.Users().User(ctx, r.AppUser.Username)
		switch {
		case err != nil:
			return nil, err
		case !known:
			e.signIn(ctx, false, events.MethodApp, s.ClientID, "", "unknown_user")
			return accessDenied("The app's user is not a registered user."), nil
		case app.EnrolledOnly && !contains(u.Apps, app.ID):
			e.signIn(ctx, false, events.MethodApp, s.ClientID, "", "not_enrolled")
			return accessDenied("The app's user has not enrolled this app."), nil
		}
	}
	if ma := s.Request["max_age"]; ma != "" {
		// OIDC Core §3.1.2.1: the app's authentication must be recent
		// enough; completing it is not a new authentication.
		limit, _ := strconv.Atoi(ma)
		if r.AppUser.AuthTime.IsZero() || e.o.Now().Sub(r.AppUser.AuthTime) > time.Duration(limit)*time.Second {
			e.signIn(ctx, false, events.MethodApp, s.ClientID, "", "auth_too_old")
			return accessDenied("The app's sign-in is older than max_age allows: sign in to the app again."), nil
		}
	}
	c, ok := r.Policy.Client(s.ClientID)
	cb := s.Request["native_callback_uri"]
	if !ok || cb == "" || !contains(c.NativeCallbackURIs, cb) {
		return invalidRequest("The request has no registered native_callback_uri."), nil
	}
	if _, err := e.consume(ctx, ru, p); err != nil {
		return nil, err
	}
	device := s.StepHash
	if _, err := e.lock(ctx, s, StageCompleting); err != nil {
		return nil, err
	}
	s.Subject, s.Username, s.x.User = r.AppUser.Subject, r.AppUser.Username, r.AppUser.Username
	s.AMR = append(append([]string(nil), r.AppUser.AMR...), "app")
	s.AuthTime, s.x.ACR = r.AppUser.AuthTime, r.AppUser.ACR
	e.signIn(ctx, true, events.MethodApp, s.ClientID, "", "")
	if s.x.Downstream {
		if err := e.finish(ctx, s); err != nil {
			return nil, err
		}
		code, err := e.mint(ctx, s)
		if err != nil {
			return nil, err
		}
		return Return{URI: cb, Params: map[string]string{"authorization_code": code, "iss": e.o.Issuer}}, nil
	}
	v, hash := oneTime()
	s.Stage, s.x.ReturnHash = StageReturned, hash
	if err := e.restoreStep(ctx, s, device); err != nil {
		return nil, err
	}
	return Return{URI: cb, Params: map[string]string{"authorization_code": v, "iss": e.o.Issuer}}, nil
}
