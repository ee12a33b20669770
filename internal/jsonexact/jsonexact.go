// Package jsonexact decodes a JSON object into a struct by exact member
// names. encoding/json matches names case-insensitively, so it reads
// "ISS" as iss and "Token_Type" as token_type; the protocols we parse
// define case-sensitive names (RFC 8259 §8.3 compares names as code
// units; JWT claims, RFC 7519 §4; server metadata, RFC 8414 §2; token
// responses, RFC 6749 §5.1), and two parsers reading one document
// differently is how a check gets bypassed. Found by fuzzing
// (SECURITY-RESULTS.md FZ).
package jsonexact

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// Unmarshal decodes the JSON object data into the struct v points to:
// each exported field takes the member named exactly by its json tag (or
// its Go name without a tag), decoded by encoding/json (so custom
// UnmarshalJSON methods apply); other members are ignored and, of
// duplicates, the last counts (as encoding/json; RFC 7519 §4 allows
// either that or refusal). JSON null decodes to nothing, as with
// encoding/json; any other non-object is an error.
func Unmarshal(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return errors.New("jsonexact: v must be a non-nil pointer to a struct")
	}
	members, err := Members(data)
	if err != nil {
		return err
	}
	return fill(rv.Elem(), members)
}

// Members splits the JSON object data into its members, of duplicates the
// last (as Unmarshal); JSON null gives a nil map, any other non-object an
// error. With Fill, one document is parsed once for several structs.
func Members(data []byte) (map[string]json.RawMessage, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return nil, err
	}
	return members, nil
}

// Fill is Unmarshal on members already split by Members.
func Fill(members map[string]json.RawMessage, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return errors.New("jsonexact: v must be a non-nil pointer to a struct")
	}
	return fill(rv.Elem(), members)
}

func fill(rv reflect.Value, members map[string]json.RawMessage) error {
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		sf := rt.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		switch {
		case name == "-":
			continue
		case sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct:
			if err := fill(rv.Field(i), members); err != nil {
				return err
			}
			continue
		case !sf.IsExported():
			continue
		case name == "":
			name = sf.Name
		}
		raw, ok := members[name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(raw, rv.Field(i).Addr().Interface()); err != nil {
			return fmt.Errorf("member %.40q: %w", name, err)
		}
	}
	return nil
}
