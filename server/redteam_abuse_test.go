package server_test

// Red team of the abuse defences of issue 10 (SECURITY-RESULTS.md AB01…):
// rate limits, client addresses, account lockout, live-session caps,
// refresh rotation and signing keys, attacked over real HTTP as a
// black-box caller would. Each test asserts the defence that holds; the
// ones that did not hold were fixed with the test (see SECURITY-RESULTS.md).

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
)

// proxied is a caller behind our trusted proxy (the loopback peer): the
// server takes its address from the X-Forwarded-For the proxy appends.
type proxied struct {
	in  instance
	xff string
}

func (p proxied) post(tb testing.TB, form url.Values) reply {
	tb.Helper()
	return post(tb, p.in.native(), form, func(r *http.Request) { r.Header.Set("X-Forwarded-For", p.xff) })
}

func (p proxied) start(tb testing.TB) string {
	tb.Helper()
	pk := sdk.NewPKCE()
	r := p.post(tb, url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"},
		"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}})
	requireOAuthError(tb, r, http.StatusForbidden, "insufficient_authorization")
	return r.str("auth_session")
}

func (p proxied) answer(tb testing.TB, user, pw string) reply {
	tb.Helper()
	return p.post(tb, url.Values{"auth_session": {p.start(tb)}, "username": {user}, "password": {pw}})
}

// behindProxy trusts the loopback peer as a reverse proxy.
func behindProxy(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1"} }

// TestRedteam_Abuse_OneAddressOneCounter (AB01): an attacker who holds an
// IPv6 /64 (one host's usual allocation) or writes an IPv4 address in its
// IPv4-mapped IPv6 form is one caller for the rate limiter, the
// live-session cap AND the (account, address) lockout counter: a table
// over the three, each driven over its limit from one form of the
// address and probed from another. The lockout used to key on the full
// IPv6 address, so each of the 2^64 addresses of a /64 had its own free
// failures (fixed: lockout.For keys on flow.AddressScope).
func TestRedteam_Abuse_OneAddressOneCounter(t *testing.T) {
	pairs := []struct{ name, first, second string }{
		{"IPv6 same /64", "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe"},
		{"IPv4-mapped", "203.0.113.7", "::ffff:203.0.113.7"},
	}
	defences := []struct {
		name string
		edit func(*config.Config)
		// fill drives from's budget to its limit; probe must then be refused.
		fill  func(t *testing.T, p proxied)
		probe func(t *testing.T, p proxied)
	}{
		{"rate limit", tinyLimit(config.RateNativeInitial, config.ScopeIP, 2, time.Hour),
			func(t *testing.T, p proxied) { p.start(t); p.start(t) },
			func(t *testing.T, p proxied) {
				r := p.post(t, url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"},
					"code_challenge": {sdk.NewPKCE().Challenge}, "code_challenge_method": {"S256"}})
				requireSlowDown(t, r)
			}},
		{"live-session cap", func(c *config.Config) { noRateLimits(c); liveCapsConfig(2, -1)(c) },
			func(t *testing.T, p proxied) { p.start(t); p.start(t) },
			func(t *testing.T, p proxied) {
				r := p.post(t, url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"},
					"code_challenge": {sdk.NewPKCE().Challenge}, "code_challenge_method": {"S256"}})
				requireOAuthError(t, r, http.StatusTooManyRequests, "slow_down")
				require.Contains(t, r.str("error_description"), "from this address")
			}},
		{"lockout", lockoutConfig,
			func(t *testing.T, p proxied) {
				for range 3 {
					requireWrong(t, p.answer(t, "erin", "guess"))
				}
			},
			func(t *testing.T, p proxied) {
				desc := requireLockoutSlowDown(t, p.answer(t, "erin", "erin-pw"), "1")
				require.Contains(t, desc, "from here", "the (account, address) counter, not the account's")
			}},
	}
	for _, d := range defences {
		for _, pr := range pairs {
			t.Run(d.name+"/"+pr.name, func(t *testing.T) {
				in, _ := startClocked(t, behindProxy, d.edit)
				d.fill(t, proxied{in, pr.first})
				d.probe(t, proxied{in, pr.second})
				// Another caller is not affected.
				other := proxied{in, "2001:db8:9::1"}
				if d.name == "lockout" {
					requireSignedInCode(t, other.answer(t, "erin", "erin-pw"))
				} else {
					other.start(t)
				}
			})
		}
	}
}

func requireSignedInCode(tb testing.TB, r reply) {
	tb.Helper()
	require.Equal(tb, http.StatusOK, r.status, r.raw)
	require.NotEmpty(tb, r.str("authorization_code"))
}

// TestRedteam_Abuse_UsernameVariantsShareCounters (AB02): an attacker
// who varies the typed username's case or surrounding space to get fresh
// free failures meets the same counters ("dave", "Dave", " DAVE "); a
// variant the user store does not map to the account (fullwidth letters,
// another case: the lookup is exact) never signs the account in, so its
// separate counters buy nothing — the right password under such a
// variant is just wrong.
func TestRedteam_Abuse_UsernameVariantsShareCounters(t *testing.T) {
	in, _ := lockoutInstance(t)
	attacker := deviceAt(in, "127.0.8.1")
	for _, u := range []string{"dave", "Dave", " DAVE "} {
		requireWrong(t, attacker.answer(t, "username", u, "password", "guess"))
	}
	for _, u := range []string{"dave", "dAvE", "dave\t", "  dave"} {
		requireLockoutSlowDown(t, attacker.answer(t, "username", u, "password", "dave-pw"), "1")
	}
	other := deviceAt(in, "127.0.8.2")
	for _, u := range []string{"ｄａｖｅ", "Dave", "dave\u200b", "dave\u0000"} {
		r := other.answer(t, "username", u, "password", "dave-pw")
		requireWrong(t, r)
	}
}

// TestRedteam_Abuse_HintedSessionsCountOnTheHint (AB03): a session
// started with login_hint checks the hinted account's password; its
// failures count on the same counters as answers naming the account by
// username (both ways), and a username field added to a hinted session's
// answer neither changes the account checked nor escapes the hint's
// counters.
func TestRedteam_Abuse_HintedSessionsCountOnTheHint(t *testing.T) {
	hinted := func(t *testing.T, d device, user string) string {
		t.Helper()
		pk := sdk.NewPKCE()
		r := d.post(t, d.in.native(), url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"},
			"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}, "login_hint": {user}})
		requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
		inputs := r.body["challenge"].(map[string]any)["inputs"].(map[string]any)
		require.NotContains(t, inputs, "username", "the hint names the user")
		return r.str("auth_session")
	}
	t.Run("hint then username", func(t *testing.T) {
		in, _ := lockoutInstance(t)
		d := deviceAt(in, "127.0.9.1")
		for range 3 {
			requireWrong(t, d.follow(t, hinted(t, d, "erin"), "password", "guess"))
		}
		requireLockoutSlowDown(t, d.answer(t, "username", "erin", "password", "erin-pw"), "1")
	})
	t.Run("username then hint", func(t *testing.T) {
		in, _ := lockoutInstance(t)
		d := deviceAt(in, "127.0.9.2")
		for range 3 {
			requireWrong(t, d.answer(t, "username", "Erin", "password", "guess"))
		}
		requireLockoutSlowDown(t, d.follow(t, hinted(t, d, "erin"), "password", "erin-pw"), "1")
	})
	t.Run("a username added to a hinted answer", func(t *testing.T) {
		in, _ := lockoutInstance(t)
		d := deviceAt(in, "127.0.9.3")
		for i := range 3 {
			// Each time another username beside the hint: still erin's
			// password that is checked, on erin's counters.
			r := d.follow(t, hinted(t, d, "erin"), "username", "nobody-"+itoa(i), "password", "guess")
			requireWrong(t, r)
		}
		requireLockoutSlowDown(t, d.follow(t, hinted(t, d, "erin"), "username", "dave", "password", "erin-pw"), "1")
		// The right password of the other account named beside the hint
		// does not sign that account in.
		fresh := deviceAt(in, "127.0.9.4")
		r := fresh.follow(t, hinted(t, fresh, "erin"), "username", "dave", "password", "dave-pw")
		requireWrong(t, r)
	})
}

// TestRedteam_Abuse_BrowserAndNativeShareCounters (AB04): the password
// page of the browser endpoint (POST /oauth2/authorize) and the native
// endpoint count on one set of counters: failures at either delay the
// other, from the same address.
func TestRedteam_Abuse_BrowserAndNativeShareCounters(t *testing.T) {
	t.Run("native failures delay the page", func(t *testing.T) {
		in, _ := lockoutInstance(t)
		native := deviceAt(in, "127.0.0.1") // the browser helpers' address
		for range 3 {
			requireWrong(t, native.answer(t, "username", "erin", "password", "guess"))
		}
		r := in.submit(t, url.Values{"auth_session": {browserSession(t, in)}, "username": {"erin"}, "password": {"erin-pw"}})
		require.Equal(t, http.StatusTooManyRequests, r.status, r.raw)
		require.Equal(t, "1", r.header.Get("Retry-After"))
	})
	t.Run("page failures delay native", func(t *testing.T) {
		in, _ := lockoutInstance(t)
		s := browserSession(t, in)
		for range 3 {
			r := in.submit(t, url.Values{"auth_session": {s}, "username": {"erin"}, "password": {"guess"}})
			s = requireFormPage(t, r, "username", "password")
		}
		requireLockoutSlowDown(t, deviceAt(in, "127.0.0.1").answer(t, "username", "erin", "password", "erin-pw"), "1")
	})
}

// TestRedteam_Abuse_AttackerCannotResetVictimCounters (AB05): an attacker
// who owns an account signs in with it from the address it attacks
// from, and with the victim's username written another way: neither
// clears the victim's counters (a success resets only the account that
// signed in).
func TestRedteam_Abuse_AttackerCannotResetVictimCounters(t *testing.T) {
	in, _ := lockoutInstance(t)
	attacker := deviceAt(in, "127.0.10.1")
	for range 3 {
		requireWrong(t, attacker.answer(t, "username", "dave", "password", "guess"))
	}
	requireLockoutSlowDown(t, attacker.answer(t, "username", "dave", "password", "guess"), "1")
	// The attacker's own account, from the same address, signs in.
	requireSignedInCode(t, attacker.answer(t, "username", "erin", "password", "erin-pw"))
	requireLockoutSlowDown(t, attacker.answer(t, "username", "dave", "password", "guess"), "1")
	// Account-wide: three more failures elsewhere reach dave's
	// account-wide delay; erin's sign-ins anywhere leave it.
	for i := range 3 {
		requireWrong(t, deviceAt(in, "127.0.10."+itoa(10+i)).answer(t, "username", "dave", "password", "guess"))
	}
	requireSignedInCode(t, deviceAt(in, "127.0.10.20").answer(t, "username", "erin", "password", "erin-pw"))
	requireLockoutSlowDown(t, deviceAt(in, "127.0.10.21").answer(t, "username", "dave", "password", "dave-pw"), "1")
}

// TestRedteam_Abuse_OTPDoorIsNoPasswordOracle (AB06): at the password
// challenge, password + one-time code for the same account answers the
// right password with a wrong code exactly as it answers a wrong password
// with a wrong code — status, headers, body, bcrypt comparisons — before
// and after the account's code counter passes its free failures (which
// only the right password moves), so the door cannot be used to test
// passwords past the account-wide delay.
func TestRedteam_Abuse_OTPDoorIsNoPasswordOracle(t *testing.T) {
	in, _ := lockoutInstance(t)
	addr := 0
	fresh := func() device { addr++; return deviceAt(in, "127.0.11."+itoa(addr)) }
	for stage := range 6 { // OTPFree is 3: stages 3, 4, 5 are past it
		var got [2]reply
		var checks [2]int64
		for j, pw := range []string{"dave-pw", "guess"} {
			d := fresh()
			s, _ := d.start(t)
			before := server.PasswordChecks(in.Server)
			got[j] = d.follow(t, s, "username", "dave", "password", pw, "otp", "000000")
			checks[j] = server.PasswordChecks(in.Server) - before
		}
		requireWrong(t, got[0])
		rs, rh, rb := comparable(got[0])
		ws, wh, wb := comparable(got[1])
		require.Equal(t, rs, ws, "stage %d: status", stage)
		require.Equal(t, rh, wh, "stage %d: headers", stage)
		require.Equal(t, rb, wb, "stage %d: body", stage)
		require.Equal(t, int64(1), checks[0], "stage %d", stage)
		require.Equal(t, checks[0], checks[1], "stage %d: bcrypt comparisons", stage)
	}
}

// TestRedteam_Abuse_XFFRotationWithoutProxies (AB07): without
// trusted_proxies an attacker rotating X-Forwarded-For, X-Real-IP and
// Forwarded on every answer is one address to the lockout: its
// (account, address) delay comes after its free failures as it would
// without the headers.
func TestRedteam_Abuse_XFFRotationWithoutProxies(t *testing.T) {
	in, _ := lockoutInstance(t)
	for i := range 4 {
		ip := "198.51.100." + itoa(i+1)
		spoof := func(r *http.Request) {
			r.Header.Set("X-Forwarded-For", ip)
			r.Header.Set("X-Real-IP", ip)
			r.Header.Set("Forwarded", "for="+ip)
		}
		pk := sdk.NewPKCE()
		r := post(t, in.native(), url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"},
			"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}, spoof)
		requireChallenge(t, r)
		r = post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "username": {"erin"}, "password": {"guess"}}, spoof)
		if i < 3 {
			requireWrong(t, r)
		} else {
			desc := requireLockoutSlowDown(t, r, "1")
			require.Contains(t, desc, "from here")
		}
	}
}

// TestRedteam_Abuse_TokenRefusalBurnsNothing (AB08): a code and a
// rotating refresh token refused with 429 at the token endpoint are not
// spent: after the wait the code redeems, and the refresh token
// refreshes once — not treated as a reuse that revokes the grant.
func TestRedteam_Abuse_TokenRefusalBurnsNothing(t *testing.T) {
	in := startLimited(t, tinyLimit(config.RateToken, config.ScopeIP, 1, 10*time.Second))
	code, pk := in.signIn(t, "demo-app", "carol", "carol-pw", "")
	post(t, in.token(), url.Values{"grant_type": {"refresh_token"}, "client_id": {"demo-app"}, "refresh_token": {"x"}}) // the one allowed
	redeem := url.Values{"grant_type": {"authorization_code"}, "client_id": {"demo-app"}, "code": {code}, "code_verifier": {pk.Verifier}}
	in.clock.Advance(requireSlowDown(t, post(t, in.token(), redeem)))
	tok := post(t, in.token(), redeem)
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	refresh := url.Values{"grant_type": {"refresh_token"}, "client_id": {"demo-app"}, "refresh_token": {tok.str("refresh_token")}}
	in.clock.Advance(requireSlowDown(t, post(t, in.token(), refresh)))
	r := post(t, in.token(), refresh)
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.NotEqual(t, tok.str("refresh_token"), r.str("refresh_token"), "rotated")
	require.True(t, in.active(t, r.str("access_token")), "the grant is alive: the refused attempt was no reuse")
}

// TestRedteam_Abuse_OneValuePerParameter (AB09): the limiter and the
// engine read the same parsed body, so an attacker cannot make them read
// different values: a repeated auth_session, client_id or username (form
// or JSON) is 400 invalid_request before either runs, the session it
// names unchanged; a JSON answer and a form answer of one session spend
// the same per-session budget; query parameters are never read.
func TestRedteam_Abuse_OneValuePerParameter(t *testing.T) {
	in := startLimited(t, tinyLimit(config.RateNativeFollowUp, config.ScopeSession, 2, time.Minute))
	r, pk := in.initial(t, "demo-app", nil)
	s := r.str("auth_session")
	decoy := shapeSession(7)
	for _, body := range []struct{ ct, body string }{
		{"application/x-www-form-urlencoded", "auth_session=" + decoy + "&auth_session=" + s + "&username=carol&password=carol-pw"},
		{"application/x-www-form-urlencoded", "auth_session=" + s + "&username=carol&username=nobody&password=carol-pw"},
		{"application/json", `{"auth_session":"` + decoy + `","auth_session":"` + s + `","username":"carol","password":"carol-pw"}`},
		{"application/json", `{"auth_session":"` + s + `","username":"carol","password":"x","password":"carol-pw"}`},
	} {
		got := postBody(t, in.native(), body.ct, body.body)
		requireOAuthError(t, got, http.StatusBadRequest, "invalid_request")
		require.Contains(t, got.str("error_description"), "repeated", body.body)
	}
	for _, ep := range []string{in.native(), in.token(), in.parURL()} {
		got := postBody(t, ep, "application/x-www-form-urlencoded", "client_id=demo-app&client_id=c2&response_type=code&grant_type=refresh_token&refresh_token=x")
		requireOAuthError(t, got, http.StatusBadRequest, "invalid_request")
	}
	// The session's budget (2) is untouched by the refusals: a JSON
	// answer and a form answer spend it, the third is 429 whichever
	// encoding it uses.
	w := postBody(t, in.native(), "application/json", `{"auth_session":"`+s+`","username":"carol","password":"wrong"}`)
	requireOAuthError(t, w, http.StatusForbidden, "insufficient_authorization")
	s = w.str("auth_session")
	// A query string naming another session is not read.
	w = post(t, in.native()+"?auth_session="+decoy, url.Values{"auth_session": {s}, "username": {"carol"}, "password": {"wrong"}})
	requireOAuthError(t, w, http.StatusForbidden, "insufficient_authorization")
	s = w.str("auth_session")
	in.clock.Advance(requireSlowDown(t, postBody(t, in.native(), "application/json", `{"auth_session":"`+s+`","username":"carol","password":"carol-pw"}`)))
	ok := post(t, in.native(), url.Values{"auth_session": {s}, "username": {"carol"}, "password": {"carol-pw"}})
	require.Equal(t, http.StatusOK, ok.status, ok.raw)
	require.Equal(t, http.StatusOK, in.redeem(t, "demo-app", ok.str("authorization_code"), pk).status)
}

// TestRedteam_Abuse_OneAddressCannotFillClientCap (AB10): an attacker at
// one address (rotating X-Forwarded-For, which is not read) meets the
// per-address cap long before the public client's cap, and spends none
// of the client's slots with its refused requests: other addresses
// still start sessions. Filling the client cap takes
// max_live_sessions_per_client / max_live_sessions_per_ip addresses
// (IPv6: /64s) holding sessions for an auth-session lifetime each.
func TestRedteam_Abuse_OneAddressCannotFillClientCap(t *testing.T) {
	in, _ := startClocked(t, noRateLimits, liveCapsConfig(3, 5))
	attacker := deviceAt(in, "127.0.12.1")
	for i := range 20 {
		pk := sdk.NewPKCE()
		r := attacker.post(t, in.native(), url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"},
			"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}})
		if i < 3 {
			requireChallenge(t, r)
			continue
		}
		requireCapSlowDown(t, r, false, in.Config.Lifetimes.AuthSession)
		require.Contains(t, r.str("error_description"), "from this address")
	}
	for i := range 2 {
		deviceAt(in, "127.0.12."+itoa(10+i)).start(t)
	}
}

// TestRedteam_Abuse_EveryEndReleasesItsSlot (AB11): with a per-address
// cap of one, a session that ends — with our code (password alone, or
// password then one-time code), with access_denied after too many wrong
// answers at either step — gives its slot back at once; a lockout 429
// does not end the session, which keeps its slot until it ends.
func TestRedteam_Abuse_EveryEndReleasesItsSlot(t *testing.T) {
	type ender func(t *testing.T, d device, clock *servertest.Clock, s string)
	otp := func(t *testing.T, d device, s string) string {
		t.Helper()
		r := d.follow(t, s, "username", "dave", "password", "dave-pw")
		requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
		require.Equal(t, "otp", r.body["challenge"].(map[string]any)["type"])
		return r.str("auth_session")
	}
	tests := []struct {
		name string
		end  ender
	}{
		{"code after the password", func(t *testing.T, d device, _ *servertest.Clock, s string) {
			requireSignedInCode(t, d.follow(t, s, "username", "erin", "password", "erin-pw"))
		}},
		{"code after the one-time code", func(t *testing.T, d device, clock *servertest.Clock, s string) {
			requireSignedInCode(t, d.follow(t, otp(t, d, s), "otp", totpAt(t, clock)))
		}},
		{"too many wrong passwords", func(t *testing.T, d device, _ *servertest.Clock, s string) {
			s = d.follow(t, s, "username", "erin", "password", "x").str("auth_session")
			requireOAuthError(t, d.follow(t, s, "username", "erin", "password", "y"), http.StatusBadRequest, "access_denied")
		}},
		{"too many wrong codes", func(t *testing.T, d device, _ *servertest.Clock, s string) {
			s = d.follow(t, otp(t, d, s), "otp", "000000").str("auth_session")
			requireOAuthError(t, d.follow(t, s, "otp", "111111"), http.StatusBadRequest, "access_denied")
		}},
		{"lockout 429 keeps the slot, then a code", func(t *testing.T, d device, clock *servertest.Clock, s string) {
			// Three failures answered from far (in sessions started
			// elsewhere): far's (account, address) delay is in force.
			far := deviceAt(d.in, "127.0.13.99")
			for i := range 3 {
				other, _ := deviceAt(d.in, "127.0.14."+itoa(i+1)).start(t)
				requireWrong(t, far.follow(t, other, "username", "erin", "password", "x"))
			}
			requireLockoutSlowDown(t, far.follow(t, s, "username", "erin", "password", "erin-pw"), "1")
			pk := sdk.NewPKCE()
			r := d.post(t, d.in.native(), url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"},
				"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}})
			requireCapSlowDown(t, r, false, d.in.Config.Lifetimes.AuthSession)
			clock.Advance(time.Second)
			requireSignedInCode(t, far.follow(t, s, "username", "erin", "password", "erin-pw"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, clock := lockoutInstance(t, noRateLimits, liveCapsConfig(1, -1), func(c *config.Config) { c.Limits.MaxFailures = 2 })
			d := deviceAt(in, "127.0.13.1")
			s, _ := d.start(t)
			full := func() reply {
				pk := sdk.NewPKCE()
				return d.post(t, in.native(), url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"},
					"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}})
			}
			requireCapSlowDown(t, full(), false, in.Config.Lifetimes.AuthSession)
			tc.end(t, d, clock, s)
			requireChallenge(t, full())
		})
	}
}

// TestRedteam_Abuse_RotatedAwayToken (AB12): a refresh token rotated
// away introspects inactive, and introspecting it (any resource server
// may) revokes nothing: the current tokens stay active. Revoking it (RFC
// 7009: 200 whatever the token) by another client changes nothing; by
// its own client it revokes the grant: a client that signs out after a
// thief refreshed first holds the rotated-away token, and its
// revocation used to leave the thief's chain alive (fixed:
// revoke_rotated.go, as reuse at the token endpoint, RFC 9700 §4.14.2).
func TestRedteam_Abuse_RotatedAwayToken(t *testing.T) {
	in, out := startRefresh(t, nil, nil)
	tok := in.grant(t, demoApp)
	old := tok.str("refresh_token")
	// The thief refreshes first; the client's stored token is old.
	cur := in.mustRefresh(t, demoApp, old)
	ir := in.introspect(t, old)
	require.Equal(t, false, ir.body["active"], ir.raw)
	require.True(t, in.active(t, cur.str("access_token")), "introspection of the old token revokes nothing")
	cur = in.mustRefresh(t, demoApp, cur.str("refresh_token"))

	r := post(t, in.revoke(), url.Values{"client_id": {"c2"}, "token": {old}, "token_type_hint": {"refresh_token"}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.True(t, in.active(t, cur.str("access_token")), "another client's revocation is ignored")
	r = post(t, in.revoke(), url.Values{"client_id": {"demo-app"}, "token": {old}, "token_type_hint": {"refresh_token"}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	require.False(t, in.active(t, cur.str("access_token")), "the owner's revocation of a rotated-away token ends the grant")
	// Logged as the reuse it is (one place: Server.endGrant), never with
	// the token.
	got := reuseEvents(t, out)
	require.Len(t, got, 1, "only the owner's revocation ended the grant")
	require.Equal(t, "revoked", got[0].str("reason"))
	require.Equal(t, "demo-app", got[0].str("client_id"))
	require.NotContains(t, got[0].raw, old)
	requireOAuthError(t, in.refresh(t, demoApp, cur.str("refresh_token"), nil), http.StatusBadRequest, "invalid_grant")
}

// TestRedteam_Abuse_JWKSPublicMembersOnly (AB13): whatever the key
// configuration — the ephemeral key of an instance without key files,
// several configured keys with either active — every published JWK has
// exactly the public members of an EC P-256 key (kty, crv, x, y) and
// kid, alg ES256, use sig: no private member under any name; and the
// ID token's kid is always a published kid.
func TestRedteam_Abuse_JWKSPublicMembersOnly(t *testing.T) {
	dir := t.TempDir()
	files := []config.KeyFile{{File: signingKeyFile(t, dir, "a.pem"), KID: "key-a"}, {File: signingKeyFile(t, dir, "b.pem"), KID: "key-b"}}
	for _, tc := range []struct {
		name string
		edit func(*config.Config)
	}{
		{"ephemeral", func(*config.Config) {}},
		{"two keys, first active", withSigningKeys(t, files, "")},
		{"two keys, second active", withSigningKeys(t, files, "key-b")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := wrap(start(t, nil, tc.edit))
			_, members := jwksOf(t, in.URL)
			require.NotEmpty(t, members)
			kids := map[string]bool{}
			for _, m := range members {
				keys := make([]string, 0, len(m))
				for k := range m {
					keys = append(keys, k)
				}
				require.ElementsMatch(t, []string{"kty", "crv", "x", "y", "kid", "alg", "use"}, keys, "%v", m)
				require.Equal(t, "EC", m["kty"])
				require.Equal(t, "P-256", m["crv"])
				kids[m["kid"].(string)] = true
			}
			require.True(t, kids[kidOf(t, idTokenOf(t, in))], "the ID token's kid is published")
		})
	}
}
