package admin

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/fedas/fedas/config"
)

// Resource is one policy entry as the API shows it: the config file's keys
// and values (YAML and JSON share names), with write-only secrets replaced
// by a "<name>_set" flag.
type Resource = map[string]any

// Kind names a collection of the policy (docs/admin.md "Resources").
type Kind string

// The collections the API edits. The prompt and the default route are
// singletons (one per policy) with their own methods.
const (
	Downstreams Kind = "downstreams"
	Clients     Kind = "clients"
	Apps        Kind = "apps"
	Routes      Kind = "routes"
)

// Kinds lists the collections in the order the console shows them.
var Kinds = []Kind{Downstreams, Routes, Clients, Apps}

// collection is the type-erased view of one []T in config.Policy.
type collection interface {
	singular() string
	ids(p config.Policy) []string
	list(p config.Policy) ([]Resource, error)
	get(p config.Policy, id string, tag tagger) (Resource, string, bool, error)
	etag(p config.Policy, id string, tag tagger) (string, bool)
	listETag(p config.Policy, tag tagger) string
	// put decodes r into the entry id (created at the end when absent),
	// keeping write-only secrets the body leaves out.
	put(p *config.Policy, id string, r Resource) (index int, err error)
	replaceAll(p *config.Policy, rs []Resource) error
	remove(p *config.Policy, id string) bool
	index(p config.Policy, id string) int
}

type coll[T any] struct {
	name, one string
	slice     func(*config.Policy) *[]T
	id        func(*T) string
	setID     func(*T, string)
	// redact hides write-only secrets of v in r; keep copies them from
	// old into v when the body did not set them.
	redact func(r Resource, v *T)
	keep   func(v, old *T, body Resource)
	// flag is the read-only member redact adds ("secret_sha256_set"),
	// which a body read with GET may carry back.
	flag string
}

func (c coll[T]) singular() string { return c.one }

func (c coll[T]) ids(p config.Policy) []string {
	s := *c.slice(&p)
	out := make([]string, len(s))
	for i := range s {
		out[i] = c.id(&s[i])
	}
	return out
}

func (c coll[T]) index(p config.Policy, id string) int {
	s := *c.slice(&p)
	for i := range s {
		if c.id(&s[i]) == id {
			return i
		}
	}
	return -1
}

func (c coll[T]) list(p config.Policy) ([]Resource, error) {
	s := *c.slice(&p)
	out := make([]Resource, 0, len(s))
	for i := range s {
		r, err := c.show(&s[i])
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (c coll[T]) show(v *T) (Resource, error) {
	r, err := toResource(v)
	if err != nil {
		return nil, err
	}
	if c.redact != nil {
		c.redact(r, v)
	}
	return r, nil
}

func (c coll[T]) get(p config.Policy, id string, tag tagger) (Resource, string, bool, error) {
	i := c.index(p, id)
	if i < 0 {
		return nil, "", false, nil
	}
	v := &(*c.slice(&p))[i]
	r, err := c.show(v)
	return r, tag(v), true, err
}

func (c coll[T]) etag(p config.Policy, id string, tag tagger) (string, bool) {
	i := c.index(p, id)
	if i < 0 {
		return "", false
	}
	return tag(&(*c.slice(&p))[i]), true
}

func (c coll[T]) listETag(p config.Policy, tag tagger) string { return tag(*c.slice(&p)) }

func (c coll[T]) decode(r Resource, id string, old *T) (T, error) {
	var v T
	body := Resource{}
	for k, x := range r {
		if k == c.flag && c.flag != "" {
			continue // the read-only flag of a redacted secret
		}
		if auth, ok := x.(map[string]any); ok && k == "auth" {
			// auth.key_set, a downstream's flag, so that a body read
			// with GET can be written back as it is.
			x = withoutKey(auth, "key_set")
		}
		body[k] = x
	}
	if err := fromResource(body, &v); err != nil {
		return v, err
	}
	if c.setID != nil && id != "" {
		c.setID(&v, id)
	}
	if old != nil && c.keep != nil {
		c.keep(&v, old, body)
	}
	return v, nil
}

// withoutKey returns a copy of m without k.
func withoutKey(m map[string]any, k string) map[string]any {
	out := make(map[string]any, len(m))
	for kk, v := range m {
		if kk != k {
			out[kk] = v
		}
	}
	return out
}

func (c coll[T]) put(p *config.Policy, id string, r Resource) (int, error) {
	s := c.slice(p)
	i := c.index(*p, id)
	var old *T
	if i >= 0 {
		old = &(*s)[i]
	}
	v, err := c.decode(r, id, old)
	if err != nil {
		return -1, err
	}
	if i < 0 {
		*s = append(*s, v)
		return len(*s) - 1, nil
	}
	(*s)[i] = v
	return i, nil
}

func (c coll[T]) replaceAll(p *config.Policy, rs []Resource) error {
	s := c.slice(p)
	olds := map[string]*T{}
	for i := range *s {
		olds[c.id(&(*s)[i])] = &(*s)[i]
	}
	next := make([]T, 0, len(rs))
	var problems []Problem
	for i, r := range rs {
		id, _ := r["id"].(string)
		v, err := c.decode(r, "", olds[id])
		if err != nil {
			problems = append(problems, prefixProblems(err, fmt.Sprintf("%s[%d]", c.name, i))...)
			continue
		}
		next = append(next, v)
	}
	if len(problems) > 0 {
		return &Error{Status: 400, Code: "invalid_request", Description: "the list has invalid entries", Problems: problems}
	}
	*s = next
	return nil
}

func (c coll[T]) remove(p *config.Policy, id string) bool {
	s := c.slice(p)
	i := c.index(*p, id)
	if i < 0 {
		return false
	}
	*s = append((*s)[:i:i], (*s)[i+1:]...)
	return true
}

var collections = map[Kind]collection{
	Downstreams: coll[config.Downstream]{
		name: "downstreams", one: "downstream",
		slice: func(p *config.Policy) *[]config.Downstream { return &p.Downstreams },
		id:    func(d *config.Downstream) string { return d.ID },
		setID: func(d *config.Downstream, id string) { d.ID = id },
		redact: func(r Resource, d *config.Downstream) {
			auth, _ := r["auth"].(map[string]any)
			if auth == nil {
				return
			}
			delete(auth, "key")
			auth["key_set"] = d.Auth.Key != ""
		},
		keep: func(d, old *config.Downstream, body Resource) {
			// An inline key is write-only: an update that names no key
			// source keeps the stored one (docs/admin.md "Secrets").
			a := &d.Auth
			if a.Key == "" && a.KeyEnv == "" && a.KeyFile == "" && a.Method == "private_key_jwt" && old.Auth.Key != "" {
				a.Key = old.Auth.Key
			}
		},
	},
	Clients: coll[config.Client]{
		name: "clients", one: "client", flag: "secret_sha256_set",
		slice: func(p *config.Policy) *[]config.Client { return &p.Clients },
		id:    func(c *config.Client) string { return c.ID },
		setID: func(c *config.Client, id string) { c.ID = id },
		redact: func(r Resource, c *config.Client) {
			delete(r, "secret_sha256")
			r["secret_sha256_set"] = c.SecretSHA256 != ""
		},
		keep: func(c, old *config.Client, body Resource) {
			if c.SecretSHA256 == "" && c.SecretEnv == "" && c.SecretFile == "" && old.SecretSHA256 != "" && c.TokenEndpointAuthMethod != "none" && c.TokenEndpointAuthMethod != "private_key_jwt" {
				c.SecretSHA256 = old.SecretSHA256
			}
		},
	},
	Apps: coll[config.App]{
		name: "apps", one: "app",
		slice: func(p *config.Policy) *[]config.App { return &p.Apps },
		id:    func(a *config.App) string { return a.ID },
		setID: func(a *config.App, id string) { a.ID = id },
	},
	Routes: coll[config.Route]{
		name: "routes", one: "route",
		slice: func(p *config.Policy) *[]config.Route { return &p.Routes },
		id:    func(r *config.Route) string { return r.ID },
		setID: func(r *config.Route, id string) { r.ID = id },
	},
}

// toResource renders v as the config file would (YAML keys, durations as
// "3s") in a JSON-ready map.
func toResource(v any) (Resource, error) {
	b, err := yaml.Marshal(v)
	if err != nil {
		return nil, err
	}
	r := Resource{}
	if err := yaml.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return r, nil
}

// fromResource decodes a JSON body into v with the config file's decoder:
// unknown keys are errors, values have the file's types.
func fromResource(r Resource, v any) error {
	b, err := yaml.Marshal(r)
	if err != nil {
		return &Error{Status: 400, Code: "invalid_request", Description: "the body is not a valid object"}
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return decodeError(err, linePaths(b))
	}
	if d, err := toResource(v); err == nil {
		if ps := typeProblems(map[string]any(r), map[string]any(d), ""); len(ps) > 0 {
			return &Error{Status: 400, Code: "invalid_request", Description: "the body does not match the resource's schema", Problems: ps}
		}
	}
	return nil
}

// typeProblems compares the JSON types of a body with the values they
// decoded to: yaml.v3 takes 5 or true for a string ("5", "true"), "yes"
// for true, and truncates 2.5 for an integer, where the API promises
// JSON types. No policy field is a float.
func typeProblems(body, decoded any, path string) []Problem {
	var out []Problem
	wrong := func(msg string) { out = append(out, Problem{Path: path, Field: path, Message: msg}) }
	switch b := body.(type) {
	case map[string]any:
		d, _ := decoded.(map[string]any)
		keys := make([]string, 0, len(b))
		for k := range b {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if y, ok := d[k]; ok {
				p := k
				if path != "" {
					p = path + "." + k
				}
				out = append(out, typeProblems(b[k], y, p)...)
			}
		}
	case []any:
		d, _ := decoded.([]any)
		for i := range b {
			if i < len(d) {
				out = append(out, typeProblems(b[i], d[i], fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	case float64:
		switch y := decoded.(type) {
		case string:
			wrong("a number where a string is expected")
		case int:
			if float64(y) != b {
				wrong(fmt.Sprintf("%v where an integer is expected", b))
			}
		}
	case bool:
		if _, ok := decoded.(string); ok {
			wrong("true or false where a string is expected")
		}
	case string:
		if _, ok := decoded.(bool); ok {
			wrong("a string where true or false is expected")
		}
	}
	return out
}

var (
	yamlUnknown = regexp.MustCompile(`field (\S+) not found in type \S+`)
	yamlType    = regexp.MustCompile("cannot unmarshal !!(\\w+) `?([^`]*)`? into (\\S+)")
	yamlLine    = regexp.MustCompile(`^line \d+: `)
)

// decodeError turns yaml.v3's messages (which name Go types and lines of
// a document the client never wrote) into problems named by key.
// lines maps a line of the YAML document built from the body to the path
// of the key or item that starts there, so that the decoder's "line N"
// messages name the body's path ("auth.bogus", "claims").
func decodeError(err error, lines map[int]string) *Error {
	e := &Error{Status: 400, Code: "invalid_request", Description: "the body does not match the resource's schema"}
	te, ok := err.(*yaml.TypeError)
	if !ok {
		e.Problems = []Problem{{Message: "malformed value"}}
		return e
	}
	for _, m := range te.Errors {
		path := ""
		if g := yamlLineNo.FindStringSubmatch(m); g != nil {
			n, _ := strconv.Atoi(g[1])
			path = lines[n]
		}
		m = yamlLine.ReplaceAllString(m, "")
		if g := yamlUnknown.FindStringSubmatch(m); g != nil {
			if path == "" {
				path = g[1]
			}
			e.Problems = append(e.Problems, Problem{Path: path, Field: path, Message: "unknown field"})
			continue
		}
		if g := yamlType.FindStringSubmatch(m); g != nil {
			e.Problems = append(e.Problems, Problem{Path: path, Field: path, Message: fmt.Sprintf("a %s value (%q) where %s is expected", g[1], g[2], goTypeWord(g[3]))})
			continue
		}
		e.Problems = append(e.Problems, Problem{Path: path, Field: path, Message: m})
	}
	return e
}

var yamlLineNo = regexp.MustCompile(`^line (\d+): `)

// linePaths indexes the YAML document b: line → path of the key (or list
// item) on it; for a value on its own lines, the key's line names it.
func linePaths(b []byte) map[int]string {
	var root yaml.Node
	if yaml.Unmarshal(b, &root) != nil {
		return nil
	}
	out := map[int]string{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if _, seen := out[k.Line]; !seen {
					out[k.Line] = p
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if _, seen := out[c.Line]; !seen {
					out[c.Line] = p
				}
				walk(c, p)
			}
		}
	}
	walk(&root, "")
	return out
}

func goTypeWord(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "an object"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "a number"
	case t == "time.Duration":
		return "a duration such as \"3s\""
	case t == "string":
		return "a string"
	}
	return "an object"
}

// tagger computes entity tags (Service.tag).
type tagger func(v any) string

// etagOf is a strong entity tag (RFC 9110 §8.8.3) over v's full stored
// form, secrets included, so that a change to a write-only secret also
// changes it. It is keyed (HMAC-SHA-256): the read role sees the tag and
// every other member of the entry, so a plain digest would let it test
// guesses of a client's secret offline. Instances sharing a store share
// the key, so that a tag read from one is good on another.
func etagOf(key []byte, v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return `"?"`
	}
	m := hmac.New(sha256.New, key)
	m.Write(b)
	return `"` + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12]) + `"`
}

// fingerprintKey keys the fingerprints of redacted secrets. It is this
// process's own: a fingerprint only has to show, within one diff or
// document, whether a secret changed, and must not confirm a guess of
// it (an unkeyed digest of a weak client secret would).
var fingerprintKey = randomBytes(32)

func fingerprint(secret string) string {
	m := hmac.New(sha256.New, fingerprintKey)
	m.Write([]byte(secret))
	return "<redacted " + base64.RawURLEncoding.EncodeToString(m.Sum(nil))[:8] + ">"
}

// redactedYAML is the policy as the audit log, the version documents
// and diffs, and the log show it (all of which the read role sees):
// inline downstream keys, client secret digests, and users' password
// hashes and TOTP seeds replaced by fingerprints.
func redactedYAML(p config.Policy) string {
	p = p.Clone()
	for i := range p.Downstreams {
		if p.Downstreams[i].Auth.Key != "" {
			p.Downstreams[i].Auth.Key = fingerprint(p.Downstreams[i].Auth.Key)
		}
	}
	for i := range p.Clients {
		if p.Clients[i].SecretSHA256 != "" {
			p.Clients[i].SecretSHA256 = fingerprint(p.Clients[i].SecretSHA256)
		}
	}
	for i := range p.Users {
		if u := &p.Users[i]; u.PasswordHash != "" {
			u.PasswordHash = fingerprint(u.PasswordHash)
		}
		if u := &p.Users[i]; u.TOTPSecret != "" {
			u.TOTPSecret = fingerprint(u.TOTPSecret)
		}
	}
	b, _ := config.MarshalPolicy(p)
	return string(b)
}
