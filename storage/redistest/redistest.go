// Package redistest runs real redis-server processes on loopback for tests:
// a single node (Start, StartWith), a three-master cluster (StartCluster), or
// a Sentinel group with a master, a replica and three sentinels (StartSentinel).
//
// Tests use a real server rather than a fake because the properties the
// storage contract promises — atomic single use, TTLs, hash-tag slots,
// failure behaviour when the server dies or hangs — are properties of
// Redis itself, which a fake would only imitate. The package is imported
// by tests only; it takes testing.TB so that benchmarks can use it too.
//
// A missing redis-server is a test failure, never a skip: a suite that
// silently skips its Redis half proves nothing.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds on how long the harness waits; a test never hangs on a server
// that does not come up.
const (
	readyTimeout   = 5 * time.Second
	clusterTimeout = 15 * time.Second
	stopTimeout    = 10 * time.Second
	startAttempts  = 5
	logTailBytes   = 4 << 10
)

// Server is one redis-server child process listening on 127.0.0.1.
type Server struct {
	tb   testing.TB
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been reaped

	stopOnce sync.Once
}

// Start runs a fresh redis-server without persistence on a free loopback
// port and returns once it answers PING. The server is killed when the
// test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return StartWith(tb)
}

// StartWith is Start with extra redis-server arguments appended to the
// defaults, e.g. "--maxmemory-policy", "allkeys-lru"; later arguments win,
// so args can also override a default.
func StartWith(tb testing.TB, args ...string) *Server {
	tb.Helper()
	return start(tb, false, args)
}

func start(tb testing.TB, clusterBus bool, args []string) *Server {
	tb.Helper()
	bin := lookPath(tb, "redis-server")
	var lastErr error
	for attempt := 0; attempt < startAttempts; attempt++ {
		port, err := freePort(clusterBus)
		if err != nil {
			lastErr = err
			continue
		}
		s, err := launch(tb, bin, port, args)
		if err == nil {
			return s
		}
		// Most likely someone took the port between our probe and the
		// server's bind; try another one.
		lastErr = err
	}
	tb.Fatalf("redistest: redis-server did not start after %d attempts: %v", startAttempts, lastErr)
	return nil
}

func lookPath(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		tb.Fatalf("redistest: %s not found on PATH; these tests need a real Redis: install it with `apt-get install redis-server` (Redis ≥ 7)", name)
	}
	return p
}

func launch(tb testing.TB, bin string, port int, extra []string) (*Server, error) {
	tb.Helper()
	// TempDir registers its removal before our Stop, so Cleanup's LIFO
	// order kills the server before its directory disappears.
	dir := tb.TempDir()
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--enable-debug-command", "local",
		"--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log"),
		"--daemonize", "no",
	}
	args = append(args, extra...)
	s, err := spawn(tb, bin, dir, port, args...)
	if err != nil {
		return nil, err
	}

	deadline := time.Now().Add(readyTimeout)
	for {
		reply, err := Do(s.Addr(), "PING")
		if err == nil && reply == "PONG" {
			return s, nil
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("redis-server on port %d exited before answering PING; log:\n%s", port, s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("redis-server on port %d did not answer PING within %s (last error: %v); log:\n%s", port, readyTimeout, err, s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Addr is the server's host:port, for redis.Options.Addr.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is the server's redis:// URL selecting database 0, the form the
// fedas configuration takes.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Port is the TCP port the server listens on.
func (s *Server) Port() int { return s.port }

// Dir is the server's working directory (its log is redis.log there).
func (s *Server) Dir() string { return s.dir }

// Stop kills the server with SIGKILL, as a crash would, and waits until
// it has exited. It is idempotent and also runs at test cleanup.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		// SIGKILL also ends a process stopped by Pause.
		_ = s.cmd.Process.Kill()
		select {
		case <-s.done:
		case <-time.After(stopTimeout):
			s.tb.Errorf("redistest: redis-server on port %d did not exit %s after SIGKILL", s.port, stopTimeout)
		}
	})
}

// Pause freezes the server with SIGSTOP: connections stay open but
// nothing answers, which is how a hung server looks to clients.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.tb.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.tb.Fatalf("redistest: signal %v to redis-server on port %d: %v", sig, s.port, err)
	}
}

// Do sends one command to the server. It is a convenience for tests
// (DEBUG SLEEP, CONFIG SET, …); see the package-level Do.
func (s *Server) Do(args ...string) (string, error) { return Do(s.Addr(), args...) }

func (s *Server) logTail() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
	}
	return string(b)
}

// Cluster is three redis-server masters forming one Redis Cluster with all
// 16384 slots assigned and no replicas.
type Cluster struct {
	nodes []*Server
}

// StartCluster starts three cluster-enabled servers, joins them with
// `redis-cli --cluster create` and returns once every node reports
// cluster_state:ok. The short node timeout keeps failure detection fast
// for fault tests. All nodes are killed when the test ends.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	cli := lookPath(tb, "redis-cli")
	c := &Cluster{}
	for range 3 {
		c.nodes = append(c.nodes, start(tb, true, []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000",
		}))
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	cmd := exec.Command(cli, args...)
	out, err := runBounded(cmd, clusterTimeout)
	if err != nil {
		tb.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(clusterTimeout)
	for _, n := range c.nodes {
		for {
			info, err := n.Do("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("redistest: cluster node %s not ok after %s (err %v):\n%s", n.Addr(), clusterTimeout, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// Addrs lists the masters' host:port addresses, a seed list for
// redis.ClusterOptions.Addrs.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// Nodes returns the cluster's servers, for fault injection on one node.
func (c *Cluster) Nodes() []*Server { return append([]*Server(nil), c.nodes...) }

// Stop kills every node; it also runs at test cleanup.
func (c *Cluster) Stop() {
	for _, n := range c.nodes {
		n.Stop()
	}
}

func runBounded(cmd *exec.Cmd, timeout time.Duration) ([]byte, error) {
	var out lockedBuffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.Bytes(), err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return out.Bytes(), fmt.Errorf("timed out after %s", timeout)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

// Write appends p; the child writes stdout and stderr concurrently.
func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

// Bytes returns a copy of everything written so far.
func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b...)
}

// freePort finds a loopback port nobody listens on. With clusterBus it
// also needs port+10000 (the cluster bus) free, so it probes a range
// below the kernel's ephemeral ports where both fit under 65536.
func freePort(clusterBus bool) (int, error) {
	if !clusterBus {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port, nil
	}
	for range 100 {
		p := 20000 + rand.IntN(10000)
		if portFree(p) && portFree(p+10000) {
			return p, nil
		}
	}
	return 0, errors.New("no free port pair for a cluster node")
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// Do sends one command to addr over a fresh connection with a short
// deadline and returns the reply as text: a status or bulk string as is,
// an integer in decimal, an array as its elements joined by newlines.
// A Redis error reply is returned as an error. It speaks RESP directly so
// that the harness does not depend on the client library under test.
func Do(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(conn))
}

func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("redistest: empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", err
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", err
		}
		parts := make([]string, 0, max(n, 0))
		for range n {
			p, err := readReply(r)
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("redistest: unexpected reply %q", line)
}

// spawn starts bin with args in dir and registers its cleanup; it does
// not wait for the server to answer.
func spawn(tb testing.TB, bin, dir string, port int, args ...string) (*Server, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s %s: %w", bin, strings.Join(args, " "), err)
	}
	s := &Server{tb: tb, port: port, dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	tb.Cleanup(s.Stop)
	return s, nil
}
