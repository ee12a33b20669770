package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MaxRateWindow bounds how long a rate limit can remember a key
// (Burst × Period / Rate): the TTL of its state (docs/redis.md "Rate
// limit keys"), and the range in which the GCRA arithmetic stays exact in
// integer microseconds on every backend (Lua numbers are doubles).
const MaxRateWindow = 24 * time.Hour

// Limit is a GCRA rate (the generic cell rate algorithm, ITU-T I.371;
// the "leaky bucket as a meter"): Rate requests per Period on average,
// and at most Burst at once after a quiet spell.
type Limit struct {
	// Rate is how many requests Period allows (≥ 1).
	Rate int
	// Period is the window Rate is counted in (> 0).
	Period time.Duration
	// Burst is how many requests may arrive at once (≥ 1).
	Burst int
}

// Interval is the emission interval T = Period / Rate in whole
// microseconds, rounded up (so a limit never allows more than it says):
// one request is refilled every T.
func (l Limit) Interval() time.Duration {
	if l.Rate < 1 {
		return 0
	}
	us := (l.Period.Microseconds() + int64(l.Rate) - 1) / int64(l.Rate)
	if us < 1 {
		us = 1
	}
	return time.Duration(us) * time.Microsecond
}

// Window is how long the state of a key lives at most: the time an empty
// bucket takes to fill up again (Burst × Interval).
func (l Limit) Window() time.Duration { return time.Duration(l.Burst) * l.Interval() }

// Validate reports a limit no backend can apply: a rate, period or burst
// below its minimum, or a window over MaxRateWindow.
func (l Limit) Validate() error {
	switch {
	case l.Rate < 1:
		return errors.New("rate must be at least 1")
	case l.Period <= 0:
		return errors.New("period must be positive")
	case l.Period.Microseconds() < int64(l.Rate):
		return errors.New("period / rate must be at least 1µs")
	case l.Burst < 1:
		return errors.New("burst must be at least 1")
	case l.Burst > 1_000_000:
		return errors.New("burst must be at most 1000000")
	case l.Window() > MaxRateWindow:
		return fmt.Errorf("burst × period / rate must be at most %s", MaxRateWindow)
	}
	return nil
}

// Decision is a rate limiter's answer for one request.
type Decision struct {
	// Allowed says whether the request may proceed; when it may, one
	// unit of its key's budget is spent.
	Allowed bool
	// Remaining is how many more requests the key allows right now.
	Remaining int
	// RetryAfter is, for a refused request, how long until one more is
	// allowed (exact to the microsecond); zero when allowed.
	RetryAfter time.Duration
}

// RateLimiter is a storage capability (backends implement it beside
// Store; callers find it by type assertion): the state of GCRA rate
// limits, shared by every instance using the backend.
//
// Contract, binding for every backend (storagetest.RunRateLimiter):
//   - Allow MUST decide and record in one atomic step: of N concurrent
//     requests on a fresh key at one instant, exactly l.Burst are allowed.
//   - A refused request MUST change nothing (it spends no budget).
//   - The decision MUST follow GCRA with the caller's now, in whole
//     microseconds: the theoretical arrival time TAT starts at now;
//     a request is allowed iff now ≥ max(TAT, now) + T − Burst×T, and then
//     TAT becomes max(TAT, now) + T (T = l.Interval()). RetryAfter is the
//     wait until that holds, Remaining the number of further requests it
//     would allow at now.
//   - The state of a key MUST expire once its TAT has passed (at most
//     l.Window() after the last allowed request, by the backend's own
//     clock): a key never outlives its window.
//   - Keys are independent; a backend MUST return ErrUnavailable
//     (wrapped) when it fails, and an error for an invalid limit or key.
type RateLimiter interface {
	// Allow spends one unit of key's budget under l at now, if the budget
	// allows it. now is the caller's clock (the server's injected one),
	// so that tests move time instead of sleeping on every backend.
	Allow(ctx context.Context, key string, l Limit, now time.Time) (Decision, error)
	// AllowEach is Allow over several budgets of one request, in order:
	// each allowed check spends its unit, and the first refusal stops
	// the sequence, so the checks after it spend nothing. It returns the
	// index of the refusing check (-1 when every check allowed) and that
	// check's decision (the last check's when all allowed; the zero
	// Decision for no checks). It MUST decide exactly as the same calls
	// to Allow one after the other would, and a backend that can makes
	// the whole sequence one atomic step and one round trip (the Redis
	// backend does, except on Redis Cluster, whose keys lie in different
	// slots: there it is key by key).
	AllowEach(ctx context.Context, checks []RateCheck, now time.Time) (int, Decision, error)
}

// RateCheck is one budget of a request: a key and its limit.
type RateCheck struct {
	Key   string
	Limit Limit
}

// AllowInTurn is AllowEach made of one Allow call per check: the
// reference behaviour, and the way for a backend that cannot do the
// sequence in one step.
func AllowInTurn(ctx context.Context, l RateLimiter, checks []RateCheck, now time.Time) (int, Decision, error) {
	var d Decision
	for i, c := range checks {
		var err error
		if d, err = l.Allow(ctx, c.Key, c.Limit, now); err != nil {
			return -1, Decision{}, err
		}
		if !d.Allowed {
			return i, d, nil
		}
	}
	return -1, d, nil
}

// GCRA is one step of the algorithm every backend applies, in integer
// microseconds: the stored TAT (0 for a fresh key), the limit and now. It
// returns the decision and the TAT to store (unchanged when refused). The
// memory backend calls it; the Redis backend's script is its Lua twin.
func GCRA(tat int64, l Limit, now int64) (Decision, int64) {
	t := l.Interval().Microseconds()
	next := max(tat, now) + t
	allowAt := next - int64(l.Burst)*t
	if now < allowAt {
		return Decision{RetryAfter: time.Duration(allowAt-now) * time.Microsecond}, tat
	}
	return Decision{Allowed: true, Remaining: int((now - allowAt) / t)}, next
}
