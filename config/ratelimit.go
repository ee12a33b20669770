package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// RateLimits are the public endpoints' rate limits (docs/security.md
// "Rate limits", docs/operations.md "Rate limits"): GCRA limits kept in
// the configured storage, so that instances sharing Redis share them. A
// request over a limit gets 429 slow_down with Retry-After
// (docs/decisions.md Q28). The built-in table (DefaultRateRules) applies
// unless rules replace its entries.
type RateLimits struct {
	// Enabled switches every rate limit on or off (default true).
	Enabled *bool `yaml:"enabled"`
	// Rules replace entries of the built-in table (DefaultRateRules,
	// listed in docs/operations.md): a rule for an endpoint and scope
	// takes the place of the default for that pair; pairs no rule names
	// keep their default.
	Rules []RateRule `yaml:"rules"`
}

// RateRule is one limit: on endpoint, per value of scope, rate requests
// per period on average and at most burst at once.
type RateRule struct {
	// Endpoint is native_initial (a native request without auth_session:
	// a new session), native_follow_up (with auth_session), response (a
	// hop's response_uri), app_complete, browser_submit (POST
	// /oauth2/authorize), par, token, introspect or revoke.
	Endpoint string `yaml:"endpoint"`
	// Scope is what the limit is kept per: ip (the client address,
	// IPv6 by /64; see trusted_proxies), client (the client_id),
	// account (the account a request names: a username or login_hint,
	// and apart from those an email or phone answered at a prompt) or
	// session (the auth_session's session, across its rotations). Which
	// scopes an endpoint has is listed in docs/operations.md.
	Scope string `yaml:"scope"`
	// Rate is how many requests each period allows on average (≥ 1).
	Rate int `yaml:"rate"`
	// Period is the window rate is counted in (default 1s).
	Period time.Duration `yaml:"period"`
	// Burst is how many requests may come at once after a quiet spell
	// (default rate); burst × period / rate must be at most 24h.
	Burst int `yaml:"burst"`
	// Off removes the default limit of this endpoint and scope (rate,
	// period and burst are then ignored).
	Off bool `yaml:"off"`
}

// Rate-limited endpoints (RateRule.Endpoint).
const (
	RateNativeInitial  = "native_initial"
	RateNativeFollowUp = "native_follow_up"
	RateResponse       = "response"
	RateAppComplete    = "app_complete"
	RateBrowserSubmit  = "browser_submit"
	RatePAR            = "par"
	RateToken          = "token"
	RateIntrospect     = "introspect"
	RateRevoke         = "revoke"
	// RateDCWallet is the internal verifier's wallet endpoints
	// (/dc/request/{id}, /dc/response; docs/protocol.md "Digital
	// credentials").
	RateDCWallet = "dc_wallet"
	// RateReachApp is our app's reach endpoints: /reach/devices,
	// /reach/inbox, /reach/tasks (docs/reach.md).
	RateReachApp = "reach_app"
	// RateReachClient is the clients' reach endpoints: /native/reach,
	// /reach/interactions and the User Questioning endpoints. Per-client
	// task budgets are checked by the endpoints themselves, from the
	// access token (reach.go reachAllow).
	RateReachClient = "reach_client"
)

// Rate-limit scopes (RateRule.Scope), narrowest first: the order in which
// a request's limits are checked, so that a request refused by a narrow
// limit spends nothing of a wider one.
const (
	ScopeSession = "session"
	ScopeAccount = "account"
	ScopeIP      = "ip"
	ScopeClient  = "client"
)

// RateScopes lists the scopes in the order they are checked.
var RateScopes = []string{ScopeSession, ScopeAccount, ScopeIP, ScopeClient}

// RateEndpoints says which scopes each endpoint can be limited by: what
// its requests carry before any check (docs/operations.md "Rate limits").
var RateEndpoints = map[string][]string{
	RateNativeInitial:  {ScopeAccount, ScopeIP, ScopeClient},
	RateNativeFollowUp: {ScopeSession, ScopeAccount, ScopeIP},
	RateResponse:       {ScopeSession, ScopeIP},
	RateAppComplete:    {ScopeIP},
	RateBrowserSubmit:  {ScopeSession, ScopeAccount, ScopeIP},
	RatePAR:            {ScopeIP, ScopeClient},
	RateToken:          {ScopeIP, ScopeClient},
	RateIntrospect:     {ScopeIP, ScopeClient},
	RateRevoke:         {ScopeIP, ScopeClient},
	RateDCWallet:       {ScopeIP},
	RateReachApp:       {ScopeIP},
	RateReachClient:    {ScopeIP},
}

// DefaultRateRules is the built-in table. The numbers are meant to stop
// floods and guessing without a legitimate user ever meeting them:
//
//   - ip: 20 session creations per second (burst 60) — a whole NAT or
//     carrier-grade NAT shares an address, and one sign-in is one session
//     — and 50 follow-ups per second (a sign-in has two to four). Servers
//     (PAR, token, introspection, revocation callers) get more.
//   - client: 2000 session creations, PARs and revocations and 5000
//     token and introspection requests per second (burst twice that):
//     the whole population of an app. It bounds what one client can cost
//     the server, above what a 2-vCPU instance serves (BENCHMARKS.md),
//     because anyone can name a public client: a lower limit would let
//     an attacker keep every user of the app out.
//   - account: no default. Anyone can name an account, so any limit per
//     account is a lever to keep its owner out (a lockout weapon): the
//     account lockout of the password step protects accounts instead,
//     with a delay that the user's second factor passes and federation
//     never meets (docs/security.md "Account lockout"). An operator may
//     still add an account rule.
//   - session: 10 per second (burst 30): a sign-in has a handful of steps;
//     polling and hammering one session stop here.
func DefaultRateRules() []RateRule {
	r := func(ep, scope string, rate int, period time.Duration, burst int) RateRule {
		return RateRule{Endpoint: ep, Scope: scope, Rate: rate, Period: period, Burst: burst}
	}
	return []RateRule{
		r(RateNativeInitial, ScopeIP, 20, time.Second, 60),
		r(RateNativeInitial, ScopeClient, 2000, time.Second, 4000),
		r(RateNativeFollowUp, ScopeSession, 10, time.Second, 30),
		r(RateNativeFollowUp, ScopeIP, 50, time.Second, 150),
		r(RateResponse, ScopeSession, 10, time.Second, 30),
		r(RateResponse, ScopeIP, 20, time.Second, 60),
		r(RateAppComplete, ScopeIP, 20, time.Second, 60),
		r(RateBrowserSubmit, ScopeSession, 10, time.Second, 30),
		r(RateBrowserSubmit, ScopeIP, 20, time.Second, 60),
		r(RatePAR, ScopeIP, 100, time.Second, 200),
		r(RatePAR, ScopeClient, 2000, time.Second, 4000),
		r(RateToken, ScopeIP, 100, time.Second, 200),
		r(RateToken, ScopeClient, 5000, time.Second, 10000),
		r(RateIntrospect, ScopeIP, 1000, time.Second, 2000),
		r(RateIntrospect, ScopeClient, 5000, time.Second, 10000),
		r(RateRevoke, ScopeIP, 100, time.Second, 200),
		r(RateRevoke, ScopeClient, 2000, time.Second, 4000),
		// A wallet fetches one request and posts one response per
		// presentation; a carrier NAT shares an address.
		r(RateDCWallet, ScopeIP, 20, time.Second, 60),
		// A device holds one long poll and answers a few tasks; a client
		// polls each task every poll_interval. A carrier NAT shares an
		// address.
		r(RateReachApp, ScopeIP, 50, time.Second, 150),
		r(RateReachClient, ScopeIP, 50, time.Second, 150),
	}
}

// On reports whether rate limits apply (Enabled, default true).
func (r RateLimits) On() bool { return r.Enabled == nil || *r.Enabled }

// Effective is the table in force: the defaults with every configured
// rule in the place of the default for its endpoint and scope, without
// the rules that are off, in the order of DefaultRateRules. Nil when rate
// limits are off.
func (r RateLimits) Effective() []RateRule {
	if !r.On() {
		return nil
	}
	out := DefaultRateRules()
	for _, rule := range r.Rules {
		rule = rule.withDefaults()
		i := slices.IndexFunc(out, func(d RateRule) bool { return d.Endpoint == rule.Endpoint && d.Scope == rule.Scope })
		if i >= 0 {
			out[i] = rule
		} else {
			out = append(out, rule)
		}
	}
	return slices.DeleteFunc(out, func(r RateRule) bool { return r.Off })
}

func (r RateRule) withDefaults() RateRule {
	if r.Period == 0 {
		r.Period = time.Second
	}
	if r.Burst == 0 {
		r.Burst = r.Rate
	}
	return r
}

// validate reports every problem of the rate limits, with its path.
func (r RateLimits) validate() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	seen := map[[2]string]int{}
	for i, rule := range r.Rules {
		p := fmt.Sprintf("limits.rate.rules[%d]", i)
		scopes, ok := RateEndpoints[rule.Endpoint]
		if !ok {
			add("%s.endpoint: %q is not one of %s", p, rule.Endpoint, strings.Join(rateEndpointNames(), ", "))
		} else if !slices.Contains(scopes, rule.Scope) {
			add("%s.scope: %q is not a scope of %s (%s)", p, rule.Scope, rule.Endpoint, strings.Join(scopes, ", "))
		}
		k := [2]string{rule.Endpoint, rule.Scope}
		if j, dup := seen[k]; dup {
			add("%s: endpoint %s, scope %s duplicates limits.rate.rules[%d]", p, rule.Endpoint, rule.Scope, j)
		} else {
			seen[k] = i
		}
		if rule.Off {
			continue
		}
		rule = rule.withDefaults()
		switch {
		case rule.Rate < 1:
			add("%s.rate: must be at least 1 (use off: true to remove a limit)", p)
		case rule.Period < 0:
			add("%s.period: must be positive", p)
		case rule.Burst < 1 || rule.Burst > 1_000_000:
			add("%s.burst: must be between 1 and 1000000", p)
		case rule.Period.Microseconds() < int64(rule.Rate):
			add("%s: period / rate must be at least 1µs", p)
		case time.Duration(rule.Burst)*(rule.Period/time.Duration(rule.Rate)) > 24*time.Hour:
			add("%s: burst × period / rate must be at most 24h (how long a key is remembered)", p)
		}
	}
	return errs
}

func rateEndpointNames() []string {
	names := make([]string, 0, len(RateEndpoints))
	for n := range RateEndpoints {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ParseTrustedProxies parses trusted_proxies: each entry an IP address or
// a CIDR prefix (an address stands for itself alone). IPv4-mapped IPv6
// addresses are taken as IPv4.
func ParseTrustedProxies(entries []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(entries))
	for i, e := range entries {
		p, err := parseTrustedProxy(e)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies[%d]: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func parseTrustedProxy(e string) (netip.Prefix, error) {
	e = strings.TrimSpace(e)
	if p, err := netip.ParsePrefix(e); err == nil {
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(e)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix (e.g. 10.0.0.0/8, 192.0.2.7, 2001:db8::/32)", e)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
