package server_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/sdk"
)

// H06b (docs/decisions.md Q14, RFC 9126 §2.1): a federating client with a
// single registered redirect_uri may push without one, however the client
// is named — HTTP Basic alone (no client_id in the body) included, which
// used to get 400 invalid_request; and a wrong secret is 401 invalid_client
// whether or not redirect_uri is sent. A client that is not federating
// still has to name its redirect_uri (H06).
func TestPAR_DefaultRedirectURIForFederatingClients(t *testing.T) {
	in := wrap(start(t, nil, appSecConfig))
	for _, tc := range []struct {
		name        string
		client      string
		bodyID      bool
		secret      string
		status      int
		wantErrCode string
	}{
		{"federating, Basic only", "fed-partner", false, fedPartnerSecret, http.StatusCreated, ""},
		{"federating, Basic and client_id", "fed-partner", true, fedPartnerSecret, http.StatusCreated, ""},
		{"federating, wrong secret, Basic only", "fed-partner", false, "wrong", http.StatusUnauthorized, "invalid_client"},
		{"federating, wrong secret, Basic and client_id", "fed-partner", true, "wrong", http.StatusUnauthorized, "invalid_client"},
		{"not federating, Basic only", "demo-partner", false, partnerSecret, http.StatusBadRequest, "invalid_request"},
		{"not federating, Basic and client_id", "demo-partner", true, partnerSecret, http.StatusBadRequest, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pk := sdk.NewPKCE()
			f := url.Values{"response_type": {"code"}, "scope": {"openid"}, "state": {"state-12345"},
				"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}
			if tc.bodyID {
				f.Set("client_id", tc.client)
			}
			r := post(t, in.parURL(), f, basic(tc.client, tc.secret))
			if tc.wantErrCode != "" {
				requireOAuthError(t, r, tc.status, tc.wantErrCode)
				require.Empty(t, r.str("request_uri"))
				return
			}
			require.Equal(t, tc.status, r.status, r.raw)
			require.NotEmpty(t, r.str("request_uri"))
		})
	}
}
