package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/reach"
)

// taskAnswerOf reads the answer a task's record holds (server taskAnswer).
func taskAnswerOf(tb testing.TB, t reach.Task) map[string]any {
	tb.Helper()
	var rec struct {
		A map[string]any `json:"a"`
	}
	require.NoError(tb, json.Unmarshal(t.Result, &rec))
	return rec.A
}

// appOn is a signed-in app of user with its device registered and
// present.
func appOn(tb testing.TB, env *appEnv, user, password string) (*reachApp, string) {
	tb.Helper()
	a := signInApp(tb, env.a, user, password, "")
	d := a.register(tb, "", http.StatusCreated)
	a.poll(tb, env.a, "?wait=0")
	return a, d.DeviceID
}

// TestReachApp_TaskViewAndAck: the delivered device reads the task as the
// app shows it and acks it (SEEN, interacting); another device of the
// same user it was not delivered to, and another user's device, get 404
// for every task endpoint, and nothing changes (SECURITY-RESULTS.md
// RA11).
func TestReachApp_TaskViewAndAck(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := newAppEnv(t, b.store(t), reachEnvOptions{})
			phone, _ := appOn(t, env, "carol", "carol-pw")
			tk := env.task(t, "carol", reach.KindAppAuth, display{"client_id": "demo-app", "client_name": "Demo app",
				"initiator": map[string]any{"ip": "192.0.2.1", "user_agent": "Firefox", "location": "Berlin"}})
			env.deliver(t, &tk)
			late, _ := appOn(t, env, "carol", "carol-pw") // registered after the delivery
			stranger, _ := appOn(t, env, "alice", "wonderland")
			for _, a := range []*reachApp{late, stranger} {
				for _, c := range []struct{ method, path, body string }{
					{http.MethodGet, "/reach/tasks/" + tk.ID, ""},
					{http.MethodPost, "/reach/tasks/" + tk.ID + "/ack", ""},
					{http.MethodPost, "/reach/tasks/" + tk.ID + "/response", `{"decision":"deny"}`},
					{http.MethodGet, "/reach/tasks/" + reach.NewID(), ""},
					{http.MethodGet, "/reach/tasks/not-an-id", ""},
				} {
					st, _, body := a.do(t, c.method, c.path, c.body)
					require.Equal(t, http.StatusNotFound, st, "%s %s: %s", c.method, c.path, body)
					require.Equal(t, "not_found", jsonOf(t, body)["error"])
				}
			}
			require.Equal(t, reach.StateDelivered, env.stored(t, tk.ID).State)

			st, _, body := phone.doAt(t, env.b, http.MethodGet, "/reach/tasks/"+tk.ID, "")
			require.Equal(t, http.StatusOK, st, "%s", body)
			v := jsonOf(t, body)
			require.Equal(t, "pending", v["status"])
			require.Equal(t, "Demo app", v["client_name"])
			require.Equal(t, "Berlin", v["initiator"].(map[string]any)["location"])
			require.Len(t, v["binding_choices"], reach.BindingChoices)
			require.NotContains(t, string(body), "carol", "no user id in the view")
			require.NotContains(t, string(body), tk.Ref, "the ref is never shown")

			st, _, body = phone.do(t, http.MethodPost, "/reach/tasks/"+tk.ID+"/ack", "")
			require.Equal(t, http.StatusOK, st, "%s", body)
			require.Equal(t, "interacting", jsonOf(t, body)["status"])
			require.Equal(t, reach.StateSeen, env.stored(t, tk.ID).State)
			st, _, _ = phone.do(t, http.MethodPost, "/reach/tasks/"+tk.ID+"/ack", "")
			require.Equal(t, http.StatusOK, st, "ack is idempotent")
		})
	}
}

// TestReachApp_Scan: a ref is taken once; the scanning device is
// recorded on the task (and may then read it); a device of another user
// may scan and ack, but its answer is refused as other_user and denies
// the task (SECURITY-RESULTS.md RA12).
func TestReachApp_Scan(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := newAppEnv(t, b.store(t), reachEnvOptions{})
			phone, phoneID := appOn(t, env, "carol", "carol-pw")
			tk := env.task(t, "carol", reach.KindAppAuth, nil)
			st, _, body := phone.do(t, http.MethodPost, "/reach/scan", `{"ref":"`+tk.Ref+`"}`)
			require.Equal(t, http.StatusOK, st, "%s", body)
			v := jsonOf(t, body)
			require.Equal(t, tk.ID, v["id"])
			require.Equal(t, "interacting", v["status"])
			got := env.stored(t, tk.ID)
			require.Equal(t, reach.StateSeen, got.State)
			require.Contains(t, got.Devices, phoneID)
			st, _, _ = phone.do(t, http.MethodGet, "/reach/tasks/"+tk.ID, "")
			require.Equal(t, http.StatusOK, st)
			// Single use, on any instance.
			st, _, body = phone.doAt(t, env.b, http.MethodPost, "/reach/scan", `{"ref":"`+tk.Ref+`"}`)
			require.Equal(t, http.StatusNotFound, st, "%s", body)
			for _, bad := range []string{`{"ref":"short"}`, `{}`, `{"ref":"` + tk.Ref + `","x":1}`} {
				st, _, _ = phone.do(t, http.MethodPost, "/reach/scan", bad)
				require.Equal(t, http.StatusBadRequest, st, bad)
			}

			// Consent phishing: alice scans carol's code.
			t2 := env.task(t, "carol", reach.KindAppAuth, nil)
			mallory, malloryID := appOn(t, env, "alice", "wonderland")
			st, _, body = mallory.do(t, http.MethodPost, "/reach/scan", `{"ref":"`+t2.Ref+`"}`)
			require.Equal(t, http.StatusOK, st, "%s", body)
			st, _, body = mallory.doAt(t, env.b, http.MethodPost, "/reach/tasks/"+t2.ID+"/response",
				fmt.Sprintf(`{"decision":"approve","binding_choice":%d,"amr":["pin"]}`, t2.Binding.Right))
			require.Equal(t, http.StatusForbidden, st, "%s", body)
			require.Equal(t, "access_denied", jsonOf(t, body)["error"])
			got = env.stored(t, t2.ID)
			require.Equal(t, reach.StateDenied, got.State)
			a := taskAnswerOf(t, got)
			require.Equal(t, "other_user", a["reason"])
			require.Equal(t, "alice", a["user"])
			require.Equal(t, malloryID, a["device"])
		})
	}
}

// TestReachApp_ResponseRules: the number-matching and question rules,
// each inside the one compare-and-swap (SECURITY-RESULTS.md RA13): a
// response before the ack is 409; a wrong pick is 400 binding_mismatch
// with attempts_left, the third 403 access_denied and FAILED; a second
// response is 409 and changes nothing; a question's statement must be
// one of its statements, its amr present and its acr meet wished_acr.
func TestReachApp_ResponseRules(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := newAppEnv(t, b.store(t), reachEnvOptions{})
			phone, phoneID := appOn(t, env, "carol", "carol-pw")
			respond := func(id, body string) (int, map[string]any) {
				st, _, b := phone.doAt(t, env.b, http.MethodPost, "/reach/tasks/"+id+"/response", body)
				return st, jsonOf(t, b)
			}
			ack := func(id string) {
				st, _, b := phone.do(t, http.MethodPost, "/reach/tasks/"+id+"/ack", "")
				require.Equal(t, http.StatusOK, st, "%s", b)
			}
			wrong := func(tk reach.Task) int {
				for _, c := range tk.Binding.Choices {
					if c != tk.Binding.Right {
						return c
					}
				}
				return 0
			}

			// Three wrong picks fail the task.
			tk := env.task(t, "carol", reach.KindAppAuth, nil)
			env.deliver(t, &tk)
			pick := fmt.Sprintf(`{"decision":"approve","binding_choice":%d,"amr":["hwk","face"]}`, wrong(tk))
			st, body := respond(tk.ID, pick)
			require.Equal(t, http.StatusConflict, st, "not acked yet: %v", body)
			require.Equal(t, "invalid_state", body["error"])
			ack(tk.ID)
			st, body = respond(tk.ID, `{"decision":"approve","amr":["pin"]}`)
			require.Equal(t, http.StatusBadRequest, st, "approve without a pick: %v", body)
			for left := 2; left >= 1; left-- {
				st, body = respond(tk.ID, pick)
				require.Equal(t, http.StatusBadRequest, st)
				require.Equal(t, "binding_mismatch", body["error"])
				require.EqualValues(t, left, body["attempts_left"])
				require.Equal(t, reach.StateSeen, env.stored(t, tk.ID).State)
			}
			st, body = respond(tk.ID, pick)
			require.Equal(t, http.StatusForbidden, st)
			require.Equal(t, "access_denied", body["error"])
			got := env.stored(t, tk.ID)
			require.Equal(t, reach.StateFailed, got.State)
			require.Equal(t, "binding", taskAnswerOf(t, got)["reason"])
			st, _ = respond(tk.ID, fmt.Sprintf(`{"decision":"approve","binding_choice":%d}`, tk.Binding.Right))
			require.Equal(t, http.StatusConflict, st, "ended")
			require.Equal(t, reach.StateFailed, env.stored(t, tk.ID).State)

			// The right pick approves, once.
			tk = env.task(t, "carol", reach.KindAppAuth, nil)
			env.deliver(t, &tk)
			ack(tk.ID)
			st, body = respond(tk.ID, fmt.Sprintf(`{"decision":"approve","binding_choice":%d,"amr":["hwk","face"]}`, tk.Binding.Right))
			require.Equal(t, http.StatusOK, st, "%v", body)
			require.Equal(t, "approved", body["status"])
			got = env.stored(t, tk.ID)
			require.Equal(t, reach.StateApproved, got.State)
			a := taskAnswerOf(t, got)
			require.Equal(t, "phr", a["acr"])
			require.Equal(t, "carol", a["user"])
			require.Equal(t, phoneID, a["device"])
			st, body = respond(tk.ID, `{"decision":"deny"}`)
			require.Equal(t, http.StatusConflict, st, "%v", body)
			require.Equal(t, reach.StateApproved, env.stored(t, tk.ID).State)

			// A question.
			q := env.task(t, "carol", reach.KindQuestion, display{"client_id": "demo-app", "client_name": "Demo app",
				"question": "Did you order a pizza?", "statements": []string{"Yes", "No"}, "wished_acr": "phr"})
			env.deliver(t, &q)
			ack(q.ID)
			for _, c := range []struct {
				body string
				code string
			}{
				{`{"decision":"approve","amr":["pin"]}`, "invalid_request"},
				{`{"decision":"answer","statement":"Yes"}`, "invalid_request"},
				{`{"decision":"answer","statement":"yes","amr":["hwk","pin"]}`, "invalid_request"},
				{`{"decision":"answer","statement":"Yes","amr":["pin"]}`, "insufficient_user_authentication"},
				{`{"decision":"answer","statement":"Yes","amr":["hwk","pin"],"extra":1}`, "invalid_request"},
				{`{"decision":"answer","statement":"Yes","amr":["a b"]}`, "invalid_request"},
			} {
				st, body = respond(q.ID, c.body)
				require.Equal(t, http.StatusBadRequest, st, "%s: %v", c.body, body)
				require.Equal(t, c.code, body["error"], c.body)
			}
			require.Equal(t, reach.StateSeen, env.stored(t, q.ID).State, "refusals change nothing")
			st, body = respond(q.ID, `{"decision":"answer","statement":"No","amr":["hwk","pin"]}`)
			require.Equal(t, http.StatusOK, st, "%v", body)
			require.Equal(t, "answered", body["status"])
			a = taskAnswerOf(t, env.stored(t, q.ID))
			require.Equal(t, "No", a["statement"])
			require.Equal(t, "phr", a["acr"])

			// Deny.
			d := env.task(t, "carol", reach.KindInteraction, nil)
			env.deliver(t, &d)
			ack(d.ID)
			st, body = respond(d.ID, `{"decision":"deny"}`)
			require.Equal(t, http.StatusOK, st, "%v", body)
			require.Equal(t, "denied", body["status"])
		})
	}
}

// TestReachApp_ConcurrentResponses: 50 right answers at once, across both
// instances, through a barrier: exactly one wins (200), every other is
// 409 and the task is APPROVED once (SECURITY-RESULTS.md RA14).
func TestReachApp_ConcurrentResponses(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := newAppEnv(t, b.store(t), reachEnvOptions{})
			phone, _ := appOn(t, env, "carol", "carol-pw")
			tk := env.task(t, "carol", reach.KindAppAuth, nil)
			env.deliver(t, &tk)
			st, _, _ := phone.do(t, http.MethodPost, "/reach/tasks/"+tk.ID+"/ack", "")
			require.Equal(t, http.StatusOK, st)
			body := fmt.Sprintf(`{"decision":"approve","binding_choice":%d,"amr":["pin"]}`, tk.Binding.Right)
			const n = 50
			start := make(chan struct{})
			statuses := make([]int, n)
			var wg sync.WaitGroup
			for i := range n {
				in := env.a
				if i%2 == 1 {
					in = env.b
				}
				wg.Go(func() {
					<-start
					statuses[i], _, _ = phone.doAt(t, in, http.MethodPost, "/reach/tasks/"+tk.ID+"/response", body)
				})
			}
			close(start)
			wg.Wait()
			won := 0
			for _, s := range statuses {
				switch s {
				case http.StatusOK:
					won++
				default:
					require.Equal(t, http.StatusConflict, s)
				}
			}
			require.Equal(t, 1, won)
			require.Equal(t, reach.StateApproved, env.stored(t, tk.ID).State)
		})
	}
}

// TestReachApp_AckWakesTaskWaiter: an ack on one instance wakes a
// waiter on the task's topic (the front ends' long poll) through the
// deployment's hub.
func TestReachApp_AckWakesTaskWaiter(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := newAppEnv(t, b.store(t), reachEnvOptions{})
			phone, _ := appOn(t, env, "carol", "carol-pw")
			tk := env.task(t, "carol", reach.KindQuestion, nil)
			env.deliver(t, &tk)
			done := make(chan error, 1)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				done <- env.hub.Wait(ctx, reach.TaskTopic(tk.ID), func(ctx context.Context) (bool, error) {
					got, err := env.rs.Task(ctx, tk.ID)
					return err == nil && got.State == reach.StateSeen, err
				})
			}()
			st, _, _ := phone.doAt(t, env.b, http.MethodPost, "/reach/tasks/"+tk.ID+"/ack", "")
			require.Equal(t, http.StatusOK, st)
			require.NoError(t, <-done)
		})
	}
}

// TestReachApp_EndedAndOversized: an ack or scan of an ended task is
// 409 invalid_state; every body endpoint refuses a body over 16 KiB
// (413) and a bad Last-Event-ID is 400 (SECURITY-RESULTS.md RA13).
func TestReachApp_EndedAndOversized(t *testing.T) {
	env := newAppEnv(t, nil, reachEnvOptions{one: true})
	phone, phoneID := appOn(t, env, "carol", "carol-pw")
	ctx := context.Background()
	tk := env.task(t, "carol", reach.KindQuestion, nil)
	env.deliver(t, &tk)
	_, err := env.rs.TransitionTask(ctx, tk.ID, []reach.State{reach.StateDelivered}, reach.StateSuperseded, nil)
	require.NoError(t, err)
	st, _, body := phone.do(t, http.MethodPost, "/reach/tasks/"+tk.ID+"/ack", "")
	require.Equal(t, http.StatusConflict, st, "%s", body)
	require.Equal(t, "invalid_state", jsonOf(t, body)["error"])
	st, _, body = phone.do(t, http.MethodPost, "/reach/scan", `{"ref":"`+tk.Ref+`"}`)
	require.Equal(t, http.StatusConflict, st, "%s", body)
	st, _, body = phone.do(t, http.MethodGet, "/reach/tasks/"+tk.ID, "")
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, "superseded", jsonOf(t, body)["status"])

	huge := `{"name":"` + strings.Repeat("a", 17<<10) + `"}`
	for _, p := range []struct{ method, path string }{
		{http.MethodPost, "/reach/devices"},
		{http.MethodPatch, "/reach/devices/" + phoneID},
		{http.MethodPost, "/reach/tasks/" + tk.ID + "/response"},
		{http.MethodPost, "/reach/scan"},
	} {
		st, _, body := phone.do(t, p.method, p.path, huge)
		require.Equal(t, http.StatusRequestEntityTooLarge, st, "%s %s: %s", p.method, p.path, body)
	}
	st, _, body = phone.send(t, env.a, http.MethodGet, "/reach/inbox/events", "", func(r *http.Request) { r.Header.Set("Last-Event-ID", "nope") })
	require.Equal(t, http.StatusBadRequest, st, "%s", body)
	st, _, _ = phone.do(t, http.MethodPatch, "/reach/devices/"+phoneID, `{"platform":"android"}`)
	require.Equal(t, http.StatusBadRequest, st, "platform is not patchable")
	// A device unknown to the stream and the inbox: 404.
	st, _, _ = phone.do(t, http.MethodDelete, "/reach/devices/"+phoneID, "")
	require.Equal(t, http.StatusNoContent, st)
	for _, p := range []string{"/reach/inbox/events", "/reach/inbox"} {
		st, _, _ = phone.do(t, http.MethodGet, p, "")
		require.Equal(t, http.StatusNotFound, st, p)
	}
}

// TestReachApp_TaskInDeliveryVisibleToItsInbox (SECURITY-RESULTS.md RA11b):
// the inbox channel stores the entry, and the long poll may hand it to
// the app, before Reach records the device on the task (still CREATED).
// The device whose inbox holds the task reads and acks it (its ack
// records it); another device of the same user whose inbox does not, and
// another user's device, still get 404 for every task endpoint.
func TestReachApp_TaskInDeliveryVisibleToItsInbox(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := newAppEnv(t, b.store(t), reachEnvOptions{})
			phone, phoneID := appOn(t, env, "carol", "carol-pw")
			other, _ := appOn(t, env, "carol", "carol-pw")
			stranger, _ := appOn(t, env, "alice", "wonderland")
			tk := env.task(t, "carol", reach.KindAppAuth, nil)
			ref, err := json.Marshal(tk.TaskRef())
			require.NoError(t, err)
			_, err = env.rs.AppendInbox(context.Background(), phoneID, ref)
			require.NoError(t, err)
			require.Equal(t, reach.StateCreated, env.stored(t, tk.ID).State)

			for _, a := range []*reachApp{other, stranger} {
				for _, c := range []struct{ method, path, body string }{
					{http.MethodGet, "/reach/tasks/" + tk.ID, ""},
					{http.MethodPost, "/reach/tasks/" + tk.ID + "/ack", ""},
					{http.MethodPost, "/reach/tasks/" + tk.ID + "/response", `{"decision":"deny"}`},
				} {
					st, _, body := a.do(t, c.method, c.path, c.body)
					require.Equal(t, http.StatusNotFound, st, "%s %s: %s", c.method, c.path, body)
				}
			}
			require.Equal(t, reach.StateCreated, env.stored(t, tk.ID).State, "refused requests change nothing")

			st, _, body := phone.do(t, http.MethodGet, "/reach/tasks/"+tk.ID, "")
			require.Equal(t, http.StatusOK, st, "%s", body)
			require.Equal(t, "pending", jsonOf(t, body)["status"])
			st, _, body = phone.do(t, http.MethodPost, "/reach/tasks/"+tk.ID+"/ack", "")
			require.Equal(t, http.StatusOK, st, "%s", body)
			got := env.stored(t, tk.ID)
			require.Equal(t, reach.StateSeen, got.State)
			require.Equal(t, []string{phoneID}, got.Devices)
		})
	}
}
