// Package ts_test runs the TypeScript SDK's test suite (sdk/ts, issue 14)
// from `go test ./...`, so that the repository's CI command covers it:
// the TypeScript client against real fedas servers on 127.0.0.1.
package ts_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// sources are what the suite needs of sdk/ts; node_modules and dist are
// made in the copy, never inside the repository (where ./... would walk
// them).
var sources = []string{"package.json", "package-lock.json", "tsconfig.json", "src", "test", "testsupport", "examples"}

// TestTypeScriptSDK copies the package into a temporary directory, runs
// `npm ci` there and `npm test` with a fedas binary built here
// ($FEDAS_BIN) and this repository as $FEDAS_REPO_ROOT (testsupport/fedas.ts).
func TestTypeScriptSDK(t *testing.T) {
	node := lookTool(t, "node", nodeHint)
	npm := lookTool(t, "npm", nodeHint)
	goTool := lookTool(t, "go", "the Go toolchain builds ./cmd/fedas for the suite")
	checkNodeVersion(t, node)

	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	pkg := t.TempDir()
	for _, s := range sources {
		if err := copyTree(s, filepath.Join(pkg, s)); err != nil {
			t.Fatalf("copy %s: %v", s, err)
		}
	}
	bin := filepath.Join(t.TempDir(), "fedas")
	run(ctx, t, root, nil, goTool, "build", "-o", bin, "./cmd/fedas")

	env := append(os.Environ(), "FEDAS_BIN="+bin, "FEDAS_REPO_ROOT="+root, "npm_config_update_notifier=false")
	run(ctx, t, pkg, env, npm, "ci", "--no-audit", "--no-fund")
	run(ctx, t, pkg, env, npm, "test")
}

const nodeHint = "the TypeScript SDK tests (sdk/ts) need Node.js 20 or later with npm; " +
	"install it (https://nodejs.org/en/download, or `apt-get install nodejs npm`) and run go test again"

// lookTool finds a tool on PATH or fails with an install hint: the suite
// must run wherever `go test ./...` runs, so a missing Node is a failure,
// never a skip.
func lookTool(t testing.TB, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found on PATH: %s", name, hint)
	}
	return p
}

var nodeVersion = regexp.MustCompile(`^v(\d+)\.`)

// checkNodeVersion requires Node 20 or later (global fetch, WebCrypto,
// the node:test runner the suite uses).
func checkNodeVersion(t testing.TB, node string) {
	t.Helper()
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	m := nodeVersion.FindSubmatch(bytes.TrimSpace(out))
	if m == nil {
		t.Fatalf("node --version said %q", out)
	}
	if major, _ := strconv.Atoi(string(m[1])); major < 20 {
		t.Fatalf("node %s is too old: the TypeScript SDK needs Node.js 20 or later (https://nodejs.org/en/download)", bytes.TrimSpace(out))
	}
}

// run runs a command in dir and fails with its whole output when it
// fails or when ctx ends first.
func run(ctx context.Context, t testing.TB, dir string, env []string, name string, args ...string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	err := cmd.Run()
	if err != nil || ctx.Err() != nil {
		t.Logf("%s %v in %s (%s):\n%s", name, args, dir, time.Since(start).Round(time.Millisecond), out.String())
		t.Fatalf("%s %v: %v (context: %v)", filepath.Base(name), args, err, ctx.Err())
	}
	t.Logf("%s %v: ok in %s", filepath.Base(name), args, time.Since(start).Round(time.Millisecond))
}

// copyTree copies a file or a directory tree; a missing source is fine
// (examples/ is optional to the suite).
func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if os.IsNotExist(err) && p == src {
			return nil
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
