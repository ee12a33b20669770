package oid4vp

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// DefaultMaxResponseSize caps the compact JWE before any parsing.
const DefaultMaxResponseSize = 256 << 10

const maxDepth = 32

// Sentinel errors of the response side.
var (
	ErrTooLarge        = errors.New("oid4vp: response too large")
	ErrInvalidJWE      = errors.New("oid4vp: invalid encrypted response")
	ErrKeyMismatch     = errors.New("oid4vp: response not encrypted to the transaction key")
	ErrDecrypt         = errors.New("oid4vp: response decryption failed")
	ErrInvalidResponse = errors.New("oid4vp: invalid response payload")
	ErrState           = errors.New("oid4vp: state mismatch")
)

// WalletError is an authorization error response from the wallet
// (OpenID4VP 1.0 §8.5), e.g. access_denied. Description is wallet-supplied
// text: show it to nobody unescaped and do not log it.
type WalletError struct {
	Code        string
	Description string
}

func (e *WalletError) Error() string { return "oid4vp: wallet error " + e.Code }

// ExpectedResponse is what the transaction expects of a response.
type ExpectedResponse struct {
	// State is the transaction's state; the payload's must be equal
	// (empty expects no state member).
	State string
	// MaxSize caps the JWE (DefaultMaxResponseSize when zero).
	MaxSize int
}

// Response is a decrypted authorization response (OpenID4VP 1.0 §8.1).
type Response struct {
	// VPToken maps a DCQL credential query id to its presentations.
	VPToken map[string][]string
	State   string
}

var allowedKeyAlgs = []jose.KeyAlgorithm{jose.ECDH_ES}
var allowedEncs = []jose.ContentEncryption{jose.A128GCM, jose.A256GCM}

// DecryptResponse decrypts and checks an encrypted response (OpenID4VP 1.0
// §8.3, direct_post.jwt and dc_api.jwt): size cap, compact JWE with
// ECDH-ES and A128GCM/A256GCM only, no zip, kid of key, strict JSON payload
// with vp_token or error, state equal to expect.State. A wallet error returns
// a *WalletError (after the state check).
func DecryptResponse(jwe string, key *ResponseKey, expect ExpectedResponse) (*Response, error) {
	max := expect.MaxSize
	if max <= 0 {
		max = DefaultMaxResponseSize
	}
	if len(jwe) > max {
		return nil, ErrTooLarge
	}
	if key == nil {
		return nil, ErrKeyMismatch
	}
	if err := checkProtectedHeader(jwe); err != nil {
		return nil, err
	}
	obj, err := jose.ParseEncryptedCompact(jwe, allowedKeyAlgs, allowedEncs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidJWE, err)
	}
	if obj.Header.KeyID == "" || subtle.ConstantTimeCompare([]byte(obj.Header.KeyID), []byte(key.kid)) != 1 {
		return nil, ErrKeyMismatch
	}
	plain, err := obj.Decrypt(key.priv)
	if err != nil {
		return nil, ErrDecrypt
	}
	return parsePayload(plain, expect.State)
}

// checkProtectedHeader refuses zip (decompression is never needed and is a
// resource risk) and duplicate header members before go-jose reads it.
func checkProtectedHeader(jwe string) error {
	i := strings.IndexByte(jwe, '.')
	if i < 0 || strings.Count(jwe, ".") != 4 {
		return fmt.Errorf("%w: not compact", ErrInvalidJWE)
	}
	h, err := base64.RawURLEncoding.DecodeString(jwe[:i])
	if err != nil {
		return fmt.Errorf("%w: header encoding", ErrInvalidJWE)
	}
	if err := checkStrictJSON(h); err != nil {
		return fmt.Errorf("%w: header: %w", ErrInvalidJWE, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(h, &m); err != nil {
		return fmt.Errorf("%w: header", ErrInvalidJWE)
	}
	if _, ok := m["zip"]; ok {
		return fmt.Errorf("%w: zip not allowed", ErrInvalidJWE)
	}
	return nil
}

func parsePayload(plain []byte, wantState string) (*Response, error) {
	if err := checkStrictJSON(plain); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidResponse, err)
	}
	var p struct {
		VPToken          json.RawMessage `json:"vp_token"`
		State            *string         `json:"state"`
		Error            *string         `json:"error"`
		ErrorDescription *string         `json:"error_description"`
	}
	if err := json.Unmarshal(plain, &p); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object with string members", ErrInvalidResponse)
	}
	if t := bytes.TrimLeft(plain, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidResponse)
	}
	got := ""
	if p.State != nil {
		got = *p.State
	}
	if (p.State != nil) != (wantState != "") || subtle.ConstantTimeCompare([]byte(got), []byte(wantState)) != 1 {
		return nil, ErrState
	}
	if p.Error != nil {
		if p.VPToken != nil || *p.Error == "" {
			return nil, fmt.Errorf("%w: error response must carry a code and no vp_token", ErrInvalidResponse)
		}
		we := &WalletError{Code: *p.Error}
		if p.ErrorDescription != nil {
			we.Description = *p.ErrorDescription
		}
		return nil, we
	}
	if p.VPToken == nil || string(p.VPToken) == "null" {
		return nil, fmt.Errorf("%w: vp_token missing", ErrInvalidResponse)
	}
	var vt map[string][]string
	if err := json.Unmarshal(p.VPToken, &vt); err != nil || vt == nil {
		return nil, fmt.Errorf("%w: vp_token must be an object of arrays of strings", ErrInvalidResponse)
	}
	if len(vt) == 0 {
		return nil, fmt.Errorf("%w: vp_token empty", ErrInvalidResponse)
	}
	for id, pres := range vt {
		if id == "" || len(pres) == 0 {
			return nil, fmt.Errorf("%w: vp_token entries need an id and at least one presentation", ErrInvalidResponse)
		}
		for _, s := range pres {
			if s == "" {
				return nil, fmt.Errorf("%w: empty presentation", ErrInvalidResponse)
			}
		}
	}
	return &Response{VPToken: vt, State: got}, nil
}

// checkStrictJSON refuses duplicate member names at any depth (encoding/json
// keeps the last duplicate, other parsers the first: one payload must have
// one meaning, RFC 8259 §4), nesting deeper than maxDepth, and trailing data.
func checkStrictJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		keys   map[string]bool
		expect bool
	}
	var stack []*frame // nil entries are arrays
	values := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if values != 1 {
				return errors.New("not a single JSON value")
			}
			return nil
		}
		if err != nil {
			return errors.New("malformed JSON")
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if len(stack) == 0 {
			values++
			if values > 1 {
				return errors.New("trailing data")
			}
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if top != nil {
					top.expect = true
				}
				if len(stack) >= maxDepth {
					return errors.New("nesting too deep")
				}
				var f *frame
				if d == '{' {
					f = &frame{keys: map[string]bool{}, expect: true}
				}
				stack = append(stack, f)
			case '}', ']':
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if top != nil {
			if top.expect {
				k, _ := tok.(string)
				if top.keys[k] {
					return errors.New("duplicate member")
				}
				top.keys[k] = true
				top.expect = false
			} else {
				top.expect = true
			}
		}
	}
}

// KeyID is the kid of a compact JWE's protected header, "" if it has none
// or is malformed: a lookup key only (an encrypted direct_post.jwt response
// carries no outer state); DecryptResponse checks everything.
func KeyID(jwe string) string {
	i := strings.IndexByte(jwe, '.')
	if i <= 0 || i > 4096 {
		return ""
	}
	h, err := base64.RawURLEncoding.DecodeString(jwe[:i])
	if err != nil {
		return ""
	}
	var hdr struct {
		KID string `json:"kid"`
	}
	if json.Unmarshal(h, &hdr) != nil {
		return ""
	}
	return hdr.KID
}
