package admin_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/admin"
	"github.com/fedas/fedas/admin/admintest"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/storage/memory"
)

// TestBootstrap_Concurrent: of instances starting together on an empty
// store, exactly one bootstraps version 1 and all see it.
func TestBootstrap_Concurrent(t *testing.T) {
	m := memory.New()
	t.Cleanup(func() { _ = m.Close() })
	p := config.PolicyOf(config.Default())
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			head, c, err := admin.Bootstrap(context.Background(), m, p, 10, time.Now())
			require.NoError(t, err)
			require.EqualValues(t, 1, head)
			if c {
				mu.Lock()
				created++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 1, created)
	// A later start finds the store's policy and does not bootstrap again,
	// even with another file.
	other := p.Clone()
	other.DefaultRoute = "deny"
	head, c, err := admin.Bootstrap(context.Background(), m, other, 10, time.Now())
	require.NoError(t, err)
	require.False(t, c)
	require.EqualValues(t, 1, head)
}

// TestPublicListener_NoAdminRoutes: nothing of the admin surface answers
// on the public listener, token or not.
func TestPublicListener_NoAdminRoutes(t *testing.T) {
	in := admintest.Start(t, admintest.Options{})
	for _, path := range []string{"/admin/v1/status", "/admin/v1/downstreams", "/admin/openapi.json", "/console/", "/console/login"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			req, _ := http.NewRequest(method, in.URL+path, nil)
			req.Header.Set("Authorization", "Bearer "+in.WriteToken)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Contains(t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, resp.StatusCode, "%s %s on the public listener", method, path)
		}
		r := in.Do(t, http.MethodGet, path, in.WriteToken, nil, nil)
		require.NotEqual(t, http.StatusNotFound, r.Status, "%s exists on the admin listener", path)
	}
}

// TestRetention: the store keeps the newest admin.retention versions and
// audit entries; a rollback target older than that is gone (404).
func TestRetention(t *testing.T) {
	in := admintest.Start(t, admintest.Options{Configure: func(c *config.Config) { c.Admin.Retention = 3 }})
	for _, r := range []string{"deny", "local", "deny", "local", "deny"} {
		g := in.Do(t, http.MethodGet, "/admin/v1/default-route", in.WriteToken, nil, nil)
		w := in.Do(t, http.MethodPut, "/admin/v1/default-route", in.WriteToken, map[string]string{"If-Match": g.Header.Get("ETag")}, map[string]string{"default_route": r})
		require.Equal(t, http.StatusOK, w.Status, "%s", w.Body)
	}
	h := in.Do(t, http.MethodGet, "/admin/v1/versions", in.ReadToken, nil, nil)
	items := h.JSON(t)["items"].([]any)
	require.Len(t, items, 3)
	require.EqualValues(t, 6, items[0].(map[string]any)["version"])
	require.EqualValues(t, 4, items[2].(map[string]any)["version"])
	au := in.Do(t, http.MethodGet, "/admin/v1/audit", in.ReadToken, nil, nil)
	require.Len(t, au.JSON(t)["items"].([]any), 3)
	st := in.Do(t, http.MethodGet, "/admin/v1/status", in.ReadToken, nil, nil)
	r := in.Do(t, http.MethodPost, "/admin/v1/versions/1/rollback", in.WriteToken, map[string]string{"If-Match": st.Header.Get("ETag")}, nil)
	require.Equal(t, http.StatusNotFound, r.Status, "%s", r.Body)
}
