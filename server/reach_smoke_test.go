package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReachEnv_AppSignsInOnBothInstances checks the harness itself: one
// deployment of two instances, our app signed in with a DPoP-bound token
// at one, accepted as an access token by the other.
func TestReachEnv_AppSignsInOnBothInstances(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := newReachEnv(t, b.store(t), reachEnvOptions{})
			app := signInApp(t, env.a, "carol", "carol-pw", "")
			require.Contains(t, app.token.Scope, "reach:device")
			// No reach route exists yet: 404 from both, never 401 for the token.
			st, _, _ := app.doAt(t, env.b, http.MethodGet, "/reach/nothing", "")
			require.Equal(t, http.StatusNotFound, st)
		})
	}
}
