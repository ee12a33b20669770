package verifier

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/dc"
	"github.com/fedas/fedas/dc/oid4vp"
	"github.com/fedas/fedas/storage"
)

const wantSubject = testIss + "|user-1"

// walletRun drives the wallet side of a same/cross-device transaction:
// fetch the request, present, post the response.
func (e *env) walletRun(t *testing.T, tx dc.Transaction, w wallet) (requestObject, httpResult) {
	t.Helper()
	cid, ru := parseWalletURL(t, tx.RequestURI)
	require.Equal(t, tx.ClientID, cid)
	r := e.fetch(t, ru, "wn-1")
	require.Equal(t, http.StatusOK, r.status, r.body)
	ro := decodeJAR(t, r.body)
	return ro, e.post(t, ro.ResponseURI, w.respond(t, ro))
}

// submitData builds the DC API / interactive data for an inline request.
func submitData(t *testing.T, tx dc.Transaction, flow dc.Flow, w wallet, aud string, plain bool) []byte {
	t.Helper()
	ro := inlineRequest(t, tx, flow)
	vp := w.present(t, ro.RequestObject, aud)
	var m map[string]any
	if plain {
		m = map[string]any{"vp_token": vp}
	} else {
		m = map[string]any{"response": w.encrypt(t, ro, map[string]any{"vp_token": vp})}
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

func requireVerified(t *testing.T, res dc.Result) {
	t.Helper()
	require.Equal(t, dc.StatusVerified, res.Status, res.WalletError)
	require.Len(t, res.Credentials, 1)
	c := res.Credentials[0]
	require.Equal(t, wantSubject, c.Subject)
	require.Equal(t, testIss, c.Issuer)
	require.Equal(t, testVCT, c.VCT)
	require.NotEmpty(t, c.HolderThumbprint)
	require.Equal(t, map[string]any{"given_name": "Erika"}, c.Claims, "only KeepClaims")
}

// TestPaths_Happy: every path completes its own way with a verified,
// minimised result (docs/protocol.md "Digital credentials"): same device (response_code in the
// redirect), presentation during issuance (presentation_during_issuance_
// session), cross device (poll), DC API and interactive (Submit), each
// encrypted and, with PlainResponses, plain; and the redirect_uri: test
// prefix with an unsecured request object.
func TestPaths_Happy(t *testing.T) {
	tests := []struct {
		name  string
		flow  dc.Flow
		opts  func(*Options)
		begin func(*dc.BeginRequest)
		plain bool
	}{
		{name: "same device", flow: dc.FlowSameDevice},
		{name: "same device, template placeholder", flow: dc.FlowSameDevice, begin: func(r *dc.BeginRequest) {
			r.RedirectURITemplate = "https://app.example/cb?x=1&code={RESPONSE_CODE}"
		}},
		{name: "issuance", flow: dc.FlowSameDevice, begin: func(r *dc.BeginRequest) { r.RedirectURITemplate, r.Issuance = "", true }},
		{name: "cross device", flow: dc.FlowCrossDevice},
		{name: "cross device, plain direct_post", flow: dc.FlowCrossDevice, plain: true, opts: func(o *Options) { o.PlainResponses = true }},
		{name: "same device, redirect_uri prefix (tests only)", flow: dc.FlowSameDevice, opts: func(o *Options) {
			o.ClientIDPrefix, o.Insecure = oid4vp.PrefixRedirectURI, true
		}},
		{name: "dc api", flow: dc.FlowDCAPI},
		{name: "dc api, plain", flow: dc.FlowDCAPI, plain: true, opts: func(o *Options) { o.PlainResponses = true }},
		{name: "interactive", flow: dc.FlowInteractive},
		{name: "interactive, plain", flow: dc.FlowInteractive, plain: true, opts: func(o *Options) { o.PlainResponses = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil, tt.opts)
			runHappy(t, e, tt.flow, tt.begin, tt.plain)
		})
	}
}

// runHappy drives one path to a verified result (shared with the Redis test).
func runHappy(t *testing.T, e *env, flow dc.Flow, begin func(*dc.BeginRequest), plain bool) dc.Transaction {
	t.Helper()
	ctx := t.Context()
	tx := e.begin(t, flow, begin)
	require.NotEmpty(t, tx.ID)
	require.Equal(t, e.v.ClientID(), tx.ClientID)
	require.Equal(t, t0.Add(DefaultTTL), tx.ExpiresAt)
	switch flow {
	case dc.FlowDCAPI, dc.FlowInteractive:
		require.Empty(t, tx.RequestURI)
		ro := inlineRequest(t, tx, flow)
		origin, aud := testOrigin, "origin:"+testOrigin
		if flow == dc.FlowInteractive {
			origin, aud = "", tx.ClientID
			require.Equal(t, oid4vp.ModeIAEPostJWT, ro.ResponseMode)
			require.Equal(t, e.srv.URL+"/native-authorization", ro.ExpectedURL)
		} else {
			require.Equal(t, oid4vp.ModeDCAPIJWT, ro.ResponseMode)
			require.Equal(t, []string{testOrigin}, ro.ExpectedOrigins)
		}
		_, err := e.v.Result(ctx, tx.ID, "")
		require.ErrorIs(t, err, dc.ErrPending)
		res, err := e.v.Submit(ctx, tx.ID, dc.DCAPIResponse{Origin: origin, Data: submitData(t, tx, flow, wallet{}, aud, plain)})
		require.NoError(t, err)
		requireVerified(t, res)
		res, err = e.v.Result(ctx, tx.ID, "")
		require.NoError(t, err)
		requireVerified(t, res)
		return tx
	}
	require.Empty(t, tx.Request)
	if flow == dc.FlowCrossDevice {
		_, err := e.v.Result(ctx, tx.ID, "")
		require.ErrorIs(t, err, dc.ErrPending)
	}
	cid, ru := parseWalletURL(t, tx.RequestURI)
	require.Equal(t, e.srv.URL+"/dc/request/", ru[:len(ru)-22])
	r := e.fetch(t, ru, "wn-1")
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, "application/oauth-authz-req+jwt", r.header.Get("Content-Type"))
	ro := decodeJAR(t, r.body)
	require.Equal(t, cid, ro.ClientID)
	var resp httpResult
	if plain {
		vp, _ := json.Marshal(wallet{}.present(t, ro.RequestObject, ro.ClientID))
		resp = e.post(t, ro.ResponseURI, url.Values{"vp_token": {string(vp)}, "state": {ro.State}})
	} else {
		resp = e.post(t, ro.ResponseURI, wallet{}.respond(t, ro))
	}
	require.Equal(t, http.StatusOK, resp.status, resp.body)
	require.Equal(t, "no-store", resp.header.Get("Cache-Control"))
	body := resp.json(t)
	code := ""
	switch {
	case flow == dc.FlowCrossDevice:
		require.Empty(t, body)
	case body["presentation_during_issuance_session"] != nil:
		code = body["presentation_during_issuance_session"].(string)
	default:
		u, err := url.Parse(body["redirect_uri"].(string))
		require.NoError(t, err)
		require.Equal(t, "app.example", u.Host)
		code = u.Query().Get("response_code")
		if code == "" {
			code = u.Query().Get("code")
			require.Equal(t, "1", u.Query().Get("x"))
		}
		require.Len(t, code, 22, "128-bit response_code")
	}
	// Result never consumes: asking twice gives the same answer.
	for range 2 {
		res, err := e.v.Result(ctx, tx.ID, code)
		require.NoError(t, err)
		requireVerified(t, res)
	}
	require.NoError(t, e.v.Cancel(ctx, tx.ID))
	_, err := e.v.Result(ctx, tx.ID, code)
	require.ErrorIs(t, err, dc.ErrExpired, "cancelled")
	return tx
}

// TestRequestURI_FetchedOnce: the request object is served once; a second
// fetch and an unknown id get 400 invalid_request JSON with no-store
// (docs/security.md "Digital credentials"), never a redirect; wallet_nonce is echoed
// (VP §5.10) and the request object holds direct_post.jwt, response_uri,
// state = the request id, typ oauth-authz-req+jwt.
func TestRequestURI_FetchedOnce(t *testing.T) {
	e := newEnv(t, nil, nil)
	tx := e.begin(t, dc.FlowCrossDevice, nil)
	_, ru := parseWalletURL(t, tx.RequestURI)
	r := e.fetch(t, ru, "wallet-nonce-42")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	ro := decodeJAR(t, r.body)
	require.Equal(t, "wallet-nonce-42", ro.WalletNonce)
	require.Equal(t, oid4vp.ModeDirectPostJWT, ro.ResponseMode)
	require.Equal(t, e.srv.URL+"/dc/response", ro.ResponseURI)
	require.Equal(t, ru[strings.LastIndexByte(ru, '/')+1:], ro.State)
	require.Equal(t, ro.State, ro.jwk.KeyID, "kid = state: a response is found without an outer state")
	require.GreaterOrEqual(t, len(ro.Nonce), 22)
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(r.body, ".")[0])
	require.Contains(t, string(hdr), `"typ":"oauth-authz-req+jwt"`)
	require.Contains(t, string(hdr), `"x5c"`)

	for name, u := range map[string]string{"second fetch": ru, "unknown id": e.srv.URL + "/dc/request/AAAAAAAAAAAAAAAAAAAAAA", "GET second": ru} {
		t.Run(name, func(t *testing.T) {
			var r httpResult
			if strings.HasPrefix(name, "GET") {
				resp, err := e.srv.Client().Get(u)
				require.NoError(t, err)
				resp.Body.Close()
				r.status, r.header = resp.StatusCode, resp.Header
			} else {
				r = e.fetch(t, u, "")
				require.Equal(t, "invalid_request", r.json(t)["error"])
			}
			require.Equal(t, http.StatusBadRequest, r.status)
			require.Equal(t, "no-store", r.header.Get("Cache-Control"))
			require.Equal(t, "application/json", r.header.Get("Content-Type"))
		})
	}
	// A GET fetch works too (first time).
	tx2 := e.begin(t, dc.FlowCrossDevice, nil)
	_, ru2 := parseWalletURL(t, tx2.RequestURI)
	resp, err := e.srv.Client().Get(ru2)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestResponseURI_Refusals: refused responses leave no trace (a refused use
// burns nothing): unknown state, unknown kid, inner/outer state mismatch,
// inner state missing, request never fetched, a plain vp_token while
// PlainResponses is off, nothing or two things sent — all 400
// invalid_request; afterwards the genuine response still completes.
func TestResponseURI_Refusals(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := t.Context()
	tx := e.begin(t, dc.FlowCrossDevice, nil)
	_, ru := parseWalletURL(t, tx.RequestURI)
	r := e.fetch(t, ru, "")
	require.Equal(t, http.StatusOK, r.status)
	ro := decodeJAR(t, r.body)
	other := "other-state-AAAAAAAAAAA"
	empty := ""
	unfetched := e.begin(t, dc.FlowCrossDevice, nil)
	_, ruU := parseWalletURL(t, unfetched.RequestURI)
	stateU := ruU[strings.LastIndexByte(ruU, '/')+1:]
	vp, _ := json.Marshal(wallet{}.present(t, ro.RequestObject, ro.ClientID))
	tests := []struct {
		name string
		form url.Values
	}{
		{"unknown state", url.Values{"response": {wallet{}.respond(t, ro).Get("response")}, "state": {"AAAAAAAAAAAAAAAAAAAAAA"}}},
		{"unknown kid, no outer state", wallet{kid: "AAAAAAAAAAAAAAAAAAAAAA"}.respond(t, ro)},
		{"inner state differs from outer", url.Values{"response": {wallet{state: &other}.respond(t, ro).Get("response")}, "state": {ro.State}}},
		{"inner state missing", url.Values{"response": {wallet{state: &empty}.respond(t, ro).Get("response")}, "state": {ro.State}}},
		{"request never fetched", url.Values{"response": {wallet{}.respond(t, ro).Get("response")}, "state": {stateU}}},
		{"plain vp_token refused", url.Values{"vp_token": {string(vp)}, "state": {ro.State}}},
		{"nothing sent", url.Values{"state": {ro.State}}},
		{"response and vp_token", url.Values{"response": {"x"}, "vp_token": {string(vp)}, "state": {ro.State}}},
		{"garbage JWE", url.Values{"response": {"a.b.c.d.e"}, "state": {ro.State}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, e.srv.URL+"/dc/response", tt.form)
			require.Equal(t, http.StatusBadRequest, r.status, r.body)
			require.Equal(t, "invalid_request", r.json(t)["error"])
			require.Equal(t, "no-store", r.header.Get("Cache-Control"))
			_, err := e.v.Result(ctx, tx.ID, "")
			require.ErrorIs(t, err, dc.ErrPending, "nothing recorded")
		})
	}
	r = e.post(t, ro.ResponseURI, wallet{}.respond(t, ro))
	require.Equal(t, http.StatusOK, r.status, r.body)
	res, err := e.v.Result(ctx, tx.ID, "")
	require.NoError(t, err)
	requireVerified(t, res)
}

// TestResponseURI_FirstWins: a second response for the same state gets 400
// and the first result stays (docs/security.md "Digital credentials").
func TestResponseURI_FirstWins(t *testing.T) {
	e := newEnv(t, nil, nil)
	tx := e.begin(t, dc.FlowSameDevice, nil)
	ro, r := e.walletRun(t, tx, wallet{})
	require.Equal(t, http.StatusOK, r.status)
	code := mustCode(t, r)
	r2 := e.post(t, ro.ResponseURI, url.Values{"error": {"access_denied"}, "state": {ro.State}})
	require.Equal(t, http.StatusBadRequest, r2.status)
	r3 := e.post(t, ro.ResponseURI, wallet{}.respond(t, ro))
	require.Equal(t, http.StatusBadRequest, r3.status)
	res, err := e.v.Result(t.Context(), tx.ID, code)
	require.NoError(t, err)
	requireVerified(t, res)
}

func mustCode(t *testing.T, r httpResult) string {
	t.Helper()
	u, err := url.Parse(r.json(t)["redirect_uri"].(string))
	require.NoError(t, err)
	return u.Query().Get("response_code")
}

// TestResponseCode_Guards: on same device Result needs this transaction's
// own response_code: none yet, a wrong one, another transaction's →
// ErrResponseCode; the right one still works afterwards (a refused use
// burns nothing).
func TestResponseCode_Guards(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := t.Context()
	tx := e.begin(t, dc.FlowSameDevice, nil)
	_, err := e.v.Result(ctx, tx.ID, "AAAAAAAAAAAAAAAAAAAAAA")
	require.ErrorIs(t, err, dc.ErrResponseCode, "before any response")
	_, r := e.walletRun(t, tx, wallet{})
	code := mustCode(t, r)
	other := e.begin(t, dc.FlowSameDevice, nil)
	_, r2 := e.walletRun(t, other, wallet{})
	otherCode := mustCode(t, r2)
	for name, c := range map[string]string{"wrong": code + "x", "other transaction's": otherCode, "prefix": code[:21]} {
		_, err := e.v.Result(ctx, tx.ID, c)
		require.ErrorIs(t, err, dc.ErrResponseCode, name)
	}
	res, err := e.v.Result(ctx, tx.ID, code)
	require.NoError(t, err)
	requireVerified(t, res)
}

// TestFixationGuard: each path completes only its own way (docs/decisions.md Q30–Q35): same device without a code, cross device
// with one, DC API / interactive with one → ErrWrongFlow; Submit on same
// or cross device → ErrWrongFlow.
func TestFixationGuard(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := t.Context()
	data := []byte(`{"response":"a.b.c.d.e"}`)
	tests := []struct {
		name string
		flow dc.Flow
		call func(tx dc.Transaction) error
	}{
		{"same device Result without code", dc.FlowSameDevice, func(tx dc.Transaction) error { _, err := e.v.Result(ctx, tx.ID, ""); return err }},
		{"cross device Result with code", dc.FlowCrossDevice, func(tx dc.Transaction) error { _, err := e.v.Result(ctx, tx.ID, "c"); return err }},
		{"dc api Result with code", dc.FlowDCAPI, func(tx dc.Transaction) error { _, err := e.v.Result(ctx, tx.ID, "c"); return err }},
		{"interactive Result with code", dc.FlowInteractive, func(tx dc.Transaction) error { _, err := e.v.Result(ctx, tx.ID, "c"); return err }},
		{"Submit on same device", dc.FlowSameDevice, func(tx dc.Transaction) error {
			_, err := e.v.Submit(ctx, tx.ID, dc.DCAPIResponse{Origin: testOrigin, Data: data})
			return err
		}},
		{"Submit on cross device", dc.FlowCrossDevice, func(tx dc.Transaction) error {
			_, err := e.v.Submit(ctx, tx.ID, dc.DCAPIResponse{Data: data})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, tt.call(e.begin(t, tt.flow, nil)), dc.ErrWrongFlow)
		})
	}
	// A wallet posting a DC API transaction's state to the response_uri
	// finds nothing: DC API transactions have no request id.
	tx := e.begin(t, dc.FlowDCAPI, nil)
	ro := inlineRequest(t, tx, dc.FlowDCAPI)
	r := e.post(t, e.srv.URL+"/dc/response", wallet{}.respond(t, ro))
	require.Equal(t, http.StatusBadRequest, r.status)
}

// TestDCAPI_Origin: a DC API response is accepted only from an expected
// origin (exact string) and its KB-JWT aud must be origin:<that origin>
// (VP App. A.4, §14.8): another origin → ErrOrigin and nothing recorded;
// a KB-JWT for another origin, the client_id, or another nonce →
// invalid_presentation; an interactive Submit with an origin → ErrOrigin.
func TestDCAPI_Origin(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := t.Context()
	two := func(r *dc.BeginRequest) { r.Origins = []string{testOrigin, "https://web.example"} }
	tx := e.begin(t, dc.FlowDCAPI, two)
	good := submitData(t, tx, dc.FlowDCAPI, wallet{}, "origin:"+testOrigin, false)
	for _, o := range []string{"https://evil.example", testOrigin + "/", strings.ToUpper(testOrigin)} {
		_, err := e.v.Submit(ctx, tx.ID, dc.DCAPIResponse{Origin: o, Data: good})
		require.ErrorIs(t, err, ErrOrigin, o)
	}
	_, err := e.v.Result(ctx, tx.ID, "")
	require.ErrorIs(t, err, dc.ErrPending, "nothing recorded")
	// Posted from the second expected origin, but the KB-JWT names the first.
	res, err := e.v.Submit(ctx, tx.ID, dc.DCAPIResponse{Origin: "https://web.example", Data: good})
	require.NoError(t, err)
	require.Equal(t, dc.Result{Status: dc.StatusError, WalletError: "invalid_presentation"}, res)

	for name, w := range map[string]wallet{"aud client_id": {aud: e.v.ClientID()}, "other nonce": {nonce: "AAAAAAAAAAAAAAAAAAAAAAAA"}} {
		tx := e.begin(t, dc.FlowDCAPI, nil)
		res, err := e.v.Submit(ctx, tx.ID, dc.DCAPIResponse{Origin: testOrigin, Data: submitData(t, tx, dc.FlowDCAPI, w, "origin:"+testOrigin, false)})
		require.NoError(t, err, name)
		require.Equal(t, dc.StatusError, res.Status, name)
		_, err = e.v.Submit(ctx, tx.ID, dc.DCAPIResponse{Origin: testOrigin, Data: submitData(t, tx, dc.FlowDCAPI, wallet{}, "origin:"+testOrigin, false)})
		require.ErrorIs(t, err, ErrAnswered, "one submission per transaction")
	}
	// No origin named (a native client cannot prove one): the KB-JWT aud
	// must be one of the registered origins, exactly.
	txn := e.begin(t, dc.FlowDCAPI, two)
	res, err = e.v.Submit(ctx, txn.ID, dc.DCAPIResponse{Data: submitData(t, txn, dc.FlowDCAPI, wallet{}, "origin:https://web.example", false)})
	require.NoError(t, err)
	require.Equal(t, dc.StatusVerified, res.Status)
	txo := e.begin(t, dc.FlowDCAPI, two)
	res, err = e.v.Submit(ctx, txo.ID, dc.DCAPIResponse{Data: submitData(t, txo, dc.FlowDCAPI, wallet{}, "origin:https://other.example", false)})
	require.NoError(t, err)
	require.Equal(t, dc.StatusError, res.Status, "an unregistered origin in the KB-JWT")

	txi := e.begin(t, dc.FlowInteractive, nil)
	_, err = e.v.Submit(ctx, txi.ID, dc.DCAPIResponse{Origin: testOrigin, Data: submitData(t, txi, dc.FlowInteractive, wallet{}, txi.ClientID, false)})
	require.ErrorIs(t, err, ErrOrigin)
	// Plain vp_token refused while PlainResponses is off, nothing recorded.
	_, err = e.v.Submit(ctx, txi.ID, dc.DCAPIResponse{Data: submitData(t, txi, dc.FlowInteractive, wallet{}, txi.ClientID, true)})
	require.ErrorIs(t, err, ErrPlain)
	res, err = e.v.Submit(ctx, txi.ID, dc.DCAPIResponse{Data: submitData(t, txi, dc.FlowInteractive, wallet{}, txi.ClientID, false)})
	require.NoError(t, err)
	requireVerified(t, res)
}

// TestExpired: past its TTL (fixed clock moved on) a transaction is gone
// for every path and entry point: Result/Submit → ErrExpired, the request
// fetch and the response → 400; Cancel ends one at once.
func TestExpired(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := t.Context()
	same := e.begin(t, dc.FlowSameDevice, nil)
	cross := e.begin(t, dc.FlowCrossDevice, nil)
	_, ruC := parseWalletURL(t, cross.RequestURI)
	r := e.fetch(t, ruC, "")
	require.Equal(t, http.StatusOK, r.status)
	roC := decodeJAR(t, r.body)
	dcapi := e.begin(t, dc.FlowDCAPI, nil)
	data := submitData(t, dcapi, dc.FlowDCAPI, wallet{}, "origin:"+testOrigin, false)
	e.clock.add(DefaultTTL)
	_, err := e.v.Result(ctx, cross.ID, "")
	require.ErrorIs(t, err, dc.ErrExpired)
	_, err = e.v.Result(ctx, same.ID, "code")
	require.ErrorIs(t, err, dc.ErrExpired)
	_, err = e.v.Submit(ctx, dcapi.ID, dc.DCAPIResponse{Origin: testOrigin, Data: data})
	require.ErrorIs(t, err, dc.ErrExpired)
	_, ruS := parseWalletURL(t, same.RequestURI)
	require.Equal(t, http.StatusBadRequest, e.fetch(t, ruS, "").status)
	require.Equal(t, http.StatusBadRequest, e.post(t, roC.ResponseURI, wallet{}.respond(t, roC)).status)
	_, err = e.v.Result(ctx, "AAAAAAAAAAAAAAAAAAAAAA", "")
	require.ErrorIs(t, err, dc.ErrExpired, "unknown transaction")

	e.clock.set(t0)
	fresh := e.begin(t, dc.FlowSameDevice, nil)
	require.NoError(t, e.v.Cancel(ctx, fresh.ID))
	require.NoError(t, e.v.Cancel(ctx, fresh.ID), "idempotent")
	_, ru := parseWalletURL(t, fresh.RequestURI)
	require.Equal(t, http.StatusBadRequest, e.fetch(t, ru, "").status)
	_, err = e.v.Result(ctx, fresh.ID, "x")
	require.ErrorIs(t, err, dc.ErrExpired)
	// TTLs are capped.
	long := e.begin(t, dc.FlowCrossDevice, func(r *dc.BeginRequest) { r.TTL = time.Hour })
	require.Equal(t, t0.Add(MaxTTL), long.ExpiresAt)
}

// TestTransactionData: transaction_data is carried in the request and its
// hashes checked (VP App. B.3.3): correct → verified; missing or altered
// → invalid_presentation; on every response path.
func TestTransactionData(t *testing.T) {
	td := base64.RawURLEncoding.EncodeToString([]byte(`{"type":"urn:eudi:sca:payment:1","credential_ids":["pid"],"payload":{"amount":"10.00"}}`))
	withTD := func(r *dc.BeginRequest) { r.TransactionData = []string{td} }
	for _, flow := range []dc.Flow{dc.FlowCrossDevice, dc.FlowDCAPI, dc.FlowInteractive} {
		for _, tt := range []struct {
			name string
			w    wallet
			ok   bool
		}{
			{"confirmed", wallet{}, true},
			{"hash missing", wallet{noTD: true}, false},
			{"hash altered", wallet{tdHashes: []string{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}, false},
		} {
			t.Run(string(flow)+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t, nil, nil)
				ctx := t.Context()
				tx := e.begin(t, flow, withTD)
				var res dc.Result
				var err error
				switch flow {
				case dc.FlowCrossDevice:
					ro, r := e.walletRun(t, tx, tt.w)
					require.Equal(t, []string{td}, ro.TransactionData)
					require.Equal(t, http.StatusOK, r.status)
					res, err = e.v.Result(ctx, tx.ID, "")
				case dc.FlowDCAPI:
					require.Equal(t, []string{td}, inlineRequest(t, tx, flow).TransactionData)
					res, err = e.v.Submit(ctx, tx.ID, dc.DCAPIResponse{Origin: testOrigin, Data: submitData(t, tx, flow, tt.w, "origin:"+testOrigin, false)})
				default:
					res, err = e.v.Submit(ctx, tx.ID, dc.DCAPIResponse{Data: submitData(t, tx, flow, tt.w, tx.ClientID, false)})
				}
				require.NoError(t, err)
				if tt.ok {
					requireVerified(t, res)
				} else {
					require.Equal(t, dc.Result{Status: dc.StatusError, WalletError: "invalid_presentation"}, res)
				}
			})
		}
	}
}

// TestWalletError: a wallet's error response (VP §8.5), plain or inside
// the JWE, is recorded as WalletError (code only, description dropped);
// same device still gets its redirect with a code.
func TestWalletError(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := t.Context()
	tx := e.begin(t, dc.FlowSameDevice, nil)
	_, ru := parseWalletURL(t, tx.RequestURI)
	ro := decodeJAR(t, e.fetch(t, ru, "").body)
	r := e.post(t, ro.ResponseURI, url.Values{"error": {"access_denied"}, "error_description": {"user said no"}, "state": {ro.State}})
	require.Equal(t, http.StatusOK, r.status, r.body)
	res, err := e.v.Result(ctx, tx.ID, mustCode(t, r))
	require.NoError(t, err)
	require.Equal(t, dc.Result{Status: dc.StatusError, WalletError: "access_denied"}, res)

	cross := e.begin(t, dc.FlowCrossDevice, nil)
	_, ru = parseWalletURL(t, cross.RequestURI)
	ro = decodeJAR(t, e.fetch(t, ru, "").body)
	jwe := wallet{}.encrypt(t, ro, map[string]any{"error": "<script>", "state": ro.State})
	require.Equal(t, http.StatusOK, e.post(t, ro.ResponseURI, url.Values{"response": {jwe}}).status)
	res, err = e.v.Result(ctx, cross.ID, "")
	require.NoError(t, err)
	require.Equal(t, dc.Result{Status: dc.StatusError, WalletError: "invalid_response"}, res, "odd codes are not kept")
}

// countingStore counts storage calls and can fail them.
type countingStore struct {
	storage.DCStore
	calls int
	down  bool
}

func (c *countingStore) fail() error {
	c.calls++
	if c.down {
		return errors.Join(storage.ErrUnavailable, errors.New("connection refused"))
	}
	return nil
}

func (c *countingStore) DC(ctx context.Context, id string) (storage.DCRecord, error) {
	if err := c.fail(); err != nil {
		return storage.DCRecord{}, err
	}
	return c.DCStore.DC(ctx, id)
}

func (c *countingStore) CreateDC(ctx context.Context, a, b string, v []byte, ttl time.Duration) error {
	if err := c.fail(); err != nil {
		return err
	}
	return c.DCStore.CreateDC(ctx, a, b, v, ttl)
}

func (c *countingStore) TakeDCRequest(ctx context.Context, id string) (string, error) {
	if err := c.fail(); err != nil {
		return "", err
	}
	return c.DCStore.TakeDCRequest(ctx, id)
}

func (c *countingStore) DCRequest(ctx context.Context, id string) (string, bool, error) {
	if err := c.fail(); err != nil {
		return "", false, err
	}
	return c.DCStore.DCRequest(ctx, id)
}

func (c *countingStore) SetDCResult(ctx context.Context, id string, v []byte) error {
	if err := c.fail(); err != nil {
		return err
	}
	return c.DCStore.SetDCResult(ctx, id, v)
}

// TestResult_NoCrypto: a poll (cross device, pending and done) and a
// same-device Result cost exactly one storage read and no signature,
// decryption or presentation check (docs/architecture.md "Local steps"), by the verifier's
// crypto counter.
func TestResult_NoCrypto(t *testing.T) {
	cs := &countingStore{}
	e := newEnv(t, nil, nil)
	cs.DCStore = e.store
	e.v.o.Store = cs
	ctx := t.Context()
	for _, flow := range []dc.Flow{dc.FlowCrossDevice, dc.FlowSameDevice} {
		tx := e.begin(t, flow, nil)
		code := ""
		if flow == dc.FlowCrossDevice {
			before, calls := e.v.cryptoOps.Load(), cs.calls
			_, err := e.v.Result(ctx, tx.ID, "")
			require.ErrorIs(t, err, dc.ErrPending)
			require.Equal(t, before, e.v.cryptoOps.Load())
			require.Equal(t, calls+1, cs.calls)
		}
		_, r := e.walletRun(t, tx, wallet{})
		if flow == dc.FlowSameDevice {
			code = mustCode(t, r)
		}
		before, calls := e.v.cryptoOps.Load(), cs.calls
		res, err := e.v.Result(ctx, tx.ID, code)
		require.NoError(t, err)
		requireVerified(t, res)
		require.Equal(t, before, e.v.cryptoOps.Load(), "%s: Result did crypto", flow)
		require.Equal(t, calls+1, cs.calls, "%s: Result is one storage read", flow)
	}
}

// TestStorageDown: a failing store → dc.ErrUnavailable wrapping the
// storage error from Begin/Result/Submit/Cancel, and 503
// temporarily_unavailable with Retry-After on both endpoints.
func TestStorageDown(t *testing.T) {
	cs := &countingStore{}
	e := newEnv(t, nil, nil)
	cs.DCStore = e.store
	e.v.o.Store = cs
	ctx := t.Context()
	tx := e.begin(t, dc.FlowCrossDevice, nil)
	dcapi := e.begin(t, dc.FlowDCAPI, nil)
	_, ru := parseWalletURL(t, tx.RequestURI)
	cs.down = true
	_, err := e.v.Begin(ctx, dc.BeginRequest{Flow: dc.FlowCrossDevice, Query: query(t)})
	require.ErrorIs(t, err, dc.ErrUnavailable)
	require.ErrorIs(t, err, storage.ErrUnavailable)
	_, err = e.v.Result(ctx, tx.ID, "")
	require.ErrorIs(t, err, dc.ErrUnavailable)
	_, err = e.v.Submit(ctx, dcapi.ID, dc.DCAPIResponse{Origin: testOrigin, Data: []byte(`{}`)})
	require.ErrorIs(t, err, dc.ErrUnavailable)
	require.ErrorIs(t, e.v.Cancel(ctx, tx.ID), dc.ErrUnavailable)
	for _, r := range []httpResult{e.fetch(t, ru, ""), e.post(t, e.srv.URL+"/dc/response", url.Values{"error": {"access_denied"}, "state": {"s"}})} {
		require.Equal(t, http.StatusServiceUnavailable, r.status)
		require.Equal(t, "temporarily_unavailable", r.json(t)["error"])
		require.NotEmpty(t, r.header.Get("Retry-After"))
	}
	cs.down = false
	require.Equal(t, http.StatusOK, e.fetch(t, ru, "").status, "the failed fetch burnt nothing")
}

// TestHTTP_Limits: bodies over 256 KB → 413; wrong methods → 405 with
// Allow; every answer JSON with no-store; no 3xx.
func TestHTTP_Limits(t *testing.T) {
	e := newEnv(t, nil, nil)
	tx := e.begin(t, dc.FlowCrossDevice, nil)
	_, ru := parseWalletURL(t, tx.RequestURI)
	big := strings.Repeat("a", DefaultMaxBody+1)
	for _, u := range []string{ru, e.srv.URL + "/dc/response"} {
		r := e.post(t, u, url.Values{"wallet_metadata": {big}, "response": {big}})
		require.Equal(t, http.StatusRequestEntityTooLarge, r.status)
		require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	}
	req, _ := http.NewRequest(http.MethodPut, e.srv.URL+"/dc/response", nil)
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.Equal(t, "POST", resp.Header.Get("Allow"))
	r := e.post(t, ru, url.Values{"wallet_metadata": {"not json"}})
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, http.StatusOK, e.fetch(t, ru, "").status, "a refused fetch burns nothing")
}

// TestStored_Minimised: what the store holds after a verified response has
// no vp_token, disclosure or undisclosed-claim value and no response_code
// in clear (VP §15; docs/architecture.md "Local steps", §8 "Privacy"), and never the binding in
// what Begin returns.
func TestStored_Minimised(t *testing.T) {
	e := newEnv(t, nil, nil)
	tx := e.begin(t, dc.FlowSameDevice, func(r *dc.BeginRequest) { r.Binding = "BINDING-DIGEST" })
	require.NotContains(t, tx.RequestURI+tx.Request, "BINDING-DIGEST")
	_, r := e.walletRun(t, tx, wallet{})
	code := mustCode(t, r)
	rec, err := e.store.DC(t.Context(), tx.ID)
	require.NoError(t, err)
	all := string(rec.Tx) + string(rec.Result)
	for _, bad := range []string{secretClaim, "~", code, "eyJ"} {
		require.NotContains(t, all, bad)
	}
	require.Contains(t, string(rec.Tx), "BINDING-DIGEST")
}

// TestNew_Options: redirect_uri: only with Insecure; https BaseURL; a
// signer for x509_hash; a store.
func TestNew_Options(t *testing.T) {
	s := testSigner(t)
	base := Options{Store: newEnv(t, nil, nil).store, Signer: s, BaseURL: "https://as.example"}
	for name, mod := range map[string]func(*Options){
		"redirect_uri without Insecure": func(o *Options) { o.ClientIDPrefix = oid4vp.PrefixRedirectURI },
		"http base":                     func(o *Options) { o.BaseURL = "http://as.example" },
		"no signer":                     func(o *Options) { o.Signer = oid4vp.Signer{} },
		"no store":                      func(o *Options) { o.Store = nil },
		"other prefix":                  func(o *Options) { o.ClientIDPrefix = "decentralized_identifier:" },
	} {
		o := base
		mod(&o)
		_, err := New(o)
		require.Error(t, err, name)
	}
	v, err := New(base)
	require.NoError(t, err)
	require.Equal(t, oid4vp.X509HashClientID(s.Chain[0]), v.ClientID())
}

// TestBegin_Invalid: Begin refuses a request that does not fit its flow
// (the flow is fixed at creation, docs/decisions.md Q30–Q35) and stores nothing.
func TestBegin_Invalid(t *testing.T) {
	e := newEnv(t, nil, nil)
	noIAE := newEnv(t, nil, func(o *Options) { o.InteractiveURL = "" })
	q := query(t)
	tests := []struct {
		name string
		env  *env
		r    dc.BeginRequest
	}{
		{"no query", e, dc.BeginRequest{Flow: dc.FlowCrossDevice}},
		{"unknown flow", e, dc.BeginRequest{Flow: "qr", Query: q}},
		{"dc api without origins", e, dc.BeginRequest{Flow: dc.FlowDCAPI, Query: q}},
		{"dc api with an empty origin", e, dc.BeginRequest{Flow: dc.FlowDCAPI, Query: q, Origins: []string{""}}},
		{"same device without template", e, dc.BeginRequest{Flow: dc.FlowSameDevice, Query: q}},
		{"relative template", e, dc.BeginRequest{Flow: dc.FlowSameDevice, Query: q, RedirectURITemplate: "/dc-return"}},
		{"template on cross device", e, dc.BeginRequest{Flow: dc.FlowCrossDevice, Query: q, RedirectURITemplate: "https://app.example/r"}},
		{"issuance on cross device", e, dc.BeginRequest{Flow: dc.FlowCrossDevice, Query: q, Issuance: true}},
		{"origins on same device", e, dc.BeginRequest{Flow: dc.FlowSameDevice, Query: q, RedirectURITemplate: "https://app.example/r", Origins: []string{testOrigin}}},
		{"short nonce", e, dc.BeginRequest{Flow: dc.FlowCrossDevice, Query: q, Nonce: "abc"}},
		{"nonce not URL-safe", e, dc.BeginRequest{Flow: dc.FlowCrossDevice, Query: q, Nonce: "abcdefghijklmnopqrstuvwxyz+/"}},
		{"interactive without InteractiveURL", noIAE, dc.BeginRequest{Flow: dc.FlowInteractive, Query: q}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := tt.env.v.Begin(t.Context(), tt.r)
			require.Error(t, err)
			require.Empty(t, tx.ID)
		})
	}
	// A supplied nonce is used as is.
	tx := e.begin(t, dc.FlowDCAPI, func(r *dc.BeginRequest) { r.Nonce = "abcdefghijklmnopqrstuvwxyz012345" })
	require.Equal(t, "abcdefghijklmnopqrstuvwxyz012345", inlineRequest(t, tx, dc.FlowDCAPI).Nonce)
}

// TestResponseURI_Race: 20 concurrent POSTs of one response → exactly one
// 200, the others 400; one result stored.
func TestResponseURI_Race(t *testing.T) {
	e := newEnv(t, nil, nil)
	tx := e.begin(t, dc.FlowSameDevice, nil)
	_, ru := parseWalletURL(t, tx.RequestURI)
	ro := decodeJAR(t, e.fetch(t, ru, "").body)
	form := wallet{}.respond(t, ro)
	const n = 20
	statuses := make(chan int, n)
	codes := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := e.srv.Client().PostForm(ro.ResponseURI, form)
			if err != nil {
				statuses <- 0
				return
			}
			defer resp.Body.Close()
			var m map[string]string
			_ = json.NewDecoder(resp.Body).Decode(&m)
			statuses <- resp.StatusCode
			if resp.StatusCode == http.StatusOK {
				codes <- m["redirect_uri"]
			}
		})
	}
	wg.Wait()
	close(statuses)
	close(codes)
	ok := 0
	for s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusBadRequest:
		default:
			t.Fatalf("status %d", s)
		}
	}
	require.Equal(t, 1, ok)
	u, err := url.Parse(<-codes)
	require.NoError(t, err)
	res, err := e.v.Result(t.Context(), tx.ID, u.Query().Get("response_code"))
	require.NoError(t, err)
	requireVerified(t, res)
}

// TestKeyBinding_NotBeforeTransaction: a KB-JWT whose iat predates the
// transaction (beyond the leeway) is refused even inside the 5-minute
// window (docs/security.md "Digital credentials"); one made after Begin passes.
func TestKeyBinding_NotBeforeTransaction(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := t.Context()
	e.clock.set(t0.Add(3 * time.Minute))
	for name, tt := range map[string]struct {
		iat time.Time
		ok  bool
	}{
		"iat 3 min before Begin": {t0, false},
		"iat at Begin":           {t0.Add(3 * time.Minute), true},
	} {
		tx := e.begin(t, dc.FlowDCAPI, nil)
		res, err := e.v.Submit(ctx, tx.ID, dc.DCAPIResponse{Origin: testOrigin, Data: submitData(t, tx, dc.FlowDCAPI, wallet{iat: tt.iat}, "origin:"+testOrigin, false)})
		require.NoError(t, err, name)
		if tt.ok {
			requireVerified(t, res)
		} else {
			require.Equal(t, dc.StatusError, res.Status, name)
		}
	}
}

// TestSubmit_RetryGetsRecordedResult: the same DC API / interactive
// submission again — sequentially or fifty at once — gets the recorded
// result, never ErrAnswered (which the flow turns into access_denied and
// which, racing the first, ended the sign-in without a code); another
// submission, or the same data from another origin, is still refused.
func TestSubmit_RetryGetsRecordedResult(t *testing.T) {
	e := newEnv(t, nil, nil)
	ctx := t.Context()
	for _, flow := range []dc.Flow{dc.FlowDCAPI, dc.FlowInteractive} {
		aud, origin := "origin:"+testOrigin, testOrigin
		if flow == dc.FlowInteractive {
			origin = ""
		}
		tx := e.begin(t, flow, nil)
		if flow == dc.FlowInteractive {
			aud = tx.ClientID
		}
		data := submitData(t, tx, flow, wallet{}, aud, false)
		var wg sync.WaitGroup
		errs := make([]error, 50)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := e.v.Submit(ctx, tx.ID, dc.DCAPIResponse{Origin: origin, Data: data})
				if err == nil && res.Status != dc.StatusVerified {
					err = errors.New("not verified")
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err, flow)
		}
		res, err := e.v.Submit(ctx, tx.ID, dc.DCAPIResponse{Origin: origin, Data: data})
		require.NoError(t, err)
		requireVerified(t, res)
		_, err = e.v.Submit(ctx, tx.ID, dc.DCAPIResponse{Origin: origin, Data: submitData(t, tx, flow, wallet{}, aud, false)})
		require.ErrorIs(t, err, ErrAnswered, "another submission")
		if flow == dc.FlowDCAPI {
			_, err = e.v.Submit(ctx, tx.ID, dc.DCAPIResponse{Data: data})
			require.ErrorIs(t, err, ErrAnswered, "the same data without the origin")
		}
	}
}
