package server_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/storage/redistest"
)

// keyRule is one Redis key pattern fedas writes: the pattern after the
// prefix, its row in docs/redis.md "Keys", and the longest TTL a key of
// it may have under the configuration (0: none, the policy keys, bounded
// by retention instead).
type keyRule struct {
	pattern *regexp.Regexp
	doc     string
	maxTTL  func(c *config.Config) time.Duration
	// seen: the audit's flows must produce at least one such key.
	seen bool
}

func lifetime(f func(l config.Lifetimes) time.Duration) func(c *config.Config) time.Duration {
	return func(c *config.Config) time.Duration { return f(c.Lifetimes) }
}

func fixed(d time.Duration) func(*config.Config) time.Duration {
	return func(*config.Config) time.Duration { return d }
}

// keyRules is every key pattern of the Redis backend with its bound: a
// key matching none fails the audit (an undocumented key), and so does a
// rule whose doc row docs/redis.md lacks. A new kind of key gets a row
// here and in docs/redis.md.
var keyRules = []keyRule{
	{regexp.MustCompile(`^tok:\{[^{}]+\}:code$`), "`P tok:{<signature>}:code`", lifetime(func(l config.Lifetimes) time.Duration { return l.AuthorizationCode }), true},
	{regexp.MustCompile(`^tok:\{[^{}]+\}:pkce$`), "`P tok:{<signature>}:pkce`", lifetime(func(l config.Lifetimes) time.Duration { return l.AuthorizationCode }), false},
	{regexp.MustCompile(`^tok:\{[^{}]+\}:access$`), "`P tok:{<signature>}:access`", lifetime(func(l config.Lifetimes) time.Duration { return l.AccessToken }), true},
	{regexp.MustCompile(`^tok:\{[^{}]+\}:refresh$`), "`P tok:{<signature>}:refresh`", lifetime(func(l config.Lifetimes) time.Duration { return l.RefreshToken }), true},
	{regexp.MustCompile(`^tok:\{urn:ietf:params:oauth:request_uri:[^{}]+\}:par$`), "`P tok:{<request_uri>}:par`", lifetime(func(l config.Lifetimes) time.Duration { return l.PushedRequest }), true},
	{regexp.MustCompile(`^tok:\{urn:ietf:params:oauth:request_uri:[^{}]+\}:push-app$`), "`P tok:{<request_uri>}:push-app`", lifetime(func(l config.Lifetimes) time.Duration { return l.PushedRequest }), true},
	{regexp.MustCompile(`^tok:\{urn:ietf:params:oauth:request_uri:[^{}]+\}:push-web$`), "`P tok:{<request_uri>}:push-web`", lifetime(func(l config.Lifetimes) time.Duration { return l.PushedRequest }), true},
	{regexp.MustCompile(`^req:\{[^{}]+\}:access$`), "`P req:{<request id>}:access`", lifetime(func(l config.Lifetimes) time.Duration { return l.AccessToken }), true},
	{regexp.MustCompile(`^req:\{[^{}]+\}:refresh$`), "`P req:{<request id>}:refresh`", lifetime(func(l config.Lifetimes) time.Duration { return l.RefreshToken }), true},
	{regexp.MustCompile(`^as:\{[A-Za-z0-9_-]{22}\}$`), "`P as:{<session id>}`", lifetime(func(l config.Lifetimes) time.Duration { return l.AuthSession }), true},
	// DPoP proof jti: iat within 60 s back and 10 s ahead (dpop.Verifier).
	{regexp.MustCompile(`^used:\{dpop:[A-Za-z0-9_-]{43}\}$`), "`P used:{dpop:<digest>}`", fixed(70 * time.Second), true},
	// Client assertion jti: until exp, at most an hour ahead (clientauth.go).
	{regexp.MustCompile(`^used:\{jti:[0-9a-f]{64}\}$`), "`P used:{jti:<digest>}`", fixed(time.Hour + 11*time.Second), true},
	// A used TOTP counter: until the code's window has passed.
	{regexp.MustCompile(`^used:\{totp:[^{}]+:[0-9]+\}$`), "`P used:{totp:<subject>:<counter>}`", fixed(150 * time.Second), true},
	{regexp.MustCompile(`^live:\{c\.[A-Za-z0-9_-]{22}\}$`), "`P live:{c.<digest>}`", lifetime(func(l config.Lifetimes) time.Duration { return l.AuthSession }), true},
	{regexp.MustCompile(`^live:\{ip\.[A-Za-z0-9_-]{22}\}$`), "`P live:{ip.<digest>}`", lifetime(func(l config.Lifetimes) time.Duration { return l.AuthSession }), true},
	// The reach per-user task quota (reach/deliver): live tasks until
	// their expiry, the 10-per-10-min window until its TAT passes.
	{regexp.MustCompile(`^live:\{ru\.[A-Za-z0-9_-]{22}\}$`), "`P live:{ru.<user digest>}`", fixed(10 * time.Minute), false},
	{regexp.MustCompile(`^rl:\{ru\.[A-Za-z0-9_-]{22}\}$`), "`P rl:{ru.<user digest>}`", fixed(10 * time.Minute), false},
	// A rate limit's TAT: at most burst × period / rate ahead (60 s with
	// the default rules).
	{regexp.MustCompile(`^rl:\{[^{}]+\}$`), "`P rl:{<key>}`", fixed(2 * time.Minute), true},
	// OpenID4VP transactions of the internal verifier: at most
	// verifier.MaxTTL (dc/verifier), whatever the flow asks.
	{regexp.MustCompile(`^dctx:\{[A-Za-z0-9_-]{22}\}$`), "`P dctx:{<transaction id>}`", fixed(10 * time.Minute), false},
	{regexp.MustCompile(`^dcreq:\{[A-Za-z0-9_-]{22}\}$`), "`P dcreq:{<request id>}`", fixed(10 * time.Minute), false},
	// The reach core (storage.ReachStore; not yet written by server flows).
	{regexp.MustCompile(`^reach:\{d:[A-Za-z0-9_-]{22}\}$`), "`P reach:{d:<device id>}`", fixed(90 * 24 * time.Hour), false},
	{regexp.MustCompile(`^reach:\{d:[A-Za-z0-9_-]{22}\}:inbox$`), "`P reach:{d:<device id>}:inbox`", fixed(24 * time.Hour), false},
	{regexp.MustCompile(`^reach:\{d:[A-Za-z0-9_-]{22}\}:presence$`), "`P reach:{d:<device id>}:presence`", fixed(45 * time.Second), false},
	{regexp.MustCompile(`^reach:jkt:\{[A-Za-z0-9_-]{43}\}$`), "`P reach:jkt:{<thumbprint>}`", fixed(90 * 24 * time.Hour), false},
	{regexp.MustCompile(`^reach:u:\{[A-Za-z0-9_-]{22}\}$`), "`P reach:u:{<user digest>}`", fixed(90 * 24 * time.Hour), false},
	{regexp.MustCompile(`^reach:\{t:[A-Za-z0-9_-]{22}\}$`), "`P reach:{t:<task id>}`", fixed(11 * time.Minute), false},
	{regexp.MustCompile(`^reach:ref:\{[A-Za-z0-9_-]{22}\}$`), "`P reach:ref:{<ref>}`", fixed(11 * time.Minute), false},
	{regexp.MustCompile(`^policy:\{p\}:(head|versions|docs|audit)$`), "`P policy:{p}:head`", nil, false},
}

// ttlSlack absorbs the time between a key's write and the audit.
const ttlSlack = 5 * time.Second

// CP08 (J04): after every kind of flow on Redis — local sign-in with
// password and TOTP bound to a DPoP key, token, refresh, introspection,
// revocation; a federated sign-in (two fedas instances, private_key_jwt
// client assertions); a client's PAR signed in on our browser pages; our
// app's deep link, completed and left open; the browser fallback of a
// deep link; open sessions — every key of both servers matches a
// documented pattern (keyRules, docs/redis.md "Keys") and has a TTL > 0
// and at most its pattern's bound; only the policy keys have none.
func TestRedis_EveryKeyHasBoundedTTL(t *testing.T) {
	rs1, rs2 := redistest.Start(t), redistest.Start(t)
	as1, as2 := pair(t, redisStore(t, rs1.URL()), redisStore(t, rs2.URL()), func(c *config.Config) {
		appSecConfig(c)
		c.Routes = append([]config.Route{{Local: true, Clients: []string{"c2", "bank-app"}}}, c.Routes...)
		for i := range c.Clients {
			if c.Clients[i].ID == "demo-app" {
				c.Clients[i].RedirectURIs = []string{"https://app.example/web-cb"}
			}
		}
	}, nil)
	ctx := context.Background()

	// Local: bob with password and TOTP, DPoP-bound; token, refresh,
	// introspection, revocation.
	c := as1.Client(t, "c2")
	c.DPoP = dpopKey(t)
	code, pk, err := c.Authorize(ctx, url.Values{"scope": {"openid offline_access"}}, userUI("bob", "builder", bobTOTP))
	require.NoError(t, err)
	tok, err := c.Exchange(ctx, code, pk)
	require.NoError(t, err)
	require.Equal(t, "DPoP", tok.TokenType)
	tok, err = c.Refresh(ctx, tok.RefreshToken)
	require.NoError(t, err)
	require.Equal(t, true, as1.introspect(t, tok.AccessToken).body["active"])
	other, opk := as1.signIn(t, "c2", "carol", "carol-pw", "")
	otok := as1.redeem(t, "c2", other, opk)
	require.Equal(t, http.StatusOK, otok.status, otok.raw)
	require.Equal(t, http.StatusOK, post(t, as1.revoke(), url.Values{"client_id": {"c2"}, "token": {otok.str("refresh_token")}}).status)

	// Federated: demo-app at AS1 → AS2 (carol), token at AS1.
	fc := as1.Client(t, "demo-app")
	code, pk, err = fc.Authorize(ctx, url.Values{"scope": {"openid offline_access"}}, answerAll("carol@as2.example"))
	require.NoError(t, err)
	_, err = fc.Exchange(ctx, code, pk)
	require.NoError(t, err)

	// A client's PAR, signed in on our browser pages, redeemed; and one
	// left pushed.
	p := pushAs(t, as1, "demo-partner", partnerSecret, partnerCB)
	s := requireFormPage(t, getURL(t, as1.authorizeURL("demo-partner", p.requestURI)), "username", "password")
	bcode := requireAuthzResponse(t, as1, as1.carolSignsIn(t, s), partnerCB, p.state)
	require.Equal(t, http.StatusOK, as1.redeemAsPartner(t, bcode, p.pk).status)
	pushAs(t, as1, "demo-partner", partnerSecret, partnerCB)

	// Our app: a deep link completed by the app, one left open, and one
	// whose device reported no app (the browser fallback's push).
	var links []string
	ac := as1.Client(t, "demo-app")
	ac.OpenApp = simulatedApp(t, as1, &links)
	code, pk, err = ac.Authorize(ctx, url.Values{"scope": {"openid"}, "native_callback_uri": {"https://app.example/cb"}}, userUI("x", "y", ""))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, as1.redeem(t, "demo-app", code, pk).status)
	requireDeepLink(t, answerOf(as1.localDeepLink(t, nil)), "demo-app")
	r, _ := as1.localDeepLink(t, nil)
	web := post(t, as1.native(), url.Values{"auth_session": {r.str("auth_session")}, "deep_link_unavailable": {"true"}})
	requireOAuthError(t, web, http.StatusForbidden, "redirect_to_web")
	require.NotEmpty(t, web.str("request_uri"))

	// A local sign-in at AS2 and a session left open at each.
	local, lpk := as2.signIn(t, "demo-app", "carol", "carol-pw", "")
	require.Equal(t, http.StatusOK, as2.redeem(t, "demo-app", local, lpk).status)
	requireChallenge(t, answerOf(as1.initial(t, "c2", nil)))
	as2.initial(t, "demo-app", nil)

	doc, err := os.ReadFile("../docs/redis.md")
	require.NoError(t, err)
	matched := make([]int, len(keyRules))
	for _, srv := range []struct {
		rs  *redistest.Server
		cfg *config.Config
	}{{rs1, as1.Config}, {rs2, as2.Config}} {
		keys, err := srv.rs.Do("KEYS", "*") // test-only: the server never scans
		require.NoError(t, err)
		require.NotEmpty(t, keys)
		for _, k := range strings.Fields(keys) {
			rest, ok := strings.CutPrefix(k, "fedas:")
			require.True(t, ok, "key %q outside the prefix", k)
			i := ruleOf(rest)
			require.GreaterOrEqual(t, i, 0, "key %q matches no documented pattern: add it to keyRules and docs/redis.md \"Keys\"", k)
			matched[i]++
			ttl, err := srv.rs.Do("PTTL", k)
			require.NoError(t, err)
			ms, err := strconv.ParseInt(ttl, 10, 64)
			require.NoError(t, err)
			rule := keyRules[i]
			if rule.maxTTL == nil {
				require.EqualValues(t, -1, ms, "policy key %q: bounded by retention", k)
				continue
			}
			if ms == -2 || ms == 0 {
				continue // expired between KEYS and PTTL (a rate limit's key may live milliseconds)
			}
			require.Positive(t, ms, "key %q has no TTL", k)
			require.LessOrEqual(t, time.Duration(ms)*time.Millisecond, rule.maxTTL(srv.cfg)+ttlSlack, "key %q (%s)", k, rule.doc)
		}
	}
	for i, rule := range keyRules {
		t.Logf("%-40s %d keys", rule.doc, matched[i])
		if matched[i] > 0 || rule.seen {
			require.Contains(t, string(doc), rule.doc, "docs/redis.md \"Keys\" must list %s", rule.doc)
		}
		if rule.seen {
			require.Positive(t, matched[i], "the flows wrote no key %s: the audit no longer covers it", rule.doc)
		}
	}
}

// ruleOf is the index of the rule key (without the prefix) matches, or -1.
func ruleOf(key string) int {
	for i, r := range keyRules {
		if r.pattern.MatchString(key) {
			return i
		}
	}
	return -1
}
