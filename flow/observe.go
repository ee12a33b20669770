package flow

import (
	"context"
	"errors"
	"time"

	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/federation"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/storage"
)

// String names the channel in metrics and logs.
func (c Channel) String() string {
	switch c {
	case ChannelNative:
		return "native"
	case ChannelResponse:
		return "response"
	case ChannelBrowser:
		return "browser"
	case ChannelAppComplete:
		return "app_complete"
	case ChannelWebCallback:
		return "web_callback"
	case ChannelReach:
		return "reach"
	}
	return "unknown"
}

// Kind names what Handle answered, for metrics and the access log: the
// outcome's type (challenge, pending, prompt, prompt_invalid, federate,
// redirect_to_app, redirect_to_web, code, return), a Refusal's error code,
// or for a Go error the code the server answers it with
// (temporarily_unavailable, server_error). For a Challenge, challenge is
// its type (password, otp, …). Every value comes from the engine's code
// and the registered steps, never from a request.
func Kind(out Outcome, err error) (kind, challenge string) {
	if err != nil {
		if errors.Is(err, storage.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrOverloaded) {
			return "temporarily_unavailable", ""
		}
		return "server_error", ""
	}
	switch o := out.(type) {
	case Challenge:
		return "challenge", o.Spec.Type
	case Pending:
		return "pending", ""
	case Prompt:
		if o.Invalid {
			return "prompt_invalid", ""
		}
		return "prompt", ""
	case Federate:
		return "federate", ""
	case RedirectToApp:
		return "redirect_to_app", ""
	case RedirectToWeb:
		return "redirect_to_web", ""
	case Code:
		return "code", ""
	case Return:
		return "return", ""
	case Reaching:
		return "reaching", ""
	case Refusal:
		return o.Code, ""
	}
	return "server_error", ""
}

// signIn emits sign_in.success or sign_in.failure for one method.
func (e *Engine) signIn(ctx context.Context, ok bool, method, clientID, downstream, reason string) {
	name := events.SignInSuccess
	if !ok {
		name = events.SignInFailure
	}
	e.o.Events.Emit(ctx, events.Event{Name: name, Method: method, ClientID: clientID, Downstream: downstream, Reason: reason})
}

// hopFailed emits federation.failed and, when ended (the user's sign-in
// at the downstream is over without an identity), sign_in.failure with
// method federation. call and took are the downstream request made, if
// any.
func (e *Engine) hopFailed(ctx context.Context, clientID, ds, call string, took time.Duration, reason string, ended bool) {
	e.o.Events.Emit(ctx, events.Event{Name: events.FederationFailed, ClientID: clientID, Downstream: ds, Call: call, Duration: took, Reason: reason})
	if ended {
		e.signIn(ctx, false, events.MethodFederation, clientID, ds, reason)
	}
}

// hopReason names a federation failure with a fixed word.
func hopReason(err error) string {
	switch {
	case errors.Is(err, federation.ErrFederateUnsupported):
		return "federate_unsupported"
	case errors.Is(err, federation.ErrAuthTooOld):
		return "auth_too_old"
	case errors.Is(err, federation.ErrACRNotMet):
		return "acr_not_met"
	case errors.Is(err, federation.ErrMixUp):
		return "iss_mismatch"
	case errors.Is(err, federation.ErrHopGone):
		return "downstream_gone"
	case temporary(err):
		return "unavailable"
	case errors.Is(err, federation.ErrRejected):
		return "rejected"
	}
	return "failed"
}

// begin pushes a native hop's request to downstream ds (federation.Begin),
// timing the call and emitting federation.started or federation.failed.
// A downstream without a native endpoint is left to the caller, which may
// federate through the browser instead.
func (e *Engine) begin(ctx context.Context, snap *policy.Snapshot, s *session, ds string) (federation.Hop, federation.Federate, error) {
	start := time.Now()
	hop, f, err := snap.Fed.Begin(ctx, ds, e.hopRequest(s.ID, s.Request))
	took := time.Since(start)
	switch {
	case err == nil:
		e.o.Events.Emit(ctx, events.Event{Name: events.FederationStarted, ClientID: s.ClientID, Downstream: ds, Call: events.CallPush, Duration: took})
	case !errors.Is(err, federation.ErrFederateUnsupported):
		e.hopFailed(ctx, s.ClientID, ds, events.CallPush, took, hopReason(err), false)
	}
	return hop, f, err
}

// unsupported emits federation.failed for a downstream without a native
// endpoint that the caller does not federate to through the browser
// (begin leaves that case to it).
func (e *Engine) unsupported(ctx context.Context, s *session, ds string, err error) {
	if errors.Is(err, federation.ErrFederateUnsupported) {
		e.hopFailed(ctx, s.ClientID, ds, "", 0, "federate_unsupported", false)
	}
}

// beginWeb is begin for a browser hop (federation.BeginWeb).
func (e *Engine) beginWeb(ctx context.Context, snap *policy.Snapshot, s *session, ds string) (federation.Hop, string, error) {
	start := time.Now()
	hop, to, err := snap.Fed.BeginWeb(ctx, ds, e.hopRequest(s.ID, s.Request), e.o.WebCallback)
	took := time.Since(start)
	if err != nil {
		e.hopFailed(ctx, s.ClientID, ds, events.CallPush, took, hopReason(err), false)
	} else {
		e.o.Events.Emit(ctx, events.Event{Name: events.FederationStarted, ClientID: s.ClientID, Downstream: ds, Call: events.CallPush, Duration: took})
	}
	return hop, to, err
}

// completeHop redeems the downstream's code (federation.Complete), timing
// the call and emitting federation.completed and sign_in.success, or
// federation.failed and sign_in.failure.
func (e *Engine) completeHop(ctx context.Context, snap *policy.Snapshot, s *session, hop federation.Hop, code, iss string) (federation.Identity, error) {
	start := time.Now()
	id, err := snap.Fed.Complete(ctx, hop, code, iss)
	took := time.Since(start)
	if err != nil {
		call := events.CallRedeem
		if errors.Is(err, federation.ErrMixUp) || errors.Is(err, federation.ErrHopGone) {
			call = "" // refused before any request to the downstream
		}
		// Unless the downstream was unreachable (the session is kept for
		// a retry), the code is spent or refused: this sign-in ended
		// without an identity.
		reason := hopReason(err)
		e.hopFailed(ctx, s.ClientID, hop.Downstream, call, took, reason, reason != "unavailable")
		return id, err
	}
	e.o.Events.Emit(ctx, events.Event{Name: events.FederationCompleted, ClientID: s.ClientID, Downstream: hop.Downstream, Call: events.CallRedeem, Duration: took})
	e.signIn(ctx, true, events.MethodFederation, s.ClientID, hop.Downstream, "")
	return id, nil
}

// downstreamReason names an error code a device reported from the
// downstream (a response_uri post or a web callback): the code is client
// input, so only known values pass.
func downstreamReason(code string) string {
	switch code {
	case "access_denied":
		return "downstream_denied"
	case "server_error":
		return "downstream_server_error"
	case "temporarily_unavailable":
		return "downstream_unavailable"
	case "invalid_request":
		return "downstream_invalid_request"
	}
	return "downstream_error"
}
