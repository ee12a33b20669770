package server_test

// What a presentation costs Redis, per path and per step: round trips
// (go-redis hook), commands executed by the server (INFO commandstats,
// script-internal calls included) and bytes kept (MEMORY USAGE) per
// auth_session and per verifier transaction (docs/redis.md; design: ≤ 2 KB
// per auth_session).

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/storage/redistest"
)

// commandStats is INFO commandstats: calls per command.
func commandStats(tb testing.TB, rs *redistest.Server) map[string]int {
	tb.Helper()
	out, err := rs.Do("INFO", "commandstats")
	require.NoError(tb, err)
	m := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
		m[name] = n
	}
	return m
}

// costMeter measures one step at a time.
type costMeter struct {
	rs *redistest.Server
	rt *rtCounter
	mu sync.Mutex
	// steps in order: name → round trips, commands, the command mix.
	steps []stepCost
}

type stepCost struct {
	name     string
	rtt, cmd int
	mix      string
}

func (m *costMeter) measure(tb testing.TB, name string, f func()) stepCost {
	tb.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	before := commandStats(tb, m.rs)
	n0 := m.rt.n.Load()
	f()
	rtt := int(m.rt.n.Load() - n0)
	after := commandStats(tb, m.rs)
	cmds, mix := 0, []string{}
	for name, n := range after {
		if name == "info" {
			continue
		}
		if d := n - before[name]; d > 0 {
			cmds += d
			mix = append(mix, name+"×"+strconv.Itoa(d))
		}
	}
	sort.Strings(mix)
	c := stepCost{name: name, rtt: rtt, cmd: cmds, mix: strings.Join(mix, " ")}
	m.steps = append(m.steps, c)
	return c
}

// meterTransport measures each wallet request to the verifier as a step.
type meterTransport struct {
	base http.RoundTripper
	tb   testing.TB
	m    *costMeter
}

func (t *meterTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	name := "wallet " + r.Method + " " + r.URL.Path
	if strings.HasPrefix(r.URL.Path, server.PathDCRequest) {
		name = "wallet " + r.Method + " " + server.PathDCRequest + "{id}"
	}
	var resp *http.Response
	var err error
	t.m.measure(t.tb, name, func() { resp, err = t.base.RoundTrip(r) })
	return resp, err
}

// keyBytes is MEMORY USAGE summed per key kind (the name between the
// prefix and the hash tag: as, dctx, dcreq, …), without DPoP replay marks.
func keyBytes(tb testing.TB, rs *redistest.Server) map[string]int {
	tb.Helper()
	out, err := rs.Do("EVAL", `local r = {} for _, k in ipairs(redis.call('KEYS', 'fedas:*')) do r[#r+1] = k .. '=' .. redis.call('MEMORY', 'USAGE', k, 'SAMPLES', '0') end return table.concat(r, ' ')`, "0")
	require.NoError(tb, err)
	m := map[string]int{}
	for _, kv := range strings.Fields(out) {
		k, v, _ := strings.Cut(kv, "=")
		kind := strings.TrimPrefix(k, "fedas:")
		if i := strings.Index(kind, ":{"); i >= 0 {
			kind = kind[:i]
		}
		if kind == "used" {
			continue
		}
		n, _ := strconv.Atoi(v)
		m[kind] += n
	}
	return m
}

// TestDCCost_Redis: for each path, the Redis round trips and commands of
// every native step and wallet request, and the bytes an auth_session and
// its verifier transaction keep, logged for docs/redis.md and bounded.
func TestDCCost_Redis(t *testing.T) {
	rs := redistest.Start(t)
	st := redisStore(t, rs.URL())
	rt := &rtCounter{}
	rt.on.Store(true)
	st.Client().AddHook(rt)
	e := newDCEnv(t, dcEnvOptions{store: st, x5c: true})
	m := &costMeter{rs: rs, rt: rt}
	hc := *e.wallet.HTTP
	hc.Transport = &meterTransport{base: hc.Transport, tb: t, m: m}
	e.wallet.HTTP = &hc
	// A warm-up pass: the first use of each script is NOSCRIPT + EVAL and
	// the first command of a connection a HELLO; steady state is measured.
	for _, p := range allDCPaths {
		a := e.app(t, p.client)
		ch := p.begin(t, a)
		e.clock.Advance(11 * time.Second)
		a.post(t, url.Values{"auth_session": {ch.s("auth_session")}})
		run, err := p.present(t, e, ch)
		require.NoError(t, err)
		done := a.post(t, run.form)
		require.Equal(t, http.StatusOK, done.status, string(done.raw))
		a.exchange(t, done.s("authorization_code"))
	}
	for _, p := range allDCPaths {
		t.Run(p.name, func(t *testing.T) {
			_, err := rs.Do("FLUSHALL")
			require.NoError(t, err)
			e.clock.Advance(time.Minute)
			m.steps = nil
			a := e.app(t, p.client)
			var ch dcAnswer
			first := m.measure(t, "initial (challenge)", func() { ch = p.begin(t, a) })
			atChallenge := keyBytes(t, rs)
			var poll stepCost
			if p.flow == pathSame.flow || p.flow == pathCross.flow {
				e.clock.Advance(11 * time.Second)
				poll = m.measure(t, "poll (pending)", func() {
					r := a.post(t, url.Values{"auth_session": {ch.s("auth_session")}})
					require.Equal(t, "pending", r.s("status"), string(r.raw))
				})
			}
			run, err := p.present(t, e, ch)
			require.NoError(t, err)
			afterWallet := keyBytes(t, rs)
			var done dcAnswer
			complete := m.measure(t, "completion (code)", func() { done = a.post(t, run.form) })
			require.Equal(t, http.StatusOK, done.status, string(done.raw))
			m.measure(t, "token", func() { a.exchange(t, done.s("authorization_code")) })
			for _, s := range m.steps {
				t.Logf("%-12s %-28s %2d round trips, %2d commands: %s", p.name, s.name, s.rtt, s.cmd, s.mix)
			}
			t.Logf("%-12s bytes at the challenge: %v; after the wallet's response: %v", p.name, atChallenge, afterWallet)
			// Bounds: what the code does today (+1); a regression shows
			// here first.
			require.LessOrEqual(t, first.rtt, 6, "initial")
			require.LessOrEqual(t, complete.rtt, 10, "completion")
			if poll.name != "" {
				require.LessOrEqual(t, poll.rtt, map[string]int{pathSame.flow: 3, pathCross.flow: 5}[p.flow], "a poll")
			}
			for _, s := range m.steps {
				if strings.HasPrefix(s.name, "wallet") {
					require.LessOrEqual(t, s.rtt, 4, s.name)
				}
			}
			as := atChallenge["as"]
			require.NotZero(t, as)
			limit := 2048
			if p.flow == pathDCAPI.flow || p.flow == pathIA.flow {
				// The signed request (with its x5c chain) travels in the
				// challenge and is kept in the session to render it again.
				limit = 8192
			}
			require.LessOrEqual(t, as, limit, "bytes per auth_session")
			require.LessOrEqual(t, afterWallet["dctx"]+afterWallet["dcreq"], 4096, "bytes per transaction")
		})
	}
}
