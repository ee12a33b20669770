package metrics

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/fedas/fedas/events"
)

type redisSeries struct {
	duration prometheus.Observer
	errors   prometheus.Counter
}

// RedisHook returns a go-redis hook that times every command
// (fedas_redis_command_duration_seconds) and counts its failures
// (fedas_redis_errors_total), and tells avail (may be nil) whether Redis
// answered, so that an outage is logged once when it starts and once when
// it ends (storage.lost, storage.recovered). Command names come from our
// own code, never from a request; arguments are never looked at.
func (m *Metrics) RedisHook(avail *events.Availability) redis.Hook {
	return redisHook{m: m, avail: avail}
}

type redisHook struct {
	m     *Metrics
	avail *events.Availability
}

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		s := h.m.redisSeries.get(cmd.Name())
		s.duration.Observe(time.Since(start).Seconds())
		h.result(ctx, s, err)
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h.m.redisSeries.get("pipeline").duration.Observe(time.Since(start).Seconds())
		failed := false
		for _, c := range cmds {
			if c.Err() != nil {
				failed = true
				h.result(ctx, h.m.redisSeries.get(c.Name()), c.Err())
			}
		}
		if !failed {
			h.result(ctx, redisSeries{}, err)
		}
		return err
	}
}

// result counts a failed command and moves the availability state.
func (h redisHook) result(ctx context.Context, s redisSeries, err error) {
	v := classify(err)
	if v.counted && s.errors != nil {
		s.errors.Inc()
	}
	switch {
	case v.lost != "":
		h.avail.Lost(ctx, v.lost)
	case v.answered:
		h.avail.OK(ctx)
	}
}

// verdict is what one command's result says.
type verdict struct {
	// counted: a command error for fedas_redis_errors_total.
	counted bool
	// answered: Redis answered, so it is reachable.
	answered bool
	// lost: Redis is unreachable or cannot serve anything (a reason).
	lost string
}

// classify reads a command's error. A missing key (redis.Nil) is an
// answer; a caller that went away, or our own client closing at shutdown,
// says nothing about Redis; NOSCRIPT is go-redis's script cache missing,
// which it answers with EVAL. Replies that refuse only some commands
// (READONLY, OOM under noeviction, TRYAGAIN) count as errors but move the
// state neither way, so that an outage is not logged as lost and
// recovered on alternate requests.
func classify(err error) verdict {
	switch {
	case err == nil, errors.Is(err, redis.Nil):
		return verdict{answered: true}
	case errors.Is(err, context.Canceled), errors.Is(err, redis.ErrClosed):
		return verdict{}
	}
	var re redis.Error
	if errors.As(err, &re) {
		switch {
		case strings.HasPrefix(err.Error(), "NOSCRIPT"):
			return verdict{answered: true}
		case redis.IsClusterDownError(err), redis.IsMasterDownError(err), redis.IsLoadingError(err):
			return verdict{counted: true, lost: "unavailable"}
		case redis.IsReadOnlyError(err), redis.IsOOMError(err), redis.IsTryAgainError(err):
			return verdict{counted: true}
		}
		return verdict{counted: true, answered: true}
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return verdict{counted: true, lost: "timeout"}
	}
	return verdict{counted: true, lost: "network"}
}
