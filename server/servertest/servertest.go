// Package servertest starts real fedas servers on loopback for tests: each
// instance has its own listener, issuer URL and store, and stops when the
// test ends.
package servertest

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/metrics"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
)

// Instance is one running fedas server.
type Instance struct {
	URL    string
	Server *server.Server
	Store  storage.Store
	Config *config.Config
}

// Options tune an instance.
type Options struct {
	// Store defaults to a fresh memory store.
	Store storage.Store
	// Configure edits the demo configuration before the server starts;
	// Issuer and Listen are already set to the loopback listener.
	Configure func(*config.Config)
	// HMACSecret lets several instances share codes through one store.
	HMACSecret []byte
	// Listener, when set, is used instead of a fresh loopback listener
	// (to know an instance's URL before configuring another).
	Listener net.Listener
	// Logger defaults to the test's logger.
	Logger *zap.Logger
	// Clock, when set, is the server's clock and, with no Store given,
	// the memory store's: tests advance it instead of sleeping.
	Clock *Clock
	// Metrics, when set, is the server's registry (shared with a Redis
	// hook the test installed); default the server's own.
	Metrics *metrics.Metrics
}

// Clock is a test clock: real time plus an offset that Advance grows.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now is the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// Start starts an instance of the demo configuration.
func Start(tb testing.TB, o Options) *Instance {
	tb.Helper()
	ln := o.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			tb.Fatalf("servertest: listen: %v", err)
		}
	}
	cfg := config.Default()
	cfg.Issuer = "http://" + ln.Addr().String()
	cfg.Listen = ln.Addr().String()
	if o.Configure != nil {
		o.Configure(cfg)
	}
	if err := cfg.Validate(); err != nil {
		tb.Fatalf("servertest: config: %v", err)
	}
	var now func() time.Time
	if o.Clock != nil {
		now = o.Clock.Now
	}
	if o.Store == nil {
		m := memory.New()
		if now != nil {
			m = memory.NewWithClock(now)
		}
		tb.Cleanup(func() { _ = m.Close() })
		o.Store = m
	}
	if o.Logger == nil {
		o.Logger = zaptest.NewLogger(tb)
	}
	srv, err := server.New(server.Options{Config: cfg, Store: o.Store, Logger: o.Logger.Named(cfg.Issuer), HMACSecret: o.HMACSecret, Now: now, Metrics: o.Metrics})
	if err != nil {
		tb.Fatalf("servertest: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return &Instance{URL: cfg.Issuer, Server: srv, Store: o.Store, Config: cfg}
}

// Client returns an SDK client for clientID at this instance.
func (in *Instance) Client(tb testing.TB, clientID string) *sdk.Client {
	tb.Helper()
	hc := sdk.NewHTTPClient()
	meta, err := sdk.Discover(context.Background(), hc, in.URL)
	if err != nil {
		tb.Fatalf("servertest: discover: %v", err)
	}
	return &sdk.Client{HTTP: hc, ClientID: clientID, Meta: meta}
}

// HTTP is a plain client that never follows redirects.
func HTTP() *http.Client { return sdk.NewHTTPClient() }
