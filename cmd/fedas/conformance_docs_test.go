package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// docCommands are the lines of every ```sh block of a Markdown page, with
// backslash continuations joined and comments dropped.
func docCommands(tb testing.TB, page string) [][]string {
	tb.Helper()
	var blocks [][]string
	var cur []string
	in, pending := false, ""
	for _, line := range strings.Split(page, "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```sh":
			in, cur = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			require.Empty(tb, pending, "a continuation ends the block")
			blocks = append(blocks, cur)
		case in:
			l := strings.TrimSpace(line)
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			if strings.HasSuffix(l, `\`) {
				pending += strings.TrimSuffix(l, `\`) + " "
				continue
			}
			cur = append(cur, pending+l)
			pending = ""
		}
	}
	return blocks
}

// TestConformanceDocs runs every ```sh block of docs/conformance.md as
// written, from the repository root, with the real binary: `fedas serve`
// lines start a server (the demo or a testdata/conformance config, moved
// to a free port: every 127.0.0.1:PORT of the block and of the config is
// replaced), `fedas conformance` lines must exit 0 with every applicable
// check passing and at least one pass. So the two-instance recipe's
// configs and commands can't rot.
func TestConformanceDocs(t *testing.T) {
	bin := buildBinary(t)
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	page, err := os.ReadFile(filepath.Join(root, "docs", "conformance.md"))
	require.NoError(t, err)
	blocks := docCommands(t, string(page))
	require.GreaterOrEqual(t, len(blocks), 3, "the demo block, the test command and the two-instance recipe")
	addrRE := regexp.MustCompile(`127\.0\.0\.1:\d+`)
	ran := 0
	for _, block := range blocks {
		if !strings.HasPrefix(block[0], "fedas serve") {
			continue // not a recipe (the test command)
		}
		ports := map[string]string{}
		moved := func(s string) string {
			return addrRE.ReplaceAllStringFunc(s, func(a string) string {
				if ports[a] == "" {
					ports[a] = freeAddr(t)
				}
				return ports[a]
			})
		}
		dir := t.TempDir()
		for _, line := range block {
			require.NotContains(t, line, `"`, "a documented command needs no quoting: %s", line)
			args := strings.Fields(moved(strings.TrimSuffix(line, " &")))
			require.Equal(t, "fedas", args[0], line)
			switch args[1] {
			case "serve":
				addr := ""
				for i := 2; i < len(args)-1; i++ {
					switch args[i] {
					case "--config":
						cfg, err := os.ReadFile(filepath.Join(root, args[i+1]))
						require.NoError(t, err)
						copied := filepath.Join(dir, filepath.Base(args[i+1]))
						movedCfg := moved(string(cfg))
						require.NoError(t, os.WriteFile(copied, []byte(movedCfg), 0o600))
						args[i+1] = copied
						addr = regexp.MustCompile(`(?m)^listen: (\S+)`).FindStringSubmatch(movedCfg)[1]
					case "--listen":
						addr = args[i+1]
					}
				}
				require.NotEmpty(t, addr, "%s: where does it listen?", line)
				p := &process{base: "http://" + addr, logs: &syncBuffer{}, done: make(chan error, 1)}
				p.cmd = exec.Command(bin, args[1:]...)
				p.cmd.Dir = root
				p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
				require.NoError(t, p.cmd.Start())
				go func() { p.done <- p.cmd.Wait() }()
				t.Cleanup(func() { _ = p.cmd.Process.Kill() })
				waitHealthy(t, p)
			case "conformance":
				var out bytes.Buffer
				cmd := exec.Command(bin, args[1:]...)
				cmd.Dir = root
				cmd.Stdout, cmd.Stderr = &out, &out
				err := cmd.Run()
				var exit *exec.ExitError
				if errors.As(err, &exit) {
					t.Fatalf("%s\nexit %d:\n%s", line, exit.ExitCode(), out.String())
				}
				require.NoError(t, err, line)
				require.Regexp(t, `: [1-9]\d* passed, 0 failed, \d+ not applicable\n`, out.String(), line)
				ran++
			default:
				t.Fatalf("%s: only fedas serve and fedas conformance lines run here", line)
			}
		}
	}
	require.GreaterOrEqual(t, ran, 6, "the demo's two runs and the recipe's four")
}
