package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRepo_GoModTidy: go.mod and go.sum are what `go mod tidy` makes (a
// dependency added by hand, or one no longer used, fails here).
func TestRepo_GoModTidy(t *testing.T) {
	cmd := exec.Command("go", "mod", "tidy", "-diff")
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go mod tidy -diff: run go mod tidy\n%s", out)
}

// joseV3Boundary is the one file that imports go-jose v3: fosite's client
// interface takes v3 key sets, so policy/clients.go converts our v4 keys
// at that boundary. Everything else uses v4 (CONTRIBUTING.md).
const joseV3Boundary = "policy/clients.go"

// TestRepo_OneGoJoseMajor: no other file imports go-jose v3 (or the
// square/go-jose it came from).
func TestRepo_OneGoJoseMajor(t *testing.T) {
	root, err := filepath.Abs(repoRoot)
	require.NoError(t, err)
	fset := token.NewFileSet()
	var v3 []string
	require.NoError(t, filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && (e.Name() == ".git" || e.Name() == "testdata") {
			return filepath.SkipDir
		}
		if e.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if strings.HasPrefix(p, "github.com/go-jose/go-jose/v3") || strings.HasPrefix(p, "gopkg.in/square/go-jose") {
				v3 = append(v3, filepath.ToSlash(rel))
			}
		}
		return nil
	}))
	require.Equal(t, []string{joseV3Boundary}, v3, "go-jose v3 only at the fosite boundary")
}

// TestRepo_CIRunsTheREADMECommand: .ci/run runs exactly the README's test
// command (the first sh block after "Run the whole test suite"), and
// CONTRIBUTING.md shows the same one, so that what CI checks is what a
// contributor runs (the fuzzing step included).
func TestRepo_CIRunsTheREADMECommand(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(repoRoot, name))
		require.NoError(t, err)
		return string(b)
	}
	firstBlockAfter := func(doc, marker string) string {
		_, rest, ok := strings.Cut(doc, marker)
		require.True(t, ok, "no %q", marker)
		_, rest, ok = strings.Cut(rest, "```sh\n")
		require.True(t, ok, "no sh block after %q", marker)
		block, _, ok := strings.Cut(rest, "\n```")
		require.True(t, ok)
		return strings.TrimSpace(block)
	}
	readme := firstBlockAfter(read("README.md"), "Run the whole test suite")
	require.NotContains(t, readme, "\n", "the README's test command is one line")
	require.Contains(t, readme, "go run ./internal/fuzzci", "CI runs the fuzzers")
	require.Equal(t, readme, firstBlockAfter(read("CONTRIBUTING.md"), "## Tests"), "CONTRIBUTING.md shows the README's command")
	var last string
	for _, l := range strings.Split(strings.TrimSpace(read(".ci/run")), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") && l != "set -euo pipefail" {
			last = l
		}
	}
	require.Equal(t, readme, last, ".ci/run runs the README's command")
}
