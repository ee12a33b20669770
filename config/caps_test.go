package config_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
)

// TestLimits_Caps: the caps' defaults, -1 turning a live-session cap off,
// and clear errors for what is neither (docs/security.md "Caps").
func TestLimits_Caps(t *testing.T) {
	parse := func(limits string) (*config.Config, error) {
		return config.Parse(append(config.DemoYAML(), []byte("\nlimits: "+limits+"\n")...))
	}
	c, err := parse("{}")
	require.NoError(t, err)
	require.Equal(t, 200, c.Limits.MaxLiveSessionsPerIP)
	require.Equal(t, 100000, c.Limits.MaxLiveSessionsPerClient)
	require.Equal(t, 3, c.Limits.MaxFederationHops)

	c, err = parse("{max_live_sessions_per_ip: -1, max_live_sessions_per_client: -1, max_federation_hops: 1}")
	require.NoError(t, err)
	require.Equal(t, -1, c.Limits.MaxLiveSessionsPerIP)
	require.Equal(t, -1, c.Limits.MaxLiveSessionsPerClient)
	require.Equal(t, 1, c.Limits.MaxFederationHops)

	for _, tc := range []struct{ limits, want string }{
		{"{max_live_sessions_per_ip: -2}", "limits.max_live_sessions_per_ip: must be -1 (off) or a positive number"},
		{"{max_live_sessions_per_client: -5}", "limits.max_live_sessions_per_client: must be -1 (off) or a positive number"},
		{"{max_federation_hops: -1}", "limits.max_federation_hops: must be at least 1"},
	} {
		_, err := parse(tc.limits)
		require.ErrorContains(t, err, tc.want, tc.limits)
	}
}
