package admin_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/admin/admintest"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/federation/fedtest"
)

// TestSSRF_EnteredURLs: a URL an admin enters that points at loopback,
// a private network, link-local or cloud metadata is refused at write
// time with its path, and nothing is committed.
func TestSSRF_EnteredURLs(t *testing.T) {
	in := admintest.Start(t, admintest.Options{StrictSSRF: true})
	canary := fedtest.StartCanary(t)
	port := canary.URL[strings.LastIndex(canary.URL, ":")+1:]
	for _, tc := range []struct {
		name, field, url string
	}{
		{"loopback literal", "issuer", "https://127.0.0.1:" + port},
		{"loopback http", "issuer", canary.URL},
		{"cloud metadata", "issuer", "https://169.254.169.254"},
		{"metadata name", "issuer", "https://metadata.google.internal"},
		{"private network", "issuer", "https://10.1.2.3"},
		{"localhost", "issuer", "https://localhost:" + port},
		{"numeric loopback", "issuer", "https://2130706433"},
		{"ipv6 loopback", "issuer", "https://[::1]:" + port},
		{"logo at metadata", "logo", "https://169.254.169.254/logo.png"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := map[string]any{"id": "x", "issuer": "https://as.example", "client_id": "us",
				"auth": map[string]any{"method": "client_secret_basic", "secret_env": "FEDAS_SECRET_SSRF_UNSET"}}
			d[tc.field] = tc.url
			r := in.Do(t, http.MethodPost, "/admin/v1/downstreams", in.WriteToken, nil, d)
			require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
			var hit bool
			for _, p := range r.JSON(t)["problems"].([]any) {
				p := p.(map[string]any)
				if p["field"] == tc.field {
					hit = true
				}
			}
			require.True(t, hit, "a problem names %s: %s", tc.field, r.Body)
			st := in.Do(t, http.MethodGet, "/admin/v1/status", in.ReadToken, nil, nil)
			require.EqualValues(t, 1, st.JSON(t)["version"], "nothing committed")
		})
	}
	require.Zero(t, canary.Hits(), "nothing was fetched")
}

// TestSSRF_AdminFetches: discovery through the admin API never reaches a
// forbidden destination, including a name that resolves to loopback and
// a redirect to a canary.
func TestSSRF_AdminFetches(t *testing.T) {
	in := admintest.Start(t, admintest.Options{StrictSSRF: true})
	canary := fedtest.StartCanary(t)
	port := canary.URL[strings.LastIndex(canary.URL, ":")+1:]
	for _, iss := range []string{
		"https://127.0.0.1:" + port, canary.URL, "https://169.254.169.254", "https://localhost:" + port,
		fmt.Sprintf("https://%s:%s", "localtest.localhost", port),
	} {
		r := in.Do(t, http.MethodPost, "/admin/v1/discover", in.WriteToken, nil, map[string]string{"issuer": iss})
		require.Contains(t, []int{http.StatusOK, http.StatusBadRequest}, r.Status, "%s", r.Body)
		require.Contains(t, string(r.Body), "netguard: refused", "%s: %s", iss, r.Body)
	}
	require.Zero(t, canary.Hits(), "the canary was never reached")

	// With loopback allowed (dev), a metadata endpoint that redirects to
	// the canary is not followed.
	dev := admintest.Start(t, admintest.Options{})
	ds := fedtest.Start(t, fedtest.Options{RedirectTo: canary.URL, Modes: map[fedtest.Endpoint]fedtest.Mode{fedtest.Metadata: fedtest.Redirect}})
	r := dev.Do(t, http.MethodPost, "/admin/v1/discover", dev.WriteToken, nil, map[string]string{"issuer": ds.URL})
	require.Contains(t, string(r.Body), "redirect", "%s", r.Body)
	require.Zero(t, canary.Hits(), "the redirect was not followed")
}

// TestWrite_UnusableKeyRefused: a downstream whose inline key is not a
// private JWK is refused at write time, with the key's path, instead of
// being committed and then refused by every instance.
func TestWrite_UnusableKeyRefused(t *testing.T) {
	in := admintest.Start(t, admintest.Options{})
	for _, key := range []string{`{"kty":"EC"}`, `not json`, `{"kty":"oct","k":"c2VjcmV0","alg":"HS256","kid":"x"}`} {
		r := in.Do(t, http.MethodPost, "/admin/v1/downstreams", in.WriteToken, nil, map[string]any{
			"id": "bank", "issuer": "https://bank.example", "client_id": "us",
			"auth": map[string]any{"method": "private_key_jwt", "key": key}})
		require.Equal(t, http.StatusBadRequest, r.Status, "%s: %s", key, r.Body)
		require.Contains(t, string(r.Body), `"field":"auth.key"`, "%s", r.Body)
		require.NotContains(t, string(r.Body), "c2VjcmV0", "the key is not echoed")
	}
	st := in.Do(t, http.MethodGet, "/admin/v1/status", in.ReadToken, nil, nil)
	require.EqualValues(t, 1, st.JSON(t)["version"], "nothing committed")
}

// TestSecretReferences_Limited: a secret reference an admin adds may name
// only FEDAS_SECRET_ variables and files inside admin.secrets_dir (no
// symlink out of it); references already in the policy are kept as they
// are, so an unrelated write still commits.
func TestSecretReferences_Limited(t *testing.T) {
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	require.NoError(t, os.Mkdir(secrets, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(secrets, "bank"), []byte("bank-secret"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "outside"), []byte("host-secret"), 0o600))
	require.NoError(t, os.Symlink(filepath.Join(dir, "outside"), filepath.Join(secrets, "link")))
	t.Setenv("FEDAS_SECRET_BANK", "bank-secret")
	t.Setenv("FEDAS_OTHER", "x")
	t.Setenv("FEDAS_CFG_SECRET", "from-the-file")
	in := admintest.Start(t, admintest.Options{Configure: func(c *config.Config) {
		c.Admin.SecretsDir = secrets
		// A reference the config file made: not limited.
		c.Downstreams = append(c.Downstreams, config.Downstream{ID: "cfg", Issuer: "https://cfg.example", ClientID: "us",
			Auth: config.DownstreamAuth{Method: "client_secret_basic", SecretEnv: "FEDAS_CFG_SECRET", Secret: "from-the-file"}})
	}})
	for _, tc := range []struct {
		name, field, value string
		ok                 bool
	}{
		{"prefixed env", "secret_env", "FEDAS_SECRET_BANK", true},
		{"other env", "secret_env", "FEDAS_OTHER", false},
		{"bare prefix", "secret_env", "FEDAS_SECRET_", false},
		{"file inside", "secret_file", filepath.Join(secrets, "bank"), true},
		{"file outside", "secret_file", filepath.Join(dir, "outside"), false},
		{"dot-dot out", "secret_file", secrets + "/../outside", false},
		{"symlink out", "secret_file", filepath.Join(secrets, "link"), false},
		{"relative", "secret_file", "secrets/bank", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := strings.ReplaceAll(tc.name, " ", "_")
			id = strings.ReplaceAll(id, "-", "_")
			r := in.Do(t, http.MethodPost, "/admin/v1/downstreams", in.WriteToken, nil, map[string]any{"id": id, "issuer": "https://" + id + ".example",
				"client_id": "us", "auth": map[string]any{"method": "client_secret_basic", tc.field: tc.value}})
			if tc.ok {
				require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
				return
			}
			require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
			require.Contains(t, string(r.Body), `"field":"auth.`+tc.field+`"`, "%s", r.Body)
			require.NotContains(t, string(r.Body), "host-secret")
		})
	}
	// The config file's own reference stays usable: an unrelated edit of
	// that downstream commits.
	g := in.Do(t, http.MethodGet, "/admin/v1/downstreams/cfg", in.WriteToken, nil, nil)
	body := g.JSON(t)
	body["name"] = "Renamed"
	w := in.Do(t, http.MethodPut, "/admin/v1/downstreams/cfg", in.WriteToken, map[string]string{"If-Match": g.Header.Get("ETag")}, body)
	require.Equal(t, http.StatusOK, w.Status, "%s", w.Body)
}
