package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/storage/redistest"
)

// scenarioCase is one scenario's smoke expectations per flow: the
// requests the device sends (the wallet's and the bank app's included;
// 0: not checked), and those AS1 sends AS2 (0: no downstream counter).
type scenarioCase struct {
	scenario   string
	device     int64
	downstream int64
}

var scenarioCases = []scenarioCase{
	{"initial", 1, 0},
	// initial, password, otp, token.
	{"local", 4, 0},
	// initial, password, token.
	{"local-password", 3, 0},
	// AS1 initial, email; AS2 native, password; AS1 response_uri; token.
	{"federated", 6, 2},
	// AS1 initial, email; AS2 native; AS3 native, password; AS2
	// response_uri; AS1 response_uri; token. AS1 → AS2: PAR and token.
	{"three-hop", 8, 2},
	// AS1 initial, email; AS2 native; the app's completion; AS1
	// response_uri; token.
	{"app2app", 6, 2},
	{"par", 1, 0},
	{"refresh", 1, 0},
	// initial; the wallet's request fetch and response post; the poll;
	// token.
	{"wallet", 5, 0},
	// initial, reach, inbox, task, ack, poll, answer (reach.go).
	{"reach", 7, 0},
}

// TestScenarios runs every scenario of the list for 6 flows at
// concurrency 2 on memory, and those of scenarios.go on a real
// redis-server too, through the command's flag parsing and JSON output:
// no failures, exactly 6 flows, the requests each flow is made of (for the
// scenarios scenarioCases knows), a users note, and (Redis) round trips
// counted and every key of the run purged. A smoke test, not a
// measurement.
func TestScenarios(t *testing.T) {
	for _, c := range scenarioCases {
		if !slices.Contains(scenarios, c.scenario) {
			t.Fatalf("scenario case %q is no scenario", c.scenario)
		}
	}
	rs := redistest.Start(t)
	for _, store := range []struct{ name, redis string }{{"memory", ""}, {"redis", rs.URL()}} {
		for _, sc := range scenarios {
			if store.redis != "" && !isScenario(sc) {
				continue // TestSmoke, TestReachSmoke
			}
			tc := scenarioCase{scenario: sc}
			if i := slices.IndexFunc(scenarioCases, func(c scenarioCase) bool { return c.scenario == sc }); i >= 0 {
				tc = scenarioCases[i]
			}
			t.Run(store.name+"/"+tc.scenario, func(t *testing.T) {
				scenarioSmoke(t, rs, store.redis, tc)
			})
		}
	}
}

func scenarioSmoke(t *testing.T, rs *redistest.Server, redisURL string, tc scenarioCase) {
	const n = 6
	args := []string{"-scenario", tc.scenario, "-n", "6", "-c", "2", "-d", "20s", "-json"}
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
	if got.Failures != 0 || res.Failures != 0 || got.Flows != n {
		t.Fatalf("%d flows, %d failures: %v %v", got.Flows, got.Failures, got.FailuresByCode, got.ErrorSamples)
	}
	if got.Scenario != tc.scenario || got.UsersNote == "" || got.LatencyMS.P50 <= 0 || got.LatencyMS.Max < got.LatencyMS.P99 {
		t.Fatalf("implausible report: %+v", got)
	}
	if tc.device > 0 && got.Device.Requests != tc.device*n {
		t.Errorf("device requests = %d, want %d per flow", got.Device.Requests, tc.device)
	}
	switch {
	case tc.device == 0:
	case tc.downstream == 0 && got.Downstream != nil:
		t.Errorf("downstream requests = %+v, want none counted", got.Downstream)
	case tc.downstream > 0 && (got.Downstream == nil || got.Downstream.Requests != tc.downstream*n):
		t.Errorf("downstream requests = %+v, want %d per flow", got.Downstream, tc.downstream)
	}
	if redisURL != "" {
		if got.Redis == nil || got.Redis.RoundTripsPerFlow < 1 {
			t.Errorf("redis stats = %+v, want ≥ 1 round trip per flow", got.Redis)
		}
		if k, err := rs.Do("DBSIZE"); err != nil || k != "0" {
			t.Errorf("DBSIZE after the run = %q, %v: want the run's keys purged", k, err)
		}
	}
	var text bytes.Buffer
	res.writeText(&text)
	t.Logf("\n%s", text.String())
}

// TestOTPPool: the local scenario's pool never hands out a (user, time
// step) twice, offers each user's current and next step (the ±1 window
// of RFC 6238 §5.2 covers both while a flow runs), and is exhausted
// rather than repeat one.
func TestOTPPool(t *testing.T) {
	p, err := newOTPPool(2)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(3000*30+5, 0)
	type pick struct {
		user string
		step int64
	}
	var got []pick
	for range 4 {
		u, s, ok := p.take(now)
		if !ok {
			t.Fatalf("exhausted after %v", got)
		}
		got = append(got, pick{u, s})
	}
	want := []pick{{"bench-otp-0", 3000}, {"bench-otp-1", 3000}, {"bench-otp-0", 3001}, {"bench-otp-1", 3001}}
	if !slices.Equal(got, want) {
		t.Fatalf("picks %v, want %v", got, want)
	}
	if u, s, ok := p.take(now); ok {
		t.Fatalf("a fifth pick in one step: %s %d", u, s)
	}
	if u, s, ok := p.take(now.Add(30 * time.Second)); !ok || s != 3002 {
		t.Fatalf("next step: %s %d %v, want step 3002", u, s, ok)
	}
}

// TestStepNames: failures are keyed by the step that failed: AS3's
// endpoints by name, a hook's failure by the hook's step, AS1's and
// AS2's as main.go names them.
func TestStepNames(t *testing.T) {
	e := &env{as1: &instance{url: "http://127.0.0.1:1"}, as2: &instance{url: "http://127.0.0.1:2"}}
	scenStates.Store(e, &scenState{as3: &instance{url: "http://127.0.0.1:3"}})
	t.Cleanup(func() { scenStates.Delete(e) })
	w := &worker{e: e}
	sdkErr := func(from, code string) error {
		return &sdk.Err{Response: sdk.Response{From: from, Error: code, Status: 400}}
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{sdkErr("http://127.0.0.1:3/native/authorize", "access_denied"), "as3 native: access_denied"},
		{sdkErr("http://127.0.0.1:3/native/response/x", "invalid_request"), "as3 response_uri: invalid_request"},
		{sdkErr("http://127.0.0.1:2/native/authorize", "invalid_request"), "as2 native: invalid_request"},
		{sdkErr("http://127.0.0.1:1/native/response/y", "invalid_grant"), "as1 response_uri: invalid_grant"},
		{&stepError{"wallet post", errors.New("HTTP 400")}, "wallet post: unexpected"},
		{&stepError{"as2 app complete", sdkErr("", "invalid_token")}, "as2 app complete: invalid_token"},
		{errors.New("boom"), "authorize: unexpected"},
	} {
		var fe *flowError
		if err := w.sfail("authorize", tc.err); !errors.As(err, &fe) || fe.key != tc.want {
			t.Errorf("sfail(%v) = %v, want key %q", tc.err, err, tc.want)
		}
	}
}
