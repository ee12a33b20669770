package server_test

import (
	"net/http"
	"net/url"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Red team: username enumeration by timing at the password challenge.
// authn/password.New hashes its "unknown user" dummy with bcrypt.MinCost
// (cost 4), while real users' hashes use the default cost (10, the demo
// users): a wrong password for an existing user costs ~64x more bcrypt
// work than any password for an unknown one. The answers are identical
// ("The username or password is not correct."), the timing is not.
//
// Correct behaviour asserted: an unknown user's check takes about as long
// as a known user's (here: at least half).
func TestRedteam_PasswordTimingRevealsUsers(t *testing.T) {
	in := wrap(start(t, nil))
	attempt := func(user string) time.Duration {
		r, _ := in.initial(t, "demo-app", nil)
		require.Equal(t, http.StatusForbidden, r.status, r.raw)
		began := time.Now()
		out := post(t, in.native(), url.Values{"auth_session": {r.str("auth_session")}, "username": {user}, "password": {"wrong-password"}})
		took := time.Since(began)
		requireOAuthError(t, out, http.StatusForbidden, "insufficient_authorization")
		require.Equal(t, "The username or password is not correct.", out.str("error_description"))
		return took
	}
	median := func(user string) time.Duration {
		var d []time.Duration
		for i := 0; i < 5; i++ {
			d = append(d, attempt(user))
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[2]
	}
	known, unknown := median("alice"), median("nobody-here")
	t.Logf("wrong password: known user %v, unknown user %v", known, unknown)
	require.GreaterOrEqual(t, unknown, known/2,
		"an unknown username is answered in %v, a known one in %v: the timing tells which usernames exist", unknown, known)
}
