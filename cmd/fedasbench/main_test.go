package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"

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
		{"-scenario", "nope"}, {"-scenario", "reach", "-n", "50001"}, {"-reach-poll", "sse"}, {"-c", "0"}, {"-n", "0"}, {"-d", "0s"}, {"-bcrypt-cost", "3"}, {"extra"},
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
