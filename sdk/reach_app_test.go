package sdk_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/sdk"
)

// TestReachApp_Requests: every request carries the DPoP scheme and a
// proof whose htu is the URL without its query (RFC 9449 §4.2), and
// error answers become *sdk.Err (binding_mismatch a *BindingMismatch
// with attempts_left). The end-to-end run against real servers is
// server.TestReachApp_SDK.
func TestReachApp_Requests(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	key, err := dpop.NewKey(k, jose.ES256)
	require.NoError(t, err)
	var seen []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r)
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/reach/inbox":
			_, _ = w.Write([]byte(`{"entries":[{"id":"1-0","task":"t","kind":"question"}],"next":"1-0"}`))
		case "/reach/tasks/t/response":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"binding_mismatch","error_description":"no","attempts_left":1}`))
		default:
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":"access_denied"}`))
		}
	}))
	defer srv.Close()
	app := &sdk.ReachApp{HTTP: srv.Client(), Meta: sdk.Metadata{Issuer: srv.URL}, DPoP: key, AccessToken: "tok"}
	ctx := context.Background()
	es, next, err := app.Inbox(ctx, "0-1", 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, "1-0", next)
	require.Equal(t, "t", es[0].Task)
	r := seen[0]
	require.Equal(t, "DPoP tok", r.Header.Get("Authorization"))
	require.Equal(t, "5", r.URL.Query().Get("wait"))
	require.Equal(t, "0-1", r.URL.Query().Get("after"))
	v := &dpop.Verifier{}
	p, err := v.Verify(ctx, r.Header.Get("DPoP"), http.MethodGet, srv.URL+"/reach/inbox", "tok")
	require.NoError(t, err)
	require.Equal(t, key.JKT, p.JKT)

	one := 1
	_, err = app.Respond(ctx, "t", sdk.TaskAnswer{Decision: "approve", BindingChoice: &one})
	var bm *sdk.BindingMismatch
	require.ErrorAs(t, err, &bm)
	require.Equal(t, 1, bm.AttemptsLeft)
	_, err = app.Register(ctx, sdk.DeviceRegistration{Name: "x"})
	var e *sdk.Err
	require.ErrorAs(t, err, &e)
	require.Equal(t, "access_denied", e.Response.Error)
	require.Equal(t, http.StatusForbidden, e.Status)
	require.True(t, errors.Is(app.Delete(ctx), sdk.ErrNoDevice))
}
