package ratelimit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/ratelimit"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
	"github.com/fedas/fedas/storage/redisstore"
	"github.com/fedas/fedas/storage/redistest"
)

var salt = []byte("0123456789abcdef0123456789abcdef")

func rule(ep, scope string, rate int, period time.Duration, burst int) config.RateRule {
	return config.RateRule{Endpoint: ep, Scope: scope, Rate: rate, Period: period, Burst: burst}
}

func memStore(t testing.TB) storage.RateLimiter {
	m := memory.New()
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func newLimiter(t testing.TB, st storage.RateLimiter, rules ...config.RateRule) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.New(rules, st, salt)
	require.NoError(t, err)
	return l
}

// check calls Check and returns the refused scope, "" when allowed.
func check(t testing.TB, l *ratelimit.Limiter, ep string, s ratelimit.Subject, now time.Time) string {
	t.Helper()
	ref, err := l.Check(context.Background(), ep, s, now)
	require.NoError(t, err)
	if ref == nil {
		return ""
	}
	require.Positive(t, ref.RetryAfter)
	return ref.Scope
}

// TestCheck_NarrowestFirst: scopes are checked session, account, ip,
// client, whatever the order of the rules, and the first refusal stops
// the check: a request its address's limit refuses spends nothing of the
// client's (SECURITY-RESULTS.md RL05).
func TestCheck_NarrowestFirst(t *testing.T) {
	now := time.Now()
	l := newLimiter(t, memStore(t),
		rule(config.RateToken, config.ScopeClient, 1, time.Hour, 2),
		rule(config.RateToken, config.ScopeIP, 1, time.Hour, 1))
	require.Equal(t, []string{config.ScopeIP, config.ScopeClient}, l.Scopes(config.RateToken))
	a := ratelimit.Subject{IP: "192.0.2.1", Client: "c"}
	require.Empty(t, check(t, l, config.RateToken, a, now))
	for range 5 {
		require.Equal(t, config.ScopeIP, check(t, l, config.RateToken, a, now))
	}
	// The five refusals spent nothing of c's budget of two.
	require.Empty(t, check(t, l, config.RateToken, ratelimit.Subject{IP: "192.0.2.2", Client: "c"}, now))
	require.Equal(t, config.ScopeClient, check(t, l, config.RateToken, ratelimit.Subject{IP: "192.0.2.3", Client: "c"}, now))

	order := newLimiter(t, memStore(t),
		rule(config.RateNativeFollowUp, config.ScopeIP, 1, time.Hour, 1),
		rule(config.RateNativeFollowUp, config.ScopeAccount, 1, time.Hour, 1),
		rule(config.RateNativeFollowUp, config.ScopeSession, 1, time.Hour, 1))
	require.Equal(t, []string{config.ScopeSession, config.ScopeAccount, config.ScopeIP}, order.Scopes(config.RateNativeFollowUp))
}

// TestCheck_MissingValuesSkipped: a scope the request does not carry is
// not checked (a follow-up that names no account spends no account's
// budget), and an endpoint without rules is not limited.
func TestCheck_MissingValuesSkipped(t *testing.T) {
	now := time.Now()
	l := newLimiter(t, memStore(t),
		rule(config.RateNativeFollowUp, config.ScopeAccount, 1, time.Hour, 1),
		rule(config.RateNativeFollowUp, config.ScopeSession, 1, time.Minute, 100))
	for range 10 {
		require.Empty(t, check(t, l, config.RateNativeFollowUp, ratelimit.Subject{Session: "s"}, now))
		require.Empty(t, check(t, l, config.RateToken, ratelimit.Subject{IP: "192.0.2.1"}, now))
	}
	var none *ratelimit.Limiter
	require.Empty(t, check(t, none, config.RateToken, ratelimit.Subject{IP: "192.0.2.1"}, now))
	l, err := ratelimit.New(nil, memStore(t), salt)
	require.NoError(t, err)
	require.Nil(t, l)
}

// TestCheck_AccountShared: one account has one budget for credential
// answers across endpoints, whatever its case and spacing; what a prompt
// names has a budget of its own.
func TestCheck_AccountShared(t *testing.T) {
	now := time.Now()
	l := newLimiter(t, memStore(t),
		rule(config.RateNativeInitial, config.ScopeAccount, 1, time.Hour, 3),
		rule(config.RateNativeFollowUp, config.ScopeAccount, 1, time.Hour, 3),
		rule(config.RateBrowserSubmit, config.ScopeAccount, 1, time.Hour, 3))
	require.Empty(t, check(t, l, config.RateNativeInitial, ratelimit.Subject{Account: "Bob@Example.com"}, now))
	require.Empty(t, check(t, l, config.RateNativeFollowUp, ratelimit.Subject{Account: " bob@example.com"}, now))
	require.Empty(t, check(t, l, config.RateBrowserSubmit, ratelimit.Subject{Account: "BOB@EXAMPLE.COM "}, now))
	require.Equal(t, config.ScopeAccount, check(t, l, config.RateNativeFollowUp, ratelimit.Subject{Account: "bob@example.com"}, now))
	// The prompt budget of the same name is untouched.
	require.Empty(t, check(t, l, config.RateNativeFollowUp, ratelimit.Subject{PromptAccount: "bob@example.com"}, now))
	// Another account is untouched.
	require.Empty(t, check(t, l, config.RateNativeFollowUp, ratelimit.Subject{Account: "alice"}, now))
}

// TestCheck_IPv6By64: addresses of one IPv6 /64 share a budget; another
// /64 and an IPv4-mapped address are apart; IPv4 is per address.
func TestCheck_IPv6By64(t *testing.T) {
	now := time.Now()
	l := newLimiter(t, memStore(t), rule(config.RateToken, config.ScopeIP, 1, time.Hour, 1))
	ip := func(a string) ratelimit.Subject { return ratelimit.Subject{IP: a} }
	require.Empty(t, check(t, l, config.RateToken, ip("2001:db8:1:2::1"), now))
	require.Equal(t, config.ScopeIP, check(t, l, config.RateToken, ip("2001:db8:1:2:ffff:ffff:ffff:ffff"), now))
	require.Empty(t, check(t, l, config.RateToken, ip("2001:db8:1:3::1"), now))
	require.Empty(t, check(t, l, config.RateToken, ip("192.0.2.1"), now))
	require.Equal(t, config.ScopeIP, check(t, l, config.RateToken, ip("::ffff:192.0.2.1"), now))
	require.Empty(t, check(t, l, config.RateToken, ip("192.0.2.2"), now))
}

// TestNew_Refuses: a scope an endpoint does not have, an invalid limit, a
// short salt or no store are refused at build time.
func TestNew_Refuses(t *testing.T) {
	st := memStore(t)
	for _, tt := range []struct {
		name  string
		rules []config.RateRule
		store storage.RateLimiter
		salt  []byte
	}{
		{"scope", []config.RateRule{rule(config.RateToken, config.ScopeSession, 1, time.Second, 1)}, st, salt},
		{"endpoint", []config.RateRule{rule("nope", config.ScopeIP, 1, time.Second, 1)}, st, salt},
		{"limit", []config.RateRule{rule(config.RateToken, config.ScopeIP, 0, time.Second, 1)}, st, salt},
		{"salt", []config.RateRule{rule(config.RateToken, config.ScopeIP, 1, time.Second, 1)}, st, []byte("short")},
		{"store", []config.RateRule{rule(config.RateToken, config.ScopeIP, 1, time.Second, 1)}, nil, salt},
	} {
		_, err := ratelimit.New(tt.rules, tt.store, tt.salt)
		require.Error(t, err, tt.name)
	}
}

// TestKeys_HashedAndBounded: on a real redis-server, the keys of every
// scope hold none of the values they limit — no address, client_id,
// username or session — only digests under the salt (another salt,
// other keys), and every key has a TTL within its limit's window
// (SECURITY-RESULTS.md RL06).
func TestKeys_HashedAndBounded(t *testing.T) {
	srv := redistest.Start(t)
	st, err := redisstore.New(t.Context(), redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: "fedas:"}, zaptest.NewLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	// The defaults plus the opt-in account rules, so that account keys
	// are checked too.
	rules := config.DefaultRateRules()
	for _, ep := range []string{config.RateNativeInitial, config.RateNativeFollowUp, config.RateBrowserSubmit} {
		rules = append(rules, config.RateRule{Endpoint: ep, Scope: config.ScopeAccount, Rate: 10, Period: time.Minute, Burst: 10})
	}
	subject := ratelimit.Subject{IP: "203.0.113.77", Client: "demo-app", Account: "Victim@Example.com", PromptAccount: "victim@bank.example", Session: "SeSsIoNiD0123456789"}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	seen := map[string]bool{}
	for i, salt := range [][]byte{salt, []byte("another salt of 32 bytes........")} {
		l, err := ratelimit.New(rules, st, salt)
		require.NoError(t, err)
		for ep := range config.RateEndpoints {
			require.Empty(t, check(t, l, ep, subject, time.Now()))
			// Once more without the account, to key the prompt budget.
			s := subject
			s.Account = ""
			require.Empty(t, check(t, l, ep, s, time.Now()))
		}
		keys, err := c.Keys(t.Context(), "*").Result() // a test on its own server; never on a request path
		require.NoError(t, err)
		fresh := 0
		for _, k := range keys {
			if seen[k] {
				continue
			}
			seen[k] = true
			fresh++
			require.True(t, strings.HasPrefix(k, "fedas:rl:{"), k)
			low := strings.ToLower(k)
			for _, raw := range []string{"203.0.113", "demo-app", "victim", "example", "sessionid"} {
				require.NotContains(t, low, raw, "key %q holds a raw value", k)
			}
			ttl, err := c.PTTL(t.Context(), k).Result()
			require.NoError(t, err)
			require.NotEqual(t, time.Duration(-1), ttl, "key %q has no TTL", k)
			require.LessOrEqual(t, ttl, time.Minute, "key %q outlives its window", k)
		}
		// 17 default rules and 3 account rules, the account scope twice
		// (credentials and prompt) but shared by the three endpoints that
		// have it: 17 + 2 keys; a new
		// salt makes new keys, minus those whose TTL (a few ms) ran out.
		if i == 0 {
			require.GreaterOrEqual(t, fresh, 12, "keys %q", keys)
		} else {
			require.Positive(t, fresh, "another salt, the same keys")
		}
	}
}
