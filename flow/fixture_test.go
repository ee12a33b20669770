package flow_test

// Fixtures of the engine tests: a policy built from a config written in
// Go, a fake code issuer and push store that record what the engine asks
// of them, memory storage, a fake clock, and mock downstreams
// (federation/fedtest) for federation outcomes. No HTTP reaches the
// engine: each test calls flow.Engine.Handle with a typed flow.Request, as
// the server would.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/fedas/fedas/authn/password"
	authtotp "github.com/fedas/fedas/authn/totp"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/federation/fedtest"
	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/memory"
)

const (
	issuer      = "https://as.example"
	responseURI = issuer + "/response/"
	webCallback = issuer + "/federation/callback"
	appCB       = "https://app.example/cb"
	appWeb      = "https://app.example/web"
	totpSecret  = "JBSWY3DPEHPK3PXP"
	deepLinkURL = "https://wallet.example/link"
)

// --- clock -----------------------------------------------------------

// clock is a fake clock the tests advance. It starts at the real time
// because memory.Store and the mock downstream judge expiry by time.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// --- code issuer -----------------------------------------------------

// codes is a fake CodeIssuer recording every Grant.
type codes struct {
	mu     sync.Mutex
	grants []flow.Grant
}

func (c *codes) IssueCode(_ context.Context, g flow.Grant) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.grants = append(c.grants, g)
	return fmt.Sprintf("code-%d", len(c.grants)), nil
}

func (c *codes) all() []flow.Grant {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]flow.Grant(nil), c.grants...)
}

// grant returns the grant behind a code the fake issued.
func (c *codes) grant(tb testing.TB, code string) flow.Grant {
	tb.Helper()
	var n int
	_, err := fmt.Sscanf(code, "code-%d", &n)
	require.NoError(tb, err, "not one of our codes: %q", code)
	all := c.all()
	require.LessOrEqual(tb, n, len(all))
	return all[n-1]
}

// --- push store ------------------------------------------------------

// pushes is a fake PushStore: an in-memory map whose Consume removes
// atomically under the mutex. It records Consume calls.
type pushes struct {
	mu       sync.Mutex
	m        map[string]flow.Pushed
	n        int
	consumed []string
}

func newPushes() *pushes { return &pushes{m: map[string]flow.Pushed{}} }

func (p *pushes) Push(_ context.Context, in flow.Pushed) (string, int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	ru := fmt.Sprintf("%skind%d-%d", flow.RequestURIPrefix, in.Kind, p.n)
	in.Form = cloneForm(in.Form)
	p.m[ru] = in
	return ru, 60, nil
}

func (p *pushes) Peek(_ context.Context, ru string) (flow.Pushed, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	got, ok := p.m[ru]
	if !ok {
		return flow.Pushed{}, fmt.Errorf("push %q: %w", ru, storage.ErrNotFound)
	}
	got.Form = cloneForm(got.Form)
	return got, nil
}

func (p *pushes) Consume(_ context.Context, ru string) (flow.Pushed, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.consumed = append(p.consumed, ru)
	got, ok := p.m[ru]
	if !ok {
		return flow.Pushed{}, fmt.Errorf("push %q: %w", ru, storage.ErrNotFound)
	}
	delete(p.m, ru)
	return got, nil
}

// par stores a client's pushed request (what our PAR endpoint would).
func (p *pushes) par(clientID string, form url.Values) string {
	f := cloneForm(form)
	f.Set("client_id", clientID)
	if f.Get("response_type") == "" {
		f.Set("response_type", "code")
	}
	ru, _, _ := p.Push(context.Background(), flow.Pushed{Kind: flow.PushClient, ClientID: clientID, Form: f})
	return ru
}

// consumes is how many times Consume was called for ru.
func (p *pushes) consumes(ru string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.consumed {
		if c == ru {
			n++
		}
	}
	return n
}

func (p *pushes) consumeCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.consumed)
}

func (p *pushes) has(ru string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.m[ru]
	return ok
}

func (p *pushes) get(tb testing.TB, ru string) flow.Pushed {
	tb.Helper()
	got, err := p.Peek(context.Background(), ru)
	require.NoError(tb, err)
	return got
}

func cloneForm(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// --- clocked session store ---------------------------------------------

// clockedSessions wraps memory.Store so that sessions expire by the fake
// clock too (memory.Store judges expiry by time.Now only).
type clockedSessions struct {
	*memory.Store
	clock *clock
}

func (c clockedSessions) AuthSession(ctx context.Context, id string) (storage.AuthSession, error) {
	s, err := c.Store.AuthSession(ctx, id)
	if err == nil && !c.clock.Now().Before(s.ExpiresAt) {
		return storage.AuthSession{}, storage.ErrNotFound
	}
	return s, err
}

// --- configuration -----------------------------------------------------

var hashes = sync.OnceValue(func() map[string]string {
	out := map[string]string{}
	for _, u := range []string{"alice", "bob", "carol"} {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		out[u] = string(h)
	}
	return out
})

// baseConfig is a local-only configuration.
func baseConfig() *config.Config {
	h := hashes()
	pub := func(id string, fp bool, redirect ...string) config.Client {
		return config.Client{ID: id, FirstParty: fp, TokenEndpointAuthMethod: "none", Scopes: []string{"openid", "profile", "email"},
			GrantTypes: []string{"authorization_code"}, RedirectURIs: redirect, NativeCallbackURIs: []string{appCB}}
	}
	conf := func(id string, fp, fed bool, redirect ...string) config.Client {
		return config.Client{ID: id, FirstParty: fp, Federating: fed, TokenEndpointAuthMethod: "client_secret_basic", SecretSHA256: config.SecretDigest(id + "-secret"),
			Scopes: []string{"openid", "profile", "email"}, GrantTypes: []string{"authorization_code"}, RedirectURIs: redirect, NativeCallbackURIs: []string{appCB}}
	}
	return &config.Config{
		Issuer: issuer,
		Dev:    config.Dev{AllowLoopbackHTTP: true},
		Scopes: []string{"openid", "profile", "email"},
		Limits: config.Limits{MaxFailures: 3},
		Clients: []config.Client{
			pub("app", true, appWeb),
			pub("multi", true, "https://m.example/a", "https://m.example/b"),
			pub("third", false, "https://third.example/cb"),
			pub("ourapp", true),
			pub("routed", true, appWeb),
			conf("conf", true, false, "https://conf.example/cb"),
			conf("fed", false, true, "https://up.example/cb"),
		},
		Users: []config.User{
			{Username: "alice", Subject: "sub-alice", PasswordHash: h["alice"]},
			{Username: "bob", Subject: "sub-bob", PasswordHash: h["bob"], TOTPSecret: totpSecret},
			{Username: "carol", Subject: "sub-carol", PasswordHash: h["carol"]},
		},
	}
}

// addDownstream configures mock m as downstream id.
func addDownstream(c *config.Config, id string, m *fedtest.Mock, browser bool) {
	c.Downstreams = append(c.Downstreams, config.Downstream{ID: id, Issuer: m.URL, Name: id, ClientID: "fedas-at-" + id,
		Auth: config.DownstreamAuth{Method: "client_secret_basic", Secret: "fedas-secret"}, Scopes: map[string]string{"profile": "profile"},
		Claims: []string{"email"}, Timeout: 3 * time.Second, BrowserFederation: browser})
}

// withApp configures our app "wallet" (its own client "ourapp").
func withApp(edit func(*config.App)) func(*config.Config) {
	return func(c *config.Config) {
		a := config.App{ID: "wallet", ClientID: "ourapp", DeepLink: deepLinkURL, Clients: []string{"app"}}
		if edit != nil {
			edit(&a)
		}
		c.Apps = append(c.Apps, a)
	}
}

// orgPrompt is a prompt with an org option and an email input.
func orgPrompt(c *config.Config) {
	c.Prompt = &config.Prompt{MaxAttempts: 2, Options: []config.PromptOption{{Key: "org", Title: "Organisation", Values: []config.PromptValue{
		{Value: "acme", Name: "Acme"}, {Value: "here", Name: "Here"}, {Value: "wallet", Name: "Wallet"},
	}}}, Inputs: []config.PromptInput{{Key: "email", Title: "Email"}}}
	c.Routes = append(c.Routes,
		config.Route{Option: &config.RouteOption{Key: "org", Value: "here"}, Local: true},
	)
}

// --- fixture ----------------------------------------------------------

type fixture struct {
	tb       testing.TB
	clock    *clock
	cfg      *config.Config
	snap     *policy.Snapshot
	eng      *flow.Engine
	opts     flow.Options
	codes    *codes
	pushes   *pushes
	sessions *memory.Store
}

type fxOption func(*flow.Options)

func withSteps(steps ...flow.Step) fxOption { return func(o *flow.Options) { o.Steps = steps } }

// newFixture builds an engine over a config that edits change.
func newFixture(tb testing.TB, edit func(*config.Config), opts ...fxOption) *fixture {
	tb.Helper()
	cfg := baseConfig()
	if edit != nil {
		edit(cfg)
	}
	require.NoError(tb, cfg.Validate())
	snap, err := policy.Build(cfg, policy.BuildOptions{})
	require.NoError(tb, err)
	mem := memory.New()
	tb.Cleanup(func() { _ = mem.Close() })
	f := &fixture{tb: tb, clock: newClock(), cfg: cfg, snap: snap, codes: &codes{}, pushes: newPushes(), sessions: mem}
	f.opts = flow.Options{
		Sessions:    clockedSessions{mem, f.clock},
		Replay:      mem,
		Codes:       f.codes,
		Pushes:      f.pushes,
		Steps:       []flow.Step{password.New(), authtotp.Step{}},
		TTL:         10 * time.Minute,
		MaxFailures: cfg.Limits.MaxFailures,
		Now:         f.clock.Now,
		Issuer:      issuer,
		ResponseURI: func(id string) string { return responseURI + id },
		WebCallback: webCallback,
		StateKey:    []byte("0123456789abcdef0123456789abcdef"),
	}
	for _, o := range opts {
		o(&f.opts)
	}
	f.eng = flow.New(f.opts)
	return f
}

// reqMod adjusts a request before it is handled.
type reqMod func(*flow.Request)

// key sets the DPoP key thumbprint of the request's proof.
func key(jkt string) reqMod { return func(r *flow.Request) { r.DPoPJKT = jkt } }

// authed marks the request's client as authenticated.
func authed() reqMod { return func(r *flow.Request) { r.Authenticated = true } }

// asClient makes the request come from client id (nil for "").
func (f *fixture) asClient(id string) reqMod {
	return func(r *flow.Request) {
		r.Client = nil
		if id != "" {
			c, ok := f.snap.Client(id)
			require.True(f.tb, ok, id)
			r.Client = c
		}
	}
}

func hop(id string) reqMod { return func(r *flow.Request) { r.HopID = id } }

func appUser(u flow.AppUser) reqMod { return func(r *flow.Request) { r.AppUser = &u } }

// handle runs one request. On the native and response channels the
// client is the one client_id names, as the server resolves it.
func (f *fixture) handle(ch flow.Channel, form url.Values, mods ...reqMod) flow.Outcome {
	f.tb.Helper()
	out, err := f.try(ch, form, mods...)
	require.NoError(f.tb, err)
	require.NotNil(f.tb, out)
	return out
}

func (f *fixture) try(ch flow.Channel, form url.Values, mods ...reqMod) (flow.Outcome, error) {
	r := flow.Request{Channel: ch, Policy: f.snap, Form: form}
	if id := form.Get("client_id"); id != "" && (ch == flow.ChannelNative || ch == flow.ChannelResponse) {
		r.Client, _ = f.snap.Client(id)
	}
	for _, m := range mods {
		m(&r)
	}
	return f.eng.Handle(context.Background(), r)
}

func (f *fixture) native(form url.Values, mods ...reqMod) flow.Outcome {
	f.tb.Helper()
	return f.handle(flow.ChannelNative, form, mods...)
}

func (f *fixture) browser(form url.Values, mods ...reqMod) flow.Outcome {
	f.tb.Helper()
	return f.handle(flow.ChannelBrowser, form, mods...)
}

// vals builds a form from key, value pairs.
func vals(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// with returns form plus pairs (an empty value deletes the key).
func with(form url.Values, kv ...string) url.Values {
	v := cloneForm(form)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			v.Del(kv[i])
		} else {
			v.Set(kv[i], kv[i+1])
		}
	}
	return v
}

// pkce returns an S256 challenge for name.
func pkce(name string) string {
	sum := sha256.Sum256([]byte("verifier-" + name))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// jkt returns a JWK SHA-256 thumbprint shaped value for name.
func jkt(name string) string {
	sum := sha256.Sum256([]byte("key-" + name))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// initial is an initial request of client.
func initial(client string, kv ...string) url.Values {
	return with(vals("client_id", client, "response_type", "code", "scope", "openid profile", "state", "st-"+client,
		"code_challenge", pkce(client), "code_challenge_method", "S256"), kv...)
}

func (f *fixture) otp() string {
	f.tb.Helper()
	c, err := totp.GenerateCode(totpSecret, f.clock.Now())
	require.NoError(f.tb, err)
	return c
}

// as asserts the outcome's type.
func as[T flow.Outcome](tb testing.TB, out flow.Outcome) T {
	tb.Helper()
	got, ok := out.(T)
	require.True(tb, ok, "outcome %T %+v, want %T", out, out, *new(T))
	return got
}

// refusal asserts a Refusal with code.
func refusal(tb testing.TB, out flow.Outcome, code string) flow.Refusal {
	tb.Helper()
	r := as[flow.Refusal](tb, out)
	require.Equal(tb, code, r.Code, "%+v", r)
	return r
}

// signIn runs password (and otp for bob) to our code.
func (f *fixture) signIn(tb testing.TB, ch flow.Channel, value, user string, mods ...reqMod) flow.Outcome {
	tb.Helper()
	out := f.handle(ch, vals("auth_session", value, "username", user, "password", user+"-pw"), mods...)
	if c, ok := out.(flow.Challenge); ok && c.Spec.Type == "otp" {
		out = f.handle(ch, vals("auth_session", c.AuthSession, "otp", f.otp()), mods...)
	}
	return out
}

// --- downstream helpers -------------------------------------------------

// device plays the device at a downstream's native endpoint: it posts the
// federate body and returns the downstream's code.
func device(tb testing.TB, fe flow.Federate) string {
	tb.Helper()
	body, err := url.ParseQuery(fe.FederationBody)
	require.NoError(tb, err)
	resp, err := http.PostForm(fe.FederationURI, body)
	require.NoError(tb, err)
	defer resp.Body.Close()
	var out struct {
		Code string `json:"authorization_code"`
	}
	require.NoError(tb, json.NewDecoder(resp.Body).Decode(&out))
	require.Equal(tb, http.StatusOK, resp.StatusCode)
	require.NotEmpty(tb, out.Code)
	return out.Code
}

func hopID(tb testing.TB, fe flow.Federate) string {
	tb.Helper()
	require.True(tb, strings.HasPrefix(fe.ResponseURI, responseURI), fe.ResponseURI)
	return strings.TrimPrefix(fe.ResponseURI, responseURI)
}

// browserGet plays a browser at a URL outside the engine and returns
// where it is redirected to.
func browserGet(tb testing.TB, u string) *url.URL {
	tb.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(u)
	require.NoError(tb, err)
	resp.Body.Close()
	require.Equal(tb, http.StatusSeeOther, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(tb, err)
	return loc
}
