package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"slices"
	"testing"
)

// runJSON runs fedasbench with args (and -json) and decodes its report.
func runJSON(tb testing.TB, args ...string) result {
	tb.Helper()
	var out, errOut bytes.Buffer
	res, err := run(context.Background(), append(args, "-json"), &out, &errOut)
	if err != nil {
		tb.Fatalf("run %q: %v\n%s", args, err, errOut.String())
	}
	var got result
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		tb.Fatalf("JSON output: %v\n%s", err, out.String())
	}
	var text bytes.Buffer
	res.writeText(&text)
	tb.Logf("\n%s", text.String())
	return got
}

// checkPeerRun asserts a run of n flows without failures, with the
// client authentication auth and one row per peer, in order, each with
// n flows, no failures, a positive rate, latency and ratio.
func checkPeerRun(tb testing.TB, got result, n int, auth string, peers []string) {
	tb.Helper()
	if got.Failures != 0 || got.Flows != n {
		tb.Fatalf("fedas: %d flows, %d failures: %v %v", got.Flows, got.Failures, got.FailuresByCode, got.ErrorSamples)
	}
	if got.Auth != auth || got.LatencyMS.P50 <= 0 || got.Device.Requests != int64(n) {
		tb.Fatalf("fedas report: auth %q, latency %+v, %d requests (want %q, > 0, %d)", got.Auth, got.LatencyMS, got.Device.Requests, auth, n)
	}
	if len(got.Peers) != len(peers) {
		tb.Fatalf("%d peer rows, want %d: %+v", len(got.Peers), len(peers), got.Peers)
	}
	for i, p := range got.Peers {
		if p.Name != peers[i] || p.Version == "" {
			tb.Errorf("peer %d = %q (%q), want %q with a version", i, p.Name, p.Version, peers[i])
		}
		if p.Flows != n || p.Failures != 0 || p.FlowsPerS <= 0 || p.LatencyMS.P50 <= 0 || p.LatencyMS.Max < p.LatencyMS.P50 {
			tb.Errorf("peer %s: %d flows, %d failures %v %v, %.1f flows/s, latency %+v", p.Name, p.Flows, p.Failures,
				p.FailuresByCode, p.ErrorSamples, p.FlowsPerS, p.LatencyMS)
		}
		if want := got.FlowsPerS / p.FlowsPerS; p.Ratio <= 0 || p.Ratio < want*0.999 || p.Ratio > want*1.001 {
			tb.Errorf("peer %s: ratio %.3f, want fedas/peer = %.3f", p.Name, p.Ratio, want)
		}
	}
}

// TestTokenAndPeerSmoke runs the token scenario (with and without an ID
// token, each client authentication) and the par scenario with
// private_key_jwt, at -c 2 -n 6 on memory, with the in-process peers echo
// and fosite: fedas and every peer complete all 6 flows without a failure
// (a token response's ID token must be there exactly when openid was
// asked for), the token report counts the minted codes, and each peer has
// its row. A smoke test, not a measurement.
func TestTokenAndPeerSmoke(t *testing.T) {
	const n = 6
	for _, tc := range []struct {
		name, scenario, auth string
		openid               bool
		peers                []string
	}{
		{"token/openid/basic", "token", authBasic, true, nil},
		{"token/no-openid/basic/peers", "token", authBasic, false, []string{"echo", "fosite"}},
		{"token/openid/private_key_jwt/peers", "token", authJWT, true, []string{"fosite", "echo"}},
		{"par/private_key_jwt/peers", "par", authJWT, true, []string{"echo", "fosite"}},
		{"par/basic/fosite", "par", authBasic, true, []string{"fosite"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"-scenario", tc.scenario, "-auth", tc.auth, "-c", "2", "-n", "6", "-d", "10s"}
			if !tc.openid {
				args = append(args, "-token-openid=false")
			}
			for _, p := range tc.peers {
				args = append(args, "-peer", p)
			}
			got := runJSON(t, args...)
			checkPeerRun(t, got, n, tc.auth, tc.peers)
			if tc.scenario != "token" {
				if got.Token != nil {
					t.Errorf("par run with a token report: %+v", got.Token)
				}
				return
			}
			tk := got.Token
			if tk == nil || tk.IDToken != tc.openid || tk.Scope != tokenScope(tc.openid) || tk.CodesMinted != n+1+2 || got.Users != 2 {
				t.Errorf("token report = %+v (users %d), want ID token %t, %d codes, 2 users", tk, got.Users, tc.openid, n+3)
			}
		})
	}
}

// TestOIDCProviderPeer runs the oidc-provider peer (npm install into a
// cached temporary folder, then a node child process) for the par
// scenario with client_secret_basic and the token scenario with
// private_key_jwt. It is a benchmark peer, not behaviour of fedas, and
// its first run downloads from the npm registry: it runs only with
// FEDASBENCH_PEER_TEST=1.
func TestOIDCProviderPeer(t *testing.T) {
	if os.Getenv("FEDASBENCH_PEER_TEST") != "1" {
		t.Skip("the oidc-provider benchmark peer runs with FEDASBENCH_PEER_TEST=1 (npm install, node)")
	}
	for _, tc := range []struct{ scenario, auth string }{{"par", authBasic}, {"token", authJWT}} {
		t.Run(tc.scenario+"/"+tc.auth, func(t *testing.T) {
			got := runJSON(t, "-scenario", tc.scenario, "-auth", tc.auth, "-c", "2", "-n", "6", "-d", "20s", "-peer", "oidc-provider")
			checkPeerRun(t, got, 6, tc.auth, []string{"oidc-provider"})
			if p := got.Peers[0]; p.CPUPerFlowUS <= 0 {
				t.Errorf("oidc-provider CPU per flow = %.0f µs, want > 0 (the node process's CPU counts)", p.CPUPerFlowUS)
			}
		})
	}
}

// TestPeerFlags: the new flags' refusals and defaults.
func TestPeerFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-scenario", "par", "-auth", "client_secret_post"},
		{"-scenario", "par", "-peer", "nope"},
		{"-scenario", "local", "-peer", "echo"},
		{"-scenario", "token", "-n", "50001"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%q: accepted", args)
		}
	}
	o, err := parseFlags([]string{"-scenario", "token", "-peer", "echo,fosite", "-peer", "echo"}, io.Discard)
	if err != nil || o.auth != authBasic || !o.tokenOpenID || !slices.Equal(o.peers, []string{"echo", "fosite"}) {
		t.Fatalf("parseFlags = %+v, %v: want client_secret_basic, openid, peers [echo fosite]", o, err)
	}
}
