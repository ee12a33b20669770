package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/reach/wake"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
)

// The reach examples of docs/protocol.md ("Reach"): every party speaks
// the real wire — the initiating device and the relaying client through
// the native and relay endpoints, our app on the user's phone through
// the app API (POST /reach/devices, the inbox, the task endpoints) with
// its own DPoP key and token — against one instance on a test clock.

// reachExampleEnv is one recorded reach deployment: the instance, its
// clock and its wake hub (whose parked waiters say when a held poll is
// holding).
type reachExampleEnv struct {
	x     *example
	as    instance
	clock *servertest.Clock
	hub   *wake.Memory
}

func newReachExample(t *testing.T, name string, edit func(*config.Config)) *reachExampleEnv {
	log := newExampleLog()
	clock := &servertest.Clock{}
	hub := wake.NewMemory(wake.Options{})
	t.Cleanup(func() { _ = hub.Close() })
	as := log.start(t, "AS", "https://as.example", servertest.Options{Clock: clock, Reach: server.ReachOptions{Hub: hub}, Configure: func(c *config.Config) {
		reachConfig(c)
		if edit != nil {
			edit(c)
		}
	}})
	return &reachExampleEnv{x: newExample(name, log), as: as, clock: clock, hub: hub}
}

// party is one sender of an example: its DPoP key and, for a resource
// request, its access token; proofs carry the deployment's time.
type party struct {
	e     *reachExampleEnv
	key   *dpop.Key
	token string
}

func (e *reachExampleEnv) party(key *dpop.Key, token string) *party {
	return &party{e: e, key: key, token: token}
}

// request builds a request to path (or an absolute URL) with the
// party's proof (htu without the query, RFC 9449 §4.2) and token; hdr
// are more headers, in pairs.
func (p *party) request(tb testing.TB, method, path, contentType, body string, hdr ...string) *http.Request {
	tb.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		u = p.e.as.URL + path
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	require.NoError(tb, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if p.token != "" {
		req.Header.Set("Authorization", "DPoP "+p.token)
	}
	if p.key != nil {
		htu, _, _ := strings.Cut(u, "?")
		proof, err := p.key.ProofAt(method, htu, p.token, p.e.clock.Now())
		require.NoError(tb, err)
		req.Header.Set("DPoP", proof)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return req
}

// send sends one step.
func (p *party) send(tb testing.TB, caption, method, path, contentType, body string, hdr ...string) reply {
	tb.Helper()
	return p.e.x.send(tb, caption, p.request(tb, method, path, contentType, body, hdr...))
}

func (p *party) json(tb testing.TB, caption, method, path, body string, hdr ...string) reply {
	tb.Helper()
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	return p.send(tb, caption, method, path, ct, body, hdr...)
}

func (p *party) form(tb testing.TB, caption, path string, f url.Values) reply {
	tb.Helper()
	return p.send(tb, caption, http.MethodPost, path, "application/x-www-form-urlencoded", f.Encode())
}

// hold sends a step that the server holds (a long poll), returns once
// the server parks it on the hub, and gives the function that waits for
// its answer: the steps between release it.
func (p *party) hold(tb testing.TB, caption string, req *http.Request) func() reply {
	tb.Helper()
	x := p.e.x
	parked := p.e.hub.Waiting()
	n := x.begin(caption, req)
	got := make(chan reply, 1)
	failed := make(chan error, 1)
	go func() {
		r, err := doReply(req)
		if err != nil {
			failed <- err
			return
		}
		got <- r
	}()
	p.e.waitParked(tb, parked+1)
	return func() reply {
		tb.Helper()
		select {
		case r := <-got:
			x.end(n)
			return r
		case err := <-failed:
			tb.Fatalf("held step %s: %v", n, err)
		}
		return reply{}
	}
}

// waitParked waits until n requests are parked on the hub.
func (e *reachExampleEnv) waitParked(tb testing.TB, n int) {
	tb.Helper()
	for range 4000 {
		if e.hub.Waiting() >= n {
			return
		}
		time.Sleep(time.Millisecond) // synchronisation with the request in flight, not time passing
	}
	tb.Fatalf("no request parked on the hub (%d of %d)", e.hub.Waiting(), n)
}

// doReply is do without a testing.TB, for a request sent from another
// goroutine.
func doReply(req *http.Request) (reply, error) {
	resp, err := servertest.HTTP().Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	if len(b) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(b, &r.body); err != nil {
			return r, err
		}
	}
	return r, nil
}

// phone is carol's phone: our app signed in (unrecorded) with its own
// DPoP key and a DPoP-bound token of scope reach:device.
func (e *reachExampleEnv) phone(t *testing.T, user, password string) *party {
	a := signInApp(t, e.as.Instance, user, password, "")
	return e.party(a.key, a.token.AccessToken)
}

// register registers the phone's device (unrecorded) and returns its id.
func (p *party) register(t *testing.T) string {
	r := do(t, p.request(t, http.MethodPost, server.PathReachDevices, "application/json", carolsPhone))
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	id := r.str("device_id")
	require.True(t, reach.ValidID(id), r.raw)
	return id
}

const carolsPhone = `{"name":"Carol's phone","platform":"ios","capabilities":["app_auth","question","interaction"],"channels":[{"type":"inbox"}]}`

// taskOf is the task id at the end of a Location.
func taskOf(tb testing.TB, loc string) string {
	tb.Helper()
	id := loc[strings.LastIndexByte(loc, '/')+1:]
	require.True(tb, reach.ValidID(id), loc)
	return id
}

// bindingOf reads the number-matching choices of a task view: the right
// one is the initiating device's binding_code.
func bindingOf(tb testing.TB, view reply, code string) (right, wrong int) {
	tb.Helper()
	right, err := strconv.Atoi(code)
	require.NoError(tb, err)
	choices, _ := view.body["binding_choices"].([]any)
	require.Len(tb, choices, reach.BindingChoices, view.raw)
	wrong = -1
	seen := false
	for _, c := range choices {
		n := int(c.(float64))
		seen = seen || n == right
		if n != right && wrong < 0 {
			wrong = n
		}
	}
	require.True(tb, seen, "binding_code among the choices: %s", view.raw)
	return right, wrong
}

var (
	reachExpiresRE   = regexp.MustCompile(`"expires_in": ([0-9]+)`)
	unixMemberRE     = regexp.MustCompile(`"(created|last_seen)": [0-9]+`)
	bindingCodeRE    = regexp.MustCompile(`"binding_code": "([0-9]+)"`)
	bindingChoiceRE  = regexp.MustCompile(`"binding_choice": ([0-9]+)`)
	bindingChoicesRE = regexp.MustCompile(`"binding_choices": \[[^\]]*\]`)
	numberRE         = regexp.MustCompile(`[0-9]+`)
)

// reachPost scrubs what the reach answers add to the usual volatile
// values: expires_in rounded up to ten seconds (real time passes between
// a task's creation and its reads), the devices' Unix times, the
// number-matching numbers (right: <binding_code>, the one picked wrong:
// <wrong_choice>; the choices, in random order, by position), and the
// inbox's stream ids, which are short (<entry_id-n>, by first
// appearance).
func reachPost(right, wrong int, cursors []string) func(string) string {
	return func(s string) string {
		s = reachExpiresRE.ReplaceAllStringFunc(s, func(m string) string {
			n, _ := strconv.Atoi(reachExpiresRE.FindStringSubmatch(m)[1])
			return fmt.Sprintf(`"expires_in": %d`, (n+9)/10*10)
		})
		s = unixMemberRE.ReplaceAllStringFunc(s, func(m string) string {
			return m[:strings.Index(m, ":")+2] + strconv.Itoa(placeholderTime)
		})
		pick := func(n string) string {
			switch n {
			case strconv.Itoa(right):
				return "<binding_code>"
			case strconv.Itoa(wrong):
				return "<wrong_choice>"
			}
			return "<choice>"
		}
		s = bindingCodeRE.ReplaceAllStringFunc(s, func(m string) string {
			return `"binding_code": "` + pick(bindingCodeRE.FindStringSubmatch(m)[1]) + `"`
		})
		s = bindingChoiceRE.ReplaceAllStringFunc(s, func(m string) string {
			return `"binding_choice": ` + pick(bindingChoiceRE.FindStringSubmatch(m)[1])
		})
		s = bindingChoicesRE.ReplaceAllStringFunc(s, func(m string) string {
			i := 0
			return numberRE.ReplaceAllStringFunc(m, func(string) string { i++; return fmt.Sprintf("<choice-%d>", i) })
		})
		// Longest first, so that no cursor is replaced inside another.
		cs := append([]string(nil), cursors...)
		sort.Slice(cs, func(i, j int) bool { return len(cs[i]) > len(cs[j]) })
		for _, c := range cs {
			if c == "" {
				continue
			}
			label := "<entry_id>"
			if len(cursors) > 1 {
				for i, o := range cursors {
					if o == c {
						label = fmt.Sprintf("<entry_id-%d>", i+1)
					}
				}
			}
			s = strings.ReplaceAll(s, c, label)
		}
		return s
	}
}

// exampleReachDiscovery: the metadata members reach adds (the rest is
// the discovery example's).
func exampleReachDiscovery(t *testing.T) *example {
	e := newReachExample(t, "reach-discovery", relayConfig)
	x := e.x
	keep := map[string]bool{"reach_devices_endpoint": true, "reach_inbox_endpoint": true, "reach_inbox_events_endpoint": true,
		"reach_scan_endpoint": true, "interaction_endpoint": true, "user_questioning_request_endpoint": true,
		"user_questioning_polling_endpoint": true, "amr_list": true, "acr_list": true}
	x.display = func(ex servertest.Exchange) servertest.Exchange {
		var m map[string]any
		if json.Unmarshal(ex.Body, &m) != nil {
			return ex
		}
		out := map[string]any{}
		for k, v := range m {
			if keep[k] {
				out[k] = v
			}
		}
		ex.Body, _ = json.Marshal(out)
		return ex
	}
	r := x.get(t, "app → AS: the metadata of an AS with reach.enabled (only the members reach adds are shown)", e.as.URL+"/.well-known/oauth-authorization-server")
	require.Equal(t, http.StatusOK, r.status)
	for k := range keep {
		require.Contains(t, r.body, k)
	}
	require.Equal(t, e.as.URL+server.PathInteractions, r.str("interaction_endpoint"))
	require.Equal(t, e.as.URL+server.PathReachScan, r.str("reach_scan_endpoint"))
	return x
}

// exampleReachDevices: the app registers its device, registers again
// (idempotent), lists, renames, is refused without DPoP and for another
// key, and deletes its device.
func exampleReachDevices(t *testing.T) *example {
	e := newReachExample(t, "reach-devices", nil)
	x := e.x
	phone := e.phone(t, "carol", "carol-pw")
	tablet := e.phone(t, "carol", "carol-pw")
	r := phone.json(t, "phone → AS: our app registers the device of its DPoP key for its user", http.MethodPost, server.PathReachDevices, carolsPhone)
	require.Equal(t, http.StatusCreated, r.status, r.raw)
	id := r.str("device_id")
	require.True(t, reach.ValidID(id))
	require.Equal(t, e.as.URL+server.PathReachInbox, r.str("inbox_uri"))
	x.volatile = map[string]string{id: "device_id"}
	again := phone.json(t, "phone → AS: the same key again (a reinstall, a retry): the same device, updated", http.MethodPost, server.PathReachDevices, carolsPhone)
	require.Equal(t, http.StatusOK, again.status, again.raw)
	require.Equal(t, id, again.str("device_id"))
	l := phone.json(t, "phone → AS: the account's devices (never a webhook URL or push token)", http.MethodGet, server.PathReachDevices, "")
	require.Equal(t, http.StatusOK, l.status, l.raw)
	require.Len(t, l.body["devices"], 1)
	p := phone.json(t, "phone → AS: the device renames itself", http.MethodPatch, server.PathReachDevices+"/"+id, `{"name":"Carol's work phone"}`)
	require.Equal(t, http.StatusOK, p.status, p.raw)
	require.Equal(t, "Carol's work phone", p.str("name"))
	bearerReq := phone.request(t, http.MethodGet, server.PathReachDevices, "", "")
	bearerReq.Header.Set("Authorization", "Bearer "+phone.token)
	bearerReq.Header.Del("DPoP")
	b := x.send(t, "phone → AS: the token as a bearer token, without a proof: refused", bearerReq)
	requireOAuthError(t, b, http.StatusUnauthorized, "invalid_token")
	o := tablet.json(t, "tablet → AS: another key of the same account may not change the phone's device", http.MethodPatch, server.PathReachDevices+"/"+id, `{"name":"mine"}`)
	requireOAuthError(t, o, http.StatusNotFound, "not_found")
	d := phone.json(t, "phone → AS: the app signs out: it deletes its device", http.MethodDelete, server.PathReachDevices+"/"+id, "")
	require.Equal(t, http.StatusNoContent, d.status, d.raw)
	g := phone.json(t, "phone → AS: the inbox of a deleted device", http.MethodGet, server.PathReachInbox, "")
	requireOAuthError(t, g, http.StatusNotFound, "not_found")
	x.post = reachPost(-1, -1, nil)
	return x
}

// startCrossDevice is the initiating device's initial request for carol
// (recorded when caption is set) and its redirect_to_app answer.
func startCrossDevice(t *testing.T, e *reachExampleEnv, dev *party, pk sdk.PKCE, caption string) reply {
	f := pkceParams(pk, url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {"openid"},
		"login_hint": {"carol"}, "native_callback_uri": {cb}})
	var r reply
	if caption != "" {
		r = dev.form(t, caption, "/native/authorize", f)
	} else {
		r = do(t, dev.request(t, http.MethodPost, "/native/authorize", "application/x-www-form-urlencoded", f.Encode()))
	}
	requireOAuthError(t, r, http.StatusBadRequest, "redirect_to_app")
	require.Equal(t, e.as.URL+server.PathNativeReach, r.str("reach_uri"))
	return r
}

// exampleReachCrossDevice: redirect_to_app with reach_uri; the phone's
// held inbox poll is woken by the delivery; the device polls (pending,
// slow_down, a poll held with Prefer: wait); the phone reads and acks
// the task, picks a wrong number, then the right one; the held poll
// answers the rotated auth_session, which gets the code.
func exampleReachCrossDevice(t *testing.T) *example {
	e := newReachExample(t, "reach-cross-device", nil)
	x := e.x
	x.reqHeaders = []string{"Prefer"}
	phone := e.phone(t, "carol", "carol-pw")
	devID := phone.register(t)
	dev := e.party(newDPoPKey(t), "")
	pk := sdk.NewPKCE()
	first := startCrossDevice(t, e, dev, pk, "device → AS: the initial request names carol; our app may serve her on another device too: reach_uri")

	inbox := phone.hold(t, "phone → AS: our app's inbox long poll (the device is present while it polls), held up to wait seconds: step 3's delivery ends it",
		phone.request(t, http.MethodGet, server.PathReachInbox+"?wait=25", "", ""))
	r := dev.form(t, "device → AS: the user chose \"sign in with my phone\": a task for carol's devices", server.PathNativeReach, url.Values{"auth_session": {first.str("auth_session")}})
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	require.Equal(t, "pending", r.str("status"))
	loc := r.header.Get("Location")
	id := taskOf(t, loc)
	code := r.str("binding_code")
	ib := inbox()
	require.Equal(t, http.StatusOK, ib.status, ib.raw)
	entries, _ := ib.body["entries"].([]any)
	require.Len(t, entries, 1, ib.raw)
	entry := entries[0].(map[string]any)
	require.Equal(t, id, entry["task"])
	require.Equal(t, "app_auth", entry["kind"])
	next := ib.str("next")
	require.Equal(t, entry["id"], next)
	empty := phone.json(t, "phone → AS: the next poll sends the cursor (without wait: at once)", http.MethodGet, server.PathReachInbox+"?after="+next, "")
	require.Equal(t, http.StatusOK, empty.status, empty.raw)
	require.Empty(t, empty.body["entries"])

	p := dev.json(t, "device → AS: the device polls Location", http.MethodGet, loc, "")
	require.Equal(t, http.StatusAccepted, p.status, p.raw)
	require.Equal(t, "pending", p.str("status"))
	fast := dev.json(t, "device → AS: again at once: faster than interval", http.MethodGet, loc, "")
	requireOAuthError(t, fast, http.StatusTooManyRequests, "slow_down")
	require.NotEmpty(t, fast.header.Get("Retry-After"))

	view := phone.json(t, "phone → AS: our app reads the task it was given", http.MethodGet, server.PathReachTasks+id, "")
	require.Equal(t, http.StatusOK, view.status, view.raw)
	require.Equal(t, "app_auth", view.str("kind"))
	right, wrong := bindingOf(t, view, code)
	ack := phone.json(t, "phone → AS: it shows the task to carol (ack)", http.MethodPost, server.PathReachTasks+id+"/ack", "")
	require.Equal(t, http.StatusOK, ack.status, ack.raw)
	require.Equal(t, "interacting", ack.str("status"))

	e.clock.Advance(config.DefaultReachPoll)
	held := dev.hold(t, "device → AS: the next poll asks to be held (Prefer: wait, RFC 7240 §4.3): step 11's approval ends it",
		dev.request(t, http.MethodGet, loc, "", "", "Prefer", "wait=25"))
	bad := phone.json(t, "phone → AS: carol picks a number that is not the one on the device", http.MethodPost, server.PathReachTasks+id+"/response",
		fmt.Sprintf(`{"decision":"approve","binding_choice":%d,"amr":["hwk","face"]}`, wrong))
	requireOAuthError(t, bad, http.StatusBadRequest, "binding_mismatch")
	require.EqualValues(t, 2, bad.body["attempts_left"])
	ok := phone.json(t, "phone → AS: she picks the right one and approves with Face ID", http.MethodPost, server.PathReachTasks+id+"/response",
		fmt.Sprintf(`{"decision":"approve","binding_choice":%d,"amr":["hwk","face"]}`, right))
	require.Equal(t, http.StatusOK, ok.status, ok.raw)
	require.Equal(t, "approved", ok.str("status"))
	done := held()
	require.Equal(t, http.StatusOK, done.status, done.raw)
	require.Equal(t, "completed", done.str("status"))
	value := done.str("auth_session")
	require.NotEqual(t, first.str("auth_session"), value)
	c := dev.form(t, "device → AS: the rotated auth_session at the native endpoint: the code (redeemed as usual, bound to the device's key)", "/native/authorize", url.Values{"auth_session": {value}})
	require.Equal(t, http.StatusOK, c.status, c.raw)
	require.NotEmpty(t, c.str("authorization_code"))
	// Unrecorded: the code is carol's, and its token bound to the
	// initiating device's key.
	tok := do(t, dev.request(t, http.MethodPost, "/oauth2/token", "application/x-www-form-urlencoded", url.Values{"grant_type": {"authorization_code"},
		"client_id": {"demo-app"}, "code": {c.str("authorization_code")}, "code_verifier": {pk.Verifier}}.Encode()))
	require.Equal(t, http.StatusOK, tok.status, tok.raw)
	ir := e.as.introspect(t, tok.str("access_token"))
	require.Equal(t, "carol", ir.str("sub"))
	require.Equal(t, map[string]any{"jkt": dev.key.JKT}, ir.body["cnf"])
	x.volatile = map[string]string{devID: "device_id", id: "task_id"}
	x.post = reachPost(right, wrong, []string{next})
	return x
}

// exampleReachQR: no device of carol is present: 424 with the deep link
// for a QR code; the phone scans it (once), carol denies.
func exampleReachQR(t *testing.T) *example {
	e := newReachExample(t, "reach-qr", nil)
	x := e.x
	phone := e.phone(t, "carol", "carol-pw")
	devID := phone.register(t) // registered, but its app is not polling: not present
	dev := e.party(newDPoPKey(t), "")
	first := startCrossDevice(t, e, dev, sdk.NewPKCE(), "")
	r := dev.form(t, "device → AS: no channel reaches carol now: 424, with a deep link for a QR code, and Location to poll", server.PathNativeReach,
		url.Values{"auth_session": {first.str("auth_session")}})
	requireOAuthError(t, r, http.StatusFailedDependency, "interaction_unavailable")
	loc := r.header.Get("Location")
	id := taskOf(t, loc)
	link, err := url.Parse(r.str("deep_link"))
	require.NoError(t, err)
	require.Equal(t, bankApp, link.Scheme+"://"+link.Host+link.Path)
	ref := link.Query().Get("reach_ref")
	require.True(t, reach.ValidID(ref))
	scan := phone.json(t, "phone → AS: carol scans the code with our app, which sends its reach_ref: the task, opened", http.MethodPost, server.PathReachScan, `{"ref":"`+ref+`"}`)
	require.Equal(t, http.StatusOK, scan.status, scan.raw)
	require.Equal(t, "interacting", scan.str("status"))
	right, _ := bindingOf(t, scan, r.str("binding_code"))
	p := dev.json(t, "device → AS: the device's poll learns it is open", http.MethodGet, loc, "")
	require.Equal(t, http.StatusAccepted, p.status, p.raw)
	require.Equal(t, "interacting", p.str("status"))
	again := phone.json(t, "phone → AS: the same code again: refs are single-use", http.MethodPost, server.PathReachScan, `{"ref":"`+ref+`"}`)
	requireOAuthError(t, again, http.StatusNotFound, "not_found")
	d := phone.json(t, "phone → AS: carol does not recognise the request: she denies it", http.MethodPost, server.PathReachTasks+id+"/response", `{"decision":"deny"}`)
	require.Equal(t, http.StatusOK, d.status, d.raw)
	require.Equal(t, "denied", d.str("status"))
	e.clock.Advance(config.DefaultReachPoll)
	denied := dev.json(t, "device → AS: the next poll", http.MethodGet, loc, "")
	requireOAuthError(t, denied, http.StatusForbidden, "access_denied")
	x.volatile = map[string]string{devID: "device_id", id: "task_id", ref: "reach_ref"}
	x.post = reachPost(right, -1, nil)
	return x
}

// exampleReachRelay: the relay (docs/reach.md "Interaction relay"): the
// phone's event stream gets the task, the client's poll held with
// Prefer: wait is released by carol's approval; a cancelled
// interaction, an error as application/problem+json, and 424 for a user
// no channel reaches.
func exampleReachRelay(t *testing.T) *example {
	e := newReachExample(t, "reach-relay", relayConfig)
	x := e.x
	x.reqHeaders = []string{"Accept", "Last-Event-ID", "Prefer"}
	x.respHeaders = []string{"Preference-Applied", "Vary"}
	phone := e.phone(t, "carol", "carol-pw")
	devID := phone.register(t)
	rc := signInRelay(t, e.as.Instance, e.clock, "carol", "carol-pw", "")
	client := e.party(rc.key, rc.token.AccessToken)
	ra := signInRelay(t, e.as.Instance, e.clock, "alice", "wonderland", "")
	toAlice := e.party(ra.key, ra.token.AccessToken)

	// The phone's event stream: open until the first event has come.
	stream := phone.stream(t, "phone → AS: our app's inbox as an event stream (shown as it stood when the app closed it, after step 2's delivery)", "")
	body := relayBody(nil)
	r := client.json(t, "client → AS: show carol an interaction on her phone", http.MethodPost, server.PathInteractions, body)
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	require.Equal(t, "pending", r.str("status"))
	loc := r.header.Get("Location")
	id := taskOf(t, loc)
	entryID := stream(id, "interaction")

	view := phone.json(t, "phone → AS: our app reads the task: what to show, never opened by us", http.MethodGet, server.PathReachTasks+id, "")
	require.Equal(t, http.StatusOK, view.status, view.raw)
	require.Equal(t, relayOrigin+"/pay/approve", view.body["interaction"].(map[string]any)["url"])
	ack := phone.json(t, "phone → AS: it shows it to carol (ack)", http.MethodPost, server.PathReachTasks+id+"/ack", "")
	require.Equal(t, http.StatusOK, ack.status, ack.raw)
	e.clock.Advance(3 * time.Second)
	held := client.hold(t, "client → AS: a poll held with Prefer: wait (RFC 7240 §4.3): step 6's approval ends it",
		client.request(t, http.MethodGet, loc, "", "", "Prefer", "wait=20"))
	ok := phone.json(t, "phone → AS: carol approved at the url; our app says so", http.MethodPost, server.PathReachTasks+id+"/response", `{"decision":"approve"}`)
	require.Equal(t, http.StatusOK, ok.status, ok.raw)
	done := held()
	require.Equal(t, http.StatusOK, done.status, done.raw)
	require.Equal(t, "completed", done.str("status"))
	require.Equal(t, "wait=20", done.header.Get("Preference-Applied"))

	r2 := client.json(t, "client → AS: another interaction", http.MethodPost, server.PathInteractions, relayBody(map[string]any{"description": "Approve the payment of 30 EUR"}))
	require.Equal(t, http.StatusAccepted, r2.status, r2.raw)
	loc2 := r2.header.Get("Location")
	id2 := taskOf(t, loc2)
	resumed := phone.stream(t, "phone → AS: the app reconnects with the last event's id: only what came after it", entryID)
	entry2 := resumed(id2, "interaction")
	c := client.json(t, "client → AS: the user finished elsewhere: the client cancels it", http.MethodDelete, loc2, "")
	require.Equal(t, http.StatusNoContent, c.status, c.raw)
	e.clock.Advance(3 * time.Second)
	gone := client.json(t, "client → AS: a poll of the cancelled interaction, asking for RFC 9457 problem details", http.MethodGet, loc2, "", "Accept", "application/problem+json")
	require.Equal(t, http.StatusNotFound, gone.status, gone.raw)
	require.Equal(t, "application/problem+json", gone.header.Get("Content-Type"))
	var prob map[string]any
	require.NoError(t, json.Unmarshal([]byte(gone.raw), &prob))
	require.Equal(t, "not_found", prob["error"])
	require.Equal(t, "about:blank", prob["type"])
	u := toAlice.json(t, "client → AS: an interaction for alice, whom no channel reaches: the client shows url and code itself", http.MethodPost, server.PathInteractions, body)
	requireOAuthError(t, u, http.StatusFailedDependency, "interaction_unavailable")
	x.volatile = map[string]string{devID: "device_id", id: "task_id", id2: "task_id"}
	// The interaction's code is the client's own constant, not a
	// volatile authorization code.
	scrub := reachPost(-1, -1, []string{entryID, entry2})
	x.post = func(s string) string { return strings.ReplaceAll(scrub(s), `"<code>"`, `"`+relayCode+`"`) }
	return x
}

// stream opens the party's inbox event stream as a step (with
// Last-Event-ID when after is set) and returns, once the stream has
// started, the function that reads its next event — which must name
// task, of kind — closes the stream, waits for the step to be recorded
// and returns the event's id.
func (p *party) stream(t *testing.T, caption, after string) func(task, kind string) string {
	hdr := []string{"Accept", "text/event-stream"}
	if after != "" {
		hdr = append(hdr, "Last-Event-ID", after)
	}
	req := p.request(t, http.MethodGet, server.PathReachInboxEvents, "", "", hdr...)
	n := p.e.x.begin(caption, req)
	resp, err := servertest.HTTP().Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	events := bufio.NewReader(resp.Body)
	line, err := events.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "retry: 2000\n", line)
	return func(task, kind string) string {
		var event []string
		for {
			l, err := events.ReadString('\n')
			require.NoError(t, err)
			if l == "\n" && len(event) > 0 {
				break
			}
			if l != "\n" {
				event = append(event, strings.TrimSuffix(l, "\n"))
			}
		}
		require.NoError(t, resp.Body.Close())
		p.e.x.end(n)
		require.Len(t, event, 3, "%q", event)
		id := strings.TrimPrefix(event[0], "id: ")
		require.Equal(t, "event: task", event[1])
		require.Equal(t, `data: {"id":"`+id+`","task":"`+task+`","kind":"`+kind+`"}`, event[2])
		return id
	}
}
