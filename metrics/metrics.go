// Package metrics holds fedas's Prometheus metrics (docs/operations.md
// "Metrics"): one private registry per Metrics, never the global default
// one, so that several servers in one process (tests, the demo) do not
// collide. It is served on the admin listener only.
//
// Every label value comes from a closed set or a registered identifier:
// a client_id that is not registered is "unknown", a route is echo's route
// template (never the raw path), a method outside the standard ones is
// "other". Series are resolved once per label combination and cached, so
// that the request path only does map lookups and atomic adds.
package metrics

import (
	"context"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fedas/fedas/events"
)

// Options tune a Metrics.
type Options struct {
	// Version and Revision label fedas_build_info; empty means the
	// module version and VCS revision the binary was built with.
	Version, Revision string
}

// Policy is what the metrics read from the live policy: the version in
// force, and the registered clients and downstreams that bound the
// client_id and downstream labels.
type Policy interface {
	PolicyVersion() uint64
	HasClient(id string) bool
	HasDownstream(id string) bool
}

// Metrics is one registry with every fedas metric.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler
	policy  atomic.Pointer[policyBox]

	httpRequests  *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec
	outcomes      *prometheus.CounterVec
	signIns       *prometheus.CounterVec
	hops          *prometheus.CounterVec
	downstreamDur *prometheus.HistogramVec
	tokens        *prometheus.CounterVec
	codeReuse     *prometheus.CounterVec
	refreshReuse  *prometheus.CounterVec
	clientAuth    *prometheus.CounterVec
	rateLimited   *prometheus.CounterVec
	rateFailOpen  prometheus.Counter
	redisDuration *prometheus.HistogramVec
	redisErrors   *prometheus.CounterVec
	storageUp     prometheus.Gauge

	httpSeries  cache[httpKey, httpSeries]
	counters    cache[counterKey, prometheus.Counter]
	observers   cache[observerKey, prometheus.Observer]
	redisSeries cache[string, redisSeries]
}

type policyBox struct{ p Policy }

type httpKey struct {
	listener, route, method string
	status                  int
}

type httpSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// counterKey names one series of one counter vector with n (1 to 3)
// labels: the vector's pointer keeps the keys of different metrics apart
// in one cache.
type counterKey struct {
	vec     *prometheus.CounterVec
	n       int
	a, b, c string
}

// observerKey names one series of fedas_federation_downstream_duration_seconds.
type observerKey struct{ downstream, call string }

// Label values of fedas_http_requests_total's listener label.
const (
	ListenerPublic = "public"
	ListenerAdmin  = "admin"
)

// New returns a Metrics with its own registry, the Go runtime and process
// collectors, and fedas_build_info.
func New(o Options) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg}
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	version, revision := buildInfo()
	if o.Version != "" {
		version = o.Version
	}
	if o.Revision != "" {
		revision = o.Revision
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "fedas_build_info",
		Help: "Always 1; the labels say which build is running."}, []string{"version", "revision", "goversion"})
	build.WithLabelValues(version, revision, runtime.Version()).Set(1)
	f(build)
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fedas_policy_version",
		Help: "The policy version this instance serves (0 before a policy store version applies)."}, func() float64 {
		if b := m.policy.Load(); b != nil {
			return float64(b.p.PolicyVersion())
		}
		return 0
	}))

	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fedas_http_requests_total",
		Help: "HTTP requests answered, by listener, route template, method and status."}, []string{"listener", "route", "method", "status"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fedas_http_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by listener, route template and method.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"listener", "route", "method"})
	m.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fedas_native_outcomes_total",
		Help: "Answers of the flow engine, by channel, outcome kind (or protocol error code) and challenge type."}, []string{"channel", "kind", "challenge"})
	m.signIns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fedas_sign_ins_total",
		Help: "Authentication method results, by method, result and client."}, []string{"method", "result", "client_id"})
	m.hops = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fedas_federation_hops_total",
		Help: "Federation hops by downstream and result (started, completed, failed) and, for failures, reason."}, []string{"downstream", "result", "reason"})
	m.downstreamDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fedas_federation_downstream_duration_seconds",
		Help:    "Time a downstream took to answer our pushed request (call=push) or token request (call=redeem), whatever the result.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"downstream", "call"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fedas_tokens_issued_total",
		Help: "Token responses issued, by grant type and client."}, []string{"grant_type", "client_id"})
	m.codeReuse = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fedas_code_reuse_total",
		Help: "Authorization codes presented again after their redemption (reason=redeemed; the first redemption's tokens are revoked) or in a lost redemption race (reason=concurrent)."}, []string{"client_id", "reason"})
	m.refreshReuse = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fedas_refresh_reuse_total",
		Help: "Rotated refresh tokens presented again (reason=reused) or in a lost rotation race (reason=concurrent); each revoked its grant's tokens."}, []string{"client_id", "reason"})
	m.clientAuth = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fedas_client_auth_failures_total",
		Help: "Client authentication failures, by method and client (unknown when not registered)."}, []string{"method", "client_id"})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fedas_rate_limited_total",
		Help: "Requests refused by the rate limiter, by scope."}, []string{"scope"})
	m.rateFailOpen = prometheus.NewCounter(prometheus.CounterOpts{Name: "fedas_rate_limit_unavailable_total",
		Help: "Requests let through unchecked because the rate limiter's storage did not answer (it fails open)."})
	m.redisDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fedas_redis_command_duration_seconds",
		Help:    "Redis command latency as the client sees it, by command (pipeline for a pipeline).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}}, []string{"command"})
	m.redisErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fedas_redis_errors_total",
		Help: "Redis commands that failed (not counting a missing key, a cancelled caller or a script-cache miss), by command."}, []string{"command"})
	m.storageUp = prometheus.NewGauge(prometheus.GaugeOpts{Name: "fedas_storage_available",
		Help: "1 while storage answers, 0 from the first failure that says it is unreachable until it answers again."})
	m.storageUp.Set(1)
	for _, c := range []prometheus.Collector{m.httpRequests, m.httpDuration, m.outcomes, m.signIns, m.hops, m.downstreamDur,
		m.tokens, m.codeReuse, m.refreshReuse, m.clientAuth, m.rateLimited, m.rateFailOpen, m.redisDuration, m.redisErrors, m.storageUp} {
		f(c)
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})

	m.httpSeries.make = func(k httpKey) httpSeries {
		return httpSeries{
			count:    m.httpRequests.WithLabelValues(k.listener, k.route, k.method, strconv.Itoa(k.status)),
			duration: m.httpDuration.WithLabelValues(k.listener, k.route, k.method),
		}
	}
	m.counters.make = func(k counterKey) prometheus.Counter {
		vals := [3]string{k.a, k.b, k.c}
		return k.vec.WithLabelValues(vals[:k.n]...)
	}
	m.observers.make = func(k observerKey) prometheus.Observer {
		return m.downstreamDur.WithLabelValues(k.downstream, k.call)
	}
	m.redisSeries.make = func(cmd string) redisSeries {
		return redisSeries{duration: m.redisDuration.WithLabelValues(cmd), errors: m.redisErrors.WithLabelValues(cmd)}
	}
	return m
}

// buildInfo reads the module version and VCS revision from the binary.
func buildInfo() (version, revision string) {
	version, revision = "unknown", "unknown"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	if v := bi.Main.Version; v != "" {
		version = v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			revision = s.Value
		}
	}
	return
}

// Registry returns the registry (tests gather it; an embedding program
// may add its own collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ServeHTTP serves the Prometheus exposition of the registry.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }

// SetPolicy makes p the source of fedas_policy_version and of the
// registered clients and downstreams.
func (m *Metrics) SetPolicy(p Policy) { m.policy.Store(&policyBox{p}) }

func (m *Metrics) client(id string) string {
	if b := m.policy.Load(); id != "" && b != nil && b.p.HasClient(id) {
		return id
	}
	return events.UnknownClient
}

func (m *Metrics) downstream(id string) string {
	if b := m.policy.Load(); id != "" && b != nil && b.p.HasDownstream(id) {
		return id
	}
	return "unknown"
}

// method bounds an HTTP method.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodHead, http.MethodOptions:
		return m
	}
	return "other"
}

// ObserveHTTP counts one answered request. route is echo's route
// template ("" when no route matched).
func (m *Metrics) ObserveHTTP(listener, route, meth string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	if status < 100 || status > 599 {
		status = 0
	}
	s := m.httpSeries.get(httpKey{listener: listener, route: route, method: method(meth), status: status})
	s.count.Inc()
	s.duration.Observe(d.Seconds())
}

// Outcome counts one answer of the flow engine: channel, kind and
// challenge come from the engine's closed sets (flow.Kind).
func (m *Metrics) Outcome(channel, kind, challenge string) {
	m.counters.get(counterKey{vec: m.outcomes, n: 3, a: channel, b: kind, c: challenge}).Inc()
}

// RateLimited counts one request the rate limiter refused; scope is the
// limiter's (a fixed word such as client or ip). The limiter calls it
// through the rate_limit.hit event.
func (m *Metrics) RateLimited(scope string) {
	m.counters.get(counterKey{vec: m.rateLimited, n: 1, a: scope}).Inc()
}

func signInMethod(s string) string {
	switch s {
	case events.MethodPassword, events.MethodOTP, events.MethodFederation, events.MethodApp:
		return s
	}
	return "other"
}

func grantType(s string) string {
	switch s {
	case "authorization_code", "refresh_token", "client_credentials":
		return s
	}
	return "other"
}

func authMethod(s string) string {
	switch s {
	case "client_secret_basic", "client_secret_post", "private_key_jwt", "none":
		return s
	}
	return "other"
}

// Event implements events.Sink: every security event is counted.
func (m *Metrics) Event(_ context.Context, ev events.Event) {
	inc3 := func(vec *prometheus.CounterVec, a, b, c string) {
		m.counters.get(counterKey{vec: vec, n: 3, a: a, b: b, c: c}).Inc()
	}
	inc2 := func(vec *prometheus.CounterVec, a, b string) {
		m.counters.get(counterKey{vec: vec, n: 2, a: a, b: b}).Inc()
	}
	switch ev.Name {
	case events.SignInSuccess:
		inc3(m.signIns, signInMethod(ev.Method), "success", m.client(ev.ClientID))
	case events.SignInFailure:
		inc3(m.signIns, signInMethod(ev.Method), "failure", m.client(ev.ClientID))
	case events.FederationStarted:
		inc3(m.hops, m.downstream(ev.Downstream), "started", "")
	case events.FederationCompleted:
		inc3(m.hops, m.downstream(ev.Downstream), "completed", "")
	case events.FederationFailed:
		inc3(m.hops, m.downstream(ev.Downstream), "failed", ev.Reason)
	case events.TokenIssued:
		inc2(m.tokens, grantType(ev.GrantType), m.client(ev.ClientID))
	case events.CodeReuse:
		inc2(m.codeReuse, m.client(ev.ClientID), ev.Reason)
	case events.RefreshReuse:
		inc2(m.refreshReuse, m.client(ev.ClientID), ev.Reason)
	case events.ClientAuthFailure:
		inc2(m.clientAuth, authMethod(ev.Method), m.client(ev.ClientID))
	case events.RateLimitHit, events.SignInThrottled:
		m.RateLimited(ev.Scope)
	case events.StorageLost:
		m.storageUp.Set(0)
	case events.StorageRecovered:
		m.storageUp.Set(1)
	}
	if ev.Call == events.CallPush || ev.Call == events.CallRedeem {
		m.observers.get(observerKey{downstream: m.downstream(ev.Downstream), call: ev.Call}).Observe(ev.Duration.Seconds())
	}
}

// cache resolves a series once per key: reads are one atomic load and a
// map lookup (no lock, no allocation); a miss copies the map under a
// mutex. Keys are bounded by the label rules, so the map stays small.
type cache[K comparable, V any] struct {
	mu   sync.Mutex
	m    atomic.Pointer[map[K]V]
	make func(K) V
}

func (c *cache[K, V]) get(k K) V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	n := make(map[K]V, 1+len(mapOf(old)))
	for kk, vv := range mapOf(old) {
		n[kk] = vv
	}
	v := c.make(k)
	n[k] = v
	c.m.Store(&n)
	return v
}

func mapOf[K comparable, V any](p *map[K]V) map[K]V {
	if p == nil {
		return nil
	}
	return *p
}
