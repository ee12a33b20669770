package policy_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/policy"
)

// TestRestartOnly_RateLimitsAndProxies: a reload that changes the rate
// limits or the trusted proxies names them as taking effect only at a
// restart (they are not policy), like the other limits; a policy change
// alone names nothing.
func TestRestartOnly_RateLimitsAndProxies(t *testing.T) {
	off := false
	tests := []struct {
		name string
		edit func(*config.Config)
		want []string
	}{
		{"rate rule", func(c *config.Config) {
			c.Limits.Rate.Rules = []config.RateRule{{Endpoint: config.RateToken, Scope: config.ScopeIP, Rate: 1, Period: time.Second, Burst: 1}}
		}, []string{"limits"}},
		{"rate limits off", func(c *config.Config) { c.Limits.Rate.Enabled = &off }, []string{"limits"}},
		{"trusted proxies", func(c *config.Config) { c.TrustedProxies = []string{"10.0.0.0/8"} }, []string{"trusted_proxies"}},
		{"a client", func(c *config.Config) { c.Clients = c.Clients[:1] }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := config.Default(), config.Default()
			tt.edit(b)
			require.Equal(t, tt.want, policy.RestartOnly(a, b))
		})
	}
}
