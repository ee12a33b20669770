package config_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
)

// TestRateLimits_Effective: the built-in table applies by default; a rule
// replaces the default of its endpoint and scope (period and burst
// defaulted), off removes one, enabled: false removes all.
func TestRateLimits_Effective(t *testing.T) {
	def := config.DefaultRateRules()
	require.Equal(t, def, config.Default().Limits.Rate.Effective())
	// Every endpoint and scope but account has a default, and nothing
	// else does: an account limit is a lockout weapon unless an operator
	// chooses it (DefaultRateRules).
	pairs := 0
	for ep, scopes := range config.RateEndpoints {
		for _, sc := range scopes {
			n := 0
			for _, r := range def {
				if r.Endpoint == ep && r.Scope == sc {
					n++
				}
			}
			want := 1
			if sc == config.ScopeAccount {
				want = 0
			}
			pairs += want
			require.Equal(t, want, n, "%s/%s", ep, sc)
		}
	}
	require.Len(t, def, pairs)

	c, err := config.Parse([]byte(`issuer: https://as.example
limits:
  rate:
    rules:
      - {endpoint: token, scope: ip, rate: 3}
      - {endpoint: native_initial, scope: client, off: true}
      - {endpoint: native_follow_up, scope: account, rate: 5, period: 1m, burst: 7}
`))
	require.NoError(t, err)
	eff := c.Limits.Rate.Effective()
	require.Len(t, eff, len(def)) // one off, one account rule added
	for _, r := range eff {
		switch {
		case r.Endpoint == config.RateToken && r.Scope == config.ScopeIP:
			require.Equal(t, config.RateRule{Endpoint: "token", Scope: "ip", Rate: 3, Period: time.Second, Burst: 3}, r)
		case r.Endpoint == config.RateNativeInitial && r.Scope == config.ScopeClient:
			t.Fatal("an off rule stays in force")
		case r.Endpoint == config.RateNativeFollowUp && r.Scope == config.ScopeAccount:
			require.Equal(t, config.RateRule{Endpoint: "native_follow_up", Scope: "account", Rate: 5, Period: time.Minute, Burst: 7}, r)
		}
	}

	c, err = config.Parse([]byte("issuer: https://as.example\nlimits: {rate: {enabled: false}}\n"))
	require.NoError(t, err)
	require.Nil(t, c.Limits.Rate.Effective())
	require.False(t, c.Limits.Rate.On())
}

// TestRateLimits_Validation: every bad rule is reported with its path and
// line, all at once.
func TestRateLimits_Validation(t *testing.T) {
	_, probs := config.Check([]byte(`issuer: https://as.example
limits:
  rate:
    rules:
      - {endpoint: nope, scope: ip, rate: 1}
      - {endpoint: token, scope: session, rate: 1}
      - {endpoint: token, scope: ip, rate: 0}
      - {endpoint: token, scope: ip, rate: 1}
      - {endpoint: par, scope: ip, rate: 1, burst: -2}
      - {endpoint: par, scope: client, rate: 1, period: 1h, burst: 25}
      - {endpoint: revoke, scope: ip, rate: 2000000, period: 1s, burst: 1}
      - {endpoint: introspect, scope: ip, rate: 1, period: -1s}
trusted_proxies: [10.0.0.0/8, "::1", nonsense, "fe80::1%eth0"]
`), config.Options{})
	tests := []struct {
		path, message string
		line          int
	}{
		{"limits.rate.rules[0].endpoint", `"nope" is not one of app_complete, browser_submit`, 5},
		{"limits.rate.rules[1].scope", `"session" is not a scope of token (ip, client)`, 6},
		{"limits.rate.rules[2].rate", "must be at least 1", 7},
		{"limits.rate.rules[3]", "duplicates limits.rate.rules[2]", 8},
		{"limits.rate.rules[4].burst", "between 1 and 1000000", 9},
		{"limits.rate.rules[5]", "at most 24h", 10},
		{"limits.rate.rules[6]", "at least 1µs", 11},
		{"limits.rate.rules[7].period", "must be positive", 12},
		{"trusted_proxies[2]", `"nonsense" is not an IP address or CIDR prefix`, 13},
		{"trusted_proxies[3]", `"fe80::1%eth0" is not an IP address or CIDR prefix`, 13},
	}
	for _, tt := range tests {
		p := find(t, probs, tt.path)
		require.Contains(t, p.Message, tt.message, tt.path)
		require.Equal(t, tt.line, p.Line, tt.path)
	}
}

// TestParseTrustedProxies: addresses stand for themselves, prefixes are
// masked, IPv4-mapped IPv6 is IPv4, zones are refused.
func TestParseTrustedProxies(t *testing.T) {
	got, err := config.ParseTrustedProxies([]string{"192.0.2.7", "10.1.2.3/8", " 2001:db8::/32 ", "::ffff:198.51.100.0/120", "::1"})
	require.NoError(t, err)
	require.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("::1/128"),
	}, got)
	for _, bad := range []string{"", "10.0.0.0/33", "fe80::1%eth0", "example.com", "10.0.0.1:80"} {
		_, err := config.ParseTrustedProxies([]string{bad})
		require.Error(t, err, "%q", bad)
	}
}
