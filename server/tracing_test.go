package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap/zaptest"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage/redisstore"
	"github.com/fedas/fedas/storage/redistest"
	"github.com/fedas/fedas/tracing"
	"github.com/fedas/fedas/tracing/tracingtest"
)

// traceparentTransport is the device's side of W3C Trace Context: every
// request it sends carries the traceparent of one root span, as an app
// instrumented with OpenTelemetry would send (the SDK's HTTP client is
// the app's to configure, so no SDK option is needed for it).
type traceparentTransport struct {
	base http.RoundTripper
	root trace.SpanContext
}

func (t traceparentTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(trace.ContextWithSpanContext(r.Context(), t.root))
	tracing.Propagator.Inject(r.Context(), headerCarrier(r.Header))
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
}

type headerCarrier http.Header

func (h headerCarrier) Get(k string) string { return http.Header(h).Get(k) }
func (h headerCarrier) Set(k, v string)     { http.Header(h).Set(k, v) }
func (h headerCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// secretsSeen collects, from every exchange of the device, the values
// that must never reach a span: the password, the email (personal data),
// auth_session values, codes, tokens, request_uri handles, PKCE values,
// per-hop response URIs — and each dot-separated part of a code or token,
// since a store key holds only a token's signature part.
type secretsSeen struct {
	mu     sync.Mutex
	values []string
}

var secretKeys = map[string]bool{
	"auth_session": true, "password": true, "otp": true, "email": true, "code": true, "code_verifier": true,
	"code_challenge": true, "authorization_code": true, "access_token": true, "refresh_token": true,
	"id_token": true, "request_uri": true, "response_uri": true, "response_code": true,
}

func (s *secretsSeen) add(v string) {
	if len(v) < 6 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values = append(s.values, v)
	if strings.Contains(v, "://") {
		// A response_uri: the hop ID is its last segment.
		if i := strings.LastIndexByte(v, '/'); i >= 0 && len(v)-i > 8 {
			s.values = append(s.values, v[i+1:])
		}
		return
	}
	for _, part := range strings.Split(v, ".") {
		if len(part) >= 16 {
			s.values = append(s.values, part)
		}
	}
}

func (s *secretsSeen) form(f url.Values) {
	for k, vs := range f {
		if secretKeys[k] {
			for _, v := range vs {
				s.add(v)
			}
		}
	}
}

func (s *secretsSeen) body(b []byte) {
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return
	}
	for k, v := range m {
		str, ok := v.(string)
		switch {
		case !ok:
		case k == "federation_body":
			if f, err := url.ParseQuery(str); err == nil {
				s.form(f)
			}
		case secretKeys[k]:
			s.add(str)
		}
	}
}

func (s *secretsSeen) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.values)
}

// TestTracing_FederatedFlowIsOneTrace: a device that sends a traceparent
// on every request signs in across AS1 (fedas on a real redis-server) →
// AS2 (fedas), both on real loopback HTTP, each with its own tracer
// provider and in-memory recorder. Every span on both instances — server
// spans, AS1's outbound calls to AS2 (metadata, PAR, token, JWKS), Redis
// commands, fosite's own — belongs to the device's one trace; AS2's spans
// for AS1's calls are children of AS1's client spans, which are children
// of AS1's request spans; and no span name, attribute, event or status
// carries the password, the email, an auth_session, a code, a token, a
// DPoP proof, a request_uri or a hop ID.
func TestTracing_FederatedFlowIsOneTrace(t *testing.T) {
	rec1, rec2 := tracingtest.New(t), tracingtest.New(t)
	rs := redistest.Start(t)
	st1, err := redisstore.New(t.Context(), redisstore.Options{URL: rs.URL(), Prefix: "fedas:", TracerProvider: rec1}, zaptest.NewLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st1.Close() })

	key := newFedKey(t, "as1-key")
	as2 := wrap(servertest.Start(t, servertest.Options{TracerProvider: rec2, Configure: func(c *config.Config) {
		testConfig(c)
		c.Clients = append(c.Clients, federatingClient("as1", key, true))
	}}))
	as1 := wrap(servertest.Start(t, servertest.Options{Store: st1, TracerProvider: rec1, Configure: func(c *config.Config) {
		testConfig(c)
		c.Downstreams = append(c.Downstreams, downstreamOf("as2", as2.URL, "as1", key))
		emailPrompt(c, "as2.example", "as2")
	}}))
	require.Empty(t, rec1.Ended(), "nothing is traced before the first request")

	// The device's root span, as its own tracer would start it.
	device := tracingtest.New(t)
	_, root := device.Tracer("device").Start(context.Background(), "sign-in")
	root.End()
	rootSC := root.SpanContext()
	hc := sdk.NewHTTPClient()
	hc.Transport = traceparentTransport{root: rootSC}
	meta, err := sdk.Discover(t.Context(), hc, as1.URL)
	require.NoError(t, err)
	c := &sdk.Client{HTTP: hc, ClientID: "demo-app", Meta: meta, DPoP: dpopKey(t)}
	seen := &secretsSeen{}
	seen.add("carol-pw")
	c.OnExchange = func(_, _ string, form url.Values, _ int, body []byte) {
		seen.form(form)
		seen.body(body)
	}
	code, pk, err := c.Authorize(t.Context(),
		url.Values{"scope": {"openid profile email offline_access"}, "native_callback_uri": {"https://app.example/cb"}},
		answerAll("carol@as2.example"))
	require.NoError(t, err)
	tok, err := c.Exchange(t.Context(), code, pk)
	require.NoError(t, err)
	require.NotEmpty(t, tok.AccessToken)
	for _, v := range []string{code, pk.Verifier, pk.Challenge, tok.AccessToken, tok.RefreshToken, tok.IDToken} {
		seen.add(v)
	}
	// Failures are traced too, and their error statuses (fosite's
	// spans record the error text) carry no secret either: a replayed
	// code, a refresh token presented as a code.
	_, err = c.Exchange(t.Context(), code, pk)
	require.Error(t, err)
	_, err = c.Exchange(t.Context(), tok.RefreshToken, pk)
	require.Error(t, err)

	spans1, spans2 := rec1.Ended(), rec2.Ended()
	require.NotEmpty(t, spans1)
	require.NotEmpty(t, spans2)

	// One trace: the device's.
	for _, s := range append(slices.Clone(spans1), spans2...) {
		assert.Equal(t, rootSC.TraceID(), s.SpanContext().TraceID(), "span %q is in another trace", s.Name())
		assert.True(t, s.Parent().IsValid(), "span %q is a root", s.Name())
	}

	byID := func(spans []sdktrace.ReadOnlySpan) map[trace.SpanID]sdktrace.ReadOnlySpan {
		m := map[trace.SpanID]sdktrace.ReadOnlySpan{}
		for _, s := range spans {
			m[s.SpanContext().SpanID()] = s
		}
		return m
	}
	ids1 := byID(spans1)
	routes := func(spans []sdktrace.ReadOnlySpan) []string {
		var out []string
		for _, s := range spans {
			if s.SpanKind() == trace.SpanKindServer {
				out = append(out, s.Name())
			}
		}
		return out
	}
	t.Logf("AS1 spans: %v", names(spans1))
	t.Logf("AS2 spans: %v", names(spans2))
	assert.Subset(t, routes(spans1), []string{
		"GET /.well-known/oauth-authorization-server", "POST /native/authorize",
		"POST /native/response/:hop", "POST /oauth2/token",
	})
	assert.Subset(t, routes(spans2), []string{
		"GET /.well-known/oauth-authorization-server", "POST /oauth2/par", "POST /native/authorize",
		"POST /oauth2/token", "GET /jwks.json",
	})

	// The device's requests are children of its root span.
	for _, s := range append(slices.Clone(spans1), spans2...) {
		if s.SpanKind() == trace.SpanKindServer && s.Parent().IsRemote() && s.Parent().SpanID() == rootSC.SpanID() {
			continue
		}
		if s.SpanKind() == trace.SpanKindServer && s.InstrumentationScope().Name == tracing.ScopeName {
			// Not from the device: must be one of AS1's calls to AS2.
			parent, ok := ids1[s.Parent().SpanID()]
			require.True(t, ok, "AS2 span %q: its parent is no AS1 span", s.Name())
			assert.Equal(t, trace.SpanKindClient, parent.SpanKind(), "AS2 span %q: parent %q", s.Name(), parent.Name())
		}
	}

	// AS1's calls to AS2: client spans under AS1's request spans, one
	// for each of metadata, PAR, token and JWKS, each answered by AS2.
	var outbound []string
	ids2 := byID(spans2)
	for _, s := range spans1 {
		if s.SpanKind() != trace.SpanKindClient || s.InstrumentationScope().Name == "github.com/redis/go-redis/extra/redisotel" {
			continue
		}
		outbound = append(outbound, s.Name())
		assert.Equal(t, trace.SpanKindServer, ancestor(ids1, s).SpanKind(), "client span %q hangs under a request span", s.Name())
		var answered bool
		for _, s2 := range ids2 {
			answered = answered || s2.Parent().SpanID() == s.SpanContext().SpanID()
		}
		assert.True(t, answered, "AS2 has a server span child of AS1's %q", s.Name())
	}
	assert.Subset(t, outbound, []string{
		"GET /.well-known/oauth-authorization-server", "POST /oauth2/par", "POST /oauth2/token", "GET /jwks.json",
	})

	// Redis: AS1's commands are spans in the trace, under its requests.
	var redisSpans int
	for _, s := range spans1 {
		if s.InstrumentationScope().Name == "github.com/redis/go-redis/extra/redisotel" {
			redisSpans++
			assert.Equal(t, trace.SpanKindServer, ancestor(ids1, s).SpanKind(), "redis span %q", s.Name())
		}
	}
	assert.Positive(t, redisSpans, "AS1's Redis commands are traced")

	// Nothing secret in any span of either instance.
	secrets := seen.list()
	require.Greater(t, len(secrets), 20, "the device saw its codes and tokens: %d", len(secrets))
	all := append(slices.Clone(spans1), spans2...)
	tracingtest.AssertNoSecrets(t, all, secrets...)
	tracingtest.AssertNoSecrets(t, all, "eyJ", "carol@", "as1-key", "code_verifier")
}

// ancestor is the outermost span of s among spans (its local root).
func ancestor(spans map[trace.SpanID]sdktrace.ReadOnlySpan, s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	for {
		p, ok := spans[s.Parent().SpanID()]
		if !ok {
			return s
		}
		s = p
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name()
	}
	return out
}
