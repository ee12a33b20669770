package main

// The reach scenario (docs/performance.md "Reach"; docs/reach.md
// "Scale-out"): how long the cross-device redirect_to_app waiter on one
// instance takes to learn of an answer given through another.
//
// Two fedas instances, A and B, share one store (fedas's memory backend
// with one in-process wake hub, or one Redis prefix with one wake
// subscriber per instance, as two processes would have). Each worker owns
// a few users; each user's app (client bench-app, DPoP-bound token with
// scope reach:device) registered its device on A with the inbox channel.
// One flow:
//
//  1. the initiating device (a public native client with its own DPoP
//     key) sends the initial request with login_hint to A →
//     redirect_to_app with reach_uri; POST reach_uri → 202, the number to
//     pick and Location (task created and delivered to the inbox);
//  2. the app reads its inbox on A (the wake-up entry; this also keeps
//     the device present), reads the task and acks it (interacting);
//  3. the device long-polls the task on B — GET /native/reach/{id} with
//     Prefer: wait (RFC 7240 §4.3), the native cross-device poll — and,
//     once B's waiter is parked in its wake hub, the app approves with
//     the number on A;
//  4. B's poll answers 200 with the rotated auth_session.
//
// The latency reported is from the answer request's send to the arrival
// of the poll's complete response, i.e. A's transition, A's Notify (a
// PUBLISH on Redis), B's subscriber, B's re-read of the task and B's
// answer; the same from the answer's response (which may be negative:
// the poll can be answered before A's response reaches the app) is
// reported too.
//
// -reach-poll uq measures the User Questioning poll instead (UQ -10
// §4.1–§4.2): a back-office client (client credentials, scope question)
// asks on A for the user by sub, the app reads, acks and answers the
// question on A, and the client's GET /uq/questions_polling with
// Client-Timeout waits on B for the User Statement Token.
//
// The per-client budget of task creations (60 a minute, docs/decisions.md
// Q28) and the per-user task quota (reach.tasks_per_user ≤ 1000) are abuse
// limits, not costs: the scenario spreads its flows over enough native
// clients and users to stay under both rather than measure them.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/reach/wake"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
	"github.com/fedas/fedas/storage/redisstore"
)

const (
	reachAppClient = "bench-app"
	reachDeepLink  = "https://bank.example/app"
	// reachPerClient flows per native client stay under its creation
	// budget's burst (60).
	reachPerClient = 50
	// reachPerUser flows per user stay under reach.tasks_per_user.
	reachPerUser = 900
	// reachPerUQClient questions per UQ client stay under
	// reach.questions_per_minute (set to its maximum, 10000).
	reachPerUQClient = 5000
	// reachMaxFlows bounds -n for this scenario (clients and users are
	// generated for the worst case).
	reachMaxFlows = 50_000
	// reachHold is the Prefer: wait of the poll (under the 10 s client
	// timeout and reach.max_hold).
	reachHold = 8
)

// reachStats is the reach scenario's part of the report.
type reachStats struct {
	// Poll names the waiting request measured.
	Poll string `json:"poll"`
	// AnswerToPollMS: from sending the answer on A to the waiting poll's
	// response fully read from B (the scenario's latency_ms too).
	AnswerToPollMS latency `json:"answer_sent_to_poll_ms"`
	// AfterAnswerMS: from the answer's response to the poll's; negative
	// when B answered the poll first.
	AfterAnswerMS latency `json:"answer_done_to_poll_ms"`
	// AnswerMS is the answer request itself (POST
	// /reach/tasks/{id}/response on A).
	AnswerMS latency `json:"answer_request_ms"`
	// FlowMS is a whole flow (7 requests and the wait).
	FlowMS        latency `json:"flow_ms"`
	Users         int     `json:"users"`
	NativeClients int     `json:"native_clients"`
	UQClients     int     `json:"uq_clients,omitempty"`
}

// reachCol collects the scenario's extra distributions.
type reachCol struct {
	mu                        sync.Mutex
	sent, done, answer, whole []time.Duration
}

func (c *reachCol) add(sent, done, answer, whole time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent, c.done = append(c.sent, sent), append(c.done, done)
	c.answer, c.whole = append(c.answer, answer), append(c.whole, whole)
}

// parkHub is B's wake hub as is, telling the driver when a waiter of a
// topic is registered (its first check runs after the registration, so
// an answer stored from then on wakes it): the answer is sent only once
// the poll waits, which is what the scenario measures.
type parkHub struct {
	wake.Hub
	mu   sync.Mutex
	want map[string]chan struct{}
}

func (p *parkHub) expect(topic string) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	p.mu.Lock()
	p.want[topic] = ch
	p.mu.Unlock()
	return ch, func() {
		p.mu.Lock()
		if p.want[topic] == ch {
			delete(p.want, topic)
		}
		p.mu.Unlock()
	}
}

func (p *parkHub) Wait(ctx context.Context, topic string, check wake.CheckFunc) error {
	first := true
	return p.Hub.Wait(ctx, topic, func(ctx context.Context) (bool, error) {
		if first {
			first = false
			p.mu.Lock()
			if ch, ok := p.want[topic]; ok {
				close(ch)
				delete(p.want, topic)
			}
			p.mu.Unlock()
		}
		return check(ctx)
	})
}

// reachEnv is the scenario's part of env.
type reachEnv struct {
	parked  *parkHub
	natives []string
	next    atomic.Int64 // flows started, picks the native or UQ client
	col     reachCol
	metaB   sdk.Metadata
	// -reach-poll uq: the back-office clients, their client-credentials
	// tokens (set up before the workers) and both instances' UQ
	// endpoints.
	uqClients    []string
	uqSecret     string
	uqTokens     []string
	uqMetaA      sdk.UQMetadata
	uqMetaB      sdk.UQMetadata
	uqStatements []string
}

// reachUser is one user's app on its device.
type reachUser struct {
	name   string
	app    *sdk.ReachApp
	cursor string
}

// reachWorker is a worker's users and its initiating device's key.
type reachWorker struct {
	users []*reachUser
	turn  int
	key   *dpop.Key
	// last is the latency of the last successful flow.
	last time.Duration
}

func newDPoPKey() (*dpop.Key, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return dpop.NewKey(k, jose.ES256)
}

// reachSizes is how many users per worker and native clients the run
// needs at most (every flow on one worker, warm-up included).
func reachSizes(o options) (usersPerWorker, clients int) {
	total := o.maxFlows + 1 + o.concurrency
	per := reachPerClient
	if o.reachPoll == "uq" {
		per = reachPerUQClient
	}
	return (total + reachPerUser - 1) / reachPerUser, (total + per - 1) / per
}

// startReach starts A and B on one store with one HMAC secret and one
// signing key (one deployment), each with its wake hub.
func (e *env) startReach(ctx context.Context, users []config.User) error {
	_, nClients := reachSizes(e.o)
	e.reach = &reachEnv{uqSecret: randHex(32), uqStatements: []string{"Yes", "No"}}
	for i := range nClients {
		if e.o.reachPoll == "uq" {
			e.reach.uqClients = append(e.reach.uqClients, fmt.Sprintf("bench-uq-%d", i))
		} else {
			e.reach.natives = append(e.reach.natives, fmt.Sprintf("bench-native-%d", i))
		}
	}
	edit := func(c *config.Config) {
		c.Users = users
		c.Reach.Enabled = true
		c.Reach.MaxLiveTasks, c.Reach.TasksPerUser = 50, 1000
		c.Scopes = append(c.Scopes, config.ScopeReachDevice)
		c.Clients = append(c.Clients, config.Client{ID: reachAppClient, Name: "fedasbench app", FirstParty: true, TokenEndpointAuthMethod: "none",
			Scopes: []string{"openid", config.ScopeReachDevice}, GrantTypes: []string{"authorization_code"}, NativeCallbackURIs: []string{nativeCB}})
		for _, id := range e.reach.natives {
			c.Clients = append(c.Clients, config.Client{ID: id, Name: "fedasbench device", FirstParty: true, TokenEndpointAuthMethod: "none",
				Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code"}, NativeCallbackURIs: []string{nativeCB}})
		}
		c.Apps = append(c.Apps, config.App{ID: "bench", ClientID: reachAppClient, DeepLink: reachDeepLink, Clients: e.reach.natives})
		if len(e.reach.uqClients) > 0 {
			c.Scopes = append(c.Scopes, config.ScopeQuestion)
			c.Reach.QuestionsPerMinute, c.Reach.PollsPerMinute = 10000, 100000
		}
		for _, id := range e.reach.uqClients {
			c.Clients = append(c.Clients, config.Client{ID: id, Name: "fedasbench back office", TokenEndpointAuthMethod: "client_secret_basic",
				SecretSHA256: config.SecretDigest(e.reach.uqSecret), Scopes: []string{config.ScopeQuestion}, GrantTypes: []string{"client_credentials"}})
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)

	var st storage.Store
	purge := func() {}
	var hubA, hubB wake.Hub
	if e.o.redisURL == "" {
		st = memory.New()
		shared := wake.NewMemory(wake.Options{})
		hubA, hubB = shared, shared
		e.cleanups = append(e.cleanups, func() { _ = shared.Close() })
	} else {
		prefix := "fedasbench:" + e.runID + ":reach:"
		rs, err := redisstore.New(ctx, redisstore.Options{URL: e.o.redisURL, Prefix: prefix}, zap.NewNop())
		if err != nil {
			return fmt.Errorf("redis %s: %w", redactURL(e.o.redisURL), err)
		}
		rs.Client().AddHook(&e.rt)
		st, purge = rs, func() { deletePrefix(rs, prefix) }
		// One subscriber per instance, as two processes would have.
		for _, h := range []*wake.Hub{&hubA, &hubB} {
			hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			rh, err := wake.NewRedis(hctx, rs.Client(), wake.RedisOptions{Prefix: prefix})
			cancel()
			if err != nil {
				_ = rs.Close()
				return err
			}
			*h = rh
		}
	}
	e.reach.parked = &parkHub{Hub: hubB, want: map[string]chan struct{}{}}
	opts := func(hub wake.Hub) func(*server.Options) {
		return func(so *server.Options) {
			so.HMACSecret, so.SigningKey, so.Reach = secret, key, server.ReachOptions{Hub: hub}
		}
	}
	// Stopped in reverse: B, then the hubs, then A (which closes the
	// store and deletes the run's keys).
	if e.as1, err = e.startOn(ctx, "a", edit, st, purge, opts(hubA)); err != nil {
		_ = st.Close()
		return err
	}
	if e.o.redisURL != "" {
		e.cleanups = append(e.cleanups, func() { _ = hubA.Close(); _ = hubB.Close() })
	}
	if e.as2, err = e.startOn(ctx, "b", edit, st, func() {}, opts(e.reach.parked)); err != nil {
		return err
	}
	e.as2.shared = true
	if e.reach.metaB, err = sdk.Discover(ctx, e.hc, e.as2.url); err != nil || e.o.reachPoll != "uq" {
		return err
	}
	if e.reach.uqMetaA, err = sdk.DiscoverUQ(ctx, e.hc, e.as1.url); err != nil {
		return err
	}
	e.reach.uqMetaB, err = sdk.DiscoverUQ(ctx, e.hc, e.as2.url)
	return err
}

// uqTokens gets each UQ client's client-credentials token on A (RFC
// 6749 §4.4).
func (e *env) uqTokens(ctx context.Context) error {
	for _, id := range e.reach.uqClients {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.meta.TokenEndpoint,
			strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {config.ScopeQuestion}}.Encode()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(e.reach.uqSecret))
		resp, err := e.hc.Do(req)
		if err != nil {
			return err
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tok)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || tok.AccessToken == "" {
			return fmt.Errorf("client-credentials token of %s: HTTP %d", id, resp.StatusCode)
		}
		e.reach.uqTokens = append(e.reach.uqTokens, tok.AccessToken)
	}
	return nil
}

// reachUsers names the generated users: per worker, the users it owns.
func reachUsers(o options) []string {
	per, _ := reachSizes(o)
	var names []string
	for w := range o.concurrency {
		for u := range per {
			names = append(names, fmt.Sprintf("bench-%d-%d", w, u))
		}
	}
	return names
}

// setUpReach signs every user of w into bench-app on A, registers the
// device and reads its inbox once (present from then on).
func (w *worker) setUpReach(ctx context.Context, names []string) error {
	key, err := newDPoPKey()
	if err != nil {
		return err
	}
	w.reach = &reachWorker{key: key}
	for _, n := range names {
		dk, err := newDPoPKey()
		if err != nil {
			return err
		}
		uw := &worker{e: w.e, user: n, client: &sdk.Client{HTTP: w.e.hc, ClientID: reachAppClient, Meta: w.e.meta, DPoP: dk}}
		code, pk, err := uw.client.Authorize(ctx, url.Values{"scope": {"openid " + config.ScopeReachDevice}, "native_callback_uri": {nativeCB}}, uw.ui)
		if err != nil {
			return fmt.Errorf("app sign-in of %s: %w", n, err)
		}
		tok, err := uw.client.Exchange(ctx, code, pk)
		if err != nil {
			return fmt.Errorf("app token of %s: %w", n, err)
		}
		app := &sdk.ReachApp{HTTP: w.e.hc, Meta: w.e.meta, DPoP: dk, AccessToken: tok.AccessToken}
		if _, err := app.Register(ctx, sdk.DeviceRegistration{Name: n + "'s phone", Platform: "ios",
			Capabilities: []string{string(reach.KindAppAuth), string(reach.KindQuestion)}, Channels: []sdk.ReachChannel{{Type: "inbox"}}}); err != nil {
			return fmt.Errorf("device of %s: %w", n, err)
		}
		u := &reachUser{name: n, app: app}
		if _, u.cursor, err = app.Inbox(ctx, "", 0); err != nil {
			return fmt.Errorf("inbox of %s: %w", n, err)
		}
		w.reach.users = append(w.reach.users, u)
	}
	return nil
}

// send sends a request of the initiating device with a DPoP proof.
func (w *worker) send(ctx context.Context, method, u string, form url.Values, hdr http.Header) (*http.Response, []byte, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	htu, _, _ := strings.Cut(u, "?")
	proof, err := w.reach.key.Proof(method, htu, "")
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("DPoP", proof)
	resp, err := w.e.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, b, err
}

func nativeErr(u string, status int, body []byte) error {
	var r sdk.Response
	_ = json.Unmarshal(body, &r)
	r.Status, r.From = status, u
	return &sdk.Err{Response: r}
}

type pollResult struct {
	at     time.Time
	status int
	body   []byte
	err    error
}

// reachFlow is one cross-device sign-in, A → app on A → waiter on B.
func (w *worker) reachFlow(ctx context.Context) error {
	if w.e.o.reachPoll == "uq" {
		return w.uqFlow(ctx)
	}
	t0 := time.Now()
	re := w.e.reach
	rw := w.reach
	u := rw.users[rw.turn%len(rw.users)]
	rw.turn++
	clientID := re.natives[int(re.next.Add(1)-1)%len(re.natives)]

	// 1. The initiating device on A.
	pk := sdk.NewPKCE()
	native := w.e.meta.NativeEndpoint()
	resp, body, err := w.send(ctx, http.MethodPost, native, url.Values{"client_id": {clientID}, "response_type": {"code"}, "scope": {"openid"},
		"native_callback_uri": {nativeCB}, "login_hint": {u.name}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}, nil)
	if err != nil {
		return w.fail("a native", err)
	}
	var start sdk.Response
	if json.Unmarshal(body, &start) != nil || start.Error != "redirect_to_app" || start.ReachURI == "" || start.AuthSession == "" {
		return w.fail("a native", nativeErr(native, resp.StatusCode, body))
	}
	resp, body, err = w.send(ctx, http.MethodPost, start.ReachURI, url.Values{"auth_session": {start.AuthSession}}, nil)
	if err != nil {
		return w.fail("a native/reach", err)
	}
	var reaching struct {
		BindingCode string `json:"binding_code"`
	}
	_ = json.Unmarshal(body, &reaching)
	loc := resp.Header.Get("Location")
	i := strings.LastIndex(loc, "/")
	if resp.StatusCode != http.StatusAccepted || i < 0 || reaching.BindingCode == "" {
		return w.fail("a native/reach", nativeErr(start.ReachURI, resp.StatusCode, body))
	}
	id := loc[i+1:]
	pick, err := strconv.Atoi(reaching.BindingCode)
	if err != nil {
		return w.fail("a native/reach", err)
	}

	// 2. The app on A: its inbox, the task, the ack.
	es, next, err := u.app.Inbox(ctx, u.cursor, 0)
	if err != nil {
		return w.fail("a reach/inbox", err)
	}
	u.cursor = next
	if len(es) == 0 || es[len(es)-1].Task != id {
		return w.fail("a reach/inbox", fmt.Errorf("inbox holds %d entries, not the task", len(es)))
	}
	if _, err := u.app.Task(ctx, id); err != nil {
		return w.fail("a reach/tasks", err)
	}
	if err := u.app.Ack(ctx, id); err != nil {
		return w.fail("a reach/tasks/ack", err)
	}

	// 3. The waiting poll on B; the answer on A once it waits.
	parked, forget := re.parked.expect(reach.TaskTopic(id))
	defer forget()
	pollURL := strings.TrimSuffix(re.metaB.Issuer, "/") + server.PathNativeReach + "/" + id
	got := make(chan pollResult, 1)
	go func() {
		resp, body, err := w.send(ctx, http.MethodGet, pollURL, nil, http.Header{"Prefer": {"wait=" + strconv.Itoa(reachHold)}})
		r := pollResult{at: time.Now(), body: body, err: err}
		if resp != nil {
			r.status = resp.StatusCode
		}
		got <- r
	}()
	var early *pollResult
	select {
	case <-parked:
	case r := <-got:
		early = &r
	case <-ctx.Done():
		return w.fail("b native/reach poll", ctx.Err())
	}
	if early != nil {
		// Answered before it waited: an error (a pending 202 cannot be,
		// the task is live until the answer).
		if early.err != nil {
			return w.fail("b native/reach poll", early.err)
		}
		return w.fail("b native/reach poll", nativeErr(pollURL, early.status, early.body))
	}
	sent := time.Now()
	status, err := u.app.Respond(ctx, id, sdk.TaskAnswer{Decision: "approve", BindingChoice: &pick, AMR: []string{"hwk", "face"}})
	done := time.Now()
	if err != nil {
		<-got
		return w.fail("a reach/tasks/response", err)
	}
	if status != "approved" {
		<-got
		return w.fail("a reach/tasks/response", fmt.Errorf("status %q, want approved", status))
	}
	r := <-got
	if r.err != nil {
		return w.fail("b native/reach poll", r.err)
	}
	var p struct {
		Status      string `json:"status"`
		AuthSession string `json:"auth_session"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &p) != nil || p.Status != "completed" || p.AuthSession == "" {
		return w.fail("b native/reach poll", nativeErr(pollURL, r.status, r.body))
	}
	rw.last = r.at.Sub(sent)
	re.col.add(rw.last, r.at.Sub(done), done.Sub(sent), time.Since(t0))
	return nil
}

// reachReport fills the scenario's part of the report.
func (e *env) reachReport(res *result, users int) {
	c := &e.reach.col
	c.mu.Lock()
	defer c.mu.Unlock()
	res.Reach = &reachStats{
		Poll:          "native cross-device poll: GET /native/reach/{id} with Prefer: wait=" + strconv.Itoa(reachHold) + " on B, answer POST /reach/tasks/{id}/response on A",
		NativeClients: len(e.reach.natives), UQClients: len(e.reach.uqClients),
		AnswerToPollMS: percentiles(c.sent), AfterAnswerMS: percentiles(c.done), AnswerMS: percentiles(c.answer), FlowMS: percentiles(c.whole),
		Users: users,
	}
	if e.o.reachPoll == "uq" {
		res.Reach.Poll = "User Questioning poll: GET /uq/questions_polling with Client-Timeout: " + strconv.Itoa(reachHold) + " on B, answer POST /reach/tasks/{id}/response on A"
	}
}

// resetReach drops the warm-up flows' samples.
func (e *env) resetReach() {
	c := &e.reach.col
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent, c.done, c.answer, c.whole = nil, nil, nil, nil
}

func (s *reachStats) writeText(w io.Writer) {
	l, d, a, f := s.AnswerToPollMS, s.AfterAnswerMS, s.AnswerMS, s.FlowMS
	fmt.Fprintf(w, "reach       %s\n", s.Poll)
	fmt.Fprintf(w, "  answer sent → poll answered (A → B): p50 %s  p90 %s  p99 %s  max %s\n", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max))
	fmt.Fprintf(w, "  answer's response → poll answered:  p50 %s  p90 %s  p99 %s  max %s (negative: B first)\n", sms(d.P50), sms(d.P90), sms(d.P99), sms(d.Max))
	fmt.Fprintf(w, "  answer request: p50 %s  p99 %s; whole flow: p50 %s  p99 %s; %d users, %d native and %d UQ clients\n",
		ms(a.P50), ms(a.P99), ms(f.P50), ms(f.P99), s.Users, s.NativeClients, s.UQClients)
}

// sms is ms for a value that may be negative.
func sms(v float64) string {
	if v < 0 {
		return "-" + ms(-v)
	}
	return ms(v)
}

var errReachFlows = errors.New("-n must be at most 50000 in the reach scenario (its users and clients are generated for the worst case)")

// setUpReachWorkers gives each worker its users' apps (concurrently:
// one sign-in and registration per user) and the UQ clients their
// tokens.
func setUpReachWorkers(ctx context.Context, o options, workers []*worker) error {
	per, _ := reachSizes(o)
	names := reachUsers(o)
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := workers[0].e.uqTokens(sctx); err != nil {
		return fmt.Errorf("reach set-up: %w", err)
	}
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.setUpReach(sctx, names[i*per:(i+1)*per])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reach set-up: %w", err)
	}
	return nil
}

// uqFlow is one User Questioning question: a back-office client asks on
// A (client credentials, user_id_type sub), the app on A reads its inbox
// and the question and acks it, the client's poll holds on B
// (Client-Timeout, UQ -10 §4.2) and the app answers on A.
func (w *worker) uqFlow(ctx context.Context) error {
	t0 := time.Now()
	re := w.e.reach
	rw := w.reach
	u := rw.users[rw.turn%len(rw.users)]
	rw.turn++
	token := re.uqTokens[int(re.next.Add(1)-1)/reachPerUQClient%len(re.uqTokens)]
	bearer := http.Header{"Authorization": {"Bearer " + token}}

	body, _ := json.Marshal(map[string]any{"user_id": u.name, "user_id_type": "sub", "question_to_display": "Is this your new payee?",
		"statements_to_display": re.uqStatements, "wished_acr": "app"})
	resp, b, err := w.plain(ctx, http.MethodPost, re.uqMetaA.RequestEndpoint, body, bearer)
	if err != nil {
		return w.fail("a uq/questions", err)
	}
	var q struct {
		QuestionID string `json:"question_id"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &q) != nil || q.QuestionID == "" {
		return w.fail("a uq/questions", nativeErr(re.uqMetaA.RequestEndpoint, resp.StatusCode, b))
	}

	es, next, err := u.app.Inbox(ctx, u.cursor, 0)
	if err != nil {
		return w.fail("a reach/inbox", err)
	}
	u.cursor = next
	if len(es) == 0 || es[len(es)-1].Kind != string(reach.KindQuestion) {
		return w.fail("a reach/inbox", fmt.Errorf("inbox holds %d entries, not the question", len(es)))
	}
	id := es[len(es)-1].Task
	if _, err := u.app.Task(ctx, id); err != nil {
		return w.fail("a reach/tasks", err)
	}
	if err := u.app.Ack(ctx, id); err != nil {
		return w.fail("a reach/tasks/ack", err)
	}

	parked, forget := re.parked.expect(reach.TaskTopic(id))
	defer forget()
	pollURL := re.uqMetaB.PollingEndpoint + "?question_id=" + url.QueryEscape(q.QuestionID)
	got := make(chan pollResult, 1)
	go func() {
		hdr := http.Header{"Authorization": bearer["Authorization"], "Client-Timeout": {strconv.Itoa(reachHold)}}
		resp, body, err := w.plain(ctx, http.MethodGet, pollURL, nil, hdr)
		r := pollResult{at: time.Now(), body: body, err: err}
		if resp != nil {
			r.status = resp.StatusCode
		}
		got <- r
	}()
	select {
	case <-parked:
	case r := <-got:
		if r.err != nil {
			return w.fail("b uq/questions_polling", r.err)
		}
		return w.fail("b uq/questions_polling", nativeErr(pollURL, r.status, r.body))
	case <-ctx.Done():
		return w.fail("b uq/questions_polling", ctx.Err())
	}
	sent := time.Now()
	status, err := u.app.Respond(ctx, id, sdk.TaskAnswer{Decision: "answer", Statement: re.uqStatements[0], AMR: []string{"hwk", "pin"}})
	done := time.Now()
	if err == nil && status != "answered" {
		err = fmt.Errorf("status %q, want answered", status)
	}
	if err != nil {
		<-got
		return w.fail("a reach/tasks/response", err)
	}
	r := <-got
	if r.err != nil {
		return w.fail("b uq/questions_polling", r.err)
	}
	var p struct {
		UST string `json:"user_statement_token"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &p) != nil || p.UST == "" {
		return w.fail("b uq/questions_polling", nativeErr(pollURL, r.status, r.body))
	}
	rw.last = r.at.Sub(sent)
	re.col.add(rw.last, r.at.Sub(done), done.Sub(sent), time.Since(t0))
	return nil
}

// plain sends a request without DPoP (a bearer client of the UQ API).
func (w *worker) plain(ctx context.Context, method, u string, body []byte, hdr http.Header) (*http.Response, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := w.e.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, b, err
}
