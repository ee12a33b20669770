// Package servertest starts real fedas servers on loopback for tests: each
// instance has its own listener, issuer URL and store, and stops when the
// test ends.
package servertest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/internal/offsetclock"
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
	// Roots trusts the instance's certificate (Options.TLS); nil on
	// plain http.
	Roots *x509.CertPool
}

// HTTPClient is a client for the instance that never follows redirects
// and trusts the certificate of every TLS instance (HTTP).
func (in *Instance) HTTPClient() *http.Client { return HTTP() }

// testCert is the one certificate every TLS instance of the process
// serves, so that HTTP's client trusts them all.
var testCert struct {
	once  sync.Once
	cert  tls.Certificate
	roots *x509.CertPool
	err   error
}

func sharedCert() (tls.Certificate, *x509.CertPool, error) {
	testCert.once.Do(func() { testCert.cert, testCert.roots, testCert.err = selfSigned() })
	return testCert.cert, testCert.roots, testCert.err
}

// selfSigned makes a P-256 certificate for 127.0.0.1 (Options.TLS).
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: "fedas test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k, Leaf: cert}, pool, nil
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
	// Observe, when set, sees every exchange the instance answers (in
	// addition to ObserveAll).
	Observe func(Exchange)
	// TracerProvider is the server's (server.Options.TracerProvider).
	TracerProvider trace.TracerProvider
	// Metrics, when set, is the server's registry (shared with a Redis
	// hook the test installed); default the server's own.
	Metrics *metrics.Metrics
	// DC are the presentation step's test seams (server.DCOptions).
	DC server.DCOptions
	// TLS serves https with a fresh self-signed certificate for 127.0.0.1
	// (Instance.Roots, Instance.HTTPClient): wallets talk to the internal
	// verifier over https only (OpenID4VP 1.0 §8.2).
	TLS bool
	// DownstreamRoots are trusted for downstreams' TLS (another
	// instance's Roots): server.Options.DownstreamRoots.
	DownstreamRoots *x509.CertPool
	// SigningKey is the server's signing key (server.Options.SigningKey):
	// instances standing for one deployment share it, as they would share
	// keys.signing_keys.
	SigningKey *ecdsa.PrivateKey
	// Reach are the reach core's test seams (server.ReachOptions).
	Reach server.ReachOptions
	// RequestDeadline is server.Options.RequestDeadline (zero: 10 s).
	RequestDeadline time.Duration
}

// Exchange is one request an instance answered and its answer, as the
// instance's handler saw them.
type Exchange struct {
	// Seq orders exchanges by arrival, across every instance of the process.
	Seq int64
	// Instance is the issuer URL of the instance that answered.
	Instance string
	// Request is the request as received; its Body is spent: use
	// RequestBody.
	Request     *http.Request
	RequestBody []byte
	Status      int
	Header      http.Header
	Body        []byte
}

// ObserveAll, when set, is asked for an observer for every instance Start
// starts: a test binary sets it (in TestMain, before any test runs) to see
// every exchange of every instance, e.g. to validate each one against an
// API description. Its observer reports problems through tb.
var ObserveAll func(tb testing.TB, in *Instance) func(Exchange)

var exchangeSeq atomic.Int64

// Clock is a test clock: real time plus an offset that Advance grows
// (offsetclock.Clock, which `fedas demo wallet` uses too).
type Clock = offsetclock.Clock

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
	var roots *x509.CertPool
	if o.TLS {
		var cert tls.Certificate
		var err error
		if cert, roots, err = sharedCert(); err != nil {
			tb.Fatalf("servertest: certificate: %v", err)
		}
		cfg.Issuer = "https://" + ln.Addr().String()
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
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
		o.Logger = Logger(tb)
	}
	srv, err := server.New(server.Options{Config: cfg, Store: o.Store, Logger: o.Logger.Named(cfg.Issuer), HMACSecret: o.HMACSecret, Now: now, TracerProvider: o.TracerProvider, Metrics: o.Metrics, DC: o.DC, DownstreamRoots: o.DownstreamRoots,
		SigningKey: o.SigningKey, Reach: o.Reach, RequestDeadline: o.RequestDeadline})
	if err != nil {
		tb.Fatalf("servertest: %v", err)
	}
	in := &Instance{URL: cfg.Issuer, Server: srv, Store: o.Store, Config: cfg, Roots: roots}
	var observers []func(Exchange)
	if ObserveAll != nil {
		if f := ObserveAll(tb, in); f != nil {
			observers = append(observers, f)
		}
	}
	if o.Observe != nil {
		observers = append(observers, o.Observe)
	}
	serve, shutdown := srv.Serve, srv.Shutdown
	if len(observers) > 0 {
		// The server's handler behind a recorder, on an http.Server of
		// our own with the limits server.New sets.
		hs := &http.Server{Handler: observed(in.URL, srv.Handler(), observers), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 32 << 10}
		serve = func(ln net.Listener) error { return hs.Serve(ln) }
		shutdown = func(ctx context.Context) error {
			// The server's own Shutdown releases its long polls (and
			// stops its reach hub) before ours waits for them.
			_ = srv.Shutdown(ctx)
			return hs.Shutdown(ctx)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = serve(ln)
	}()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = shutdown(ctx)
		<-done
	})
	return in
}

// observed records every exchange through h and hands it to observers
// once the handler has returned (and before the connection goes idle, so
// that Shutdown waits for the observers).
func observed(instance string, h http.Handler, observers []func(Exchange)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seq := exchangeSeq.Add(1)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "servertest: reading the request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		_ = r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		ex := Exchange{Seq: seq, Instance: instance, Request: r, RequestBody: body, Status: rec.status, Header: w.Header().Clone(), Body: rec.body.Bytes()}
		for _, f := range observers {
			f(ex)
		}
	})
}

// recorder passes a response through and keeps a copy.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Client returns an SDK client for clientID at this instance.
func (in *Instance) Client(tb testing.TB, clientID string) *sdk.Client {
	tb.Helper()
	hc := in.HTTPClient()
	meta, err := sdk.Discover(context.Background(), hc, in.URL)
	if err != nil {
		tb.Fatalf("servertest: discover: %v", err)
	}
	return &sdk.Client{HTTP: hc, ClientID: clientID, Meta: meta}
}

// HTTP is a client that never follows redirects and trusts the TLS
// instances' certificate (Options.TLS).
func HTTP() *http.Client {
	hc := sdk.NewHTTPClient()
	hc.Transport = sharedTransport()
	return hc
}

var transport struct {
	once sync.Once
	t    http.RoundTripper
}

// sharedTransport is http.DefaultTransport's settings plus trust in the
// test certificate: one pool of connections for every client.
func sharedTransport() http.RoundTripper {
	transport.once.Do(func() {
		t := http.DefaultTransport.(*http.Transport).Clone()
		if _, roots, err := sharedCert(); err == nil {
			t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		}
		transport.t = t
	})
	return transport.t
}

// Logger is zaptest's logger for tb that stops writing once tb's
// cleanups run: a background task of the server (a downstream's metadata
// refresh that outlives the request that started it) may still log after
// the test returned, and testing.T must not be written to then (a data
// race under -race, a panic without). In-flight writes finish first.
func Logger(tb testing.TB) *zap.Logger {
	g := &guard{}
	tb.Cleanup(func() {
		g.mu.Lock()
		g.stopped = true
		g.mu.Unlock()
	})
	return zaptest.NewLogger(tb, zaptest.WrapOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return &guardedCore{Core: c, g: g}
	})))
}

type guard struct {
	mu      sync.RWMutex
	stopped bool
}

// guardedCore drops entries once its guard stopped.
type guardedCore struct {
	zapcore.Core
	g *guard
}

func (c *guardedCore) With(f []zapcore.Field) zapcore.Core {
	return &guardedCore{Core: c.Core.With(f), g: c.g}
}

func (c *guardedCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *guardedCore) Write(e zapcore.Entry, f []zapcore.Field) error {
	c.g.mu.RLock()
	defer c.g.mu.RUnlock()
	if c.g.stopped {
		return nil
	}
	return c.Core.Write(e, f)
}
