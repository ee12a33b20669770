package main

// -peer: the same load (same -c, -n, -d, the same client and client
// authentication, the same request parameters, the same tuned HTTP
// client) against another server right after fedas's run, for a ratio
// fedas/peer that a wall clock shared with other processes cannot give
// on its own. The peers:
//
//	echo           a minimal echo v4 handler in this process (peer_echo.go):
//	               it parses the form, authenticates the client and
//	               answers; the floor of what any PAR or token endpoint
//	               costs on this stack
//	fosite         a bare ory/fosite in this process (peer_fosite.go) with
//	               its MemoryStore: the library fedas builds on, without
//	               fedas's policy, storage, events and hardening
//	oidc-provider  panva's node oidc-provider in a node child process
//	               (peer_oidc.go, internal/oidcprovider), installed with
//	               npm into a cached folder
//
// Each peer gets 1 + c uncounted warm-up flows like fedas. Its CPU per
// flow is this process's CPU (the driver, and the peer when it runs in
// process) plus the node process's for oidc-provider.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fedas/fedas/sdk"
)

// peerKind is one kind of peer: the scenarios it serves and how to start
// it.
type peerKind struct {
	scenarios []string
	start     func(ctx context.Context, ps *peerSetup) (*peerServer, error)
}

var peerKinds = map[string]peerKind{
	"echo":          {scenarios: []string{"par", "token"}, start: startEchoPeer},
	"fosite":        {scenarios: []string{"par", "token"}, start: startFositePeer},
	"oidc-provider": {scenarios: []string{"par", "token"}, start: startOIDCProviderPeer},
}

// peerSetup is what a peer is configured with: fedas's client, its
// credentials and, for the token scenario, how many codes to mint and
// with which scope.
type peerSetup struct {
	o      options
	creds  *clientCreds
	openid bool
	scope  string
	codes  int
}

// peerServer is a running peer.
type peerServer struct {
	issuer                     string
	parEndpoint, tokenEndpoint string
	// codes are the token scenario's minted codes.
	codes chan mintedCode
	// version and note describe the peer in the report.
	version, note string
	// pid is a child process whose CPU counts (0: in this process).
	pid  int
	stop func()
}

// peerResult is one peer's line of the report.
type peerResult struct {
	Name           string         `json:"name"`
	Version        string         `json:"version"`
	Flows          int            `json:"flows"`
	FlowsPerS      float64        `json:"flows_per_s"`
	LatencyMS      latency        `json:"latency_ms"`
	Failures       int            `json:"failures"`
	FailuresByCode map[string]int `json:"failures_by_code,omitempty"`
	ErrorSamples   []string       `json:"error_samples,omitempty"`
	ElapsedS       float64        `json:"elapsed_s"`
	// CPUPerFlowUS is this process's CPU (driver, and an in-process peer)
	// plus a child peer's, per flow.
	CPUPerFlowUS float64 `json:"cpu_per_flow_us"`
	// Ratio is fedas's flows/s divided by the peer's; CPURatio fedas's
	// CPU per flow divided by the peer's (both with the driver's: on a
	// machine shared with other work, the steadier of the two).
	Ratio    float64 `json:"ratio"`
	CPURatio float64 `json:"cpu_ratio"`
	Note     string  `json:"note"`
}

func peerFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.auth, "auth", authBasic, "par and token scenarios: the client's authentication, client_secret_basic or private_key_jwt (ES256, a fresh assertion per request)")
	fs.BoolVar(&o.tokenOpenID, "token-openid", true, "token scenario: scope openid (an ES256 ID token); false: scope profile, no ID token")
	fs.Func("peer", "par and token scenarios: run the same load against peers after fedas, a comma list of echo, fosite, oidc-provider (npm install, cached)", func(s string) error {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" && !slices.Contains(o.peers, p) {
				o.peers = append(o.peers, p)
			}
		}
		return nil
	})
}

func checkPeerFlags(o options) error {
	if !slices.Contains(authMethods, o.auth) {
		return fmt.Errorf("-auth must be one of %s", strings.Join(authMethods, ", "))
	}
	if o.scenario == "token" && o.maxFlows > tokenMaxFlows {
		return errTokenFlows
	}
	for _, p := range o.peers {
		k, ok := peerKinds[p]
		switch {
		case !ok:
			return fmt.Errorf("unknown -peer %q (echo, fosite, oidc-provider)", p)
		case !slices.Contains(k.scenarios, o.scenario):
			return fmt.Errorf("-peer %s does not serve -scenario %s (only %s)", p, o.scenario, strings.Join(k.scenarios, ", "))
		}
	}
	return nil
}

// runPeers runs the same load against each peer in turn.
func runPeers(ctx context.Context, e *env, fedas *result) ([]peerResult, error) {
	var out []peerResult
	for _, name := range e.o.peers {
		if ctx.Err() != nil {
			break
		}
		pr, err := runPeer(ctx, e, name)
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", name, err)
		}
		if pr.FlowsPerS > 0 {
			pr.Ratio = fedas.FlowsPerS / pr.FlowsPerS
		}
		if pr.CPUPerFlowUS > 0 {
			pr.CPURatio = fedas.CPUPerFlowUS / pr.CPUPerFlowUS
		}
		out = append(out, *pr)
	}
	return out, nil
}

func runPeer(ctx context.Context, e *env, name string) (*peerResult, error) {
	o := e.o
	ps := &peerSetup{o: o, creds: e.creds, openid: o.tokenOpenID, scope: tokenScope(o.tokenOpenID), codes: codesNeeded(o)}
	srv, err := peerKinds[name].start(ctx, ps)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	tr := newTransport(o.concurrency)
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: &tracingRT{base: tr}, Timeout: flowTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	var flow func(context.Context) error
	switch o.scenario {
	case "par":
		flow = func(ctx context.Context) error { return peerPAR(ctx, hc, e.creds, srv) }
	case "token":
		t := &tokenTarget{issuer: srv.issuer, endpoint: srv.tokenEndpoint, codes: srv.codes, openid: o.tokenOpenID}
		flow = func(ctx context.Context) error {
			if err := t.redeem(ctx, hc, e.creds); err != nil {
				return (&worker{}).fail(name+" token", err)
			}
			return nil
		}
	}
	if err := warmUpFlow(ctx, o.concurrency, flow); err != nil {
		return nil, err
	}
	child0 := childCPU(srv.pid)
	cpu0 := cpuTime()
	col, elapsed := driveLoad(ctx, o, flow)
	cpu := cpuTime() - cpu0 + childCPU(srv.pid) - child0

	pr := &peerResult{Name: name, Version: srv.version, Flows: len(col.lat), FailuresByCode: col.failures,
		ErrorSamples: col.samples, ElapsedS: elapsed.Seconds(), Note: srv.note}
	for _, n := range col.failures {
		pr.Failures += n
	}
	pr.FlowsPerS = float64(pr.Flows) / elapsed.Seconds()
	if total := pr.Flows + pr.Failures; total > 0 {
		pr.CPUPerFlowUS = float64(cpu.Microseconds()) / float64(total)
	}
	pr.LatencyMS = percentiles(col.lat)
	return pr, nil
}

// peerPAR is one pushed authorization request to a peer: 201 with a
// request_uri (RFC 9126 §2.2).
func peerPAR(ctx context.Context, hc *http.Client, creds *clientCreds, srv *peerServer) error {
	status, body, err := creds.postForm(ctx, hc, srv.parEndpoint, srv.issuer, parForm(creds.id))
	if err != nil {
		return (&worker{}).fail("peer par", err)
	}
	var r sdk.Response
	_ = json.Unmarshal(body, &r)
	r.Status = status
	if status != http.StatusCreated || !strings.HasPrefix(r.RequestURI, "urn:ietf:params:oauth:request_uri:") {
		return (&worker{}).fail("peer par", &sdk.Err{Response: r})
	}
	return nil
}

// warmUpFlow runs 1 + c uncounted flows, as warmUp does for fedas.
func warmUpFlow(ctx context.Context, c int, flow func(context.Context) error) error {
	wctx, cancel := context.WithTimeout(ctx, flowTimeout)
	defer cancel()
	if err := flow(wctx); err != nil {
		return fmt.Errorf("warm-up flow: %w", err)
	}
	errs := make([]error, c)
	var wg sync.WaitGroup
	for i := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = flow(wctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("warm-up flows: %w", err)
	}
	return nil
}

// driveLoad is the measured loop of bench for one flow function: c
// workers, at most -n flows, until -d (flows in flight finish).
func driveLoad(ctx context.Context, o options, flow func(context.Context) error) (*collector, time.Duration) {
	hard, cancelHard := context.WithTimeout(context.WithoutCancel(ctx), o.duration+drainGrace)
	defer cancelHard()
	col := &collector{failures: map[string]int{}, lat: make([]time.Duration, 0, min(o.maxFlows, 1<<20))}
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(o.duration)
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range o.maxFlows {
				if ctx.Err() != nil || time.Now().After(deadline) || next.Add(1) > int64(o.maxFlows) {
					return
				}
				fctx, cancel := context.WithTimeout(hard, flowTimeout)
				t := time.Now()
				err := flow(fctx)
				d := time.Since(t)
				cancel()
				col.add(d, err)
			}
		}()
	}
	wg.Wait()
	return col, time.Since(start)
}

// childCPU is a child process's user + system CPU time from
// /proc/PID/stat (fields 14 and 15, in clock ticks; Linux's USER_HZ is
// 100). 0 for pid 0 or off Linux.
func childCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces: split after its ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * (time.Second / 100)
}

// writePeerText writes the client, token and peer parts of the report.
func (r *result) writePeerText(w io.Writer) {
	if r.Auth != "" {
		fmt.Fprintf(w, "client auth %s\n", r.Auth)
	}
	if r.Token != nil {
		r.Token.writeText(w)
	}
	if len(r.Peers) == 0 {
		return
	}
	store := ""
	if r.Store != "memory" {
		store = "; fedas on " + r.Store + ", every peer in memory"
	}
	fmt.Fprintf(w, "peers       the same load (c=%d, n=%d, d=%s, %s%s), one after the other:\n", r.Concurrency, r.MaxFlows, r.MaxDuration, r.Auth, store)
	row := func(name, version string, fps float64, l latency, cpu float64, fails int, ratio string) {
		fmt.Fprintf(w, "  %-14s %-36s %9.1f flows/s  p50 %-9s p99 %-9s cpu %6.0f µs/flow  %d failed  %s\n",
			name, version, fps, ms(l.P50), ms(l.P99), cpu, fails, ratio)
	}
	row("fedas", "", r.FlowsPerS, r.LatencyMS, r.CPUPerFlowUS, r.Failures, "")
	for _, p := range r.Peers {
		row(p.Name, p.Version, p.FlowsPerS, p.LatencyMS, p.CPUPerFlowUS, p.Failures, fmt.Sprintf("fedas/peer %.2f (cpu/flow %.2f)", p.Ratio, p.CPURatio))
	}
	for _, p := range r.Peers {
		if p.Note != "" {
			fmt.Fprintf(w, "  note %s: %s\n", p.Name, p.Note)
		}
		for _, s := range p.ErrorSamples {
			fmt.Fprintf(w, "  e.g. %s: %s\n", p.Name, s)
		}
	}
}
