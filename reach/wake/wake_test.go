package wake_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/reach/wake"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/redistest"
)

// waitLimit bounds every wait in these tests so a bug fails instead of
// hanging; it is never what a test asserts.
const waitLimit = 10 * time.Second

// rig is one hub under test with a manual re-check ticker; peer is a
// second instance on the same backend (the memory backend has no other
// instance, so peer is the hub itself).
type rig struct {
	hub, peer wake.Hub
	tick      chan time.Time
}

type backend struct {
	name string
	new  func(tb testing.TB) rig
}

func backends() []backend {
	return []backend{
		{"memory", func(tb testing.TB) rig {
			tick := make(chan time.Time)
			h := wake.NewMemory(wake.Options{Tick: tick})
			tb.Cleanup(func() { _ = h.Close() })
			return rig{hub: h, peer: h, tick: tick}
		}},
		{"redis", func(tb testing.TB) rig {
			srv := redistest.Start(tb)
			tick := make(chan time.Time)
			a := newRedisHub(tb, srv, "a", wake.RedisOptions{Options: wake.Options{Tick: tick}})
			b := newRedisHub(tb, srv, "b", wake.RedisOptions{})
			return rig{hub: a, peer: b, tick: tick}
		}},
	}
}

func newClient(tb testing.TB, srv *redistest.Server, name string, pool int) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ClientName: name, PoolSize: pool})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func newRedisHub(tb testing.TB, srv *redistest.Server, name string, o wake.RedisOptions) *wake.Redis {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	h, err := wake.NewRedis(ctx, newClient(tb, srv, name, 10), o)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = h.Close() })
	return h
}

// probe is a check function over a flag, counting its calls and
// signalling its first call (the waiter is registered by then).
type probe struct {
	flag    atomic.Bool
	calls   atomic.Int32
	started chan struct{}
	once    sync.Once
	err     error
}

func newProbe() *probe { return &probe{started: make(chan struct{})} }

func (p *probe) check(context.Context) (bool, error) {
	p.calls.Add(1)
	// Read the state before telling park the check ran: a test that sets
	// the flag once park returns must not race the first check (it
	// would then return true on its own, not through the wake-up).
	v := p.flag.Load()
	p.once.Do(func() { close(p.started) })
	return v, p.err
}

// park starts Wait in a goroutine and returns once the waiter's first
// check ran; the result arrives on the channel.
func park(tb testing.TB, ctx context.Context, h wake.Hub, topic string, p *probe) <-chan error {
	tb.Helper()
	res := make(chan error, 1)
	go func() { res <- h.Wait(ctx, topic, p.check) }()
	select {
	case <-p.started:
	case err := <-res:
		res <- err
	case <-time.After(waitLimit):
		tb.Fatalf("waiter on %q never ran its check", topic)
	}
	return res
}

func result(tb testing.TB, res <-chan error) error {
	tb.Helper()
	select {
	case err := <-res:
		return err
	case <-time.After(waitLimit):
		tb.Fatalf("waiter not released")
		return nil
	}
}

// TestHub is the behaviour both hubs share, as a table over backends.
func TestHub(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, r rig)
	}{
		{"notify wakes the waiter (peer instance on Redis)", func(t *testing.T, r rig) {
			p := newProbe()
			res := park(t, context.Background(), r.hub, "t1", p)
			p.flag.Store(true)
			require.NoError(t, r.peer.Notify(context.Background(), "t1"))
			require.NoError(t, result(t, res))
		}},
		{"check already true returns at once", func(t *testing.T, r rig) {
			p := newProbe()
			p.flag.Store(true)
			require.NoError(t, r.hub.Wait(context.Background(), "t1", p.check))
			require.EqualValues(t, 1, p.calls.Load())
		}},
		{"re-check wakes a waiter whose state changed without a message (R13)", func(t *testing.T, r rig) {
			p := newProbe()
			res := park(t, context.Background(), r.hub, "t1", p)
			p.flag.Store(true) // stored, but the Notify is lost
			r.tick <- time.Now()
			require.NoError(t, result(t, res))
			require.EqualValues(t, 2, p.calls.Load(), "woken by the re-check, not by a message")
		}},
		{"another topic's notify does not wake", func(t *testing.T, r rig) {
			p := newProbe()
			res := park(t, context.Background(), r.hub, "t1", p)
			require.NoError(t, r.hub.Notify(context.Background(), "t2"))
			p.flag.Store(true)
			require.NoError(t, r.hub.Notify(context.Background(), "t1"))
			require.NoError(t, result(t, res))
			require.EqualValues(t, 2, p.calls.Load())
		}},
		{"every waiter of the topic wakes", func(t *testing.T, r rig) {
			ps := []*probe{newProbe(), newProbe(), newProbe()}
			var rs []<-chan error
			for _, p := range ps {
				rs = append(rs, park(t, context.Background(), r.hub, "t1", p))
			}
			for _, p := range ps {
				p.flag.Store(true)
			}
			require.NoError(t, r.peer.Notify(context.Background(), "t1"))
			for _, res := range rs {
				require.NoError(t, result(t, res))
			}
		}},
		{"ctx cancel releases with ctx error", func(t *testing.T, r rig) {
			ctx, cancel := context.WithCancel(context.Background())
			p := newProbe()
			res := park(t, ctx, r.hub, "t1", p)
			cancel()
			require.ErrorIs(t, result(t, res), context.Canceled)
		}},
		{"ctx deadline is the long poll's end", func(t *testing.T, r rig) {
			ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
			defer cancel()
			require.ErrorIs(t, r.hub.Wait(ctx, "t1", newProbe().check), context.DeadlineExceeded)
		}},
		{"check error passes through", func(t *testing.T, r rig) {
			p := newProbe()
			p.err = storage.ErrUnavailable
			require.ErrorIs(t, r.hub.Wait(context.Background(), "t1", p.check), storage.ErrUnavailable)
		}},
		{"invalid topics refused", func(t *testing.T, r rig) {
			for _, topic := range []string{"", strings.Repeat("x", wake.MaxTopicLen+1)} {
				require.ErrorIs(t, r.hub.Wait(context.Background(), topic, newProbe().check), wake.ErrInvalidTopic)
				require.ErrorIs(t, r.hub.Notify(context.Background(), topic), wake.ErrInvalidTopic)
			}
		}},
		{"close releases waiters with ErrClosed; later calls refused", func(t *testing.T, r rig) {
			p := newProbe()
			res := park(t, context.Background(), r.hub, "t1", p)
			require.NoError(t, r.hub.Close())
			require.ErrorIs(t, result(t, res), wake.ErrClosed)
			require.ErrorIs(t, r.hub.Wait(context.Background(), "t1", newProbe().check), wake.ErrClosed)
			require.ErrorIs(t, r.hub.Notify(context.Background(), "t1"), wake.ErrClosed)
			require.NoError(t, r.hub.Close(), "Close is idempotent")
		}},
	}
	for _, b := range backends() {
		for _, tc := range cases {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) { tc.run(t, b.new(t)) })
		}
	}
}

// TestRedisThousandWaitersBoundedConnections (docs/reach.md R17): 1,000
// waiters on one instance, each checking a Redis key, hold no connection
// of their own: the instance's connections stay within its pool size
// plus the one subscription, by CLIENT LIST and by pool stats.
func TestRedisThousandWaitersBoundedConnections(t *testing.T) {
	const waiters, pool = 1000, 10
	srv := redistest.Start(t)
	ca := newClient(t, srv, "hubA", pool)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	a, err := wake.NewRedis(ctx, ca, wake.RedisOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	b := newRedisHub(t, srv, "hubB", wake.RedisOptions{})

	var started sync.WaitGroup
	started.Add(waiters)
	res := make(chan error, waiters)
	for i := range waiters {
		key := fmt.Sprintf("k%d", i)
		var once sync.Once
		go func() {
			res <- a.Wait(context.Background(), "t"+key, func(ctx context.Context) (bool, error) {
				defer once.Do(started.Done)
				n, err := ca.Exists(ctx, key).Result()
				return n == 1, err
			})
		}()
	}
	started.Wait()
	require.Equal(t, waiters, a.Waiting())

	list, err := srv.Do("CLIENT", "LIST")
	require.NoError(t, err)
	conns := strings.Count(list, "name=hubA ")
	t.Logf("%d waiters: %d Redis connections of the instance (pool %d), pool stats %+v", waiters, conns, pool, *ca.PoolStats())
	require.LessOrEqual(t, conns, pool+1, "CLIENT LIST: pool + one subscription")
	require.LessOrEqual(t, int(ca.PoolStats().TotalConns), pool+1)

	for i := range waiters {
		key := fmt.Sprintf("k%d", i)
		require.NoError(t, b.Notify(context.Background(), "t"+key) /* before the write: a no-op wake */)
		require.NoError(t, ca.Set(context.Background(), key, "1", time.Minute).Err())
		require.NoError(t, b.Notify(context.Background(), "t"+key))
	}
	for range waiters {
		require.NoError(t, result(t, res))
	}
}

// TestRedisPausedReleasesWaiters (docs/reach.md R14): a hung Redis
// (SIGSTOP) releases a parked waiter with ErrUnavailable — the caller's
// 503 — long before its own deadline; new waits and notifies fail fast
// without running the check; after SIGCONT the hub is live again.
func TestRedisPausedReleasesWaiters(t *testing.T) {
	srv := redistest.Start(t)
	o := wake.RedisOptions{Probe: 100 * time.Millisecond, NotifyTimeout: 200 * time.Millisecond}
	a := newRedisHub(t, srv, "a", o)
	b := newRedisHub(t, srv, "b", o)

	ctx, cancel := context.WithTimeout(context.Background(), time.Hour) // the long poll would hold far longer
	defer cancel()
	p := newProbe()
	res := park(t, ctx, a, "t1", p)
	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	err := result(t, res)
	require.ErrorIs(t, err, wake.ErrUnavailable)
	require.ErrorIs(t, err, storage.ErrUnavailable, "the caller maps it like any storage outage: 503")
	require.False(t, a.Up())

	q := newProbe()
	require.ErrorIs(t, a.Wait(ctx, "t1", q.check), wake.ErrUnavailable)
	require.Zero(t, q.calls.Load(), "no check against a hung backend")
	require.ErrorIs(t, a.Notify(ctx, "t1"), wake.ErrUnavailable)

	srv.Resume()
	resumed = true
	upCtx, upCancel := context.WithTimeout(context.Background(), waitLimit)
	defer upCancel()
	require.NoError(t, a.WaitUp(upCtx))
	r := newProbe()
	res = park(t, ctx, a, "t1", r)
	r.flag.Store(true)
	require.NoError(t, b.Notify(ctx, "t1"))
	require.NoError(t, result(t, res))
}

// TestRedisRestart (docs/reach.md R13, R14): Redis is killed and
// restarted on the same port. (1) While it is down a parked waiter is
// released with ErrUnavailable and new waits fail fast; after the restart
// the subscriber resubscribes by itself and a peer's Notify wakes a new
// waiter. (2) A waiter that outlives a short gap — the subscriber held
// deaf before it redials, as when the restart is quicker than the
// detection — misses the message published in the gap (PUBLISH reaches 0
// subscribers) and is woken by the re-check that follows the
// resubscription.
func TestRedisRestart(t *testing.T) {
	t.Run("down then back", func(t *testing.T) {
		srv := redistest.Start(t)
		a := newRedisHub(t, srv, "a", wake.RedisOptions{Probe: 100 * time.Millisecond})
		p := newProbe()
		res := park(t, context.Background(), a, "t1", p)
		srv.Stop()
		require.ErrorIs(t, result(t, res), wake.ErrUnavailable)
		require.ErrorIs(t, a.Wait(context.Background(), "t1", newProbe().check), wake.ErrUnavailable)

		srv2 := redistest.StartOnPort(t, srv.Port())
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		require.NoError(t, a.WaitUp(ctx))
		b := newRedisHub(t, srv2, "b", wake.RedisOptions{})
		q := newProbe()
		res = park(t, ctx, a, "t1", q)
		q.flag.Store(true)
		require.NoError(t, b.Notify(ctx, "t1"))
		require.NoError(t, result(t, res))
	})
	t.Run("message missed in the gap caught by the re-check", func(t *testing.T) {
		srv := redistest.Start(t)
		gate := make(chan struct{})
		broken := make(chan struct{}, 1)
		// A long probe: the break is seen as a broken connection (the
		// hook), never as a silent one.
		o := wake.WithConnErrorHook(wake.RedisOptions{Probe: waitLimit}, func() {
			select {
			case broken <- struct{}{}:
			default:
			}
			<-gate
		})
		a := newRedisHub(t, srv, "a", o)
		openGate := sync.OnceFunc(func() { close(gate) })
		t.Cleanup(openGate) // runs before a's Close
		// The check reads Redis, as a real one does.
		c := newClient(t, srv, "check", 2)
		var calls atomic.Int32
		started := make(chan struct{})
		var once sync.Once
		res := make(chan error, 1)
		go func() {
			res <- a.Wait(context.Background(), "t1", func(ctx context.Context) (bool, error) {
				calls.Add(1)
				defer once.Do(func() { close(started) })
				n, err := c.Exists(ctx, "answer").Result()
				return n == 1, err
			})
		}()
		<-started

		srv.Stop()
		<-broken // the subscriber saw the break and is held deaf
		srv2 := redistest.StartOnPort(t, srv.Port())
		pub := newClient(t, srv2, "peer", 2)
		require.NoError(t, pub.Set(context.Background(), "answer", "1", time.Minute).Err())
		n, err := pub.Publish(context.Background(), wake.Channel, "t1").Result()
		require.NoError(t, err)
		require.Zero(t, n, "the message is published while nobody listens: lost")
		require.True(t, a.Up(), "the gap was too short to be noticed")
		before := calls.Load()
		openGate()
		require.NoError(t, result(t, res))
		require.Greater(t, calls.Load(), before, "woken by the re-check after resubscribing")
	})
}

// TestRedisPrefixSeparates: instances with different prefixes on one
// Redis do not wake each other (they are different deployments).
func TestRedisPrefixSeparates(t *testing.T) {
	srv := redistest.Start(t)
	tick := make(chan time.Time)
	a := newRedisHub(t, srv, "a", wake.RedisOptions{Prefix: "one:", Options: wake.Options{Tick: tick}})
	b := newRedisHub(t, srv, "b", wake.RedisOptions{Prefix: "two:"})
	c := newRedisHub(t, srv, "c", wake.RedisOptions{Prefix: "one:"})
	p := newProbe()
	res := park(t, context.Background(), a, "t1", p)
	require.NoError(t, b.Notify(context.Background(), "t1"))
	p.flag.Store(true)
	require.NoError(t, c.Notify(context.Background(), "t1"))
	require.NoError(t, result(t, res))
	require.EqualValues(t, 2, p.calls.Load(), "only the same-prefix notify woke it")
}

// TestRedisWakeLatency measures, never asserts, the wake latency across
// two instances on one Redis over loopback, 1,000 sequential
// notifications each: "hint" from Notify on instance B to the return of
// Wait on instance A (PUBLISH, the one subscriber's fan-out, the waiter's
// check of a local flag); "answer" from storing the state in Redis on B
// to the return on A, whose check reads it back (SET, PUBLISH, fan-out,
// EXISTS): the path an inbox long poll takes.
func TestRedisWakeLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	const n = 1000
	srv := redistest.Start(t)
	ca, cb := newClient(t, srv, "a", 10), newClient(t, srv, "b", 10)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	a, err := wake.NewRedis(ctx, ca, wake.RedisOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	b, err := wake.NewRedis(ctx, cb, wake.RedisOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	for _, mode := range []string{"hint", "answer"} {
		lat := make([]time.Duration, 0, n)
		for i := range n {
			topic := fmt.Sprintf("%s%d", mode, i)
			p := newProbe()
			check := p.check
			if mode == "answer" {
				check = func(ctx context.Context) (bool, error) {
					_, _ = p.check(ctx)
					k, err := ca.Exists(ctx, topic).Result()
					return k == 1, err
				}
			}
			res := make(chan error, 1)
			go func() { res <- a.Wait(context.Background(), topic, check) }()
			<-p.started
			t0 := time.Now()
			if mode == "answer" {
				require.NoError(t, cb.Set(context.Background(), topic, "1", time.Minute).Err())
			} else {
				p.flag.Store(true)
			}
			require.NoError(t, b.Notify(context.Background(), topic))
			require.NoError(t, result(t, res))
			lat = append(lat, time.Since(t0))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		t.Logf("wake latency (%s) across two instances, %d notifications: p50 %v p90 %v p99 %v max %v",
			mode, n, lat[n/2], lat[n*90/100], lat[n*99/100], lat[n-1])
	}
}

func TestErrUnavailableIsStorageUnavailable(t *testing.T) {
	require.True(t, errors.Is(wake.ErrUnavailable, storage.ErrUnavailable))
}

// TestRedisCluster: on a Redis Cluster the hub's plain SUBSCRIBE and
// PUBLISH work whichever nodes the two instances' subscriptions land on
// (PUBLISH is broadcast over the cluster bus).
func TestRedisCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var hubs []*wake.Redis
	for range 2 {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
		t.Cleanup(func() { _ = c.Close() })
		h, err := wake.NewRedis(ctx, c, wake.RedisOptions{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = h.Close() })
		hubs = append(hubs, h)
	}
	for i, topic := range []string{"t1", "t2", "t3", "t4"} {
		p := newProbe()
		res := park(t, ctx, hubs[i%2], topic, p)
		p.flag.Store(true)
		require.NoError(t, hubs[(i+1)%2].Notify(ctx, topic))
		require.NoError(t, result(t, res))
	}
}
