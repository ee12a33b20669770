package admin_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/admin"
	"github.com/fedas/fedas/admin/admintest"
	"github.com/fedas/fedas/metrics/metricstest"
)

func getBody(tb testing.TB, u string) (int, http.Header, string) {
	tb.Helper()
	resp, err := http.Get(u)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return resp.StatusCode, resp.Header, string(b)
}

// TestMetrics_AdminListener: GET /metrics on the admin listener needs no
// token and shows the server's registry (policy version, build info);
// the public listener has no /metrics. The admin listener's requests are
// counted under listener="admin", the public one's under "public".
func TestMetrics_AdminListener(t *testing.T) {
	in := admintest.Start(t, admintest.Options{})
	reg := in.Server.Metrics().Registry()
	before := metricstest.Snapshot(t, reg)

	require.Equal(t, http.StatusOK, in.Do(t, http.MethodGet, admin.PathAPI+"/status", in.ReadToken, nil, nil).Status)
	require.Equal(t, http.StatusUnauthorized, in.Do(t, http.MethodGet, admin.PathAPI+"/status", "", nil, nil).Status)
	status, _, body := getBody(t, in.URL+admin.PathMetrics)
	require.Equal(t, http.StatusNotFound, status, "no /metrics on the public listener")
	require.NotContains(t, body, "fedas_")
	status, hdr, body := getBody(t, in.AdminURL+admin.PathMetrics)
	require.Equal(t, http.StatusOK, status)
	require.True(t, strings.HasPrefix(hdr.Get("Content-Type"), "text/plain"), hdr.Get("Content-Type"))
	require.Contains(t, body, "\nfedas_policy_version 1\n")
	require.Contains(t, body, "\nfedas_build_info{")

	want := metricstest.Series{}.
		HTTP("admin", "/admin/v1/status", "GET", 200).
		HTTP("admin", "/admin/v1/status", "GET", 401).
		HTTP("public", "unmatched", "GET", 404).
		HTTP("admin", "/metrics", "GET", 200)
	require.Equal(t, want, metricstest.Delta(before, metricstest.Snapshot(t, reg)))
}

// TestMetrics_AdminWithoutTokens: started without a tokens file (an
// explicit admin.listen), the admin listener serves /metrics and refuses
// every API request.
func TestMetrics_AdminWithoutTokens(t *testing.T) {
	in := admintest.Start(t, admintest.Options{NoTokens: true})
	status, _, body := getBody(t, in.AdminURL+admin.PathMetrics)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "fedas_policy_version 1")
	for _, tok := range []string{"", in.WriteToken, in.ReadToken, "fedas_admin_x"} {
		r := in.Do(t, http.MethodGet, admin.PathAPI+"/status", tok, nil, nil)
		require.Equal(t, http.StatusUnauthorized, r.Status, "token %q", tok)
		require.NotEmpty(t, r.Header.Get("WWW-Authenticate"))
	}
}
