package redistest

import "testing"

// StartOnPort runs a fresh redis-server like StartWith, but on the given
// port: a test restarts a server it stopped "in place", at the address
// its clients already hold, with StartOnPort(tb, old.Port()). The new
// server starts empty (no persistence), as after a crash.
func StartOnPort(tb testing.TB, port int, args ...string) *Server {
	tb.Helper()
	bin := lookPath(tb, "redis-server")
	s, err := launch(tb, bin, port, args)
	if err != nil {
		tb.Fatalf("redistest: redis-server did not start on port %d: %v", port, err)
	}
	return s
}
