package server

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/ory/fosite"
	"github.com/redis/go-redis/v9"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/netguard"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/reach/deliver"
	"github.com/fedas/fedas/reach/wake"
	"github.com/fedas/fedas/reach/webhook"
	"github.com/fedas/fedas/storage"
)

// This file is the reach core's place in the server (docs/reach.md): what
// every reach front end shares — the stores, the wake-up hub, the
// Reacher, the access-token check of the reach endpoints, the task record
// and the one place a task's end is announced. The front ends live in
// their own files: reach_app.go (devices, inbox, task answers),
// reach_native.go (cross-device redirect_to_app), uq.go (User
// Questioning) and reach_relay.go (the interaction relay).

// ReachOptions are test seams of the reach core; production leaves them
// zero.
type ReachOptions struct {
	// Recheck replaces the wake hub's 5 s re-check ticker (tests send on
	// it instead of letting time pass).
	Recheck <-chan time.Time
	// HTTP is the client of webhook and UQ notification deliveries; nil
	// means netguard's (https to public addresses only; loopback with
	// dev.allow_loopback_http).
	HTTP *http.Client
	// NoRedisHub uses the in-process hub even on a Redis store (tests of
	// one instance that stop Redis).
	NoRedisHub bool
	// Hub, when set, is the wake hub (and stays the caller's: it is not
	// closed by Shutdown): instances in one process sharing a memory store
	// share an in-process hub too, as instances on one Redis share its
	// channel.
	Hub wake.Hub
}

// reachState is the reach core of a Server; nil without reach.enabled.
type reachState struct {
	cfg     config.Reach
	store   storage.ReachStore
	rate    storage.RateLimiter
	hub     wake.Hub
	reacher *deliver.Reacher
	httpc   *http.Client
	// key signs what the reach front ends sign (webhook wake-ups, User
	// Statement Tokens): this instance's first signing key, published at
	// jwks_uri.
	key *ecdsa.PrivateKey
	kid string
	// ended holds each front end's reaction to a task ending (taskEnded).
	ended map[reach.Kind]func(context.Context, reach.Task)
	// sharedHub: hub is the caller's (ReachOptions.Hub), not closed here.
	sharedHub bool
	// uq is the User Questioning front end's state (uq.go).
	uq *uqState
}

// initReach builds the reach core from reach (docs/config.md): the
// store's ReachStore, LiveCounter and RateLimiter, a Redis wake hub on a
// Redis store (one subscription per instance) or an in-process one, and
// the channels.
func (s *Server) initReach(o Options) (*reachState, error) {
	rc := o.Config.Reach.WithDefaults()
	if !o.Config.Reach.Enabled {
		return nil, nil
	}
	rs, ok := o.Store.(storage.ReachStore)
	if !ok {
		return nil, errors.New("server: reach needs a store with storage.ReachStore")
	}
	live, ok1 := o.Store.(storage.LiveCounter)
	rate, ok2 := o.Store.(storage.RateLimiter)
	if !ok1 || !ok2 {
		return nil, errors.New("server: reach needs a store with storage.LiveCounter and storage.RateLimiter")
	}
	st := &reachState{cfg: rc, store: rs, rate: rate, ended: map[reach.Kind]func(context.Context, reach.Task){}}
	st.key, st.kid = s.keys.keys[0].Key, s.keys.keys[0].KID
	st.httpc = o.Reach.HTTP
	guard := netguard.Options{AllowLoopback: o.Config.Dev.AllowLoopbackHTTP}
	if st.httpc == nil {
		st.httpc = netguard.Client(guard)
	}
	hubOpts := wake.Options{Tick: o.Reach.Recheck}
	if o.Reach.Hub != nil {
		st.hub, st.sharedHub = o.Reach.Hub, true
	} else if rcl, ok := o.Store.(interface{ Client() redis.UniversalClient }); ok && !o.Reach.NoRedisHub {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		prefix := ""
		if p, ok := o.Store.(interface{ Prefix() string }); ok {
			prefix = p.Prefix()
		}
		h, err := wake.NewRedis(ctx, rcl.Client(), wake.RedisOptions{Options: hubOpts, Prefix: prefix, Logger: s.log})
		if err != nil {
			return nil, fmt.Errorf("reach: %w", err)
		}
		st.hub = h
	} else {
		st.hub = wake.NewMemory(hubOpts)
	}
	var hook *deliver.Webhook
	if rc.WebhookOn() {
		sender, err := webhook.New(webhook.Config{Issuer: o.Config.Issuer, Key: st.key, KeyID: st.kid, Guard: guard, Client: o.Reach.HTTP, Now: s.now})
		if err != nil {
			return nil, fmt.Errorf("reach: webhook: %w", err)
		}
		hook = &deliver.Webhook{Sender: sender}
	} else {
		hook = &deliver.Webhook{}
	}
	st.reacher = &deliver.Reacher{Store: rs, Channels: deliver.NewChannels(&deliver.Inbox{Store: rs, Hub: st.hub}, hook),
		Quota: deliver.Quota{Live: live, Rate: rate, MaxLive: rc.MaxLiveTasks, PerUser: rc.TasksPerUser, Window: rc.TasksWindow},
		Now:   s.now}
	return st, nil
}

// close stops the hub (its subscription and waiters).
func (r *reachState) close() {
	if r != nil && r.uq != nil {
		r.uq.close()
	}
	if r != nil && r.hub != nil && !r.sharedHub {
		_ = r.hub.Close()
	}
}

// reachRoutes mounts every reach front end when reach is enabled;
// without it none of their paths exists (404 as any unknown path).
func (s *Server) reachRoutes(e *echo.Echo, limit func(string) echo.MiddlewareFunc) {
	if s.reach == nil {
		return
	}
	s.reachAppRoutes(e, limit)
	s.reachNativeRoutes(e, limit)
	s.uqRoutes(e, limit)
	s.relayRoutes(e, limit)
}

// taskEnded is the one place a task's end (or any transition a poller
// waits for) is announced: the task topic is notified on every instance,
// the user's live-task slot is freed once the task is terminal, and the
// task kind's front end reacts (a UQ push notification). Call it after
// the transition is stored.
func (s *Server) taskEnded(ctx context.Context, t reach.Task) {
	_ = s.reach.hub.Notify(ctx, reach.TaskTopic(t.ID))
	if t.State.Live() {
		return
	}
	_ = s.reach.reacher.Release(ctx, &t)
	if f := s.reach.ended[t.Kind]; f != nil {
		f(ctx, t)
	}
}

// waitTask holds a long poll on task id for at most hold: it returns the
// task as soon as done reports true for it (or at once if it already
// does), and the task as last read when hold passes. A hub outage is
// storage.ErrUnavailable (503).
func (s *Server) waitTask(ctx context.Context, id string, hold time.Duration, done func(reach.Task) bool) (reach.Task, error) {
	var last reach.Task
	check := func(ctx context.Context) (bool, error) {
		t, err := s.reach.store.Task(ctx, id)
		if err != nil {
			return false, err
		}
		last = t
		return done(t), nil
	}
	if hold <= 0 {
		_, err := check(ctx)
		return last, err
	}
	wctx, cancel := context.WithTimeout(ctx, hold)
	defer cancel()
	err := s.reach.hub.Wait(wctx, reach.TaskTopic(id), check)
	switch {
	case err == nil:
		return last, nil
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil, errors.Is(err, wake.ErrClosed):
		if last.ID == "" {
			_, err = check(ctx)
			return last, err
		}
		return last, nil
	}
	return last, err
}

// taskRecord is a task's front-end record, kept in reach.Task.Result
// (the core keeps it opaque): what the app is shown, the front end's own
// state, and the user's answer.
type taskRecord struct {
	Display taskDisplay `json:"d"`
	// Front is the front end's own state (the auth_session a cross-device
	// sign-in completes, a UQ question's flow and notification token
	// digest, an interaction's max_wait); never shown to the app.
	Front json.RawMessage `json:"f,omitempty"`
	// Answer is the user's answer, set with the transition that records
	// it.
	Answer *taskAnswer `json:"a,omitempty"`
}

// taskDisplay is what the app shows the user before they answer
// (docs/protocol.md "Reach"): who asks, from where, and what.
type taskDisplay struct {
	ClientID   string `json:"client_id"`
	ClientName string `json:"client_name"`
	// Initiator describes the device that started a cross-device
	// sign-in (RFC 10027 §6.1.1: show the user where the request comes
	// from).
	Initiator *taskInitiator `json:"initiator,omitempty"`
	// Question and Statements: a User Questioning question, exactly as
	// the client sent them.
	Question   string   `json:"question,omitempty"`
	Statements []string `json:"statements,omitempty"`
	// WishedACR and WishedAMR are what the question asks of the app's
	// local user verification (UQ -10 §4.1 wished_acr, wished_amr): an
	// answer whose acr (config Reach.ACRFor) is weaker is refused.
	WishedACR string   `json:"wished_acr,omitempty"`
	WishedAMR []string `json:"wished_amr,omitempty"`
	// Interaction is a relayed interaction (url shown, never opened).
	Interaction *taskInteraction `json:"interaction,omitempty"`
}

// taskInitiator is the initiating device as we saw it.
type taskInitiator struct {
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	Location  string `json:"location,omitempty"`
}

// taskInteraction is a relayed interaction (AAuth interaction endpoint).
type taskInteraction struct {
	URL         string `json:"url"`
	Code        string `json:"code,omitempty"`
	Description string `json:"description,omitempty"`
}

// taskAnswer is the user's answer as the app gave it and we checked it.
type taskAnswer struct {
	// Decision is approve, deny or answer (a UQ statement).
	Decision  string   `json:"decision"`
	Statement string   `json:"statement,omitempty"`
	AMR       []string `json:"amr,omitempty"`
	ACR       string   `json:"acr,omitempty"`
	// User is the app's signed-in user (username, else subject); Device
	// the device that answered.
	User   string `json:"user"`
	Device string `json:"device"`
	At     int64  `json:"at"`
	// Reason says why a task failed or was denied without the user's
	// choice (other_user, binding).
	Reason string `json:"reason,omitempty"`
}

// recordOf decodes a task's record (empty for a task without one).
func recordOf(t reach.Task) (taskRecord, error) {
	var r taskRecord
	if len(t.Result) == 0 {
		return r, nil
	}
	if err := json.Unmarshal(t.Result, &r); err != nil {
		return r, fmt.Errorf("reach: task record: %w", err)
	}
	return r, nil
}

// encode stores r as t's record.
func (r taskRecord) encode(t *reach.Task) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if len(b) > reach.MaxResultLen {
		return fmt.Errorf("%w: task record too long", reach.ErrInvalid)
	}
	t.Result = b
	return nil
}

// reachCaller is who called a reach endpoint, from its access token.
type reachCaller struct {
	ClientID string
	// User is the token's user: the username, else the subject; "" for a
	// token of the client itself (client credentials).
	User     string
	Subject  string
	Username string
	Scopes   fosite.Arguments
	// JKT is the DPoP key a DPoP-bound token is bound to (its proof was
	// checked); "" for a bearer token.
	JKT      string
	AMR      []string
	ACR      string
	AuthTime time.Time
}

// reachToken validates the access token of a reach endpoint as a
// resource server would (protectedToken: RFC 6750 §2.1, RFC 9449 §7) and
// requires scope (RFC 6750 §3.1: 403 insufficient_scope). dpopOnly also
// refuses a bearer token (docs/decisions.md Q27: the app's device and
// relay endpoints take DPoP-bound tokens only).
func (s *Server) reachToken(c echo.Context, scope string, dpopOnly bool) (*reachCaller, error) {
	ar, ds, jkt, err := s.protectedToken(c, c.Request().URL.Path)
	if err != nil {
		return nil, err
	}
	if dpopOnly && jkt == "" {
		c.Response().Header().Set("WWW-Authenticate", `DPoP realm="fedas", error="invalid_token", algs="`+dpopAlgs()+`"`)
		return nil, newError(http.StatusUnauthorized, "invalid_token", "This endpoint takes a DPoP-bound access token only.")
	}
	if scope != "" && !ar.GetGrantedScopes().Has(scope) {
		c.Response().Header().Set("WWW-Authenticate", `DPoP realm="fedas", error="insufficient_scope", scope="`+scope+`"`)
		return nil, newError(http.StatusForbidden, "insufficient_scope", "The access token lacks the "+scope+" scope.")
	}
	u := appUser(ar.GetClient().GetID(), ds)
	rc := &reachCaller{ClientID: u.ClientID, Subject: u.Subject, Username: u.Username, Scopes: ar.GetGrantedScopes(),
		JKT: jkt, AMR: u.AMR, ACR: u.ACR, AuthTime: u.AuthTime}
	rc.User = u.Username
	if rc.User == "" {
		rc.User = u.Subject
	}
	return rc, nil
}

// reachAllow spends one unit of a reach budget (a client's task
// creations, a task's polls) kept in the store, so that it holds across
// instances. It answers the wait when refused; a storage failure lets
// the request go on (as rate limits do: docs/security.md "Rate limits").
func (s *Server) reachAllow(ctx context.Context, key string, l storage.Limit) (bool, time.Duration) {
	d, err := s.reach.rate.Allow(ctx, key, l, s.now())
	if err != nil {
		s.obs.metrics.RateLimitUnavailable()
		return true, 0
	}
	return d.Allowed, d.RetryAfter
}

// reachMetadata publishes the reach front ends' endpoints (RFC 8414 §2
// extension members; docs/protocol.md "Reach").
func (s *Server) reachMetadata(m map[string]any) {
	s.reachAppMetadata(m)
	s.reachNativeMetadata(m)
	s.uqMetadata(m)
	s.relayMetadata(m)
}

// clientName is the client's registered name, else its id: what the app
// shows as the party asking (docs/reach.md).
func clientName(snap *policy.Snapshot, id string) string {
	if snap != nil && snap.Config != nil {
		for _, c := range snap.Config.Clients {
			if c.ID == id && c.Name != "" {
				return c.Name
			}
		}
	}
	return id
}
