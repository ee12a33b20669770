package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage"
)

// The cross-device redirect_to_app end to end (docs/reach.md
// "Cross-device redirect_to_app"; SECURITY-RESULTS.md RN…): the
// initiating device (demo-app with its DPoP key) talks to instance a, our
// app on the user's phone answers through instance b, on memory and on
// Redis.

const cb = "https://app.example/cb"

// nativeReachConfig: reachConfig plus dave (a device, never present),
// demo-nocd (cross-device off) and quotas the scenarios do not reach.
func nativeReachConfig(c *config.Config) {
	c.Users = append(c.Users, config.User{Username: "dave", Subject: "dave", PasswordHash: carolHash})
	c.Reach.TasksPerUser, c.Reach.MaxLiveTasks = 1000, 50
	nocd := config.Client{ID: "demo-nocd", FirstParty: true, TokenEndpointAuthMethod: "none", Scopes: []string{"openid"},
		GrantTypes: []string{"authorization_code"}, NativeCallbackURIs: []string{cb}, Reach: &config.ClientReach{DisableCrossDevice: true}}
	c.Clients = append(c.Clients, nocd)
	for i := range c.Apps {
		if c.Apps[i].ID == "bank" {
			c.Apps[i].Clients = append(c.Apps[i].Clients, "demo-nocd", "fp-conf")
		}
	}
	for i := range c.Clients {
		if c.Clients[i].ID == "fp-conf" {
			c.Clients[i].NativeCallbackURIs = []string{cb}
		}
	}
}

// reachDevice is the initiating device: a native client with its own
// DPoP key, whose proofs follow the servers' fake clock.
type reachDevice struct {
	in     *servertest.Instance
	clock  *servertest.Clock
	key    *dpop.Key
	client string
	pk     sdk.PKCE
	// hdr is sent with every request (a confidential client's Basic
	// authentication).
	hdr http.Header
}

func newReachDevice(tb testing.TB, in *servertest.Instance, clock *servertest.Clock, client string) *reachDevice {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	dk, err := dpop.NewKey(k, jose.ES256)
	require.NoError(tb, err)
	return &reachDevice{in: in, clock: clock, key: dk, client: client, pk: sdk.NewPKCE()}
}

// send sends a request with a DPoP proof of key (nil: none).
func (d *reachDevice) send(tb testing.TB, key *dpop.Key, method, u string, form url.Values, hdr http.Header) reply {
	tb.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, err := http.NewRequest(method, u, body)
	require.NoError(tb, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, h := range []http.Header{d.hdr, hdr} {
		for k, v := range h {
			req.Header[k] = v
		}
	}
	if key != nil {
		htu, _, _ := strings.Cut(u, "?")
		proof, err := key.ProofAt(method, htu, "", d.clock.Now())
		require.NoError(tb, err)
		req.Header.Set("DPoP", proof)
	}
	return do(tb, req)
}

// start sends the initial request naming hint (none when "").
func (d *reachDevice) start(tb testing.TB, hint string) reply {
	tb.Helper()
	f := url.Values{"client_id": {d.client}, "response_type": {"code"}, "scope": {"openid"}, "native_callback_uri": {cb},
		"code_challenge": {d.pk.Challenge}, "code_challenge_method": {"S256"}}
	if hint != "" {
		f.Set("login_hint", hint)
	}
	r := d.send(tb, d.key, http.MethodPost, d.in.URL+"/native/authorize", f, nil)
	requireOAuthError(tb, r, http.StatusBadRequest, "redirect_to_app")
	return r
}

func (d *reachDevice) reach(tb testing.TB, session string) reply {
	tb.Helper()
	return d.send(tb, d.key, http.MethodPost, d.in.URL+"/native/reach", url.Values{"auth_session": {session}}, nil)
}

func (d *reachDevice) poll(tb testing.TB, loc string) reply {
	tb.Helper()
	return d.send(tb, d.key, http.MethodGet, loc, nil, nil)
}

// next lets the poll interval pass.
func (d *reachDevice) next() { d.clock.Advance(2 * time.Second) }

func (d *reachDevice) authorize(tb testing.TB, form url.Values) reply {
	tb.Helper()
	return d.send(tb, d.key, http.MethodPost, d.in.URL+"/native/authorize", form, nil)
}

// redeem exchanges code for a DPoP-bound token and returns its
// introspection.
func (d *reachDevice) redeem(tb testing.TB, code string) reply {
	tb.Helper()
	r := d.send(tb, d.key, http.MethodPost, d.in.URL+"/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"code_verifier": {d.pk.Verifier}, "client_id": {d.client}}, nil)
	require.Equal(tb, http.StatusOK, r.status, r.raw)
	require.Equal(tb, "DPoP", r.str("token_type"))
	return wrap(d.in).introspect(tb, r.str("access_token"))
}

// reachPhone is our app on the user's other device (appPhone: the app
// API over HTTP at the instance it was made for), plus the test's view
// of the store for what the person holding it knows: the number the
// initiating device shows (the task's right binding number).
type reachPhone struct {
	*appPhone
	store storage.ReachStore
}

// newReachPhone signs user's app in at in (its proofs dated by clock),
// registers its device and, when present, reads its inbox (the device
// is then present: the inbox channel delivers to it).
func newReachPhone(tb testing.TB, in *servertest.Instance, clock *servertest.Clock, user string, present bool) *reachPhone {
	tb.Helper()
	return &reachPhone{appPhone: newAppPhone(tb, in, clock, user, present), store: in.Store.(storage.ReachStore)}
}

// inbox returns the task ids delivered since the last read (GET
// /reach/inbox, no hold).
func (p *reachPhone) inbox(tb testing.TB) []string {
	tb.Helper()
	return p.appPhone.inbox(tb, 0)
}

// answer answers task id as the app does: it views the task (its
// number-matching choices), acks it (interacting) and sends the
// response — approve with pick (0: the right number) or deny — with the
// local user verification's amr. The HTTP answer must be the one the
// stored outcome calls for (200 approved/denied; 400 binding_mismatch
// for a wrong pick that leaves attempts; 403 access_denied for the
// failing pick or another user's device); the stored state is returned.
func (p *reachPhone) answer(tb testing.TB, id, decision string, pick int) reach.State {
	tb.Helper()
	v := p.view(tb, id)
	require.Equal(tb, string(reach.KindAppAuth), v["kind"])
	p.ack(tb, id)
	if pick == 0 {
		pick = p.right(tb, id)
	}
	ans := map[string]any{"decision": decision, "amr": []string{"hwk", "face"}}
	if decision == "approve" {
		require.Contains(tb, v["binding_choices"], float64(pick), "the number picked is one the app offers")
		ans["binding_choice"] = pick
	}
	st, body := p.respond(tb, id, ans)
	t, err := p.store.Task(context.Background(), id)
	require.NoError(tb, err)
	switch {
	case t.State == reach.StateSeen:
		require.Equal(tb, http.StatusBadRequest, st, "%v", body)
		require.Equal(tb, "binding_mismatch", body["error"])
		require.EqualValues(tb, reach.MaxPicks-t.Attempts, body["attempts_left"])
	case t.State == reach.StateFailed || (t.State == reach.StateDenied && t.User != p.app.user):
		require.Equal(tb, http.StatusForbidden, st, "%v", body)
		require.Equal(tb, "access_denied", body["error"])
	default:
		require.Equal(tb, http.StatusOK, st, "%v", body)
		require.Equal(tb, map[string]any{"status": strings.ToLower(string(t.State))}, body)
	}
	return t.State
}

// right is the number the initiating device shows for task id.
func (p *reachPhone) right(tb testing.TB, id string) int {
	tb.Helper()
	t, err := p.store.Task(context.Background(), id)
	require.NoError(tb, err)
	return t.Binding.Right
}

// wrongPick is a number the app offers for task id that is not the one
// the initiating device shows.
func (p *reachPhone) wrongPick(tb testing.TB, id string) int {
	tb.Helper()
	right := p.right(tb, id)
	for _, c := range p.view(tb, id)["binding_choices"].([]any) {
		if n := int(c.(float64)); n != right {
			return n
		}
	}
	tb.Fatal("no wrong choice")
	return 0
}

func taskID(tb testing.TB, loc string) string {
	tb.Helper()
	i := strings.LastIndexByte(loc, '/')
	require.Positive(tb, i)
	return loc[i+1:]
}

// requireCode asserts exactly one code is issued for the session value
// and that its token is carol's (user), bound to the device's key.
func requireCode(tb testing.TB, d *reachDevice, value, user string) {
	tb.Helper()
	r := d.authorize(tb, url.Values{"auth_session": {value}})
	require.Equal(tb, http.StatusOK, r.status, r.raw)
	requireOAuthError(tb, d.authorize(tb, url.Values{"auth_session": {value}}), http.StatusBadRequest, "invalid_session")
	ir := d.redeem(tb, r.str("authorization_code"))
	require.Equal(tb, user, ir.str("sub"))
	require.Equal(tb, map[string]any{"jkt": d.key.JKT}, ir.body["cnf"])
}

// TestReachNative_EndToEnd is every scenario of docs/reach.md
// "Cross-device redirect_to_app" on memory and Redis, the device on
// instance a and the phone answering through instance b.
func TestReachNative_EndToEnd(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			clock := &servertest.Clock{}
			env := newReachEnv(t, b.store(t), reachEnvOptions{clock: clock, edit: nativeReachConfig})
			carol := newReachPhone(t, env.b, clock, "carol", true)
			dave := newReachPhone(t, env.b, clock, "dave", false)
			alice := newReachPhone(t, env.b, clock, "alice", true)
			dev := func(t *testing.T) *reachDevice { return newReachDevice(t, env.a, clock, "demo-app") }

			t.Run("RN10 right pick: 202, approval on b, 200 rotated auth_session, one code for carol bound to the device key", func(t *testing.T) {
				d := dev(t)
				first := d.start(t, "carol")
				require.Equal(t, env.a.URL+"/native/reach", first.str("reach_uri"))
				r := d.reach(t, first.str("auth_session"))
				require.Equal(t, http.StatusAccepted, r.status, r.raw)
				require.Equal(t, "pending", r.str("status"))
				require.Len(t, r.str("binding_code"), 2)
				require.Equal(t, "2", r.header.Get("Retry-After"))
				require.Equal(t, "no-store", r.header.Get("Cache-Control"))
				loc := r.header.Get("Location")
				require.True(t, strings.HasPrefix(loc, env.a.URL+"/native/reach/"), loc)
				id := taskID(t, loc)
				require.Equal(t, []string{id}, carol.inbox(t))
				task, err := carol.store.Task(context.Background(), id)
				require.NoError(t, err)
				require.Equal(t, r.str("binding_code"), strconv.Itoa(task.Binding.Right))
				p := d.poll(t, loc)
				require.Equal(t, http.StatusAccepted, p.status, p.raw)
				require.Equal(t, "pending", p.str("status"))

				require.Equal(t, reach.StateApproved, carol.answer(t, id, "approve", 0))
				d.next()
				p = d.poll(t, loc)
				require.Equal(t, http.StatusOK, p.status, p.raw)
				require.Equal(t, "completed", p.str("status"))
				value := p.str("auth_session")
				require.NotEmpty(t, value)
				require.NotEqual(t, first.str("auth_session"), value)
				d.next()
				requireOAuthError(t, d.poll(t, loc), http.StatusBadRequest, "invalid_request")
				requireOAuthError(t, d.authorize(t, url.Values{"auth_session": {first.str("auth_session")}}), http.StatusBadRequest, "invalid_session")
				requireCode(t, d, value, "carol")
				d.next()
				requireOAuthError(t, d.poll(t, loc), http.StatusBadRequest, "invalid_request")
			})

			t.Run("RN11 three wrong picks: 403 access_denied, no code; the session still waits", func(t *testing.T) {
				d := dev(t)
				first := d.start(t, "carol")
				r := d.reach(t, first.str("auth_session"))
				require.Equal(t, http.StatusAccepted, r.status, r.raw)
				id := taskID(t, r.header.Get("Location"))
				wrong := carol.wrongPick(t, id)
				require.Equal(t, reach.StateSeen, carol.answer(t, id, "approve", wrong))
				require.Equal(t, reach.StateSeen, carol.answer(t, id, "approve", wrong))
				require.Equal(t, reach.StateFailed, carol.answer(t, id, "approve", wrong))
				requireOAuthError(t, d.poll(t, r.header.Get("Location")), http.StatusForbidden, "access_denied")
				requireOAuthError(t, d.authorize(t, url.Values{"auth_session": {first.str("auth_session")}}), http.StatusBadRequest, "invalid_request")
				again := d.reach(t, first.str("auth_session"))
				require.Equal(t, http.StatusAccepted, again.status, again.raw)
			})

			t.Run("RN12 deny: 403, then the same-device deep link still completes", func(t *testing.T) {
				d := dev(t)
				first := d.start(t, "carol")
				r := d.reach(t, first.str("auth_session"))
				id := taskID(t, r.header.Get("Location"))
				require.Equal(t, reach.StateDenied, carol.answer(t, id, "deny", 0))
				requireOAuthError(t, d.poll(t, r.header.Get("Location")), http.StatusForbidden, "access_denied")
				app := signInApp(t, env.a, "carol", "carol-pw", "")
				link, err := url.Parse(first.str("deep_link"))
				require.NoError(t, err)
				form := url.Values{"client_id": {link.Query().Get("client_id")}, "request_uri": {link.Query().Get("request_uri")}}
				proof, err := app.key.Proof(http.MethodPost, env.a.URL+"/native/app/complete", app.token.AccessToken)
				require.NoError(t, err)
				ac := d.send(t, nil, http.MethodPost, env.a.URL+"/native/app/complete", form, http.Header{"Authorization": {"DPoP " + app.token.AccessToken}, "Dpop": {proof}})
				require.Equal(t, http.StatusOK, ac.status, ac.raw)
				code := d.authorize(t, url.Values{"auth_session": {first.str("auth_session")}, "authorization_code": {ac.str("authorization_code")}})
				require.Equal(t, http.StatusOK, code.status, code.raw)
			})

			// RN14 runs before RN13: RN13 reads dave's inbox over HTTP, which
			// makes his device present (as the app's long poll does), and RN14
			// needs him still unreachable.
			t.Run("RN14 the app's user is not the hinted user: access_denied", func(t *testing.T) {
				d := dev(t)
				first := d.start(t, "dave")
				r := d.reach(t, first.str("auth_session"))
				require.Equal(t, http.StatusFailedDependency, r.status, r.raw)
				id := alice.scan(t, r.str("deep_link"))
				require.Equal(t, reach.StateDenied, alice.answer(t, id, "approve", 0))
				requireOAuthError(t, d.poll(t, r.header.Get("Location")), http.StatusForbidden, "access_denied")
			})

			t.Run("RN13 no live channel: 424 interaction_unavailable, the QR task completes the same way", func(t *testing.T) {
				d := dev(t)
				first := d.start(t, "dave")
				r := d.reach(t, first.str("auth_session"))
				requireOAuthError(t, r, http.StatusFailedDependency, "interaction_unavailable")
				link, err := url.Parse(r.str("deep_link"))
				require.NoError(t, err)
				require.Equal(t, bankApp, link.Scheme+"://"+link.Host+link.Path)
				require.Equal(t, []string{"client_id", "reach_ref"}, keys(link.Query()))
				require.Empty(t, dave.inbox(t), "nothing was delivered")
				loc := r.header.Get("Location")
				id := dave.scan(t, r.str("deep_link"))
				require.Equal(t, taskID(t, loc), id)
				p := d.poll(t, loc)
				require.Equal(t, http.StatusAccepted, p.status, p.raw)
				require.Equal(t, "interacting", p.str("status"))
				dave.answer(t, id, "approve", 0)
				d.next()
				p = d.poll(t, loc)
				require.Equal(t, http.StatusOK, p.status, p.raw)
				requireCode(t, d, p.str("auth_session"), "dave")
			})

			t.Run("RN15 polling faster than the interval: 429 slow_down", func(t *testing.T) {
				d := dev(t)
				r := d.reach(t, d.start(t, "carol").str("auth_session"))
				loc := r.header.Get("Location")
				require.Equal(t, http.StatusAccepted, d.poll(t, loc).status)
				p := d.poll(t, loc)
				requireOAuthError(t, p, http.StatusTooManyRequests, "slow_down")
				require.NotEmpty(t, p.header.Get("Retry-After"))
				d.next()
				require.Equal(t, http.StatusAccepted, d.poll(t, loc).status)
			})

			t.Run("RN16 polls prove the creator's DPoP key", func(t *testing.T) {
				d := dev(t)
				r := d.reach(t, d.start(t, "carol").str("auth_session"))
				loc := r.header.Get("Location")
				other := newReachDevice(t, env.a, clock, "demo-app")
				requireOAuthError(t, d.send(t, other.key, http.MethodGet, loc, nil, nil), http.StatusBadRequest, "invalid_dpop_proof")
				requireOAuthError(t, d.send(t, nil, http.MethodGet, loc, nil, nil), http.StatusBadRequest, "invalid_dpop_proof")
				requireOAuthError(t, other.reach(t, d.start(t, "carol").str("auth_session")), http.StatusBadRequest, "invalid_dpop_proof")
				require.Equal(t, http.StatusAccepted, d.poll(t, loc).status)
			})

			t.Run("RN17 a second POST supersedes the first task", func(t *testing.T) {
				d := dev(t)
				first := d.start(t, "carol")
				a := d.reach(t, first.str("auth_session"))
				b := d.reach(t, first.str("auth_session"))
				require.Equal(t, http.StatusAccepted, b.status, b.raw)
				require.NotEqual(t, a.header.Get("Location"), b.header.Get("Location"))
				requireOAuthError(t, d.poll(t, a.header.Get("Location")), http.StatusBadRequest, "invalid_request")
				old := taskID(t, a.header.Get("Location"))
				got, err := carol.store.Task(context.Background(), old)
				require.NoError(t, err)
				require.Equal(t, reach.StateSuperseded, got.State)
				carol.answer(t, taskID(t, b.header.Get("Location")), "approve", 0)
				p := d.poll(t, b.header.Get("Location"))
				require.Equal(t, http.StatusOK, p.status, p.raw)
			})

			t.Run("RN18 unknown tasks and tasks of another client look alike", func(t *testing.T) {
				d := dev(t)
				r := d.reach(t, d.start(t, "carol").str("auth_session"))
				loc := r.header.Get("Location")
				for _, u := range []string{env.a.URL + "/native/reach/" + reach.NewID(), env.a.URL + "/native/reach/not-an-id", loc + "?client_id=c2"} {
					requireOAuthError(t, d.poll(t, u), http.StatusNotFound, "invalid_request")
				}
			})

			t.Run("RN19 no reach_uri without a hint, for an opted-out client; POST refused", func(t *testing.T) {
				d := dev(t)
				noHint := d.start(t, "")
				require.Empty(t, noHint.str("reach_uri"))
				requireOAuthError(t, d.reach(t, noHint.str("auth_session")), http.StatusBadRequest, "invalid_request")
				nocd := newReachDevice(t, env.a, clock, "demo-nocd")
				off := nocd.start(t, "carol")
				require.Empty(t, off.str("reach_uri"))
				requireOAuthError(t, nocd.reach(t, off.str("auth_session")), http.StatusBadRequest, "invalid_request")
				requireOAuthError(t, d.reach(t, ""), http.StatusBadRequest, "invalid_request")
				requireOAuthError(t, d.reach(t, "x"), http.StatusBadRequest, "invalid_session")
			})

			t.Run("RN20 expiry: 400 expired_token, the session still waits", func(t *testing.T) {
				d := dev(t)
				first := d.start(t, "carol")
				r := d.reach(t, first.str("auth_session"))
				loc := r.header.Get("Location")
				clock.Advance(config.DefaultReachTaskTTL + time.Second)
				requireOAuthError(t, d.poll(t, loc), http.StatusBadRequest, "expired_token")
				got, err := carol.store.Task(context.Background(), taskID(t, loc))
				require.NoError(t, err)
				require.Equal(t, reach.StateExpired, got.State)
				again := d.reach(t, first.str("auth_session"))
				require.Equal(t, http.StatusAccepted, again.status, again.raw)
			})
		})
	}
}
