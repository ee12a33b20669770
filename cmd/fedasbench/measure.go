package main

// measure.go holds fedasbench's measurements beyond throughput and
// per-flow latency (main.go): per-step latency distributions, the CPU
// profile's split between the driver and the servers, allocations per
// flow, RSS over the run, the progress line, the Redis state per live
// auth session and Redis round trips per step, a self-started
// redis-server, and the description of the machine and the tree.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/pprof/profile"
	"github.com/redis/go-redis/v9"

	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/storage/redisstore"
)

// ---------------------------------------------------------------------
// Histograms.

// histBuckets is a log-linear histogram's size: values below 128 ns
// exactly, then 64 sub-buckets per power of two (≤ 1/64 relative error)
// up to 2^63 ns.
const histBuckets = 128 + (64-8)*64

// hist is a lock-free latency histogram: bounded memory whatever -n (a
// soak run records millions of requests), percentiles within 1.6 %.
type hist struct {
	counts   [histBuckets]atomic.Uint64
	n, sumNS atomic.Int64
	maxNS    atomic.Int64
}

func bucketOf(v int64) int {
	if v < 128 {
		return int(max(v, 0))
	}
	e := bits.Len64(uint64(v)) // 8…63
	return 128 + (e-8)*64 + int(v>>(e-7)-64)
}

// bucketMid is the middle of bucket i, in ns.
func bucketMid(i int) float64 {
	if i < 128 {
		return float64(i)
	}
	e := (i-128)/64 + 8
	sub := int64((i-128)%64 + 64)
	w := int64(1) << (e - 7)
	return float64(sub*w) + float64(w)/2
}

func (h *hist) record(d time.Duration) {
	v := d.Nanoseconds()
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sumNS.Add(v)
	for m := h.maxNS.Load(); v > m && !h.maxNS.CompareAndSwap(m, v); m = h.maxNS.Load() {
	}
}

// quantiles returns the qs-quantiles in ms, with percentiles()'s rank
// convention (nearest rank), each at most the maximum seen.
func (h *hist) quantiles(qs ...float64) []float64 {
	var c [histBuckets]uint64
	var n uint64
	for i := range c {
		c[i] = h.counts[i].Load()
		n += c[i]
	}
	out := make([]float64, len(qs))
	if n == 0 {
		return out
	}
	maxMS := float64(h.maxNS.Load()) / 1e6
	for k, q := range qs {
		rank := max(1, min(uint64(q*float64(n)+0.5), n))
		var cum uint64
		for i := range c {
			if cum += c[i]; cum >= rank {
				out[k] = min(bucketMid(i)/1e6, maxMS)
				break
			}
		}
	}
	return out
}

// ---------------------------------------------------------------------
// Per-step latency.

// stepStat is one request step's distribution ("as1 native", …).
type stepStat struct {
	name, side string
	h          hist
	// Round trips per step (tapRoundTrips): requests and the Redis round
	// trips made while the step was the current one.
	tapReqs, tapRT atomic.Int64
}

type stepKey struct{ who, endpoint string }

// stepSet holds the steps in order of first appearance. Device-side steps
// are timed in tracingRT (request sent → response headers: every body
// here is small enough to arrive with them); server-side steps (AS1's
// downstream requests on AS2's listener) in countingConn (the request's
// first byte read → the response's first write, which holds the whole
// response for bodies under net/http's 4 KB buffer).
type stepSet struct {
	on    atomic.Bool // record (the measured window only)
	hosts map[string]string

	mu    sync.Mutex
	by    map[stepKey]*stepStat
	order []*stepStat

	// tap, when set, attributes Redis round trips to the current step
	// (tapRoundTrips); overlap is set when two device requests were in
	// flight at once, which makes the attribution meaningless.
	tap      atomic.Bool
	cur      atomic.Pointer[stepStat]
	inflight atomic.Int32
	overlap  atomic.Bool
	outside  atomic.Int64 // round trips while no step was current
}

// maxSteps bounds the distinct steps; later ones fold into "<who> other".
const maxSteps = 64

func newStepSet(e *env) *stepSet {
	s := &stepSet{hosts: map[string]string{}, by: map[stepKey]*stepStat{}}
	var as3 *instance
	if sc := scenOf(e); sc != nil {
		as3 = sc.as3 // three-hop
	}
	for _, in := range []struct {
		who string
		in  *instance
	}{{"as1", e.as1}, {"as2", e.as2}, {"as3", as3}} {
		if in.in == nil {
			continue
		}
		if u, err := url.Parse(in.in.url); err == nil {
			s.hosts[u.Host] = in.who
		}
	}
	return s
}

// step returns (creating it in order) the step of an endpoint.
func (s *stepSet) step(who, endpoint, side string) *stepStat {
	k := stepKey{who, endpoint}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.by[k]; st != nil {
		return st
	}
	if len(s.order) >= maxSteps {
		k = stepKey{who, "other"}
		if st := s.by[k]; st != nil {
			return st
		}
	}
	st := &stepStat{name: who + " " + k.endpoint, side: side}
	s.by[k] = st
	s.order = append(s.order, st)
	return st
}

// device is the step of a request the device sends.
func (s *stepSet) device(r *http.Request) *stepStat {
	who, ok := s.hosts[r.URL.Host]
	if !ok {
		who = "other"
	}
	return s.step(who, stepEndpoint(r.Method, r.URL.Path), "device")
}

// enter makes st the current step for tapRoundTrips; the returned
// function restores the previous one.
func (s *stepSet) enter(st *stepStat, device bool) (leave func()) {
	st.tapReqs.Add(1)
	if device && s.inflight.Add(1) > 1 {
		s.overlap.Store(true)
	}
	prev := s.cur.Swap(st)
	return func() {
		s.cur.Store(prev)
		if device {
			s.inflight.Add(-1)
		}
	}
}

// roundTrip counts one Redis round trip for the current step.
func (s *stepSet) roundTrip() {
	if !s.tap.Load() {
		return
	}
	if st := s.cur.Load(); st != nil {
		st.tapRT.Add(1)
	} else {
		s.outside.Add(1)
	}
}

// stepEndpoint names an endpoint by its route, with the path's
// identifiers dropped, so that steps stay few.
func stepEndpoint(method, path string) string {
	switch path {
	case server.PathNative:
		return "native"
	case server.PathToken:
		return "token"
	case server.PathPAR:
		return "par"
	case server.PathMetadata, "/.well-known/openid-configuration":
		return "metadata"
	case server.PathJWKS:
		return "jwks"
	case server.PathRevoke:
		return "revoke"
	case server.PathIntrospect:
		return "introspect"
	case server.PathAppComplete:
		return "app complete"
	case server.PathNativeReach:
		return "reach"
	case server.PathReachInbox:
		return "reach inbox"
	case server.PathReachInboxEvents:
		return "reach inbox events"
	case server.PathReachScan:
		return "reach scan"
	case server.PathUQQuestions:
		return "uq questions"
	case server.PathUQPolling:
		return "uq poll"
	case server.PathAuthorize:
		return "authorize " + strings.ToLower(method)
	case server.PathWebCallback:
		return "web callback"
	case server.PathDCResponse:
		return "dc response"
	case server.PathReachDevices:
		if method == http.MethodPost {
			return "reach register"
		}
		return "reach devices"
	case server.PathInteractions:
		return "interactions"
	}
	switch {
	case strings.HasPrefix(path, server.PathResponse):
		return "response_uri"
	case strings.HasPrefix(path, server.PathNativeReach+"/"):
		return "reach poll"
	case strings.HasPrefix(path, server.PathReachTasks):
		switch {
		case strings.HasSuffix(path, "/ack"):
			return "reach task ack"
		case strings.HasSuffix(path, "/response"):
			return "reach task response"
		}
		return "reach task"
	case strings.HasPrefix(path, server.PathReachDevices+"/"):
		return "reach device " + strings.ToLower(method)
	case strings.HasPrefix(path, server.PathInteractions+"/"):
		return "interactions " + strings.ToLower(method)
	case strings.HasPrefix(path, server.PathDCRequest):
		return "dc request"
	}
	return method + " " + path
}

// stepOut is one step in the report; times in ms.
type stepOut struct {
	Step  string  `json:"step"`
	Side  string  `json:"side"`
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
}

func (s *stepSet) report() []stepOut {
	s.mu.Lock()
	order := append([]*stepStat(nil), s.order...)
	s.mu.Unlock()
	out := make([]stepOut, 0, len(order))
	for _, st := range order {
		n := st.h.n.Load()
		if n == 0 {
			continue
		}
		q := st.h.quantiles(0.50, 0.95, 0.99)
		out = append(out, stepOut{Step: st.name, Side: st.side, Count: n, P50: q[0], P95: q[1], P99: q[2],
			Max: float64(st.h.maxNS.Load()) / 1e6, Mean: float64(st.h.sumNS.Load()) / float64(n) / 1e6})
	}
	return out
}

// serverStep starts timing a request AS2 read (countingConn): method and
// path from its request line.
func (d *downstreamCounter) serverStep(line []byte) (*stepStat, func()) {
	ss := d.steps.Load()
	if ss == nil || (!ss.on.Load() && !ss.tap.Load()) {
		return nil, nil
	}
	method, rest, _ := bytes.Cut(line, []byte(" "))
	path, _, _ := bytes.Cut(rest, []byte(" "))
	path, _, _ = bytes.Cut(path, []byte("?"))
	st := ss.step("as2", stepEndpoint(string(method), string(path)), "server")
	var leave func()
	if ss.tap.Load() {
		leave = ss.enter(st, false)
	}
	if !ss.on.Load() {
		st = nil
	}
	return st, leave
}

// ---------------------------------------------------------------------
// Errors by kind.

// errorsByKind folds failures_by_code ("step: code") into codes.
func errorsByKind(byCode map[string]int) map[string]int {
	out := map[string]int{}
	for k, n := range byCode {
		_, code, ok := strings.Cut(k, ": ")
		if !ok {
			code = k
		}
		out[code] += n
	}
	return out
}

// ---------------------------------------------------------------------
// CPU split between the driver and the servers.

// driverLabels marks the driver's goroutines in CPU profiles; goroutines
// they start (the device transport's dial and persistConn read/write
// loops) inherit the label, while the servers' connection goroutines
// (started by net/http's accept loop) and everything they start (AS1's
// downstream transport to AS2) do not.
var driverLabels = pprof.Labels("side", "driver")

// cpuSplit is the measured window's CPU profile, split by label.
type cpuSplit struct {
	Samples   int     `json:"samples"`
	ProfileS  float64 `json:"profile_cpu_s"`
	DriverPct float64 `json:"driver_pct"`
	// RuntimeBackgroundPerFlowUS is the part of the server figure spent
	// in the runtime's own goroutines (GC mark workers, sweeper,
	// scavenger): unlabelled, so counted as server, though the driver's
	// garbage is collected there too.
	RuntimeBackgroundPerFlowUS float64 `json:"runtime_background_cpu_per_flow_us"`
	// PersistConns counts, at the window's end, the net/http client
	// connections' read loops by label: those of the device transport
	// must be "driver", those of AS1's downstream transport "server".
	PersistConnsDriver int    `json:"persist_conns_driver"`
	PersistConnsServer int    `json:"persist_conns_server"`
	Note               string `json:"note"`

	server, driver, hash, bg float64 // ns
}

// cpuProfile is a CPU profile running into memory over the window.
type cpuProfile struct {
	buf     bytes.Buffer
	running bool
}

// startCPUProfile starts a profile when wanted: for the split (unless
// -no-cpu-split) or for -cpuprofile. A profile someone else runs (go test
// -cpuprofile) leaves the split out.
func startCPUProfile(o options) (*cpuProfile, error) {
	p := &cpuProfile{}
	if o.noCPUSplit && o.cpuProfile == "" {
		return p, nil
	}
	if err := pprof.StartCPUProfile(&p.buf); err != nil {
		if o.cpuProfile != "" {
			return nil, err
		}
		return p, nil
	}
	p.running = true
	return p, nil
}

// stop ends the profile, writes -cpuprofile and splits the samples.
func (p *cpuProfile) stop(o options) (*cpuSplit, error) {
	if !p.running {
		return nil, nil
	}
	pprof.StopCPUProfile()
	p.running = false
	if o.cpuProfile != "" {
		if err := os.WriteFile(o.cpuProfile, p.buf.Bytes(), 0o644); err != nil {
			return nil, err
		}
	}
	if o.noCPUSplit {
		return nil, nil
	}
	prof, err := profile.Parse(bytes.NewReader(p.buf.Bytes()))
	if err != nil {
		return nil, fmt.Errorf("parse CPU profile: %w", err)
	}
	return splitCPU(prof), nil
}

var hashPackages = []string{"golang.org/x/crypto/bcrypt.", "golang.org/x/crypto/argon2.", "golang.org/x/crypto/scrypt."}

var runtimeBackground = map[string]bool{"runtime.gcBgMarkWorker": true, "runtime.bgsweep": true,
	"runtime.bgscavenge": true, "runtime._GC": true, "runtime._System": true, "runtime._ExternalCode": true}

func splitCPU(prof *profile.Profile) *cpuSplit {
	vi := len(prof.SampleType) - 1
	for i, st := range prof.SampleType {
		if st.Type == "cpu" {
			vi = i
		}
	}
	cs := &cpuSplit{Note: "servers = samples without the driver's pprof label: net/http server goroutines, what they start (AS1's downstream transport) and fedas's background goroutines, plus the runtime's background goroutines; password hash = server samples with a bcrypt/argon2/scrypt frame"}
	for _, s := range prof.Sample {
		if vi < 0 || vi >= len(s.Value) {
			continue
		}
		v := float64(s.Value[vi])
		cs.Samples++
		if slices.Contains(s.Label["side"], "driver") {
			cs.driver += v
			continue
		}
		cs.server += v
		hash, rbg := false, false
		for _, loc := range s.Location {
			for _, ln := range loc.Line {
				if ln.Function == nil {
					continue
				}
				name := ln.Function.Name
				rbg = rbg || runtimeBackground[name]
				for _, pkg := range hashPackages {
					hash = hash || strings.HasPrefix(name, pkg)
				}
			}
		}
		if hash {
			cs.hash += v
		}
		if rbg {
			cs.bg += v
		}
	}
	cs.ProfileS = (cs.server + cs.driver) / 1e9
	if t := cs.server + cs.driver; t > 0 {
		cs.DriverPct = 100 * cs.driver / t
	}
	return cs
}

// finish turns the split's sums into per-flow figures on res.
func (cs *cpuSplit) finish(res *result, total int) {
	if cs == nil || total <= 0 {
		return
	}
	per := func(ns float64) *float64 { v := ns / 1e3 / float64(total); return &v }
	res.ServerCPUPerFlowUS = per(cs.server)
	res.DriverCPUPerFlowUS = per(cs.driver)
	res.HashCPUPerFlowUS = per(cs.hash)
	res.ServerCPUExclHashUS = per(cs.server - cs.hash)
	cs.RuntimeBackgroundPerFlowUS = *per(cs.bg)
	res.CPUSplit = cs
}

// countPersistConns counts live net/http client connections (their read
// loops) by the driver label, from a goroutine profile.
func countPersistConns(cs *cpuSplit) {
	if cs == nil {
		return
	}
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 0); err != nil {
		return
	}
	prof, err := profile.Parse(&buf)
	if err != nil {
		return
	}
	for _, s := range prof.Sample {
		if !stackHas(s, "net/http.(*persistConn).readLoop") || len(s.Value) == 0 {
			continue
		}
		if slices.Contains(s.Label["side"], "driver") {
			cs.PersistConnsDriver += int(s.Value[0])
		} else {
			cs.PersistConnsServer += int(s.Value[0])
		}
	}
}

func stackHas(s *profile.Sample, fn string) bool {
	for _, loc := range s.Location {
		for _, ln := range loc.Line {
			if ln.Function != nil && ln.Function.Name == fn {
				return true
			}
		}
	}
	return false
}

// ---------------------------------------------------------------------
// RSS and progress.

// procStatus reads VmRSS and VmHWM (MB) from /proc/self/status; zeros
// where there is no /proc.
func procStatus() (rss, hwm float64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		kb, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		if k == "VmRSS" {
			rss = kb / 1024
		} else {
			hwm = kb / 1024
		}
	}
	return rss, hwm
}

type rssSample struct {
	AtS   float64 `json:"t_s"`
	RSSMB float64 `json:"rss_mb"`
	// HeapLiveMB is the heap the last GC found live (runtime/metrics
	// /gc/heap/live:bytes): what the process retains, which RSS hides
	// behind the runtime's own slack (freed spans not yet returned).
	HeapLiveMB float64 `json:"heap_live_mb"`
}

// heapLiveMB reads /gc/heap/live:bytes (no GC forced).
func heapLiveMB() float64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return float64(s[0].Value.Uint64()) / (1 << 20)
}

// monitor samples RSS every second over the window and prints the
// progress line on stderr.
type monitor struct {
	start time.Time
	col   *collector
	out   io.Writer // nil: quiet
	tty   bool

	mu      sync.Mutex
	rssMax  float64
	samples []rssSample

	stopc, done chan struct{}
}

// startMonitor starts the monitor; ticks nil means one a second (tests
// inject their own).
func startMonitor(o options, col *collector, start time.Time, ticks <-chan time.Time) *monitor {
	m := &monitor{start: start, col: col, stopc: make(chan struct{}), done: make(chan struct{})}
	if !o.quiet && o.progress != nil {
		m.out = o.progress
		if f, ok := o.progress.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				m.tty = true
			}
		}
	}
	rss, _ := procStatus()
	m.rssMax = rss
	m.samples = append(m.samples, rssSample{0, rss, heapLiveMB()})
	var t *time.Ticker
	if ticks == nil {
		t = time.NewTicker(time.Second)
		ticks = t.C
	}
	go m.loop(ticks, t)
	return m
}

func (m *monitor) loop(ticks <-chan time.Time, t *time.Ticker) {
	defer close(m.done)
	if t != nil {
		defer t.Stop()
	}
	var lastDone int64
	last := m.start
	for tick := 1; ; tick++ {
		select {
		case <-m.stopc:
			if m.out != nil && m.tty {
				fmt.Fprintln(m.out)
			}
			return
		case now := <-ticks:
			rss, _ := procStatus()
			m.mu.Lock()
			m.rssMax = max(m.rssMax, rss)
			if tick%10 == 0 {
				m.samples = append(m.samples, rssSample{math.Round(now.Sub(m.start).Seconds()), rss, heapLiveMB()})
			}
			m.mu.Unlock()
			done, failed := m.col.done.Load(), m.col.failed.Load()
			rate := float64(done+failed-lastDone) / now.Sub(last).Seconds()
			lastDone, last = done+failed, now
			if m.out == nil || (!m.tty && tick%5 != 0) {
				continue
			}
			p99 := m.col.hist.quantiles(0.99)[0]
			line := fmt.Sprintf("fedasbench  %6.0f s  %d flows  %d failed  %.0f flows/s  p99 %s  rss %.0f MB",
				now.Sub(m.start).Seconds(), done, failed, rate, ms(p99), rss)
			if m.tty {
				fmt.Fprintf(m.out, "\r%s\033[K", line)
			} else {
				fmt.Fprintln(m.out, line)
			}
		}
	}
}

// stop ends the monitor and fills the RSS figures.
func (m *monitor) stop(res *result, rssStart float64) {
	close(m.stopc)
	<-m.done
	rss, hwm := procStatus()
	m.mu.Lock()
	defer m.mu.Unlock()
	res.RSSStartMB, res.RSSEndMB = rssStart, rss
	res.RSSMaxMB = max(m.rssMax, rss, rssStart)
	// The kernel updates VmHWM lazily (per-thread RSS counters are
	// folded in now and then): a sample may exceed it.
	res.RSSHWMMB = max(hwm, res.RSSMaxMB)
	res.RSSSamples = append(m.samples, rssSample{math.Round(time.Since(m.start).Seconds()*10) / 10, rss, heapLiveMB()})
}

// ---------------------------------------------------------------------
// Open-loop pacing.

// paceFlow waits until flow i (1-based) may start under -rate: flow i starts
// at start + (i-1)/rate, whichever worker runs it. It returns false when
// that is past the deadline or ctx ends first.
func paceFlow(ctx context.Context, o options, i int64, start, deadline time.Time, t *time.Timer) bool {
	if o.rate <= 0 {
		return true
	}
	at := start.Add(time.Duration(float64(i-1) / o.rate * float64(time.Second)))
	if at.After(deadline) {
		return false
	}
	d := time.Until(at)
	if d <= 0 {
		return true
	}
	t.Reset(d)
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		if !t.Stop() {
			<-t.C
		}
		return false
	}
}

// ---------------------------------------------------------------------
// Redis: a self-started server, round trips per step, and the memory an
// auth session holds.

// selfRedis is a redis-server fedasbench started (-redis self).
type selfRedis struct {
	cmd  *exec.Cmd
	dir  string
	addr string
	done chan struct{}
}

func startSelfRedis() (*selfRedis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("-redis self: redis-server not found on PATH (install Redis ≥ 7, e.g. apt-get install redis-server, or pass -redis URL)")
	}
	var lastErr error
	for range 5 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		dir, err := os.MkdirTemp("", "fedasbench-redis-")
		if err != nil {
			return nil, err
		}
		r := &selfRedis{dir: dir, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), done: make(chan struct{})}
		r.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"), "--daemonize", "no")
		r.cmd.SysProcAttr = sysProcAttr()
		if err := r.cmd.Start(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("-redis self: start redis-server: %w", err)
		}
		go func() { _ = r.cmd.Wait(); close(r.done) }()
		if lastErr = r.waitReady(); lastErr == nil {
			return r, nil
		}
		r.stop()
	}
	return nil, fmt.Errorf("-redis self: redis-server did not start: %w", lastErr)
}

func (r *selfRedis) url() string { return "redis://" + r.addr + "/0" }

func (r *selfRedis) pid() int { return r.cmd.Process.Pid }

func (r *selfRedis) waitReady() error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte("PING\r\n"))
			b := make([]byte, 7)
			n, _ := io.ReadFull(c, b)
			c.Close()
			if string(b[:n]) == "+PONG\r\n" {
				return nil
			}
		}
		select {
		case <-r.done:
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			return fmt.Errorf("redis-server exited: %s", strings.TrimSpace(string(log)))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG from %s within 5 s (last error: %v)", r.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop terminates the server, waits for it and removes its directory.
func (r *selfRedis) stop() {
	_ = r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.done:
	case <-time.After(3 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	os.RemoveAll(r.dir)
}

// tapFlows is how many sequential flows tapRoundTrips runs.
const tapFlows = 20

// tapRoundTrips runs tapFlows flows one at a time after the window and
// attributes every Redis round trip to the request being served then:
// the device's request, or the downstream request AS1 made to AS2 inside
// it (counted for that step, not the device's). Round trips of
// background goroutines land in whatever step is current. Not for the
// reach scenario, whose flows overlap requests.
func (e *env) tapRoundTrips(ctx context.Context, w *worker) (map[string]float64, string) {
	ss := e.steps
	if w.reach != nil {
		return nil, "not measured: a reach flow's requests overlap"
	}
	ss.mu.Lock()
	for _, st := range ss.order {
		st.tapReqs.Store(0)
		st.tapRT.Store(0)
	}
	ss.mu.Unlock()
	ss.overlap.Store(false)
	ss.outside.Store(0)
	ss.tap.Store(true)
	for range tapFlows {
		fctx, cancel := context.WithTimeout(ctx, flowTimeout)
		err := w.flow(fctx)
		cancel()
		if err != nil {
			ss.tap.Store(false)
			return nil, "not measured: a flow failed: " + err.Error()
		}
	}
	ss.tap.Store(false)
	if ss.overlap.Load() {
		return nil, "not measured: requests overlapped within a flow"
	}
	out := map[string]float64{}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, st := range ss.order {
		if n := st.tapReqs.Load(); n > 0 {
			out[st.name] = float64(st.tapRT.Load()) / float64(n)
		}
	}
	note := fmt.Sprintf("%d sequential flows after the window; per request of each step", tapFlows)
	if n := ss.outside.Load(); n > 0 {
		note += fmt.Sprintf("; %.1f round trips per flow outside any request", float64(n)/tapFlows)
	}
	return out, note
}

// authSessions is how many auth sessions sessionMemory starts.
const authSessions = 200

// sessionMemory starts authSessions auth sessions on AS1 (initial native
// requests: the state held while the user types) and measures the keys
// they added (MEMORY USAGE, the session and any side key) and
// used_memory's growth.
func (e *env) sessionMemory(ctx context.Context, w *worker, rs *redisStats) error {
	st, ok := e.as1.store.(*redisstore.Store)
	if !ok {
		return nil
	}
	c := st.Client()
	match := st.Prefix() + "*"
	scan := func() (map[string]bool, error) {
		keys := map[string]bool{}
		var cursor uint64
		for range 100_000 {
			ks, next, err := c.Scan(ctx, cursor, match, 1000).Result()
			if err != nil {
				return nil, err
			}
			for _, k := range ks {
				keys[k] = true
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
		return keys, nil
	}
	usedMemory := func() (int64, error) {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
				return strconv.ParseInt(v, 10, 64)
			}
		}
		return 0, errors.New("INFO memory without used_memory")
	}
	before, err := scan()
	if err != nil {
		return err
	}
	used0, err := usedMemory()
	if err != nil {
		return err
	}
	for range authSessions {
		pk := sdk.NewPKCE()
		r, err := w.client.Post(ctx, e.meta.NativeEndpoint(), url.Values{"client_id": {"demo-app"}, "response_type": {"code"},
			"scope": {benchScope}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}})
		if err != nil {
			return err
		}
		if r.AuthSession == "" {
			return fmt.Errorf("initial request: %s without an auth_session", r.Error)
		}
	}
	used1, err := usedMemory()
	if err != nil {
		return err
	}
	after, err := scan()
	if err != nil {
		return err
	}
	var added []string
	for k := range after {
		if !before[k] {
			added = append(added, k)
		}
	}
	var bytesSum int64
	byKind := map[string]float64{}
	for _, k := range added {
		n, err := c.MemoryUsage(ctx, k, 0).Result()
		if err != nil {
			continue // expired meanwhile
		}
		bytesSum += n
		kind := strings.TrimPrefix(k, st.Prefix())
		if i := strings.IndexAny(kind, ":{"); i > 0 {
			kind = kind[:i]
		}
		byKind[kind] += float64(n) / authSessions
	}
	rs.AuthSessions = authSessions
	rs.BytesPerAuthSession = float64(bytesSum) / authSessions
	rs.KeysPerAuthSession = float64(len(added)) / authSessions
	rs.BytesPerAuthSessionByKind = byKind
	rs.UsedMemoryDeltaPerAuthSession = float64(used1-used0) / authSessions
	return nil
}

// redisVersionAt is INFO server's redis_version at url ("" when
// unreachable).
func redisVersionAt(ctx context.Context, u string) string {
	opt, err := redis.ParseURL(u)
	if err != nil {
		return ""
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := c.Info(ictx, "server").Result()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v
		}
	}
	return ""
}

// ---------------------------------------------------------------------
// The machine and the tree.

// machine describes where the numbers were measured.
type machine struct {
	CPUModel     string `json:"cpu_model"`
	NumCPU       int    `json:"num_cpu"`
	GOMAXPROCS   int    `json:"gomaxprocs"`
	GoVersion    string `json:"go_version"`
	OSArch       string `json:"os_arch"`
	RedisVersion string `json:"redis_version,omitempty"`
	// RedisPID is the redis-server fedasbench started (-redis self).
	RedisPID int `json:"redis_self_pid,omitempty"`
}

func describeMachine() machine {
	m := machine{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		OSArch: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// buildTree, when set at link time (-ldflags "-X main.buildTree=$(git
// describe --always --dirty)"), names the tree the binary was built from.
var buildTree string

// tree names the source the binary was built from: buildTree, else the
// VCS revision the Go toolchain stamped (absent with -buildvcs=false and
// with go run), else `git describe` of the working directory, marked as
// such.
func tree() string {
	if buildTree != "" {
		return buildTree
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if dirty {
				rev += "-dirty"
			}
			return rev
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty", "--tags").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out)) + " (git describe of the working directory)"
}

// ---------------------------------------------------------------------
// The text report's parts.

func (r *result) writeMachine(w io.Writer) {
	m := r.Machine
	line := fmt.Sprintf("machine     %s, %s", orUnknown(m.CPUModel), m.OSArch)
	if m.RedisVersion != "" {
		line += ", redis-server " + m.RedisVersion
	}
	fmt.Fprintf(w, "%s; tree %s\n", line, orUnknown(r.Tree))
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// writeSteps writes the per-step latency table.
func (r *result) writeSteps(w io.Writer) {
	if len(r.Steps) == 0 {
		return
	}
	width := len("step")
	for _, s := range r.Steps {
		width = max(width, len(s.Step))
	}
	fmt.Fprintf(w, "steps       %-*s  %-6s  %8s  %9s  %9s  %9s  %9s\n", width, "step", "timed", "count", "p50", "p95", "p99", "max")
	for _, s := range r.Steps {
		fmt.Fprintf(w, "            %-*s  %-6s  %8d  %9s  %9s  %9s  %9s\n", width, s.Step, s.Side, s.Count, ms(s.P50), ms(s.P95), ms(s.P99), ms(s.Max))
	}
}

// writeMeasures writes allocations, the CPU split and RSS.
func (r *result) writeMeasures(w io.Writer) {
	fmt.Fprintf(w, "allocs      %.0f allocations, %.1f KB per flow (whole process: servers + driver)\n", r.AllocsPerFlow, r.AllocBytesPerFlow/1024)
	if cs := r.CPUSplit; cs != nil && r.ServerCPUPerFlowUS != nil {
		fmt.Fprintf(w, "cpu split   servers %.0f µs/flow (password hash %.0f, the rest %.0f; runtime background %.0f of it), driver %.0f µs/flow (%.0f %%); %d profile samples, %.2f s; client connections: %d driver, %d server\n",
			*r.ServerCPUPerFlowUS, *r.HashCPUPerFlowUS, *r.ServerCPUExclHashUS, cs.RuntimeBackgroundPerFlowUS,
			*r.DriverCPUPerFlowUS, cs.DriverPct, cs.Samples, cs.ProfileS, cs.PersistConnsDriver, cs.PersistConnsServer)
	}
	fmt.Fprintf(w, "rss         %.0f MB at start → %.0f MB at end of the window (max %.0f MB; process peak %.0f MB incl. set-up)\n",
		r.RSSStartMB, r.RSSEndMB, r.RSSMaxMB, r.RSSHWMMB)
}

// writeMeasures writes the Redis memory per auth session and the round
// trips per step.
func (rs *redisStats) writeMeasures(w io.Writer) {
	switch {
	case rs.SessionMemoryError != "":
		fmt.Fprintf(w, "            auth session memory not measured: %s\n", rs.SessionMemoryError)
	case rs.AuthSessions > 0:
		fmt.Fprintf(w, "            a live auth session holds %.0f B in %.1f keys (MEMORY USAGE; %s), used_memory +%.0f B per session (%d sessions)\n",
			rs.BytesPerAuthSession, rs.KeysPerAuthSession, mixText(rs.BytesPerAuthSessionByKind), rs.UsedMemoryDeltaPerAuthSession, rs.AuthSessions)
	}
	if len(rs.RoundTripsPerStep) > 0 {
		fmt.Fprintf(w, "            round trips per request by step: %s (%s)\n", mixText(rs.RoundTripsPerStep), rs.RoundTripsPerStepNote)
	} else if rs.RoundTripsPerStepNote != "" {
		fmt.Fprintf(w, "            round trips per step %s\n", rs.RoundTripsPerStepNote)
	}
}

// writeHeapProfile writes the heap profile (after a GC, so in-use figures
// are live objects) to file; nothing without one.
func writeHeapProfile(file string) error {
	if file == "" {
		return nil
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
