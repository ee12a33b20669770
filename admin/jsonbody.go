package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// maxBody bounds every admin request body: a whole policy import fits
// comfortably.
const maxBody = 1 << 20

const maxDepth = 16

// maxMembers bounds the members of one JSON object or YAML mapping:
// yaml.v3, which decodes every body, checks a mapping's keys for
// duplicates pairwise, so one flat object filling a 1 MiB body would
// cost a CPU for minutes. No policy entry has a tenth as many.
const maxMembers = 1000

// readBody reads a bounded body of the given media type.
func readBody(r *http.Request, wantType string) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != wantType {
		return nil, errf(http.StatusUnsupportedMediaType, "invalid_request", "the body must be "+wantType)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, errf(http.StatusBadRequest, "invalid_request", "the body could not be read")
	}
	if len(b) > maxBody {
		return nil, errf(http.StatusRequestEntityTooLarge, "invalid_request", "the body is larger than 1 MiB")
	}
	if !utf8.Valid(b) {
		return nil, errf(http.StatusBadRequest, "invalid_request", "the body is not valid UTF-8")
	}
	return b, nil
}

// decodeObject parses a JSON object strictly: one value, no duplicate
// member at any level (RFC 8259 §4 leaves duplicates undefined, and two
// parsers reading different values is how checks get bypassed), bounded
// depth.
func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, bodyError(err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, bodyError("trailing data after the JSON value")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, bodyError("the body must be a JSON object")
	}
	return m, nil
}

// decodeArray parses a JSON array of objects with the same rules.
func decodeArray(b []byte) ([]Resource, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, bodyError(err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, bodyError("trailing data after the JSON value")
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, bodyError("the body must be a JSON array")
	}
	out := make([]Resource, 0, len(arr))
	for i, x := range arr {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, bodyError(fmt.Sprintf("item %d is not an object", i))
		}
		out = append(out, m)
	}
	return out, nil
}

func bodyError(msg string) *Error {
	return errf(http.StatusBadRequest, "invalid_request", "malformed JSON: "+msg)
}

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty body")
		}
		return nil, errors.New("not valid JSON")
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, errors.New("not valid JSON")
				}
				k := kt.(string)
				if _, dup := m[k]; dup {
					return nil, fmt.Errorf("member %q appears twice", k)
				}
				if len(m) == maxMembers {
					return nil, fmt.Errorf("an object has more than %d members", maxMembers)
				}
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				m[k] = v
			}
			if _, err := dec.Token(); err != nil {
				return nil, errors.New("not valid JSON")
			}
			return m, nil
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
				return nil, errors.New("not valid JSON")
			}
			return arr, nil
		}
		return nil, errors.New("not valid JSON")
	default:
		return t, nil
	}
}

// parseYAML reads one YAML document as nodes (linear in its size, no
// alias expanded) and refuses what decoding it would choke on: more than
// one document (the rest would be silently ignored), and a mapping of
// more than maxMembers keys. It returns nil for an empty document
// (nothing but comments, or null).
func parseYAML(b []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document: send one")
	}
	var walk func(n *yaml.Node) error
	walk = func(n *yaml.Node) error {
		if n.Kind == yaml.MappingNode && len(n.Content) > 2*maxMembers {
			return fmt.Errorf("line %d: a mapping has more than %d keys", n.Line, maxMembers)
		}
		for _, c := range n.Content {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(&doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 || (doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null") {
		return nil, nil
	}
	return &doc, nil
}
