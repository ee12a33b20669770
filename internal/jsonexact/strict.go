package jsonexact

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"unicode/utf8"
)

// StrictObject checks that data is exactly one JSON object (RFC 8259)
// in valid UTF-8 (encoding/json would silently replace invalid bytes, so
// what is shown or signed could differ from what was sent), with no
// member name twice in any object at any depth (parsers disagree on
// which duplicate counts; RFC 8259 §4), nested at most maxDepth deep and
// with nothing after it. It returns "" when data passes, else what is
// wrong, in lower case and naming no value (callers put it in an
// error_description). The one strict-body rule of the reach endpoints,
// the relay and the User Questioning API (docs/reach.md).
func StrictObject(data []byte, maxDepth int) string {
	if !utf8.Valid(data) {
		return "the body is not valid UTF-8"
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
		if errors.Is(err, io.EOF) {
			if first {
				return "the body is empty"
			}
			if len(stack) > 0 {
				return "the body is not valid JSON"
			}
			return ""
		}
		if err != nil {
			return "the body is not valid JSON"
		}
		if first {
			if d, ok := tok.(json.Delim); !ok || d != '{' {
				return "the body must be a JSON object"
			}
		} else if len(stack) == 0 {
			return "data after the JSON object"
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
					return "the body is nested too deeply"
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
		if top.keys != nil {
			if top.expectKey {
				k, _ := tok.(string)
				if top.keys[k] {
					return "a member name appears twice"
				}
				top.keys[k] = true
				top.expectKey = false
			} else {
				top.expectKey = true
			}
		}
	}
}
