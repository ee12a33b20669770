package server_test

// Federation security tests (SECURITY-RESULTS.md section B, C01, K04, A10, A16)
// against a real fedas (AS1) whose downstreams are fedtest mocks.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/federation/fedtest"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage/redistest"
)

// hopOf returns the hop ID of a federate's response_uri.
func hopOf(tb testing.TB, e *mockFed, fed reply) string {
	tb.Helper()
	ru := fed.str("response_uri")
	prefix := e.as1.URL + "/native/response/"
	require.True(tb, strings.HasPrefix(ru, prefix), "response_uri %q is not on our origin", ru)
	return strings.TrimPrefix(ru, prefix)
}

// B01: the federate answer carries exactly what the device needs, and the
// downstream saw one authenticated, PKCE-protected PAR.
func TestFederate_ResponseShapeAndPARCall(t *testing.T) {
	e := newMockFed(t, mockFedOpts{})
	ds := e.ds["ds1"]
	fed, _ := e.federate(t, "ds1", url.Values{"state": {"client-state-1"}, "nonce": {"client-nonce-1"}})

	// response_uri: our origin (the test issuer is loopback http), an
	// unguessable per-hop path.
	require.Regexp(t, `^[A-Za-z0-9_-]{43,64}$`, hopOf(t, e, fed))
	require.Equal(t, ds.Endpoint(fedtest.Native), fed.str("federation_uri"), "federation_uri comes from DS1's metadata")
	body, err := url.ParseQuery(fed.str("federation_body"))
	require.NoError(t, err)
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// response_type=code is added to federation_body on purpose
	// (docs/decisions.md Q4).
	require.Equal(t, []string{"client_id", "request_uri", "response_type"}, keys)
	require.Equal(t, as1ClientID, body.Get("client_id"))
	require.True(t, strings.HasPrefix(body.Get("request_uri"), fedtest.RequestURIPrefix), body.Get("request_uri"))
	require.Equal(t, "code", body.Get("response_type"))

	require.EqualValues(t, 1, ds.Count(fedtest.PAR))
	push := ds.Requests(fedtest.PAR)[0]
	f := push.Form
	require.Equal(t, fedtest.AssertionType, f.Get("client_assertion_type"))
	require.NotEmpty(t, f.Get("client_assertion"))
	require.Empty(t, push.Header.Get("Authorization"), "one client authentication method only")
	require.Equal(t, as1ClientID, f.Get("client_id"))
	require.Equal(t, "code", f.Get("response_type"))
	require.Equal(t, "S256", f.Get("code_challenge_method"))
	require.Regexp(t, `^[A-Za-z0-9_-]{43}$`, f.Get("code_challenge"))
	require.GreaterOrEqual(t, len(f.Get("state")), 22)
	require.GreaterOrEqual(t, len(f.Get("nonce")), 22)
	require.NotEqual(t, "client-state-1", f.Get("state"), "per-hop state, not the client's")
	require.NotEqual(t, "client-nonce-1", f.Get("nonce"), "per-hop nonce, not the client's")
	require.Contains(t, strings.Fields(f.Get("scope")), "openid")
	require.Empty(t, f.Get("request_uri"), "RFC 9126 §2.1")
	require.Empty(t, f.Get("redirect_uri"), "docs/decisions.md Q14")
	require.Equal(t, http.StatusCreated, push.Status)
	// Nothing the PAR carried that proves our identity or the hop's
	// secrets reaches the device.
	for _, secret := range []string{f.Get("client_assertion"), f.Get("code_challenge"), f.Get("nonce"), f.Get("state")} {
		require.NotContains(t, fed.raw, secret)
	}
	// docs/decisions.md Q5: the downstream code is bound to our key.
	require.Regexp(t, `^[A-Za-z0-9_-]{43}$`, f.Get("dpop_jkt"))
	require.EqualValues(t, 1, ds.Count(fedtest.Metadata))
	// The request_uri is DS1's own and usable once by the device.
	require.NotEmpty(t, atDownstream(t, fed))
}

// B02: a downstream without a native endpoint (or without PAR) is refused
// before any PAR; either metadata name counts as native support.
func TestFederate_UnsupportedDownstream(t *testing.T) {
	tests := []struct {
		name string
		opts fedtest.Options
		ok   bool
	}{
		{"no native endpoint", fedtest.Options{NoNative: true}, false},
		{"no PAR endpoint", fedtest.Options{NoPAR: true}, false},
		{"native_authorization_endpoint only", fedtest.Options{NativeName: "native_authorization_endpoint"}, true},
		{"authorization_challenge_endpoint only", fedtest.Options{NativeName: "authorization_challenge_endpoint"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newMockFed(t, mockFedOpts{mocks: map[string]fedtest.Options{"ds1": tc.opts}})
			p, _ := e.prompt(t, nil)
			r := e.answer(t, p.str("auth_session"), url.Values{"bank": {"ds1"}})
			if tc.ok {
				requireFederate(t, r)
				require.EqualValues(t, 1, e.pars())
				return
			}
			requireOAuthError(t, r, http.StatusBadRequest, "native_authorization_federate_unsupported")
			require.Empty(t, r.str("federation_uri"))
			require.Zero(t, e.pars())
		})
	}
}

// B03: native_callback_uri is forwarded verbatim when registered, and an
// unregistered one stops the request before any PAR.
func TestFederate_NativeCallbackForwardedOnlyIfRegistered(t *testing.T) {
	e := newMockFed(t, mockFedOpts{})
	ds := e.ds["ds1"]
	for i, cb := range []string{"https://app.example/cb", "com.example.demo:/cb", ""} {
		extra := url.Values{}
		if cb != "" {
			extra.Set("native_callback_uri", cb)
		}
		e.federate(t, "ds1", extra)
		push := ds.Requests(fedtest.PAR)[i]
		require.Equal(t, cb, push.Form.Get("native_callback_uri"))
		_, present := push.Form["native_callback_uri"]
		require.Equal(t, cb != "", present)
	}
	before := e.pars()
	r, _ := e.as1.initial(t, "demo-app", url.Values{"native_callback_uri": {"https://evil.example/cb"}})
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
	require.Empty(t, r.str("auth_session"))
	require.Equal(t, before, e.pars())
}

// B04: every client assertion we send is for the AS we talk to: aud is
// its issuer as a JSON string, iss = sub = our client_id there, a fresh
// jti, at most 60 s of life, an asymmetric alg and that downstream's kid.
func TestFederate_OutboundAssertionShape(t *testing.T) {
	e := newMockFed(t, mockFedOpts{mocks: map[string]fedtest.Options{"ds1": {}, "ds2": {}}})
	for i := 0; i < 2; i++ {
		fed, _ := e.federate(t, "ds1", nil)
		if i == 0 {
			r := respondHop(t, fed, url.Values{"authorization_code": {atDownstream(t, fed)}})
			require.Equal(t, http.StatusOK, r.status, r.raw)
		}
	}
	e.federate(t, "ds2", nil)

	jtis := map[string]bool{}
	kids := map[string]string{}
	n := 0
	for _, id := range e.ids() {
		m := e.ds[id]
		var set jose.JSONWebKeySet
		require.NoError(t, json.Unmarshal([]byte(e.keys[id].public), &set))
		for _, rec := range append(m.Requests(fedtest.PAR), m.Requests(fedtest.Token)...) {
			n++
			raw := rec.Form.Get("client_assertion")
			require.Equal(t, fedtest.AssertionType, rec.Form.Get("client_assertion_type"))
			a, err := fedtest.DecodeAssertion(raw)
			require.NoError(t, err)
			aud, isString := a.AudString()
			require.True(t, isString, "aud must be a single JSON string, got %s", a.RawAud)
			require.Equal(t, m.URL, aud, "aud is the issuer of the AS we talk to")
			require.Equal(t, as1ClientID, a.Str("iss"))
			require.Equal(t, as1ClientID, a.Str("sub"))
			require.Contains(t, []string{"ES256", "PS256", "EdDSA"}, a.Alg())
			life := a.Num("exp") - a.Num("iat")
			require.Positive(t, life)
			require.LessOrEqual(t, life, int64(60))
			require.InDelta(t, time.Now().Unix(), a.Num("iat"), 60)
			require.NotEmpty(t, a.Str("jti"))
			require.False(t, jtis[a.Str("jti")], "jti reused")
			jtis[a.Str("jti")] = true
			require.Equal(t, id+"-key", a.Kid())
			kids[id] = a.Kid()
			jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256, jose.PS256, jose.EdDSA})
			require.NoError(t, err)
			_, err = jws.Verify(set.Keys[0].Key)
			require.NoError(t, err, "signed with the key configured for %s", id)
		}
	}
	require.Equal(t, 4, n, "3 PARs and 1 token request")
	require.NotEqual(t, kids["ds1"], kids["ds2"], "key id distinct per downstream")
}

// B05: a downstream code is only good for the hop (PKCE verifier, nonce)
// it was issued to: swapping codes between sessions never completes
// either session.
func TestResponseURI_CrossSessionCodeInjection(t *testing.T) {
	for _, pkce := range []bool{true, false} {
		name := "ds checks PKCE"
		if !pkce {
			name = "ds skips PKCE, nonce catches it"
		}
		t.Run(name, func(t *testing.T) {
			e := newMockFed(t, mockFedOpts{mocks: map[string]fedtest.Options{"ds1": {NoPKCECheck: !pkce}}})
			ds := e.ds["ds1"]
			for _, variant := range []string{"attacker code into victim session", "victim code into attacker session"} {
				victim, _ := e.federate(t, "ds1", nil)
				attacker, _ := e.federate(t, "ds1", nil)
				victimCode, attackerCode := atDownstream(t, victim), atDownstream(t, attacker)
				target, code := victim, attackerCode
				if variant == "victim code into attacker session" {
					target, code = attacker, victimCode
				}
				before := ds.Count(fedtest.Token)
				r := respondHop(t, target, url.Values{"authorization_code": {code}})
				requireOAuthError(t, r, http.StatusBadRequest, "access_denied", "invalid_grant")
				require.Equal(t, before+1, ds.Count(fedtest.Token), "redeemed only at DS1, once")
				last := ds.Requests(fedtest.Token)[before]
				if pkce {
					require.Equal(t, http.StatusBadRequest, last.Status, "DS1 refused the verifier")
				}
				// The targeted session is finished without a code.
				r = respondHop(t, target, url.Values{"authorization_code": {code}})
				requireOAuthError(t, r, http.StatusBadRequest, "invalid_session")
			}
		})
	}
}

// B06: a session bound to DS1 never redeems at DS2; an iss naming another
// issuer aborts before any token call.
func TestResponseURI_MixUp_CodeFromOtherIssuer(t *testing.T) {
	e := newMockFed(t, mockFedOpts{mocks: map[string]fedtest.Options{"ds1": {}, "ds2": {}}})
	ds1, ds2 := e.ds["ds1"], e.ds["ds2"]
	fed2, _ := e.federate(t, "ds2", nil)
	code2 := atDownstream(t, fed2)
	tests := []struct {
		name      string
		iss       string
		ds1Tokens int64
	}{
		{"no iss", "", 1},
		{"iss of DS2", ds2.URL, 0},
		{"iss of DS1 with trailing slash", ds1.URL + "/", 0},
		{"iss of an unknown AS", "https://evil.example", 0},
		{"iss of DS1", ds1.URL, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fed1, _ := e.federate(t, "ds1", nil)
			before := ds1.Count(fedtest.Token)
			form := url.Values{"authorization_code": {code2}}
			if tc.iss != "" {
				form.Set("iss", tc.iss)
			}
			r := respondHop(t, fed1, form)
			requireOAuthError(t, r, http.StatusBadRequest, "access_denied", "invalid_grant")
			require.Equal(t, tc.ds1Tokens, ds1.Count(fedtest.Token)-before)
			require.Zero(t, ds2.Count(fedtest.Token), "DS2's token endpoint is never called for a DS1 session")
			requireOAuthError(t, respondHop(t, fed1, url.Values{"authorization_code": {code2}}), http.StatusBadRequest, "invalid_session")
		})
	}
}

// B07: an assertion captured by one downstream is useless at another
// (aud is always the issuer of the AS we meant to talk to), even when a
// malicious downstream publishes the other's endpoints as its own and we
// use one key for both.
func TestAudienceInjection_AssertionReplayBlocked(t *testing.T) {
	setup := func(t *testing.T, evil func(ds1 *fedtest.Mock) func(*fedtest.Options)) *mockFed {
		shared := newFedKey(t, "as1-shared")
		var set jose.JSONWebKeySet
		require.NoError(t, json.Unmarshal([]byte(shared.public), &set))
		ds1 := fedtest.Start(t, fedtest.Options{ClientKeys: &set})
		ds2 := fedtest.Start(t, fedtest.Options{})
		ds2.Configure(evil(ds1))
		e := &mockFed{ds: map[string]*fedtest.Mock{"ds1": ds1, "ds2": ds2}, keys: map[string]fedKey{"ds1": shared, "ds2": shared}}
		e.as1 = wrap(start(t, nil, e.configure(0)))
		// Control: DS1 accepts our genuine requests.
		fed1, _ := e.federate(t, "ds1", nil)
		r := respondHop(t, fed1, url.Values{"authorization_code": {atDownstream(t, fed1)}})
		require.Equal(t, http.StatusOK, r.status, r.raw)
		return e
	}

	t.Run("replay of a captured PAR assertion", func(t *testing.T) {
		e := setup(t, func(*fedtest.Mock) func(*fedtest.Options) { return func(*fedtest.Options) {} })
		ds1, ds2 := e.ds["ds1"], e.ds["ds2"]
		e.federate(t, "ds2", nil)
		captured := ds2.Requests(fedtest.PAR)[0].Form
		a, err := fedtest.DecodeAssertion(captured.Get("client_assertion"))
		require.NoError(t, err)
		aud, _ := a.AudString()
		require.Equal(t, ds2.URL, aud)
		for _, ep := range []fedtest.Endpoint{fedtest.PAR, fedtest.Token} {
			form := url.Values{"client_id": {as1ClientID}, "client_assertion_type": captured["client_assertion_type"], "client_assertion": captured["client_assertion"],
				"response_type": {"code"}, "grant_type": {"authorization_code"}, "code": {"x"}}
			r := post(t, ds1.Endpoint(ep), form)
			require.Equal(t, http.StatusUnauthorized, r.status, "%s: %s", ep, r.raw)
		}
	})

	t.Run("DS2 publishes DS1's token endpoint", func(t *testing.T) {
		e := setup(t, func(ds1 *fedtest.Mock) func(*fedtest.Options) {
			return func(o *fedtest.Options) { o.TokenEndpoint = ds1.Endpoint(fedtest.Token) }
		})
		ds1 := e.ds["ds1"]
		fed2, _ := e.federate(t, "ds2", nil)
		before := ds1.Count(fedtest.Token)
		r := respondHop(t, fed2, url.Values{"authorization_code": {atDownstream(t, fed2)}})
		requireOAuthError(t, r, http.StatusBadRequest, "access_denied")
		require.Equal(t, before+1, ds1.Count(fedtest.Token))
		rec := ds1.Requests(fedtest.Token)[before]
		a, err := fedtest.DecodeAssertion(rec.Form.Get("client_assertion"))
		require.NoError(t, err)
		aud, _ := a.AudString()
		require.Equal(t, e.ds["ds2"].URL, aud, "aud names the AS we meant (DS2), so DS1 cannot accept it")
		require.Equal(t, http.StatusUnauthorized, rec.Status)
	})

	t.Run("DS2 publishes DS1's PAR endpoint", func(t *testing.T) {
		e := setup(t, func(ds1 *fedtest.Mock) func(*fedtest.Options) {
			return func(o *fedtest.Options) { o.PAREndpoint = ds1.Endpoint(fedtest.PAR) }
		})
		ds1 := e.ds["ds1"]
		before := ds1.Count(fedtest.PAR)
		p, _ := e.prompt(t, nil)
		r := e.answer(t, p.str("auth_session"), url.Values{"bank": {"ds2"}})
		requireOAuthError(t, r, http.StatusInternalServerError, "server_error")
		requireNoLeak(t, r)
		require.Equal(t, before+1, ds1.Count(fedtest.PAR))
		rec := ds1.Requests(fedtest.PAR)[before]
		a, err := fedtest.DecodeAssertion(rec.Form.Get("client_assertion"))
		require.NoError(t, err)
		aud, _ := a.AudString()
		require.Equal(t, e.ds["ds2"].URL, aud)
		require.Equal(t, http.StatusUnauthorized, rec.Status)
	})
}

// B08: one (auth_session, code) pair completes once; the replay gets
// invalid_session and DS1's token endpoint is called once. Our code then
// works at our token endpoint for the downstream identity.
func TestResponseURI_SequentialReplay(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			e := newMockFed(t, mockFedOpts{store: b.store(t)})
			fed, pk := e.federate(t, "ds1", nil)
			code := atDownstream(t, fed)
			first := respondHop(t, fed, url.Values{"authorization_code": {code}})
			require.Equal(t, http.StatusOK, first.status, first.raw)
			require.Equal(t, "no-store", first.header.Get("Cache-Control"))
			second := respondHop(t, fed, url.Values{"authorization_code": {code}})
			requireOAuthError(t, second, http.StatusBadRequest, "invalid_session")
			require.EqualValues(t, 1, e.ds["ds1"].Count(fedtest.Token))

			tok := e.as1.redeem(t, "demo-app", first.str("authorization_code"), pk)
			require.Equal(t, http.StatusOK, tok.status, tok.raw)
			ir := e.as1.introspect(t, tok.str("access_token"))
			require.Equal(t, e.ds["ds1"].URL+"|user-1", ir.str("sub"))
			require.Equal(t, "demo-app", ir.str("client_id"))
		})
	}
}

// B09: downstream errors posted to response_uri are mapped (docs/decisions.md
// Q9), their text never passed on, and no token call is made.
func TestResponseURI_DownstreamErrorForwarded(t *testing.T) {
	hostile := url.Values{"error_description": {`<script>alert("x")</script>` + "\r\nX-Evil: 1"}, "error_uri": {"https://evil.example/err"}}
	for _, code := range []string{"access_denied", "interaction_required_custom"} {
		t.Run(code, func(t *testing.T) {
			e := newMockFed(t, mockFedOpts{})
			fed, _ := e.federate(t, "ds1", nil)
			form := url.Values{"error": {code}}
			for k, v := range hostile {
				form[k] = v
			}
			r := respondHop(t, fed, form)
			requireOAuthError(t, r, http.StatusBadRequest, "access_denied")
			require.NotContains(t, r.raw, "<script")
			require.NotContains(t, r.raw, "alert(")
			require.NotContains(t, r.raw, "evil.example")
			require.NotContains(t, r.raw, "X-Evil")
			require.Empty(t, r.str("auth_session"))
			require.Zero(t, e.tokens())
			// The session is over: not even the real code helps now.
			r = respondHop(t, fed, url.Values{"authorization_code": {atDownstream(t, fed)}})
			requireOAuthError(t, r, http.StatusBadRequest, "invalid_session")
			require.Zero(t, e.tokens())
		})
	}
	t.Run("invalid_request re-federates once", func(t *testing.T) {
		e := newMockFed(t, mockFedOpts{})
		fed, _ := e.federate(t, "ds1", nil)
		r := respondHop(t, fed, url.Values{"error": {"invalid_request"}, "error_description": hostile["error_description"]})
		requireFederate(t, r)
		require.NotContains(t, r.raw, "<script")
		require.NotEqual(t, fed.str("auth_session"), r.str("auth_session"))
		require.NotEqual(t, fed.str("response_uri"), r.str("response_uri"), "a new hop, a new response_uri")
		require.EqualValues(t, 2, e.pars())
		requireOAuthError(t, respondHop(t, fed, url.Values{"error": {"invalid_request"}}), http.StatusBadRequest, "invalid_session")
		again := respondHop(t, r, url.Values{"error": {"invalid_request"}})
		requireOAuthError(t, again, http.StatusBadRequest, "invalid_session")
		require.EqualValues(t, 2, e.pars(), "only one retry")
		require.Zero(t, e.tokens())
	})
}

// B10: malformed posts to response_uri are refused before any outbound
// call and leave the session usable.
func TestResponseURI_MalformedInput(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			e := newMockFed(t, mockFedOpts{store: b.store(t)})
			fed, _ := e.federate(t, "ds1", nil)
			code := atDownstream(t, fed)
			s := fed.str("auth_session")
			ru := fed.str("response_uri")
			form := func(v url.Values) string { return v.Encode() }
			tests := []struct {
				name, endpoint, ctype, body string
				codes                       []string
			}{
				{"two codes", ru, "application/x-www-form-urlencoded", "authorization_code=" + code + "&authorization_code=other&auth_session=" + s, []string{"invalid_request"}},
				{"two sessions", ru, "application/x-www-form-urlencoded", "authorization_code=" + code + "&auth_session=" + s + "&auth_session=" + s, []string{"invalid_request"}},
				{"10 KB code", ru, "application/x-www-form-urlencoded", form(url.Values{"authorization_code": {strings.Repeat("c", 10<<10)}, "auth_session": {s}}), []string{"invalid_request"}},
				{"text/plain", ru, "text/plain", form(url.Values{"authorization_code": {code}, "auth_session": {s}}), []string{"invalid_request"}},
				{"JSON body", ru, "application/json", `{"authorization_code":"` + code + `","auth_session":"` + s + `"}`, []string{"invalid_request"}},
				{"no content type", ru, "", form(url.Values{"authorization_code": {code}, "auth_session": {s}}), []string{"invalid_request"}},
				{"code and error", ru, "application/x-www-form-urlencoded", form(url.Values{"authorization_code": {code}, "error": {"access_denied"}, "auth_session": {s}}), []string{"invalid_request"}},
				{"neither code nor error", ru, "application/x-www-form-urlencoded", form(url.Values{"auth_session": {s}}), []string{"invalid_request"}},
				{"no auth_session", ru, "application/x-www-form-urlencoded", form(url.Values{"authorization_code": {code}}), []string{"invalid_request"}},
				{"other client_id", ru, "application/x-www-form-urlencoded", form(url.Values{"authorization_code": {code}, "auth_session": {s}, "client_id": {"c2"}}), []string{"invalid_request"}},
				{"wrong hop", ru + "x", "application/x-www-form-urlencoded", form(url.Values{"authorization_code": {code}, "auth_session": {s}}), []string{"invalid_session", "invalid_request"}},
				{"long hop", e.as1.URL + "/native/response/" + strings.Repeat("h", 200), "application/x-www-form-urlencoded", form(url.Values{"authorization_code": {code}, "auth_session": {s}}), []string{"invalid_session", "invalid_request"}},
				{"session at the native endpoint", e.as1.native(), "application/x-www-form-urlencoded", form(url.Values{"authorization_code": {code}, "auth_session": {s}}), []string{"invalid_session"}},
			}
			for _, tc := range tests {
				r := postBody(t, tc.endpoint, tc.ctype, tc.body)
				requireOAuthError(t, r, http.StatusBadRequest, tc.codes...)
				require.Zero(t, e.tokens(), tc.name)
			}
			r := respondHop(t, fed, url.Values{"authorization_code": {code}})
			require.Equal(t, http.StatusOK, r.status, "the session survived the malformed posts: %s", r.raw)
			require.EqualValues(t, 1, e.tokens())
		})
	}
}

// B11: routing is decided on the server from configured routes only: by
// option value and by email domain. Unknown keys or values get the prompt
// again (invalid_request), never a PAR anywhere, and the attempts are
// capped.
func TestInsufficientInformation_RoutingIsServerSide(t *testing.T) {
	canary := fedtest.StartCanary(t)
	e := newMockFed(t, mockFedOpts{mocks: map[string]fedtest.Options{"ds1": {}, "ds2": {}}})
	routes := []struct {
		name   string
		answer url.Values
		to     string
	}{
		{"option ds2", url.Values{"bank": {"ds2"}}, "ds2"},
		{"option ds1", url.Values{"bank": {"ds1"}}, "ds1"},
		{"email domain", url.Values{"email": {"carol@ds2.example"}}, "ds2"},
		{"email domain in another case", url.Values{"email": {"Carol@DS1.Example"}}, "ds1"},
	}
	for _, tc := range routes {
		t.Run(tc.name, func(t *testing.T) {
			before := e.ds[tc.to].Count(fedtest.PAR)
			total := e.pars()
			p, _ := e.prompt(t, nil)
			r := e.answer(t, p.str("auth_session"), tc.answer)
			requireFederate(t, r)
			require.Equal(t, e.ds[tc.to].Endpoint(fedtest.Native), r.str("federation_uri"))
			require.Equal(t, before+1, e.ds[tc.to].Count(fedtest.PAR))
			require.Equal(t, total+1, e.pars())
		})
	}
	t.Run("unrouted email domain falls to the default (local)", func(t *testing.T) {
		total := e.pars()
		for _, email := range []string{"carol@ds1.example.evil.com", "carol@evil-ds1.example", "carol@sub.ds1.example"} {
			p, _ := e.prompt(t, nil)
			r := e.answer(t, p.str("auth_session"), url.Values{"email": {email}})
			requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
		}
		require.Equal(t, total, e.pars())
	})
	invalid := []struct {
		name   string
		answer url.Values
	}{
		{"option value not offered", url.Values{"bank": {"ds3"}}},
		{"option value in another case", url.Values{"bank": {"DS1"}}},
		{"option value is a URL", url.Values{"bank": {canary.URL}}},
		{"option value is an issuer", url.Values{"bank": {e.ds["ds1"].URL}}},
		{"unknown key naming a target", url.Values{"bank": {"ds1"}, "issuer": {canary.URL}}},
		{"federation_uri from the client", url.Values{"bank": {"ds1"}, "federation_uri": {canary.URL}}},
		{"downstream from the client", url.Values{"downstream": {"ds1"}}},
		{"input not in the prompt", url.Values{"phone": {"+15551234567"}}},
		{"malformed email", url.Values{"email": {"not-an-email"}}},
		{"two at signs", url.Values{"email": {`"a@b"@ds1.example`}}},
		{"display name", url.Values{"email": {"Carol <carol@ds1.example>"}}},
		{"empty answer", url.Values{}},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			total := e.pars()
			p, _ := e.prompt(t, nil)
			r := e.answer(t, p.str("auth_session"), tc.answer)
			requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
			require.NotNil(t, r.body["userPrompt"], "the same prompt again")
			require.NotEmpty(t, r.str("auth_session"))
			require.NotEqual(t, p.str("auth_session"), r.str("auth_session"))
			require.Equal(t, total, e.pars())
		})
	}
	t.Run("attempts capped", func(t *testing.T) {
		total := e.pars()
		p, _ := e.prompt(t, nil)
		s := p.str("auth_session")
		var old []string
		for i := 0; i < 2; i++ {
			r := e.answer(t, s, url.Values{"bank": {"nope"}})
			requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
			old = append(old, s)
			s = r.str("auth_session")
		}
		r := e.answer(t, s, url.Values{"bank": {"nope"}})
		requireOAuthError(t, r, http.StatusBadRequest, "access_denied")
		require.Empty(t, r.str("auth_session"))
		for _, v := range append(old, s) {
			requireOAuthError(t, e.answer(t, v, url.Values{"bank": {"ds1"}}), http.StatusBadRequest, "invalid_session")
		}
		require.Equal(t, total, e.pars())
	})
	require.Zero(t, canary.Hits())
}

// B12: an admin edit between federate and response_uri (simulated by a
// second AS1 instance on the same Redis and HMAC secret, with the new
// configuration) never sends the code anywhere but the issuer pinned in
// the hop.
func TestFederate_AdminEditMidFlow(t *testing.T) {
	rs := redistest.Start(t)
	secret := []byte("0123456789abcdef0123456789abcdef")
	instanceOf := func(t *testing.T, e *mockFed) instance {
		return wrap(servertest.Start(t, servertest.Options{Store: redisStore(t, rs.URL()), HMACSecret: secret, Configure: func(c *config.Config) {
			testConfig(c)
			e.configure(0)(c)
		}}))
	}
	tests := []struct {
		name string
		// after builds the edited configuration from the old mock and key.
		after func(t *testing.T, old *fedtest.Mock, key fedKey) (*mockFed, *fedtest.Mock)
		ok    bool
	}{
		{"unchanged", func(t *testing.T, old *fedtest.Mock, key fedKey) (*mockFed, *fedtest.Mock) {
			return &mockFed{ds: map[string]*fedtest.Mock{"ds1": old}, keys: map[string]fedKey{"ds1": key}}, nil
		}, true},
		{"removed", func(t *testing.T, _ *fedtest.Mock, _ fedKey) (*mockFed, *fedtest.Mock) {
			other := fedtest.Start(t, fedtest.Options{})
			return &mockFed{ds: map[string]*fedtest.Mock{"ds2": other}, keys: map[string]fedKey{"ds2": newFedKey(t, "k2")}}, other
		}, false},
		{"re-pointed to another issuer", func(t *testing.T, _ *fedtest.Mock, key fedKey) (*mockFed, *fedtest.Mock) {
			other := fedtest.Start(t, fedtest.Options{})
			return &mockFed{ds: map[string]*fedtest.Mock{"ds1": other}, keys: map[string]fedKey{"ds1": key}}, other
		}, false},
		{"same issuer under a new id", func(t *testing.T, old *fedtest.Mock, key fedKey) (*mockFed, *fedtest.Mock) {
			return &mockFed{ds: map[string]*fedtest.Mock{"ds1new": old}, keys: map[string]fedKey{"ds1new": key}}, nil
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := fedtest.Start(t, fedtest.Options{})
			key := newFedKey(t, "k1")
			before := &mockFed{ds: map[string]*fedtest.Mock{"ds1": old}, keys: map[string]fedKey{"ds1": key}}
			before.as1 = instanceOf(t, before)
			fed, pk := before.federate(t, "ds1", nil)
			code := atDownstream(t, fed)

			after, other := tc.after(t, old, key)
			after.as1 = instanceOf(t, after)
			ru := after.as1.URL + "/native/response/" + hopOf(t, before, fed)
			r := post(t, ru, url.Values{"authorization_code": {code}, "auth_session": {fed.str("auth_session")}})
			if other != nil {
				require.Zero(t, other.Total(), "the new target is never contacted")
			}
			if tc.ok {
				require.Equal(t, http.StatusOK, r.status, r.raw)
				require.EqualValues(t, 1, old.Count(fedtest.Token))
				tok := after.as1.redeem(t, "demo-app", r.str("authorization_code"), pk)
				require.Equal(t, http.StatusOK, tok.status, tok.raw)
				return
			}
			requireOAuthError(t, r, http.StatusBadRequest, "access_denied", "invalid_session")
			require.Zero(t, old.Count(fedtest.Token), "not redeemed under an edited configuration")
			r = post(t, ru, url.Values{"authorization_code": {code}, "auth_session": {fed.str("auth_session")}})
			requireOAuthError(t, r, http.StatusBadRequest, "invalid_session")
		})
	}
}

// B13: the downstream's token response must carry a valid ID token from
// the pinned issuer, for us, with the hop's nonce; otherwise access_denied,
// no code, and the session is dead. (fedas does not request DPoP-bound
// downstream tokens yet, so the token_type=Bearer-despite-DPoP case does not
// apply; an unknown token_type is rejected.)
func TestFederate_DownstreamTokenResponseValidation(t *testing.T) {
	tests := []struct {
		name string
		edit func(o *fedtest.Options, ds *fedtest.Mock)
	}{
		{"wrong iss", func(o *fedtest.Options, _ *fedtest.Mock) { o.IDToken.Issuer = "https://evil.example" }},
		{"iss with trailing slash", func(o *fedtest.Options, ds *fedtest.Mock) { o.IDToken.Issuer = ds.URL + "/" }},
		{"wrong aud", func(o *fedtest.Options, _ *fedtest.Mock) { o.IDToken.Audience = "someone-else" }},
		{"wrong nonce", func(o *fedtest.Options, _ *fedtest.Mock) { o.IDToken.Nonce = "another-nonce-value-123" }},
		{"no nonce", func(o *fedtest.Options, _ *fedtest.Mock) { o.IDToken.OmitNonce = true }},
		{"alg none", func(o *fedtest.Options, _ *fedtest.Mock) { o.IDToken.Alg = "none" }},
		{"unknown kid", func(o *fedtest.Options, _ *fedtest.Mock) { o.IDToken.KeyID = "unknown-kid" }},
		{"bad signature", func(o *fedtest.Options, _ *fedtest.Mock) { o.IDToken.OtherKey = true }},
		{"expired", func(o *fedtest.Options, _ *fedtest.Mock) { o.IDToken.Expired = true }},
		{"no id_token", func(o *fedtest.Options, _ *fedtest.Mock) { o.IDToken.Omit = true }},
		{"unknown token_type", func(o *fedtest.Options, _ *fedtest.Mock) { o.TokenType = "mac" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newMockFed(t, mockFedOpts{})
			ds := e.ds["ds1"]
			ds.Configure(func(o *fedtest.Options) { tc.edit(o, ds) })
			fed, _ := e.federate(t, "ds1", nil)
			code := atDownstream(t, fed)
			r := respondHop(t, fed, url.Values{"authorization_code": {code}})
			requireOAuthError(t, r, http.StatusBadRequest, "access_denied")
			require.Empty(t, r.str("auth_session"))
			require.EqualValues(t, 1, ds.Count(fedtest.Token))
			ds.SetIDToken(fedtest.IDTokenOptions{})
			ds.Configure(func(o *fedtest.Options) { o.TokenType = "" })
			r = respondHop(t, fed, url.Values{"authorization_code": {code}})
			requireOAuthError(t, r, http.StatusBadRequest, "invalid_session")
			require.EqualValues(t, 1, ds.Count(fedtest.Token))
		})
	}
}

// B14: metadata whose issuer is not byte-for-byte the configured one is
// discarded: 503 temporarily_unavailable, no PAR, the session kept for a
// retry.
func TestFederate_DiscoveryIssuerMismatch(t *testing.T) {
	for _, name := range []string{"other issuer", "trailing slash", "upper case"} {
		t.Run(name, func(t *testing.T) {
			e := newMockFed(t, mockFedOpts{})
			ds := e.ds["ds1"]
			ds.Configure(func(o *fedtest.Options) {
				switch name {
				case "other issuer":
					o.Issuer = "https://evil.example"
				case "trailing slash":
					o.Issuer = ds.URL + "/"
				case "upper case":
					o.Issuer = strings.ToUpper(ds.URL)
				}
			})
			p, _ := e.prompt(t, nil)
			for i := 0; i < 2; i++ {
				r := e.answer(t, p.str("auth_session"), url.Values{"bank": {"ds1"}})
				requireUnavailable(t, r)
			}
			require.Zero(t, e.pars())
		})
	}
}

// C01: native_callback_uri is compared as an exact string with the
// client's registrations; every near miss is invalid_request before any
// PAR.
func TestNativeCallbackURI_ExactStringMatch(t *testing.T) {
	registered := []string{"https://app.example/cb", "com.example.demo:/cb", "http://127.0.0.1/cb"}
	e := newMockFed(t, mockFedOpts{edit: func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "cb-app", FirstParty: true, TokenEndpointAuthMethod: "none",
			Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code"}, NativeCallbackURIs: registered})
		// cb-app is routed without a prompt: a valid request PARs at once.
		c.Routes = append([]config.Route{{Downstream: "ds1", Clients: []string{"cb-app"}}}, c.Routes...)
	}})
	ds := e.ds["ds1"]
	for i, cb := range registered {
		r, _ := e.as1.initial(t, "cb-app", url.Values{"scope": {"openid"}, "native_callback_uri": {cb}})
		requireFederate(t, r)
		require.Equal(t, cb, ds.Requests(fedtest.PAR)[i].Form.Get("native_callback_uri"))
	}
	pars := ds.Count(fedtest.PAR)
	for _, cb := range []string{
		"https://app.example/cb/../evil",
		"https://app.example/CB",
		"https://app.example/cb?x=1",
		"https://app.example/cb#f",
		"https://app.example/cb/",
		"https://app.example.evil.com/cb",
		"https://app.example@evil.com/cb",
		`https://evil.com\@app.example/cb`,
		"https://app.example:443/cb",
		"HTTPS://APP.EXAMPLE/cb",
		"https://app.example/%63b",
		" https://app.example/cb",
		"http://app.example/cb",
		"javascript:alert(1)",
		"data:text/html,<script>alert(1)</script>",
		"com.example.evil:/cb",
		"com.example.demo:/cb/../x",
		"com.example.demo://cb",
		"http://127.0.0.1/cb?bar=foo",
		"http://localhost/cb",
		"http://[::1]/cb",
	} {
		r, _ := e.as1.initial(t, "cb-app", url.Values{"scope": {"openid"}, "native_callback_uri": {cb}})
		requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
		require.Empty(t, r.str("auth_session"), cb)
		require.NotContains(t, r.raw, "<script>")
	}
	require.Equal(t, pars, ds.Count(fedtest.PAR))
}

// K04: no URL a client supplies is ever fetched.
func TestSSRF_NoFetchOfClientSuppliedURIs(t *testing.T) {
	canary := fedtest.StartCanary(t)
	e := newMockFed(t, mockFedOpts{})
	target := canary.URL + "/x"
	// request_uri by reference at the native endpoint.
	for _, f := range []url.Values{
		{"client_id": {"demo-app"}, "request_uri": {target}},
		{"request_uri": {target}},
		{"client_id": {"demo-app"}, "request_uri": {fedtest.RequestURIPrefix + target}},
		{"client_id": {"demo-app"}, "response_type": {"code"}, "request_uri": {target}, "request": {"eyJhbGciOiJub25lIn0.e30."}},
	} {
		r := post(t, e.as1.native(), f)
		requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
	}
	// request_uri at our PAR endpoint.
	r := post(t, e.as1.parURL(), url.Values{"client_id": {"demo-partner"}, "response_type": {"code"}, "request_uri": {target}}, basic("demo-partner", partnerSecret))
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
	// native_callback_uri on an unknown host.
	r, _ = e.as1.initial(t, "demo-app", url.Values{"native_callback_uri": {target}})
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
	// URL-valued parameters we do not support are ignored, not fetched.
	// An unregistered redirect_uri is refused, not fetched.
	r, _ = e.as1.initial(t, "demo-app", url.Values{"redirect_uri": {target}})
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
	p, _ := e.prompt(t, url.Values{"jwks_uri": {target}, "logo_uri": {target}, "iss": {target}, "request_object_signing_jwks_uri": {target}})
	r = e.answer(t, p.str("auth_session"), url.Values{"logo": {target}})
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
	r = e.answer(t, r.str("auth_session"), url.Values{"bank": {"ds1"}})
	requireFederate(t, r)
	// An iss in the response is compared, never resolved.
	r = respondHop(t, r, url.Values{"authorization_code": {"x"}, "iss": {canary.URL}})
	requireOAuthError(t, r, http.StatusBadRequest, "access_denied")
	require.Zero(t, canary.Hits(), "the canary was contacted")
	require.Zero(t, e.tokens())
}

// A10: replaying the insufficient_information answer after federate was
// issued changes nothing: invalid_session, no second PAR, and the current
// value still completes at the response_uri.
func TestAuthSession_StepReplay_PromptAnswer(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			e := newMockFed(t, mockFedOpts{store: b.store(t), mocks: map[string]fedtest.Options{"ds1": {}, "ds2": {}}})
			p, _ := e.prompt(t, nil)
			s0 := p.str("auth_session")
			fed := e.answer(t, s0, url.Values{"bank": {"ds1"}})
			requireFederate(t, fed)
			for _, bank := range []string{"ds1", "ds2"} {
				r := e.answer(t, s0, url.Values{"bank": {bank}})
				requireOAuthError(t, r, http.StatusBadRequest, "invalid_session")
			}
			// The federate-time value is good only at its response_uri.
			r := e.answer(t, fed.str("auth_session"), url.Values{"bank": {"ds2"}})
			requireOAuthError(t, r, http.StatusBadRequest, "invalid_session")
			require.EqualValues(t, 1, e.ds["ds1"].Count(fedtest.PAR))
			require.Zero(t, e.ds["ds2"].Count(fedtest.PAR))
			r = respondHop(t, fed, url.Values{"authorization_code": {atDownstream(t, fed)}})
			require.Equal(t, http.StatusOK, r.status, r.raw)
		})
	}
}

// A16: no auth_session value (nor its lookup part) ever appears in a URL,
// in federation_body, or in anything a downstream receives. (Binding the
// completion to the device's DPoP key is not implemented yet.)
func TestAuthSession_NeverInURLs(t *testing.T) {
	e := newMockFed(t, mockFedOpts{})
	p, _ := e.prompt(t, url.Values{"native_callback_uri": {"https://app.example/cb"}})
	sessions := []string{p.str("auth_session")}
	fed := e.answer(t, p.str("auth_session"), url.Values{"bank": {"ds1"}})
	requireFederate(t, fed)
	sessions = append(sessions, fed.str("auth_session"))
	// A re-federation mints another hop and session.
	fed = respondHop(t, fed, url.Values{"error": {"invalid_request"}})
	requireFederate(t, fed)
	sessions = append(sessions, fed.str("auth_session"))
	r := respondHop(t, fed, url.Values{"authorization_code": {atDownstream(t, fed)}})
	require.Equal(t, http.StatusOK, r.status, r.raw)

	var seen []string
	for _, rec := range e.ds["ds1"].All() {
		seen = append(seen, rec.URL, rec.Body)
		for k, vs := range rec.Header {
			seen = append(seen, k+": "+strings.Join(vs, ","))
		}
	}
	visible := append([]string{fed.str("federation_uri"), fed.str("federation_body"), fed.str("response_uri")}, seen...)
	for _, s := range sessions {
		require.Len(t, s, 64)
		for _, v := range visible {
			require.NotContains(t, v, s)
			require.NotContains(t, v, s[:21], "the session's lookup ID leaked")
			require.NotContains(t, v, url.QueryEscape(s))
		}
	}
	require.Len(t, e.ds["ds1"].Requests(fedtest.Token), 1)
}

// docs/decisions.md Q9: a downstream server_error or temporarily_unavailable
// posted to response_uri is passed through, and the auth_session is kept
// for a retry (the failure is not terminal): the device can then post the
// real result with the same auth_session.
func TestResponseURI_DownstreamTemporaryErrorPassedThrough(t *testing.T) {
	for _, code := range []string{"temporarily_unavailable", "server_error"} {
		t.Run(code, func(t *testing.T) {
			e := newMockFed(t, mockFedOpts{})
			fed, _ := e.federate(t, "ds1", nil)
			for i := 0; i < 2; i++ {
				r := respondHop(t, fed, url.Values{"error": {code}})
				require.Equal(t, code, r.str("error"), "Q9: passed through, attempt %d: %s", i+1, r.raw)
				require.GreaterOrEqual(t, r.status, 500)
			}
			r := respondHop(t, fed, url.Values{"authorization_code": {atDownstream(t, fed)}})
			require.Equal(t, http.StatusOK, r.status, "the auth_session was kept: %s", r.raw)
			require.EqualValues(t, 1, e.pars())
		})
	}
}
