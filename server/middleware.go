package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/policy"
)

// formParser reads a POST body strictly before any handler (or fosite)
// sees it: application/x-www-form-urlencoded only (or a flat JSON object
// of strings where allowJSON, FiPA-04 §5.3), bounded in size and count,
// valid UTF-8, and every parameter at most once (RFC 6749 §3.1). Query
// parameters are ignored: the parsed body replaces r.Form.
func (s *Server) formParser(allowJSON bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil {
				return s.writeError(c, errInvalidRequest("The request must be application/x-www-form-urlencoded."))
			}
			limit := s.cfg.Limits.MaxBodyBytes
			body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
			if err != nil {
				return s.writeError(c, errInvalidRequest("The request body could not be read."))
			}
			if int64(len(body)) > limit {
				return s.writeError(c, newError(http.StatusRequestEntityTooLarge, "invalid_request", "The request body is too large."))
			}
			var form url.Values
			var perr *protoError
			switch {
			case mt == "application/x-www-form-urlencoded":
				form, perr = parseStrictForm(string(body), s.cfg.Limits.MaxParams)
			case allowJSON && mt == "application/json":
				form, perr = parseStrictJSON(body, s.cfg.Limits.MaxParams)
			default:
				perr = errInvalidRequest("The request must be application/x-www-form-urlencoded.")
			}
			if perr != nil {
				return s.writeError(c, perr)
			}
			if perr := s.checkClientAuthShape(r, form); perr != nil {
				return s.writeError(c, perr)
			}
			// RFC 6749 §2.3.1: a client_id in the body must agree with
			// the one authenticated by HTTP Basic (SECURITY-RESULTS.md D06).
			if id, _, ok := r.BasicAuth(); ok && form.Get("client_id") != "" {
				if uid, err := url.QueryUnescape(id); err != nil || uid != form.Get("client_id") {
					return s.writeError(c, errInvalidRequest("The client_id does not match the authenticated client."))
				}
			}
			r.PostForm = form
			r.Form = form
			// fosite re-parses through ParseMultipartForm; an empty body
			// keeps it on the parsed form above.
			r.Body = http.NoBody
			c.Set("form", form)
			return next(c)
		}
	}
}

func parseStrictForm(body string, maxParams int) (url.Values, *protoError) {
	form, err := url.ParseQuery(body)
	if err != nil {
		return nil, errInvalidRequest("The request body is not valid form encoding.")
	}
	if len(form) > maxParams {
		return nil, errInvalidRequest("Too many parameters.")
	}
	for k, v := range form {
		if len(v) > 1 {
			return nil, errInvalidRequest(fmt.Sprintf("The %s parameter is repeated.", safeName(k)))
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v[0]) {
			return nil, errInvalidRequest("Parameters must be UTF-8.")
		}
	}
	return form, nil
}

// jsonValued are the members a JSON body may carry as a JSON object or
// array rather than a string (docs/protocol.md "Digital credentials",
// "Rich authorization requests").
var jsonValued = map[string]bool{
	"vp_token":              true,
	"openid4vp_response":    true,
	"authorization_details": true,
}

// parseStrictJSON reads a JSON body (FiPA-04 §5.3) by the form parser's
// rules: valid UTF-8 (checked on the raw bytes, since encoding/json
// silently turns invalid UTF-8 and lone surrogate escapes into U+FFFD),
// exactly one top-level object and nothing after it but whitespace
// (RFC 8259 §2), string values only, every member at most once (RFC 8259
// §4 leaves duplicates open; RFC 6749 §3.1 does not) and at most
// maxParams members. It streams tokens so that duplicates are seen.
func parseStrictJSON(body []byte, maxParams int) (url.Values, *protoError) {
	if !utf8.Valid(body) || !validSurrogateEscapes(body) {
		return nil, errInvalidRequest("Parameters must be UTF-8.")
	}
	notObject := errInvalidRequest("The request body is not a JSON object.")
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, notObject
	}
	form := url.Values{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, notObject
		}
		k, ok := tok.(string)
		if !ok {
			return nil, notObject
		}
		if _, dup := form[k]; dup {
			return nil, errInvalidRequest(fmt.Sprintf("The %s member is repeated.", safeName(k)))
		}
		if len(form) == maxParams {
			return nil, errInvalidRequest("Too many parameters.")
		}
		if jsonValued[k] {
			// A structured member (a DC API vp_token, an openid4vp_response,
			// authorization_details: RFC 9396 §2) may be sent as JSON itself;
			// it is kept as its compact text, for the step that reads it to
			// parse strictly.
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, notObject
			}
			var str string
			if json.Unmarshal(raw, &str) == nil {
				form.Set(k, str)
				continue
			}
			if c := raw[0]; c != '{' && c != '[' {
				return nil, errInvalidRequest(fmt.Sprintf("The %s member must be a string, an object or an array.", safeName(k)))
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, raw); err != nil {
				return nil, notObject
			}
			form.Set(k, buf.String())
			continue
		}
		tok, err = dec.Token()
		if err != nil {
			return nil, notObject
		}
		v, ok := tok.(string)
		if !ok {
			return nil, errInvalidRequest(fmt.Sprintf("The %s member must be a string.", safeName(k)))
		}
		form.Set(k, v)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, notObject
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errInvalidRequest("The request body has data after the JSON object.")
	}
	return form, nil
}

// validSurrogateEscapes reports whether every \uD800–\uDFFF escape in a
// JSON text is part of a high–low surrogate pair (RFC 8259 §7, §8.2):
// what a lone one decodes to is not the sender's text. Backslashes occur
// only inside strings in valid JSON, and anything else fails decoding.
func validSurrogateEscapes(b []byte) bool {
	hex4 := func(i int) (rune, bool) {
		if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
			return 0, false
		}
		var r rune
		for _, c := range b[i+2 : i+6] {
			switch {
			case c >= '0' && c <= '9':
				r = r<<4 | rune(c-'0')
			case c >= 'a' && c <= 'f':
				r = r<<4 | rune(c-'a'+10)
			case c >= 'A' && c <= 'F':
				r = r<<4 | rune(c-'A'+10)
			default:
				return 0, false
			}
		}
		return r, true
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		r, ok := hex4(i)
		if !ok {
			i++ // a two-character escape such as \\ or \"
			continue
		}
		switch {
		case r >= 0xD800 && r <= 0xDBFF:
			lo, ok := hex4(i + 6)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return false
			}
			i += 11
		case r >= 0xDC00 && r <= 0xDFFF:
			return false
		default:
			i += 5
		}
	}
	return true
}

// safeName bounds a parameter name before it appears in a description.
func safeName(k string) string {
	if len(k) > 40 {
		k = k[:40]
	}
	return cleanDescription(k)
}

// recoverer turns a panic into a 500 with an RFC 6749 body: a bug must
// never take the process down or leak a stack trace to the client.
func (s *Server) recoverer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				events.For(c.Request().Context(), s.log).Error("panic", zap.Any("panic", r), zap.String("path", c.Path()))
				err = s.writeError(c, fmt.Errorf("panic: %v", r))
			}
		}()
		return next(c)
	}
}

// deadline bounds each request's work (storage calls carry the context)
// and pins the policy snapshot current when the request starts to its
// context: the whole request, fosite's callbacks included, reads only it.
// Both go into one request copy (Request.WithContext copies the request;
// issue 13 profile). The request's own context (ended when the client
// goes away, without the snapshot) is kept under baseContextKey for the
// long polls, whose hold outlives the deadline (holdContext).
func (s *Server) deadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Set(baseContextKey, c.Request().Context())
		ctx, cancel := context.WithTimeout(c.Request().Context(), s.deadlineD)
		defer cancel()
		ctx = policy.WithSnapshot(ctx, s.policy.Current())
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

func formOf(c echo.Context) url.Values {
	f, _ := c.Get("form").(url.Values)
	return f
}

// checkClientAuthShape applies what fosite leaves open: one client
// authentication method per request (RFC 6749 §2.3; SECURITY-RESULTS.md G05), and
// a client assertion whose aud is our issuer as a single string (FAPI 2.0
// §5.3.2.1-8; RFC 9126 §2; SECURITY-RESULTS.md G02) — refused before fosite
// verifies the signature, so only rejections are based on unverified
// claims.
func (s *Server) checkClientAuthShape(r *http.Request, form url.Values) *protoError {
	_, _, basic := r.BasicAuth()
	assertion := form.Get("client_assertion")
	methods := 0
	for _, used := range []bool{basic, assertion != "", form.Get("client_secret") != ""} {
		if used {
			methods++
		}
	}
	if methods > 1 {
		return errInvalidRequest("Use exactly one client authentication method.")
	}
	if assertion == "" {
		return nil
	}
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return newError(http.StatusUnauthorized, "invalid_client", "The client_assertion is not a signed JWT.")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return newError(http.StatusUnauthorized, "invalid_client", "The client_assertion is not a signed JWT.")
	}
	var claims struct {
		Aud any `json:"aud"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return newError(http.StatusUnauthorized, "invalid_client", "The client_assertion is not a signed JWT.")
	}
	if aud, ok := claims.Aud.(string); !ok || aud != s.cfg.Issuer {
		return newError(http.StatusUnauthorized, "invalid_client", "The client_assertion aud must be our issuer identifier, as a single string.")
	}
	return nil
}
