package server_test

// Red-team tests of credential presentation (docs/protocol.md "Digital
// credentials"): each property is a table over every path it applies to
// — the DC API, same device, cross device and OpenID4VCI Interactive
// Authorization — over real HTTPS with DPoP, on memory and on Redis.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fedas/fedas/authn/presentation"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dc/dctest"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
	"github.com/fedas/fedas/storage/redistest"
)

// dcPath is one way a client collects a presentation: a flow, spoken in
// a client's dialect (its request and code members).
type dcPath struct {
	name, client string
	initial      []string
	// flow is the challenge's flow; req the member with the presentation
	// request; code the follow-up member with the same-device code and
	// param the query parameter that brings it back.
	flow, req, code, param string
}

var (
	pathDCAPI = dcPath{name: "dc_api", client: "demo-app", initial: []string{"login_hint", "wallet", "dc_api", "true"},
		flow: "dc_api", req: "credentials_request"}
	pathSame = dcPath{name: "same_device", client: "demo-app", initial: []string{"login_hint", "wallet", "openid4vp_flow_type", "same_device", "openid4vp_redirect_uri", dcReturn},
		flow: "same_device", req: "credentials_request", code: "response_code", param: "response_code"}
	pathCross = dcPath{name: "cross_device", client: "demo-app", initial: []string{"login_hint", "wallet", "openid4vp_flow_type", "cross_device"},
		flow: "cross_device", req: "credentials_request"}
	pathIA = dcPath{name: "interactive", client: "dc-ia", initial: []string{"login_hint", "wallet", "interaction_types_supported", presentation.InteractionType},
		flow: "interactive", req: "openid4vp_request"}
	// The federation draft -00 dialect (same device) and presentation
	// during issuance (the wallet is the client).
	pathDraft00 = dcPath{name: "draft00_same_device", client: "dc-draft00", initial: pathSame.initial,
		flow: "same_device", req: "request", code: "presentation_id", param: "presentation_id"}
	pathPDI = dcPath{name: "pdi", client: "dc-pdi", initial: []string{"login_hint", "wallet"},
		flow: "same_device", req: "presentation", code: "presentation_during_issuance_session"}
	allDCPaths = []dcPath{pathDCAPI, pathSame, pathCross, pathIA, pathDraft00, pathPDI}
)

// secEnv is a dcEnv and, on Redis, its redis-server.
type secEnv struct {
	*dcEnv
	rs *redistest.Server
}

// flakyStore fails every DCStore call while down is set (the
// verifier's storage is unreachable); everything else passes through.
type flakyStore struct {
	fullStore
	down atomic.Bool
	// lostAnswer makes SetDCResult apply and then report ErrUnavailable
	// (the write landed, its answer was lost).
	lostAnswer atomic.Bool
}

// fullStore is every capability the server looks for on a store.
type fullStore interface {
	storage.Store
	storage.DCStore
	storage.LiveCounter
	storage.RateLimiter
	storage.FailureCounter
	storage.CodeRedeemer
	storage.TokenBatcher
}

func (f *flakyStore) err() error {
	if f.down.Load() {
		return storage.ErrUnavailable
	}
	return nil
}

func (f *flakyStore) CreateDC(ctx context.Context, tx, req string, b []byte, ttl time.Duration) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.fullStore.CreateDC(ctx, tx, req, b, ttl)
}

func (f *flakyStore) DC(ctx context.Context, tx string) (storage.DCRecord, error) {
	if err := f.err(); err != nil {
		return storage.DCRecord{}, err
	}
	return f.fullStore.DC(ctx, tx)
}

func (f *flakyStore) TakeDCRequest(ctx context.Context, req string) (string, error) {
	if err := f.err(); err != nil {
		return "", err
	}
	return f.fullStore.TakeDCRequest(ctx, req)
}

func (f *flakyStore) DCRequest(ctx context.Context, req string) (string, bool, error) {
	if err := f.err(); err != nil {
		return "", false, err
	}
	return f.fullStore.DCRequest(ctx, req)
}

func (f *flakyStore) SetDCResult(ctx context.Context, tx string, res []byte) error {
	if err := f.err(); err != nil {
		return err
	}
	if f.lostAnswer.Load() {
		if err := f.fullStore.SetDCResult(ctx, tx, res); err != nil {
			return err
		}
		return storage.ErrUnavailable
	}
	return f.fullStore.SetDCResult(ctx, tx, res)
}

func (f *flakyStore) DeleteDC(ctx context.Context, tx, req string) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.fullStore.DeleteDC(ctx, tx, req)
}

var dcSecBackendNames = []string{"memory", "redis"}

// newSecEnv starts a dcEnv on backend ("memory" or "redis"); with flaky
// set its store is wrapped in a flakyStore.
func newSecEnv(tb testing.TB, backend string, o dcEnvOptions, flaky ...*flakyStore) *secEnv {
	tb.Helper()
	se := &secEnv{}
	var st fullStore
	if backend == "redis" {
		se.rs = redistest.Start(tb)
		st = redisStore(tb, se.rs.URL())
	} else {
		m := memory.New()
		tb.Cleanup(func() { _ = m.Close() })
		st = m
	}
	o.store = st
	if len(flaky) > 0 {
		flaky[0].fullStore = st
		o.store = flaky[0]
	}
	se.dcEnv = newDCEnv(tb, o)
	return se
}

// dbSize is the number of keys in Redis (-1 on memory) other than the
// DPoP proofs' replay marks (every proof leaves one, with its TTL).
func (e *secEnv) dbSize(tb testing.TB) int {
	tb.Helper()
	if e.rs == nil {
		return -1
	}
	out, err := e.rs.Do("DBSIZE")
	require.NoError(tb, err)
	n, err := strconv.Atoi(strings.TrimSpace(out))
	require.NoError(tb, err, out)
	used, err := e.rs.Do("EVAL", "return #redis.call('KEYS', ARGV[1])", "0", "fedas:used:*")
	require.NoError(tb, err)
	u, err := strconv.Atoi(strings.TrimSpace(used))
	require.NoError(tb, err, used)
	return n - u
}

// withKey is a copy of the app that signs its proofs with k (nil: none).
func (a *dcApp) withKey(k *dpop.Key) *dcApp {
	c := *a
	c.key = k
	return &c
}

// begin sends the path's initial request and checks the challenge.
func (p dcPath) begin(tb testing.TB, a *dcApp) dcAnswer {
	tb.Helper()
	ch := a.initial(tb, p.initial...)
	requireDCChallenge(tb, ch, p.flowName())
	return ch
}

func (p dcPath) flowName() string { return p.flow }

// request is the presentation request of a challenge: the wallet URL or
// the DC API / openid4vp_request text.
func (p dcPath) request(tb testing.TB, ch dcAnswer) string {
	tb.Helper()
	if p.flow == pathIA.flow {
		b, err := json.Marshal(ch.m["openid4vp_request"])
		require.NoError(tb, err)
		return string(b)
	}
	return ch.s(p.req)
}

// walletRun is what a wallet run produced: the follow-up that completes
// the sign-in, or the wallet-facing status when the verifier refused the
// response (same and cross device).
type walletRun struct {
	form         url.Values
	walletStatus int
	answer       *dctest.Answer
	secrets      []string
}

// present has the wallet answer ch and returns the client's follow-up
// (cross device: the poll, after the interval has passed).
func (p dcPath) present(tb testing.TB, e *dcEnv, ch dcAnswer) (walletRun, error) {
	tb.Helper()
	as := ch.s("auth_session")
	req := p.request(tb, ch)
	switch p.flow {
	case pathDCAPI.flow, pathIA.flow:
		var data []byte
		var err error
		if p.flow == pathDCAPI.flow {
			data, err = e.wallet.DCAPI(req, dcOrigin)
		} else {
			data, err = e.wallet.Interactive(req)
		}
		if err != nil {
			return walletRun{}, err
		}
		run := walletRun{walletStatus: http.StatusOK, secrets: []string{string(data)}}
		if p.flow == pathIA.flow {
			run.form = url.Values{"auth_session": {as}, "openid4vp_response": {string(data)}}
			return run, nil
		}
		var m map[string]json.RawMessage
		require.NoError(tb, json.Unmarshal(data, &m))
		run.form = url.Values{"auth_session": {as}}
		for k, v := range m {
			var s string
			if json.Unmarshal(v, &s) == nil {
				run.form.Set(k, s)
				run.secrets = append(run.secrets, s)
			} else {
				run.form.Set(k, string(v))
			}
		}
		return run, nil
	}
	ans, err := e.wallet.Present(context.Background(), req)
	if err != nil {
		return walletRun{}, err
	}
	run := walletRun{walletStatus: ans.Status, answer: ans, form: url.Values{"auth_session": {as}}}
	requireNo3xx(tb, ans.Status)
	if p.flow == pathSame.flow && ans.Status == http.StatusOK {
		rc := ans.PresentationDuringIssuanceSession
		if p.param != "" {
			ru, err := url.Parse(ans.RedirectURI)
			require.NoError(tb, err)
			rc = ru.Query().Get(p.param)
		}
		require.GreaterOrEqual(tb, len(rc), 22, string(ans.Body))
		run.form.Set(p.code, rc)
		run.secrets = append(run.secrets, rc)
	}
	if p.flow == pathCross.flow {
		e.clock.Advance(11 * time.Second)
	}
	return run, nil
}

func requireNo3xx(tb testing.TB, status int) {
	tb.Helper()
	require.False(tb, status >= 300 && status < 400, "a redirect (%d): never (OpenID4VP §14.3)", status)
}

func requireDCError(tb testing.TB, a dcAnswer, status int, code string) {
	tb.Helper()
	require.Equal(tb, status, a.status, string(a.raw))
	require.Equal(tb, code, a.s("error"), string(a.raw))
	require.Empty(tb, a.s("authorization_code"), string(a.raw))
}

// TestDCSec_DPoP: on every path every follow-up — the poll, the
// response_code, vp_token/response, openid4vp_response — without a DPoP
// proof or with a proof of another key is invalid_dpop_proof and changes
// nothing: the session's own key completes afterwards.
func TestDCSec_DPoP(t *testing.T) {
	for _, b := range dcSecBackendNames {
		t.Run(b, func(t *testing.T) {
			e := newSecEnv(t, b, dcEnvOptions{x5c: true})
			for _, p := range allDCPaths {
				t.Run(p.name, func(t *testing.T) {
					a := e.app(t, p.client)
					ch := p.begin(t, a)
					as := ch.s("auth_session")
					none, other := a.withKey(nil), a.withKey(newDPoPKey(t))
					poll := url.Values{"auth_session": {as}}
					for _, bad := range []*dcApp{none, other} {
						requireDCError(t, bad.post(t, poll), http.StatusBadRequest, "invalid_dpop_proof")
					}
					run, err := p.present(t, e.dcEnv, ch)
					require.NoError(t, err)
					for _, bad := range []*dcApp{none, other} {
						requireDCError(t, bad.post(t, run.form), http.StatusBadRequest, "invalid_dpop_proof")
					}
					done := a.post(t, run.form)
					require.Equal(t, http.StatusOK, done.status, string(done.raw))
					require.NotEmpty(t, done.s("authorization_code"))
				})
			}
		})
	}
}

// TestDCSec_FixationGuard: each path completes only its own way (OpenID4VP
// §14.2): a same-device session polled without its code stays pending
// however often; a cross-device session takes no response_code or
// vp_token; the DC API and Interactive Authorization take no
// response_code, not even a genuine one of another session.
func TestDCSec_FixationGuard(t *testing.T) {
	for _, b := range dcSecBackendNames {
		t.Run(b, func(t *testing.T) {
			e := newSecEnv(t, b, dcEnvOptions{x5c: true})
			// A genuine response_code of another same-device session.
			other := e.app(t, "demo-app")
			och := pathSame.begin(t, other)
			orun, err := pathSame.present(t, e.dcEnv, och)
			require.NoError(t, err)
			foreign := orun.form.Get("response_code")

			t.Run("same_device_polled", func(t *testing.T) {
				a := e.app(t, "demo-app")
				ch := pathSame.begin(t, a)
				run, err := pathSame.present(t, e.dcEnv, ch)
				require.NoError(t, err)
				for i := 0; i < 20; i++ {
					p := a.post(t, url.Values{"auth_session": {ch.s("auth_session")}})
					require.Equal(t, http.StatusForbidden, p.status, string(p.raw))
					require.Equal(t, "pending", p.s("status"), string(p.raw))
					require.Equal(t, ch.s("auth_session"), p.s("auth_session"))
				}
				done := a.post(t, run.form)
				require.Equal(t, http.StatusOK, done.status, string(done.raw))
				require.NotEmpty(t, done.s("authorization_code"))
			})
			for _, p := range []dcPath{pathCross, pathDCAPI, pathIA} {
				t.Run(p.name, func(t *testing.T) {
					a := e.app(t, p.client)
					ch := p.begin(t, a)
					run, err := p.present(t, e.dcEnv, ch)
					require.NoError(t, err)
					as := ch.s("auth_session")
					bad := []url.Values{
						{"auth_session": {as}, "response_code": {foreign}},
						{"auth_session": {as}, "response_code": {"x"}},
					}
					if p.flow == pathCross.flow {
						bad = append(bad, url.Values{"auth_session": {as}, "vp_token": {`{"pid":["x~"]}`}},
							url.Values{"auth_session": {as}, "response": {"a.b.c.d.e"}})
					}
					for _, f := range bad {
						requireDCError(t, a.post(t, f), http.StatusBadRequest, "invalid_request")
					}
					done := a.post(t, run.form)
					require.Equal(t, http.StatusOK, done.status, string(done.raw))
					require.NotEmpty(t, done.s("authorization_code"))
				})
			}
			// The other session is unaffected by its code's misuse.
			done := other.post(t, orun.form)
			require.Equal(t, http.StatusOK, done.status, string(done.raw))
		})
	}
}

// TestDCSec_ResponseCodeOfAnotherSession: two concurrent same-device
// sign-ins; A posting B's response_code is refused (a wrong answer: the
// challenge again, counted) until max_failures ends A with access_denied;
// B is unaffected and completes once; its code replayed is
// invalid_session, and so is A's own code after A ended.
func TestDCSec_ResponseCodeOfAnotherSession(t *testing.T) {
	for _, b := range dcSecBackendNames {
		t.Run(b, func(t *testing.T) {
			e := newSecEnv(t, b, dcEnvOptions{})
			a, bb := e.app(t, "demo-app"), e.app(t, "demo-app")
			cha, chb := pathSame.begin(t, a), pathSame.begin(t, bb)
			runa, err := pathSame.present(t, e.dcEnv, cha)
			require.NoError(t, err)
			runb, err := pathSame.present(t, e.dcEnv, chb)
			require.NoError(t, err)
			as := cha.s("auth_session")
			maxF := e.in.Config.Limits.MaxFailures
			for i := 1; i <= maxF; i++ {
				r := a.post(t, url.Values{"auth_session": {as}, "response_code": {runb.form.Get("response_code")}})
				require.Empty(t, r.s("authorization_code"), string(r.raw))
				if i < maxF {
					requireDCChallenge(t, r, "same_device")
					require.NotEqual(t, as, r.s("auth_session"), "a wrong answer rotates the auth_session")
					as = r.s("auth_session")
					continue
				}
				requireDCError(t, r, http.StatusBadRequest, "access_denied")
			}
			// A's own code cannot revive A.
			requireDCError(t, a.post(t, url.Values{"auth_session": {as}, "response_code": {runa.form.Get("response_code")}}), http.StatusBadRequest, "invalid_session")
			done := bb.post(t, runb.form)
			require.Equal(t, http.StatusOK, done.status, string(done.raw))
			require.NotEmpty(t, done.s("authorization_code"))
			requireDCError(t, bb.post(t, runb.form), http.StatusBadRequest, "invalid_session")

			// A wrong code rotates the auth_session; the session's own code
			// completes with the new value, and the old value is dead.
			c := e.app(t, "demo-app")
			chc := pathSame.begin(t, c)
			runc, err := pathSame.present(t, e.dcEnv, chc)
			require.NoError(t, err)
			r := c.post(t, url.Values{"auth_session": {chc.s("auth_session")}, "response_code": {runa.form.Get("response_code")}})
			requireDCChallenge(t, r, "same_device")
			requireDCError(t, c.post(t, runc.form), http.StatusBadRequest, "invalid_session")
			runc.form.Set("auth_session", r.s("auth_session"))
			done = c.post(t, runc.form)
			require.Equal(t, http.StatusOK, done.status, string(done.raw))
			require.NotEmpty(t, done.s("authorization_code"))
		})
	}
}

// TestDCSec_Race50: on Redis too, and on every path: fifty concurrent
// completing follow-ups of one session yield exactly one authorization
// code.
func TestDCSec_Race50(t *testing.T) {
	for _, b := range dcSecBackendNames {
		t.Run(b, func(t *testing.T) {
			e := newSecEnv(t, b, dcEnvOptions{x5c: true})
			for _, p := range allDCPaths {
				t.Run(p.name, func(t *testing.T) {
					a := e.app(t, p.client)
					ch := p.begin(t, a)
					run, err := p.present(t, e.dcEnv, ch)
					require.NoError(t, err)
					var codes atomic.Int32
					var wg sync.WaitGroup
					start := make(chan struct{})
					for i := 0; i < 50; i++ {
						wg.Add(1)
						go func() {
							defer wg.Done()
							<-start
							r := a.post(t, run.form)
							if r.s("authorization_code") != "" {
								codes.Add(1)
								return
							}
							require.NotEqual(t, http.StatusOK, r.status, string(r.raw))
							require.Contains(t, []string{"invalid_session", "insufficient_authorization", "access_denied"}, r.s("error"), string(r.raw))
						}()
					}
					close(start)
					wg.Wait()
					require.Equal(t, int32(1), codes.Load())
					// No loser resurrected the session (a poll's write racing the code).
					requireDCError(t, a.post(t, run.form), http.StatusBadRequest, "invalid_session")
					requireDCError(t, a.post(t, url.Values{"auth_session": {ch.s("auth_session")}}), http.StatusBadRequest, "invalid_session")
				})
			}
		})
	}
}

// raw sends a request to the instance and returns status, header, body.
func (e *dcEnv) raw(tb testing.TB, method, path, ct string, body []byte) (int, http.Header, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, e.in.URL+path, bytes.NewReader(body))
	require.NoError(tb, err)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := e.hc.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	requireNo3xx(tb, resp.StatusCode)
	return resp.StatusCode, resp.Header, b
}

const formCT = "application/x-www-form-urlencoded"

func requestPath(tb testing.TB, walletURL string) string {
	tb.Helper()
	u, err := url.Parse(walletURL)
	require.NoError(tb, err)
	ru, err := url.Parse(u.Query().Get("request_uri"))
	require.NoError(tb, err)
	return ru.Path
}

func oauthErr(tb testing.TB, body []byte) string {
	tb.Helper()
	var m map[string]any
	require.NoError(tb, json.Unmarshal(body, &m), string(body))
	s, _ := m["error"].(string)
	return s
}

// TestDCSec_WalletEndpoints: the internal verifier's request_uri and
// response_uri, for same and cross device: a request fetched twice is
// 400; a response for an unknown state is 400 and stores nothing; a
// second response is 400; a response whose inner state differs from the
// outer is 400 and completes nothing; no answer is a redirect; bodies
// over the cap are 413 — and on the native endpoint too.
func TestDCSec_WalletEndpoints(t *testing.T) {
	for _, b := range dcSecBackendNames {
		t.Run(b, func(t *testing.T) {
			e := newSecEnv(t, b, dcEnvOptions{x5c: true})
			for _, p := range []dcPath{pathSame, pathCross} {
				t.Run(p.name, func(t *testing.T) {
					knob := func(k dctest.Knobs) (*dcApp, dcAnswer, walletRun) {
						a := e.app(t, p.client)
						ch := p.begin(t, a)
						e.wallet.Knobs = k
						defer func() { e.wallet.Knobs = dctest.Knobs{} }()
						run, err := p.present(t, e.dcEnv, ch)
						require.NoError(t, err)
						return a, ch, run
					}
					_, _, run := knob(dctest.Knobs{FetchTwice: true})
					require.Equal(t, http.StatusOK, run.walletStatus)
					require.Equal(t, http.StatusBadRequest, run.answer.RefetchStatus, "a request_uri is fetched once")

					a, _, run := knob(dctest.Knobs{PostTwice: true})
					require.Equal(t, http.StatusOK, run.walletStatus)
					require.Equal(t, http.StatusBadRequest, run.answer.SecondStatus, "the first response wins")
					done := a.post(t, run.form)
					require.Equal(t, http.StatusOK, done.status, string(done.raw))

					a, ch, run := knob(dctest.Knobs{WrongState: true})
					require.Equal(t, http.StatusBadRequest, run.walletStatus, string(run.answer.Body))
					e.clock.Advance(11 * time.Second)
					pend := a.post(t, url.Values{"auth_session": {ch.s("auth_session")}})
					require.Equal(t, "pending", pend.s("status"), string(pend.raw))

					// Unknown state: 400, nothing stored.
					before := e.dbSize(t)
					for _, f := range []url.Values{
						{"response": {"eyJhbGciOiJFQ0RILUVTIiwia2lkIjoibm9wZSJ9.a.b.c.d"}, "state": {"AAAAAAAAAAAAAAAAAAAAAA"}},
						{"response": {"eyJhbGciOiJFQ0RILUVTIiwia2lkIjoibm9wZSJ9.a.b.c.d"}},
						{"error": {"access_denied"}, "state": {"AAAAAAAAAAAAAAAAAAAAAA"}},
						{"vp_token": {`{"pid":["x"]}`}, "state": {"AAAAAAAAAAAAAAAAAAAAAA"}},
					} {
						st, h, body := e.raw(t, http.MethodPost, server.PathDCResponse, formCT, []byte(f.Encode()))
						require.Equal(t, http.StatusBadRequest, st, string(body))
						require.Equal(t, "invalid_request", oauthErr(t, body))
						require.Equal(t, "no-store", h.Get("Cache-Control"))
					}
					require.Equal(t, before, e.dbSize(t), "a refused response stores nothing")

					// Oversized bodies: 413 on both wallet endpoints.
					a = e.app(t, p.client)
					ch = p.begin(t, a)
					big := []byte("wallet_metadata=" + strings.Repeat("A", 300<<10))
					st, _, body := e.raw(t, http.MethodPost, requestPath(t, ch.s("credentials_request")), formCT, big)
					require.Equal(t, http.StatusRequestEntityTooLarge, st, string(body))
					big = []byte("response=" + strings.Repeat("A", 300<<10))
					st, _, body = e.raw(t, http.MethodPost, server.PathDCResponse, formCT, big)
					require.Equal(t, http.StatusRequestEntityTooLarge, st, string(body))
					// The oversized fetch burned nothing: the wallet still gets it.
					run, err := p.present(t, e.dcEnv, ch)
					require.NoError(t, err)
					require.Equal(t, http.StatusOK, run.walletStatus)
					done = a.post(t, run.form)
					require.Equal(t, http.StatusOK, done.status, string(done.raw))
				})
			}
			t.Run("no_redirects", func(t *testing.T) {
				for _, r := range []struct{ method, path, body string }{
					{http.MethodGet, server.PathDCRequest + "unknown", ""},
					{http.MethodPost, server.PathDCRequest + "unknown", "wallet_nonce=x"},
					{http.MethodGet, server.PathDCRequest, ""},
					{http.MethodGet, server.PathDCResponse, ""},
					{http.MethodPost, server.PathDCResponse, ""},
					{http.MethodPost, server.PathDCResponse, "response=x&vp_token=y"},
					{http.MethodPut, server.PathDCResponse, ""},
				} {
					st, _, body := e.raw(t, r.method, r.path, formCT, []byte(r.body))
					require.True(t, st >= 400 && st < 500, "%s %s: %d %s", r.method, r.path, st, body)
				}
			})
			t.Run("native_oversized", func(t *testing.T) {
				for _, p := range []dcPath{pathDCAPI, pathIA} {
					a := e.app(t, p.client)
					ch := p.begin(t, a)
					member := "vp_token"
					val := `{"pid":["` + strings.Repeat("A", 300<<10) + `"]}`
					if p.flow == pathIA.flow {
						member, val = "openid4vp_response", `{"vp_token":{"pid":["`+strings.Repeat("A", 300<<10)+`"]}}`
					}
					r := a.post(t, url.Values{"auth_session": {ch.s("auth_session")}, member: {val}})
					requireDCError(t, r, http.StatusRequestEntityTooLarge, "invalid_request")
					// Nothing burned: the wallet's answer still completes.
					run, err := p.present(t, e.dcEnv, ch)
					require.NoError(t, err)
					done := a.post(t, run.form)
					require.Equal(t, http.StatusOK, done.status, string(done.raw))
				}
			})
		})
	}
}

// TestDCSec_InitialRefusals: presentation parameters the client may not
// send are invalid_request, and nothing is stored (Redis keys counted).
func TestDCSec_InitialRefusals(t *testing.T) {
	edit := func(c *config.Config) {
		for _, id := range []string{"dc-noorigin", "dc-nocross"} {
			cdc := &config.ClientDC{OpenID4VPRedirectURIs: []string{dcReturn}}
			if id == "dc-nocross" {
				cdc.DCAPIOrigins, cdc.DisableCrossDevice = []string{dcOrigin}, true
			}
			c.Clients = append(c.Clients, config.Client{ID: id, FirstParty: true, TokenEndpointAuthMethod: "none",
				Scopes: []string{"openid", "profile"}, GrantTypes: []string{"authorization_code"}, DigitalCredentials: cdc})
		}
	}
	cases := []struct {
		name, client string
		params       []string
		code         string
	}{
		{"unregistered_redirect", "demo-app", []string{"openid4vp_flow_type", "same_device", "openid4vp_redirect_uri", "https://evil.example/dc-return"}, "invalid_request"},
		{"redirect_prefix", "demo-app", []string{"openid4vp_flow_type", "same_device", "openid4vp_redirect_uri", dcReturn + "/x"}, "invalid_request"},
		{"same_device_no_redirect", "demo-app", []string{"openid4vp_flow_type", "same_device"}, "invalid_request"},
		{"dc_api_with_flow_type", "demo-app", []string{"dc_api", "true", "openid4vp_flow_type", "same_device"}, "invalid_request"},
		{"dc_api_with_redirect", "demo-app", []string{"dc_api", "true", "openid4vp_redirect_uri", dcReturn}, "invalid_request"},
		{"dc_api_without_origins", "dc-noorigin", []string{"dc_api", "true"}, "invalid_request"},
		{"cross_device_disabled", "dc-nocross", []string{"openid4vp_flow_type", "cross_device"}, "invalid_request"},
		{"cross_device_with_redirect", "demo-app", []string{"openid4vp_flow_type", "cross_device", "openid4vp_redirect_uri", dcReturn}, "invalid_request"},
		{"bad_dc_api", "demo-app", []string{"dc_api", "yes"}, "invalid_request"},
		{"bad_flow_type", "demo-app", []string{"openid4vp_flow_type", "qr"}, "invalid_request"},
		{"no_path", "demo-app", nil, "invalid_request"},
		{"ia_without_interaction_type", "dc-ia", []string{"interaction_types_supported", "urn:x"}, "missing_interaction_type"},
	}
	for _, b := range dcSecBackendNames {
		t.Run(b, func(t *testing.T) {
			e := newSecEnv(t, b, dcEnvOptions{edit: edit})
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					before := e.dbSize(t)
					a := e.app(t, c.client)
					r := a.initial(t, append([]string{"login_hint", "wallet"}, c.params...)...)
					requireDCError(t, r, http.StatusBadRequest, c.code)
					require.Empty(t, r.s("auth_session"))
					if after := e.dbSize(t); after != before {
						keys, _ := e.rs.Do("KEYS", "*")
						t.Fatalf("a refused request stored %d keys: %s", after-before, keys)
					}
				})
			}
			// The allowed variants of those clients work.
			requireDCChallenge(t, e.app(t, "dc-nocross").initial(t, "login_hint", "wallet", "dc_api", "true"), "dc_api")
			requireDCChallenge(t, e.app(t, "dc-noorigin").initial(t, pathCross.initial...), "cross_device")
		})
	}
}

// jarNonce reads the nonce of a request object (a compact JWS).
func jarNonce(tb testing.TB, jar string) string {
	tb.Helper()
	parts := strings.Split(jar, ".")
	require.Len(tb, parts, 3)
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(tb, err)
	var m struct {
		Nonce string `json:"nonce"`
	}
	require.NoError(tb, json.Unmarshal(b, &m))
	require.NotEmpty(tb, m.Nonce)
	return m.Nonce
}

// requestNonce is the nonce of a challenge's request: fetched from the
// request_uri (which spends it) or read from the inline request.
func (p dcPath) requestNonce(tb testing.TB, e *dcEnv, ch dcAnswer) string {
	tb.Helper()
	switch p.flow {
	case pathSame.flow, pathCross.flow:
		st, _, body := e.raw(tb, http.MethodGet, requestPath(tb, ch.s(p.req)), "", nil)
		require.Equal(tb, http.StatusOK, st, string(body))
		return jarNonce(tb, string(body))
	case pathIA.flow:
		var m struct {
			Request string `json:"request"`
		}
		require.NoError(tb, json.Unmarshal([]byte(p.request(tb, ch)), &m))
		return jarNonce(tb, m.Request)
	}
	var m struct {
		Requests []struct {
			Data struct {
				Request string `json:"request"`
			} `json:"data"`
		} `json:"requests"`
	}
	require.NoError(tb, json.Unmarshal([]byte(ch.s("credentials_request")), &m))
	require.NotEmpty(tb, m.Requests)
	return jarNonce(tb, m.Requests[0].Data.Request)
}

// expiredFollowUp is a follow-up that meets an expired transaction.
func (p dcPath) expiredFollowUp(tb testing.TB, e *dcEnv, ch dcAnswer, stale walletRun) url.Values {
	as := ch.s("auth_session")
	switch p.flow {
	case pathSame.flow:
		return url.Values{"auth_session": {as}, p.code: {"AAAAAAAAAAAAAAAAAAAAAA"}}
	case pathCross.flow:
		return url.Values{"auth_session": {as}}
	}
	f := url.Values{}
	for k, v := range stale.form {
		f[k] = v
	}
	f.Set("auth_session", as)
	return f
}

// TestDCSec_Expiry: past request_ttl the next follow-up gets a new
// challenge (status expired, a new nonce and request; the old request_uri
// dead) at most max_restarts times, then access_denied; a renewed
// transaction completes.
func TestDCSec_Expiry(t *testing.T) {
	for _, b := range dcSecBackendNames {
		t.Run(b, func(t *testing.T) {
			e := newSecEnv(t, b, dcEnvOptions{x5c: true})
			ttl := e.in.Config.DigitalCredentials.WithDefaults().RequestTTL
			maxRestarts := e.in.Config.DigitalCredentials.WithDefaults().MaxRestarts
			require.Equal(t, 3, maxRestarts)
			for _, p := range allDCPaths {
				t.Run(p.name, func(t *testing.T) {
					// DC API / IA: an answer made for the first transaction.
					a := e.app(t, p.client)
					ch := p.begin(t, a)
					var stale walletRun
					if p.flow == pathDCAPI.flow || p.flow == pathIA.flow {
						var err error
						stale, err = p.present(t, e.dcEnv, ch)
						require.NoError(t, err)
					}
					nonces := map[string]bool{}
					if p.flow != pathSame.flow && p.flow != pathCross.flow {
						nonces[p.requestNonce(t, e.dcEnv, ch)] = true
					}
					first := ch
					for i := 1; i <= maxRestarts; i++ {
						e.clock.Advance(ttl + time.Second)
						r := a.post(t, p.expiredFollowUp(t, e.dcEnv, ch, stale))
						requireDCChallenge(t, r, p.flow)
						require.Equal(t, "expired", r.s("status"), string(r.raw))
						if p.flow == pathIA.flow {
							require.NotEqual(t, p.request(t, ch), p.request(t, r))
						} else {
							require.NotEqual(t, ch.s(p.req), r.s(p.req))
						}
						ch = r
						if i < maxRestarts {
							n := p.requestNonce(t, e.dcEnv, ch)
							require.False(t, nonces[n], "a restart mints a new nonce")
							nonces[n] = true
						}
					}
					if p.flow == pathSame.flow || p.flow == pathCross.flow {
						// The first request_uri is dead.
						st, _, body := e.raw(t, http.MethodGet, requestPath(t, first.s(p.req)), "", nil)
						require.Equal(t, http.StatusBadRequest, st, string(body))
					}
					// The last renewal completes.
					run, err := p.present(t, e.dcEnv, ch)
					require.NoError(t, err)
					done := a.post(t, run.form)
					require.Equal(t, http.StatusOK, done.status, string(done.raw))
					require.NotEmpty(t, done.s("authorization_code"))

					// One expiry more than max_restarts: access_denied.
					a = e.app(t, p.client)
					ch = p.begin(t, a)
					if p.flow == pathDCAPI.flow || p.flow == pathIA.flow {
						stale, err = p.present(t, e.dcEnv, ch)
						require.NoError(t, err)
					}
					for i := 0; i < maxRestarts; i++ {
						e.clock.Advance(ttl + time.Second)
						ch = a.post(t, p.expiredFollowUp(t, e.dcEnv, ch, stale))
						requireDCChallenge(t, ch, p.flow)
					}
					e.clock.Advance(ttl + time.Second)
					requireDCError(t, a.post(t, p.expiredFollowUp(t, e.dcEnv, ch, stale)), http.StatusBadRequest, "access_denied")
				})
			}
			// A same-device poll without the code never completes, but past
			// the transaction's expiry it gets the new challenge (it used to
			// answer pending until the auth_session died).
			t.Run("same_device_poll_after_expiry", func(t *testing.T) {
				a := e.app(t, pathSame.client)
				ch := pathSame.begin(t, a)
				p := a.post(t, url.Values{"auth_session": {ch.s("auth_session")}})
				require.Equal(t, "pending", p.s("status"), string(p.raw))
				e.clock.Advance(ttl + time.Second)
				r := a.post(t, url.Values{"auth_session": {ch.s("auth_session")}})
				requireDCChallenge(t, r, pathSame.name)
				require.Equal(t, "expired", r.s("status"), string(r.raw))
				require.NotEqual(t, ch.s("credentials_request"), r.s("credentials_request"))
				run, err := pathSame.present(t, e.dcEnv, r)
				require.NoError(t, err)
				done := a.post(t, run.form)
				require.Equal(t, http.StatusOK, done.status, string(done.raw))
			})
		})
	}
}

// evilCase is one misbehaving wallet.
type evilCase struct {
	name  string
	knobs dctest.Knobs
	// before/after run around the case (issuer status changes).
	before, after func(tb testing.TB, e *dcEnv)
}

func evilCases() []evilCase {
	return []evilCase{
		{name: "replay_vp_token", knobs: dctest.Knobs{ReplayVPToken: true}},
		{name: "replay_verbatim", knobs: dctest.Knobs{Replay: true}},
		{name: "wrong_nonce", knobs: dctest.Knobs{WrongNonce: true}},
		{name: "wrong_aud", knobs: dctest.Knobs{WrongAud: true}},
		{name: "kb_stripped", knobs: dctest.Knobs{StripKB: true}},
		{name: "stale_iat", knobs: dctest.Knobs{StaleIAT: true}},
		{name: "kb_alg_none", knobs: dctest.Knobs{KBAlgNone: true}},
		{name: "kb_hs256", knobs: dctest.Knobs{KBHS256: true}},
		{name: "extra_disclosure", knobs: dctest.Knobs{ExtraDisclosure: true}},
		{name: "dropped_disclosure", knobs: dctest.Knobs{DropDisclosure: true}},
		{name: "vc+sd-jwt", knobs: dctest.Knobs{LegacyTyp: true}},
		{name: "disclose_iss", knobs: dctest.Knobs{DiscloseIss: true}},
		{name: "disclose_cnf", knobs: dctest.Knobs{DiscloseCnf: true}},
		{name: "issuer_alg_none", knobs: dctest.Knobs{IssuerAlgNone: true}},
		{name: "issuer_hs256", knobs: dctest.Knobs{IssuerHS256: true}},
		{name: "unencrypted", knobs: dctest.Knobs{Unencrypted: true}},
		{name: "wallet_denied", knobs: dctest.Knobs{Deny: true}},
		{name: "revoked", before: func(_ testing.TB, e *dcEnv) { e.issuer.Revoke(e.cred.StatusIdx) }, after: reinstate},
		{name: "suspended", before: func(_ testing.TB, e *dcEnv) { e.issuer.Suspend(e.cred.StatusIdx) }, after: reinstate},
		// A wallet holding only a credential of an issuer we do not trust,
		// or one signed with another key under the trusted issuer's name.
		{name: "untrusted_issuer", before: swapWallet("https://untrusted-issuer.example"), after: restoreWallet},
		{name: "forged_issuer_key", before: swapWallet(dctest.DefaultIssuerID), after: restoreWallet},
	}
}

// honestWallets keeps the environments' own wallets while swapWallet's
// stand in.
var honestWallets sync.Map

// swapWallet gives e a wallet whose only credential comes from a fresh
// issuer named id (same vct, its own keys).
func swapWallet(id string) func(tb testing.TB, e *dcEnv) {
	return func(tb testing.TB, e *dcEnv) {
		iss := dctest.NewIssuer(tb, dctest.IssuerOptions{ID: id, VCT: e.issuer.VCT, Now: e.clock.Now, X5C: true})
		w := dctest.NewWallet()
		w.Now, w.VerifierRoots, w.HTTP = e.wallet.Now, e.wallet.VerifierRoots, e.wallet.HTTP
		_, err := w.Receive(iss, map[string]any{"sub": "pid-4711", "given_name": "Erika", "family_name": "Mustermann"}, dctest.IssueOptions{})
		require.NoError(tb, err)
		honestWallets.Store(e, e.wallet)
		e.wallet = w
	}
}

func reinstate(_ testing.TB, e *dcEnv) { e.issuer.Reinstate(e.cred.StatusIdx) }

func restoreWallet(_ testing.TB, e *dcEnv) {
	if w, ok := honestWallets.LoadAndDelete(e); ok {
		e.wallet = w.(*dctest.Wallet)
	}
}

// TestDCSec_EvilWallet: every evil knob of the simulated wallet through
// the whole server, on every path: the follow-up is 400 access_denied (or
// the response_uri refused the response and the session stays pending),
// never an authorization code; and no log line carries the
// presentation, a disclosure, a claim value or a response_code.
func TestDCSec_EvilWallet(t *testing.T) {
	for _, b := range dcSecBackendNames {
		t.Run(b, func(t *testing.T) {
			core, logs := observer.New(zapcore.DebugLevel)
			e := newSecEnv(t, b, dcEnvOptions{x5c: true, log: zap.New(core)})
			require.GreaterOrEqual(t, e.cred.StatusIdx, 0)
			secrets := []string{"Erika", "Mustermann", "pid-4711", "1964-08-12"}
			for _, d := range e.cred.Disclosures {
				secrets = append(secrets, d.Encoded)
			}
			for _, p := range allDCPaths {
				t.Run(p.name, func(t *testing.T) {
					// An honest presentation first: what the replays replay
					// (past the status list cache of the last case).
					e.clock.Advance(2 * time.Minute)
					a := e.app(t, p.client)
					ch := p.begin(t, a)
					run, err := p.present(t, e.dcEnv, ch)
					require.NoError(t, err)
					secrets = append(secrets, run.secrets...)
					done := a.post(t, run.form)
					require.Equal(t, http.StatusOK, done.status, string(done.raw))
					for _, c := range evilCases() {
						t.Run(c.name, func(t *testing.T) {
							// Past the status list cache: every case sees the list as it is.
							e.clock.Advance(2 * time.Minute)
							if c.before != nil {
								c.before(t, e.dcEnv)
							}
							if c.after != nil {
								defer c.after(t, e.dcEnv)
							}
							a := e.app(t, p.client)
							ch := p.begin(t, a)
							e.wallet.Knobs = c.knobs
							run, err := p.present(t, e.dcEnv, ch)
							e.wallet.Knobs = dctest.Knobs{}
							require.NoError(t, err)
							secrets = append(secrets, run.secrets...)
							t.Logf("%s/%s: response_uri %d", p.name, c.name, run.walletStatus)
							if run.walletStatus != http.StatusOK {
								// Refused at the response_uri: nothing to complete with.
								require.Equal(t, http.StatusBadRequest, run.walletStatus, string(run.answer.Body))
								pend := a.post(t, run.form)
								require.Equal(t, "pending", pend.s("status"), string(pend.raw))
								return
							}
							r := a.post(t, run.form)
							requireDCError(t, r, http.StatusBadRequest, "access_denied")
							for _, sec := range secrets {
								require.NotContains(t, string(r.raw), sec, "an error body carries no presentation data")
							}
						})
					}
				})
			}
			require.NotZero(t, logs.Len())
			for _, entry := range logs.All() {
				line, err := json.Marshal(entry.ContextMap())
				require.NoError(t, err)
				text := entry.Message + " " + string(line)
				for _, s := range secrets {
					if len(s) >= 4 {
						require.NotContains(t, text, s, "a presentation secret in a log line")
					}
				}
			}
		})
	}
}

// captureTransport holds the wallet's POST to the response_uri back and
// keeps its body (hold set), so the test can send it itself.
type captureTransport struct {
	base http.RoundTripper
	hold atomic.Bool
	mu   sync.Mutex
	body []byte
}

func (c *captureTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.hold.Load() && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, server.PathDCResponse) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.body = b
		c.mu.Unlock()
		return &http.Response{StatusCode: http.StatusAccepted, Body: io.NopCloser(strings.NewReader("{}")), Header: http.Header{}, Request: r}, nil
	}
	return c.base.RoundTrip(r)
}

// TestDCSec_WalletRateLimits: with limits on, /dc/request and /dc/response
// over the per-IP limit answer 429 slow_down with Retry-After, and the
// refused request burned nothing: after the wait the same fetch or
// response succeeds.
func TestDCSec_WalletRateLimits(t *testing.T) {
	edit := func(c *config.Config) {
		on := true
		c.Limits.Rate.Enabled = &on
		c.Limits.Rate.Rules = append(c.Limits.Rate.Rules, config.RateRule{Endpoint: config.RateDCWallet, Scope: config.ScopeIP, Rate: 1, Period: 10 * time.Second, Burst: 2})
	}
	for _, b := range dcSecBackendNames {
		t.Run(b, func(t *testing.T) {
			e := newSecEnv(t, b, dcEnvOptions{edit: edit})
			ct := &captureTransport{base: e.wallet.HTTP.Transport}
			hc := *e.wallet.HTTP
			hc.Transport = ct
			e.wallet.HTTP = &hc
			exhaust := func(path string) {
				for i := 0; i < 2; i++ {
					e.raw(t, http.MethodPost, path, formCT, []byte("state=AAAAAAAAAAAAAAAAAAAAAA&error=access_denied"))
				}
			}
			requireSlowDown := func(st int, h http.Header, body []byte) {
				t.Helper()
				require.Equal(t, http.StatusTooManyRequests, st, string(body))
				require.Equal(t, "slow_down", oauthErr(t, body))
				require.NotEmpty(t, h.Get("Retry-After"))
				require.Equal(t, "no-store", h.Get("Cache-Control"))
			}
			for _, p := range []dcPath{pathSame, pathCross} {
				t.Run(p.name, func(t *testing.T) {
					e.clock.Advance(time.Minute)
					a := e.app(t, p.client)
					ch := p.begin(t, a)
					rp := requestPath(t, ch.s("credentials_request"))
					exhaust(rp + "x")
					requireSlowDown(e.raw(t, http.MethodPost, rp, formCT, []byte("wallet_nonce=abc")))
					e.clock.Advance(11 * time.Second)
					// The fetch was not spent; now the response is held back.
					ct.hold.Store(true)
					_, err := p.present(t, e.dcEnv, ch)
					ct.hold.Store(false)
					require.NoError(t, err)
					exhaust(server.PathDCResponse)
					requireSlowDown(e.raw(t, http.MethodPost, server.PathDCResponse, formCT, ct.body))
					e.clock.Advance(11 * time.Second)
					st, _, body := e.raw(t, http.MethodPost, server.PathDCResponse, formCT, ct.body)
					require.Equal(t, http.StatusOK, st, string(body))
					f := url.Values{"auth_session": {ch.s("auth_session")}}
					if p.flow == pathSame.flow {
						var m struct {
							RedirectURI string `json:"redirect_uri"`
						}
						require.NoError(t, json.Unmarshal(body, &m))
						ru, err := url.Parse(m.RedirectURI)
						require.NoError(t, err)
						f.Set("response_code", ru.Query().Get("response_code"))
					}
					done := a.post(t, f)
					require.Equal(t, http.StatusOK, done.status, string(done.raw))
				})
			}
		})
	}
}

// TestDCSec_StorageDown: the verifier's storage failing during Begin,
// the wallet's fetch and response, the poll, the response_code and the
// DC API / openid4vp_response submission is 503 temporarily_unavailable
// with Retry-After on every path, and the same request succeeds once it
// is back.
func TestDCSec_StorageDown(t *testing.T) {
	for _, b := range dcSecBackendNames {
		t.Run(b, func(t *testing.T) {
			fl := &flakyStore{}
			e := newSecEnv(t, b, dcEnvOptions{x5c: true}, fl)
			require503 := func(r dcAnswer) {
				t.Helper()
				requireDCError(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
				require.NotEmpty(t, r.header.Get("Retry-After"))
			}
			for _, p := range allDCPaths {
				t.Run(p.name, func(t *testing.T) {
					a := e.app(t, p.client)
					fl.down.Store(true)
					before := e.dbSize(t)
					r := a.initial(t, p.initial...)
					require503(r)
					require.Empty(t, r.s("auth_session"))
					require.Equal(t, before, e.dbSize(t), "nothing stored when Begin fails")
					fl.down.Store(false)
					ch := p.begin(t, a)
					if p.flow == pathSame.flow || p.flow == pathCross.flow {
						fl.down.Store(true)
						_, err := p.present(t, e.dcEnv, ch)
						require.ErrorIs(t, err, dctest.ErrRequest, "the request_uri answered 503")
						st, h, body := e.raw(t, http.MethodGet, requestPath(t, ch.s(p.req)), "", nil)
						require.Equal(t, http.StatusServiceUnavailable, st, string(body))
						require.NotEmpty(t, h.Get("Retry-After"))
						st, h, body = e.raw(t, http.MethodPost, server.PathDCResponse, formCT, []byte("state=AAAAAAAAAAAAAAAAAAAAAA&error=access_denied"))
						require.Equal(t, http.StatusServiceUnavailable, st, string(body))
						require.NotEmpty(t, h.Get("Retry-After"))
						fl.down.Store(false)
					}
					run, err := p.present(t, e.dcEnv, ch)
					require.NoError(t, err)
					require.Equal(t, http.StatusOK, run.walletStatus)
					fl.down.Store(true)
					require503(a.post(t, run.form))
					fl.down.Store(false)
					if p.flow == pathCross.flow {
						e.clock.Advance(11 * time.Second)
					}
					done := a.post(t, run.form)
					require.Equal(t, http.StatusOK, done.status, string(done.raw))
					require.NotEmpty(t, done.s("authorization_code"))
				})
			}
			// The submission recorded but its answer lost: the client's
			// retry of the same submission completes (it used to meet
			// "already answered" and end in access_denied).
			for _, p := range []dcPath{pathDCAPI, pathIA} {
				t.Run(p.name+"_lost_answer", func(t *testing.T) {
					a := e.app(t, p.client)
					ch := p.begin(t, a)
					run, err := p.present(t, e.dcEnv, ch)
					require.NoError(t, err)
					fl.lostAnswer.Store(true)
					require503(a.post(t, run.form))
					fl.lostAnswer.Store(false)
					done := a.post(t, run.form)
					require.Equal(t, http.StatusOK, done.status, string(done.raw))
					require.NotEmpty(t, done.s("authorization_code"))
				})
			}
		})
	}
}

// TestDCSec_HostileInputs: hostile presentations on the native endpoint
// (DC API, Interactive Authorization) and the response_uri — deep JSON,
// many members, garbage JWEs, wrong types — are 4xx, never 5xx, and leave
// the session usable by the honest answer (DC API / IA: a malformed
// answer is invalid_request; one that parses but fails is access_denied).
func TestDCSec_HostileInputs(t *testing.T) {
	deep := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	many := "{" + strings.Repeat(`"a":1,`, 3000) + `"pid":["x~"]}`
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ECDH-ES","enc":"A128GCM","kid":"` + strings.Repeat("k", 3000) + `","epk":` + deep + `}`))
	jwe := hdr + ".." + "AAAA.AAAA.AAAA"
	for _, b := range dcSecBackendNames {
		t.Run(b, func(t *testing.T) {
			e := newSecEnv(t, b, dcEnvOptions{x5c: true})
			for _, p := range []dcPath{pathDCAPI, pathIA} {
				t.Run(p.name, func(t *testing.T) {
					member := "vp_token"
					wrap := func(v string) string { return v }
					if p.flow == pathIA.flow {
						member = "openid4vp_response"
						wrap = func(v string) string { return `{"vp_token":` + v + `}` }
					}
					for i, v := range []string{deep, many, `{"pid":` + deep + `}`, `{"pid":"x"}`, `"x"`, `{}`, `{"pid":[]}`, `{"pid":[""]}`, "\u0000", strings.Repeat("~", 30000)} {
						a := e.app(t, p.client)
						ch := p.begin(t, a)
						r := a.post(t, url.Values{"auth_session": {ch.s("auth_session")}, member: {wrap(v)}})
						require.True(t, r.status == http.StatusBadRequest, "case %d: %d %s", i, r.status, r.raw)
						require.Contains(t, []string{"invalid_request", "access_denied"}, r.s("error"), "case %d", i)
					}
					for i, f := range []url.Values{{"response": {jwe}}, {"response": {strings.Repeat("A", 60000)}}, {"response": {"a.b.c.d.e"}}} {
						if p.flow == pathIA.flow {
							b, _ := json.Marshal(map[string]string{"response": f.Get("response")})
							f = url.Values{"openid4vp_response": {string(b)}}
						}
						a := e.app(t, p.client)
						ch := p.begin(t, a)
						f.Set("auth_session", ch.s("auth_session"))
						r := a.post(t, f)
						require.Equal(t, http.StatusBadRequest, r.status, "jwe case %d: %s", i, r.raw)
					}
				})
			}
			t.Run("response_uri", func(t *testing.T) {
				// The wallet fetches the request and encrypts its answer, held
				// back while the hostile responses for the same state arrive.
				ct := &captureTransport{base: e.wallet.HTTP.Transport}
				hc := *e.wallet.HTTP
				hc.Transport = ct
				e.wallet.HTTP = &hc
				a := e.app(t, pathSame.client)
				ch := pathSame.begin(t, a)
				u, _ := url.Parse(ch.s("credentials_request"))
				ru, _ := url.Parse(u.Query().Get("request_uri"))
				state := ru.Path[strings.LastIndexByte(ru.Path, '/')+1:]
				ct.hold.Store(true)
				_, err := pathSame.present(t, e.dcEnv, ch)
				ct.hold.Store(false)
				require.NoError(t, err)
				for i, body := range []string{
					url.Values{"response": {jwe}, "state": {state}}.Encode(),
					url.Values{"response": {jwe}}.Encode(),
					url.Values{"response": {"a.b.c.d.e"}, "state": {state}}.Encode(),
					"response=x&response=y&state=" + state,
					"state=" + state + "&state=" + state + "&error=access_denied",
					url.Values{"error": {strings.Repeat("e", 5000)}, "state": {strings.Repeat("s", 5000)}}.Encode(),
					"%zz",
				} {
					st, _, b := e.raw(t, http.MethodPost, server.PathDCResponse, formCT, []byte(body))
					require.Equal(t, http.StatusBadRequest, st, "case %d: %s", i, b)
				}
				// The transaction was not answered: the honest response completes.
				st, _, body := e.raw(t, http.MethodPost, server.PathDCResponse, formCT, ct.body)
				require.Equal(t, http.StatusOK, st, string(body))
				var m struct {
					RedirectURI string `json:"redirect_uri"`
				}
				require.NoError(t, json.Unmarshal(body, &m))
				back, err := url.Parse(m.RedirectURI)
				require.NoError(t, err)
				done := a.post(t, url.Values{"auth_session": {ch.s("auth_session")}, "response_code": {back.Query().Get("response_code")}})
				require.Equal(t, http.StatusOK, done.status, string(done.raw))
			})
		})
	}
}
