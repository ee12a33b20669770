// Package sdjwttest issues and presents SD-JWT VCs (RFC 9901 §4, §5) for
// tests of dc/sdjwt and later packages. Test support only: it makes no
// security promises.
package sdjwttest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/dc/sdjwt"
)

// Disclosure is one issued disclosure.
type Disclosure struct {
	// Path is the dot-separated claim path ("address.street", "nats.0").
	Path    string
	Encoded string
	Digest  string
}

// Credential is an issued SD-JWT: the issuer JWT and all its disclosures.
type Credential struct {
	JWT         string
	Disclosures []Disclosure
}

// String is the SD-JWT with every disclosure and no KB-JWT.
func (c *Credential) String() string {
	return Combine(c.JWT, c.encoded(nil), "")
}

func (c *Credential) encoded(paths []string) []string {
	var out []string
	for _, d := range c.Disclosures {
		if paths == nil || contains(paths, d.Path) {
			out = append(out, d.Encoded)
		}
	}
	return out
}

// Options tune Issue.
type Options struct {
	// Typ is the issuer JWT typ header (default dc+sd-jwt; "-" for none).
	Typ string
	// Header adds protected header parameters (kid, x5c...).
	Header map[jose.HeaderKey]any
	// HolderKey, when set, is put into cnf.jwk (public part).
	HolderKey any
	// Decoys adds that many decoy digests to the top-level _sd.
	Decoys int
	// SDAlg overrides _sd_alg (default sha-256).
	SDAlg string
}

// Issue signs claims as an SD-JWT VC, making the claims at the given
// dot-separated paths selectively disclosable (objects: by name, arrays:
// by index). Nested disclosable paths work recursively.
func Issue(claims map[string]any, disclosable []string, key jose.SigningKey, o Options) (*Credential, error) {
	set := map[string]bool{}
	for _, p := range disclosable {
		set[p] = true
	}
	c := &Credential{}
	v, err := c.make(claims, "", set)
	if err != nil {
		return nil, err
	}
	payload := v.(map[string]any)
	for i := 0; i < o.Decoys; i++ {
		payload["_sd"] = append(asList(payload["_sd"]), sdjwt.Digest(salt()))
	}
	if sd := asList(payload["_sd"]); sd != nil {
		sort.Slice(sd, func(i, j int) bool { return sd[i].(string) < sd[j].(string) })
	}
	if o.SDAlg != "" {
		payload["_sd_alg"] = o.SDAlg
	} else {
		payload["_sd_alg"] = "sha-256"
	}
	if o.HolderKey != nil {
		jwk := jose.JSONWebKey{Key: o.HolderKey}
		pub := jwk.Public()
		payload["cnf"] = map[string]any{"jwk": pub}
	}
	typ := o.Typ
	if typ == "" {
		typ = sdjwt.TypVC
	}
	hdr := map[jose.HeaderKey]any{}
	for k, v := range o.Header {
		hdr[k] = v
	}
	if typ != "-" {
		hdr[jose.HeaderType] = typ
	}
	jwt, err := Sign(key, hdr, payload)
	if err != nil {
		return nil, err
	}
	c.JWT = jwt
	return c, nil
}

func asList(v any) []any { l, _ := v.([]any); return l }

func (c *Credential) make(v any, prefix string, set map[string]bool) (any, error) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var sd []any
		for _, k := range keys {
			p := join(k)
			child, err := c.make(t[k], p, set)
			if err != nil {
				return nil, err
			}
			if !set[p] {
				out[k] = child
				continue
			}
			dg, err := c.add(p, []any{salt(), k, child})
			if err != nil {
				return nil, err
			}
			sd = append(sd, dg)
		}
		if sd != nil {
			out["_sd"] = sd
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(t))
		for i, e := range t {
			p := join(strconv.Itoa(i))
			child, err := c.make(e, p, set)
			if err != nil {
				return nil, err
			}
			if !set[p] {
				out = append(out, child)
				continue
			}
			dg, err := c.add(p, []any{salt(), child})
			if err != nil {
				return nil, err
			}
			out = append(out, map[string]any{"...": dg})
		}
		return out, nil
	}
	return v, nil
}

func (c *Credential) add(path string, arr []any) (string, error) {
	enc, err := EncodeDisclosure(arr)
	if err != nil {
		return "", err
	}
	dg := sdjwt.Digest(enc)
	c.Disclosures = append(c.Disclosures, Disclosure{Path: path, Encoded: enc, Digest: dg})
	return dg, nil
}

// EncodeDisclosure base64url-encodes the JSON of a disclosure array
// (RFC 9901 §4.2.1, §4.2.2).
func EncodeDisclosure(arr []any) (string, error) {
	b, err := json.Marshal(arr)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func salt() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Sign makes a compact JWS of payload with the given protected header.
func Sign(key jose.SigningKey, hdr map[jose.HeaderKey]any, payload any) (string, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return "", err
	}
	opts := &jose.SignerOptions{}
	for k, v := range hdr {
		opts.WithHeader(k, v)
	}
	s, err := jose.NewSigner(key, opts)
	if err != nil {
		return "", err
	}
	obj, err := s.Sign(b)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// Combine joins an issuer JWT, encoded disclosures and a KB-JWT ("" for
// none) with "~" (RFC 9901 §4).
func Combine(jwt string, disclosures []string, kb string) string {
	var sb strings.Builder
	sb.WriteString(jwt)
	sb.WriteByte('~')
	for _, d := range disclosures {
		sb.WriteString(d)
		sb.WriteByte('~')
	}
	sb.WriteString(kb)
	return sb.String()
}

// KBClaims returns the KB-JWT claims for an SD-JWT without KB (RFC 9901
// §4.3): iat, aud, nonce and sd_hash over sdPart.
func KBClaims(sdPart, nonce, aud string, iat time.Time) map[string]any {
	return map[string]any{"iat": iat.Unix(), "aud": aud, "nonce": nonce, "sd_hash": sdjwt.Digest(sdPart)}
}

// SignKB signs KB-JWT claims with typ (use sdjwt.TypKB normally).
func SignKB(holder jose.SigningKey, typ string, claims map[string]any) (string, error) {
	return Sign(holder, map[jose.HeaderKey]any{jose.HeaderType: typ}, claims)
}

// Present selects the disclosures at the given paths (nil: all) and, when
// holder.Key is non-nil, appends a KB-JWT with nonce, aud and iat.
func Present(c *Credential, selected []string, holder jose.SigningKey, nonce, aud string, iat time.Time) (string, error) {
	if c == nil {
		return "", errors.New("sdjwttest: nil credential")
	}
	sdPart := Combine(c.JWT, c.encoded(selected), "")
	if holder.Key == nil {
		return sdPart, nil
	}
	kb, err := SignKB(holder, sdjwt.TypKB, KBClaims(sdPart, nonce, aud, iat))
	if err != nil {
		return "", err
	}
	return sdPart + kb, nil
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}
