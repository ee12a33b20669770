// Package events emits fedas's security events — sign-ins, federation
// hops, tokens, code and refresh-token reuse, client authentication failures, rate-limit
// hits and storage transitions — as JSON log lines with one stable schema
// (docs/operations.md "Events"), and carries each request's id and log
// fields in its context so that every line of a request names it.
//
// It is a leaf package (zap and the standard library only): the flow
// engine, which imports no net/http, emits through it too.
package events

import (
	"context"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Event names: the value of the "event" field. They are part of the
// schema; a new one is added, an existing one never renamed.
const (
	// SignInSuccess: one authentication method verified the user (each
	// factor of a local chain counts once: a password then an OTP are two).
	SignInSuccess = "sign_in.success"
	// SignInFailure: a method refused the user (a wrong answer, a refused
	// downstream identity, an app completion for another user).
	SignInFailure = "sign_in.failure"
	// SignInThrottled: a credential answer was refused unchecked because
	// a lockout delay was in force (docs/security.md "Account lockout");
	// Scope names the counter (account, account_ip, account_otp), never
	// the account.
	SignInThrottled = "sign_in.throttled"
	// FederationStarted: a pushed request was accepted by a downstream.
	FederationStarted = "federation.started"
	// FederationCompleted: the downstream's code was redeemed and its ID
	// token verified.
	FederationCompleted = "federation.completed"
	// FederationFailed: a hop could not begin or complete.
	FederationFailed = "federation.failed"
	// TokenIssued: the token endpoint answered with tokens.
	TokenIssued = "token.issued"
	// CodeReuse: an authorization code was presented again after its
	// redemption (its tokens are revoked), or lost a redemption race.
	CodeReuse = "code.reuse"
	// RefreshReuse: a rotated refresh token was presented again, or lost
	// a concurrent rotation; the grant's tokens are revoked (RFC 9700
	// §4.14.2).
	RefreshReuse = "refresh.reuse"
	// ClientAuthFailure: a client's credentials were refused.
	ClientAuthFailure = "client_auth.failure"
	// RateLimitHit: a request was refused by the rate limiter.
	RateLimitHit = "rate_limit.hit"
	// StorageLost: storage stopped answering (logged once per outage).
	StorageLost = "storage.lost"
	// StorageRecovered: storage answers again (logged once per outage).
	StorageRecovered = "storage.recovered"
)

// Sign-in methods (Event.Method of sign_in.*).
const (
	MethodPassword   = "password"
	MethodOTP        = "otp"
	MethodFederation = "federation"
	MethodApp        = "app"
)

// Federation calls (Event.Call): the downstream request an event timed.
const (
	// CallPush is the pushed authorization request (with the metadata
	// fetch when it is not cached).
	CallPush = "push"
	// CallRedeem is the token request and the ID token's verification
	// (with the JWKS fetch when it is not cached).
	CallRedeem = "redeem"
)

// UnknownClient stands for a client_id that is not registered: a
// client-supplied string never becomes a field value or a metric label.
const UnknownClient = "unknown"

// Event is one security event. Every string field holds a value from a
// closed set or a registered identifier (client, downstream), never a
// user-supplied string, a secret, a code or a token.
type Event struct {
	// Name is one of the constants above.
	Name string
	// Method is the sign-in method (sign_in.*) or the client
	// authentication method (client_auth.failure).
	Method string
	// ClientID is a registered client, or UnknownClient.
	ClientID string
	// Downstream is a configured downstream id (federation.*, and
	// sign_in.* with method federation).
	Downstream string
	// Reason says why, for failures, code.reuse and refresh.reuse (a
	// short snake_case word from a fixed set).
	Reason string
	// GrantType is the token endpoint grant (token.issued).
	GrantType string
	// Scope is the rate limiter's scope (rate_limit.hit) or the lockout
	// counter's (sign_in.throttled).
	Scope string
	// Call is the downstream request Duration timed (CallPush, CallRedeem);
	// empty when no request was made.
	Call string
	// Duration is how long Call took.
	Duration time.Duration
}

// Sink is told every emitted event before it is logged (the metrics
// count them).
type Sink interface {
	// Event takes ev by value: a pointer through an interface would move
	// every event to the heap.
	Event(ctx context.Context, ev Event)
}

// Emitter logs events and hands them to its sink. A nil *Emitter drops
// everything, so code that is not wired (unit tests) needs no check.
type Emitter struct {
	log  *zap.Logger
	sink Sink
}

// New returns an emitter logging to log (name it "event": the logger name
// is part of the schema) and telling sink (may be nil).
func New(log *zap.Logger, sink Sink) *Emitter {
	if log == nil {
		log = zap.NewNop()
	}
	return &Emitter{log: log, sink: sink}
}

// level is an event's log level: failures and abuse are warnings, a lost
// storage an error, the rest info.
func level(name string) zapcore.Level {
	switch name {
	case SignInFailure, SignInThrottled, FederationFailed, CodeReuse, RefreshReuse, ClientAuthFailure, RateLimitHit:
		return zap.WarnLevel
	case StorageLost:
		return zap.ErrorLevel
	}
	return zap.InfoLevel
}

// Emit logs ev with the request id of ctx and tells the sink. The
// request's access line takes ev's client when it has none yet.
func (e *Emitter) Emit(ctx context.Context, ev Event) {
	if e == nil {
		return
	}
	if e.sink != nil {
		e.sink.Event(ctx, ev)
	}
	r := RequestOf(ctx)
	if r != nil && r.ClientID == "" && ev.ClientID != UnknownClient {
		r.ClientID = ev.ClientID
	}
	ce := e.log.Check(level(ev.Name), ev.Name)
	if ce == nil {
		return
	}
	fields := make([]zap.Field, 0, 10)
	fields = append(fields, zap.String("event", ev.Name))
	add := func(k, v string) {
		if v != "" {
			fields = append(fields, zap.String(k, v))
		}
	}
	add("method", ev.Method)
	add("client_id", ev.ClientID)
	add("downstream", ev.Downstream)
	add("reason", ev.Reason)
	add("grant_type", ev.GrantType)
	add("scope", ev.Scope)
	add("call", ev.Call)
	if ev.Call != "" {
		fields = append(fields, zap.Duration("duration", ev.Duration))
	}
	if r != nil {
		fields = append(fields, zap.String("request_id", r.ID))
	}
	ce.Write(fields...)
}
