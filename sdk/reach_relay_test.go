package sdk_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/sdk"
)

// TestRelay_WaitFollowsTheProtocol: Wait sleeps Retry-After after a 202
// and after a 429 slow_down, follows a same-origin Location, stops at
// 200 completed or at an error (denied: a *RelayError whose code is
// branched on), and refuses a Location on another origin without
// sending the token there.
func TestRelay_WaitFollowsTheProtocol(t *testing.T) {
	var mu sync.Mutex
	var script []func(w http.ResponseWriter)
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		paths = append(paths, r.URL.Path)
		require.NotEmpty(t, r.Header.Get("DPoP"))
		require.Equal(t, "wait=3", r.Header.Get("Prefer"))
		next := script[0]
		script = script[1:]
		w.Header().Set("Content-Type", "application/json")
		next(w)
	}))
	defer srv.Close()
	answer := func(status int, body string, h ...string) func(http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			for i := 0; i+1 < len(h); i += 2 {
				w.Header().Set(h[i], h[i+1])
			}
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}
	}
	var slept []time.Duration
	rel := &sdk.Relay{HTTP: srv.Client(), Endpoint: srv.URL + "/reach/interactions", AccessToken: "at", DPoP: dpopKeyForTest(t),
		Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }}
	script = []func(http.ResponseWriter){
		answer(202, `{"status":"interacting"}`, "Location", srv.URL+"/reach/interactions/b", "Retry-After", "2"),
		answer(429, `{"error":"slow_down","error_description":"x"}`, "Retry-After", "4"),
		answer(200, `{"status":"completed"}`),
	}
	st, err := rel.Wait(context.Background(), srv.URL+"/reach/interactions/a", 3*time.Second)
	require.NoError(t, err)
	require.True(t, st.Done())
	require.Equal(t, []time.Duration{2 * time.Second, 4 * time.Second}, slept)
	require.Equal(t, []string{"/reach/interactions/a", "/reach/interactions/b", "/reach/interactions/b"}, paths)

	script = []func(http.ResponseWriter){answer(403, `{"error":"denied","error_description":"no"}`)}
	_, err = rel.Wait(context.Background(), srv.URL+"/reach/interactions/a", 3*time.Second)
	var re *sdk.RelayError
	require.ErrorAs(t, err, &re)
	require.Equal(t, "denied", re.Response.Error)
	require.False(t, sdk.IsInteractionUnavailable(err))

	script = []func(http.ResponseWriter){answer(202, `{"status":"pending"}`, "Location", "https://evil.example/reach/interactions/b", "Retry-After", "2")}
	n := len(paths)
	_, err = rel.Wait(context.Background(), srv.URL+"/reach/interactions/a", 3*time.Second)
	require.ErrorContains(t, err, "not on the endpoint's origin")
	require.Len(t, paths, n+1, "nothing sent to the other origin")
}

func dpopKeyForTest(t *testing.T) *dpop.Key {
	t.Helper()
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	k, err := dpop.NewKey(pk, jose.ES256)
	require.NoError(t, err)
	return k
}
