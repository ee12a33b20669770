package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
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

// onClock runs the kit on the server's clock: its waits advance clock
// instead of sleeping, and its proofs and one-time codes follow it.
func onClock(e *conformance.Env, clock *servertest.Clock) {
	e.Now = clock.Now
	e.Sleep = func(_ context.Context, d time.Duration) error {
		clock.Advance(d)
		return nil
	}
}

// withFlags sets every fipa input for conformancetest.FedasConfig.
func withFlags(e *conformance.Env, callback string) {
	e.ThirdPartyClientID, e.OtherClientID = conformancetest.ThirdParty, conformancetest.OtherClient
	e.WebParams = conformancetest.WebParams(callback)
	e.SessionTTL = conformancetest.SessionTTL
}

// TestFedas: every fipa check passes against a real fedas, with a public
// client (alice's password; bob's password and TOTP) and with a
// confidential first-party client (HTTP Basic, for which PKCE is not
// checked); without credentials and flags their checks are not
// applicable and nothing fails.
func TestFedas(t *testing.T) {
	clock := &servertest.Clock{}
	in := servertest.Start(t, servertest.Options{Clock: clock, Configure: conformancetest.FedasConfig})
	all := []string{"fipa-first-party-only", "fipa-redirect-to-web", "fipa-auth-session-client-binding", "fipa-auth-session-expiry"}
	for _, tc := range []struct {
		name      string
		configure func(*conformance.Env)
		notApp    []string
	}{
		{"public client, alice", func(e *conformance.Env) {
			e.ClientID, e.Username, e.Password = "demo-app", "alice", "wonderland"
			withFlags(e, conformancetest.AppCallback)
		}, nil},
		{"public client, bob with TOTP", func(e *conformance.Env) {
			e.ClientID, e.Username, e.Password, e.TOTPSecret = "demo-app", "bob", "builder", "JBSWY3DPEHPK3PXP"
			withFlags(e, conformancetest.AppCallback)
		}, nil},
		{"confidential client, alice", func(e *conformance.Env) {
			e.ClientID, e.Username, e.Password = "demo-partner", "alice", "wonderland"
			e.Auth = conformance.ClientAuth{Method: "client_secret_basic", Secret: "demo-partner-secret"}
			withFlags(e, conformancetest.PartnerCallback)
		}, []string{"fipa-initial-pkce-missing"}},
		{"public client, no test user, no flags", func(e *conformance.Env) { e.ClientID = "demo-app" },
			append([]string{"fipa-password-signin", "fipa-token-exchange", "fipa-code-single-use", "fipa-auth-session-dead-after-code"}, all...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := run(t, in.URL, func(e *conformance.Env) {
				onClock(e, clock)
				tc.configure(e)
			})
			require.Len(t, rep.Results, len(conformance.FiPAChecks()))
			for _, r := range rep.Results {
				want := conformance.Pass
				if slices.Contains(tc.notApp, r.ID) {
					want = conformance.NotApplicable
				}
				assert.Equal(t, want, r.Status, "%s: %s", r.ID, r.Detail)
				if r.Status == conformance.Pass && !strings.HasPrefix(r.ID, "fipa-metadata") {
					assert.NotEmpty(t, r.Exchanges, "%s: a pass names its exchanges", r.ID)
				}
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

// onPath applies edit to answers of paths with prefix.
func onPath(prefix string, edit func(a *conformancetest.Answer)) func(*http.Request, *conformancetest.Answer) {
	return func(r *http.Request, a *conformancetest.Answer) {
		if strings.HasPrefix(r.URL.Path, prefix) {
			edit(a)
		}
	}
}

// onError applies edit to JSON answers whose error is code.
func onError(code string, edit func(a *conformancetest.Answer, obj map[string]any)) func(*http.Request, *conformancetest.Answer) {
	return func(_ *http.Request, a *conformancetest.Answer) {
		conformancetest.EditJSON(a, func(obj map[string]any) {
			if obj["error"] == code {
				edit(a, obj)
			}
		})
	}
}

// signInNeeded: one of the checks redeems or replays what the sign-in
// produced.
func signInNeeded(ids []string) bool {
	return slices.Contains(ids, "fipa-code-single-use") || slices.Contains(ids, "fipa-auth-session-dead-after-code")
}

// TestBrokenServer: fedas behind a proxy that breaks one rule fails the
// checks of that rule, with the exchanges that show it, and the run exits
// 1.
func TestBrokenServer(t *testing.T) {
	clock := &servertest.Clock{}
	in := servertest.Start(t, servertest.Options{Clock: clock, Configure: conformancetest.FedasConfig})
	meta := func(edit func(map[string]any)) conformancetest.Options {
		return conformancetest.Options{Response: onPath("/.well-known/", func(a *conformancetest.Answer) { conformancetest.EditJSON(a, edit) })}
	}
	// dropParam forwards requests without the param when its value has prefix.
	dropParam := func(name, prefix string) conformancetest.Options {
		return conformancetest.Options{Request: func(r *http.Request) {
			conformancetest.EditForm(r, func(f url.Values) {
				if strings.HasPrefix(f.Get(name), prefix) {
					f.Del(name)
				}
			})
		}}
	}
	for _, tc := range []struct {
		name   string
		o      conformancetest.Options
		fails  []string
		detail string
	}{
		{"errors without no-store", conformancetest.Options{Response: onPath("/native/", func(a *conformancetest.Answer) { a.Header.Set("Cache-Control", "no-cache") })},
			[]string{"fipa-error-body", "fipa-insufficient-authorization", "fipa-redirect-to-web"}, "lacks no-store"},
		{"one endpoint name", meta(func(m map[string]any) { delete(m, "authorization_challenge_endpoint") }),
			[]string{"fipa-metadata-native-endpoint"}, "authorization_challenge_endpoint"},
		{"no S256", meta(func(m map[string]any) { m["code_challenge_methods_supported"] = []string{"plain"} }),
			[]string{"fipa-metadata-s256"}, "lacks S256"},
		{"auth method not advertised", meta(func(m map[string]any) { m["token_endpoint_auth_methods_supported"] = []string{"private_key_jwt"} }),
			[]string{"fipa-metadata-auth-method"}, "lacks none"},
		{"a third-party client let in", conformancetest.Options{Request: func(r *http.Request) {
			conformancetest.EditForm(r, func(f url.Values) {
				if f.Get("client_id") == "third-party" {
					f.Set("client_id", "demo-app")
				}
			})
		}}, []string{"fipa-first-party-only"}, "the sign-in went on"},
		{"invalid_client without WWW-Authenticate", conformancetest.Options{Response: func(_ *http.Request, a *conformancetest.Answer) { a.Header.Del("WWW-Authenticate") }},
			[]string{"fipa-invalid-client-basic"}, "without a Basic WWW-Authenticate"},
		{"insufficient_authorization as 400", conformancetest.Options{Response: onError("insufficient_authorization", func(a *conformancetest.Answer, _ map[string]any) { a.Status = http.StatusBadRequest })},
			[]string{"fipa-insufficient-authorization"}, "want 403"},
		{"redirect_to_web as 400", conformancetest.Options{Response: onError("redirect_to_web", func(a *conformancetest.Answer, _ map[string]any) { a.Status = http.StatusBadRequest })},
			[]string{"fipa-redirect-to-web"}, "want 403"},
		{"another client's follow-up let in", dropParam("client_id", "fp-other"),
			[]string{"fipa-auth-session-client-binding"}, "the sign-in went on"},
		{"an unknown client's follow-up let in", dropParam("client_id", "conformance-unknown-"),
			[]string{"fipa-auth-session-unknown-client"}, "the sign-in went on"},
		{"DPoP proofs dropped", conformancetest.Options{Request: func(r *http.Request) { r.Header.Del("DPoP") }},
			[]string{"fipa-auth-session-dpop-binding"}, "another key"},
		{"dead sessions answered as live", conformancetest.Options{Response: onError("invalid_session", func(a *conformancetest.Answer, obj map[string]any) {
			a.Status, obj["error"], obj["auth_session"] = http.StatusForbidden, "insufficient_authorization", "conformance-fake-session-0123456789abcdef"
		})}, []string{"fipa-auth-session-rotation", "fipa-auth-session-dead-after-code", "fipa-auth-session-expiry"}, "insufficient_authorization"},
		{"a code redeems twice", conformancetest.Options{Response: onError("invalid_grant", func(a *conformancetest.Answer, obj map[string]any) {
			a.Status = http.StatusOK
			clear(obj)
			obj["access_token"], obj["token_type"] = "fake", "bearer"
		})}, []string{"fipa-code-single-use"}, "was accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			front := conformancetest.NewProxy(t, in.URL, tc.o)
			env := conformance.NewEnv(front.URL, 10*time.Second)
			onClock(env, clock)
			env.ClientID, env.Username, env.Password = "demo-app", "alice", "wonderland"
			withFlags(env, conformancetest.AppCallback)
			// Only the checks of the rule and those they build on, which
			// must not fail (under -race a whole run per case is slow).
			var checks []conformance.Check
			for _, c := range conformance.FiPAChecks() {
				if slices.Contains(tc.fails, c.ID) || (c.ID == "fipa-password-signin" || c.ID == "fipa-token-exchange") && signInNeeded(tc.fails) {
					checks = append(checks, c)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			rep := conformance.Run(ctx, env, checks, []conformance.Profile{conformance.ProfileFiPA})
			require.Len(t, rep.Results, len(checks))
			failed := map[string]bool{}
			for _, r := range rep.Results {
				if r.Status == conformance.Fail {
					failed[r.ID] = true
				}
				if slices.Contains(tc.fails, r.ID) {
					assert.Equal(t, conformance.Fail, r.Status, "%s: %s", r.ID, r.Detail)
					assert.Contains(t, r.Detail, tc.detail, r.ID)
					require.NotEmpty(t, r.Exchanges, r.ID)
				}
			}
			// Only the checks of the broken rule fail.
			for id := range failed {
				assert.Contains(t, tc.fails, id, "an unrelated check failed")
			}
			assert.Equal(t, 1, rep.ExitCode())
			var md bytes.Buffer
			require.NoError(t, rep.WriteMarkdown(&md))
			assert.Contains(t, md.String(), "## `"+tc.fails[0]+"` failed")
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

// TestRedaction: the password, the TOTP code, the PKCE verifier, the
// tokens, and every auth_session and authorization code the server issued
// (live credentials: an unused session or code may still work) never
// reach a report, in JSON or Markdown; a fingerprint stands for each
// live value, the same one wherever the value went.
func TestRedaction(t *testing.T) {
	var mu sync.Mutex
	var live []string
	in := servertest.Start(t, servertest.Options{Configure: conformancetest.FedasConfig, Observe: func(ex servertest.Exchange) {
		var body map[string]any
		if json.Unmarshal(ex.Body, &body) != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, k := range []string{"auth_session", "authorization_code", "access_token", "id_token", "refresh_token", "request_uri"} {
			if v, _ := body[k].(string); v != "" {
				live = append(live, v)
			}
		}
	}})
	rep := run(t, in.URL, func(e *conformance.Env) {
		e.ClientID, e.Username, e.Password, e.TOTPSecret = "demo-app", "bob", "builder", "JBSWY3DPEHPK3PXP"
		e.WebParams = conformancetest.WebParams(conformancetest.AppCallback)
	})
	var out bytes.Buffer
	require.NoError(t, rep.WriteJSON(&out))
	require.Equal(t, 0, rep.ExitCode(), out.String())
	// Markdown shows the exchanges of failures only: fail one check on
	// purpose, with exchanges that carry sessions and the code.
	for i := range rep.Results {
		rep.Results[i].Status = conformance.Fail
	}
	require.NoError(t, rep.WriteMarkdown(&out))
	report := out.String()
	// The sign-in's exchanges are in the report, its secrets are not.
	assert.Contains(t, report, `password=[redacted]`)
	assert.Contains(t, report, `otp=[redacted]`)
	assert.Contains(t, report, `code_verifier=[redacted]`)
	assert.NotContains(t, report, "builder")
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, live)
	for _, v := range live {
		assert.NotContains(t, report, v)
	}
	// The code's fingerprint links the answer that issued it to its
	// redemption.
	assert.Regexp(t, `\\"authorization_code\\":\\"\[redacted \d+ chars sha256:[0-9a-f]{8}\]`, report)
	assert.Regexp(t, `code=\[redacted \d+ chars sha256:[0-9a-f]{8}\]`, report)
	assert.Regexp(t, `request_uri=\[redacted \d+ chars sha256:[0-9a-f]{8}\]`, report, "redirect_to_web's request_uri at the authorization endpoint")
}

// TestDPoPRefusalsMayEndTheSession: a server that ends a session when it
// refuses a proof for another key (fedas keeps it) still passes the DPoP
// check, whose key's follow-up then goes on a fresh session.
func TestDPoPRefusalsMayEndTheSession(t *testing.T) {
	// fedas's issuer is the proxy's URL, which the proofs' htu names.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	ended := map[string]bool{}
	var sent string
	front := conformancetest.NewProxy(t, "http://"+ln.Addr().String(), conformancetest.Options{
		Request: func(r *http.Request) {
			conformancetest.EditForm(r, func(f url.Values) {
				mu.Lock()
				defer mu.Unlock()
				sent = f.Get("auth_session")
				if ended[sent] {
					f.Set("auth_session", "conformance-ended-session") // invalid_session
				}
			})
		},
		Response: onError("invalid_dpop_proof", func(*conformancetest.Answer, map[string]any) {
			mu.Lock()
			defer mu.Unlock()
			ended[sent] = true
		}),
	})
	servertest.Start(t, servertest.Options{Listener: ln, Configure: func(c *config.Config) { c.Issuer = front.URL }})
	env := conformance.NewEnv(front.URL, 10*time.Second)
	env.ClientID = "demo-app"
	var checks []conformance.Check
	for _, c := range conformance.FiPAChecks() {
		if c.ID == "fipa-auth-session-dpop-binding" {
			checks = append(checks, c)
		}
	}
	rep := conformance.Run(context.Background(), env, checks, []conformance.Profile{conformance.ProfileFiPA})
	require.Len(t, rep.Results, 1)
	r := rep.Results[0]
	assert.Equal(t, conformance.Pass, r.Status, r.Detail)
	assert.Contains(t, r.Detail, "the refusals ended the first session")
	// Initial, key B, no proof, key A (invalid_session), a fresh initial,
	// key A.
	assert.Len(t, r.Exchanges, 6)
}

// TestWrongClientCredentials: a wrong --auth secret (or a --client-id the
// server doesn't know) isn't "another kind of sign-in": the session checks
// fail and say which flags to check, and the run exits 1 instead of
// passing with everything not applicable.
func TestWrongClientCredentials(t *testing.T) {
	in := servertest.Start(t, servertest.Options{Configure: conformancetest.FedasConfig})
	for _, tc := range []struct {
		name     string
		clientID string
		auth     conformance.ClientAuth
	}{
		{"wrong secret", "demo-partner", conformance.ClientAuth{Method: "client_secret_basic", Secret: "wrong"}},
		{"unknown public client", "no-such-client", conformance.ClientAuth{Method: "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := run(t, in.URL, func(e *conformance.Env) { e.ClientID, e.Auth = tc.clientID, tc.auth })
			assert.Equal(t, 1, rep.ExitCode())
			for _, r := range rep.Results {
				if r.ID == "fipa-insufficient-authorization" {
					assert.Equal(t, conformance.Fail, r.Status)
					assert.Contains(t, r.Detail, `"invalid_client", want insufficient_authorization`)
					assert.Contains(t, r.Detail, "check --client-id and --auth")
				}
			}
		})
	}
}
