package server_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/metrics/metricstest"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage/redistest"
)

// noRateLimits turns the rate limits off, for tests that send far more
// requests from one address, for one account or one session, than any
// user would (entropy samples, races, fuzzing); the limits themselves
// are tested below.
// wideGate lets every password check of a concurrency test run: the
// password gate's default (half the CPUs, 1 s of queue) would answer 503
// under -race, by design (docs/security.md "Account lockout").
func wideGate(c *config.Config) {
	c.Limits.PasswordConcurrency = 64
	c.Limits.PasswordQueueTimeout = time.Minute
}

func noRateLimits(c *config.Config) {
	off := false
	c.Limits.Rate.Enabled = &off
}

// tinyLimit replaces the default of endpoint and scope by a burst of
// burst requests, refilled at one per period.
func tinyLimit(endpoint, scope string, burst int, period time.Duration) func(*config.Config) {
	return func(c *config.Config) {
		c.Limits.Rate.Rules = append(c.Limits.Rate.Rules, config.RateRule{Endpoint: endpoint, Scope: scope, Rate: 1, Period: period, Burst: burst})
	}
}

// limited is an instance with a JSON log and a clock of its own.
type limited struct {
	instance
	log   *jsonLog
	clock *servertest.Clock
}

func startLimited(t *testing.T, edits ...func(*config.Config)) limited {
	t.Helper()
	log, out := newJSONLog()
	clock := &servertest.Clock{}
	in := wrap(servertest.Start(t, servertest.Options{Logger: log, Clock: clock, Configure: func(c *config.Config) {
		testConfig(c)
		appSecConfig(c)
		webConfig(partnerCB)(c)
		for _, e := range edits {
			e(c)
		}
	}}))
	return limited{instance: in, log: out, clock: clock}
}

// hits returns the rate_limit.hit events logged, by scope.
func (l limited) hits(t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, line := range l.log.lines(t) {
		if line.str("event") == "rate_limit.hit" {
			out[line.str("scope")]++
			require.NotEmpty(t, line.str("request_id"), line.raw)
			require.NotEmpty(t, line.str("client_id"), line.raw)
		}
	}
	return out
}

// retryAfter parses a Retry-After header: whole seconds, at least 1.
func retryAfter(t *testing.T, r reply) time.Duration {
	t.Helper()
	v := r.header.Get("Retry-After")
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "Retry-After %q", v)
	require.GreaterOrEqual(t, n, 1)
	return time.Duration(n) * time.Second
}

// requireSlowDown asserts the over-limit answer of a JSON endpoint
// (docs/decisions.md Q28) and returns its Retry-After.
func requireSlowDown(t *testing.T, r reply) time.Duration {
	t.Helper()
	requireOAuthError(t, r, http.StatusTooManyRequests, "slow_down")
	require.NotEmpty(t, r.str("error_description"))
	require.Len(t, r.body, 2, "error and error_description only: %s", r.raw)
	return retryAfter(t, r)
}

// requireSlowDownPage asserts the over-limit answer of the browser
// endpoint: an error page with 429 and Retry-After.
func requireSlowDownPage(t *testing.T, r reply) time.Duration {
	t.Helper()
	requireErrorPage(t, r, http.StatusTooManyRequests)
	require.Contains(t, r.raw, "Too many")
	return retryAfter(t, r)
}

// shapeSession is a well-formed auth_session value of no session: the
// limiter keys it like any other (by its session part).
func shapeSession(b byte) string {
	raw := make([]byte, 48)
	raw[0] = b
	return base64.RawURLEncoding.EncodeToString(raw)
}

// TestRateLimit_429AtEveryLimitedEndpoint drives every limited endpoint
// over each of its limits (the limit set to two requests per hour, every
// other limit at its default) over real HTTP: the third request gets 429
// slow_down with an integer Retry-After ≥ 1 and Cache-Control: no-store
// (a page with 429 on the browser endpoint), valid against docs/openapi.json
// (servertest.ObserveAll), and exactly one rate_limit.hit event and one
// fedas_rate_limited_total with the limit's scope (SECURITY-RESULTS.md
// RL01).
func TestRateLimit_429AtEveryLimitedEndpoint(t *testing.T) {
	pkceForm := func(client string, extra url.Values) url.Values {
		f := url.Values{"client_id": {client}, "response_type": {"code"}, "scope": {"openid"},
			"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
		for k, v := range extra {
			f[k] = v
		}
		return f
	}
	tests := []struct {
		endpoint, scope string
		edit            func(*config.Config)
		// send makes the i-th request (i = 0, 1, 2).
		send func(t *testing.T, in limited, i int) reply
		page bool
	}{
		{endpoint: config.RateNativeInitial, scope: config.ScopeIP, send: func(t *testing.T, in limited, _ int) reply {
			return post(t, in.native(), pkceForm("demo-app", nil))
		}},
		{endpoint: config.RateNativeInitial, scope: config.ScopeClient, send: func(t *testing.T, in limited, _ int) reply {
			return post(t, in.native(), pkceForm("demo-app", nil))
		}},
		{endpoint: config.RateNativeInitial, scope: config.ScopeAccount, send: func(t *testing.T, in limited, i int) reply {
			return post(t, in.native(), pkceForm([]string{"demo-app", "c2", "demo-app"}[i], url.Values{"login_hint": {[]string{"carol", "Carol", " CAROL"}[i]}}))
		}},
		{endpoint: config.RateNativeFollowUp, scope: config.ScopeSession, send: func() func(t *testing.T, in limited, i int) reply {
			// One session across its rotations: each wrong answer gives a
			// new value, and the session's budget holds for all of them.
			var s string
			return func(t *testing.T, in limited, i int) reply {
				if i == 0 {
					r, _ := in.initial(t, "demo-app", nil)
					s = r.str("auth_session")
				}
				r := post(t, in.native(), url.Values{"auth_session": {s}, "username": {"carol"}, "password": {"wrong-" + strconv.Itoa(i)}})
				s = r.str("auth_session")
				return r
			}
		}()},
		{endpoint: config.RateNativeFollowUp, scope: config.ScopeAccount, send: func(t *testing.T, in limited, _ int) reply {
			r, _ := in.initial(t, "demo-app", nil)
			return post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "username": {"carol"}, "password": {"wrong"}})
		}},
		{endpoint: config.RateNativeFollowUp, scope: config.ScopeAccount + " (prompt answer)",
			edit: func(c *config.Config) {
				c.Prompt = &config.Prompt{Inputs: []config.PromptInput{{Key: "email", Title: "Email"}}}
			},
			send: func(t *testing.T, in limited, _ int) reply {
				r, _ := in.initial(t, "demo-app", nil)
				require.Equal(t, "insufficient_information", r.str("error"), r.raw)
				return post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "email": {"victim@example.com"}})
			}},
		{endpoint: config.RateNativeFollowUp, scope: config.ScopeIP, send: func(t *testing.T, in limited, i int) reply {
			return post(t, in.native(), url.Values{"auth_session": {shapeSession(byte(i))}, "password": {"x"}})
		}},
		{endpoint: config.RateResponse, scope: config.ScopeSession, send: func(t *testing.T, in limited, _ int) reply {
			return post(t, in.URL+"/native/response/abcdef", url.Values{"auth_session": {shapeSession(1)}, "authorization_code": {"x"}})
		}},
		{endpoint: config.RateResponse, scope: config.ScopeIP, send: func(t *testing.T, in limited, i int) reply {
			return post(t, in.URL+"/native/response/abcdef", url.Values{"auth_session": {shapeSession(byte(i))}, "authorization_code": {"x"}})
		}},
		{endpoint: config.RateAppComplete, scope: config.ScopeIP, send: func(t *testing.T, in limited, _ int) reply {
			return in.appComplete(t, "Bearer not-a-token", url.Values{"client_id": {"demo-app"}, "request_uri": {"urn:ietf:params:oauth:request_uri:fedas-app.x"}})
		}},
		{endpoint: config.RateBrowserSubmit, scope: config.ScopeSession, page: true, send: func(t *testing.T, in limited, _ int) reply {
			return in.submit(t, url.Values{"auth_session": {shapeSession(1)}, "password": {"x"}})
		}},
		{endpoint: config.RateBrowserSubmit, scope: config.ScopeAccount, page: true, send: func(t *testing.T, in limited, i int) reply {
			return in.submit(t, url.Values{"auth_session": {shapeSession(byte(i))}, "username": {"carol"}, "password": {"x"}})
		}},
		{endpoint: config.RateBrowserSubmit, scope: config.ScopeIP, page: true, send: func(t *testing.T, in limited, i int) reply {
			return in.submit(t, url.Values{"auth_session": {shapeSession(byte(i))}, "password": {"x"}})
		}},
		{endpoint: config.RatePAR, scope: config.ScopeIP, send: func(t *testing.T, in limited, _ int) reply {
			return post(t, in.parURL(), url.Values{"response_type": {"code"}, "client_id": {"demo-partner"}, "redirect_uri": {partnerCB}, "state": {"state-12345"}}, basic("demo-partner", partnerSecret))
		}},
		{endpoint: config.RatePAR, scope: config.ScopeClient, send: func(t *testing.T, in limited, _ int) reply {
			// HTTP Basic names the client; no client_id in the body.
			return post(t, in.parURL(), url.Values{"response_type": {"code"}, "redirect_uri": {partnerCB}, "state": {"state-12345"}}, basic("demo-partner", partnerSecret))
		}},
		{endpoint: config.RateToken, scope: config.ScopeIP, send: func(t *testing.T, in limited, _ int) reply {
			return post(t, in.token(), url.Values{"grant_type": {"authorization_code"}, "client_id": {"demo-app"}, "code": {"x"}, "code_verifier": {strings.Repeat("v", 43)}})
		}},
		{endpoint: config.RateToken, scope: config.ScopeClient, send: func(t *testing.T, in limited, _ int) reply {
			return post(t, in.token(), url.Values{"grant_type": {"refresh_token"}, "client_id": {"demo-app"}, "refresh_token": {"x"}})
		}},
		{endpoint: config.RateIntrospect, scope: config.ScopeIP, send: func(t *testing.T, in limited, _ int) reply {
			return post(t, in.intro(), url.Values{"token": {"x"}}, basic("demo-partner", partnerSecret))
		}},
		{endpoint: config.RateIntrospect, scope: config.ScopeClient, send: func(t *testing.T, in limited, _ int) reply {
			return post(t, in.intro(), url.Values{"token": {"x"}}, basic("demo-partner", partnerSecret))
		}},
		{endpoint: config.RateRevoke, scope: config.ScopeIP, send: func(t *testing.T, in limited, _ int) reply {
			return post(t, in.revoke(), url.Values{"token": {"x"}, "client_id": {"demo-app"}})
		}},
		{endpoint: config.RateRevoke, scope: config.ScopeClient, send: func(t *testing.T, in limited, _ int) reply {
			return post(t, in.revoke(), url.Values{"token": {"x"}}, basic("demo-partner", partnerSecret))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint+"/"+tt.scope, func(t *testing.T) {
			scope, _, _ := strings.Cut(tt.scope, " ")
			edits := []func(*config.Config){tinyLimit(tt.endpoint, scope, 2, time.Hour)}
			if tt.edit != nil {
				edits = append(edits, tt.edit)
			}
			in := startLimited(t, edits...)
			before := snapshot(t, in.instance)
			for i := range 2 {
				r := tt.send(t, in, i)
				require.NotEqual(t, http.StatusTooManyRequests, r.status, "request %d is within the limit: %s", i, r.raw)
			}
			r := tt.send(t, in, 2)
			var wait time.Duration
			if tt.page {
				wait = requireSlowDownPage(t, r)
			} else {
				wait = requireSlowDown(t, r)
			}
			// One request per hour is refilled: the wait is within that hour.
			require.LessOrEqual(t, wait, time.Hour)
			require.Equal(t, map[string]int{scope: 1}, in.hits(t))
			d := metricstest.Delta(before, snapshot(t, in.instance))
			require.Equal(t, 1.0, d[metricstest.Key("fedas_rate_limited_total", "scope", scope)], "%v", d)
		})
	}
}

// TestRateLimit_RefusedUseBurnsNothing: an auth_session refused with 429
// is still the session's current value after the wait, and a pushed
// request_uri refused with 429 still starts its session after the wait
// (docs/decisions.md Q28; SECURITY-RESULTS.md RL02). The clock is moved,
// never slept on.
func TestRateLimit_RefusedUseBurnsNothing(t *testing.T) {
	t.Run("auth_session", func(t *testing.T) {
		in := startLimited(t, tinyLimit(config.RateNativeFollowUp, config.ScopeSession, 1, time.Minute))
		r, pk := in.initial(t, "demo-app", nil)
		r = post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "username": {"carol"}, "password": {"wrong"}})
		require.Equal(t, http.StatusForbidden, r.status, r.raw)
		s := r.str("auth_session")
		right := url.Values{"auth_session": {s}, "username": {"carol"}, "password": {"carol-pw"}}
		wait := requireSlowDown(t, post(t, in.native(), right))
		require.Equal(t, time.Minute, wait)
		in.clock.Advance(wait)
		r = post(t, in.native(), right)
		require.Equal(t, http.StatusOK, r.status, r.raw)
		require.Equal(t, http.StatusOK, in.redeem(t, "demo-app", r.str("authorization_code"), pk).status)
	})
	t.Run("request_uri", func(t *testing.T) {
		in := startLimited(t, tinyLimit(config.RateNativeInitial, config.ScopeIP, 1, 10*time.Second))
		ru, _ := fedPartnerPAR(t, in.instance, nil)
		present := url.Values{"client_id": {"fed-partner"}, "request_uri": {ru}}
		// The address's one request goes elsewhere; the push is refused.
		in.initial(t, "demo-app", nil)
		wait := requireSlowDown(t, post(t, in.native(), present))
		require.Equal(t, 10*time.Second, wait)
		in.clock.Advance(wait)
		r := post(t, in.native(), present)
		requireDeepLink(t, r, "fed-partner")
	})
}

// TestRateLimit_IPFirstDoesNotSpendClient: a request refused by its
// address's limit spends nothing of its client's, so one flooding
// address cannot use up a client's budget for everyone else; the client
// limit still holds across addresses (trusted proxy, X-Forwarded-For)
// (SECURITY-RESULTS.md RL05).
func TestRateLimit_IPFirstDoesNotSpendClient(t *testing.T) {
	in := startLimited(t, tinyLimit(config.RateNativeInitial, config.ScopeIP, 2, time.Hour), tinyLimit(config.RateNativeInitial, config.ScopeClient, 4, time.Hour),
		func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1"} })
	from := func(ip string) func(*http.Request) { return withHeader("X-Forwarded-For", ip) }
	initial := func(ip string) reply {
		r, _ := in.initialWith(t, "demo-app", nil, from(ip))
		return r
	}
	// The attacker's address: two allowed, then twenty refused by ip.
	for i := range 22 {
		r := initial("203.0.113.66")
		if i < 2 {
			require.Equal(t, http.StatusForbidden, r.status, r.raw)
		} else {
			requireSlowDown(t, r)
		}
	}
	require.Equal(t, map[string]int{config.ScopeIP: 20}, in.hits(t))
	// The client has spent two of four: two other users still get in,
	// and then the client's limit holds.
	require.Equal(t, http.StatusForbidden, initial("198.51.100.1").status)
	require.Equal(t, http.StatusForbidden, initial("198.51.100.2").status)
	requireSlowDown(t, initial("198.51.100.3"))
	require.Equal(t, map[string]int{config.ScopeIP: 20, config.ScopeClient: 1}, in.hits(t))
}

// TestRateLimit_SharedAcrossInstances: two instances sharing one
// redis-server (and the HMAC secret, from which the key salt derives)
// share every limit: requests alternating between them are limited by
// their sum (SECURITY-RESULTS.md RL03).
func TestRateLimit_SharedAcrossInstances(t *testing.T) {
	rs := redistest.Start(t)
	secret := []byte("rate-limits-shared-secret-32-byte")
	var ins [2]instance
	for i := range ins {
		ins[i] = wrap(servertest.Start(t, servertest.Options{Store: redisStore(t, rs.URL()), HMACSecret: secret, Configure: func(c *config.Config) {
			testConfig(c)
			tinyLimit(config.RateNativeInitial, config.ScopeClient, 5, time.Hour)(c)
			tinyLimit(config.RateToken, config.ScopeIP, 3, time.Hour)(c)
		}}))
	}
	for i := range 5 {
		r, _ := ins[i%2].initial(t, "demo-app", nil)
		require.Equal(t, http.StatusForbidden, r.status, "request %d: %s", i, r.raw)
	}
	for _, in := range ins {
		r, _ := in.initial(t, "demo-app", nil)
		requireSlowDown(t, r)
	}
	grant := url.Values{"grant_type": {"refresh_token"}, "client_id": {"demo-app"}, "refresh_token": {"x"}}
	for i := range 3 {
		require.Equal(t, http.StatusBadRequest, post(t, ins[(i+1)%2].token(), grant).status)
	}
	requireSlowDown(t, post(t, ins[0].token(), grant))
	requireSlowDown(t, post(t, ins[1].token(), grant))
}

// TestClientIP_ForwardedIgnoredByDefault: without trusted_proxies, an
// attacker rotating X-Forwarded-For (and X-Real-IP, Forwarded) values is
// still one address: the per-address limit holds (SECURITY-RESULTS.md
// RL04).
func TestClientIP_ForwardedIgnoredByDefault(t *testing.T) {
	in := startLimited(t, tinyLimit(config.RateNativeInitial, config.ScopeIP, 3, time.Hour))
	for i := range 6 {
		ip := "203.0.113." + strconv.Itoa(i+1)
		r, _ := in.initialWith(t, "demo-app", nil, withHeader("X-Forwarded-For", ip), withHeader("X-Real-IP", ip), withHeader("Forwarded", "for="+ip))
		if i < 3 {
			require.Equal(t, http.StatusForbidden, r.status, r.raw)
		} else {
			requireSlowDown(t, r)
		}
	}
}

// TestClientIP_TrustedProxies: which address the server takes as the
// client's, seen through the per-address limit (one request per address):
// a first request with the row's headers spends the budget of the address
// the server decided, a probe from the expected address is then refused,
// and a request from another address is not. X-Forwarded-For counts only
// from a trusted peer, right to left, the first untrusted address wins;
// a malformed element met before it means the peer; garbage left of it is
// the client's and ignored; the Forwarded header is never read
// (SECURITY-RESULTS.md RL04).
func TestClientIP_TrustedProxies(t *testing.T) {
	const peer = "127.0.0.1"
	tests := []struct {
		name    string
		trusted []string
		xff     []string          // X-Forwarded-For field lines of the first request
		other   map[string]string // other headers of the first request
		want    string            // the address the server must decide
	}{
		{name: "no trusted proxies", xff: []string{"203.0.113.9"}, want: peer},
		{name: "peer not trusted", trusted: []string{"10.0.0.0/8"}, xff: []string{"203.0.113.9"}, want: peer},
		{name: "trusted peer", trusted: []string{peer}, xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "rightmost untrusted", trusted: []string{peer, "10.0.0.0/8"}, xff: []string{"198.51.100.1, 203.0.113.9, 10.1.1.1"}, want: "203.0.113.9"},
		{name: "several field lines", trusted: []string{peer}, xff: []string{"198.51.100.1", "203.0.113.9"}, want: "203.0.113.9"},
		{name: "garbage left of the client", trusted: []string{peer}, xff: []string{"<script>, not-an-ip, 203.0.113.9"}, want: "203.0.113.9"},
		{name: "malformed on the walk", trusted: []string{peer, "10.0.0.0/8"}, xff: []string{"203.0.113.9, bogus, 10.1.1.1"}, want: peer},
		{name: "empty element on the walk", trusted: []string{peer}, xff: []string{"203.0.113.9, "}, want: peer},
		{name: "empty header", trusted: []string{peer}, xff: []string{""}, want: peer},
		{name: "all trusted: the leftmost", trusted: []string{peer, "10.0.0.0/8"}, xff: []string{"10.1.1.1, 10.2.2.2"}, want: "10.1.1.1"},
		{name: "address with a port", trusted: []string{peer}, xff: []string{"[2001:db8::1]:4711"}, want: "2001:db8::1"},
		{name: "IPv4-mapped", trusted: []string{peer}, xff: []string{"::ffff:203.0.113.9"}, want: "203.0.113.9"},
		{name: "Forwarded is not read", trusted: []string{peer}, other: map[string]string{"Forwarded": "for=203.0.113.9"}, want: peer},
		{name: "X-Real-IP is not read", trusted: []string{peer}, other: map[string]string{"X-Real-IP": "203.0.113.9"}, want: peer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := startLimited(t, tinyLimit(config.RateNativeInitial, config.ScopeIP, 1, time.Hour),
				func(c *config.Config) { c.TrustedProxies = tt.trusted })
			first, _ := in.initialWith(t, "demo-app", nil, func(r *http.Request) {
				for _, v := range tt.xff {
					r.Header.Add("X-Forwarded-For", v)
				}
				for k, v := range tt.other {
					r.Header.Set(k, v)
				}
			})
			require.Equal(t, http.StatusForbidden, first.status, first.raw)
			trustsPeer := len(tt.trusted) > 0 && tt.trusted[0] == peer
			probe := func(ip string) reply {
				r, _ := in.initialWith(t, "demo-app", nil, func(r *http.Request) {
					if ip != peer {
						r.Header.Set("X-Forwarded-For", ip)
					}
				})
				return r
			}
			if !trustsPeer {
				requireSlowDown(t, probe(peer))
				return
			}
			requireSlowDown(t, probe(tt.want))
			other := "192.0.2.200"
			if tt.want != peer {
				// The peer itself is another address too.
				require.Equal(t, http.StatusForbidden, probe(peer).status)
			}
			require.Equal(t, http.StatusForbidden, probe(other).status)
		})
	}
}

// TestDPoP_HTUNotFromForwardedHeaders (F07): even behind a trusted proxy,
// whose X-Forwarded-For the server reads, the DPoP htu and the issuer in
// the metadata come from the configured issuer only: X-Forwarded-Host and
// X-Forwarded-Proto change nothing (SECURITY-RESULTS.md RL07).
func TestDPoP_HTUNotFromForwardedHeaders(t *testing.T) {
	in := startLimited(t, func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1"} })
	k := dpopKey(t)
	forwarded := func(r *http.Request) {
		r.Header.Set("X-Forwarded-Host", "evil.example")
		r.Header.Set("X-Forwarded-Proto", "https")
		r.Header.Set("X-Forwarded-For", "203.0.113.9")
		r.Header.Set("Forwarded", "host=evil.example;proto=https")
	}
	r, _ := in.initialWith(t, "demo-app", nil, forwarded, withProof(t, k, "https://evil.example/native/authorize"))
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_dpop_proof")
	r, _ = in.initialWith(t, "demo-app", nil, forwarded, withProof(t, k, in.native()))
	require.Equal(t, http.StatusForbidden, r.status, r.raw)
	req, err := http.NewRequest(http.MethodGet, in.URL+"/.well-known/oauth-authorization-server", nil)
	require.NoError(t, err)
	forwarded(req)
	meta := do(t, req)
	require.Equal(t, in.URL, meta.str("issuer"))
	require.Equal(t, in.native(), meta.str("native_authorization_endpoint"))
}

// TestRateLimit_FailsOpen: when the limiter's storage does not answer,
// the request is not refused by the limiter (no 429, no 500): it goes on
// and answers 503 temporarily_unavailable from its own storage work,
// and each unchecked request is counted in
// fedas_rate_limit_unavailable_total (docs/security.md "Rate limits";
// SECURITY-RESULTS.md RL08).
func TestRateLimit_FailsOpen(t *testing.T) {
	rs := redistest.Start(t)
	in := wrap(start(t, redisStore(t, rs.URL()), tinyLimit(config.RateNativeInitial, config.ScopeIP, 1, time.Hour)))
	r, _ := in.initial(t, "demo-app", nil)
	require.Equal(t, http.StatusForbidden, r.status, r.raw)
	before := snapshot(t, in)
	rs.Stop()
	for range 3 {
		r, _ := in.initial(t, "demo-app", nil)
		requireOAuthError(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
	}
	d := metricstest.Delta(before, snapshot(t, in))
	require.Equal(t, 3.0, d[metricstest.Key("fedas_rate_limit_unavailable_total")], "%v", d)
	require.Zero(t, d[metricstest.Key("fedas_rate_limited_total", "scope", config.ScopeIP)])
}
