package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// Defaults for Options. They keep a hung or unreachable Redis from
// holding a request for long (docs/redis.md rule 4): the caller answers 503
// quickly instead of piling up goroutines and pool waiters.
const (
	// DefaultPrefix namespaces fedas's keys so that Redis can be shared.
	DefaultPrefix = "fedas:"
	// DefaultDialTimeout bounds connecting to a node.
	DefaultDialTimeout = time.Second
	// DefaultReadTimeout bounds waiting for one reply: a hung server
	// (SIGSTOP, a long script) fails the call rather than the request.
	DefaultReadTimeout = 500 * time.Millisecond
	// DefaultWriteTimeout bounds sending one command.
	DefaultWriteTimeout = 500 * time.Millisecond
	// DefaultPoolTimeout bounds waiting for a free pooled connection, so
	// an exhausted pool sheds load instead of queueing it.
	DefaultPoolTimeout = time.Second
	// DefaultOpTimeout bounds one storage call, retries included.
	DefaultOpTimeout = time.Second
	// DefaultClusterStateReloadInterval replaces go-redis's 60 s, after
	// which clients kept failing for most of a minute after a failover
	// (docs/redis.md rule 4).
	DefaultClusterStateReloadInterval = 2 * time.Second
)

// Options selects and tunes the Redis deployment. Exactly one of URL and
// Addrs is set:
//   - URL: one node, as redis://[user:pass@]host:port/db or rediss://…
//     (with Cluster, a cluster seed in go-redis's ParseClusterURL form);
//   - Addrs with MasterName: the Sentinel addresses of a Sentinel group;
//   - Addrs with Cluster: seed nodes of a Redis Cluster;
//   - Addrs alone: exactly one node.
//
// Zero durations take the defaults above.
type Options struct {
	// Addrs are host:port addresses: one node, cluster seeds or sentinels.
	Addrs []string
	// URL is a redis:// or rediss:// URL (TLS, credentials, DB).
	URL string
	// Cluster selects Redis Cluster.
	Cluster bool
	// MasterName selects Sentinel; Addrs are then the sentinels. Sentinel
	// authentication is not configured: Username and Password are the
	// data node's.
	MasterName string
	// Username and Password authenticate to the data nodes; when set they
	// override credentials in URL.
	Username string
	Password string
	// DB selects the database on a single node or Sentinel master; when
	// non-zero it overrides the URL's. Redis Cluster has only database 0.
	DB int
	// Prefix namespaces every key (default "fedas:"); it must not contain
	// '{' or '}', which would change the keys' hash tags.
	Prefix string

	// DialTimeout, ReadTimeout, WriteTimeout and PoolTimeout are the
	// client's network timeouts; see the Default constants.
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	PoolTimeout  time.Duration
	// OpTimeout bounds each storage call, retries included, unless the
	// caller's context ends sooner (docs/redis.md rule 4: every request's Redis
	// work has a deadline).
	OpTimeout time.Duration
	// ClusterStateReloadInterval is how often a cluster client refreshes
	// its slot map without being prompted by an error.
	ClusterStateReloadInterval time.Duration

	// AllowEvictionPolicy lets New accept a maxmemory-policy other than
	// noeviction. Replay protection is then not guaranteed: evicted
	// markers let replays through (docs/redis.md rule 5).
	AllowEvictionPolicy bool

	// TracerProvider, when set, traces the commands issued within a traced
	// request (tracing.InstrumentRedis: never their arguments); nil or
	// no-op means no tracing hook.
	TracerProvider trace.TracerProvider
	// Hooks are added to the client before its first command (metrics:
	// command latency and errors, storage lost/recovered).
	Hooks []redis.Hook
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.DialTimeout, DefaultDialTimeout)
	def(&o.ReadTimeout, DefaultReadTimeout)
	def(&o.WriteTimeout, DefaultWriteTimeout)
	def(&o.PoolTimeout, DefaultPoolTimeout)
	def(&o.OpTimeout, DefaultOpTimeout)
	def(&o.ClusterStateReloadInterval, DefaultClusterStateReloadInterval)
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	return o
}

// validate reports every problem at once, so an operator fixes the
// configuration in one pass.
func (o Options) validate() error {
	var errs []error
	if (o.URL == "") == (len(o.Addrs) == 0) {
		errs = append(errs, errors.New("set exactly one of URL and Addrs"))
	}
	if o.Cluster && o.MasterName != "" {
		errs = append(errs, errors.New("options Cluster and MasterName exclude each other"))
	}
	if o.URL != "" && o.MasterName != "" {
		errs = append(errs, errors.New("sentinel mode (MasterName) takes the sentinels in Addrs, not URL"))
	}
	if len(o.Addrs) > 1 && !o.Cluster && o.MasterName == "" {
		errs = append(errs, errors.New("several Addrs need Cluster or MasterName"))
	}
	if o.Cluster && o.DB != 0 {
		errs = append(errs, errors.New("a Redis Cluster has only DB 0"))
	}
	if err := checkPrefix(o.Prefix); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("redisstore: options: %w", err)
	}
	return nil
}

func checkPrefix(p string) error {
	if strings.ContainsAny(p, "{}") {
		return errors.New("prefix must not contain '{' or '}': it would change the keys' hash tags")
	}
	return nil
}

// newClient builds the client for o. Replica reads (ReadOnly,
// RouteByLatency, RouteRandomly) stay off: a replica can still show a code
// its primary has just consumed (docs/redis.md rule 3).
func (o Options) newClient() (redis.UniversalClient, error) {
	switch {
	case o.Cluster:
		co := &redis.ClusterOptions{Addrs: o.Addrs}
		if o.URL != "" {
			p, err := redis.ParseClusterURL(o.URL)
			if err != nil {
				return nil, fmt.Errorf("redisstore: URL: %w", err)
			}
			co = p
		}
		// The cluster client handles MOVED/ASK itself and does not retry
		// other errors by default; keep it that way.
		co.ReadOnly, co.RouteByLatency, co.RouteRandomly = false, false, false
		co.Username = or(o.Username, co.Username)
		co.Password = or(o.Password, co.Password)
		co.DialTimeout, co.ReadTimeout, co.WriteTimeout, co.PoolTimeout = o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout
		co.ContextTimeoutEnabled = true
		co.DialerRetries = 1
		co.ClusterStateReloadInterval = o.ClusterStateReloadInterval
		return redis.NewClusterClient(co), nil
	case o.MasterName != "":
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:            o.MasterName,
			SentinelAddrs:         o.Addrs,
			Username:              o.Username,
			Password:              o.Password,
			DB:                    o.DB,
			DialTimeout:           o.DialTimeout,
			ReadTimeout:           o.ReadTimeout,
			WriteTimeout:          o.WriteTimeout,
			PoolTimeout:           o.PoolTimeout,
			ContextTimeoutEnabled: true,
			MaxRetries:            1,
			DialerRetries:         1,
		}), nil
	default:
		so := &redis.Options{}
		if o.URL != "" {
			p, err := redis.ParseURL(o.URL)
			if err != nil {
				return nil, fmt.Errorf("redisstore: URL: %w", err)
			}
			so = p
		} else {
			so.Addr = o.Addrs[0]
		}
		so.Username = or(o.Username, so.Username)
		so.Password = or(o.Password, so.Password)
		if o.DB != 0 {
			so.DB = o.DB
		}
		so.DialTimeout, so.ReadTimeout, so.WriteTimeout, so.PoolTimeout = o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout
		so.ContextTimeoutEnabled = true
		// One retry covers a pooled connection the server closed; more
		// would only stretch the time to a 503. A retried single-use step
		// that had in fact run fails closed (ErrConflict/ErrNotFound).
		so.MaxRetries = 1
		so.DialerRetries = 1
		return redis.NewClient(so), nil
	}
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// New connects to Redis as o describes, checks that it answers PING and
// that every master's maxmemory-policy is noeviction (unless
// o.AllowEvictionPolicy), and returns a Store that owns the client.
func New(ctx context.Context, o Options, logger *zap.Logger) (*Store, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	client, err := o.newClient()
	if err != nil {
		return nil, err
	}
	for _, h := range o.Hooks {
		client.AddHook(h)
	}
	s, err := newStore(client, o, logger)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	if err := s.Ping(ctx); err != nil {
		_ = client.Close()
		return nil, err
	}
	if err := s.CheckEvictionPolicy(ctx); err != nil {
		if !o.AllowEvictionPolicy || !errors.Is(err, ErrEvictionPolicy) {
			_ = client.Close()
			return nil, err
		}
		s.log.Warn("maxmemory-policy is not noeviction and AllowEvictionPolicy is set: replay protection is not guaranteed under memory pressure",
			zap.Error(err))
	}
	mode := "single"
	switch {
	case o.Cluster:
		mode = "cluster"
	case o.MasterName != "":
		mode = "sentinel"
	}
	s.log.Info("connected to redis", zap.String("mode", mode), zap.String("prefix", o.Prefix))
	return s, nil
}

// NewFromClient wraps an existing client (tests and benchmarks that need
// their own hooks or options) with the default timeouts. It does no I/O:
// call Ping and CheckEvictionPolicy to get New's checks. The Store owns
// client from now on and closes it in Close. An empty prefix means
// DefaultPrefix.
func NewFromClient(client redis.UniversalClient, prefix string, logger *zap.Logger) (*Store, error) {
	o := Options{Prefix: prefix}.withDefaults()
	if err := checkPrefix(o.Prefix); err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	return newStore(client, o, logger)
}
