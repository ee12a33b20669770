package server_test

import (
	"net/http"
	"testing"

	"github.com/fedas/fedas/config"
)

// TestDefaultRoute_WithoutPrompt: with no prompt and no route naming the
// client, default_route decides — deny refuses, a downstream federates,
// local (or unset) signs in here. Before, default_route applied only to
// prompt answers, so "deny" without a prompt signed users in locally.
func TestDefaultRoute_WithoutPrompt(t *testing.T) {
	e := newMockFed(t, mockFedOpts{edit: func(c *config.Config) {
		c.Prompt, c.Routes = nil, nil
	}})
	tests := []struct {
		def    string
		status int
		code   string
	}{
		{"deny", http.StatusBadRequest, "access_denied"},
		{"ds1", http.StatusBadRequest, "federate"},
		{"local", http.StatusForbidden, "insufficient_authorization"},
		{"", http.StatusForbidden, "insufficient_authorization"},
	}
	for _, tc := range tests {
		t.Run("default_route="+tc.def, func(t *testing.T) {
			cfg := *e.as1.Config
			cfg.DefaultRoute = tc.def
			if err := e.as1.Server.Reload(func() (*config.Config, error) { return &cfg, nil }); err != nil {
				t.Fatal(err)
			}
			r, _ := e.as1.initial(t, "demo-app", nil)
			requireOAuthError(t, r, tc.status, tc.code)
		})
	}
}
