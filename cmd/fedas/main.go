// Command fedas runs the fedas authorization server and its helpers;
// `fedas help` lists them, `fedas COMMAND --help` explains one.
//
//	fedas [serve] [--config FILE | --demo] [--issuer URL] [--listen ADDR] [--redis URL] [--admin-tokens FILE] [--admin-listen ADDR]
//	fedas demo [app|wallet|reach]  (two ASes on loopback, a federated native sign-in; app: via our app;
//	                               wallet: digital credentials; reach: the user's other device)
//	fedas config check [FILE]      (every problem at once; the keys and secrets loaded as serve loads them)
//	fedas admin token create --role read|write --name NAME [--file FILE]
//	fedas keygen [--dir DIR]       (signing key and HMAC secret for a deployment)
//	fedas hash-password            (no echo on a terminal; else stdin's first line)
//	fedas pkce                     (prints a verifier and its S256 challenge)
//	fedas totp SECRET              (prints the current RFC 6238 code)
//	fedas conformance --issuer URL [--client-id ID] [--auth …] [--username U --password P] [--profile fipa] [--json FILE] [--markdown FILE]
//	fedas healthcheck [URL]        (exit 0 when the configured address answers /readyz with 200)
//	fedas version
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/fedas/fedas/admin"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
	"github.com/fedas/fedas/storage/redisstore"
)

func main() {
	err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	var ue usageError
	if err != nil && !errors.As(err, &ue) { // a usage error is on stderr already
		fmt.Fprintln(os.Stderr, "fedas:", err)
	}
	os.Exit(exitCode(err))
}

// run runs the command args name; serve when they start with a flag or
// are empty.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	s := stdio{in: stdin, out: stdout, err: stderr}
	if len(args) > 0 {
		switch args[0] {
		case "-h", "--help", "-help":
			listCommands(stdout, commands())
			return nil
		case "--version", "-version":
			return versionCmd(args[1:], s)
		}
		if strings.HasPrefix(args[0], "-") {
			return serveCmd(args, s)
		}
	}
	return dispatch(args, s)
}

// serveOptions are serve's flags.
type serveOptions struct {
	cfgPath, redisURL, listen, issuer, adminTokens, adminListen string
	demo, debug                                                 bool
	// env looks up the environment (FEDAS_CONFIG, FEDAS_REQUIRE_CONFIG
	// and the config overrides).
	env func(string) (string, bool)
}

func serveCmd(args []string, s stdio) error {
	fs := newFlags("serve", "[serve] [--config FILE | --demo] [flags]",
		"Runs the authorization server. The config file is --config, else $FEDAS_CONFIG; without\n"+
			"one, the embedded demo config (public secrets, memory storage, http://127.0.0.1:8080) runs,\n"+
			"unless FEDAS_REQUIRE_CONFIG=1 (the Docker image sets it): then only --demo runs it.\n"+
			"A flag beats its FEDAS_ environment variable, which beats the file (docs/config.md).\n"+
			"SIGTERM drains in-flight requests; SIGHUP re-reads the config file's policy.")
	o := &serveOptions{env: config.LookupEnv}
	fs.StringVar(&o.cfgPath, "config", "", "YAML configuration file (default $FEDAS_CONFIG)")
	fs.BoolVar(&o.demo, "demo", false, "run the embedded demo config (public secrets) even where FEDAS_REQUIRE_CONFIG is set")
	fs.StringVar(&o.issuer, "issuer", "", "issuer URL (overrides issuer, FEDAS_ISSUER)")
	fs.StringVar(&o.listen, "listen", "", "listen address (overrides listen, FEDAS_LISTEN; default 127.0.0.1:8080); with the demo config it moves the demo's issuer too")
	fs.StringVar(&o.redisURL, "redis", "", "Redis URL (overrides storage.redis.url, FEDAS_STORAGE_REDIS_URL); switches storage to Redis")
	fs.StringVar(&o.adminTokens, "admin-tokens", "", "admin tokens file; starts the admin listener (overrides admin.tokens_file, FEDAS_ADMIN_TOKENS_FILE)")
	fs.StringVar(&o.adminListen, "admin-listen", "", "admin listen address (overrides admin.listen, FEDAS_ADMIN_LISTEN; default 127.0.0.1:8081)")
	fs.BoolVar(&o.debug, "debug", false, "debug logging")
	if done, err := parseFlags(fs, args, s); done {
		return err
	}
	if err := wantArgs(fs, 0, 0, s); err != nil {
		return err
	}
	if o.demo && o.cfgPath != "" {
		fmt.Fprintln(s.err, "fedas serve: --demo and --config exclude each other")
		printUsage(s.err, fs)
		return usageError{"--demo and --config exclude each other"}
	}
	if err := o.resolve(); err != nil {
		return err
	}
	return serve(o)
}

// resolve decides between a config file and the demo. Without a file the
// demo runs, so that the README's first command (`go run ./cmd/fedas`)
// works as written; FEDAS_REQUIRE_CONFIG=1 turns that fallback off where
// a silent demo would be a mistake (the image: a forgotten mount must not
// start a server with public secrets). A terminal test would not do: a
// demo started by a script or a test has no terminal either.
func (o *serveOptions) resolve() error {
	if o.demo {
		return nil
	}
	if o.cfgPath == "" {
		o.cfgPath, _ = o.env(config.EnvConfig)
	}
	if o.cfgPath != "" {
		return nil
	}
	if v, _ := o.env(config.EnvRequireConfig); v != "" && v != "0" && v != "false" {
		return fmt.Errorf("no config file: pass --config FILE or set %s; --demo runs the embedded demo config with its public secrets (%s is set)", config.EnvConfig, config.EnvRequireConfig)
	}
	o.demo = true
	return nil
}

// source names the configuration in the log.
func (o *serveOptions) source() string {
	if o.demo {
		return "embedded demo config"
	}
	return o.cfgPath
}

// readFile returns the config file's bytes (the embedded demo's with
// --demo): its policy part bootstraps the policy store.
func (o *serveOptions) readFile() ([]byte, error) {
	if o.demo {
		return config.DemoYAML(), nil
	}
	return os.ReadFile(o.cfgPath)
}

// load reads the configuration with its overrides: flag > FEDAS_ env >
// file.
func (o *serveOptions) load() (*config.Config, error) {
	// Keys: the signing keys are read with the file, so that
	// keys.active_signing_key is checked against their kids before the
	// file's policy can bootstrap the store.
	opts := config.Options{Env: o.env, Flags: o.flagSettings(), Keys: true}
	if o.demo {
		return config.ParseWith(config.DemoYAML(), opts)
	}
	return config.LoadWith(o.cfgPath, opts)
}

// flagSettings are the flags that override config keys. On the demo
// config, a listen address given without an issuer moves the issuer
// along: the demo's issuer only means "this process on loopback", and
// every URL in its metadata, every DPoP htu and every assertion audience
// derive from it, so a demo on another port with the issuer left at 8080
// would send its clients elsewhere. A real config's issuer is its public
// name (usually behind a proxy, on another host and port than the
// listener), so there it is never derived: serve warns instead when the
// two disagree on loopback.
func (o *serveOptions) flagSettings() []config.Setting {
	var out []config.Setting
	add := func(key, v, flag string) {
		if v != "" {
			out = append(out, config.Setting{Key: key, Value: v, Source: flag})
		}
	}
	add("issuer", o.issuer, "--issuer")
	add("listen", o.listen, "--listen")
	add("storage.redis.url", o.redisURL, "--redis")
	add("admin.tokens_file", o.adminTokens, "--admin-tokens")
	add("admin.listen", o.adminListen, "--admin-listen")
	if o.demo {
		issuerEnv, _ := o.env("FEDAS_ISSUER")
		listen, src := o.listen, "--listen"
		if listen == "" {
			listen, _ = o.env("FEDAS_LISTEN")
			src = "FEDAS_LISTEN"
		}
		if listen != "" && o.issuer == "" && issuerEnv == "" {
			add("issuer", demoIssuer(listen), src)
		}
	}
	return out
}

// demoIssuer is the demo's issuer for a listen address: http on the
// loopback address that reaches it, same port.
func demoIssuer(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen // Validate reports it
	}
	return "http://" + net.JoinHostPort(loopbackFor(host), port)
}

// listenIssuerMismatch explains why an issuer on loopback cannot be
// reached at the listen address ("" when it can, or when the issuer is
// not on loopback: a public issuer usually fronts a proxy).
func listenIssuerMismatch(listen, issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil || !isLoopbackHost(u.Hostname()) {
		return ""
	}
	iport := u.Port()
	if iport == "" {
		iport = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	lhost, lport, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	if lport != iport {
		return fmt.Sprintf("the issuer %s is on port %s but fedas listens on %s: clients follow the issuer's URLs (metadata, DPoP htu), not the listener; set --issuer or --listen so that they agree", issuer, iport, listen)
	}
	switch {
	case loopbackFor(lhost) != lhost: // a wildcard listener serves loopback too
	case !isLoopbackHost(lhost):
		return fmt.Sprintf("the issuer %s is on loopback but fedas listens on %s only", issuer, listen)
	case lhost != u.Hostname() && lhost != "localhost" && u.Hostname() != "localhost":
		return fmt.Sprintf("the issuer %s and the listen address %s are different loopback addresses", issuer, listen)
	}
	return ""
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func serve(o *serveOptions) error {
	zc := zap.NewProductionConfig()
	logTimes(&zc)
	if o.debug {
		zc.Level = zap.NewAtomicLevelAt(zap.DebugLevel)
	}
	log, err := zc.Build()
	if err != nil {
		return err
	}
	// go-redis logs dial failures through its own global logger; route
	// them through zap (never with command arguments).
	redis.SetLogger(redisLogger{log.Named("go-redis")})
	defer func() { _ = log.Sync() }()
	tr, err := startTracing(context.Background(), log)
	if err != nil {
		return err
	}
	defer tr.stop()
	obs := newObservability(log)

	readFile, load := o.readFile, o.load
	cfg, err := load()
	if err != nil {
		return err
	}
	raw, err := readFile()
	if err != nil {
		return err
	}
	filePolicy, err := config.ParsePolicy(raw)
	if err != nil {
		return err
	}
	source := o.source()
	if o.demo {
		log.Warn("running the embedded demo config: its secrets are public; pass --config FILE for anything real")
	}
	if w := listenIssuerMismatch(cfg.Listen, cfg.Issuer); w != "" {
		log.Warn(w, zap.String("issuer", cfg.Issuer), zap.String("listen", cfg.Listen))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	st, kind, err := openStore(ctx, cfg, log, tr.tp, obs.redisHooks())
	if err != nil {
		return err
	}
	defer st.Close()
	ps, ok := st.(storage.PolicyStore)
	if !ok {
		return fmt.Errorf("storage %s cannot hold the policy", kind)
	}
	secret, err := cfg.Keys.HMACSecret()
	if err != nil {
		return err
	}
	ephemeralSecret := secret == nil
	if ephemeralSecret {
		// Generated here, not in server.New: the policy snapshots (our
		// downstream DPoP key) and the console sessions derive from it.
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return err
		}
	}
	liveCtx, stopLive := context.WithCancel(context.Background())
	defer stopLive()
	build := policy.BuildOptions{Logger: log, DPoPSeed: server.DownstreamDPoPSeed(secret)}
	src, follower, err := admin.StartLive(liveCtx, admin.LiveOptions{Store: ps, Base: cfg, File: filePolicy, Build: build, Log: log})
	if err != nil {
		return err
	}
	warnRetiredKeys(ctx, ps, cfg, log)
	srv, err := server.New(server.Options{Config: cfg, Store: st, Logger: log, HMACSecret: secret, Policy: src, TracerProvider: tr.tp, Metrics: obs.metrics})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	snap := src.Current()
	log.Info("fedas serving",
		zap.String("issuer", cfg.Issuer), zap.String("listen", ln.Addr().String()),
		zap.String("config", source), zap.String("storage", kind),
		zap.Uint64("policy_version", snap.PolicyVersion),
		zap.Int("clients", len(snap.Config.Clients)), zap.Int("users", len(snap.Config.Users)),
		zap.Bool("ephemeral_signing_key", srv.EphemeralSigningKey),
		zap.Bool("ephemeral_hmac_secret", ephemeralSecret))
	if srv.EphemeralSigningKey || ephemeralSecret {
		log.Warn("keys are ephemeral: tokens and codes die with this process; set keys.signing_key_file and keys.hmac_secret_file for anything real")
	}
	errc := make(chan error, 2)
	// The admin listener is bound before the public one serves: once
	// /healthz answers, the whole instance is up.
	var adm *admin.Admin
	if cfg.Admin.Enabled() {
		if adm, err = startAdmin(cfg, ps, src, follower, secret, log, tr.tp, errc, obs.metrics); err != nil {
			ln.Close()
			return err
		}
	}
	go func() { errc <- srv.Serve(ln) }()
	// SIGHUP re-reads the config file and commits its policy to the
	// store as the next version, which every instance then serves — unless
	// admins have edited the policy since (docs/admin.md "SIGHUP"). An
	// invalid file is logged and changes nothing. Never exit on it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for done := false; !done; {
		select {
		case err := <-errc:
			return err
		case <-hup:
			if o.demo {
				log.Warn("SIGHUP: no config file to re-read (embedded demo config)")
				continue
			}
			reloadFile(ctx, load, readFile, cfg, ps, follower, log)
		case <-ctx.Done():
			done = true
		}
	}
	log.Info("shutting down: draining in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if adm != nil {
		_ = adm.Shutdown(sctx)
	}
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	return <-errc
}

// startAdmin starts the admin listener (docs/admin.md), which also
// serves the metrics.
func startAdmin(cfg *config.Config, ps storage.PolicyStore, src *policy.Source, f *policy.Follower, secret []byte, log *zap.Logger, tp trace.TracerProvider, errc chan<- error, metrics http.Handler) (*admin.Admin, error) {
	alog := log.Named("admin")
	tokens, err := adminTokens(cfg, alog)
	if err != nil {
		return nil, err
	}
	svc := admin.NewService(admin.ServiceOptions{Store: ps, Base: cfg, Source: src, Sync: f.Sync, Log: alog})
	adm, err := admin.New(admin.Options{Service: svc, Tokens: tokens, Log: alog, SessionKey: server.AdminSessionKey(secret), Metrics: metrics, TracerProvider: tp})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Admin.ListenAddr())
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	log.Info("admin listener serving", zap.String("listen", ln.Addr().String()),
		zap.String("console", "http://"+ln.Addr().String()+admin.PathConsole+"/"), zap.String("metrics", "http://"+ln.Addr().String()+admin.PathMetrics),
		zap.String("tokens_file", cfg.Admin.TokensFile))
	go func() { errc <- adm.Serve(ln) }()
	return adm, nil
}

// reloadFile handles SIGHUP.
func reloadFile(ctx context.Context, load func() (*config.Config, error), readFile func() ([]byte, error), base *config.Config, ps storage.PolicyStore, f *policy.Follower, log *zap.Logger) {
	refuse := func(err error) {
		for _, line := range strings.Split(err.Error(), "\n") {
			log.Warn("config reload refused: keeping the current policy", zap.String("problem", line))
		}
	}
	next, err := load()
	if err != nil {
		refuse(err)
		return
	}
	raw, err := readFile()
	if err != nil {
		refuse(err)
		return
	}
	p, err := config.ParsePolicy(raw)
	if err != nil {
		refuse(err)
		return
	}
	for _, name := range policy.RestartOnly(base, next) {
		log.Warn("config reload: this setting takes effect only after a restart", zap.String("setting", name))
	}
	v, changed, err := admin.ApplyFile(ctx, ps, base, p, base.Admin.SighupOverwritesStore || next.Admin.SighupOverwritesStore, time.Now())
	if err != nil {
		refuse(err)
		return
	}
	if !changed {
		log.Info("config reloaded: no policy change", zap.Uint64("version", v))
		return
	}
	if err := f.Sync(ctx); err != nil {
		log.Warn("config reloaded but not yet applied here", zap.Error(err))
	}
	pv, _ := ps.PolicyVersion(ctx, v)
	log.Info("config reloaded", zap.Uint64("version", v), zap.String("changes", pv.Summary))
}

func openStore(ctx context.Context, cfg *config.Config, log *zap.Logger, tp trace.TracerProvider, hooks []redis.Hook) (storage.Store, string, error) {
	r := cfg.Storage.Redis
	if r == nil {
		return memory.New(), "memory", nil
	}
	pw, err := r.RedisPassword()
	if err != nil {
		return nil, "", err
	}
	st, err := redisstore.New(ctx, redisstore.Options{
		URL: r.URL, Addrs: r.Addrs, Cluster: r.Cluster, MasterName: r.MasterName,
		Username: r.Username, Password: pw, Prefix: r.Prefix, AllowEvictionPolicy: r.AllowEvictionPolicy, TracerProvider: tp,
		Hooks: hooks,
	}, log.Named("redis"))
	if err != nil {
		return nil, "", fmt.Errorf("redis: %w", err)
	}
	kind := "redis"
	switch {
	case r.Cluster:
		kind = "redis-cluster"
	case r.MasterName != "":
		kind = "redis-sentinel"
	}
	return st, kind, nil
}

// redisLogger adapts zap to go-redis's internal logger.
type redisLogger struct{ l *zap.Logger }

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	r.l.Warn(fmt.Sprintf(format, v...))
}
