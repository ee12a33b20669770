package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/accesslog"
	"github.com/fedas/fedas/admin"
	"github.com/fedas/fedas/admin/admintest"
)

// The OpenAPI document (admin/openapi.json, embedded and served at
// /admin/openapi.json) is a contract: every exchange of the API tests goes
// through apiClient, which validates the request and the response against
// it with kin-openapi. A response whose status, header or body the
// document does not describe fails the test that caused it.
//
// kin-openapi (v0.153.0) loads OpenAPI 3.1 documents as they are: the
// served document is 3.1.0 and is validated as such, and openapi3filter
// validates bodies with its JSON Schema 2020-12 validator for it.

// contract is the loaded document and its router, shared by every test.
type contract struct {
	raw    []byte
	doc    *openapi3.T
	router routers.Router

	mu sync.Mutex
	// seen records the statuses each operation answered in the tests.
	seen map[string]map[int]bool
}

var loadContract = sync.OnceValues(func() (*contract, error) {
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("openapi.json does not load: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.json is not a valid OpenAPI document: %w", err)
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi.json: router: %w", err)
	}
	return &contract{raw: raw, doc: doc, router: r, seen: map[string]map[int]bool{}}, nil
})

func contractOf(tb testing.TB) *contract {
	tb.Helper()
	c, err := loadContract()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// headersOnEveryAnswer are set on every admin answer (and described once
// in info.description) or by net/http itself; any other header must be
// declared by the response that carries it.
var headersOnEveryAnswer = map[string]string{
	"Cache-Control":           "no-store",
	"X-Content-Type-Options":  "nosniff",
	"Referrer-Policy":         "no-referrer",
	"X-Frame-Options":         "DENY",
	"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}

var transportHeaders = map[string]bool{"Content-Type": true, "Content-Length": true, "Date": true}

func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	scheme, tok, ok := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return errors.New("no bearer token")
	}
	return nil
}

// check validates one exchange: req with body, answered with resp.
func (c *contract) check(req *http.Request, body []byte, resp admintest.Response) error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for h, want := range headersOnEveryAnswer {
		if got := resp.Header.Get(h); got != want {
			fail("header %s is %q, want %q", h, got, want)
		}
	}
	if !accesslog.ValidID(resp.Header.Get(accesslog.HeaderRequestID)) {
		fail("header %s is %q, want a request id", accesslog.HeaderRequestID, resp.Header.Get(accesslog.HeaderRequestID))
	}
	ctx := context.Background()
	route, params, rerr := c.router.FindRoute(req)
	if rerr != nil {
		// An endpoint the document does not have: the server must refuse
		// it with the documented error shape.
		switch {
		case errors.Is(rerr, routers.ErrMethodNotAllowed):
			if resp.Status != http.StatusMethodNotAllowed {
				fail("%s %s is not in the document (method not allowed) but answered %d", req.Method, req.URL.Path, resp.Status)
			}
			if resp.Header.Get("Allow") == "" {
				fail("405 without Allow")
			}
		case errors.Is(rerr, routers.ErrPathNotFound):
			ok := resp.Status == http.StatusNotFound ||
				resp.Status == http.StatusUnauthorized && strings.HasPrefix(req.URL.Path, admin.PathAPI+"/") && resp.Header.Get("WWW-Authenticate") != ""
			if !ok {
				fail("%s %s is not in the document but answered %d", req.Method, req.URL.Path, resp.Status)
			}
		default:
			fail("router: %v", rerr)
		}
		if err := c.validateError(resp); err != nil {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	c.record(route.Operation.OperationID, resp.Status)
	opts := &openapi3filter.Options{
		AuthenticationFunc:    bearerPresent,
		IncludeResponseStatus: true,
		MultiError:            true,
		// readOnly members (key_set, secret_sha256_set) are ignored on
		// writes, so that a body read with GET can be written back.
		ExcludeReadOnlyValidations: true,
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && resp.Status < 400 {
		fail("the server accepted (%d) a request the document refuses: %v", resp.Status, err)
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.Status, Header: resp.Header, Options: opts}
	out.SetBodyBytes(resp.Body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		fail("response does not match the document: %v", err)
	}
	ref := route.Operation.Responses.Status(resp.Status)
	if ref == nil || ref.Value == nil {
		fail("status %d is not documented", resp.Status)
		return errors.Join(errs...)
	}
	for h := range resp.Header {
		if transportHeaders[h] {
			continue
		}
		if _, ok := headersOnEveryAnswer[h]; ok || h == accesslog.HeaderRequestID {
			continue
		}
		declared := false
		for name := range ref.Value.Headers {
			if strings.EqualFold(name, h) {
				declared = true
			}
		}
		if !declared {
			fail("header %s is not documented for %d", h, resp.Status)
		}
	}
	if len(ref.Value.Content) == 0 && len(resp.Body) > 0 {
		fail("status %d documents no body but has one", resp.Status)
	}
	return errors.Join(errs...)
}

// validateError checks an answer against the Error schema.
func (c *contract) validateError(resp admintest.Response) error {
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("error answer of type %q", ct)
	}
	var v any
	if err := json.Unmarshal(resp.Body, &v); err != nil {
		return fmt.Errorf("error answer is not JSON: %v", err)
	}
	return c.doc.Components.Schemas["Error"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020())
}

func (c *contract) record(op string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[op] == nil {
		c.seen[op] = map[int]bool{}
	}
	c.seen[op][status] = true
}

// apiClient sends admin API requests to an instance; every exchange is
// checked against the document.
type apiClient struct {
	in *admintest.Instance
	c  *contract
}

func newClient(tb testing.TB, in *admintest.Instance) *apiClient {
	tb.Helper()
	return &apiClient{in: in, c: contractOf(tb)}
}

// do sends a request with token (none when ""), extra headers and body:
// nil for none, []byte or string as is (application/json unless hdr sets
// Content-Type; an empty Content-Type sends none), anything else as JSON.
// A contract violation fails the test.
func (a *apiClient) do(tb testing.TB, method, path, token string, hdr map[string]string, body any) admintest.Response {
	tb.Helper()
	r, err := a.send(tb, method, path, token, hdr, body)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// send is do for goroutines: it reports contract violations with
// tb.Errorf and returns transport errors.
func (a *apiClient) send(tb testing.TB, method, path, token string, hdr map[string]string, body any) (admintest.Response, error) {
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	case string:
		raw = []byte(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return admintest.Response{}, err
		}
		raw = j
	}
	build := func() (*http.Request, error) {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(raw)
		}
		req, err := http.NewRequest(method, a.in.AdminURL+path, rd)
		if err != nil {
			return nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for k, v := range hdr {
			if v == "" {
				req.Header.Del(k)
				continue
			}
			req.Header.Set(k, v)
		}
		return req, nil
	}
	req, err := build()
	if err != nil {
		return admintest.Response{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return admintest.Response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return admintest.Response{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	out := admintest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	vreq, err := build()
	if err != nil {
		return out, err
	}
	if err := a.c.check(vreq, raw, out); err != nil {
		tb.Errorf("%s %s → %d: contract: %v\nbody: %s", method, path, out.Status, err, clip(out.Body))
	}
	return out, nil
}

func clip(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

// TestOpenAPIDocument: the served document is the embedded file, a valid
// OpenAPI 3.1.0 document, and describes exactly the routes the admin
// listener has.
func TestOpenAPIDocument(t *testing.T) {
	c := contractOf(t)
	require.Equal(t, "3.1.0", c.doc.OpenAPI)
	require.True(t, c.doc.IsOpenAPI31OrLater())

	in := admintest.Start(t, admintest.Options{})
	api := newClient(t, in)
	r := api.do(t, http.MethodGet, admin.PathOpenAPI, "", nil, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "application/json", r.Header.Get("Content-Type"))
	require.Equal(t, c.raw, r.Body, "the served document is the embedded openapi.json")
	servedDoc, err := openapi3.NewLoader().LoadFromData(r.Body)
	require.NoError(t, err)
	require.NoError(t, servedDoc.Validate(context.Background()), "the served document is a valid OpenAPI 3.1 document")

	// Every route of the listener is documented, and every documented
	// operation is a route of the listener.
	kinds := []string{"downstreams", "routes", "clients", "apps"}
	served := map[string]bool{}
	for _, rt := range in.Admin.Handler().(*echo.Echo).Routes() {
		if !strings.HasPrefix(rt.Path, "/admin") || !slices.Contains([]string{"GET", "POST", "PUT", "DELETE", "PATCH"}, rt.Method) {
			continue
		}
		p := strings.NewReplacer(":id", "{id}", ":v", "{v}").Replace(rt.Path)
		if strings.Contains(p, ":kind") {
			for _, k := range kinds {
				served[rt.Method+" "+strings.Replace(p, ":kind", k, 1)] = true
			}
			continue
		}
		served[rt.Method+" "+p] = true
	}
	documented := map[string]bool{}
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	for op := range served {
		require.True(t, documented[op], "%s is served but not documented", op)
	}
	for op := range documented {
		require.True(t, served[op], "%s is documented but not served", op)
	}

	// Every operation names the role it needs and answers 401 with a
	// challenge; writes answer 403 to read tokens.
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			if path == admin.PathOpenAPI {
				continue
			}
			role, _ := op.Extensions["x-fedas-role"].(string)
			require.Contains(t, []string{"read", "write"}, role, "%s %s: x-fedas-role", method, path)
			require.NotNil(t, op.Responses.Status(401), "%s %s: 401", method, path)
			require.Equal(t, role == "write", op.Responses.Status(403) != nil, "%s %s: 403 iff write", method, path)
			if op.Parameters.GetByInAndName("header", "If-Match") != nil {
				require.NotNil(t, op.Responses.Status(428), "%s %s: If-Match without 428", method, path)
				require.NotNil(t, op.Responses.Status(412), "%s %s: If-Match without 412", method, path)
			}
		}
	}
}

// TestOpenAPIDriverRefusesUndocumented: the driver itself catches an
// undocumented status, an undocumented header and a body of the wrong
// shape (so that the contract tests can trust it).
func TestOpenAPIDriverRefusesUndocumented(t *testing.T) {
	c := contractOf(t)
	req := func() *http.Request {
		r, err := http.NewRequest(http.MethodGet, "http://127.0.0.1/admin/v1/status", nil)
		require.NoError(t, err)
		r.Header.Set("Authorization", "Bearer x")
		return r
	}
	base := func() http.Header {
		h := http.Header{"Content-Type": {"application/json"}, "Etag": {`"v1"`}}
		for k, v := range headersOnEveryAnswer {
			h.Set(k, v)
		}
		h.Set(accesslog.HeaderRequestID, "req-1")
		return h
	}
	good := []byte(`{"version":1,"serving":1,"issuer":"https://as.example","actor":"reader","role":"read"}`)
	require.NoError(t, c.check(req(), nil, admintest.Response{Status: 200, Header: base(), Body: good}))

	require.ErrorContains(t, c.check(req(), nil, admintest.Response{Status: 418, Header: base(), Body: good}), "status")
	h := base()
	h.Set("X-Extra", "1")
	require.ErrorContains(t, c.check(req(), nil, admintest.Response{Status: 200, Header: h, Body: good}), "X-Extra")
	require.ErrorContains(t, c.check(req(), nil, admintest.Response{Status: 200, Header: base(), Body: []byte(`{"version":"1","serving":1,"issuer":"i","actor":"a","role":"read"}`)}), "want integer")
	require.ErrorContains(t, c.check(req(), nil, admintest.Response{Status: 200, Header: base(), Body: []byte(`{"version":1}`)}), "missing properties")
	require.ErrorContains(t, c.check(req(), nil, admintest.Response{Status: 200, Header: base(), Body: []byte(`{"version":1,"serving":1,"issuer":"i","actor":"a","role":"read","extra":1}`)}), "'extra' not allowed")
	h = base()
	h.Del("Etag")
	require.ErrorContains(t, c.check(req(), nil, admintest.Response{Status: 200, Header: h, Body: good}), `header "ETag" missing`)
	// An endpoint the document lacks must be refused as not found.
	unknown, err := http.NewRequest(http.MethodGet, "http://127.0.0.1/admin/v1/nope", nil)
	require.NoError(t, err)
	require.ErrorContains(t, c.check(unknown, nil, admintest.Response{Status: 200, Header: base(), Body: good}), "not in the document")
	h = base()
	h.Del("Cache-Control")
	require.ErrorContains(t, c.check(req(), nil, admintest.Response{Status: 200, Header: h, Body: good}), "Cache-Control")
	h = base()
	h.Del(accesslog.HeaderRequestID)
	require.ErrorContains(t, c.check(req(), nil, admintest.Response{Status: 200, Header: h, Body: good}), accesslog.HeaderRequestID)
	// A request the document refuses must not succeed.
	noAuth := req()
	noAuth.Header.Del("Authorization")
	require.ErrorContains(t, c.check(noAuth, nil, admintest.Response{Status: 200, Header: base(), Body: good}), "accepted")
	// A write-only secret must never be answered.
	dreq, err := http.NewRequest(http.MethodGet, "http://127.0.0.1/admin/v1/downstreams/bank", nil)
	require.NoError(t, err)
	dreq.Header.Set("Authorization", "Bearer x")
	leak := []byte(`{"id":"bank","auth":{"method":"private_key_jwt","key":"{}","key_set":true}}`)
	require.ErrorContains(t, c.check(dreq, nil, admintest.Response{Status: 200, Header: base(), Body: leak}), `writeOnly property "key"`)
}

// TestMain runs the package's tests, then, for a full run, checks that
// the contract tests called every documented operation and reached its
// success status.
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code != 0 || flag.Lookup("test.run").Value.String() != "" || flag.Lookup("test.skip").Value.String() != "" || testing.Short() {
		os.Exit(code)
	}
	c, err := loadContract()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var missing []string
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			seen := c.seen[op.OperationID]
			if len(seen) == 0 {
				missing = append(missing, fmt.Sprintf("%s %s (%s): never called", method, path, op.OperationID))
				continue
			}
			if !seen[200] && !seen[201] {
				missing = append(missing, fmt.Sprintf("%s %s (%s): never succeeded", method, path, op.OperationID))
			}
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		fmt.Fprintln(os.Stderr, "FAIL: the contract tests leave documented operations untested:\n  "+strings.Join(missing, "\n  "))
		os.Exit(1)
	}
	os.Exit(code)
}
