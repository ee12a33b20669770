package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/sdk"
)

// TestServe_SIGTERMDrainsInFlight (SECURITY-RESULTS.md P1): the real binary with
// the embedded demo config; a password step (bcrypt cost 10, ~90 ms) is
// in flight when SIGTERM arrives; it still completes with a code, and the
// process exits 0 afterwards.
func TestServe_SIGTERMDrainsInFlight(t *testing.T) {
	bin := buildBinary(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "serve", "--listen", addr)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	base := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "server did not come up")
		time.Sleep(20 * time.Millisecond)
	}
	// The demo issuer is 127.0.0.1:8080; talk to the endpoint directly.
	c := &sdk.Client{HTTP: sdk.NewHTTPClient(), ClientID: "demo-app"}
	pk := sdk.NewPKCE()
	r, err := c.Post(context.Background(), base+"/native/authorize", url.Values{"client_id": {"demo-app"}, "response_type": {"code"},
		"code_challenge": {pk.Challenge}, "code_challenge_method": {"S256"}})
	require.NoError(t, err)
	require.Equal(t, "insufficient_authorization", r.Error)

	type result struct {
		r   sdk.Response
		err error
	}
	inflight := make(chan result, 1)
	go func() {
		r, err := c.Post(context.Background(), base+"/native/authorize", url.Values{"auth_session": {r.AuthSession}, "username": {"alice"}, "password": {"wonderland"}})
		inflight <- result{r, err}
	}()
	time.Sleep(20 * time.Millisecond) // the bcrypt compare is now running
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))

	res := <-inflight
	require.NoError(t, res.err)
	require.True(t, strings.HasPrefix(res.r.AuthorizationCode, "ory_ac_"), "in-flight request drained: %+v", res.r)
	select {
	case err := <-done:
		require.NoError(t, err, "clean exit after SIGTERM")
	case <-time.After(15 * time.Second):
		t.Fatal("fedas did not exit after SIGTERM")
	}
	_, err = http.Get(base + "/healthz")
	require.Error(t, err, "no longer listening")
}
