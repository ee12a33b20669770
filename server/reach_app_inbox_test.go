package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
)

type inboxPage struct {
	Entries []struct {
		ID   string `json:"id"`
		Task string `json:"task"`
		Kind string `json:"kind"`
	} `json:"entries"`
	Next string `json:"next"`
}

// poll is one inbox long poll of a at in.
func (a *reachApp) poll(tb testing.TB, in *servertest.Instance, query string) inboxPage {
	tb.Helper()
	st, h, body := a.doAt(tb, in, http.MethodGet, "/reach/inbox"+query, "")
	require.Equal(tb, http.StatusOK, st, "%s", body)
	require.Equal(tb, "no-store", h.Get("Cache-Control"))
	var p inboxPage
	require.NoError(tb, json.Unmarshal(body, &p))
	return p
}

// TestReachApp_InboxLongPollAcrossInstances: the app's long poll on
// instance a is woken by a delivery made by another instance (the
// deployment's Reacher), on memory and Redis; it answers the entry
// {id, task, kind} and the cursor, and the next poll from that cursor
// holds nothing old (SECURITY-RESULTS.md RA06).
func TestReachApp_InboxLongPollAcrossInstances(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := newAppEnv(t, b.store(t), reachEnvOptions{})
			phone := signInApp(t, env.a, "carol", "carol-pw", "")
			dev := phone.register(t, "", http.StatusCreated)
			// Without presence the inbox channel is not available.
			t0 := env.task(t, "carol", reach.KindQuestion, nil)
			_, err := env.reacher.Reach(context.Background(), "carol", &t0)
			require.ErrorIs(t, err, reach.ErrNoChannel)

			require.Empty(t, phone.poll(t, env.a, "?wait=0").Entries, "a poll marks presence")
			done := make(chan inboxPage, 1)
			go func() { done <- phone.poll(t, env.a, "?wait=20") }()
			tk := env.task(t, "carol", reach.KindAppAuth, nil)
			require.Equal(t, []string{dev.DeviceID}, env.deliver(t, &tk))
			p := <-done
			require.Len(t, p.Entries, 1)
			require.Equal(t, tk.ID, p.Entries[0].Task)
			require.Equal(t, "app_auth", p.Entries[0].Kind)
			require.Equal(t, p.Entries[0].ID, p.Next)
			// From the cursor, at the other instance: nothing old.
			require.Empty(t, phone.poll(t, env.b, "?wait=0&after="+p.Next).Entries)
			require.Len(t, phone.poll(t, env.b, "?wait=0").Entries, 1)
		})
	}
}

// TestReachApp_InboxSuperseded: a newer poll of the same device (on the
// same instance) ends the older one at once with no entries; the newer
// one gets the delivery (SECURITY-RESULTS.md RA07).
func TestReachApp_InboxSuperseded(t *testing.T) {
	env := newAppEnv(t, nil, reachEnvOptions{one: true})
	phone := signInApp(t, env.a, "carol", "carol-pw", "")
	phone.register(t, "", http.StatusCreated)
	phone.poll(t, env.a, "?wait=0")
	res := make(chan inboxPage, 2)
	for range 2 {
		go func() { res <- phone.poll(t, env.a, "?wait=20") }()
	}
	first := <-res // whichever started first was superseded by the other
	require.Empty(t, first.Entries)
	tk := env.task(t, "carol", reach.KindQuestion, nil)
	env.deliver(t, &tk)
	second := <-res
	require.Len(t, second.Entries, 1)
	require.Equal(t, tk.ID, second.Entries[0].Task)
}

// TestReachApp_InboxRefusals: a bad wait or cursor is 400; a token whose
// key is no registered device is 404 (SECURITY-RESULTS.md RA08).
func TestReachApp_InboxRefusals(t *testing.T) {
	env := newAppEnv(t, nil, reachEnvOptions{one: true})
	phone := signInApp(t, env.a, "carol", "carol-pw", "")
	st, _, _ := phone.do(t, http.MethodGet, "/reach/inbox", "")
	require.Equal(t, http.StatusNotFound, st, "not registered")
	phone.register(t, "", http.StatusCreated)
	for _, q := range []string{"?wait=-1", "?wait=x", "?wait=1&wait=2", "?after=abc", "?after=1-2&after=3-4", "?after=" + strings.Repeat("1", 30) + "-1"} {
		st, _, body := phone.do(t, http.MethodGet, "/reach/inbox"+q, "")
		require.Equal(t, http.StatusBadRequest, st, "%s: %s", q, body)
	}
	require.Empty(t, phone.poll(t, env.a, "?wait=0&after=1-0").Entries)
}

// TestReachApp_Presence: the inbox channel delivers only while the
// device polls: a poll makes it present, and without polls presence
// lapses after storage.PresenceTTL (the store's clock, advanced) and the
// task has no channel (SECURITY-RESULTS.md RA09).
func TestReachApp_Presence(t *testing.T) {
	clock := &servertest.Clock{}
	st := memory.NewWithClock(clock.Now)
	t.Cleanup(func() { _ = st.Close() })
	env := newAppEnv(t, st, reachEnvOptions{})
	phone := signInApp(t, env.a, "carol", "carol-pw", "")
	dev := phone.register(t, "", http.StatusCreated)
	ctx := context.Background()
	present, err := env.rs.Present(ctx, dev.DeviceID)
	require.NoError(t, err)
	require.False(t, present)
	phone.poll(t, env.b, "?wait=0")
	present, err = env.rs.Present(ctx, dev.DeviceID)
	require.NoError(t, err)
	require.True(t, present)
	tk := env.task(t, "carol", reach.KindQuestion, nil)
	require.Equal(t, []string{dev.DeviceID}, env.deliver(t, &tk))

	clock.Advance(storage.PresenceTTL + time.Second)
	present, err = env.rs.Present(ctx, dev.DeviceID)
	require.NoError(t, err)
	require.False(t, present)
	t2 := env.task(t, "carol", reach.KindQuestion, nil)
	_, err = env.reacher.Reach(ctx, "carol", &t2)
	require.ErrorIs(t, err, reach.ErrNoChannel)
	// Polling again brings it back.
	phone.poll(t, env.a, "?wait=0")
	t3 := env.task(t, "carol", reach.KindQuestion, nil)
	require.Equal(t, []string{dev.DeviceID}, env.deliver(t, &t3))
}

// sseEvent is one event of the inbox stream.
type sseEvent struct {
	ID   string
	Data string
}

// openEvents opens the inbox event stream of a at in (Last-Event-ID
// when last is set) and returns its events, the response headers and a
// close.
func (a *reachApp) openEvents(tb testing.TB, in *servertest.Instance, last string) (<-chan sseEvent, http.Header, func()) {
	tb.Helper()
	u := in.URL + "/reach/inbox/events"
	proof, err := a.key.Proof(http.MethodGet, u, a.token.AccessToken)
	require.NoError(tb, err)
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	require.NoError(tb, err)
	req.Header.Set("Authorization", "DPoP "+a.token.AccessToken)
	req.Header.Set("DPoP", proof)
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := in.HTTPClient().Do(req)
	require.NoError(tb, err)
	require.Equal(tb, http.StatusOK, resp.StatusCode)
	out := make(chan sseEvent, 16)
	go func() {
		defer close(out)
		r := bufio.NewReader(resp.Body)
		var ev sseEvent
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "" && ev.ID != "":
				out <- ev
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "data: "):
				ev.Data = line[6:]
			}
		}
	}()
	return out, resp.Header, func() { cancel(); _ = resp.Body.Close() }
}

// TestReachApp_InboxEvents: the SSE stream sends one event per entry
// (id = the entry id), live appends arrive, and a reconnect with
// Last-Event-ID resumes with no loss and no duplicate, on memory and
// Redis; it carries X-Accel-Buffering: no and no-store
// (SECURITY-RESULTS.md RA10).
func TestReachApp_InboxEvents(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := newAppEnv(t, b.store(t), reachEnvOptions{})
			phone := signInApp(t, env.a, "carol", "carol-pw", "")
			dev := phone.register(t, "", http.StatusCreated)
			ctx := context.Background()
			var tasks []string
			appendOne := func() {
				id := reach.NewID()
				tasks = append(tasks, id)
				data, _ := json.Marshal(reach.TaskRef{ID: id, Kind: reach.KindQuestion})
				_, err := env.rs.AppendInbox(ctx, dev.DeviceID, data)
				require.NoError(t, err)
				_ = env.hub.Notify(ctx, reach.InboxTopic(dev.DeviceID))
			}
			appendOne()
			appendOne()
			events, h, closeStream := phone.openEvents(t, env.a, "")
			require.Equal(t, "no", h.Get("X-Accel-Buffering"))
			require.Equal(t, "no-store", h.Get("Cache-Control"))
			require.Equal(t, "text/event-stream", h.Get("Content-Type"))
			var got []sseEvent
			for range 2 {
				got = append(got, <-events)
			}
			appendOne() // live, woken through the hub
			got = append(got, <-events)
			closeStream()
			appendOne()
			appendOne()
			events, _, closeStream = phone.openEvents(t, env.b, got[len(got)-1].ID)
			for range 2 {
				got = append(got, <-events)
			}
			closeStream()
			require.Len(t, got, 5)
			for i, ev := range got {
				var e struct{ ID, Task, Kind string }
				require.NoError(t, json.Unmarshal([]byte(ev.Data), &e))
				require.Equal(t, ev.ID, e.ID)
				require.Equal(t, tasks[i], e.Task, "in order, no loss, no duplicate")
			}
			present, err := env.rs.Present(ctx, dev.DeviceID)
			require.NoError(t, err)
			require.True(t, present, "the stream marks presence")
		})
	}
}
