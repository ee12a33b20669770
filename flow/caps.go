package flow

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"hash"
	"net/netip"
	"time"

	"go.uber.org/zap"

	"github.com/fedas/fedas/events"
	"github.com/fedas/fedas/storage"
)

// LiveCaps bound the auth sessions alive at once per client address and
// per client (docs/security.md "Caps"). A session takes a slot when it is
// created and gives it back when it ends; a slot whose release was lost
// frees itself when the session expires.
type LiveCaps struct {
	// Counter keeps the slots (the store: storage.LiveCounter); nil turns
	// the caps off.
	Counter storage.LiveCounter
	// PerIP is the cap per client address (an IPv6 address counts by its
	// /64); PerClient the cap per client. Zero or less turns that cap off.
	PerIP, PerClient int
	// Key (32 bytes) keys the digests that name the scopes in storage, so
	// that no address is stored nor recoverable by hashing every address.
	// Instances sharing a store must share it; nil means a random key.
	Key []byte
}

// DefaultMaxHops is the federation hops a session may make when
// Options.MaxHops is not set (config limits.max_federation_hops).
const DefaultMaxHops = 3

// Scopes of the live-session caps, as rate_limit.hit names them.
const (
	ScopeLiveIP     = "live_ip"
	ScopeLiveClient = "live_client"
)

// liveRef is a session's slot, kept in the session so that whichever
// request ends it (another device, a browser, our app) releases it.
type liveRef struct {
	Member string   `json:"m"`
	Keys   []string `json:"k"`
}

// liveSlot is one request's reservation: made before the first side
// effect of a new session (consuming a pushed request, pushing to a
// downstream, storing it), taken by the session the request stores, and
// released when the request ends without one.
type liveSlot struct {
	ip       string
	clientID string
	ref      liveRef
	admitted bool
	kept     bool
}

type slotKey struct{}

// withSlot gives the request its (empty) reservation.
func (e *Engine) withSlot(ctx context.Context, r Request) (context.Context, *liveSlot) {
	if e.o.Live.Counter == nil {
		return ctx, nil
	}
	sl := &liveSlot{ip: r.ClientIP}
	return context.WithValue(ctx, slotKey{}, sl), sl
}

func slotOf(ctx context.Context) *liveSlot {
	sl, _ := ctx.Value(slotKey{}).(*liveSlot)
	return sl
}

// dropSlot releases a reservation no session took.
func (e *Engine) dropSlot(ctx context.Context, sl *liveSlot) {
	if sl != nil && sl.admitted && !sl.kept {
		e.releaseRef(ctx, sl.ref)
	}
}

// scopes are the keys and caps a new session of clientID from ip counts
// against: digests, never the address or the client id itself.
func (e *Engine) scopes(clientID, ip string) (keys []string, caps []int, names []string) {
	if n := e.o.Live.PerClient; n > 0 {
		keys, caps, names = append(keys, "c."+e.liveDigest("client", clientID)), append(caps, n), append(names, ScopeLiveClient)
	}
	if n := e.o.Live.PerIP; n > 0 && ip != "" {
		keys, caps, names = append(keys, "ip."+e.liveDigest("ip", AddressScope(ip))), append(caps, n), append(names, ScopeLiveIP)
	}
	return keys, caps, names
}

// AddressScope is the part of an address that identifies one caller: an
// IPv4 address (an IPv4-mapped IPv6 address as IPv4), or an IPv6
// address's /64 (one host's usual allocation: a caller with a /64 must
// not get 2^64 times the cap). The live-session caps and the account
// lockout (authn/lockout) both count callers by it (docs/security.md
// "Client addresses").
func AddressScope(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// liveDigest names a scope: HMAC-SHA-256 of kind and value, cut to 128
// bits. The keyed hashes are pooled: one per digest would cost more
// allocations than the rest of the admission.
func (e *Engine) liveDigest(kind, v string) string {
	m, _ := e.liveMACs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, e.liveKey)
	}
	m.Reset()
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(v))
	var sum [sha256.Size]byte
	d := b64.EncodeToString(m.Sum(sum[:0])[:16])
	e.liveMACs.Put(m)
	return d
}

// reserve takes a live-session slot for a session of clientID about to be
// created by this request, before anything is consumed or pushed: over a
// cap, 429 slow_down with the wait until the scope's oldest session
// expires (docs/decisions.md Q28), and nothing is stored.
func (e *Engine) reserve(ctx context.Context, clientID string) error {
	sl := slotOf(ctx)
	if sl == nil {
		return nil
	}
	if sl.admitted && !sl.kept && sl.clientID == clientID {
		return nil
	}
	keys, caps, names := e.scopes(clientID, sl.ip)
	if len(keys) == 0 {
		return nil
	}
	var m [16]byte
	if _, err := rand.Read(m[:]); err != nil {
		return err
	}
	member, now := b64.EncodeToString(m[:]), e.o.Now()
	a, err := e.o.Live.Counter.Admit(ctx, keys, member, now.Add(e.o.TTL), caps, now)
	if err != nil {
		return err
	}
	if !a.Admitted {
		scope := ScopeLiveClient
		if a.Full >= 0 && a.Full < len(names) {
			scope = names[a.Full]
		}
		e.o.Events.Emit(ctx, events.Event{Name: events.RateLimitHit, ClientID: clientID, Scope: scope})
		desc := "Too many sign-ins in progress for this client; retry later."
		if scope == ScopeLiveIP {
			desc = "Too many sign-ins in progress from this address; retry later."
		}
		return refused(SlowDown(a.RetryAfter, desc))
	}
	*sl = liveSlot{ip: sl.ip, clientID: clientID, ref: liveRef{Member: member, Keys: keys}, admitted: true}
	return nil
}

// admit gives a session about to be stored its slot: the request's
// reservation, or a new one.
func (e *Engine) admit(ctx context.Context, s *session) error {
	if err := e.reserve(ctx, s.ClientID); err != nil {
		return err
	}
	if sl := slotOf(ctx); sl != nil && sl.admitted && !sl.kept {
		ref := sl.ref
		s.x.Live, sl.kept = &ref, true
	}
	return nil
}

// release gives an ended session's slot back (best effort: expiry frees
// it otherwise).
func (e *Engine) release(ctx context.Context, s *session) {
	if s.x.Live != nil {
		e.releaseRef(ctx, *s.x.Live)
	}
}

func (e *Engine) releaseRef(ctx context.Context, ref liveRef) {
	if e.o.Live.Counter == nil || len(ref.Keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := e.o.Live.Counter.Release(ctx, ref.Keys, ref.Member); err != nil {
		events.For(ctx, e.o.Logger).Warn("could not release a live-session slot; it frees itself at the session's expiry", zap.Error(err))
	}
}

// nextHop counts one more push to a downstream for s (the first, a
// re-push after an expired request_uri, a retry after a failure, a
// browser reload): false when the session has made limits.
// max_federation_hops already, so that one session cannot make us push
// to downstreams without end.
func (e *Engine) nextHop(s *session) bool {
	if s.x.Hops >= e.o.MaxHops {
		return false
	}
	s.x.Hops++
	return true
}

// tooManyHops ends a session that has used its hops: access_denied (RFC
// 6749 §4.1.2.1, the server refuses to go on; the request itself is well
// formed, so not invalid_request), and the client starts again.
func (e *Engine) tooManyHops(ctx context.Context, s *session, ds string) Refusal {
	e.end(ctx, s)
	e.hopFailed(ctx, s.ClientID, ds, "", 0, "too_many_hops", true)
	return accessDenied("Too many federation attempts for this sign-in; start again.")
}
