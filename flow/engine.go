package flow

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/storage"
)

// Options configure an Engine.
type Options struct {
	Sessions storage.AuthSessionStore
	Replay   storage.ReplayStore
	// Codes mints authorization codes; only mint calls it.
	Codes CodeIssuer
	// Pushes stores and consumes pushed requests; only take consumes.
	Pushes PushStore
	// Steps is the local sign-in chain (password, then TOTP, …).
	Steps []Step
	// ChainFor, when set, chooses the chain for a client and its
	// validated request (a presentation required for login_hint=wallet,
	// an acr_values value or a RAR type: docs/protocol.md "Digital
	// credentials").
	ChainFor    func(c *policy.Client, req map[string]string) []Step
	TTL         time.Duration
	MaxFailures int
	Logger      *zap.Logger
	// Now is the clock.
	Now func() time.Time
	// Issuer is our issuer identifier (the iss of what we return).
	Issuer string
	// ResponseURI builds a hop's response_uri.
	ResponseURI func(hopID string) string
	// WebCallback is our redirect_uri at downstreams (docs/decisions.md Q7,
	// Q19).
	WebCallback string
	// StateKey (32 bytes) seals the state we send downstream; instances
	// sharing a store must share it. Nil means a random key.
	StateKey []byte
	// Events receives the security events the engine decides (sign-ins,
	// federation hops); nil drops them.
	Events *events.Emitter
	// Observe, when set, is told every answer of Handle (outcome or
	// error) for metrics and the access log.
	Observe func(ctx context.Context, r Request, out Outcome, err error)
	// Live caps the sessions alive at once (caps.go); zero means none.
	Live LiveCaps
	// MaxHops caps the pushes to downstreams one session may make
	// (DefaultMaxHops when not positive).
	MaxHops int
	// Reach is the reach core for the cross-device redirect_to_app
	// (flow/reach.go); nil when reach is off.
	Reach CrossDevice
}

// Engine runs auth sessions: the one place where the native protocol is
// decided (docs/architecture.md).
type Engine struct {
	o        Options
	aead     cipher.AEAD
	liveKey  []byte
	liveMACs sync.Pool // of hash.Hash: HMACs keyed by liveKey (caps.go)
}

// New builds an Engine.
func New(o Options) *Engine {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = 5
	}
	if o.MaxHops <= 0 {
		o.MaxHops = DefaultMaxHops
	}
	e := &Engine{o: o, liveKey: o.Live.Key}
	if len(e.liveKey) == 0 {
		e.liveKey = make([]byte, 32)
		if _, err := rand.Read(e.liveKey); err != nil {
			panic(err)
		}
	}
	key := o.StateKey
	if len(key) != 32 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			panic(err)
		}
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	if e.aead, err = cipher.NewGCM(block); err != nil {
		panic(err)
	}
	return e
}

// Handle is the engine's one entry point: one request in, one outcome
// out. A Go error is a real failure (storage.ErrUnavailable, a broken
// dependency); every protocol answer, errors included, is an Outcome.
func (e *Engine) Handle(ctx context.Context, r Request) (Outcome, error) {
	if r.Policy == nil {
		return nil, errors.New("flow: request without a policy snapshot")
	}
	ctx, slot := e.withSlot(ctx, r)
	out, err := e.dispatch(ctx, r)
	e.dropSlot(ctx, slot)
	var rf *errRefused
	if errors.As(err, &rf) {
		out, err = rf.r, nil
	}
	if e.o.Observe != nil {
		e.o.Observe(ctx, r, out, err)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (e *Engine) dispatch(ctx context.Context, r Request) (Outcome, error) {
	switch r.Channel {
	case ChannelNative:
		if v := r.Form.Get("auth_session"); v != "" {
			return e.followUp(ctx, r, v)
		}
		if r.Form.Get("request_uri") != "" {
			return e.startPushed(ctx, r)
		}
		return e.startInitial(ctx, r)
	case ChannelResponse:
		return e.respond(ctx, r)
	case ChannelBrowser:
		if v := r.Form.Get("auth_session"); v != "" {
			return e.followUp(ctx, r, v)
		}
		return e.startBrowser(ctx, r)
	case ChannelAppComplete:
		return e.appComplete(ctx, r)
	case ChannelWebCallback:
		return e.webCallback(ctx, r)
	case ChannelReach:
		return e.reachStart(ctx, r)
	}
	return nil, errors.New("flow: unknown channel")
}

// starter is a validated request about to begin a session.
type starter struct {
	snap    *policy.Snapshot
	client  *policy.Client
	req     map[string]string
	jkt     string
	channel Channel
	// clientAuth: a confidential client authenticated directly.
	clientAuth bool
	// cred: the client may get password/OTP challenges (docs/decisions.md
	// Q10).
	cred bool
}

func (st starter) session(e *Engine, stage string) *session {
	s := e.newSession(st.channel, st.client.GetID(), st.req, st.jkt, stage)
	s.x.Cred, s.x.ClientAuth = st.cred, st.clientAuth
	return s
}

// startInitial handles an initial request at the native endpoint
// (FiPA-04 §5.1): a client that authenticates at the token endpoint
// authenticates here too (FiPA-04 §4.1), and only first-party clients
// may use the endpoint (FiPA-04 §1.1).
func (e *Engine) startInitial(ctx context.Context, r Request) (Outcome, error) {
	c := r.Client
	switch {
	case c == nil:
		return invalidRequest("The client_id parameter is required."), nil
	case !c.IsPublic() && !r.Authenticated:
		return invalidClient("This client must authenticate."), nil
	case !c.FirstParty:
		return unauthorizedClient(), nil
	}
	req, rf := parseInitial(c, r.Form)
	if rf != nil {
		return *rf, nil
	}
	// dpop_jkt names a key at PAR time (RFC 9449 §10.1); a native request
	// proves its key with the DPoP header instead.
	delete(req, "dpop_jkt")
	if req[pkceByDPoP] != "" {
		delete(req, pkceByDPoP)
		if r.DPoPJKT == "" {
			return invalidRequest("Send PKCE (code_challenge) or a DPoP proof: the code must be bound to one of them."), nil
		}
	}
	return e.start(ctx, starter{snap: r.Policy, client: c, req: req, jkt: r.DPoPJKT, channel: ChannelNative,
		clientAuth: !c.IsPublic(), cred: c.FirstParty || c.AllowCredentialChallenges})
}

// startPushed starts a session in the downstream role (docs/decisions.md
// Q3; federation draft §4.3.1): a client pushed the request to our PAR
// endpoint with client authentication, and the device presents client_id
// + request_uri, which authenticates the client.
func (e *Engine) startPushed(ctx context.Context, r Request) (Outcome, error) {
	ru, cid := r.Form.Get("request_uri"), r.Form.Get("client_id")
	check := useNative
	check.consume = false
	p, err := e.take(ctx, r.Policy, ru, cid, check)
	if err != nil {
		return nil, err
	}
	// Everything that can refuse the request is decided before it is
	// consumed: a refused use never burns another client's request.
	c, _ := r.Policy.Client(p.ClientID)
	req, rf := parseInitial(c, p.Form)
	if rf == nil {
		rf = withDevicePath(req, r.Form)
	}
	if rf != nil {
		return *rf, nil
	}
	if req[pkceByDPoP] != "" {
		// Only a native request can bind its code to DPoP instead.
		return invalidRequest("PKCE is required: send code_challenge and code_challenge_method=S256."), nil
	}
	if req["dpop_jkt"] != "" && r.DPoPJKT != "" && req["dpop_jkt"] != r.DPoPJKT {
		return invalidDPoP(), nil
	}
	// Over a live-session cap the push is not consumed (Q28).
	if err := e.reserve(ctx, c.GetID()); err != nil {
		return nil, err
	}
	if _, err := e.consume(ctx, ru, p); err != nil {
		return nil, err
	}
	return e.start(ctx, starter{snap: r.Policy, client: c, req: req, jkt: r.DPoPJKT, channel: ChannelNative,
		cred: c.FirstParty || c.AllowCredentialChallenges})
}

// start chooses the first answer for a validated request: our app, a
// configured route, a prompt, or local sign-in.
func (e *Engine) start(ctx context.Context, st starter) (Outcome, error) {
	if app, ok := e.appFor(ctx, st); ok {
		return e.startApp(ctx, st, app)
	}
	if f := st.snap.Fed; f != nil {
		if t, ok := f.RouteClient(st.client.GetID()); ok {
			return e.startRouted(ctx, st, t)
		}
		if f.HasPrompt() {
			return e.startPrompt(ctx, st)
		}
		// No route names the client and nothing is asked: default_route
		// decides (local, deny or a downstream).
		return e.startRouted(ctx, st, f.DefaultRoute())
	}
	return e.startLocal(ctx, st, "")
}

// followUp continues a session with a follow-up request on its channel
// (FiPA-04 §5.3).
func (e *Engine) followUp(ctx context.Context, r Request, value string) (Outcome, error) {
	s, err := e.load(ctx, value)
	if err != nil {
		return nil, err
	}
	if err := e.checkCaller(r, s); err != nil {
		return nil, err
	}
	switch s.Stage {
	case StageRoute:
		return e.answerPrompt(ctx, r, s)
	case StageApp:
		return e.appFollowUp(ctx, r, s)
	case StageReached:
		// Approved on the user's other device (flow/reach.go).
		return e.complete(ctx, r.Policy, s)
	case StageReturned:
		// Our app's leg, or our own browser federation (Q19), returns to
		// the endpoint that answered; a downstream's fallback (Q7) to the
		// hop's response_uri.
		if s.x.Hop == nil || s.x.WebDS != "" {
			return e.returned(ctx, r, s)
		}
	case StageFederated, StageFederating, StageRedeeming, StageCompleting:
	default:
		return e.continueLocal(ctx, r, s)
	}
	// A federated session continues only at its response_uri.
	return invalidSession(), nil
}

// clientStillRegistered: a reload may have removed the session's client
// or its native_callback_uri; nothing is issued for either then.
func clientStillRegistered(snap *policy.Snapshot, s *session) bool {
	c, ok := snap.Client(s.ClientID)
	if !ok {
		return false
	}
	cb := s.Request["native_callback_uri"]
	return cb == "" || contains(c.NativeCallbackURIs, cb)
}

// checkCaller applies the bindings of a session to a request that
// continues it: its channel, its client (FiPA-04 §5.1: a client_id must
// match), client authentication when the session began with it (FiPA-04
// §4.1), and its DPoP key (FiPA-04 §9.6.1). A refusal changes nothing.
func (e *Engine) checkCaller(r Request, s *session) error {
	ch := r.Channel
	if ch == ChannelResponse || ch == ChannelReach {
		ch = ChannelNative
	}
	if s.x.Channel != ch {
		return refused(invalidSession())
	}
	if !clientStillRegistered(r.Policy, s) {
		return refused(invalidClient("The client of this sign-in is no longer registered."))
	}
	if r.Client != nil && r.Client.GetID() != s.ClientID {
		return refused(invalidRequest("The client_id does not match the auth_session."))
	}
	if s.x.ClientAuth && (!r.Authenticated || r.Client == nil) {
		return refused(invalidClient("This client must authenticate on every request of the session."))
	}
	if s.DPoPJKT != "" && subtle.ConstantTimeCompare([]byte(s.DPoPJKT), []byte(r.DPoPJKT)) != 1 {
		return refused(invalidDPoP())
	}
	return nil
}
