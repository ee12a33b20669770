package uq

import (
	"errors"

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
	if msg := jsonexact.StrictObject(data, maxDepth); msg != "" {
		return msg, errNotStrict
	}
	if err := jsonexact.Unmarshal(data, v); err != nil {
		return "a member has the wrong JSON type", errNotStrict
	}
	return "", nil
}
