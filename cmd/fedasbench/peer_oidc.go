package main

// The oidc-provider peer: panva's node oidc-provider (a pinned version)
// in a node child process on a free loopback port, configured by
// peer/oidc-provider.mjs with fedas's client. npm installs it into a
// temporary folder once; the folder's path is kept under
// os.UserCacheDir()/fedasbench so that later runs reuse it. Node runs
// JavaScript on one thread: the peer uses one core (cluster could run
// more processes; the comparison is per process, as fedas is one).

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fedas/fedas/sdk"
)

// oidcProviderVersion is the npm version installed (v9: ESM, `new
// Provider(issuer, configuration)`, provider.callback()).
const oidcProviderVersion = "9.13.3"

//go:embed peer/oidc-provider.mjs
var oidcProviderScript []byte

// mintBatch is how many codes one /__bench/mint request asks for.
const mintBatch = 1000

// oidcProviderDir returns a folder with oidc-provider installed, running
// npm when the cached one is gone.
func oidcProviderDir(ctx context.Context) (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	cache = filepath.Join(cache, "fedasbench")
	pathFile := filepath.Join(cache, "oidc-provider-"+oidcProviderVersion+".path")
	if b, err := os.ReadFile(pathFile); err == nil {
		dir := strings.TrimSpace(string(b))
		var pkg struct{ Version string }
		if pj, err := os.ReadFile(filepath.Join(dir, "node_modules", "oidc-provider", "package.json")); err == nil &&
			json.Unmarshal(pj, &pkg) == nil && pkg.Version == oidcProviderVersion {
			return dir, nil
		}
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return "", errors.New("the oidc-provider peer needs npm and node on PATH")
	}
	dir, err := os.MkdirTemp("", "fedasbench-oidc-provider-")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"private": true, "type": "module"}`+"\n"), 0o644); err != nil {
		return "", err
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ictx, "npm", "install", "--no-audit", "--no-fund", "--silent", "oidc-provider@"+oidcProviderVersion)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm install oidc-provider@%s: %w\n%s", oidcProviderVersion, err, out)
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	return dir, os.WriteFile(pathFile, []byte(dir+"\n"), 0o644)
}

func startOIDCProviderPeer(ctx context.Context, ps *peerSetup) (*peerServer, error) {
	dir, err := oidcProviderDir(ctx)
	if err != nil {
		return nil, err
	}
	script := filepath.Join(dir, "fedasbench-peer.mjs")
	if err := os.WriteFile(script, oidcProviderScript, 0o644); err != nil {
		return nil, err
	}
	nodeVersion, err := exec.CommandContext(ctx, "node", "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("node --version: %w", err)
	}
	client := map[string]any{"client_id": ps.creds.id, "redirect_uris": []string{parRedirect},
		"grant_types": []string{"authorization_code"}, "response_types": []string{"code"},
		"token_endpoint_auth_method": ps.creds.method, "id_token_signed_response_alg": "ES256"}
	if ps.creds.method == authJWT {
		client["jwks"] = json.RawMessage(ps.creds.pubJWKS)
		client["token_endpoint_auth_signing_alg"] = "ES256"
	} else {
		client["client_secret"] = ps.creds.secret
	}
	mintToken := randHex(16)
	cfg, err := json.Marshal(map[string]any{"client": client, "code_ttl": int(codeLifetime / time.Second), "mint_token": mintToken})
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_ENV=production", "FEDASBENCH_PEER_CONFIG="+string(cfg))
	dieWithParent(cmd)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if os.Getenv("FEDASBENCH_PEER_DEBUG") != "" {
		cmd.Stderr = os.Stderr
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
	fail := func(err error) (*peerServer, error) {
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
	hc := sdk.NewHTTPClient()
	var meta struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
		PAREndpoint   string `json:"pushed_authorization_request_endpoint"`
	}
	if err := getJSON(ctx, hc, hello.Issuer+"/.well-known/openid-configuration", &meta); err != nil {
		return fail(fmt.Errorf("discovery: %w", err))
	}
	if meta.Issuer != hello.Issuer || meta.TokenEndpoint == "" || meta.PAREndpoint == "" {
		return fail(fmt.Errorf("discovery: unexpected metadata %+v", meta))
	}
	nv := strings.TrimSpace(string(nodeVersion))
	note := "a node child process: one JavaScript thread, so one core (cluster could run more processes; the comparison is per process); oidc-provider's MemoryAdapter on an unbounded Map (its default LRU of 1000 entries would evict); its CPU is counted with the driver's"
	if strings.HasPrefix(nv, "v20.") || strings.HasPrefix(nv, "v21.") {
		note += "; oidc-provider 9 asks for Node 22 LTS and warns on " + nv
	}
	srv := &peerServer{issuer: meta.Issuer, parEndpoint: meta.PAREndpoint, tokenEndpoint: meta.TokenEndpoint,
		version: "oidc-provider " + oidcProviderVersion + " (node " + strings.TrimSpace(string(nodeVersion)) + ")",
		pid:     cmd.Process.Pid,
		stop:    stop,
		note:    note,
	}
	if ps.o.scenario == "token" {
		srv.codes = make(chan mintedCode, ps.codes)
		if err := oidcProviderMint(ctx, hc, srv, ps, mintToken); err != nil {
			return fail(fmt.Errorf("minting codes: %w", err))
		}
	}
	return srv, nil
}

// oidcProviderMint asks the node script for ps.codes codes, in batches.
func oidcProviderMint(ctx context.Context, hc *http.Client, srv *peerServer, ps *peerSetup, token string) error {
	for done := 0; done < ps.codes; {
		n := min(mintBatch, ps.codes-done)
		pks := make([]sdk.PKCE, n)
		req := struct {
			Scope      string   `json:"scope"`
			Challenges []string `json:"challenges"`
			Subs       []string `json:"subs"`
		}{Scope: ps.scope}
		for i := range pks {
			pks[i] = sdk.NewPKCE()
			req.Challenges = append(req.Challenges, pks[i].Challenge)
			req.Subs = append(req.Subs, fmt.Sprintf("bench-%d", (done+i)%ps.o.concurrency))
		}
		b, err := json.Marshal(req)
		if err != nil {
			return err
		}
		r, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.issuer+"/__bench/mint", bytes.NewReader(b))
		if err != nil {
			return err
		}
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(r)
		if err != nil {
			return err
		}
		var out struct{ Codes []string }
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil || len(out.Codes) != n {
			return fmt.Errorf("HTTP %d, %d codes, %v", resp.StatusCode, len(out.Codes), err)
		}
		for i, c := range out.Codes {
			srv.codes <- mintedCode{code: c, verifier: pks[i].Verifier, redirectURI: parRedirect}
		}
		done += n
	}
	return nil
}

func getJSON(ctx context.Context, hc *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// syncBuffer is a bytes.Buffer safe for the exec goroutine writing it
// while a failure reads it.
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
