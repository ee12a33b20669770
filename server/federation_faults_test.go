package server_test

// Downstream fault injection (SECURITY-RESULTS.md 4.2 D1–D8, K05): a downstream
// that is down, slow, answering garbage or redirecting makes AS1 answer
// 503 temporarily_unavailable with Retry-After quickly, follow nothing,
// and keep the auth_session usable for a retry once the downstream
// recovers.

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/federation/fedtest"
)

// faultTimeout is the downstream timeout of the fault tests.
const faultTimeout = 300 * time.Millisecond

// dsFault is one misbehaviour of one endpoint.
type dsFault struct {
	name string
	mode fedtest.Mode
	// opts edits the mock (e.g. a refused endpoint).
	opts func(o *fedtest.Options)
	// permanent: not retryable (the session ends).
	permanent bool
	// noRecovery: the fault cannot be switched off (it is in the
	// metadata, which AS1 caches).
	noRecovery bool
}

func temporaryFaults(canary *fedtest.Canary) []dsFault {
	return []dsFault{
		{name: "D1 connection dropped", mode: fedtest.Down},
		{name: "D2 slow", mode: fedtest.Slow},
		{name: "D4 HTML 200", mode: fedtest.Garbage},
		{name: "D4 non-JSON", mode: fedtest.NonJSON},
		{name: "D4 10 MB body", mode: fedtest.Huge},
		{name: "5xx", mode: fedtest.ServerError},
		{name: "D6/K05 302 to canary", mode: fedtest.Redirect, opts: func(o *fedtest.Options) { o.RedirectTo = canary.URL + "/steal" }},
	}
}

// timedReply posts and reports how long the answer took.
func timedReply(f func() reply) (reply, time.Duration) {
	began := time.Now()
	r := f()
	return r, time.Since(began)
}

// D1/D2/D4/D5/D6 at the PAR endpoint, and K05 for PAR redirects.
func TestDownstreamFaults_PAR(t *testing.T) {
	canary := fedtest.StartCanary(t)
	faults := append(temporaryFaults(canary),
		dsFault{name: "D1 connection refused", opts: func(o *fedtest.Options) { o.PAREndpoint = fedtest.RefusedURL(t) }, noRecovery: true},
		dsFault{name: "D4 no request_uri", mode: fedtest.NoRequestURI},
		dsFault{name: "D4 non-URN request_uri", mode: fedtest.NonURN},
		dsFault{name: "D4 expires_in 0", mode: fedtest.BadExpiresIn},
		dsFault{name: "D5 invalid_client", mode: fedtest.InvalidClient, permanent: true},
	)
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			e := newMockFed(t, mockFedOpts{timeout: faultTimeout})
			ds := e.ds["ds1"]
			ds.SetMode(fedtest.PAR, f.mode)
			if f.opts != nil {
				ds.Configure(f.opts)
			}
			p, _ := e.prompt(t, nil)
			s := p.str("auth_session")
			answer := func() reply { return e.answer(t, s, url.Values{"bank": {"ds1"}}) }
			r, took := timedReply(answer)
			require.Less(t, took, time.Second, "bounded by the downstream timeout")
			requireNoLeak(t, r)
			if f.permanent {
				// D5: our registration is broken: server_error, no detail.
				requireOAuthError(t, r, http.StatusInternalServerError, "server_error")
				requireOAuthError(t, answer(), http.StatusBadRequest, "invalid_session")
				return
			}
			requireUnavailable(t, r)
			if f.noRecovery {
				requireUnavailable(t, answer())
				return
			}
			ds.SetMode(fedtest.PAR, fedtest.OK)
			r = answer()
			requireFederate(t, r)
			require.Equal(t, ds.Count(fedtest.PAR), int64(2), "one failed and one good PAR")
			require.NotEmpty(t, atDownstream(t, r))
			require.Zero(t, canary.Hits())
		})
	}
}

// D8 (and D1/D2/D4 at the exchange): the token endpoint down, slow or
// answering garbage after the device posted the code: 503, the code is
// not lost, the same (auth_session, code) completes once the downstream
// recovers; a refused code ends the session.
func TestDownstreamFaults_Token(t *testing.T) {
	canary := fedtest.StartCanary(t)
	faults := append(temporaryFaults(canary),
		dsFault{name: "invalid_grant", mode: fedtest.InvalidGrant, permanent: true},
		dsFault{name: "invalid_client", mode: fedtest.InvalidClient, permanent: true},
	)
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			e := newMockFed(t, mockFedOpts{timeout: faultTimeout})
			ds := e.ds["ds1"]
			if f.opts != nil {
				ds.Configure(f.opts)
			}
			fed, pk := e.federate(t, "ds1", nil)
			code := atDownstream(t, fed)
			ds.SetMode(fedtest.Token, f.mode)
			r, took := timedReply(func() reply { return respondHop(t, fed, url.Values{"authorization_code": {code}}) })
			require.Less(t, took, time.Second)
			requireNoLeak(t, r)
			if f.permanent {
				requireOAuthError(t, r, http.StatusBadRequest, "access_denied")
				requireOAuthError(t, respondHop(t, fed, url.Values{"authorization_code": {code}}), http.StatusBadRequest, "invalid_session")
				return
			}
			requireUnavailable(t, r)
			ds.SetMode(fedtest.Token, fedtest.OK)
			r = respondHop(t, fed, url.Values{"authorization_code": {code}})
			require.Equal(t, http.StatusOK, r.status, "the same auth_session and code complete after recovery: %s", r.raw)
			require.EqualValues(t, 2, ds.Count(fedtest.Token))
			tok := e.as1.redeem(t, "demo-app", r.str("authorization_code"), pk)
			require.Equal(t, http.StatusOK, tok.status, tok.raw)
			require.Zero(t, canary.Hits())
		})
	}
}

// D4/D9/K05 for discovery and keys: unusable metadata or JWKS is a 503,
// never a PAR, never a followed redirect, and the session is kept.
func TestDownstreamFaults_MetadataAndJWKS(t *testing.T) {
	canary := fedtest.StartCanary(t)
	for _, ep := range []fedtest.Endpoint{fedtest.Metadata, fedtest.JWKS} {
		for _, f := range temporaryFaults(canary) {
			if f.mode == fedtest.Slow {
				continue // see TestDownstreamTimeout_BoundsDiscovery
			}
			t.Run(string(ep)+"/"+f.name, func(t *testing.T) {
				e := newMockFed(t, mockFedOpts{timeout: faultTimeout})
				ds := e.ds["ds1"]
				if f.opts != nil {
					ds.Configure(f.opts)
				}
				if ep == fedtest.Metadata {
					ds.SetMode(ep, f.mode)
					p, _ := e.prompt(t, nil)
					for i := 0; i < 2; i++ {
						// The second answer shows the session was kept
						// (the failure is cached for a while, so still 503).
						r := e.answer(t, p.str("auth_session"), url.Values{"bank": {"ds1"}})
						requireUnavailable(t, r)
					}
					require.Zero(t, e.pars())
				} else {
					fed, _ := e.federate(t, "ds1", nil)
					code := atDownstream(t, fed)
					ds.SetMode(ep, f.mode)
					r := respondHop(t, fed, url.Values{"authorization_code": {code}})
					requireUnavailable(t, r)
				}
				require.Zero(t, canary.Hits())
			})
		}
	}
}

// D2: config.Downstream.Timeout "bounds every call to the downstream",
// discovery included: a slow metadata endpoint must not hold the native
// request for longer than the configured timeout.
func TestDownstreamTimeout_BoundsDiscovery(t *testing.T) {
	e := newMockFed(t, mockFedOpts{timeout: faultTimeout})
	ds := e.ds["ds1"]
	ds.Configure(func(o *fedtest.Options) { o.Sleep = 1500 * time.Millisecond })
	ds.SetMode(fedtest.Metadata, fedtest.Slow)
	p, _ := e.prompt(t, nil)
	r, took := timedReply(func() reply { return e.answer(t, p.str("auth_session"), url.Values{"bank": {"ds1"}}) })
	require.Less(t, took, 1200*time.Millisecond,
		"BUG: metadata fetched with the cache's own 3 s timeout, not downstreams[].timeout (%v); answer: %s", faultTimeout, r.raw)
	requireUnavailable(t, r)
}

// D1/D2/D8 with an impatient client: the device gives up (its own timeout,
// a dropped network) while AS1 waits for a slow downstream. AS1 must still
// put the session back, so the same auth_session works once the device
// retries — on every backend. (On Redis the restore runs on the cancelled
// request context and fails, leaving the session locked until its TTL.)
func TestDownstreamFaults_ClientGivesUp(t *testing.T) {
	impatient := &http.Client{Timeout: 100 * time.Millisecond}
	giveUp := func(t *testing.T, endpoint string, form url.Values) {
		t.Helper()
		resp, err := impatient.PostForm(endpoint, form)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("the slow downstream answered within the client's timeout: %d", resp.StatusCode)
		}
		// Let AS1 notice the disconnect and clean up.
		time.Sleep(300 * time.Millisecond)
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Run("during the PAR", func(t *testing.T) {
				e := newMockFed(t, mockFedOpts{store: b.store(t), timeout: time.Second})
				ds := e.ds["ds1"]
				p, _ := e.prompt(t, nil)
				s := p.str("auth_session")
				ds.SetMode(fedtest.PAR, fedtest.Slow)
				giveUp(t, e.as1.native(), url.Values{"auth_session": {s}, "bank": {"ds1"}})
				ds.SetMode(fedtest.PAR, fedtest.OK)
				r := e.answer(t, s, url.Values{"bank": {"ds1"}})
				requireFederate(t, r)
			})
			t.Run("during the code exchange", func(t *testing.T) {
				e := newMockFed(t, mockFedOpts{store: b.store(t), timeout: time.Second})
				ds := e.ds["ds1"]
				fed, _ := e.federate(t, "ds1", nil)
				code := atDownstream(t, fed)
				ds.SetMode(fedtest.Token, fedtest.Slow)
				giveUp(t, fed.str("response_uri"), url.Values{"auth_session": {fed.str("auth_session")}, "authorization_code": {code}})
				ds.SetMode(fedtest.Token, fedtest.OK)
				r := respondHop(t, fed, url.Values{"authorization_code": {code}})
				require.Equal(t, http.StatusOK, r.status, "the session survives the client's disconnect: %s", r.raw)
			})
		})
	}
}
