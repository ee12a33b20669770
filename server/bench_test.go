package server_test

// Benchmarks of the native authorization endpoint and the token endpoint,
// on both backends. See BENCHMARKS.md for the figures and how to run them.
//
// Most benchmarks call the echo handler directly (ServeHTTP into an
// httptest.ResponseRecorder), so they measure the server's own cost
// without the network; state still goes to the real store (memory, or a
// real redis-server over loopback). The loopback/* benchmarks go through a
// real HTTP client and listener for comparison.
//
// State a step needs (an auth_session at the right stage, a fresh code, a
// fresh refresh token) is prepared in batches outside the timer; the Redis
// round-trip counter is paused with it. On Redis every benchmark reports
// redis-rt/op: each command processed outside a pipeline counts as one
// round trip, each pipeline as one. Run with -v to log the Redis commands
// of one operation of each benchmark.

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
	"github.com/fedas/fedas/storage/redisstore"
	"github.com/fedas/fedas/storage/redistest"
)

const (
	// benchBatch is how many operations' state is prepared per pause of
	// the timer.
	benchBatch = 64
	// maxSlowOps bounds the benchmarks that run bcrypt at cost 10
	// (≈ 80 ms/op): with more iterations asked they skip, so that one
	// -benchtime=2000x run stays within minutes.
	maxSlowOps = 200
	benchScope = "openid offline_access"
)

// rtCounter is a go-redis hook counting round trips: one per command
// processed on its own, one per pipeline. When recording is on it also
// keeps the commands' names.
type rtCounter struct {
	on        atomic.Bool
	n         atomic.Int64
	recording atomic.Bool
	mu        sync.Mutex
	trace     []string
}

func (c *rtCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *rtCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if c.on.Load() {
			c.n.Add(1)
		}
		if c.recording.Load() {
			c.record(cmdName(cmd))
		}
		return next(ctx, cmd)
	}
}

func (c *rtCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if c.on.Load() {
			c.n.Add(1)
		}
		if c.recording.Load() {
			names := make([]string, len(cmds))
			for i, cmd := range cmds {
				names[i] = cmdName(cmd)
			}
			c.record("pipeline[" + strings.Join(names, " + ") + "]")
		}
		return next(ctx, cmds)
	}
}

func (c *rtCounter) record(s string) {
	c.mu.Lock()
	c.trace = append(c.trace, s)
	c.mu.Unlock()
}

// cmdName names a command by its verb and, for scripts and key
// commands, the kind of key it touches (never a value).
func cmdName(cmd redis.Cmder) string {
	args := cmd.Args()
	name := strings.ToUpper(cmd.Name())
	key := ""
	switch name {
	case "EVALSHA", "EVAL":
		if len(args) > 3 {
			key, _ = args[3].(string)
		}
	default:
		if len(args) > 1 {
			key, _ = args[1].(string)
		}
	}
	if i, j := strings.LastIndex(key, "}"), strings.Index(key, "{"); j >= 0 && i > j {
		// fedas:tok:{sig}:code → tok:code; fedas:as:{id} → as
		head := key[:j]
		head = strings.TrimPrefix(head, "fedas:")
		key = strings.TrimSuffix(head, ":") + key[i+1:]
	}
	if key != "" {
		return name + " " + key
	}
	return name
}

// benchEnv is one backend: its store and, on Redis, the round-trip
// counter.
type benchEnv struct {
	name  string
	store storage.Store
	rt    *rtCounter
}

func benchBackends() []struct {
	name string
	make func(b *testing.B) *benchEnv
} {
	return []struct {
		name string
		make func(b *testing.B) *benchEnv
	}{
		{"memory", func(b *testing.B) *benchEnv {
			m := memory.New()
			b.Cleanup(func() { _ = m.Close() })
			return &benchEnv{name: "memory", store: m}
		}},
		{"redis", func(b *testing.B) *benchEnv {
			rs := redistest.Start(b)
			st, err := redisstore.New(context.Background(), redisstore.Options{URL: rs.URL(), Prefix: "fedas:"}, zap.NewNop())
			if err != nil {
				b.Fatalf("redisstore: %v", err)
			}
			b.Cleanup(func() { _ = st.Close() })
			rt := &rtCounter{}
			st.Client().AddHook(rt)
			return &benchEnv{name: "redis", store: st, rt: rt}
		}},
	}
}

// benchServer is a fedas server for benchmarks: the test configuration
// (carol has a minimum-cost bcrypt hash), a no-op logger, served on a
// loopback listener as well.
type benchServer struct {
	env *benchEnv
	h   http.Handler
	url string
	hc  *http.Client
}

func newBenchServer(b *testing.B, env *benchEnv, users ...config.User) *benchServer {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	cfg := config.Default()
	cfg.Issuer = "http://" + ln.Addr().String()
	cfg.Listen = ln.Addr().String()
	testConfig(cfg)
	cfg.Users = append(cfg.Users, users...)
	// Every benchmark session comes from one address and stays open:
	// caps high enough never to refuse one, still paid for (CP01).
	cfg.Limits.MaxLiveSessionsPerIP, cfg.Limits.MaxLiveSessionsPerClient = 1<<30, 1<<30
	// Likewise every rate limit: kept (each request still pays its GCRA
	// step) but far above what one address sends here.
	for _, r := range config.DefaultRateRules() {
		r.Rate, r.Burst = 1_000_000, 1_000_000
		cfg.Limits.Rate.Rules = append(cfg.Limits.Rate.Rules, r)
	}
	// The wrong-password benchmark repeats one account's failure from one
	// address: free failures beyond any run, still counted (the lockout's
	// round trips are paid).
	cfg.Limits.Lockout.AccountIPFreeFailures, cfg.Limits.Lockout.AccountFreeFailures = 1<<30, 1<<30
	if err := cfg.Validate(); err != nil {
		b.Fatalf("config: %v", err)
	}
	srv, err := server.New(server.Options{Config: cfg, Store: env.store, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	tr := &http.Transport{MaxIdleConns: 16, MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}
	b.Cleanup(func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return &benchServer{env: env, h: srv.Handler(), url: cfg.Issuer,
		hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// benchReply is the part of an answer the benchmarks look at.
type benchReply struct {
	status       int
	raw          []byte
	Error        string `json:"error"`
	AuthSession  string `json:"auth_session"`
	Code         string `json:"authorization_code"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// call posts form to path through the handler (no network).
func (s *benchServer) call(path string, form url.Values) (int, []byte) {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// callHTTP posts form to path over the loopback listener; a transport
// error comes back as status 0 with the error as the body.
func (s *benchServer) callHTTP(path string, form url.Values) (int, []byte) {
	resp, err := s.hc.Post(s.url+path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		return 0, []byte(err.Error())
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return 0, []byte(err.Error())
	}
	return resp.StatusCode, body
}

type caller func(path string, form url.Values) (int, []byte)

// expect decodes an answer and fails the benchmark unless its status is
// want.
func expect(b *testing.B, status int, raw []byte, want int) benchReply {
	r := benchReply{status: status, raw: raw}
	if status != want {
		b.Fatalf("status %d, want %d: %s", status, want, raw)
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		b.Fatalf("decode %q: %v", raw, err)
	}
	return r
}

func must(b *testing.B, status int, raw []byte, want int) {
	if status != want {
		b.Fatalf("status %d, want %d: %s", status, want, raw)
	}
}

func initialForm(pk sdk.PKCE, loginHint string) url.Values {
	return initialFormScope(pk, benchScope, loginHint)
}

func initialFormScope(pk sdk.PKCE, scope, loginHint string) url.Values {
	f := url.Values{"client_id": {"demo-app"}, "response_type": {"code"}, "scope": {scope},
		"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}}
	if loginHint != "" {
		f.Set("login_hint", loginHint)
	}
	return f
}

func passwordForm(as, user, pw string) url.Values {
	return url.Values{"auth_session": {as}, "username": {user}, "password": {pw}}
}

func tokenForm(code string, pk sdk.PKCE) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "client_id": {"demo-app"}, "code": {code}, "code_verifier": {pk.Verifier}}
}

func refreshForm(rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "client_id": {"demo-app"}, "refresh_token": {rt}}
}

// startSession runs an initial request and returns its auth_session.
func startSession(b *testing.B, do caller, pk sdk.PKCE, loginHint string) string {
	st, raw := do(server.PathNative, initialForm(pk, loginHint))
	return expect(b, st, raw, http.StatusForbidden).AuthSession
}

// signIn runs initial + password and returns the code.
func signIn(b *testing.B, do caller, user, pw string, pk sdk.PKCE) string {
	return signInScope(b, do, user, pw, pk, benchScope)
}

func signInScope(b *testing.B, do caller, user, pw string, pk sdk.PKCE, scope string) string {
	st, raw := do(server.PathNative, initialFormScope(pk, scope, ""))
	as := expect(b, st, raw, http.StatusForbidden).AuthSession
	st, raw = do(server.PathNative, passwordForm(as, user, pw))
	return expect(b, st, raw, http.StatusOK).Code
}

// exchange redeems a code and returns the refresh token.
func exchange(b *testing.B, do caller, code string, pk sdk.PKCE) benchReply {
	st, raw := do(server.PathToken, tokenForm(code, pk))
	r := expect(b, st, raw, http.StatusOK)
	if r.AccessToken == "" || r.RefreshToken == "" {
		b.Fatalf("no tokens: %s", raw)
	}
	return r
}

// meter runs b.N operations in batches, preparing each batch's state with
// the timer and the round-trip counter paused, and reports redis-rt/op.
type meter struct {
	b  *testing.B
	rt *rtCounter
}

func (s *benchServer) meter(b *testing.B) meter { return meter{b: b, rt: s.env.rt} }

func (m meter) pause() {
	m.b.StopTimer()
	if m.rt != nil {
		m.rt.on.Store(false)
	}
}

func (m meter) resume() {
	if m.rt != nil {
		m.rt.on.Store(true)
	}
	m.b.StartTimer()
}

// run calls prep(n) for each batch of n ≤ benchBatch operations (nil:
// nothing to prepare), then op(j) for j in [0, n). The first operation is
// traced with -v.
func (m meter) run(prep func(n int), op func(j int)) {
	b := m.b
	if m.rt != nil {
		m.rt.n.Store(0)
		m.rt.on.Store(true)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		n := min(benchBatch, b.N-i)
		if prep != nil {
			m.pause()
			prep(n)
			m.resume()
		}
		for j := 0; j < n; j++ {
			if i == 0 && j == 0 && m.rt != nil && testing.Verbose() {
				m.rt.mu.Lock()
				m.rt.trace = m.rt.trace[:0]
				m.rt.mu.Unlock()
				m.rt.recording.Store(true)
				op(j)
				m.rt.recording.Store(false)
				continue
			}
			op(j)
		}
		i += n
	}
	b.StopTimer()
	if m.rt != nil {
		m.rt.on.Store(false)
		b.ReportMetric(float64(m.rt.n.Load())/float64(b.N), "redis-rt/op")
		if testing.Verbose() {
			m.rt.mu.Lock()
			b.Logf("redis commands of one op (%d round trips): %s", len(m.rt.trace), strings.Join(m.rt.trace, ", "))
			m.rt.mu.Unlock()
		}
	}
}

var otpRun atomic.Int64

// otpUsers makes n users with distinct TOTP secrets (a TOTP code is
// accepted once per user and time step) and carol's min-cost password.
func otpUsers(b *testing.B, n int) ([]config.User, []string) {
	run := otpRun.Add(1)
	users := make([]config.User, n)
	secrets := make([]string, n)
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	for i := range users {
		var raw [10]byte
		if _, err := rand.Read(raw[:]); err != nil {
			b.Fatal(err)
		}
		secrets[i] = enc.EncodeToString(raw[:])
		name := fmt.Sprintf("otp-%d-%d", run, i)
		users[i] = config.User{Username: name, Subject: name, PasswordHash: carolHash, TOTPSecret: secrets[i]}
	}
	return users, secrets
}

// setUp starts a server on env and warms it up: every script is loaded
// on Redis (the first EVALSHA of each is a NOSCRIPT + EVAL) and the whole
// path is checked once.
func setUp(b *testing.B, env *benchEnv) *benchServer {
	s := newBenchServer(b, env)
	do := s.call
	pk := sdk.NewPKCE()
	as := startSession(b, do, pk, "")
	st, raw := do(server.PathNative, passwordForm(as, "carol", "wrong"))
	as = expect(b, st, raw, http.StatusForbidden).AuthSession
	st, raw = do(server.PathNative, passwordForm(as, "carol", "carol-pw"))
	tok := exchange(b, do, expect(b, st, raw, http.StatusOK).Code, pk)
	st, raw = do(server.PathToken, refreshForm(tok.RefreshToken))
	must(b, st, raw, http.StatusOK)
	return s
}

// benchPassword: a fresh auth_session per op (prepared), answered with the
// password; no OTP, so a right answer gets the code and a wrong one the
// next challenge.
func (s *benchServer) benchPassword(user, pw string, want int) func(b *testing.B) {
	return func(b *testing.B) {
		pk := sdk.NewPKCE()
		sessions := make([]string, benchBatch)
		s.meter(b).run(func(n int) {
			for j := 0; j < n; j++ {
				sessions[j] = startSession(b, s.call, pk, "")
			}
		}, func(j int) {
			st, raw := s.call(server.PathNative, passwordForm(sessions[j], user, pw))
			must(b, st, raw, want)
		})
	}
}

// benchFull: initial → password → token exchange as one op.
func (s *benchServer) benchFull(do caller, user, pw string) func(b *testing.B) {
	return func(b *testing.B) {
		pk := sdk.NewPKCE()
		s.meter(b).run(nil, func(int) {
			exchange(b, do, signIn(b, do, user, pw, pk), pk)
		})
	}
}

// BenchmarkNative measures each step of the native flow and the token
// endpoint on both backends, with bcrypt at its minimum cost (carol); see
// BenchmarkBcrypt10 for the default cost.
//
//	go test ./server/ -run '^$' -bench '^BenchmarkNative$' -benchmem -benchtime=2000x
func BenchmarkNative(b *testing.B) {
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			env := be.make(b)
			s := setUp(b, env)
			do := s.call

			b.Run("healthz", func(b *testing.B) {
				// The floor: echo, middleware, request and recorder, no store.
				s.meter(b).run(nil, func(int) {
					req := httptest.NewRequest(http.MethodGet, server.PathHealth, nil)
					rec := httptest.NewRecorder()
					s.h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("healthz: %d", rec.Code)
					}
				})
			})

			b.Run("initial", func(b *testing.B) {
				form := initialForm(sdk.NewPKCE(), "")
				s.meter(b).run(nil, func(int) {
					st, raw := do(server.PathNative, form)
					must(b, st, raw, http.StatusForbidden)
				})
			})

			b.Run("password-mincost", s.benchPassword("carol", "carol-pw", http.StatusOK))
			b.Run("wrong-password-mincost", s.benchPassword("carol", "wrong-password", http.StatusForbidden))

			b.Run("otp", func(b *testing.B) {
				// One user per op, on a server of its own sharing the store.
				users, secrets := otpUsers(b, b.N)
				osrv := newBenchServer(b, env, users...)
				pk := sdk.NewPKCE()
				sessions := make([]string, benchBatch)
				codes := make([]string, benchBatch)
				next := 0
				osrv.meter(b).run(func(n int) {
					for j := 0; j < n; j++ {
						u := users[next]
						as := startSession(b, osrv.call, pk, u.Username)
						st, raw := osrv.call(server.PathNative, url.Values{"auth_session": {as}, "password": {"carol-pw"}})
						r := expect(b, st, raw, http.StatusForbidden)
						code, err := totp.GenerateCode(secrets[next], time.Now())
						if err != nil {
							b.Fatal(err)
						}
						sessions[j], codes[j] = r.AuthSession, code
						next++
					}
				}, func(j int) {
					st, raw := osrv.call(server.PathNative, url.Values{"auth_session": {sessions[j]}, "otp": {codes[j]}})
					must(b, st, raw, http.StatusOK)
				})
			})

			// token exchange: authorization_code + PKCE; with openid the
			// answer carries an ES256 ID token, without it only the access
			// and refresh tokens.
			exchangeBench := func(scope string) func(b *testing.B) {
				return func(b *testing.B) {
					codes := make([]string, benchBatch)
					pks := make([]sdk.PKCE, benchBatch)
					s.meter(b).run(func(n int) {
						for j := 0; j < n; j++ {
							pks[j] = sdk.NewPKCE()
							codes[j] = signInScope(b, do, "carol", "carol-pw", pks[j], scope)
						}
					}, func(j int) {
						st, raw := do(server.PathToken, tokenForm(codes[j], pks[j]))
						must(b, st, raw, http.StatusOK)
					})
				}
			}
			b.Run("token-exchange", exchangeBench(benchScope))
			b.Run("token-exchange-no-openid", exchangeBench("offline_access"))

			b.Run("refresh", func(b *testing.B) {
				tokens := make([]string, benchBatch)
				s.meter(b).run(func(n int) {
					for j := 0; j < n; j++ {
						p := sdk.NewPKCE()
						tokens[j] = exchange(b, do, signIn(b, do, "carol", "carol-pw", p), p).RefreshToken
					}
				}, func(j int) {
					st, raw := do(server.PathToken, refreshForm(tokens[j]))
					must(b, st, raw, http.StatusOK)
				})
			})

			b.Run("full-flow-mincost", s.benchFull(do, "carol", "carol-pw"))

			// The same over real loopback HTTP (one keep-alive connection).
			b.Run("loopback", func(b *testing.B) {
				b.Run("initial", func(b *testing.B) {
					form := initialForm(sdk.NewPKCE(), "")
					s.meter(b).run(nil, func(int) {
						st, raw := s.callHTTP(server.PathNative, form)
						must(b, st, raw, http.StatusForbidden)
					})
				})
				b.Run("full-flow-mincost", s.benchFull(s.callHTTP, "carol", "carol-pw"))
			})
		})
	}
}

// BenchmarkBcrypt10 is the password step, a wrong password and the full
// flow of a user whose hash has the default cost 10 (alice), ≈ 80 ms/op:
// run it with few iterations. Asked for more than maxSlowOps, it skips.
//
//	go test ./server/ -run '^$' -bench '^BenchmarkBcrypt10$' -benchmem -benchtime=20x
func BenchmarkBcrypt10(b *testing.B) {
	for _, be := range benchBackends() {
		b.Run(be.name, func(b *testing.B) {
			s := setUp(b, be.make(b))
			bounded := func(f func(*testing.B)) func(*testing.B) {
				return func(b *testing.B) {
					if b.N > maxSlowOps {
						b.Skipf("bcrypt cost 10 ≈ 80 ms/op: %d ops asked, at most %d; use -benchtime=20x", b.N, maxSlowOps)
					}
					f(b)
				}
			}
			b.Run("password", bounded(s.benchPassword("alice", "wonderland", http.StatusOK)))
			b.Run("wrong-password", bounded(s.benchPassword("alice", "wrong-password", http.StatusForbidden)))
			b.Run("full-flow", bounded(s.benchFull(s.call, "alice", "wonderland")))
		})
	}
}

// BenchmarkBcryptCompare is the bare password check of the two hashes the
// benchmarks use, to subtract from the password steps.
//
//	go test ./server/ -run '^$' -bench '^BenchmarkBcryptCompare$' -benchtime=20x
func BenchmarkBcryptCompare(b *testing.B) {
	cost10 := ""
	for _, u := range config.Default().Users {
		if u.Username == "alice" {
			cost10 = u.PasswordHash
		}
	}
	for _, c := range []struct {
		name, hash, pw string
		slow           bool
	}{{"mincost", carolHash, "carol-pw", false}, {"cost10", cost10, "wonderland", true}} {
		b.Run(c.name, func(b *testing.B) {
			if c.slow && b.N > maxSlowOps {
				b.Skipf("bcrypt cost 10 ≈ 80 ms/op: %d ops asked, at most %d; use -benchtime=20x", b.N, maxSlowOps)
			}
			hash, pw := []byte(c.hash), []byte(c.pw)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := bcrypt.CompareHashAndPassword(hash, pw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
