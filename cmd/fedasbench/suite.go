package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// suiteEntry is one run of the suite: a label and the fedasbench arguments
// it is (the store's -redis is appended when the entry runs on Redis).
type suiteEntry struct {
	Label string   `json:"label"`
	Args  []string `json:"args"`
	// Redis: the entry also runs on the Redis backend.
	Redis bool `json:"-"`
}

// suiteResult is one entry's outcome on one backend.
type suiteResult struct {
	Label   string   `json:"label"`
	Store   string   `json:"store"`
	Args    []string `json:"args"`
	Error   string   `json:"error,omitempty"`
	Result  *result  `json:"result,omitempty"`
	Seconds float64  `json:"wall_s"`
}

// suiteEntries is what BENCHMARKS.md is made of: every scenario, the
// peers, and the hash-strength runs of the sizing guide. quick shrinks
// every entry to a smoke run (tests).
func suiteEntries(quick bool) []suiteEntry {
	d, n := "10s", "4000"
	if quick {
		d, n = "5s", "6"
	}
	c := func(v string) string {
		if quick {
			return "2"
		}
		return v
	}
	e := func(label string, redis bool, args ...string) suiteEntry {
		return suiteEntry{Label: label, Redis: redis, Args: append([]string{"-d", d, "-n", n}, args...)}
	}
	return []suiteEntry{
		e("initial", true, "-scenario", "initial", "-c", c("32")),
		e("local (TOTP)", true, "-scenario", "local", "-c", c("32")),
		e("local-password (bcrypt 4)", true, "-scenario", "local-password", "-c", c("32")),
		e("federated (bcrypt 4)", true, "-scenario", "federated", "-c", c("32")),
		e("three-hop (bcrypt 4)", true, "-scenario", "three-hop", "-c", c("32")),
		e("app2app (bcrypt 4)", true, "-scenario", "app2app", "-c", c("32")),
		e("par, client_secret_basic", true, "-scenario", "par", "-c", c("32"), "-auth", "client_secret_basic", "-peer", "oidc-provider,echo"),
		e("par, private_key_jwt", true, "-scenario", "par", "-c", c("32"), "-auth", "private_key_jwt", "-peer", "oidc-provider,echo"),
		e("token (ES256 ID token)", true, "-scenario", "token", "-c", c("32"), "-peer", "fosite"),
		e("token (no ID token)", true, "-scenario", "token", "-c", c("32"), "-token-openid=false", "-peer", "fosite"),
		e("refresh", true, "-scenario", "refresh", "-c", c("32")),
		e("wallet (cross-device)", true, "-scenario", "wallet", "-c", c("16")),
		e("reach (native, Prefer: wait)", true, "-scenario", "reach", "-c", c("16"), "-n", reachN(quick)),
		e("reach (UQ, Client-Timeout)", true, "-scenario", "reach", "-reach-poll", "uq", "-c", c("16"), "-n", reachN(quick)),
		e("local-password (bcrypt 10)", false, "-scenario", "local-password", "-bcrypt-cost", "10", "-c", c("4")),
		e("local-password (bcrypt 9)", false, "-scenario", "local-password", "-bcrypt-cost", "9", "-c", c("4")),
	}
}

func reachN(quick bool) string {
	if quick {
		return "6"
	}
	return "2000"
}

// runSuite is `fedasbench suite`: every entry on memory, and those marked
// on Redis too, one after the other in one process, reported as one
// Markdown table (and the full results as JSON).
func runSuite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fedasbench suite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	redisURL := fs.String("redis", "self", `Redis for the Redis rows: a URL, "self" (start a redis-server), or "" (memory only)`)
	quick := fs.Bool("quick", false, "tiny runs (a smoke test of the suite, not a measurement)")
	only := fs.String("only", "", "run only the entries whose label contains one of these comma-separated texts")
	jsonFile := fs.String("json", "", "write every run's full result to this file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: fedasbench suite [-redis URL|self|\"\"] [-quick] [-only TEXT] [-json FILE]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var out []suiteResult
	for _, en := range suiteEntries(*quick) {
		if !selected(en.Label, *only) {
			continue
		}
		stores := []string{""}
		if en.Redis && *redisURL != "" {
			stores = append(stores, *redisURL)
		}
		for _, st := range stores {
			a := append([]string{}, en.Args...)
			name := "memory"
			if st != "" {
				a = append(a, "-redis", st)
				name = "redis"
			}
			if *quick {
				// A smoke run installs nothing: the oidc-provider peer
				// (npm) stays for the real suite.
				a = append(withoutPeer(a, "oidc-provider"), "-quiet")
			}
			fmt.Fprintf(stderr, "suite: %s on %s: fedasbench %s\n", en.Label, name, strings.Join(a, " "))
			t := time.Now()
			res, err := run(ctx, append(a, "-json"), io.Discard, stderr)
			sr := suiteResult{Label: en.Label, Store: name, Args: a, Result: res, Seconds: time.Since(t).Seconds()}
			if err != nil {
				sr.Error = err.Error()
			}
			out = append(out, sr)
			if ctx.Err() != nil {
				break
			}
		}
	}
	writeSuiteMarkdown(stdout, out)
	if *jsonFile != "" {
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonFile, b, 0o644); err != nil {
			return err
		}
	}
	var failed []string
	for _, r := range out {
		if r.Error != "" || r.Result == nil || r.Result.Failures > 0 {
			failed = append(failed, r.Label+" on "+r.Store)
		}
	}
	if len(failed) > 0 {
		return errors.New("runs with errors or failed flows: " + strings.Join(failed, "; "))
	}
	return nil
}

// writeSuiteMarkdown renders the suite as the tables BENCHMARKS.md quotes:
// every run, then the peers, then the Redis specifics.
func writeSuiteMarkdown(w io.Writer, rs []suiteResult) {
	fmt.Fprintln(w, "| scenario | store | c | flows/s | p50 | p99 | failures | CPU/flow, process | servers excl. hash | hash | driver | allocs/flow | RSS start → end |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		if r.Result == nil {
			fmt.Fprintf(w, "| %s | %s | | error: %s | | | | | | | | | |\n", r.Label, r.Store, oneLine(r.Error))
			continue
		}
		x := r.Result
		fmt.Fprintf(w, "| %s | %s | %d | %.0f | %s | %s | %d | %s | %s | %s | %s | %.0f | %.0f → %.0f MB |\n", r.Label, r.Store, x.Concurrency,
			x.FlowsPerS, ms(x.LatencyMS.P50), ms(x.LatencyMS.P99), x.Failures, us(&x.CPUPerFlowUS),
			us(x.ServerCPUExclHashUS), us(x.HashCPUPerFlowUS), us(x.DriverCPUPerFlowUS), x.AllocsPerFlow, x.RSSStartMB, x.RSSEndMB)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scenario | store | peer | peer flows/s | peer p99 | fedas/peer flows/s | fedas/peer CPU per flow |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, r := range rs {
		if r.Result == nil {
			continue
		}
		for _, p := range r.Result.Peers {
			fmt.Fprintf(w, "| %s | %s | %s %s | %.0f | %s | %.2f | %.2f |\n", r.Label, r.Store, p.Name, p.Version, p.FlowsPerS, ms(p.LatencyMS.P99), p.Ratio, p.CPURatio)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scenario | Redis round trips/flow | commands/flow | redis-server CPU/flow | bytes in / out per flow | round trips per request, by step |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rs {
		if r.Result == nil || r.Result.Redis == nil {
			continue
		}
		x := r.Result.Redis
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %s | %.0f / %.0f | %s |\n", r.Label, x.RoundTripsPerFlow, x.CommandsPerFlow, us(&x.CPUPerFlowUS), x.NetInPerFlow, x.NetOutPerFlow, stepsText(x.RoundTripsPerStep))
	}
	for _, r := range rs {
		if r.Result != nil && r.Result.Redis != nil && r.Result.Redis.AuthSessions > 0 {
			x := r.Result.Redis
			fmt.Fprintf(w, "\nA live auth_session on Redis (%s run, %d sessions): %.0f B (MEMORY USAGE of its keys), used_memory +%.0f B per session.\n",
				r.Label, x.AuthSessions, x.BytesPerAuthSession, x.UsedMemoryDeltaPerAuthSession)
			break
		}
	}
}

func us(v *float64) string {
	if v == nil {
		return ""
	}
	if *v >= 1000 {
		return fmt.Sprintf("%.2f ms", *v/1000)
	}
	return fmt.Sprintf("%.0f µs", *v)
}

func stepsText(m map[string]float64) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.1f", n, m[n]))
	}
	return strings.Join(parts, ", ")
}

// selected reports whether label contains one of only's comma-separated
// texts (every label when only is empty).
func selected(label, only string) bool {
	if only == "" {
		return true
	}
	for _, o := range strings.Split(only, ",") {
		if o != "" && strings.Contains(label, o) {
			return true
		}
	}
	return false
}

// withoutPeer drops name from a -peer list in args (and the flag when the
// list is left empty).
func withoutPeer(args []string, name string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		if args[i] != "-peer" || i+1 == len(args) {
			out = append(out, args[i])
			continue
		}
		var keep []string
		for _, p := range strings.Split(args[i+1], ",") {
			if p != name {
				keep = append(keep, p)
			}
		}
		if len(keep) > 0 {
			out = append(out, "-peer", strings.Join(keep, ","))
		}
		i++
	}
	return out
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
