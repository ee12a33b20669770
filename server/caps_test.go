package server_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/federation/fedtest"
	"github.com/fedas/fedas/metrics/metricstest"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage/redistest"
)

// Caps (SECURITY-RESULTS.md CP01–CP08; docs/security.md "Caps"): live
// auth sessions per client address and per client, on every path that
// creates a session; federation hops per session; parameter counts and
// body sizes on every endpoint that parses a body.

// capsEnv is AS1 on its own redis-server with a mock downstream ds1, our
// app, and a route for each way a session starts: demo-app and
// fed-partner (pushed, with credential challenges) sign in locally, c2 is
// routed to ds1 without a prompt, c3 gets the prompt.
type capsEnv struct {
	*mockFed
	rs *redistest.Server
}

func startCapsEnv(t *testing.T, edit func(*config.Config)) capsEnv {
	t.Helper()
	rs := redistest.Start(t)
	e := newMockFed(t, mockFedOpts{store: redisStore(t, rs.URL()), edit: func(c *config.Config) {
		appSecConfig(c)
		for i := range c.Clients {
			if c.Clients[i].ID == "fed-partner" {
				c.Clients[i].AllowCredentialChallenges = true
			}
		}
		c.Clients = append(c.Clients, config.Client{ID: "c3", FirstParty: true, TokenEndpointAuthMethod: "none", Scopes: []string{"openid", "offline_access"}, GrantTypes: []string{"authorization_code"}})
		c.Routes = append([]config.Route{
			{Local: true, Clients: []string{"demo-app", "fed-partner"}},
			{Downstream: "ds1", Clients: []string{"c2"}},
		}, c.Routes...)
		if edit != nil {
			edit(c)
		}
	}})
	return capsEnv{mockFed: e, rs: rs}
}

// liveCapsConfig sets the live-session caps (-1: off).
func liveCapsConfig(perIP, perClient int) func(*config.Config) {
	return func(c *config.Config) {
		c.Limits.MaxLiveSessionsPerIP, c.Limits.MaxLiveSessionsPerClient = perIP, perClient
	}
}

// clientFrom is an HTTP client whose connections come from the loopback
// address ip (any of 127.0.0.0/8 reaches a listener on 127.0.0.1 on
// Linux): another caller, as the server sees it.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// sendFrom sends req with hc and decodes the answer as do does.
func sendFrom(tb testing.TB, hc *http.Client, req *http.Request) reply {
	tb.Helper()
	resp, err := hc.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(tb, json.Unmarshal(b, &r.body), "body %q", b)
	}
	return r
}

func formRequest(tb testing.TB, endpoint string, form url.Values) *http.Request {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	require.NoError(tb, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func getRequest(tb testing.TB, u string) *http.Request {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(tb, err)
	return req
}

// sessionPath is one way a request starts an auth session.
type sessionPath struct {
	name string
	// prepare makes what one request needs (a pushed request) and
	// returns that request, to send as often as wanted.
	prepare func(t *testing.T, e capsEnv) func() *http.Request
	// started asserts the answer of a request that started a session.
	started func(t *testing.T, r reply)
	// end finishes the session that answer r started, as its user would.
	end func(t *testing.T, e capsEnv, r reply)
	// page: the path answers HTML pages (the browser endpoint).
	page bool
}

func nativeInitial(t *testing.T, e capsEnv, client string, extra url.Values) func() *http.Request {
	return func() *http.Request {
		f := url.Values{"client_id": {client}, "response_type": {"code"}, "scope": {"openid"},
			"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
		for k, v := range extra {
			f[k] = v
		}
		return formRequest(t, e.as1.native(), f)
	}
}

func requireChallenge(t *testing.T, r reply) {
	t.Helper()
	requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
	require.NotEmpty(t, r.str("auth_session"))
}

func carolAtNative(t *testing.T, e capsEnv, r reply) {
	t.Helper()
	out := post(t, e.as1.native(), url.Values{"auth_session": {r.str("auth_session")}, "username": {"carol"}, "password": {"carol-pw"}})
	require.Equal(t, http.StatusOK, out.status, out.raw)
	require.NotEmpty(t, out.str("authorization_code"))
}

// sessionPaths are every way a session starts (flow.Engine: local,
// prompt, routed federation, pushed in the downstream role, the browser
// endpoint, our app): the caps must hold on each.
func sessionPaths() []sessionPath {
	return []sessionPath{
		{
			name:    "native local",
			prepare: func(t *testing.T, e capsEnv) func() *http.Request { return nativeInitial(t, e, "demo-app", nil) },
			started: requireChallenge,
			end:     carolAtNative,
		},
		{
			name:    "native prompt",
			prepare: func(t *testing.T, e capsEnv) func() *http.Request { return nativeInitial(t, e, "c3", nil) },
			started: func(t *testing.T, r reply) {
				requireOAuthError(t, r, http.StatusBadRequest, "insufficient_information")
				require.NotEmpty(t, r.str("auth_session"))
			},
			end: func(t *testing.T, e capsEnv, r reply) {
				// prompt.max_attempts invalid answers end the session.
				for range 3 {
					r = e.answer(t, r.str("auth_session"), url.Values{"bank": {"no-such-bank"}})
				}
				requireOAuthError(t, r, http.StatusBadRequest, "access_denied")
			},
		},
		{
			name:    "native routed federation",
			prepare: func(t *testing.T, e capsEnv) func() *http.Request { return nativeInitial(t, e, "c2", nil) },
			started: func(t *testing.T, r reply) { requireFederate(t, r) },
			end: func(t *testing.T, e capsEnv, r reply) {
				out := respondHop(t, r, url.Values{"authorization_code": {atDownstream(t, r)}})
				require.Equal(t, http.StatusOK, out.status, out.raw)
			},
		},
		{
			name: "pushed (downstream role)",
			prepare: func(t *testing.T, e capsEnv) func() *http.Request {
				par := post(t, e.as1.parURL(), url.Values{"response_type": {"code"}, "client_id": {"fed-partner"}, "redirect_uri": {"https://fed.example/web-cb"},
					"scope": {"openid"}, "state": {"state-12345"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}},
					basic("fed-partner", fedPartnerSecret))
				require.Equal(t, http.StatusCreated, par.status, par.raw)
				return func() *http.Request {
					return formRequest(t, e.as1.native(), url.Values{"client_id": {"fed-partner"}, "request_uri": {par.str("request_uri")}})
				}
			},
			started: requireChallenge,
			end:     carolAtNative,
		},
		{
			name: "browser",
			prepare: func(t *testing.T, e capsEnv) func() *http.Request {
				p := pushAs(t, e.as1, "demo-partner", partnerSecret, partnerCB)
				return func() *http.Request { return getRequest(t, e.as1.authorizeURL("demo-partner", p.requestURI)) }
			},
			started: func(t *testing.T, r reply) { requireFormPage(t, r, "username", "password") },
			end: func(t *testing.T, e capsEnv, r reply) {
				out := e.as1.carolSignsIn(t, pageSession(r))
				require.Equal(t, http.StatusSeeOther, out.status, out.raw)
			},
			page: true,
		},
		{
			name: "app leg",
			prepare: func(t *testing.T, e capsEnv) func() *http.Request {
				return nativeInitial(t, e, "demo-app", url.Values{"native_callback_uri": {"https://app.example/cb"}})
			},
			started: func(t *testing.T, r reply) {
				requireDeepLink(t, r, "demo-app")
				require.NotEmpty(t, r.str("auth_session"))
			},
			end: func(t *testing.T, e capsEnv, r reply) {
				out := post(t, e.as1.native(), url.Values{"auth_session": {r.str("auth_session")}, "error": {"access_denied"}})
				requireOAuthError(t, out, http.StatusBadRequest, "access_denied")
			},
		},
	}
}

// keyCount counts the keys matching pattern on rs (tests only: the server
// never scans).
func keyCount(t *testing.T, rs *redistest.Server, pattern string) int {
	t.Helper()
	keys, err := rs.Do("KEYS", pattern)
	require.NoError(t, err)
	return len(strings.Fields(keys))
}

// requireCapSlowDown asserts the cap's answer: 429 slow_down (a page on the
// browser endpoint) with Retry-After until the oldest session expires.
func requireCapSlowDown(t *testing.T, r reply, page bool, ttl time.Duration) {
	t.Helper()
	if page {
		require.Equal(t, http.StatusTooManyRequests, r.status, r.raw)
		require.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "text/html"), r.header.Get("Content-Type"))
		require.Empty(t, pageSession(r), "no sign-in form")
	} else {
		requireOAuthError(t, r, http.StatusTooManyRequests, "slow_down")
		require.Empty(t, r.str("auth_session"))
		require.Contains(t, r.str("error_description"), "Too many sign-ins in progress")
	}
	sec, err := strconv.Atoi(r.header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", r.header.Get("Retry-After"))
	require.LessOrEqual(t, sec, int(ttl/time.Second))
	require.GreaterOrEqual(t, sec, int(ttl/time.Second)-10, "until the oldest session expires")
}

// runLiveCap drives one path against a cap of 2 in scope: two sessions
// start, the third is refused with nothing stored (DBSIZE and the auth
// session keys unchanged, the refusal counted as rate_limit.hit), other
// asks whether another address is refused too (the client scope) or
// admitted (the address scope); once a session ends its slot is free
// and the very request refused before now starts a session (a pushed
// request_uri was not consumed: docs/decisions.md Q28).
func runLiveCap(t *testing.T, p sessionPath, scope string) {
	perIP, perClient := 2, -1
	if scope == "live_client" {
		perIP, perClient = -1, 2
	}
	e := startCapsEnv(t, liveCapsConfig(perIP, perClient))
	ttl := e.as1.Config.Lifetimes.AuthSession
	hc := clientFrom("127.0.0.1")
	send := func(req func() *http.Request) reply { return sendFrom(t, hc, req()) }
	first := send(p.prepare(t, e))
	p.started(t, first)
	p.started(t, send(p.prepare(t, e)))
	require.Equal(t, 2, keyCount(t, e.rs, "fedas:as:*"))

	req := p.prepare(t, e)
	before, pars := dbsize(t, e.rs), e.pars()
	metrics := snapshot(t, e.as1)
	requireCapSlowDown(t, send(req), p.page, ttl)
	require.Equal(t, before, dbsize(t, e.rs), "nothing stored")
	require.Equal(t, 2, keyCount(t, e.rs, "fedas:as:*"))
	require.Equal(t, pars, e.pars(), "nothing pushed to a downstream")
	delta := metricstest.Delta(metrics, snapshot(t, e.as1))
	require.Equal(t, float64(1), delta[metricstest.Key("fedas_rate_limited_total", "scope", scope)], "%v", delta)

	other := sendFrom(t, clientFrom("127.0.0.2"), p.prepare(t, e)())
	if scope == "live_client" {
		requireCapSlowDown(t, other, p.page, ttl)
	} else {
		p.started(t, other)
		p.end(t, e, other)
	}

	// A session ends: its slot is free, and the request refused before
	// (its pushed request_uri not consumed) starts a session now.
	p.end(t, e, first)
	again := send(req)
	p.started(t, again)
	require.Equal(t, 2, keyCount(t, e.rs, "fedas:as:*"))
	requireCapSlowDown(t, send(p.prepare(t, e)), p.page, ttl)
	p.end(t, e, again)
}

// CP01: live auth sessions per client address, on every path that starts
// one.
func TestCaps_LiveSessionsPerIP(t *testing.T) {
	for _, p := range sessionPaths() {
		t.Run(p.name, func(t *testing.T) { runLiveCap(t, p, "live_ip") })
	}
}

// CP02: live auth sessions per client, on every path that starts one;
// another client is not affected.
func TestCaps_LiveSessionsPerClient(t *testing.T) {
	for _, p := range sessionPaths() {
		t.Run(p.name, func(t *testing.T) { runLiveCap(t, p, "live_client") })
	}
	t.Run("another client", func(t *testing.T) {
		e := startCapsEnv(t, liveCapsConfig(-1, 1))
		r, _ := e.as1.initial(t, "demo-app", nil)
		requireChallenge(t, r)
		requireCapSlowDown(t, answerOf(e.as1.initial(t, "demo-app", nil)), false, e.as1.Config.Lifetimes.AuthSession)
		p, _ := e.as1.initial(t, "c3", nil)
		requireOAuthError(t, p, http.StatusBadRequest, "insufficient_information")
	})
}

// answerOf drops initial's PKCE.
func answerOf(r reply, _ sdk.PKCE) reply { return r }

// CP03: the caps hold across instances sharing one redis-server: the
// sessions one instance started count at the other, and a session ended
// at one frees a slot at the other.
func TestCaps_SharedAcrossInstances(t *testing.T) {
	rs := redistest.Start(t)
	secret := []byte("caps-shared-secret-0123456789abcdef")
	start := func() instance {
		return wrap(servertest.Start(t, servertest.Options{Store: redisStore(t, rs.URL()), HMACSecret: secret, Configure: func(c *config.Config) {
			testConfig(c)
			liveCapsConfig(2, -1)(c)
		}}))
	}
	a, b := start(), start()
	r1, _ := a.initial(t, "demo-app", nil)
	requireChallenge(t, r1)
	r2, _ := b.initial(t, "demo-app", nil)
	requireChallenge(t, r2)
	for _, in := range []instance{a, b} {
		requireCapSlowDown(t, answerOf(in.initial(t, "demo-app", nil)), false, a.Config.Lifetimes.AuthSession)
	}
	out := post(t, a.native(), url.Values{"auth_session": {r1.str("auth_session")}, "username": {"carol"}, "password": {"carol-pw"}})
	require.Equal(t, http.StatusOK, out.status, out.raw)
	r3, _ := b.initial(t, "demo-app", nil)
	requireChallenge(t, r3)
	requireCapSlowDown(t, answerOf(a.initial(t, "demo-app", nil)), false, a.Config.Lifetimes.AuthSession)
}

// CP04: a session expires with its slot: with the caps full, moving the
// clock past the auth-session lifetime admits new sessions without any
// release.
func TestCaps_SlotsExpireWithSessions(t *testing.T) {
	in, clock := startClocked(t, liveCapsConfig(1, -1))
	r, _ := in.initial(t, "demo-app", nil)
	requireChallenge(t, r)
	requireCapSlowDown(t, answerOf(in.initial(t, "demo-app", nil)), false, in.Config.Lifetimes.AuthSession)
	clock.Advance(in.Config.Lifetimes.AuthSession)
	r, _ = in.initial(t, "demo-app", nil)
	requireChallenge(t, r)
}

// CP05: the federation hops of one session are capped
// (limits.max_federation_hops): every push counts — a retry after the
// downstream failed, the re-push after an expired request_uri (Q9), each
// reload of a browser federation — and past the cap the session ends with
// access_denied and nothing more is pushed.
func TestCaps_FederationHops(t *testing.T) {
	t.Run("retries after failures", func(t *testing.T) {
		e := newMockFed(t, mockFedOpts{timeout: faultTimeout})
		ds := e.ds["ds1"]
		ds.SetMode(fedtest.PAR, fedtest.ServerError)
		p, _ := e.prompt(t, nil)
		s := p.str("auth_session")
		for range e.as1.Config.Limits.MaxFederationHops {
			requireUnavailable(t, e.answer(t, s, url.Values{"bank": {"ds1"}}))
		}
		require.EqualValues(t, 3, ds.Count(fedtest.PAR))
		ds.SetMode(fedtest.PAR, fedtest.OK)
		r := e.answer(t, s, url.Values{"bank": {"ds1"}})
		requireOAuthError(t, r, http.StatusBadRequest, "access_denied")
		require.Contains(t, r.str("error_description"), "Too many federation attempts")
		require.EqualValues(t, 3, ds.Count(fedtest.PAR), "nothing pushed past the cap")
		requireOAuthError(t, e.answer(t, s, url.Values{"bank": {"ds1"}}), http.StatusBadRequest, "invalid_session")
	})
	t.Run("re-push after an expired request_uri", func(t *testing.T) {
		e := newMockFed(t, mockFedOpts{edit: func(c *config.Config) { c.Limits.MaxFederationHops = 1 }})
		fed, _ := e.federate(t, "ds1", nil)
		r := respondHop(t, fed, url.Values{"error": {"invalid_request"}})
		requireOAuthError(t, r, http.StatusBadRequest, "access_denied")
		require.EqualValues(t, 1, e.pars())
		requireOAuthError(t, respondHop(t, fed, url.Values{"error": {"invalid_request"}}), http.StatusBadRequest, "invalid_session")
	})
	t.Run("re-push within the cap", func(t *testing.T) {
		e := newMockFed(t, mockFedOpts{})
		fed, _ := e.federate(t, "ds1", nil)
		again := respondHop(t, fed, url.Values{"error": {"invalid_request"}})
		requireFederate(t, again)
		out := respondHop(t, again, url.Values{"authorization_code": {atDownstream(t, again)}})
		require.Equal(t, http.StatusOK, out.status, out.raw)
	})
	t.Run("browser reloads", func(t *testing.T) {
		e := browserFedEnv(t, fedtest.Options{})
		web, _, _ := browserHop(t, e, nil) // the first load
		authz := e.as1.authorizeURL("demo-app", web.str("request_uri"))
		for range e.as1.Config.Limits.MaxFederationHops - 1 {
			r := getURL(t, authz)
			require.Equal(t, http.StatusSeeOther, r.status, r.raw)
		}
		pushed := e.pars()
		require.EqualValues(t, e.as1.Config.Limits.MaxFederationHops, pushed, "one push per load")
		r := getURL(t, authz)
		requireErrorPage(t, r, http.StatusBadRequest)
		require.Contains(t, r.raw, "Too many federation attempts")
		require.Equal(t, pushed, e.pars(), "nothing pushed past the cap")
		requireOAuthError(t, post(t, e.as1.native(), url.Values{"auth_session": {web.str("auth_session")}, "response_code": {"x"}}), http.StatusBadRequest, "invalid_session")
	})
}

// CP07: a client assertion's jti is recorded until its exp, so exp may be
// at most an hour ahead: a registered client could otherwise make us keep
// a replay marker for centuries. Within the bound the marker's TTL is
// bounded by it; beyond it the assertion is refused and nothing is stored.
func TestCaps_ClientAssertionExpBounded(t *testing.T) {
	rs := redistest.Start(t)
	fk := newFedKey(t, "pkjwt-key")
	var k jose.JSONWebKey
	require.NoError(t, json.Unmarshal([]byte(fk.private), &k))
	e := assertionEnv{key: k, in: wrap(start(t, redisStore(t, rs.URL()), func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "pkjwt", TokenEndpointAuthMethod: "private_key_jwt", JWKS: fk.public, SigningAlg: "ES256",
			Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"https://pkjwt.example/cb"}})
	}))}
	assertion := func(ahead time.Duration) string {
		c := e.claims()
		c["jti"] = sdk.NewPKCE().Verifier
		c["exp"] = time.Now().Add(ahead).Unix()
		return sign(t, jose.ES256, e.key.Key, e.key.KeyID, c)
	}
	for _, ahead := range []time.Duration{time.Hour + 2*time.Minute, 24 * time.Hour, 200 * 365 * 24 * time.Hour} {
		before := dbsize(t, rs)
		requireOAuthError(t, e.par(t, assertion(ahead)), http.StatusUnauthorized, "invalid_client")
		require.Equal(t, before, dbsize(t, rs), "nothing stored for exp %s ahead", ahead)
	}
	require.Equal(t, http.StatusCreated, e.par(t, assertion(time.Hour)).status)
	keys, err := rs.Do("KEYS", "fedas:used:*")
	require.NoError(t, err)
	require.Len(t, strings.Fields(keys), 1)
	ttl, err := rs.Do("PTTL", strings.Fields(keys)[0])
	require.NoError(t, err)
	ms, err := strconv.ParseInt(ttl, 10, 64)
	require.NoError(t, err)
	require.Positive(t, ms)
	require.LessOrEqual(t, time.Duration(ms)*time.Millisecond, time.Hour+time.Minute)
}
