package wake

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Channel is the pub/sub channel name after RedisOptions.Prefix. One
// channel for every topic (the topic is the payload) keeps the hub at one
// SUBSCRIBE per instance whatever the number of topics; a plain channel,
// not a sharded one, because on a Cluster PUBLISH reaches the subscriber
// whichever node it holds (docs/reach.md).
const Channel = "reach:wake"

// Defaults of the Redis hub's failure detection.
const (
	// DefaultProbe is how long the subscriber waits in silence before it
	// pings its connection, and then for the answer: a hung Redis
	// (SIGSTOP, a stuck network) is detected within two probes.
	DefaultProbe = time.Second
	// DefaultNotifyTimeout bounds one PUBLISH.
	DefaultNotifyTimeout = 2 * time.Second
	// replaceAfter missed probes, the subscription connection is dropped
	// and a new one dialled (a half-open TCP connection never errors).
	replaceAfter = 3
	minBackoff   = 50 * time.Millisecond
	maxBackoff   = time.Second
)

// RedisOptions configures NewRedis.
type RedisOptions struct {
	Options
	// Prefix is the key namespace (redisstore Options.Prefix); the channel
	// is Prefix + Channel, so instances sharing a Redis but not a
	// namespace do not wake each other.
	Prefix string
	// Probe overrides DefaultProbe.
	Probe time.Duration
	// NotifyTimeout overrides DefaultNotifyTimeout.
	NotifyTimeout time.Duration
	// Logger receives up/down transitions (never topics). Nil: no logs.
	Logger *zap.Logger

	onConnError func() // test seam, see Redis.onConnError
}

// Redis is the scale-out Hub: one subscription per instance fans out to
// the local waiters, Notify publishes to every instance (package doc).
type Redis struct {
	client        redis.UniversalClient
	channel       string
	probe         time.Duration
	notifyTimeout time.Duration
	log           *zap.Logger
	f             *fanout

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	// onConnError is a test seam (export_test.go): it runs in the
	// subscriber goroutine on a broken connection, before the redial.
	onConnError func()

	mu  sync.Mutex
	sub *redis.PubSub
	up  chan struct{} // closed while the subscription is live
}

var _ Hub = (*Redis)(nil)

// NewRedis starts a Redis hub on client and returns once its subscription
// is confirmed, so a Notify sent after it returns reaches this instance.
// If that does not happen before ctx ends it returns an error matching
// ErrUnavailable. Close stops the hub; client stays the caller's.
func NewRedis(ctx context.Context, client redis.UniversalClient, o RedisOptions) (*Redis, error) {
	if client == nil {
		return nil, errors.New("wake: nil Redis client")
	}
	h := &Redis{
		client:        client,
		channel:       o.Prefix + Channel,
		probe:         o.Probe,
		notifyTimeout: o.NotifyTimeout,
		log:           o.Logger,
		onConnError:   o.onConnError,
		f:             newFanout(true),
		done:          make(chan struct{}),
		up:            make(chan struct{}),
	}
	if h.probe <= 0 {
		h.probe = DefaultProbe
	}
	if h.notifyTimeout <= 0 {
		h.notifyTimeout = DefaultNotifyTimeout
	}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	h.log = h.log.Named("wake")
	h.ctx, h.cancel = context.WithCancel(context.Background())
	tick, stopTick := o.ticker()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); h.subscribe() }()
	go func() {
		defer wg.Done()
		defer stopTick()
		recheckLoop(h.ctx.Done(), tick, h.f)
	}()
	go func() { wg.Wait(); close(h.done) }()
	if err := h.WaitUp(ctx); err != nil {
		_ = h.Close()
		return nil, fmt.Errorf("wake: subscribe %s: %w: %w", h.channel, ErrUnavailable, err)
	}
	return h, nil
}

// WaitUp returns once the subscription is live, or ctx's error.
func (h *Redis) WaitUp(ctx context.Context) error {
	h.mu.Lock()
	up := h.up
	h.mu.Unlock()
	select {
	case <-up:
		return nil
	case <-h.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Up reports whether the subscription is live; while it is not, Wait
// fails with ErrUnavailable.
func (h *Redis) Up() bool { return !h.f.isDown() }

// Waiting is the number of parked waiters on this instance.
func (h *Redis) Waiting() int { return h.f.waiting() }

// Wait implements Hub.
func (h *Redis) Wait(ctx context.Context, topic string, check CheckFunc) error {
	return h.f.wait(ctx, topic, check)
}

// Notify implements Hub: this instance's waiters are nudged at once, the
// others through one PUBLISH. A failed PUBLISH matches ErrUnavailable.
func (h *Redis) Notify(ctx context.Context, topic string) error {
	if err := validTopic(topic); err != nil {
		return err
	}
	if h.ctx.Err() != nil {
		return ErrClosed
	}
	h.f.notify(topic)
	ctx, cancel := context.WithTimeout(ctx, h.notifyTimeout)
	defer cancel()
	if err := h.client.Publish(ctx, h.channel, topic).Err(); err != nil {
		// The driver's message carries no command arguments.
		return fmt.Errorf("wake: notify: %w: %w", ErrUnavailable, err)
	}
	return nil
}

// Close implements Hub.
func (h *Redis) Close() error {
	h.once.Do(func() {
		h.f.close()
		h.cancel()
		h.mu.Lock()
		if h.sub != nil {
			_ = h.sub.Close()
		}
		h.mu.Unlock()
		<-h.done
	})
	return nil
}

func (h *Redis) setUp() {
	if !h.f.setDown(false) {
		return
	}
	h.mu.Lock()
	close(h.up)
	h.mu.Unlock()
	h.log.Info("wake: subscription live")
}

func (h *Redis) setDown(reason string) {
	if !h.f.setDown(true) {
		return
	}
	h.mu.Lock()
	h.up = make(chan struct{})
	h.mu.Unlock()
	h.log.Warn("wake: subscription down; waiters released", zap.String("reason", reason))
}

// newSub (re)creates the subscription. go-redis dials lazily and
// resubscribes by itself after a broken connection; the confirmation
// arrives as a *redis.Subscription in the receive loop.
func (h *Redis) newSub() *redis.PubSub {
	ctx, cancel := context.WithTimeout(h.ctx, h.probe)
	defer cancel()
	sub := h.client.Subscribe(ctx, h.channel)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx.Err() != nil {
		_ = sub.Close()
		return nil
	}
	h.sub = sub
	return sub
}

func (h *Redis) replaceSub(old *redis.PubSub) *redis.PubSub {
	_ = old.Close()
	return h.newSub()
}

// subscribe is the instance's one subscriber: it fans messages out and
// watches the connection's health (package doc, "Failure").
func (h *Redis) subscribe() {
	sub := h.newSub()
	if sub == nil {
		return
	}
	defer func() {
		// sub is nil when a replacement found the hub closing (newSub):
		// the old one is closed already.
		if sub != nil {
			_ = sub.Close()
		}
	}()
	var (
		pinged  bool
		missed  int
		backoff = minBackoff
	)
	for {
		msg, err := sub.ReceiveTimeout(h.ctx, h.probe)
		if h.ctx.Err() != nil {
			return
		}
		switch {
		case err != nil && isTimeout(err) && !pinged:
			// Silence: ask the connection whether it is still there.
			if perr := sub.Ping(h.ctx); perr != nil {
				h.setDown("ping failed")
				continue
			}
			pinged = true
			continue
		case err != nil && isTimeout(err):
			missed++
			h.setDown("no answer to ping")
			if missed >= replaceAfter {
				if sub = h.replaceSub(sub); sub == nil {
					return
				}
				pinged, missed = false, 0
			}
			continue
		case err != nil:
			// A broken connection (a restart, a killed client). go-redis
			// has already tried to redial; a ping tells whether that
			// worked. Until the new subscription is confirmed this
			// instance is deaf: what is published meanwhile is lost, and
			// the re-check on confirmation makes up for it.
			if h.onConnError != nil {
				h.onConnError()
			}
			pinged, missed = false, 0
			perr := sub.Ping(h.ctx)
			if perr == nil {
				pinged = true
				continue
			}
			h.setDown("connection error")
			t := time.NewTimer(backoff)
			select {
			case <-h.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
		pinged, missed = false, 0
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == h.channel {
				// A (re)subscription: whatever was published while
				// this instance was deaf is lost, so the waiters that
				// lived through the gap re-check now rather than at the
				// next tick. (While down there are no waiters; the
				// nudge comes first so a wait started after NewRedis
				// returns is never nudged by its own start-up.)
				h.f.nudgeAll()
				h.setUp()
			}
		case *redis.Pong:
			h.setUp()
		case *redis.Message:
			if m.Channel == h.channel {
				h.f.notify(m.Payload)
			}
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
