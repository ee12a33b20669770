// Package chromium finds the headless browser the browser tests drive
// (Debian's `chromium`, which the README's test command installs).
package chromium

import (
	"os"
	"os/exec"
	"testing"
)

// Path returns the Chromium binary. A test that needs it never skips: a
// missing browser is a broken test environment, so it fails loudly.
func Path(tb testing.TB) string {
	tb.Helper()
	if fi, err := os.Stat("/usr/bin/chromium"); err == nil && !fi.IsDir() {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	tb.Fatalf("%s needs Chromium, found neither at /usr/bin/chromium nor as `chromium` on PATH: run `apt-get install chromium` (browser tests never skip)", tb.Name())
	return ""
}
