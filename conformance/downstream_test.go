package conformance_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/conformance"
	"github.com/fedas/fedas/conformance/conformancetest"
	"github.com/fedas/fedas/server/servertest"
)

// downstreamInputs configures env for the downstream profile: fed-basic
// pushes, demo-app is the other client.
func downstreamInputs(e *conformance.Env) {
	e.ClientID = "demo-app"
	e.PARClientID = fedClient
	e.PARAuth = conformance.ClientAuth{Method: "client_secret_basic", Secret: fedSecret}
	e.PARRedirectURI = fedRedirect
}

// TestDownstreamProfile: every downstream check passes against a fedas in
// the downstream role (AS2), with client_secret_basic and with
// private_key_jwt, and against AS1, which also federates (a pushed
// request there starts with its prompt); the expiry check, which waits,
// runs with --par-expiry against a downstream whose clock the wait
// advances; without --par-client-id
// every check is not applicable, and a server without a PAR endpoint in
// its metadata makes nothing applicable.
func TestDownstreamProfile(t *testing.T) {
	s := conformancetest.StartFederation(t)
	n := len(conformance.DownstreamChecks())
	for _, tc := range []struct {
		name   string
		issuer string
	}{{"downstream only", s.AS2.URL}, {"federating too", s.AS1.URL}} {
		t.Run(tc.name, func(t *testing.T) {
			rep := runProfile(t, tc.issuer, conformance.ProfileDownstream, downstreamInputs)
			requirePassing(t, rep, n, "downstream-request-uri-expired")
			assert.Contains(t, detail(rep, "downstream-request-uri-expired"), "--par-expiry")
			assert.Equal(t, 0, rep.ExitCode())
		})
	}
	t.Run("private_key_jwt", func(t *testing.T) {
		// AS1's own registration at AS2.
		rep := runProfile(t, s.AS2.URL, conformance.ProfileDownstream, func(e *conformance.Env) {
			e.ClientID, e.PARClientID, e.PARRedirectURI = "demo-app", "as1", "https://as1.example/web-callback"
			e.PARAuth, e.PARKey = conformance.ClientAuth{Method: "private_key_jwt"}, s.AS1Key
		})
		requirePassing(t, rep, n, "downstream-request-uri-expired")
		assert.Contains(t, detail(rep, "downstream-par-client-auth"), "a client assertion signed with another key: HTTP 401 invalid_client")
		var out bytes.Buffer
		require.NoError(t, rep.WriteJSON(&out))
		assert.Regexp(t, `client_assertion=\[redacted \d+ chars sha256:[0-9a-f]{8}\]`, out.String())
	})
	t.Run("expired request_uri", func(t *testing.T) {
		// A downstream of its own whose clock the wait advances: the check
		// waits out expires_in without sleeping.
		clock := &servertest.Clock{}
		ds := servertest.Start(t, servertest.Options{Clock: clock, Configure: func(c *config.Config) {
			c.Clients = append(c.Clients, conformancetest.FedBasic())
		}})
		var waited time.Duration
		rep := runProfile(t, ds.URL, conformance.ProfileDownstream, func(e *conformance.Env) {
			downstreamInputs(e)
			e.PARExpiry = true
			e.Sleep = func(_ context.Context, d time.Duration) error {
				waited += d
				clock.Advance(d)
				return nil
			}
		})
		requireAll(t, rep, n, conformance.Pass)
		assert.Equal(t, 91*time.Second, waited) // lifetimes.pushed_request (90 s) and a second
		assert.Contains(t, detail(rep, "downstream-request-uri-expired"), `HTTP 400 "invalid_request"`)
	})
	t.Run("no PAR client", func(t *testing.T) {
		rep := runProfile(t, s.AS2.URL, conformance.ProfileDownstream, func(e *conformance.Env) { e.ClientID = "demo-app" })
		requireAll(t, rep, n, conformance.NotApplicable)
		for _, r := range rep.Results {
			assert.Contains(t, r.Detail, "--par-client-id", r.ID)
		}
	})
	t.Run("no PAR endpoint", func(t *testing.T) {
		rep := runProfile(t, metadataOnly(t).URL, conformance.ProfileDownstream, downstreamInputs)
		requireAll(t, rep, n, conformance.NotApplicable)
		for _, r := range rep.Results {
			assert.Contains(t, r.Detail, "pushed_authorization_request_endpoint", r.ID)
		}
	})
	t.Run("a wrong secret", func(t *testing.T) {
		rep := runProfile(t, s.AS2.URL, conformance.ProfileDownstream, func(e *conformance.Env) {
			downstreamInputs(e)
			e.PARAuth.Secret = "not-the-secret"
		})
		st := statuses(rep)
		assert.Equal(t, conformance.Fail, st["downstream-par-created"])
		assert.Contains(t, detail(rep, "downstream-par-created"), "check --par-client-id")
		assert.Equal(t, 1, rep.ExitCode())
	})
}

// requirePassing: rep has n results, each a pass with its exchanges but
// the notApplicable ones.
func requirePassing(t *testing.T, rep *conformance.Report, n int, notApplicable ...string) {
	t.Helper()
	require.Len(t, rep.Results, n)
	for _, r := range rep.Results {
		want := conformance.Pass
		for _, id := range notApplicable {
			if id == r.ID {
				want = conformance.NotApplicable
			}
		}
		assert.Equal(t, want, r.Status, "%s: %s", r.ID, r.Detail)
		if want == conformance.Pass {
			assert.NotEmpty(t, r.Exchanges, r.ID)
		}
	}
}

// replaying puts in behind a proxy that answers a request_uri's second
// use at the native endpoint with its first answer: a server whose pushed
// requests are not single use.
func replaying(t *testing.T, in *servertest.Instance) string {
	type answer struct {
		status int
		header http.Header
		body   []byte
	}
	var mu sync.Mutex
	seen := map[string]answer{}
	var front *httptest.Server
	front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var reqBody bytes.Buffer
		_, _ = reqBody.ReadFrom(r.Body)
		ru := ""
		if r.URL.Path == "/native/authorize" {
			if v, err := url.ParseQuery(reqBody.String()); err == nil {
				ru = v.Get("request_uri")
			}
		}
		mu.Lock()
		a, replay := seen[ru]
		mu.Unlock()
		if !replay || ru == "" {
			req, _ := http.NewRequestWithContext(r.Context(), r.Method, in.URL+r.URL.RequestURI(), bytes.NewReader(reqBody.Bytes()))
			req.Header = r.Header.Clone()
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			a = answer{resp.StatusCode, resp.Header.Clone(), bytes.ReplaceAll(b.Bytes(), []byte(in.URL), []byte(front.URL))}
			a.header.Del("Content-Length")
			if ru != "" {
				mu.Lock()
				seen[ru] = a
				mu.Unlock()
			}
		}
		for k, v := range a.header {
			w.Header()[k] = v
		}
		w.WriteHeader(a.status)
		_, _ = w.Write(a.body)
	}))
	t.Cleanup(front.Close)
	return front.URL
}

// TestDownstreamProfile_Broken: a downstream whose request_uri can be
// used twice fails the single-use check, with both uses in its
// exchanges, and the run exits 1.
func TestDownstreamProfile_Broken(t *testing.T) {
	s := conformancetest.StartFederation(t)
	rep := runProfile(t, replaying(t, s.AS2), conformance.ProfileDownstream, downstreamInputs)
	st := statuses(rep)
	assert.Equal(t, conformance.Fail, st["downstream-request-uri-single-use"])
	assert.Contains(t, detail(rep, "downstream-request-uri-single-use"), "the second use of the request_uri was answered HTTP 403 \"insufficient_authorization\"")
	for _, r := range rep.Results {
		if r.ID == "downstream-request-uri-single-use" {
			require.Len(t, r.Exchanges, 3) // the push and two uses
		}
	}
	for _, id := range []string{"downstream-par-client-auth", "downstream-par-created", "downstream-request-uri-native", "downstream-request-uri-unknown"} {
		assert.Equal(t, conformance.Pass, st[id], id)
	}
	assert.Equal(t, 1, rep.ExitCode())
}

// statuses maps each check's ID to its status.
func statuses(rep *conformance.Report) map[string]conformance.Status {
	m := map[string]conformance.Status{}
	for _, r := range rep.Results {
		m[r.ID] = r.Status
	}
	return m
}
