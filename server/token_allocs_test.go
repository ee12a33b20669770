//go:build !race

package server_test

// The race detector instruments memory accesses and allocates for its
// own bookkeeping, so allocation counts under -race say nothing about
// the server's; this gate runs without it only.

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/storage/memory"
)

// TestTokenEndpoint_Allocs bounds the allocations of one token request
// served by the in-process handler on the memory backend (the request
// and its recorder are made beforehand): a code exchange with and
// without an ES256 ID token, and a refresh. The bounds are the counts
// measured when the token endpoint's cost was cut (issue 13: 318 / 245 /
// 218) plus about 15 %, so that a change putting reflection or
// re-encoding back on this path fails here rather than only in
// BENCHMARKS.md. Allocation counts do not depend on timing.
func TestTokenEndpoint_Allocs(t *testing.T) {
	cfg := config.Default()
	cfg.Issuer = "https://as.example"
	testConfig(cfg)
	cfg.Limits.MaxLiveSessionsPerIP, cfg.Limits.MaxLiveSessionsPerClient = 1<<30, 1<<30
	for _, r := range config.DefaultRateRules() {
		r.Rate, r.Burst = 1_000_000, 1_000_000
		cfg.Limits.Rate.Rules = append(cfg.Limits.Rate.Rules, r)
	}
	require.NoError(t, cfg.Validate())
	st := memory.New()
	t.Cleanup(func() { _ = st.Close() })
	srv, err := server.New(server.Options{Config: cfg, Store: st, Logger: zap.NewNop()})
	require.NoError(t, err)
	h := srv.Handler()

	call := func(path string, form url.Values, want int) map[string]any {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, tokenTestRequest(path, form))
		if rec.Code != want {
			t.Fatalf("%s: status %d, want %d: %s", path, rec.Code, want, rec.Body)
		}
		var body map[string]any
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
		return body
	}
	code := func(scope string) url.Values {
		pk := sdk.NewPKCE()
		b := call(server.PathNative, initialFormScope(pk, scope, ""), http.StatusForbidden)
		b = call(server.PathNative, passwordForm(b["auth_session"].(string), "carol", "carol-pw"), http.StatusOK)
		return tokenForm(b["authorization_code"].(string), pk)
	}
	const runs = 40
	tests := []struct {
		name string
		max  float64
		prep func() url.Values
	}{
		{"token-exchange", 366, func() url.Values { return code(benchScope) }},
		{"token-exchange-no-openid", 282, func() url.Values { return code("offline_access") }},
		{"refresh", 251, func() url.Values {
			b := call(server.PathToken, code(benchScope), http.StatusOK)
			return refreshForm(b["refresh_token"].(string))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reqs := make([]*http.Request, runs+1) // AllocsPerRun runs once more to warm up
			recs := make([]*httptest.ResponseRecorder, runs+1)
			for i := range reqs {
				reqs[i], recs[i] = tokenTestRequest(server.PathToken, tt.prep()), httptest.NewRecorder()
			}
			i := 0
			got := testing.AllocsPerRun(runs, func() {
				h.ServeHTTP(recs[i], reqs[i])
				i++
			})
			for j, rec := range recs {
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"access_token"`) {
					t.Fatalf("request %d: status %d: %s", j, rec.Code, rec.Body)
				}
			}
			t.Logf("%.0f allocations per request (at most %.0f)", got, tt.max)
			if got > tt.max {
				t.Errorf("%s: %.0f allocations per request, more than %.0f", tt.name, got, tt.max)
			}
		})
	}
}

// tokenTestRequest is a form POST to path.
func tokenTestRequest(path string, form url.Values) *http.Request {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}
