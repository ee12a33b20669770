// Package policy holds fedas's runtime policy: the clients, users, apps,
// downstreams, routes and prompts built from configuration into one
// immutable Snapshot. A Source publishes snapshots behind an atomic
// pointer; every request reads the snapshot current when it starts and
// uses only that one (docs/operations.md "Reloading the configuration"), so a
// reload never mixes two policies inside one request.
package policy

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/federation"
)

// User is a local account.
type User struct {
	Username     string
	Subject      string
	PasswordHash string
	TOTPSecret   string
	// Apps lists our apps the user has enrolled.
	Apps []string
}

// UserStore finds local accounts. The config-backed store is the first
// implementation; a directory or database can replace it.
type UserStore interface {
	// User returns the account named username, or ok=false. err is a
	// failure of the store, never "unknown user".
	User(ctx context.Context, username string) (u User, ok bool, err error)
}

// App is one of our own native apps (config apps[]): the target of
// redirect_to_app (federation draft §4.3.2).
type App struct {
	ID string
	// ClientID is the client the app itself signs in with: only its access
	// tokens may complete this app's deep links.
	ClientID       string
	DeepLink       string
	DownstreamRole bool
	Clients        []string
	EnrolledOnly   bool
}

// Snapshot is one immutable runtime policy. Nothing in it may be mutated
// after Build.
type Snapshot struct {
	// Version counts snapshots published by a Source (1 for the first).
	Version uint64
	// PolicyVersion is the policy store version it was built from (0 when
	// built from a config file alone; docs/admin.md "Versions").
	PolicyVersion uint64
	// Built is when the snapshot was built.
	Built time.Time
	// Config is the validated file-format configuration it was built from.
	Config  *config.Config
	clients map[string]*Client
	users   configUsers
	// Apps are our apps, in configuration order (first match wins).
	Apps []App
	// Fed routes and federates; nil when no downstream, prompt or route is
	// configured (local sign-in only).
	Fed *federation.Federator
}

// Client returns a registered client.
func (s *Snapshot) Client(id string) (*Client, bool) {
	c, ok := s.clients[id]
	return c, ok
}

// Users returns the snapshot's user store.
func (s *Snapshot) Users() UserStore { return s.users }

// App returns our app with this id.
func (s *Snapshot) App(id string) (App, bool) {
	for _, a := range s.Apps {
		if a.ID == id {
			return a, true
		}
	}
	return App{}, false
}

// AppForClient returns the app whose own client is clientID.
func (s *Snapshot) AppForClient(clientID string) (App, bool) {
	for _, a := range s.Apps {
		if a.ClientID == clientID {
			return a, true
		}
	}
	return App{}, false
}

// BuildOptions are what a snapshot needs besides the configuration.
type BuildOptions struct {
	Logger *zap.Logger
	// DPoPSeed (32 bytes) derives our DPoP key for downstream codes
	// (federation.New).
	DPoPSeed []byte
	// Now is the clock of the federation checks (nil: time.Now).
	Now func() time.Time
	// DownstreamRoots are the roots downstreams' TLS certificates must
	// chain to (federation.NewWithRoots); nil: the system roots.
	DownstreamRoots *x509.CertPool
}

// Build builds a snapshot from cfg, which the caller has validated
// (config.Load and config.Validate report every problem at once).
func Build(cfg *config.Config, o BuildOptions) (*Snapshot, error) {
	if cfg == nil {
		return nil, errors.New("policy: no configuration")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	clients, err := buildClients(cfg.Clients)
	if err != nil {
		return nil, err
	}
	allowRAR(clients, cfg)
	s := &Snapshot{Built: time.Now(), Config: cfg, clients: clients, users: configUsers{byName: map[string]User{}, cost: bcrypt.DefaultCost}}
	maxCost := 0
	for _, u := range cfg.Users {
		if c, err := bcrypt.Cost([]byte(u.PasswordHash)); err == nil && c > maxCost {
			maxCost = c
		}
		s.users.byName[u.Username] = User{Username: u.Username, Subject: u.Subject, PasswordHash: u.PasswordHash, TOTPSecret: u.TOTPSecret, Apps: append([]string(nil), u.Apps...)}
	}
	if maxCost > 0 {
		s.users.cost = maxCost
	}
	for _, a := range cfg.Apps {
		s.Apps = append(s.Apps, App{ID: a.ID, ClientID: a.ClientID, DeepLink: a.DeepLink, DownstreamRole: a.DownstreamRole, Clients: append([]string(nil), a.Clients...), EnrolledOnly: a.EnrolledOnly})
	}
	if len(cfg.Downstreams) > 0 || cfg.Prompt != nil || len(cfg.Routes) > 0 {
		if s.Fed, err = federation.NewWithRoots(cfg, o.Logger.Named("federation"), o.DPoPSeed, o.DownstreamRoots); err != nil {
			return nil, fmt.Errorf("federation: %w", err)
		}
		s.Fed.Now = o.Now
	}
	return s, nil
}

// configUsers is the config-backed UserStore.
type configUsers struct {
	byName map[string]User
	cost   int
}

// User implements UserStore.
func (m configUsers) User(_ context.Context, username string) (User, bool, error) {
	u, ok := m.byName[username]
	return u, ok, nil
}

// HashCost is the highest bcrypt cost among the users' password hashes
// (HashCoster): an unknown user's check must cost as much as a known
// one's, or the response time tells which usernames exist.
func (m configUsers) HashCost() int { return m.cost }

// HashCoster is an optional UserStore capability: the bcrypt cost to
// spend on a check for an unknown user.
type HashCoster interface{ HashCost() int }

// Source holds the current snapshot. The zero value holds none; Publish
// one before serving.
type Source struct {
	cur     atomic.Pointer[Snapshot]
	version atomic.Uint64
}

// NewSource returns a Source holding s.
func NewSource(s *Snapshot) *Source {
	src := &Source{}
	src.Publish(s)
	return src
}

// Current returns the snapshot to use for a request that starts now.
func (src *Source) Current() *Snapshot { return src.cur.Load() }

// Publish makes s the current snapshot for every request that starts
// after it returns; requests in flight keep the one they read.
func (src *Source) Publish(s *Snapshot) {
	s.Version = src.version.Add(1)
	src.cur.Store(s)
}

type ctxKey struct{}

// WithSnapshot returns ctx carrying s, so that code reached through
// libraries (fosite's storage callbacks) reads the request's snapshot.
func WithSnapshot(ctx context.Context, s *Snapshot) context.Context {
	return context.WithValue(ctx, ctxKey{}, s)
}

// FromContext returns the snapshot WithSnapshot stored, or nil.
func FromContext(ctx context.Context) *Snapshot {
	s, _ := ctx.Value(ctxKey{}).(*Snapshot)
	return s
}
