package server_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server/servertest"
)

// TestLogs_NoSecrets: through a federated flow, a local flow and a
// handful of failures, logged at debug level, no code, token, password,
// auth_session value or client assertion appears in any log entry.
func TestLogs_NoSecrets(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	key := newFedKey(t, "as1-key")
	as2 := wrap(servertest.Start(t, servertest.Options{Logger: log, Configure: func(c *config.Config) {
		testConfig(c)
		c.Clients = append(c.Clients, federatingClient("as1", key, true))
	}}))
	as1 := wrap(servertest.Start(t, servertest.Options{Logger: log, Configure: func(c *config.Config) {
		testConfig(c)
		c.Downstreams = append(c.Downstreams, downstreamOf("as2", as2.URL, "as1", key))
		emailPrompt(c, "as2.example", "as2")
	}}))

	var secrets []string
	collect := func(_ string, _ string, form url.Values, _ int, body []byte) {
		for _, k := range []string{"password", "otp", "auth_session", "authorization_code", "code", "code_verifier", "request_uri", "refresh_token", "client_assertion"} {
			if v := form.Get(k); len(v) >= 6 {
				secrets = append(secrets, v)
			}
		}
		var r map[string]any
		if json.Unmarshal(body, &r) == nil {
			for _, k := range []string{"auth_session", "authorization_code", "access_token", "refresh_token", "id_token", "request_uri"} {
				if v, _ := r[k].(string); len(v) >= 6 {
					secrets = append(secrets, v)
				}
			}
			if fb, _ := r["federation_body"].(string); fb != "" {
				q, _ := url.ParseQuery(fb)
				secrets = append(secrets, q.Get("request_uri"))
			}
		}
	}
	c := as1.Client(t, "demo-app")
	c.OnExchange = collect
	code, pk, err := c.Authorize(context.Background(), url.Values{"scope": {"openid offline_access"}}, answerAll("carol@as2.example"))
	require.NoError(t, err)
	tok, err := c.Exchange(context.Background(), code, pk)
	require.NoError(t, err)
	_, err = c.Refresh(context.Background(), tok.RefreshToken)
	require.NoError(t, err)
	// Failures log too: a replayed code, a wrong password, a bad session.
	_, err = c.Exchange(context.Background(), code, pk)
	require.Error(t, err)
	local := as2.Client(t, "demo-app")
	local.OnExchange = collect
	_, _, err = local.Authorize(context.Background(), url.Values{"scope": {"openid"}}, func(context.Context, sdk.Response) (url.Values, error) {
		return url.Values{"username": {"carol"}, "password": {"not-the-password-123"}}, nil
	})
	require.Error(t, err)
	secrets = append(secrets, "carol-pw", "not-the-password-123", tok.AccessToken, tok.RefreshToken)

	require.Greater(t, len(secrets), 10)
	require.NotZero(t, logs.Len())
	for _, e := range logs.All() {
		b, err := json.Marshal(e.ContextMap())
		require.NoError(t, err)
		line := e.Message + " " + string(b)
		for _, sec := range secrets {
			require.False(t, strings.Contains(line, sec), "a secret reached the logs: %q in %q", sec[:6]+"…", e.Message)
		}
	}
}
