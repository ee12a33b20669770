package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/ratelimit"
	"github.com/fedas/fedas/storage"
)

// initRateLimits builds the rate limiter of the configuration
// (config.RateLimits; docs/security.md "Rate limits") on the store's
// storage.RateLimiter, with keys salted by a secret derived from the
// shared HMAC secret, so that instances sharing a store share the limits
// and nothing in a key can be linked to the value it limits without that
// secret.
func (s *Server) initRateLimits(o Options) error {
	proxies, err := config.ParseTrustedProxies(s.cfg.TrustedProxies)
	if err != nil {
		return err
	}
	s.proxies = proxies
	rules := s.cfg.Limits.Rate.Effective()
	if len(rules) == 0 {
		return nil
	}
	st, ok := o.Store.(storage.RateLimiter)
	if !ok {
		s.log.Warn("rate limits are off: the store has no rate limiter")
		return nil
	}
	s.limiter, err = ratelimit.New(rules, st, derivedKey(o.HMACSecret, "fedas/rate-limit/v1"))
	return err
}

// rateLimit is the middleware that applies endpoint's rate limits to a
// request, after the form parser (it reads the parsed form) and before
// anything that costs: client authentication, the engine, bcrypt. At the
// native endpoint, endpoint is config.RateNativeInitial and a request
// with an auth_session counts as config.RateNativeFollowUp. Over a limit
// the answer is 429 slow_down with Retry-After (docs/decisions.md Q28), a
// page on the browser endpoint, and nothing the request names is used.
// When the limiter's storage fails, the request goes on (fail open,
// docs/security.md "Rate limits") with a warning and
// fedas_rate_limit_unavailable_total.
func (s *Server) rateLimit(endpoint string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if s.limiter == nil {
				return next(c)
			}
			ctx := c.Request().Context()
			form := formOf(c)
			ep := endpoint
			if ep == config.RateNativeInitial && form.Get("auth_session") != "" {
				ep = config.RateNativeFollowUp
			}
			subject := s.rateSubject(ctx, c, ep, form)
			ref, err := s.limiter.Check(ctx, ep, subject, s.now())
			if err != nil {
				s.obs.metrics.RateLimitUnavailable()
				events.For(ctx, s.log).Warn("rate limit not checked: storage failed; the request goes on", zap.String("endpoint", ep), zap.Error(err))
				return next(c)
			}
			if ref == nil {
				return next(c)
			}
			s.obs.events.Emit(ctx, events.Event{Name: events.RateLimitHit, Scope: ref.Scope, ClientID: s.registeredClient(ctx, subject.Client)})
			desc := slowDownDescription(ref.Scope)
			if ep == config.RateBrowserSubmit {
				events.NoteError(ctx, "slow_down")
				c.Response().Header().Set("Retry-After", retryAfterSeconds(ref.RetryAfter))
				return s.errorPage(c, http.StatusTooManyRequests, desc+" Wait a moment, then reload this page.")
			}
			return s.writeError(c, errSlowDown(ref.RetryAfter, desc))
		}
	}
}

// slowDownDescription names what was limited (docs/decisions.md Q28).
func slowDownDescription(scope string) string {
	switch scope {
	case config.ScopeSession:
		return "Too many requests for this sign-in."
	case config.ScopeAccount:
		return "Too many sign-in attempts for this account."
	case config.ScopeClient:
		return "Too many requests for this client."
	}
	return "Too many requests from this address."
}

// rateSubject is what a request of endpoint is limited by: the client
// address (clientIP, the one place that decides it), the registered
// client it names, the account it names and the session it continues.
// Nothing here is authenticated yet; each value only picks a budget, so
// naming another client or account spends that one's budget and gets the
// caller nothing (docs/security.md "Rate limits").
func (s *Server) rateSubject(ctx context.Context, c echo.Context, ep string, form url.Values) ratelimit.Subject {
	subj := ratelimit.Subject{IP: s.clientIP(c)}
	switch ep {
	case config.RateNativeInitial, config.RatePAR, config.RateToken, config.RateIntrospect, config.RateRevoke:
		if id := namedClient(c.Request(), form); id != "" {
			if _, ok := s.snapshot(ctx).Client(id); ok {
				subj.Client = id
			}
		}
	}
	switch ep {
	case config.RateNativeInitial:
		subj.Account = form.Get("login_hint")
	case config.RateNativeFollowUp, config.RateBrowserSubmit:
		subj.Account = form.Get("username")
		if subj.Account == "" {
			// A prompt answer (federation draft §4.3.3): the email or
			// phone that routes the sign-in.
			subj.PromptAccount = form.Get("email")
			if subj.PromptAccount == "" {
				subj.PromptAccount = form.Get("phone")
			}
		}
	}
	switch ep {
	case config.RateNativeFollowUp, config.RateResponse, config.RateBrowserSubmit:
		if v := form.Get("auth_session"); v != "" {
			if id, ok := flow.SessionID(v); ok {
				subj.Session = id
			} else {
				subj.Session = v
			}
		}
	}
	return subj
}

// namedClient is the client_id a request names, unauthenticated: HTTP
// Basic's user, else the client_id parameter, else the sub of a
// client_assertion (RFC 7523 §3; its signature is verified later, by
// client authentication).
func namedClient(r *http.Request, form url.Values) string {
	if u, _, ok := r.BasicAuth(); ok {
		id, err := url.QueryUnescape(u)
		if err != nil {
			return ""
		}
		return id
	}
	if id := form.Get("client_id"); id != "" {
		return id
	}
	parts := strings.Split(form.Get("client_assertion"), ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	return claims.Sub
}
