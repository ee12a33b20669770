package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fedas/fedas/events"
)

type sink struct{ got []events.Event }

func (s *sink) Event(_ context.Context, ev events.Event) { s.got = append(s.got, ev) }

// TestEmit_Schema: an event is one line named after it, with the event
// field, its non-empty fields, the duration only with a call, the
// request id of its context, and its level; the sink sees it too.
func TestEmit_Schema(t *testing.T) {
	for _, tc := range []struct {
		ev     events.Event
		level  zapcore.Level
		fields map[string]any
	}{
		{events.Event{Name: events.SignInSuccess, Method: events.MethodPassword, ClientID: "demo-app"}, zap.InfoLevel,
			map[string]any{"event": "sign_in.success", "method": "password", "client_id": "demo-app", "request_id": "r1"}},
		{events.Event{Name: events.SignInFailure, Method: events.MethodOTP, ClientID: "demo-app", Reason: "wrong_answer"}, zap.WarnLevel,
			map[string]any{"event": "sign_in.failure", "method": "otp", "client_id": "demo-app", "reason": "wrong_answer", "request_id": "r1"}},
		{events.Event{Name: events.FederationCompleted, ClientID: "demo-app", Downstream: "bank", Call: events.CallRedeem, Duration: 2 * time.Second}, zap.InfoLevel,
			map[string]any{"event": "federation.completed", "client_id": "demo-app", "downstream": "bank", "call": "redeem", "duration": 2 * time.Second, "request_id": "r1"}},
		{events.Event{Name: events.FederationFailed, Downstream: "bank", Reason: "iss_mismatch"}, zap.WarnLevel,
			map[string]any{"event": "federation.failed", "downstream": "bank", "reason": "iss_mismatch", "request_id": "r1"}},
		{events.Event{Name: events.TokenIssued, GrantType: "refresh_token", ClientID: "demo-app"}, zap.InfoLevel,
			map[string]any{"event": "token.issued", "grant_type": "refresh_token", "client_id": "demo-app", "request_id": "r1"}},
		{events.Event{Name: events.CodeReuse, ClientID: "demo-app", Reason: "redeemed"}, zap.WarnLevel,
			map[string]any{"event": "code.reuse", "client_id": "demo-app", "reason": "redeemed", "request_id": "r1"}},
		{events.Event{Name: events.RefreshReuse, ClientID: "demo-app", Reason: "reused"}, zap.WarnLevel,
			map[string]any{"event": "refresh.reuse", "client_id": "demo-app", "reason": "reused", "request_id": "r1"}},
		{events.Event{Name: events.ClientAuthFailure, Method: "private_key_jwt", ClientID: events.UnknownClient, Reason: "invalid_client"}, zap.WarnLevel,
			map[string]any{"event": "client_auth.failure", "method": "private_key_jwt", "client_id": "unknown", "reason": "invalid_client", "request_id": "r1"}},
		{events.Event{Name: events.RateLimitHit, Scope: "ip"}, zap.WarnLevel,
			map[string]any{"event": "rate_limit.hit", "scope": "ip", "request_id": "r1"}},
		{events.Event{Name: events.StorageLost, Reason: "timeout"}, zap.ErrorLevel,
			map[string]any{"event": "storage.lost", "reason": "timeout", "request_id": "r1"}},
		{events.Event{Name: events.StorageRecovered}, zap.InfoLevel,
			map[string]any{"event": "storage.recovered", "request_id": "r1"}},
	} {
		t.Run(tc.ev.Name, func(t *testing.T) {
			core, logs := observer.New(zap.DebugLevel)
			s := &sink{}
			e := events.New(zap.New(core).Named("event"), s)
			ctx := events.WithRequest(context.Background(), &events.Request{ID: "r1"}, zap.NewNop())
			e.Emit(ctx, tc.ev)
			require.Equal(t, []events.Event{tc.ev}, s.got)
			all := logs.All()
			require.Len(t, all, 1)
			require.Equal(t, tc.ev.Name, all[0].Message)
			require.Equal(t, "event", all[0].LoggerName)
			require.Equal(t, tc.level, all[0].Level)
			require.Equal(t, tc.fields, all[0].ContextMap())
		})
	}
}

// TestEmit_NilAndNoRequest: a nil emitter drops events; outside a
// request an event has no request_id.
func TestEmit_NilAndNoRequest(t *testing.T) {
	var e *events.Emitter
	e.Emit(context.Background(), events.Event{Name: events.SignInSuccess})
	core, logs := observer.New(zap.InfoLevel)
	events.New(zap.New(core), nil).Emit(context.Background(), events.Event{Name: events.StorageRecovered})
	require.Equal(t, map[string]any{"event": "storage.recovered"}, logs.All()[0].ContextMap())
}

// TestRequest_Notes: the access line's client is the first registered one
// noted (an event's included, unknown never), and the child logger
// carries the request id.
func TestRequest_Notes(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	r := &events.Request{ID: "abc"}
	ctx := events.WithRequest(context.Background(), r, zap.New(core))
	events.NoteClient(ctx, events.UnknownClient)
	events.New(nil, nil).Emit(ctx, events.Event{Name: events.ClientAuthFailure, ClientID: events.UnknownClient})
	require.Empty(t, r.ClientID)
	events.New(nil, nil).Emit(ctx, events.Event{Name: events.TokenIssued, ClientID: "demo-app"})
	events.NoteClient(ctx, "other")
	require.Equal(t, "demo-app", r.ClientID)
	events.NoteOutcome(ctx, "code")
	events.NoteError(ctx, "invalid_grant")
	require.Equal(t, "code", r.Outcome)
	require.Equal(t, "invalid_grant", r.Error)
	require.Equal(t, "abc", events.RequestID(ctx))
	events.Logger(ctx, nil).Info("one")
	events.For(ctx, zap.New(core).Named("flow")).Info("two")
	for _, e := range logs.All() {
		require.Equal(t, map[string]any{"request_id": "abc"}, e.ContextMap(), e.Message)
	}
	fallback := zap.NewNop()
	require.Same(t, fallback, events.Logger(context.Background(), fallback))
	require.Same(t, fallback, events.For(context.Background(), fallback))
	events.NoteClient(context.Background(), "x") // outside a request: nothing to note, no panic
}

// TestAvailability_Once: many failures make one storage.lost, many
// successes one storage.recovered.
func TestAvailability_Once(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	a := events.NewAvailability(events.New(zap.New(core), nil))
	ctx := context.Background()
	a.OK(ctx)
	for range 5 {
		a.Lost(ctx, "network")
	}
	require.True(t, a.Down())
	for range 5 {
		a.OK(ctx)
	}
	a.Lost(ctx, "timeout")
	var got []string
	for _, e := range logs.All() {
		reason, _ := e.ContextMap()["reason"].(string)
		got = append(got, e.Message+" "+reason)
	}
	require.Equal(t, []string{"storage.lost network", "storage.recovered ", "storage.lost timeout"}, got)
	var nilA *events.Availability
	nilA.Lost(ctx, "x")
	nilA.OK(ctx)
	require.False(t, nilA.Down())
}

type otherKey struct{}

// TestNewRequest: the record lives in the context it came with; other
// values of the parent stay visible.
func TestNewRequest(t *testing.T) {
	parent := context.WithValue(context.Background(), otherKey{}, "kept")
	ctx, r := events.NewRequest(parent, "id-1", zap.NewNop())
	require.Same(t, r, events.RequestOf(ctx))
	require.Equal(t, "id-1", events.RequestID(ctx))
	require.Equal(t, "kept", ctx.Value(otherKey{}))
	require.Nil(t, events.RequestOf(parent))
}
