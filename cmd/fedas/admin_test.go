package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/admin"
)

// TestAdminTokenCreate: the subcommand prints a token once, stores only
// its digest, and refuses bad roles, missing names and duplicates.
func TestAdminTokenCreate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	var out, errOut bytes.Buffer
	require.NoError(t, run([]string{"admin", "token", "create", "--role", "write", "--name", "ops", "--file", file}, nil, &out, &errOut))
	tok := strings.TrimSpace(out.String())
	require.True(t, strings.HasPrefix(tok, admin.TokenPrefix), tok)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NotContains(t, string(b), tok, "the token itself is never written")
	st, err := os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	ts, err := admin.LoadTokens(file)
	require.NoError(t, err)
	got, ok := ts.Authenticate(tok)
	require.True(t, ok)
	require.Equal(t, "ops", got.Name)
	require.Equal(t, admin.RoleWrite, got.Role)
	_, ok = ts.Authenticate(tok + "x")
	require.False(t, ok)

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no role", []string{"--name", "x"}, "--role must be read or write"},
		{"bad role", []string{"--role", "admin", "--name", "x"}, "--role must be read or write"},
		{"no name", []string{"--role", "read"}, "--name is required"},
		{"bad name", []string{"--role", "read", "--name", "a b"}, "name"},
		{"duplicate", []string{"--role", "read", "--name", "ops"}, "already has a token named"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o bytes.Buffer
			err := run(append([]string{"admin", "token", "create", "--file", file}, tc.args...), nil, &o, io.Discard)
			require.ErrorContains(t, err, tc.want)
			require.Empty(t, o.String(), "no token printed on failure")
		})
	}
}

func adminDo(t *testing.T, method, url, token, ifMatch string, body any) (*http.Response, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp, m
}

// TestSIGHUP_KeepsAdminEdits: after an admin edit through the admin
// listener of the real binary, SIGHUP refuses to replace the store's
// policy with the file's, and says why; with
// admin.sighup_overwrites_store it applies the file.
func TestSIGHUP_KeepsAdminEdits(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	out, err := exec.Command(bin, "admin", "token", "create", "--role", "write", "--name", "ops", "--file", tokens).Output()
	require.NoError(t, err)
	tok := strings.TrimSpace(string(out))
	addr, aaddr := freeAddr(t), freeAddr(t)
	cfg := filepath.Join(dir, "fedas.yaml")
	adminPart := fmt.Sprintf("admin:\n  listen: %s\n  tokens_file: %s\n", aaddr, tokens)
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(reloadBase, addr)+adminPart), 0o600))
	p := startBinary(t, bin, cfg, addr)
	api := "http://" + aaddr + "/admin/v1"
	// The public listener answers first; the admin listener opens just
	// after it.
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(api + "/status")
		if err == nil {
			resp.Body.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "the admin listener did not come up:\n%s", p.logs.String())
		time.Sleep(20 * time.Millisecond)
	}

	resp, body := adminDo(t, http.MethodGet, api+"/default-route", tok, "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", body)
	resp, body = adminDo(t, http.MethodPut, api+"/default-route", tok, resp.Header.Get("ETag"), map[string]string{"default_route": "deny"})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%v", body)
	require.EqualValues(t, 2, body["version"])

	// The file changes (a second user); SIGHUP must not undo the edit.
	extraUser := "  - username: bob\n    subject: bob\n    password_hash: $2a$10$gZFKou6kXXNiT/UFB4dUq.mzR0Si/j6jIvMWuEi1thjci0HsewE4i\n"
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(reloadBase, addr)+extraUser+adminPart), 0o600))
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	waitLog(t, p, "config reload refused")
	require.Contains(t, p.logs.String(), "admin edits since the config file was last applied")
	_, body = adminDo(t, http.MethodGet, api+"/default-route", tok, "", nil)
	require.Equal(t, "deny", body["default_route"], "the admin edit stays")

	// Told to, SIGHUP applies the file.
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(reloadBase, addr)+extraUser+adminPart+"  sighup_overwrites_store: true\n"), 0o600))
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	waitLog(t, p, "config reloaded")
	_, body = adminDo(t, http.MethodGet, api+"/default-route", tok, "", nil)
	require.Equal(t, "", body["default_route"], "the file's policy replaced the edit")
	_, body = adminDo(t, http.MethodGet, api+"/versions", tok, "", nil)
	items := body["items"].([]any)
	require.Equal(t, "sighup", items[0].(map[string]any)["origin"])
	require.Equal(t, admin.FileAuthor, items[0].(map[string]any)["author"])
}
