package flow_test

import (
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/federation/fedtest"
	"github.com/fedas/fedas/flow"
)

// routedTo routes client "routed" to mock m as downstream ds1.
func routedTo(m *fedtest.Mock, browser bool) func(*config.Config) {
	return func(c *config.Config) {
		addDownstream(c, "ds1", m, browser)
		c.Routes = append(c.Routes, config.Route{Clients: []string{"routed"}, Downstream: "ds1"})
	}
}

// prompted adds the org prompt with routes to ds1 (org=acme, email at
// acme.example), our app (org=wallet) and local (org=here).
func prompted(m *fedtest.Mock, edit func(*config.Config)) func(*config.Config) {
	return func(c *config.Config) {
		addDownstream(c, "ds1", m, false)
		withApp(func(a *config.App) { a.Clients = nil })(c)
		orgPrompt(c)
		c.Routes = append(c.Routes,
			config.Route{Option: &config.RouteOption{Key: "org", Value: "acme"}, Downstream: "ds1"},
			config.Route{EmailDomains: []string{"acme.example"}, Downstream: "ds1"},
			config.Route{Option: &config.RouteOption{Key: "org", Value: "wallet"}, App: "wallet"},
		)
		if edit != nil {
			edit(c)
		}
	}
}

// federated starts a routed request and returns its federate answer.
func federated(tb testing.TB, f *fixture, kv ...string) flow.Federate {
	tb.Helper()
	return as[flow.Federate](tb, f.native(initial("routed", kv...), key(jkt("dev"))))
}

func (f *fixture) respond(fe flow.Federate, form url.Values, mods ...reqMod) flow.Outcome {
	f.tb.Helper()
	return f.handle(flow.ChannelResponse, with(form, "auth_session", fe.AuthSession), append([]reqMod{hop(hopID(f.tb, fe)), key(jkt("dev"))}, mods...)...)
}

// TestFederate_RoutedByClient: a client route federates without a
// prompt; the device's downstream code at our response_uri gets our
// code, bound to the session's client, PKCE and DPoP key, with the
// downstream identity.
func TestFederate_RoutedByClient(t *testing.T) {
	for _, withIss := range []bool{true, false} {
		t.Run(map[bool]string{true: "with iss", false: "without iss"}[withIss], func(t *testing.T) {
			m := fedtest.Start(t, fedtest.Options{})
			f := newFixture(t, routedTo(m, false))
			fe := federated(t, f, "nonce", "our-nonce")
			require.Equal(t, m.Endpoint(fedtest.Native), fe.FederationURI)
			body, err := url.ParseQuery(fe.FederationBody)
			require.NoError(t, err)
			require.Equal(t, "fedas-at-ds1", body.Get("client_id"))
			require.True(t, strings.HasPrefix(body.Get("request_uri"), fedtest.RequestURIPrefix))
			pars := m.Requests(fedtest.PAR)
			require.Len(t, pars, 1)
			pf := pars[0].Form
			require.Equal(t, "openid profile", pf.Get("scope"))
			require.NotEmpty(t, pf.Get("code_challenge"))
			require.NotEqual(t, "our-nonce", pf.Get("nonce"), "a fresh nonce per hop")
			require.Empty(t, pf.Get("redirect_uri"))

			// A federated session continues only at its response_uri.
			refusal(t, f.native(vals("auth_session", fe.AuthSession), key(jkt("dev"))), "invalid_session")
			code := device(t, fe)
			form := vals("authorization_code", code)
			if withIss {
				form.Set("iss", m.URL)
			}
			// Refusals that change nothing: wrong key, wrong hop.
			refusal(t, f.respond(fe, form, key("")), "invalid_dpop_proof")
			refusal(t, f.respond(fe, form, key(jkt("thief"))), "invalid_dpop_proof")
			refusal(t, f.respond(fe, form, hop("other-hop")), "invalid_session")
			refusal(t, f.respond(fe, form, f.asClient("app")), "invalid_request")
			out := as[flow.Code](t, f.respond(fe, form))
			g := f.codes.grant(t, out.Code)
			require.Equal(t, "routed", g.ClientID)
			require.Equal(t, pkce("routed"), g.CodeChallenge)
			require.Equal(t, "our-nonce", g.Nonce)
			require.Equal(t, jkt("dev"), g.DPoPJKT)
			require.Empty(t, g.RedirectURI)
			require.Equal(t, m.URL+"|user-1", g.Subject)
			require.Empty(t, g.Username)
			require.Equal(t, []string{"pwd"}, g.AMR)
			require.False(t, g.AuthTime.IsZero())
			require.Equal(t, map[string]any{"idp": m.URL, "idp_sub": "user-1", "email": "user-1@" + strings.TrimPrefix(m.URL, "http://")}, g.Claims)
			require.EqualValues(t, 1, m.Count(fedtest.Token))
			refusal(t, f.respond(fe, form), "invalid_session")
		})
	}
}

// TestFederate_Prompt: insufficient_information, its answers and their
// routes, invalid answers re-prompted up to the attempts cap.
func TestFederate_Prompt(t *testing.T) {
	m := fedtest.Start(t, fedtest.Options{})
	for _, tc := range []struct {
		name   string
		client string
		edit   func(*config.Config)
		extra  []string
		answer url.Values
		check  func(t *testing.T, f *fixture, out flow.Outcome)
	}{
		{name: "option to downstream", answer: vals("org", "acme"), check: func(t *testing.T, f *fixture, out flow.Outcome) {
			fe := as[flow.Federate](t, out)
			as[flow.Code](t, f.respond(fe, vals("authorization_code", device(t, fe), "iss", m.URL)))
		}},
		{name: "email domain to downstream", answer: vals("email", "Ann@ACME.example"), check: func(t *testing.T, f *fixture, out flow.Outcome) {
			as[flow.Federate](t, out)
		}},
		{name: "option to local", answer: vals("org", "here"), check: func(t *testing.T, f *fixture, out flow.Outcome) {
			ch := as[flow.Challenge](t, out)
			require.Contains(t, ch.Spec.Inputs, "username")
			as[flow.Code](t, f.signIn(t, flow.ChannelNative, ch.AuthSession, "bob", key(jkt("dev"))))
		}},
		{name: "email to default local names the user", answer: vals("email", "alice"+"@else.example"), check: func(t *testing.T, f *fixture, out flow.Outcome) {
			ch := as[flow.Challenge](t, out)
			require.NotContains(t, ch.Spec.Inputs, "username")
		}},
		{name: "default deny", edit: func(c *config.Config) { c.DefaultRoute = "deny" }, answer: vals("email", "x@else.example"), check: func(t *testing.T, f *fixture, out flow.Outcome) {
			refusal(t, out, "access_denied")
		}},
		{name: "default downstream", edit: func(c *config.Config) { c.DefaultRoute = "ds1" }, answer: vals("email", "x@else.example"), check: func(t *testing.T, f *fixture, out flow.Outcome) {
			as[flow.Federate](t, out)
		}},
		{name: "app with callback", extra: []string{"native_callback_uri", appCB}, answer: vals("org", "wallet"), check: func(t *testing.T, f *fixture, out flow.Outcome) {
			ra := as[flow.RedirectToApp](t, out)
			require.NotEmpty(t, ra.AuthSession)
			ru := deepLinkRU(t, f, ra.DeepLink, "app")
			// No user named: the app's user must have enrolled the app
			// when the app is enrolled_only.
			ret := as[flow.Return](t, f.complete(ru, alice()))
			code := as[flow.Code](t, f.native(vals("auth_session", ra.AuthSession, "authorization_code", ret.Params["authorization_code"]), key(jkt("dev"))))
			require.Equal(t, "sub-alice", f.codes.grant(t, code.Code).Subject)
		}},
		{name: "enrolled-only app, user not enrolled", edit: func(c *config.Config) { c.Apps[0].EnrolledOnly = true },
			extra: []string{"native_callback_uri", appCB}, answer: vals("org", "wallet"), check: func(t *testing.T, f *fixture, out flow.Outcome) {
				ra := as[flow.RedirectToApp](t, out)
				refusal(t, f.complete(deepLinkRU(t, f, ra.DeepLink, "app"), alice()), "access_denied")
			}},
		{name: "app without callback goes local", answer: vals("org", "wallet"), check: func(t *testing.T, f *fixture, out flow.Outcome) {
			as[flow.Challenge](t, out)
		}},
		{name: "no credential challenges for a federating client", client: "fed", answer: vals("org", "here"), check: func(t *testing.T, f *fixture, out flow.Outcome) {
			require.NotEmpty(t, as[flow.RedirectToWeb](t, out).RequestURI)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, prompted(m, tc.edit))
			client := tc.client
			if client == "" {
				client = "app"
			}
			var mods []reqMod
			start := initial(client, tc.extra...)
			if client == "fed" {
				// A federating client comes through its PAR.
				start = vals("client_id", "fed", "request_uri", f.pushes.par("fed", start))
			}
			p := as[flow.Prompt](t, f.native(start, append(mods, key(jkt("dev")))...))
			require.False(t, p.Invalid)
			require.Contains(t, p.UserPrompt, "options")
			require.Contains(t, p.UserPrompt, "inputs")
			out := f.native(with(tc.answer, "auth_session", p.AuthSession), append(mods, key(jkt("dev")))...)
			tc.check(t, f, out)
		})
	}
}

// TestFederate_PromptInvalid: an invalid answer re-prompts with a new
// value (invalid_request with the prompt) until MaxAttempts.
func TestFederate_PromptInvalid(t *testing.T) {
	m := fedtest.Start(t, fedtest.Options{})
	for _, bad := range []url.Values{vals("org", "nope"), vals("email", "not-an-email"), vals("org", "acme", "password", "x"), vals()} {
		t.Run(bad.Encode(), func(t *testing.T) {
			f := newFixture(t, prompted(m, nil))
			p := as[flow.Prompt](t, f.native(initial("app")))
			again := as[flow.Prompt](t, f.native(with(bad, "auth_session", p.AuthSession)))
			require.True(t, again.Invalid)
			require.NotEqual(t, p.AuthSession, again.AuthSession)
			refusal(t, f.native(vals("auth_session", p.AuthSession, "org", "here")), "invalid_session")
			refusal(t, f.native(with(bad, "auth_session", again.AuthSession)), "access_denied")
			refusal(t, f.native(vals("auth_session", again.AuthSession, "org", "here")), "invalid_session")
		})
	}
	t.Run("a valid answer after an invalid one", func(t *testing.T) {
		f := newFixture(t, prompted(m, nil))
		p := as[flow.Prompt](t, f.native(initial("app")))
		again := as[flow.Prompt](t, f.native(vals("auth_session", p.AuthSession, "org", "nope")))
		as[flow.Challenge](t, f.native(vals("auth_session", again.AuthSession, "org", "here")))
	})
	t.Run("prompt removed by a reload", func(t *testing.T) {
		f := newFixture(t, prompted(m, nil))
		p := as[flow.Prompt](t, f.native(initial("app")))
		f.snap = newFixture(t, nil).snap
		refusal(t, f.native(vals("auth_session", p.AuthSession, "org", "here")), "invalid_session")
	})
}

// TestRespond_DownstreamErrors maps the errors a device brings from the
// downstream (docs/decisions.md Q9); the downstream's description is never
// passed on.
func TestRespond_DownstreamErrors(t *testing.T) {
	for _, tc := range []struct {
		err       string
		want      string
		status    int
		survives  bool
		retryOnce bool
	}{
		{err: "access_denied", want: "access_denied", status: 400},
		{err: "server_error", want: "server_error", status: 500, survives: true},
		{err: "temporarily_unavailable", want: "temporarily_unavailable", status: 503, survives: true},
		{err: "invalid_request", retryOnce: true},
		{err: "something_else", want: "access_denied", status: 400},
	} {
		t.Run(tc.err, func(t *testing.T) {
			m := fedtest.Start(t, fedtest.Options{})
			f := newFixture(t, routedTo(m, false))
			fe := federated(t, f)
			form := vals("error", tc.err, "error_description", fedtest.LeakedDetail)
			out := f.respond(fe, form)
			if tc.retryOnce {
				// Most often an expired request_uri: pushed once more.
				again := as[flow.Federate](t, out)
				require.NotEqual(t, fe.AuthSession, again.AuthSession)
				require.NotEqual(t, fe.ResponseURI, again.ResponseURI)
				require.EqualValues(t, 2, m.Count(fedtest.PAR))
				refusal(t, f.respond(fe, vals("authorization_code", "x")), "invalid_session")
				refusal(t, f.respond(again, form), "invalid_session")
				refusal(t, f.respond(again, vals("authorization_code", "x")), "invalid_session")
				require.EqualValues(t, 2, m.Count(fedtest.PAR))
				return
			}
			r := refusal(t, out, tc.want)
			require.Equal(t, tc.status, r.Status)
			require.NotContains(t, r.Description, "fedtest")
			next := f.respond(fe, vals("authorization_code", device(t, fe), "iss", m.URL))
			if tc.survives {
				as[flow.Code](t, next)
			} else {
				refusal(t, next, "invalid_session")
			}
		})
	}
}

// TestRespond_Refusals: malformed posts change nothing; an iss of
// another issuer ends the session before any token request.
func TestRespond_Refusals(t *testing.T) {
	m := fedtest.Start(t, fedtest.Options{})
	f := newFixture(t, routedTo(m, false))
	fe := federated(t, f)
	refusal(t, f.handle(flow.ChannelResponse, vals("authorization_code", "x"), hop(hopID(t, fe))), "invalid_request")
	refusal(t, f.respond(fe, vals("authorization_code", "x", "error", "access_denied")), "invalid_request")
	refusal(t, f.respond(fe, vals()), "invalid_request")
	refusal(t, f.respond(fe, vals("authorization_code", strings.Repeat("c", 4097))), "invalid_request")
	code := device(t, fe)
	refusal(t, f.respond(fe, vals("authorization_code", code, "iss", "https://evil.example")), "access_denied")
	require.EqualValues(t, 0, m.Count(fedtest.Token), "no token request after a mix-up")
	refusal(t, f.respond(fe, vals("authorization_code", code, "iss", m.URL)), "invalid_session")

	t.Run("not a federated session", func(t *testing.T) {
		f := newFixture(t, routedTo(m, false))
		v := as[flow.Challenge](t, f.native(initial("app"))).AuthSession
		refusal(t, f.handle(flow.ChannelResponse, vals("auth_session", v, "authorization_code", "x"), hop("h")), "invalid_session")
	})
}

// TestRespond_RedeemFailures: a refused code ends the session; an
// unreachable token endpoint restores it for a retry; unmet acr_values
// are access_denied.
func TestRespond_RedeemFailures(t *testing.T) {
	t.Run("invalid_grant", func(t *testing.T) {
		m := fedtest.Start(t, fedtest.Options{Modes: map[fedtest.Endpoint]fedtest.Mode{fedtest.Token: fedtest.InvalidGrant}})
		f := newFixture(t, routedTo(m, false))
		fe := federated(t, f)
		form := vals("authorization_code", device(t, fe), "iss", m.URL)
		refusal(t, f.respond(fe, form), "access_denied")
		refusal(t, f.respond(fe, form), "invalid_session")
	})
	t.Run("token endpoint down, then up", func(t *testing.T) {
		m := fedtest.Start(t, fedtest.Options{Modes: map[fedtest.Endpoint]fedtest.Mode{fedtest.Token: fedtest.Down}})
		f := newFixture(t, routedTo(m, false))
		fe := federated(t, f)
		form := vals("authorization_code", device(t, fe), "iss", m.URL)
		refusal(t, f.respond(fe, form), "temporarily_unavailable")
		m.SetMode(fedtest.Token, fedtest.OK)
		as[flow.Code](t, f.respond(fe, form))
	})
	t.Run("acr not met", func(t *testing.T) {
		m := fedtest.Start(t, fedtest.Options{})
		f := newFixture(t, routedTo(m, false))
		fe := federated(t, f, "acr_values", "gold", "max_age", "60")
		require.Equal(t, "gold", m.Requests(fedtest.PAR)[0].Form.Get("acr_values"))
		refusal(t, f.respond(fe, vals("authorization_code", device(t, fe))), "access_denied")
	})
	t.Run("acr met", func(t *testing.T) {
		m := fedtest.Start(t, fedtest.Options{IDToken: fedtest.IDTokenOptions{ACR: "gold"}})
		f := newFixture(t, routedTo(m, false))
		fe := federated(t, f, "acr_values", "gold")
		code := as[flow.Code](t, f.respond(fe, vals("authorization_code", device(t, fe))))
		require.Equal(t, "gold", f.codes.grant(t, code.Code).ACR)
	})
	t.Run("downstream removed by a reload", func(t *testing.T) {
		m := fedtest.Start(t, fedtest.Options{})
		f := newFixture(t, routedTo(m, false))
		fe := federated(t, f)
		f.snap = newFixture(t, nil).snap
		refusal(t, f.respond(fe, vals("authorization_code", device(t, fe))), "access_denied")
	})
	t.Run("concurrent posts redeem once", func(t *testing.T) {
		m := fedtest.Start(t, fedtest.Options{})
		f := newFixture(t, routedTo(m, false))
		fe := federated(t, f)
		form := vals("authorization_code", device(t, fe), "iss", m.URL, "auth_session", fe.AuthSession)
		const n = 8
		outs := make([]flow.Outcome, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				outs[i], errs[i] = f.try(flow.ChannelResponse, form, hop(hopID(t, fe)), key(jkt("dev")))
			}(i)
		}
		wg.Wait()
		wins := 0
		for i := range outs {
			require.NoError(t, errs[i])
			if _, ok := outs[i].(flow.Code); ok {
				wins++
				continue
			}
			refusal(t, outs[i], "invalid_session")
		}
		require.Equal(t, 1, wins)
		require.EqualValues(t, 1, m.Count(fedtest.Token))
	})
}

// TestFederate_BeginFailures: a downstream without a native endpoint
// (and no browser federation) or unreachable.
func TestFederate_BeginFailures(t *testing.T) {
	t.Run("no native endpoint", func(t *testing.T) {
		m := fedtest.Start(t, fedtest.Options{NoNative: true})
		f := newFixture(t, routedTo(m, false))
		refusal(t, f.native(initial("routed")), "native_authorization_federate_unsupported")
		require.EqualValues(t, 0, m.Count(fedtest.PAR))
	})
	t.Run("unreachable", func(t *testing.T) {
		m := fedtest.Start(t, fedtest.Options{Modes: map[fedtest.Endpoint]fedtest.Mode{fedtest.Metadata: fedtest.Down}})
		f := newFixture(t, routedTo(m, false))
		refusal(t, f.native(initial("routed")), "temporarily_unavailable")
	})
	t.Run("PAR refused", func(t *testing.T) {
		m := fedtest.Start(t, fedtest.Options{Modes: map[fedtest.Endpoint]fedtest.Mode{fedtest.PAR: fedtest.InvalidClient}})
		f := newFixture(t, routedTo(m, false))
		refusal(t, f.native(initial("routed")), "server_error")
	})
	t.Run("unreachable after a prompt: the answer can be retried", func(t *testing.T) {
		m := fedtest.Start(t, fedtest.Options{})
		f := newFixture(t, prompted(m, nil))
		p := as[flow.Prompt](t, f.native(initial("app")))
		m.SetMode(fedtest.PAR, fedtest.Down)
		refusal(t, f.native(vals("auth_session", p.AuthSession, "org", "acme")), "temporarily_unavailable")
		m.SetMode(fedtest.PAR, fedtest.OK)
		as[flow.Federate](t, f.native(vals("auth_session", p.AuthSession, "org", "acme")))
	})
}

// webHop runs a native hop to a downstream whose browser fallback sends
// the user to our web callback (docs/decisions.md Q7): it returns the
// federate answer and the callback's query as the downstream would send
// it.
func webHop(tb testing.TB, f *fixture, m *fedtest.Mock) (flow.Federate, url.Values) {
	tb.Helper()
	fe := federated(tb, f, "native_callback_uri", appCB)
	pars := m.Requests(fedtest.PAR)
	pf := pars[len(pars)-1].Form
	return fe, vals("code", m.MintCode(pf), "state", pf.Get("state"), "iss", m.URL)
}

func (f *fixture) callback(q url.Values) flow.Outcome {
	f.tb.Helper()
	return f.handle(flow.ChannelWebCallback, q)
}

// TestWebCallback_Q7: the callback checks state and iss before acting on
// a code or an error, redeems the code, and returns a one-time
// response_code; the device's follow-up needs it.
func TestWebCallback_Q7(t *testing.T) {
	m := fedtest.Start(t, fedtest.Options{IssParameter: true})
	t.Run("success", func(t *testing.T) {
		f := newFixture(t, routedTo(m, false))
		fe, q := webHop(t, f, m)
		ret := as[flow.Return](t, f.callback(q))
		require.Equal(t, appCB, ret.URI)
		rc := ret.Params["response_code"]
		require.NotEmpty(t, rc)
		require.Len(t, ret.Params, 1)
		require.Empty(t, f.codes.all())
		refusal(t, f.callback(q), "invalid_session")
		refusal(t, f.respond(fe, vals()), "invalid_request")
		refusal(t, f.respond(fe, vals("response_code", rc), key(jkt("thief"))), "invalid_dpop_proof")
		code := as[flow.Code](t, f.respond(fe, vals("response_code", rc)))
		g := f.codes.grant(t, code.Code)
		require.Equal(t, jkt("dev"), g.DPoPJKT)
		require.Equal(t, m.URL+"|user-1", g.Subject)
		refusal(t, f.respond(fe, vals("response_code", rc)), "invalid_session")
	})
	t.Run("wrong response_code ends the session", func(t *testing.T) {
		f := newFixture(t, routedTo(m, false))
		fe, q := webHop(t, f, m)
		rc := as[flow.Return](t, f.callback(q)).Params["response_code"]
		refusal(t, f.respond(fe, vals("response_code", rc+"x")), "access_denied")
		refusal(t, f.respond(fe, vals("response_code", rc)), "invalid_session")
		require.Empty(t, f.codes.all())
	})
	t.Run("state tampering", func(t *testing.T) {
		f := newFixture(t, routedTo(m, false))
		tokens := m.Count(fedtest.Token)
		fe, q := webHop(t, f, m)
		st := q.Get("state")
		flip := func(s string, i int) string {
			b := []byte(s)
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			return string(b)
		}
		other := newFixture(t, routedTo(m, false), func(o *flow.Options) { o.StateKey = []byte("another-key-another-key-another-") })
		_, oq := webHop(t, other, m)
		for _, bad := range []string{"", "x", "!!!", flip(st, 0), flip(st, len(st)-1), st[:len(st)-2], strings.Repeat("A", 300), oq.Get("state")} {
			refusal(t, f.callback(with(q, "state", bad)), "invalid_session")
		}
		require.Equal(t, tokens, m.Count(fedtest.Token), "no token request for a bad state")
		// Nothing changed: the genuine callback still works.
		rc := as[flow.Return](t, f.callback(q)).Params["response_code"]
		as[flow.Code](t, f.respond(fe, vals("response_code", rc)))
	})
	t.Run("iss mismatch or missing before code or error", func(t *testing.T) {
		for _, q := range []url.Values{vals("iss", "https://evil.example"), vals("iss", ""), vals("iss", "https://evil.example", "code", "", "error", "access_denied")} {
			f := newFixture(t, routedTo(m, false))
			tokens := m.Count(fedtest.Token)
			fe, cb := webHop(t, f, m)
			for k := range q {
				cb = with(cb, k, q.Get(k))
			}
			refusal(t, f.callback(cb), "access_denied")
			require.Equal(t, tokens, m.Count(fedtest.Token), "no token request after a mix-up")
			refusal(t, f.respond(fe, vals("response_code", "x")), "invalid_session")
		}
	})
	t.Run("downstream error goes back to the app", func(t *testing.T) {
		f := newFixture(t, routedTo(m, false))
		fe, q := webHop(t, f, m)
		ret := as[flow.Return](t, f.callback(with(q, "code", "", "error", "access_denied")))
		require.Equal(t, appCB, ret.URI)
		require.Equal(t, map[string]string{"error": "access_denied"}, ret.Params)
		refusal(t, f.respond(fe, vals("response_code", "x")), "invalid_session")
	})
	t.Run("code refused goes back to the app", func(t *testing.T) {
		f := newFixture(t, routedTo(m, false))
		_, q := webHop(t, f, m)
		ret := as[flow.Return](t, f.callback(with(q, "code", "forged")))
		require.Equal(t, map[string]string{"error": "access_denied"}, ret.Params)
	})
	t.Run("no native_callback_uri", func(t *testing.T) {
		f := newFixture(t, routedTo(m, false))
		federated(t, f)
		pars := m.Requests(fedtest.PAR)
		pf := pars[len(pars)-1].Form
		refusal(t, f.callback(vals("code", m.MintCode(pf), "state", pf.Get("state"), "iss", m.URL)), "access_denied")
	})
}

// TestWebCallback_Q19: a downstream without a native endpoint, reachable
// through the browser: redirect_to_web with the device's auth_session and
// a PushWeb naming the session; our browser endpoint sends the browser to
// the downstream; its callback returns a response_code; the device posts
// it with its auth_session to the native endpoint (where it got
// redirect_to_web) and gets our code.
func TestWebCallback_Q19(t *testing.T) {
	m := fedtest.Start(t, fedtest.Options{NoNative: true, IssParameter: true})
	f := newFixture(t, routedTo(m, true))
	web := as[flow.RedirectToWeb](t, f.native(initial("routed", "native_callback_uri", appCB), key(jkt("dev"))))
	require.NotEmpty(t, web.AuthSession)
	p := f.pushes.get(t, web.RequestURI)
	require.Equal(t, flow.PushWeb, p.Kind)
	require.NotEmpty(t, p.Session)
	require.Empty(t, p.Form.Get("redirect_uri"), "the browser returns through our web callback, not the client's redirect_uri")
	require.EqualValues(t, 0, m.Count(fedtest.PAR))

	// The device's value is not usable before the browser came back.
	refusal(t, f.native(vals("auth_session", web.AuthSession, "response_code", "x"), key(jkt("dev"))), "invalid_session")

	to := as[flow.Return](t, f.browser(vals("client_id", "routed", "request_uri", web.RequestURI)))
	require.True(t, strings.HasPrefix(to.URI, m.Endpoint(fedtest.Authorize)+"?"), to.URI)
	require.Equal(t, webCallback, m.Requests(fedtest.PAR)[0].Form.Get("redirect_uri"))
	loc := browserGet(t, to.URI)
	require.Equal(t, webCallback, loc.Scheme+"://"+loc.Host+loc.Path)
	require.Equal(t, 0, f.pushes.consumes(web.RequestURI))
	ret := as[flow.Return](t, f.callback(loc.Query()))
	require.Equal(t, appCB, ret.URI)
	require.Equal(t, 1, f.pushes.consumes(web.RequestURI), "the push is spent with the browser leg")
	rc := ret.Params["response_code"]
	require.NotEmpty(t, rc)

	refusal(t, f.native(vals("auth_session", web.AuthSession), key(jkt("dev"))), "invalid_request")
	code := as[flow.Code](t, f.native(vals("auth_session", web.AuthSession, "response_code", rc), key(jkt("dev"))))
	g := f.codes.grant(t, code.Code)
	require.Equal(t, "routed", g.ClientID)
	require.Equal(t, jkt("dev"), g.DPoPJKT)
	require.Equal(t, pkce("routed"), g.CodeChallenge)
	require.Empty(t, g.RedirectURI, "delivered to the device, not through a browser redirect")
	require.Equal(t, m.URL+"|user-1", g.Subject)

	t.Run("browser endpoint refusals", func(t *testing.T) {
		f := newFixture(t, routedTo(m, true))
		web := as[flow.RedirectToWeb](t, f.native(initial("routed", "native_callback_uri", appCB), key(jkt("dev"))))
		m.SetMode(fedtest.PAR, fedtest.Down)
		refusal(t, f.browser(vals("client_id", "routed", "request_uri", web.RequestURI)), "temporarily_unavailable")
		m.SetMode(fedtest.PAR, fedtest.InvalidClient)
		refusal(t, f.browser(vals("client_id", "routed", "request_uri", web.RequestURI)), "server_error")
		m.SetMode(fedtest.PAR, fedtest.OK)
		// The session ended with the refused push.
		refusal(t, f.browser(vals("client_id", "routed", "request_uri", web.RequestURI)), "invalid_session")
	})
}
