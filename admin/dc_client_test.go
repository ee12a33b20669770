package admin_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/admin/admintest"
)

// TestAPIClientDigitalCredentials: a client's digital_credentials settings
// go through the admin API's document (the contract check validates the
// exchange) and through config validation: on an instance without
// digital_credentials enabled they are refused with a 400 naming the
// problem, and nothing is committed.
func TestAPIClientDigitalCredentials(t *testing.T) {
	in, api := start(t, admintest.Options{})
	headBefore := head(t, api)
	body := map[string]any{"id": "dc-app", "token_endpoint_auth_method": "none", "first_party": true, "scopes": []string{"openid"},
		"digital_credentials": map[string]any{"dialect": "wallet", "openid4vp_redirect_uris": []string{"https://app.example/dc"},
			"rules": []map[string]any{{"login_hint": "wallet", "query": "pid"}}}}
	m := refused(t, api.do(t, http.MethodPost, v1+"/clients", in.WriteToken, nil, body), http.StatusBadRequest, "invalid_request")
	require.NotEmpty(t, problemsOf(t, m))
	require.Equal(t, headBefore, head(t, api), "nothing refused was committed")
	got, _ := get(t, api, v1+"/clients/demo-app")
	require.NotContains(t, got, "digital_credentials", "a client without settings shows none")
}
