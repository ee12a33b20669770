package redisstore_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/redisstore"
	"github.com/fedas/fedas/storage/redistest"
	"github.com/fedas/fedas/storage/storagetest"
)

func sentinelOptions(s *redistest.Sentinel) redisstore.Options {
	return redisstore.Options{Addrs: s.SentinelAddrs(), MasterName: s.MasterName()}
}

func TestConformance_Sentinel(t *testing.T) {
	t.Parallel()
	s := redistest.StartSentinel(t)
	t.Run("suite", func(t *testing.T) {
		storagetest.Run(t, func(tb testing.TB) storage.Store { return newStore(tb, sentinelOptions(s)) })
	})
	t.Run("policy", func(t *testing.T) {
		storagetest.RunPolicy(t, func(tb testing.TB) storage.PolicyStore { return newStore(tb, sentinelOptions(s)) })
	})
	t.Run("policy shared by instances", func(t *testing.T) {
		testPolicyShared(t, func() redisstore.Options { return sentinelOptions(s) })
	})
	t.Run("rate limiter", func(t *testing.T) {
		storagetest.RunRateLimiter(t, func(tb testing.TB) storage.RateLimiter { return newStore(tb, sentinelOptions(s)) })
	})
	t.Run("live counter", func(t *testing.T) {
		storagetest.RunLiveCounter(t, func(tb testing.TB) storage.LiveCounter { return newStore(tb, sentinelOptions(s)) })
	})
	t.Run("failure counters", func(t *testing.T) {
		storagetest.RunFailureCounter(t, func(tb testing.TB) storage.FailureCounter { return newStore(tb, sentinelOptions(s)) })
	})
	t.Run("dc store", func(t *testing.T) {
		storagetest.RunDCStore(t, func(tb testing.TB) storage.DCStore { return newStore(tb, sentinelOptions(s)) })
	})
	t.Run("reach store", func(t *testing.T) {
		storagetest.RunReachStore(t, func(tb testing.TB) storage.ReachStore { return newStore(tb, sentinelOptions(s)) })
	})
	t.Run("every key has a TTL", func(t *testing.T) {
		n := requireEveryKeyHasTTL(t, s.Master().Addr())
		require.NotZero(t, n, "the suite left no keys to check")
	})
}

// failoverProbe is one storage call made while the master dies and the
// replica is promoted.
type failoverProbe struct {
	op         string
	start, end time.Time
	err        error
	panicked   any
}

// TestSentinel_Failover kills the master (SIGKILL) under load and checks
// that the same Store, never rebuilt, fails only with ErrUnavailable
// while the sentinels promote the replica and then works against the new
// primary (docs/redis.md rule 4: Sentinel recovers as soon as it switches).
func TestSentinel_Failover(t *testing.T) {
	t.Parallel()
	s := redistest.StartSentinel(t)
	st := newStore(t, sentinelOptions(s))
	ctx := t.Context()
	exp := time.Now().Add(time.Minute)

	require.NoError(t, st.MarkUsed(ctx, "jti-before", exp))
	sess := storage.AuthSession{ID: "as-before", StepHash: "step-1", ClientID: "client-1", ExpiresAt: exp}
	require.NoError(t, st.CreateAuthSession(ctx, sess))
	// Replication is asynchronous (docs/redis.md rule 7): only what a replica
	// has acknowledged survives the master. WAIT covers the writes of the
	// connection it runs on, so it shares a pipeline with a write; offsets
	// are global, so that covers the two writes above too.
	var acked *redis.Cmd
	_, err := st.Client().Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, st.Prefix()+"before-failover", "1", time.Minute)
		acked = p.Do(ctx, "WAIT", 1, 1000)
		return nil
	})
	require.NoError(t, err)
	n, err := acked.Int()
	require.NoError(t, err)
	require.Equal(t, 1, n, "the replica did not acknowledge the writes")

	// Load: workers call the Store without pause from before the kill
	// until the test has seen the new primary answer.
	var (
		mu     sync.Mutex
		probes []failoverProbe
		seq    int
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	probe := func(op string, call func(ctx context.Context) error) {
		p := failoverProbe{op: op, start: time.Now()}
		func() {
			defer func() { p.panicked = recover() }()
			p.err = call(ctx)
		}()
		p.end = time.Now()
		mu.Lock()
		probes = append(probes, p)
		mu.Unlock()
	}
	next := func() int {
		mu.Lock()
		defer mu.Unlock()
		seq++
		return seq
	}
	ops := []func(){
		func() {
			probe("MarkUsed", func(ctx context.Context) error {
				return st.MarkUsed(ctx, fmt.Sprintf("jti-during-%d", next()), exp)
			})
		},
		func() {
			probe("AuthSession", func(ctx context.Context) error {
				got, err := st.AuthSession(ctx, sess.ID)
				if err == nil && got.StepHash != sess.StepHash {
					return fmt.Errorf("read step %q, want %q", got.StepHash, sess.StepHash)
				}
				return err
			})
		},
		func() {
			probe("CreateAuthSession", func(ctx context.Context) error {
				return st.CreateAuthSession(ctx, storage.AuthSession{ID: fmt.Sprintf("as-during-%d", next()), StepHash: "s", ExpiresAt: exp})
			})
		},
		func() { probe("Ping", st.Ping) },
	}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ops[i%len(ops)]()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	stopWorkers := func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}
	t.Cleanup(stopWorkers)

	time.Sleep(50 * time.Millisecond)
	killed := time.Now()
	s.Master().Stop()

	// The sentinels promote the replica: down-after 1 s, then the vote.
	var promoted time.Time
	deadline := killed.Add(15 * time.Second)
	for {
		addr, err := s.MasterAddr()
		if err == nil && addr == s.Replica().Addr() {
			promoted = time.Now()
			break
		}
		require.True(t, time.Now().Before(deadline), "no promotion within 15 s (last: %q, %v)", addr, err)
		time.Sleep(20 * time.Millisecond)
	}
	// Keep the load on until the Store has answered from the new primary
	// for a while.
	recoveredBy := promoted.Add(10 * time.Second)
	for {
		mu.Lock()
		ok := 0
		for _, p := range probes {
			if p.start.After(promoted) && p.err == nil && p.panicked == nil {
				ok++
			}
		}
		mu.Unlock()
		if ok >= 20 {
			break
		}
		require.True(t, time.Now().Before(recoveredBy), "the Store did not recover within 10 s of the promotion")
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	stopWorkers()

	// Every failure was a clean 503, never a panic or another error.
	var firstErr, lastErr time.Time
	failed := 0
	for _, p := range probes {
		require.Nil(t, p.panicked, "%s panicked", p.op)
		if p.err == nil {
			continue
		}
		require.ErrorIs(t, p.err, storage.ErrUnavailable, "%s during failover", p.op)
		failed++
		if firstErr.IsZero() || p.end.Before(firstErr) {
			firstErr = p.end
		}
		if p.end.After(lastErr) {
			lastErr = p.end
		}
	}
	var firstOK time.Time // first success of a call started after the kill
	for _, p := range probes {
		if p.err == nil && p.start.After(killed) && (firstOK.IsZero() || p.end.Before(firstOK)) {
			firstOK = p.end
		}
	}
	require.NotZero(t, failed, "no call failed while the master was dead: the probe saw nothing")
	// The window is contiguous: once the Store had answered from the new
	// primary, no later call failed.
	for _, p := range probes {
		require.False(t, p.err != nil && p.start.After(firstOK),
			"%s started at +%s failed after the Store had recovered at +%s: %v",
			p.op, p.start.Sub(killed), firstOK.Sub(killed), p.err)
	}
	// Measured: promotion 2.2–3.2 s after SIGKILL; the Store's first
	// success then lands on a whole second after the first failed dials
	// (+3.07 s, +4.1 s), up to 1 s after the promotion: once PoolSize dials
	// have failed, go-redis's pool answers with the last dial error and
	// probes the dialer only once a second.
	t.Logf("failover: %d calls, %d failed (all ErrUnavailable); errors from +%s to +%s after SIGKILL (window %s); "+
		"sentinels reported the promotion at +%s; the Store's first success at +%s (%s after the promotion was visible)",
		len(probes), failed, firstErr.Sub(killed).Round(time.Millisecond), lastErr.Sub(killed).Round(time.Millisecond),
		lastErr.Sub(firstErr).Round(time.Millisecond), promoted.Sub(killed).Round(time.Millisecond),
		firstOK.Sub(killed).Round(time.Millisecond), firstOK.Sub(promoted).Round(time.Millisecond))

	// The same Store now talks to the new primary.
	info, err := st.Client().Info(ctx, "server", "replication").Result()
	require.NoError(t, err)
	require.Contains(t, info, "tcp_port:"+strconv.Itoa(s.Replica().Port())+"\r\n")
	require.Contains(t, info, "role:master\r\n")
	require.NoError(t, st.Ping(ctx))
	require.NoError(t, st.CheckEvictionPolicy(ctx))

	// What was acknowledged before the kill survived.
	require.ErrorIs(t, st.MarkUsed(ctx, "jti-before", exp), storage.ErrConflict)
	got, err := st.AuthSession(ctx, sess.ID)
	require.NoError(t, err)
	require.Equal(t, sess.StepHash, got.StepHash)
	nextSess := got
	nextSess.StepHash = "step-2"
	require.NoError(t, st.UpdateAuthSession(ctx, "step-1", nextSess))
	other := nextSess
	other.StepHash = "step-3"
	require.ErrorIs(t, st.UpdateAuthSession(ctx, "step-1", other), storage.ErrConflict)

	// New writes land on the new primary and single use still holds.
	require.NoError(t, st.MarkUsed(ctx, "jti-after", exp))
	require.ErrorIs(t, st.MarkUsed(ctx, "jti-after", exp), storage.ErrConflict)
	exists, err := s.Replica().Do("EXISTS", st.Prefix()+"used:{jti-after}")
	require.NoError(t, err)
	require.Equal(t, "1", exists, "jti-after is not on the promoted replica")
	requireEveryKeyHasTTL(t, s.Replica().Addr())

}
