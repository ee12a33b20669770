package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/fedas/fedas/storage/redistest"
)

// The packaging files are tested here, without a Docker engine: what they
// reference exists, the config they run passes `config check`, the binary
// accepts every command line they give it, and the image's HEALTHCHECK
// passes against a running instance.

var repoRoot = filepath.Join("..", "..")

// dockerfile is what the tests read from the Dockerfile.
type dockerfile struct {
	entrypoint, cmd, healthcheck []string
	env                          map[string]string
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	require.NoError(t, err)
	// Join continuation lines, drop comments.
	var lines []string
	cur := ""
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		if s, ok := strings.CutSuffix(l, "\\"); ok {
			cur += s + " "
			continue
		}
		lines = append(lines, cur+l)
		cur = ""
	}
	d := dockerfile{env: map[string]string{}}
	execForm := func(s string) []string {
		var out []string
		require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(s)), &out), "exec form: %s", s)
		return out
	}
	inRun := false
	for _, l := range lines {
		instr, rest, _ := strings.Cut(strings.TrimSpace(l), " ")
		switch instr {
		case "FROM":
			inRun = strings.Contains(rest, "distroless") // the last stage is the image
			d.env = map[string]string{}
		case "ENTRYPOINT":
			d.entrypoint = execForm(rest)
		case "CMD":
			d.cmd = execForm(rest)
		case "HEALTHCHECK":
			_, c, ok := strings.Cut(rest, "CMD ")
			require.True(t, ok, "HEALTHCHECK in exec form: %s", rest)
			d.healthcheck = execForm(c)
		case "ENV":
			if inRun {
				for _, kv := range strings.Fields(rest) {
					k, v, _ := strings.Cut(kv, "=")
					d.env[k] = v
				}
			}
		}
	}
	require.Len(t, d.entrypoint, 1)
	require.NotEmpty(t, d.cmd)
	require.NotEmpty(t, d.healthcheck)
	require.Equal(t, d.entrypoint[0], d.healthcheck[0], "the healthcheck runs the image's binary")
	return d
}

// acceptsArgs runs `fedas args... --help`: exit 0 means every command
// and flag in args exists (flag parsing stops at --help only after the
// flags before it parsed).
func acceptsArgs(t *testing.T, bin string, args []string, env []string) {
	t.Helper()
	cmd := exec.Command(bin, append(append([]string(nil), args...), "--help")...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "fedas %s: %s", strings.Join(args, " "), out)
	require.Contains(t, string(out), "usage: fedas")
}

func envList(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// compose is the part of a compose file the tests read.
type composeFile struct {
	Services map[string]struct {
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Build   *struct {
			Context string `yaml:"context"`
		} `yaml:"build"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

var interpolation = regexp.MustCompile(`\$\{(\w+)(?::?([-?])([^}]*))?\}`)

// interpolate resolves ${VAR:-default} to its default and ${VAR:?msg} (a
// variable the operator must set) to a test value.
func interpolate(s string) string {
	return interpolation.ReplaceAllStringFunc(s, func(m string) string {
		g := interpolation.FindStringSubmatch(m)
		if g[2] == "-" {
			return g[3]
		}
		return "test-" + strings.ToLower(g[1])
	})
}

// TestDeploy_Compose: the compose file parses; it runs two fedas
// instances and Redis; it mounts only files that exist in deploy/; every
// fedas command line in it is accepted; and the config it mounts passes
// `config check` with the environment, mounts and keys it gives the
// instances (the keys made by its own keygen service's command).
func TestDeploy_Compose(t *testing.T) {
	deploy := filepath.Join(repoRoot, "deploy")
	b, err := os.ReadFile(filepath.Join(deploy, "docker-compose.yml"))
	require.NoError(t, err)
	var cf composeFile
	require.NoError(t, yaml.Unmarshal(b, &cf))
	require.Contains(t, cf.Services, "redis")
	bin := buildBinary(t)

	var servers []string
	for name, s := range cf.Services {
		if s.Build != nil {
			ctx := filepath.Join(deploy, s.Build.Context)
			require.FileExists(t, filepath.Join(ctx, "Dockerfile"), "%s: build context", name)
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				p := filepath.Join(deploy, src)
				require.FileExists(t, p, "%s mounts %s", name, src)
				rel, err := filepath.Rel(deploy, p)
				require.NoError(t, err)
				require.False(t, strings.HasPrefix(rel, ".."), "%s mounts %s, outside deploy/", name, src)
			} else {
				require.Contains(t, cf.Volumes, src, "%s: named volume %s is declared", name, src)
			}
		}
		if s.Image == "fedas:local" {
			acceptsArgs(t, bin, s.Command, nil)
			if len(s.Command) > 0 && s.Command[0] == "serve" {
				servers = append(servers, name)
			}
		}
	}
	require.Len(t, servers, 2, "two fedas instances")

	// The keys volume, as the keygen service fills it.
	keys := t.TempDir()
	kg := cf.Services["keygen"]
	args := append([]string(nil), kg.Command...)
	for i, a := range args {
		if a == "/var/lib/fedas" {
			args[i] = keys
		}
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	require.NoError(t, err, string(out))

	for _, name := range servers {
		s := cf.Services[name]
		hostPath := func(p string) string {
			for _, v := range s.Volumes {
				parts := strings.Split(v, ":")
				src, dst := parts[0], parts[1]
				if rest, ok := strings.CutPrefix(p, dst); ok {
					if strings.HasPrefix(src, ".") {
						return filepath.Join(deploy, src) + rest
					}
					require.Equal(t, "keys", src)
					return keys + rest
				}
			}
			t.Fatalf("%s: %s is on no volume", name, p)
			return ""
		}
		cfgPath := hostPath(s.Command[slicesIndex(s.Command, "--config")+1])
		var file struct {
			Keys struct {
				SigningKeyFile string `yaml:"signing_key_file"`
				HMACSecretFile string `yaml:"hmac_secret_file"`
			} `yaml:"keys"`
			Admin struct {
				TokensFile string `yaml:"tokens_file"`
			} `yaml:"admin"`
		}
		raw, err := os.ReadFile(cfgPath)
		require.NoError(t, err)
		require.NoError(t, yaml.Unmarshal(raw, &file))
		env := map[string]string{}
		for k, v := range s.Environment {
			env[k] = interpolate(v)
		}
		// Container paths → where this test has them.
		env["FEDAS_KEYS_SIGNING_KEY_FILE"] = hostPath(file.Keys.SigningKeyFile)
		env["FEDAS_KEYS_HMAC_SECRET_FILE"] = hostPath(file.Keys.HMACSecretFile)
		env["FEDAS_ADMIN_TOKENS_FILE"] = hostPath(file.Admin.TokensFile)
		cmd := exec.Command(bin, "config", "check", cfgPath)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, envList(env)...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s: %s", name, out)
		require.Contains(t, string(out), "configuration OK")
		// The admin listener is published on the host's loopback only.
		for _, p := range s.Ports {
			require.True(t, strings.HasPrefix(p, "127.0.0.1:"), "%s publishes %s beyond loopback", name, p)
		}
	}
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// TestDeploy_SystemdUnit: every fedas command line of the unit is
// accepted, and the hardening is there.
func TestDeploy_SystemdUnit(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "fedas.service"))
	require.NoError(t, err)
	bin := buildBinary(t)
	env := map[string]string{}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	keys := map[string]string{}
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(l, "=")
		if !ok || strings.HasPrefix(l, "#") {
			continue
		}
		keys[k] = v
		switch k {
		case "Environment":
			ek, ev, _ := strings.Cut(v, "=")
			env[ek] = ev
		case "ExecStart", "ExecStartPre":
			lines = append(lines, v)
		}
	}
	n := 0
	for _, l := range lines {
		f := strings.Fields(l)
		if f[0] != "/usr/local/bin/fedas" {
			continue
		}
		acceptsArgs(t, bin, f[1:], envList(env))
		n++
	}
	require.GreaterOrEqual(t, n, 2, "config check and serve")
	require.Contains(t, keys["ExecStart"], "serve --config /etc/fedas/fedas.yaml")
	for k, v := range map[string]string{"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"CapabilityBoundingSet": "", "User": "fedas", "ExecReload": "/bin/kill -HUP $MAINPID", "KillSignal": "SIGTERM", "Environment": "FEDAS_REQUIRE_CONFIG=1"} {
		require.Equal(t, v, keys[k], k)
	}
}

// TestDeploy_Dockerfile: the image's command lines are accepted; without
// a config it refuses to start unless --demo is given; and its
// HEALTHCHECK, run as the image runs it (its ENV, the address from
// FEDAS_LISTEN), passes against a running instance of deploy/fedas.yaml
// on Redis — and fails when Redis stops answering: it checks readiness.
func TestDeploy_Dockerfile(t *testing.T) {
	d := readDockerfile(t)
	bin := buildBinary(t)
	require.Equal(t, "1", d.env["FEDAS_REQUIRE_CONFIG"])
	acceptsArgs(t, bin, d.cmd, envList(d.env))
	acceptsArgs(t, bin, d.healthcheck[1:], envList(d.env))

	run := func(env map[string]string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, envList(env)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(d.env, "serve")
	require.Error(t, err)
	require.Contains(t, out, "--demo", "no config: refused, and the way to the demo named")
	if _, err := os.Stat(d.cmd[slicesIndex(d.cmd, "--config")+1]); errors.Is(err, fs.ErrNotExist) {
		_, err = run(d.env, d.cmd...)
		require.Error(t, err, "the image's command without the config mounted")
	}

	// A running instance: the image's environment, the deploy config, a
	// Redis with a password, keys from keygen.
	redis := redistest.Start(t)
	_, err = redis.Do("CONFIG", "SET", "requirepass", "redis-pw")
	require.NoError(t, err)
	keys := t.TempDir()
	_, err = run(nil, "keygen", "--dir", keys)
	require.NoError(t, err)
	env := map[string]string{}
	for k, v := range d.env {
		env[k] = v
	}
	addr := freeAddr(t)
	env["FEDAS_LISTEN"] = addr // the image's 0.0.0.0:8080, on a free loopback port here
	env["FEDAS_STORAGE_REDIS_URL"] = redis.URL()
	env["FEDAS_KEYS_SIGNING_KEY_FILE"] = filepath.Join(keys, "signing-key.pem")
	env["FEDAS_KEYS_HMAC_SECRET_FILE"] = filepath.Join(keys, "hmac-secret")
	env["FEDAS_ADMIN_TOKENS_FILE"] = filepath.Join(repoRoot, "deploy", "admin-tokens")
	env["FEDAS_ADMIN_LISTEN"] = freeAddr(t)
	env["REDIS_PASSWORD"], env["PARTNER_CLIENT_SECRET"], env["BANK_CLIENT_SECRET"] = "redis-pw", "partner-secret", "bank-secret"
	args := append([]string(nil), d.cmd...)
	args[slicesIndex(args, "--config")+1] = filepath.Join(repoRoot, "deploy", "fedas.yaml")
	p := startArgs(t, bin, envList(env), args...)
	require.Contains(t, p.logs.String(), `"storage":"redis"`)

	out, err = run(env, d.healthcheck[1:]...)
	require.NoError(t, err, "HEALTHCHECK against the running instance: %s", out)
	redis.Pause()
	out, err = run(env, d.healthcheck[1:]...)
	redis.Resume()
	require.Error(t, err, "HEALTHCHECK is readiness: storage unreachable fails it: %s", out)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err = run(env, d.healthcheck[1:]...); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, err, "ready again")

	// --demo runs the embedded demo where the image requires a config.
	demoEnv := map[string]string{}
	for k, v := range d.env {
		demoEnv[k] = v
	}
	demoEnv["FEDAS_LISTEN"] = freeAddr(t)
	startArgs(t, bin, envList(demoEnv), "serve", "--demo")
}

// TestDockerignore_ContextBuilds: the build context that .dockerignore
// leaves holds everything `go build ./cmd/fedas` needs (embedded files
// included), and none of .git, the tests or the deploy secrets.
func TestDockerignore_ContextBuilds(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	require.NoError(t, err)
	var patterns []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			require.False(t, strings.HasPrefix(l, "!"), "this matcher has no exceptions: %s", l)
			patterns = append(patterns, strings.TrimPrefix(l, "/"))
		}
	}
	ignored := func(rel string) bool {
		for _, p := range patterns {
			if sub, ok := strings.CutPrefix(p, "**/"); ok {
				for _, part := range strings.Split(rel, "/") {
					if m, _ := filepath.Match(sub, part); m {
						return true
					}
				}
				continue
			}
			if m, _ := filepath.Match(p, rel); m {
				return true
			}
		}
		return false
	}
	ctx := t.TempDir()
	root, err := filepath.Abs(repoRoot)
	require.NoError(t, err)
	require.NoError(t, filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if ignored(rel) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		dst := filepath.Join(ctx, rel)
		if e.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if !e.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	}))
	for _, gone := range []string{".git", "cmd/fedas/main_test.go", "deploy"} {
		require.NoFileExists(t, filepath.Join(ctx, gone))
		require.NoDirExists(t, filepath.Join(ctx, gone))
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(t.TempDir(), "fedas"), "./cmd/fedas")
	cmd.Dir = ctx
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build in the Docker build context: %s", out)
}
