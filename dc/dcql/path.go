package dcql

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// ErrPath: a claims path pointer is malformed, or does not select anything
// in the given claims (OpenID4VP 1.0 §7.2 "abort processing and return an
// error").
var ErrPath = errors.New("dcql: claims path pointer")

// Path is a claims path pointer (OpenID4VP 1.0 §7): a non-empty array whose
// components are a string (select an object member), a non-negative int
// (select an array element) or nil (select all elements of an array).
type Path []any

// ParsePath decodes a claims path pointer from its JSON array form.
func ParsePath(data []byte) (Path, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%w: must be a JSON array", ErrPath)
	}
	p, err := pathFromRaw(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPath, err)
	}
	return p, nil
}

func pathFromRaw(raw []json.RawMessage) (Path, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: path must be a non-empty array", ErrInvalidQuery)
	}
	if len(raw) > MaxPathLen {
		return nil, fmt.Errorf("%w: path longer than %d", ErrTooLarge, MaxPathLen)
	}
	p := make(Path, 0, len(raw))
	for _, r := range raw {
		r = bytes.TrimSpace(r)
		switch {
		case len(r) == 0:
			return nil, fmt.Errorf("%w: empty path component", ErrInvalidQuery)
		case r[0] == '"':
			var s string
			if err := json.Unmarshal(r, &s); err != nil {
				return nil, fmt.Errorf("%w: bad path component", ErrInvalidQuery)
			}
			p = append(p, s)
		case string(r) == "null":
			p = append(p, nil)
		default:
			// Only a plain non-negative integer literal: no sign, fraction,
			// exponent or leading zero, so "1.0" and "1e0" are refused.
			if !isUintLiteral(r) {
				return nil, fmt.Errorf("%w: path components are strings, non-negative integers or null", ErrInvalidQuery)
			}
			n, err := strconv.Atoi(string(r))
			if err != nil || n > MaxPathIndex {
				return nil, fmt.Errorf("%w: path index above %d", ErrTooLarge, MaxPathIndex)
			}
			p = append(p, n)
		}
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

func isUintLiteral(b []byte) bool {
	if len(b) == 0 || len(b) > 8 || (b[0] == '0' && len(b) > 1) {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Validate checks p's shape (OpenID4VP 1.0 §7): non-empty, at most
// MaxPathLen components, each a string of at most MaxStringLen bytes, an
// int in [0, MaxPathIndex], or nil.
func (p Path) Validate() error {
	if len(p) == 0 {
		return fmt.Errorf("%w: path must be a non-empty array", ErrInvalidQuery)
	}
	if len(p) > MaxPathLen {
		return fmt.Errorf("%w: path longer than %d", ErrTooLarge, MaxPathLen)
	}
	for _, c := range p {
		switch c := c.(type) {
		case nil:
		case string:
			if len(c) > MaxStringLen {
				return fmt.Errorf("%w: path component longer than %d", ErrTooLarge, MaxStringLen)
			}
		case int:
			if c < 0 || c > MaxPathIndex {
				return fmt.Errorf("%w: path index outside [0, %d]", ErrInvalidQuery, MaxPathIndex)
			}
		default:
			return fmt.Errorf("%w: path components are strings, non-negative integers or null", ErrInvalidQuery)
		}
	}
	return nil
}

// String renders p as JSON for error messages (paths come from the query,
// never from a credential, so they carry no personal data).
func (p Path) String() string {
	b, err := json.Marshal([]any(p))
	if err != nil {
		return "[?]"
	}
	return string(b)
}

// Resolve applies p to processed claims (the JSON object of a verified
// credential, as decoded by encoding/json: map[string]any, []any and
// scalars) per OpenID4VP 1.0 §7.2, and returns the selected elements.
//
// A string selects the member of each selected object (elements lacking it
// drop out); an int selects that index of each selected array (elements too
// short drop out); nil selects every element of each selected array. A
// component applied to an element of the wrong type, or an empty selection,
// is an error wrapping ErrPath.
func Resolve(claims map[string]any, p Path) ([]any, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPath, err)
	}
	if claims == nil {
		return nil, fmt.Errorf("%w: no claims", ErrPath)
	}
	sel := []any{claims}
	for i, c := range p {
		var next []any
		for _, e := range sel {
			switch c := c.(type) {
			case string:
				obj, ok := e.(map[string]any)
				if !ok {
					return nil, fmt.Errorf("%w: component %d of %s selects a member of a non-object", ErrPath, i, p)
				}
				if v, ok := obj[c]; ok {
					next = append(next, v)
				}
			case int:
				arr, ok := e.([]any)
				if !ok {
					return nil, fmt.Errorf("%w: component %d of %s indexes a non-array", ErrPath, i, p)
				}
				if c < len(arr) {
					next = append(next, arr[c])
				}
			case nil:
				arr, ok := e.([]any)
				if !ok {
					return nil, fmt.Errorf("%w: component %d of %s selects all elements of a non-array", ErrPath, i, p)
				}
				next = append(next, arr...)
			}
		}
		if len(next) == 0 {
			return nil, fmt.Errorf("%w: %s selects nothing", ErrPath, p)
		}
		sel = next
	}
	return sel, nil
}
