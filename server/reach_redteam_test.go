package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/server"
)

// Black-box red-team pass over the reach endpoints (SECURITY-RESULTS.md
// RR01…): what a hostile client, app or device sends that the feature
// tests do not — wrong token kinds, absurd waits, malformed bodies, pick
// brute force and races — and that the answer is always an RFC 6749 §5.2
// body with Cache-Control: no-store, never a 500, and that a refused
// request consumes nothing.

// requireErrorShape checks an error answer: a 4xx or 503 (never 500),
// application/json, Cache-Control: no-store and an error member.
func requireErrorShape(tb testing.TB, what string, st int, h http.Header, body []byte) map[string]any {
	tb.Helper()
	require.True(tb, st >= 400 && st < 500 || st == http.StatusServiceUnavailable, "%s: status %d: %s", what, st, body)
	require.Equal(tb, "application/json", strings.Split(h.Get("Content-Type"), ";")[0], "%s: %s", what, body)
	require.Contains(tb, h.Get("Cache-Control"), "no-store", what)
	var m map[string]any
	require.NoError(tb, json.Unmarshal(body, &m), "%s: %s", what, body)
	e, _ := m["error"].(string)
	require.NotEmpty(tb, e, "%s: %s", what, body)
	return m
}

// appRaw sends an app request with a fresh proof for a's key and its
// token, the Content-Type ctype ("" none) and extra headers.
func appRaw(tb testing.TB, a *reachApp, method, path, ctype, body string, hdr ...string) (int, http.Header, []byte) {
	tb.Helper()
	u := a.in.URL + path
	htu, _, _ := strings.Cut(u, "?")
	proof, err := a.key.Proof(method, htu, a.token.AccessToken)
	require.NoError(tb, err)
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(tb, err)
	req.Header.Set("Authorization", "DPoP "+a.token.AccessToken)
	req.Header.Set("DPoP", proof)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := a.in.HTTPClient().Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return resp.StatusCode, resp.Header, b
}

// TestRedteam_AppBodies (RR01): every app endpoint with a body, sent a
// wrong or missing Content-Type, an empty, truncated, non-object,
// duplicate-member, oversized or wrongly typed body, answers a 4xx
// RFC 6749 body with no-store; nothing is consumed: the task is still
// SEEN with no attempt, the ref still scans, the device keeps its name.
func TestRedteam_AppBodies(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := newAppEnv(t, b.store(t), reachEnvOptions{one: true})
			phone, phoneID := appOn(t, env, "carol", "carol-pw")
			tk := env.task(t, "carol", reach.KindAppAuth, nil)
			env.deliver(t, &tk)
			st, _, body := phone.do(t, http.MethodPost, "/reach/tasks/"+tk.ID+"/ack", "")
			require.Equal(t, http.StatusOK, st, "%s", body)
			scanned := env.task(t, "carol", reach.KindQuestion, nil)

			big := `{"name":"` + strings.Repeat("a", 17<<10) + `"}`
			bodies := []struct{ name, ctype, body string }{
				{"no content type", "", `{"ref":"x"}`},
				{"text/plain", "text/plain", `{"ref":"x"}`},
				{"form", "application/x-www-form-urlencoded", "ref=x"},
				{"json suffix type", "application/jsonx", `{}`},
				{"bad media type", "application/json; =", `{}`},
				{"empty", "application/json", ""},
				{"truncated", "application/json", `{"decision":`},
				{"null", "application/json", "null"},
				{"array", "application/json", "[]"},
				{"string", "application/json", `"x"`},
				{"two objects", "application/json", `{}{}`},
				{"duplicate member", "application/json", `{"decision":"deny","decision":"approve"}`},
				{"escaped duplicate", "application/json", `{"decision":"deny","d\u0065cision":"approve"}`},
				{"number overflow", "application/json", `{"binding_choice":1e400,"decision":"approve"}`},
				{"huge integer", "application/json", `{"binding_choice":99999999999999999999,"decision":"approve"}`},
				{"float pick", "application/json", `{"binding_choice":12.5,"decision":"approve"}`},
				{"string pick", "application/json", `{"binding_choice":"12","decision":"approve"}`},
				{"unknown member", "application/json", `{"decision":"approve","binding_choice":12,"admin":true}`},
				{"lone surrogate", "application/json", `{"name":"\ud800"}`},
				{"invalid utf-8", "application/json", "{\"name\":\"\xff\"}"},
				{"deep nesting", "application/json", strings.Repeat("[", 5000) + strings.Repeat("]", 5000)},
				{"oversized", "application/json", big},
			}
			paths := []struct{ method, path string }{
				{http.MethodPost, "/reach/devices"},
				{http.MethodPatch, "/reach/devices/" + phoneID},
				{http.MethodPost, "/reach/tasks/" + tk.ID + "/response"},
				{http.MethodPost, "/reach/scan"},
			}
			for _, p := range paths {
				for _, c := range bodies {
					st, h, body := appRaw(t, phone, p.method, p.path, c.ctype, c.body)
					m := requireErrorShape(t, p.method+" "+p.path+" "+c.name, st, h, body)
					if c.name == "oversized" {
						require.Equal(t, http.StatusRequestEntityTooLarge, st, "%s", body)
					} else {
						require.Equal(t, http.StatusBadRequest, st, "%s %s: %s", p.path, c.name, body)
						require.Equal(t, "invalid_request", m["error"], "%s %s", p.path, c.name)
					}
				}
			}
			got := env.stored(t, tk.ID)
			require.Equal(t, reach.StateSeen, got.State)
			require.Zero(t, got.Attempts, "a refused body spent no pick")
			d, err := env.rs.Device(t.Context(), phoneID)
			require.NoError(t, err)
			require.Equal(t, "Alice's phone", d.Name)
			st, _, body = phone.do(t, http.MethodPost, "/reach/scan", `{"ref":"`+scanned.Ref+`"}`)
			require.Equal(t, http.StatusOK, st, "the ref still scans: %s", body)
		})
	}
}

// TestRedteam_InboxWaitValues (RR02): ?wait= with a negative, huge,
// fractional, hexadecimal, exponent, empty-looking or repeated value is
// 400 invalid_request (RFC 6749 body, no-store), never a 500 or an
// unbounded hold; 0 answers at once.
func TestRedteam_InboxWaitValues(t *testing.T) {
	env := newAppEnv(t, nil, reachEnvOptions{one: true})
	phone, _ := appOn(t, env, "carol", "carol-pw")
	for _, w := range []string{"-1", "-0x1", "1.5", "0x10", "1e3", "abc", "9999999", "99999999999999999999", "%00", "1%20", "wait", "2&wait=3"} {
		st, h, body := appRaw(t, phone, http.MethodGet, "/reach/inbox?wait="+w, "", "")
		m := requireErrorShape(t, "wait="+w, st, h, body)
		require.Equal(t, http.StatusBadRequest, st, "wait=%s: %s", w, body)
		require.Equal(t, "invalid_request", m["error"])
	}
	st, _, body := appRaw(t, phone, http.MethodGet, "/reach/inbox?wait=0", "", "")
	require.Equal(t, http.StatusOK, st, "%s", body)
	for _, id := range []string{"1-", "x", strings.Repeat("9", 60), "-1-0", "1-1-1"} {
		st, h, body := appRaw(t, phone, http.MethodGet, "/reach/inbox/events", "", "", "Last-Event-ID", id)
		requireErrorShape(t, "Last-Event-ID "+id, st, h, body)
		st, h, body = appRaw(t, phone, http.MethodGet, "/reach/inbox?wait=0&after="+url.QueryEscape(id), "", "")
		requireErrorShape(t, "after="+id, st, h, body)
	}
}

// TestRedteam_PickBruteForce (RR03): number matching holds against a
// hostile app. Concurrent wrong picks count exactly MaxPicks: two 400
// binding_mismatch (attempts_left 2 then 1), one 403 access_denied, the
// rest 409 invalid_state, the task FAILED with 3 attempts; the right
// number afterwards is 409 and FAILED stays. A pick that is not one of
// the numbers offered is a wrong pick (never a free guess); a pick of a
// malformed type spends nothing.
func TestRedteam_PickBruteForce(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := newAppEnv(t, b.store(t), reachEnvOptions{one: true})
			phone, _ := appOn(t, env, "carol", "carol-pw")
			open := func() reach.Task {
				tk := env.task(t, "carol", reach.KindAppAuth, nil)
				env.deliver(t, &tk)
				st, _, body := phone.do(t, http.MethodPost, "/reach/tasks/"+tk.ID+"/ack", "")
				require.Equal(t, http.StatusOK, st, "%s", body)
				return tk
			}
			wrong := func(tk reach.Task) int {
				for _, c := range tk.Binding.Choices {
					if c != tk.Binding.Right {
						return c
					}
				}
				return 0
			}

			tk := open()
			const n = 12
			type res struct {
				st   int
				body map[string]any
			}
			out := make([]res, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					st, _, body := tryApp(phone, http.MethodPost, "/reach/tasks/"+tk.ID+"/response",
						fmt.Sprintf(`{"decision":"approve","binding_choice":%d,"amr":["pin"]}`, wrong(tk)))
					out[i] = res{st, body}
				}()
			}
			close(start)
			wg.Wait()
			count := map[int]int{}
			left := map[float64]int{}
			for _, r := range out {
				count[r.st]++
				if r.st == http.StatusBadRequest {
					require.Equal(t, "binding_mismatch", r.body["error"])
					left[r.body["attempts_left"].(float64)]++
				}
			}
			require.Equal(t, map[int]int{http.StatusBadRequest: 2, http.StatusForbidden: 1, http.StatusConflict: n - 3}, count)
			require.Equal(t, map[float64]int{2: 1, 1: 1}, left)
			got := env.stored(t, tk.ID)
			require.Equal(t, reach.StateFailed, got.State)
			require.Equal(t, reach.MaxPicks, got.Attempts)
			st, _, body := phone.do(t, http.MethodPost, "/reach/tasks/"+tk.ID+"/response",
				fmt.Sprintf(`{"decision":"approve","binding_choice":%d,"amr":["pin"]}`, tk.Binding.Right))
			require.Equal(t, http.StatusConflict, st, "pick after failure: %s", body)
			require.Equal(t, reach.StateFailed, env.stored(t, tk.ID).State)

			// Numbers never offered are wrong picks; malformed ones spend
			// nothing.
			tk = open()
			for _, bad := range []string{`"12"`, `12.5`, `1e400`, `null`, `true`, `[12]`} {
				st, _, body := phone.do(t, http.MethodPost, "/reach/tasks/"+tk.ID+"/response", `{"decision":"approve","binding_choice":`+bad+`,"amr":["pin"]}`)
				require.Equal(t, http.StatusBadRequest, st, "%s: %s", bad, body)
				require.Equal(t, "invalid_request", jsonOf(t, body)["error"], bad)
			}
			require.Zero(t, env.stored(t, tk.ID).Attempts)
			for i, pick := range []int{-1, 0} {
				st, _, body := phone.do(t, http.MethodPost, "/reach/tasks/"+tk.ID+"/response", fmt.Sprintf(`{"decision":"approve","binding_choice":%d,"amr":["pin"]}`, pick))
				require.Equal(t, http.StatusBadRequest, st, "%s", body)
				require.Equal(t, "binding_mismatch", jsonOf(t, body)["error"])
				require.EqualValues(t, reach.MaxPicks-1-i, jsonOf(t, body)["attempts_left"])
			}
			st, _, body = phone.do(t, http.MethodPost, "/reach/tasks/"+tk.ID+"/response", `{"decision":"approve","binding_choice":100,"amr":["pin"]}`)
			require.Equal(t, http.StatusForbidden, st, "%s", body)
			require.Equal(t, reach.StateFailed, env.stored(t, tk.ID).State)
		})
	}
}

// TestRedteam_PickRace (RR04): right and wrong picks racing on one task
// end it exactly once: either approved (one 200, at most two
// binding_mismatch, no 403) or failed (one 403, no 200), the rest 409.
func TestRedteam_PickRace(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := newAppEnv(t, b.store(t), reachEnvOptions{one: true})
			phone, _ := appOn(t, env, "carol", "carol-pw")
			for range 5 {
				tk := env.task(t, "carol", reach.KindAppAuth, nil)
				env.deliver(t, &tk)
				st, _, body := phone.do(t, http.MethodPost, "/reach/tasks/"+tk.ID+"/ack", "")
				require.Equal(t, http.StatusOK, st, "%s", body)
				var picks []int
				for _, c := range tk.Binding.Choices {
					picks = append(picks, c, c, c)
				}
				sts := make([]int, len(picks))
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i, p := range picks {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						sts[i], _, _ = tryApp(phone, http.MethodPost, "/reach/tasks/"+tk.ID+"/response",
							fmt.Sprintf(`{"decision":"approve","binding_choice":%d,"amr":["pin"]}`, p))
					}()
				}
				close(start)
				wg.Wait()
				count := map[int]int{}
				for _, s := range sts {
					count[s]++
				}
				got := env.stored(t, tk.ID)
				require.Equal(t, 1, count[http.StatusOK]+count[http.StatusForbidden], "one end: %v", count)
				require.LessOrEqual(t, count[http.StatusBadRequest], 2, "%v", count)
				require.Equal(t, len(picks), count[http.StatusOK]+count[http.StatusForbidden]+count[http.StatusBadRequest]+count[http.StatusConflict], "%v", count)
				if count[http.StatusOK] == 1 {
					require.Equal(t, reach.StateApproved, got.State)
				} else {
					require.Equal(t, reach.StateFailed, got.State)
				}
			}
		})
	}
}

// tryApp is a.do that never fails the test (safe in goroutines): the
// status, headers and decoded body (nil when not JSON), status 0 on a
// transport error.
func tryApp(a *reachApp, method, path, body string) (int, http.Header, map[string]any) {
	u := a.in.URL + path
	htu, _, _ := strings.Cut(u, "?")
	proof, err := a.key.Proof(method, htu, a.token.AccessToken)
	if err != nil {
		return 0, nil, nil
	}
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		return 0, nil, nil
	}
	req.Header.Set("Authorization", "DPoP "+a.token.AccessToken)
	req.Header.Set("DPoP", proof)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.in.HTTPClient().Do(req)
	if err != nil {
		return 0, nil, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, resp.Header, m
}

var (
	_ = url.Values{}
	_ = config.ScopeReachDevice
	_ = server.PathReachDevices
)

// TestRedteam_ScanRace (RR13): 20 concurrent scans of one ref, on both
// instances, by one device and by another user's: exactly one 200, the
// others 404 not_found; the task is SEEN once with one device added.
func TestRedteam_ScanRace(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := newAppEnv(t, b.store(t), reachEnvOptions{})
			carol, carolID := appOn(t, env, "carol", "carol-pw")
			alice, _ := appOn(t, env, "alice", "wonderland")
			tk := env.task(t, "carol", reach.KindAppAuth, nil)
			const n = 20
			sts := make([]int, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				a := carol
				if i%2 == 1 {
					a = alice
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					sts[i], _, _ = tryApp(a, http.MethodPost, "/reach/scan", `{"ref":"`+tk.Ref+`"}`)
				}()
			}
			close(start)
			wg.Wait()
			count := map[int]int{}
			for _, s := range sts {
				count[s]++
			}
			require.Equal(t, map[int]int{http.StatusOK: 1, http.StatusNotFound: n - 1}, count)
			got := env.stored(t, tk.ID)
			require.Equal(t, reach.StateSeen, got.State)
			require.Len(t, got.Devices, 1)
			_ = carolID
		})
	}
}
