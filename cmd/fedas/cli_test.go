package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHelp_EveryCommand: fedas --help, -h and help list every command
// with one line each; every command answers --help and -h (and `fedas
// help COMMAND`) with its usage on stdout, nothing on stderr, exit 0 —
// including the ones whose arguments are positional (config check, totp,
// healthcheck), where --help must not be taken for a file or a secret.
func TestHelp_EveryCommand(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		var out, errOut bytes.Buffer
		require.NoError(t, run(args, nil, &out, &errOut), "%v", args)
		require.Empty(t, errOut.String())
		for _, c := range commands() {
			require.Regexp(t, `(?m)^  `+c.name+` +\S.*$`, out.String(), "%v lists %s", args, c.name)
		}
	}
	for _, c := range commands() {
		name := strings.Fields(c.name)
		for _, args := range [][]string{slices.Concat(name, []string{"--help"}), slices.Concat(name, []string{"-h"}), slices.Concat([]string{"help"}, name)} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				var out, errOut bytes.Buffer
				require.NoError(t, run(args, strings.NewReader(""), &out, &errOut))
				require.True(t, strings.HasPrefix(out.String(), "usage: fedas "), "usage on stdout: %q", out.String())
				require.Empty(t, errOut.String(), "nothing on stderr")
			})
		}
	}
	// --help after a positional argument still asks for help.
	var out bytes.Buffer
	require.NoError(t, run([]string{"config", "check", "some.yaml", "--help"}, nil, &out, io.Discard))
	require.Contains(t, out.String(), "usage: fedas config check")
	out.Reset()
	require.NoError(t, run([]string{"config", "--help"}, nil, &out, io.Discard))
	require.Contains(t, out.String(), "config check")
}

// TestUsageErrors: unknown flags, commands and argument counts print the
// usage on stderr, nothing on stdout, and exit 2.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--nope"}, {"--nope"}, {"nonsense"}, {"config"}, {"config", "bogus"}, {"admin", "token"},
		{"config", "check", "--nope", "x.yaml"}, {"config", "check", "a", "b"}, {"totp"}, {"pkce", "extra"},
		{"demo", "nope"}, {"admin", "token", "create", "--role", "root", "--name", "x"}, {"healthcheck", "--nope"},
		{"hash-password", "--cost", "4"}, {"version", "x"}, {"keygen", "--nope"}, {"serve", "--demo", "--config", "x.yaml"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(args, strings.NewReader(""), &out, &errOut)
			require.Error(t, err)
			require.Equal(t, 2, exitCode(err))
			require.Empty(t, out.String())
			require.Contains(t, errOut.String(), "usage: fedas")
		})
	}
}

// TestExitCodes runs the real binary: 0 for help, 2 for usage errors
// (usage on stderr), 1 for a failed command.
func TestExitCodes(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"--help"}, 0, "config check", ""},
		{[]string{"config", "check", "--help"}, 0, "usage: fedas config check", ""},
		{[]string{"admin", "token", "create", "--help"}, 0, "--role", ""},
		{[]string{"serve", "--nope"}, 2, "", "usage: fedas [serve]"},
		{[]string{"nonsense"}, 2, "", "unknown command"},
		{[]string{"config", "check", filepath.Join(t.TempDir(), "missing.yaml")}, 1, "", "no such file"},
	} {
		cmd := exec.Command(bin, tc.args...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		require.Equal(t, tc.code, code, "%v: %s", tc.args, errOut.String())
		require.Contains(t, out.String(), tc.stdout, "%v", tc.args)
		require.Contains(t, errOut.String(), tc.stderr, "%v", tc.args)
		if tc.code == 2 {
			require.Empty(t, out.String())
		}
	}
}

// TestConfigCheck_ReportsEverything: one run reports a YAML syntax error
// (line and column), a type error, an unknown key with its suggestion,
// the semantic problems, and a missing signing key file — which serve
// would only find at start.
func TestConfigCheck_ReportsEverything(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fedas.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`issuer: http://as.example
listne: 127.0.0.1:8080
keys:
  signing_key_file: `+filepath.Join(dir, "nope.pem")+`
lifetimes:
  access_token: [1]
clients:
  - id: a
    token_endpoint_auth_method: none
  oops: [1, 2
`), 0o600))
	var out bytes.Buffer
	err := run([]string{"config", "check", "--no-env", path}, nil, &out, io.Discard)
	require.EqualError(t, err, "invalid configuration")
	s := out.String()
	for _, want := range []string{
		path + ":10:3: YAML syntax: did not find expected '-' indicator",
		path + ":1:9: issuer: \"http://as.example\" must use https",
		path + ":2:1: listne: unknown key; did you mean listen?",
		path + ":4:21: keys.signing_key_file: open ",
		path + ":6:17: lifetimes.access_token: a list where a duration",
		"with the lines that do not parse left out",
	} {
		require.Contains(t, s, want)
	}
	require.Less(t, strings.Index(s, "YAML syntax"), strings.Index(s, "issuer:"), "syntax errors first")
}

// TestConfigCheck_AdminTokensFile: a tokens file serve could not load is
// a problem too (the admin package reads it, not the config package).
func TestConfigCheck_AdminTokensFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fedas.yaml")
	require.NoError(t, os.WriteFile(path, append(demoFile(t), []byte("admin: {tokens_file: "+filepath.Join(dir, "tokens")+"}\n")...), 0o600))
	var out bytes.Buffer
	require.Error(t, run([]string{"config", "check", "--no-env", path}, nil, &out, io.Discard))
	require.Contains(t, out.String(), "admin.tokens_file: admin tokens: ")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokens"), []byte("# no tokens yet\n"), 0o600))
	out.Reset()
	require.NoError(t, run([]string{"config", "check", "--no-env", path}, nil, &out, io.Discard), out.String())
}

// demoFile is the embedded demo config's file (it has no admin section).
func demoFile(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "config", "demo.yaml"))
	require.NoError(t, err)
	return b
}

// TestServe_RequireConfig: with FEDAS_REQUIRE_CONFIG=1 (the image),
// serve without a config refuses and names --demo; --demo is explicit.
func TestServe_RequireConfig(t *testing.T) {
	t.Setenv("FEDAS_REQUIRE_CONFIG", "1")
	t.Setenv("FEDAS_CONFIG", "")
	err := run([]string{"serve"}, nil, io.Discard, io.Discard)
	require.ErrorContains(t, err, "--demo")
	require.Equal(t, 1, exitCode(err))
	o := &serveOptions{demo: true, env: func(string) (string, bool) { return "1", true }}
	require.NoError(t, o.resolve())
	require.True(t, o.demo)
	o = &serveOptions{env: func(k string) (string, bool) { return map[string]string{"FEDAS_CONFIG": "/etc/fedas.yaml"}[k], true }}
	require.NoError(t, o.resolve())
	require.False(t, o.demo)
	require.Equal(t, "/etc/fedas.yaml", o.cfgPath, "FEDAS_CONFIG names the file")
}

// TestServe_DemoIssuerFollowsListen: on the embedded demo, --listen alone
// moves the issuer (its metadata then points at where it listens); an
// explicit --issuer that disagrees on loopback stays, with a warning.
func TestServe_DemoIssuerFollowsListen(t *testing.T) {
	bin := buildBinary(t)
	addr := freeAddr(t)
	p := startArgs(t, bin, nil, "serve", "--listen", addr)
	require.Equal(t, "http://"+addr, metadataIssuer(t, p.base))
	require.NotContains(t, p.logs.String(), "disagree")
	require.Contains(t, p.logs.String(), "running the embedded demo config")

	addr2 := freeAddr(t)
	p2 := startArgs(t, bin, nil, "serve", "--listen", addr2, "--issuer", "http://127.0.0.1:8080")
	require.Equal(t, "http://127.0.0.1:8080", metadataIssuer(t, p2.base))
	waitLog(t, p2, "is on port 8080 but fedas listens on "+addr2)

	addr3 := freeAddr(t)
	p3 := startArgs(t, bin, []string{"FEDAS_LISTEN=" + addr3}, "serve", "--demo")
	require.Equal(t, "http://"+addr3, metadataIssuer(t, p3.base), "FEDAS_LISTEN moves it too")
}

func TestListenIssuerMismatch(t *testing.T) {
	for _, tc := range []struct {
		listen, issuer string
		warn           bool
	}{
		{"127.0.0.1:8080", "http://127.0.0.1:8080", false},
		{"0.0.0.0:8080", "http://127.0.0.1:8080", false},
		{":8080", "http://localhost:8080", false},
		{"127.0.0.1:9000", "http://127.0.0.1:8080", true},
		{"127.0.0.1:80", "http://127.0.0.1", false},
		{"127.0.0.2:8080", "http://127.0.0.1:8080", true},
		{"10.1.2.3:8080", "http://127.0.0.1:8080", true},
		{"127.0.0.1:8080", "https://as.example", false}, // behind a proxy
		{"0.0.0.0:8080", "https://as.example:9443", false},
	} {
		got := listenIssuerMismatch(tc.listen, tc.issuer)
		require.Equal(t, tc.warn, got != "", "%s %s: %q", tc.listen, tc.issuer, got)
	}
	require.Equal(t, "http://127.0.0.1:9000", demoIssuer("0.0.0.0:9000"))
	require.Equal(t, "http://[::1]:9000", demoIssuer("[::]:9000"))
	require.Equal(t, "http://localhost:9000", demoIssuer("localhost:9000"))
}

// TestVersion: the -ldflags stamp wins over the module version; the
// toolchain's VCS stamp (revision, time, modified) is printed when the
// build has one.
func TestVersion(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run([]string{"version"}, nil, &out, io.Discard))
	require.Regexp(t, `^fedas \S+\nmodule:   github.com/fedas/fedas\ngo:       go1\.`, out.String())

	bi := &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Path: "github.com/fedas/fedas", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"}}}
	require.Equal(t, "fedas v1.2.3\nmodule:   github.com/fedas/fedas\ngo:       go1.99\nrevision: abc123\ntime:     2026-01-02T03:04:05Z\nmodified: true\n", versionText(bi, true, "", ""))
	require.Equal(t, "fedas 2.0.0\nmodule:   github.com/fedas/fedas\ngo:       go1.99\nrevision: def456\ntime:     2026-01-02T03:04:05Z\nmodified: true\n", versionText(bi, true, "2.0.0", "def456"), "the stamps win")
	require.Contains(t, versionText(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true, "", ""), "revision: unknown (built without VCS information)")

	bin := filepath.Join(t.TempDir(), "fedas")
	b, err := exec.Command("go", "build", "-buildvcs=auto", "-ldflags", "-X main.version=9.9.9-test", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(b))
	got, err := exec.Command(bin, "version").Output()
	require.NoError(t, err)
	require.Contains(t, string(got), "fedas 9.9.9-test\n")
	got2, err := exec.Command(bin, "--version").Output()
	require.NoError(t, err)
	require.Equal(t, string(got), string(got2))
	// A git worktree (and GOFLAGS=-buildvcs=false) builds without a VCS
	// stamp; a clone has one, and then it is what we print.
	meta, err := exec.Command("go", "version", "-m", bin).Output()
	require.NoError(t, err)
	if m := regexp.MustCompile(`vcs\.revision=(\w+)`).FindSubmatch(meta); m != nil {
		require.Contains(t, string(got), "revision: "+string(m[1]))
	} else {
		t.Log("this build has no VCS stamp")
	}
}

func TestHashPassword(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run([]string{"hash-password"}, strings.NewReader("pw\n"), &out, io.Discard))
	require.True(t, strings.HasPrefix(out.String(), "$2a$"))
	for _, in := range []string{"", "\n", "\r\n"} {
		out.Reset()
		require.ErrorContains(t, run([]string{"hash-password"}, strings.NewReader(in), &out, io.Discard), "empty password refused")
		require.Empty(t, out.String())
	}
}

// TestHashPassword_Terminal: on a terminal (tmux) the password is asked
// twice and never echoed.
func TestHashPassword_Terminal(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("no tmux")
	}
	bin := buildBinary(t)
	sock := filepath.Join(t.TempDir(), "tmux.sock")
	tmux := func(args ...string) string {
		out, err := exec.Command("tmux", append([]string{"-S", sock}, args...)...).CombinedOutput()
		require.NoError(t, err, string(out))
		return string(out)
	}
	tmux("new-session", "-d", "-x", "200", "-y", "20", bin+" hash-password; sleep 30")
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", sock, "kill-server").Run() })
	screen := func(want string) string {
		deadline := time.Now().Add(10 * time.Second)
		for {
			s := tmux("capture-pane", "-p")
			if strings.Contains(s, want) {
				return s
			}
			require.True(t, time.Now().Before(deadline), "no %q on the screen:\n%s", want, s)
			time.Sleep(50 * time.Millisecond)
		}
	}
	screen("Password:")
	tmux("send-keys", "s3cret-pw", "Enter")
	screen("Again:")
	tmux("send-keys", "s3cret-pw", "Enter")
	s := screen("$2a$")
	require.NotContains(t, s, "s3cret-pw", "no echo")
}

// TestKeygen: the files serve loads, mode 0600, kept on a second run.
func TestKeygen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, run([]string{"keygen", "--dir", dir}, nil, io.Discard, io.Discard))
	key1, err := os.ReadFile(filepath.Join(dir, "signing-key.pem"))
	require.NoError(t, err)
	for _, f := range []string{"signing-key.pem", "hmac-secret"} {
		st, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), f)
	}
	var errOut bytes.Buffer
	require.NoError(t, run([]string{"keygen", "--dir", dir}, nil, io.Discard, &errOut))
	require.Contains(t, errOut.String(), "kept")
	key2, _ := os.ReadFile(filepath.Join(dir, "signing-key.pem"))
	require.Equal(t, key1, key2, "never overwritten")

	cfg := filepath.Join(dir, "fedas.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf("issuer: https://as.example\nkeys:\n  signing_key_file: %s/signing-key.pem\n  hmac_secret_file: %s/hmac-secret\n", dir, dir)), 0o600))
	var out bytes.Buffer
	require.NoError(t, run([]string{"config", "check", "--no-env", cfg}, nil, &out, io.Discard), out.String())
}

// TestHealthcheck: the address comes from the flag, FEDAS_LISTEN or the
// config file, in that order; /readyz must answer 200.
func TestHealthcheck(t *testing.T) {
	bin := buildBinary(t)
	addr := freeAddr(t)
	startArgs(t, bin, nil, "serve", "--listen", addr)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fedas.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("listen: "+addr+"\n"), 0o600))
	down := freeAddr(t)

	t.Setenv("FEDAS_LISTEN", "")
	t.Setenv("FEDAS_CONFIG", "")
	require.NoError(t, run([]string{"healthcheck", "--listen", addr}, nil, io.Discard, io.Discard))
	require.NoError(t, run([]string{"healthcheck", "--config", cfg}, nil, io.Discard, io.Discard))
	require.NoError(t, run([]string{"healthcheck", "http://" + addr + "/healthz"}, nil, io.Discard, io.Discard))
	require.Error(t, run([]string{"healthcheck", "--listen", down}, nil, io.Discard, io.Discard))
	t.Setenv("FEDAS_CONFIG", cfg)
	require.NoError(t, run([]string{"healthcheck"}, nil, io.Discard, io.Discard), "FEDAS_CONFIG")
	t.Setenv("FEDAS_LISTEN", down)
	require.Error(t, run([]string{"healthcheck"}, nil, io.Discard, io.Discard), "FEDAS_LISTEN beats the file")
	require.NoError(t, run([]string{"healthcheck", "--listen", addr}, nil, io.Discard, io.Discard), "the flag beats FEDAS_LISTEN")
	_, port, _ := strings.Cut(addr, ":")
	t.Setenv("FEDAS_LISTEN", "0.0.0.0:"+port)
	require.NoError(t, run([]string{"healthcheck"}, nil, io.Discard, io.Discard), "a wildcard address is asked on loopback")
}

// startArgs starts the binary with args and extra environment, and waits
// for /healthz.
func startArgs(tb testing.TB, bin string, env []string, args ...string) *process {
	tb.Helper()
	p := &process{logs: &syncBuffer{}, done: make(chan error, 1)}
	for i, a := range args {
		if a == "--listen" {
			p.base = "http://" + args[i+1]
		}
	}
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "FEDAS_LISTEN="); ok && p.base == "" {
			p.base = "http://" + v
		}
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.logs
	require.NoError(tb, p.cmd.Start())
	go func() { p.done <- p.cmd.Wait() }()
	tb.Cleanup(func() { _ = p.cmd.Process.Kill() })
	waitHealthy(tb, p)
	return p
}

func metadataIssuer(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/.well-known/oauth-authorization-server")
	require.NoError(t, err)
	defer resp.Body.Close()
	var m struct {
		Issuer string `json:"issuer"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	return m.Issuer
}
