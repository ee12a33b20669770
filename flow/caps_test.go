package flow_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/flow"
)

// withLive rebuilds f's engine with live-session caps on its memory store.
func (f *fixture) withLive(perIP, perClient int) *fixture {
	f.opts.Live = flow.LiveCaps{Counter: f.sessions, PerIP: perIP, PerClient: perClient, Key: []byte("live-key-0123456789abcdef0123456")}
	f.eng = flow.New(f.opts)
	return f
}

func fromIP(ip string) reqMod { return func(r *flow.Request) { r.ClientIP = ip } }

// live is how many slots the store holds.
func (f *fixture) live() int {
	_, n := f.sessions.LiveScopes()
	return n
}

// TestLiveCaps_Slots: a session holds one slot per scope while it lives
// and gives them back when it ends; a request that starts no session
// (a redirect_to_web for a client without credential challenges) keeps
// none, even though it reserved one before consuming its push.
func TestLiveCaps_Slots(t *testing.T) {
	f := newFixture(t, nil).withLive(5, 5)
	c := as[flow.Challenge](t, f.native(initial("app"), fromIP("192.0.2.1")))
	require.Equal(t, 2, f.live(), "the client's and the address's")
	as[flow.Code](t, f.signIn(t, flow.ChannelNative, c.AuthSession, "alice"))
	require.Zero(t, f.live(), "released with the code")

	c = as[flow.Challenge](t, f.native(initial("app"), fromIP("192.0.2.1")))
	for range 3 { // cfg max_failures
		out := f.native(vals("auth_session", c.AuthSession, "username", "alice", "password", "wrong"))
		if ch, ok := out.(flow.Challenge); ok {
			c = ch
			continue
		}
		refusal(t, out, "access_denied")
	}
	require.Zero(t, f.live(), "released when the failure cap ends it")

	for range 7 {
		ru := f.pushes.par("fed", initial("fed"))
		as[flow.RedirectToWeb](t, f.native(vals("client_id", "fed", "request_uri", ru), authed(), fromIP("192.0.2.1")))
		require.Zero(t, f.live(), "no session, no slot")
	}
}

// TestLiveCaps_PushedNotConsumed: over a cap a pushed request is refused
// before it is consumed (docs/decisions.md Q28) and works once a slot is
// free.
func TestLiveCaps_PushedNotConsumed(t *testing.T) {
	f := newFixture(t, func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "fed" {
				c.Clients[i].AllowCredentialChallenges = true
			}
		}
	}).withLive(-1, 1)
	c := as[flow.Challenge](t, f.native(vals("client_id", "fed", "request_uri", f.pushes.par("fed", initial("fed"))), authed()))
	ru := f.pushes.par("fed", initial("fed"))
	r := refusal(t, f.native(vals("client_id", "fed", "request_uri", ru), authed()), "slow_down")
	require.Equal(t, 429, r.Status)
	require.Equal(t, 10*time.Minute, r.RetryAfter.Round(time.Minute))
	require.True(t, f.pushes.has(ru))
	require.Zero(t, f.pushes.consumes(ru))
	as[flow.Code](t, f.signIn(t, flow.ChannelNative, c.AuthSession, "alice"))
	as[flow.Challenge](t, f.native(vals("client_id", "fed", "request_uri", ru), authed()))
}

// TestLiveCaps_AddressScopes: an IPv4 address and its IPv4-mapped IPv6
// form are one caller; an IPv6 address counts by its /64.
func TestLiveCaps_AddressScopes(t *testing.T) {
	f := newFixture(t, nil).withLive(1, -1)
	start := func(ip string) flow.Outcome { return f.native(initial("app"), fromIP(ip)) }
	as[flow.Challenge](t, start("192.0.2.1"))
	refusal(t, start("::ffff:192.0.2.1"), "slow_down")
	as[flow.Challenge](t, start("192.0.2.2"))
	as[flow.Challenge](t, start("2001:db8:0:1::1"))
	refusal(t, start("2001:db8:0:1:ffff::2"), "slow_down")
	as[flow.Challenge](t, start("2001:db8:0:2::1"))
	as[flow.Challenge](t, start("")) // no address known: the client's cap only
	f.clock.Advance(10 * time.Minute)
	as[flow.Challenge](t, start("192.0.2.1"))
}
