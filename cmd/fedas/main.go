// Command fedas runs the fedas authorization server and its helpers.
//
//	fedas [serve] [--config FILE] [--redis URL] [--listen ADDR]
//	fedas demo [app]               (two ASes on loopback, a federated native sign-in; app: via our app)
//	fedas config check FILE
//	fedas admin token create --role read|write --name NAME [--file FILE]
//	fedas hash-password            (reads the password from stdin)
//	fedas pkce                     (prints a verifier and its S256 challenge)
//	fedas totp SECRET              (prints the current RFC 6238 code)
//	fedas healthcheck URL          (exit 0 when URL answers 200)
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/fedas/fedas/admin"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/par"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
	"github.com/fedas/fedas/storage/redisstore"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fedas:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stderr)
	case "demo":
		return demo(args, stdout)
	case "admin":
		return adminCmd(args, stdout, stderr)
	case "config":
		if len(args) != 2 || args[0] != "check" {
			return errors.New("usage: fedas config check FILE")
		}
		if _, err := config.Load(args[1]); err != nil {
			fmt.Fprintln(stdout, "configuration problems:")
			for _, line := range strings.Split(err.Error(), "\n") {
				fmt.Fprintln(stdout, "  -", line)
			}
			return errors.New("invalid configuration")
		}
		fmt.Fprintln(stdout, "configuration OK")
		return nil
	case "hash-password":
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		h, err := bcrypt.GenerateFromPassword([]byte(strings.TrimRight(line, "\r\n")), bcrypt.DefaultCost)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(h))
		return nil
	case "pkce":
		v, c := par.NewPKCE()
		fmt.Fprintf(stdout, "code_verifier=%s\ncode_challenge=%s\n", v, c)
		return nil
	case "totp":
		if len(args) != 1 {
			return errors.New("usage: fedas totp BASE32SECRET")
		}
		code, err := totp.GenerateCode(args[0], time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, code)
		return nil
	case "healthcheck":
		// For container HEALTHCHECKs: images have no curl.
		if len(args) != 1 {
			return errors.New("usage: fedas healthcheck URL")
		}
		hc := &http.Client{Timeout: 2 * time.Second}
		resp, err := hc.Get(args[0])
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health: HTTP %d", resp.StatusCode)
		}
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: fedas [serve|demo|config check FILE|admin token create|hash-password|pkce|totp SECRET|healthcheck URL]")
		return nil
	}
	return fmt.Errorf("unknown command %q (try: fedas help)", cmd)
}

func serve(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file (default: the embedded demo)")
	redisURL := fs.String("redis", "", "Redis URL; switches storage to Redis")
	listen := fs.String("listen", "", "listen address (default from config: 127.0.0.1:8080)")
	adminTokens := fs.String("admin-tokens", "", "admin tokens file; starts the admin listener (default from config: admin.tokens_file)")
	adminListen := fs.String("admin-listen", "", "admin listen address; starts the admin listener (default from config: admin.listen, else 127.0.0.1:8081)")
	debug := fs.Bool("debug", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	zc := zap.NewProductionConfig()
	logTimes(&zc)
	if *debug {
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
	obs := newObservability(log)

	// readFile returns the config file's bytes (the embedded demo without
	// --config): its policy part bootstraps the policy store.
	readFile := func() ([]byte, error) {
		if *cfgPath == "" {
			return config.DemoYAML(), nil
		}
		return os.ReadFile(*cfgPath)
	}
	load := func() (*config.Config, error) {
		cfg := config.Default()
		if *cfgPath != "" {
			var err error
			if cfg, err = config.Load(*cfgPath); err != nil {
				return nil, err
			}
		}
		if *redisURL != "" {
			cfg.Storage.Redis = &config.Redis{URL: *redisURL, Prefix: "fedas:"}
		}
		if *listen != "" {
			cfg.Listen = *listen
		}
		if *adminTokens != "" {
			cfg.Admin.TokensFile = *adminTokens
		}
		if *adminListen != "" {
			cfg.Admin.Listen = *adminListen
		}
		return cfg, nil
	}
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
	source := "embedded demo config"
	if *cfgPath != "" {
		source = *cfgPath
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	st, kind, err := openStore(ctx, cfg, log, obs.redisHooks())
	if err != nil {
		return err
	}
	defer st.Close()
	ps, ok := st.(storage.PolicyStore)
	if !ok {
		return fmt.Errorf("storage %s cannot hold the policy", kind)
	}
	key, err := loadSigningKey(cfg.Keys.SigningKeyFile)
	if err != nil {
		return err
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
	srv, err := server.New(server.Options{Config: cfg, Store: st, Logger: log, SigningKey: key, HMACSecret: secret, Policy: src, Metrics: obs.metrics})
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
	go func() { errc <- srv.Serve(ln) }()
	var adm *admin.Admin
	if cfg.Admin.Enabled() {
		if adm, err = startAdmin(cfg, ps, src, follower, secret, log, errc, obs.metrics); err != nil {
			return err
		}
	}
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
			if *cfgPath == "" {
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
func startAdmin(cfg *config.Config, ps storage.PolicyStore, src *policy.Source, f *policy.Follower, secret []byte, log *zap.Logger, errc chan<- error, metrics http.Handler) (*admin.Admin, error) {
	alog := log.Named("admin")
	tokens, err := adminTokens(cfg, alog)
	if err != nil {
		return nil, err
	}
	svc := admin.NewService(admin.ServiceOptions{Store: ps, Base: cfg, Source: src, Sync: f.Sync, Log: alog})
	adm, err := admin.New(admin.Options{Service: svc, Tokens: tokens, Log: alog, SessionKey: server.AdminSessionKey(secret), Metrics: metrics})
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

func openStore(ctx context.Context, cfg *config.Config, log *zap.Logger, hooks []redis.Hook) (storage.Store, string, error) {
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
		Username: r.Username, Password: pw, Prefix: r.Prefix, AllowEvictionPolicy: r.AllowEvictionPolicy,
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

func loadSigningKey(path string) (*ecdsa.PrivateKey, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	if k, err := x509.ParseECPrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an EC private key", path)
	}
	return ek, nil
}

// redisLogger adapts zap to go-redis's internal logger.
type redisLogger struct{ l *zap.Logger }

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	r.l.Warn(fmt.Sprintf(format, v...))
}
