package wake

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fedas/fedas/storage"
)

// DefaultRecheck is the period of the re-check that makes up for lost
// pub/sub messages (docs/reach.md: "re-checks Redis every 5 s").
const DefaultRecheck = 5 * time.Second

// MaxTopicLen bounds a topic; topics are ids, never free text.
const MaxTopicLen = 256

var (
	// ErrUnavailable is returned by Wait and Notify when the backend
	// (Redis) is down or hung. It wraps storage.ErrUnavailable, so the
	// caller's existing mapping answers 503 temporarily_unavailable with
	// Retry-After (docs/decisions.md; docs/reach.md R14).
	ErrUnavailable = fmt.Errorf("wake: backend unavailable: %w", storage.ErrUnavailable)
	// ErrClosed is returned by Wait and Notify once the hub is closed
	// (the instance is shutting down): the caller ends the long poll as it
	// would on a timeout.
	ErrClosed = errors.New("wake: hub closed")
	// ErrInvalidTopic is returned for an empty topic or one longer than
	// MaxTopicLen: a programming error, never user input.
	ErrInvalidTopic = errors.New("wake: invalid topic")
)

// CheckFunc reports whether what a waiter waits for has happened. It is
// called once when the wait starts (after the waiter is registered, so a
// Notify racing with the start is never lost), after every notification
// of the topic and at every re-check. Its context is cancelled when the
// wait ends for any reason, including the hub going down.
type CheckFunc func(ctx context.Context) (bool, error)

// Hub parks long-poll waiters by topic and wakes them on Notify.
type Hub interface {
	// Wait returns nil as soon as check reports true. It returns check's
	// error if check fails, ctx.Err() when ctx ends first (the long poll's
	// time is up: the caller answers "nothing yet"), ErrUnavailable when
	// the backend goes down (503) and ErrClosed when the hub closes.
	Wait(ctx context.Context, topic string, check CheckFunc) error
	// Notify wakes every waiter of topic on every instance sharing the
	// backend. It is a hint, not a delivery: the state it announces must
	// already be stored, since waiters learn it by re-running their check
	// (and may miss the hint, on Redis, until the next re-check).
	Notify(ctx context.Context, topic string) error
	// Close releases every waiter with ErrClosed and stops the hub's
	// goroutines. It does not close a Redis client it was given.
	Close() error
}

// Options configures a hub. The zero value is the production setting.
type Options struct {
	// Recheck is the re-check period; zero means DefaultRecheck.
	Recheck time.Duration
	// Tick, when set, replaces the re-check ticker: every value received
	// re-runs every waiter's check. Tests send on it instead of letting
	// time pass.
	Tick <-chan time.Time
}

func (o Options) ticker() (<-chan time.Time, func()) {
	if o.Tick != nil {
		return o.Tick, func() {}
	}
	d := o.Recheck
	if d <= 0 {
		d = DefaultRecheck
	}
	t := time.NewTicker(d)
	return t.C, t.Stop
}

func validTopic(topic string) error {
	if topic == "" || len(topic) > MaxTopicLen {
		return ErrInvalidTopic
	}
	return nil
}

// waiter is one parked Wait. wake holds at most one pending nudge: nudges
// coalesce, since the check reads the current state anyway.
type waiter struct {
	topic  string
	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func (w *waiter) nudge() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// fanout is the local half shared by both hubs: waiters by topic, the
// down and closed states, and the Wait loop.
type fanout struct {
	mu     sync.Mutex
	topics map[string]map[*waiter]struct{}
	n      int
	down   bool
	closed bool
}

func newFanout(down bool) *fanout {
	return &fanout{topics: make(map[string]map[*waiter]struct{}), down: down}
}

func (f *fanout) add(ctx context.Context, topic string) (*waiter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed:
		return nil, ErrClosed
	case f.down:
		return nil, ErrUnavailable
	}
	wctx, cancel := context.WithCancelCause(ctx)
	w := &waiter{topic: topic, wake: make(chan struct{}, 1), ctx: wctx, cancel: cancel}
	set := f.topics[topic]
	if set == nil {
		set = make(map[*waiter]struct{})
		f.topics[topic] = set
	}
	set[w] = struct{}{}
	f.n++
	return w, nil
}

func (f *fanout) remove(w *waiter) {
	w.cancel(nil)
	f.mu.Lock()
	defer f.mu.Unlock()
	set := f.topics[w.topic]
	if _, ok := set[w]; !ok {
		return
	}
	delete(set, w)
	f.n--
	if len(set) == 0 {
		delete(f.topics, w.topic)
	}
}

// notify nudges the waiters of one topic.
func (f *fanout) notify(topic string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for w := range f.topics[topic] {
		w.nudge()
	}
}

// nudgeAll is the re-check: every waiter re-runs its check.
func (f *fanout) nudgeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, set := range f.topics {
		for w := range set {
			w.nudge()
		}
	}
}

// setDown records the backend state and reports whether it changed.
// Going down releases every waiter with ErrUnavailable.
func (f *fanout) setDown(down bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down == down || f.closed {
		return false
	}
	f.down = down
	if down {
		f.cancelAllLocked(ErrUnavailable)
	}
	return true
}

func (f *fanout) isDown() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down
}

func (f *fanout) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	f.cancelAllLocked(ErrClosed)
}

func (f *fanout) cancelAllLocked(cause error) {
	for _, set := range f.topics {
		for w := range set {
			w.cancel(cause)
		}
	}
}

// waiting is the number of parked waiters (for tests and metrics).
func (f *fanout) waiting() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// wait is Hub.Wait on top of the fanout.
func (f *fanout) wait(ctx context.Context, topic string, check CheckFunc) error {
	if err := validTopic(topic); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	w, err := f.add(ctx, topic)
	if err != nil {
		return err
	}
	defer f.remove(w)
	// ended maps the end of w.ctx to the error Wait returns: the
	// caller's own end first, else the hub's cause.
	ended := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return context.Cause(w.ctx)
	}
	for {
		ok, err := check(w.ctx)
		if err == nil && ok {
			return nil
		}
		if w.ctx.Err() != nil {
			// A check cut short by our cancellation reports that, not
			// its own context error.
			return ended()
		}
		if err != nil {
			return err
		}
		select {
		case <-w.ctx.Done():
			return ended()
		case <-w.wake:
		}
	}
}

// Memory is the Hub of the single-instance (memory) backend: Notify wakes
// this process's waiters directly. It keeps the re-check, so a check whose
// answer changes without a Notify still ends its wait.
type Memory struct {
	f    *fanout
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

var _ Hub = (*Memory)(nil)

// NewMemory starts a memory hub; Close stops it.
func NewMemory(o Options) *Memory {
	m := &Memory{f: newFanout(false), stop: make(chan struct{}), done: make(chan struct{})}
	tick, stopTick := o.ticker()
	go func() {
		defer close(m.done)
		defer stopTick()
		recheckLoop(m.stop, tick, m.f)
	}()
	return m
}

// recheckLoop runs the periodic re-check until stop closes.
func recheckLoop(stop <-chan struct{}, tick <-chan time.Time, f *fanout) {
	for {
		select {
		case <-stop:
			return
		case <-tick:
			f.nudgeAll()
		}
	}
}

// Wait implements Hub.
func (m *Memory) Wait(ctx context.Context, topic string, check CheckFunc) error {
	return m.f.wait(ctx, topic, check)
}

// Notify implements Hub.
func (m *Memory) Notify(_ context.Context, topic string) error {
	if err := validTopic(topic); err != nil {
		return err
	}
	m.f.mu.Lock()
	closed := m.f.closed
	m.f.mu.Unlock()
	if closed {
		return ErrClosed
	}
	m.f.notify(topic)
	return nil
}

// Waiting is the number of parked waiters.
func (m *Memory) Waiting() int { return m.f.waiting() }

// Close implements Hub.
func (m *Memory) Close() error {
	m.once.Do(func() {
		m.f.close()
		close(m.stop)
		<-m.done
	})
	return nil
}
