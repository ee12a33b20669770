package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
)

// ErrUnknownKey matches a lookup for a "kid" (RFC 7515 §4.1.4) that the
// downstream's JWK Set (RFC 7517 §5) does not hold as a public signing key,
// even after the one refetch MinRefresh allows. For an ID Token it comes
// wrapped in an *IDTokenError, so it also matches ErrInvalidIDToken
// (SECURITY-RESULTS.md B13, D9).
var ErrUnknownKey = errors.New("federation: no signing key with this kid in the JWK set")

// privateJWKMembers are the RFC 7518 §6.2.2, §6.3.2, §6.4 and RFC 8037 §2
// members that carry private or symmetric key material. A JWK Set we
// verify with must hold public keys only; a key that leaks them is skipped
// rather than trusted (go-jose parses JWKs with private parts without
// complaint).
var privateJWKMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// JWKSOptions configures a JWKSCache (RFC 7517 §5): the same knobs as a
// MetadataCache, applied per jwks_uri instead of per issuer. An unknown
// kid triggers a refetch at most once per MinRefresh (SECURITY-RESULTS.md D9).
type JWKSOptions = FetchOptions

// JWKSCache fetches and caches downstream JWK Sets (RFC 7517 §5) by
// jwks_uri (RFC 8414 §2). It is safe for concurrent use. The URIs it is
// given must come from validated downstream metadata, never from a request
// or a token header such as "jku" (SECURITY-RESULTS.md K04).
type JWKSCache struct {
	cfg fetchConfig
	sf  singleflight.Group

	mu      sync.Mutex
	entries map[string]*jwksEntry
}

type jwksEntry struct {
	keys        map[string]jose.JSONWebKey
	hasSet      bool
	fetched     time.Time
	lastAttempt time.Time
	lastErr     error
	inFlight    bool
}

// NewJWKSCache builds a JWK Set cache (RFC 7517 §5). Nothing is fetched
// until Key.
func NewJWKSCache(opts JWKSOptions) *JWKSCache {
	return &JWKSCache{
		cfg: newFetchConfig(opts.HTTPClient, opts.TTL, opts.MinRefresh, opts.Timeout, opts.MaxBytes,
			opts.AllowLoopbackHTTP, opts.Logger, opts.Now),
		entries: make(map[string]*jwksEntry),
	}
}

// Key returns the public signing key with the given kid (RFC 7515 §4.1.4)
// from the JWK Set at jwksURI (RFC 7517 §5). A cached set younger than TTL
// answers directly; an unknown kid triggers one refetch (key rotation, OIDC
// Core §10.1.1), but never more than one fetch per MinRefresh per URI, so
// tokens with made-up kids cannot make us hammer the downstream
// (SECURITY-RESULTS.md D9). Fetch failures wrap ErrUnavailable; a kid that is not
// in the set wraps ErrUnknownKey.
func (c *JWKSCache) Key(ctx context.Context, jwksURI, kid string) (jose.JSONWebKey, error) {
	if err := checkFetchURL(jwksURI, c.cfg.allowLoopback); err != nil {
		return jose.JSONWebKey{}, unavailable(jwksURI, 0, "jwks_uri rejected", err)
	}
	if kid == "" {
		return jose.JSONWebKey{}, fmt.Errorf("%w: empty kid", ErrUnknownKey)
	}
	c.mu.Lock()
	k, err, done := c.decideLocked(c.entries[jwksURI], jwksURI, kid, c.cfg.now())
	c.mu.Unlock()
	if done {
		return k, err
	}
	if err := ctx.Err(); err != nil {
		return jose.JSONWebKey{}, unavailable(jwksURI, 0, "caller context done", err)
	}
	ch := c.sf.DoChan(jwksURI, func() (any, error) { return c.refresh(ctx, jwksURI), nil })
	select {
	case r := <-ch:
		snap := r.Val.(jwksSnapshot)
		return snap.lookup(jwksURI, kid)
	case <-ctx.Done():
		return jose.JSONWebKey{}, unavailable(jwksURI, 0, "caller gave up waiting", ctx.Err())
	}
}

// Invalidate forgets the cached set for jwksURI and its refresh bound. For
// administrative use (SECURITY-RESULTS.md D10), not per request.
func (c *JWKSCache) Invalidate(jwksURI string) {
	c.mu.Lock()
	delete(c.entries, jwksURI)
	c.mu.Unlock()
	c.sf.Forget(jwksURI)
}

// jwksSnapshot is the outcome of one refresh, shared by every caller that
// waited on it.
type jwksSnapshot struct {
	keys   map[string]jose.JSONWebKey // nil when no usable set
	usable bool
	err    error // latest fetch error, nil if it succeeded
}

func (s jwksSnapshot) lookup(uri, kid string) (jose.JSONWebKey, error) {
	if !s.usable {
		if s.err != nil {
			return jose.JSONWebKey{}, s.err
		}
		return jose.JSONWebKey{}, unavailable(uri, 0, "no JWK set available", nil)
	}
	if k, ok := s.keys[kid]; ok {
		return k, nil
	}
	if s.err != nil {
		// Serving a stale set whose refresh failed: the kid may well be
		// in the set we cannot fetch, so this is a dependency failure,
		// not proof of a forged token.
		return jose.JSONWebKey{}, s.err
	}
	return jose.JSONWebKey{}, fmt.Errorf("%w: kid %s at %s", ErrUnknownKey, logSafe(kid), uri)
}

func (c *JWKSCache) snapshotLocked(e *jwksEntry, now time.Time) jwksSnapshot {
	if e == nil {
		return jwksSnapshot{}
	}
	usable := e.hasSet && (e.lastErr == nil || now.Before(e.fetched.Add(2*c.cfg.ttl)))
	return jwksSnapshot{keys: e.keys, usable: usable, err: e.lastErr}
}

// decideLocked answers without fetching when the set is fresh and has the
// kid, or when the last fetch was too recent to repeat.
func (c *JWKSCache) decideLocked(e *jwksEntry, uri, kid string, now time.Time) (jose.JSONWebKey, error, bool) {
	if e == nil {
		return jose.JSONWebKey{}, nil, false
	}
	if e.hasSet && now.Before(e.fetched.Add(c.cfg.ttl)) {
		if k, ok := e.keys[kid]; ok {
			return k, nil, true
		}
	}
	if e.inFlight {
		// Join the running fetch instead of answering from old state.
		return jose.JSONWebKey{}, nil, false
	}
	if !e.lastAttempt.IsZero() && now.Sub(e.lastAttempt) < c.cfg.minRefresh {
		k, err := c.snapshotLocked(e, now).lookup(uri, kid)
		return k, err, true
	}
	return jose.JSONWebKey{}, nil, false
}

func (c *JWKSCache) refresh(ctx context.Context, uri string) jwksSnapshot {
	start := c.cfg.now()
	c.mu.Lock()
	e := c.entries[uri]
	if e != nil && !e.inFlight && !e.lastAttempt.IsZero() && start.Sub(e.lastAttempt) < c.cfg.minRefresh {
		// Another flight just fetched; reuse its outcome.
		snap := c.snapshotLocked(e, start)
		c.mu.Unlock()
		return snap
	}
	if e == nil {
		e = &jwksEntry{}
		c.entries[uri] = e
	}
	e.lastAttempt, e.inFlight = start, true
	c.mu.Unlock()

	keys, err := c.fetch(ctx, uri)

	c.mu.Lock()
	defer c.mu.Unlock()
	e.inFlight = false
	now := c.cfg.now()
	if c.entries[uri] != e {
		// Invalidated meanwhile: answer this flight's callers only.
		if err != nil {
			return jwksSnapshot{err: err}
		}
		return jwksSnapshot{keys: keys, usable: true}
	}
	if err == nil {
		e.keys, e.hasSet, e.fetched, e.lastErr = keys, true, start, nil
		return c.snapshotLocked(e, now)
	}
	e.lastErr = err
	snap := c.snapshotLocked(e, now)
	if snap.usable {
		c.cfg.log.Warn("federation: JWKS refresh failed; using stale key set",
			zap.String("jwks_uri", uri), zap.Time("fetched", e.fetched), zap.Error(err))
	} else {
		c.cfg.log.Warn("federation: JWKS fetch failed", zap.String("jwks_uri", uri), zap.Error(err))
	}
	return snap
}

func (c *JWKSCache) fetch(ctx context.Context, uri string) (map[string]jose.JSONWebKey, error) {
	body, err := c.cfg.get(ctx, uri, isJSONMediaType)
	if err != nil {
		return nil, err
	}
	return parseJWKS(uri, body, c.cfg.log)
}

// parseJWKS keeps the usable public signing keys of an RFC 7517 §5 JWK
// Set, indexed by kid. Keys we cannot or must not use (unsupported kty,
// "use" other than "sig", no kid, private or symmetric material) are
// skipped one by one so that one odd key does not take the whole set down.
// The first key with a given kid wins: kids are meant to be unique within a
// set (RFC 7517 §4.5).
func parseJWKS(uri string, body []byte, log *zap.Logger) (map[string]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, unavailable(uri, http.StatusOK, "JWK set is not a JSON object with a keys array", err)
	}
	if set.Keys == nil {
		return nil, unavailable(uri, http.StatusOK, "JWK set has no keys member", nil)
	}
	keys := make(map[string]jose.JSONWebKey, len(set.Keys))
	for i, raw := range set.Keys {
		skip := func(why string) {
			log.Debug("federation: skipping JWK", zap.String("jwks_uri", uri), zap.Int("index", i), zap.String("reason", why))
		}
		var members map[string]json.RawMessage
		if err := json.Unmarshal(raw, &members); err != nil {
			skip("not a JSON object")
			continue
		}
		private := false
		for _, m := range privateJWKMembers {
			if _, ok := members[m]; ok {
				private = true
			}
		}
		if private {
			log.Warn("federation: JWK set publishes private or symmetric key material; key ignored",
				zap.String("jwks_uri", uri), zap.Int("index", i))
			continue
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			skip("unsupported or malformed key")
			continue
		}
		switch {
		case k.KeyID == "":
			skip("no kid")
		case k.Use != "" && k.Use != "sig":
			skip("use is not sig")
		case !k.Valid() || !k.IsPublic():
			skip("not a valid public key")
		default:
			if _, dup := keys[k.KeyID]; dup {
				skip("duplicate kid")
				continue
			}
			keys[k.KeyID] = k
		}
	}
	return keys, nil
}
