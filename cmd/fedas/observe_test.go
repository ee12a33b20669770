package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestServe_AdminListenWithoutTokensServesMetrics: the real binary with
// admin.listen set and no tokens file starts the admin listener: /metrics
// answers there without a token (and counts the public listener's
// requests), the API refuses every request, and the public listener has
// no /metrics. Its log lines are JSON with ISO 8601 times, one access
// line per request at info level carrying the request id.
func TestServe_AdminListenWithoutTokensServesMetrics(t *testing.T) {
	bin := buildBinary(t)
	addr, adminAddr := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(t.TempDir(), "fedas.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(reloadBase, addr)+"admin:\n  listen: "+adminAddr+"\n"), 0o600))
	p := startBinary(t, bin, cfgPath, addr)

	req, err := http.NewRequest(http.MethodGet, p.base+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("X-Request-Id", "probe-1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "no /metrics on the public listener")
	require.Equal(t, "probe-1", resp.Header.Get("X-Request-Id"))

	resp, err = http.Get("http://" + adminAddr + "/admin/v1/status")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "no tokens file: the API refuses everyone")

	resp, err = http.Get("http://" + adminAddr + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), "\nfedas_policy_version 1\n")
	require.Contains(t, string(body), `fedas_http_requests_total{listener="public",method="GET",route="unmatched",status="404"} 1`)
	require.Contains(t, string(body), `fedas_http_requests_total{listener="admin",method="GET",route="/admin/v1/status",status="401"} 1`)

	waitLog(t, p, `"request_id":"probe-1"`)
	require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
	select {
	case err := <-p.done:
		require.NoError(t, err, "clean exit:\n%s", p.logs.String())
	case <-time.After(15 * time.Second):
		t.Fatal("fedas did not exit")
	}
	access := 0
	for _, line := range strings.Split(strings.TrimSpace(p.logs.String()), "\n") {
		var f map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &f), "not JSON: %s", line)
		ts, _ := f["ts"].(string)
		_, err := time.Parse("2006-01-02T15:04:05.000Z0700", ts)
		require.NoError(t, err, "ts is not ISO 8601: %s", line)
		if f["msg"] == "request" {
			access++
			require.Equal(t, "info", f["level"], line)
			require.NotEmpty(t, f["request_id"], line)
		}
		if f["request_id"] == "probe-1" {
			require.Equal(t, "unmatched", f["route"], line)
			require.Equal(t, float64(http.StatusNotFound), f["status"], line)
		}
	}
	require.GreaterOrEqual(t, access, 4, "one access line per request (health checks, the three above)")
}
