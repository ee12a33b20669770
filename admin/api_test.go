package admin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/fedas/fedas/admin/admintest"
	"github.com/fedas/fedas/federation/fedtest"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
)

// The admin API's contract tests: every endpoint and every refusal, each
// exchange validated against openapi.json by apiClient (openapi_test.go).

const v1 = "/admin/v1"

// start runs an instance with the demo configuration (clients demo-app,
// demo-partner; users alice, bob) and a contract-checking client.
func start(tb testing.TB, o admintest.Options) (*admintest.Instance, *apiClient) {
	tb.Helper()
	in := admintest.Start(tb, o)
	return in, newClient(tb, in)
}

// privateJWK is a fresh EC P-256 private JWK (JSON) and its private
// scalar "d", which must never appear in an answer but export.
func privateJWK(tb testing.TB) (jwk, d string) {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	b, err := json.Marshal(jose.JSONWebKey{Key: k, KeyID: "as1", Algorithm: string(jose.ES256), Use: "sig"})
	require.NoError(tb, err)
	var m map[string]any
	require.NoError(tb, json.Unmarshal(b, &m))
	return string(b), m["d"].(string)
}

func downstreamBody(id, key string) map[string]any {
	return map[string]any{
		"id": id, "issuer": "https://" + id + ".example", "name": "Bank", "client_id": "as1",
		"auth":    map[string]any{"method": "private_key_jwt", "key": key},
		"timeout": "3s", "claims": []string{"email"}, "scopes": map[string]string{"openid": "openid"},
	}
}

func decode(tb testing.TB, r admintest.Response) map[string]any {
	tb.Helper()
	var m map[string]any
	require.NoError(tb, json.Unmarshal(r.Body, &m), "%s", r.Body)
	return m
}

func ifMatch(tag string) map[string]string { return map[string]string{"If-Match": tag} }

// ok requires status and returns the decoded body.
func ok(tb testing.TB, r admintest.Response, status int) map[string]any {
	tb.Helper()
	require.Equal(tb, status, r.Status, "%s", r.Body)
	return decode(tb, r)
}

// refused requires an error answer: status, error code, a description,
// no-store.
func refused(tb testing.TB, r admintest.Response, status int, code string) map[string]any {
	tb.Helper()
	require.Equal(tb, status, r.Status, "%s", r.Body)
	require.Equal(tb, "no-store", r.Header.Get("Cache-Control"))
	require.True(tb, strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"), r.Header.Get("Content-Type"))
	m := decode(tb, r)
	require.Equal(tb, code, m["error"], "%s", r.Body)
	require.NotEmpty(tb, m["error_description"])
	return m
}

type problem struct{ Path, Field, Message string }

func problemsOf(tb testing.TB, m map[string]any) []problem {
	tb.Helper()
	var out []problem
	ps, _ := m["problems"].([]any)
	for _, p := range ps {
		pm := p.(map[string]any)
		path, _ := pm["path"].(string)
		field, _ := pm["field"].(string)
		msg, _ := pm["message"].(string)
		out = append(out, problem{path, field, msg})
	}
	return out
}

// requireProblem requires a problem at path (and field, when not "-")
// whose message contains msg.
func requireProblem(tb testing.TB, m map[string]any, path, field, msg string) {
	tb.Helper()
	for _, p := range problemsOf(tb, m) {
		if p.Path == path && (field == "-" || p.Field == field) && strings.Contains(p.Message, msg) {
			return
		}
	}
	tb.Fatalf("no problem %s (field %s) %q in %v", path, field, msg, m["problems"])
}

// head is the store's head version (GET /status).
func head(tb testing.TB, api *apiClient) uint64 {
	tb.Helper()
	m := ok(tb, api.do(tb, http.MethodGet, v1+"/status", api.in.ReadToken, nil, nil), http.StatusOK)
	return uint64(m["version"].(float64))
}

// get reads a resource and its ETag.
func get(tb testing.TB, api *apiClient, path string) (map[string]any, string) {
	tb.Helper()
	r := api.do(tb, http.MethodGet, path, api.in.ReadToken, nil, nil)
	m := ok(tb, r, http.StatusOK)
	require.NotEmpty(tb, r.Header.Get("ETag"))
	return m, r.Header.Get("ETag")
}

// create adds an entry and returns the answer.
func create(tb testing.TB, api *apiClient, kind string, body any) map[string]any {
	tb.Helper()
	return ok(tb, api.do(tb, http.MethodPost, v1+"/"+kind, api.in.WriteToken, nil, body), http.StatusCreated)
}

func ids(tb testing.TB, list map[string]any) []string {
	tb.Helper()
	var out []string
	for _, it := range list["items"].([]any) {
		out = append(out, it.(map[string]any)["id"].(string))
	}
	return out
}

// endpoint is one operation of the API with a request that reaches it.
type endpoint struct {
	method, path string
	write        bool
	hdr          map[string]string
	body         any
}

// endpoints lists every operation under /admin/v1.
func endpoints() []endpoint {
	star := ifMatch(`*`)
	yamlBody := map[string]string{"If-Match": `*`, "Content-Type": "application/yaml"}
	es := []endpoint{
		{method: "GET", path: "/status"},
		{method: "GET", path: "/prompt"},
		{method: "PUT", path: "/prompt", write: true, hdr: star, body: map[string]any{"inputs": []any{map[string]any{"key": "email"}}}},
		{method: "DELETE", path: "/prompt", write: true, hdr: star},
		{method: "GET", path: "/default-route"},
		{method: "PUT", path: "/default-route", write: true, hdr: star, body: map[string]any{"default_route": "deny"}},
		{method: "GET", path: "/keys"},
		{method: "PUT", path: "/keys/active", write: true, hdr: star, body: map[string]any{"kid": "key-b"}},
		{method: "POST", path: "/route-test", body: map[string]any{"client_id": "demo-app"}},
		{method: "POST", path: "/discover", write: true, body: map[string]any{"issuer": "https://bank.example"}},
		{method: "POST", path: "/downstreams/bank/check", write: true},
		{method: "GET", path: "/versions"},
		{method: "GET", path: "/versions/1"},
		{method: "POST", path: "/versions/1/rollback", write: true, hdr: star},
		{method: "GET", path: "/export", write: true},
		{method: "POST", path: "/import", write: true, hdr: yamlBody, body: "default_route: deny\n"},
		{method: "GET", path: "/audit"},
		{method: "PUT", path: "/routes", write: true, hdr: star, body: []any{}},
	}
	for _, k := range []string{"downstreams", "routes", "clients", "apps"} {
		es = append(es,
			endpoint{method: "GET", path: "/" + k},
			endpoint{method: "POST", path: "/" + k, write: true, body: map[string]any{"id": "x1"}},
			endpoint{method: "GET", path: "/" + k + "/x1"},
			endpoint{method: "PUT", path: "/" + k + "/x1", write: true, hdr: star, body: map[string]any{}},
			endpoint{method: "DELETE", path: "/" + k + "/x1", write: true, hdr: star},
		)
	}
	return es
}

// TestAPIUnauthorized: every endpoint refuses a request without a token,
// with a wrong token, or with another scheme: 401 with a Bearer
// challenge, and nothing changes.
func TestAPIUnauthorized(t *testing.T) {
	in, api := start(t, admintest.Options{})
	creds := []struct {
		name, auth, challenge string
	}{
		{"no token", "", `Bearer realm="fedas-admin"`},
		{"wrong token", "Bearer fedas_admin_not-a-token", `Bearer realm="fedas-admin", error="invalid_token"`},
		{"basic scheme", "Basic " + in.WriteToken, `Bearer realm="fedas-admin"`},
		{"empty bearer", "Bearer ", `Bearer realm="fedas-admin"`},
	}
	for _, e := range endpoints() {
		for _, c := range creds {
			t.Run(e.method+" "+e.path+" "+c.name, func(t *testing.T) {
				hdr := map[string]string{}
				for k, v := range e.hdr {
					hdr[k] = v
				}
				if c.auth != "" {
					hdr["Authorization"] = c.auth
				}
				r := api.do(t, e.method, v1+e.path, "", hdr, e.body)
				refused(t, r, http.StatusUnauthorized, "invalid_token")
				require.Equal(t, c.challenge, r.Header.Get("WWW-Authenticate"))
			})
		}
	}
	require.EqualValues(t, 1, head(t, api), "nothing was committed")
}

// TestAPIForbidden: a read token is refused every write with 403
// insufficient_scope, and is admitted to every read.
func TestAPIForbidden(t *testing.T) {
	in, api := start(t, admintest.Options{})
	for _, e := range endpoints() {
		t.Run(e.method+" "+e.path, func(t *testing.T) {
			r := api.do(t, e.method, v1+e.path, in.ReadToken, e.hdr, e.body)
			if e.write {
				refused(t, r, http.StatusForbidden, "insufficient_scope")
				return
			}
			require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, r.Status, "%s", r.Body)
		})
	}
	require.EqualValues(t, 1, head(t, api), "nothing was committed")
}

// TestAPIStatus: status names the head, the version served and the
// caller.
func TestAPIStatus(t *testing.T) {
	in, api := start(t, admintest.Options{})
	for _, c := range []struct{ token, actor, role string }{{in.ReadToken, "reader", "read"}, {in.WriteToken, "writer", "write"}} {
		r := api.do(t, http.MethodGet, v1+"/status", c.token, nil, nil)
		m := ok(t, r, http.StatusOK)
		require.Equal(t, `"v1"`, r.Header.Get("ETag"))
		require.EqualValues(t, 1, m["version"])
		require.EqualValues(t, 1, m["serving"])
		require.Equal(t, in.URL, m["issuer"])
		require.Equal(t, c.actor, m["actor"])
		require.Equal(t, c.role, m["role"])
	}
}

// TestAPINotFound: unknown collections, ids, versions and endpoints
// answer 404 not_found.
func TestAPINotFound(t *testing.T) {
	in, api := start(t, admintest.Options{})
	w := in.WriteToken
	cases := []struct {
		method, path string
		hdr          map[string]string
		body         any
	}{
		{"GET", v1 + "/nope", nil, nil},
		{"POST", v1 + "/nope", nil, map[string]any{"id": "x"}},
		{"GET", v1 + "/nope/x", nil, nil},
		{"GET", v1 + "/downstreams/nope", nil, nil},
		{"PUT", v1 + "/downstreams/nope", ifMatch(`*`), map[string]any{"name": "x"}},
		{"DELETE", v1 + "/downstreams/nope", ifMatch(`*`), nil},
		{"GET", v1 + "/routes/nope", nil, nil},
		{"GET", v1 + "/clients/nope", nil, nil},
		{"DELETE", v1 + "/apps/nope", ifMatch(`*`), nil},
		{"GET", v1 + "/versions/99", nil, nil},
		{"GET", v1 + "/versions/0", nil, nil},
		{"GET", v1 + "/versions/abc", nil, nil},
		{"POST", v1 + "/versions/99/rollback", ifMatch(`"v1"`), nil},
		{"GET", v1 + "/prompt", nil, nil},
		{"GET", v1 + "/a/b/c", nil, nil},
		{"GET", v1, nil, nil},
		{"GET", "/admin/nope", nil, nil},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			refused(t, api.do(t, c.method, c.path, w, c.hdr, c.body), http.StatusNotFound, "not_found")
		})
	}
	require.EqualValues(t, 1, head(t, api))
}

// TestAPIMethodNotAllowed: a known path with another method answers 405
// with Allow.
func TestAPIMethodNotAllowed(t *testing.T) {
	in, api := start(t, admintest.Options{})
	cases := []struct{ method, path, allow string }{
		{"DELETE", v1 + "/status", "GET"},
		{"PATCH", v1 + "/downstreams/bank", "PUT"},
		{"DELETE", v1 + "/downstreams", "POST"},
		{"PUT", v1 + "/versions", "GET"},
		{"POST", v1 + "/export", "GET"},
		{"GET", v1 + "/import", "POST"},
		{"GET", v1 + "/route-test", "POST"},
		{"POST", v1 + "/prompt", "PUT"},
		{"POST", "/admin/openapi.json", "GET"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			r := api.do(t, c.method, c.path, in.WriteToken, nil, nil)
			refused(t, r, http.StatusMethodNotAllowed, "invalid_request")
			require.Contains(t, r.Header.Get("Allow"), c.allow)
		})
	}
}

// TestAPIUnsupportedMediaType: a body of another media type answers 415.
func TestAPIUnsupportedMediaType(t *testing.T) {
	in, api := start(t, admintest.Options{})
	cases := []struct {
		method, path, ctype string
		body                any
	}{
		{"POST", v1 + "/downstreams", "text/plain", `{"id":"bank"}`},
		{"POST", v1 + "/downstreams", "", `{"id":"bank"}`},
		{"PUT", v1 + "/downstreams/bank", "application/x-www-form-urlencoded", "id=bank"},
		{"PUT", v1 + "/prompt", "application/yaml", "inputs: []"},
		{"PUT", v1 + "/default-route", "text/json", `{"default_route":"deny"}`},
		{"PUT", v1 + "/routes", "application/xml", "<routes/>"},
		{"POST", v1 + "/route-test", "text/plain", `{}`},
		{"POST", v1 + "/import", "application/json", `{"default_route":"deny"}`},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path+" "+c.ctype, func(t *testing.T) {
			hdr := map[string]string{"If-Match": `*`, "Content-Type": c.ctype}
			refused(t, api.do(t, c.method, c.path, in.WriteToken, hdr, c.body), http.StatusUnsupportedMediaType, "invalid_request")
		})
	}
	require.EqualValues(t, 1, head(t, api))
}

// TestAPIMalformedBodies: malformed JSON, duplicate members, unknown
// fields, wrong types and shapeless bodies answer 400 and commit nothing.
func TestAPIMalformedBodies(t *testing.T) {
	in, api := start(t, admintest.Options{})
	cases := []struct {
		name, method, path, body string
		// desc is in error_description; p, when set, is a problem
		// (path, field, message).
		desc string
		p    *problem
	}{
		{"truncated", "POST", "/downstreams", `{"id":`, "malformed JSON", nil},
		{"not JSON", "POST", "/downstreams", `id=bank`, "malformed JSON", nil},
		{"empty", "POST", "/downstreams", ``, "empty body", nil},
		{"trailing data", "POST", "/downstreams", `{"id":"bank"} {}`, "trailing data", nil},
		{"array for object", "POST", "/downstreams", `[{"id":"bank"}]`, "must be a JSON object", nil},
		{"object for array", "PUT", "/routes", `{"id":"r1"}`, "must be a JSON array", nil},
		{"non-object item", "PUT", "/routes", `["r1"]`, "item 0 is not an object", nil},
		{"duplicate member", "POST", "/downstreams", `{"id":"bank","id":"evil"}`, `"id" appears twice`, nil},
		{"nested duplicate", "POST", "/downstreams", `{"id":"bank","auth":{"method":"private_key_jwt","method":"client_secret_basic"}}`, `"method" appears twice`, nil},
		{"duplicate in prompt", "PUT", "/prompt", `{"max_attempts":3,"max_attempts":9}`, `"max_attempts" appears twice`, nil},
		{"unknown field", "POST", "/downstreams", `{"id":"bank","issuer":"https://bank.example","client_id":"as1","colour":"red"}`, "schema", &problem{"colour", "colour", "unknown field"}},
		{"unknown field on update", "PUT", "/clients/demo-app", `{"nickname":"x"}`, "schema", &problem{"nickname", "nickname", "unknown field"}},
		{"unknown field in prompt", "PUT", "/prompt", `{"inputs":[],"title":"x"}`, "schema", &problem{"title", "title", "unknown field"}},
		{"unknown field in route list", "PUT", "/routes", `[{"id":"r1","local":true,"clients":["demo-app"],"weight":1}]`, "invalid entries", &problem{"routes[0].weight", "-", "unknown field"}},
		{"unknown field in route-test", "POST", "/route-test", `{"client_id":"demo-app","user":"alice"}`, "schema", &problem{"user", "user", "unknown field"}},
		{"string for list", "POST", "/downstreams", `{"id":"bank","claims":"email"}`, "schema", &problem{"claims", "claims", "a list"}},
		{"number for duration", "POST", "/downstreams", `{"id":"bank","timeout":3}`, "schema", &problem{"timeout", "timeout", "duration"}},
		{"string for bool", "POST", "/downstreams", `{"id":"bank","browser_federation":"maybe"}`, "schema", &problem{"browser_federation", "browser_federation", "true or false"}},
		{"nested unknown field", "POST", "/downstreams", `{"id":"bank","auth":{"method":"client_secret_basic","bogus":1}}`, "schema", &problem{"auth.bogus", "auth.bogus", "unknown field"}},
		{"yes for bool", "POST", "/downstreams", `{"id":"bank","browser_federation":"yes"}`, "schema", &problem{"browser_federation", "browser_federation", "a string where true or false"}},
		{"number for string", "POST", "/downstreams", `{"id":"bank","name":5}`, "schema", &problem{"name", "name", "a number where a string"}},
		{"bool for string", "POST", "/downstreams", `{"id":"bank","auth":{"method":true}}`, "schema", &problem{"auth.method", "auth.method", "true or false where a string"}},
		{"number in a map of strings", "POST", "/downstreams", `{"id":"bank","scopes":{"openid":1}}`, "schema", &problem{"scopes.openid", "scopes.openid", "a number where a string"}},
		{"fraction for integer", "PUT", "/prompt", `{"inputs":[{"key":"email"}],"max_attempts":2.5}`, "schema", &problem{"max_attempts", "max_attempts", "2.5 where an integer"}},
		{"number in a list of strings", "PUT", "/routes", `[{"id":"r1","local":true,"clients":[7]}]`, "invalid entries", &problem{"routes[0].clients[0]", "-", "a number where a string"}},
		{"no id", "POST", "/downstreams", `{"issuer":"https://bank.example"}`, "no id", &problem{"id", "id", "required"}},
		{"renaming id", "PUT", "/clients/demo-app", `{"id":"other"}`, "differs", &problem{"id", "id", "cannot be renamed"}},
		{"default_route not a string", "PUT", "/default-route", `{"default_route":5}`, "default_route", &problem{"default_route", "default_route", "a string"}},
		{"default_route extra member", "PUT", "/default-route", `{"default_route":"deny","why":"x"}`, "default_route", &problem{"default_route", "default_route", "a string"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := ifMatch(`*`)
			m := refused(t, api.do(t, c.method, v1+c.path, in.WriteToken, hdr, c.body), http.StatusBadRequest, "invalid_request")
			require.Contains(t, m["error_description"], c.desc)
			if c.p != nil {
				requireProblem(t, m, c.p.Path, c.p.Field, c.p.Message)
			}
		})
	}
	require.EqualValues(t, 1, head(t, api), "nothing was committed")
}

// TestAPIPayloadTooLarge: a body over 1 MiB answers 413.
func TestAPIPayloadTooLarge(t *testing.T) {
	in, api := start(t, admintest.Options{})
	big := `{"id":"bank","name":"` + strings.Repeat("a", 1<<20) + `"}`
	refused(t, api.do(t, http.MethodPost, v1+"/downstreams", in.WriteToken, nil, big), http.StatusRequestEntityTooLarge, "invalid_request")
	require.EqualValues(t, 1, head(t, api))
}

// TestAPICollections: for every collection, create (201 with Location
// and ETag), read it back, refuse a second create (409), refuse writes
// without If-Match (428) or with a stale one (412), update then read,
// delete then 404.
func TestAPICollections(t *testing.T) {
	key, _ := privateJWK(t)
	cases := []struct {
		kind   string
		create map[string]any
		// update edits a body read with GET; updated checks a body read
		// after the update.
		update  func(m map[string]any)
		updated func(t *testing.T, m map[string]any)
	}{
		{"downstreams", downstreamBody("bank", key),
			func(m map[string]any) { m["name"] = "Bank 2"; m["timeout"] = "5s" },
			func(t *testing.T, m map[string]any) {
				require.Equal(t, "Bank 2", m["name"])
				require.Equal(t, "5s", m["timeout"])
				require.Equal(t, true, m["auth"].(map[string]any)["key_set"])
			}},
		{"routes", map[string]any{"id": "r1", "local": true, "clients": []string{"demo-partner"}},
			func(m map[string]any) { m["clients"] = []string{"demo-app", "demo-partner"} },
			func(t *testing.T, m map[string]any) {
				require.Equal(t, []any{"demo-app", "demo-partner"}, m["clients"])
			}},
		{"clients", map[string]any{"id": "c1", "name": "C1", "token_endpoint_auth_method": "none", "first_party": true,
			"scopes": []string{"openid"}, "native_callback_uris": []string{"https://c1.example/cb"}},
			func(m map[string]any) { m["name"] = "C one"; m["scopes"] = []string{"openid", "email"} },
			func(t *testing.T, m map[string]any) {
				require.Equal(t, "C one", m["name"])
				require.Equal(t, []any{"openid", "email"}, m["scopes"])
				require.Equal(t, false, m["secret_sha256_set"])
			}},
		{"apps", map[string]any{"id": "wallet", "client_id": "demo-app", "deep_link": "https://wallet.example/open"},
			func(m map[string]any) {
				m["deep_link"] = "https://wallet.example/open2"
				m["clients"] = []string{"demo-partner"}
			},
			func(t *testing.T, m map[string]any) {
				require.Equal(t, "https://wallet.example/open2", m["deep_link"])
				require.Equal(t, []any{"demo-partner"}, m["clients"])
			}},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			in, api := start(t, admintest.Options{})
			w := in.WriteToken
			id := c.create["id"].(string)
			loc := v1 + "/" + c.kind + "/" + id

			r := api.do(t, http.MethodPost, v1+"/"+c.kind, w, nil, c.create)
			m := ok(t, r, http.StatusCreated)
			require.Equal(t, loc, r.Header.Get("Location"))
			tag := r.Header.Get("ETag")
			require.NotEmpty(t, tag)
			require.EqualValues(t, 2, m["version"])
			require.Equal(t, true, m["changed"])
			require.NotEmpty(t, m["summary"])
			item := m["item"].(map[string]any)
			require.Equal(t, id, item["id"])

			got, gtag := get(t, api, loc)
			require.Equal(t, item, got, "GET after create returns the entry as created")
			require.Equal(t, tag, gtag)
			list, _ := get(t, api, v1+"/"+c.kind)
			require.Contains(t, ids(t, list), id)
			require.EqualValues(t, 2, list["version"])

			refused(t, api.do(t, http.MethodPost, v1+"/"+c.kind, w, nil, c.create), http.StatusConflict, "conflict")

			c.update(got)
			refused(t, api.do(t, http.MethodPut, loc, w, nil, got), http.StatusPreconditionRequired, "precondition_required")
			refused(t, api.do(t, http.MethodPut, loc, w, ifMatch(`"stale"`), got), http.StatusPreconditionFailed, "precondition_failed")
			require.EqualValues(t, 2, head(t, api), "refused writes commit nothing")

			r = api.do(t, http.MethodPut, loc, w, ifMatch(tag), got)
			m = ok(t, r, http.StatusOK)
			require.EqualValues(t, 3, m["version"])
			require.Equal(t, true, m["changed"])
			tag2 := r.Header.Get("ETag")
			require.NotEqual(t, tag, tag2)
			c.updated(t, m["item"].(map[string]any))
			after, atag := get(t, api, loc)
			c.updated(t, after)
			require.Equal(t, tag2, atag, "the ETag of the update is the entry's")

			// The same body again changes nothing and keeps the version.
			m = ok(t, api.do(t, http.MethodPut, loc, w, ifMatch(tag2), after), http.StatusOK)
			require.Equal(t, false, m["changed"])
			require.EqualValues(t, 3, m["version"])

			refused(t, api.do(t, http.MethodDelete, loc, w, nil, nil), http.StatusPreconditionRequired, "precondition_required")
			refused(t, api.do(t, http.MethodDelete, loc, w, ifMatch(tag), nil), http.StatusPreconditionFailed, "precondition_failed")
			m = ok(t, api.do(t, http.MethodDelete, loc, w, ifMatch(tag2), nil), http.StatusOK)
			require.EqualValues(t, 4, m["version"])
			require.Equal(t, true, m["changed"])
			refused(t, api.do(t, http.MethodGet, loc, w, nil, nil), http.StatusNotFound, "not_found")
			list, _ = get(t, api, v1+"/"+c.kind)
			require.NotContains(t, ids(t, list), id)
		})
	}
}

// TestAPIDeleteDownstreamInUse: deleting a downstream a route still uses
// is rejected whole, with the route's problem, and nothing is committed.
func TestAPIDeleteDownstreamInUse(t *testing.T) {
	in, api := start(t, admintest.Options{})
	key, _ := privateJWK(t)
	create(t, api, "downstreams", downstreamBody("bank", key))
	create(t, api, "routes", map[string]any{"id": "to-bank", "downstream": "bank", "clients": []string{"demo-partner"}})
	before := head(t, api)
	_, tag := get(t, api, v1+"/downstreams/bank")
	m := refused(t, api.do(t, http.MethodDelete, v1+"/downstreams/bank", in.WriteToken, ifMatch(tag), nil), http.StatusBadRequest, "invalid_request")
	require.Contains(t, m["error_description"], "rejected whole")
	requireProblem(t, m, "routes[0].downstream", "", `"bank" is not a configured downstream`)
	require.Equal(t, before, head(t, api), "nothing was committed")
	_, still := get(t, api, v1+"/downstreams/bank")
	require.Equal(t, tag, still)
}

// TestAPIInvalidChangeListsEveryProblem: a downstream with a bad issuer,
// an unknown auth method and a bad timeout is refused with every problem,
// each with its path and field; the head does not move.
func TestAPIInvalidChangeListsEveryProblem(t *testing.T) {
	in, api := start(t, admintest.Options{})
	key, _ := privateJWK(t)
	bad := downstreamBody("bank", key)
	bad["issuer"] = "ftp://bank.example"
	bad["auth"] = map[string]any{"method": "magic"}
	bad["timeout"] = "2m"
	check := func(t *testing.T, m map[string]any, i int) {
		p := fmt.Sprintf("downstreams[%d]", i)
		requireProblem(t, m, p+".issuer", "issuer", "must use https")
		requireProblem(t, m, p+".auth.method", "auth.method", `"magic" is not private_key_jwt or client_secret_basic`)
		requireProblem(t, m, p+".timeout", "timeout", "between 0 and 1m")
	}
	m := refused(t, api.do(t, http.MethodPost, v1+"/downstreams", in.WriteToken, nil, bad), http.StatusBadRequest, "invalid_request")
	check(t, m, 0)
	require.EqualValues(t, 1, head(t, api))

	// The same change as an update of an existing downstream.
	create(t, api, "downstreams", downstreamBody("other", key))
	create(t, api, "downstreams", downstreamBody("bank", key))
	_, tag := get(t, api, v1+"/downstreams/bank")
	m = refused(t, api.do(t, http.MethodPut, v1+"/downstreams/bank", in.WriteToken, ifMatch(tag), bad), http.StatusBadRequest, "invalid_request")
	check(t, m, 1)
	require.EqualValues(t, 3, head(t, api))
	_, still := get(t, api, v1+"/downstreams/bank")
	require.Equal(t, tag, still)
}

// TestAPIWriteOnlySecrets: an inline downstream key and a client secret
// digest are never shown (key_set, secret_sha256_set), survive a PUT
// that leaves them out, appear only in the export, and never in versions
// or the audit log.
func TestAPIWriteOnlySecrets(t *testing.T) {
	in, api := start(t, admintest.Options{})
	key, d := privateJWK(t)
	w := in.WriteToken
	const digest = "376663e346d32968480785fedaf2bf469d0b3a06949a05d55835a0f7bc1d0618" // demo-partner's
	noSecret := func(t *testing.T, r admintest.Response) {
		t.Helper()
		require.NotContains(t, string(r.Body), d, "the private key")
		require.NotContains(t, string(r.Body), digest, "the secret digest")
	}

	r := api.do(t, http.MethodPost, v1+"/downstreams", w, nil, downstreamBody("bank", key))
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	noSecret(t, r)
	auth := decode(t, r)["item"].(map[string]any)["auth"].(map[string]any)
	require.Equal(t, true, auth["key_set"])
	require.NotContains(t, auth, "key")

	r = api.do(t, http.MethodGet, v1+"/downstreams/bank", in.ReadToken, nil, nil)
	noSecret(t, r)
	ds := ok(t, r, http.StatusOK)
	require.Equal(t, true, ds["auth"].(map[string]any)["key_set"])
	require.NotContains(t, ds["auth"], "key")

	// Written back as read (key_set included, no key): the key stays.
	ds["name"] = "Bank renamed"
	r = api.do(t, http.MethodPut, v1+"/downstreams/bank", w, ifMatch(r.Header.Get("ETag")), ds)
	require.Equal(t, true, ok(t, r, http.StatusOK)["changed"])
	ds, _ = get(t, api, v1+"/downstreams/bank")
	require.Equal(t, true, ds["auth"].(map[string]any)["key_set"], "a PUT without the key keeps it")
	require.Equal(t, "Bank renamed", ds["name"])

	// The same for a client's secret digest.
	r = api.do(t, http.MethodGet, v1+"/clients/demo-partner", in.ReadToken, nil, nil)
	noSecret(t, r)
	cl := ok(t, r, http.StatusOK)
	require.Equal(t, true, cl["secret_sha256_set"])
	require.NotContains(t, cl, "secret_sha256")
	cl["name"] = "Partner renamed"
	ok(t, api.do(t, http.MethodPut, v1+"/clients/demo-partner", w, ifMatch(r.Header.Get("ETag")), cl), http.StatusOK)
	cl, _ = get(t, api, v1+"/clients/demo-partner")
	require.Equal(t, true, cl["secret_sha256_set"], "a PUT without the digest keeps it")

	for _, p := range []string{"/downstreams", "/clients", "/versions", "/versions/2", "/versions/3", "/versions/4", "/audit"} {
		noSecret(t, api.do(t, http.MethodGet, v1+p, in.ReadToken, nil, nil))
	}
	ex := api.do(t, http.MethodGet, v1+"/export", w, nil, nil)
	require.Equal(t, http.StatusOK, ex.Status)
	require.Contains(t, string(ex.Body), d, "export carries the inline key (write role)")
	require.Contains(t, string(ex.Body), digest)
}

// TestAPIExportImport: export needs the write role and returns YAML that
// re-imports; import replaces the whole policy under If-Match of the head.
func TestAPIExportImport(t *testing.T) {
	in, api := start(t, admintest.Options{})
	w := in.WriteToken
	refused(t, api.do(t, http.MethodGet, v1+"/export", in.ReadToken, nil, nil), http.StatusForbidden, "insufficient_scope")

	ex := api.do(t, http.MethodGet, v1+"/export", w, nil, nil)
	require.Equal(t, http.StatusOK, ex.Status)
	require.Equal(t, "application/yaml", ex.Header.Get("Content-Type"))
	require.Equal(t, `"v1"`, ex.Header.Get("ETag"))
	require.Equal(t, `attachment; filename="fedas-policy-v1.yaml"`, ex.Header.Get("Content-Disposition"))
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(ex.Body, &doc))
	require.Contains(t, doc, "clients")
	require.Contains(t, doc, "users")
	exported := ex.Body

	yamlHdr := func(tag string) map[string]string {
		return map[string]string{"Content-Type": "application/yaml", "If-Match": tag}
	}
	// The export re-imports: unchanged.
	m := ok(t, api.do(t, http.MethodPost, v1+"/import", w, yamlHdr(`"v1"`), exported), http.StatusOK)
	require.Equal(t, false, m["changed"])
	require.EqualValues(t, 1, m["version"])

	key, _ := privateJWK(t)
	create(t, api, "downstreams", downstreamBody("bank", key))
	withBank := api.do(t, http.MethodGet, v1+"/export", w, nil, nil)
	require.Equal(t, http.StatusOK, withBank.Status)

	refused(t, api.do(t, http.MethodPost, v1+"/import", w, map[string]string{"Content-Type": "application/yaml"}, exported), http.StatusPreconditionRequired, "precondition_required")
	refused(t, api.do(t, http.MethodPost, v1+"/import", w, yamlHdr(`"v1"`), exported), http.StatusPreconditionFailed, "precondition_failed")
	require.EqualValues(t, 2, head(t, api))

	r := api.do(t, http.MethodPost, v1+"/import", w, yamlHdr(`"v2"`), exported)
	m = ok(t, r, http.StatusOK)
	require.Equal(t, true, m["changed"])
	require.EqualValues(t, 3, m["version"])
	require.Equal(t, `"v3"`, r.Header.Get("ETag"))
	refused(t, api.do(t, http.MethodGet, v1+"/downstreams/bank", w, nil, nil), http.StatusNotFound, "not_found")
	vs, _ := get(t, api, v1+"/versions")
	require.Equal(t, "import", vs["items"].([]any)[0].(map[string]any)["origin"])

	// An export with an inline key re-imports with its key.
	ok(t, api.do(t, http.MethodPost, v1+"/import", w, yamlHdr(`"v3"`), withBank.Body), http.StatusOK)
	ds, _ := get(t, api, v1+"/downstreams/bank")
	require.Equal(t, true, ds["auth"].(map[string]any)["key_set"])

	// A whole config file imports too: its instance keys are ignored.
	cfg := "issuer: https://elsewhere.example\nlisten: 0.0.0.0:1\nscopes: [openid]\n" + string(exported)
	m = ok(t, api.do(t, http.MethodPost, v1+"/import", w, yamlHdr(`"v4"`), cfg), http.StatusOK)
	require.EqualValues(t, 5, m["version"])

	bad := []struct{ name, doc, msg string }{
		{"malformed", "clients: [", "did not find expected"},
		{"unknown key", "colour: red\n", "colour"},
		{"wrong type", "downstreams: {}\n", "cannot unmarshal"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			m := refused(t, api.do(t, http.MethodPost, v1+"/import", w, yamlHdr(`"v5"`), b.doc), http.StatusBadRequest, "invalid_request")
			requireProblem(t, m, "", "", b.msg)
		})
	}
	t.Run("invalid policy", func(t *testing.T) {
		m := refused(t, api.do(t, http.MethodPost, v1+"/import", w, yamlHdr(`"v5"`), "default_route: nowhere\n"), http.StatusBadRequest, "invalid_request")
		requireProblem(t, m, "default_route", "", "nowhere")
	})
	require.EqualValues(t, 5, head(t, api))
}

// TestAPIVersionsAndRollback: versions list newest first with paging,
// details show the redacted document and diffs, and a rollback commits
// the earlier document as a new version with origin rollback.
func TestAPIVersionsAndRollback(t *testing.T) {
	in, api := start(t, admintest.Options{})
	w := in.WriteToken
	key, _ := privateJWK(t)
	create(t, api, "downstreams", downstreamBody("bank", key)) // v2
	ds, tag := get(t, api, v1+"/downstreams/bank")
	ds["name"] = "Bank 2"
	ok(t, api.do(t, http.MethodPut, v1+"/downstreams/bank", w, ifMatch(tag), ds), http.StatusOK) // v3

	r := api.do(t, http.MethodGet, v1+"/versions", in.ReadToken, nil, nil)
	vs := ok(t, r, http.StatusOK)
	require.Equal(t, `"v3"`, r.Header.Get("ETag"))
	require.EqualValues(t, 3, vs["version"])
	items := vs["items"].([]any)
	require.Len(t, items, 3)
	for i, want := range []struct {
		v              float64
		author, origin string
		current        bool
	}{{3, "writer", "api", true}, {2, "writer", "api", false}, {1, "config-file", "bootstrap", false}} {
		it := items[i].(map[string]any)
		require.Equal(t, want.v, it["version"])
		require.Equal(t, want.author, it["author"])
		require.Equal(t, want.origin, it["origin"])
		require.Equal(t, want.current, it["current"])
	}

	page := ok(t, api.do(t, http.MethodGet, v1+"/versions?limit=2", in.ReadToken, nil, nil), http.StatusOK)["items"].([]any)
	require.Len(t, page, 2)
	require.EqualValues(t, 3, page[0].(map[string]any)["version"])
	page = ok(t, api.do(t, http.MethodGet, v1+"/versions?before=3&limit=5", in.ReadToken, nil, nil), http.StatusOK)["items"].([]any)
	require.Len(t, page, 2)
	require.EqualValues(t, 2, page[0].(map[string]any)["version"])
	for _, q := range []string{"?limit=0", "?limit=201", "?limit=x", "?before=-1", "?before=x"} {
		refused(t, api.do(t, http.MethodGet, v1+"/versions"+q, in.ReadToken, nil, nil), http.StatusBadRequest, "invalid_request")
	}

	d := ok(t, api.do(t, http.MethodGet, v1+"/versions/2", in.ReadToken, nil, nil), http.StatusOK)
	require.EqualValues(t, 2, d["version"])
	require.Equal(t, false, d["current"])
	require.Contains(t, d["document"], "name: Bank\n")
	require.Contains(t, d["document"], "key: <redacted")
	require.Contains(t, d["diff_to_head"], "Bank 2", "what a rollback would change")
	require.Contains(t, d["diff_from_parent"], "+  - id: bank")

	refused(t, api.do(t, http.MethodPost, v1+"/versions/2/rollback", w, nil, nil), http.StatusPreconditionRequired, "precondition_required")
	refused(t, api.do(t, http.MethodPost, v1+"/versions/2/rollback", w, ifMatch(`"v2"`), nil), http.StatusPreconditionFailed, "precondition_failed")
	refused(t, api.do(t, http.MethodPost, v1+"/versions/2/rollback", in.ReadToken, ifMatch(`"v3"`), nil), http.StatusForbidden, "insufficient_scope")
	require.EqualValues(t, 3, head(t, api))

	r = api.do(t, http.MethodPost, v1+"/versions/2/rollback", w, ifMatch(`"v3"`), nil)
	m := ok(t, r, http.StatusOK)
	require.EqualValues(t, 4, m["version"])
	require.Equal(t, true, m["changed"])
	require.Equal(t, `"v4"`, r.Header.Get("ETag"))
	ds, _ = get(t, api, v1+"/downstreams/bank")
	require.Equal(t, "Bank", ds["name"], "the rollback restores version 2's document")
	require.Equal(t, true, ds["auth"].(map[string]any)["key_set"])
	top := ok(t, api.do(t, http.MethodGet, v1+"/versions", in.ReadToken, nil, nil), http.StatusOK)["items"].([]any)
	require.Len(t, top, 4)
	latest := top[0].(map[string]any)
	require.EqualValues(t, 4, latest["version"])
	require.Equal(t, "rollback", latest["origin"])
	require.Equal(t, "writer", latest["author"])
	require.Equal(t, true, latest["current"])
	require.Equal(t, false, top[1].(map[string]any)["current"])

	// Rolling back to the bootstrap version removes the downstream.
	ok(t, api.do(t, http.MethodPost, v1+"/versions/1/rollback", w, ifMatch(`*`), nil), http.StatusOK)
	refused(t, api.do(t, http.MethodGet, v1+"/downstreams/bank", w, nil, nil), http.StatusNotFound, "not_found")
}

// TestAPIAudit: every change is audited with who, from where, what and a
// redacted diff.
func TestAPIAudit(t *testing.T) {
	in, api := start(t, admintest.Options{})
	w := in.WriteToken
	key, d := privateJWK(t)
	create(t, api, "downstreams", downstreamBody("bank", key)) // v2
	_, tag := get(t, api, v1+"/default-route")
	ok(t, api.do(t, http.MethodPut, v1+"/default-route", w, ifMatch(tag), map[string]any{"default_route": "bank"}), http.StatusOK) // v3
	ok(t, api.do(t, http.MethodPost, v1+"/versions/2/rollback", w, ifMatch(`"v3"`), nil), http.StatusOK)                           // v4

	r := api.do(t, http.MethodGet, v1+"/audit", in.ReadToken, nil, nil)
	require.NotContains(t, string(r.Body), d, "no key material in the audit log")
	items := ok(t, r, http.StatusOK)["items"].([]any)
	require.Len(t, items, 4)
	want := []struct {
		v                      float64
		action, target, inDiff string
	}{
		{4, "rollback", "versions/2", "-default_route: bank"},
		{3, "default_route.update", "default_route", "+default_route: bank"},
		{2, "downstreams.create", "downstreams/bank", "+  - id: bank"},
	}
	for i, w := range want {
		e := items[i].(map[string]any)
		require.Equal(t, w.v, e["version"])
		require.Equal(t, "writer", e["actor"])
		require.Equal(t, "write", e["role"])
		require.Equal(t, "127.0.0.1", e["remote"])
		require.Equal(t, w.action, e["action"])
		require.Equal(t, w.target, e["target"])
		require.Contains(t, e["diff"], w.inDiff)
		require.NotEmpty(t, e["summary"])
		require.NotEmpty(t, e["time"])
	}
	require.Contains(t, items[2].(map[string]any)["diff"], "key: <redacted", "the key is redacted in the diff")
	boot := items[3].(map[string]any)
	require.Equal(t, "config-file", boot["actor"])
	require.Equal(t, "bootstrap", boot["action"])

	page := ok(t, api.do(t, http.MethodGet, v1+"/audit?before=4&limit=1", in.ReadToken, nil, nil), http.StatusOK)["items"].([]any)
	require.Len(t, page, 1)
	require.EqualValues(t, 3, page[0].(map[string]any)["version"])
	refused(t, api.do(t, http.MethodGet, v1+"/audit?limit=1000", in.ReadToken, nil, nil), http.StatusBadRequest, "invalid_request")
}

// TestAPIRoutesReplace: PUT /routes replaces the list (its order decides
// the first match) under the list's ETag.
func TestAPIRoutesReplace(t *testing.T) {
	in, api := start(t, admintest.Options{})
	w := in.WriteToken
	create(t, api, "routes", map[string]any{"id": "r1", "local": true, "clients": []string{"demo-partner"}})
	create(t, api, "routes", map[string]any{"id": "r2", "local": true, "clients": []string{"demo-app"}})
	list, tag := get(t, api, v1+"/routes")
	require.Equal(t, []string{"r1", "r2"}, ids(t, list))
	items := list["items"].([]any)
	reordered := []any{items[1], items[0]}

	refused(t, api.do(t, http.MethodPut, v1+"/routes", w, nil, reordered), http.StatusPreconditionRequired, "precondition_required")
	refused(t, api.do(t, http.MethodPut, v1+"/routes", w, ifMatch(`"stale"`), reordered), http.StatusPreconditionFailed, "precondition_failed")
	m := refused(t, api.do(t, http.MethodPut, v1+"/routes", w, ifMatch(tag), []any{map[string]any{"id": "r1", "local": true}}), http.StatusBadRequest, "invalid_request")
	requireProblem(t, m, "routes[0]", "", "needs at least one condition")
	require.EqualValues(t, 3, head(t, api))

	r := api.do(t, http.MethodPut, v1+"/routes", w, ifMatch(tag), reordered)
	m = ok(t, r, http.StatusOK)
	require.Equal(t, true, m["changed"])
	require.EqualValues(t, 4, m["version"])
	list, tag2 := get(t, api, v1+"/routes")
	require.Equal(t, []string{"r2", "r1"}, ids(t, list))
	require.Equal(t, r.Header.Get("ETag"), tag2)

	// Routes without an id are named by position; the ETag answered is
	// the list's as read afterwards.
	r = api.do(t, http.MethodPut, v1+"/routes", w, ifMatch(tag2), []any{map[string]any{"local": true, "clients": []string{"demo-app"}}})
	ok(t, r, http.StatusOK)
	list, tag3 := get(t, api, v1+"/routes")
	require.Equal(t, []string{"route-1"}, ids(t, list))
	require.Equal(t, r.Header.Get("ETag"), tag3)
}

// TestAPIPrompt: the prompt is read, created, replaced and removed under
// its ETag; removing it while a route needs it is refused.
func TestAPIPrompt(t *testing.T) {
	in, api := start(t, admintest.Options{})
	w := in.WriteToken
	r := api.do(t, http.MethodGet, v1+"/prompt", in.ReadToken, nil, nil)
	refused(t, r, http.StatusNotFound, "not_found")
	absent := r.Header.Get("ETag")
	require.NotEmpty(t, absent, "the absent prompt has an ETag, for the PUT that creates it")

	prompt := map[string]any{"logo": "https://as.example/logo.png", "inputs": []any{map[string]any{"key": "email", "title": "Email", "hint": "you@example.com"}}, "max_attempts": 3}
	refused(t, api.do(t, http.MethodPut, v1+"/prompt", w, nil, prompt), http.StatusPreconditionRequired, "precondition_required")
	refused(t, api.do(t, http.MethodPut, v1+"/prompt", w, ifMatch(`"stale"`), prompt), http.StatusPreconditionFailed, "precondition_failed")
	bad := map[string]any{"inputs": []any{map[string]any{"key": "password"}}}
	m := refused(t, api.do(t, http.MethodPut, v1+"/prompt", w, ifMatch(absent), bad), http.StatusBadRequest, "invalid_request")
	requireProblem(t, m, "prompt.inputs[0].key", "inputs[0].key", "only email and phone")

	r = api.do(t, http.MethodPut, v1+"/prompt", w, ifMatch(absent), prompt)
	m = ok(t, r, http.StatusOK)
	require.Equal(t, true, m["changed"])
	require.EqualValues(t, 3, m["item"].(map[string]any)["max_attempts"])
	tag := r.Header.Get("ETag")
	got, gtag := get(t, api, v1+"/prompt")
	require.Equal(t, tag, gtag)
	require.Equal(t, "email", got["inputs"].([]any)[0].(map[string]any)["key"])
	require.Equal(t, "https://as.example/logo.png", got["logo"])

	create(t, api, "routes", map[string]any{"id": "by-mail", "local": true, "email_domains": []string{"bank.example"}})
	refused(t, api.do(t, http.MethodDelete, v1+"/prompt", w, nil, nil), http.StatusPreconditionRequired, "precondition_required")
	refused(t, api.do(t, http.MethodDelete, v1+"/prompt", w, ifMatch(absent), nil), http.StatusPreconditionFailed, "precondition_failed")
	m = refused(t, api.do(t, http.MethodDelete, v1+"/prompt", w, ifMatch(tag), nil), http.StatusBadRequest, "invalid_request")
	requireProblem(t, m, "routes[0].email_domains", "", "no email input")

	_, rtag := get(t, api, v1+"/routes/by-mail")
	ok(t, api.do(t, http.MethodDelete, v1+"/routes/by-mail", w, ifMatch(rtag), nil), http.StatusOK)
	m = ok(t, api.do(t, http.MethodDelete, v1+"/prompt", w, ifMatch(tag), nil), http.StatusOK)
	require.Equal(t, true, m["changed"])
	refused(t, api.do(t, http.MethodGet, v1+"/prompt", in.ReadToken, nil, nil), http.StatusNotFound, "not_found")
}

// TestAPIDefaultRoute: default_route is set under its ETag to local, deny
// or a configured downstream; an unknown downstream is refused.
func TestAPIDefaultRoute(t *testing.T) {
	in, api := start(t, admintest.Options{})
	w := in.WriteToken
	dr, tag := get(t, api, v1+"/default-route")
	require.Equal(t, "", dr["default_route"])

	m := refused(t, api.do(t, http.MethodPut, v1+"/default-route", w, ifMatch(tag), map[string]any{"default_route": "nowhere"}), http.StatusBadRequest, "invalid_request")
	requireProblem(t, m, "default_route", ".", `"nowhere" is not local, deny or a configured downstream`)
	refused(t, api.do(t, http.MethodPut, v1+"/default-route", w, nil, map[string]any{"default_route": "deny"}), http.StatusPreconditionRequired, "precondition_required")
	refused(t, api.do(t, http.MethodPut, v1+"/default-route", w, ifMatch(`"stale"`), map[string]any{"default_route": "deny"}), http.StatusPreconditionFailed, "precondition_failed")
	require.EqualValues(t, 1, head(t, api))

	r := api.do(t, http.MethodPut, v1+"/default-route", w, ifMatch(tag), map[string]any{"default_route": "deny"})
	require.Equal(t, true, ok(t, r, http.StatusOK)["changed"])
	dr, tag2 := get(t, api, v1+"/default-route")
	require.Equal(t, "deny", dr["default_route"])
	require.Equal(t, r.Header.Get("ETag"), tag2)

	key, _ := privateJWK(t)
	create(t, api, "downstreams", downstreamBody("bank", key))
	ok(t, api.do(t, http.MethodPut, v1+"/default-route", w, ifMatch(tag2), map[string]any{"default_route": "bank"}), http.StatusOK)
	dr, _ = get(t, api, v1+"/default-route")
	require.Equal(t, "bank", dr["default_route"])
}

// TestAPIRouteTest: the route tester answers with the live policy for a
// client route, an email domain route and the default route, and refuses
// an unknown client.
func TestAPIRouteTest(t *testing.T) {
	in, api := start(t, admintest.Options{})
	w := in.WriteToken
	key, _ := privateJWK(t)
	create(t, api, "downstreams", downstreamBody("bank", key))
	ptag := api.do(t, http.MethodGet, v1+"/prompt", in.ReadToken, nil, nil).Header.Get("ETag")
	ok(t, api.do(t, http.MethodPut, v1+"/prompt", w, ifMatch(ptag), map[string]any{"inputs": []any{map[string]any{"key": "email", "title": "Email"}}}), http.StatusOK)
	create(t, api, "routes", map[string]any{"id": "partner", "downstream": "bank", "clients": []string{"demo-partner"}})
	create(t, api, "routes", map[string]any{"id": "by-mail", "downstream": "bank", "email_domains": []string{"bank.example"}})
	v := head(t, api)

	cases := []struct {
		name  string
		query map[string]any
		want  map[string]any
		// why is in the answer's why.
		why string
	}{
		{"client route", map[string]any{"client_id": "demo-partner"},
			map[string]any{"target": "downstream", "downstream": "bank", "issuer": "https://bank.example", "route": "partner", "route_index": 0.0, "prompted": false},
			"client demo-partner"},
		{"email domain route", map[string]any{"client_id": "demo-app", "email": "alice@bank.example"},
			map[string]any{"target": "downstream", "downstream": "bank", "issuer": "https://bank.example", "route": "by-mail", "route_index": 1.0, "prompted": true},
			"email domain bank.example"},
		{"default route", map[string]any{"client_id": "demo-app", "email": "bob@elsewhere.example"},
			map[string]any{"target": "local", "route_index": -1.0, "prompted": true},
			"default_route"},
		{"refused answer", map[string]any{"client_id": "demo-app", "email": "not an email"},
			map[string]any{"target": "", "route_index": -1.0, "prompted": true},
			"refused"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ans := ok(t, api.do(t, http.MethodPost, v1+"/route-test", in.ReadToken, nil, c.query), http.StatusOK)
			require.EqualValues(t, v, ans["version"], "answered by the head, which this instance serves")
			for k, want := range c.want {
				require.Equal(t, want, ans[k], k)
			}
			for _, k := range []string{"downstream", "issuer", "route"} {
				if _, set := c.want[k]; !set {
					require.NotContains(t, ans, k)
				}
			}
			require.Contains(t, ans["why"], c.why)
			if c.want["target"] == "" {
				require.NotEmpty(t, ans["invalid"])
			} else {
				require.NotContains(t, ans, "invalid")
			}
		})
	}
	m := refused(t, api.do(t, http.MethodPost, v1+"/route-test", in.ReadToken, nil, map[string]any{"client_id": "nope"}), http.StatusBadRequest, "invalid_request")
	requireProblem(t, m, "client_id", "client_id", "not a registered client")
	require.Equal(t, v, head(t, api), "the route tester changes nothing")
}

// TestAPIConcurrentWriters: two writers PUT the same downstream with the
// same If-Match: exactly one wins, the other gets 412.
func TestAPIConcurrentWriters(t *testing.T) {
	in, api := start(t, admintest.Options{})
	key, _ := privateJWK(t)
	create(t, api, "downstreams", downstreamBody("bank", key))
	ds, tag := get(t, api, v1+"/downstreams/bank")
	for round := range 5 {
		var wg sync.WaitGroup
		begin := make(chan struct{})
		statuses := make([]int, 2)
		errs := make([]error, 2)
		for i := range 2 {
			body := map[string]any{}
			for k, v := range ds {
				body[k] = v
			}
			body["name"] = fmt.Sprintf("writer %d round %d", i, round)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-begin
				r, err := api.send(t, http.MethodPut, v1+"/downstreams/bank", in.WriteToken, ifMatch(tag), body)
				statuses[i], errs[i] = r.Status, err
			}()
		}
		close(begin)
		wg.Wait()
		require.NoError(t, errs[0])
		require.NoError(t, errs[1])
		require.ElementsMatch(t, []int{http.StatusOK, http.StatusPreconditionFailed}, statuses, "round %d", round)
		ds, tag = get(t, api, v1+"/downstreams/bank")
		require.Contains(t, ds["name"], fmt.Sprintf("round %d", round))
	}
	require.EqualValues(t, 7, head(t, api), "one commit per round")
}

// failingStore is a memory store whose PolicyStore methods fail with
// storage.ErrUnavailable while down is set.
type failingStore struct {
	*memory.Store
	down atomic.Bool
}

func (s *failingStore) failure() error {
	if s.down.Load() {
		return fmt.Errorf("test: backend down: %w", storage.ErrUnavailable)
	}
	return nil
}

func (s *failingStore) PolicyHead(ctx context.Context) (uint64, error) {
	if err := s.failure(); err != nil {
		return 0, err
	}
	return s.Store.PolicyHead(ctx)
}

func (s *failingStore) PolicyVersion(ctx context.Context, v uint64) (storage.PolicyVersion, error) {
	if err := s.failure(); err != nil {
		return storage.PolicyVersion{}, err
	}
	return s.Store.PolicyVersion(ctx, v)
}

func (s *failingStore) CommitPolicy(ctx context.Context, v storage.PolicyVersion, a storage.AuditEntry, keep int) error {
	if err := s.failure(); err != nil {
		return err
	}
	return s.Store.CommitPolicy(ctx, v, a, keep)
}

func (s *failingStore) PolicyHistory(ctx context.Context, before uint64, limit int) ([]storage.PolicyVersion, error) {
	if err := s.failure(); err != nil {
		return nil, err
	}
	return s.Store.PolicyHistory(ctx, before, limit)
}

func (s *failingStore) PolicyAudit(ctx context.Context, before uint64, limit int) ([]storage.AuditEntry, error) {
	if err := s.failure(); err != nil {
		return nil, err
	}
	return s.Store.PolicyAudit(ctx, before, limit)
}

func (s *failingStore) WatchPolicy(ctx context.Context) (<-chan uint64, error) {
	if err := s.failure(); err != nil {
		return nil, err
	}
	return s.Store.WatchPolicy(ctx)
}

var _ storage.PolicyStore = (*failingStore)(nil)
var _ storage.Store = (*failingStore)(nil)

// TestAPIStoreUnavailable: while the policy store fails, every endpoint
// that reads or writes it answers 503 temporarily_unavailable with
// Retry-After, and nothing is committed.
func TestAPIStoreUnavailable(t *testing.T) {
	m := memory.New()
	t.Cleanup(func() { _ = m.Close() })
	st := &failingStore{Store: m}
	in, api := start(t, admintest.Options{Store: st})
	w := in.WriteToken
	key, _ := privateJWK(t)
	create(t, api, "downstreams", downstreamBody("bank", key))
	_, tag := get(t, api, v1+"/downstreams/bank")
	st.down.Store(true)
	star := ifMatch(`*`)
	cases := []struct {
		method, path string
		hdr          map[string]string
		body         any
	}{
		{"GET", "/status", nil, nil},
		{"GET", "/downstreams", nil, nil},
		{"GET", "/downstreams/bank", nil, nil},
		{"GET", "/routes", nil, nil},
		{"GET", "/prompt", nil, nil},
		{"GET", "/default-route", nil, nil},
		{"GET", "/versions", nil, nil},
		{"GET", "/versions/2", nil, nil},
		{"GET", "/audit", nil, nil},
		{"GET", "/export", nil, nil},
		{"POST", "/clients", nil, map[string]any{"id": "c1", "token_endpoint_auth_method": "none"}},
		{"PUT", "/downstreams/bank", ifMatch(tag), map[string]any{"name": "x"}},
		{"DELETE", "/downstreams/bank", ifMatch(tag), nil},
		{"PUT", "/routes", star, []any{}},
		{"PUT", "/prompt", star, map[string]any{"inputs": []any{map[string]any{"key": "email"}}}},
		{"DELETE", "/prompt", star, nil},
		{"PUT", "/default-route", star, map[string]any{"default_route": "deny"}},
		{"POST", "/versions/1/rollback", star, nil},
		{"POST", "/import", map[string]string{"If-Match": `*`, "Content-Type": "application/yaml"}, "default_route: deny\n"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			r := api.do(t, c.method, v1+c.path, w, c.hdr, c.body)
			refused(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
			require.Equal(t, "2", r.Header.Get("Retry-After"))
		})
	}
	st.down.Store(false)
	require.EqualValues(t, 2, head(t, api), "nothing was committed")
	ds, _ := get(t, api, v1+"/downstreams/bank")
	require.Equal(t, "Bank", ds["name"])
}

// TestAPIErrorBodies: every kind of refusal has the one error body
// (error, error_description) and Cache-Control: no-store.
func TestAPIErrorBodies(t *testing.T) {
	in, api := start(t, admintest.Options{})
	w := in.WriteToken
	create(t, api, "routes", map[string]any{"id": "r1", "local": true, "clients": []string{"demo-app"}})
	cases := []struct {
		status       int
		method, path string
		token        string
		hdr          map[string]string
		body         any
	}{
		{400, "POST", "/routes", w, nil, `{"id":`},
		{401, "GET", "/status", "", nil, nil},
		{403, "POST", "/routes", in.ReadToken, nil, map[string]any{"id": "r2"}},
		{404, "GET", "/routes/nope", w, nil, nil},
		{405, "PATCH", "/routes/r1", w, nil, nil},
		{409, "POST", "/routes", w, nil, map[string]any{"id": "r1", "local": true, "clients": []string{"demo-app"}}},
		{412, "DELETE", "/routes/r1", w, ifMatch(`"stale"`), nil},
		{413, "PUT", "/routes", w, ifMatch(`*`), "[" + strings.Repeat(" ", 1<<20) + "]"},
		{415, "POST", "/routes", w, map[string]string{"Content-Type": "text/plain"}, "{}"},
		{428, "DELETE", "/routes/r1", w, nil, nil},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.status), func(t *testing.T) {
			r := api.do(t, c.method, v1+c.path, c.token, c.hdr, c.body)
			require.Equal(t, c.status, r.Status, "%s", r.Body)
			require.Equal(t, "no-store", r.Header.Get("Cache-Control"))
			m := decode(t, r)
			require.NotEmpty(t, m["error"])
			require.NotEmpty(t, m["error_description"])
		})
	}
}

// TestAPIProbeEndpoints: discovery prefills a downstream from a mock
// issuer's metadata, the check probes a stored one; both need the write
// role, and refuse what they cannot probe.
func TestAPIProbeEndpoints(t *testing.T) {
	in, api := start(t, admintest.Options{})
	w := in.WriteToken
	mock := fedtest.Start(t, fedtest.Options{})
	refused(t, api.do(t, http.MethodPost, v1+"/discover", in.ReadToken, nil, map[string]any{"issuer": mock.URL}), http.StatusForbidden, "insufficient_scope")
	refused(t, api.do(t, http.MethodPost, v1+"/downstreams/bank/check", in.ReadToken, nil, nil), http.StatusForbidden, "insufficient_scope")

	d := ok(t, api.do(t, http.MethodPost, v1+"/discover", w, nil, map[string]any{"issuer": mock.URL}), http.StatusOK)
	ds := d["downstream"].(map[string]any)
	require.Equal(t, mock.URL, ds["issuer"])
	require.Equal(t, "", ds["id"], "the admin picks the id")
	require.NotEmpty(t, d["steps"])
	for _, body := range []string{`{}`, `{"issuer":5}`, `{"issuer":"https://a.example","id":"x"}`} {
		m := refused(t, api.do(t, http.MethodPost, v1+"/discover", w, nil, body), http.StatusBadRequest, "invalid_request")
		requireProblem(t, m, "issuer", "issuer", "")
	}
	require.EqualValues(t, 1, head(t, api), "discovery saves nothing")

	key, _ := privateJWK(t)
	bank := downstreamBody("bank", key)
	bank["issuer"] = mock.URL
	create(t, api, "downstreams", bank)
	rep := ok(t, api.do(t, http.MethodPost, v1+"/downstreams/bank/check", w, nil, nil), http.StatusOK)
	require.Equal(t, mock.URL, rep["issuer"])
	require.Equal(t, true, rep["native"])
	require.NotEmpty(t, rep["steps"])
	refused(t, api.do(t, http.MethodPost, v1+"/downstreams/nope/check", w, nil, nil), http.StatusNotFound, "not_found")
	require.EqualValues(t, 2, head(t, api), "the check changes nothing")
}
