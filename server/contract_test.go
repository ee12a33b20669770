package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/fedas/fedas/server/servertest"
)

// The public API's OpenAPI document (docs/openapi.json, also served at
// /.well-known/openapi.json) is a contract the server package's tests
// check on every exchange: TestMain installs servertest.ObserveAll, so
// every request any test sends to any instance servertest starts — the
// end-to-end flows, the security and red-team tests, the fuzzing — is
// validated with kin-openapi (router, openapi3filter.ValidateRequest and
// ValidateResponse, JSON Schema 2020-12 for the 3.1 document), and a
// status, header or body the document does not describe fails the test
// that caused it. Set FEDAS_CONTRACT=off to run without it.

const openAPIPath = "../docs/openapi.json"

// publicContract is the loaded document and its router, shared by every
// test of the package.
type publicContract struct {
	raw    []byte
	doc    *openapi3.T
	router routers.Router

	compileMu sync.Mutex
	compiler  *jsonschema.Compiler
	schemas   map[string]*jsonschema.Schema

	mu sync.Mutex
	// seen records the statuses each operation answered, and codes the
	// error codes (operation status error).
	seen  map[string]map[int]bool
	codes map[string]bool
	// checked counts validated exchanges.
	checked int
}

var loadPublicContract = sync.OnceValues(func() (*publicContract, error) {
	raw, err := os.ReadFile(openAPIPath)
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("%s does not load: %w", openAPIPath, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("%s is not a valid OpenAPI document: %w", openAPIPath, err)
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: router: %w", openAPIPath, err)
	}
	return &publicContract{raw: raw, doc: doc, router: r, seen: map[string]map[int]bool{}, codes: map[string]bool{}}, nil
})

func publicContractOf(tb testing.TB) *publicContract {
	tb.Helper()
	c, err := loadPublicContract()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// transportHeaders are set by net/http; any other response header must be
// declared by the response that carries it.
var transportHeaders = map[string]bool{"Content-Type": true, "Content-Length": true, "Date": true}

// tokenPresent is the security check of the app completion API: the
// request names an access token with the scheme the operation lists.
func tokenPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	scheme, tok, ok := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, in.SecurityScheme.Scheme) || strings.TrimSpace(tok) == "" {
		return errors.New("no " + in.SecurityScheme.Scheme + " token")
	}
	return nil
}

// check validates one exchange against the document: the route, the
// request (when the server accepted it), the status, every header, and the
// body against the schema of its media type.
func (c *publicContract) check(ex servertest.Exchange) error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	req, err := http.NewRequest(ex.Request.Method, "http://"+ex.Request.Host+ex.Request.URL.RequestURI(), bytes.NewReader(ex.RequestBody))
	if err != nil {
		return err
	}
	req.Header = ex.Request.Header.Clone()
	ctx := context.Background()
	route, params, rerr := c.router.FindRoute(req)
	if rerr != nil {
		return c.checkUnrouted(req, rerr, ex)
	}
	c.record(route.Operation.OperationID, ex.Status)
	// kin-openapi checks the request's parameters and security; bodies
	// and response headers are validated below with JSON Schema 2020-12
	// validators compiled once per component (kin-openapi compiles a 3.1
	// schema on every validation, which would double the package's test
	// time).
	opts := &openapi3filter.Options{AuthenticationFunc: tokenPresent, MultiError: true, ExcludeRequestBody: true}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if ex.Status < 400 {
		reqErr := openapi3filter.ValidateRequest(ctx, in)
		if reqErr == nil {
			reqErr = c.checkRequestBody(route.Operation, req.Header.Get("Content-Type"), ex.RequestBody)
		}
		if reqErr != nil {
			fail("the server accepted (%d) a request the document refuses: %v", ex.Status, reqErr)
		}
	}
	ref := route.Operation.Responses.Status(ex.Status)
	if ref == nil || ref.Value == nil {
		fail("status %d is not documented for %s", ex.Status, route.Operation.OperationID)
		return errors.Join(errs...)
	}
	for name, h := range ref.Value.Headers {
		if err := c.checkHeader(name, h, ex.Header); err != nil {
			fail("%v", err)
		}
	}
	for h := range ex.Header {
		if transportHeaders[h] {
			continue
		}
		declared := false
		for name := range ref.Value.Headers {
			if strings.EqualFold(name, h) {
				declared = true
			}
		}
		if !declared {
			fail("header %s is not documented for %d", h, ex.Status)
		}
	}
	switch content := ref.Value.Content; {
	case len(content) == 0 && len(ex.Body) > 0:
		fail("status %d documents no body but has one", ex.Status)
	case len(content) == 0:
	case len(ex.Body) == 0:
		fail("status %d documents a body but has none", ex.Status)
	default:
		mt, _, _ := mime.ParseMediaType(ex.Header.Get("Content-Type"))
		media := content.Get(mt)
		switch {
		case media == nil:
			fail("content type %q is not documented for %d", ex.Header.Get("Content-Type"), ex.Status)
		case mt == "text/html", mt == "application/oauth-authz-req+jwt", mt == "text/event-stream":
			// A page, a signed request object (a JWS, not JSON) or an
			// event stream.
		default:
			if err := c.validateBody(media, ex.Body); err != nil {
				fail("the body does not match the document: %v", err)
			}
			var body struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(ex.Body, &body) == nil && body.Error != "" {
				c.recordCode(route.Operation.OperationID, ex.Status, body.Error)
			}
		}
	}
	return errors.Join(errs...)
}

// checkHeader checks a documented response header: present when
// required, its value valid by its schema.
func (c *publicContract) checkHeader(name string, h *openapi3.HeaderRef, got http.Header) error {
	if !strings.HasPrefix(h.Ref, "#/components/headers/") || h.Value == nil {
		return fmt.Errorf("header %s: the document's header is not a component reference", name)
	}
	v := got.Values(name)
	if len(v) == 0 {
		if h.Value.Required {
			return fmt.Errorf("header %s is missing", name)
		}
		return nil
	}
	sch, err := c.compiled(h.Ref + "/schema")
	if err != nil {
		return err
	}
	for _, val := range v {
		if err := sch.Validate(val); err != nil {
			return fmt.Errorf("header %s: %v", name, err)
		}
	}
	return nil
}

// checkRequestBody validates a request body by the operation's documented
// media types: form bodies as objects of strings, each parameter once.
func (c *publicContract) checkRequestBody(op *openapi3.Operation, contentType string, body []byte) error {
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		if len(body) > 0 {
			return errors.New("a body where the document has none")
		}
		return nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content type %q: %v", contentType, err)
	}
	media := op.RequestBody.Value.Content.Get(mt)
	if media == nil {
		return fmt.Errorf("content type %q is not documented", mt)
	}
	if mt != "application/x-www-form-urlencoded" {
		return c.validateBody(media, body)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return err
	}
	obj := map[string]any{}
	for k, v := range form {
		if len(v) != 1 {
			return fmt.Errorf("%s is repeated", k)
		}
		obj[k] = v[0]
	}
	return c.validateValue(media, obj)
}

func (c *publicContract) validateBody(media *openapi3.MediaType, body []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	return c.validateValue(media, v)
}

// validateValue validates v against a media type's schema, which must be a
// reference to a component (TestOpenAPI_Document).
func (c *publicContract) validateValue(media *openapi3.MediaType, v any) error {
	if media.Schema == nil || !strings.HasPrefix(media.Schema.Ref, "#/components/schemas/") {
		return errors.New("the document's schema is not a component reference")
	}
	sch, err := c.compiled(media.Schema.Ref)
	if err != nil {
		return err
	}
	return sch.Validate(v)
}

// compiled returns the JSON Schema 2020-12 validator of a component,
// compiled once.
func (c *publicContract) compiled(ref string) (*jsonschema.Schema, error) {
	c.compileMu.Lock()
	defer c.compileMu.Unlock()
	if s, ok := c.schemas[ref]; ok {
		return s, nil
	}
	if c.compiler == nil {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(c.raw))
		if err != nil {
			return nil, err
		}
		c.compiler = jsonschema.NewCompiler()
		c.compiler.DefaultDraft(jsonschema.Draft2020)
		c.compiler.AssertFormat()
		if err := c.compiler.AddResource(contractBase, doc); err != nil {
			return nil, err
		}
		c.schemas = map[string]*jsonschema.Schema{}
	}
	s, err := c.compiler.Compile(contractBase + ref)
	if err != nil {
		return nil, err
	}
	c.schemas[ref] = s
	return s, nil
}

// contractBase names docs/openapi.json as a JSON Schema resource.
const contractBase = "https://fedas.invalid/openapi.json"

// checkUnrouted checks an exchange with a path or method the document
// does not have: the server must refuse it as its description says.
func (c *publicContract) checkUnrouted(req *http.Request, rerr error, ex servertest.Exchange) error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for h := range ex.Header {
		if strings.HasPrefix(strings.ToLower(h), "access-control-") {
			fail("%s %s answered a CORS header %s", req.Method, req.URL.Path, h)
		}
	}
	switch {
	case errors.Is(rerr, routers.ErrMethodNotAllowed) && req.Method == http.MethodOptions:
		if ex.Status != http.StatusNoContent || ex.Header.Get("Allow") == "" {
			fail("OPTIONS %s answered %d (Allow %q), want 204 with Allow", req.URL.Path, ex.Status, ex.Header.Get("Allow"))
		}
		return errors.Join(errs...)
	case errors.Is(rerr, routers.ErrMethodNotAllowed):
		if ex.Status != http.StatusMethodNotAllowed {
			fail("%s %s is not in the document (method not allowed) but answered %d", req.Method, req.URL.Path, ex.Status)
		}
	case errors.Is(rerr, routers.ErrPathNotFound):
		if ex.Status != http.StatusNotFound {
			fail("%s %s is not in the document but answered %d", req.Method, req.URL.Path, ex.Status)
		}
	default:
		fail("router: %v", rerr)
	}
	if req.Method == http.MethodHead {
		return errors.Join(errs...)
	}
	if ct := ex.Header.Get("Content-Type"); ct != "application/json" {
		fail("%s %s → %d: content type %q, want application/json", req.Method, req.URL.Path, ex.Status, ct)
	}
	var v any
	if err := json.Unmarshal(ex.Body, &v); err != nil {
		fail("%s %s → %d: not JSON: %v", req.Method, req.URL.Path, ex.Status, err)
	} else if err := c.validateValue(&openapi3.MediaType{Schema: &openapi3.SchemaRef{Ref: "#/components/schemas/Error"}}, v); err != nil {
		fail("%s %s → %d: not an error body: %v", req.Method, req.URL.Path, ex.Status, err)
	}
	return errors.Join(errs...)
}

func (c *publicContract) record(op string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[op] == nil {
		c.seen[op] = map[int]bool{}
	}
	c.seen[op][status] = true
	c.checked++
}

func (c *publicContract) recordCode(op string, status int, code string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.codes[fmt.Sprintf("%s %d %s", op, status, code)] = true
}

// errorCodes lists the error codes a response schema enumerates (the
// error member's const or enum, through references and oneOf).
func errorCodes(s *openapi3.SchemaRef) []string {
	if s == nil || s.Value == nil {
		return nil
	}
	var out []string
	if e := s.Value.Properties["error"]; e != nil && e.Value != nil {
		if code, ok := e.Value.Const.(string); ok {
			out = append(out, code)
		}
		for _, v := range e.Value.Enum {
			if code, ok := v.(string); ok {
				out = append(out, code)
			}
		}
	}
	for _, group := range []openapi3.SchemaRefs{s.Value.OneOf, s.Value.AnyOf, s.Value.AllOf} {
		for _, sub := range group {
			out = append(out, errorCodes(sub)...)
		}
	}
	return out
}

// contractObserver validates every exchange of an instance and reports a
// violation to the test that started it.
func contractObserver(tb testing.TB, _ *servertest.Instance) func(servertest.Exchange) {
	c := publicContractOf(tb)
	return func(ex servertest.Exchange) {
		if err := c.check(ex); err != nil {
			tb.Errorf("contract (%s): %s %s → %d: %v\nrequest body: %s\nresponse body: %s", openAPIPath, ex.Request.Method, ex.Request.URL.Path, ex.Status, err,
				clipBytes(ex.RequestBody), clipBytes(ex.Body))
		}
	}
}

func clipBytes(b []byte) string {
	if len(b) > 1500 {
		return string(b[:1500]) + "…"
	}
	return string(b)
}

// TestMain validates every exchange against the public contract and, after
// a full run, checks that the tests made every documented operation answer
// every status it documents.
func TestMain(m *testing.M) {
	flag.Parse()
	on := os.Getenv("FEDAS_CONTRACT") != "off"
	if on {
		servertest.ObserveAll = contractObserver
	}
	code := m.Run()
	if !on || code != 0 || flag.Lookup("test.run").Value.String() != "" || flag.Lookup("test.skip").Value.String() != "" || testing.Short() {
		os.Exit(code)
	}
	c, err := loadPublicContract()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if missing := c.untested(); len(missing) > 0 {
		fmt.Fprintln(os.Stderr, "FAIL: documented answers no test provoked ("+openAPIPath+"):\n  "+strings.Join(missing, "\n  "))
		os.Exit(1)
	}
	os.Exit(code)
}

// untested lists the documented (operation, status) pairs no exchange
// answered, and the documented error codes no exchange carried.
func (c *publicContract) untested() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var missing []string
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for st, resp := range op.Responses.Map() {
				var n int
				if _, err := fmt.Sscanf(st, "%d", &n); err != nil || !c.seen[op.OperationID][n] {
					missing = append(missing, fmt.Sprintf("%s %s (%s): %s", method, path, op.OperationID, st))
					continue
				}
				if resp.Value == nil || resp.Value.Content.Get("application/json") == nil {
					continue
				}
				for _, code := range errorCodes(resp.Value.Content.Get("application/json").Schema) {
					if !c.codes[fmt.Sprintf("%s %d %s", op.OperationID, n, code)] {
						missing = append(missing, fmt.Sprintf("%s %s (%s): %s %s", method, path, op.OperationID, st, code))
					}
				}
			}
		}
	}
	sort.Strings(missing)
	return missing
}
