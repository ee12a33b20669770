package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRedteam_MethodsAndPaths (RR12): a reach path with another method,
// or a path beside the reach routes, is an RFC 6749 body with no-store
// (404 or 405, never 500 or echo's default body); the app and User
// Questioning endpoints answer application/json even when
// application/problem+json is asked for (problem+json is the relay's
// only, Q24).
func TestRedteam_MethodsAndPaths(t *testing.T) {
	env := newReachEnv(t, nil, reachEnvOptions{one: true, edit: relayConfig})
	phone := signInApp(t, env.a, "carol", "carol-pw", "")
	id := phone.register(t, "", http.StatusCreated).DeviceID
	cases := []struct{ method, path string }{
		{http.MethodPut, "/reach/devices"},
		{http.MethodDelete, "/reach/devices"},
		{http.MethodGet, "/reach/devices/" + id},
		{http.MethodPost, "/reach/devices/" + id},
		{http.MethodPost, "/reach/inbox"},
		{http.MethodDelete, "/reach/inbox/events"},
		{http.MethodGet, "/reach/scan"},
		{http.MethodGet, "/reach/tasks/"},
		{http.MethodPost, "/reach/tasks/AAAAAAAAAAAAAAAAAAAAAA"},
		{http.MethodGet, "/reach/tasks/AAAAAAAAAAAAAAAAAAAAAA/ack"},
		{http.MethodGet, "/reach/tasks/AAAAAAAAAAAAAAAAAAAAAA/unknown"},
		{http.MethodPut, "/reach/interactions"},
		{http.MethodGet, "/reach/interactions"},
		{http.MethodPost, "/reach/interactions/AAAAAAAAAAAAAAAAAAAAAA"},
		{http.MethodGet, "/native/reach"},
		{http.MethodDelete, "/native/reach/AAAAAAAAAAAAAAAAAAAAAA"},
		{http.MethodGet, "/uq/questions"},
		{http.MethodPost, "/uq/questions_polling"},
		{http.MethodGet, "/uq/questions/x"},
	}
	for _, c := range cases {
		st, h, body := appRaw(t, phone, c.method, c.path, "", "")
		m := requireErrorShape(t, c.method+" "+c.path, st, h, body)
		require.Contains(t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, st, "%s %s: %s", c.method, c.path, body)
		require.NotContains(t, m, "message", "echo's default body")
	}
	for _, c := range []struct{ method, path, body string }{
		{http.MethodGet, "/reach/tasks/AAAAAAAAAAAAAAAAAAAAAA", ""},
		{http.MethodPost, "/reach/devices", `{"x":1}`},
		{http.MethodGet, "/reach/inbox?wait=x", ""},
		{http.MethodPost, "/uq/questions", `{}`},
		{http.MethodGet, "/uq/questions_polling", ""},
	} {
		st, h, body := appRaw(t, phone, c.method, c.path, "application/json", c.body, "Accept", "application/problem+json")
		requireErrorShape(t, c.method+" "+c.path+" (Accept: problem)", st, h, body)
	}
}
