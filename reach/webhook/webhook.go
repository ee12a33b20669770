package webhook

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/fedas/fedas/netguard"
)

// Type is the JOSE typ of a wake-up token; ContentType is the media type
// of the POST body carrying it.
const (
	Type        = "reach-wake+jwt"
	ContentType = "application/" + Type
	// EventWake is the only event type.
	EventWake = "wake"
)

// Defaults (Config zero values).
const (
	DefaultLifetime = 60 * time.Second
	DefaultAttempts = 3
	DefaultBackoff  = 500 * time.Millisecond
	DefaultTimeout  = 5 * time.Second
	// MaxLifetime bounds exp − iat on the verifying side.
	MaxLifetime = 5 * time.Minute
	// drainBytes of a response body are read so the connection is reused.
	drainBytes = 4 << 10
)

var (
	// ErrForbidden: the URL is refused by the SSRF guard (netguard);
	// nothing was sent. It also matches netguard.ErrForbidden. Permanent.
	ErrForbidden = fmt.Errorf("webhook: destination refused: %w", netguard.ErrForbidden)
	// ErrRejected: the receiver answered a final non-2xx status (a 4xx
	// other than 408/429, or any 3xx: redirects are never followed).
	// Permanent: retrying would not help.
	ErrRejected = errors.New("webhook: rejected by receiver")
	// ErrGaveUp: every attempt failed transiently (5xx, 408, 429, a
	// network error or timeout). The channel is unavailable for now.
	ErrGaveUp = errors.New("webhook: undelivered after all attempts")
	// ErrInvalidToken: VerifyWake refused the token. The wrapped text
	// says why; it never contains the token.
	ErrInvalidToken = errors.New("webhook: invalid wake-up token")
)

// Event is the content of a wake-up: which device should look at its
// inbox. It has no other field on purpose (§5 R18).
type Event struct {
	Type     string `json:"type"`
	DeviceID string `json:"device_id"`
}

// Claims are the claims of a wake-up token, exactly.
type Claims struct {
	Issuer   string           `json:"iss"`
	Audience string           `json:"aud"`
	IssuedAt *jwt.NumericDate `json:"iat"`
	Expiry   *jwt.NumericDate `json:"exp"`
	ID       string           `json:"jti"`
	Event    Event            `json:"event"`
}

// Config configures a Sender.
type Config struct {
	// Issuer is our issuer identifier (iss).
	Issuer string
	// Key signs (ES256: P-256); KeyID is its kid in our JWKS.
	Key   *ecdsa.PrivateKey
	KeyID string
	// Guard is the SSRF policy; the zero value is production (https to
	// globally reachable addresses only). Tests set AllowLoopback.
	Guard netguard.Options
	// Client overrides the HTTP client; nil means netguard.Client(Guard
	// with Timeout). It must not follow redirects.
	Client *http.Client
	// Timeout bounds one attempt (default DefaultTimeout).
	Timeout time.Duration
	// Lifetime is exp − iat (default DefaultLifetime; at most MaxLifetime).
	Lifetime time.Duration
	// Attempts (default 3) and Backoff (default 500 ms, doubled after
	// each failed attempt).
	Attempts int
	Backoff  time.Duration
	// Sleep waits between attempts; nil means a timer that ends early
	// with ctx. Tests inject one that records instead of waiting.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock (default time.Now); NewID makes a jti (default 16
	// random bytes, base64url).
	Now   func() time.Time
	NewID func() string
}

// Sender delivers signed wake-ups. It is safe for concurrent use.
type Sender struct {
	cfg    Config
	signer jose.Signer
	client *http.Client
}

// New checks cfg and builds a Sender.
func New(cfg Config) (*Sender, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("webhook: Issuer required")
	}
	if cfg.Key == nil || cfg.Key.Curve != elliptic.P256() {
		return nil, errors.New("webhook: a P-256 key is required (ES256)")
	}
	if cfg.KeyID == "" {
		return nil, errors.New("webhook: KeyID required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.Lifetime > MaxLifetime {
		return nil, fmt.Errorf("webhook: Lifetime %v above %v", cfg.Lifetime, MaxLifetime)
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = randomID
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: cfg.Key},
		(&jose.SignerOptions{}).WithType(Type).WithHeader("kid", cfg.KeyID))
	if err != nil {
		return nil, fmt.Errorf("webhook: signer: %w", err)
	}
	client := cfg.Client
	if client == nil {
		g := cfg.Guard
		g.Timeout = cfg.Timeout
		client = netguard.Client(g)
	}
	return &Sender{cfg: cfg, signer: signer, client: client}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Sign returns the wake-up token for deviceID addressed to url.
func (s *Sender) Sign(url, deviceID string) (string, error) {
	if deviceID == "" {
		return "", errors.New("webhook: empty device id")
	}
	now := s.cfg.Now()
	c := Claims{
		Issuer:   s.cfg.Issuer,
		Audience: url,
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(now.Add(s.cfg.Lifetime)),
		ID:       s.cfg.NewID(),
		Event:    Event{Type: EventWake, DeviceID: deviceID},
	}
	tok, err := jwt.Signed(s.signer).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("webhook: sign: %w", err)
	}
	return tok, nil
}

// Deliver POSTs a signed wake-up for deviceID to url: the URL is checked
// by the SSRF guard first (ErrForbidden, nothing sent), then up to
// Attempts POSTs of the same token are made, waiting Backoff, 2×Backoff, …
// between them. It returns nil on the first 2xx, ErrRejected on a final
// refusal, ErrGaveUp when every attempt failed transiently, or ctx's error.
func (s *Sender) Deliver(ctx context.Context, url, deviceID string) error {
	if err := netguard.CheckURL(url, s.cfg.Guard); err != nil {
		return fmt.Errorf("%w: %w", ErrForbidden, err)
	}
	tok, err := s.Sign(url, deviceID)
	if err != nil {
		return err
	}
	wait := s.cfg.Backoff
	var last error
	for attempt := 0; attempt < s.cfg.Attempts; attempt++ {
		if attempt > 0 {
			if err := s.cfg.Sleep(ctx, wait); err != nil {
				return err
			}
			wait *= 2
		}
		retry, err := s.post(ctx, url, tok)
		if err == nil {
			return nil
		}
		if !retry {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		last = err
	}
	return fmt.Errorf("%w (%d attempts): %w", ErrGaveUp, s.cfg.Attempts, last)
}

// post makes one attempt and reports whether a failure is worth retrying.
func (s *Sender) post(ctx context.Context, url, tok string) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(tok))
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrForbidden, err)
	}
	req.Header.Set("Content-Type", ContentType)
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(err, netguard.ErrForbidden) {
			// Refused at dial time (e.g. the name resolved to a private
			// address): as permanent as a refused URL.
			return false, fmt.Errorf("%w: %w", ErrForbidden, err)
		}
		return true, fmt.Errorf("webhook: post: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
	_ = resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return false, nil
	case code >= 500, code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return true, fmt.Errorf("webhook: receiver answered %d", code)
	default:
		return false, fmt.Errorf("%w: status %d", ErrRejected, code)
	}
}

// Verifier checks wake-up tokens on the receiving side.
type Verifier struct {
	// JWKS holds the issuer's public keys; the token's kid selects one.
	JWKS *jose.JSONWebKeySet
	// Audience is the receiver's own webhook URL (aud must equal it).
	Audience string
	// Issuer, when set, must equal iss.
	Issuer string
	// Now is the clock (default time.Now); Leeway the allowed clock skew
	// (default 30 s, RFC 7519 §4.1.4 "some small leeway").
	Now    func() time.Time
	Leeway time.Duration
}

// VerifyWake verifies a wake-up token against the issuer's JWKS and the
// receiver's URL now; see Verifier for the checks.
func VerifyWake(token string, jwks *jose.JSONWebKeySet, expectAud string) (*Claims, error) {
	return (&Verifier{JWKS: jwks, Audience: expectAud}).Verify(token)
}

// Verify checks: compact JWS, ES256 only, typ reach-wake+jwt, a kid
// naming exactly one key of JWKS, the signature, aud, iss (if
// configured), exp and iat within leeway, exp − iat ≤ MaxLifetime, a jti,
// and event {type: wake, non-empty device_id}. Every refusal matches
// ErrInvalidToken.
func (v *Verifier) Verify(token string) (*Claims, error) {
	bad := func(why string) error { return fmt.Errorf("%w: %s", ErrInvalidToken, why) }
	if v.JWKS == nil || v.Audience == "" {
		return nil, errors.New("webhook: Verifier needs JWKS and Audience")
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, bad("not an ES256 compact JWS")
	}
	if len(tok.Headers) != 1 {
		return nil, bad("exactly one signature expected")
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, Type) && !strings.EqualFold(typ, ContentType) {
		return nil, bad("typ is not " + Type)
	}
	if h.KeyID == "" {
		return nil, bad("kid missing")
	}
	keys := v.JWKS.Key(h.KeyID)
	if len(keys) != 1 {
		return nil, bad("kid does not name exactly one key")
	}
	var c Claims
	if err := tok.Claims(keys[0].Public().Key, &c); err != nil {
		return nil, bad("signature or claims do not verify")
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	leeway := v.Leeway
	if leeway <= 0 {
		leeway = 30 * time.Second
	}
	t := now()
	switch {
	case c.Audience != v.Audience:
		return nil, bad("aud is not this receiver")
	case v.Issuer != "" && c.Issuer != v.Issuer:
		return nil, bad("iss mismatch")
	case c.Issuer == "":
		return nil, bad("iss missing")
	case c.IssuedAt == nil || c.Expiry == nil:
		return nil, bad("iat and exp required")
	case t.After(c.Expiry.Time().Add(leeway)):
		return nil, bad("expired")
	case c.IssuedAt.Time().After(t.Add(leeway)):
		return nil, bad("issued in the future")
	case c.Expiry.Time().Sub(c.IssuedAt.Time()) > MaxLifetime || !c.Expiry.Time().After(c.IssuedAt.Time()):
		return nil, bad("lifetime out of bounds")
	case c.ID == "":
		return nil, bad("jti missing")
	case c.Event.Type != EventWake || c.Event.DeviceID == "":
		return nil, bad("event is not a wake-up")
	}
	return &c, nil
}
