package server_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/server/servertest"
)

// appPhone is our app on the user's other device as the cross-device,
// User Questioning and relay tests drive it: over real HTTP against one
// instance of the deployment (the other one than the waiter's), through
// the app API only (docs/reach.md "App API"): signed in to bank-app with
// its own DPoP key (signInApp), its device registered (POST
// /reach/devices), its inbox read (GET /reach/inbox, which marks the
// device present), tasks viewed, acked and answered (GET
// /reach/tasks/{id}, POST …/ack, …/response) and QR refs scanned (POST
// /reach/scan).
type appPhone struct {
	app *reachApp
	in  *servertest.Instance
	// clock dates the DPoP proofs when the deployment runs on a test
	// clock (nil: real time), so that they stay within its iat window.
	clock *servertest.Clock
	// id is the registered device's id.
	id string
	// cursor is the inbox position read so far, delivered the task ids
	// read up to it.
	cursor    string
	delivered []string
}

// appPasswords are testConfig's users' passwords (dave shares carol's
// hash).
var appPasswords = map[string]string{"carol": "carol-pw", "dave": "carol-pw", "alice": "wonderland"}

// newAppPhone signs user in to our app at in, registers the device with
// caps (every capability when none) reached through its inbox and, when
// present, reads its inbox once: the app's long poll is running, so the
// inbox channel delivers to it (storage.PresenceTTL).
func newAppPhone(tb testing.TB, in *servertest.Instance, clock *servertest.Clock, user string, present bool, caps ...reach.Kind) *appPhone {
	tb.Helper()
	pw, ok := appPasswords[user]
	require.True(tb, ok, "no password for %s", user)
	p := &appPhone{app: signInApp(tb, in, user, pw, ""), in: in, clock: clock}
	if len(caps) == 0 {
		caps = []reach.Kind{reach.KindAppAuth, reach.KindQuestion, reach.KindInteraction}
	}
	body, err := json.Marshal(map[string]any{"name": user + "'s phone", "platform": "ios", "capabilities": caps,
		"channels": []map[string]string{{"type": "inbox"}}})
	require.NoError(tb, err)
	st, b := p.call(tb, http.MethodPost, "/reach/devices", string(body))
	require.Equal(tb, http.StatusCreated, st, "%s", b)
	p.id = jsonOf(tb, b)["device_id"].(string)
	require.True(tb, reach.ValidID(p.id))
	if present {
		require.Empty(tb, p.inbox(tb, 0), "a new device's inbox is empty")
	}
	return p
}

// call sends one app request to the phone's instance with a fresh DPoP
// proof (htu without the query, RFC 9449 §4.2) dated by the clock.
func (p *appPhone) call(tb testing.TB, method, path, body string) (int, []byte) {
	tb.Helper()
	now := time.Now()
	if p.clock != nil {
		now = p.clock.Now()
	}
	htu, _, _ := strings.Cut(p.in.URL+path, "?")
	proof, err := p.app.key.ProofAt(method, htu, p.app.token.AccessToken, now)
	require.NoError(tb, err)
	st, _, b := rawAppRequest(tb, p.in, method, path, body, "DPoP "+p.app.token.AccessToken, proof)
	return st, b
}

// inbox reads the entries after the cursor (holding up to wait seconds
// for one) and returns their task ids; the read renews the presence.
func (p *appPhone) inbox(tb testing.TB, wait int) []string {
	tb.Helper()
	q := url.Values{}
	if wait > 0 {
		q.Set("wait", strconv.Itoa(wait))
	}
	if p.cursor != "" {
		q.Set("after", p.cursor)
	}
	path := "/reach/inbox"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	st, b := p.call(tb, http.MethodGet, path, "")
	require.Equal(tb, http.StatusOK, st, "%s", b)
	var page struct {
		Entries []struct {
			Task string `json:"task"`
		} `json:"entries"`
		Next string `json:"next"`
	}
	require.NoError(tb, json.Unmarshal(b, &page), "%s", b)
	ids := []string{}
	for _, e := range page.Entries {
		ids = append(ids, e.Task)
	}
	p.cursor = page.Next
	p.delivered = append(p.delivered, ids...)
	return ids
}

// awaitTask waits (long poll) until task id has reached the inbox, now
// or in an earlier read.
func (p *appPhone) awaitTask(tb testing.TB, id string) {
	tb.Helper()
	for range 10 {
		if slices.Contains(p.delivered, id) {
			return
		}
		p.inbox(tb, 20)
	}
	require.Contains(tb, p.delivered, id, "the task reached the inbox")
}

// nextTask waits (long poll) for the next delivery other than skip and
// returns its task id.
func (p *appPhone) nextTask(tb testing.TB, skip ...string) string {
	tb.Helper()
	for range 10 {
		for _, id := range p.inbox(tb, 20) {
			if !slices.Contains(skip, id) {
				return id
			}
		}
	}
	tb.Fatal("no delivery reached the inbox")
	return ""
}

// view is the task as the app is shown it (200 required).
func (p *appPhone) view(tb testing.TB, id string) map[string]any {
	tb.Helper()
	st, b := p.call(tb, http.MethodGet, "/reach/tasks/"+id, "")
	require.Equal(tb, http.StatusOK, st, "%s", b)
	return jsonOf(tb, b)
}

// ack opens the task on the app (interacting); acking an open task again
// is fine.
func (p *appPhone) ack(tb testing.TB, id string) {
	tb.Helper()
	st, b := p.call(tb, http.MethodPost, "/reach/tasks/"+id+"/ack", "")
	require.Equal(tb, http.StatusOK, st, "%s", b)
	require.Equal(tb, "interacting", jsonOf(tb, b)["status"])
}

// respond sends the user's answer (a taskResponse body) and returns the
// status and body.
func (p *appPhone) respond(tb testing.TB, id string, answer map[string]any) (int, map[string]any) {
	tb.Helper()
	body, err := json.Marshal(answer)
	require.NoError(tb, err)
	st, b := p.call(tb, http.MethodPost, "/reach/tasks/"+id+"/response", string(body))
	return st, jsonOf(tb, b)
}

// scan takes a QR code or deep link's reach_ref (POST /reach/scan): the
// task is opened for this device; its id is returned.
func (p *appPhone) scan(tb testing.TB, deepLink string) string {
	tb.Helper()
	u, err := url.Parse(deepLink)
	require.NoError(tb, err)
	body, err := json.Marshal(map[string]string{"ref": u.Query().Get("reach_ref")})
	require.NoError(tb, err)
	st, b := p.call(tb, http.MethodPost, "/reach/scan", string(body))
	require.Equal(tb, http.StatusOK, st, "%s", b)
	v := jsonOf(tb, b)
	require.Equal(tb, "interacting", v["status"])
	id, _ := v["id"].(string)
	require.True(tb, reach.ValidID(id), "%s", b)
	return id
}
