package server_test

// The account lockout and the password gate over real HTTP
// (docs/security.md "Account lockout"; docs/decisions.md Q29;
// SECURITY-RESULTS.md LO01…). Requests come from distinct client
// addresses by binding the client's end of each connection to another
// loopback address (127.0.0.0/8 all reaches the server's 127.0.0.1
// listener), so the server's own address logic sees real peers; the
// server's clock is a servertest.Clock the tests move.

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/federation/fedtest"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage/redistest"
)

func minCostHash(pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
}

// dave has a TOTP secret, erin has none; both hash at the minimum cost,
// and they are the only users, so an unknown username's dummy check is
// as cheap: the tests spend dozens of checks.
var daveHash, erinHash = minCostHash("dave-pw"), minCostHash("erin-pw")

// lockoutConfig (after testConfig) keeps dave and erin as the only
// users, and a small lockout: 3 free failures per (account, address), 6
// per account, 3 wrong codes; delays from 1 s doubling to 16 s.
func lockoutConfig(c *config.Config) {
	c.Users = []config.User{
		{Username: "dave", Subject: "dave", PasswordHash: daveHash, TOTPSecret: bobTOTP},
		{Username: "erin", Subject: "erin", PasswordHash: erinHash},
	}
	c.Limits.Lockout = config.Lockout{AccountIPFreeFailures: 3, AccountFreeFailures: 6, OTPFreeFailures: 3,
		BaseDelay: time.Second, MaxDelay: 16 * time.Second, Window: time.Hour}
}

// lockoutInstance starts an instance of lockoutConfig (then edits) on a
// memory store sharing the returned clock.
func lockoutInstance(t *testing.T, edits ...func(*config.Config)) (instance, *servertest.Clock) {
	t.Helper()
	return startClocked(t, func(c *config.Config) {
		lockoutConfig(c)
		for _, e := range edits {
			e(c)
		}
	})
}

// device is a native app at one client address.
type device struct {
	in instance
	hc *http.Client
}

// deviceAt returns a device whose connections leave from ip (a loopback
// address: 127.0.0.2, 127.0.1.7, …).
func deviceAt(in instance, ip string) device {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return device{in: in, hc: &http.Client{
		Timeout:       30 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (d device) post(tb testing.TB, endpoint string, form url.Values) reply {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	require.NoError(tb, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := d.hc.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		r.body = map[string]any{}
		require.NoError(tb, json.Unmarshal(b, &r.body), "body %q", b)
	}
	return r
}

// start sends demo-app's initial request and returns the password
// challenge's auth_session and the PKCE pair.
func (d device) start(tb testing.TB) (string, sdk.PKCE) {
	tb.Helper()
	pk := sdk.NewPKCE()
	r := d.post(tb, d.in.native(), url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid offline_access"},
		"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}})
	requireOAuthError(tb, r, http.StatusForbidden, "insufficient_authorization")
	return r.str("auth_session"), pk
}

// answer answers a fresh session's password challenge with kv.
func (d device) answer(tb testing.TB, kv ...string) reply {
	tb.Helper()
	s, _ := d.start(tb)
	return d.follow(tb, s, kv...)
}

// follow posts kv with auth_session s.
func (d device) follow(tb testing.TB, s string, kv ...string) reply {
	tb.Helper()
	f := url.Values{"auth_session": {s}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return d.post(tb, d.in.native(), f)
}

// requireWrong asserts the answer to a checked wrong password.
func requireWrong(tb testing.TB, r reply) {
	tb.Helper()
	requireOAuthError(tb, r, http.StatusForbidden, "insufficient_authorization")
	require.Equal(tb, "The username or password is not correct.", r.str("error_description"), r.raw)
}

// requireSlowDown asserts 429 slow_down with Retry-After retry (whole
// seconds) and a description naming the delay; it returns the
// description.
func requireLockoutSlowDown(tb testing.TB, r reply, retry string) string {
	tb.Helper()
	requireOAuthError(tb, r, http.StatusTooManyRequests, "slow_down")
	require.Equal(tb, retry, r.header.Get("Retry-After"), r.raw)
	desc := r.str("error_description")
	require.Contains(tb, desc, "try again in "+retry+" s")
	require.Nil(tb, r.body["challenge"], "nothing is asked: the same answer is sent again after the wait")
	return desc
}

func totpAt(tb testing.TB, clock *servertest.Clock) string {
	tb.Helper()
	code, err := totp.GenerateCode(bobTOTP, clock.Now())
	require.NoError(tb, err)
	return code
}

// requireSignedIn redeems the code of r and asserts the token's amr.
func requireSignedIn(tb testing.TB, in instance, r reply, pk sdk.PKCE, amr ...any) {
	tb.Helper()
	require.Equal(tb, http.StatusOK, r.status, r.raw)
	tr := in.redeem(tb, "demo-app", r.str("authorization_code"), pk)
	require.Equal(tb, http.StatusOK, tr.status, tr.raw)
	ir := in.introspect(tb, tr.str("access_token"))
	require.Equal(tb, amr, ir.body["amr"])
}

// delayStep: after waiting wait, one more failure is checked, and the
// next answer waits next seconds.
type delayStep struct {
	wait time.Duration
	next string
}

// TestLockout_SprayAcrossSessionsSlowedThenRefused: wrong passwords for
// one account across fresh sessions (the only limit used to be 5 per
// session) are slowed, then refused with a growing Retry-After — the
// right password alone too — from one address and from many; the owner
// still signs in with password + one-time code (the otp input with the
// password), through federation, and with the password alone once the
// delay has passed (SECURITY-RESULTS.md LO01, LO02).
func TestLockout_SprayAcrossSessionsSlowedThenRefused(t *testing.T) {
	t.Run("one address", func(t *testing.T) {
		in, clock := lockoutInstance(t)
		attacker := deviceAt(in, "127.0.0.2")
		for range 3 {
			requireWrong(t, attacker.answer(t, "username", "dave", "password", "guess"))
		}
		requireLockoutSlowDown(t, attacker.answer(t, "username", "dave", "password", "guess"), "1")
		requireLockoutSlowDown(t, attacker.answer(t, "username", "dave", "password", "dave-pw"), "1")
		for _, want := range []delayStep{{time.Second, "2"}, {2 * time.Second, "4"}, {4 * time.Second, "8"}} {
			clock.Advance(want.wait)
			requireWrong(t, attacker.answer(t, "username", "dave", "password", "guess"))
			requireLockoutSlowDown(t, attacker.answer(t, "username", "dave", "password", "guess"), want.next)
			requireLockoutSlowDown(t, attacker.answer(t, "username", "dave", "password", "dave-pw"), want.next)
		}
		// Six failures: the account-wide delay applies from every
		// address now; the owner's own address has no failures.
		owner := deviceAt(in, "127.0.0.3")
		desc := requireLockoutSlowDown(t, owner.answer(t, "username", "dave", "password", "dave-pw"), "1")
		require.Contains(t, desc, "or send your one-time code with your password")
		s, pk := owner.start(t)
		requireSignedIn(t, in, owner.follow(t, s, "username", "dave", "password", "dave-pw", "otp", totpAt(t, clock)), pk, "pwd", "otp")
		// The owner's success cleared the account's counter, not the
		// attacker's address's.
		requireLockoutSlowDown(t, attacker.answer(t, "username", "dave", "password", "dave-pw"), "8")
		clock.Advance(8 * time.Second)
		r := attacker.answer(t, "username", "dave", "password", "dave-pw")
		requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
		require.Equal(t, "otp", r.body["challenge"].(map[string]any)["type"], "after the delay the right password goes through")
	})

	t.Run("many addresses", func(t *testing.T) {
		ds := fedtest.Start(t, fedtest.Options{})
		in, clock := lockoutInstance(t, func(c *config.Config) {
			c.Downstreams = append(c.Downstreams, downstreamOf("ds1", ds.URL, as1ClientID, newFedKey(t, "ds1-key")))
			c.Routes = append(c.Routes, config.Route{Downstream: "ds1", Clients: []string{"c2"}})
		})
		addr := 0
		fresh := func() device { addr++; return deviceAt(in, "127.0.1."+itoa(addr)) }
		for range 6 {
			requireWrong(t, fresh().answer(t, "username", "erin", "password", "guess"))
		}
		for _, want := range []delayStep{{0, "1"}, {time.Second, "2"}, {2 * time.Second, "4"}} {
			if want.wait > 0 {
				clock.Advance(want.wait)
				requireWrong(t, fresh().answer(t, "username", "erin", "password", "guess"))
			}
			desc := requireLockoutSlowDown(t, fresh().answer(t, "username", "erin", "password", "guess"), want.next)
			require.Contains(t, desc, "or send your one-time code with your password")
			requireLockoutSlowDown(t, fresh().answer(t, "username", "erin", "password", "erin-pw"), want.next)
		}
		// The same spray on dave, who has a one-time code: his password
		// alone waits, his password with his code signs him in.
		for range 6 {
			requireWrong(t, fresh().answer(t, "username", "dave", "password", "guess"))
		}
		owner := fresh()
		requireLockoutSlowDown(t, owner.answer(t, "username", "dave", "password", "dave-pw"), "1")
		s, pk := owner.start(t)
		requireSignedIn(t, in, owner.follow(t, s, "username", "dave", "password", "dave-pw", "otp", totpAt(t, clock)), pk, "pwd", "otp")

		// Federation never touches the counters: while erin's password
		// waits, her sign-in at her downstream goes through.
		requireLockoutSlowDown(t, fresh().answer(t, "username", "erin", "password", "erin-pw"), "4")
		fed, fpk := in.initial(t, "c2", nil)
		requireFederate(t, fed)
		got := respondHop(t, fed, url.Values{"authorization_code": {atDownstream(t, fed)}})
		require.Equal(t, http.StatusOK, got.status, got.raw)
		tr := in.redeem(t, "c2", got.str("authorization_code"), fpk)
		require.Equal(t, http.StatusOK, tr.status, tr.raw)

		clock.Advance(4 * time.Second)
		s, pk = fresh().start(t)
		requireSignedIn(t, in, deviceAt(in, "127.0.1."+itoa(addr)).follow(t, s, "username", "erin", "password", "erin-pw"), pk, "pwd")
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

var sessionValue = regexp.MustCompile(`"auth_session":"[A-Za-z0-9_-]{64}"`)

// comparable is an answer with what may differ between two accounts
// removed: the auth_session values, the request id, the date.
func comparable(r reply) (int, http.Header, string) {
	h := r.header.Clone()
	h.Del("X-Request-Id")
	h.Del("Date")
	return r.status, h, sessionValue.ReplaceAllString(r.raw, `"auth_session":"…"`)
}

// TestLockout_UnknownAndKnownAccountsAnswerIdentically: at every stage
// of the lockout — free failures, the first delay, the account-wide
// delay, the answers with a one-time code — an unknown username gets
// byte for byte the answer an existing one (with a TOTP secret) gets:
// the same status, headers, Retry-After and body but for auth_session
// values, for the same number of bcrypt comparisons (counted, not
// timed; none at all for a refusal). A right password with a wrong code
// is told apart from nothing (SECURITY-RESULTS.md LO03).
func TestLockout_UnknownAndKnownAccountsAnswerIdentically(t *testing.T) {
	in, clock := lockoutInstance(t)
	code := func() string { return totpAt(t, clock) }
	type step struct {
		stage string
		from  string
		// known and unknown answer the same challenge (dave's right
		// password where a right one matters: only he has one).
		known, unknown []string
		status         int
		checks         int64
	}
	wrong := []string{"password", "guess"}
	steps := []step{
		{"free failure", "127.0.2.1", wrong, wrong, 403, 1},
		{"free failure", "127.0.2.1", wrong, wrong, 403, 1},
		{"free failure", "127.0.2.1", wrong, wrong, 403, 1},
		{"first delay", "127.0.2.1", wrong, wrong, 429, 0},
		{"first delay, right password", "127.0.2.1", []string{"password", "dave-pw"}, wrong, 429, 0},
		{"first delay, with a code", "127.0.2.1", []string{"password", "dave-pw", "otp", "123456"}, []string{"password", "guess", "otp", "123456"}, 429, 0},
		{"account failures", "127.0.2.2", wrong, wrong, 403, 1},
		{"account failures", "127.0.2.3", wrong, wrong, 403, 1},
		{"account failures", "127.0.2.4", wrong, wrong, 403, 1},
		{"account-wide delay", "127.0.2.5", wrong, wrong, 429, 0},
		{"account-wide delay, right password", "127.0.2.5", []string{"password", "dave-pw"}, wrong, 429, 0},
		{"account-wide delay, wrong password with a code", "127.0.2.6", []string{"password", "guess", "otp", "000000"}, []string{"password", "guess", "otp", "000000"}, 403, 1},
		{"account-wide delay, right password with a wrong code", "127.0.2.7", []string{"password", "dave-pw", "otp", "000000"}, []string{"password", "dave-pw", "otp", "000000"}, 403, 1},
		{"account-wide delay, a right code with a wrong password", "127.0.2.8", []string{"password", "guess", "otp", ""}, []string{"password", "guess", "otp", ""}, 403, 1},
		{"account-wide delay, grown", "127.0.2.9", wrong, wrong, 429, 0},
	}
	for i, st := range steps {
		d := deviceAt(in, st.from)
		var got [2]reply
		var checks [2]int64
		for j, user := range []string{"dave", "nobody"} {
			kv := st.known
			if j == 1 {
				kv = st.unknown
			}
			kv = append([]string{"username", user}, kv...)
			for k := range kv {
				if kv[k] == "" { // the current code
					kv[k] = code()
				}
			}
			s, _ := d.start(t)
			before := server.PasswordChecks(in.Server)
			got[j] = d.follow(t, s, kv...)
			checks[j] = server.PasswordChecks(in.Server) - before
		}
		require.Equal(t, st.status, got[0].status, "step %d (%s): %s", i, st.stage, got[0].raw)
		ks, kh, kb := comparable(got[0])
		us, uh, ub := comparable(got[1])
		require.Equal(t, ks, us, "step %d (%s): status", i, st.stage)
		require.Equal(t, kh, uh, "step %d (%s): headers", i, st.stage)
		require.Equal(t, kb, ub, "step %d (%s): body", i, st.stage)
		require.Equal(t, st.checks, checks[0], "step %d (%s): bcrypt comparisons for the known account", i, st.stage)
		require.Equal(t, checks[0], checks[1], "step %d (%s): bcrypt comparisons", i, st.stage)
	}
}

// TestLockout_SuccessResets: a successful sign-in clears the account's
// counter and the counter of the address it came from, on both doors
// (the password alone, the password with a code), so that the owner's
// own mistakes never add up across days (SECURITY-RESULTS.md LO04).
func TestLockout_SuccessResets(t *testing.T) {
	in, clock := lockoutInstance(t)
	home := deviceAt(in, "127.0.3.1")
	for range 2 {
		requireWrong(t, home.answer(t, "username", "erin", "password", "typo"))
	}
	s, pk := home.start(t)
	requireSignedIn(t, in, home.follow(t, s, "username", "erin", "password", "erin-pw"), pk, "pwd")
	for range 3 {
		requireWrong(t, home.answer(t, "username", "erin", "password", "typo"))
	}
	requireLockoutSlowDown(t, home.answer(t, "username", "erin", "password", "typo"), "1")

	// The account-wide counter: cleared by the password-with-code door.
	for i := range 6 {
		requireWrong(t, deviceAt(in, "127.0.3."+itoa(10+i)).answer(t, "username", "dave", "password", "guess"))
	}
	requireLockoutSlowDown(t, deviceAt(in, "127.0.3.20").answer(t, "username", "dave", "password", "dave-pw"), "1")
	owner := deviceAt(in, "127.0.3.21")
	s, pk = owner.start(t)
	requireSignedIn(t, in, owner.follow(t, s, "username", "dave", "password", "dave-pw", "otp", totpAt(t, clock)), pk, "pwd", "otp")
	r := deviceAt(in, "127.0.3.22").answer(t, "username", "dave", "password", "dave-pw")
	requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
	require.Equal(t, "otp", r.body["challenge"].(map[string]any)["type"])
}

// browserSession pushes demo-partner's request and returns the sign-in
// page's auth_session.
func browserSession(t *testing.T, in instance) string {
	t.Helper()
	p := pushAs(t, in, "demo-partner", partnerSecret, "https://partner.example/cb")
	return requireFormPage(t, getURL(t, in.authorizeURL("demo-partner", p.requestURI)), "username", "password")
}

// TestLockout_RefusalBurnsNothing: on the native endpoint and on our
// browser pages, a refused answer checks nothing, counts no failure on
// the session (more refusals than max_failures leave it alive) and
// keeps its auth_session good: after the wait the same value takes a
// wrong answer as a fourth failure, and then the right one
// (SECURITY-RESULTS.md LO05).
func TestLockout_RefusalBurnsNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		start  func(t *testing.T, in instance) string
		answer func(t *testing.T, in instance, s, pw string) reply
		// next is the session value after a checked wrong answer.
		next     func(t *testing.T, r reply) string
		refused  func(t *testing.T, r reply, s string)
		signedIn func(t *testing.T, r reply)
	}{
		{
			name:  "native",
			start: func(t *testing.T, in instance) string { s, _ := deviceAt(in, "127.0.4.1").start(t); return s },
			answer: func(t *testing.T, in instance, s, pw string) reply {
				return deviceAt(in, "127.0.4.1").follow(t, s, "username", "erin", "password", pw)
			},
			next: func(t *testing.T, r reply) string { requireWrong(t, r); return r.str("auth_session") },
			refused: func(t *testing.T, r reply, s string) {
				requireLockoutSlowDown(t, r, "1")
				require.Equal(t, s, r.str("auth_session"), "the value sent, still good")
			},
			signedIn: func(t *testing.T, r reply) {
				require.Equal(t, http.StatusOK, r.status, r.raw)
				require.NotEmpty(t, r.str("authorization_code"))
			},
		},
		{
			name:  "browser",
			start: browserSession,
			answer: func(t *testing.T, in instance, s, pw string) reply {
				return in.submit(t, url.Values{"auth_session": {s}, "username": {"erin"}, "password": {pw}})
			},
			next: func(t *testing.T, r reply) string {
				s := requireFormPage(t, r, "username", "password")
				require.Contains(t, r.raw, "The username or password is not correct.")
				return s
			},
			refused: func(t *testing.T, r reply, _ string) {
				require.Equal(t, http.StatusTooManyRequests, r.status, r.raw)
				require.Equal(t, "1", r.header.Get("Retry-After"))
				require.Contains(t, r.raw, "try again in 1 s")
				requirePageHeaders(t, r)
			},
			signedIn: func(t *testing.T, r reply) {
				require.Equal(t, http.StatusSeeOther, r.status, r.raw)
				require.Contains(t, r.header.Get("Location"), "code=")
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, clock := lockoutInstance(t)
			s := tc.start(t, in)
			for range 3 {
				s = tc.next(t, tc.answer(t, in, s, "typo"))
			}
			for range 2 * in.Config.Limits.MaxFailures {
				before := server.PasswordChecks(in.Server)
				tc.refused(t, tc.answer(t, in, s, "erin-pw"), s)
				require.Equal(t, before, server.PasswordChecks(in.Server), "a refusal compares no hash")
			}
			clock.Advance(time.Second)
			s = tc.next(t, tc.answer(t, in, s, "typo")) // the session's fourth failure: it survives
			clock.Advance(2 * time.Second)
			tc.signedIn(t, tc.answer(t, in, s, "erin-pw"))
		})
	}
}

// TestLockout_OTPCountedAcrossSessions: wrong one-time codes count per
// account across sessions, on the otp challenge and on the password's
// otp door alike, so that a phished password does not buy unlimited
// code guesses: past the free ones, the otp challenge is 429 (the right
// code too, its session kept for after the wait), and a code sent with
// the password is silently wrong (SECURITY-RESULTS.md LO06).
func TestLockout_OTPCountedAcrossSessions(t *testing.T) {
	in, clock := lockoutInstance(t)
	phisher := deviceAt(in, "127.0.5.1")
	otpChallenge := func() string {
		r := phisher.answer(t, "username", "dave", "password", "dave-pw")
		requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
		require.Equal(t, "otp", r.body["challenge"].(map[string]any)["type"])
		return r.str("auth_session")
	}
	for range 3 {
		r := phisher.follow(t, otpChallenge(), "otp", "000000")
		requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
		require.Equal(t, "The one-time code is not correct.", r.str("error_description"))
	}
	s := otpChallenge()
	desc := requireLockoutSlowDown(t, phisher.follow(t, s, "otp", totpAt(t, clock)), "1")
	require.Contains(t, desc, "one-time codes")
	clock.Advance(time.Second)
	r := phisher.follow(t, s, "otp", totpAt(t, clock))
	require.Equal(t, http.StatusOK, r.status, r.raw)

	// The password's otp door counts on the same counter: three wrong
	// codes with the right password (from three addresses, under their
	// own free failures), then the right code there is just wrong, and
	// the otp challenge waits.
	clock.Advance(30 * time.Second) // a fresh code
	for i := range 3 {
		r := deviceAt(in, "127.0.5."+itoa(10+i)).answer(t, "username", "dave", "password", "dave-pw", "otp", "000000")
		requireWrong(t, r)
	}
	requireWrong(t, deviceAt(in, "127.0.5.20").answer(t, "username", "dave", "password", "dave-pw", "otp", totpAt(t, clock)))
	requireLockoutSlowDown(t, phisher.follow(t, otpChallenge(), "otp", totpAt(t, clock)), "2")
}

// TestPasswordGate_FloodGets503NotStarvation: with one password check at
// a time and a short queue, a flood of wrong passwords gets some 503
// temporarily_unavailable with Retry-After (its sessions unchanged:
// each works afterwards), while metadata, JWKS and token refreshes keep
// answering (SECURITY-RESULTS.md LO07).
func TestPasswordGate_FloodGets503NotStarvation(t *testing.T) {
	in := wrap(start(t, nil, func(c *config.Config) {
		// alice keeps the demo's cost-10 hash, so that a check holds the
		// one slot long enough for the flood to queue behind it.
		c.Limits.PasswordConcurrency = 1
		c.Limits.PasswordQueueTimeout = time.Millisecond
	}))
	code, pk := in.signIn(t, "demo-app", "carol", "carol-pw", "")
	tok := in.redeem(t, "demo-app", code, pk)
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	refresh := tok.str("refresh_token")

	const workers = 6
	done := make(chan struct{})
	var mu sync.Mutex
	var refused []string
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				r, err := tryPost(in.native(), url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"},
					"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}})
				if err != nil || r.status != http.StatusForbidden {
					continue
				}
				s := r.str("auth_session")
				// Another unknown username each time: no account is
				// delayed, every answer needs a comparison.
				a, err := tryPost(in.native(), url.Values{"auth_session": {s}, "username": {"flood-" + itoa(w) + "-" + itoa(n)}, "password": {"x"}})
				if err != nil {
					continue
				}
				mu.Lock()
				statuses[a.status]++
				if a.status == http.StatusServiceUnavailable {
					requireUnavailableBody(t, a)
					refused = append(refused, s)
				}
				mu.Unlock()
			}
		}()
	}
	for deadline := time.Now().Add(time.Minute); ; {
		mu.Lock()
		n := len(refused)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // waiting for the flood to fill the queue, not timing it
	}
	// Meanwhile, with the queue full, the endpoints that never check a
	// password answer.
	for range 3 {
		require.Equal(t, http.StatusOK, getURL(t, in.URL+"/.well-known/oauth-authorization-server").status)
		require.Equal(t, http.StatusOK, getURL(t, in.URL+"/jwks.json").status)
		rf := post(t, in.token(), url.Values{"grant_type": {"refresh_token"}, "client_id": {"demo-app"}, "refresh_token": {refresh}})
		require.Equal(t, http.StatusOK, rf.status, rf.raw)
		refresh = rf.str("refresh_token") // demo-app's tokens rotate
	}
	close(done)
	wg.Wait()
	require.NotEmpty(t, refused, "a flood past the queue gets 503: %v", statuses)
	require.Positive(t, statuses[http.StatusForbidden], "checked answers are served too: %v", statuses)
	// A refused answer spent nothing: the session takes an answer now.
	for _, s := range refused[:min(3, len(refused))] {
		r := post(t, in.native(), url.Values{"auth_session": {s}, "username": {"flood-later"}, "password": {"x"}})
		requireWrong(t, r)
	}
}

// requireUnavailableBody checks a 503 of the gate from the flood's
// goroutines (Errorf, never FailNow, off the test's goroutine).
func requireUnavailableBody(t *testing.T, r reply) {
	if r.str("error") != "temporarily_unavailable" || r.header.Get("Retry-After") != "1" || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("503 of the password gate: %d %v %s", r.status, r.header, r.raw)
	}
}

// TestLockout_SharedAcrossInstances: two instances sharing one
// redis-server share the counters: failures on one delay answers on the
// other, per (account, address) and per account, and a success on one
// clears them for both. The counters' keys are digests with a TTL
// (SECURITY-RESULTS.md LO08).
func TestLockout_SharedAcrossInstances(t *testing.T) {
	rs := redistest.Start(t)
	clock := &servertest.Clock{}
	secret := []byte("0123456789abcdef0123456789abcdef")
	startOn := func() instance {
		return wrap(servertest.Start(t, servertest.Options{Store: redisStore(t, rs.URL()), Clock: clock, HMACSecret: secret, Configure: func(c *config.Config) {
			testConfig(c)
			lockoutConfig(c)
		}}))
	}
	a, b := startOn(), startOn()
	for range 3 {
		requireWrong(t, deviceAt(a, "127.0.6.1").answer(t, "username", "dave", "password", "guess"))
	}
	requireLockoutSlowDown(t, deviceAt(b, "127.0.6.1").answer(t, "username", "dave", "password", "guess"), "1")
	for i := range 3 {
		in := a
		if i%2 == 1 {
			in = b
		}
		requireWrong(t, deviceAt(in, "127.0.6."+itoa(10+i)).answer(t, "username", "dave", "password", "guess"))
	}
	for _, in := range []instance{a, b} {
		desc := requireLockoutSlowDown(t, deviceAt(in, "127.0.6.20").answer(t, "username", "dave", "password", "dave-pw"), "1")
		require.Contains(t, desc, "one-time code")
	}
	owner := deviceAt(b, "127.0.6.21")
	s, pk := owner.start(t)
	requireSignedIn(t, b, owner.follow(t, s, "username", "dave", "password", "dave-pw", "otp", totpAt(t, clock)), pk, "pwd", "otp")
	r := deviceAt(a, "127.0.6.22").answer(t, "username", "dave", "password", "dave-pw")
	requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")

	rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { _ = rc.Close() })
	keys, err := rc.Keys(t.Context(), "fedas:fail:*").Result() // a test on its own server: never on a request path
	require.NoError(t, err)
	require.NotEmpty(t, keys)
	for _, key := range keys {
		for _, plain := range []string{"dave", "127.0.6"} {
			require.NotContains(t, key, plain, "counter keys are digests")
		}
		ttl, err := rc.PTTL(t.Context(), key).Result()
		require.NoError(t, err)
		require.Positive(t, ttl, "key %s has a TTL", key)
		require.LessOrEqual(t, ttl, time.Hour, "key %s lives at most the window", key)
	}
}
