// Package conformancetest has what the conformance kit's tests share: a
// reverse proxy in front of a real server that breaks one rule, so that a
// test can show the check of that rule failing (docs/conformance.md
// "Tests").
package conformancetest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// Answer is a response on its way back through the proxy; Response hooks
// edit it in place.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// Options tune a Proxy.
type Options struct {
	// Request, when set, edits each request before it is forwarded (to
	// drop a header, say).
	Request func(r *http.Request)
	// Response, when set, edits each answer before it is returned; r is
	// the request as forwarded.
	Response func(r *http.Request, a *Answer)
}

// Proxy is a reverse proxy on 127.0.0.1 in front of a target server. The
// target's URL in answers is replaced with the proxy's, so a client that
// discovers through the proxy stays on it.
type Proxy struct {
	// URL is the proxy's base URL.
	URL    string
	target string
	o      Options
}

// NewProxy starts a proxy to target (a base URL), stopped when tb ends.
func NewProxy(tb testing.TB, target string, o Options) *Proxy {
	tb.Helper()
	p := &Proxy{target: target, o: o}
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	tb.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	target := p.target
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.RequestURI(), r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	if p.o.Request != nil {
		p.o.Request(req)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	a := &Answer{Status: resp.StatusCode, Header: resp.Header.Clone(), Body: bytes.ReplaceAll(body, []byte(target), []byte(p.URL))}
	if p.o.Response != nil {
		p.o.Response(req, a)
	}
	a.Header.Del("Content-Length")
	for k, v := range a.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(a.Status)
	_, _ = w.Write(a.Body)
}

// EditForm lets edit change the form body of r (a Request hook's
// request); a request without a form body is left alone.
func EditForm(r *http.Request, edit func(url.Values)) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") || r.Body == nil {
		return
	}
	b, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	form, perr := url.ParseQuery(string(b))
	if err != nil || perr != nil {
		r.Body = io.NopCloser(bytes.NewReader(b))
		return
	}
	edit(form)
	body := form.Encode()
	r.Body, r.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
}

// EditJSON lets edit change a JSON object body of a (a Response hook's
// answer); any other body is left alone.
func EditJSON(a *Answer, edit func(map[string]any)) {
	var obj map[string]any
	if json.Unmarshal(a.Body, &obj) != nil {
		return
	}
	edit(obj)
	if b, err := json.Marshal(obj); err == nil {
		a.Body = b
	}
}
