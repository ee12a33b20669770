package dcql

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// checkStrictJSON walks the tokens of data once and refuses duplicate
// member names in any object and nesting deeper than maxDepth.
// encoding/json keeps the last of duplicate members while other parsers
// keep the first; refusing them gives the query a single meaning (RFC 8259
// §4 "names within an object SHOULD be unique").
func checkStrictJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]bool
		expect bool // next token in an object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return fmt.Errorf("%w: syntax error at offset %d", ErrInvalidQuery, se.Offset)
			}
			return fmt.Errorf("%w: malformed JSON", ErrInvalidQuery)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if top != nil && top.object {
					top.expect = true
				}
				if len(stack) >= maxDepth {
					return fmt.Errorf("%w: nesting deeper than %d", ErrTooLarge, maxDepth)
				}
				f := &frame{object: d == '{', expect: d == '{'}
				if f.object {
					f.keys = map[string]bool{}
				}
				stack = append(stack, f)
			case '}', ']':
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if top != nil && top.object {
			if top.expect {
				k, _ := tok.(string)
				if top.keys[k] {
					return fmt.Errorf("%w: duplicate member %q", ErrInvalidQuery, truncate(k))
				}
				top.keys[k] = true
				top.expect = false
			} else {
				top.expect = true
			}
		}
	}
}

func truncate(s string) string {
	if len(s) > MaxIDLen {
		return s[:MaxIDLen] + "…"
	}
	return s
}
