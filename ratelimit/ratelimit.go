// Package ratelimit is the rule table of fedas's rate limits
// (docs/security.md "Rate limits"): which limits apply to a request of
// which endpoint, keyed by what, in which order. It is built once from
// the configuration (config.RateLimits.Effective) and keeps its state in
// a storage.RateLimiter (GCRA on memory or Redis), so that instances
// sharing Redis share every limit.
//
// A request is checked scope by scope, narrowest first (session, account,
// ip, client: config.RateScopes), and the first refusal stops it: a
// request refused by its session's or its address's limit spends nothing
// of its client's. Keys never hold the value they limit: each is an
// HMAC-SHA-256 of the scope and the value under a per-deployment salt,
// truncated to 128 bits, so that no username, address or auth_session
// reaches Redis in the clear.
package ratelimit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/storage"
)

// Subject is what one request is limited by; an empty field means the
// request does not carry it and its scope is skipped.
type Subject struct {
	// IP is the client address (the one place that decides it:
	// server.clientIP). IPv6 addresses are limited by their /64, the
	// smallest block a subscriber is usually given.
	IP string
	// Client is the client_id the request names, when it is registered.
	Client string
	// Account is the account a credential answer or an initial request
	// names: the username answer or login_hint.
	Account string
	// PromptAccount is the email or phone answered at a prompt. It has
	// a budget apart from Account's, so that a flood of password
	// answers for an account never blocks its federation prompt.
	PromptAccount string
	// Session identifies the auth_session across its rotations
	// (flow.SessionID), or is the value itself when it has another shape.
	Session string
}

// Refusal is a request over a limit.
type Refusal struct {
	// Scope is the limit's scope (config.ScopeIP, …).
	Scope string
	// RetryAfter is how long until the limit allows one more request.
	RetryAfter time.Duration
}

// rule is one limit of an endpoint.
type rule struct {
	scope string
	limit storage.Limit
}

// Limiter applies the rule table. A nil *Limiter limits nothing.
type Limiter struct {
	rules map[string][]rule
	store storage.RateLimiter
	salt  []byte
}

// New builds the limiter of rules (config.RateLimits.Effective) on
// store, keying with salt (a secret every instance sharing the store
// derives alike). It returns nil, limiting nothing, when rules is empty.
func New(rules []config.RateRule, store storage.RateLimiter, salt []byte) (*Limiter, error) {
	if len(rules) == 0 {
		return nil, nil
	}
	if store == nil {
		return nil, errors.New("ratelimit: no storage.RateLimiter")
	}
	if len(salt) < 16 {
		return nil, errors.New("ratelimit: the salt must be at least 16 bytes")
	}
	l := &Limiter{rules: map[string][]rule{}, store: store, salt: slices.Clone(salt)}
	for _, r := range rules {
		scopes, ok := config.RateEndpoints[r.Endpoint]
		if !ok || !slices.Contains(scopes, r.Scope) {
			return nil, fmt.Errorf("ratelimit: no scope %q on endpoint %q", r.Scope, r.Endpoint)
		}
		lim := storage.Limit{Rate: r.Rate, Period: r.Period, Burst: r.Burst}
		if err := lim.Validate(); err != nil {
			return nil, fmt.Errorf("ratelimit: %s/%s: %w", r.Endpoint, r.Scope, err)
		}
		l.rules[r.Endpoint] = append(l.rules[r.Endpoint], rule{scope: r.Scope, limit: lim})
	}
	for ep := range l.rules {
		slices.SortStableFunc(l.rules[ep], func(a, b rule) int {
			return slices.Index(config.RateScopes, a.scope) - slices.Index(config.RateScopes, b.scope)
		})
	}
	return l, nil
}

// Check spends one request of s on endpoint at now, scope by scope
// (narrowest first), and returns the first refusal, or nil when every
// limit allows it. The scopes go to storage as one sequence
// (storage.RateLimiter.AllowEach): one round trip on Redis, and a scope
// after a refusing one spends nothing. An error means storage did not
// answer: the caller decides (the server lets the request through:
// docs/security.md "Rate limits").
func (l *Limiter) Check(ctx context.Context, endpoint string, s Subject, now time.Time) (*Refusal, error) {
	if l == nil {
		return nil, nil
	}
	rules := l.rules[endpoint]
	checks := make([]storage.RateCheck, 0, len(rules))
	scopes := make([]string, 0, len(rules))
	for _, r := range rules {
		key := l.key(endpoint, r.scope, s)
		if key == "" {
			continue
		}
		scopes = append(scopes, r.scope)
		checks = append(checks, storage.RateCheck{Key: key, Limit: r.limit})
	}
	i, d, err := l.store.AllowEach(ctx, checks, now)
	if err != nil {
		return nil, err
	}
	if i < 0 {
		return nil, nil
	}
	return &Refusal{Scope: scopes[i], RetryAfter: d.RetryAfter}, nil
}

// Scopes lists the scopes endpoint is limited by, in checking order.
func (l *Limiter) Scopes(endpoint string) []string {
	if l == nil {
		return nil
	}
	out := make([]string, 0, len(l.rules[endpoint]))
	for _, r := range l.rules[endpoint] {
		out = append(out, r.scope)
	}
	return out
}

// key is the storage key of s's budget in scope on endpoint, "" when s
// has no value for the scope. Account budgets are one per account across
// endpoints (a guesser gains nothing by switching from the native
// endpoint to the browser pages); the others are per endpoint.
func (l *Limiter) key(endpoint, scope string, s Subject) string {
	switch scope {
	case config.ScopeIP:
		if s.IP == "" {
			return ""
		}
		return endpoint + ":ip:" + l.digest("ip", ipBlock(s.IP))
	case config.ScopeClient:
		if s.Client == "" {
			return ""
		}
		return endpoint + ":client:" + l.digest("client", s.Client)
	case config.ScopeSession:
		if s.Session == "" {
			return ""
		}
		return endpoint + ":session:" + l.digest("session", s.Session)
	case config.ScopeAccount:
		if a := NormalizeAccount(s.Account); a != "" {
			return "account:cred:" + l.digest("account", a)
		}
		if a := NormalizeAccount(s.PromptAccount); a != "" {
			return "account:prompt:" + l.digest("prompt", a)
		}
	}
	return ""
}

// digest is HMAC-SHA-256(salt, kind NUL value) truncated to 128 bits, in
// base64url: the part of a key that stands for a value.
func (l *Limiter) digest(kind, value string) string {
	m := hmac.New(sha256.New, l.salt)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// NormalizeAccount is how an account name is compared for its limit:
// trimmed and lower-cased, so that "Bob " and "bob" share one budget.
func NormalizeAccount(v string) string { return strings.ToLower(strings.TrimSpace(v)) }

// ipBlock is what an address is limited as: an IPv4 address itself, an
// IPv6 address by its /64 (an attacker given a /64 must not get 2^64
// budgets), an IPv4-mapped IPv6 address as IPv4. Anything unparsable is
// kept as it is.
func ipBlock(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}
