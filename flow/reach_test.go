package flow_test

import (
	"context"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/reach"
)

// fakeReach is a CrossDevice recording what the engine asks of it.
type fakeReach struct {
	mu         sync.Mutex
	off        bool // URI answers "" (disable_cross_device)
	noChannel  bool // Deliver answers reach.ErrNoChannel
	created    []flow.ReachSpec
	tasks      []reach.Task
	delivered  []string
	superseded []string
}

func (r *fakeReach) URI(*policy.Client) string {
	if r.off {
		return ""
	}
	return issuer + "/native/reach"
}

func (r *fakeReach) Create(_ context.Context, spec flow.ReachSpec) (reach.Task, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := reach.NewBinding()
	if err != nil {
		return reach.Task{}, err
	}
	t := reach.Task{ID: reach.NewID(), Kind: reach.KindAppAuth, User: spec.User, ClientID: spec.ClientID, State: reach.StateCreated,
		Ref: reach.NewID(), Binding: b, ExpiresAt: spec.ExpiresAt}
	r.created = append(r.created, spec)
	r.tasks = append(r.tasks, t)
	return t, nil
}

func (r *fakeReach) Deliver(_ context.Context, t *reach.Task) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.noChannel {
		return reach.ErrNoChannel
	}
	r.delivered = append(r.delivered, t.ID)
	return nil
}

func (r *fakeReach) Supersede(_ context.Context, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.superseded = append(r.superseded, id)
}

func withReach(r *fakeReach) fxOption { return func(o *flow.Options) { o.Reach = r } }

// reachFixture: our app "wallet" for client "app" (and a downstream_role
// one for the federating client "fed"), reach on.
func reachFixture(t *testing.T, r *fakeReach) *fixture {
	return newFixture(t, func(c *config.Config) {
		withApp(nil)(c)
		c.Apps = append(c.Apps, config.App{ID: "ds", ClientID: "ourapp", DeepLink: deepLinkURL, DownstreamRole: true})
	}, withReach(r))
}

func (f *fixture) reachPost(value string, mods ...reqMod) flow.Outcome {
	f.tb.Helper()
	return f.handle(flow.ChannelReach, vals("auth_session", value), mods...)
}

// TestReach_Offer (SECURITY-RESULTS.md RN01): reach_uri is offered only
// to a local client's redirect_to_app whose session names its user, with
// reach on and the client not opted out.
func TestReach_Offer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		r     *fakeReach
		extra []string
		want  bool
	}{
		{"hinted local client", &fakeReach{}, []string{"login_hint", "carol"}, true},
		{"no hint (Q27)", &fakeReach{}, nil, false},
		{"disable_cross_device", &fakeReach{off: true}, []string{"login_hint", "carol"}, false},
		{"reach off", nil, []string{"login_hint", "carol"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f *fixture
			if tc.r == nil {
				f = newFixture(t, withApp(nil))
			} else {
				f = reachFixture(t, tc.r)
			}
			out := as[flow.RedirectToApp](t, f.native(initial("app", append([]string{"native_callback_uri", appCB}, tc.extra...)...)))
			if tc.want {
				require.Equal(t, issuer+"/native/reach", out.ReachURI)
			} else {
				require.Empty(t, out.ReachURI)
			}
		})
	}
	t.Run("federating client (downstream role)", func(t *testing.T) {
		f := reachFixture(t, &fakeReach{})
		par := f.pushes.par("fed", initial("fed", "native_callback_uri", appCB, "login_hint", "carol"))
		out := as[flow.RedirectToApp](t, f.native(vals("client_id", "fed", "request_uri", par)))
		require.Empty(t, out.ReachURI)
	})
}

// TestReach_StartAndComplete (RN02, RN03): a task for the hinted user,
// the session's current one; the approval by another user is refused and
// changes nothing; the right user's completes the session once under a
// rotated auth_session, whose follow-up gets the one code, bound to the
// device's key and the client's PKCE.
func TestReach_StartAndComplete(t *testing.T) {
	r := &fakeReach{}
	f := reachFixture(t, r)
	out := as[flow.RedirectToApp](t, f.native(initial("app", "native_callback_uri", appCB, "login_hint", "carol"), key(jkt("dev"))))
	got := as[flow.Reaching](t, f.reachPost(out.AuthSession, key(jkt("dev")), func(q *flow.Request) { q.ClientIP, q.UserAgent = "192.0.2.7", "TestUA/1" }))
	require.True(t, got.Delivered)
	require.Len(t, r.tasks, 1)
	task := r.tasks[0]
	require.Equal(t, task.ID, got.TaskID)
	require.Equal(t, strconv.Itoa(task.Binding.Right), got.BindingCode)
	spec := r.created[0]
	require.Equal(t, "carol", spec.User)
	require.Equal(t, "app", spec.ClientID)
	require.Equal(t, jkt("dev"), spec.JKT)
	require.Equal(t, "192.0.2.7", spec.ClientIP)
	require.Equal(t, "TestUA/1", spec.UserAgent)
	require.Equal(t, []string{task.ID}, r.delivered)

	ctx := context.Background()
	at := f.clock.Now()
	_, rf, err := f.eng.CompleteReach(ctx, f.snap, spec.SessionID, task.ID, flow.ReachAnswer{User: "alice", AMR: []string{"face"}, At: at})
	require.NoError(t, err)
	require.Equal(t, "access_denied", rf.Code)
	require.Equal(t, 403, rf.Status)
	_, rf, err = f.eng.CompleteReach(ctx, f.snap, spec.SessionID, reach.NewID(), flow.ReachAnswer{User: "carol", At: at})
	require.NoError(t, err)
	require.Equal(t, "invalid_request", rf.Code, "a task that is not the session's current one")

	value, rf, err := f.eng.CompleteReach(ctx, f.snap, spec.SessionID, task.ID, flow.ReachAnswer{User: "carol", AMR: []string{"hwk", "face"}, ACR: "phr", At: at})
	require.NoError(t, err)
	require.Nil(t, rf)
	require.NotEqual(t, out.AuthSession, value)
	_, rf, err = f.eng.CompleteReach(ctx, f.snap, spec.SessionID, task.ID, flow.ReachAnswer{User: "carol", At: at})
	require.NoError(t, err)
	require.Equal(t, "invalid_request", rf.Code, "only once")

	refusal(t, f.native(vals("auth_session", out.AuthSession), key(jkt("dev"))), "invalid_session")
	refusal(t, f.native(vals("auth_session", value), key(jkt("other"))), "invalid_dpop_proof")
	code := as[flow.Code](t, f.native(vals("auth_session", value), key(jkt("dev"))))
	g := f.codes.grant(t, code.Code)
	require.Equal(t, flow.Grant{ClientID: "app", Scope: "openid profile", CodeChallenge: pkce("app"), CodeChallengeMethod: "S256",
		Subject: "sub-carol", Username: "carol", AMR: []string{"hwk", "face", "app"}, ACR: "phr", AuthTime: at, DPoPJKT: jkt("dev")}, g)
	require.Len(t, f.codes.all(), 1)
	refusal(t, f.native(vals("auth_session", value), key(jkt("dev"))), "invalid_session")
}

// TestReach_SupersedeAndQR (RN04, RN05): a second POST supersedes the
// first task; no channel gives a fresh, undelivered QR task whose deep
// link carries configuration and its ref only; the auth_session is never
// rotated by a POST.
func TestReach_SupersedeAndQR(t *testing.T) {
	r := &fakeReach{}
	f := reachFixture(t, r)
	out := as[flow.RedirectToApp](t, f.native(initial("app", "native_callback_uri", appCB, "login_hint", "carol")))
	first := as[flow.Reaching](t, f.reachPost(out.AuthSession))
	second := as[flow.Reaching](t, f.reachPost(out.AuthSession))
	require.NotEqual(t, first.TaskID, second.TaskID)
	require.Equal(t, []string{first.TaskID}, r.superseded)
	_, rf, err := f.eng.CompleteReach(context.Background(), f.snap, r.created[0].SessionID, first.TaskID, flow.ReachAnswer{User: "carol", At: f.clock.Now()})
	require.NoError(t, err)
	require.Equal(t, "invalid_request", rf.Code, "a superseded task completes nothing")

	r.noChannel = true
	qr := as[flow.Reaching](t, f.reachPost(out.AuthSession))
	require.False(t, qr.Delivered)
	require.Len(t, r.tasks, 4)
	require.True(t, r.created[3].Fallback)
	require.Equal(t, r.tasks[3].ID, qr.TaskID)
	u, err := url.Parse(qr.DeepLink)
	require.NoError(t, err)
	require.Equal(t, deepLinkURL, u.Scheme+"://"+u.Host+u.Path)
	require.Equal(t, url.Values{"client_id": {"app"}, "reach_ref": {r.tasks[3].Ref}}, u.Query())
	_, rf, err = f.eng.CompleteReach(context.Background(), f.snap, r.created[0].SessionID, r.tasks[2].ID, flow.ReachAnswer{User: "carol", At: f.clock.Now()})
	require.NoError(t, err)
	require.NotNil(t, rf, "the unavailable task is not the session's")
	value, rf, err := f.eng.CompleteReach(context.Background(), f.snap, r.created[0].SessionID, qr.TaskID, flow.ReachAnswer{User: "carol", At: f.clock.Now()})
	require.NoError(t, err)
	require.Nil(t, rf)
	as[flow.Code](t, f.native(vals("auth_session", value)))
}

// TestReach_Callers (RN06): POST /native/reach is a follow-up: the
// session's DPoP key, client and client authentication, and a
// redirect_to_app session of a hinted user only.
func TestReach_Callers(t *testing.T) {
	r := &fakeReach{}
	f := newFixture(t, func(c *config.Config) { withApp(func(a *config.App) { a.Clients = []string{"app", "conf"} })(c) }, withReach(r))
	dev := as[flow.RedirectToApp](t, f.native(initial("app", "native_callback_uri", appCB, "login_hint", "carol"), key(jkt("dev"))))
	conf := as[flow.RedirectToApp](t, f.native(initial("conf", "native_callback_uri", appCB, "login_hint", "carol"), f.asClient("conf"), authed()))
	local := as[flow.Challenge](t, f.native(initial("multi", "login_hint", "carol")))
	for _, tc := range []struct {
		name  string
		value string
		mods  []reqMod
		code  string
	}{
		{"no auth_session", "", nil, "invalid_request"},
		{"unknown auth_session", "x", nil, "invalid_session"},
		{"another DPoP key", dev.AuthSession, []reqMod{key(jkt("other"))}, "invalid_dpop_proof"},
		{"no DPoP proof", dev.AuthSession, nil, "invalid_dpop_proof"},
		{"another client", dev.AuthSession, []reqMod{key(jkt("dev")), f.asClient("multi")}, "invalid_request"},
		{"confidential client unauthenticated", conf.AuthSession, []reqMod{f.asClient("conf")}, "invalid_client"},
		{"not a redirect_to_app session", local.AuthSession, nil, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refusal(t, f.reachPost(tc.value, tc.mods...), tc.code)
		})
	}
	require.Empty(t, r.tasks, "a refused caller creates nothing")
	as[flow.Reaching](t, f.reachPost(conf.AuthSession, f.asClient("conf"), authed()))
}

// TestReach_CompleteRace (RN06): 20 racing completions of one approved
// task: exactly one rotated auth_session, the others invalid_request.
func TestReach_CompleteRace(t *testing.T) {
	r := &fakeReach{}
	f := reachFixture(t, r)
	out := as[flow.RedirectToApp](t, f.native(initial("app", "native_callback_uri", appCB, "login_hint", "carol")))
	got := as[flow.Reaching](t, f.reachPost(out.AuthSession))
	var mu sync.Mutex
	var values []string
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Go(func() {
			v, rf, err := f.eng.CompleteReach(context.Background(), f.snap, r.created[0].SessionID, got.TaskID, flow.ReachAnswer{User: "carol", At: f.clock.Now()})
			if err != nil || (rf != nil && rf.Code != "invalid_request") {
				t.Errorf("completion: %v %+v", err, rf)
				return
			}
			if v != "" {
				mu.Lock()
				values = append(values, v)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, values, 1)
	as[flow.Code](t, f.native(vals("auth_session", values[0])))
}
