package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/conformance"
	"github.com/fedas/fedas/server/servertest"
)

// run runs the fipa profile against issuer with the given options.
func run(t *testing.T, issuer string, configure func(*conformance.Env)) *conformance.Report {
	t.Helper()
	env := conformance.NewEnv(issuer, 10*time.Second)
	if configure != nil {
		configure(env)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return conformance.Run(ctx, env, conformance.Checks(), []conformance.Profile{conformance.ProfileFiPA})
}

func statuses(rep *conformance.Report) map[string]conformance.Status {
	m := map[string]conformance.Status{}
	for _, r := range rep.Results {
		m[r.ID] = r.Status
	}
	return m
}

// TestFedas: every fipa check passes against a real fedas (the demo
// configuration), with a public client and alice's password, and with a
// confidential first-party client (HTTP Basic, for which PKCE is not
// checked); without credentials the sign-in checks are not applicable
// and nothing fails.
func TestFedas(t *testing.T) {
	in := servertest.Start(t, servertest.Options{Configure: func(c *config.Config) {
		// demo-partner, made first-party: a confidential client at the
		// native endpoint.
		for i := range c.Clients {
			if c.Clients[i].ID == "demo-partner" {
				c.Clients[i].FirstParty = true
			}
		}
	}})
	for _, tc := range []struct {
		name      string
		configure func(*conformance.Env)
		notApp    []string
	}{
		{"public client with test user", func(e *conformance.Env) {
			e.ClientID, e.Username, e.Password = "demo-app", "alice", "wonderland"
		}, nil},
		{"confidential client with test user", func(e *conformance.Env) {
			e.ClientID, e.Username, e.Password = "demo-partner", "alice", "wonderland"
			e.Auth = conformance.ClientAuth{Method: "client_secret_basic", Secret: "demo-partner-secret"}
		}, []string{"fipa-initial-pkce-missing"}},
		{"public client, no test user", func(e *conformance.Env) { e.ClientID = "demo-app" },
			[]string{"fipa-password-signin", "fipa-token-exchange"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := run(t, in.URL, tc.configure)
			require.Len(t, rep.Results, len(conformance.FiPAChecks()))
			for _, r := range rep.Results {
				want := conformance.Pass
				for _, id := range tc.notApp {
					if id == r.ID {
						want = conformance.NotApplicable
					}
				}
				assert.Equal(t, want, r.Status, "%s: %s", r.ID, r.Detail)
			}
			assert.Equal(t, 0, rep.ExitCode())
		})
	}
}

// metadataOnly is an RFC 8414 server without a native endpoint.
func metadataOnly(t *testing.T) *httptest.Server {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/oauth-authorization-server" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize", "token_endpoint": srv.URL + "/token",
			"response_types_supported": []string{"code"}, "code_challenge_methods_supported": []string{"S256"},
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestNoNativeEndpoint: a server whose metadata has no native endpoint,
// and one with no metadata at all: every fipa check is not applicable
// and the run exits 0.
func TestNoNativeEndpoint(t *testing.T) {
	none := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(none.Close)
	for _, tc := range []struct {
		name, issuer string
	}{
		{"metadata without native endpoint", metadataOnly(t).URL},
		{"no metadata", none.URL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := run(t, tc.issuer, func(e *conformance.Env) { e.ClientID, e.Username, e.Password = "c", "u", "p" })
			require.Len(t, rep.Results, len(conformance.FiPAChecks()))
			for _, r := range rep.Results {
				assert.Equal(t, conformance.NotApplicable, r.Status, "%s: %s", r.ID, r.Detail)
				assert.Empty(t, r.Exchanges, r.ID)
			}
			assert.Equal(t, 0, rep.ExitCode())
		})
	}
}

// broken puts a fedas behind a proxy that breaks one thing.
func broken(t *testing.T, in *servertest.Instance, breakIt func(path string, h http.Header, body []byte) []byte) string {
	var front *httptest.Server
	front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, in.URL+r.URL.RequestURI(), r.Body)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		body := bytes.ReplaceAll(buf.Bytes(), []byte(in.URL), []byte(front.URL))
		h := resp.Header.Clone()
		body = breakIt(r.URL.Path, h, body)
		h.Del("Content-Length")
		for k, v := range h {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(body)
	}))
	t.Cleanup(front.Close)
	return front.URL
}

// TestBrokenServer: a server that breaks one rule fails the check of that
// rule, with the exchange that shows it, and the run exits 1.
func TestBrokenServer(t *testing.T) {
	in := servertest.Start(t, servertest.Options{})
	for _, tc := range []struct {
		name    string
		breakIt func(path string, h http.Header, body []byte) []byte
		fails   string
		inBody  string
	}{
		{"errors without no-store", func(path string, h http.Header, body []byte) []byte {
			if strings.HasPrefix(path, "/native/") {
				h.Set("Cache-Control", "no-cache")
			}
			return body
		}, "fipa-error-body", "lacks no-store"},
		{"one endpoint name", func(path string, h http.Header, body []byte) []byte {
			if strings.HasPrefix(path, "/.well-known/") {
				return bytes.Replace(body, []byte(`"authorization_challenge_endpoint"`), []byte(`"x_unused"`), 1)
			}
			return body
		}, "fipa-metadata-native-endpoint", "authorization_challenge_endpoint"},
		{"no S256", func(path string, h http.Header, body []byte) []byte {
			if strings.HasPrefix(path, "/.well-known/") {
				return bytes.Replace(body, []byte(`"S256"`), []byte(`"plain"`), 1)
			}
			return body
		}, "fipa-metadata-s256", "lacks S256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := run(t, broken(t, in, tc.breakIt), func(e *conformance.Env) { e.ClientID = "demo-app" })
			st := statuses(rep)
			assert.Equal(t, conformance.Fail, st[tc.fails])
			for _, r := range rep.Results {
				if r.ID == tc.fails {
					assert.Contains(t, r.Detail, tc.inBody)
					require.NotEmpty(t, r.Exchanges)
				}
			}
			assert.Equal(t, 1, rep.ExitCode())
			var md bytes.Buffer
			require.NoError(t, rep.WriteMarkdown(&md))
			assert.Contains(t, md.String(), "## `"+tc.fails+"` failed")
			assert.Contains(t, md.String(), "```http")
		})
	}
}

// TestPanicIsFailure: a check that panics fails with the panic's message
// and the checks after it still run.
func TestPanicIsFailure(t *testing.T) {
	env := conformance.NewEnv(metadataOnly(t).URL, time.Second)
	checks := []conformance.Check{
		{ID: "boom", Profile: conformance.ProfileFiPA, Run: func(context.Context, *conformance.Env) conformance.Result { panic("kaboom") }},
		{ID: "after", Profile: conformance.ProfileFiPA, Run: func(context.Context, *conformance.Env) conformance.Result {
			return conformance.Result{Status: conformance.Pass}
		}},
		{ID: "other-profile", Profile: conformance.ProfileFederation, Run: func(context.Context, *conformance.Env) conformance.Result { panic("not run") }},
	}
	rep := conformance.Run(context.Background(), env, checks, []conformance.Profile{conformance.ProfileFiPA})
	require.Len(t, rep.Results, 2)
	assert.Equal(t, conformance.Fail, rep.Results[0].Status)
	assert.Contains(t, rep.Results[0].Detail, "kaboom")
	assert.Equal(t, conformance.Pass, rep.Results[1].Status)
	assert.Equal(t, 1, rep.ExitCode())
}

// TestRedaction: the password, the PKCE verifier and the tokens never
// reach a report.
func TestRedaction(t *testing.T) {
	in := servertest.Start(t, servertest.Options{})
	rep := run(t, in.URL, func(e *conformance.Env) { e.ClientID, e.Username, e.Password = "demo-app", "alice", "wonderland" })
	var out bytes.Buffer
	require.NoError(t, rep.WriteJSON(&out))
	require.Equal(t, 0, rep.ExitCode(), out.String())
	// The sign-in's exchanges are in the report, its password and the
	// tokens are not.
	assert.Contains(t, out.String(), `password=%5Bredacted%5D`)
	assert.Contains(t, out.String(), `\"access_token\":\"[redacted]\"`)
	assert.NotContains(t, out.String(), "wonderland")
	assert.Contains(t, out.String(), `code_verifier=%5Bredacted%5D`)
}
