package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server/servertest"
)

// relaySDK is the Go SDK's relay client for cl at in, its waits passing
// on the deployment's fake clock.
func relaySDK(in *servertest.Instance, cl *relayClient) *sdk.Relay {
	return &sdk.Relay{HTTP: in.HTTPClient(), Endpoint: in.URL + relayPath, AccessToken: cl.token.AccessToken, DPoP: cl.key, Now: cl.clock.Now,
		Sleep: func(_ context.Context, d time.Duration) error { cl.clock.Advance(d); return nil }}
}

// TestRelaySDK_EndToEnd (RI19): the SDK relays an interaction (202
// pending + Location), waits on instance a while the app answers through
// instance b (completed), sees 424 as IsInteractionUnavailable for a user
// no channel reaches, cancels, and refuses a Location on another origin
// without sending the token there.
func TestRelaySDK_EndToEnd(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env, clock := relayEnv(t, b)
			cl := signInRelay(t, env.a, clock, "carol", "carol-pw", "")
			rel := relaySDK(env.a, cl)
			ctx := context.Background()
			in := sdk.Interaction{URL: relayOrigin + "/pay/approve", Code: relayCode, Description: "Approve the payment", MaxWait: time.Minute, CanInteract: true}

			_, err := rel.Start(ctx, in, 0)
			require.True(t, sdk.IsInteractionUnavailable(err), "%v", err)
			var re *sdk.RelayError
			require.ErrorAs(t, err, &re)
			require.Equal(t, http.StatusFailedDependency, re.Response.Status)
			require.Equal(t, relayOrigin+"/pay/approve?code=7KQ4-M2XW", in.FallbackURL())

			dev := relayDevice(t, env, clock, "carol", true, reach.KindInteraction)
			st, err := rel.Start(ctx, in, 0)
			require.NoError(t, err)
			require.Equal(t, "pending", st.Status)
			require.Equal(t, 2*time.Second, st.RetryAfter)
			id := taskIDOf(t, env.a, relayReply{header: http.Header{"Location": {st.Location}}})
			done := make(chan error, 1)
			var final sdk.RelayStatus
			go func() {
				var err error
				final, err = rel.Wait(ctx, st.Location, 5*time.Second)
				done <- err
			}()
			appAnswers(t, dev, id, "approve")
			require.NoError(t, <-done)
			require.True(t, final.Done())

			st, err = rel.Start(ctx, in, 0)
			require.NoError(t, err)
			require.NoError(t, rel.Cancel(ctx, st.Location))
			clock.Advance(3 * time.Second)
			_, err = rel.Poll(ctx, st.Location, 0)
			require.ErrorAs(t, err, &re)
			require.Equal(t, "not_found", re.Response.Error)

			_, err = rel.Poll(ctx, "https://evil.example"+relayPath+"/"+id, 0)
			require.ErrorContains(t, err, "not on the endpoint's origin")
			require.ErrorContains(t, rel.Cancel(ctx, "http://"+"user@"+env.a.URL[len("http://"):]+relayPath+"/"+id), "not on the endpoint's origin")
		})
	}
}
