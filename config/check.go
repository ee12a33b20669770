package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	yaml4 "go.yaml.in/yaml/v4"
	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a configuration, with its place: the
// YAML path of the key it concerns and that key's line and column in the
// file, or the environment variable or flag that set the value.
type Problem struct {
	// Path is the YAML path ("clients[0].secret_env"); empty for a YAML
	// syntax error, which has a line and column instead.
	Path string
	// Line and Column locate the problem in the file (1-based); zero when
	// unknown or when the value did not come from the file.
	Line, Column int
	// Source names the environment variable or flag that set the value
	// ("FEDAS_ISSUER", "--listen"), when it did not come from the file.
	Source string
	// Message says what is wrong, in the file's terms (no Go type names).
	Message string
	// AfterSyntax marks a problem found in the file with the lines that do
	// not parse left out: fixing the syntax may make it go away.
	AfterSyntax bool
}

// String is "path: message", the form Validate has always used, one
// problem per line; a syntax error, which has no path, starts with its
// line and column instead.
func (p Problem) String() string {
	if p.Path == "" {
		if p.Line > 0 {
			return fmt.Sprintf("line %d, column %d: %s", p.Line, p.Column, p.Message)
		}
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Options says what overrides a config file and how far a check goes.
type Options struct {
	// Env looks up the FEDAS_ environment overrides (Overrides); nil reads
	// none.
	Env func(string) (string, bool)
	// Flags are command-line settings, applied after Env: a flag beats the
	// environment, which beats the file.
	Flags []Setting
	// Keys also loads what serve loads before it listens: the signing
	// keys (kept in the returned config, so that Validate checks
	// keys.active_signing_key against their kids), the HMAC secret and the
	// Redis password. Parse leaves them to serve;
	// `fedas config check` sets Keys so that a config it accepts starts.
	Keys bool
}

// Setting is one override of a key by a flag (or by anything else that
// is not the file).
type Setting struct {
	// Key is a key of Overrides ("listen", "storage.redis.url").
	Key string
	// Value is the value as given.
	Value string
	// Source names where the value came from ("--listen").
	Source string
}

// maxSyntaxRetries bounds how many unparsable lines Check leaves out
// before it gives up on the rest of the file.
const maxSyntaxRetries = 20

// Check reads a config file's bytes as serve does and reports every
// problem at once: YAML syntax errors (with line and column), unknown keys
// (with a "did you mean"), values of the wrong type, and everything
// Validate finds, each with its YAML path and position. A syntax error
// stops a YAML parser, so Check leaves the offending line out and parses
// again, up to maxSyntaxRetries times: the problems it then finds in the
// rest are marked AfterSyntax. The returned config is the one serve would
// use when there are no problems; with problems it is as far as it got
// (never nil).
func Check(b []byte, o Options) (*Config, []Problem) {
	var probs []Problem
	text, syntax := parseRecovering(b)
	probs = append(probs, syntax...)
	after := len(syntax) > 0
	add := func(p Problem) {
		p.AfterSyntax = after
		probs = append(probs, p)
	}
	c := &Config{}
	if text == nil {
		// Nothing parsed: a semantic check would only report what is
		// missing because of the syntax.
		return c, probs
	}
	var root yaml.Node
	_ = yaml.Unmarshal(text, &root) // parseRecovering made sure it parses
	pos := map[string]yaml.Node{}
	if doc := document(&root); doc != nil {
		walkSchema(doc, reflect.TypeOf(Config{}), "", pos, add)
		// Lenient decode: the walk above reported every key and type
		// problem; yaml.v3 decodes everything else around them (but gives
		// up whole on a duplicate key, so those go first).
		dropDuplicateKeys(doc)
		_ = doc.Decode(c)
	}
	sources, errs := c.applyOverrides(o)
	for _, e := range errs {
		add(e)
	}
	c.applyDefaults()
	var semantic []error
	semantic = append(semantic, c.resolveSecrets())
	if o.Keys {
		// Before Validate: it checks active_signing_key against the kids.
		semantic = append(semantic, c.Keys.LoadSigningKeys())
	}
	semantic = append(semantic, c.Validate())
	if o.Keys {
		_, err := c.Keys.HMACSecret()
		semantic = append(semantic, err)
		if c.Storage.Redis != nil {
			_, err = c.Storage.Redis.RedisPassword()
			semantic = append(semantic, err)
		}
	}
	for _, line := range Problems(errors.Join(semantic...)) {
		add(locate(line, pos, sources))
	}
	sortProblems(probs)
	return c, probs
}

// sortProblems orders problems as a reader fixes them: syntax errors,
// then by place in the file, then those set outside it.
func sortProblems(probs []Problem) {
	rank := func(p Problem) int {
		switch {
		case p.Path == "" && p.Line > 0:
			return 0
		case p.Line > 0:
			return 1
		}
		return 2
	}
	sort.SliceStable(probs, func(i, j int) bool {
		a, b := probs[i], probs[j]
		if a.AfterSyntax != b.AfterSyntax {
			return !a.AfterSyntax
		}
		if rank(a) != rank(b) {
			return rank(a) < rank(b)
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

// checkError joins problems into one error, one "path: message" line
// each, for Problems to split again.
func checkError(probs []Problem) error {
	errs := make([]error, len(probs))
	for i, p := range probs {
		errs[i] = errors.New(p.String())
	}
	return errors.Join(errs...)
}

// problemPath is the path at the start of a Validate message.
var problemPath = regexp.MustCompile(`^([a-z_][a-z0-9_]*(?:\[\d+\])*(?:\.[a-z_][a-z0-9_]*(?:\[\d+\])*)*): (.*)$`)

// locate turns a "path: message" line into a Problem placed at the
// longest prefix of its path that the file holds, or at the override that
// set it.
func locate(line string, pos map[string]yaml.Node, sources map[string]string) Problem {
	m := problemPath.FindStringSubmatch(line)
	if m == nil {
		return Problem{Message: line}
	}
	p := Problem{Path: m[1], Message: m[2]}
	for key, src := range sources {
		if p.Path == key || strings.HasPrefix(p.Path, key+".") || strings.HasPrefix(p.Path, key+"[") {
			p.Source = src
			return p
		}
	}
	for path := p.Path; path != ""; path = parentPath(path) {
		if n, ok := pos[path]; ok {
			p.Line, p.Column = n.Line, n.Column
			break
		}
	}
	return p
}

// parentPath drops the last element of a path: "a.b[2]" → "a.b" → "a".
func parentPath(p string) string {
	if i := strings.LastIndexAny(p, ".["); i > 0 {
		return p[:i]
	}
	return ""
}

// document returns the top mapping of a parsed file, or nil for an empty
// file.
func document(root *yaml.Node) *yaml.Node {
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		return root.Content[0]
	}
	return nil
}

// parseRecovering parses b; on a syntax error it blanks the line the
// error points at (keeping line numbers) and tries again, so that one
// typo does not hide the problems of the rest of the file. It returns the
// text that finally parsed (nil when it gave up) and one problem per
// syntax error, with line and column from go-yaml v4's parser, which
// reports both (yaml.v3's errors carry a line only, and sometimes the
// line of the enclosing construct).
func parseRecovering(b []byte) ([]byte, []Problem) {
	var probs []Problem
	text := bytes.Clone(b)
	for range maxSyntaxRetries {
		var n yaml.Node
		err := yaml.Unmarshal(text, &n)
		if err == nil {
			return text, probs
		}
		p, context, unclosed := syntaxProblem(text, err)
		probs = append(probs, p)
		// The line the parser stopped at, else the line of the construct
		// it was in; for an unclosed bracket or quote, that line first:
		// the parser notices it only lines later, at a line that is fine.
		lines := []int{p.Line, context}
		if unclosed {
			lines = []int{context, p.Line}
		}
		next, ok := blankLine(text, lines[0])
		if !ok {
			if next, ok = blankLine(text, lines[1]); !ok {
				break
			}
		}
		text = next
	}
	probs = append(probs, Problem{Message: "YAML syntax: fix the errors above first: the rest of the file was not checked"})
	return nil, probs
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxProblem describes a parse error with its line and column, and
// returns the line of the construct it was found in (0 when unknown) and
// whether that construct is a flow collection or a quoted string, which
// the parser reports only where it finds it unclosed.
func syntaxProblem(text []byte, v3err error) (Problem, int, bool) {
	var n yaml4.Node
	var le *yaml4.LoadError
	if err := yaml4.Unmarshal(text, &n); errors.As(err, &le) && le.Mark.Line > 0 {
		unclosed := le.ContextMark.Line > 0 && le.ContextMark.Line < le.Mark.Line &&
			(strings.Contains(le.ContextMsg, "flow") || strings.Contains(le.ContextMsg, "quoted"))
		p := Problem{Line: le.Mark.Line, Column: le.Mark.Column, Message: "YAML syntax: " + le.Message}
		if unclosed {
			p.Line, p.Column = le.ContextMark.Line, le.ContextMark.Column
			p.Message += " (" + le.ContextMsg + " that starts here)"
		}
		return p, le.ContextMark.Line, unclosed
	}
	msg := v3err.Error()
	p := Problem{Message: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		fmt.Sscan(m[1], &p.Line)
		p.Message = "YAML syntax: " + m[2]
	}
	return p, 0, false
}

// blankLine replaces line n (1-based) with spaces; false when there is no
// such line or it is blank already (leaving it out cannot help).
func blankLine(text []byte, n int) ([]byte, bool) {
	lines := bytes.SplitAfter(text, []byte("\n"))
	if n < 1 || n > len(lines) || len(bytes.TrimSpace(lines[n-1])) == 0 {
		return nil, false
	}
	lines[n-1] = []byte("\n")
	return bytes.Join(lines, nil), true
}

// field is a YAML key of a struct type.
type field struct {
	name string
	typ  reflect.Type
}

// yamlFields lists the keys of struct type t as yaml.v3 sees them
// (inline structs flattened, "-" skipped).
func yamlFields(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			out = append(out, yamlFields(f.Type)...)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, field{name, f.Type})
	}
	return out
}

var durationType = reflect.TypeOf(time.Duration(0))

// walkSchema checks node n against Go type t: unknown and duplicate keys,
// and values of the wrong kind, each reported with its YAML path. It
// records every key's and item's node in pos, for placing Validate's
// problems.
func walkSchema(n *yaml.Node, t reflect.Type, path string, pos map[string]yaml.Node, add func(Problem)) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	at := func(msg string) {
		add(Problem{Path: path, Line: n.Line, Column: n.Column, Message: msg})
	}
	switch {
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			at(fmt.Sprintf("%s where %s is expected", nodeWord(n), typeWord(t)))
			return
		}
		fields := map[string]reflect.Type{}
		var names []string
		for _, f := range yamlFields(t) {
			fields[f.name] = f.typ
			names = append(names, f.name)
		}
		seen := map[string]int{}
		walkMapping(n, func(k, v *yaml.Node) {
			p := joinPath(path, k.Value)
			ft, ok := fields[k.Value]
			switch {
			case !ok:
				msg := "unknown key"
				if s := suggest(k.Value, names); s != "" {
					msg += "; did you mean " + s + "?"
				} else {
					msg += " (valid here: " + strings.Join(names, ", ") + ")"
				}
				add(Problem{Path: p, Line: k.Line, Column: k.Column, Message: msg})
				return
			case seen[k.Value] > 0:
				add(Problem{Path: p, Line: k.Line, Column: k.Column, Message: fmt.Sprintf("duplicate key (first at line %d)", seen[k.Value])})
				return
			}
			seen[k.Value] = k.Line
			pos[p] = place(k, v)
			walkSchema(v, ft, p, pos, add)
		})
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			at(fmt.Sprintf("%s where %s is expected", nodeWord(n), typeWord(t)))
			return
		}
		seen := map[string]int{}
		walkMapping(n, func(k, v *yaml.Node) {
			p := joinPath(path, k.Value)
			if seen[k.Value] > 0 {
				add(Problem{Path: p, Line: k.Line, Column: k.Column, Message: fmt.Sprintf("duplicate key (first at line %d)", seen[k.Value])})
				return
			}
			seen[k.Value] = k.Line
			pos[p] = place(k, v)
			walkSchema(v, t.Elem(), p, pos, add)
		})
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			at(fmt.Sprintf("%s where %s is expected", nodeWord(n), typeWord(t)))
			return
		}
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			pos[p] = *item
			walkSchema(item, t.Elem(), p, pos, add)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			at(fmt.Sprintf("%s where %s is expected", nodeWord(n), typeWord(t)))
			return
		}
		// The decoder's own conversion, on this value alone: the check
		// accepts exactly what serve's decoding accepts.
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			at(fmt.Sprintf("%s where %s is expected", nodeWord(n), typeWord(t)))
		}
	}
}

// dropDuplicateKeys removes every repeated key of every mapping below n,
// keeping the first (walkSchema has reported them).
func dropDuplicateKeys(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		seen := map[string]bool{}
		kept := n.Content[:0:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind == yaml.ScalarNode && k.Tag != "!!merge" {
				if seen[k.Value] {
					continue
				}
				seen[k.Value] = true
			}
			kept = append(kept, k, n.Content[i+1])
		}
		n.Content = kept
	}
	for _, c := range n.Content {
		dropDuplicateKeys(c)
	}
}

// walkMapping calls f for every key and value of mapping n, following
// YAML merge keys (<<: *anchor) as yaml.v3 does.
func walkMapping(n *yaml.Node, f func(k, v *yaml.Node)) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" || (k.Value == "<<" && k.Tag != "!!str") {
			merged := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				merged = v.Content
			}
			for _, m := range merged {
				if m.Kind == yaml.AliasNode && m.Alias != nil {
					m = m.Alias
				}
				if m.Kind == yaml.MappingNode {
					walkMapping(m, f)
				}
			}
			continue
		}
		f(k, v)
	}
}

// place is where a problem with a key's value points: at a scalar value
// itself, else at the key.
func place(k, v *yaml.Node) yaml.Node {
	if v.Kind == yaml.ScalarNode {
		return *v
	}
	return *k
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// nodeWord names what a YAML node is, in the file's terms.
func nodeWord(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "…"
	}
	switch n.Tag {
	case "!!int", "!!float":
		return fmt.Sprintf("the number %s", v)
	case "!!bool":
		return fmt.Sprintf("the boolean %s", v)
	}
	return fmt.Sprintf("%q", v)
}

// typeWord names what a Go type is written as in the file.
func typeWord(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		return `a duration (such as "3s", "10m", "720h")`
	case t.Kind() == reflect.Struct, t.Kind() == reflect.Map:
		return "a mapping (key: value lines)"
	case t.Kind() == reflect.Slice:
		return "a list"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	}
	return "a string"
}

// suggest returns the valid key closest to key by edit distance (with
// transpositions), when it is close enough to be the likely intent.
func suggest(key string, valid []string) string {
	best, bestD := "", 1<<30
	sorted := append([]string(nil), valid...)
	sort.Strings(sorted)
	for _, v := range sorted {
		if d := editDistance(strings.ToLower(key), v); d < bestD {
			best, bestD = v, d
		}
	}
	limit := max(2, len(key)/3)
	if bestD <= limit && bestD < len(key) {
		return best
	}
	return ""
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and adjacent transpositions cost 1.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range rb {
		d[0][j+1] = j + 1
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
