package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/config"
	"github.com/fedas/fedas/sdk"
	"github.com/fedas/fedas/server/servertest"
)

// syncBuffer collects a process's log output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// process is a running fedas binary.
type process struct {
	base string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
}

// buildBinary builds the fedas binary once for the whole package (each
// build takes seconds; TestMain removes it).
func buildBinary(tb testing.TB) string {
	tb.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "fedas-test-bin-")
		if binErr != nil {
			return
		}
		bin := filepath.Join(binDir, "fedas")
		out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	require.NoError(tb, binErr)
	return filepath.Join(binDir, "fedas")
}

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	addr := ln.Addr().String()
	require.NoError(tb, ln.Close())
	return addr
}

func startBinary(tb testing.TB, bin, cfgPath, addr string, env ...string) *process {
	tb.Helper()
	p := &process{base: "http://" + addr, logs: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "serve", "--config", cfgPath)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.logs
	require.NoError(tb, p.cmd.Start())
	go func() { p.done <- p.cmd.Wait() }()
	tb.Cleanup(func() { _ = p.cmd.Process.Kill() })
	waitHealthy(tb, p)
	return p
}

func waitHealthy(tb testing.TB, p *process) {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(p.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case err := <-p.done:
			tb.Fatalf("fedas exited: %v\n%s", err, p.logs.String())
		default:
		}
		require.True(tb, time.Now().Before(deadline), "server did not come up:\n%s", p.logs.String())
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLog waits until the process has logged want (the reload is
// asynchronous to the signal).
func waitLog(tb testing.TB, p *process, want string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.logs.String(), want) {
		require.True(tb, time.Now().Before(deadline), "no %q in the log:\n%s", want, p.logs.String())
		time.Sleep(20 * time.Millisecond)
	}
}

// firstAnswer sends an initial native request for demo-app and returns
// the error code of the answer (insufficient_authorization for local
// sign-in, federate when routed to a downstream) and its federation_uri.
func firstAnswer(tb testing.TB, p *process) (string, string) {
	tb.Helper()
	c := &sdk.Client{HTTP: sdk.NewHTTPClient(), ClientID: "demo-app"}
	pk := sdk.NewPKCE()
	r, err := c.Post(context.Background(), p.base+"/native/authorize", url.Values{"client_id": {"demo-app"}, "response_type": {"code"},
		"scope": {"openid"}, "code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}})
	require.NoError(tb, err)
	return r.Error, r.FederationURI
}

const reloadBase = `issuer: http://%[1]s
listen: %[1]s
dev:
  allow_loopback_http: true
scopes: [openid, profile, email, offline_access]
clients:
  - id: demo-app
    first_party: true
    token_endpoint_auth_method: none
    scopes: [openid, profile, email, offline_access]
    grant_types: [authorization_code, refresh_token]
    native_callback_uris: ["https://app.example/cb"]
users:
  - username: alice
    subject: alice
    password_hash: $2a$10$zgYgp2vW5p9Y91Oau2eDkOzUo20KYsFl7c8.GYCv55PevSBg6d1Ea
`

const reloadFederation = `downstreams:
  - id: as2
    issuer: %s
    client_id: as1
    auth:
      method: client_secret_basic
      secret_env: FEDAS_TEST_AS2_SECRET
    scopes: {openid: openid}
routes:
  - downstream: %s
    clients: [demo-app]
`

// TestReload_SIGHUP: two instances of the real binary serve the same
// config file; the file is edited to federate demo-app to AS2 and only
// the instance that gets SIGHUP changes its answer; an invalid edit then
// keeps that instance serving with the policy it had, logging every
// problem, and it never exits.
func TestReload_SIGHUP(t *testing.T) {
	as2 := servertest.Start(t, servertest.Options{Configure: func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "as1", Federating: true, TokenEndpointAuthMethod: "client_secret_basic",
			SecretSHA256: config.SecretDigest("as1-secret"), Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code"},
			RedirectURIs: []string{"https://as1.example/federation/callback"}})
	}})
	bin := buildBinary(t)
	dir := t.TempDir()
	addr1, addr2 := freeAddr(t), freeAddr(t)
	cfg1, cfg2 := filepath.Join(dir, "as1a.yaml"), filepath.Join(dir, "as1b.yaml")
	write := func(path, addr, extra string) {
		require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(reloadBase, addr)+extra), 0o600))
	}
	write(cfg1, addr1, "")
	write(cfg2, addr2, "")
	env := "FEDAS_TEST_AS2_SECRET=as1-secret"
	p1 := startBinary(t, bin, cfg1, addr1, env)
	p2 := startBinary(t, bin, cfg2, addr2, env)
	for _, p := range []*process{p1, p2} {
		code, _ := firstAnswer(t, p)
		require.Equal(t, "insufficient_authorization", code, "local sign-in before the edit")
	}

	// Edit both files; signal only the first instance.
	write(cfg1, addr1, fmt.Sprintf(reloadFederation, as2.URL, "as2"))
	write(cfg2, addr2, fmt.Sprintf(reloadFederation, as2.URL, "as2"))
	require.NoError(t, p1.cmd.Process.Signal(syscall.SIGHUP))
	waitLog(t, p1, "config reloaded")
	require.Contains(t, p1.logs.String(), `"changes":"downstream as2 added; routes changed"`, "the change and only it")
	code, fedURI := firstAnswer(t, p1)
	require.Equal(t, "federate", code, "the reloaded instance federates")
	require.Equal(t, as2.URL+"/native/authorize", fedURI)
	code, _ = firstAnswer(t, p2)
	require.Equal(t, "insufficient_authorization", code, "the other instance keeps its policy until it is signalled")

	// An invalid edit: a route to an unknown downstream and a route with
	// two targets. The instance logs each problem and keeps federating.
	write(cfg1, addr1, fmt.Sprintf(reloadFederation, as2.URL, "nowhere")+"  - clients: [demo-app]\n    downstream: as2\n    local: true\n")
	require.NoError(t, p1.cmd.Process.Signal(syscall.SIGHUP))
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(p1.logs.String(), "config reload refused") < 2 {
		require.True(t, time.Now().Before(deadline), "every problem is logged:\n%s", p1.logs.String())
		time.Sleep(20 * time.Millisecond)
	}
	code, _ = firstAnswer(t, p1)
	require.Equal(t, "federate", code, "the old policy keeps serving")
	select {
	case err := <-p1.done:
		t.Fatalf("fedas exited after an invalid reload: %v", err)
	default:
	}

	// A syntax error too.
	require.NoError(t, os.WriteFile(cfg1, []byte("issuer: [\n"), 0o600))
	require.NoError(t, p1.cmd.Process.Signal(syscall.SIGHUP))
	deadline = time.Now().Add(10 * time.Second)
	for strings.Count(p1.logs.String(), "config reload refused") < 3 {
		require.True(t, time.Now().Before(deadline), "no refusal logged:\n%s", p1.logs.String())
		time.Sleep(20 * time.Millisecond)
	}
	code, _ = firstAnswer(t, p1)
	require.Equal(t, "federate", code)
}
