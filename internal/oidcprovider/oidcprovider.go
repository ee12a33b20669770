// Package oidcprovider installs and starts a real panva/node-oidc-provider
// (a pinned npm version) in a node child process on a free loopback port:
// the RFC 8414 / OpenID Connect server without a native endpoint that
// fedasbench compares fedas with and the conformance kit is run against
// (docs/conformance.md). `npm ci` installs it, from the committed lockfile
// npm/package-lock.json (the whole dependency tree pinned, integrity
// checked), into a temporary folder once; the folder's path is kept under
// os.UserCacheDir()/fedasbench so that later runs, and later calls in one
// process, reuse it.
package oidcprovider

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Version is the npm version installed (v9: ESM, `new Provider(issuer,
// configuration)`, provider.callback()).
const Version = "9.13.3"

//go:embed provider.mjs
var script []byte

// The npm project installed: oidc-provider at Version and its lockfile
// (regenerate with `npm install --package-lock-only` in npm/).
var (
	//go:embed npm/package.json
	packageJSON []byte
	//go:embed npm/package-lock.json
	packageLock []byte
)

// installMu serialises installs within a process: one npm install per
// process at most, whatever the number of callers.
var installMu sync.Mutex

// Install returns a folder with oidc-provider installed, running npm when
// the cached one is gone. It fails (never skips) when npm is missing.
func Install(ctx context.Context) (string, error) {
	installMu.Lock()
	defer installMu.Unlock()
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	cache = filepath.Join(cache, "fedasbench")
	sum := sha256.Sum256(packageLock)
	pathFile := filepath.Join(cache, "oidc-provider-"+Version+"-"+hex.EncodeToString(sum[:6])+".path")
	if b, err := os.ReadFile(pathFile); err == nil {
		dir := strings.TrimSpace(string(b))
		var pkg struct{ Version string }
		if pj, err := os.ReadFile(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err == nil &&
			json.Unmarshal(pj, &pkg) == nil && pkg.Version == Version {
			return dir, nil
		}
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return "", errors.New("oidc-provider needs npm and node on PATH")
	}
	dir, err := os.MkdirTemp("", "fedas-oidc-provider-")
	if err != nil {
		return "", err
	}
	for name, b := range map[string][]byte{"package.json": packageJSON, "package-lock.json": packageLock} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			_ = os.RemoveAll(dir)
			return "", err
		}
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ictx, "npm", "ci", "--no-audit", "--no-fund", "--silent")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("npm ci (oidc-provider@%s): %w\n%s", Version, err, out)
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	return dir, os.WriteFile(pathFile, []byte(dir+"\n"), 0o644)
}

// Config is the provider's configuration (provider.mjs).
type Config struct {
	// Clients are oidc-provider client metadata (OpenID Connect Dynamic
	// Client Registration 1.0 §2 names: client_id, redirect_uris, …).
	Clients []map[string]any `json:"clients"`
	// CodeTTL is the authorization codes' lifetime in seconds (0: 60).
	CodeTTL int `json:"code_ttl,omitempty"`
	// MintToken, when set, enables POST /__bench/mint with this bearer
	// token: codes minted in bulk for the first client (fedasbench).
	MintToken string `json:"mint_token,omitempty"`
}

// Provider is a running oidc-provider.
type Provider struct {
	// Issuer is its issuer identifier (http://127.0.0.1:PORT).
	Issuer string
	// Pid is the node process's.
	Pid int
	// NodeVersion is `node --version`'s output ("v20.…").
	NodeVersion string

	stop   func()
	stderr *syncBuffer
}

// Stop ends the node process (SIGTERM, then SIGKILL after 3 s).
func (p *Provider) Stop() { p.stop() }

// Stderr is what the node process wrote to stderr so far (up to 64 KiB).
func (p *Provider) Stderr() string { return p.stderr.String() }

// Start installs oidc-provider if needed and starts it with cfg; debug
// sends node's stderr to ours as well (and logs grant and PAR errors).
// The caller stops it.
func Start(ctx context.Context, cfg Config, debug bool) (*Provider, error) {
	dir, err := Install(ctx)
	if err != nil {
		return nil, err
	}
	scriptPath := filepath.Join(dir, "fedas-oidc-provider.mjs")
	if err := os.WriteFile(scriptPath, script, 0o644); err != nil {
		return nil, err
	}
	nodeVersion, err := exec.CommandContext(ctx, "node", "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("oidc-provider needs node on PATH: node --version: %w", err)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", scriptPath)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_ENV=production", "OIDC_PROVIDER_CONFIG="+string(b))
	if debug {
		cmd.Env = append(cmd.Env, "OIDC_PROVIDER_DEBUG=1")
	}
	dieWithParent(cmd)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if debug {
		cmd.Stderr = teeWriter{stderr, os.Stderr}
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		// Only the process we started, by its pid.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	p := &Provider{Pid: cmd.Process.Pid, NodeVersion: strings.TrimSpace(string(nodeVersion)), stop: stop, stderr: stderr}
	fail := func(err error) (*Provider, error) {
		stop()
		return nil, fmt.Errorf("%w (node stderr: %s)", err, strings.TrimSpace(stderr.String()))
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			ready <- sc.Text()
		}
		close(ready)
		for sc.Scan() { // keep the pipe drained
		}
	}()
	var hello struct{ Issuer string }
	select {
	case line, ok := <-ready:
		if !ok || json.Unmarshal([]byte(line), &hello) != nil || hello.Issuer == "" {
			return fail(fmt.Errorf("node did not report its issuer (got %q)", line))
		}
	case <-time.After(20 * time.Second):
		return fail(errors.New("node did not start within 20 s"))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	p.Issuer = hello.Issuer
	return p, nil
}

// syncBuffer is a bytes.Buffer safe for the exec goroutine writing it
// while a failure reads it; it keeps the first 64 KiB.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 64<<10 {
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type teeWriter struct {
	a *syncBuffer
	b *os.File
}

func (t teeWriter) Write(p []byte) (int, error) {
	_, _ = t.a.Write(p)
	return t.b.Write(p)
}
