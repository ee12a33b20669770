package statuslist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/fedas/fedas/netguard"
	"golang.org/x/sync/singleflight"
)

// Client defaults.
const (
	DefaultMaxBody    = 4 << 20 // compressed token bytes
	DefaultTimeout    = 5 * time.Second
	DefaultMaxEntries = 1024
	DefaultCacheTTL   = 5 * time.Minute              // when the token has neither ttl nor exp
	DefaultMaxTTL     = 24 * time.Hour               // upper bound on any cache lifetime
	mediaType         = "application/statuslist+jwt" // TSL §5.1, §8.1
)

// Reference is the status claim's `status_list` object (TSL §6.2).
type Reference struct {
	Idx int    `json:"idx"`
	URI string `json:"uri"`
}

// ParseClaim decodes a credential's `status` claim value,
// {"status_list":{"idx":N,"uri":"https://…"}} (TSL §6.2, SD-JWT VC §2.4).
// idx must be a non-negative integer and uri non-empty.
func ParseClaim(raw json.RawMessage) (Reference, error) {
	var c struct {
		StatusList *struct {
			Idx json.RawMessage `json:"idx"`
			URI string          `json:"uri"`
		} `json:"status_list"`
	}
	if err := json.Unmarshal(raw, &c); err != nil || c.StatusList == nil || c.StatusList.Idx == nil || c.StatusList.URI == "" {
		return Reference{}, ErrClaim
	}
	// A bare JSON integer only: ParseInt refuses "1", 1.5, 1e3 and -1 is
	// caught below.
	idx, err := strconv.ParseInt(string(c.StatusList.Idx), 10, 0)
	if err != nil || idx < 0 {
		return Reference{}, ErrClaim
	}
	return Reference{Idx: int(idx), URI: c.StatusList.URI}, nil
}

// Options configure a Client. HTTP and Key are required.
type Options struct {
	// HTTP performs the fetch. Production: netguard.Client(netguard.Options{}),
	// so the dial-time address checks apply. Redirects are never followed
	// whatever its CheckRedirect says (the Client copies it and overrides).
	HTTP *http.Client
	// Key supplies each list's verification key (see KeyFunc).
	Key KeyFunc
	// CheckURL vets the URI before any fetch. Nil means
	// netguard.CheckURL(uri, netguard.Options{}) (https only, public
	// hosts). TEST SEAM: only tests replace it (to reach an httptest server
	// on 127.0.0.1); production code must leave it nil.
	CheckURL func(uri string) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Leeway on iat/exp; see ParseOptions.
	Leeway time.Duration
	// MaxBody bounds the fetched token in bytes (default DefaultMaxBody).
	MaxBody int64
	// MaxDecompressed bounds a decompressed list (default 16 MiB).
	MaxDecompressed int64
	// Timeout bounds one fetch (default DefaultTimeout).
	Timeout time.Duration
	// MaxEntries bounds the cache (default DefaultMaxEntries).
	MaxEntries int
	// DefaultCacheTTL applies when a token has neither ttl nor exp.
	DefaultCacheTTL time.Duration
	// MaxTTL caps every cache lifetime (default DefaultMaxTTL).
	MaxTTL time.Duration
}

// Client checks status claims against fetched, cached status lists
// (TSL §8). Safe for concurrent use.
type Client struct {
	o     Options
	http  http.Client
	group singleflight.Group

	mu    sync.Mutex
	cache map[string]entry
}

type entry struct {
	list  *List
	until time.Time
}

// NewClient validates o, fills defaults and returns a Client.
func NewClient(o Options) (*Client, error) {
	if o.HTTP == nil || o.Key == nil {
		return nil, errors.New("statuslist: Options.HTTP and Options.Key are required")
	}
	if o.CheckURL == nil {
		o.CheckURL = func(u string) error { return netguard.CheckURL(u, netguard.Options{}) }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.MaxDecompressed <= 0 {
		o.MaxDecompressed = DefaultMaxDecompressed
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.DefaultCacheTTL <= 0 {
		o.DefaultCacheTTL = DefaultCacheTTL
	}
	if o.MaxTTL <= 0 {
		o.MaxTTL = DefaultMaxTTL
	}
	c := &Client{o: o, http: *o.HTTP, cache: map[string]entry{}}
	c.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c, nil
}

// Check resolves a credential's `status` claim value to its Status.
func (c *Client) Check(ctx context.Context, statusClaim json.RawMessage) (Status, error) {
	ref, err := ParseClaim(statusClaim)
	if err != nil {
		return 0, err
	}
	return c.CheckRef(ctx, ref)
}

// CheckRef resolves ref: the list at ref.URI (cached or fetched) at ref.Idx.
func (c *Client) CheckRef(ctx context.Context, ref Reference) (Status, error) {
	l, err := c.List(ctx, ref.URI)
	if err != nil {
		return 0, err
	}
	return l.Status(ref.Idx)
}

// List returns the verified list at uri, from the cache while it is fresh,
// otherwise fetched once for all concurrent callers.
func (c *Client) List(ctx context.Context, uri string) (*List, error) {
	// https only, whatever CheckURL allows (TSL §11.4 / SD-JWT VC §7.1):
	// checked here so the test seam cannot relax it.
	if u, err := url.Parse(uri); err != nil || u.Scheme != "https" {
		return nil, fmt.Errorf("%w: not an https URL", ErrForbiddenURI)
	}
	if err := c.o.CheckURL(uri); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrForbiddenURI, err)
	}
	if l := c.cached(uri); l != nil {
		return l, nil
	}
	ch := c.group.DoChan(uri, func() (any, error) {
		if l := c.cached(uri); l != nil {
			return l, nil
		}
		// Detached from the first caller's cancellation: a waiter must not
		// fail because another caller gave up. Bounded by Timeout.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.Timeout)
		defer cancel()
		l, err := c.fetch(fctx, uri)
		if err != nil {
			return nil, err
		}
		c.store(uri, l)
		return l, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*List), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrFetch, ctx.Err())
	}
}

func (c *Client) fetch(ctx context.Context, uri string) (*List, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrForbiddenURI, err)
	}
	req.Header.Set("Accept", mediaType)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: HTTP %d", ErrFetch, resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != mediaType {
		return nil, fmt.Errorf("%w: content type not %s", ErrFetch, mediaType)
	}
	if resp.ContentLength > c.o.MaxBody {
		return nil, fmt.Errorf("%w: body over %d bytes", ErrTooLarge, c.o.MaxBody)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.o.MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFetch, err)
	}
	if int64(len(body)) > c.o.MaxBody {
		return nil, fmt.Errorf("%w: body over %d bytes", ErrTooLarge, c.o.MaxBody)
	}
	return ParseToken(string(body), ParseOptions{
		URI: uri, Key: c.o.Key, Now: c.o.Now, Leeway: c.o.Leeway, MaxDecompressed: c.o.MaxDecompressed,
	})
}

func (c *Client) cached(uri string) *List {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.cache[uri]
	if !ok {
		return nil
	}
	if !c.o.Now().Before(e.until) {
		delete(c.cache, uri)
		return nil
	}
	return e.list
}

// store caches l until min(now+ttl, exp, now+MaxTTL); with neither ttl nor
// exp, now+DefaultCacheTTL (TSL §13.7: ttl is the longest a relying party
// may cache). When full, expired entries go first, then the soonest-expiring.
func (c *Client) store(uri string, l *List) {
	now := c.o.Now()
	until := now.Add(c.o.MaxTTL)
	if l.TTL == 0 && l.Expiry.IsZero() {
		until = now.Add(min(c.o.DefaultCacheTTL, c.o.MaxTTL))
	}
	if l.TTL > 0 && now.Add(l.TTL).Before(until) {
		until = now.Add(l.TTL)
	}
	if !l.Expiry.IsZero() && l.Expiry.Before(until) {
		until = l.Expiry
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.cache[uri]; !ok && len(c.cache) >= c.o.MaxEntries {
		var victim string
		var soonest time.Time
		for k, e := range c.cache {
			if !now.Before(e.until) {
				delete(c.cache, k)
				continue
			}
			if victim == "" || e.until.Before(soonest) {
				victim, soonest = k, e.until
			}
		}
		if len(c.cache) >= c.o.MaxEntries && victim != "" {
			delete(c.cache, victim)
		}
	}
	c.cache[uri] = entry{list: l, until: until}
}
