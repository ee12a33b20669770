package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"
	"go.uber.org/zap"

	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/storage"
)

// errorBody is an RFC 6749 §5.2 error response plus the FiPA-04 §5.2.2
// members fedas uses.
type errorBody struct {
	Error            string              `json:"error"`
	ErrorDescription string              `json:"error_description,omitempty"`
	ErrorURI         string              `json:"error_uri,omitempty"`
	AuthSession      string              `json:"auth_session,omitempty"`
	Challenge        *flow.ChallengeSpec `json:"challenge,omitempty"`
	Status           string              `json:"status,omitempty"`
	Interval         int                 `json:"interval,omitempty"`
	FederationURI    string              `json:"federation_uri,omitempty"`
	FederationBody   string              `json:"federation_body,omitempty"`
	ResponseURI      string              `json:"response_uri,omitempty"`
	UserPrompt       map[string]any      `json:"userPrompt,omitempty"`
	Logo             string              `json:"logo,omitempty"`
	DeepLink         string              `json:"deep_link,omitempty"`
	RequestURI       string              `json:"request_uri,omitempty"`
	ExpiresIn        int                 `json:"expires_in,omitempty"`
	// ReachURI is redirect_to_app's cross-device endpoint
	// (server/reach_native.go), an ignorable member.
	ReachURI string `json:"reach_uri,omitempty"`
	// Members are protocol members a step names (a presentation's type,
	// credentials_request, expires_in in the client's dialect:
	// docs/protocol.md "Digital credentials"); a member the fields above
	// already carry is never replaced.
	Members map[string]any `json:"-"`
}

// MarshalJSON writes the fields, then Members in name order.
func (b errorBody) MarshalJSON() ([]byte, error) {
	type plain errorBody
	// No HTML escaping (writeJSON's rule): federation_body must read as
	// form encoding, & and not \u0026.
	var pb bytes.Buffer
	penc := json.NewEncoder(&pb)
	penc.SetEscapeHTML(false)
	if err := penc.Encode(plain(b)); err != nil {
		return nil, err
	}
	out := bytes.TrimRight(pb.Bytes(), "\n")
	if len(b.Members) == 0 {
		return out, nil
	}
	var have map[string]json.RawMessage
	if err := json.Unmarshal(out, &have); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(b.Members))
	for k := range b.Members {
		if _, taken := have[k]; !taken {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	buf := bytes.NewBuffer(out[:len(out)-1])
	for _, k := range names {
		kb, _ := json.Marshal(k)
		var vb bytes.Buffer
		enc := json.NewEncoder(&vb)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(b.Members[k]); err != nil {
			return nil, err
		}
		buf.WriteByte(',')
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(bytes.TrimRight(vb.Bytes(), "\n"))
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// protoError is a protocol error with its HTTP status.
type protoError struct {
	status int
	body   errorBody
	// retryAfter, when set, is sent as Retry-After (RFC 9110 §10.2.3) on
	// a 429 or 503.
	retryAfter time.Duration
}

func (e *protoError) Error() string { return e.body.Error + ": " + e.body.ErrorDescription }

func newError(status int, code, desc string) *protoError {
	return &protoError{status: status, body: errorBody{Error: code, ErrorDescription: desc}}
}

// errSlowDown is the one answer to a request over a limit (rate limits,
// lockout delays: docs/decisions.md Q28): 429 with the RFC 8628 §3.5
// error code slow_down and Retry-After in whole seconds (at least 1).
// Nothing the request names is consumed.
func errSlowDown(retry time.Duration, desc string) *protoError {
	return &protoError{status: http.StatusTooManyRequests, body: errorBody{Error: "slow_down", ErrorDescription: desc}, retryAfter: retry}
}

// retryAfterSeconds renders d as a Retry-After delta-seconds value,
// rounded up and at least 1.
func retryAfterSeconds(d time.Duration) string {
	sec := int64((d + time.Second - 1) / time.Second)
	if sec < 1 {
		sec = 1
	}
	return strconv.FormatInt(sec, 10)
}

func errInvalidRequest(desc string) *protoError {
	return newError(http.StatusBadRequest, "invalid_request", desc)
}

// cleanDescription keeps error_description within the RFC 6749 §5.2
// character set (%x20-21 / %x23-5B / %x5D-7E) and bounded, so that no
// quote, backslash, control character or angle-bracket markup from any
// source (fosite hints may quote input) is reflected.
func cleanDescription(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '<' || r == '>' {
			continue
		}
		if r >= 0x20 && r <= 0x7e && r != '"' && r != '\\' {
			b.WriteRune(r)
		}
		if b.Len() >= 300 {
			break
		}
	}
	return b.String()
}

// toProtoError is the one place that maps every error to an HTTP status and
// an RFC 6749 body.
func toProtoError(err error) (*protoError, bool) {
	var pe *protoError
	var re *fosite.RFC6749Error
	switch {
	case errors.As(err, &pe):
		return pe, false
	case errors.Is(err, flow.ErrOverloaded):
		// The password gate is full (docs/security.md "Account lockout"):
		// expected under a flood, so not logged as a failure.
		return newError(http.StatusServiceUnavailable, "temporarily_unavailable", "Too many sign-ins are being checked right now; retry shortly."), false
	case errors.Is(err, storage.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return newError(http.StatusServiceUnavailable, "temporarily_unavailable", "The service is temporarily unavailable; retry shortly."), true
	case errors.As(err, &re):
		if errors.Is(re, fosite.ErrTemporarilyUnavailable) || errors.Is(re.Unwrap(), storage.ErrUnavailable) {
			return newError(http.StatusServiceUnavailable, "temporarily_unavailable", "The service is temporarily unavailable; retry shortly."), true
		}
		if re.CodeField >= 500 {
			return newError(http.StatusInternalServerError, "server_error", "The server could not complete the request."), true
		}
		desc := re.DescriptionField
		if re.HintField != "" {
			desc = re.HintField
		}
		return newError(re.CodeField, re.ErrorField, desc), false
	}
	return newError(http.StatusInternalServerError, "server_error", "The server could not complete the request."), true
}

// writeError writes err as JSON with Cache-Control: no-store, 401 +
// WWW-Authenticate for invalid_client after HTTP auth (RFC 6749 §5.2) and
// Retry-After on 503.
func (s *Server) writeError(c echo.Context, err error) error {
	pe, internal := toProtoError(err)
	ctx := c.Request().Context()
	if internal {
		events.For(ctx, s.log).Warn("request failed", zap.String("path", c.Path()), zap.Error(err))
	}
	events.NoteError(ctx, pe.body.Error)
	h := c.Response().Header()
	if pe.body.Error == "invalid_client" {
		pe.status = http.StatusUnauthorized
		if c.Request().Header.Get("Authorization") != "" {
			h.Set("WWW-Authenticate", `Basic realm="fedas", error="invalid_client"`)
		}
	}
	switch {
	case pe.retryAfter > 0:
		h.Set("Retry-After", retryAfterSeconds(pe.retryAfter))
	case pe.status == http.StatusServiceUnavailable, pe.status == http.StatusTooManyRequests:
		h.Set("Retry-After", "1")
	}
	body := pe.body
	body.ErrorDescription = cleanDescription(body.ErrorDescription)
	if wantsProblem(c) {
		// The relay's content negotiation (reach_relay_errors.go, Q24).
		return writeProblem(c, pe.status, body)
	}
	return writeJSON(c, pe.status, body)
}

// Header values every JSON answer carries (RFC 6749 §5.1, §5.2), one
// slice each shared by all responses: Header.Set would allocate a new
// one per header per response. Nothing modifies a header value in place;
// Add on them appends past their capacity, into a new array.
var (
	hdrNoStore = []string{"no-store"}
	hdrNoCache = []string{"no-cache"}
	hdrJSON    = []string{"application/json"}
	hdrNosniff = []string{"nosniff"}
)

// jsonBuf is a pooled response buffer with its encoder.
type jsonBuf struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var jsonBufs = sync.Pool{New: func() any {
	b := new(jsonBuf)
	b.enc = json.NewEncoder(&b.buf)
	// No HTML escaping: federation_body is form encoding and must read
	// as such (& not \u0026); the content type is JSON, never HTML.
	b.enc.SetEscapeHTML(false)
	return b
}}

// maxPooledJSON bounds the buffers kept for reuse, so that one large
// answer does not pin its memory in the pool.
const maxPooledJSON = 16 << 10

func writeJSON(c echo.Context, status int, v any) error {
	jb := jsonBufs.Get().(*jsonBuf)
	defer func() {
		if jb.buf.Cap() <= maxPooledJSON {
			jb.buf.Reset()
			jsonBufs.Put(jb)
		}
	}()
	var out []byte
	if eb, ok := v.(errorBody); ok {
		// Its MarshalJSON writes compact JSON already: the encoder would
		// only copy and re-validate it.
		b, err := eb.MarshalJSON()
		if err != nil {
			return err
		}
		out = b
	} else {
		if err := jb.enc.Encode(v); err != nil {
			return err
		}
		out = bytes.TrimRight(jb.buf.Bytes(), "\n")
	}
	return writeRawJSON(c, status, out)
}

// writeRawJSON writes an encoded JSON body with writeJSON's headers.
func writeRawJSON(c echo.Context, status int, body []byte) error {
	h := c.Response().Header()
	h["Cache-Control"] = hdrNoStore
	h["Pragma"] = hdrNoCache
	h["Content-Type"] = hdrJSON
	h["X-Content-Type-Options"] = hdrNosniff
	c.Response().WriteHeader(status)
	_, err := c.Response().Write(body)
	return err
}

// echoError turns echo's own errors (404, 405, 413, a panic recovered as
// an error) into RFC 6749 bodies too.
func (s *Server) echoError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code := "invalid_request"
		desc := http.StatusText(he.Code)
		switch {
		case he.Code == http.StatusNotFound:
			code, desc = "not_found", "No such endpoint."
		case he.Code == http.StatusMethodNotAllowed:
			desc = "This endpoint accepts only POST."
			if c.Request().Method == http.MethodPost {
				desc = "Method not allowed."
			}
		case he.Code >= 500:
			code = "server_error"
		}
		events.NoteError(c.Request().Context(), code)
		_ = writeJSON(c, he.Code, errorBody{Error: code, ErrorDescription: desc})
		return
	}
	_ = s.writeError(c, err)
}
