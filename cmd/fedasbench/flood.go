package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/storage/redisstore"
)

// The abuse scenarios (issue 10: "legitimate traffic served under both
// floods") run an open-loop attack at a fixed rate next to legitimate
// traffic and report how the legitimate traffic fared:
//
//	flood-sessions   -attack-rate (default 2000) session-creating initial
//	                 requests per second from one client at one address,
//	                 while -legit-rate (default 20) complete local sign-ins
//	                 per second (password, code, token) come from distinct
//	                 addresses. Reports the legitimate success rate and
//	                 latency, the attack's answers by status, and with
//	                 -redis the keys and memory before and after (and how
//	                 many keys have no TTL: the answer must be 0).
//	flood-passwords  -c workers refresh tokens in a closed loop for -d
//	                 without an attack, then for -d again while
//	                 -attack-rate (default 200) wrong passwords per second
//	                 arrive for random usernames from random addresses
//	                 (each a fresh session: the worst case for bcrypt).
//	                 Reports refresh throughput and latency in both phases.
//
// Addresses: the server trusts 127.0.0.1 as a proxy (trusted_proxies) and
// every request names its client in X-Forwarded-For, as a load balancer
// would.
var floodScenarios = []string{"flood-sessions", "flood-passwords"}

const (
	attackerIP = "203.0.113.7" // RFC 5737 TEST-NET-3
	// maxInFlight bounds the attack's concurrent requests: beyond it the
	// driver itself is saturated and skips (counted as "driver_skipped").
	maxInFlight = 512
)

// floodStats is the abuse scenarios' report.
type floodStats struct {
	AttackRate     float64        `json:"attack_rate_target_per_s"`
	AttackSent     int64          `json:"attack_sent"`
	AttackPerS     float64        `json:"attack_achieved_per_s"`
	AttackByStatus map[string]int `json:"attack_by_status"`
	AttackSkipped  int64          `json:"attack_driver_skipped"`

	// Legit is the legitimate traffic: sign-ins (flood-sessions) or
	// refreshes under the flood (flood-passwords).
	Legit phaseStats `json:"legit"`
	// Baseline is flood-passwords' refresh phase without an attack.
	Baseline *phaseStats `json:"baseline,omitempty"`

	Redis *floodRedis `json:"redis_keys,omitempty"`
}

type phaseStats struct {
	What        string         `json:"what"`
	Started     int            `json:"started"`
	Succeeded   int            `json:"succeeded"`
	SuccessPct  float64        `json:"success_pct"`
	PerS        float64        `json:"succeeded_per_s"`
	LatencyMS   latency        `json:"latency_ms"`
	FailuresBy  map[string]int `json:"failures_by_code,omitempty"`
	ElapsedS    float64        `json:"elapsed_s"`
	ErrorSample string         `json:"error_sample,omitempty"`
}

type floodRedis struct {
	KeysBefore      int64 `json:"keys_before"`
	KeysAfter       int64 `json:"keys_after"`
	KeysWithoutTTL  int64 `json:"keys_without_ttl_after"`
	UsedMemoryBefor int64 `json:"used_memory_before"`
	UsedMemoryAfter int64 `json:"used_memory_after"`
	// ByKind counts the keys after the run by their kind (the key name
	// without the run's prefix, up to the first ':').
	ByKind map[string]int64 `json:"keys_after_by_kind"`
}

func isFlood(scenario string) bool { return slices.Contains(floodScenarios, scenario) }

// xffRT names the request's client address in X-Forwarded-For.
type xffRT struct {
	base http.RoundTripper
	ip   string
}

func (x xffRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", x.ip)
	return x.base.RoundTrip(r)
}

// clientFrom is an HTTP client whose requests come from ip.
func (e *env) clientFrom(ip string) *http.Client {
	return &http.Client{Transport: xffRT{base: e.trace, ip: ip}, Timeout: flowTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// legitIP is the n-th legitimate client's address (10.0.0.0/8).
func legitIP(n int64) string {
	return fmt.Sprintf("10.%d.%d.%d", (n>>16)&0xff, (n>>8)&0xff, n&0xff)
}

// randomIP is an address in 100.64.0.0/10 (RFC 6598), a new one each call.
func randomIP() string {
	v := rand.Uint32()
	return fmt.Sprintf("100.%d.%d.%d", 64+(v>>16)%64, (v>>8)&0xff, v&0xff)
}

// floodConfig makes AS1 trust the driver as its proxy. flood-passwords
// also lifts the per-client token limit: its closed refresh loop stands
// for more devices than that limit's 5000/s, which the memory backend
// serves on 2 vCPUs (the limit is tested in server/ratelimit_test.go, not
// measured here).
func floodConfig(o options) func(*config.Config) {
	return func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.1/32"}
		if o.scenario == "flood-passwords" {
			c.Limits.Rate.Rules = append(c.Limits.Rate.Rules, config.RateRule{Endpoint: config.RateToken, Scope: config.ScopeClient, Off: true})
		}
	}
}

// pace calls fire at rate per second for d (open loop: the schedule does
// not wait for answers), at most maxInFlight at once; it returns how many
// it fired and skipped.
func pace(ctx context.Context, rate float64, d time.Duration, fire func(context.Context)) (sent, skipped int64) {
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for i := int64(0); ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if due.Sub(start) >= d || ctx.Err() != nil {
			break
		}
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		select {
		case sem <- struct{}{}:
		default:
			skipped++
			continue
		}
		sent++
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fctx, cancel := context.WithTimeout(ctx, flowTimeout)
			defer cancel()
			fire(fctx)
		}()
	}
	wg.Wait()
	return sent, skipped
}

// statusCounter counts answers by HTTP status (or transport error kind).
type statusCounter struct {
	mu sync.Mutex
	m  map[string]int
}

func (s *statusCounter) add(k string) {
	s.mu.Lock()
	s.m[k]++
	s.mu.Unlock()
}

// post sends one form from hc and returns its status as a string.
func post(ctx context.Context, hc *http.Client, endpoint string, form url.Values) (string, []byte) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "request_error", nil
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		if isTimeout(err) || errors.Is(err, context.DeadlineExceeded) {
			return "timeout", nil
		}
		return "transport", nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return strconv.Itoa(resp.StatusCode), body
}

// phaseCollector gathers one phase of legitimate traffic.
type phaseCollector struct {
	mu      sync.Mutex
	lat     []time.Duration
	fail    map[string]int
	sample  string
	started int
}

func newPhase() *phaseCollector { return &phaseCollector{fail: map[string]int{}} }

func (p *phaseCollector) add(d time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.started++
	if err == nil {
		p.lat = append(p.lat, d)
		return
	}
	key := "unexpected"
	var fe *flowError
	if errors.As(err, &fe) {
		key = fe.key
	}
	p.fail[key]++
	if p.sample == "" {
		p.sample = err.Error()
	}
}

func (p *phaseCollector) stats(what string, elapsed time.Duration) phaseStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := phaseStats{What: what, Started: p.started, Succeeded: len(p.lat), LatencyMS: percentiles(p.lat),
		FailuresBy: p.fail, ElapsedS: elapsed.Seconds(), ErrorSample: p.sample, PerS: float64(len(p.lat)) / elapsed.Seconds()}
	if p.started > 0 {
		ps.SuccessPct = 100 * float64(len(p.lat)) / float64(p.started)
	}
	return ps
}

// benchFlood runs one abuse scenario.
func benchFlood(ctx context.Context, o options) (*result, error) {
	t0 := time.Now()
	if o.attackRate <= 0 {
		o.attackRate = map[string]float64{"flood-sessions": 2000, "flood-passwords": 200}[o.scenario]
	}
	e, err := setup(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	defer e.close()
	res := &result{Scenario: o.scenario, Store: "memory", Concurrency: o.concurrency, MaxFlows: o.maxFlows,
		MaxDuration: o.duration.String(), BcryptCost: o.bcryptCost, Users: len(e.users),
		UsersNote: fmt.Sprintf("%d generated users with bcrypt cost %d", len(e.users), o.bcryptCost),
		GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	if o.redisURL != "" {
		res.Store = "redis " + redactURL(o.redisURL)
	}
	fs := &floodStats{AttackRate: o.attackRate, AttackByStatus: map[string]int{}}
	res.Flood = fs
	before := e.redisKeys(ctx)
	attacks := &statusCounter{m: map[string]int{}}
	cpu0 := cpuTime()
	switch o.scenario {
	case "flood-sessions":
		res.SetupMS = float64(time.Since(t0).Microseconds()) / 1000
		err = e.floodSessions(ctx, o, fs, attacks)
	case "flood-passwords":
		err = e.floodPasswords(ctx, o, fs, attacks, func() { res.SetupMS = float64(time.Since(t0).Microseconds()) / 1000 })
	}
	if err != nil {
		return nil, err
	}
	res.CPUS = (cpuTime() - cpu0).Seconds()
	fs.AttackByStatus = attacks.m
	if after := e.redisKeys(ctx); before != nil && after != nil {
		fs.Redis = &floodRedis{KeysBefore: before.keys, KeysAfter: after.keys, KeysWithoutTTL: after.noTTL,
			UsedMemoryBefor: before.mem, UsedMemoryAfter: after.mem, ByKind: after.byKind}
	}
	res.Flows, res.FlowsPerS, res.LatencyMS, res.ElapsedS = fs.Legit.Succeeded, fs.Legit.PerS, fs.Legit.LatencyMS, fs.Legit.ElapsedS
	res.FailuresByCode = fs.Legit.FailuresBy
	for _, n := range fs.Legit.FailuresBy {
		res.Failures += n
	}
	if fs.Baseline != nil {
		for _, n := range fs.Baseline.FailuresBy {
			res.Failures += n
		}
	}
	return res, nil
}

// floodSessions: the attack creates sessions; legitimate users sign in.
func (e *env) floodSessions(ctx context.Context, o options, fs *floodStats, attacks *statusCounter) error {
	attacker := e.clientFrom(attackerIP)
	pk := sdk.NewPKCE()
	form := url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {benchScope},
		"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}
	legit := newPhase()
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		pace(ctx, o.legitRate, o.duration, func(fctx context.Context) {
			i := n.Add(1)
			w := &worker{e: e, user: e.users[int(i)%len(e.users)],
				client: &sdk.Client{HTTP: e.clientFrom(legitIP(i)), ClientID: "demo-app", Meta: e.meta}}
			t := time.Now()
			err := w.signIn(fctx)
			legit.add(time.Since(t), err)
		})
	}()
	sent, skipped := pace(ctx, o.attackRate, o.duration, func(fctx context.Context) {
		st, _ := post(fctx, attacker, e.meta.NativeEndpoint(), form)
		attacks.add(st)
	})
	attackElapsed := min(time.Since(start), o.duration) // the schedule's span, not the drain's
	wg.Wait()
	fs.AttackSent, fs.AttackSkipped, fs.AttackPerS = sent, skipped, float64(sent)/attackElapsed.Seconds()
	fs.Legit = legit.stats("complete local sign-ins (initial, password, code, token) from distinct addresses", time.Since(start))
	return nil
}

// floodPasswords: refresh throughput without, then with, a wrong-password
// flood.
func (e *env) floodPasswords(ctx context.Context, o options, fs *floodStats, attacks *statusCounter, ready func()) error {
	// One refresh token per worker, from a real sign-in.
	rts := make([]string, o.concurrency)
	for i := range rts {
		w := &worker{e: e, user: e.users[i], client: &sdk.Client{HTTP: e.clientFrom(legitIP(int64(i))), ClientID: "demo-app", Meta: e.meta}}
		code, pk, err := w.client.Authorize(ctx, url.Values{"scope": {"openid offline_access"}, "native_callback_uri": {nativeCB}}, w.ui)
		if err != nil {
			return fmt.Errorf("sign-in for a refresh token: %w", err)
		}
		tok, err := w.client.Exchange(ctx, code, pk)
		if err != nil || tok.RefreshToken == "" {
			return fmt.Errorf("token exchange for a refresh token: %v (refresh token %t)", err, tok.RefreshToken != "")
		}
		rts[i] = tok.RefreshToken
	}
	ready()
	var devices atomic.Int64
	devices.Store(1 << 20)
	refresh := func(d time.Duration) phaseStats {
		ph := newPhase()
		start := time.Now()
		deadline := start.Add(d)
		var wg sync.WaitGroup
		for i := range rts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil && time.Now().Before(deadline) {
					// Each refresh from a device of its own: the closed loop
					// stands for many devices, not one address hammering.
					cl := &sdk.Client{HTTP: e.clientFrom(legitIP(devices.Add(1))), ClientID: "demo-app", Meta: e.meta}
					fctx, cancel := context.WithTimeout(ctx, flowTimeout)
					t := time.Now()
					tok, err := cl.Refresh(fctx, rts[i])
					cancel()
					if err == nil && tok.RefreshToken != "" {
						rts[i] = tok.RefreshToken // rotated (public client)
					}
					if err != nil {
						err = (&worker{e: e}).fail("as1 token", err)
					}
					ph.add(time.Since(t), err)
					var se *sdk.Err
					if err != nil && !(errors.As(err, &se) && (se.Status == http.StatusTooManyRequests || se.Status == http.StatusServiceUnavailable)) {
						return // a lost refresh token ends this worker (a 429 or 503 burns nothing)
					}
				}
			}()
		}
		wg.Wait()
		return ph.stats("refresh_token grants, closed loop", time.Since(start))
	}
	base := refresh(o.duration)
	fs.Baseline = &base

	pk := sdk.NewPKCE()
	initial := url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {benchScope},
		"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}
	done := make(chan phaseStats)
	go func() { done <- refresh(o.duration) }()
	start := time.Now()
	sent, skipped := pace(ctx, o.attackRate, o.duration, func(fctx context.Context) {
		hc := e.clientFrom(randomIP())
		st, body := post(fctx, hc, e.meta.NativeEndpoint(), initial)
		if st != "403" {
			attacks.add("initial " + st)
			return
		}
		var r sdk.Response
		if err := json.Unmarshal(body, &r); err != nil || r.AuthSession == "" {
			attacks.add("initial without auth_session")
			return
		}
		st, _ = post(fctx, hc, e.meta.NativeEndpoint(), url.Values{"client_id": {"demo-app"}, "auth_session": {r.AuthSession},
			"username": {"nobody-" + randHex(4)}, "password": {"wrong-" + randHex(4)}})
		attacks.add("password " + st)
	})
	elapsed := min(time.Since(start), o.duration) // the schedule's span, not the drain's
	fs.Legit = <-done
	fs.AttackSent, fs.AttackSkipped, fs.AttackPerS = sent, skipped, float64(sent)/elapsed.Seconds()
	return nil
}

type keySnapshot struct {
	keys, noTTL, mem int64
	byKind           map[string]int64
}

// redisKeys counts this run's keys, those without a TTL, and the server's
// used_memory; nil without Redis.
func (e *env) redisKeys(ctx context.Context) *keySnapshot {
	var snap keySnapshot
	snap.byKind = map[string]int64{}
	found := false
	for _, in := range []*instance{e.as1, e.as2} {
		if in == nil {
			continue
		}
		rs, ok := in.store.(*redisstore.Store)
		if !ok {
			return nil
		}
		found = true
		c := rs.Client()
		prefix := "fedasbench:" + e.runID + ":"
		var cursor uint64
		for range 1_000_000 {
			keys, next, err := c.Scan(ctx, cursor, prefix+"*", 1000).Result()
			if err != nil {
				return nil
			}
			pipe := c.Pipeline()
			ttls := make([]*redis.DurationCmd, len(keys))
			for i, k := range keys {
				ttls[i] = pipe.PTTL(ctx, k)
			}
			if len(keys) > 0 {
				_, _ = pipe.Exec(ctx)
			}
			for i, k := range keys {
				snap.keys++
				if d, err := ttls[i].Result(); err == nil && d == -1 { // -1: no TTL (-2: expired meanwhile)
					snap.noTTL++
				}
				rest := strings.TrimPrefix(k, prefix)
				_, rest, _ = strings.Cut(rest, ":") // the instance's name
				kind, _, _ := strings.Cut(rest, ":")
				snap.byKind[kind]++
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
		if in == e.as1 {
			info, err := c.Info(ctx, "memory").Result()
			if err == nil {
				for _, line := range strings.Split(info, "\n") {
					if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
						snap.mem, _ = strconv.ParseInt(v, 10, 64)
					}
				}
			}
		}
	}
	if !found {
		return nil
	}
	return &snap
}

func (f *floodStats) writeText(w io.Writer) {
	fmt.Fprintf(w, "attack      %d sent (target %.0f/s, achieved %.0f/s; %d skipped by the driver) → by status:", f.AttackSent, f.AttackRate, f.AttackPerS, f.AttackSkipped)
	keys := make([]string, 0, len(f.AttackByStatus))
	for k := range f.AttackByStatus {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, " %s=%d", k, f.AttackByStatus[k])
	}
	fmt.Fprintln(w)
	for _, p := range []*phaseStats{f.Baseline, &f.Legit} {
		if p == nil {
			continue
		}
		label := "legit"
		if p == f.Baseline {
			label = "baseline"
		}
		l := p.LatencyMS
		fmt.Fprintf(w, "%-11s %s: %d of %d succeeded (%.2f %%), %.1f/s; p50 %s p99 %s max %s\n",
			label, p.What, p.Succeeded, p.Started, p.SuccessPct, p.PerS, ms(l.P50), ms(l.P99), ms(l.Max))
		for k, n := range p.FailuresBy {
			fmt.Fprintf(w, "  %6d  %s\n", n, k)
		}
		if p.ErrorSample != "" {
			fmt.Fprintf(w, "  e.g. %s\n", p.ErrorSample)
		}
	}
	if r := f.Redis; r != nil {
		fmt.Fprintf(w, "redis keys  before %d, after %d (%d without a TTL); used_memory %.1f MB → %.1f MB; after by kind: %v\n",
			r.KeysBefore, r.KeysAfter, r.KeysWithoutTTL, float64(r.UsedMemoryBefor)/(1<<20), float64(r.UsedMemoryAfter)/(1<<20), r.ByKind)
	}
}

// bcryptFor is the users' hash cost: flood-passwords defaults to a real
// cost (10) unless -bcrypt-cost was given.
func bcryptFor(o options) int {
	if o.scenario == "flood-passwords" && !o.bcryptSet {
		return bcrypt.DefaultCost
	}
	return o.bcryptCost
}
