package admin_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/admin/admintest"
)

// TestRedteam_Abuse_ImportUnknownSigningKey (SECURITY-RESULTS.md AB14):
// the import is another way to set the active signing key; a kid the
// instance does not hold is refused there as at PUT /keys/active — 400
// invalid_request with a problem, RFC 6749-shaped and no-store — and
// commits nothing; a read token cannot import at all. The instance keeps
// signing with its key.
func TestRedteam_Abuse_ImportUnknownSigningKey(t *testing.T) {
	in, api := start(t, admintest.Options{Configure: twoSigningKeys(t)})
	ex := api.do(t, http.MethodGet, v1+"/export", in.WriteToken, nil, nil)
	require.Equal(t, http.StatusOK, ex.Status)
	var doc []string
	for _, l := range strings.Split(string(ex.Body), "\n") {
		if l != "keys:" && !strings.HasPrefix(strings.TrimSpace(l), "active_signing_key:") {
			doc = append(doc, l)
		}
	}
	bad := strings.Join(doc, "\n") + "\nkeys:\n  active_signing_key: key-z\n"
	m := refused(t, api.do(t, http.MethodPost, v1+"/import", in.WriteToken, yamlHdr(`"v1"`), bad), http.StatusBadRequest, "invalid_request")
	require.Contains(t, m["error_description"].(string)+" "+strings.Join(problemMessages(m), " "), "key-z")
	refused(t, api.do(t, http.MethodPost, v1+"/import", in.ReadToken, yamlHdr(`"v1"`), string(ex.Body)), http.StatusForbidden, "insufficient_scope")
	require.EqualValues(t, 1, head(t, api), "nothing was committed")
	require.Equal(t, "key-a", in.Server.ActiveKID())
}

func problemMessages(m map[string]any) []string {
	var out []string
	ps, _ := m["problems"].([]any)
	for _, p := range ps {
		if pm, ok := p.(map[string]any); ok {
			s, _ := pm["message"].(string)
			out = append(out, s)
		}
	}
	return out
}
