package verifier

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fedas/fedas/dc"
	"github.com/fedas/fedas/dc/oid4vp"
	"github.com/fedas/fedas/storage"
)

// maxWalletNonce bounds the echoed wallet_nonce (§5.10).
const maxWalletNonce = 256

// httpError is an RFC 6749 §5.2 error for the wallet.
type httpError struct {
	status      int
	code, desc  string
	retryAfter  bool
	allowMethod string
}

func (e *httpError) Error() string { return e.code + ": " + e.desc }

func badRequest(desc string) *httpError {
	return &httpError{status: http.StatusBadRequest, code: "invalid_request", desc: desc}
}

// toHTTP maps verifier and storage errors onto the wire: a failing
// dependency → 503 temporarily_unavailable with Retry-After; everything
// the wallet sent wrong → 400; nothing → 500 except our own corruption.
func toHTTP(err error) *httpError {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he
	case errors.Is(err, dc.ErrUnavailable), errors.Is(err, storage.ErrUnavailable):
		return &httpError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", desc: "try again later", retryAfter: true}
	case errors.Is(err, dc.ErrExpired):
		return badRequest("unknown or expired request")
	case errors.Is(err, ErrAnswered):
		return badRequest("a response was already received")
	case errors.Is(err, dc.ErrRejected):
		return badRequest("invalid response")
	}
	return &httpError{status: http.StatusInternalServerError, code: "server_error", desc: "internal error"}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	e := toHTTP(err)
	if e.retryAfter {
		w.Header().Set("Retry-After", "1")
	}
	if e.allowMethod != "" {
		w.Header().Set("Allow", e.allowMethod)
	}
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.desc})
}

// parseForm reads a form body under the size cap (413 above it).
func (v *Internal) parseForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, v.o.MaxBody)
	if err := r.ParseForm(); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return &httpError{status: http.StatusRequestEntityTooLarge, code: "invalid_request", desc: "request body too large"}
		}
		return badRequest("malformed form body")
	}
	for k, vs := range r.PostForm {
		if len(vs) > 1 {
			return badRequest("repeated parameter " + strings.ToValidUTF8(k, ""))
		}
	}
	return nil
}

// RequestHandler serves POST|GET /dc/request/{id} (OpenID4VP 1.0 §5.10,
// request_uri_method=post): the signed request object of a same/cross
// device transaction, echoing wallet_nonce, fetchable once (docs/security.md "Digital credentials"
// "request_uri"). The id is the last path segment. Never a redirect.
func (v *Internal) RequestHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jar, err := v.serveRequest(w, r)
		if err != nil {
			writeError(w, err)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/oauth-authz-req+jwt")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(jar))
	})
}

func (v *Internal) serveRequest(w http.ResponseWriter, r *http.Request) (string, error) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return "", &httpError{status: http.StatusMethodNotAllowed, code: "invalid_request", desc: "use POST or GET", allowMethod: "GET, POST"}
	}
	id := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	walletNonce := ""
	if r.Method == http.MethodPost {
		if err := v.parseForm(w, r); err != nil {
			return "", err
		}
		walletNonce = r.PostForm.Get("wallet_nonce")
		if len(walletNonce) > maxWalletNonce {
			return "", badRequest("wallet_nonce too long")
		}
		if wm := r.PostForm.Get("wallet_metadata"); wm != "" {
			var m map[string]json.RawMessage
			if json.Unmarshal([]byte(wm), &m) != nil {
				return "", badRequest("wallet_metadata must be a JSON object")
			}
		}
	}
	if id == "" {
		return "", badRequest("unknown or expired request")
	}
	ctx := r.Context()
	txID, err := v.o.Store.TakeDCRequest(ctx, id)
	switch {
	case errors.Is(err, storage.ErrConflict):
		return "", badRequest("request already fetched")
	case err != nil:
		return "", storeErr("request", err)
	}
	rec, res, err := v.load(ctx, "request", txID)
	if err != nil {
		return "", err
	}
	if res != nil {
		return "", badRequest("unknown or expired request")
	}
	key, err := oid4vp.UnmarshalResponseKey([]byte(rec.Key))
	if err != nil {
		return "", err
	}
	life := time.UnixMilli(rec.Exp).Sub(v.o.Now())
	p := oid4vp.RequestParams{ResponseMode: oid4vp.ModeDirectPostJWT, ResponseURI: v.responseURI, Nonce: rec.Nonce,
		State: rec.ReqID, DCQLQuery: rec.Query, EncryptionKey: key, TransactionData: rec.TD, WalletNonce: walletNonce,
		Now: v.o.Now, Lifetime: life}
	v.cryptoOps.Add(1)
	if v.o.ClientIDPrefix == oid4vp.PrefixRedirectURI {
		return v.unsecuredRequest(p)
	}
	return oid4vp.SignRequest(p, v.o.Signer)
}

// unsecuredRequest is the request object of a redirect_uri: client (tests
// only; such a client_id cannot sign, §5.9.3): an unsecured JWT (RFC 9101
// §5, alg none).
func (v *Internal) unsecuredRequest(p oid4vp.RequestParams) (string, error) {
	p.ClientID = v.clientID
	ro, err := oid4vp.UnsignedRequest(p)
	if err != nil {
		return "", err
	}
	now := v.o.Now()
	ro.Iat, ro.Exp, ro.Aud = now.Unix(), now.Add(p.Lifetime).Unix(), oid4vp.SelfIssuedAudience
	body, err := json.Marshal(ro)
	if err != nil {
		return "", err
	}
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"` + oid4vp.RequestObjectType + `"}`))
	return hdr + "." + base64.RawURLEncoding.EncodeToString(body) + ".", nil
}

// ResponseHandler serves POST /dc/response (OpenID4VP 1.0 §8.2, §8.3.1):
// response=<JWE> (direct_post.jwt; the transaction is found by the outer
// state or, without one, by the JWE kid, and the inner state must equal
// it), vp_token+state when PlainResponses is on, or a wallet error
// (error=…&state=…). The presentation is verified here, at POST time, and
// the outcome recorded first-wins (a second POST → 400), so a poll is one
// read and no crypto. Answers 200 {"redirect_uri":…} (same device),
// {"presentation_during_issuance_session":…} (issuance) or {} (cross
// device). Never a redirect.
func (v *Internal) ResponseHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := v.serveResponse(w, r)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, body)
	})
}

func (v *Internal) serveResponse(w http.ResponseWriter, r *http.Request) (map[string]string, error) {
	if r.Method != http.MethodPost {
		return nil, &httpError{status: http.StatusMethodNotAllowed, code: "invalid_request", desc: "use POST", allowMethod: "POST"}
	}
	if err := v.parseForm(w, r); err != nil {
		return nil, err
	}
	f := r.PostForm
	jwe, state := f.Get("response"), f.Get("state")
	hasVP, hasErr := f.Has("vp_token"), f.Has("error")
	switch n := btoi(jwe != "") + btoi(hasVP) + btoi(hasErr); {
	case n != 1:
		return nil, badRequest("send exactly one of response, vp_token, error")
	case jwe == "" && state == "":
		return nil, badRequest("state is required")
	case hasVP && !v.o.PlainResponses:
		return nil, badRequest("unencrypted responses are not accepted")
	}
	if state == "" {
		state = oid4vp.KeyID(jwe)
		if state == "" {
			return nil, badRequest("invalid response")
		}
	}
	ctx := r.Context()
	txID, taken, err := v.o.Store.DCRequest(ctx, state)
	if err != nil {
		return nil, storeErr("response", err)
	}
	if !taken {
		return nil, badRequest("unknown or expired request")
	}
	rec, res, err := v.load(ctx, "response", txID)
	if err != nil {
		return nil, err
	}
	if rec.Flow != dc.FlowSameDevice && rec.Flow != dc.FlowCrossDevice {
		return nil, badRequest("unknown or expired request")
	}
	if res != nil {
		return nil, ErrAnswered
	}
	var resp vpResponse
	switch {
	case hasErr:
		resp.walletError = walletErrorCode(f.Get("error"))
	case hasVP:
		if resp.vpToken, err = parseVPToken(json.RawMessage(f.Get("vp_token"))); err != nil {
			return nil, err
		}
	default:
		if resp, err = v.decrypt(rec, jwe, rec.ReqID); err != nil {
			return nil, err
		}
	}
	out, err := v.verify(ctx, rec, resp, v.clientID)
	if err != nil {
		return nil, err
	}
	code, err := v.record(ctx, txID, rec, out)
	if err != nil {
		return nil, err
	}
	switch {
	case rec.Flow == dc.FlowCrossDevice:
		return map[string]string{}, nil
	case rec.Issuance:
		return map[string]string{"presentation_during_issuance_session": code}, nil
	}
	return map[string]string{"redirect_uri": redirectWithCode(rec.Redirect, code)}, nil
}

// redirectWithCode fills the same-device return URL (OpenID4VP 1.0 §13.3):
// the template's {RESPONSE_CODE} (EUDI verifier style) or, without one, a
// response_code query parameter.
func redirectWithCode(tmpl, code string) string {
	if strings.Contains(tmpl, "{RESPONSE_CODE}") {
		return strings.ReplaceAll(tmpl, "{RESPONSE_CODE}", url.QueryEscape(code))
	}
	sep := "?"
	if strings.Contains(tmpl, "?") {
		sep = "&"
	}
	if i := strings.IndexByte(tmpl, '#'); i >= 0 {
		return tmpl[:i] + sep + "response_code=" + url.QueryEscape(code) + tmpl[i:]
	}
	return tmpl + sep + "response_code=" + url.QueryEscape(code)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
