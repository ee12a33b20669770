package sdjwt

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Sentinel errors. Verify wraps exactly one of them (errors.Is) so a caller
// can map the failure; messages never carry claim values.
var (
	ErrOptions           = errors.New("sdjwt: invalid options")
	ErrTooLarge          = errors.New("sdjwt: presentation exceeds bounds")
	ErrMalformed         = errors.New("sdjwt: malformed presentation")
	ErrAlg               = errors.New("sdjwt: algorithm not allowed")
	ErrTyp               = errors.New("sdjwt: wrong typ header")
	ErrIssuerKey         = errors.New("sdjwt: no acceptable issuer key")
	ErrSignature         = errors.New("sdjwt: issuer signature invalid")
	ErrSDAlg             = errors.New("sdjwt: unsupported _sd_alg")
	ErrDisclosure        = errors.New("sdjwt: invalid disclosure")
	ErrDuplicateDigest   = errors.New("sdjwt: digest seen more than once")
	ErrUnreferenced      = errors.New("sdjwt: disclosure not referenced")
	ErrForbiddenDisclose = errors.New("sdjwt: claim must not be selectively disclosed")
	ErrClaims            = errors.New("sdjwt: invalid claims")
	ErrExpired           = errors.New("sdjwt: credential expired")
	ErrNotYetValid       = errors.New("sdjwt: credential not yet valid")
	ErrKBRequired        = errors.New("sdjwt: key binding JWT required")
	ErrKB                = errors.New("sdjwt: key binding JWT invalid")
)

// Defaults for Options bounds and windows.
const (
	DefaultMaxSize        = 64 << 10
	DefaultMaxDisclosures = 256
	DefaultMaxDepth       = 16
	DefaultLeeway         = 30 * time.Second
	DefaultKBMaxAge       = 5 * time.Minute
)

// Typ values (SD-JWT VC §2.2.1; RFC 9901 §4.3).
const (
	TypVC       = "dc+sd-jwt"
	TypVCLegacy = "vc+sd-jwt"
	TypKB       = "kb+jwt"
)

// allowedAlgs is the signature allowlist for issuer JWTs and KB-JWTs
// (RFC 8725 §3.1: never none; no symmetric algorithms since the verifier
// holds no shared secret). Unexported so no caller can widen it.
var allowedAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.EdDSA, jose.PS256}

// AllowedAlgs returns a copy of the signature allowlist.
func AllowedAlgs() []jose.SignatureAlgorithm {
	return append([]jose.SignatureAlgorithm(nil), allowedAlgs...)
}

// IssuerKeyFunc returns the public key allowed to sign an issuer JWT whose
// (not yet verified) payload claims iss and whose protected header is h
// (kid, x5c...). It carries the caller's trust policy (SD-JWT VC §3-§4):
// return an error to refuse the issuer.
type IssuerKeyFunc func(iss string, h jose.Header) (crypto.PublicKey, error)

// Options configure Verify. Zero bounds take the defaults above.
type Options struct {
	// IssuerKeys resolves the issuer key (required).
	IssuerKeys IssuerKeyFunc
	// Now is the clock (required: inject it).
	Now func() time.Time
	// Leeway tolerates clock skew for exp, nbf and KB iat.
	Leeway time.Duration
	// AllowLegacyTyp accepts typ vc+sd-jwt (removed in SD-JWT VC -09+).
	AllowLegacyTyp bool
	// RequireKB is the holder-binding policy (RFC 9901 §7.3 step 1, §9.5).
	// When true, Nonce and Audience must be set. A KB-JWT that is present
	// is verified even when RequireKB is false (so it needs Nonce and
	// Audience too, else Verify fails with ErrKB): a presented binding is
	// never silently ignored.
	RequireKB bool
	// Nonce and Audience are the exact expected KB-JWT nonce and aud
	// (OpenID4VP §8.6: aud is the full client_id with its prefix).
	Nonce, Audience string
	// KBMaxAge bounds how old the KB-JWT iat may be.
	KBMaxAge time.Duration
	// MaxSize, MaxDisclosures, MaxDepth bound the work done on input.
	MaxSize, MaxDisclosures, MaxDepth int
}

// Verified is the result of a successful Verify.
type Verified struct {
	Issuer string
	VCT    string
	// Claims is the processed payload (RFC 9901 §7.1 step 5): disclosed
	// values inserted, _sd and _sd_alg removed. Numbers are json.Number.
	Claims map[string]any
	// HolderThumbprint is the RFC 7638 SHA-256 thumbprint (base64url) of
	// cnf.jwk, empty if the credential has no cnf.jwk.
	HolderThumbprint string
	// Status is the raw "status" claim (Token Status List §6.1), nil if absent.
	Status json.RawMessage
	// KeyBound reports that a KB-JWT was present and verified.
	KeyBound bool
	// KBIssuedAt is the KB-JWT iat (zero without KB).
	KBIssuedAt time.Time
	// TransactionDataHashes and TransactionDataHashesAlg are copied from
	// the KB-JWT (OpenID4VP §8.4 / App. B.3.3) for the caller to check.
	TransactionDataHashes    []string
	TransactionDataHashesAlg string
}

// forbiddenDisclosed are the claims SD-JWT VC §2 says must not be
// selectively disclosed.
var forbiddenDisclosed = map[string]bool{"iss": true, "nbf": true, "exp": true, "cnf": true, "vct": true, "status": true}

func (o *Options) fill() error {
	if o.IssuerKeys == nil || o.Now == nil {
		return fmt.Errorf("%w: IssuerKeys and Now are required", ErrOptions)
	}
	if o.RequireKB && (o.Nonce == "" || o.Audience == "") {
		return fmt.Errorf("%w: RequireKB needs Nonce and Audience", ErrOptions)
	}
	if o.Leeway == 0 {
		o.Leeway = DefaultLeeway
	}
	if o.KBMaxAge == 0 {
		o.KBMaxAge = DefaultKBMaxAge
	}
	if o.MaxSize == 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.MaxDisclosures == 0 {
		o.MaxDisclosures = DefaultMaxDisclosures
	}
	if o.MaxDepth == 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	return nil
}

// Digest is the RFC 9901 §4.2.3 digest of an encoded disclosure (or, for
// sd_hash, of the presented SD-JWT): base64url(SHA-256(ASCII(s))).
func Digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

type disclosure struct {
	name   string // empty for array element disclosures
	isObj  bool
	value  any
	used   bool
	digest string
}

// Verify verifies an SD-JWT (+KB) presentation (RFC 9901 §7.1, §7.3) as an
// SD-JWT VC (SD-JWT VC §2, §4).
func Verify(presentation string, opts Options) (*Verified, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	// Bounds before any work.
	if len(presentation) > opts.MaxSize {
		return nil, fmt.Errorf("%w: size", ErrTooLarge)
	}
	parts := strings.Split(presentation, "~")
	if len(parts) < 2 {
		return nil, fmt.Errorf("%w: no '~' separator", ErrMalformed)
	}
	if len(parts)-2 > opts.MaxDisclosures {
		return nil, fmt.Errorf("%w: disclosures", ErrTooLarge)
	}
	issuerJWT, encDiscs, kbJWT := parts[0], parts[1:len(parts)-1], parts[len(parts)-1]

	// Disclosures (RFC 9901 §4.2, §7.1 step 3): decode and index by digest.
	discs := make(map[string]*disclosure, len(encDiscs))
	for _, enc := range encDiscs {
		d, err := parseDisclosure(enc, opts.MaxDepth)
		if err != nil {
			return nil, err
		}
		if _, dup := discs[d.digest]; dup {
			return nil, fmt.Errorf("%w: disclosure repeated", ErrDuplicateDigest)
		}
		discs[d.digest] = d
	}

	// Issuer JWT (RFC 9901 §7.1 step 2).
	jws, err := jose.ParseSignedCompact(issuerJWT, allowedAlgs)
	if err != nil {
		if strings.Contains(err.Error(), "algorithm") {
			return nil, fmt.Errorf("%w: issuer JWT", ErrAlg)
		}
		return nil, fmt.Errorf("%w: issuer JWT", ErrMalformed)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: issuer JWT must have one signature", ErrMalformed)
	}
	hdr := jws.Signatures[0].Protected
	typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string)
	if typ != TypVC && (typ != TypVCLegacy || !opts.AllowLegacyTyp) {
		return nil, fmt.Errorf("%w: issuer JWT", ErrTyp)
	}
	unverified := jws.UnsafePayloadWithoutVerification()
	if err := checkDepth(unverified, opts.MaxDepth); err != nil {
		return nil, err
	}
	var peek struct {
		Iss any `json:"iss"`
	}
	if err := json.Unmarshal(unverified, &peek); err != nil {
		return nil, fmt.Errorf("%w: issuer payload", ErrMalformed)
	}
	iss, ok := peek.Iss.(string)
	if peek.Iss != nil && !ok {
		return nil, fmt.Errorf("%w: iss not a string", ErrClaims)
	}
	key, err := opts.IssuerKeys(iss, hdr)
	if err != nil || key == nil {
		return nil, fmt.Errorf("%w: %v", ErrIssuerKey, err)
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, fmt.Errorf("%w", ErrSignature)
	}
	claims, err := decodeObject(payload)
	if err != nil {
		return nil, err
	}
	if a, ok := claims["_sd_alg"]; ok && a != "sha-256" {
		return nil, fmt.Errorf("%w", ErrSDAlg)
	}

	// Process (RFC 9901 §7.1 step 3-5).
	p := &processor{discs: discs, seen: map[string]bool{}, maxDepth: opts.MaxDepth}
	processed, err := p.object(claims, 0)
	if err != nil {
		return nil, err
	}
	for _, d := range discs {
		if !d.used {
			return nil, fmt.Errorf("%w", ErrUnreferenced)
		}
	}
	delete(processed, "_sd_alg")

	v := &Verified{Issuer: iss, Claims: processed}
	if v.VCT, _ = processed["vct"].(string); v.VCT == "" {
		return nil, fmt.Errorf("%w: vct required", ErrClaims)
	}
	now := opts.Now()
	if exp, ok, err := numericDate(processed, "exp"); err != nil {
		return nil, err
	} else if ok && !now.Before(exp.Add(opts.Leeway)) {
		return nil, fmt.Errorf("%w", ErrExpired)
	}
	if nbf, ok, err := numericDate(processed, "nbf"); err != nil {
		return nil, err
	} else if ok && now.Add(opts.Leeway).Before(nbf) {
		return nil, fmt.Errorf("%w", ErrNotYetValid)
	}
	if st, ok := processed["status"]; ok {
		if v.Status, err = json.Marshal(st); err != nil {
			return nil, fmt.Errorf("%w: status", ErrClaims)
		}
	}
	var holder *jose.JSONWebKey
	if cnf, ok := processed["cnf"]; ok {
		holder, err = holderKey(cnf)
		if err != nil {
			return nil, err
		}
		tp, err := holder.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("%w: cnf.jwk", ErrClaims)
		}
		v.HolderThumbprint = base64.RawURLEncoding.EncodeToString(tp)
	}

	// Key binding (RFC 9901 §7.3): policy decides, not presence.
	if kbJWT == "" {
		if opts.RequireKB {
			return nil, fmt.Errorf("%w", ErrKBRequired)
		}
		return v, nil
	}
	if holder == nil {
		return nil, fmt.Errorf("%w: no cnf.jwk", ErrKB)
	}
	if opts.Nonce == "" || opts.Audience == "" {
		return nil, fmt.Errorf("%w: KB-JWT present but no Nonce/Audience configured", ErrKB)
	}
	if err := verifyKB(kbJWT, presentation[:len(presentation)-len(kbJWT)], holder, &opts, now, v); err != nil {
		return nil, err
	}
	return v, nil
}

func parseDisclosure(enc string, maxDepth int) (*disclosure, error) {
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64url", ErrDisclosure)
	}
	if err := checkDepth(raw, maxDepth); err != nil {
		return nil, err
	}
	var arr []any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&arr); err != nil || dec.More() {
		return nil, fmt.Errorf("%w: not a JSON array", ErrDisclosure)
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("%w: trailing data", ErrDisclosure)
	}
	d := &disclosure{digest: Digest(enc)}
	if len(arr) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrDisclosure)
	}
	if _, ok := arr[0].(string); !ok {
		return nil, fmt.Errorf("%w: salt not a string", ErrDisclosure)
	}
	switch len(arr) {
	case 3:
		name, ok := arr[1].(string)
		if !ok {
			return nil, fmt.Errorf("%w: name not a string", ErrDisclosure)
		}
		if name == "_sd" || name == "..." {
			return nil, fmt.Errorf("%w: reserved claim name", ErrDisclosure)
		}
		d.name, d.isObj, d.value = name, true, arr[2]
	case 2:
		d.value = arr[1]
	default:
		return nil, fmt.Errorf("%w: wrong element count", ErrDisclosure)
	}
	return d, nil
}

type processor struct {
	discs    map[string]*disclosure
	seen     map[string]bool
	maxDepth int
}

func (p *processor) see(dg string) error {
	if p.seen[dg] {
		return fmt.Errorf("%w", ErrDuplicateDigest)
	}
	p.seen[dg] = true
	return nil
}

func (p *processor) value(v any, depth int) (any, error) {
	if depth > p.maxDepth {
		return nil, fmt.Errorf("%w: depth", ErrTooLarge)
	}
	switch t := v.(type) {
	case map[string]any:
		return p.object(t, depth)
	case []any:
		return p.array(t, depth)
	}
	return v, nil
}

func (p *processor) object(obj map[string]any, depth int) (map[string]any, error) {
	if depth > p.maxDepth {
		return nil, fmt.Errorf("%w: depth", ErrTooLarge)
	}
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		if k == "_sd" {
			continue
		}
		pv, err := p.value(v, depth+1)
		if err != nil {
			return nil, err
		}
		out[k] = pv
	}
	sd, has := obj["_sd"]
	if !has {
		return out, nil
	}
	list, ok := sd.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: _sd not an array", ErrMalformed)
	}
	for _, e := range list {
		dg, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%w: _sd element not a string", ErrMalformed)
		}
		if err := p.see(dg); err != nil {
			return nil, err
		}
		d := p.discs[dg]
		if d == nil {
			continue // decoy or not presented
		}
		if !d.isObj {
			return nil, fmt.Errorf("%w: array disclosure in _sd", ErrDisclosure)
		}
		if depth == 0 && (forbiddenDisclosed[d.name] || d.name == "_sd_alg") {
			return nil, fmt.Errorf("%w", ErrForbiddenDisclose)
		}
		if _, clash := out[d.name]; clash {
			return nil, fmt.Errorf("%w: claim name collision", ErrDisclosure)
		}
		d.used = true
		pv, err := p.value(d.value, depth+1)
		if err != nil {
			return nil, err
		}
		out[d.name] = pv
	}
	return out, nil
}

func (p *processor) array(arr []any, depth int) ([]any, error) {
	out := make([]any, 0, len(arr))
	for _, e := range arr {
		if m, ok := e.(map[string]any); ok && len(m) == 1 {
			if raw, ok := m["..."]; ok {
				dg, ok := raw.(string)
				if !ok {
					return nil, fmt.Errorf("%w: '...' not a string", ErrMalformed)
				}
				if err := p.see(dg); err != nil {
					return nil, err
				}
				d := p.discs[dg]
				if d == nil {
					continue // decoy or undisclosed: element removed
				}
				if d.isObj {
					return nil, fmt.Errorf("%w: object disclosure in array", ErrDisclosure)
				}
				d.used = true
				pv, err := p.value(d.value, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, pv)
				continue
			}
		}
		pv, err := p.value(e, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, pv)
	}
	return out, nil
}

func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: payload not a JSON object", ErrMalformed)
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	return m, nil
}

// checkDepth bounds JSON nesting before decoding (encoding/json recurses).
func checkDepth(b []byte, max int) error {
	depth, inStr, esc := 0, false, false
	for _, c := range b {
		switch {
		case esc:
			esc = false
		case inStr:
			if c == '\\' {
				esc = true
			} else if c == '"' {
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			if depth++; depth > max {
				return fmt.Errorf("%w: depth", ErrTooLarge)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

func numericDate(m map[string]any, name string) (time.Time, bool, error) {
	v, ok := m[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false, fmt.Errorf("%w: %s not a number", ErrClaims, name)
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1<<40 {
		return time.Time{}, false, fmt.Errorf("%w: %s out of range", ErrClaims, name)
	}
	return time.Unix(int64(f), 0), true, nil
}

func holderKey(cnf any) (*jose.JSONWebKey, error) {
	m, ok := cnf.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: cnf not an object", ErrClaims)
	}
	raw, ok := m["jwk"]
	if !ok {
		return nil, nil //nolint:nilnil // cnf without jwk: no holder key
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: cnf.jwk", ErrClaims)
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(b); err != nil || !k.IsPublic() || !k.Valid() {
		return nil, fmt.Errorf("%w: cnf.jwk not a valid public key", ErrClaims)
	}
	return &k, nil
}

func verifyKB(kb, sdPart string, holder *jose.JSONWebKey, opts *Options, now time.Time, v *Verified) error {
	jws, err := jose.ParseSignedCompact(kb, allowedAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return fmt.Errorf("%w: parse or alg", ErrKB)
	}
	if typ, _ := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType].(string); typ != TypKB {
		return fmt.Errorf("%w: typ", ErrKB)
	}
	payload, err := jws.Verify(holder)
	if err != nil {
		return fmt.Errorf("%w: signature", ErrKB)
	}
	if err := checkDepth(payload, opts.MaxDepth); err != nil {
		return err
	}
	var c struct {
		Iat    json.Number `json:"iat"`
		Nonce  any         `json:"nonce"`
		Aud    any         `json:"aud"`
		SDHash any         `json:"sd_hash"`
		TDH    []string    `json:"transaction_data_hashes"`
		TDHAlg string      `json:"transaction_data_hashes_alg"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return fmt.Errorf("%w: claims", ErrKB)
	}
	if s, ok := c.Nonce.(string); !ok || s != opts.Nonce {
		return fmt.Errorf("%w: nonce", ErrKB)
	}
	if s, ok := c.Aud.(string); !ok || s != opts.Audience {
		return fmt.Errorf("%w: aud", ErrKB)
	}
	if s, ok := c.SDHash.(string); !ok || s != Digest(sdPart) {
		return fmt.Errorf("%w: sd_hash", ErrKB)
	}
	iat, _, err := numericDate(map[string]any{"iat": c.Iat}, "iat")
	if c.Iat == "" || err != nil {
		return fmt.Errorf("%w: iat", ErrKB)
	}
	if iat.After(now.Add(opts.Leeway)) || iat.Before(now.Add(-opts.KBMaxAge-opts.Leeway)) {
		return fmt.Errorf("%w: iat outside window", ErrKB)
	}
	v.KeyBound, v.KBIssuedAt = true, iat
	v.TransactionDataHashes, v.TransactionDataHashesAlg = c.TDH, c.TDHAlg
	return nil
}

// X5CIssuerKeys returns an IssuerKeyFunc that takes the issuer key from the
// x5c header (RFC 7515 §4.1.6), validating the chain against roots at now()
// with go-jose Header.Certificates. When iss is set it must be bound to the
// leaf (SD-JWT VC §3, x5c issuer keys): equal to a URI SAN, or an https URL whose host is
// a DNS SAN of the leaf.
func X5CIssuerKeys(roots *x509.CertPool, now func() time.Time) IssuerKeyFunc {
	return func(iss string, h jose.Header) (crypto.PublicKey, error) {
		chains, err := h.Certificates(x509.VerifyOptions{Roots: roots, CurrentTime: now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err != nil || len(chains) == 0 || len(chains[0]) == 0 {
			return nil, errors.New("x5c chain not trusted")
		}
		leaf := chains[0][0]
		if iss != "" && !issBound(iss, leaf) {
			return nil, errors.New("iss not bound to x5c leaf")
		}
		return leaf.PublicKey, nil
	}
}

func issBound(iss string, leaf *x509.Certificate) bool {
	for _, u := range leaf.URIs {
		if u.String() == iss {
			return true
		}
	}
	u, err := url.Parse(iss)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return false
	}
	for _, d := range leaf.DNSNames {
		if strings.EqualFold(d, u.Hostname()) {
			return true
		}
	}
	return false
}
