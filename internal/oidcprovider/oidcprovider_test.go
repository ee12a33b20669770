package oidcprovider

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStart_NoNode: without node and npm on PATH, Start fails, saying
// what is missing, whether or not an install is cached (the tests that
// need a real oidc-provider fail loudly rather than skip).
func TestStart_NoNode(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, tc := range []struct {
		name  string
		cache string
	}{
		{"the user's cache", ""},
		{"an empty cache", t.TempDir()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cache != "" {
				t.Setenv("XDG_CACHE_HOME", tc.cache)
				t.Setenv("HOME", tc.cache)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			p, err := Start(ctx, Config{Clients: []map[string]any{{"client_id": "c", "redirect_uris": []string{"https://c.example/cb"}}}}, false)
			if err == nil {
				p.Stop()
				t.Fatal("Start succeeded without node on PATH")
			}
			if !strings.Contains(err.Error(), "node") {
				t.Errorf("Start: %v, want it to name node", err)
			}
			if tc.cache != "" {
				if _, err := os.Stat(filepath.Join(tc.cache, "fedasbench")); err == nil {
					t.Error("a failed install left a cache entry")
				}
			}
		})
	}
}

// TestLockfilePinsVersion: the committed npm project installs exactly
// Version, and its lockfile agrees (npm ci refuses a lockfile out of step
// with package.json, so this is checked here rather than at install time
// on a CI machine).
func TestLockfilePinsVersion(t *testing.T) {
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	require.NoError(t, json.Unmarshal(packageJSON, &pkg))
	require.Equal(t, map[string]string{"oidc-provider": Version}, pkg.Dependencies)
	var lock struct {
		Packages map[string]struct {
			Version   string `json:"version"`
			Integrity string `json:"integrity"`
		} `json:"packages"`
	}
	require.NoError(t, json.Unmarshal(packageLock, &lock))
	require.Equal(t, Version, lock.Packages["node_modules/oidc-provider"].Version)
	for name, p := range lock.Packages {
		if name != "" {
			require.NotEmpty(t, p.Integrity, "%s has no integrity in the lockfile", name)
		}
	}
}
