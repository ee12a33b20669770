package flow

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strconv"

	"go.uber.org/zap"

	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/federation"
	"github.com/fedas/fedas/par"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/storage"
)

func prompt(snap *policy.Snapshot, value, desc string, invalid bool) Prompt {
	up, logo := snap.Fed.UserPrompt()
	if desc == "" {
		desc = "Tell us where you sign in."
	}
	return Prompt{AuthSession: value, Description: desc, UserPrompt: up, Logo: logo, Invalid: invalid}
}

// startPrompt answers insufficient_information (federation draft §4.3.3).
func (e *Engine) startPrompt(ctx context.Context, st starter) (Outcome, error) {
	s := st.session(e, StageRoute)
	value, err := e.create(ctx, s)
	if err != nil {
		return nil, err
	}
	return prompt(st.snap, value, "", false), nil
}

// startRouted handles a request whose route needs no prompt.
func (e *Engine) startRouted(ctx context.Context, st starter, t federation.Target) (Outcome, error) {
	switch {
	case t.Deny:
		return accessDenied("Sign-in is not available for this client."), nil
	case t.Local:
		return e.startLocal(ctx, st, "")
	case t.App != "":
		if app, ok := st.snap.App(t.App); ok && st.req["native_callback_uri"] != "" {
			return e.startApp(ctx, st, app)
		}
		return e.startLocal(ctx, st, "")
	}
	// Not stored yet: nobody else can hold it, so no lock; the ID is
	// needed for the sealed state.
	sess := st.session(e, StageFederating)
	value, h, err := newHandle()
	if err != nil {
		return nil, err
	}
	sess.ID, sess.StepHash, sess.h = h.id, h.stepHash, h
	return e.hopFresh(ctx, st.snap, sess, t.Downstream, value)
}

// answerPrompt validates an insufficient_information answer and routes it.
func (e *Engine) answerPrompt(ctx context.Context, r Request, s *session) (Outcome, error) {
	f := r.Policy.Fed
	if f == nil || !f.HasPrompt() {
		e.end(ctx, s)
		return invalidSession(), nil
	}
	t, err := f.Answer(s.ClientID, r.Form)
	if err != nil {
		s.Failures++
		if s.Failures >= f.MaxAttempts() {
			if err := e.finish(ctx, s); err != nil {
				return nil, err
			}
			return accessDenied("Too many invalid answers; start again."), nil
		}
		value, err := e.advance(ctx, s)
		if err != nil {
			return nil, err
		}
		return prompt(r.Policy, value, "The answer is not valid: choose one of the offered values or enter a valid email address or phone number.", true), nil
	}
	email := r.Form.Get("email")
	switch {
	case t.Deny:
		if err := e.finish(ctx, s); err != nil {
			return nil, err
		}
		return accessDenied("Sign-in is not available for this account."), nil
	case t.App != "" && s.Request["native_callback_uri"] != "":
		if app, ok := r.Policy.App(t.App); ok {
			return e.appHop(ctx, r.Policy, s, app, email)
		}
		fallthrough
	case t.Local || t.App != "":
		if !s.x.Cred {
			if err := e.finish(ctx, s); err != nil {
				return nil, err
			}
			return e.webFallback(ctx, r.Policy, s.ClientID, s.Request, codeKey(s), "")
		}
		return e.localFromSession(ctx, r.Policy, s, email)
	}
	return e.hop(ctx, r.Policy, s, t.Downstream, false)
}

// hopRequest maps our request onto the downstream's. The state is our
// session ID sealed with AES-GCM (random nonce), so that a browser the
// downstream sends back to our web callback finds the session (Q7) while
// the downstream learns nothing it could correlate or use.
func (e *Engine) hopRequest(sessionID string, req map[string]string) federation.HopRequest {
	r := federation.HopRequest{State: e.sealState(sessionID), Scope: req["scope"], NativeCallbackURI: req["native_callback_uri"], ACRValues: req["acr_values"], RedirectURI: e.o.WebCallback}
	if v, err := strconv.Atoi(req["max_age"]); err == nil && v >= 0 {
		r.MaxAge = &v
	}
	return r
}

// hop begins a hop to downstream ds for a stored session and answers
// federate. The session is locked by compare-and-swap, so that of
// concurrent answers exactly one pushes; on a temporary failure it is
// restored for a retry.
func (e *Engine) hop(ctx context.Context, snap *policy.Snapshot, s *session, ds string, retried bool) (Outcome, error) {
	if !e.nextHop(s) {
		return e.tooManyHops(ctx, s, ds), nil
	}
	s.x.into(&s.AuthSession) // the count survives an unlock
	orig, err := e.lock(ctx, s, StageFederating)
	if err != nil {
		return nil, err
	}
	hop, f, err := e.begin(ctx, snap, s, ds)
	if errors.Is(err, federation.ErrFederateUnsupported) && e.browserHopAllowed(snap, s, ds) {
		// docs/decisions.md Q19: no native endpoint there; federate through
		// the browser instead, starting at our browser endpoint. Nothing was
		// pushed: the browser hop counts when it pushes.
		s.x.Hops--
		s.Stage, s.Failures, s.x.WebDS, s.x.Hop = StageFederated, 0, ds, nil
		value, err := e.advance(ctx, s)
		if err != nil {
			return nil, err
		}
		return e.toBrowserHop(ctx, snap, s, value)
	}
	if err != nil {
		events.For(ctx, e.o.Logger).Warn("federation failed to begin", zap.String("downstream", ds), zap.Error(err))
		e.unsupported(ctx, s, ds, err)
		if temporary(err) {
			e.unlock(ctx, s, orig)
		} else {
			e.end(ctx, s)
		}
		return hopRefusal(err), nil
	}
	hop.Retried = retried
	s.x.Hop = &hop
	s.Stage, s.Failures = StageFederated, 0
	value, err := e.advance(ctx, s)
	if err != nil {
		return nil, err
	}
	return Federate{AuthSession: value, FederationURI: f.FederationURI, FederationBody: f.FederationBody, ResponseURI: e.o.ResponseURI(hop.ID)}, nil
}

// hopFresh begins a hop for a session not stored yet (a routed initial
// request): it is stored once, after the push, in its final stage.
func (e *Engine) hopFresh(ctx context.Context, snap *policy.Snapshot, s *session, ds, value string) (Outcome, error) {
	// The session's slot is taken before we push for it.
	if err := e.reserve(ctx, s.ClientID); err != nil {
		return nil, err
	}
	s.x.Hops = 1
	hop, f, err := e.begin(ctx, snap, s, ds)
	if errors.Is(err, federation.ErrFederateUnsupported) && e.browserHopAllowed(snap, s, ds) {
		s.Stage, s.x.WebDS, s.x.Hops = StageFederated, ds, 0
		if err := e.store(ctx, s); err != nil {
			return nil, err
		}
		return e.toBrowserHop(ctx, snap, s, value)
	}
	if err != nil {
		events.For(ctx, e.o.Logger).Warn("federation failed to begin", zap.String("downstream", ds), zap.Error(err))
		e.unsupported(ctx, s, ds, err)
		return hopRefusal(err), nil
	}
	s.x.Hop, s.Stage = &hop, StageFederated
	if err := e.store(ctx, s); err != nil {
		return nil, err
	}
	return Federate{AuthSession: value, FederationURI: f.FederationURI, FederationBody: f.FederationBody, ResponseURI: e.o.ResponseURI(hop.ID)}, nil
}

// toBrowserHop answers redirect_to_web for a stored session awaiting a
// browser hop (Q19): our push names the session, value is the device's.
func (e *Engine) toBrowserHop(ctx context.Context, snap *policy.Snapshot, s *session, value string) (Outcome, error) {
	out, err := e.webFallback(ctx, snap, s.ClientID, s.Request, codeKey(s), s.ID)
	if err != nil {
		return nil, err
	}
	w := out.(RedirectToWeb)
	w.AuthSession = value
	return w, nil
}

// browserHopAllowed: the downstream's configuration allows a browser
// federation, and the session can come back from one — a PKCE challenge
// for the browser request (FiPA-04 §5.2.2.1.1) and a native_callback_uri
// to return the browser to.
func (e *Engine) browserHopAllowed(snap *policy.Snapshot, s *session, ds string) bool {
	if s.Request["code_challenge"] == "" || s.Request["native_callback_uri"] == "" {
		return false
	}
	for _, d := range snap.Config.Downstreams {
		if d.ID == ds {
			return d.BrowserFederation
		}
	}
	return false
}

// hopRefusal maps a failure to start or finish a hop to the client's
// answer.
func hopRefusal(err error) Refusal {
	switch {
	case errors.Is(err, federation.ErrFederateUnsupported):
		return refuse(statusBadRequest, "native_authorization_federate_unsupported", "The authorization server that holds this account does not support native sign-in.")
	case errors.Is(err, federation.ErrAuthTooOld):
		return accessDenied("The authorization server that holds this account did not authenticate the user recently enough (max_age).")
	case errors.Is(err, federation.ErrACRNotMet):
		return accessDenied("The authorization server that holds this account did not authenticate the user at a requested level (acr_values).")
	case temporary(err):
		return unavailable()
	}
	return refuse(statusServerError, "server_error", "The authorization server we federate to refused our request.")
}

// temporary reports failures worth a retry: the downstream or its
// metadata unreachable, slow, or answering garbage.
func temporary(err error) bool {
	return errors.Is(err, federation.ErrUnavailable) || errors.Is(err, federation.ErrIssuerMismatch) ||
		errors.Is(err, par.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// respond handles a post to a hop's response_uri (federation draft
// §4.3.1): the downstream's authorization_code (or error) with our
// auth_session. The hop is enforced: its per-hop URL, its pinned issuer,
// and an iss that must match when present (docs/decisions.md Q8). The code is
// redeemed exactly once under the session lock.
func (e *Engine) respond(ctx context.Context, r Request) (Outcome, error) {
	value := r.Form.Get("auth_session")
	if value == "" {
		return invalidRequest("The auth_session parameter is required."), nil
	}
	s, err := e.load(ctx, value)
	if err != nil {
		return nil, err
	}
	if err := e.checkCaller(r, s); err != nil {
		return nil, err
	}
	if s.x.Hop == nil || subtle.ConstantTimeCompare([]byte(s.x.Hop.ID), []byte(r.HopID)) != 1 {
		return invalidSession(), nil
	}
	if s.Stage == StageReturned {
		// The downstream's browser flow already ended at our web callback
		// (Q7): the device brings its auth_session and the one-time value
		// the callback returned to it.
		return e.returned(ctx, r, s)
	}
	if s.Stage != StageFederated {
		return invalidSession(), nil
	}
	code, dsErr := r.Form.Get("authorization_code"), r.Form.Get("error")
	switch {
	case code != "" && dsErr != "":
		return invalidRequest("Send either authorization_code or error, not both."), nil
	case dsErr != "":
		return e.downstreamError(ctx, r.Policy, s, dsErr)
	case code == "":
		return invalidRequest("The authorization_code parameter is required."), nil
	case len(code) > 4096:
		return invalidRequest("The authorization_code is too long."), nil
	}
	hop := *s.x.Hop
	if iss := r.Form.Get("iss"); iss != "" && iss != hop.Issuer {
		// Mix-up: abort before any token call (RFC 9207 §2.4).
		e.end(ctx, s)
		events.For(ctx, e.o.Logger).Warn("response_uri: iss does not match the hop's issuer", zap.String("downstream", hop.Downstream))
		e.hopFailed(ctx, s.ClientID, hop.Downstream, "", 0, "iss_mismatch", true)
		return accessDenied("The response came from an unexpected authorization server."), nil
	}
	orig, err := e.lock(ctx, s, StageRedeeming)
	if err != nil {
		return nil, err
	}
	if rf, err := e.redeem(ctx, r.Policy, s, orig, code, r.Form.Get("iss")); rf != nil || err != nil {
		return rfOrNil(rf), err
	}
	return e.complete(ctx, r.Policy, s)
}

func rfOrNil(rf *Refusal) Outcome {
	if rf == nil {
		return nil
	}
	return *rf
}

// redeem completes the locked session's hop with the downstream's code and
// records the downstream identity in s. A temporary failure restores the
// session; any other ends it.
func (e *Engine) redeem(ctx context.Context, snap *policy.Snapshot, s *session, orig storage.AuthSession, code, iss string) (*Refusal, error) {
	hop := *s.x.Hop
	if snap.Fed == nil {
		e.end(ctx, s)
		e.hopFailed(ctx, s.ClientID, hop.Downstream, "", 0, "downstream_gone", true)
		r := accessDenied("The authorization server that holds this account is no longer configured.")
		return &r, nil
	}
	id, err := e.completeHop(ctx, snap, s, hop, code, iss)
	if err != nil {
		events.For(ctx, e.o.Logger).Warn("federation failed to complete", zap.String("downstream", hop.Downstream), zap.Error(err))
		if temporary(err) {
			e.unlock(ctx, s, orig)
			r := unavailable()
			return &r, nil
		}
		e.end(ctx, s)
		r := hopRefusal(err)
		if r.Code == "server_error" || r.Code == "native_authorization_federate_unsupported" {
			r = accessDenied("The sign-in at the authorization server that holds this account could not be completed.")
		}
		return &r, nil
	}
	// Keyed by the issuer, not the configurable downstream id: if an admin
	// re-points an id to another issuer, that issuer's users must not
	// inherit the old one's local identities.
	s.Subject, s.Username = hop.Issuer+"|"+id.Subject, ""
	s.AMR, s.AuthTime, s.x.ACR = id.AMR, id.AuthTime, id.ACR
	if s.AuthTime.IsZero() {
		s.AuthTime = e.o.Now()
	}
	s.x.Claims = map[string]any{"idp": id.Issuer, "idp_sub": id.Subject}
	for k, v := range id.Claims {
		s.x.Claims[k] = v
	}
	return nil, nil
}

// downstreamError maps an error the downstream returned to the device
// (docs/decisions.md Q9). Its description is never passed on.
func (e *Engine) downstreamError(ctx context.Context, snap *policy.Snapshot, s *session, code string) (Outcome, error) {
	// The session survives a downstream failure and the first invalid
	// request (pushed again below); anything else ends the sign-in.
	retry := code == "invalid_request" && !s.x.Hop.Retried && snap.Fed != nil
	ended := code != "server_error" && code != "temporarily_unavailable" && !retry
	e.hopFailed(ctx, s.ClientID, s.x.Hop.Downstream, "", 0, downstreamReason(code), ended)
	switch code {
	case "server_error":
		// Passed through; the session stays as it is.
		return refuse(statusServerError, "server_error", "The authorization server that holds this account failed."), nil
	case "temporarily_unavailable":
		return unavailable(), nil
	case "invalid_request":
		// Most often an expired request_uri: push once more.
		if retry {
			return e.hop(ctx, snap, s, s.x.Hop.Downstream, true)
		}
		if err := e.finish(ctx, s); err != nil {
			return nil, err
		}
		return invalidSession(), nil
	}
	if err := e.finish(ctx, s); err != nil {
		return nil, err
	}
	if code == "access_denied" {
		return accessDenied("The user or the authorization server that holds this account denied the request."), nil
	}
	return accessDenied("The authorization server that holds this account could not sign the user in."), nil
}

// browserHop sends a browser that arrived with our Q19 push on to the
// downstream's authorization endpoint (through its PAR when advertised).
// The device's auth_session value stays valid meanwhile.
func (e *Engine) browserHop(ctx context.Context, r Request, p Pushed) (Outcome, error) {
	s, err := e.loadByID(ctx, p.Session)
	if err != nil {
		return nil, err
	}
	if s.Stage != StageFederated || s.x.WebDS == "" || s.ClientID != p.ClientID || r.Policy.Fed == nil {
		return invalidRequest("The request is invalid, expired or already used."), nil
	}
	if !e.browserHopAllowed(r.Policy, s, s.x.WebDS) || !clientStillRegistered(r.Policy, s) {
		// A reload turned browser federation off, or removed the client.
		e.end(ctx, s)
		return refuse(statusBadRequest, "native_authorization_federate_unsupported", "Browser sign-in at this account's authorization server is no longer allowed."), nil
	}
	// Every page load pushes anew: counted, and under a lock taken
	// before the push, so that concurrent loads push once.
	if !e.nextHop(s) {
		return e.tooManyHops(ctx, s, s.x.WebDS), nil
	}
	device := s.StepHash
	if _, err := e.lock(ctx, s, StageFederating); err != nil {
		return nil, err
	}
	s.Stage = StageFederated
	hop, to, err := e.beginWeb(ctx, r.Policy, s, s.x.WebDS)
	if err != nil {
		events.For(ctx, e.o.Logger).Warn("browser federation failed to begin", zap.String("downstream", s.x.WebDS), zap.Error(err))
		if temporary(err) {
			// Back to the device's step, the attempt counted.
			if err := e.restoreStep(ctx, s, device); err != nil {
				return nil, err
			}
			return unavailable(), nil
		}
		e.end(ctx, s)
		return hopRefusal(err), nil
	}
	s.x.Hop, s.x.Push = &hop, r.Form.Get("request_uri")
	if err := e.restoreStep(ctx, s, device); err != nil {
		return nil, err
	}
	return Return{URI: to}, nil
}

// restoreStep moves s from its server-only step back to the device's
// step value, under a new revision (stepDigest): the device's value stays
// valid, while a request that loaded the session before stays stale.
func (e *Engine) restoreStep(ctx context.Context, s *session, device string) error {
	lockHash := s.StepHash
	next := nextRevision(device)
	s.StepHash, s.h = next, handle{id: s.ID, stepHash: next}
	s.x.into(&s.AuthSession)
	return casErr(e.o.Sessions.UpdateAuthSession(ctx, lockHash, s.AuthSession))
}

// webCallback completes a hop whose downstream flow ran in the browser
// (docs/decisions.md Q7, Q19). It checks state against the hop and iss before
// acting on a code or an error (RFC 9207 §2.4), redeems the code exactly as
// at response_uri, and sends the browser back to the app's
// native_callback_uri with a one-time response_code bound to the session:
// only the device that holds the auth_session and that value gets our
// code, so whoever finishes the browser part cannot sign another device's
// session in as themselves.
func (e *Engine) webCallback(ctx context.Context, r Request) (Outcome, error) {
	id, ok := e.openState(r.Form.Get("state"))
	if !ok {
		return invalidSession(), nil
	}
	s, err := e.loadByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if s.Stage != StageFederated || s.x.Hop == nil || subtle.ConstantTimeCompare([]byte(s.x.Hop.State), []byte(r.Form.Get("state"))) != 1 {
		return invalidSession(), nil
	}
	hop := *s.x.Hop
	iss := r.Form.Get("iss")
	if r.Policy.Fed == nil {
		e.end(ctx, s)
		return accessDenied("The authorization server that holds this account is no longer configured."), nil
	}
	if err := r.Policy.Fed.CheckResponseIss(ctx, hop, iss); err != nil {
		reason := "iss_mismatch"
		if temporary(err) {
			reason = "unavailable"
		}
		e.hopFailed(ctx, s.ClientID, hop.Downstream, "", 0, reason, !temporary(err))
		if temporary(err) {
			return unavailable(), nil
		}
		e.end(ctx, s)
		return accessDenied("The response came from an unexpected authorization server."), nil
	}
	cb := s.Request["native_callback_uri"]
	if !clientStillRegistered(r.Policy, s) {
		// Removed by a reload: redeem nothing, return nothing.
		e.end(ctx, s)
		return accessDenied("The client of this sign-in is no longer registered."), nil
	}
	code := r.Form.Get("code")
	if r.Form.Get("error") != "" || code == "" || len(code) > 4096 || cb == "" {
		e.end(ctx, s)
		reason := "downstream_error"
		if dsErr := r.Form.Get("error"); dsErr != "" {
			reason = downstreamReason(dsErr)
		}
		e.hopFailed(ctx, s.ClientID, hop.Downstream, "", 0, reason, true)
		if cb == "" {
			return accessDenied("The sign-in cannot return to the app."), nil
		}
		return Return{URI: cb, Params: map[string]string{"error": "access_denied"}}, nil
	}
	device := s.StepHash
	orig, err := e.lock(ctx, s, StageRedeeming)
	if err != nil {
		return nil, err
	}
	if rf, err := e.redeem(ctx, r.Policy, s, orig, code, iss); rf != nil || err != nil {
		if rf != nil && rf.Code != "temporarily_unavailable" {
			return Return{URI: cb, Params: map[string]string{"error": rf.Code}}, nil
		}
		return rfOrNil(rf), err
	}
	if s.x.Push != "" {
		// Our Q19 push is spent once the browser leg has completed.
		if _, err := e.take(ctx, r.Policy, s.x.Push, s.ClientID, useBrowserComplete); err != nil {
			var rf *errRefused
			if !errors.As(err, &rf) {
				e.unlock(ctx, s, orig)
				return nil, err
			}
		}
		s.x.Push = ""
	}
	v, hash := oneTime()
	s.Stage, s.x.ReturnHash = StageReturned, hash
	if err := e.restoreStep(ctx, s, device); err != nil {
		return nil, err
	}
	return Return{URI: cb, Params: map[string]string{"response_code": v}}, nil
}

// returned finishes a session an out-of-band leg authenticated: the
// device posts its auth_session with the one-time value the leg returned
// on its native_callback_uri (response_code; authorization_code for our
// app, whose wire contract delivers one).
func (e *Engine) returned(ctx context.Context, r Request, s *session) (Outcome, error) {
	name := "response_code"
	if s.x.App != "" {
		name = "authorization_code"
	}
	v := r.Form.Get(name)
	if v == "" || len(v) > 256 {
		return invalidRequest("The " + name + " from the callback is required."), nil
	}
	if !sameHash(s.x.ReturnHash, v) {
		e.end(ctx, s)
		method, ds := events.MethodApp, ""
		if s.x.App == "" {
			method, ds = events.MethodFederation, s.x.WebDS
			if s.x.Hop != nil {
				ds = s.x.Hop.Downstream
			}
		}
		e.signIn(ctx, false, method, s.ClientID, ds, "wrong_return_code")
		return accessDenied("The " + name + " is not valid for this sign-in."), nil
	}
	return e.complete(ctx, r.Policy, s)
}

// sealState encrypts a session ID into an opaque state value.
func (e *Engine) sealState(id string) string {
	nonce := make([]byte, e.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(e.aead.Seal(nonce, nonce, []byte(id), []byte("fedas-state")))
}

// openState recovers the session ID from a state value we sealed.
func (e *Engine) openState(state string) (string, bool) {
	if len(state) > 256 {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(state)
	if err != nil || len(b) < e.aead.NonceSize() {
		return "", false
	}
	id, err := e.aead.Open(nil, b[:e.aead.NonceSize()], b[e.aead.NonceSize():], []byte("fedas-state"))
	if err != nil {
		return "", false
	}
	return string(id), true
}
