// Package admintest starts real fedas instances with their admin listener
// on loopback for tests: a public listener, an admin listener, a policy
// store (memory unless given) and a follower, wired as `fedas serve` wires
// them.
package admintest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fedas/fedas/admin"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/netguard"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
)

// Options tune an instance.
type Options struct {
	// Store must also be a storage.PolicyStore; default a fresh memory
	// store.
	Store storage.Store
	// Configure edits the demo configuration (issuer and listen already
	// set to the public listener) before the instance starts.
	Configure func(*config.Config)
	// HMACSecret is shared by instances that share a store.
	HMACSecret []byte
	// Listener for the public side (default a fresh loopback one).
	Listener net.Listener
	// TokensFile to share tokens between instances; default a fresh file
	// with one write and one read token.
	TokensFile string
	Logger     *zap.Logger
	// Interval of the follower's head checks (default 100ms in tests).
	Interval time.Duration
	// StrictSSRF refuses loopback destinations in the admin surface even
	// though the test config allows loopback http (dev).
	StrictSSRF bool
	// NoTokens starts the admin listener as fedas serve does without a
	// tokens file (admin.NoTokens): every API request is refused, and
	// /metrics is served.
	NoTokens bool
}

// Instance is one running fedas with its admin listener.
type Instance struct {
	URL      string
	AdminURL string
	Server   *server.Server
	Admin    *admin.Admin
	Store    storage.Store
	Config   *config.Config
	Follower *policy.Follower
	// WriteToken and ReadToken are admin tokens named "writer" and
	// "reader" (when the tokens file was made here).
	WriteToken, ReadToken string
	TokensFile            string
	HMACSecret            []byte
}

// Tokens writes a tokens file in dir with a write token "writer" and a
// read token "reader".
func Tokens(tb testing.TB, dir string) (path, write, read string) {
	tb.Helper()
	path = filepath.Join(dir, "admin-tokens")
	write, read = admin.NewToken(), admin.NewToken()
	if err := admin.AppendToken(path, "writer", admin.RoleWrite, write); err != nil {
		tb.Fatal(err)
	}
	if err := admin.AppendToken(path, "reader", admin.RoleRead, read); err != nil {
		tb.Fatal(err)
	}
	return path, write, read
}

// Start starts an instance.
func Start(tb testing.TB, o Options) *Instance {
	tb.Helper()
	ln := o.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			tb.Fatalf("admintest: listen: %v", err)
		}
	}
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("admintest: listen: %v", err)
	}
	cfg := config.Default()
	cfg.Issuer = "http://" + ln.Addr().String()
	cfg.Listen = ln.Addr().String()
	cfg.Admin.Listen = aln.Addr().String()
	if o.Configure != nil {
		o.Configure(cfg)
	}
	if err := cfg.Validate(); err != nil {
		tb.Fatalf("admintest: config: %v", err)
	}
	if o.Store == nil {
		m := memory.New()
		tb.Cleanup(func() { _ = m.Close() })
		o.Store = m
	}
	ps, ok := o.Store.(storage.PolicyStore)
	if !ok {
		tb.Fatalf("admintest: %T is not a storage.PolicyStore", o.Store)
	}
	if o.Logger == nil {
		o.Logger = zaptest.NewLogger(tb)
	}
	log := o.Logger.Named(cfg.Issuer)
	if o.HMACSecret == nil {
		o.HMACSecret = make([]byte, 32)
		_, _ = rand.Read(o.HMACSecret)
	}
	in := &Instance{URL: cfg.Issuer, AdminURL: "http://" + aln.Addr().String(), Store: o.Store, Config: cfg, HMACSecret: o.HMACSecret}
	in.TokensFile = o.TokensFile
	if in.TokensFile == "" {
		in.TokensFile, in.WriteToken, in.ReadToken = Tokens(tb, tb.TempDir())
	}
	if o.Interval == 0 {
		o.Interval = 100 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	build := policy.BuildOptions{Logger: log, DPoPSeed: server.DownstreamDPoPSeed(o.HMACSecret)}
	src, fol, err := admin.StartLive(ctx, admin.LiveOptions{Store: ps, Base: cfg, File: config.PolicyOf(cfg), Build: build, Log: log, Interval: o.Interval})
	if err != nil {
		cancel()
		tb.Fatalf("admintest: %v", err)
	}
	in.Follower = fol
	srv, err := server.New(server.Options{Config: cfg, Store: o.Store, Logger: log, HMACSecret: o.HMACSecret, Policy: src})
	if err != nil {
		cancel()
		tb.Fatalf("admintest: %v", err)
	}
	in.Server = srv
	tokens, err := admin.LoadTokens(in.TokensFile)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	if o.NoTokens {
		tokens = admin.NoTokens()
	}
	so := admin.ServiceOptions{Store: ps, Base: cfg, Source: src, Sync: fol.Sync, Log: log.Named("admin")}
	if o.StrictSSRF {
		so.Net = &netguard.Options{}
	}
	svc := admin.NewService(so)
	// The server's registry, as fedas serve shares one between both
	// listeners.
	adm, err := admin.New(admin.Options{Service: svc, Tokens: tokens, Log: log.Named("admin"), SessionKey: server.AdminSessionKey(o.HMACSecret), Metrics: srv.Metrics()})
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	in.Admin = adm
	done := make(chan struct{}, 2)
	go func() { _ = srv.Serve(ln); done <- struct{}{} }()
	go func() { _ = adm.Serve(aln); done <- struct{}{} }()
	tb.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		_ = adm.Shutdown(sctx)
		<-done
		<-done
		cancel()
	})
	return in
}

// Response is an admin API answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (r Response) JSON(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		tb.Fatalf("admintest: body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// Do sends an admin API request with token (none when ""), extra
// headers, and body (JSON-encoded unless []byte or string).
func (in *Instance) Do(tb testing.TB, method, path, token string, hdr map[string]string, body any) Response {
	tb.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, ctype = bytes.NewReader(b), "application/json"
	case string:
		rd, ctype = strings.NewReader(b), "application/json"
	default:
		j, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequest(method, in.AdminURL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("admintest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}
