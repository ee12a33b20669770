package server_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/docs"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage/redistest"
)

// TestOpenAPI_Document: docs/openapi.json is a valid OpenAPI 3.1.0
// document, the one the binary embeds and serves, describes exactly the
// routes the public listener has (and nothing of the admin API), and
// names every body schema and header as a component, so that the
// contract observer validates each against a compiled schema.
func TestOpenAPI_Document(t *testing.T) {
	c := publicContractOf(t)
	require.Equal(t, "3.1.0", c.doc.OpenAPI)
	require.True(t, c.doc.IsOpenAPI31OrLater())
	require.Equal(t, "fedas public API", c.doc.Info.Title)
	require.Equal(t, c.raw, docs.OpenAPI, "the binary embeds docs/openapi.json")

	// Reach on: its endpoints are served only then (docs/reach.md).
	in := wrap(start(t, nil, func(c *config.Config) { c.Reach.Enabled = true }))
	r := do(t, mustGet(t, in.URL+server.PathOpenAPI))
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.Equal(t, string(c.raw), r.raw, "served as is")
	served, err := openapi3.NewLoader().LoadFromData([]byte(r.raw))
	require.NoError(t, err)
	require.NoError(t, served.Validate(context.Background()))
	meta := do(t, mustGet(t, in.URL+"/.well-known/oauth-authorization-server"))
	oidc := do(t, mustGet(t, in.URL+"/.well-known/openid-configuration"))
	require.Equal(t, meta.raw, oidc.raw, "one metadata document under both names")
	ready := do(t, mustGet(t, in.URL+"/readyz"))
	require.Equal(t, http.StatusOK, ready.status)
	require.Equal(t, "ready", ready.str("status"))

	served2 := map[string]bool{}
	for _, rt := range in.Server.Handler().(*echo.Echo).Routes() {
		if !slices.Contains([]string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete}, rt.Method) || strings.Contains(rt.Path, "*") {
			continue
		}
		served2[rt.Method+" "+strings.NewReplacer(":hop", "{hop}", ":id", "{id}").Replace(rt.Path)] = true
	}
	documented := map[string]bool{}
	for path, item := range c.doc.Paths.Map() {
		require.False(t, strings.HasPrefix(path, "/admin"), "%s: the admin API has its own document", path)
		for method, op := range item.Operations() {
			documented[method+" "+path] = true
			require.NotEmpty(t, op.OperationID, "%s %s", method, path)
			if op.RequestBody != nil {
				for mt, media := range op.RequestBody.Value.Content {
					require.True(t, strings.HasPrefix(media.Schema.Ref, "#/components/schemas/"), "%s %s: request %s schema is not a component", method, path, mt)
				}
			}
			for st, resp := range op.Responses.Map() {
				for name, h := range resp.Value.Headers {
					require.True(t, strings.HasPrefix(h.Ref, "#/components/headers/"), "%s %s %s: header %s is not a component", method, path, st, name)
				}
				for mt, media := range resp.Value.Content {
					if mt == "text/html" {
						continue
					}
					require.True(t, strings.HasPrefix(media.Schema.Ref, "#/components/schemas/"), "%s %s %s: %s schema is not a component", method, path, st, mt)
				}
			}
		}
	}
	for op := range served2 {
		require.True(t, documented[op], "%s is served but not documented", op)
	}
	for op := range documented {
		require.True(t, served2[op], "%s is documented but not served", op)
	}
}

// TestOpenAPI_ValidatorRefusesUndocumented: the contract observer itself
// catches an undocumented status, header, content type or body shape, a
// missing required header, an undocumented path answered as if it
// existed, a CORS header, and a request the document refuses that the
// server accepted — so that every other test can trust it.
func TestOpenAPI_ValidatorRefusesUndocumented(t *testing.T) {
	c := publicContractOf(t)
	exchange := func(method, target, ctype, body string, status int, h http.Header, respBody string) servertest.Exchange {
		req, err := http.NewRequest(method, "http://as.example"+target, nil)
		require.NoError(t, err)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		return servertest.Exchange{Request: req, RequestBody: []byte(body), Status: status, Header: h, Body: []byte(respBody)}
	}
	jsonHeaders := func() http.Header {
		return http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}, "Pragma": {"no-cache"}, "X-Content-Type-Options": {"nosniff"}}
	}
	form := "application/x-www-form-urlencoded"
	codeBody := `{"authorization_code":"ory_ac_abc.def"}`
	initial := "client_id=demo-app&response_type=code"
	require.NoError(t, c.check(exchange("POST", "/native/authorize", form, initial, 200, jsonHeaders(), codeBody)))
	require.NoError(t, c.check(exchange("POST", "/native/authorize", "application/json", `{"client_id":"demo-app"}`, 200, jsonHeaders(), codeBody)))

	require.ErrorContains(t, c.check(exchange("POST", "/native/authorize", form, initial, 418, jsonHeaders(), codeBody)), "status 418 is not documented")
	h := jsonHeaders()
	h.Set("X-Extra", "1")
	require.ErrorContains(t, c.check(exchange("POST", "/native/authorize", form, initial, 200, h, codeBody)), "header X-Extra is not documented")
	h = jsonHeaders()
	h.Del("Cache-Control")
	require.ErrorContains(t, c.check(exchange("POST", "/native/authorize", form, initial, 200, h, codeBody)), "header Cache-Control is missing")
	h = jsonHeaders()
	h.Set("Cache-Control", "public")
	require.ErrorContains(t, c.check(exchange("POST", "/native/authorize", form, initial, 200, h, codeBody)), "header Cache-Control")
	h = jsonHeaders()
	h.Set("Content-Type", "text/plain")
	require.ErrorContains(t, c.check(exchange("POST", "/native/authorize", form, initial, 200, h, codeBody)), "content type")
	require.ErrorContains(t, c.check(exchange("POST", "/native/authorize", form, initial, 200, jsonHeaders(), `{"authorization_code":"ory_ac_abc.def","extra":1}`)), "additional properties 'extra' not allowed")
	require.ErrorContains(t, c.check(exchange("POST", "/native/authorize", form, initial, 200, jsonHeaders(), `{}`)), "missing property 'authorization_code'")
	require.ErrorContains(t, c.check(exchange("POST", "/native/authorize", form, initial, 200, jsonHeaders(), "")), "documents a body but has none")
	// A 403 challenge without its auth_session; a federate without its
	// response_uri; an error code the endpoint does not answer.
	require.ErrorContains(t, c.check(exchange("POST", "/native/authorize", form, initial, 403, jsonHeaders(),
		`{"error":"insufficient_authorization","challenge":{"type":"password","inputs":{}}}`)), "oneOf")
	require.ErrorContains(t, c.check(exchange("POST", "/native/authorize", form, initial, 400, jsonHeaders(),
		`{"error":"federate","auth_session":"`+strings.Repeat("a", 64)+`","federation_uri":"x","federation_body":"y"}`)), "oneOf")
	require.ErrorContains(t, c.check(exchange("POST", "/native/authorize", form, initial, 400, jsonHeaders(), `{"error":"invalid_grant"}`)), "oneOf")
	// A request the document refuses, accepted.
	require.ErrorContains(t, c.check(exchange("POST", "/native/authorize", "text/plain", "x", 200, jsonHeaders(), codeBody)), "accepted (200) a request the document refuses")
	require.ErrorContains(t, c.check(exchange("POST", "/native/authorize", form, "auth_session=short", 200, jsonHeaders(), codeBody)), "accepted (200)")
	// The same requests refused are fine.
	require.NoError(t, c.check(exchange("POST", "/native/authorize", "text/plain", "x", 400, jsonHeaders(), `{"error":"invalid_request","error_description":"x"}`)))
	// Paths and methods the document lacks.
	notFound := `{"error":"not_found","error_description":"No such endpoint."}`
	require.NoError(t, c.check(exchange("GET", "/nope", "", "", 404, jsonHeaders(), notFound)))
	require.ErrorContains(t, c.check(exchange("GET", "/nope", "", "", 200, jsonHeaders(), notFound)), "not in the document")
	require.ErrorContains(t, c.check(exchange("GET", "/native/authorize", "", "", 400, jsonHeaders(), notFound)), "method not allowed")
	require.ErrorContains(t, c.check(exchange("GET", "/nope", "", "", 404, jsonHeaders(), `{"message":"x"}`)), "not an error body")
	h = jsonHeaders()
	h.Set("Access-Control-Allow-Origin", "*")
	require.ErrorContains(t, c.check(exchange("GET", "/nope", "", "", 404, h, notFound)), "CORS")
	require.ErrorContains(t, c.check(exchange("OPTIONS", "/native/authorize", "", "", 200, jsonHeaders(), "")), "want 204 with Allow")
	// Pages: HTML with the page headers; a redirect with Location.
	page := http.Header{"Content-Type": {"text/html; charset=utf-8"}, "Cache-Control": {"no-store"}, "Pragma": {"no-cache"}, "X-Content-Type-Options": {"nosniff"},
		"X-Frame-Options": {"DENY"}, "Referrer-Policy": {"no-referrer"}, "Content-Security-Policy": {"default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"}}
	require.NoError(t, c.check(exchange("GET", "/oauth2/authorize?client_id=a&request_uri=urn:ietf:params:oauth:request_uri:x", "", "", 200, page, "<!doctype html>")))
	page.Del("X-Frame-Options")
	require.ErrorContains(t, c.check(exchange("GET", "/oauth2/authorize?client_id=a&request_uri=urn:ietf:params:oauth:request_uri:x", "", "", 200, page, "<!doctype html>")), "X-Frame-Options is missing")
	require.ErrorContains(t, c.check(exchange("GET", "/federation/callback?state=x", "", "", 303, http.Header{"Cache-Control": {"no-store"}}, "")), "header Location is missing")
}

// TestOpenAPI_AnswersNoOtherTestProvokes drives, through the contract
// observer, the documented answers the end-to-end tests leave out, so
// that a full run of the package provokes every documented status and
// error code (TestMain checks): 413 on every POST endpoint, refused
// pushes and token requests, a federate at a response_uri (the
// downstream's request_uri expired: we push again), and the web
// callback's 503.
func TestOpenAPI_AnswersNoOtherTestProvokes(t *testing.T) {
	t.Run("413 on every POST endpoint", func(t *testing.T) {
		in := wrap(start(t, nil))
		big := strings.Repeat("a", int(in.Config.Limits.MaxBodyBytes)+1)
		for _, p := range []string{"/native/authorize", "/native/response/x", "/native/app/complete", "/oauth2/authorize", "/oauth2/token", "/oauth2/par", "/oauth2/revoke", "/oauth2/introspect"} {
			r := postBody(t, in.URL+p, "application/x-www-form-urlencoded", "x="+big)
			requireOAuthError(t, r, http.StatusRequestEntityTooLarge, "invalid_request")
		}
	})
	t.Run("refused pushes", func(t *testing.T) {
		in := wrap(start(t, nil))
		push := func(edit url.Values) reply {
			f := url.Values{"client_id": {"demo-partner"}, "response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {"https://partner.example/cb"}, "state": {"state-12345"}}
			for k, v := range edit {
				f[k] = v
			}
			return post(t, in.parURL(), f, basic("demo-partner", partnerSecret))
		}
		requireOAuthError(t, push(url.Values{"scope": {"openid admin"}}), http.StatusBadRequest, "invalid_scope")
		requireOAuthError(t, push(url.Values{"response_type": {"token"}}), http.StatusBadRequest, "unsupported_response_type")
		requireOAuthError(t, push(url.Values{"dpop_jkt": {"not-a-thumbprint"}}), http.StatusBadRequest, "invalid_request")
		r := post(t, in.parURL(), url.Values{"client_id": {"post-client"}, "client_secret": {"post-secret"}, "response_type": {"code"}, "redirect_uri": {"https://post.example/cb"},
			"state": {"state-12345"}, "scope": {"openid"}})
		require.Equal(t, http.StatusCreated, r.status, r.raw)
	})
	t.Run("refused token requests", func(t *testing.T) {
		in := wrap(start(t, nil))
		r := post(t, in.token(), url.Values{"grant_type": {"refresh_token"}, "client_id": {"post-client"}, "client_secret": {"post-secret"}, "refresh_token": {"ory_rt_x.y"}})
		requireOAuthError(t, r, http.StatusBadRequest, "unauthorized_client")
	})
	t.Run("federate again at the response_uri", func(t *testing.T) {
		as1, _ := pair(t, nil, nil, nil, nil)
		r, _ := as1.initial(t, "demo-app", nil)
		requireOAuthError(t, r, http.StatusBadRequest, "insufficient_information")
		r = post(t, as1.native(), url.Values{"auth_session": {r.str("auth_session")}, "email": {"carol@as2.example"}})
		requireOAuthError(t, r, http.StatusBadRequest, "federate")
		again := post(t, r.str("response_uri"), url.Values{"auth_session": {r.str("auth_session")}, "error": {"invalid_request"}})
		requireOAuthError(t, again, http.StatusBadRequest, "federate")
		require.NotEqual(t, r.str("federation_body"), again.str("federation_body"), "a new push")
	})
	t.Run("web callback while storage is down", func(t *testing.T) {
		rs := redistest.Start(t)
		ln1, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		key := newFedKey(t, "as1-key")
		as2 := wrap(start(t, nil, func(c *config.Config) {
			fc := federatingClient("as1", key, false)
			fc.RedirectURIs = []string{"http://" + ln1.Addr().String() + "/federation/callback"}
			c.Clients = append(c.Clients, fc)
		}))
		as1 := wrap(servertest.Start(t, servertest.Options{Listener: ln1, Store: redisStore(t, rs.URL()), Configure: func(c *config.Config) {
			testConfig(c)
			c.Downstreams = append(c.Downstreams, downstreamOf("as2", as2.URL, "as1", key))
			emailPrompt(c, "as2.example", "as2")
		}}))
		c := as1.Client(t, "demo-app")
		var callback string
		c.OpenBrowser = func(_ context.Context, authz string) (url.Values, error) {
			hc := servertest.HTTP()
			page := do(t, mustGet(t, authz))
			m := hiddenSessionRE.FindStringSubmatch(page.raw)
			require.NotNil(t, m, page.raw)
			resp, err := hc.PostForm(strings.SplitN(authz, "?", 2)[0], url.Values{"auth_session": {m[1]}, "username": {"carol"}, "password": {"carol-pw"}})
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusSeeOther, resp.StatusCode)
			callback = resp.Header.Get("Location")
			return nil, context.Canceled
		}
		_, _, err = c.Authorize(context.Background(), url.Values{"scope": {"openid"}, "native_callback_uri": {"https://app.example/cb"}}, answerAll("carol@as2.example"))
		require.ErrorIs(t, err, context.Canceled)
		require.True(t, strings.HasPrefix(callback, as1.URL+"/federation/callback?"), callback)
		rs.Stop()
		r := do(t, mustGet(t, callback))
		require.Equal(t, http.StatusServiceUnavailable, r.status, r.raw)
		require.Equal(t, "1", r.header.Get("Retry-After"))
		require.Empty(t, r.header.Get("Location"))
	})
}

// TestOpenAPI_ObserverInstalled: the package's TestMain validates every
// exchange (a test that removed the hook would otherwise pass silently).
func TestOpenAPI_ObserverInstalled(t *testing.T) {
	if os.Getenv("FEDAS_CONTRACT") == "off" {
		t.Skip("FEDAS_CONTRACT=off")
	}
	c := publicContractOf(t)
	c.mu.Lock()
	before := c.checked
	c.mu.Unlock()
	in := wrap(start(t, nil))
	r, _ := in.initial(t, "demo-app", nil)
	require.Equal(t, http.StatusForbidden, r.status)
	c.mu.Lock()
	after := c.checked
	c.mu.Unlock()
	require.Greater(t, after, before, "the initial request was validated")
}
