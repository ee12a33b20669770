package redisstore_test

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/fedas/fedas/storage"
	"github.com/fedas/fedas/storage/redisstore"
	"github.com/fedas/fedas/storage/redistest"
	"github.com/fedas/fedas/tracing/tracingtest"
)

func secret(name string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return name + "-" + hex.EncodeToString(b)
}

// TestTracing_NoArguments: with a TracerProvider, every command a traced
// request issues (scripts, plain commands, pipelines) has a client span,
// child of the request's span, on a single node, a Sentinel master and a
// Redis Cluster; no span names or attributes carry a key's secret part
// (session ID, token signature, replay key) or a value; and commands
// outside any span (the policy follower's polls) open no trace.
func TestTracing_NoArguments(t *testing.T) {
	t.Parallel()
	modes := []struct {
		name string
		opts func(t *testing.T) redisstore.Options
	}{
		{"single", func(t *testing.T) redisstore.Options { return redisstore.Options{URL: redistest.Start(t).URL()} }},
		{"sentinel", func(t *testing.T) redisstore.Options { return sentinelOptions(redistest.StartSentinel(t)) }},
		{"cluster", func(t *testing.T) redisstore.Options {
			return redisstore.Options{Addrs: redistest.StartCluster(t).Addrs(), Cluster: true}
		}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			rec := tracingtest.New(t)
			o := m.opts(t)
			o.TracerProvider = rec
			st := newStore(t, o)
			require.Empty(t, rec.Ended(), "New's own checks run outside any request: no trace")

			sessID, step, next := secret("session"), secret("step"), secret("step2")
			sig, tokSig, jti := secret("codesig"), secret("tokensig"), secret("jti")
			challenge, form := secret("challenge"), secret("form")
			exp := time.Now().Add(time.Minute)

			ctx, req := rec.Tracer("test").Start(t.Context(), "request")
			sess := storage.AuthSession{ID: sessID, StepHash: step, ClientID: "demo-app", ExpiresAt: exp,
				Request: map[string]string{"code_challenge": challenge}}
			require.NoError(t, st.CreateAuthSession(ctx, sess))
			_, err := st.AuthSession(ctx, sessID)
			require.NoError(t, err)
			sess.StepHash = next
			require.NoError(t, st.UpdateAuthSession(ctx, step, sess))
			require.NoError(t, st.DeleteAuthSession(ctx, sessID, next))
			rec0 := storage.Record{RequestID: "req-1", ClientID: "demo-app", RequestedAt: time.Now(), Form: form}
			require.NoError(t, st.CreateCode(ctx, sig, rec0, time.Minute))
			_, _, err = st.RedeemCode(ctx, sig)
			require.NoError(t, err)
			require.ErrorIs(t, st.InvalidateCode(ctx, sig), storage.ErrConflict) // redeemed just above
			require.NoError(t, st.CreateTokens(ctx, []storage.TokenWrite{{Kind: storage.KindAccess, Signature: tokSig, Rec: rec0, TTL: time.Minute}}, storage.KindCode, []string{sig}))
			_, err = st.Token(ctx, storage.KindAccess, tokSig)
			require.NoError(t, err)
			require.NoError(t, st.MarkUsed(ctx, jti, exp))
			require.ErrorIs(t, st.MarkUsed(ctx, jti, exp), storage.ErrConflict)
			_, err = st.Token(ctx, storage.KindRefresh, secret("missing"))
			require.ErrorIs(t, err, storage.ErrNotFound)
			req.End()

			// Outside a request: no span.
			_, err = st.PolicyHead(t.Context())
			require.NoError(t, err)

			spans := rec.Ended()
			var redisSpans int
			for _, s := range spans {
				if s.Name() == "request" {
					continue
				}
				redisSpans++
				assert.Equal(t, req.SpanContext().TraceID(), s.SpanContext().TraceID(), s.Name())
				assert.Equal(t, trace.SpanKindClient, s.SpanKind(), s.Name())
				assert.Equal(t, "github.com/redis/go-redis/extra/redisotel", s.InstrumentationScope().Name)
				for _, a := range s.Attributes() {
					assert.NotEqual(t, "db.statement", string(a.Key), "%s records its arguments", s.Name())
					if a.Key == "db.connection_string" {
						assert.False(t, strings.Contains(a.Value.AsString(), "@"), "no credentials: %s", a.Value.AsString())
					}
				}
			}
			t.Logf("spans: %v", names(spans))
			assert.GreaterOrEqual(t, redisSpans, 11, "a span per command: %v", names(spans))
			tracingtest.AssertNoSecrets(t, spans, sessID, step, next, sig, tokSig, jti, challenge, form, "req-1", "demo-app")
		})
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name()
	}
	return out
}
