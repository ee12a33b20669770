package server

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"sort"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/fedas/fedas/flow"
)

// PathAuthorize is the browser authorization endpoint (RFC 6749 §3.1), the
// target of redirect_to_web (FiPA-04 §5.2.2.1.1). It takes only pushed
// requests: client_id + request_uri (RFC 9126 §4).
const PathAuthorize = "/oauth2/authorize"

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem}
label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;box-sizing:border-box}
button{margin-top:1rem;padding:.6rem 1.2rem}.msg{color:#a00}</style></head>
<body><h1>{{.Title}}</h1>
{{if .Message}}<p class="msg" id="message">{{.Message}}</p>{{end}}
{{if .Session}}<form method="post" action="{{.Action}}">
<input type="hidden" name="auth_session" value="{{.Session}}">
{{range .Inputs}}<label for="{{.Name}}">{{.Title}}</label>
<input id="{{.Name}}" name="{{.Name}}" type="{{if .Secret}}password{{else}}text{{end}}" autocomplete="{{.Hint}}" required>
{{end}}<button type="submit" id="submit">Continue</button></form>{{end}}
</body></html>`))

type pageInput struct {
	Name, Title, Hint string
	Secret            bool
}

type pageData struct {
	Title, Message, Session, Action string
	Inputs                          []pageInput
}

// renderPage writes an HTML page with the headers every page of ours
// carries: no caching, no framing, a restrictive CSP (RFC 9700 §4.16).
func (s *Server) renderPage(c echo.Context, status int, d pageData) error {
	h := c.Response().Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	d.Action = PathAuthorize
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	c.Response().WriteHeader(status)
	return page.Execute(c.Response(), d)
}

func (s *Server) errorPage(c echo.Context, status int, msg string) error {
	return s.renderPage(c, status, pageData{Title: "Sign-in problem", Message: msg})
}

func (s *Server) challengePage(c echo.Context, ch flow.Challenge) error {
	d := pageData{Title: "Sign in", Session: ch.AuthSession}
	if ch.Description != ch.Spec.Description {
		d.Message = ch.Description
	}
	if ch.Spec.Type == "otp" {
		d.Title = "One-time code"
	}
	names := make([]string, 0, len(ch.Spec.Inputs))
	for n := range ch.Spec.Inputs {
		names = append(names, n)
	}
	// username before password; stable order.
	sort.Slice(names, func(i, j int) bool { return names[i] > names[j] })
	for _, n := range names {
		in := ch.Spec.Inputs[n]
		d.Inputs = append(d.Inputs, pageInput{Name: n, Title: in.Title, Hint: in.Hint, Secret: in.Secret})
	}
	return s.renderPage(c, http.StatusOK, d)
}

// authorizePage starts a browser sign-in for a pushed request (a client's
// PAR, or our redirect_to_web fallback). Reading the request_uri does not
// consume it, so a page reload works until the sign-in completes
// (SECURITY-RESULTS.md H03). Errors before the redirect_uri is trusted show a
// page, never a redirect (RFC 6749 §4.1.2.1).
func (s *Server) authorizePage(c echo.Context) error {
	q := c.Request().URL.Query()
	for k, v := range q {
		if (k != "client_id" && k != "request_uri") || len(v) != 1 {
			return s.errorPage(c, http.StatusBadRequest, "This endpoint takes only pushed authorization requests (client_id and request_uri).")
		}
	}
	if q.Get("client_id") == "" || q.Get("request_uri") == "" {
		return s.errorPage(c, http.StatusBadRequest, "The request is missing client_id or a valid request_uri.")
	}
	return s.browser(c, url.Values{"client_id": {q.Get("client_id")}, "request_uri": {q.Get("request_uri")}})
}

// authorizeSubmit takes a challenge answer from our pages.
func (s *Server) authorizeSubmit(c echo.Context) error {
	form := formOf(c)
	if form.Get("auth_session") == "" {
		return s.errorPage(c, http.StatusBadRequest, "This sign-in page has expired. Start again from the app.")
	}
	return s.browser(c, form)
}

func (s *Server) browser(c echo.Context, form url.Values) error {
	ctx := c.Request().Context()
	out, err := s.flow.Handle(ctx, flow.Request{Channel: flow.ChannelBrowser, Policy: s.snapshot(ctx), Form: form, ClientIP: s.clientIP(c)})
	if err != nil {
		if !errors.Is(err, flow.ErrOverloaded) { // a full password gate is expected under a flood
			s.log.Warn("browser sign-in failed", zap.Error(err))
		}
		return s.errorPage(c, http.StatusServiceUnavailable, "The service is temporarily unavailable; try again shortly.")
	}
	return s.renderPageOutcome(c, out)
}
