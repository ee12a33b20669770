package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/reach/wake"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/server/servertest"
	"github.com/fedas/fedas/storage/redistest"
)

// The cross-instance wake-up survives a lost pub/sub message (docs/reach.md
// "Scale-out": Redis pub/sub is at-most-once; every waiter re-checks
// periodically): two instances on a real Redis, the device's waiting poll
// on b, b's subscription killed on the server (CLIENT KILL TYPE pubsub)
// and held down while a's answer is published, so that b cannot hear it;
// the poll still answers the approval, on b's re-check (its ticker is the
// test's: sent once, no sleeping). Once b's subscriber may redial it
// resubscribes, and the next answer wakes b's poll through pub/sub again,
// with no re-check.

// dialGate is a go-redis Dialer that can be held shut: a dial waits
// until the gate opens (or its context ends). attempts counts the dials
// that found it shut.
type dialGate struct {
	mu       sync.Mutex
	open     chan struct{} // closed while the gate is open
	attempts atomic.Int64
}

func newDialGate() *dialGate {
	g := &dialGate{open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *dialGate) shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		g.open = make(chan struct{})
	default:
	}
}

func (g *dialGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

func (g *dialGate) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
	default:
		g.attempts.Add(1)
		select {
		case <-open:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// heldPoll is a waiting GET /native/reach/{id} in flight.
type heldPoll struct {
	done chan reply
}

// holdPoll sends the device's poll of task id to in with Prefer: wait=8
// (under the HTTP client's 10 s) and returns at once; the answer arrives
// on done.
func holdPoll(tb testing.TB, d *reachDevice, in *servertest.Instance, id string) *heldPoll {
	tb.Helper()
	u := in.URL + server.PathNativeReach + "/" + id
	proof, err := d.key.ProofAt(http.MethodGet, u, "", d.clock.Now())
	require.NoError(tb, err)
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(tb, err)
	req.Header.Set("DPoP", proof)
	req.Header.Set("Prefer", "wait=8")
	p := &heldPoll{done: make(chan reply, 1)}
	go func() {
		r := reply{}
		resp, err := servertest.HTTP().Do(req)
		if err != nil {
			r.raw = err.Error()
			p.done <- r
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		r.status, r.header, r.raw = resp.StatusCode, resp.Header, string(b)
		_ = json.Unmarshal(b, &r.body)
		p.done <- r
	}()
	return p
}

// result waits for the poll's answer (its own hold bounds the wait).
func (p *heldPoll) result(tb testing.TB) reply {
	tb.Helper()
	select {
	case r := <-p.done:
		return r
	case <-time.After(15 * time.Second):
		tb.Fatal("the waiting poll never answered")
		return reply{}
	}
}

// answered reports whether the poll has answered already.
func (p *heldPoll) answered() bool { return len(p.done) > 0 }

func TestReachFanout_SubscriberRestart_Redis(t *testing.T) {
	rs := redistest.Start(t)
	st := redisStore(t, rs.URL())
	ctx := context.Background()

	// b's wake hub: its own connection to the same Redis and channel, its
	// dials through the gate, its re-check ticker the test's.
	gate := newDialGate()
	bClient := redis.NewClient(&redis.Options{Addr: rs.Addr(), Dialer: gate.dial})
	t.Cleanup(func() { _ = bClient.Close() })
	tick := make(chan time.Time)
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	hubB, err := wake.NewRedis(hctx, bClient, wake.RedisOptions{Options: wake.Options{Tick: tick}, Prefix: st.Prefix()})
	cancel()
	require.NoError(t, err)
	t.Cleanup(func() { _ = hubB.Close() })
	t.Cleanup(gate.release) // runs first: a dial held shut returns

	// One deployment: a with the hub it makes itself on the store's
	// client, b with hubB.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	clock := &servertest.Clock{}
	opts := func(r server.ReachOptions) servertest.Options {
		return servertest.Options{Store: st, HMACSecret: secret, SigningKey: key, Reach: r, Clock: clock, Configure: func(c *config.Config) {
			reachConfig(c)
			nativeReachConfig(c)
		}}
	}
	a := servertest.Start(t, opts(server.ReachOptions{}))
	b := servertest.Start(t, opts(server.ReachOptions{Hub: hubB}))
	channel := st.Prefix() + wake.Channel
	subscribers := func() int {
		out, err := rs.Do("PUBSUB", "NUMSUB", channel)
		require.NoError(t, err)
		f := strings.Fields(out)
		require.NotEmpty(t, f, out)
		n, err := strconv.Atoi(f[len(f)-1])
		require.NoError(t, err, out)
		return n
	}
	require.Equal(t, 2, subscribers(), "a's and b's subscriptions")

	app := signInApp(t, a, "carol", "carol-pw", "")
	app.register(t, "", http.StatusCreated)
	// started creates a task for carol from a new device on a and has the
	// app on a see it (interacting): the state a waiting poll waits past.
	started := func(t *testing.T) (*reachDevice, string, int) {
		st, _, body := app.do(t, http.MethodGet, "/reach/inbox?wait=0", "")
		require.Equal(t, http.StatusOK, st, "%s", body) // present
		dev := newReachDevice(t, a, clock, "demo-app")
		r := dev.reach(t, dev.start(t, "carol").str("auth_session"))
		require.Equal(t, http.StatusAccepted, r.status, r.raw)
		loc := r.header.Get("Location")
		id := loc[strings.LastIndex(loc, "/")+1:]
		pick, err := strconv.Atoi(r.str("binding_code"))
		require.NoError(t, err)
		st, _, body = app.do(t, http.MethodPost, "/reach/tasks/"+id+"/ack", "")
		require.Equal(t, http.StatusOK, st, "%s", body)
		return dev, id, pick
	}
	approve := func(t *testing.T, id string, pick int) {
		st, _, body := app.do(t, http.MethodPost, "/reach/tasks/"+id+"/response", `{"decision":"approve","binding_choice":`+strconv.Itoa(pick)+`}`)
		require.Equal(t, http.StatusOK, st, "%s", body)
	}
	requireCompleted := func(t *testing.T, r reply) {
		require.Equal(t, http.StatusOK, r.status, r.raw)
		require.Equal(t, "completed", r.str("status"), r.raw)
		require.NotEmpty(t, r.str("auth_session"))
	}

	t.Run("message lost while b is deaf: the re-check answers", func(t *testing.T) {
		dev, id, pick := started(t)
		poll := holdPoll(t, dev, b, id)
		require.Eventually(t, func() bool { return hubB.Waiting() == 1 }, 10*time.Second, 5*time.Millisecond, "the poll waits on b")

		gate.shut()
		_, err := rs.Do("CLIENT", "KILL", "TYPE", "pubsub")
		require.NoError(t, err)
		// a resubscribes; b's subscriber lost its connection and is held
		// redialling: only a listens when the answer is published.
		require.Eventually(t, func() bool { return gate.attempts.Load() > 0 && subscribers() == 1 }, 10*time.Second, 5*time.Millisecond)

		approve(t, id, pick)
		require.False(t, poll.answered(), "b cannot have heard the answer")
		require.Equal(t, 1, hubB.Waiting(), "b's poll still waits")
		require.Equal(t, 1, subscribers(), "b is still deaf")

		tick <- time.Now() // b's periodic re-check
		requireCompleted(t, poll.result(t))
		require.Equal(t, 1, subscribers(), "answered by the re-check, b still deaf")
	})

	t.Run("subscriber back: pub/sub wakes b again", func(t *testing.T) {
		gate.release()
		require.Eventually(t, func() bool { return hubB.Up() && subscribers() == 2 }, 10*time.Second, 5*time.Millisecond, "b resubscribed")
		dev, id, pick := started(t)
		poll := holdPoll(t, dev, b, id)
		require.Eventually(t, func() bool { return hubB.Waiting() == 1 }, 10*time.Second, 5*time.Millisecond, "the poll waits on b")
		approve(t, id, pick)
		// No tick: the PUBLISH of a's answer is what wakes b.
		requireCompleted(t, poll.result(t))
	})
}
