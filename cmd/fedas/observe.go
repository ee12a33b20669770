package main

import (
	"fmt"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/fedas/fedas/admin"
	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/metrics"
)

// logTimes makes the JSON logs' timestamps ISO 8601 (zap's production
// default is seconds since the epoch, which people and most log tools
// read worse).
func logTimes(zc *zap.Config) { zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder }

// observability is what serve shares between the public server, the
// admin listener (which serves /metrics) and the Redis client: one
// metrics registry, and the storage watch that logs an outage once when
// it starts and once when it ends (docs/operations.md "Metrics",
// "Events").
type observability struct {
	metrics *metrics.Metrics
	avail   *events.Availability
}

func newObservability(log *zap.Logger) *observability {
	m := metrics.New(metrics.Options{})
	return &observability{metrics: m, avail: events.NewAvailability(events.New(log.Named("event"), m))}
}

// redisHooks are the hooks openStore adds to the Redis client.
func (o *observability) redisHooks() []redis.Hook {
	return []redis.Hook{o.metrics.RedisHook(o.avail)}
}

// adminTokens loads the admin tokens file; without one the admin
// listener runs for /metrics only and its API refuses everyone.
func adminTokens(cfg *config.Config, log *zap.Logger) (*admin.Tokens, error) {
	if cfg.Admin.TokensFile == "" {
		log.Warn("admin listener without admin.tokens_file: the API and console refuse every request; /metrics is served")
		return admin.NoTokens(), nil
	}
	tokens, err := admin.LoadTokens(cfg.Admin.TokensFile)
	if err != nil {
		return nil, fmt.Errorf("%w (create one with: fedas admin token create --role write --name you --file %s)", err, cfg.Admin.TokensFile)
	}
	return tokens, nil
}
