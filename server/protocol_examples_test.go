package server_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/federation/fedtest"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage/redistest"
)

// The examples in docs/protocol.md are not written by hand: each section
// between `<!-- BEGIN EXAMPLE name -->` and `<!-- END EXAMPLE name -->` is
// what TestProtocolExamples records when it drives that flow over real
// HTTP on loopback, with volatile values (auth_session values, codes,
// tokens, PKCE, DPoP proofs, request_uris, keys, timestamps, ports)
// replaced by stable placeholders. The test fails when the document's
// examples differ from what the server answers now;
//
//	go test ./server -run TestProtocolExamples -update
//
// rewrites them (review the diff: a changed example is a changed wire
// contract). Every exchange is also validated against docs/openapi.json
// (contract_test.go).
var updateExamples = flag.Bool("update", false, "rewrite the generated examples in docs/protocol.md from this run")

const (
	protocolMD = "../docs/protocol.md"
	// stepHeader numbers the requests an example sends; it is never shown.
	stepHeader = "X-Fedas-Example-Step"
)

// exampleLog records the exchanges of one example's instances while a
// step is in flight: the step's own request and the server-to-server
// requests it causes.
type exampleLog struct {
	mu   sync.Mutex
	cond *sync.Cond
	// on counts the steps in flight (a held long poll overlaps the steps
	// that end it).
	on      int
	ex      []servertest.Exchange
	done    map[string]bool // step numbers recorded
	origins []origin
	// callers names who sends the server-to-server requests an instance
	// receives (by the instance's name).
	callers map[string]string
}

// origin is an instance's real URL and its name in the document.
type origin struct{ real, name, display string }

func newExampleLog() *exampleLog {
	l := &exampleLog{done: map[string]bool{}, callers: map[string]string{}}
	l.cond = sync.NewCond(&l.mu)
	return l
}

func (l *exampleLog) observe(ex servertest.Exchange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.on == 0 {
		return
	}
	l.ex = append(l.ex, ex)
	if n := ex.Request.Header.Get(stepHeader); n != "" {
		l.done[n] = true
		l.cond.Broadcast()
	}
}

// name registers how the document shows an origin (its real URL is a
// loopback port).
func (l *exampleLog) name(realURL, name, display string) {
	l.origins = append(l.origins, origin{real: realURL, name: name, display: display})
}

func (l *exampleLog) nameOf(realURL string) string {
	for _, o := range l.origins {
		if o.real == realURL {
			return o.name
		}
	}
	return realURL
}

// start starts a recorded fedas instance shown as display.
func (l *exampleLog) start(tb testing.TB, name, display string, o servertest.Options) instance {
	tb.Helper()
	o.Observe = l.observe
	in := servertest.Start(tb, o)
	l.name(in.URL, name, display)
	return wrap(in)
}

// example is one generated section of docs/protocol.md.
type example struct {
	name     string
	log      *exampleLog
	captions []string
	// serverPaths are the server-to-server requests shown (by path);
	// metadata and JWKS fetches, which depend on caches, are not.
	serverPaths map[string]bool
	// reqHeaders and respHeaders are headers shown besides the usual ones
	// (writeExchange), for examples whose contract lives in headers
	// (Prefer, Preference-Applied, Last-Event-ID).
	reqHeaders, respHeaders []string
	// volatile maps values the example knows to be volatile (ids in
	// paths, stream cursors) to their placeholder names.
	volatile map[string]string
	// display, when set, is how an exchange is shown (a summary of a
	// long body); post rewrites the rendered section last.
	display func(servertest.Exchange) servertest.Exchange
	post    func(string) string
}

func newExample(name string, log *exampleLog) *example {
	return &example{name: name, log: log, serverPaths: map[string]bool{"/oauth2/par": true, "/oauth2/token": true}}
}

// send sends one step and waits until its exchange is recorded (the
// server-to-server exchanges it caused finished before it).
func (x *example) send(tb testing.TB, caption string, req *http.Request) reply {
	tb.Helper()
	n := x.begin(caption, req)
	r := do(tb, req)
	x.end(n)
	return r
}

// begin numbers req as the next step and starts recording; end waits
// until step n is recorded. Steps may overlap (a held poll and the
// steps that release it): the document orders them by arrival.
func (x *example) begin(caption string, req *http.Request) string {
	x.captions = append(x.captions, caption)
	n := strconv.Itoa(len(x.captions))
	req.Header.Set(stepHeader, n)
	x.log.mu.Lock()
	x.log.on++
	x.log.mu.Unlock()
	return n
}

func (x *example) end(n string) {
	x.log.mu.Lock()
	for !x.log.done[n] {
		x.log.cond.Wait()
	}
	x.log.on--
	x.log.mu.Unlock()
}

func (x *example) postForm(tb testing.TB, caption, endpoint string, form url.Values, opts ...func(*http.Request)) reply {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	require.NoError(tb, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, o := range opts {
		o(req)
	}
	return x.send(tb, caption, req)
}

func (x *example) postJSON(tb testing.TB, caption, endpoint string, body string) reply {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	require.NoError(tb, err)
	req.Header.Set("Content-Type", "application/json")
	return x.send(tb, caption, req)
}

func (x *example) get(tb testing.TB, caption, u string) reply {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(tb, err)
	return x.send(tb, caption, req)
}

func withDPoP(tb testing.TB, k *dpop.Key, token string) func(*http.Request) {
	return func(r *http.Request) {
		p, err := k.Proof(r.Method, r.URL.String(), token)
		require.NoError(tb, err)
		r.Header.Set("DPoP", p)
	}
}

func bearer(scheme, token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", scheme+" "+token) }
}

func newDPoPKey(tb testing.TB) *dpop.Key {
	tb.Helper()
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	k, err := dpop.NewKey(pk, jose.ES256)
	require.NoError(tb, err)
	return k
}

func totpNow(tb testing.TB, secret string) string {
	tb.Helper()
	code, err := totp.GenerateCode(secret, time.Now())
	require.NoError(tb, err)
	return code
}

// pkceParams are the PKCE members of an initial request.
func pkceParams(pk sdk.PKCE, f url.Values) url.Values {
	f.Set("code_challenge", pk.Challenge)
	f.Set("code_challenge_method", "S256")
	return f
}

var hiddenSessionRE = regexp.MustCompile(`name="auth_session" value="([^"]+)"`)

// TestProtocolExamples drives every flow docs/protocol.md shows, asserts
// each answer, and checks (or with -update rewrites) the document's
// generated examples.
func TestProtocolExamples(t *testing.T) {
	var examples []*example
	add := func(x *example) { examples = append(examples, x) }

	add(exampleDiscovery(t))
	add(exampleLocal(t))
	add(exampleLockout(t))
	add(exampleDPoP(t))
	add(exampleFederated(t))
	add(exampleApp(t))
	add(exampleBrowserFallback(t))
	add(examplePAR(t))
	add(exampleWebCallback(t))
	add(exampleErrors(t))
	add(exampleUnavailable(t))
	add(exampleDCSameDevice(t))
	add(exampleDCCrossDevice(t))
	add(exampleDCAPI(t))
	add(exampleUQ(t))
	add(exampleReachDiscovery(t))
	add(exampleReachDevices(t))
	add(exampleReachCrossDevice(t))
	add(exampleReachQR(t))
	add(exampleReachRelay(t))

	generated := map[string]string{}
	for _, x := range examples {
		generated[x.name] = x.render()
	}
	raw, err := os.ReadFile(protocolMD)
	require.NoError(t, err)
	doc := string(raw)
	sections, err := exampleSections(doc)
	require.NoError(t, err)
	if *updateExamples {
		out, err := replaceSections(doc, generated)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(protocolMD, []byte(out), 0o644))
		sections, err = exampleSections(out)
		require.NoError(t, err)
	}
	for name, got := range generated {
		have, ok := sections[name]
		if !ok {
			t.Errorf("%s has no section <!-- BEGIN EXAMPLE %s --> … <!-- END EXAMPLE %s -->: add one where the example belongs, then run go test ./server -run TestProtocolExamples -update", protocolMD, name, name)
			continue
		}
		if have != got {
			t.Errorf("the %q example in %s differs from what the server answers now (%s); if the change is intended, run\n\tgo test ./server -run TestProtocolExamples -update\nand review the diff", name, protocolMD, firstDiff(have, got))
		}
	}
	for name := range sections {
		if _, ok := generated[name]; !ok {
			t.Errorf("%s has a section %q that no example generates", protocolMD, name)
		}
	}
}

// exampleSections returns the generated sections of a document by name.
func exampleSections(doc string) (map[string]string, error) {
	out := map[string]string{}
	for _, m := range sectionRE.FindAllStringSubmatchIndex(doc, -1) {
		name := doc[m[2]:m[3]]
		end := "<!-- END EXAMPLE " + name + " -->"
		rest := doc[m[1]:]
		i := strings.Index(rest, end)
		if i < 0 {
			return nil, fmt.Errorf("%s: section %q has no end marker", protocolMD, name)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%s: section %q twice", protocolMD, name)
		}
		out[name] = rest[:i]
	}
	return out, nil
}

var sectionRE = regexp.MustCompile(`<!-- BEGIN EXAMPLE ([a-z0-9-]+) -->\n`)

func replaceSections(doc string, generated map[string]string) (string, error) {
	var b strings.Builder
	for {
		m := sectionRE.FindStringSubmatchIndex(doc)
		if m == nil {
			b.WriteString(doc)
			return b.String(), nil
		}
		name := doc[m[2]:m[3]]
		end := "<!-- END EXAMPLE " + name + " -->"
		i := strings.Index(doc[m[1]:], end)
		if i < 0 {
			return "", fmt.Errorf("section %q has no end marker", name)
		}
		b.WriteString(doc[:m[1]])
		if g, ok := generated[name]; ok {
			b.WriteString(g)
		} else {
			b.WriteString(doc[m[1] : m[1]+i])
		}
		b.WriteString(end)
		doc = doc[m[1]+i+len(end):]
	}
}

func firstDiff(have, got string) string {
	hl, gl := strings.Split(have, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(hl) || i < len(gl); i++ {
		var h, g string
		if i < len(hl) {
			h = hl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if h != g {
			return fmt.Sprintf("line %d of the section: document %q, server %q", i+1, h, g)
		}
	}
	return "no line differs"
}

// ---- rendering --------------------------------------------------------

// step is one request the example sent, with the server-to-server
// exchanges it caused.
type step struct {
	caption string
	main    servertest.Exchange
	nested  []servertest.Exchange
}

func (x *example) steps() []step {
	x.log.mu.Lock()
	all := append([]servertest.Exchange(nil), x.log.ex...)
	x.log.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].Seq < all[j].Seq })
	var out []step
	for _, ex := range all {
		if n := ex.Request.Header.Get(stepHeader); n != "" {
			i, _ := strconv.Atoi(n)
			out = append(out, step{caption: x.captions[i-1], main: ex})
			continue
		}
		if len(out) > 0 && x.serverPaths[ex.Request.URL.Path] {
			out[len(out)-1].nested = append(out[len(out)-1].nested, ex)
		}
	}
	return out
}

// render is the example's section: each step's request and answer, with
// volatile values replaced.
func (x *example) render() string {
	steps := x.steps()
	if x.display != nil {
		for i := range steps {
			steps[i].main = x.display(steps[i].main)
		}
	}
	sc := newScrubber(x.log.origins)
	for v, l := range x.volatile {
		sc.values[v] = l
	}
	for _, s := range steps {
		sc.collect(s.main)
		for _, n := range s.nested {
			sc.collect(n)
		}
	}
	var b strings.Builder
	for i, s := range steps {
		fmt.Fprintf(&b, "\n**%d. %s**\n", i+1, s.caption)
		writeExchangeWith(&b, sc, s.main, x.reqHeaders, x.respHeaders)
		for _, n := range s.nested {
			to := x.log.nameOf(n.Instance)
			from := x.log.callers[to]
			fmt.Fprintf(&b, "\n*Meanwhile %s → %s: `%s %s`*\n", from, to, n.Request.Method, n.Request.URL.Path)
			writeExchange(&b, sc, n)
		}
	}
	b.WriteString("\n")
	out := sc.scrub(b.String())
	if x.post != nil {
		out = x.post(out)
	}
	return out
}

func writeExchange(b *strings.Builder, sc *scrubber, ex servertest.Exchange) {
	writeExchangeWith(b, sc, ex, nil, nil)
}

// writeExchangeWith is writeExchange showing the extra request and
// answer headers too.
func writeExchangeWith(b *strings.Builder, sc *scrubber, ex servertest.Exchange, reqExtra, respExtra []string) {
	r := ex.Request
	b.WriteString("\n```http\n")
	fmt.Fprintf(b, "%s %s HTTP/1.1\n", r.Method, r.URL.RequestURI())
	fmt.Fprintf(b, "Host: %s\n", r.Host)
	for _, h := range append([]string{"Authorization", "Content-Type", "DPoP"}, reqExtra...) {
		for _, v := range r.Header.Values(h) {
			fmt.Fprintf(b, "%s: %s\n", h, v)
		}
	}
	if len(ex.RequestBody) > 0 {
		b.WriteString("\n")
		b.WriteString(displayBody(r.Header.Get("Content-Type"), ex.RequestBody))
		b.WriteString("\n")
	}
	b.WriteString("```\n\n```http\n")
	fmt.Fprintf(b, "HTTP/1.1 %d %s\n", ex.Status, http.StatusText(ex.Status))
	for _, h := range append([]string{"Content-Type", "Cache-Control", "Location", "WWW-Authenticate", "Retry-After"}, respExtra...) {
		for _, v := range ex.Header.Values(h) {
			fmt.Fprintf(b, "%s: %s\n", h, v)
		}
	}
	if len(ex.Body) > 0 {
		b.WriteString("\n")
		b.WriteString(displayBody(ex.Header.Get("Content-Type"), ex.Body))
		b.WriteString("\n")
	}
	b.WriteString("```\n")
	if ex.Request.URL.Path == "/oauth2/token" {
		sc.tokenResponse = true
	}
}

var (
	htmlTitleRE   = regexp.MustCompile(`<title>([^<]*)</title>`)
	htmlMessageRE = regexp.MustCompile(`id="message">([^<]*)</p>`)
	htmlInputRE   = regexp.MustCompile(`<input [^>]*name="([^"]+)"[^>]*>`)
	htmlFormRE    = regexp.MustCompile(`<form method="([a-z]+)" action="([^"]+)"`)
)

// displayBody shows a body as a reader needs it: JSON indented, a form
// one parameter per line, an HTML page summarised.
func displayBody(contentType string, body []byte) string {
	switch {
	case strings.HasPrefix(contentType, "application/json"), strings.HasPrefix(contentType, "application/problem+json"):
		var out bytes.Buffer
		if json.Indent(&out, bytes.TrimSpace(body), "", "  ") == nil {
			return out.String()
		}
	case strings.HasPrefix(contentType, "text/event-stream"):
		return strings.TrimRight(string(body), "\n")
	case strings.HasPrefix(contentType, "application/x-www-form-urlencoded"):
		return strings.ReplaceAll(string(body), "&", "\n&")
	case strings.HasPrefix(contentType, "application/oauth-authz-req+jwt"):
		return requestObjectDisplay(body)
	case strings.HasPrefix(contentType, "text/html"):
		page := string(body)
		var parts []string
		if m := htmlTitleRE.FindStringSubmatch(page); m != nil {
			parts = append(parts, fmt.Sprintf("a page titled %q", m[1]))
		}
		if m := htmlMessageRE.FindStringSubmatch(page); m != nil {
			parts = append(parts, fmt.Sprintf("saying %q", m[1]))
		}
		if m := htmlFormRE.FindStringSubmatch(page); m != nil {
			var names []string
			for _, in := range htmlInputRE.FindAllStringSubmatch(page, -1) {
				names = append(names, in[1])
			}
			parts = append(parts, fmt.Sprintf("with a form (%s %s) of %s", strings.ToUpper(m[1]), m[2], strings.Join(names, ", ")))
			if s := hiddenSessionRE.FindStringSubmatch(page); s != nil {
				parts = append(parts, "auth_session="+s[1])
			}
		}
		return "<!-- HTML: " + strings.Join(parts, "; ") + " -->"
	}
	return string(body)
}

// scrubber replaces the volatile values of an example by placeholders
// named after the parameter that first carried them, numbered by first
// appearance when a name has several values.
type scrubber struct {
	origins []origin
	// values maps a volatile value to its parameter name.
	values map[string]string
	// short values are replaced only as a whole parameter value.
	tokenResponse bool
}

func newScrubber(origins []origin) *scrubber {
	return &scrubber{origins: origins, values: map[string]string{}}
}

// volatileKeys are the parameters and members whose values change from run
// to run.
var volatileKeys = map[string]string{
	"auth_session": "auth_session", "authorization_code": "code", "code": "code", "access_token": "access_token",
	"refresh_token": "refresh_token", "id_token": "id_token", "token": "token", "code_challenge": "code_challenge",
	"code_verifier": "code_verifier", "request_uri": "request_uri", "response_code": "response_code", "otp": "otp",
	"client_assertion": "client_assertion", "dpop_jkt": "jkt", "jkt": "jkt", "kid": "kid", "x": "x", "y": "y",
	"state": "state", "nonce": "nonce",
	// Digital credentials (docs/protocol.md "Digital credentials").
	"response": "jwe", "wallet_nonce": "wallet_nonce", "request": "request_object",
	"client_id": "verifier_client_id",
	// User Questioning (docs/protocol.md "User Questioning").
	"question_id": "question_id", "user_statement_token": "user_statement_token",
}

func (sc *scrubber) add(key, v string) {
	label, ok := volatileKeys[key]
	if !ok || v == "" {
		return
	}
	switch key {
	case "client_id":
		h, ok := strings.CutPrefix(v, "x509_hash:")
		if !ok {
			return // a client's own id, shown as sent
		}
		// The hash alone: it is also shown URL-encoded, after x509_hash%3A.
		v, label = h, "x509_hash"
	case "request_uri":
		if i := strings.Index(v, "/dc/request/"); i >= 0 {
			sc.values[v[i+len("/dc/request/"):]] = "request_id"
			return
		}
		// Only the random part: the prefix says which kind it is.
		i := strings.LastIndexAny(v, ":.")
		if i < 0 || len(v)-i < 20 {
			return
		}
		v = v[i+1:]
	case "state", "nonce":
		if len(v) < 20 { // a client's own value, shown as sent
			return
		}
	}
	if _, seen := sc.values[v]; !seen {
		sc.values[v] = label
	}
}

func (sc *scrubber) addForm(f url.Values) {
	for k, vs := range f {
		for _, v := range vs {
			sc.add(k, v)
		}
	}
}

func (sc *scrubber) addURL(u string) {
	if p, err := url.Parse(u); err == nil {
		sc.addForm(p.Query())
		if rest, ok := strings.CutPrefix(p.Path, "/native/response/"); ok {
			sc.values[rest] = "hop"
		}
		if rest, ok := strings.CutPrefix(p.Path, "/dc/request/"); ok {
			sc.values[rest] = "request_id"
		}
	}
}

func (sc *scrubber) addJSON(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			switch s := val.(type) {
			case string:
				sc.add(k, s)
				switch k {
				case "federation_body":
					if f, err := url.ParseQuery(s); err == nil {
						sc.addForm(f)
					}
				case "deep_link", "callback", "response_uri", "location", "redirect_uri":
					sc.addURL(s)
				case "credentials_request":
					if strings.HasPrefix(s, "{") {
						var inner any
						if json.Unmarshal([]byte(s), &inner) == nil {
							sc.addJSON(inner)
						}
					} else {
						sc.addURL(s)
					}
				}
			default:
				sc.addJSON(val)
			}
		}
	case []any:
		for _, e := range t {
			sc.addJSON(e)
		}
	}
}

func (sc *scrubber) collect(ex servertest.Exchange) {
	r := ex.Request
	sc.addURL(r.URL.String())
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var v any
		if json.Unmarshal(ex.RequestBody, &v) == nil {
			sc.addJSON(v)
		}
	} else if f, err := url.ParseQuery(string(ex.RequestBody)); err == nil {
		sc.addForm(f)
	}
	if p := r.Header.Get("DPoP"); p != "" {
		sc.values[p] = "dpop_proof"
	}
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && scheme != "Basic" {
		sc.add("access_token", tok)
	}
	if loc := ex.Header.Get("Location"); loc != "" {
		sc.addURL(loc)
	}
	if strings.HasPrefix(ex.Header.Get("Content-Type"), "application/json") {
		var v any
		if json.Unmarshal(ex.Body, &v) == nil {
			sc.addJSON(v)
		}
	}
	if strings.HasPrefix(ex.Header.Get("Content-Type"), "application/oauth-authz-req+jwt") {
		if parts := strings.Split(string(ex.Body), "."); len(parts) == 3 {
			for _, p := range parts[:2] {
				var v any
				if b, err := base64.RawURLEncoding.DecodeString(p); err == nil && json.Unmarshal(b, &v) == nil {
					sc.addJSON(v)
				}
			}
		}
	}
	if m := hiddenSessionRE.FindSubmatch(ex.Body); m != nil {
		sc.add("auth_session", string(m[1]))
	}
}

var timestampRE = regexp.MustCompile(`"(iat|exp|auth_time)": [0-9]+`)

// placeholderTime stands for every timestamp (2026-01-01T00:00:00Z).
const placeholderTime = 1767225600

func (sc *scrubber) scrub(text string) string {
	text = timestampRE.ReplaceAllStringFunc(text, func(m string) string {
		k := m[1 : strings.Index(m[1:], `"`)+1]
		t := placeholderTime
		if k == "exp" {
			t += 3600
		}
		return fmt.Sprintf(`"%s": %d`, k, t)
	})
	if sc.tokenResponse {
		text = expiresInRE.ReplaceAllString(text, `"expires_in": 3600`)
	}
	for _, o := range sc.origins {
		u, _ := url.Parse(o.real)
		d, _ := url.Parse(o.display)
		text = strings.NewReplacer(o.real, o.display, url.QueryEscape(o.real), url.QueryEscape(o.display), u.Host, d.Host).Replace(text)
	}
	// Longest values first, so that no value is replaced inside another.
	vals := make([]string, 0, len(sc.values))
	for v := range sc.values {
		vals = append(vals, v)
	}
	sort.Slice(vals, func(i, j int) bool {
		if len(vals[i]) != len(vals[j]) {
			return len(vals[i]) > len(vals[j])
		}
		return vals[i] < vals[j]
	})
	var long, short []string
	for _, v := range vals {
		if len(v) >= 16 {
			long = append(long, regexp.QuoteMeta(v))
		} else {
			short = append(short, regexp.QuoteMeta(v))
		}
	}
	// Count the distinct values of each name, to number only names with
	// several.
	distinct := map[string]int{}
	for _, l := range sc.values {
		distinct[l]++
	}
	seen := map[string]int{}
	names := map[string]string{}
	placeholder := func(v string) string {
		if p, ok := names[v]; ok {
			return p
		}
		l := sc.values[v]
		seen[l]++
		p := "<" + l + ">"
		if distinct[l] > 1 {
			p = fmt.Sprintf("<%s-%d>", l, seen[l])
		}
		names[v] = p
		return p
	}
	if len(long) > 0 {
		re := regexp.MustCompile(strings.Join(long, "|"))
		text = re.ReplaceAllStringFunc(text, placeholder)
	}
	if len(short) > 0 {
		// Short values (a TOTP code) only as a whole parameter value.
		re := regexp.MustCompile(`([="])(` + strings.Join(short, "|") + `)(["&\n])`)
		text = re.ReplaceAllStringFunc(text, func(m string) string {
			return m[:1] + placeholder(m[1:len(m)-1]) + m[len(m)-1:]
		})
	}
	return text
}

var expiresInRE = regexp.MustCompile(`"expires_in": 3[56][0-9][0-9]\b`)

// ---- the examples -----------------------------------------------------

// exampleDiscovery: metadata and keys of the demo configuration.
func exampleDiscovery(t *testing.T) *example {
	log := newExampleLog()
	as := log.start(t, "AS", "https://as.example", servertest.Options{})
	x := newExample("discovery", log)
	r := x.get(t, "app → AS: the authorization server metadata (RFC 8414)", as.URL+"/.well-known/oauth-authorization-server")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, as.URL+"/native/authorize", r.str("authorization_challenge_endpoint"))
	r = x.get(t, "app → AS: the signing keys", as.URL+"/jwks.json")
	require.Equal(t, http.StatusOK, r.status)
	require.Len(t, r.body["keys"], 1)
	return x
}

// exampleLocal: bob signs in with password and TOTP; the third answer is
// a JSON body (FiPA-04 §5.3); then token, introspection, refresh,
// revocation.
func exampleLocal(t *testing.T) *example {
	log := newExampleLog()
	as := log.start(t, "AS", "https://as.example", servertest.Options{})
	x := newExample("local", log)
	pk := sdk.NewPKCE()
	r := x.postForm(t, "app → AS: the initial request", as.native(), pkceParams(pk, url.Values{
		"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid offline_access"}}))
	requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
	r = x.postForm(t, "app → AS: the answer to the password challenge", as.native(), url.Values{
		"auth_session": {r.str("auth_session")}, "username": {"bob"}, "password": {"builder"}})
	requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
	require.Equal(t, "otp", r.body["challenge"].(map[string]any)["type"])
	body, err := json.Marshal(map[string]string{"auth_session": r.str("auth_session"), "otp": totpNow(t, bobTOTP)})
	require.NoError(t, err)
	r = x.postJSON(t, "app → AS: the answer to the otp challenge, as a JSON body this time", as.native(), string(body))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	code := r.str("authorization_code")
	tok := x.postForm(t, "app → AS: redeem the code (no redirect_uri: FiPA-04 §6)", as.token(), url.Values{
		"grant_type": {"authorization_code"}, "client_id": {"demo-app"}, "code": {code}, "code_verifier": {pk.Verifier}})
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	require.Equal(t, "bearer", tok.str("token_type"))
	ir := x.postForm(t, "resource server → AS: introspect the access token (RFC 7662)", as.intro(), url.Values{"token": {tok.str("access_token")}}, basic("demo-partner", partnerSecret))
	require.Equal(t, true, ir.body["active"])
	require.Equal(t, "bob", ir.str("sub"))
	rf := x.postForm(t, "app → AS: refresh", as.token(), url.Values{"grant_type": {"refresh_token"}, "client_id": {"demo-app"}, "refresh_token": {tok.str("refresh_token")}})
	require.Equal(t, http.StatusOK, rf.status, rf.raw)
	rv := x.postForm(t, "app → AS: sign out: revoke the refresh token (RFC 7009), which revokes the grant", as.revoke(), url.Values{
		"client_id": {"demo-app"}, "token": {rf.str("refresh_token")}, "token_type_hint": {"refresh_token"}})
	require.Equal(t, http.StatusOK, rv.status, rv.raw)
	ir = x.postForm(t, "resource server → AS: the access token is no longer active", as.intro(), url.Values{"token": {rf.str("access_token")}}, basic("demo-partner", partnerSecret))
	require.Equal(t, false, ir.body["active"])
	return x
}

// exampleDPoP: a DPoP-bound session, code and tokens.
func exampleDPoP(t *testing.T) *example {
	log := newExampleLog()
	as := log.start(t, "AS", "https://as.example", servertest.Options{})
	x := newExample("dpop", log)
	key := newDPoPKey(t)
	pk := sdk.NewPKCE()
	r := x.postForm(t, "app → AS: the initial request with a DPoP proof: the session is bound to its key", as.native(), pkceParams(pk, url.Values{
		"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"}, "login_hint": {"alice"}}), withDPoP(t, key, ""))
	requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
	as1 := r.str("auth_session")
	r = x.postForm(t, "app → AS: a follow-up without a proof is refused, and changes nothing", as.native(), url.Values{"auth_session": {as1}, "password": {"wonderland"}})
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_dpop_proof")
	r = x.postForm(t, "app → AS: the same follow-up with a proof for the key", as.native(), url.Values{"auth_session": {as1}, "password": {"wonderland"}}, withDPoP(t, key, ""))
	require.Equal(t, http.StatusOK, r.status, r.raw)
	tok := x.postForm(t, "app → AS: the code is bound to the key too: redeem it with a proof", as.token(), url.Values{
		"grant_type": {"authorization_code"}, "client_id": {"demo-app"}, "code": {r.str("authorization_code")}, "code_verifier": {pk.Verifier}}, withDPoP(t, key, ""))
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	require.Equal(t, "DPoP", tok.str("token_type"))
	ir := x.postForm(t, "resource server → AS: introspection shows the key (cnf.jkt)", as.intro(), url.Values{"token": {tok.str("access_token")}}, basic("demo-partner", partnerSecret))
	require.Equal(t, key.JKT, ir.body["cnf"].(map[string]any)["jkt"])
	return x
}

// exampleFederated: the federation draft's Appendix A.1 between two fedas
// instances: prompt, federate (AS1 pushes to AS2), the app at AS2 in the
// downstream role, the response_uri (AS1 redeems at AS2), AS1's code.
func exampleFederated(t *testing.T) *example {
	log := newExampleLog()
	key := newFedKey(t, "as1-key")
	as2 := log.start(t, "AS2", "https://as2.example", servertest.Options{Configure: func(c *config.Config) {
		testConfig(c)
		c.Clients = append(c.Clients, federatingClient("as1", key, true))
	}})
	as1 := log.start(t, "AS1", "https://as1.example", servertest.Options{Configure: func(c *config.Config) {
		testConfig(c)
		c.Downstreams = append(c.Downstreams, downstreamOf("as2", as2.URL, "as1", key))
		emailPrompt(c, "as2.example", "as2")
	}})
	log.callers["AS2"] = "AS1"
	x := newExample("federated", log)
	pk := sdk.NewPKCE()
	r := x.postForm(t, "app → AS1: the initial request", as1.native(), pkceParams(pk, url.Values{
		"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"}}))
	requireOAuthError(t, r, http.StatusBadRequest, "insufficient_information")
	r = x.postForm(t, "app → AS1: the answer to the prompt; AS1 routes @as2.example to AS2 and pushes a request there", as1.native(), url.Values{
		"auth_session": {r.str("auth_session")}, "email": {"carol@as2.example"}})
	requireOAuthError(t, r, http.StatusBadRequest, "federate")
	as1Session, responseURI := r.str("auth_session"), r.str("response_uri")
	fb, err := url.ParseQuery(r.str("federation_body"))
	require.NoError(t, err)
	r = x.postForm(t, "app → AS2: federation_body, as is, to federation_uri (the downstream role: client_id + request_uri)", r.str("federation_uri"), fb)
	requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
	r = x.postForm(t, "app → AS2: the answer to AS2's challenge", as2.native(), url.Values{
		"auth_session": {r.str("auth_session")}, "username": {"carol"}, "password": {"carol-pw"}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	r = x.postForm(t, "app → AS1: AS2's code, with AS1's auth_session, to the response_uri; AS1 redeems it at AS2", responseURI, url.Values{
		"auth_session": {as1Session}, "authorization_code": {r.str("authorization_code")}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	tok := x.postForm(t, "app → AS1: redeem AS1's code", as1.token(), url.Values{
		"grant_type": {"authorization_code"}, "client_id": {"demo-app"}, "code": {r.str("authorization_code")}, "code_verifier": {pk.Verifier}})
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	ir := x.postForm(t, "resource server → AS1: the user is AS2's carol", as1.intro(), url.Values{"token": {tok.str("access_token")}}, basic("demo-partner", partnerSecret))
	require.Equal(t, as2.URL+"|carol", ir.str("sub"))
	return x
}

// bankAppToken signs carol in to the bank app (unrecorded) and returns its
// access token.
func bankAppToken(t *testing.T, in instance) string {
	t.Helper()
	app := in.Client(t, "bank-app")
	code, pk, err := app.Authorize(t.Context(), url.Values{"scope": {"openid"}}, userUI("carol", "carol-pw", ""))
	require.NoError(t, err)
	tok, err := app.Exchange(t.Context(), code, pk)
	require.NoError(t, err)
	return tok.AccessToken
}

// exampleApp: redirect_to_app for a local client, the app completion API,
// the one-time value back at the native endpoint.
func exampleApp(t *testing.T) *example {
	log := newExampleLog()
	as := log.start(t, "AS", "https://as.example", servertest.Options{Configure: func(c *config.Config) {
		testConfig(c)
		withBankApp(func(a *config.App) { a.Clients = []string{"demo-app"} })(c)
	}})
	appToken := bankAppToken(t, as)
	x := newExample("app", log)
	pk := sdk.NewPKCE()
	r := x.postForm(t, "app → AS: the initial request, with a registered native_callback_uri", as.native(), pkceParams(pk, url.Values{
		"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"}, "native_callback_uri": {"https://app.example/cb"}}))
	requireOAuthError(t, r, http.StatusBadRequest, "redirect_to_app")
	session := r.str("auth_session")
	link, err := url.Parse(r.str("deep_link"))
	require.NoError(t, err)
	done := x.postForm(t, "bank app → AS: the OS opened the deep link in our app, which completes it for its signed-in user", as.URL+"/native/app/complete",
		url.Values{"client_id": {link.Query().Get("client_id")}, "request_uri": {link.Query().Get("request_uri")}}, bearer("Bearer", appToken))
	require.Equal(t, http.StatusOK, done.status, done.raw)
	r = x.postForm(t, "app → AS: the app opened callback; the client app posts what it delivered with its auth_session", as.native(), url.Values{
		"auth_session": {session}, "authorization_code": {done.str("authorization_code")}, "iss": {done.str("iss")}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	tok := x.postForm(t, "app → AS: redeem the code, bound to the client app's own PKCE", as.token(), url.Values{
		"grant_type": {"authorization_code"}, "client_id": {"demo-app"}, "code": {r.str("authorization_code")}, "code_verifier": {pk.Verifier}})
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	return x
}

// exampleBrowserFallback: no app claims the deep link: redirect_to_web,
// our browser pages, the code at the client's redirect_uri.
func exampleBrowserFallback(t *testing.T) *example {
	log := newExampleLog()
	as := log.start(t, "AS", "https://as.example", servertest.Options{Configure: func(c *config.Config) {
		testConfig(c)
		withBankApp(func(a *config.App) { a.Clients = []string{"demo-app"} })(c)
		for i := range c.Clients {
			if c.Clients[i].ID == "demo-app" {
				c.Clients[i].RedirectURIs = []string{"https://app.example/web-cb"}
			}
		}
	}})
	x := newExample("browser", log)
	pk := sdk.NewPKCE()
	r := x.postForm(t, "app → AS: the initial request", as.native(), pkceParams(pk, url.Values{
		"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"}, "state": {"af0ifjsldkj"}, "native_callback_uri": {"https://app.example/cb"}}))
	requireOAuthError(t, r, http.StatusBadRequest, "redirect_to_app")
	r = x.postForm(t, "app → AS: no app claims the deep link", as.native(), url.Values{"auth_session": {r.str("auth_session")}, "deep_link_unavailable": {"true"}})
	requireOAuthError(t, r, http.StatusForbidden, "redirect_to_web")
	page := x.get(t, "browser → AS: the app opens authorization_endpoint with client_id and request_uri", as.URL+"/oauth2/authorize?"+url.Values{
		"client_id": {"demo-app"}, "request_uri": {r.str("request_uri")}}.Encode())
	require.Equal(t, http.StatusOK, page.status)
	m := hiddenSessionRE.FindStringSubmatch(page.raw)
	require.NotNil(t, m, page.raw)
	done := x.postForm(t, "browser → AS: the user signs in on our page", as.URL+"/oauth2/authorize", url.Values{
		"auth_session": {m[1]}, "username": {"carol"}, "password": {"carol-pw"}})
	require.Equal(t, http.StatusSeeOther, done.status)
	loc, err := url.Parse(done.header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, "af0ifjsldkj", loc.Query().Get("state"))
	tok := x.postForm(t, "app → AS: redeem the code the browser brought to the redirect_uri (now with that redirect_uri: RFC 6749 §4.1.3)", as.token(), url.Values{
		"grant_type": {"authorization_code"}, "client_id": {"demo-app"}, "code": {loc.Query().Get("code")}, "code_verifier": {pk.Verifier},
		"redirect_uri": {"https://app.example/web-cb"}})
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	return x
}

// examplePAR: a confidential web client pushes its request and signs the
// user in through the browser endpoint.
func examplePAR(t *testing.T) *example {
	log := newExampleLog()
	as := log.start(t, "AS", "https://as.example", servertest.Options{})
	x := newExample("par", log)
	pk := sdk.NewPKCE()
	r := x.postForm(t, "partner → AS: push the authorization request (RFC 9126), authenticated", as.parURL(), pkceParams(pk, url.Values{
		"client_id": {"demo-partner"}, "response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {"https://partner.example/cb"}, "state": {"xyz-state-1"}}),
		basic("demo-partner", partnerSecret))
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	page := x.get(t, "browser → AS: the partner sends the browser to authorization_endpoint", as.URL+"/oauth2/authorize?"+url.Values{
		"client_id": {"demo-partner"}, "request_uri": {r.str("request_uri")}}.Encode())
	require.Equal(t, http.StatusOK, page.status)
	m := hiddenSessionRE.FindStringSubmatch(page.raw)
	require.NotNil(t, m, page.raw)
	done := x.postForm(t, "browser → AS: the user signs in", as.URL+"/oauth2/authorize", url.Values{"auth_session": {m[1]}, "username": {"alice"}, "password": {"wonderland"}})
	require.Equal(t, http.StatusSeeOther, done.status)
	loc, err := url.Parse(done.header.Get("Location"))
	require.NoError(t, err)
	tok := x.postForm(t, "partner → AS: redeem the code", as.token(), url.Values{
		"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "code_verifier": {pk.Verifier}, "redirect_uri": {"https://partner.example/cb"}},
		basic("demo-partner", partnerSecret))
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	return x
}

// exampleWebCallback: AS2 may not challenge AS1's users natively, so the
// downstream falls back to the browser (docs/decisions.md Q7); its flow
// ends at AS1's web callback, and the device brings the response_code.
func exampleWebCallback(t *testing.T) *example {
	log := newExampleLog()
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	key := newFedKey(t, "as1-key")
	as2 := log.start(t, "AS2", "https://as2.example", servertest.Options{Configure: func(c *config.Config) {
		testConfig(c)
		fc := federatingClient("as1", key, false)
		fc.RedirectURIs = []string{"http://" + ln1.Addr().String() + "/federation/callback"}
		c.Clients = append(c.Clients, fc)
	}})
	as1 := log.start(t, "AS1", "https://as1.example", servertest.Options{Listener: ln1, Configure: func(c *config.Config) {
		testConfig(c)
		c.Downstreams = append(c.Downstreams, downstreamOf("as2", as2.URL, "as1", key))
		emailPrompt(c, "as2.example", "as2")
	}})
	log.callers["AS2"] = "AS1"
	x := newExample("web-callback", log)
	pk := sdk.NewPKCE()
	r := x.postForm(t, "app → AS1: the initial request, with a native_callback_uri", as1.native(), pkceParams(pk, url.Values{
		"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"}, "native_callback_uri": {"https://app.example/cb"}}))
	requireOAuthError(t, r, http.StatusBadRequest, "insufficient_information")
	r = x.postForm(t, "app → AS1: the answer to the prompt", as1.native(), url.Values{"auth_session": {r.str("auth_session")}, "email": {"carol@as2.example"}})
	requireOAuthError(t, r, http.StatusBadRequest, "federate")
	as1Session, responseURI := r.str("auth_session"), r.str("response_uri")
	fb, err := url.ParseQuery(r.str("federation_body"))
	require.NoError(t, err)
	r = x.postForm(t, "app → AS2: federation_body to federation_uri; AS2 serves no credential challenge to AS1's users", r.str("federation_uri"), fb)
	requireOAuthError(t, r, http.StatusForbidden, "redirect_to_web")
	page := x.get(t, "browser → AS2: the app opens AS2's authorization_endpoint", as2.URL+"/oauth2/authorize?"+url.Values{
		"client_id": {"as1"}, "request_uri": {r.str("request_uri")}}.Encode())
	require.Equal(t, http.StatusOK, page.status)
	m := hiddenSessionRE.FindStringSubmatch(page.raw)
	require.NotNil(t, m, page.raw)
	done := x.postForm(t, "browser → AS2: the user signs in at AS2", as2.URL+"/oauth2/authorize", url.Values{"auth_session": {m[1]}, "username": {"carol"}, "password": {"carol-pw"}})
	require.Equal(t, http.StatusSeeOther, done.status)
	back := x.get(t, "browser → AS1: AS2 sent the browser to our web callback; AS1 checks iss and state and redeems the code at AS2", done.header.Get("Location"))
	require.Equal(t, http.StatusSeeOther, back.status)
	cb, err := url.Parse(back.header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, "https://app.example/cb", cb.Scheme+"://"+cb.Host+cb.Path)
	r = x.postForm(t, "app → AS1: the OS handed the native_callback_uri to the app, which posts response_code with AS1's auth_session to the response_uri", responseURI, url.Values{
		"auth_session": {as1Session}, "response_code": {cb.Query().Get("response_code")}})
	require.Equal(t, http.StatusOK, r.status, r.raw)
	tok := x.postForm(t, "app → AS1: redeem AS1's code", as1.token(), url.Values{
		"grant_type": {"authorization_code"}, "client_id": {"demo-app"}, "code": {r.str("authorization_code")}, "code_verifier": {pk.Verifier}})
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	return x
}

// exampleErrors: one request for each error a client must handle.
func exampleErrors(t *testing.T) *example {
	log := newExampleLog()
	legacy := fedtest.Start(t, fedtest.Options{NoNative: true})
	key := newFedKey(t, "legacy-key")
	// pas routes by an email prompt, @legacy.example to a downstream
	// without a native endpoint; as has no prompt.
	pas := log.start(t, "AS", "https://as.example", servertest.Options{Configure: func(c *config.Config) {
		testConfig(c)
		c.Downstreams = append(c.Downstreams, downstreamOf("legacy", legacy.URL, "as1", key))
		c.Prompt = &config.Prompt{Inputs: []config.PromptInput{{Key: "email", Title: "Email", Hint: "you@example.com"}}}
		c.Routes = append(c.Routes, config.Route{Downstream: "legacy", EmailDomains: []string{"legacy.example"}})
	}})
	as := log.start(t, "AS", "https://as.example", servertest.Options{Configure: testConfig})
	x := newExample("errors", log)
	initial := func(extra url.Values) url.Values {
		f := pkceParams(sdk.NewPKCE(), url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"}})
		for k, v := range extra {
			f[k] = v
		}
		return f
	}
	// Unrecorded setup: a prompt session.
	prompt := post(t, pas.native(), initial(nil))
	requireOAuthError(t, prompt, http.StatusBadRequest, "insufficient_information")

	r := x.postForm(t, "an invalid prompt answer: invalid_request with the prompt again and a new auth_session", pas.native(), url.Values{
		"auth_session": {prompt.str("auth_session")}, "email": {"not an email"}})
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
	require.NotNil(t, r.body["userPrompt"])
	next := r.str("auth_session")
	r = x.postForm(t, "a used auth_session: invalid_session", pas.native(), url.Values{"auth_session": {prompt.str("auth_session")}, "email": {"carol@example.com"}})
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_session")
	r = x.postForm(t, "an account whose AS has no native endpoint (and no browser federation allowed)", pas.native(), url.Values{"auth_session": {next}, "email": {"carol@legacy.example"}})
	requireOAuthError(t, r, http.StatusBadRequest, "native_authorization_federate_unsupported")
	require.Zero(t, legacy.Count(fedtest.PAR))
	f := initial(nil)
	f.Del("code_challenge")
	f.Del("code_challenge_method")
	r = x.postForm(t, "a public client without PKCE", as.native(), f)
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
	r = x.postForm(t, "an unknown client", as.native(), initial(url.Values{"client_id": {"nobody"}}))
	requireOAuthError(t, r, http.StatusUnauthorized, "invalid_client")
	r = x.postForm(t, "a confidential client with a wrong secret", as.native(), initial(url.Values{"client_id": {"fp-conf"}}), basic("fp-conf", "wrong"))
	requireOAuthError(t, r, http.StatusUnauthorized, "invalid_client")
	require.NotEmpty(t, r.header.Get("WWW-Authenticate"))
	r = x.postForm(t, "a client that is not first-party", as.native(), initial(url.Values{"client_id": {"third-party"}}))
	requireOAuthError(t, r, http.StatusBadRequest, "unauthorized_client")
	r = x.postForm(t, "a scope the client may not ask for", as.native(), initial(url.Values{"scope": {"openid admin"}}))
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_scope")
	r = x.postForm(t, "another response_type", as.native(), initial(url.Values{"response_type": {"token"}}))
	requireOAuthError(t, r, http.StatusBadRequest, "unsupported_response_type")
	r = x.postJSON(t, "a JSON body with a non-string value", as.native(), `{"client_id":"demo-app","response_type":"code","max_age":60}`)
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")
	req, err := http.NewRequest(http.MethodPost, as.native(), strings.NewReader("client_id=demo-app&client_id=demo-app"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r = x.send(t, "a repeated parameter", req)
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_request")

	// Five wrong passwords end a session: the fifth answer is shown.
	pw := post(t, as.native(), initial(url.Values{"login_hint": {"alice"}}))
	requireOAuthError(t, pw, http.StatusForbidden, "insufficient_authorization")
	for i := 0; i < 4; i++ {
		pw = post(t, as.native(), url.Values{"auth_session": {pw.str("auth_session")}, "password": {"wrong"}})
		requireOAuthError(t, pw, http.StatusForbidden, "insufficient_authorization")
	}
	r = x.postForm(t, "the fifth wrong password: access_denied, and the session is gone", as.native(), url.Values{"auth_session": {pw.str("auth_session")}, "password": {"wrong"}})
	requireOAuthError(t, r, http.StatusBadRequest, "access_denied")

	code, pk := as.signIn(t, "demo-app", "carol", "carol-pw", "")
	r = x.postForm(t, "token endpoint: a wrong code_verifier (the code is burnt)", as.token(), url.Values{
		"grant_type": {"authorization_code"}, "client_id": {"demo-app"}, "code": {code}, "code_verifier": {sdk.NewPKCE().Verifier}})
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_grant")
	r = x.postForm(t, "token endpoint: the same code with the right verifier: still invalid_grant", as.token(), url.Values{
		"grant_type": {"authorization_code"}, "client_id": {"demo-app"}, "code": {code}, "code_verifier": {pk.Verifier}})
	requireOAuthError(t, r, http.StatusBadRequest, "invalid_grant")
	r = x.postForm(t, "token endpoint: the password grant", as.token(), url.Values{"grant_type": {"password"}, "client_id": {"demo-app"}, "username": {"carol"}, "password": {"carol-pw"}})
	requireOAuthError(t, r, http.StatusBadRequest, "unsupported_grant_type")
	r = x.postForm(t, "app completion API without an access token", as.URL+"/native/app/complete", url.Values{"client_id": {"demo-app"}, "request_uri": {"urn:ietf:params:oauth:request_uri:fedas-app.x"}})
	requireOAuthError(t, r, http.StatusUnauthorized, "invalid_token")
	r = x.get(t, "the native endpoint takes POST only", as.native())
	requireOAuthError(t, r, http.StatusMethodNotAllowed, "invalid_request")
	r = x.get(t, "an unknown path", as.URL+"/oauth2/nope")
	requireOAuthError(t, r, http.StatusNotFound, "not_found")
	return x
}

// exampleUnavailable: storage is down.
func exampleUnavailable(t *testing.T) *example {
	log := newExampleLog()
	rs := redistest.Start(t)
	as := log.start(t, "AS", "https://as.example", servertest.Options{Store: redisStore(t, rs.URL())})
	x := newExample("unavailable", log)
	r := x.postForm(t, "app → AS: an initial request while storage is up", as.native(), pkceParams(sdk.NewPKCE(), url.Values{
		"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"}}))
	requireOAuthError(t, r, http.StatusForbidden, "insufficient_authorization")
	rs.Stop()
	r = x.postForm(t, "app → AS: the answer while storage is down: retry the same request after Retry-After seconds", as.native(), url.Values{
		"auth_session": {r.str("auth_session")}, "username": {"alice"}, "password": {"wonderland"}})
	requireOAuthError(t, r, http.StatusServiceUnavailable, "temporarily_unavailable")
	require.Equal(t, "1", r.header.Get("Retry-After"))
	ready := x.get(t, "load balancer → AS: readiness fails too", as.URL+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, ready.status)
	return x
}
