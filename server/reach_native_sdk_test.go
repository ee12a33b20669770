package server_test

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server/servertest"
)

// TestReachNative_SDK (SECURITY-RESULTS.md RN25): the Go SDK's client
// side over real HTTP: no app on this device → reach_uri → the number
// (or the QR code) shown, the phone answering through instance b, the
// polls paced by the SDK's Sleep (the servers' clock), then the code and
// a token for the hinted user bound to the client's DPoP key.
func TestReachNative_SDK(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			clock := &servertest.Clock{}
			env := newReachEnv(t, b.store(t), reachEnvOptions{clock: clock, edit: nativeReachConfig})
			carol := newReachPhone(t, env.b, clock, "carol", true)
			dave := newReachPhone(t, env.b, clock, "dave", false)
			for _, tc := range []struct {
				user  string
				phone *reachPhone
			}{{"carol", carol}, {"dave", dave}} {
				t.Run(tc.user, func(t *testing.T) {
					c := env.a.Client(t, "demo-app")
					dev := newReachDevice(t, env.a, clock, "demo-app")
					c.DPoP = dev.key
					c.OpenApp = func(context.Context, string) (url.Values, error) { return nil, sdk.ErrNoApp }
					var shown []string
					c.Reach = &sdk.ReachHooks{
						ShowBindingCode: func(_ context.Context, code string) error {
							shown = append(shown, "code "+code)
							ids := tc.phone.inbox(t)
							require.Len(t, ids, 1)
							pick, err := strconv.Atoi(code)
							require.NoError(t, err)
							tc.phone.answer(t, ids[0], "approve", pick)
							return nil
						},
						ShowQR: func(_ context.Context, link, code string) error {
							shown = append(shown, "qr "+code)
							id := tc.phone.scan(t, link)
							pick, err := strconv.Atoi(code)
							require.NoError(t, err)
							tc.phone.answer(t, id, "approve", pick)
							return nil
						},
						Sleep: func(_ context.Context, d time.Duration) error { clock.Advance(d); return nil },
					}
					code, pk, err := c.Authorize(context.Background(), url.Values{"scope": {"openid"}, "native_callback_uri": {cb}, "login_hint": {tc.user}}, nil)
					require.NoError(t, err)
					require.Len(t, shown, 1)
					tok, err := c.Exchange(context.Background(), code, pk)
					require.NoError(t, err)
					require.Equal(t, "DPoP", tok.TokenType)
					ir := wrap(env.a).introspect(t, tok.AccessToken)
					require.Equal(t, tc.user, ir.str("sub"))
					require.Equal(t, map[string]any{"jkt": dev.key.JKT}, ir.body["cnf"])
				})
			}
		})
	}
}
