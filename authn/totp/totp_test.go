package totp_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	otptotp "github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/authn/totp"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/storage/memory"
)

// TestVerify: RFC 6238 §5.2 — the current and the adjacent time steps
// are accepted once each; other codes, a replay, a missing or overlong
// answer are refused; only users with a secret get the step.
func TestVerify(t *testing.T) {
	snap, err := policy.Build(config.Default(), policy.BuildOptions{})
	require.NoError(t, err)
	st := memory.New()
	t.Cleanup(func() { _ = st.Close() })
	bob, _, _ := snap.Users().User(context.Background(), "bob")
	alice, _, _ := snap.Users().User(context.Background(), "alice")
	step := totp.Step{}
	require.True(t, step.Applies(&bob))
	require.False(t, step.Applies(&alice))
	require.False(t, step.Applies(nil))

	now := time.Unix(1_800_000_015, 0)
	code := func(at time.Time) string {
		c, err := otptotp.GenerateCode(bob.TOTPSecret, at)
		require.NoError(t, err)
		return c
	}
	sc := flow.StepContext{Users: snap.Users(), Replay: st, Now: now, Username: "bob"}
	tests := []struct {
		name string
		otp  string
		want flow.Result
	}{
		{"current step", code(now), flow.Passed},
		{"replayed", code(now), flow.Failed},
		{"previous step", code(now.Add(-30 * time.Second)), flow.Passed},
		{"two steps ago", code(now.Add(-60 * time.Second)), flow.Failed},
		{"wrong", "000000", flow.Failed},
		{"missing", "", flow.Malformed},
		{"too long", "12345678901", flow.Malformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := step.Verify(context.Background(), sc, url.Values{"otp": {tc.otp}})
			require.NoError(t, err)
			require.Equal(t, tc.want, res.Result)
			if tc.want == flow.Passed {
				require.Equal(t, "otp", res.AMR)
			}
		})
	}
	// A user without a secret never passes.
	res, err := step.Verify(context.Background(), flow.StepContext{Users: snap.Users(), Replay: st, Now: now, Username: "alice"}, url.Values{"otp": {"123456"}})
	require.NoError(t, err)
	require.Equal(t, flow.Failed, res.Result)
	spec, _, err := step.Challenge(context.Background(), sc)
	require.NoError(t, err)
	require.Equal(t, "otp", spec.Type)
	require.Contains(t, spec.Inputs, "otp")
}
