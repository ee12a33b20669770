package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/reach"
)

// TestRedteam_PreferWaitValues (RR06): Prefer: wait on the relay with a
// negative, non-numeric, empty, fractional or overflowing value is a
// poll without a hold (202 at once, no Preference-Applied, never a 500),
// and any value at or above reach.max_hold — also one whose seconds
// overflow a time.Duration — is held exactly max_hold (Preference-Applied:
// wait=1 with max_hold 1 s), never more and never silently dropped.
func TestRedteam_PreferWaitValues(t *testing.T) {
	env, clock := relayEnv(t, backends()[0], func(c *config.Config) { c.Reach.MaxHold = time.Second })
	relayDevice(t, env, clock, "carol", true, reach.KindInteraction)
	cl := signInRelay(t, env.a, clock, "carol", "carol-pw", "")
	r := cl.call(t, env.a, http.MethodPost, relayPath, relayBody(nil))
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	id := taskIDOf(t, env.a, r)
	cases := []struct {
		prefer  string
		applied string
	}{
		{"wait=-1", ""},
		{"wait=abc", ""},
		{"wait=", ""},
		{"wait=1.5", ""},
		{"wait=0", ""},
		{`wait="x"`, ""},
		{"wait=99999999999999999999", ""}, // not an int: ignored
		{"wait=1", "wait=1"},
		{"wait=25", "wait=1"},
		{"wait=99999999999", "wait=1"},
		{"wait=9223372036854775807", "wait=1"},
		{"wait=18446744074", "wait=1"},
		{"wait=10000000000", "wait=1"},
		{"respond-async, wait=9223372036854775807", "wait=1"},
	}
	for _, c := range cases {
		clock.Advance(3 * time.Second) // past the poll interval
		r := cl.call(t, env.a, http.MethodGet, relayPath+"/"+id, "", "Prefer", c.prefer)
		require.Equal(t, http.StatusAccepted, r.status, "%s: %s", c.prefer, r.raw)
		require.Equal(t, "pending", r.str("status"), c.prefer)
		require.Equal(t, c.applied, r.header.Get("Preference-Applied"), c.prefer)
	}
}
