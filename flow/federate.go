package flow

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/fedas/fedas/federation"
	"github.com/fedas/fedas/par"
	"github.com/fedas/fedas/storage"
)

// extra is the flow's own part of a session (storage.AuthSession.Extra).
type extra struct {
	// Hop is the open federation hop, pinned when it began.
	Hop *federation.Hop `json:"hop,omitempty"`
	// Claims of a downstream identity awaiting the device (Q7).
	Claims map[string]any `json:"claims,omitempty"`
	// Cred records whether the client may get credential challenges.
	Cred bool `json:"cred,omitempty"`
}

func readExtra(s storage.AuthSession) extra {
	var x extra
	if len(s.Extra) > 0 {
		_ = json.Unmarshal(s.Extra, &x)
	}
	return x
}

func (x extra) into(s *storage.AuthSession) {
	b, _ := json.Marshal(x)
	s.Extra = b
}

// noNativePath is FiPA-04 §5.2.2.1.1 redirect_to_web: no native path can
// finish (a federating client that may not get credential challenges,
// PROTOCOL-NOTES Q10). It carries no request_uri until fedas has a browser
// endpoint to take it.
func noNativePath() *Error {
	return &Error{Status: http.StatusForbidden, Code: "redirect_to_web", Description: "This sign-in cannot be completed natively; use a browser-based flow."}
}

func accessDenied(desc string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "access_denied", Description: desc}
}

func unavailable() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable", Description: "The authorization server we federate to is not reachable; retry shortly."}
}

// hopErr maps a failure to start or finish a hop to the client's answer.
func hopErr(err error) *Error {
	switch {
	case errors.Is(err, federation.ErrFederateUnsupported):
		return &Error{Status: http.StatusBadRequest, Code: "native_authorization_federate_unsupported", Description: "The authorization server that holds this account does not support native sign-in."}
	case temporary(err):
		return unavailable()
	}
	return &Error{Status: http.StatusInternalServerError, Code: "server_error", Description: "The authorization server we federate to refused our request."}
}

// temporary reports failures worth a retry: the downstream or its
// metadata unreachable, slow, or answering garbage (SECURITY.md D1–D4).
func temporary(err error) bool {
	return errors.Is(err, federation.ErrUnavailable) || errors.Is(err, federation.ErrIssuerMismatch) ||
		errors.Is(err, par.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

func (e *Engine) newSession(c Client, req map[string]string, stage string, x extra) (storage.AuthSession, string, handle, error) {
	now := e.o.Now()
	s := storage.AuthSession{ClientID: c.ID, CreatedAt: now, ExpiresAt: now.Add(e.o.TTL), Stage: stage, Request: req, DPoPJKT: c.DPoPJKT}
	x.Cred = c.CredentialChallenges
	x.into(&s)
	value, h, err := newHandle()
	if err != nil {
		return s, "", h, err
	}
	s.ID, s.StepHash = h.id, h.stepHash
	return s, value, h, nil
}

func (e *Engine) prompt(value, desc string) *Error {
	up, logo := e.o.Fed.UserPrompt()
	if desc == "" {
		desc = "Tell us where you sign in."
	}
	return &Error{Status: http.StatusBadRequest, Code: "insufficient_information", Description: desc, AuthSession: value, UserPrompt: up, Logo: logo}
}

// startPrompt answers insufficient_information (federation draft §4.3.3).
func (e *Engine) startPrompt(ctx context.Context, c Client, req map[string]string) error {
	s, value, _, err := e.newSession(c, req, StageRoute, extra{})
	if err != nil {
		return err
	}
	if err := e.o.Sessions.CreateAuthSession(ctx, s); err != nil {
		return err
	}
	return e.prompt(value, "")
}

// hopRequest maps our request onto the downstream's. The state is our
// session ID sealed with AES-GCM (random nonce), so that a browser the
// downstream sends back to our web callback finds the session (Q7) while
// the downstream learns nothing it could correlate or use.
func (e *Engine) hopRequest(sessionID string, req map[string]string) federation.HopRequest {
	r := federation.HopRequest{State: e.sealState(sessionID), Scope: req["scope"], NativeCallbackURI: req["native_callback_uri"], ACRValues: req["acr_values"]}
	if v, err := strconv.Atoi(req["max_age"]); err == nil && v >= 0 {
		r.MaxAge = &v
	}
	return r
}

func (e *Engine) federate(value string, hop federation.Hop, f federation.Federate) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "federate", Description: "Continue at the authorization server that holds this account.",
		AuthSession: value, FederationURI: f.FederationURI, FederationBody: f.FederationBody, ResponseURI: e.o.ResponseURI(hop.ID)}
}

// startRouted handles a request whose route needs no prompt.
func (e *Engine) startRouted(ctx context.Context, c Client, req map[string]string, t federation.Target) error {
	switch {
	case t.Deny:
		return accessDenied("Sign-in is not available for this client.")
	case t.Local:
		return e.startLocal(ctx, c, req)
	case t.App != "":
		if app := e.app(t.App); app != nil && req["native_callback_uri"] != "" {
			return e.startApp(ctx, c, req, app)
		}
		return e.startLocal(ctx, c, req)
	}
	s, value, _, err := e.newSession(c, req, StageFederated, extra{})
	if err != nil {
		return err
	}
	hop, f, err := e.o.Fed.Begin(ctx, t.Downstream, e.hopRequest(s.ID, req))
	if err != nil {
		e.o.Logger.Warn("federation failed to begin", zap.String("downstream", t.Downstream), zap.Error(err))
		return hopErr(err)
	}
	x := readExtra(s)
	x.Hop = &hop
	x.into(&s)
	if err := e.o.Sessions.CreateAuthSession(ctx, s); err != nil {
		return err
	}
	return e.federate(value, hop, f)
}

// lock moves the session to a transient stage under a server-only step
// value, so that of concurrent requests with the same auth_session exactly
// one proceeds to the side effect (a PAR, a code redemption: SECURITY.md
// C2, C6). It returns the lock's step hash.
func (e *Engine) lock(ctx context.Context, s storage.AuthSession, h handle, stage string) (storage.AuthSession, string, error) {
	_, lh, err := newHandleFor(s.ID)
	if err != nil {
		return s, "", err
	}
	locked := s
	locked.Stage, locked.StepHash = stage, lh.stepHash
	if err := casErr(e.o.Sessions.UpdateAuthSession(ctx, h.stepHash, locked)); err != nil {
		return s, "", err
	}
	return locked, lh.stepHash, nil
}

// unlock puts the session back as it was, so the client may retry with
// the same auth_session after a temporary failure.
func (e *Engine) unlock(ctx context.Context, locked storage.AuthSession, lockHash string, orig storage.AuthSession) {
	// Even when the device gave up (its request context is cancelled),
	// the session must not stay locked until its TTL.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := e.o.Sessions.UpdateAuthSession(ctx, lockHash, orig); err != nil {
		e.o.Logger.Warn("could not restore session after a temporary failure", zap.Error(err))
	}
}

// end deletes the session (terminal outcomes).
func (e *Engine) end(ctx context.Context, id, stepHash string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := e.o.Sessions.DeleteAuthSession(ctx, id, stepHash); err != nil && !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrConflict) {
		e.o.Logger.Warn("could not end session", zap.Error(err))
	}
}

// answerPrompt validates an insufficient_information answer and routes it.
func (e *Engine) answerPrompt(ctx context.Context, s storage.AuthSession, h handle, answers url.Values) error {
	t, err := e.o.Fed.Answer(s.ClientID, answers)
	if err != nil {
		s.Failures++
		if s.Failures >= e.o.Fed.MaxAttempts() {
			if err := casErr(e.o.Sessions.DeleteAuthSession(ctx, s.ID, h.stepHash)); err != nil {
				return err
			}
			return accessDenied("Too many invalid answers; start again.")
		}
		value, nh, herr := newHandleFor(s.ID)
		if herr != nil {
			return herr
		}
		s.StepHash = nh.stepHash
		if err := casErr(e.o.Sessions.UpdateAuthSession(ctx, h.stepHash, s)); err != nil {
			return err
		}
		p := e.prompt(value, "The answer is not valid: choose one of the offered values or enter a valid email address or phone number.")
		p.Code = "invalid_request"
		return p
	}
	x := readExtra(s)
	switch {
	case t.Deny:
		if err := casErr(e.o.Sessions.DeleteAuthSession(ctx, s.ID, h.stepHash)); err != nil {
			return err
		}
		return accessDenied("Sign-in is not available for this account.")
	case t.App != "" && e.app(t.App) != nil && s.Request["native_callback_uri"] != "":
		return e.appHop(ctx, s, h, e.app(t.App))
	case t.Local || t.App != "":
		if !x.Cred {
			if err := casErr(e.o.Sessions.DeleteAuthSession(ctx, s.ID, h.stepHash)); err != nil {
				return err
			}
			return e.webFallback(ctx, s.ClientID, s.Request)
		}
		s.Stage, s.Failures = StagePassword, 0
		if email := answers.Get("email"); email != "" && s.Username == "" {
			s.Username = email
		}
		_, err := e.step(ctx, s, h, "")
		return err
	}
	return e.beginHop(ctx, s, h, t.Downstream, false)
}

// beginHop pushes to the downstream under the session lock and answers
// federate; on a temporary failure the session is restored for a retry.
func (e *Engine) beginHop(ctx context.Context, s storage.AuthSession, h handle, ds string, retried bool) error {
	locked, lockHash, err := e.lock(ctx, s, h, StageFederating)
	if err != nil {
		return err
	}
	hop, f, err := e.o.Fed.Begin(ctx, ds, e.hopRequest(s.ID, s.Request))
	if err != nil {
		e.o.Logger.Warn("federation failed to begin", zap.String("downstream", ds), zap.Error(err))
		if temporary(err) {
			e.unlock(ctx, locked, lockHash, s)
		} else {
			e.end(ctx, s.ID, lockHash)
		}
		return hopErr(err)
	}
	hop.Retried = retried
	value, nh, err := newHandleFor(s.ID)
	if err != nil {
		return err
	}
	next := s
	x := readExtra(s)
	x.Hop = &hop
	x.into(&next)
	next.Stage, next.Failures, next.StepHash = StageFederated, 0, nh.stepHash
	if err := casErr(e.o.Sessions.UpdateAuthSession(ctx, lockHash, next)); err != nil {
		return err
	}
	return e.federate(value, hop, f)
}

// Respond handles a post to a hop's response_uri (federation draft
// §4.3.1): the downstream's authorization_code (or error) with our
// auth_session. The hop is enforced: its per-hop URL, its pinned issuer,
// and an `iss` that must match when present (PROTOCOL-NOTES Q8). The code
// is redeemed exactly once under the session lock (SECURITY.md C2).
func (e *Engine) Respond(ctx context.Context, hopID, value string, form url.Values, jkt string) (Outcome, error) {
	s, h, err := e.load(ctx, value)
	if err != nil {
		return Outcome{}, err
	}
	if err := keyBound(s, jkt); err != nil {
		return Outcome{}, err
	}
	x := readExtra(s)
	if s.Stage == StageAuthenticated && x.Hop != nil && subtle.ConstantTimeCompare([]byte(x.Hop.ID), []byte(hopID)) == 1 &&
		form.Get("authorization_code") == "" && form.Get("error") == "" {
		// The downstream's browser flow already ended at our web
		// callback (Q7): the device only brings its auth_session.
		return e.finish(ctx, s, h)
	}
	if s.Stage != StageFederated || x.Hop == nil ||
		subtle.ConstantTimeCompare([]byte(x.Hop.ID), []byte(hopID)) != 1 {
		return Outcome{}, invalidSession()
	}
	if cid := form.Get("client_id"); cid != "" && cid != s.ClientID {
		return Outcome{}, invalidRequest("The client_id does not match the auth_session.")
	}
	code, dsErr := form.Get("authorization_code"), form.Get("error")
	switch {
	case code != "" && dsErr != "":
		return Outcome{}, invalidRequest("Send either authorization_code or error, not both.")
	case dsErr != "":
		return Outcome{}, e.downstreamError(ctx, s, h, *x.Hop, dsErr)
	case code == "":
		return Outcome{}, invalidRequest("The authorization_code parameter is required.")
	case len(code) > 4096:
		return Outcome{}, invalidRequest("The authorization_code is too long.")
	}
	hop := *x.Hop
	if iss := form.Get("iss"); iss != "" && iss != hop.Issuer {
		// Mix-up: abort before any token call (RFC 9207 §2.4).
		e.end(ctx, s.ID, h.stepHash)
		e.o.Logger.Warn("response_uri: iss does not match the hop's issuer", zap.String("downstream", hop.Downstream))
		return Outcome{}, accessDenied("The response came from an unexpected authorization server.")
	}
	locked, lockHash, err := e.lock(ctx, s, h, StageRedeeming)
	if err != nil {
		return Outcome{}, err
	}
	id, err := e.o.Fed.Complete(ctx, hop, code, form.Get("iss"))
	if err != nil {
		e.o.Logger.Warn("federation failed to complete", zap.String("downstream", hop.Downstream), zap.Error(err))
		if temporary(err) {
			e.unlock(ctx, locked, lockHash, s)
			return Outcome{}, unavailable()
		}
		e.end(ctx, s.ID, lockHash)
		return Outcome{}, accessDenied("The sign-in at the authorization server that holds this account could not be completed.")
	}
	if err := casErr(e.o.Sessions.DeleteAuthSession(ctx, s.ID, lockHash)); err != nil {
		return Outcome{}, err
	}
	authTime := id.AuthTime
	if authTime.IsZero() {
		authTime = e.o.Now()
	}
	claims := map[string]any{"idp": id.Issuer, "idp_sub": id.Subject}
	for k, v := range id.Claims {
		claims[k] = v
	}
	return e.issue(ctx, Grant{
		ClientID: s.ClientID,
		Request:  s.Request,
		// Keyed by the issuer, not the configurable downstream id: if an
		// admin re-points an id to another issuer, that issuer's users must
		// not inherit the old one's local identities.
		Subject:  hop.Issuer + "|" + id.Subject,
		AMR:      id.AMR,
		AuthTime: authTime,
		Claims:   claims,
	})
}

// downstreamError maps an error the downstream returned to the device
// (PROTOCOL-NOTES Q9). Its description is never passed on.
func (e *Engine) downstreamError(ctx context.Context, s storage.AuthSession, h handle, hop federation.Hop, code string) error {
	switch code {
	case "access_denied":
		if err := casErr(e.o.Sessions.DeleteAuthSession(ctx, s.ID, h.stepHash)); err != nil {
			return err
		}
		return accessDenied("The user or the authorization server that holds this account denied the request.")
	case "server_error", "temporarily_unavailable":
		// Passed through; the session stays as it is (PROTOCOL-NOTES Q9).
		if code == "server_error" {
			return &Error{Status: http.StatusInternalServerError, Code: "server_error", Description: "The authorization server that holds this account failed."}
		}
		return unavailable()
	case "invalid_request":
		// Most often an expired request_uri: push once more.
		if !hop.Retried {
			return e.beginHop(ctx, s, h, hop.Downstream, true)
		}
		if err := casErr(e.o.Sessions.DeleteAuthSession(ctx, s.ID, h.stepHash)); err != nil {
			return err
		}
		return invalidSession()
	}
	if err := casErr(e.o.Sessions.DeleteAuthSession(ctx, s.ID, h.stepHash)); err != nil {
		return err
	}
	return accessDenied("The authorization server that holds this account could not sign the user in.")
}

// StartFromPAR begins a session for a federating client whose request
// arrived by PAR (downstream role, PROTOCOL-NOTES Q3): the request_uri
// already authenticated the client; credential challenges only when its
// registration opts in (Q10).
func (e *Engine) StartFromPAR(ctx context.Context, c Client, req map[string]string) error {
	return e.Start(ctx, c, req)
}

// WebCallback completes a hop whose downstream fell back to the browser
// (PROTOCOL-NOTES Q7): the downstream's browser flow ends at our web
// callback with code, state and iss. We check state against the hop,
// enforce iss (RFC 9207 §2.4), redeem the code exactly as at response_uri,
// and mark the session authenticated under the device's current
// auth_session value, which the device then posts to our native endpoint
// to receive our code. It returns the native_callback_uri to send the
// browser back to (empty when the request had none).
func (e *Engine) WebCallback(ctx context.Context, state, code, iss, dsErr string) (string, error) {
	id, ok := e.openState(state)
	if !ok {
		return "", invalidSession()
	}
	s, err := e.o.Sessions.AuthSession(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return "", invalidSession()
	} else if err != nil {
		return "", err
	}
	x := readExtra(s)
	if s.Stage != StageFederated || x.Hop == nil || subtle.ConstantTimeCompare([]byte(x.Hop.State), []byte(state)) != 1 {
		return "", invalidSession()
	}
	if dsErr != "" || code == "" || len(code) > 4096 {
		e.end(ctx, s.ID, s.StepHash)
		return s.Request["native_callback_uri"], accessDenied("The sign-in at the authorization server that holds this account did not complete.")
	}
	h := handle{id: s.ID, stepHash: s.StepHash}
	hop := *x.Hop
	if iss != "" && iss != hop.Issuer {
		e.end(ctx, s.ID, h.stepHash)
		return "", accessDenied("The response came from an unexpected authorization server.")
	}
	locked, lockHash, err := e.lock(ctx, s, h, StageRedeeming)
	if err != nil {
		return "", err
	}
	ident, err := e.o.Fed.Complete(ctx, hop, code, iss)
	if err != nil {
		e.o.Logger.Warn("federation failed to complete (web callback)", zap.String("downstream", hop.Downstream), zap.Error(err))
		if temporary(err) {
			e.unlock(ctx, locked, lockHash, s)
			return "", unavailable()
		}
		e.end(ctx, s.ID, lockHash)
		return s.Request["native_callback_uri"], accessDenied("The sign-in at the authorization server that holds this account could not be completed.")
	}
	next := s // keeps the device's step: its auth_session value stays valid
	next.Stage = StageAuthenticated
	next.Subject = hop.Issuer + "|" + ident.Subject
	next.AMR, next.AuthTime = ident.AMR, ident.AuthTime
	if next.AuthTime.IsZero() {
		next.AuthTime = e.o.Now()
	}
	x.Claims = map[string]any{"idp": ident.Issuer, "idp_sub": ident.Subject}
	for k, v := range ident.Claims {
		x.Claims[k] = v
	}
	x.into(&next)
	if err := casErr(e.o.Sessions.UpdateAuthSession(ctx, lockHash, next)); err != nil {
		return "", err
	}
	return s.Request["native_callback_uri"], nil
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
