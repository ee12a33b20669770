package redistest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SentinelMasterName is the name the sentinels of StartSentinel monitor
// the master under (redis.FailoverOptions.MasterName).
const SentinelMasterName = "fedasmaster"

// sentinelTimeout bounds how long StartSentinel waits for replication
// and for the sentinels to agree on the topology.
const sentinelTimeout = 10 * time.Second

// Sentinel is a Sentinel-managed deployment: one master, one replica and
// three sentinels (quorum 2) watching them. The sentinels notice a dead
// master after 1 s (down-after-milliseconds) and promote the replica.
type Sentinel struct {
	master    *Server
	replica   *Server
	sentinels []*Server
}

// StartSentinel starts a master, a replica of it and three sentinels
// (redis-server in sentinel mode), and returns once the replica is in
// sync and every sentinel reports the master, sees the replica as usable
// and is linked to the two other sentinels — that is, once a failover
// could happen. The sentinels know each other and the replica from their
// configuration files, so startup does not wait for Sentinel's 2-second
// discovery. Everything is killed when the test ends.
func StartSentinel(tb testing.TB) *Sentinel {
	tb.Helper()
	bin := lookPath(tb, "redis-server")
	deadline := time.Now().Add(sentinelTimeout)
	// Diskless full sync without the default 5 s delay (Redis 7 ships
	// repl-diskless-sync yes with repl-diskless-sync-delay 5).
	fastSync := []string{"--repl-diskless-sync-delay", "0"}
	s := &Sentinel{master: start(tb, false, fastSync)}
	s.replica = start(tb, false, append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(s.master.Port())}, fastSync...))
	waitUntil(tb, deadline, "replica "+s.replica.Addr()+" in sync with master "+s.master.Addr(), s.replicationUp)

	var lastErr error
	for attempt := 0; attempt < startAttempts && s.sentinels == nil; attempt++ {
		s.sentinels, lastErr = launchSentinels(tb, bin, s.master, s.replica)
	}
	if s.sentinels == nil {
		tb.Fatalf("redistest: sentinels did not start after %d attempts: %v", startAttempts, lastErr)
	}
	// A sentinel that found a peer not listening yet retries only after
	// its ping period (1 s); shorten it while they link up, then restore
	// the default so that failure detection runs at production timings.
	setPingPeriod := func(ms string) {
		for _, sn := range s.sentinels {
			if _, err := sn.Do("SENTINEL", "DEBUG", "ping-period", ms); err != nil {
				tb.Fatalf("redistest: sentinel %s: SENTINEL DEBUG ping-period %s: %v", sn.Addr(), ms, err)
			}
		}
	}
	setPingPeriod("50")
	for _, sn := range s.sentinels {
		waitUntil(tb, deadline, "sentinel "+sn.Addr()+" ready", func() error { return s.sentinelReady(sn) })
	}
	setPingPeriod("1000")
	return s
}

// MasterName is the monitored master's name, for
// redis.FailoverOptions.MasterName.
func (s *Sentinel) MasterName() string { return SentinelMasterName }

// SentinelAddrs lists the sentinels' host:port addresses, for
// redis.FailoverOptions.SentinelAddrs.
func (s *Sentinel) SentinelAddrs() []string {
	addrs := make([]string, len(s.sentinels))
	for i, sn := range s.sentinels {
		addrs[i] = sn.Addr()
	}
	return addrs
}

// Sentinels returns the sentinel processes, for fault injection.
func (s *Sentinel) Sentinels() []*Server { return append([]*Server(nil), s.sentinels...) }

// Master is the server that was master at start; after a failover it is
// no longer the master.
func (s *Sentinel) Master() *Server { return s.master }

// Replica is the server that was the replica at start, the one the
// sentinels promote when Master dies.
func (s *Sentinel) Replica() *Server { return s.replica }

// MasterAddr asks every sentinel for the current master's address and
// returns it if all that answer agree and they are a majority (2 of 3).
// A test polls it to see a failover complete.
func (s *Sentinel) MasterAddr() (string, error) {
	var addr string
	answered := 0
	var errs []error
	for _, sn := range s.sentinels {
		a, err := sentinelMasterAddr(sn)
		if err != nil {
			errs = append(errs, fmt.Errorf("sentinel %s: %w", sn.Addr(), err))
			continue
		}
		if answered > 0 && a != addr {
			return "", fmt.Errorf("redistest: sentinels disagree on the master: %s and %s", addr, a)
		}
		addr = a
		answered++
	}
	if answered < len(s.sentinels)/2+1 {
		return "", fmt.Errorf("redistest: only %d of %d sentinels answered: %w", answered, len(s.sentinels), errors.Join(errs...))
	}
	return addr, nil
}

// Stop kills the sentinels, the replica and the master; it also runs at
// test cleanup.
func (s *Sentinel) Stop() {
	for _, sn := range s.sentinels {
		sn.Stop()
	}
	s.replica.Stop()
	s.master.Stop()
}

// replicationUp reports whether the master counts its replica and the
// replica has finished its initial sync.
func (s *Sentinel) replicationUp() error {
	info, err := s.master.Do("INFO", "replication")
	if err != nil {
		return err
	}
	if v, _ := infoValue(info, "connected_slaves"); v != "1" {
		return fmt.Errorf("master has connected_slaves:%s", v)
	}
	// After a diskless sync the master streams writes only once it has
	// reaped its fork and put the replica online.
	if v, _ := infoValue(info, "slave0"); !strings.Contains(v, ",state=online,") {
		return fmt.Errorf("master has slave0:%s", v)
	}
	info, err = s.replica.Do("INFO", "replication")
	if err != nil {
		return err
	}
	if v, _ := infoValue(info, "master_link_status"); v != "up" {
		return fmt.Errorf("replica has master_link_status:%s", v)
	}
	return nil
}

// sentinelReady reports whether sn could take part in a failover now:
// it names the master, sees the replica connected and in sync, and is
// linked to both other sentinels.
func (s *Sentinel) sentinelReady(sn *Server) error {
	addr, err := sentinelMasterAddr(sn)
	if err != nil {
		return err
	}
	if addr != s.master.Addr() {
		return fmt.Errorf("reports master %s, want %s", addr, s.master.Addr())
	}
	info, err := sn.Do("INFO", "sentinel")
	if err != nil {
		return err
	}
	want := fmt.Sprintf("master0:name=%s,status=ok,address=%s,slaves=1,sentinels=%d",
		SentinelMasterName, s.master.Addr(), len(s.sentinels))
	if v, _ := infoValue(info, "master0"); "master0:"+v != want {
		return fmt.Errorf("INFO sentinel says master0:%s, want %s", v, want)
	}
	// Do flattens the nested arrays into name\nvalue lines.
	replicas, err := sn.Do("SENTINEL", "REPLICAS", SentinelMasterName)
	if err != nil {
		return err
	}
	if !strings.Contains(replicas, "\nmaster-link-status\nok\n") || !strings.Contains(replicas, "\nflags\nslave\n") {
		return fmt.Errorf("replica not usable yet:\n%s", replicas)
	}
	peers, err := sn.Do("SENTINEL", "SENTINELS", SentinelMasterName)
	if err != nil {
		return err
	}
	if n := strings.Count(peers, "\nflags\nsentinel\n"); n != len(s.sentinels)-1 {
		return fmt.Errorf("linked to %d other sentinels, want %d:\n%s", n, len(s.sentinels)-1, peers)
	}
	return nil
}

func sentinelMasterAddr(sn *Server) (string, error) {
	reply, err := sn.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMasterName)
	if err != nil {
		return "", err
	}
	host, port, ok := strings.Cut(reply, "\n")
	if !ok {
		return "", fmt.Errorf("no master address in reply %q", reply)
	}
	return net.JoinHostPort(host, port), nil
}

// launchSentinels starts three sentinels on fresh ports. Each one's
// configuration names the other two (with their fixed IDs) and the
// replica, as a Sentinel would have written them after discovery. If one
// does not start (most likely a port taken meanwhile), the ones already
// running are killed and the caller tries again with other ports.
func launchSentinels(tb testing.TB, bin string, master, replica *Server) ([]*Server, error) {
	tb.Helper()
	const n = 3
	ports, err := freePorts(n)
	if err != nil {
		return nil, err
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = runID()
	}
	var started []*Server
	for i := range n {
		dir := tb.TempDir()
		var conf strings.Builder
		fmt.Fprintf(&conf, "port %d\nbind 127.0.0.1\ndaemonize no\n", ports[i])
		fmt.Fprintf(&conf, "dir %q\nlogfile %q\n", dir, filepath.Join(dir, "redis.log"))
		fmt.Fprintf(&conf, "sentinel myid %s\n", ids[i])
		fmt.Fprintf(&conf, "sentinel monitor %s 127.0.0.1 %d 2\n", SentinelMasterName, master.Port())
		fmt.Fprintf(&conf, "sentinel down-after-milliseconds %s 1000\n", SentinelMasterName)
		fmt.Fprintf(&conf, "sentinel failover-timeout %s 3000\n", SentinelMasterName)
		fmt.Fprintf(&conf, "sentinel known-replica %s 127.0.0.1 %d\n", SentinelMasterName, replica.Port())
		for j := range n {
			if j != i {
				fmt.Fprintf(&conf, "sentinel known-sentinel %s 127.0.0.1 %d %s\n", SentinelMasterName, ports[j], ids[j])
			}
		}
		// Sentinel rewrites its configuration file, so it lives in the
		// server's own directory.
		path := filepath.Join(dir, "sentinel.conf")
		if err := os.WriteFile(path, []byte(conf.String()), 0o600); err != nil {
			return nil, err
		}
		s, err := spawnSentinel(tb, bin, dir, path, ports[i])
		if err != nil {
			stopAll(started)
			return nil, err
		}
		started = append(started, s)
	}
	// All three run before any has to answer: a sentinel that finds a
	// peer not listening yet only retries a second later.
	for _, s := range started {
		if err := s.waitPing(); err != nil {
			stopAll(started)
			return nil, err
		}
	}
	return started, nil
}

func stopAll(servers []*Server) {
	for _, s := range servers {
		s.Stop()
	}
}

// spawnSentinel starts redis-server in sentinel mode with conf; it does
// not wait for it to answer.
func spawnSentinel(tb testing.TB, bin, dir, conf string, port int) (*Server, error) {
	tb.Helper()
	return spawn(tb, bin, dir, port, conf, "--sentinel")
}

// waitPing waits until s answers PING, for at most readyTimeout.
func (s *Server) waitPing() error {
	deadline := time.Now().Add(readyTimeout)
	for {
		reply, err := Do(s.Addr(), "PING")
		if err == nil && reply == "PONG" {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("redis-server on port %d exited before answering PING; log:\n%s", s.port, s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("redis-server on port %d did not answer PING within %s (last error: %v); log:\n%s", s.port, readyTimeout, err, s.logTail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freePorts finds n distinct free loopback ports by holding all the
// listeners at once.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// runID returns a random 40-hex-digit Sentinel ID.
func runID() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// waitUntil polls check every 50 ms until it succeeds, failing the test
// with the last error once deadline has passed.
func waitUntil(tb testing.TB, deadline time.Time, what string, check func() error) {
	tb.Helper()
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: %s: not within %s: %v", what, sentinelTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// infoValue returns the value of one "name:value" line of an INFO reply.
func infoValue(info, name string) (string, bool) {
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r\n"), ":")
		if ok && k == name {
			return v, true
		}
	}
	return "", false
}
