package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/redisstore"
	"github.com/fedas/fedas/storage/redistest"
	"github.com/fedas/fedas/storage/storagetest"
)

var prefixSeq atomic.Int64

// uniquePrefix gives every store its own namespace on a shared server, so
// parallel subtests never see each other's keys.
func uniquePrefix() string { return fmt.Sprintf("fedas:t%d:", prefixSeq.Add(1)) }

func newStore(tb testing.TB, o redisstore.Options) *redisstore.Store {
	tb.Helper()
	if o.Prefix == "" {
		o.Prefix = uniquePrefix()
	}
	s, err := redisstore.New(context.Background(), o, zaptest.NewLogger(tb))
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// scanAll returns every key on one node; tests only, never a request path.
func scanAll(t *testing.T, addr, match string) []string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	var keys []string
	iter := c.Scan(t.Context(), 0, match, 1000).Iterator()
	for iter.Next(t.Context()) {
		keys = append(keys, iter.Val())
	}
	require.NoError(t, iter.Err())
	return keys
}

// policyKeySuffixes name the live policy's keys (policy.go): the one
// deliberate exception to "every key has a TTL". They are configuration,
// bounded by retention instead (TestPolicyKeysBounded).
var policyKeySuffixes = []string{"policy:{p}:head", "policy:{p}:versions", "policy:{p}:docs", "policy:{p}:audit"}

func isPolicyKey(k string) bool {
	return slices.ContainsFunc(policyKeySuffixes, func(suffix string) bool { return strings.HasSuffix(k, suffix) })
}

// requireEveryKeyHasTTL fails for any key without a TTL: nothing the
// backend writes may live forever (SECURITY-RESULTS.md J04), except the
// policy keys.
func requireEveryKeyHasTTL(t *testing.T, addr string) int {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	keys := scanAll(t, addr, "*")
	for _, k := range keys {
		if isPolicyKey(k) {
			continue
		}
		ttl, err := c.PTTL(t.Context(), k).Result()
		require.NoError(t, err)
		// -2 (gone meanwhile) is fine, -1 (no TTL) is not.
		require.NotEqual(t, time.Duration(-1), ttl, "key %q has no TTL", k)
	}
	return len(keys)
}

func TestConformanceSingle(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	opts := func() redisstore.Options { return redisstore.Options{Addrs: []string{srv.Addr()}} }
	t.Run("suite", func(t *testing.T) {
		storagetest.Run(t, func(tb testing.TB) storage.Store { return newStore(tb, opts()) })
	})
	t.Run("policy", func(t *testing.T) {
		storagetest.RunPolicy(t, func(tb testing.TB) storage.PolicyStore { return newStore(tb, opts()) })
	})
	t.Run("policy shared by instances", func(t *testing.T) { testPolicyShared(t, opts) })
	t.Run("rate limiter", func(t *testing.T) {
		storagetest.RunRateLimiter(t, func(tb testing.TB) storage.RateLimiter { return newStore(tb, opts()) })
	})
	t.Run("live counter", func(t *testing.T) {
		storagetest.RunLiveCounter(t, func(tb testing.TB) storage.LiveCounter { return newStore(tb, opts()) })
	})
	t.Run("failure counters", func(t *testing.T) {
		storagetest.RunFailureCounter(t, func(tb testing.TB) storage.FailureCounter { return newStore(tb, opts()) })
	})
	t.Run("dc store", func(t *testing.T) {
		storagetest.RunDCStore(t, func(tb testing.TB) storage.DCStore { return newStore(tb, opts()) })
	})
	t.Run("reach store", func(t *testing.T) {
		storagetest.RunReachStore(t, func(tb testing.TB) storage.ReachStore { return newStore(tb, opts()) })
	})
	t.Run("every key has a TTL", func(t *testing.T) {
		n := requireEveryKeyHasTTL(t, srv.Addr())
		require.NotZero(t, n, "the suite left no keys to check")
	})
}

func TestConformanceCluster(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t)
	opts := func() redisstore.Options { return redisstore.Options{Addrs: c.Addrs(), Cluster: true} }
	t.Run("suite", func(t *testing.T) {
		storagetest.Run(t, func(tb testing.TB) storage.Store { return newStore(tb, opts()) })
	})
	t.Run("policy", func(t *testing.T) {
		storagetest.RunPolicy(t, func(tb testing.TB) storage.PolicyStore { return newStore(tb, opts()) })
	})
	t.Run("policy shared by instances", func(t *testing.T) { testPolicyShared(t, opts) })
	t.Run("rate limiter", func(t *testing.T) {
		storagetest.RunRateLimiter(t, func(tb testing.TB) storage.RateLimiter { return newStore(tb, opts()) })
	})
	t.Run("live counter", func(t *testing.T) {
		storagetest.RunLiveCounter(t, func(tb testing.TB) storage.LiveCounter { return newStore(tb, opts()) })
	})
	t.Run("failure counters", func(t *testing.T) {
		storagetest.RunFailureCounter(t, func(tb testing.TB) storage.FailureCounter { return newStore(tb, opts()) })
	})
	t.Run("dc store", func(t *testing.T) {
		storagetest.RunDCStore(t, func(tb testing.TB) storage.DCStore { return newStore(tb, opts()) })
	})
	t.Run("reach store", func(t *testing.T) {
		storagetest.RunReachStore(t, func(tb testing.TB) storage.ReachStore { return newStore(tb, opts()) })
	})
	t.Run("every key has a TTL", func(t *testing.T) {
		n := 0
		for _, addr := range c.Addrs() {
			n += requireEveryKeyHasTTL(t, addr)
		}
		require.NotZero(t, n)
	})
	t.Run("atomic writes stay in one slot", func(t *testing.T) {
		ctx := t.Context()
		tests := []struct {
			name  string
			write func(s *redisstore.Store) error
			keys  int
		}{
			{"CreateCode", func(s *redisstore.Store) error {
				return s.CreateCode(ctx, "code-sig_1", storage.Record{RequestID: "r1"}, time.Minute)
			}, 2},
			{"CreateAuthSession", func(s *redisstore.Store) error {
				return s.CreateAuthSession(ctx, storage.AuthSession{ID: "as-1", StepHash: "h", ExpiresAt: time.Now().Add(time.Minute)})
			}, 1},
			{"RecordFailure", func(s *redisstore.Store) error {
				_, err := s.RecordFailure(ctx, "acct-digest", []string{"a", "ip.digest", "o"}, time.Minute, time.Now())
				return err
			}, 3},
			{"CommitPolicy", func(s *redisstore.Store) error {
				for n := uint64(1); n <= 3; n++ {
					if err := s.CommitPolicy(ctx, policyVersion(n), storage.AuditEntry{Actor: "a"}, 2); err != nil {
						return err
					}
				}
				return nil
			}, 4},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				o := opts()
				o.Prefix = uniquePrefix()
				s := newStore(t, o)
				require.NoError(t, tt.write(s))
				var keys []string
				for _, addr := range c.Addrs() {
					keys = append(keys, scanAll(t, addr, o.Prefix+"*")...)
				}
				require.Len(t, keys, tt.keys, "keys %q", keys)
				slots := map[int64]bool{}
				for _, k := range keys {
					slot, err := s.Client().ClusterKeySlot(ctx, k).Result()
					require.NoError(t, err)
					slots[slot] = true
				}
				require.Len(t, slots, 1, "keys %q span slots %v", keys, slots)
			})
		}
	})
	t.Run("eviction policy checked on every master", func(t *testing.T) {
		last := c.Nodes()[2]
		_, err := last.Do("CONFIG", "SET", "maxmemory-policy", "volatile-lru")
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = last.Do("CONFIG", "SET", "maxmemory-policy", "noeviction") })
		_, err = redisstore.New(t.Context(), opts(), zaptest.NewLogger(t))
		require.ErrorIs(t, err, redisstore.ErrEvictionPolicy)
		require.ErrorContains(t, err, last.Addr())
	})
}

// countingHook counts every command and pipeline that reaches the client.
type countingHook struct{ n atomic.Int64 }

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestHostileKeyParts feeds client-controlled values that could break a
// hash tag, act as a pattern or inject protocol bytes: reads say not
// found, writes are refused, and not one command reaches Redis
// (SECURITY-RESULTS.md A12).
func TestHostileKeyParts(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}})
	hook := &countingHook{}
	s.Client().AddHook(hook)
	ctx := t.Context()
	exp := time.Now().Add(time.Minute)

	hostile := map[string]string{
		"star":         "*",
		"question":     "?x",
		"brackets":     "[a-z]",
		"hash tag":     "a{b}",
		"close brace":  "a}b",
		"CRLF command": "\r\nSET x 1\r\n",
		"10 KB":        strings.Repeat("a", 10<<10),
		"513 bytes":    strings.Repeat("a", 513),
		"percent NUL":  "%00",
		"NUL":          "a\x00b",
		"non-UTF-8":    "\xff\xfe\xfd",
		"space":        "a b",
		"empty":        "",
	}
	for name, v := range hostile {
		t.Run(name, func(t *testing.T) {
			for _, kind := range storage.Kinds {
				_, err := s.Token(ctx, kind, v)
				requireNotFound(t, err)
				_, err = s.ConsumeToken(ctx, kind, v)
				requireNotFound(t, err)
				require.NoError(t, s.DeleteToken(ctx, kind, v))
				requireRefused(t, s.CreateToken(ctx, kind, v, storage.Record{RequestID: "req"}, time.Minute))
			}
			requireNotFound(t, s.InvalidateCode(ctx, v))
			requireRefused(t, s.CreateCode(ctx, v, storage.Record{}, time.Minute))
			// The request ID is a key part too.
			requireRefused(t, s.CreateToken(ctx, storage.KindAccess, "sig", storage.Record{RequestID: v}, time.Minute))
			require.NoError(t, s.RevokeRequest(ctx, storage.KindAccess, v))

			_, err := s.AuthSession(ctx, v)
			requireNotFound(t, err)
			sess := storage.AuthSession{ID: v, StepHash: "h", ExpiresAt: exp}
			requireRefused(t, s.CreateAuthSession(ctx, sess))
			requireNotFound(t, s.UpdateAuthSession(ctx, "h", sess))
			requireNotFound(t, s.DeleteAuthSession(ctx, v, "h"))

			requireRefused(t, s.MarkUsed(ctx, v, exp))
		})
	}
	require.Zero(t, hook.n.Load(), "hostile input reached Redis")
	n, err := s.Client().DBSize(ctx).Result()
	require.NoError(t, err)
	require.Zero(t, n)
}

func requireNotFound(t *testing.T, err error) {
	t.Helper()
	require.ErrorIs(t, err, storage.ErrNotFound)
	require.NotErrorIs(t, err, redis.Nil)
	require.NotErrorIs(t, err, storage.ErrUnavailable)
}

func requireRefused(t *testing.T, err error) {
	t.Helper()
	require.ErrorIs(t, err, redisstore.ErrInvalidKey)
	require.NotErrorIs(t, err, storage.ErrUnavailable)
}

// ops calls every Store method once; the outage tests require each to
// fail with ErrUnavailable.
func ops(s *redisstore.Store, live string) map[string]func(context.Context) error {
	exp := time.Now().Add(time.Minute)
	rec := storage.Record{RequestID: "req-1"}
	sess := storage.AuthSession{ID: "as-1", StepHash: "h2", ExpiresAt: exp}
	return map[string]func(context.Context) error{
		"Ping": s.Ping,
		"CreateToken": func(ctx context.Context) error {
			return s.CreateToken(ctx, storage.KindAccess, "sig-2", rec, time.Minute)
		},
		"CreatePAR":  func(ctx context.Context) error { return s.CreateToken(ctx, storage.KindPAR, "sig-2", rec, time.Minute) },
		"CreateCode": func(ctx context.Context) error { return s.CreateCode(ctx, "sig-2", rec, time.Minute) },
		"Token": func(ctx context.Context) error {
			_, err := s.Token(ctx, storage.KindAccess, live)
			return err
		},
		"TokenCode": func(ctx context.Context) error {
			_, err := s.Token(ctx, storage.KindCode, live)
			return err
		},
		"DeleteToken":    func(ctx context.Context) error { return s.DeleteToken(ctx, storage.KindAccess, live) },
		"InvalidateCode": func(ctx context.Context) error { return s.InvalidateCode(ctx, live) },
		"ConsumeToken": func(ctx context.Context) error {
			_, err := s.ConsumeToken(ctx, storage.KindPAR, live)
			return err
		},
		"RevokeRequest":     func(ctx context.Context) error { return s.RevokeRequest(ctx, storage.KindAccess, "req-1") },
		"CreateAuthSession": func(ctx context.Context) error { return s.CreateAuthSession(ctx, sess) },
		"AuthSession": func(ctx context.Context) error {
			_, err := s.AuthSession(ctx, "as-1")
			return err
		},
		"UpdateAuthSession":   func(ctx context.Context) error { return s.UpdateAuthSession(ctx, "h", sess) },
		"DeleteAuthSession":   func(ctx context.Context) error { return s.DeleteAuthSession(ctx, "as-1", "h") },
		"MarkUsed":            func(ctx context.Context) error { return s.MarkUsed(ctx, "jti-1", exp) },
		"CheckEvictionPolicy": s.CheckEvictionPolicy,
		"PolicyHead": func(ctx context.Context) error {
			_, err := s.PolicyHead(ctx)
			return err
		},
		"PolicyVersion": func(ctx context.Context) error {
			_, err := s.PolicyVersion(ctx, 1)
			return err
		},
		"CommitPolicy": func(ctx context.Context) error {
			return s.CommitPolicy(ctx, policyVersion(2), storage.AuditEntry{Actor: "a"}, 10)
		},
		"PolicyHistory": func(ctx context.Context) error {
			_, err := s.PolicyHistory(ctx, 0, 10)
			return err
		},
		"PolicyAudit": func(ctx context.Context) error {
			_, err := s.PolicyAudit(ctx, 0, 10)
			return err
		},
		"WatchPolicy": func(ctx context.Context) error {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			_, err := s.WatchPolicy(ctx)
			return err
		},
	}
}

// requireUnavailableFast runs every operation against a broken server
// and requires ErrUnavailable within failFast, even without a deadline
// from the caller (SECURITY-RESULTS.md R1, R3).
func requireUnavailableFast(t *testing.T, s *redisstore.Store) {
	t.Helper()
	const failFast = 1500 * time.Millisecond // OpTimeout 1 s + scheduling slack
	var wg sync.WaitGroup
	for name, op := range ops(s, "sig-1") {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			err := op(context.Background())
			took := time.Since(start)
			if !errors.Is(err, storage.ErrUnavailable) {
				t.Errorf("%s: got %v, want ErrUnavailable", name, err)
			}
			if took > failFast {
				t.Errorf("%s: took %s to fail, want ≤ %s", name, took, failFast)
			}
		}()
	}
	wg.Wait()
}

func seed(t *testing.T, s *redisstore.Store) {
	t.Helper()
	ctx := t.Context()
	rec := storage.Record{RequestID: "req-1"}
	require.NoError(t, s.CreateToken(ctx, storage.KindAccess, "sig-1", rec, time.Minute))
	require.NoError(t, s.CreateCode(ctx, "sig-1", rec, time.Minute))
	require.NoError(t, s.CreateToken(ctx, storage.KindPAR, "sig-1", rec, time.Minute))
	require.NoError(t, s.CreateAuthSession(ctx, storage.AuthSession{ID: "as-1", StepHash: "h", ExpiresAt: time.Now().Add(time.Minute)}))
	require.NoError(t, s.CommitPolicy(ctx, policyVersion(1), storage.AuditEntry{Actor: "a"}, 10))
}

func TestUnavailableWhenStopped(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}})
	seed(t, s)
	srv.Stop()
	requireUnavailableFast(t, s)

	// New refuses a server that is not there, quickly.
	start := time.Now()
	_, err := redisstore.New(t.Context(), redisstore.Options{Addrs: []string{srv.Addr()}}, zaptest.NewLogger(t))
	require.ErrorIs(t, err, storage.ErrUnavailable)
	require.Less(t, time.Since(start), 1500*time.Millisecond)
}

func TestUnavailableWhenHung(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}})
	seed(t, s)
	srv.Pause()
	requireUnavailableFast(t, s)
	srv.Resume()

	// Recovery without a new Store: the pool replaces its timed-out
	// connections (SECURITY-RESULTS.md R3: ≤ 5 s). The check uses fresh keys: a
	// command that timed out may still run once the server continues
	// (the DeleteToken above, for one), which is why a timed-out
	// single-use step must count as failed, never as done.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		sig := fmt.Sprintf("sig-after-%d", time.Now().UnixNano())
		require.NoError(c, s.CreateToken(t.Context(), storage.KindPAR, sig, storage.Record{}, time.Minute))
		_, err := s.ConsumeToken(t.Context(), storage.KindPAR, sig)
		require.NoError(c, err)
	}, 5*time.Second, 50*time.Millisecond)
}

func TestNotFoundIsNotRedisNil(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}})
	ctx := t.Context()
	for _, kind := range storage.Kinds {
		_, err := s.Token(ctx, kind, "missing")
		requireNotFound(t, err)
		_, err = s.ConsumeToken(ctx, kind, "missing")
		requireNotFound(t, err)
	}
	_, err := s.AuthSession(ctx, "missing")
	requireNotFound(t, err)
	_, err = s.PolicyVersion(ctx, 1)
	requireNotFound(t, err)
}

func TestEvictionPolicy(t *testing.T) {
	t.Parallel()
	srv := redistest.StartWith(t, "--maxmemory-policy", "allkeys-lru")
	ctx := t.Context()
	o := redisstore.Options{Addrs: []string{srv.Addr()}}

	_, err := redisstore.New(ctx, o, zaptest.NewLogger(t))
	require.ErrorIs(t, err, redisstore.ErrEvictionPolicy)
	require.NotErrorIs(t, err, storage.ErrUnavailable)
	require.ErrorContains(t, err, "allkeys-lru")

	allow := o
	allow.AllowEvictionPolicy = true
	s := newStore(t, allow)
	require.ErrorIs(t, s.CheckEvictionPolicy(ctx), redisstore.ErrEvictionPolicy)

	// volatile-* policies evict our keys too: every key has a TTL.
	for _, policy := range []string{"volatile-lru", "volatile-ttl", "allkeys-random"} {
		_, err := srv.Do("CONFIG", "SET", "maxmemory-policy", policy)
		require.NoError(t, err)
		_, err = redisstore.New(ctx, o, zaptest.NewLogger(t))
		require.ErrorIs(t, err, redisstore.ErrEvictionPolicy, policy)
	}
	_, err = srv.Do("CONFIG", "SET", "maxmemory-policy", "noeviction")
	require.NoError(t, err)
	require.NoError(t, s.CheckEvictionPolicy(ctx))
	newStore(t, o)
}

// TestWritesUnderOOM: with noeviction and memory full, writes fail as
// unavailable (503) instead of evicting (SECURITY-RESULTS.md R6).
func TestWritesUnderOOM(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}})
	ctx := t.Context()
	_, err := srv.Do("CONFIG", "SET", "maxmemory", "1")
	require.NoError(t, err)
	err = s.MarkUsed(ctx, "jti-oom", time.Now().Add(time.Minute))
	require.ErrorIs(t, err, storage.ErrUnavailable)
	require.ErrorContains(t, err, "OOM")
	err = s.CreateCode(ctx, "sig-oom", storage.Record{}, time.Minute)
	require.ErrorIs(t, err, storage.ErrUnavailable)
}

func TestOptions(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := t.Context()

	t.Run("URL", func(t *testing.T) {
		s := newStore(t, redisstore.Options{URL: srv.URL()})
		require.NoError(t, s.Ping(ctx))
		require.True(t, strings.HasPrefix(s.Prefix(), "fedas:t"), s.Prefix())
	})
	t.Run("default prefix", func(t *testing.T) {
		s, err := redisstore.New(ctx, redisstore.Options{URL: srv.URL(), DB: 3}, zaptest.NewLogger(t))
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		require.Equal(t, "fedas:", s.Prefix())
		require.NoError(t, s.MarkUsed(ctx, "jti-x", time.Now().Add(time.Minute)))
		keys, err := s.Client().Keys(ctx, "*").Result()
		require.NoError(t, err)
		require.Equal(t, []string{"fedas:used:{jti-x}"}, keys)
	})
	invalid := []struct {
		name string
		o    redisstore.Options
	}{
		{"nothing", redisstore.Options{}},
		{"URL and Addrs", redisstore.Options{URL: srv.URL(), Addrs: []string{srv.Addr()}}},
		{"several Addrs, single node", redisstore.Options{Addrs: []string{srv.Addr(), srv.Addr()}}},
		{"cluster and sentinel", redisstore.Options{Addrs: []string{srv.Addr()}, Cluster: true, MasterName: "m"}},
		{"cluster DB", redisstore.Options{Addrs: []string{srv.Addr()}, Cluster: true, DB: 1}},
		{"prefix with hash tag", redisstore.Options{Addrs: []string{srv.Addr()}, Prefix: "fedas:{x}:"}},
		{"bad URL", redisstore.Options{URL: "http://" + net.JoinHostPort("127.0.0.1", "1")}},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			_, err := redisstore.New(ctx, tt.o, zaptest.NewLogger(t))
			require.Error(t, err)
			require.NotErrorIs(t, err, storage.ErrUnavailable)
		})
	}
	t.Run("NewFromClient", func(t *testing.T) {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		_, err := redisstore.NewFromClient(c, "a{b", nil)
		require.Error(t, err)
		s, err := redisstore.NewFromClient(c, "", nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		require.Equal(t, redisstore.DefaultPrefix, s.Prefix())
		require.NoError(t, s.Ping(ctx))
		require.NoError(t, s.CheckEvictionPolicy(ctx))
	})
}

// TestScriptCacheFlushed: after a restart or SCRIPT FLUSH the server has
// forgotten the scripts; every scripted operation must load them again
// rather than fail (the pipelined EVALSHA in CreateToken included).
func TestScriptCacheFlushed(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}})
	ctx := t.Context()
	rec := storage.Record{RequestID: "req-1"}
	sess := storage.AuthSession{ID: "as-1", StepHash: "h", ExpiresAt: time.Now().Add(time.Minute)}
	next := sess
	next.StepHash = "h2"
	steps := []struct {
		name string
		run  func() error
	}{
		{"CreateToken", func() error { return s.CreateToken(ctx, storage.KindRefresh, "sig-1", rec, time.Minute) }},
		{"CreateCode", func() error { return s.CreateCode(ctx, "sig-1", rec, time.Minute) }},
		{"InvalidateCode", func() error { return s.InvalidateCode(ctx, "sig-1") }},
		{"ConsumeToken code", func() error {
			_, err := s.ConsumeToken(ctx, storage.KindCode, "sig-1")
			require.ErrorIs(t, err, storage.ErrInvalidated)
			return nil
		}},
		{"CreateAuthSession", func() error { return s.CreateAuthSession(ctx, sess) }},
		{"UpdateAuthSession", func() error { return s.UpdateAuthSession(ctx, "h", next) }},
		{"DeleteAuthSession", func() error { return s.DeleteAuthSession(ctx, "as-1", "h2") }},
		{"CommitPolicy", func() error { return s.CommitPolicy(ctx, policyVersion(1), storage.AuditEntry{Actor: "a"}, 10) }},
		{"CommitPolicy retried", func() error { return s.CommitPolicy(ctx, policyVersion(1), storage.AuditEntry{Actor: "a"}, 10) }},
	}
	for _, st := range steps {
		_, err := srv.Do("SCRIPT", "FLUSH")
		require.NoError(t, err)
		require.NoError(t, st.run(), st.name)
	}
	require.NoError(t, s.RevokeRequest(ctx, storage.KindRefresh, "req-1"))
	_, err := s.Token(ctx, storage.KindRefresh, "sig-1")
	require.ErrorIs(t, err, storage.ErrNotFound)
}

// policyVersion is version n of a small policy document; the same n
// always gives the same content, so calling it twice is a retry.
func policyVersion(n uint64) storage.PolicyVersion {
	return storage.PolicyVersion{
		Version: n, Parent: n - 1, Doc: fmt.Appendf(nil, "version: %d\n", n),
		Author: "admin", Origin: "api", Summary: fmt.Sprintf("change %d", n),
		Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(n) * time.Minute),
	}
}

// testPolicyShared runs two Stores on one prefix, as two fedas instances
// sharing Redis do: each sees the other's commits, its watchers are woken
// by them, and the two cannot both commit on the same parent.
func testPolicyShared(t *testing.T, opts func() redisstore.Options) {
	o := opts()
	o.Prefix = uniquePrefix()
	a, b := newStore(t, o), newStore(t, o)
	ctx := t.Context()
	watch, err := a.WatchPolicy(ctx)
	require.NoError(t, err)

	require.NoError(t, b.CommitPolicy(ctx, policyVersion(1), storage.AuditEntry{Actor: "b"}, 10))
	select {
	case n := <-watch:
		require.GreaterOrEqual(t, n, uint64(1))
	case <-time.After(2 * time.Second): // a bound against hanging, not a speed requirement
		t.Fatal("a's watcher did not hear of b's commit within 2 s")
	}
	head, err := a.PolicyHead(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), head)
	got, err := a.PolicyVersion(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, "version: 1\n", string(got.Doc))
	require.ErrorIs(t, a.CommitPolicy(ctx, storage.PolicyVersion{Version: 1, Author: "a"}, storage.AuditEntry{Actor: "a"}, 10), storage.ErrConflict)
}

// TestPolicyKeysBounded: the policy keys have no TTL (they are
// configuration), so retention alone bounds them: after many commits with
// keep 3 there are exactly the four policy keys, holding three versions
// and three audit entries.
func TestPolicyKeysBounded(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := newStore(t, redisstore.Options{Addrs: []string{srv.Addr()}})
	ctx := t.Context()
	for n := uint64(1); n <= 20; n++ {
		require.NoError(t, s.CommitPolicy(ctx, policyVersion(n), storage.AuditEntry{Actor: "a"}, 3))
	}
	keys := scanAll(t, srv.Addr(), s.Prefix()+"*")
	slices.Sort(keys)
	p := s.Prefix()
	require.Equal(t, []string{p + "policy:{p}:audit", p + "policy:{p}:docs", p + "policy:{p}:head", p + "policy:{p}:versions"}, keys)
	c := s.Client()
	require.Equal(t, int64(3), c.ZCard(ctx, p+"policy:{p}:versions").Val())
	require.Equal(t, int64(3), c.ZCard(ctx, p+"policy:{p}:audit").Val())
	require.Equal(t, []string{"18", "19", "20"}, sortedFields(t, c.HKeys(ctx, p+"policy:{p}:docs")))
}

func sortedFields(t *testing.T, cmd *redis.StringSliceCmd) []string {
	t.Helper()
	v, err := cmd.Result()
	require.NoError(t, err)
	slices.Sort(v)
	return v
}
