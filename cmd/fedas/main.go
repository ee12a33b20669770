// Command fedas runs the fedas authorization server and its helpers.
//
//	fedas [serve] [--config FILE] [--redis URL] [--listen ADDR]
//	fedas demo [app]               (two ASes on loopback, a federated native sign-in; app: via our app)
//	fedas config check FILE
//	fedas hash-password            (reads the password from stdin)
//	fedas pkce                     (prints a verifier and its S256 challenge)
//	fedas totp SECRET              (prints the current RFC 6238 code)
//	fedas healthcheck URL          (exit 0 when URL answers 200)
package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
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

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/par"
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
		fmt.Fprintln(stdout, "usage: fedas [serve|demo|config check FILE|hash-password|pkce|totp SECRET|healthcheck URL]")
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
	debug := fs.Bool("debug", false, "debug logging")
	if err := fs.Parse(args); err != nil {
		return err
	}
	zc := zap.NewProductionConfig()
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
		return cfg, nil
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	source := "embedded demo config"
	if *cfgPath != "" {
		source = *cfgPath
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	st, kind, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	key, err := loadSigningKey(cfg.Keys.SigningKeyFile)
	if err != nil {
		return err
	}
	secret, err := cfg.Keys.HMACSecret()
	if err != nil {
		return err
	}
	srv, err := server.New(server.Options{Config: cfg, Store: st, Logger: log, SigningKey: key, HMACSecret: secret})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	log.Info("fedas serving",
		zap.String("issuer", cfg.Issuer), zap.String("listen", ln.Addr().String()),
		zap.String("config", source), zap.String("storage", kind),
		zap.Int("clients", len(cfg.Clients)), zap.Int("users", len(cfg.Users)),
		zap.Bool("ephemeral_signing_key", srv.EphemeralSigningKey),
		zap.Bool("ephemeral_hmac_secret", srv.EphemeralHMACSecret))
	if srv.EphemeralSigningKey || srv.EphemeralHMACSecret {
		log.Warn("keys are ephemeral: tokens and codes die with this process; set keys.signing_key_file and keys.hmac_secret_file for anything real")
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	// SIGHUP re-reads the config file: a valid one becomes the policy of
	// every request that starts afterwards; an invalid one is logged and
	// the current policy keeps serving. Never exit on it.
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
			_ = srv.Reload(load)
		case <-ctx.Done():
			done = true
		}
	}
	log.Info("shutting down: draining in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	return <-errc
}

func openStore(ctx context.Context, cfg *config.Config, log *zap.Logger) (storage.Store, string, error) {
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
