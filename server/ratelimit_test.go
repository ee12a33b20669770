package server_test

import (
	"github.com/fedas/fedas/config"
)

// noRateLimits turns the rate limits off, for tests that send far more
// requests from one address, for one account or one session, than any
// user would (entropy samples, races, fuzzing); the limits themselves
// are tested below.
func noRateLimits(c *config.Config) {
	off := false
	c.Limits.Rate.Enabled = &off
}
