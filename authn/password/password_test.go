package password_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/fedas/fedas/authn/password"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/policy"
)

// TestUnknownUserCostsAsMuch: the check for an unknown username spends
// the same bcrypt cost as the configured users' hashes, so the response
// time does not tell which usernames exist (asserted on the cost, not on
// a clock).
func TestUnknownUserCostsAsMuch(t *testing.T) {
	for _, cost := range []int{bcrypt.MinCost, 6, bcrypt.DefaultCost} {
		h, err := bcrypt.GenerateFromPassword([]byte("pw"), cost)
		require.NoError(t, err)
		cfg := config.Default()
		for i := range cfg.Users {
			cfg.Users[i].PasswordHash = string(h)
		}
		snap, err := policy.Build(cfg, policy.BuildOptions{})
		require.NoError(t, err)
		require.Equal(t, cost, password.New().Cost(snap.Users()))
	}
	// The demo configuration's hashes are cost 10.
	snap, err := policy.Build(config.Default(), policy.BuildOptions{})
	require.NoError(t, err)
	require.Equal(t, 10, password.New().Cost(snap.Users()))
}
