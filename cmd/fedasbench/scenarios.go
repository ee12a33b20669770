package main

// The flow scenarios beyond the first few (the package doc lists what one
// flow of each is): local-password, local (TOTP), three-hop, app2app,
// refresh and wallet. Each one starts its fedas instances in-process on
// loopback through env.start / env.startOn, so that with -redis their
// keys live under the run's prefix and are purged at the end, and drives
// its flows through the sdk package as a native app would.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base32"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/bcrypt"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/dc/dctest"
	"github.com/fedas/fedas/dpop"
	"github.com/fedas/fedas/internal/loopbackcert"
	"github.com/fedas/fedas/internal/offsetclock"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
)

const (
	// otpMaxUsers bounds the local scenario's user pool: beyond it, users
	// are reused once their next one-time code is free (otpPool).
	otpMaxUsers = 100_000
	// offlineScope is the refresh scenario's scope: offline_access is
	// what gets demo-app a refresh token (OIDC Core §11).
	offlineScope = "openid email offline_access"
	// appClientID and appDeepLink are the app2app scenario's bank app at
	// AS2 (a first-party client there) and the link it claims.
	appClientID = "bank-app"
	appDeepLink = "https://bank.example/app"
	// walletHint is the login_hint the wallet scenario's rule matches
	// (digital_credentials.rules[].login_hint).
	walletHint = "wallet"
)

// scenState is the state of one run of these scenarios (one env), found
// by scenOf: main.go's env and worker carry none of it.
type scenState struct {
	as3 *instance // three-hop
	// otp is the local scenario's user pool.
	otp *otpPool
	// per holds each worker's state, by the worker's user (e.env.users).
	per map[string]*scenWorker
	// clock is the wallet scenario's clock (walletClock).
	clock *walletClock
	// wallets is how many wallets and credentials the wallet scenario set
	// up; users how many accounts the other scenarios configured.
	users, wallets int
}

// scenWorker is one worker's state: written at set-up, then only by its
// own worker.
type scenWorker struct {
	// app2app: the bank app, signed in at AS2 as the worker's user.
	app      *sdk.Client
	appToken string
	// refresh: the worker's current refresh token.
	refresh string
	// wallet: the device (DPoP-signing HTTP client) and the user's wallet.
	device *http.Client
	wallet *dctest.Wallet
}

var scenStates sync.Map // *env → *scenState

func scenOf(e *env) *scenState {
	if s, ok := scenStates.Load(e); ok {
		return s.(*scenState)
	}
	return nil
}

// isScenario reports whether sc is one of this file's scenarios.
func isScenario(sc string) bool {
	switch sc {
	case "local", "local-password", "three-hop", "app2app", "refresh", "wallet":
		return true
	}
	return false
}

// stepError names the step of a failure that happened inside an SDK hook
// (the app, the wallet), which Authorize returns as is.
type stepError struct {
	step string
	err  error
}

func (s *stepError) Error() string { return s.step + ": " + s.err.Error() }
func (s *stepError) Unwrap() error { return s.err }

// sfail is worker.fail that also names AS3's endpoints and the steps of
// SDK hooks.
func (w *worker) sfail(step string, err error) error {
	var st *stepError
	if errors.As(err, &st) {
		step, err = st.step, st.err
	}
	out := w.fail(step, err)
	var fe *flowError
	var se *sdk.Err
	if s := scenOf(w.e); s != nil && s.as3 != nil && errors.As(out, &fe) && errors.As(err, &se) &&
		strings.HasPrefix(se.From, s.as3.url+"/") {
		_, code, _ := strings.Cut(fe.key, ": ")
		fe.key = "as3 " + endpointName(strings.TrimPrefix(se.From, s.as3.url)) + ": " + code
	}
	return out
}

func endpointName(path string) string {
	switch {
	case path == server.PathNative:
		return "native"
	case strings.HasPrefix(path, server.PathResponse):
		return "response_uri"
	}
	return path
}

// startScenario starts the instances of one of this file's scenarios
// (setup's switch) and prepares what each worker needs that is not
// measured: the app2app app sign-ins, the refresh scenario's first
// sign-ins, the wallet scenario's wallets.
func (e *env) startScenario(ctx context.Context) error {
	s := &scenState{per: map[string]*scenWorker{}}
	scenStates.Store(e, s)
	e.cleanups = append(e.cleanups, func() { scenStates.Delete(e) })
	for _, u := range e.users {
		s.per[u] = &scenWorker{}
	}
	var hash string
	if e.o.scenario != "wallet" {
		h, err := bcrypt.GenerateFromPassword([]byte(benchPassword), e.o.bcryptCost)
		if err != nil {
			return err
		}
		hash = string(h)
	}
	// Cleanups run last first: the devices' idle connections close before
	// the instances shut down, which otherwise wait (up to their 2 s) for
	// a connection the transport dialled but never sent a request on.
	defer func() { e.cleanups = append(e.cleanups, e.tr.CloseIdleConnections) }()
	switch e.o.scenario {
	case "local-password":
		users := usersConfig(e.users, hash)
		s.users = len(users)
		return e.startAS1(ctx, users)
	case "local":
		return e.startTOTP(ctx, s, hash)
	case "refresh":
		users := usersConfig(e.users, hash)
		s.users = len(users)
		if err := e.startAS1(ctx, users); err != nil {
			return err
		}
		return e.signInAll(ctx, s)
	case "three-hop":
		users := usersConfig(e.users, hash)
		s.users = len(users)
		return e.startThreeHop(ctx, s, users)
	case "app2app":
		users := usersConfig(e.users, hash)
		s.users = len(users)
		return e.startApp2App(ctx, s, users)
	case "wallet":
		return e.startWallet(ctx, s)
	}
	return fmt.Errorf("no such scenario %q", e.o.scenario)
}

func (e *env) startAS1(ctx context.Context, users []config.User) (err error) {
	e.as1, err = e.start(ctx, "as1", func(c *config.Config) { c.Users = users }, nil)
	return err
}

// scenarioUsers is the report's users and users_note for these scenarios.
func (e *env) scenarioUsers() (int, string) {
	s := scenOf(e)
	if s == nil {
		return 0, ""
	}
	cost := fmt.Sprintf("bcrypt cost %d", e.o.bcryptCost)
	if e.o.bcryptCost == bcrypt.MinCost {
		cost += " (bcrypt.MinCost, a fast hash so that bcrypt does not dominate; -bcrypt-cost 10 for a real cost)"
	}
	switch e.o.scenario {
	case "local":
		return s.users, fmt.Sprintf("%d generated users with a TOTP secret and %s; a code is good once per user and time step (RFC 6238 §5.2): one user per flow (at most %d users, then reused a time step later)", s.users, cost, otpMaxUsers)
	case "refresh":
		return s.users, fmt.Sprintf("%d generated users (one per worker, signed in once at set-up) with %s (checked at set-up only)", s.users, cost)
	case "three-hop":
		return s.users, fmt.Sprintf("%d generated users at AS3 with %s", s.users, cost)
	case "app2app":
		return s.users, fmt.Sprintf("%d generated users at AS2 with %s (checked at set-up only, when each worker's bank app signs in)", s.users, cost)
	case "wallet":
		return 0, fmt.Sprintf("none: %d simulated wallets (one per worker) each hold a PID from the simulated issuer; no password; the wallet clock ended %.0f s ahead of real time (the poll intervals passed on it)",
			s.wallets, s.clock.Offset().Seconds())
	}
	return s.users, fmt.Sprintf("%d generated users with %s", s.users, cost)
}

// ---------------------------------------------------------------------
// local: password, then the TOTP challenge.

// otpPool hands out (user, time step) pairs that were never used: fedas
// accepts a user's code for a time step once (authn/totp, RFC 6238 §5.2),
// and a code for step t or t+1 is good while the server is at t or t+1
// (±1 step), so a flow (≤ 10 s) never sees its code go stale. It runs on
// real time: server.Options.Now is one clock per server, and moving it
// 30 s per flow would move it for every flow in flight too, whose codes
// would then fall out of the ±1 step window mid-flow.
type otpPool struct {
	secret string
	names  []string
	mu     sync.Mutex
	next   int
	last   []int64 // the last time step used per user
}

func newOTPPool(n int) (*otpPool, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	p := &otpPool{secret: base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b),
		names: make([]string, n), last: make([]int64, n)}
	for i := range p.names {
		p.names[i] = fmt.Sprintf("bench-otp-%d", i)
		p.last[i] = -1
	}
	return p, nil
}

// take returns a user and the time step of its code.
func (p *otpPool) take(now time.Time) (string, int64, bool) {
	step := now.Unix() / 30
	p.mu.Lock()
	defer p.mu.Unlock()
	for range len(p.names) {
		i := p.next
		p.next = (p.next + 1) % len(p.names)
		for _, k := range []int64{step, step + 1} {
			if k > p.last[i] {
				p.last[i] = k
				return p.names[i], k, true
			}
		}
	}
	return "", 0, false
}

var totpOpts = totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

func (e *env) startTOTP(ctx context.Context, s *scenState, hash string) error {
	n := min(e.o.maxFlows, otpMaxUsers) + 1 + e.o.concurrency
	p, err := newOTPPool(n)
	if err != nil {
		return err
	}
	s.otp, s.users = p, n
	users := usersConfig(p.names, hash)
	for i := range users {
		users[i].TOTPSecret = p.secret
	}
	return e.startAS1(ctx, users)
}

// localTOTP is one local flow with the second factor: the password
// challenge (username and password), then the otp challenge (the code of
// the pool's time step), then the token exchange.
func (w *worker) localTOTP(ctx context.Context) error {
	p := scenOf(w.e).otp
	user, step, ok := p.take(time.Now())
	if !ok {
		return w.fail("otp pool", errors.New("every user's next one-time code is used"))
	}
	code, err := totp.GenerateCodeCustom(p.secret, time.Unix(step*30, 0), totpOpts)
	if err != nil {
		return w.fail("otp code", err)
	}
	sawOTP := false
	ui := func(_ context.Context, r sdk.Response) (url.Values, error) {
		switch {
		case r.Error == "insufficient_authorization" && r.Challenge != nil && r.Challenge.Type == "password":
			return url.Values{"username": {user}, "password": {benchPassword}}, nil
		case r.Error == "insufficient_authorization" && r.Challenge != nil && r.Challenge.Type == "otp":
			sawOTP = true
			return url.Values{"otp": {code}}, nil
		}
		if r.Challenge != nil {
			r.Error += " (" + r.Challenge.Type + " challenge)"
		}
		return nil, &sdk.Err{Response: r}
	}
	ac, pk, err := w.client.Authorize(ctx, url.Values{"scope": {benchScope}}, ui)
	if err != nil {
		return w.fail("authorize", err)
	}
	if !sawOTP {
		return w.fail("as1 native", errors.New("a code without the otp challenge"))
	}
	return w.exchange(ctx, w.client, ac, pk)
}

// exchange redeems AS1's code and wants an access token and an ID token.
func (w *worker) exchange(ctx context.Context, c *sdk.Client, code string, pk sdk.PKCE) error {
	tok, err := c.Exchange(ctx, code, pk)
	if err != nil {
		return w.fail("as1 token", err)
	}
	if tok.AccessToken == "" || tok.IDToken == "" {
		return w.fail("as1 token", errors.New("token response without access_token or id_token"))
	}
	return nil
}

// ---------------------------------------------------------------------
// refresh.

// signInAll signs every worker's user in once with offline_access and
// keeps the refresh token (not measured).
func (e *env) signInAll(ctx context.Context, s *scenState) error {
	meta, err := sdk.Discover(ctx, e.hc, e.as1.url)
	if err != nil {
		return err
	}
	c := &sdk.Client{HTTP: e.hc, ClientID: "demo-app", Meta: meta}
	for _, u := range e.users {
		rt, err := e.signInOffline(ctx, c, u)
		if err != nil {
			return fmt.Errorf("refresh set-up sign-in of %s: %w", u, err)
		}
		s.per[u].refresh = rt
	}
	return nil
}

func (e *env) signInOffline(ctx context.Context, c *sdk.Client, user string) (string, error) {
	code, pk, err := c.Authorize(ctx, url.Values{"scope": {offlineScope}}, (&worker{e: e, user: user}).ui)
	if err != nil {
		return "", err
	}
	tok, err := c.Exchange(ctx, code, pk)
	if err != nil {
		return "", err
	}
	if tok.RefreshToken == "" {
		return "", errors.New("no refresh_token with offline_access")
	}
	return tok.RefreshToken, nil
}

// refreshFlow is one refresh grant (RFC 6749 §6) rotating the worker's
// refresh token (demo-app is public and its tokens are not DPoP-bound,
// so every use rotates: RFC 9700 §4.14.2). After a failed grant the
// worker's token may be gone: its next flow signs in again first.
func (w *worker) refreshFlow(ctx context.Context) error {
	st := scenOf(w.e).per[w.user]
	if st.refresh == "" {
		rt, err := w.e.signInOffline(ctx, w.client, w.user)
		if err != nil {
			return w.fail("re-sign-in", err)
		}
		st.refresh = rt
	}
	tok, err := w.client.Refresh(ctx, st.refresh)
	if err != nil {
		st.refresh = ""
		return w.fail("as1 refresh", err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.RefreshToken == st.refresh {
		st.refresh = ""
		return w.fail("as1 refresh", errors.New("refresh response without an access token or a rotated refresh token"))
	}
	st.refresh = tok.RefreshToken
	return nil
}

// ---------------------------------------------------------------------
// Federation: three-hop and app2app.

// fedKey is a federating AS's private_key_jwt key: the private JWK (its
// downstream's config) and the public JWKS (the downstream's client).
func fedKey(kid string) (priv, pub string, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	jwk := jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}
	privJSON, err := json.Marshal(jwk)
	if err != nil {
		return "", "", err
	}
	pubJSON, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk.Public()}})
	return string(privJSON), string(pubJSON), err
}

// federating is the client a downstream registers for the AS federating
// to it.
func federating(id, jwks string, challenges bool) config.Client {
	return config.Client{ID: id, Name: id + " (federating)", Federating: true, AllowCredentialChallenges: challenges,
		TokenEndpointAuthMethod: "private_key_jwt", JWKS: jwks, SigningAlg: "ES256",
		Scopes: []string{"openid", "profile", "email"}, GrantTypes: []string{"authorization_code"},
		RedirectURIs: []string{"https://" + id + ".example/web-callback"}, NativeCallbackURIs: []string{nativeCB}}
}

// downstream is the federating side's config of a downstream.
func downstream(id, issuer, clientID, key string) config.Downstream {
	return config.Downstream{ID: id, Issuer: issuer, Name: id, ClientID: clientID,
		Auth:   config.DownstreamAuth{Method: "private_key_jwt", Key: key},
		Scopes: map[string]string{"openid": "openid", "email": "email"}}
}

// startAS1Routing starts AS1 routing @bank.example to AS2 after its email
// prompt, as the federated scenario's AS1.
func (e *env) startAS1Routing(ctx context.Context, key string) (err error) {
	e.as1, err = e.start(ctx, "as1", func(c *config.Config) {
		c.Downstreams = []config.Downstream{downstream("bank", e.as2.url, "as1", key)}
		c.Prompt = &config.Prompt{Inputs: []config.PromptInput{{Key: "email", Title: "Email", Hint: "you@example.com"}}}
		c.Routes = []config.Route{{Downstream: "bank", EmailDomains: []string{benchDomain}}}
	}, nil)
	return err
}

// startThreeHop starts AS3 (holds the users; AS2 is its federating client
// with allow_credential_challenges), AS2 (routes its federating client
// as1 on to AS3, with no prompt of its own) and AS1 (routes @bank.example
// to AS2), as server/chain3_test.go does with a password at AS3.
func (e *env) startThreeHop(ctx context.Context, s *scenState, users []config.User) error {
	priv12, pub12, err := fedKey("as1-at-as2")
	if err != nil {
		return err
	}
	priv23, pub23, err := fedKey("as2-at-as3")
	if err != nil {
		return err
	}
	if s.as3, err = e.start(ctx, "as3", func(c *config.Config) {
		c.Users = users
		c.Clients = append(c.Clients, federating("as2", pub23, true))
	}, nil); err != nil {
		return err
	}
	e.down = &downstreamCounter{}
	if e.as2, err = e.start(ctx, "as2", func(c *config.Config) {
		c.Clients = append(c.Clients, federating("as1", pub12, true))
		c.Downstreams = []config.Downstream{downstream("as3", s.as3.url, "as2", priv23)}
		c.Routes = []config.Route{{Downstream: "as3", Clients: []string{"as1"}}}
	}, e.down.wrap); err != nil {
		return err
	}
	return e.startAS1Routing(ctx, priv12)
}

// startApp2App starts AS2 with its bank app (apps[] in the downstream
// role, the app a first-party client of AS2) and AS1 federating to it
// without credential challenges, as `fedas demo app` does; then each
// worker's bank app signs its user in at AS2 (not measured).
func (e *env) startApp2App(ctx context.Context, s *scenState, users []config.User) error {
	priv, pub, err := fedKey("as1-at-as2")
	if err != nil {
		return err
	}
	e.down = &downstreamCounter{}
	if e.as2, err = e.start(ctx, "as2", func(c *config.Config) {
		c.Users = users
		c.Clients = append(c.Clients,
			config.Client{ID: appClientID, Name: "Bank app", FirstParty: true, TokenEndpointAuthMethod: "none",
				Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code", "refresh_token"}},
			federating("as1", pub, false))
		c.Apps = []config.App{{ID: "bank", ClientID: appClientID, DeepLink: appDeepLink, DownstreamRole: true}}
	}, e.down.wrap); err != nil {
		return err
	}
	if err := e.startAS1Routing(ctx, priv); err != nil {
		return err
	}
	meta, err := sdk.Discover(ctx, e.hc, e.as2.url)
	if err != nil {
		return err
	}
	for _, u := range e.users {
		app := &sdk.Client{HTTP: e.hc, ClientID: appClientID, Meta: meta}
		code, pk, err := app.Authorize(ctx, url.Values{"scope": {"openid"}}, (&worker{e: e, user: u}).ui)
		if err != nil {
			return fmt.Errorf("bank app sign-in of %s: %w", u, err)
		}
		tok, err := app.Exchange(ctx, code, pk)
		if err != nil {
			return fmt.Errorf("bank app token of %s: %w", u, err)
		}
		s.per[u].app, s.per[u].appToken = app, tok.AccessToken
	}
	return nil
}

// app2app is one federated flow through the bank app: AS1's email
// prompt, federate to AS2, AS2's redirect_to_app (downstream role, no
// auth_session), the bank app completing the deep link at AS2's app
// completion API for its signed-in user, the device posting the code of
// the native_callback_uri to AS1's response_uri, and AS1's code redeemed.
func (w *worker) app2app(ctx context.Context) error {
	st := scenOf(w.e).per[w.user]
	c := *w.client
	opened := false
	c.OpenApp = func(ctx context.Context, link string) (url.Values, error) {
		opened = true
		_, q, err := st.app.CompleteApp(ctx, link, st.appToken)
		if err != nil {
			return nil, &stepError{"as2 app complete", err}
		}
		return q, nil
	}
	code, pk, err := c.Authorize(ctx, url.Values{"scope": {benchScope}, "native_callback_uri": {nativeCB}}, w.ui)
	if err != nil {
		return w.sfail("authorize", err)
	}
	if !opened {
		return w.fail("as2 native", errors.New("a code without redirect_to_app"))
	}
	return w.exchange(ctx, w.client, code, pk)
}

// ---------------------------------------------------------------------
// wallet: a cross-device presentation.

// walletClock is the wallet scenario's clock (offsetclock.Clock, moved
// with AdvanceTo): real time plus an offset that only grows. The cross-device poll may come no sooner than
// poll_interval after the challenge (RFC 8628 §3.5 slow_down); instead of
// waiting it, a device moves the clock to its challenge's time plus the
// interval. Concurrent devices overlap, so the clock runs ahead of real
// time by about one interval per round of c flows. Everything that
// compares times in the flow uses it: the server (server.Options.Now), its
// memory store, the simulated issuer and wallets, and the devices' DPoP
// proofs (iat, RFC 9449 §4.2); the clock is never behind real time, so
// what keeps real time (fosite's expiries, Redis TTLs) only ever sees
// longer lifetimes.
type walletClock = offsetclock.Clock

// dpopRT signs a DPoP proof (RFC 9449 §4) for every request it sends,
// at the wallet clock: the device's key, held by its transport rather than
// by sdk.Client.DPoP, whose proofs carry the system time.
type dpopRT struct {
	base http.RoundTripper
	key  *dpop.Key
	now  func() time.Time
}

func (t *dpopRT) RoundTrip(r *http.Request) (*http.Response, error) {
	proof, err := t.key.ProofAt(r.Method, r.URL.Scheme+"://"+r.URL.Host+r.URL.Path, "", t.now())
	if err != nil {
		return nil, err
	}
	r = r.Clone(r.Context())
	r.Header.Set("DPoP", proof)
	return t.base.RoundTrip(r)
}

// startWallet starts the simulated issuer (dc/dctest, with its status
// list server), AS1 with the internal OpenID4VP verifier trusting it and
// a rule asking login_hint=wallet for a PID, as `fedas demo wallet` does
// (over plain HTTP on loopback here), and one wallet holding a PID per
// worker.
func (e *env) startWallet(ctx context.Context, s *scenState) error {
	s.clock = &walletClock{}
	iss, err := dctest.NewIssuerFor(func(f func()) { e.cleanups = append(e.cleanups, f) },
		dctest.IssuerOptions{Now: s.clock.Now, StatusSize: e.o.concurrency + 8})
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "fedasbench-wallet-")
	if err != nil {
		return err
	}
	e.cleanups = append(e.cleanups, func() { _ = os.RemoveAll(dir) })
	keyFile, chainFile, vCert, err := verifierKeyPair(dir)
	if err != nil {
		return err
	}
	// The verifier's base URL is https (OpenID4VP response_uri): AS1
	// serves TLS with a certificate of its own, which the devices' and
	// wallets' transport (e.tr, not used yet) trusts.
	tKey, tCert, err := selfSigned("fedasbench as1", true)
	if err != nil {
		return err
	}
	tlsRoots := x509.NewCertPool()
	tlsRoots.AddCert(tCert)
	e.tr.TLSClientConfig = &tls.Config{RootCAs: tlsRoots, MinVersion: tls.VersionTLS12}
	tlsWrap := func(ln net.Listener) net.Listener {
		return tls.NewListener(ln, &tls.Config{MinVersion: tls.VersionTLS12,
			Certificates: []tls.Certificate{{Certificate: [][]byte{tCert.Raw}, PrivateKey: tKey, Leaf: tCert}}})
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{iss.PublicJWK()}})
	if err != nil {
		return err
	}
	statusPrefix := strings.TrimSuffix(iss.StatusURI, "/status/1") + "/"
	edit := func(c *config.Config) {
		c.Issuer = "https://" + c.Listen
		c.DigitalCredentials = config.DigitalCredentials{Enabled: true, SigningKeyFile: keyFile, CertificateChainFile: chainFile,
			PollInterval: time.Second, // the smallest allowed: the least clock drift
			TrustedIssuers: []config.TrustedIssuer{{Issuer: iss.ID, JWKS: string(jwks), VCTValues: []string{iss.VCT}, SubjectClaim: "sub",
				StatusLists: []string{statusPrefix}, Claims: map[string]string{"given_name": "given_name", "family_name": "family_name"}}},
			Queries: map[string]string{"pid": `{"credentials":[{"id":"pid","format":"dc+sd-jwt","meta":{"vct_values":["` + iss.VCT + `"]},` +
				`"claims":[{"path":["given_name"]},{"path":["family_name"]}]}]}`},
			Rules: []config.DCRule{{LoginHint: walletHint, Query: "pid", ACR: "urn:fedas:acr:wallet"}}}
		for i := range c.Clients {
			if c.Clients[i].ID == "demo-app" {
				c.Clients[i].DigitalCredentials = &config.ClientDC{}
			}
		}
	}
	var st storage.Store
	purge := func() {}
	if e.o.redisURL == "" {
		st = memory.NewWithClock(s.clock.Now)
	} else if st, purge, err = e.openStore(ctx, "as1"); err != nil {
		return err
	}
	if e.as1, err = e.startWith(ctx, "as1", edit, tlsWrap, st, purge, func(so *server.Options) {
		so.Now = s.clock.Now
		so.DC = server.DCOptions{HTTP: iss.HTTPClient(), StatusCheckURL: func(u string) error {
			// The simulated issuer serves its status list on loopback,
			// which the production check refuses.
			if u != iss.StatusURI {
				return errors.New("not the simulated issuer's status list")
			}
			return nil
		}}
	}); err != nil {
		_ = st.Close()
		purge()
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(vCert)
	for i, u := range e.users {
		w := dctest.NewWallet()
		w.HTTP, w.Now, w.VerifierRoots = e.hc, s.clock.Now, roots
		if _, err := w.Receive(iss, map[string]any{"sub": fmt.Sprintf("pid-%d", i), "given_name": "Erika", "family_name": u}, dctest.IssueOptions{}); err != nil {
			return fmt.Errorf("wallet set-up: %w", err)
		}
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		key, err := dpop.NewKey(k, jose.ES256)
		if err != nil {
			return err
		}
		s.per[u].wallet = w
		s.per[u].device = &http.Client{Transport: &dpopRT{base: e.trace, key: key, now: s.clock.Now}, Timeout: flowTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	s.wallets = len(e.users)
	return nil
}

// walletFlow is one cross-device sign-in with a credential: the initial
// request (login_hint=wallet, openid4vp_flow_type=cross_device, DPoP) →
// the presentation challenge with the wallet URL (the QR code); the
// simulated wallet on the other device fetches the signed request and
// posts its encrypted presentation to the verifier; the device, after the
// poll interval (on the wallet clock), polls with its auth_session and
// gets the code, and redeems it (DPoP-bound tokens).
func (w *worker) walletFlow(ctx context.Context) error {
	s := scenOf(w.e)
	st := s.per[w.user]
	c := &sdk.Client{HTTP: st.device, ClientID: "demo-app", Meta: w.e.meta}
	var shown time.Time
	polls := 0
	c.Wallet = &sdk.WalletHooks{
		ShowQR: func(ctx context.Context, walletURL string) error {
			shown = s.clock.Now()
			ans, err := st.wallet.Present(ctx, walletURL)
			if err != nil {
				return &stepError{"wallet present", err}
			}
			if ans.Status != http.StatusOK {
				return &stepError{"wallet post", fmt.Errorf("the verifier answered the wallet HTTP %d", ans.Status)}
			}
			return nil
		},
		Sleep: func(_ context.Context, d time.Duration) error {
			polls++
			if polls == 1 {
				s.clock.AdvanceTo(shown.Add(d))
			} else {
				// After slow_down: a whole interval from now.
				s.clock.AdvanceTo(s.clock.Now().Add(d))
			}
			return nil
		},
	}
	noUI := func(_ context.Context, r sdk.Response) (url.Values, error) {
		if r.Challenge != nil {
			r.Error += " (" + r.Challenge.Type + " challenge)"
		}
		return nil, &sdk.Err{Response: r}
	}
	code, pk, err := c.Authorize(ctx, url.Values{"scope": {"openid profile"}, "login_hint": {walletHint},
		"openid4vp_flow_type": {sdk.FlowCrossDevice}}, noUI)
	if err != nil {
		return w.sfail("authorize", err)
	}
	if shown.IsZero() {
		return w.fail("as1 native", errors.New("a code without the presentation"))
	}
	if polls != 1 {
		return w.fail("as1 poll", fmt.Errorf("%d polls, want 1", polls))
	}
	tok, err := c.Exchange(ctx, code, pk)
	if err != nil {
		return w.fail("as1 token", err)
	}
	if tok.AccessToken == "" || tok.IDToken == "" || !strings.EqualFold(tok.TokenType, "DPoP") {
		return w.fail("as1 token", fmt.Errorf("token response: type %q, access token %t, ID token %t", tok.TokenType, tok.AccessToken != "", tok.IDToken != ""))
	}
	return nil
}

// verifierKeyPair writes the verifier's request-signing key and its
// self-signed certificate (client_id x509_hash:…, OpenID4VP §5.9.3) as
// the PEM files digital_credentials reads.
func verifierKeyPair(dir string) (keyFile, chainFile string, cert *x509.Certificate, err error) {
	k, cert, err := selfSigned("fedasbench verifier", false)
	if err != nil {
		return "", "", nil, err
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return "", "", nil, err
	}
	keyFile, chainFile = filepath.Join(dir, "verifier.key"), filepath.Join(dir, "verifier.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(chainFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		return "", "", nil, err
	}
	return keyFile, chainFile, cert, nil
}

// selfSigned makes a P-256 key and a self-signed certificate for
// 127.0.0.1 (for TLS with serverAuth, else for signing).
func selfSigned(cn string, serverAuth bool) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	return loopbackcert.New(cn, serverAuth, 7*24*time.Hour)
}

// threeHop is signIn through AS1 → AS2 → AS3, naming AS3's endpoints in
// failures: the email at AS1's prompt, two federates, the password at
// AS3, AS3's code to AS2's response_uri, AS2's code to AS1's, and AS1's
// code redeemed.
func (w *worker) threeHop(ctx context.Context) error {
	code, pk, err := w.client.Authorize(ctx, url.Values{"scope": {benchScope}, "native_callback_uri": {nativeCB}}, w.ui)
	if err != nil {
		return w.sfail("authorize", err)
	}
	return w.exchange(ctx, w.client, code, pk)
}
