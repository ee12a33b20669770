// Package rar parses and validates Rich Authorization Requests (RFC 9396)
// against configured types, and maps validated details onto OpenID4VP
// transaction data (OpenID4VP 1.0 §5.1, §8.4, Appendix B.3.3).
//
// It is pure: no storage, no HTTP, no import of server or flow. The flow
// calls Parse on every channel that starts a session (flow/request.go
// parseInitial) and stores the canonical JSON Encode returns; the
// presentation step calls TransactionData.
package rar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// ErrorCode is the error code of every refused authorization_details
// parameter (RFC 9396 §5), answered with HTTP 400.
const ErrorCode = "invalid_authorization_details"

// ErrInvalid wraps every refusal of Parse: the request's
// authorization_details is malformed, too large, or asks for a type or a
// value the configuration does not allow (RFC 9396 §5).
var ErrInvalid = errors.New("invalid authorization_details")

// Size caps: an auth_session carries the canonical JSON, so it stays
// small (docs/protocol.md "Rich authorization requests").
const (
	// MaxBytes caps the authorization_details parameter as sent.
	MaxBytes = 8 << 10
	// MaxDetails caps the number of objects in the array.
	MaxDetails = 10
	// MaxDepth caps JSON nesting, the array itself counting as 1.
	MaxDepth = 8
	// maxName bounds field names quoted in error messages.
	maxName = 40
)

// OpenIDCredential is the OpenID4VCI type (OpenID4VCI 1.0 §5.1.1): a
// built-in type, enabled by configuring it with its
// credential_configuration_ids.
const OpenIDCredential = "openid_credential"

// Field value types of a FieldConfig.
const (
	TypeString  = "string"
	TypeNumber  = "number"
	TypeBoolean = "boolean"
	TypeObject  = "object"
	TypeArray   = "array"
)

// ValidFieldType reports whether t names a field value type.
func ValidFieldType(t string) bool {
	switch t {
	case TypeString, TypeNumber, TypeBoolean, TypeObject, TypeArray:
		return true
	}
	return false
}

// FieldConfig is the rule for one member of a detail object.
type FieldConfig struct {
	// Required: a detail of the type without the member is refused.
	Required bool
	// Type is the JSON value type the member must have (Type* constants).
	Type string
	// Enum, for string members, lists the only values allowed.
	Enum []string
}

// TypeConfig is what one authorization details type allows (RFC 9396
// §2: the type determines the other members). Only the members Fields
// names, and "type", are accepted.
type TypeConfig struct {
	// Fields by member name.
	Fields map[string]FieldConfig
	// CredentialConfigurationIDs, for OpenIDCredential only, are the
	// credential_configuration_id values allowed (OpenID4VCI 1.0 §5.1.1).
	CredentialConfigurationIDs []string
}

// OpenIDCredentialType returns the built-in openid_credential type for
// the given credential configuration ids (OpenID4VCI 1.0 §5.1.1):
// credential_configuration_id is required and must be one of ids;
// claims (an array of claims description objects, §5.1.1 and Appendix
// B.2) and locations (RFC 9396 §2.2, used when the AS serves several
// issuers) are optional.
func OpenIDCredentialType(ids []string) TypeConfig {
	return TypeConfig{
		Fields: map[string]FieldConfig{
			"credential_configuration_id": {Required: true, Type: TypeString, Enum: slices.Clone(ids)},
			"claims":                      {Type: TypeArray},
			"locations":                   {Type: TypeArray},
		},
		CredentialConfigurationIDs: slices.Clone(ids),
	}
}

// Detail is one validated authorization details object.
type Detail struct {
	typ    string
	fields map[string]any // decoded with json.Number
}

// Type is the detail's type member.
func (d Detail) Type() string { return d.typ }

// Field returns a member's value as decoded (strings, json.Number, bool,
// map[string]any, []any) and whether the detail has it.
func (d Detail) Field(name string) (any, bool) {
	v, ok := d.fields[name]
	return v, ok
}

// MarshalJSON writes the detail canonically: members sorted by name, no
// insignificant whitespace, numbers as sent, no HTML escaping.
func (d Detail) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(d.fields)+1)
	for k, v := range d.fields {
		m[k] = v
	}
	m["type"] = d.typ
	return canonical(m)
}

// Encode returns the canonical JSON array of details: what the session
// stores, the code binds, and the token response and introspection
// return (RFC 9396 §7, §9.1). Encode of Parse's result parses again to
// the same details.
func Encode(details []Detail) (string, error) {
	if details == nil {
		details = []Detail{}
	}
	b, err := canonical(details)
	return string(b), err
}

// Parse validates the authorization_details parameter raw (RFC 9396 §2)
// against types, the types this client may request: a JSON array of
// 1..MaxDetails objects, each with a string "type" among types and only
// the members that type allows, of the configured value types. The JSON
// is strict: valid UTF-8, one value, no duplicate member names at any
// depth (parsers disagreeing on which duplicate counts is how a check
// gets bypassed; RFC 8259 §4), at most MaxBytes and MaxDepth. Every
// refusal wraps ErrInvalid; messages name at most a member name, never a
// value.
func Parse(raw string, types map[string]TypeConfig) ([]Detail, error) {
	if len(raw) > MaxBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxBytes)
	}
	if !utf8.ValidString(raw) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrInvalid)
	}
	v, err := decodeStrict(raw)
	if err != nil {
		return nil, err
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: must be a JSON array of objects", ErrInvalid)
	}
	switch {
	case len(arr) == 0:
		return nil, fmt.Errorf("%w: the array is empty", ErrInvalid)
	case len(arr) > MaxDetails:
		return nil, fmt.Errorf("%w: more than %d objects", ErrInvalid, MaxDetails)
	}
	out := make([]Detail, 0, len(arr))
	for i, el := range arr {
		d, err := parseDetail(el, types)
		if err != nil {
			return nil, fmt.Errorf("%w (object %d)", err, i)
		}
		out = append(out, d)
	}
	return out, nil
}

func parseDetail(el any, types map[string]TypeConfig) (Detail, error) {
	obj, ok := el.(map[string]any)
	if !ok {
		return Detail{}, fmt.Errorf("%w: each element must be an object", ErrInvalid)
	}
	typ, ok := obj["type"].(string)
	if !ok || typ == "" {
		return Detail{}, fmt.Errorf("%w: each object needs a string type (RFC 9396 section 2)", ErrInvalid)
	}
	tc, ok := types[typ]
	if !ok {
		return Detail{}, fmt.Errorf("%w: type %s is not allowed for this client", ErrInvalid, quote(typ))
	}
	d := Detail{typ: typ, fields: make(map[string]any, len(obj)-1)}
	for name, v := range obj {
		if name == "type" {
			continue
		}
		fc, ok := tc.Fields[name]
		if !ok {
			return Detail{}, fmt.Errorf("%w: member %s is not allowed for type %s", ErrInvalid, quote(name), quote(typ))
		}
		if err := checkValue(fc, v); err != nil {
			return Detail{}, fmt.Errorf("%w: member %s %s", ErrInvalid, quote(name), err.Error())
		}
		d.fields[name] = v
	}
	for name, fc := range tc.Fields {
		if _, ok := obj[name]; fc.Required && !ok {
			return Detail{}, fmt.Errorf("%w: member %s is required for type %s", ErrInvalid, quote(name), quote(typ))
		}
	}
	return d, nil
}

func checkValue(fc FieldConfig, v any) error {
	var ok bool
	switch fc.Type {
	case TypeString:
		var s string
		if s, ok = v.(string); ok && len(fc.Enum) > 0 && !slices.Contains(fc.Enum, s) {
			return errors.New("has a value that is not allowed")
		}
	case TypeNumber:
		_, ok = v.(json.Number)
	case TypeBoolean:
		_, ok = v.(bool)
	case TypeObject:
		_, ok = v.(map[string]any)
	case TypeArray:
		_, ok = v.([]any)
	default:
		return errors.New("has no valid configured type")
	}
	if !ok {
		return errors.New("must be of type " + fc.Type)
	}
	return nil
}

// decodeStrict decodes one JSON value, refusing duplicate member names,
// nesting deeper than MaxDepth and anything after the value.
func decodeStrict(raw string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON value", ErrInvalid)
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%w: not valid JSON", ErrInvalid)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // string, json.Number, bool or nil
	}
	if depth+1 > MaxDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", ErrInvalid, MaxDepth)
	}
	switch d {
	case '[':
		arr := []any{}
		for dec.More() {
			v, err := decodeValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("%w: not valid JSON", ErrInvalid)
		}
		return arr, nil
	case '{':
		obj := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, fmt.Errorf("%w: not valid JSON", ErrInvalid)
			}
			k, _ := kt.(string)
			if _, dup := obj[k]; dup {
				return nil, fmt.Errorf("%w: duplicate member %s", ErrInvalid, quote(k))
			}
			v, err := decodeValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			obj[k] = v
		}
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("%w: not valid JSON", ErrInvalid)
		}
		return obj, nil
	}
	return nil, fmt.Errorf("%w: not valid JSON", ErrInvalid)
}

// canonical encodes v with sorted object members (encoding/json sorts
// map keys), no whitespace and no HTML escaping.
func canonical(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// quote shows a member or type name in an error: single-quoted, at
// most maxName characters, anything outside printable ASCII (and the
// quote itself) as '?', so an error_description stays within RFC 6749
// §5.2's characters.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i, r := range s {
		if i >= maxName {
			b.WriteString("...")
			break
		}
		if r < 0x20 || r > 0x7e || r == '\'' || r == '"' || r == '\\' {
			r = '?'
		}
		b.WriteRune(r)
	}
	b.WriteByte('\'')
	return b.String()
}
