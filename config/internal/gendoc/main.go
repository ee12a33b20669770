// Command gendoc writes docs/config.md, the configuration reference, from
// the config package's source: every key's YAML name, type and doc
// comment, read with go/ast from config/*.go, and the FEDAS_ overrides
// from config.Overrides. Run it from anywhere in the module:
//
//	go run ./config/internal/gendoc        (or: go generate ./config)
//
// It fails, writing nothing, when a field has no doc comment: the
// reference is the comments, so an undocumented key would be a hole in
// it. TestConfigDoc fails when docs/config.md is not what it writes.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/fedas/fedas/config"
)

func main() {
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
	out, err := Generate(filepath.Join(root, "config"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
	path := filepath.Join(root, "docs", "config.md")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
	fmt.Println("wrote", path)
}

// moduleRoot is the nearest directory upwards with a go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the current directory")
		}
		dir = parent
	}
}

// source is the parsed config package: its struct types and the doc
// comments of its types and constants.
type source struct {
	structs map[string]*ast.StructType
	typeDoc map[string]string
	consts  map[string]string
}

func parse(dir string) (*source, error) {
	fset := token.NewFileSet()
	matches, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	src := &source{structs: map[string]*ast.StructType{}, typeDoc: map[string]string{}, consts: map[string]string{}}
	for _, m := range matches {
		if strings.HasSuffix(m, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, m, nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, sp := range gd.Specs {
				switch sp := sp.(type) {
				case *ast.TypeSpec:
					st, ok := sp.Type.(*ast.StructType)
					if !ok {
						continue
					}
					src.structs[sp.Name.Name] = st
					doc := sp.Doc
					if doc == nil && len(gd.Specs) == 1 {
						doc = gd.Doc
					}
					src.typeDoc[sp.Name.Name] = doc.Text()
				case *ast.ValueSpec:
					if gd.Tok == token.CONST {
						for _, n := range sp.Names {
							src.consts[n.Name] = sp.Doc.Text()
						}
					}
				}
			}
		}
	}
	return src, nil
}

// key is one documented YAML key.
type key struct {
	name, typ, doc string
}

// section is the keys of one struct at one YAML path.
type section struct {
	path, doc string
	keys      []key
}

// Generate returns docs/config.md for the config package in dir.
func Generate(dir string) ([]byte, error) {
	src, err := parse(dir)
	if err != nil {
		return nil, err
	}
	var sections []section
	var missing []string
	var walk func(typeName, path string)
	walk = func(typeName, path string) {
		st := src.structs[typeName]
		sec := section{path: path, doc: src.typeDoc[typeName]}
		type child struct{ typeName, path string }
		var children []child
		for _, f := range st.Fields.List {
			name := yamlName(f)
			if name == "-" || len(f.Names) == 0 {
				continue
			}
			doc := strings.TrimSpace(f.Doc.Text())
			full := joinPath(path, name)
			if doc == "" {
				missing = append(missing, fmt.Sprintf("%s.%s (%s)", typeName, f.Names[0].Name, full))
			}
			typ, sub, suffix := typeOf(f.Type, src)
			if sub != "" {
				childPath := full + suffix
				typ += fmt.Sprintf(" ([`%s`](#%s))", childPath, anchor(childPath))
				children = append(children, child{sub, childPath})
			}
			sec.keys = append(sec.keys, key{name: name, typ: typ, doc: keyDoc(doc, f.Names[0].Name, name)})
		}
		sections = append(sections, sec)
		for _, c := range children {
			walk(c.typeName, c.path)
		}
	}
	walk("Config", "")
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("fields without a doc comment (every key is documented from its comment):\n  %s", strings.Join(missing, "\n  "))
	}
	return render(sections, src), nil
}

// keyDoc is a field's comment as the reference shows it: a Go comment
// starts with the field's Go name, which the file never shows; the key
// stands in for it.
func keyDoc(doc, goName, yamlKey string) string {
	if rest, ok := strings.CutPrefix(doc, goName+" "); ok {
		return "`" + yamlKey + "` " + rest
	}
	return doc
}

// yamlName is a field's YAML key ("-" for none).
func yamlName(f *ast.Field) string {
	if f.Tag == nil {
		return strings.ToLower(f.Names[0].Name)
	}
	tag := reflect.StructTag(strings.Trim(f.Tag.Value, "`")).Get("yaml")
	name, _, _ := strings.Cut(tag, ",")
	if name == "" && len(f.Names) > 0 {
		name = strings.ToLower(f.Names[0].Name)
	}
	return name
}

// typeOf describes a field's type as the file writes it; for a struct of
// the package it also returns the struct's name and the path suffix of
// its section ("[]" for a list of them).
func typeOf(e ast.Expr, src *source) (word, sub, suffix string) {
	switch t := e.(type) {
	case *ast.StarExpr:
		return typeOf(t.X, src)
	case *ast.Ident:
		if _, ok := src.structs[t.Name]; ok {
			return "mapping", t.Name, ""
		}
		switch t.Name {
		case "string":
			return "string", "", ""
		case "bool":
			return "boolean", "", ""
		case "int", "int64", "int32", "uint", "uint64":
			return "integer", "", ""
		}
		return t.Name, "", ""
	case *ast.SelectorExpr:
		if x, ok := t.X.(*ast.Ident); ok && x.Name == "time" && t.Sel.Name == "Duration" {
			return "duration", "", ""
		}
	case *ast.ArrayType:
		w, sub, _ := typeOf(t.Elt, src)
		if sub != "" {
			return "list of mappings", sub, "[]"
		}
		return "list of " + w + "s", "", ""
	case *ast.MapType:
		k, _, _ := typeOf(t.Key, src)
		v, _, _ := typeOf(t.Value, src)
		return fmt.Sprintf("mapping of %s to %s", k, v), "", ""
	}
	return fmt.Sprintf("%T", e), "", ""
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// anchor is GitHub's heading anchor for a section titled `path`.
func anchor(path string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(path) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// oneLine joins a comment's lines for a table cell.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

func render(sections []section, src *source) []byte {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# Configuration reference\n\n")
	p("<!-- Generated by `go run ./config/internal/gendoc` (or `go generate ./config`) from the doc\n")
	p("comments of config/*.go: edit those and regenerate. TestConfigDoc fails when this file is stale. -->\n\n")
	p("fedas reads one YAML file: `fedas serve --config FILE` (or `$%s`). Unknown keys are errors.\n", config.EnvConfig)
	p("`fedas config check FILE` reports every problem at once — YAML syntax errors with line and column,\n")
	p("unknown keys with a suggestion, values of the wrong type, and the rules below — each with its YAML\n")
	p("path (`clients[0].secret_env`) and line, and loads the signing keys, the HMAC secret and every\n")
	p("secret reference as `serve` would, so that a file it accepts starts. Durations are written as\n")
	p("`90s`, `10m`, `720h`. The policy keys (`clients`, `users`, `downstreams`, `prompt`, `routes`,\n")
	p("`default_route`, `apps`, `keys.active_signing_key`) bootstrap the policy store and are then edited\n")
	p("through the admin API (docs/admin.md); the others are per instance and take effect at a restart.\n\n")
	p("Secrets never need to be in the file: every secret has an `_env` form (the name of an environment\n")
	p("variable holding it) and a `_file` form (a file holding it; one trailing newline is dropped), and\n")
	p("client secrets are stored as SHA-256 digests.\n\n")

	p("## Environment overrides\n\n")
	p("A few keys can be set by environment variables, named `FEDAS_` + the key's YAML path in capitals\n")
	p("with dots as underscores. Only the variables listed here are read. **Precedence: flag > environment\n")
	p("> file.** An empty variable counts as unset. `fedas config check` applies them too (`--no-env` to\n")
	p("check the file alone).\n\n")
	p("| variable | key | flag | notes |\n|---|---|---|---|\n")
	for _, o := range config.Overrides() {
		flag := o.Flag
		if flag != "" {
			flag = "`" + flag + "`"
		}
		p("| `%s` | `%s` | %s | %s |\n", o.Env, o.Key, flag, oneLine(o.Doc))
	}
	p("\nRead by the command itself, not keys of the file:\n\n")
	p("| variable | meaning |\n|---|---|\n")
	p("| `%s` | %s |\n", config.EnvConfig, oneLine(keyDoc(src.consts["EnvConfig"], "EnvConfig", config.EnvConfig)))
	p("| `%s` | %s |\n", config.EnvRequireConfig, oneLine(keyDoc(src.consts["EnvRequireConfig"], "EnvRequireConfig,", config.EnvRequireConfig+",")))

	p("\n## Keys\n")
	for _, s := range sections {
		title := s.path
		if title == "" {
			p("\n### Top level\n\n")
		} else {
			p("\n### `%s`\n\n", title)
		}
		if s.doc != "" {
			p("%s\n\n", oneLine(s.doc))
		}
		p("| key | type | description |\n|---|---|---|\n")
		for _, k := range s.keys {
			p("| `%s` | %s | %s |\n", k.name, k.typ, oneLine(k.doc))
		}
	}
	return b.Bytes()
}
