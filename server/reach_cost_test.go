package server_test

// What one cross-device task costs Redis (docs/performance.md "Reach";
// docs/redis.md): per step from its creation to its answer consumed, the
// round trips (go-redis hook), the commands the server executed by name
// (INFO commandstats, script-internal calls included) and the bytes its
// keys keep (MEMORY USAGE); and every reach key expires.

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage/redistest"
)

// redisKey is one key under fedas: with its MEMORY USAGE and PTTL.
type redisKey struct {
	name  string
	bytes int
	pttl  int
}

// redisKeys lists every key of the store's prefix (one EVAL: a test's
// few hundred keys).
func redisKeys(tb testing.TB, rs *redistest.Server) []redisKey {
	tb.Helper()
	out, err := rs.Do("EVAL", `local r = {} for _, k in ipairs(redis.call('KEYS', 'fedas:*')) do r[#r+1] = k .. '=' .. redis.call('MEMORY', 'USAGE', k, 'SAMPLES', '0') .. '=' .. redis.call('PTTL', k) end return table.concat(r, ' ')`, "0")
	require.NoError(tb, err)
	var ks []redisKey
	for _, f := range strings.Fields(out) {
		parts := strings.Split(f, "=")
		require.Len(tb, parts, 3, f)
		b, _ := strconv.Atoi(parts[1])
		p, err := strconv.Atoi(parts[2])
		require.NoError(tb, err, f)
		ks = append(ks, redisKey{name: parts[0], bytes: b, pttl: p})
	}
	return ks
}

// reachKind names a reach key's kind (storage/redisstore/reach.go):
// task, device, inbox, presence, jkt, ref, user devices; "" for a key
// that is not reach's.
func reachKind(name string) string {
	k, ok := strings.CutPrefix(name, "fedas:reach:")
	if !ok {
		return ""
	}
	switch {
	case strings.HasPrefix(k, "{t:"):
		return "task"
	case strings.HasPrefix(k, "{d:") && strings.HasSuffix(k, ":inbox"):
		return "inbox"
	case strings.HasPrefix(k, "{d:") && strings.HasSuffix(k, ":presence"):
		return "presence"
	case strings.HasPrefix(k, "{d:"):
		return "device"
	}
	if i := strings.Index(k, ":{"); i >= 0 {
		return k[:i]
	}
	return k
}

// reachBytes sums MEMORY USAGE per reach key kind.
func reachBytes(ks []redisKey) map[string]int {
	m := map[string]int{}
	for _, k := range ks {
		if kind := reachKind(k.name); kind != "" {
			m[kind] += k.bytes
		}
	}
	return m
}

// TestReachCost_Redis: one cross-device task on a real Redis — the device
// starts it on instance a, our app reads, acks and approves it on a, the
// device's poll on b completes the sign-in — costs at most a bounded
// number of round trips and commands per step; its keys' bytes are
// logged; and after it every reach key has a TTL. The numbers go to
// docs/performance.md "Reach"; the bounds are today's plus headroom, so
// a regression shows here first.
func TestReachCost_Redis(t *testing.T) {
	rs := redistest.Start(t)
	st := redisStore(t, rs.URL())
	rt := &rtCounter{}
	rt.on.Store(true)
	st.Client().AddHook(rt)
	clock := &servertest.Clock{}
	env := newReachEnv(t, st, reachEnvOptions{clock: clock, edit: nativeReachConfig})
	app := signInApp(t, env.a, "carol", "carol-pw", "")
	app.register(t, "", http.StatusCreated)
	m := &costMeter{rs: rs, rt: rt}

	// task runs one cross-device task and returns its steps' costs and
	// the reach bytes after its creation and after its end.
	task := func(t *testing.T) (steps []stepCost, before, atCreate, atEnd map[string]int) {
		m.steps = nil
		cursor := ""
		inbox := func() []string {
			st, _, b := app.do(t, http.MethodGet, "/reach/inbox?wait=0"+map[bool]string{true: "", false: "&after=" + cursor}[cursor == ""], "")
			require.Equal(t, http.StatusOK, st, "%s", b)
			var page struct {
				Entries []struct {
					Task string `json:"task"`
				} `json:"entries"`
				Next string `json:"next"`
			}
			require.NoError(t, json.Unmarshal(b, &page))
			cursor = page.Next
			var ids []string
			for _, e := range page.Entries {
				ids = append(ids, e.Task)
			}
			return ids
		}
		inbox() // the device is present, the inbox read to its end
		dev := newReachDevice(t, env.a, clock, "demo-app")
		var session string
		m.measure(t, "device POST /native/authorize (redirect_to_app)", func() { session = dev.start(t, "carol").str("auth_session") })
		before = reachBytes(redisKeys(t, rs))
		var r reply
		m.measure(t, "device POST /native/reach (create, deliver)", func() { r = dev.reach(t, session) })
		require.Equal(t, http.StatusAccepted, r.status, r.raw)
		loc := r.header.Get("Location")
		id := loc[strings.LastIndex(loc, "/")+1:]
		pick, err := strconv.Atoi(r.str("binding_code"))
		require.NoError(t, err)
		atCreate = reachBytes(redisKeys(t, rs))
		m.measure(t, "app GET /reach/inbox", func() { require.Equal(t, []string{id}, inbox()) })
		m.measure(t, "app GET /reach/tasks/{id}", func() {
			st, _, b := app.do(t, http.MethodGet, "/reach/tasks/"+id, "")
			require.Equal(t, http.StatusOK, st, "%s", b)
		})
		m.measure(t, "app POST /reach/tasks/{id}/ack", func() {
			st, _, b := app.do(t, http.MethodPost, "/reach/tasks/"+id+"/ack", "")
			require.Equal(t, http.StatusOK, st, "%s", b)
		})
		m.measure(t, "app POST /reach/tasks/{id}/response", func() {
			st, _, b := app.do(t, http.MethodPost, "/reach/tasks/"+id+"/response", `{"decision":"approve","binding_choice":`+strconv.Itoa(pick)+`}`)
			require.Equal(t, http.StatusOK, st, "%s", b)
		})
		m.measure(t, "device GET /native/reach/{id} on b (completed)", func() {
			p := dev.poll(t, env.b.URL+server.PathNativeReach+"/"+id)
			require.Equal(t, http.StatusOK, p.status, p.raw)
			require.Equal(t, "completed", p.str("status"))
			require.NotEmpty(t, p.str("auth_session"))
		})
		atEnd = reachBytes(redisKeys(t, rs))
		return m.steps, before, atCreate, atEnd
	}
	// A warm-up task: the first use of each script is NOSCRIPT + EVAL and
	// a connection's first command a HELLO; the steady state is measured.
	task(t)
	steps, before, atCreate, atEnd := task(t)

	var rtt, cmds int
	mix := map[string]int{}
	for _, s := range steps {
		t.Logf("%-50s %2d round trips, %2d commands: %s", s.name, s.rtt, s.cmd, s.mix)
		if strings.HasPrefix(s.name, "device POST /native/authorize") {
			continue // the sign-in's start, not the task
		}
		rtt, cmds = rtt+s.rtt, cmds+s.cmd
		for _, f := range strings.Fields(s.mix) {
			name, n, _ := strings.Cut(f, "×")
			c, _ := strconv.Atoi(n)
			mix[name] += c
		}
	}
	names := make([]string, 0, len(mix))
	for n := range mix {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		return mix[names[i]] > mix[names[j]] || mix[names[i]] == mix[names[j]] && names[i] < names[j]
	})
	var mixText []string
	for _, n := range names {
		mixText = append(mixText, n+"×"+strconv.Itoa(mix[n]))
	}
	t.Logf("one task, create → consumed: %d round trips, %d commands: %s", rtt, cmds, strings.Join(mixText, " "))
	delta := func(m map[string]int) map[string]int {
		d := map[string]int{}
		for k, v := range m {
			if v != before[k] {
				d[k] = v - before[k]
			}
		}
		return d
	}
	created, ended := delta(atCreate), delta(atEnd)
	t.Logf("reach bytes the task adds (MEMORY USAGE by key kind): after the create %v; after the poll consumed it %v", created, ended)

	// Bounds: today's figures plus headroom.
	bounds := map[string]int{
		"device POST /native/authorize (redirect_to_app)": 32,
		"device POST /native/reach (create, deliver)":     52,
		"app GET /reach/inbox":                            14,
		"app GET /reach/tasks/{id}":                       10,
		"app POST /reach/tasks/{id}/ack":                  20,
		"app POST /reach/tasks/{id}/response":             21,
		"device GET /native/reach/{id} on b (completed)":  16,
	}
	for _, s := range steps {
		b, ok := bounds[s.name]
		require.True(t, ok, s.name)
		require.LessOrEqual(t, s.cmd, b, "commands of %s", s.name)
		require.LessOrEqual(t, s.rtt, s.cmd, "round trips of %s", s.name)
	}
	require.LessOrEqual(t, cmds, 130, "commands per task")
	require.LessOrEqual(t, rtt, 64, "round trips per task")
	require.GreaterOrEqual(t, mix["publish"], 3, "the delivery, the ack and the answer are announced")
	require.Positive(t, created["task"])
	require.LessOrEqual(t, ended["task"], 2048, "bytes per task")
	total := 0
	for _, v := range ended {
		total += v
	}
	require.LessOrEqual(t, total, 4096, "bytes a task adds")

	// Every key the deployment keeps expires: reach's and the sessions',
	// codes' and tokens' around it.
	ks := redisKeys(t, rs)
	kinds := map[string]int{}
	for _, k := range ks {
		kind := reachKind(k.name)
		require.Positive(t, k.pttl, "key %s (reach kind %q) has no TTL", k.name, kind)
		if kind != "" {
			kinds[kind]++
		}
	}
	t.Logf("reach keys after two tasks, by kind: %v", kinds)
	for _, kind := range []string{"task", "device", "inbox", "presence", "jkt"} {
		require.NotZero(t, kinds[kind], "no %s key: the scan would not see it", kind)
	}
}
