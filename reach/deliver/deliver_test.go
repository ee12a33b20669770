package deliver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/reach/deliver"
	"github.com/fedas/fedas/reach/wake"
	"github.com/fedas/fedas/reach/webhook"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
	"github.com/fedas/fedas/storage/redisstore"
	"github.com/fedas/fedas/storage/redistest"
)

// store is what a backend offers the Reacher.
type store interface {
	storage.ReachStore
	storage.LiveCounter
	storage.RateLimiter
}

// instance is one fedas instance: its store and its wake hub.
type instance struct {
	store store
	hub   wake.Hub
}

// backend is two instances sharing one backend (on memory: the same
// store and hub twice) and the shared clock.
type backend struct {
	a, b instance
	now  time.Time
}

var prefixSeq atomic.Int64

var backends = []struct {
	name string
	new  func(t *testing.T) backend
}{
	{"memory", func(t *testing.T) backend {
		now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
		s := memory.NewWithClock(func() time.Time { return now })
		h := wake.NewMemory(wake.Options{})
		t.Cleanup(func() { _ = h.Close() })
		return backend{a: instance{s, h}, b: instance{s, h}, now: now}
	}},
	{"redis", func(t *testing.T) backend {
		srv := redistest.Start(t)
		prefix := fmt.Sprintf("fedas:dl%d:", prefixSeq.Add(1))
		inst := func() instance {
			s, err := redisstore.New(context.Background(), redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: prefix}, zaptest.NewLogger(t))
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			h, err := wake.NewRedis(t.Context(), s.Client(), wake.RedisOptions{Prefix: prefix})
			require.NoError(t, err)
			t.Cleanup(func() { _ = h.Close() })
			return instance{s, h}
		}
		// Redis expires keys by its own clock: the test clock is now.
		return backend{a: inst(), b: inst(), now: time.Now()}
	}},
}

func forEachBackend(t *testing.T, f func(t *testing.T, be backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b.new(t)) })
	}
}

const user = "alice@example.com"

func putDevice(t *testing.T, s store, name string, caps []reach.Capability, chans ...reach.ChannelSpec) reach.Device {
	t.Helper()
	h := sha256.Sum256([]byte(name))
	d, err := s.PutDevice(t.Context(), reach.Device{
		ID: reach.NewID(), User: user, JKT: base64.RawURLEncoding.EncodeToString(h[:]),
		Name: name, Platform: "iOS 19", Capabilities: caps, Channels: chans,
	}, time.Hour)
	require.NoError(t, err)
	return d
}

var allCaps = []reach.Capability{reach.KindAppAuth, reach.KindQuestion, reach.KindInteraction}

func newTask(t *testing.T, s store, now time.Time) *reach.Task {
	t.Helper()
	b, err := reach.NewBinding()
	require.NoError(t, err)
	tk := reach.Task{ID: reach.NewID(), Kind: reach.KindAppAuth, User: user, ClientID: "native-client",
		State: reach.StateCreated, Ref: reach.NewID(), Binding: b, ExpiresAt: now.Add(2 * time.Minute)}
	require.NoError(t, s.CreateTask(t.Context(), tk))
	return &tk
}

// hookEnv is a webhook receiver on loopback behind the public URL
// hookURL: the Sender's client dials the httptest server whatever the
// name (the test seam; production dials through netguard), and the
// receiver verifies every token with webhook.VerifyWake.
type hookEnv struct {
	sender   *webhook.Sender
	status   atomic.Int32
	mu       sync.Mutex
	verified []*webhook.Claims
	bad      int
}

const hookURL = "https://example.com/wake" // a name httptest's certificate covers

func newHook(t *testing.T, status int) *hookEnv {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	jwks := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "w1", Algorithm: "ES256", Use: "sig"}}}
	e := &hookEnv{}
	e.status.Store(int32(status))
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c, err := webhook.VerifyWake(string(b), jwks, hookURL)
		e.mu.Lock()
		if err != nil {
			e.bad++
		} else {
			e.verified = append(e.verified, c)
		}
		e.mu.Unlock()
		w.WriteHeader(int(e.status.Load()))
	}))
	t.Cleanup(srv.Close)
	client := srv.Client()
	tr := client.Transport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
	}
	client.Transport = tr
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	e.sender, err = webhook.New(webhook.Config{Issuer: "https://as.example", Key: k, KeyID: "w1", Client: client,
		Sleep: func(context.Context, time.Duration) error { return nil }})
	require.NoError(t, err)
	return e
}

func (e *hookEnv) got() (ok []*webhook.Claims, bad int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*webhook.Claims(nil), e.verified...), e.bad
}

func reacher(in instance, hook *hookEnv, now time.Time, q deliver.Quota) *deliver.Reacher {
	var sender *webhook.Sender
	if hook != nil {
		sender = hook.sender
	}
	q.Live, q.Rate = in.store, in.store
	return &deliver.Reacher{
		Store:    in.store,
		Channels: deliver.NewChannels(&deliver.Inbox{Store: in.store, Hub: in.hub}, &deliver.Webhook{Sender: sender}),
		Quota:    q,
		Now:      func() time.Time { return now },
	}
}

// TestReachInboxWakesOtherInstance: a long-poll waiter parked on
// instance B's hub for the device's inbox topic is woken by a Reach on
// instance A; the inbox entry is exactly {task, kind} (no user, client,
// binding or ref); the task is DELIVERED with the device recorded.
func TestReachInboxWakesOtherInstance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := t.Context()
		d := putDevice(t, be.a.store, "phone", allCaps, reach.ChannelSpec{Type: reach.ChannelInbox})
		require.NoError(t, be.b.store.SetPresence(ctx, d.ID, storage.PresenceTTL))
		tk := newTask(t, be.a.store, be.now)

		var entries []storage.InboxEntry
		parked := make(chan struct{})
		woke := make(chan error, 1)
		go func() {
			var once sync.Once
			woke <- be.b.hub.Wait(ctx, reach.InboxTopic(d.ID), func(ctx context.Context) (bool, error) {
				defer once.Do(func() { close(parked) })
				es, err := be.b.store.ReadInbox(ctx, d.ID, "", 10)
				entries = es
				return len(es) > 0, err
			})
		}()
		<-parked // the first check ran: the waiter is registered

		got, err := reacher(be.a, nil, be.now, deliver.Quota{}).Reach(ctx, user, tk)
		require.NoError(t, err)
		require.Equal(t, []string{d.ID}, got)
		require.NoError(t, <-woke)
		require.Len(t, entries, 1)

		var m map[string]any
		require.NoError(t, json.Unmarshal(entries[0].Data, &m))
		require.Equal(t, map[string]any{"task": tk.ID, "kind": string(reach.KindAppAuth)}, m, "content-free entry")
		for _, secret := range []string{user, "alice", tk.ClientID, tk.Ref, fmt.Sprint(tk.Binding.Right)} {
			require.NotContains(t, string(entries[0].Data), secret)
		}

		stored, err := be.b.store.Task(ctx, tk.ID)
		require.NoError(t, err)
		require.Equal(t, reach.StateDelivered, stored.State)
		require.Equal(t, []string{d.ID}, stored.Devices)
		require.Equal(t, stored, *tk, "Reach returns the task as stored")
	})
}

// TestReachChannels is the table of channel selection: presence, the
// capability, the device's channel order, a failing webhook falling
// through, a verified webhook delivery, push adapters off by default.
func TestReachChannels(t *testing.T) {
	inbox := reach.ChannelSpec{Type: reach.ChannelInbox}
	hook := reach.ChannelSpec{Type: reach.ChannelWebhook, URL: hookURL}
	apns := reach.ChannelSpec{Type: reach.ChannelAPNs, Token: strings.Repeat("0f", 32)}
	fcm := reach.ChannelSpec{Type: reach.ChannelFCM, Token: "fcm-token-1"}
	type dev struct {
		caps    []reach.Capability
		chans   []reach.ChannelSpec
		present bool
	}
	tests := []struct {
		name       string
		devs       []dev
		hookStatus int
		want       []int // indexes of devs delivered
		wantErr    error
		wantInbox  []int // devs whose inbox got the entry
		wantHooks  int   // verified webhook posts
	}{
		{name: "no device", wantErr: reach.ErrNoChannel},
		{name: "no presence", devs: []dev{{allCaps, []reach.ChannelSpec{inbox}, false}}, wantErr: reach.ErrNoChannel},
		{name: "lacks capability", devs: []dev{{[]reach.Capability{reach.KindQuestion}, []reach.ChannelSpec{inbox}, true}}, wantErr: reach.ErrNoChannel},
		{name: "absent device skipped", devs: []dev{{allCaps, []reach.ChannelSpec{inbox}, false}, {allCaps, []reach.ChannelSpec{inbox}, true}},
			want: []int{1}, wantInbox: []int{1}},
		{name: "webhook delivers, verified JWS", devs: []dev{{allCaps, []reach.ChannelSpec{hook, inbox}, true}}, hookStatus: http.StatusNoContent,
			want: []int{0}, wantHooks: 1},
		{name: "failing webhook falls through to inbox", devs: []dev{{allCaps, []reach.ChannelSpec{hook, inbox}, true}}, hookStatus: http.StatusServiceUnavailable,
			want: []int{0}, wantInbox: []int{0}, wantHooks: webhook.DefaultAttempts},
		{name: "rejected webhook, no presence", devs: []dev{{allCaps, []reach.ChannelSpec{hook, inbox}, false}}, hookStatus: http.StatusForbidden,
			wantErr: reach.ErrNoChannel, wantHooks: 1},
		{name: "push off by default", devs: []dev{{allCaps, []reach.ChannelSpec{apns, fcm}, true}}, wantErr: reach.ErrNoChannel},
		{name: "inbox first in order", devs: []dev{{allCaps, []reach.ChannelSpec{inbox, hook}, true}}, hookStatus: http.StatusNoContent,
			want: []int{0}, wantInbox: []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, be backend) {
				ctx := t.Context()
				h := newHook(t, max(tt.hookStatus, 200))
				var devs []reach.Device
				for i, dv := range tt.devs {
					d := putDevice(t, be.a.store, fmt.Sprintf("dev%d", i), dv.caps, dv.chans...)
					if dv.present {
						require.NoError(t, be.a.store.SetPresence(ctx, d.ID, storage.PresenceTTL))
					}
					devs = append(devs, d)
				}
				tk := newTask(t, be.a.store, be.now)
				got, err := reacher(be.a, h, be.now, deliver.Quota{}).Reach(ctx, user, tk)
				var want []string
				for _, i := range tt.want {
					want = append(want, devs[i].ID)
				}
				stored, serr := be.a.store.Task(ctx, tk.ID)
				require.NoError(t, serr)
				if tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr)
					require.Empty(t, got)
					require.Equal(t, reach.StateUnavailable, stored.State)
				} else {
					require.NoError(t, err)
					require.Equal(t, want, got)
					require.Equal(t, reach.StateDelivered, stored.State)
					require.Equal(t, want, stored.Devices)
				}
				for i, d := range devs {
					es, err := be.a.store.ReadInbox(ctx, d.ID, "", 10)
					if errors.Is(err, storage.ErrNotFound) {
						es = nil
					} else {
						require.NoError(t, err)
					}
					n := 0
					for _, j := range tt.wantInbox {
						if j == i {
							n = 1
						}
					}
					require.Len(t, es, n, "inbox of dev%d", i)
				}
				ok, bad := h.got()
				require.Zero(t, bad, "every webhook body verified")
				require.Len(t, ok, tt.wantHooks)
				for _, c := range ok {
					require.Equal(t, webhook.Event{Type: webhook.EventWake, DeviceID: devs[0].ID}, c.Event, "content-free wake-up")
				}
			})
		})
	}
}

// TestReachQuota: a user holds at most 3 live tasks and creates at most
// 10 per 10 min, across instances; the refused task is UNAVAILABLE with
// ErrQuota and pushed nowhere; Release frees a live slot; a Reach
// refused for no channel spends no quota.
func TestReachQuota(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := t.Context()
		ra := reacher(be.a, nil, be.now, deliver.Quota{})
		rb := reacher(be.b, nil, be.now, deliver.Quota{})
		// Without a device every Reach is ErrNoChannel and spends nothing:
		// the full quota is still there below.
		for range deliver.DefaultPerUser + 1 {
			_, err := ra.Reach(ctx, user, newTask(t, be.a.store, be.now))
			require.ErrorIs(t, err, reach.ErrNoChannel)
		}
		d := putDevice(t, be.a.store, "phone", allCaps, reach.ChannelSpec{Type: reach.ChannelInbox})
		require.NoError(t, be.a.store.SetPresence(ctx, d.ID, storage.PresenceTTL))
		inboxLen := func() int {
			es, err := be.a.store.ReadInbox(ctx, d.ID, "", 100)
			require.NoError(t, err)
			return len(es)
		}
		var live []*reach.Task
		for i := range deliver.DefaultMaxLive {
			tk := newTask(t, be.a.store, be.now)
			r := ra
			if i%2 == 1 {
				r = rb
			}
			_, err := r.Reach(ctx, user, tk)
			require.NoError(t, err)
			live = append(live, tk)
		}
		over := newTask(t, be.a.store, be.now)
		_, err := rb.Reach(ctx, user, over)
		require.ErrorIs(t, err, reach.ErrQuota)
		require.NotErrorIs(t, err, reach.ErrNoChannel)
		st, err := be.a.store.Task(ctx, over.ID)
		require.NoError(t, err)
		require.Equal(t, reach.StateUnavailable, st.State)
		require.Equal(t, deliver.DefaultMaxLive, inboxLen(), "a refused task pushes nothing")

		require.NoError(t, ra.Release(ctx, live[0]))
		_, err = ra.Reach(ctx, user, newTask(t, be.a.store, be.now))
		require.NoError(t, err, "a released slot is free again")

		// The window: 10 per 10 min, whatever the live count.
		wide := reacher(be.a, nil, be.now, deliver.Quota{MaxLive: 100})
		for range deliver.DefaultPerUser - deliver.DefaultMaxLive - 1 {
			_, err := wide.Reach(ctx, user, newTask(t, be.a.store, be.now))
			require.NoError(t, err)
		}
		_, err = wide.Reach(ctx, user, newTask(t, be.a.store, be.now))
		require.ErrorIs(t, err, reach.ErrQuota)
		require.Equal(t, deliver.DefaultPerUser, inboxLen())
	})
}

// TestPushAdapters: APNs/FCM are off without a sender (ErrUnavailable);
// switched on, they send the content-free payload to the device's token;
// the payloads name no task, user or client.
func TestPushAdapters(t *testing.T) {
	ref := reach.TaskRef{ID: reach.NewID(), Kind: reach.KindQuestion}
	for _, typ := range []reach.ChannelType{reach.ChannelAPNs, reach.ChannelFCM} {
		t.Run(string(typ), func(t *testing.T) {
			d := reach.Device{ID: reach.NewID(), User: user, Channels: []reach.ChannelSpec{{Type: typ, Token: "tok-1"}}}
			off := &deliver.Push{Type: typ}
			require.Equal(t, string(typ), off.Kind())
			require.ErrorIs(t, off.Deliver(t.Context(), d, ref), reach.ErrUnavailable)

			var gotTok string
			var gotBody []byte
			on := &deliver.Push{Type: typ, Send: func(_ context.Context, tok string, p []byte) error {
				gotTok, gotBody = tok, p
				return nil
			}}
			require.NoError(t, on.Deliver(t.Context(), d, ref))
			require.Equal(t, "tok-1", gotTok)
			require.True(t, json.Valid(gotBody))
			for _, s := range []string{ref.ID, user, d.ID, string(ref.Kind)} {
				require.NotContains(t, string(gotBody), s)
			}
			require.ErrorIs(t, on.Deliver(t.Context(), reach.Device{ID: d.ID}, ref), reach.ErrUnavailable, "no token of this type")
		})
	}
	_, err := deliver.PushPayload(reach.ChannelInbox)
	require.Error(t, err)
}

// TestReachRedisDown: with Redis gone the answer is a storage outage
// (503 temporarily_unavailable for the front end), never ErrNoChannel or
// ErrQuota (a 424 would send the client to the QR fallback for a fault of
// ours).
func TestReachRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	s, err := redisstore.New(context.Background(), redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: "fedas:dldown:"}, zaptest.NewLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	h := wake.NewMemory(wake.Options{})
	t.Cleanup(func() { _ = h.Close() })
	in := instance{s, h}
	d := putDevice(t, s, "phone", allCaps, reach.ChannelSpec{Type: reach.ChannelInbox})
	require.NoError(t, s.SetPresence(t.Context(), d.ID, storage.PresenceTTL))
	now := time.Now()
	tk := newTask(t, s, now)
	srv.Stop()
	_, err = reacher(in, nil, now, deliver.Quota{}).Reach(t.Context(), user, tk)
	require.ErrorIs(t, err, storage.ErrUnavailable)
	require.NotErrorIs(t, err, reach.ErrNoChannel)
	require.NotErrorIs(t, err, reach.ErrQuota)
}

// TestReachRedisKeys: on Redis, every key a Reach leaves (the quota keys
// live:{ru.<digest>} and rl:{ru.<digest>} beside the store's own) has a
// TTL, the quota keys at most 10 min, and no key name holds the user id.
func TestReachRedisKeys(t *testing.T) {
	srv := redistest.Start(t)
	s, err := redisstore.New(context.Background(), redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: "fedas:"}, zaptest.NewLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	h := wake.NewMemory(wake.Options{})
	t.Cleanup(func() { _ = h.Close() })
	d := putDevice(t, s, "phone", allCaps, reach.ChannelSpec{Type: reach.ChannelInbox})
	require.NoError(t, s.SetPresence(t.Context(), d.ID, storage.PresenceTTL))
	now := time.Now()
	_, err = reacher(instance{s, h}, nil, now, deliver.Quota{}).Reach(t.Context(), user, newTask(t, s, now))
	require.NoError(t, err)
	keys, err := srv.Do("KEYS", "*")
	require.NoError(t, err)
	quota := 0
	for _, k := range strings.Fields(keys) {
		require.NotContains(t, k, "alice")
		ttl, err := srv.Do("PTTL", k)
		require.NoError(t, err)
		ms, err := strconv.ParseInt(ttl, 10, 64)
		require.NoError(t, err)
		require.Positive(t, ms, "key %q has a TTL", k)
		if regexp.MustCompile(`^fedas:(live|rl):\{ru\.[A-Za-z0-9_-]{22}\}$`).MatchString(k) {
			quota++
			require.LessOrEqual(t, time.Duration(ms)*time.Millisecond, 10*time.Minute, k)
		}
	}
	require.Equal(t, 2, quota, "one live set and one rate key: %s", keys)
}

// channelFunc is a test channel (it stands in for the inbox).
type channelFunc func(ctx context.Context, d reach.Device, t reach.TaskRef) error

func (channelFunc) Kind() string { return string(reach.ChannelInbox) }
func (f channelFunc) Deliver(ctx context.Context, d reach.Device, t reach.TaskRef) error {
	return f(ctx, d, t)
}

// TestReachRaces: what happens to the task while or because a channel
// delivers — opened through the QR deep link, or by the device the
// delivery just woke, meanwhile (SEEN: Reach succeeds, the task stays
// SEEN, and the devices reached are recorded on it all the same, so that
// each still finds it), superseded meanwhile (ErrState, the
// live slot freed), a storage outage on every channel (storage
// ErrUnavailable, a 503: the task stays CREATED, not UNAVAILABLE, and the
// slot is freed).
func TestReachRaces(t *testing.T) {
	tests := []struct {
		name      string
		during    func(s store, id string) error // run inside Deliver
		fail      error
		wantErr   error
		wantState reach.State
	}{
		{"acked via QR meanwhile", func(s store, id string) error {
			_, err := s.TransitionTask(context.Background(), id, []reach.State{reach.StateCreated}, reach.StateSeen, nil)
			return err
		}, nil, nil, reach.StateSeen},
		{"superseded meanwhile", func(s store, id string) error {
			_, err := s.TransitionTask(context.Background(), id, []reach.State{reach.StateCreated}, reach.StateSuperseded, nil)
			return err
		}, nil, reach.ErrState, reach.StateSuperseded},
		{"storage outage", nil, fmt.Errorf("append: %w", storage.ErrUnavailable), storage.ErrUnavailable, reach.StateCreated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, be backend) {
				ctx := t.Context()
				phone := putDevice(t, be.a.store, "phone", allCaps, reach.ChannelSpec{Type: reach.ChannelInbox})
				r := reacher(be.a, nil, be.now, deliver.Quota{MaxLive: 1})
				tk := newTask(t, be.a.store, be.now)
				r.Channels[string(reach.ChannelInbox)] = channelFunc(func(_ context.Context, _ reach.Device, ref reach.TaskRef) error {
					if tt.during != nil {
						if err := tt.during(be.a.store, ref.ID); err != nil {
							return err // fails the assertions below (no require off the test goroutine)
						}
					}
					return tt.fail
				})
				_, err := r.Reach(ctx, user, tk)
				if tt.wantErr == nil {
					require.NoError(t, err)
					require.Equal(t, tt.wantState, tk.State)
				} else {
					require.ErrorIs(t, err, tt.wantErr)
					require.NotErrorIs(t, err, reach.ErrNoChannel)
				}
				st, err := be.a.store.Task(ctx, tk.ID)
				require.NoError(t, err)
				require.Equal(t, tt.wantState, st.State)
				if tt.wantState.Live() && tt.wantErr == nil {
					require.Equal(t, []string{phone.ID}, st.Devices, "the device reached is recorded")
				}
				// MaxLive 1: the next task fits iff the slot was freed.
				r.Channels[string(reach.ChannelInbox)] = channelFunc(func(context.Context, reach.Device, reach.TaskRef) error { return nil })
				_, err = r.Reach(ctx, user, newTask(t, be.a.store, be.now))
				if tt.wantState.Live() && tt.wantErr == nil {
					require.ErrorIs(t, err, reach.ErrQuota, "a live task keeps its slot")
				} else {
					require.NoError(t, err, "the slot was freed")
				}
			})
		})
	}
}
