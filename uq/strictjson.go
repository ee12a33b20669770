package uq

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"unicode/utf8"

	"github.com/fedas/fedas/internal/jsonexact"
)

// maxDepth bounds nesting; a valid UQ body is two levels deep.
const maxDepth = 8

var errNotStrict = errors.New("not strict JSON")

// decodeStrict decodes one JSON object into v (a pointer to a struct) by
// exact member names (jsonexact), after refusing invalid UTF-8
// (encoding/json would silently replace it, so the question shown would
// differ from the bytes signed), duplicate member names at any depth
// (parsers disagree on which duplicate counts; RFC 8259 §4), nesting
// deeper than maxDepth and data after the value. The returned message
// names no value.
func decodeStrict(data []byte, v any) (string, error) {
	if !utf8.Valid(data) {
		return "the body is not valid UTF-8", errNotStrict
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		keys      map[string]bool // nil for an array
		expectKey bool
	}
	var stack []*frame
	first := true
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if first {
				return "the body is empty", errNotStrict
			}
			if len(stack) > 0 {
				return "the body is not valid JSON", errNotStrict
			}
			break
		}
		if err != nil {
			return "the body is not valid JSON", errNotStrict
		}
		if first {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return "the body must be a JSON object", errNotStrict
			}
		} else if len(stack) == 0 {
			return "data after the JSON object", errNotStrict
		}
		first = false
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if top != nil && top.keys != nil {
					top.expectKey = true
				}
				if len(stack) >= maxDepth {
					return "the body is nested too deeply", errNotStrict
				}
				f := &frame{}
				if d == '{' {
					f.keys, f.expectKey = map[string]bool{}, true
				}
				stack = append(stack, f)
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if top != nil && top.keys != nil {
			if top.expectKey {
				k, _ := tok.(string)
				if top.keys[k] {
					return "a member name appears twice", errNotStrict
				}
				top.keys[k] = true
				top.expectKey = false
			} else {
				top.expectKey = true
			}
		}
	}
	if err := jsonexact.Unmarshal(data, v); err != nil {
		return "a member has the wrong JSON type", errNotStrict
	}
	return "", nil
}
