package server_test

// Black-box red team of credential presentation (docs/protocol.md
// "Digital credentials") after issue 11 landed: what an outsider can try
// against the documented contract over real HTTPS with DPoP, each as a
// table over the paths it applies to.

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dc/dctest"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
)

// gatedTransport answers 503 to every status list fetch while down is
// set: the issuer's status list server in an outage.
type gatedTransport struct {
	base http.RoundTripper
	down atomic.Bool
	hits atomic.Int32
}

func (g *gatedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	// Status list fetches only (Token Status List §8.1 media type), not
	// an external verifier's API on the same client.
	if g.down.Load() && r.Header.Get("Accept") == "application/statuslist+jwt" {
		g.hits.Add(1)
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Body: io.NopCloser(strings.NewReader("")),
			Header: http.Header{}, Request: r}, nil
	}
	return g.base.RoundTrip(r)
}

// withGatedStatus starts the instance with its status list client behind g.
func withGatedStatus(g *gatedTransport) func(tb testing.TB, o servertest.Options) *servertest.Instance {
	return func(tb testing.TB, o servertest.Options) *servertest.Instance {
		hc := *o.DC.HTTP
		g.base = hc.Transport
		if g.base == nil {
			g.base = http.DefaultTransport
		}
		hc.Transport = g
		o.DC.HTTP = &hc
		return servertest.Start(tb, o)
	}
}

// holdResponses makes the wallet's POST to the response_uri land in a
// captureTransport (the test sends it itself).
func holdResponses(e *dcEnv) *captureTransport {
	ct := &captureTransport{base: e.wallet.HTTP.Transport}
	if ct.base == nil {
		ct.base = http.DefaultTransport
	}
	hc := *e.wallet.HTTP
	hc.Transport = ct
	e.wallet.HTTP = &hc
	return ct
}

// TestDCRed_StatusListDown: the issuer's status list server failing (503)
// is a failing dependency, not a bad presentation: on every path the
// answer is 503 temporarily_unavailable with Retry-After (the native
// endpoint for the DC API and Interactive Authorization, the response_uri
// for the wallet on same and cross device), nothing is recorded, and the
// same submission succeeds once the list is back. It used to be
// 400 access_denied, recorded first-wins: one outage ended every sign-in
// in progress for good.
func TestDCRed_StatusListDown(t *testing.T) {
	for _, b := range dcSecBackendNames {
		t.Run(b, func(t *testing.T) {
			g := &gatedTransport{}
			e := newSecEnv(t, b, dcEnvOptions{x5c: true, start: withGatedStatus(g)})
			require.GreaterOrEqual(t, e.cred.StatusIdx, 0, "the credential has a status list entry")
			ct := holdResponses(e.dcEnv)
			for _, p := range []dcPath{pathDCAPI, pathIA, pathSame, pathCross, pathPDI} {
				t.Run(p.name, func(t *testing.T) {
					// Past the status list cache: every case fetches.
					e.clock.Advance(10 * time.Minute)
					a := e.app(t, p.client)
					ch := p.begin(t, a)
					g.down.Store(true)
					hits := g.hits.Load()
					if p.flow == pathDCAPI.flow || p.flow == pathIA.flow {
						run, err := p.present(t, e.dcEnv, ch)
						require.NoError(t, err)
						r := a.post(t, run.form)
						requireDCError(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
						require.NotEmpty(t, r.header.Get("Retry-After"))
						require.Greater(t, g.hits.Load(), hits, "the status list was asked")
						g.down.Store(false)
						done := a.post(t, run.form)
						require.Equal(t, http.StatusOK, done.status, string(done.raw))
						require.NotEmpty(t, done.s("authorization_code"))
						return
					}
					ct.hold.Store(true)
					_, err := p.present(t, e.dcEnv, ch)
					ct.hold.Store(false)
					require.NoError(t, err)
					st, h, body := e.raw(t, http.MethodPost, server.PathDCResponse, formCT, ct.body)
					require.Equal(t, http.StatusServiceUnavailable, st, string(body))
					require.Equal(t, "temporarily_unavailable", oauthErr(t, body))
					require.NotEmpty(t, h.Get("Retry-After"))
					require.Greater(t, g.hits.Load(), hits, "the status list was asked")
					if p.flow == pathCross.flow {
						e.clock.Advance(11 * time.Second)
						pend := a.post(t, url.Values{"auth_session": {ch.s("auth_session")}})
						require.Equal(t, "pending", pend.s("status"), string(pend.raw))
					}
					g.down.Store(false)
					// The wallet's retry of the same response is taken.
					st, _, body = e.raw(t, http.MethodPost, server.PathDCResponse, formCT, ct.body)
					require.Equal(t, http.StatusOK, st, string(body))
					var m map[string]string
					require.NoError(t, json.Unmarshal(body, &m))
					f := url.Values{"auth_session": {ch.s("auth_session")}}
					switch {
					case p.flow == pathCross.flow:
						e.clock.Advance(11 * time.Second)
					case p.code == "presentation_during_issuance_session":
						f.Set(p.code, m[p.code])
					default:
						ru, err := url.Parse(m["redirect_uri"])
						require.NoError(t, err)
						f.Set(p.code, ru.Query().Get(p.param))
					}
					done := a.post(t, f)
					require.Equal(t, http.StatusOK, done.status, string(done.raw))
					require.NotEmpty(t, done.s("authorization_code"))
				})
			}
		})
	}
}

// TestDCRed_ReloadMidTransaction: a policy reload between the wallet's
// answer and the completing follow-up that removes the client, its
// digital_credentials section, or the path the session took (the
// openid4vp_redirect_uri, cross-device, the DC API origins) issues no
// code on any path.
func TestDCRed_ReloadMidTransaction(t *testing.T) {
	editClient := func(id string, f func(*config.ClientDC) *config.ClientDC) func(*config.Config) {
		return func(c *config.Config) {
			for i := range c.Clients {
				if c.Clients[i].ID == id && c.Clients[i].DigitalCredentials != nil {
					cp := *c.Clients[i].DigitalCredentials
					c.Clients[i].DigitalCredentials = f(&cp)
				}
			}
		}
	}
	cases := []struct {
		name  string
		paths []dcPath
		edit  func(client string) func(*config.Config)
	}{
		{"client_removed", allDCPaths, func(id string) func(*config.Config) { return withoutClient(id) }},
		{"digital_credentials_removed", allDCPaths, func(id string) func(*config.Config) {
			return editClient(id, func(*config.ClientDC) *config.ClientDC { return nil })
		}},
		{"redirect_uri_removed", []dcPath{pathSame, pathDraft00}, func(id string) func(*config.Config) {
			return editClient(id, func(d *config.ClientDC) *config.ClientDC {
				d.OpenID4VPRedirectURIs = []string{"https://app.example/other"}
				return d
			})
		}},
		{"cross_device_disabled", []dcPath{pathCross}, func(id string) func(*config.Config) {
			return editClient(id, func(d *config.ClientDC) *config.ClientDC { d.DisableCrossDevice = true; return d })
		}},
		{"dc_api_origins_removed", []dcPath{pathDCAPI}, func(id string) func(*config.Config) {
			return editClient(id, func(d *config.ClientDC) *config.ClientDC { d.DCAPIOrigins = nil; return d })
		}},
	}
	for _, c := range cases {
		for _, p := range c.paths {
			t.Run(c.name+"/"+p.name, func(t *testing.T) {
				e := newDCEnv(t, dcEnvOptions{x5c: true})
				a := e.app(t, p.client)
				ch := p.begin(t, a)
				run, err := p.present(t, e, ch)
				require.NoError(t, err)
				reloadWith(t, instance{e.in}, c.edit(p.client))
				r := a.post(t, run.form)
				require.Empty(t, r.s("authorization_code"), string(r.raw))
				require.Contains(t, []string{"invalid_session", "invalid_client", "invalid_request"}, r.s("error"), string(r.raw))
				require.Less(t, r.status, 500, string(r.raw))
				// And not later either.
				r = a.post(t, run.form)
				require.Empty(t, r.s("authorization_code"), string(r.raw))
			})
		}
	}
}

// TestDCRed_JSONTypes: a JSON body whose vp_token, response or
// openid4vp_response is an array, a number, a boolean or null is
// 400 invalid_request (never 5xx, never access_denied that would end the
// session), and the honest answer completes afterwards.
func TestDCRed_JSONTypes(t *testing.T) {
	e := newDCEnv(t, dcEnvOptions{x5c: true})
	for _, p := range []dcPath{pathDCAPI, pathIA} {
		t.Run(p.name, func(t *testing.T) {
			a := e.app(t, p.client)
			ch := p.begin(t, a)
			as, _ := json.Marshal(ch.s("auth_session"))
			members := []string{"vp_token", "response"}
			if p.flow == pathIA.flow {
				members = []string{"openid4vp_response"}
			}
			for _, m := range members {
				for _, v := range []string{`[{"pid":["x~"]}]`, `["a.b.c.d.e"]`, `5`, `true`, `null`, `1e999`} {
					r := a.post(t, nil, `{"auth_session":`+string(as)+`,"`+m+`":`+v+`}`)
					require.Equal(t, http.StatusBadRequest, r.status, "%s=%s: %s", m, v, r.raw)
					require.Contains(t, []string{"invalid_request", "access_denied"}, r.s("error"), "%s=%s: %s", m, v, r.raw)
					if r.s("error") == "access_denied" {
						t.Fatalf("%s=%s ended the session: %s", m, v, r.raw)
					}
				}
			}
			run, err := p.present(t, e, ch)
			require.NoError(t, err)
			done := a.post(t, run.form)
			require.Equal(t, http.StatusOK, done.status, string(done.raw))
		})
	}
}

// TestDCRed_SessionElsewhere: a presentation session's auth_session at
// endpoints that take other things — as a code at the token endpoint, at
// a federation response_uri, at the browser form, at app completion —
// and its genuine response_code under another client_id are refused and
// leave the session to complete on its own path.
func TestDCRed_SessionElsewhere(t *testing.T) {
	e := newDCEnv(t, dcEnvOptions{x5c: true})
	a := e.app(t, "demo-app")
	ch := pathSame.begin(t, a)
	as := ch.s("auth_session")
	st, body := a.tokenCall(t, url.Values{"grant_type": {"authorization_code"}, "code": {as}, "client_id": {"demo-app"}, "code_verifier": {a.pkce.Verifier}})
	require.Equal(t, http.StatusBadRequest, st, body)
	require.Equal(t, "invalid_grant", jsonString(t, body, "error"))
	for _, path := range []string{server.PathResponse + "h1", server.PathResponse + as, server.PathAuthorize, server.PathAppComplete} {
		st, _, b := e.raw(t, http.MethodPost, path, formCT, []byte(url.Values{"auth_session": {as}, "code": {"x"}, "response_code": {"x"}}.Encode()))
		require.True(t, st >= 400 && st < 500, "%s: %d %s", path, st, b)
	}
	run, err := pathSame.present(t, e, ch)
	require.NoError(t, err)
	// The genuine response_code with another client's client_id.
	for _, id := range []string{"dc-draft00", "c2", "nope"} {
		f := url.Values{"client_id": {id}}
		for k, v := range run.form {
			f[k] = v
		}
		r := a.post(t, f)
		require.Empty(t, r.s("authorization_code"), string(r.raw))
		require.True(t, r.status == http.StatusBadRequest || r.status == http.StatusUnauthorized, "%s: %s", id, r.raw)
	}
	done := a.post(t, run.form)
	require.Equal(t, http.StatusOK, done.status, string(done.raw))
	require.NotEmpty(t, done.s("authorization_code"))
}

// TestDCRed_SlowDownArithmetic: every poll sooner than the current
// interval adds 5 s for good (RFC 8628 §3.5), the values are JSON
// integers, a poll that waits the announced interval is pending (not
// slow_down), and the session value never changes.
func TestDCRed_SlowDownArithmetic(t *testing.T) {
	e := newDCEnv(t, dcEnvOptions{})
	a := e.app(t, "demo-app")
	ch := pathCross.begin(t, a)
	as := ch.s("auth_session")
	require.Contains(t, string(ch.raw), `"interval":5`)
	poll := func() dcAnswer { return a.post(t, url.Values{"auth_session": {as}}) }
	want := 5
	for i := 0; i < 3; i++ {
		r := poll()
		want += 5
		require.Equal(t, "slow_down", r.s("status"), string(r.raw))
		require.Contains(t, string(r.raw), `"interval":`+itoa(want), string(r.raw))
		require.Equal(t, as, r.s("auth_session"))
	}
	e.clock.Advance(time.Duration(want) * time.Second)
	r := poll()
	require.Equal(t, "pending", r.s("status"), string(r.raw))
	require.Contains(t, string(r.raw), `"interval":`+itoa(want))
	// One second short of the interval is too fast again.
	e.clock.Advance(time.Duration(want-1) * time.Second)
	r = poll()
	require.Equal(t, "slow_down", r.s("status"), string(r.raw))
	require.Contains(t, string(r.raw), `"interval":`+itoa(want+5))
}

// TestDCRed_TokensAfterPresentation: what a presentation sign-in leaves
// in the tokens: Unicode claim values reach the ID token intact; a
// refresh keeps sub, acr and amr and adds no claim; introspection shows
// the derived sub and never the credential's subject claim or a claim
// the issuer map does not name.
func TestDCRed_TokensAfterPresentation(t *testing.T) {
	e := newDCEnv(t, dcEnvOptions{edit: func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "demo-app" {
				c.Clients[i].GrantTypes = append(c.Clients[i].GrantTypes, "refresh_token")
				c.Clients[i].Scopes = append(c.Clients[i].Scopes, "offline_access")
			}
		}
	}})
	w := dctest.NewWallet()
	w.Now, w.VerifierRoots, w.HTTP = e.clock.Now, e.roots, e.in.HTTPClient()
	given, family := "Zoë 李 \u202e\U0001F600", "Ñúñez-O'Brien \"<x>\""
	_, err := w.Receive(e.issuer, map[string]any{"sub": "pid-ü-42", "given_name": given, "family_name": family, "birthdate": "1964-08-12"}, dctest.IssueOptions{})
	require.NoError(t, err)
	e.wallet = w
	a := e.app(t, "demo-app")
	f := url.Values{"client_id": {a.clientID}, "response_type": {"code"}, "scope": {"openid offline_access"},
		"code_challenge": {a.pkce.Challenge}, "code_challenge_method": {"S256"}}
	for i := 0; i+1 < len(pathSame.initial); i += 2 {
		f.Set(pathSame.initial[i], pathSame.initial[i+1])
	}
	ch := a.post(t, f)
	requireDCChallenge(t, ch, "same_device")
	run, err := pathSame.present(t, e, ch)
	require.NoError(t, err)
	done := a.post(t, run.form)
	require.Equal(t, http.StatusOK, done.status, string(done.raw))
	st, tr := a.tokenCall(t, url.Values{"grant_type": {"authorization_code"}, "code": {done.s("authorization_code")}, "client_id": {a.clientID}, "code_verifier": {a.pkce.Verifier}})
	require.Equal(t, http.StatusOK, st, tr)
	var tok map[string]any
	require.NoError(t, json.Unmarshal([]byte(tr), &tok))
	claims := idClaims(t, tok)
	require.Equal(t, given, claims["given_name"])
	require.Equal(t, family, claims["family_name"])
	sub := claims["sub"].(string)
	require.True(t, strings.HasPrefix(sub, "dc."), sub)
	intro := e.introspectRaw(t, jsonString(t, tr, "access_token"))
	require.Equal(t, sub, jsonString(t, intro, "sub"), intro)
	for _, s := range []string{"pid-ü-42", "1964-08-12", "birthdate", "Zoë"} {
		require.NotContains(t, intro, s)
		require.NotContains(t, tr[:strings.Index(tr, `"id_token"`)]+tr[strings.Index(tr, `"id_token"`)+1:], s)
	}
	rt := jsonString(t, tr, "refresh_token")
	require.NotEmpty(t, rt, tr)
	st, ref := a.tokenCall(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {a.clientID}, "refresh_token": {rt}})
	require.Equal(t, http.StatusOK, st, ref)
	intro2 := e.introspectRaw(t, jsonString(t, ref, "access_token"))
	require.Equal(t, sub, jsonString(t, intro2, "sub"), intro2)
	var rtok map[string]any
	require.NoError(t, json.Unmarshal([]byte(ref), &rtok))
	if _, ok := rtok["id_token"]; ok {
		rc := idClaims(t, rtok)
		require.Equal(t, sub, rc["sub"])
		require.Equal(t, claims["acr"], rc["acr"])
		require.Equal(t, claims["amr"], rc["amr"])
		require.NotContains(t, rc, "birthdate")
	}
}

// TestDCRed_ExpiredCredential: a credential past its exp, presented
// through the whole server on every path, is 400 access_denied and no
// code (the wallet still holds and presents it).
func TestDCRed_ExpiredCredential(t *testing.T) {
	e := newDCEnv(t, dcEnvOptions{x5c: true})
	w := dctest.NewWallet()
	w.Now, w.VerifierRoots, w.HTTP = e.clock.Now, e.roots, e.in.HTTPClient()
	_, err := w.Receive(e.issuer, map[string]any{"sub": "pid-1", "given_name": "Erika", "family_name": "M"}, dctest.IssueOptions{Lifetime: time.Minute})
	require.NoError(t, err)
	e.wallet = w
	e.clock.Advance(2 * time.Minute)
	for _, p := range allDCPaths {
		t.Run(p.name, func(t *testing.T) {
			a := e.app(t, p.client)
			ch := p.begin(t, a)
			run, err := p.present(t, e, ch)
			require.NoError(t, err)
			if run.walletStatus != http.StatusOK {
				require.Equal(t, http.StatusBadRequest, run.walletStatus)
				return
			}
			requireDCError(t, a.post(t, run.form), http.StatusBadRequest, "access_denied")
		})
	}
}

// TestDCRed_PaymentSwap: one payment's approval cannot approve another.
// The wallet's DC API answer to payment A (123.50) posted into the
// session of payment B (99999.00) of the same client is access_denied
// (B's nonce and transaction data differ) and A still completes with it;
// authorization_details sent again at the token endpoint, on the code or
// the refresh, change nothing: the grant carries what the wallet approved.
// Oversized authorization_details are a clear 4xx and store nothing.
func TestDCRed_PaymentSwap(t *testing.T) {
	e := newDCEnv(t, dcEnvOptions{edit: rarDCConfig})
	other := strings.Replace(scaDetails, "123.50", "99999.00", 1)
	aa, ab := e.app(t, "demo-app"), e.app(t, "demo-app")
	cha := aa.initial(t, "scope", "openid profile offline_access", "authorization_details", scaDetails, "dc_api", "true")
	requireDCChallenge(t, cha, "dc_api")
	chb := ab.initial(t, "scope", "openid profile offline_access", "authorization_details", other, "dc_api", "true")
	requireDCChallenge(t, chb, "dc_api")
	runA, err := pathDCAPI.present(t, e, cha)
	require.NoError(t, err)
	swapped := url.Values{}
	for k, v := range runA.form {
		swapped[k] = v
	}
	swapped.Set("auth_session", chb.s("auth_session"))
	requireDCError(t, ab.post(t, swapped), http.StatusBadRequest, "access_denied")
	done := aa.post(t, runA.form)
	require.Equal(t, http.StatusOK, done.status, string(done.raw))

	want := `"authorization_details":` + scaCanonical
	st, tr := aa.tokenCall(t, url.Values{"grant_type": {"authorization_code"}, "code": {done.s("authorization_code")}, "client_id": {aa.clientID},
		"code_verifier": {aa.pkce.Verifier}, "authorization_details": {other}})
	if st == http.StatusOK {
		require.Contains(t, tr, want)
		require.NotContains(t, tr, "99999")
		rt := jsonString(t, tr, "refresh_token")
		require.NotEmpty(t, rt, tr)
		st, ref := aa.tokenCall(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {aa.clientID}, "refresh_token": {rt}, "authorization_details": {other}})
		if st == http.StatusOK {
			require.Contains(t, ref, want)
			require.NotContains(t, ref, "99999")
			require.NotContains(t, e.introspectRaw(t, jsonString(t, ref, "access_token")), "99999")
		} else {
			require.Equal(t, http.StatusBadRequest, st, ref)
		}
	} else {
		require.Equal(t, http.StatusBadRequest, st, tr)
	}

	// Huge authorization_details: refused, never a 5xx, no session.
	one := `{"type":"sca_payment","transaction_id":"T","payee":{"name":"M","id":"X"},"currency":"EUR","amount":1}`
	for _, n := range []int{300, 3000} {
		big := "[" + strings.TrimSuffix(strings.Repeat(one+",", n), ",") + "]"
		r := e.app(t, "demo-app").initial(t, "authorization_details", big, "dc_api", "true")
		require.True(t, r.status == http.StatusBadRequest || r.status == http.StatusRequestEntityTooLarge, "%d entries: %d %s", n, r.status, r.raw)
		require.Empty(t, r.s("auth_session"), string(r.raw))
	}
}

// TestDCRed_SubjectShapes: the issuer's subject claim as an array, an
// object, an empty string, null or a boolean refuses the presentation
// (400 access_denied, no code) on every path; a long one (4 KB) or a
// number signs in with the usual 46-character digest as sub, the value
// itself nowhere in the token response; a huge one (100 KB) is over the
// size caps: a 4xx, never a code or a 5xx.
func TestDCRed_SubjectShapes(t *testing.T) {
	e := newDCEnv(t, dcEnvOptions{x5c: true})
	long := strings.Repeat("ü", 2<<10)
	cases := []struct {
		name string
		sub  any
		ok   bool
	}{
		{"huge", strings.Repeat("ü", 50<<10), false},
		{"array", []any{"a", "b"}, false},
		{"one_element_array", []any{"a"}, false},
		{"object", map[string]any{"id": "a"}, false},
		{"empty", "", false},
		{"null", nil, false},
		{"bool", true, false},
		{"number", 4711, true},
		{"long", long, true},
	}
	honest := e.wallet
	defer func() { e.wallet = honest }()
	for _, c := range cases {
		for _, p := range []dcPath{pathDCAPI, pathSame, pathCross} {
			t.Run(c.name+"/"+p.name, func(t *testing.T) {
				w := dctest.NewWallet()
				w.Now, w.VerifierRoots, w.HTTP = e.clock.Now, e.roots, e.in.HTTPClient()
				_, err := w.Receive(e.issuer, map[string]any{"sub": c.sub, "given_name": "Erika", "family_name": "M"}, dctest.IssueOptions{})
				require.NoError(t, err)
				e.wallet = w
				a := e.app(t, p.client)
				ch := p.begin(t, a)
				run, err := p.present(t, e, ch)
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, run.walletStatus)
				r := a.post(t, run.form)
				if c.name == "huge" {
					require.Contains(t, []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge}, r.status, string(r.raw))
					require.Empty(t, r.s("authorization_code"))
					return
				}
				if !c.ok {
					requireDCError(t, r, http.StatusBadRequest, "access_denied")
					return
				}
				require.Equal(t, http.StatusOK, r.status, string(r.raw))
				tok := a.exchange(t, r.s("authorization_code"))
				sub, _ := idClaims(t, tok)["sub"].(string)
				require.True(t, strings.HasPrefix(sub, "dc.") && len(sub) == 46, sub)
				raw, _ := json.Marshal(tok)
				require.NotContains(t, string(raw), "4711")
				require.NotContains(t, string(raw), "üüüü")
			})
		}
	}
}

// TestDCRed_StatusListDownExternal: with the external verifier, whose
// answers fedas re-verifies (status list included) when the client polls
// or posts the response_code, a status list out of reach is 503 with
// Retry-After and the same follow-up completes once it is back.
func TestDCRed_StatusListDownExternal(t *testing.T) {
	for _, p := range []dcPath{pathSame, pathCross} {
		t.Run(p.name, func(t *testing.T) {
			// A fresh instance: a cold status list cache (the fake keeps
			// its own clock, so ours cannot be moved past the cache).
			g := &gatedTransport{}
			x := newExtEnv(t, extOptions{start: withGatedStatus(g)})
			a := x.app(t, p.client)
			ch := p.begin(t, a)
			run, err := p.present(t, x.dcEnv, ch)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, run.walletStatus)
			g.down.Store(true)
			hits := g.hits.Load()
			requireDCUnavailable(t, a.post(t, run.form))
			require.Greater(t, g.hits.Load(), hits, "the status list was asked")
			g.down.Store(false)
			if p.flow == pathCross.flow {
				x.clock.Advance(11 * time.Second)
			}
			done := a.post(t, run.form)
			require.Equal(t, http.StatusOK, done.status, string(done.raw))
			require.NotEmpty(t, done.s("authorization_code"))
		})
	}
}

// TestDCRed_ConcurrentPolls: forty concurrent polls of a pending
// cross-device session (each stores the time of the last poll) answer
// pending or slow_down with the same auth_session — never a 5xx, and
// never an answer that ends the session — on memory and Redis; the
// session then completes.
func TestDCRed_ConcurrentPolls(t *testing.T) {
	for _, b := range dcSecBackendNames {
		t.Run(b, func(t *testing.T) {
			// A long request_ttl: forty slow_downs pile up 200 s of interval.
			e := newSecEnv(t, b, dcEnvOptions{edit: func(c *config.Config) { c.DigitalCredentials.RequestTTL = 10 * time.Minute }})
			a := e.app(t, "demo-app")
			ch := pathCross.begin(t, a)
			as := ch.s("auth_session")
			e.clock.Advance(6 * time.Second)
			var wg sync.WaitGroup
			start := make(chan struct{})
			answers := make([]dcAnswer, 40)
			for i := range answers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					answers[i] = a.post(t, url.Values{"auth_session": {as}})
				}()
			}
			close(start)
			wg.Wait()
			longest := 0
			for _, r := range answers {
				if iv, _ := r.m["interval"].(float64); int(iv) > longest {
					longest = int(iv)
				}
				require.Less(t, r.status, 500, string(r.raw))
				require.Equal(t, http.StatusForbidden, r.status, string(r.raw))
				require.Contains(t, []string{"pending", "slow_down"}, r.s("status"), string(r.raw))
				require.Equal(t, as, r.s("auth_session"))
			}
			run, err := pathCross.present(t, e.dcEnv, ch)
			require.NoError(t, err)
			// Each concurrent poll was sooner than the last: slow_down piled
			// up its 5 s (RFC 8628 §3.5); the longest interval announced is
			// enough.
			e.clock.Advance(time.Duration(longest) * time.Second)
			done := a.post(t, run.form)
			require.Equal(t, http.StatusOK, done.status, string(done.raw))
		})
	}
}
