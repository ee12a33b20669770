package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/storage/redistest"
)

// TestTracingFromEnv: off unless OTEL_TRACES_EXPORTER names otlp; when
// on, anything fedas cannot honour is refused rather than ignored.
func TestTracingFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		on      bool
		sampler string
		err     string
	}{
		{name: "nothing set: off"},
		{name: "endpoint alone: off", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}},
		{name: "none", env: map[string]string{"OTEL_TRACES_EXPORTER": "none"}},
		{name: "otlp", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true, sampler: "parentbased_always_on"},
		{name: "otlp, spaced and upper case", env: map[string]string{"OTEL_TRACES_EXPORTER": " OTLP "}, on: true, sampler: "parentbased_always_on"},
		{name: "sdk disabled wins", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}},
		{name: "http/protobuf", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, on: true, sampler: "parentbased_always_on"},
		{name: "grpc refused", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, err: "http/protobuf"},
		{name: "traces protocol wins", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, on: true, sampler: "parentbased_always_on"},
		{name: "json refused", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, err: "http/protobuf"},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, err: "otlp or none"},
		{name: "otlp and none", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp,none"}, err: "none excludes otlp"},
		{name: "protocol ignored when off", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}},
		{name: "ratio", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, on: true, sampler: "parentbased_traceidratio"},
		{name: "always_off", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "always_off"}, on: true, sampler: "always_off"},
		{name: "bad ratio", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, err: "between 0 and 1"},
		{name: "unknown sampler", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_TRACES_SAMPLER": "jaeger_remote"}, err: "OTEL_TRACES_SAMPLER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tracingFromEnv(func(k string) string { return tc.env[k] })
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.on, s.on)
			assert.Equal(t, tc.sampler, s.samplerName)
		})
	}
}

// TestServe_RefusesBadTracingEnv: a value fedas cannot honour stops
// `serve` before it listens.
func TestServe_RefusesBadTracingEnv(t *testing.T) {
	for _, tc := range []struct{ key, value, want string }{
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "http/protobuf"},
		{"OTEL_TRACES_SAMPLER", "always-on", "OTEL_TRACES_SAMPLER"},
		{"OTEL_RESOURCE_ATTRIBUTES", "deployment", "tracing: resource"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
			t.Setenv(tc.key, tc.value)
			err := run([]string{"serve", "--listen", "127.0.0.1:0"}, nil, io.Discard, io.Discard)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// collector is an OTLP/HTTP trace receiver: it keeps every request body,
// raw and decoded.
type collector struct {
	srv  *httptest.Server
	mu   sync.Mutex
	raw  [][]byte
	reqs []*coltracepb.ExportTraceServiceRequest
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "unexpected "+r.URL.Path+" "+r.Header.Get("Content-Type"), http.StatusBadRequest)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(b, req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.raw, c.reqs = append(c.raw, b), append(c.reqs, req)
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// exported is one exported span with its resource's service.name.
type exported struct {
	service string
	span    *tracepb.Span
}

func (c *collector) spans() []exported {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []exported
	for _, req := range c.reqs {
		for _, rs := range req.ResourceSpans {
			var service string
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					service = a.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					out = append(out, exported{service, s})
				}
			}
		}
	}
	return out
}

func (c *collector) rawBytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Join(c.raw, nil)
}

func stopBinary(t *testing.T, p *process) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		require.NoError(t, err, p.logs.String())
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}

// TestServe_ExportsTraces: the real binary with OTEL_TRACES_EXPORTER=otlp
// on a password-protected redis-server, with its admin listener. A native
// request and an admin request, each with a traceparent, are exported to
// an OTLP/HTTP collector as spans of those traces — server spans on both
// listeners, and Redis commands — with service.name fedas. The batch
// delay is a minute, so they arrive only because SIGTERM flushes them.
// The export's bytes hold neither the Redis password, nor the
// auth_session, nor the admin token. Without OTEL_TRACES_EXPORTER the
// same binary, pointed at the same collector, exports nothing.
func TestServe_ExportsTraces(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	out, err := exec.Command(bin, "admin", "token", "create", "--role", "read", "--name", "ops", "--file", tokens).Output()
	require.NoError(t, err)
	adminToken := strings.TrimSpace(string(out))
	const redisPassword = "redis-secret-pw-4f1c"
	rs := redistest.Start(t)
	_, err = rs.Do("CONFIG", "SET", "requirepass", redisPassword)
	require.NoError(t, err)
	col := newCollector(t)

	startWith := func(env ...string) (*process, string) {
		addr, aaddr := freeAddr(t), freeAddr(t)
		cfg := filepath.Join(t.TempDir(), "fedas.yaml")
		extra := fmt.Sprintf("admin:\n  listen: %s\n  tokens_file: %s\nstorage:\n  redis:\n    url: redis://%s/0\n    password_env: FEDAS_TEST_REDIS_PASSWORD\n",
			aaddr, tokens, rs.Addr())
		require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(reloadBase, addr)+extra), 0o600))
		env = append(env, "FEDAS_TEST_REDIS_PASSWORD="+redisPassword, "OTEL_EXPORTER_OTLP_ENDPOINT="+col.srv.URL, "OTEL_BSP_SCHEDULE_DELAY=60000")
		return startBinary(t, bin, cfg, addr, env...), "http://" + aaddr
	}
	traceparent := func(traceID string) string { return "00-" + traceID + "-00f067aa0ba902b7-01" }
	nativeID, adminID := hex.EncodeToString([]byte("native-trace-id!")), hex.EncodeToString([]byte("admin--trace-id!"))

	exercise := func(p *process, adminURL string) string {
		hc := sdk.NewHTTPClient()
		pk := sdk.NewPKCE()
		form := url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"},
			"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, p.base+"/native/authorize", strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("traceparent", traceparent(nativeID))
		resp, err := hc.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode, string(body))
		authSession := between(string(body), `"auth_session":"`, `"`)
		require.NotEmpty(t, authSession, string(body))

		req, err = http.NewRequest(http.MethodGet, adminURL+"/admin/v1/status", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		req.Header.Set("traceparent", traceparent(adminID))
		resp, err = hc.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return authSession
	}

	t.Run("off by default", func(t *testing.T) {
		p, adminURL := startWith()
		exercise(p, adminURL)
		stopBinary(t, p)
		assert.Empty(t, col.spans(), "nothing exported without OTEL_TRACES_EXPORTER")
		assert.NotContains(t, p.logs.String(), "tracing on")
	})

	t.Run("otlp", func(t *testing.T) {
		p, adminURL := startWith("OTEL_TRACES_EXPORTER=otlp")
		waitLog(t, p, "tracing on")
		authSession := exercise(p, adminURL)
		stopBinary(t, p)

		spans := col.spans()
		require.NotEmpty(t, spans, "flushed at exit:\n%s", p.logs.String())
		var names []string
		byTrace := map[string][]string{}
		listeners := map[string]string{}
		for _, e := range spans {
			assert.Equal(t, "fedas", e.service)
			for _, a := range e.span.Attributes {
				if a.Key == "fedas.listener" {
					listeners[e.span.Name] = a.GetValue().GetStringValue()
				}
			}
			id := hex.EncodeToString(e.span.TraceId)
			byTrace[id] = append(byTrace[id], e.span.Name)
			names = append(names, e.span.Name)
		}
		t.Logf("exported: %v", names)
		assert.Contains(t, byTrace[nativeID], "POST /native/authorize")
		assert.Contains(t, byTrace[adminID], "GET /admin/v1/status")
		assert.Equal(t, map[string]string{"POST /native/authorize": "public", "GET /admin/v1/status": "admin"}, listeners)
		assert.True(t, slices.ContainsFunc(byTrace[nativeID], func(n string) bool { return n == "evalsha" || n == "eval" || n == "set" }),
			"the native request's Redis commands are in its trace: %v", byTrace[nativeID])
		for id := range byTrace {
			assert.Contains(t, []string{nativeID, adminID}, id, "no trace of its own: only the requests' traces")
		}
		raw := col.rawBytes()
		for _, secret := range []string{redisPassword, authSession, adminToken, "code_challenge"} {
			assert.False(t, bytes.Contains(raw, []byte(secret)), "the export holds %q", secret)
		}
	})
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	j := strings.Index(s, end)
	if j < 0 {
		return ""
	}
	return s[:j]
}
