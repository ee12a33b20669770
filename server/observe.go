package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"

	"github.com/fedas/fedas/accesslog"
	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/metrics"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/storage"
)

// observer is the server's metrics, security events and access log
// (docs/operations.md "Metrics", "Access log", "Events").
type observer struct {
	metrics *metrics.Metrics
	events  *events.Emitter
	access  echo.MiddlewareFunc
}

// initObserve wires the observer from the options: the given metrics
// (shared with the admin listener and the Redis hook), or a registry of
// this server's own.
func (s *Server) initObserve(o Options) {
	m := o.Metrics
	if m == nil {
		m = metrics.New(metrics.Options{})
	}
	m.SetPolicy(policyView{s.policy})
	s.obs = observer{
		metrics: m,
		events:  events.New(o.Logger.Named("event"), m),
		access:  accesslog.Middleware(accesslog.Options{Log: o.Logger.Named("access"), Base: o.Logger, Listener: metrics.ListenerPublic, Metrics: m}),
	}
}

// Metrics returns the server's metrics (the admin listener serves them).
func (s *Server) Metrics() *metrics.Metrics { return s.obs.metrics }

// Events returns the server's security event emitter.
func (s *Server) Events() *events.Emitter { return s.obs.events }

// accessLog gives each request its id and record, counts it and logs
// one line for it (accesslog.Middleware).
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc { return s.obs.access(next) }

// observeOutcome is flow.Options.Observe: every answer of the engine is
// counted by channel and kind and named on the access line.
func (s *Server) observeOutcome(ctx context.Context, r flow.Request, out flow.Outcome, err error) {
	kind, challenge := flow.Kind(out, err)
	s.obs.metrics.Outcome(r.Channel.String(), kind, challenge)
	events.NoteOutcome(ctx, kind)
	if r.Client != nil {
		events.NoteClient(ctx, r.Client.GetID())
	}
}

// policyView is the live policy as the metrics read it.
type policyView struct{ src *policy.Source }

func (p policyView) PolicyVersion() uint64 {
	if snap := p.src.Current(); snap != nil {
		return snap.PolicyVersion
	}
	return 0
}

func (p policyView) HasClient(id string) bool {
	snap := p.src.Current()
	if snap == nil {
		return false
	}
	_, ok := snap.Client(id)
	return ok
}

func (p policyView) HasDownstream(id string) bool {
	snap := p.src.Current()
	if snap == nil || snap.Fed == nil {
		return false
	}
	_, ok := snap.Fed.Downstream(id)
	return ok
}

// registeredClient is id when the request's policy registers it, else
// events.UnknownClient: a client_id from a request is client input.
func (s *Server) registeredClient(ctx context.Context, id string) string {
	if _, ok := s.snapshot(ctx).Client(id); ok && id != "" {
		return id
	}
	return events.UnknownClient
}

// authenticateClient is our fosite.ClientAuthenticationStrategy
// (verifyClient) plus the client_auth.failure event: a refused credential
// is logged and counted, a storage failure is not a refusal.
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
	c, err := s.verifyClient(ctx, r, form)
	if err == nil || errors.Is(err, storage.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return c, err
	}
	method, id := "none", form.Get("client_id")
	if u, _, ok := r.BasicAuth(); ok {
		method = "client_secret_basic"
		if uid, uerr := url.QueryUnescape(u); uerr == nil {
			id = uid
		}
	} else if form.Get("client_assertion") != "" || form.Get("client_assertion_type") != "" {
		method = "private_key_jwt"
	} else if form.Get("client_secret") != "" {
		method = "client_secret_post"
	}
	reason := "invalid_client"
	var re *fosite.RFC6749Error
	if errors.As(err, &re) && re.ErrorField == "invalid_request" {
		reason = "invalid_request"
	}
	s.obs.events.Emit(ctx, events.Event{Name: events.ClientAuthFailure, Method: method, ClientID: s.registeredClient(ctx, id), Reason: reason})
	return c, err
}

// tokenIssued emits token.issued for a token response.
func (s *Server) tokenIssued(ctx context.Context, ar fosite.AccessRequester) {
	gt := "authorization_code"
	if ar.GetGrantTypes().ExactOne("refresh_token") {
		gt = "refresh_token"
	} else if ar.GetGrantTypes().ExactOne("client_credentials") {
		gt = "client_credentials"
	}
	s.obs.events.Emit(ctx, events.Event{Name: events.TokenIssued, GrantType: gt, ClientID: s.registeredClient(ctx, ar.GetClient().GetID())})
}

// codeReused emits code.reuse when the token request presented a code
// that was already redeemed: the code memo of the request saw the store's
// ErrInvalidated (fosite then revokes what the first redemption issued).
func (s *Server) codeReused(ctx context.Context) {
	m := memoOf(ctx)
	if m == nil || !errors.Is(m.err, storage.ErrInvalidated) {
		return
	}
	s.obs.events.Emit(ctx, events.Event{Name: events.CodeReuse, Reason: "redeemed", ClientID: s.registeredClient(ctx, m.rec.ClientID)})
}

// codeRaceLost emits code.reuse for a redemption that lost the race to
// invalidate its code to a concurrent one.
func (s *Server) codeRaceLost(ctx context.Context, ar fosite.AccessRequester) {
	if !ar.GetGrantTypes().ExactOne("authorization_code") {
		return
	}
	s.obs.events.Emit(ctx, events.Event{Name: events.CodeReuse, Reason: "concurrent", ClientID: s.registeredClient(ctx, ar.GetClient().GetID())})
}
