package server

import (
	"net/http"
	"net/url"
	"sort"

	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/flow"
)

// renderJSON writes an engine outcome as the native endpoint's JSON
// (FiPA-04 §5.2; federation draft §4.3; status codes as in
// docs/protocol.md). Errors go through writeError, the one mapper.
func (s *Server) renderJSON(c echo.Context, out flow.Outcome) error {
	switch o := out.(type) {
	case flow.Code:
		return writeJSON(c, http.StatusOK, map[string]string{"authorization_code": o.Code})
	case flow.Return:
		// App completion: the callback the app invokes.
		body := map[string]string{"native_callback_uri": o.URI, "callback": withQuery(o.URI, o.Params)}
		for k, v := range o.Params {
			body[k] = v
		}
		return writeJSON(c, http.StatusOK, body)
	}
	return s.writeError(c, outcomeError(out))
}

// outcomeError is the RFC 6749 §5.2 body of every non-success outcome.
func outcomeError(out flow.Outcome) *protoError {
	switch o := out.(type) {
	case flow.Challenge:
		spec := o.Spec
		return &protoError{status: http.StatusForbidden, body: errorBody{Error: "insufficient_authorization", ErrorDescription: o.Description, AuthSession: o.AuthSession, Challenge: &spec, Members: o.Spec.Members}}
	case flow.Pending:
		status := o.Status
		if status == "" {
			status = "pending"
		}
		return &protoError{status: http.StatusForbidden, body: errorBody{Error: "insufficient_authorization", ErrorDescription: o.Description, AuthSession: o.AuthSession, Status: status, Interval: o.Interval, Members: o.Members}}
	case flow.Prompt:
		code := "insufficient_information"
		if o.Invalid {
			code = "invalid_request"
		}
		return &protoError{status: http.StatusBadRequest, body: errorBody{Error: code, ErrorDescription: o.Description, AuthSession: o.AuthSession, UserPrompt: o.UserPrompt, Logo: o.Logo}}
	case flow.Federate:
		return &protoError{status: http.StatusBadRequest, body: errorBody{Error: "federate", ErrorDescription: "Continue at the authorization server that holds this account.",
			AuthSession: o.AuthSession, FederationURI: o.FederationURI, FederationBody: o.FederationBody, ResponseURI: o.ResponseURI}}
	case flow.RedirectToApp:
		return &protoError{status: http.StatusBadRequest, body: errorBody{Error: "redirect_to_app", ErrorDescription: "Continue in the app.", DeepLink: o.DeepLink, AuthSession: o.AuthSession, ReachURI: o.ReachURI}}
	case flow.RedirectToWeb:
		return &protoError{status: http.StatusForbidden, body: errorBody{Error: "redirect_to_web", ErrorDescription: "This sign-in cannot be completed natively; use a browser-based flow.",
			AuthSession: o.AuthSession, RequestURI: o.RequestURI, ExpiresIn: o.ExpiresIn}}
	case flow.Refusal:
		return &protoError{status: o.Status, body: errorBody{Error: o.Code, ErrorDescription: o.Description, AuthSession: o.AuthSession}, retryAfter: o.RetryAfter}
	}
	return newError(http.StatusInternalServerError, "server_error", "The server could not complete the request.")
}

// renderPageOutcome writes an engine outcome on our browser channels
// (the browser endpoint, the web callback): pages, or 303 redirects —
// never 307, which would replay a password to the client (RFC 9700
// §4.12).
func (s *Server) renderPageOutcome(c echo.Context, out flow.Outcome) error {
	switch o := out.(type) {
	case flow.Challenge:
		return s.challengePage(c, o)
	case flow.Pending:
		// A step waits for something outside the page (another device):
		// the form re-posts the session to check again.
		return s.renderPage(c, http.StatusOK, pageData{Title: "Waiting", Message: o.Description, Session: o.AuthSession})
	case flow.Code:
		q := map[string]string{"code": o.Code, "iss": s.cfg.Issuer}
		if o.State != "" {
			q["state"] = o.State
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Redirect(http.StatusSeeOther, withQuery(o.RedirectURI, q))
	case flow.Return:
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Redirect(http.StatusSeeOther, withQuery(o.URI, o.Params))
	case flow.Refusal:
		switch {
		case o.Status == http.StatusServiceUnavailable:
			return s.errorPage(c, http.StatusServiceUnavailable, "The service is temporarily unavailable; reload this page shortly.")
		case o.Status == http.StatusTooManyRequests:
			c.Response().Header().Set("Retry-After", retryAfterSeconds(o.RetryAfter))
			return s.errorPage(c, http.StatusTooManyRequests, o.Description)
		case o.Code == "invalid_session":
			return s.errorPage(c, http.StatusBadRequest, "This sign-in page has expired or was already used. Start again from the app.")
		}
		return s.errorPage(c, http.StatusBadRequest, o.Description)
	}
	return s.errorPage(c, http.StatusInternalServerError, "The sign-in could not continue; start again from the app.")
}

func withQuery(u string, params map[string]string) string {
	if len(params) == 0 {
		return u
	}
	q := url.Values{}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		q.Set(k, params[k])
	}
	return u + sep(u) + q.Encode()
}
