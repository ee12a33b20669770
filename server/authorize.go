package server

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/storage"
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
	c.Response().WriteHeader(status)
	return page.Execute(c.Response(), d)
}

func (s *Server) errorPage(c echo.Context, status int, msg string) error {
	return s.renderPage(c, status, pageData{Title: "Sign-in problem", Message: msg})
}

func (s *Server) challengePage(c echo.Context, fe *flow.Error) error {
	d := pageData{Title: "Sign in", Message: fe.Description, Session: fe.AuthSession}
	if fe.Challenge != nil {
		if fe.Challenge.Type == "otp" {
			d.Title = "One-time code"
		}
		names := make([]string, 0, len(fe.Challenge.Inputs))
		for n := range fe.Challenge.Inputs {
			names = append(names, n)
		}
		// username before password; stable order.
		sort.Slice(names, func(i, j int) bool { return names[i] > names[j] })
		for _, n := range names {
			in := fe.Challenge.Inputs[n]
			d.Inputs = append(d.Inputs, pageInput{Name: n, Title: in.Title, Hint: in.Hint, Secret: in.Secret})
		}
	}
	return s.renderPage(c, http.StatusOK, d)
}

// authorizePage starts a browser sign-in for a pushed request. Reading the
// request_uri does not consume it, so a page reload works until the
// sign-in completes (SECURITY.md H03); the request is consumed when the
// code is issued. Errors before the redirect_uri is trusted show a page,
// never a redirect (RFC 6749 §4.1.2.1; SECURITY.md C05).
func (s *Server) authorizePage(c echo.Context) error {
	q := c.Request().URL.Query()
	for k, v := range q {
		if (k != "client_id" && k != "request_uri") || len(v) != 1 {
			return s.errorPage(c, http.StatusBadRequest, "This endpoint takes only pushed authorization requests (client_id and request_uri).")
		}
	}
	clientID, ru := q.Get("client_id"), q.Get("request_uri")
	if clientID == "" || !strings.HasPrefix(ru, requestURIPrefix) || len(ru) > 256 {
		return s.errorPage(c, http.StatusBadRequest, "The request is missing client_id or a valid request_uri.")
	}
	rec, err := s.store.Token(c.Request().Context(), storage.KindPAR, ru)
	switch {
	case errors.Is(err, storage.ErrUnavailable):
		return s.errorPage(c, http.StatusServiceUnavailable, "The service is temporarily unavailable; try again shortly.")
	case err != nil:
		return s.errorPage(c, http.StatusBadRequest, "The request has expired or was already used. Start again from the app.")
	case rec.ClientID != clientID:
		return s.errorPage(c, http.StatusBadRequest, "The request was not issued to this client.")
	}
	client, ok := s.clients.lookup(clientID)
	pushed, _ := url.ParseQuery(rec.Form)
	if !ok || rec.RedirectURI == "" || !exactMatch(rec.RedirectURI, client.GetRedirectURIs()) {
		return s.errorPage(c, http.StatusBadRequest, "The request has no registered redirect URI.")
	}
	req := map[string]string{"redirect_uri": rec.RedirectURI, "request_uri": ru}
	for _, k := range []string{"scope", "state", "nonce", "code_challenge", "code_challenge_method", "login_hint", "dpop_jkt"} {
		if v := pushed.Get(k); v != "" {
			req[k] = v
		}
	}
	if req["scope"] == "" && len(rec.GrantedScopes) > 0 {
		req["scope"] = strings.Join(rec.GrantedScopes, " ")
	}
	err = s.flow.StartBrowser(c.Request().Context(), clientID, req)
	var fe *flow.Error
	if errors.As(err, &fe) && fe.Challenge != nil {
		fe.Description = ""
		return s.challengePage(c, fe)
	}
	return s.errorPage(c, http.StatusServiceUnavailable, "The sign-in could not start; try again shortly.")
}

// authorizeSubmit takes a challenge answer. On success it consumes the
// pushed request and answers 303 (never 307, which would replay the
// password to the client: RFC 9700 §4.12) to the registered redirect_uri
// with code, state and iss (RFC 9207 §2).
func (s *Server) authorizeSubmit(c echo.Context) error {
	ctx := c.Request().Context()
	form := formOf(c)
	out, err := s.flow.ContinueBrowser(ctx, form.Get("auth_session"), form)
	var fe *flow.Error
	switch {
	case errors.As(err, &fe) && fe.Challenge != nil:
		return s.challengePage(c, fe)
	case errors.As(err, &fe) && fe.Code == "access_denied":
		return s.errorPage(c, http.StatusBadRequest, "Too many failed attempts. Start again from the app.")
	case errors.As(err, &fe):
		return s.errorPage(c, http.StatusBadRequest, "This sign-in page has expired. Start again from the app.")
	case err != nil:
		return s.errorPage(c, http.StatusServiceUnavailable, "The service is temporarily unavailable; try again shortly.")
	}
	redirect, ru := out.Request["redirect_uri"], out.Request["request_uri"]
	if redirect == "" || ru == "" {
		return s.errorPage(c, http.StatusBadRequest, "This sign-in did not start in the browser.")
	}
	if _, err := s.store.ConsumeToken(ctx, storage.KindPAR, ru); err != nil {
		return s.errorPage(c, http.StatusBadRequest, "The request was already completed.")
	}
	q := url.Values{"code": {out.Code}, "iss": {s.cfg.Issuer}}
	if st := out.Request["state"]; st != "" {
		q.Set("state", st)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusSeeOther, redirect+sep(redirect)+q.Encode())
}
