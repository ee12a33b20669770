package admin_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/admin/admintest"
)

// TestAPIClientRefreshTokenRotation (SECURITY-RESULTS.md RT06): the admin
// API edits clients[].refresh_token_rotation through the same validation
// as the file: always on a public client is stored and shown, never on a
// public client is refused with a problem at that field (RFC 9700
// §4.14.2), never on a confidential client is accepted, anything else is
// refused; nothing refused is committed.
func TestAPIClientRefreshTokenRotation(t *testing.T) {
	in, api := start(t, admintest.Options{})
	w := in.WriteToken
	public := func(id, rotation string) map[string]any {
		return map[string]any{"id": id, "token_endpoint_auth_method": "none", "first_party": true,
			"scopes": []string{"openid"}, "refresh_token_rotation": rotation}
	}
	m := create(t, api, "clients", public("rot-always", "always"))
	require.Equal(t, "always", m["item"].(map[string]any)["refresh_token_rotation"])
	got, _ := get(t, api, v1+"/clients/rot-always")
	require.Equal(t, "always", got["refresh_token_rotation"])

	headBefore := head(t, api)
	for _, tc := range []struct{ name, rotation, msg string }{
		{"never on a public client", "never", "never is not allowed for a public client"},
		{"unknown value", "sometimes", "sometimes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := refused(t, api.do(t, http.MethodPost, v1+"/clients", w, nil, public("rot-"+tc.rotation, tc.rotation)), http.StatusBadRequest, "invalid_request")
			found := false
			for _, p := range problemsOf(t, m) {
				if p.Field == "refresh_token_rotation" && strings.Contains(p.Message, tc.msg) {
					found = true
				}
			}
			require.True(t, found, "no problem at refresh_token_rotation in %v", m["problems"])
		})
	}
	require.Equal(t, headBefore, head(t, api), "nothing refused was committed")

	partner, tag := get(t, api, v1+"/clients/demo-partner")
	partner["refresh_token_rotation"] = "never"
	delete(partner, "secret_sha256_set")
	ok(t, api.do(t, http.MethodPut, v1+"/clients/demo-partner", w, ifMatch(tag), partner), http.StatusOK)
	got, _ = get(t, api, v1+"/clients/demo-partner")
	require.Equal(t, "never", got["refresh_token_rotation"])
}
