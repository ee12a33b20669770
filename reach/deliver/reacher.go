package deliver

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/storage"
)

// Defaults of the per-user task quota (docs/reach.md "live tasks per
// user: 3, and 10 per 10 min"; on excess 424 interaction_unavailable, a
// benign fallback: no push bombing, no oracle).
const (
	DefaultMaxLive = 3
	DefaultPerUser = 10
	DefaultWindow  = 10 * time.Minute
)

// Quota bounds the tasks that reach one user (§4.7). Its state lives in
// the storage backend (storage.LiveCounter for the live tasks,
// storage.RateLimiter for the creations), so the bound holds across
// instances; the keys are digests of the user id, never the id itself.
type Quota struct {
	Live storage.LiveCounter
	Rate storage.RateLimiter
	// MaxLive caps a user's live (delivered, not yet ended) tasks; zero
	// means DefaultMaxLive.
	MaxLive int
	// PerUser tasks per Window (defaults DefaultPerUser, DefaultWindow),
	// with no burst beyond PerUser.
	PerUser int
	Window  time.Duration
}

func (q Quota) maxLive() int {
	if q.MaxLive > 0 {
		return q.MaxLive
	}
	return DefaultMaxLive
}

func (q Quota) limit() storage.Limit {
	n, w := q.PerUser, q.Window
	if n <= 0 {
		n = DefaultPerUser
	}
	if w <= 0 {
		w = DefaultWindow
	}
	return storage.Limit{Rate: n, Period: w, Burst: n}
}

// userKey is the scope of a user in the quota keys (Redis: live:{ru.<d>}
// and rl:{ru.<d>}, docs/redis.md "Keys"): a 128-bit SHA-256 digest of
// the user id, so no personal data is in a key name.
func userKey(user string) string {
	h := sha256.Sum256([]byte(user))
	return "ru." + base64.RawURLEncoding.EncodeToString(h[:16])
}

// Reacher reaches a user's devices for a task (§4.2).
type Reacher struct {
	// Store holds devices and tasks.
	Store storage.ReachStore
	// Channels are the available channels by kind (reach.ChannelType);
	// a device's channel with no entry here is skipped.
	Channels map[string]reach.Channel
	// Quota is the per-user bound; its Live and Rate are required.
	Quota Quota
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// NewChannels returns the built-in channels keyed by kind: the inbox, the
// webhook (given by the caller, nil Sender = off) and the APNs/FCM
// adapters switched off.
func NewChannels(inbox *Inbox, hook *Webhook) map[string]reach.Channel {
	m := map[string]reach.Channel{}
	for _, c := range []reach.Channel{inbox, hook,
		&Push{Type: reach.ChannelAPNs}, &Push{Type: reach.ChannelFCM}} {
		m[c.Kind()] = c
	}
	return m
}

func (r *Reacher) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reach delivers the stored task t (state CREATED, t.User == user) to
// every live device of the user that has the capability t.Kind, trying
// each device's channels in the device's registered order until one
// delivers, and records the devices reached on the task
// (CREATED→DELIVERED, §4.4). It returns their ids in the order of
// UserDevices.
//
// Refusals: no eligible device, or none delivered → reach.ErrNoChannel;
// the user's live or windowed task quota full → reach.ErrQuota (both
// answered 424 interaction_unavailable / unreachable_user by the front
// end). Either moves the task to UNAVAILABLE, best effort (it expires
// anyway). The quota is checked only once an eligible device exists and
// before anything is sent, so a refused task pushes nothing. A storage
// failure (storage.ErrUnavailable) listing devices, checking the quota,
// or on every attempted channel is returned as is (503).
//
// If the task left CREATED meanwhile (the QR deep link carries the same
// ref, §4.3 (a)) and is still live, the deliveries stand and Reach
// succeeds with the task as stored; if it ended, the store's
// reach.ErrState is returned with the devices reached. The live-task slot
// taken here is held until t.ExpiresAt; the front end frees it earlier
// with Release when the task ends.
func (r *Reacher) Reach(ctx context.Context, user string, t *reach.Task) ([]string, error) {
	if t == nil || t.User != user || t.State != reach.StateCreated || !reach.ValidID(t.ID) {
		return nil, fmt.Errorf("%w: reach: task must be a stored CREATED task of this user", reach.ErrInvalid)
	}
	if r.Quota.Live == nil || r.Quota.Rate == nil {
		return nil, errors.New("deliver: Reacher.Quota needs Live and Rate")
	}
	devs, err := r.Store.UserDevices(ctx, user)
	if err != nil {
		return nil, err
	}
	var eligible []reach.Device
	for _, d := range devs {
		if r.eligible(d, t.Kind) {
			eligible = append(eligible, d)
		}
	}
	if len(eligible) == 0 {
		return nil, r.unavailable(ctx, t, reach.ErrNoChannel)
	}
	if err := r.admit(ctx, user, t); err != nil {
		return nil, err
	}
	ref := t.TaskRef()
	results := make([]error, len(eligible))
	var wg sync.WaitGroup
	for i, d := range eligible {
		wg.Go(func() { results[i] = r.deliver(ctx, d, ref) })
	}
	wg.Wait()
	var delivered []string
	outage := false
	for i, err := range results {
		if err == nil {
			delivered = append(delivered, eligible[i].ID)
		}
		outage = outage || errors.Is(err, storage.ErrUnavailable)
	}
	if len(delivered) == 0 {
		_ = r.Release(ctx, t)
		if outage {
			return nil, fmt.Errorf("deliver: reach: %w", storage.ErrUnavailable)
		}
		return nil, r.unavailable(ctx, t, reach.ErrNoChannel)
	}
	addDevices := func(n *reach.Task) error {
		for _, id := range delivered {
			if !slices.Contains(n.Devices, id) && len(n.Devices) < reach.MaxTaskDevices {
				n.Devices = append(n.Devices, id)
			}
		}
		return nil
	}
	got, err := r.Store.TransitionTask(ctx, t.ID, []reach.State{reach.StateCreated, reach.StateDelivered}, reach.StateDelivered, addDevices)
	if errors.Is(err, reach.ErrState) {
		// The task moved on while we delivered: opened through the QR
		// deep link or by a device the delivery already woke (SEEN,
		// still live: the deliveries stand, and are recorded so that
		// every device reached still finds the task), or ended
		// (superseded, expired: its slot is freed).
		cur, rerr := r.Store.Task(ctx, t.ID)
		if rerr == nil && cur.Effective(r.now()).Live() {
			if seen, serr := r.Store.TransitionTask(ctx, t.ID, []reach.State{reach.StateSeen}, reach.StateSeen, addDevices); serr == nil {
				cur = seen
			}
			*t = cur
			return delivered, nil
		}
		_ = r.Release(ctx, t)
	}
	if err != nil {
		return delivered, err
	}
	*t = got
	return delivered, nil
}

// eligible reports whether Reach delivers a task of kind k to d: d
// registered the capability and one of its channels is available here.
func (r *Reacher) eligible(d reach.Device, k reach.Kind) bool {
	return d.Can(k) && slices.ContainsFunc(d.Channels, func(c reach.ChannelSpec) bool { return r.Channels[string(c.Type)] != nil })
}

// deliver tries d's channels in its registered order (each kind once)
// until one delivers. All unavailable → reach.ErrUnavailable; otherwise
// the failures, joined.
func (r *Reacher) deliver(ctx context.Context, d reach.Device, ref reach.TaskRef) error {
	var errs []error
	var tried []reach.ChannelType
	for _, spec := range d.Channels {
		if slices.Contains(tried, spec.Type) {
			continue
		}
		tried = append(tried, spec.Type)
		c := r.Channels[string(spec.Type)]
		if c == nil {
			continue
		}
		err := c.Deliver(ctx, d, ref)
		if err == nil {
			return nil
		}
		if !errors.Is(err, reach.ErrUnavailable) {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return reach.ErrUnavailable
	}
	return errors.Join(errs...)
}

// admit takes a live-task slot for t and spends one unit of the user's
// windowed budget; either full → reach.ErrQuota (and the slot is given
// back if the window refused).
func (r *Reacher) admit(ctx context.Context, user string, t *reach.Task) error {
	now := r.now()
	if !t.ExpiresAt.After(now) {
		return fmt.Errorf("%w: task expired", reach.ErrState)
	}
	live := []string{userKey(user)}
	a, err := r.Quota.Live.Admit(ctx, live, t.ID, t.ExpiresAt, []int{r.Quota.maxLive()}, now)
	if err != nil {
		return err
	}
	if !a.Admitted {
		return r.unavailable(ctx, t, reach.ErrQuota)
	}
	dec, err := r.Quota.Rate.Allow(ctx, userKey(user), r.Quota.limit(), now)
	if err != nil || !dec.Allowed {
		_ = r.Quota.Live.Release(ctx, live, t.ID)
		if err != nil {
			return err
		}
		return r.unavailable(ctx, t, reach.ErrQuota)
	}
	return nil
}

// Release frees t's live-task slot (§4.7), for the front end to call when
// the task ends (answered, denied, superseded, failed). Without it the
// slot frees itself at t.ExpiresAt.
func (r *Reacher) Release(ctx context.Context, t *reach.Task) error {
	return r.Quota.Live.Release(ctx, []string{userKey(t.User)}, t.ID)
}

// unavailable records CREATED→UNAVAILABLE (§4.4 "no channel / quota")
// best effort and returns why.
func (r *Reacher) unavailable(ctx context.Context, t *reach.Task, why error) error {
	if got, err := r.Store.TransitionTask(ctx, t.ID, []reach.State{reach.StateCreated}, reach.StateUnavailable, nil); err == nil {
		*t = got
	}
	return why
}
