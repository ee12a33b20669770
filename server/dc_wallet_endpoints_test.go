package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/storage/redistest"
)

// dcWalletEndpoint sends a wallet's request to the verifier's endpoints.
func dcWalletEndpoint(tb testing.TB, e *dcEnv, method, path, body string) reply {
	tb.Helper()
	req, err := http.NewRequest(method, e.in.URL+path, strings.NewReader(body))
	require.NoError(tb, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return do(tb, req)
}

// requestIDOf is the request id of a wallet URL's request_uri.
func requestIDOf(tb testing.TB, walletURL string) string {
	tb.Helper()
	u, err := url.Parse(walletURL)
	require.NoError(tb, err)
	ru := u.Query().Get("request_uri")
	i := strings.LastIndex(ru, "/")
	require.Positive(tb, i, ru)
	return ru[i+1:]
}

// TestDC_WalletEndpoints: every answer the wallet endpoints document, as a
// wallet meets it: the request object by GET (fetched once), an unknown
// request, a body over 256 KB
// (413), the address over its rate limit (429 slow_down with Retry-After,
// nothing burned) and storage down (503 temporarily_unavailable with
// Retry-After) — every error an RFC 6749 body with no-store.
func TestDC_WalletEndpoints(t *testing.T) {
	rs := redistest.Start(t)
	e := newDCEnv(t, dcEnvOptions{store: redisStore(t, rs.URL()), edit: func(c *config.Config) {
		on := true
		c.Limits.Rate.Enabled = &on
		c.Limits.Rate.Rules = append(c.Limits.Rate.Rules, config.RateRule{Endpoint: config.RateDCWallet, Scope: config.ScopeIP, Rate: 1, Period: 3600e9, Burst: 6})
	}})
	a := e.app(t, "demo-app")
	ch := a.initial(t, "login_hint", "wallet", "openid4vp_flow_type", "cross_device")
	id := requestIDOf(t, ch.s("credentials_request"))
	requireErr := func(r reply, status int, code string) {
		t.Helper()
		require.Equal(t, status, r.status, r.raw)
		require.Equal(t, code, r.str("error"), r.raw)
		require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	}

	got := dcWalletEndpoint(t, e, http.MethodGet, "/dc/request/"+id, "")
	require.Equal(t, http.StatusOK, got.status, got.raw)
	require.Equal(t, "application/oauth-authz-req+jwt", got.header.Get("Content-Type"))
	require.Len(t, strings.Split(got.raw, "."), 3)
	requireErr(dcWalletEndpoint(t, e, http.MethodGet, "/dc/request/"+id, ""), http.StatusBadRequest, "invalid_request")
	requireErr(dcWalletEndpoint(t, e, http.MethodPost, "/dc/request/AAAAAAAAAAAAAAAAAAAAAA", "wallet_nonce=abc"), http.StatusBadRequest, "invalid_request")
	requireErr(dcWalletEndpoint(t, e, http.MethodPost, "/dc/response", "state=AAAAAAAAAAAAAAAAAAAAAA&error=access_denied"), http.StatusBadRequest, "invalid_request")

	big := "response=" + strings.Repeat("A", 300<<10)
	requireErr(dcWalletEndpoint(t, e, http.MethodPost, "/dc/response", big), http.StatusRequestEntityTooLarge, "invalid_request")
	requireErr(dcWalletEndpoint(t, e, http.MethodPost, "/dc/request/"+id, big), http.StatusRequestEntityTooLarge, "invalid_request")

	// The burst is spent: 429 on every method of both endpoints.
	for _, m := range []struct{ method, path string }{{http.MethodGet, "/dc/request/" + id}, {http.MethodPost, "/dc/request/" + id}, {http.MethodPost, "/dc/response"}} {
		r := dcWalletEndpoint(t, e, m.method, m.path, "state=x")
		requireErr(r, http.StatusTooManyRequests, "slow_down")
		require.NotEmpty(t, r.header.Get("Retry-After"))
	}

	// Storage down: 503 with Retry-After (the limiter fails open).
	rs.Stop()
	for _, m := range []struct{ method, path, body string }{{http.MethodGet, "/dc/request/" + id, ""}, {http.MethodPost, "/dc/request/" + id, "wallet_nonce=abc"}, {http.MethodPost, "/dc/response", "state=" + id + "&error=access_denied"}} {
		r := dcWalletEndpoint(t, e, m.method, m.path, m.body)
		requireErr(r, http.StatusServiceUnavailable, "temporarily_unavailable")
		require.NotEmpty(t, r.header.Get("Retry-After"))
	}
}
