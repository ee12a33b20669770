package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/storage/redistest"
)

// TestSmoke runs the scenarios of main.go (initial, federated, par; reach
// and scenarios.go's have tests of their own) for 20 flows at concurrency 2, on memory
// and on a real redis-server, through the command's own flag parsing and
// JSON output: no failures, exactly 20 flows. It is a smoke test, not a
// measurement.
func TestSmoke(t *testing.T) {
	rs := redistest.Start(t)
	for _, store := range []struct{ name, redis string }{{"memory", ""}, {"redis", rs.URL()}} {
		for _, sc := range scenarios {
			if sc == "reach" || isScenario(sc) {
				continue // TestReachSmoke, TestScenarios
			}
			t.Run(store.name+"/"+sc, func(t *testing.T) {
				args := []string{"-scenario", sc, "-n", "20", "-c", "2", "-d", "5s", "-json"}
				if store.redis != "" {
					args = append(args, "-redis", store.redis)
				}
				var out, errOut bytes.Buffer
				res, err := run(context.Background(), args, &out, &errOut)
				if err != nil {
					t.Fatalf("run: %v\n%s", err, errOut.String())
				}
				var got result
				if err := json.Unmarshal(out.Bytes(), &got); err != nil {
					t.Fatalf("JSON output: %v\n%s", err, out.String())
				}
				if got.Failures != 0 || res.Failures != 0 {
					t.Fatalf("%d failures: %v %v", got.Failures, got.FailuresByCode, got.ErrorSamples)
				}
				if got.Flows != 20 {
					t.Fatalf("flows = %d, want 20", got.Flows)
				}
				if got.Device.Requests < 20 || got.LatencyMS.P50 <= 0 || got.LatencyMS.Max < got.LatencyMS.P99 {
					t.Fatalf("implausible report: %+v", got)
				}
				if store.redis != "" && (got.Redis == nil || got.Redis.RoundTripsPerFlow < 1) {
					t.Fatalf("redis stats = %+v, want ≥ 1 round trip per flow", got.Redis)
				}
				if sc == "federated" {
					if got.Downstream == nil || got.Downstream.Requests != 40 {
						t.Fatalf("downstream requests = %+v, want 2 per flow", got.Downstream)
					}
				}
				if store.redis != "" {
					if n, err := rs.Do("DBSIZE"); err != nil || n != "0" {
						t.Fatalf("DBSIZE after the run = %q, %v: want the run's keys purged", n, err)
					}
				}
				var text bytes.Buffer
				res.writeText(&text)
				t.Logf("\n%s", text.String())
			})
		}
	}
}

// TestReachSmoke runs the reach scenario for 12 flows at concurrency 3,
// with each waiting poll (native, uq), on memory and on a real
// redis-server (two instances, one subscriber each): every flow completes, the report's distributions are those of
// 12 flows with positive latencies, the Redis part counts commands,
// PUBLISHes and bytes, and the run's keys are gone afterwards. A smoke
// test, not a measurement (docs/performance.md "Reach" has that).
func TestReachSmoke(t *testing.T) {
	rs := redistest.Start(t)
	for _, tc := range []struct {
		poll     string
		requests int64 // per flow
	}{{"native", 7}, {"uq", 6}} {
		for _, store := range []struct{ name, redis string }{{"memory", ""}, {"redis", rs.URL()}} {
			t.Run(tc.poll+"/"+store.name, func(t *testing.T) {
				reachSmoke(t, rs, store.redis, tc.poll, tc.requests)
			})
		}
	}
}

// reachSmoke is one TestReachSmoke run: poll on redisURL ("" memory).
func reachSmoke(t *testing.T, rs *redistest.Server, redisURL, poll string, perFlow int64) {
	args := []string{"-scenario", "reach", "-reach-poll", poll, "-n", "12", "-c", "3", "-d", "20s", "-json"}
	if redisURL != "" {
		args = append(args, "-redis", redisURL)
	}
	var out, errOut bytes.Buffer
	res, err := run(context.Background(), args, &out, &errOut)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	var got result
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, out.String())
	}
	if got.Failures != 0 || got.Flows != 12 {
		t.Fatalf("%d flows, %d failures: %v %v", got.Flows, got.Failures, got.FailuresByCode, got.ErrorSamples)
	}
	r := got.Reach
	if r == nil {
		t.Fatal("no reach report")
	}
	for name, l := range map[string]latency{"latency_ms": got.LatencyMS, "answer_sent_to_poll_ms": r.AnswerToPollMS,
		"answer_request_ms": r.AnswerMS, "flow_ms": r.FlowMS} {
		if l.P50 <= 0 || l.P99 < l.P50 || l.Max < l.P99 {
			t.Errorf("%s = %+v: want 0 < p50 ≤ p99 ≤ max", name, l)
		}
	}
	if got.LatencyMS != r.AnswerToPollMS || r.FlowMS.P50 < r.AnswerToPollMS.P50 {
		t.Errorf("inconsistent distributions: %+v vs %+v", got.LatencyMS, r)
	}
	// Per flow: initial, reach (native) or the question (uq), inbox,
	// task, ack, poll, answer.
	if got.Device.Requests != perFlow*12 || got.FlowsPerS <= 0 || r.Users != 3 || r.NativeClients+r.UQClients < 1 {
		t.Errorf("implausible report: %+v, %+v", got, r)
	}
	if redisURL != "" {
		if got.Redis == nil || got.Redis.CommandsPerFlow < 1 || got.Redis.NetInPerFlow <= 0 || got.Redis.NetOutPerFlow <= 0 ||
			got.Redis.CommandMix["publish"] < 1 {
			t.Errorf("redis stats = %+v, want commands, bytes and ≥ 1 PUBLISH per flow", got.Redis)
		}
		if n, err := rs.Do("DBSIZE"); err != nil || n != "0" {
			t.Errorf("DBSIZE after the run = %q, %v: want the run's keys purged", n, err)
		}
	}
	var text bytes.Buffer
	res.writeText(&text)
	t.Logf("\n%s", text.String())
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-scenario", "nope"}, {"-scenario", "reach", "-n", "50001"}, {"-rate", "-1"}, {"-reach-poll", "sse"}, {"-c", "0"}, {"-n", "0"}, {"-d", "0s"}, {"-bcrypt-cost", "3"}, {"extra"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%q: accepted", args)
		}
	}
	o, err := parseFlags(nil, io.Discard)
	if err != nil || o.concurrency != 8 || o.maxFlows != 2000 || o.duration.String() != "10s" || o.redisURL != "" {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
}

// TestFloodSmoke runs both abuse scenarios briefly at small rates on a
// real redis-server: the legitimate traffic succeeds, the attack is
// answered, and every key the run left has a TTL. A smoke test, not the
// measurement (BENCHMARKS.md has that).
func TestFloodSmoke(t *testing.T) {
	rs := redistest.Start(t)
	for _, sc := range floodScenarios {
		t.Run(sc, func(t *testing.T) {
			args := []string{"-scenario", sc, "-c", "2", "-d", "1s", "-attack-rate", "40", "-legit-rate", "5", "-bcrypt-cost", "4", "-json", "-redis", rs.URL()}
			var out, errOut bytes.Buffer
			res, err := run(context.Background(), args, &out, &errOut)
			if err != nil {
				t.Fatalf("run: %v\n%s", err, errOut.String())
			}
			f := res.Flood
			if f == nil || f.AttackSent == 0 || len(f.AttackByStatus) == 0 {
				t.Fatalf("no attack report: %+v", f)
			}
			if f.Legit.Succeeded == 0 || f.Legit.SuccessPct < 100 {
				t.Fatalf("legitimate traffic: %+v", f.Legit)
			}
			if sc == "flood-passwords" && (f.Baseline == nil || f.Baseline.Succeeded == 0) {
				t.Fatalf("no baseline phase: %+v", f.Baseline)
			}
			if f.Redis == nil || f.Redis.KeysAfter == 0 || f.Redis.KeysWithoutTTL != 0 {
				t.Fatalf("redis keys: %+v, want keys, every one with a TTL", f.Redis)
			}
			var text bytes.Buffer
			res.writeText(&text)
			t.Logf("\n%s", text.String())
		})
	}
}

// runQuietJSON runs fedasbench -quiet with args and decodes its -json report; the
// run must not fail.
func runQuietJSON(t testing.TB, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	if _, err := run(context.Background(), append(args, "-json", "-quiet"), &out, &errOut); err != nil {
		t.Fatalf("run %q: %v\n%s", args, err, errOut.String())
	}
	if errOut.Len() > 0 {
		t.Errorf("-quiet run wrote on stderr: %q", errOut.String())
	}
	var got result
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, out.String())
	}
	if got.Failures != 0 {
		t.Fatalf("%d failures: %v %v", got.Failures, got.FailuresByCode, got.ErrorSamples)
	}
	return got
}

// TestMeasures runs the scenarios for 6 flows and checks the measurements
// measure.go adds: the steps each scenario's flow takes, in order, with
// their exact request counts and ordered percentiles; allocations, RSS,
// the CPU split (present and non-negative: no timing is asserted) and
// the labels it relies on — every device connection carries the driver
// label, AS1's downstream connections to AS2 do not; the machine.
func TestMeasures(t *testing.T) {
	type step struct {
		name    string
		perFlow int64
	}
	for _, tc := range []struct {
		scenario string
		extra    []string
		steps    []step
		// downstream: AS1 has client connections of its own (to AS2).
		downstream bool
	}{
		{"initial", nil, []step{{"as1 native", 1}}, false},
		{"initial", []string{"-rate", "500"}, []step{{"as1 native", 1}}, false},
		{"local", nil, []step{{"as1 native", 3}, {"as1 token", 1}}, false}, // password, then TOTP
		{"local-password", nil, []step{{"as1 native", 2}, {"as1 token", 1}}, false},
		{"federated", nil, []step{{"as1 native", 2}, {"as2 par", 1}, {"as2 native", 2}, {"as1 response_uri", 1}, {"as2 token", 1}, {"as1 token", 1}}, true},
		{"three-hop", nil, []step{{"as1 native", 2}, {"as2 par", 1}, {"as2 native", 1}, {"as3 native", 2}, {"as2 response_uri", 1},
			{"as1 response_uri", 1}, {"as2 token", 1}, {"as1 token", 1}}, true},
		{"par", nil, []step{{"as1 par", 1}}, false},
	} {
		t.Run(strings.Join(append([]string{tc.scenario}, tc.extra...), " "), func(t *testing.T) {
			if !tc.downstream {
				waitNoServerConns(t)
			}
			extra := tc.extra
			prof := filepath.Join(t.TempDir(), "cpu.pprof")
			if extra != nil { // and -cpuprofile: the window's profile goes to the file as well
				extra = append(slices.Clone(extra), "-cpuprofile", prof)
			}
			got := runQuietJSON(t, append([]string{"-scenario", tc.scenario, "-c", "2", "-n", "6", "-d", "10s"}, extra...)...)
			if extra != nil {
				f, err := os.Open(prof)
				if err != nil {
					t.Fatal(err)
				}
				p, err := profile.Parse(f)
				f.Close()
				if err != nil || len(p.SampleType) == 0 {
					t.Errorf("-cpuprofile file: %v, %v", p, err)
				}
			}
			if got.Flows != 6 {
				t.Fatalf("flows = %d, want 6", got.Flows)
			}
			var names []string
			for _, s := range got.Steps {
				names = append(names, s.Step)
			}
			want := make([]string, len(tc.steps))
			for i, s := range tc.steps {
				want[i] = s.name
			}
			if !slices.Equal(names, want) {
				t.Fatalf("steps = %q, want %q", names, want)
			}
			for i, s := range got.Steps {
				if s.Count != 6*tc.steps[i].perFlow || s.P50 <= 0 || s.P95 < s.P50 || s.P99 < s.P95 || s.Max < s.P99 || s.Mean <= 0 {
					t.Errorf("step %+v: want %d requests and 0 < p50 ≤ p95 ≤ p99 ≤ max", s, 6*tc.steps[i].perFlow)
				}
				if wantSide := map[bool]string{true: "server", false: "device"}[s.Step == "as2 par" || s.Step == "as2 token"]; s.Side != wantSide {
					t.Errorf("step %q timed by %q, want %q", s.Step, s.Side, wantSide)
				}
			}
			if l := got.LatencyMS; l.P95 < l.P90 || l.P99 < l.P95 {
				t.Errorf("latency %+v: want p90 ≤ p95 ≤ p99", l)
			}
			if got.ErrorsByKind == nil || len(got.ErrorsByKind) != 0 {
				t.Errorf("errors_by_kind = %v, want present and empty", got.ErrorsByKind)
			}
			if got.AllocsPerFlow <= 0 || got.AllocBytesPerFlow <= got.AllocsPerFlow {
				t.Errorf("allocs per flow %v, bytes %v", got.AllocsPerFlow, got.AllocBytesPerFlow)
			}
			if got.RSSStartMB <= 0 || got.RSSEndMB <= 0 || got.RSSMaxMB < max(got.RSSStartMB, got.RSSEndMB) ||
				got.RSSHWMMB < got.RSSMaxMB || len(got.RSSSamples) == 0 {
				t.Errorf("rss: start %v end %v max %v hwm %v samples %v", got.RSSStartMB, got.RSSEndMB, got.RSSMaxMB, got.RSSHWMMB, got.RSSSamples)
			}
			for name, v := range map[string]*float64{"server": got.ServerCPUPerFlowUS, "driver": got.DriverCPUPerFlowUS,
				"hash": got.HashCPUPerFlowUS, "server excl. hash": got.ServerCPUExclHashUS} {
				if v == nil || *v < 0 {
					t.Errorf("%s CPU per flow = %v, want present and ≥ 0", name, v)
				}
			}
			cs := got.CPUSplit
			if cs == nil || cs.Samples < 0 || cs.RuntimeBackgroundPerFlowUS < 0 {
				t.Fatalf("cpu_split = %+v", cs)
			}
			if cs.PersistConnsDriver < 1 || (cs.PersistConnsServer > 0) != tc.downstream {
				t.Errorf("client connections by label: %d driver, %d server; want ≥ 1 driver and server ones only when AS1 federates (%v)",
					cs.PersistConnsDriver, cs.PersistConnsServer, tc.downstream)
			}
			if m := got.Machine; m.GoVersion == "" || m.NumCPU < 1 || m.OSArch == "" || m.RedisVersion != "" {
				t.Errorf("machine = %+v", m)
			}
			if tc.extra != nil && got.Rate != 500 {
				t.Errorf("rate = %v, want 500", got.Rate)
			}
		})
	}
}

// waitNoServerConns waits until no unlabelled client connection is left
// from an earlier run in this process (AS1's connections to a stopped AS2
// end once their read loops see the close), so that a run's count is its
// own.
func waitNoServerConns(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var cs cpuSplit
		countPersistConns(&cs)
		if cs.PersistConnsServer == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d unlabelled client connections left from earlier runs", cs.PersistConnsServer)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSelfRedis runs -redis self once: the report names the server it
// started, measures the Redis memory of live auth sessions and the round
// trips of each step, and the redis-server is gone afterwards.
func TestSelfRedis(t *testing.T) {
	got := runQuietJSON(t, "-scenario", "federated", "-c", "2", "-n", "6", "-d", "10s", "-redis", "self")
	rs := got.Redis
	if rs == nil {
		t.Fatal("no redis report")
	}
	if rs.SessionMemoryError != "" || rs.AuthSessions != authSessions || rs.BytesPerAuthSession <= 0 ||
		rs.KeysPerAuthSession < 1 || rs.BytesPerAuthSessionByKind["as"] <= 0 {
		t.Errorf("auth session memory: %+v", rs)
	}
	for _, s := range []string{"as1 native", "as2 par", "as2 native", "as1 response_uri", "as2 token", "as1 token"} {
		if v, ok := rs.RoundTripsPerStep[s]; !ok || v < 0 {
			t.Errorf("round trips per step %v (%s): no %q", rs.RoundTripsPerStep, rs.RoundTripsPerStepNote, s)
		}
	}
	if rs.RoundTripsPerStep["as1 token"] < 1 {
		t.Errorf("round trips per step %v: the token exchange makes none", rs.RoundTripsPerStep)
	}
	m := got.Machine
	if m.RedisVersion == "" || m.RedisPID <= 0 || !strings.HasPrefix(got.Store, "redis self") {
		t.Fatalf("store %q, machine %+v", got.Store, m)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", m.RedisPID)); err == nil && strings.Contains(string(b), "redis-server") {
		t.Errorf("redis-server (pid %d) still running after the run", m.RedisPID)
	}
}

// TestProgress drives the progress line with injected ticks: off a
// terminal, one line every 5 ticks, on the writer given (stderr), never
// with a carriage return; -quiet writes nothing.
func TestProgress(t *testing.T) {
	for _, quiet := range []bool{false, true} {
		var buf bytes.Buffer
		col := &collector{failures: map[string]int{}}
		col.add(3*time.Millisecond, nil)
		col.add(0, errors.New("x"))
		ticks := make(chan time.Time)
		start := time.Now()
		m := startMonitor(options{progress: &buf, quiet: quiet}, col, start, ticks)
		for i := 1; i <= 10; i++ {
			ticks <- start.Add(time.Duration(i) * time.Second)
		}
		var res result
		m.stop(&res, 1)
		lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		switch {
		case quiet && buf.Len() != 0:
			t.Errorf("-quiet wrote %q", buf.String())
		case !quiet && (len(lines) != 2 || !strings.Contains(lines[0], "1 flows  1 failed") || strings.Contains(buf.String(), "\r")):
			t.Errorf("progress = %q, want 2 lines with the counts", buf.String())
		}
		if len(res.RSSSamples) != 3 || res.RSSSamples[1].AtS != 10 || res.RSSStartMB != 1 {
			t.Errorf("rss samples %+v, start %v: want t=0, t=10 s and the end", res.RSSSamples, res.RSSStartMB)
		}
	}
}

// TestHist checks the histogram's quantiles against exact ones within
// its resolution, and errorsByKind's folding.
func TestHist(t *testing.T) {
	var h hist
	var lat []time.Duration
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i*i) * time.Microsecond
		h.record(d)
		lat = append(lat, d)
	}
	exact := percentiles(lat)
	q := h.quantiles(0.5, 0.95, 0.99, 1)
	for i, want := range []float64{exact.P50, exact.P95, exact.P99, exact.Max} {
		if q[i] < want*0.98 || q[i] > want*1.02 {
			t.Errorf("quantile %d = %v, want %v ± 2 %%", i, q[i], want)
		}
	}
	got := errorsByKind(map[string]int{"as1 native: invalid_request": 2, "as2 native: invalid_request": 1, "as1 token: timeout": 4, "unexpected": 1})
	if want := map[string]int{"invalid_request": 3, "timeout": 4, "unexpected": 1}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("errorsByKind = %v, want %v", got, want)
	}
}

// TestStepTimingAllocs: timing a request by step allocates nothing, on
// the device side (tracingRT) and on AS2's listener (countingConn), so
// that allocs_per_flow measures fedas, not the measurement.
func TestStepTimingAllocs(t *testing.T) {
	ss := &stepSet{hosts: map[string]string{"as1.test": "as1"}, by: map[stepKey]*stepStat{}}
	ss.on.Store(true)
	rt := &tracingRT{base: okRT{}}
	req, err := http.NewRequest(http.MethodPost, "http://as1.test"+server.PathNative, nil)
	if err != nil {
		t.Fatal(err)
	}
	off := testing.AllocsPerRun(100, func() { _, _ = rt.RoundTrip(req) })
	rt.steps.Store(ss)
	on := testing.AllocsPerRun(100, func() { _, _ = rt.RoundTrip(req) })
	if on > off {
		t.Errorf("device side: %.0f allocations per request timed, %.0f untimed", on, off)
	}

	d := &downstreamCounter{}
	c := &countingConn{Conn: nopConn{}, d: d, first: true, collecting: true}
	reqLine := []byte("POST /oauth2/par HTTP/1.1\r\nHost: as2\r\n\r\n")
	serve := func() {
		_, _ = c.Read(reqLine)
		_, _ = c.Write(reqLine)
	}
	serve()
	off = testing.AllocsPerRun(100, serve)
	d.steps.Store(ss)
	on = testing.AllocsPerRun(100, serve)
	if on > off {
		t.Errorf("server side: %.0f allocations per request timed, %.0f untimed", on, off)
	}
	if got := ss.report(); len(got) != 2 || got[0].Step != "as1 native" || got[1].Step != "as2 par" || got[1].Side != "server" || got[1].Count != 101 {
		t.Errorf("steps = %+v", got)
	}
}

type okRT struct{}

var okResp = &http.Response{StatusCode: http.StatusOK}

func (okRT) RoundTrip(*http.Request) (*http.Response, error) { return okResp, nil }

// nopConn reads a request's bytes as given (Read copies nothing: the
// caller's buffer already holds them) and swallows writes.
type nopConn struct{ net.Conn }

func (nopConn) Read(p []byte) (int, error)  { return len(p), nil }
func (nopConn) Write(p []byte) (int, error) { return len(p), nil }
