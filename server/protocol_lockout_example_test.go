package server_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server/servertest"
)

// exampleLockout: wrong passwords for bob until his account-wide delay
// (two free failures here; 20 by default): his right password alone is
// 429 slow_down with Retry-After, the auth_session unchanged; the same
// auth_session with his one-time code as well signs him in
// (docs/protocol.md "Lockout").
func exampleLockout(t *testing.T) *example {
	log := newExampleLog()
	as := log.start(t, "AS", "https://as.example", servertest.Options{Configure: func(c *config.Config) {
		c.Limits.Lockout.AccountFreeFailures = 2
		// A fast hash for bob, so that the example runs well within the
		// first delay (1 s) however slow the machine's bcrypt is.
		for i := range c.Users {
			if c.Users[i].Username == "bob" {
				c.Users[i].PasswordHash = minCostHash("builder")
			}
		}
	}})
	x := newExample("lockout", log)
	pk := sdk.NewPKCE()
	r := post(t, as.native(), pkceParams(pk, url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"}}))
	requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
	for i, caption := range []string{"app → AS: a wrong password for bob", "app → AS: another (from anywhere: the account's free failures are 2 here)"} {
		r = x.postForm(t, caption, as.native(), url.Values{"auth_session": {r.str("auth_session")}, "username": {"bob"}, "password": {"guess-" + string(rune('1'+i))}})
		requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
	}
	s := r.str("auth_session")
	r = x.postForm(t, "app → AS: bob's right password alone waits: 429, nothing checked, the auth_session unchanged", as.native(), url.Values{
		"auth_session": {s}, "username": {"bob"}, "password": {"builder"}})
	requireOAuthError(t, r, http.StatusTooManyRequests, "slow_down")
	require.Equal(t, s, r.str("auth_session"))
	r = x.postForm(t, "app → AS: the same auth_session with his one-time code as well: both are checked, and the otp step is done too", as.native(), url.Values{
		"auth_session": {s}, "username": {"bob"}, "password": {"builder"}, "otp": {totpNow(t, bobTOTP)}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	return x
}
