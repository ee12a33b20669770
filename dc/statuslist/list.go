package statuslist

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Status is one entry of a status list (TSL §7.1). Values beyond the
// registered ones are application specific and returned unchanged.
type Status uint8

// Registered status values (TSL §7.1).
const (
	Valid     Status = 0x00
	Invalid   Status = 0x01
	Suspended Status = 0x02
)

// String names the registered values; others print as hex.
func (s Status) String() string {
	switch s {
	case Valid:
		return "VALID"
	case Invalid:
		return "INVALID"
	case Suspended:
		return "SUSPENDED"
	}
	return fmt.Sprintf("0x%02X", uint8(s))
}

// Sentinel errors; every error returned by this package wraps one of them so
// a caller can map it (errors.Is).
var (
	ErrMalformed    = errors.New("statuslist: malformed status list token")
	ErrType         = errors.New("statuslist: wrong typ (want statuslist+jwt)")
	ErrAlgorithm    = errors.New("statuslist: signature algorithm not allowed")
	ErrSignature    = errors.New("statuslist: signature invalid")
	ErrSubject      = errors.New("statuslist: sub does not match the fetched URI")
	ErrIssuedAt     = errors.New("statuslist: iat missing or in the future")
	ErrExpired      = errors.New("statuslist: token expired")
	ErrTTL          = errors.New("statuslist: ttl invalid")
	ErrBits         = errors.New("statuslist: bits must be 1, 2, 4 or 8")
	ErrEncoding     = errors.New("statuslist: lst is not unpadded base64url")
	ErrCompression  = errors.New("statuslist: lst is not a valid zlib stream")
	ErrTooLarge     = errors.New("statuslist: list exceeds the size limit")
	ErrIndex        = errors.New("statuslist: index out of range")
	ErrClaim        = errors.New("statuslist: malformed status claim")
	ErrFetch        = errors.New("statuslist: fetching the status list failed")
	ErrForbiddenURI = errors.New("statuslist: status list URI not allowed")
)

// DefaultMaxDecompressed caps a decompressed list (TSL §11.1 recommends a
// bound): 16 MiB is 134M one-bit entries.
const DefaultMaxDecompressed = 16 << 20

// DefaultLeeway is the clock skew tolerated on iat and exp.
const DefaultLeeway = 60 * time.Second

// AllowedAlgorithms are the only JWS algs accepted (project policy; HAIP
// mandates ES256). "none" and HS* are never accepted.
var AllowedAlgorithms = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.EdDSA, jose.PS256}

// KeyFunc returns the public key that must have signed the status list
// token fetched from uri, given its (unverified) protected header. It
// decides trust: return an error to refuse.
type KeyFunc func(uri string, header jose.Header) (any, error)

// ParseOptions configure ParseToken.
type ParseOptions struct {
	// URI the token was fetched from; `sub` must equal it (TSL §8.3).
	URI string
	// Key supplies the verification key. Required.
	Key KeyFunc
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Leeway tolerated on iat/exp; zero means DefaultLeeway, negative none.
	Leeway time.Duration
	// MaxDecompressed bounds the decompressed list in bytes; zero means
	// DefaultMaxDecompressed.
	MaxDecompressed int64
}

// List is a verified status list (TSL §4, §5.1).
type List struct {
	Bits           int
	Subject        string
	IssuedAt       time.Time
	Expiry         time.Time     // zero if no exp
	TTL            time.Duration // zero if no ttl
	AggregationURI string        // parsed, never fetched
	data           []byte
}

// Len is the number of entries the list holds.
func (l *List) Len() int { return len(l.data) * 8 / l.Bits }

// Status returns entry idx; bits are packed from the least significant bit
// of each byte (TSL §4.1). Out of range is ErrIndex, never Valid.
func (l *List) Status(idx int) (Status, error) {
	return statusAt(l.data, l.Bits, idx)
}

func statusAt(data []byte, bits, idx int) (Status, error) {
	if !validBits(bits) {
		return 0, ErrBits
	}
	per := 8 / bits
	if idx < 0 || idx/per >= len(data) {
		return 0, fmt.Errorf("%w: %d", ErrIndex, idx)
	}
	shift := uint(idx%per) * uint(bits)
	mask := byte(1<<uint(bits) - 1)
	return Status((data[idx/per] >> shift) & mask), nil
}

func validBits(b int) bool { return b == 1 || b == 2 || b == 4 || b == 8 }

// DecodeList decodes a `lst` value: unpadded base64url (TSL §4.1) of a zlib
// stream (RFC 1950 wrapping DEFLATE), inflated to at most max bytes. A
// stream that inflates past max is refused with ErrTooLarge after at most
// max+1 bytes of output, so a zlib bomb costs the cap, never its full size.
func DecodeList(lst string, max int64) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxDecompressed
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(lst)
	if err != nil {
		return nil, ErrEncoding
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCompression, err)
	}
	defer zr.Close()
	var out bytes.Buffer
	n, err := io.Copy(&out, io.LimitReader(zr, max+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCompression, err)
	}
	if n > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: empty list", ErrMalformed)
	}
	return out.Bytes(), nil
}

type claims struct {
	Sub        string      `json:"sub"`
	Iat        json.Number `json:"iat"`
	Exp        json.Number `json:"exp"`
	TTL        json.Number `json:"ttl"`
	StatusList *struct {
		Bits           int    `json:"bits"`
		Lst            string `json:"lst"`
		AggregationURI string `json:"aggregation_uri"`
	} `json:"status_list"`
}

// ParseToken verifies a Status List Token in JWT form (TSL §5.1) and
// returns its list. Checks, in order: compact JWS with one signature; alg in
// AllowedAlgorithms; typ statuslist+jwt; signature by opts.Key; sub ==
// opts.URI; iat present and not in the future; exp not passed; ttl > 0 if
// present; bits ∈ {1,2,4,8}; lst decodes under the cap.
func ParseToken(token string, opts ParseOptions) (*List, error) {
	if opts.Key == nil {
		return nil, fmt.Errorf("%w: no KeyFunc", ErrSignature)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	leeway := opts.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	} else if leeway < 0 {
		leeway = 0
	}
	jws, err := jose.ParseSignedCompact(token, AllowedAlgorithms)
	if err != nil {
		var ua *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &ua) {
			return nil, ErrAlgorithm
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: want one signature", ErrMalformed)
	}
	h := jws.Signatures[0].Protected
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if t := strings.ToLower(typ); t != "statuslist+jwt" && t != "application/statuslist+jwt" {
		return nil, ErrType
	}
	key, err := opts.Key(opts.URI, h)
	if err != nil || key == nil {
		return nil, fmt.Errorf("%w: no key", ErrSignature)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, ErrSignature
	}
	var c claims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	if opts.URI == "" || c.Sub != opts.URI {
		return nil, ErrSubject
	}
	t := now()
	iat, ok := numericDate(c.Iat)
	if !ok || iat.After(t.Add(leeway)) {
		return nil, ErrIssuedAt
	}
	l := &List{Subject: c.Sub, IssuedAt: iat}
	if c.Exp != "" {
		exp, ok := numericDate(c.Exp)
		if !ok {
			return nil, fmt.Errorf("%w: exp", ErrMalformed)
		}
		if !t.Before(exp.Add(leeway)) {
			return nil, ErrExpired
		}
		l.Expiry = exp
	}
	if c.TTL != "" {
		f, err := strconv.ParseFloat(string(c.TTL), 64)
		if err != nil || !(f > 0) || f > math.MaxInt32 {
			return nil, ErrTTL
		}
		l.TTL = time.Duration(f * float64(time.Second))
	}
	if c.StatusList == nil {
		return nil, fmt.Errorf("%w: no status_list", ErrMalformed)
	}
	if !validBits(c.StatusList.Bits) {
		return nil, ErrBits
	}
	data, err := DecodeList(c.StatusList.Lst, opts.MaxDecompressed)
	if err != nil {
		return nil, err
	}
	l.Bits = c.StatusList.Bits
	l.AggregationURI = c.StatusList.AggregationURI
	l.data = data
	return l, nil
}

// numericDate parses an RFC 7519 §2 NumericDate (seconds, maybe fractional).
func numericDate(n json.Number) (time.Time, bool) {
	if n == "" {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}
