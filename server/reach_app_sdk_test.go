package server_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/sdk"
)

// sdkApp is the Go SDK's app side for a signed-in app.
func sdkApp(tb testing.TB, a *reachApp) *sdk.ReachApp {
	tb.Helper()
	meta, err := sdk.Discover(context.Background(), a.in.HTTPClient(), a.in.URL)
	require.NoError(tb, err)
	hc := a.in.HTTPClient()
	hc.Timeout = time.Minute // longer than the longest hold
	return &sdk.ReachApp{HTTP: hc, Meta: meta, DPoP: a.key, AccessToken: a.token.AccessToken}
}

// TestReachApp_SDK drives the app side through the Go SDK end to end:
// register (new, then again), a long poll woken by a delivery from
// another instance, the task read, acked and answered with a wrong then
// the right number, a scan, typed errors with the RFC 6749 members, and
// sign-out (SECURITY-RESULTS.md RA18).
func TestReachApp_SDK(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := newAppEnv(t, b.store(t), reachEnvOptions{})
			ctx := context.Background()
			app := sdkApp(t, signInApp(t, env.a, "carol", "carol-pw", ""))
			reg := sdk.DeviceRegistration{Name: "Carol's phone", Platform: "ios", Capabilities: []string{"app_auth", "question"},
				Channels: []sdk.ReachChannel{{Type: "inbox"}}}
			d, err := app.Register(ctx, reg)
			require.NoError(t, err)
			require.True(t, d.New)
			d2, err := app.Register(ctx, reg)
			require.NoError(t, err)
			require.False(t, d2.New)
			require.Equal(t, d.ID, d2.ID)

			_, next, err := app.Inbox(ctx, "", 0)
			require.NoError(t, err)
			type polled struct {
				entries []sdk.InboxEntry
				next    string
				err     error
			}
			done := make(chan polled, 1)
			go func() {
				es, n, err := app.Inbox(ctx, next, 20*time.Second)
				done <- polled{es, n, err}
			}()
			tk := env.task(t, "carol", reach.KindAppAuth, nil)
			env.deliver(t, &tk)
			p := <-done
			require.NoError(t, p.err)
			require.Len(t, p.entries, 1)
			require.Equal(t, tk.ID, p.entries[0].Task)
			require.Equal(t, p.entries[0].ID, p.next)

			view, err := app.Task(ctx, tk.ID)
			require.NoError(t, err)
			require.Equal(t, "pending", view.Status)
			require.ElementsMatch(t, tk.Binding.Choices, view.BindingChoices)
			require.NoError(t, app.Ack(ctx, tk.ID))
			wrong := tk.Binding.Choices[0]
			if wrong == tk.Binding.Right {
				wrong = tk.Binding.Choices[1]
			}
			_, err = app.Respond(ctx, tk.ID, sdk.TaskAnswer{Decision: "approve", BindingChoice: &wrong, AMR: []string{"hwk", "face"}})
			var bm *sdk.BindingMismatch
			require.ErrorAs(t, err, &bm)
			require.Equal(t, 2, bm.AttemptsLeft)
			var e *sdk.Err
			require.ErrorAs(t, err, &e)
			require.Equal(t, "binding_mismatch", e.Response.Error)
			right := tk.Binding.Right
			st, err := app.Respond(ctx, tk.ID, sdk.TaskAnswer{Decision: "approve", BindingChoice: &right, AMR: []string{"hwk", "face"}})
			require.NoError(t, err)
			require.Equal(t, "approved", st)
			require.Equal(t, reach.StateApproved, env.stored(t, tk.ID).State)

			q := env.task(t, "carol", reach.KindQuestion, display{"client_id": "demo-app", "client_name": "Demo app",
				"question": "Pay 10 EUR to Bob?", "statements": []string{"Yes", "No"}})
			sv, err := app.Scan(ctx, q.Ref)
			require.NoError(t, err)
			require.Equal(t, "Pay 10 EUR to Bob?", sv.Question)
			require.Equal(t, "interacting", sv.Status)
			_, err = app.Scan(ctx, q.Ref)
			require.ErrorAs(t, err, &e)
			require.Equal(t, "not_found", e.Response.Error)
			require.Equal(t, http.StatusNotFound, e.Status)
			st, err = app.Respond(ctx, q.ID, sdk.TaskAnswer{Decision: "answer", Statement: "No", AMR: []string{"pin"}})
			require.NoError(t, err)
			require.Equal(t, "answered", st)

			require.NoError(t, app.Delete(ctx))
			require.ErrorIs(t, app.Delete(ctx), sdk.ErrNoDevice)
			_, _, err = app.Inbox(ctx, "", 0)
			require.True(t, errors.As(err, &e) && e.Response.Error == "not_found", "%v", err)
		})
	}
}
