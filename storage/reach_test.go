package storage_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/fedas/fedas/reach"
	"github.com/fedas/fedas/storage"
)

// FuzzInboxCursor: ParseInboxCursor never panics, refuses with
// reach.ErrInvalid only, and what it accepts is exactly the canonical
// "<uint64>-<uint64>" (up to leading zeros), so Redis gets only ids it
// parses.
func FuzzInboxCursor(f *testing.F) {
	for _, s := range []string{"", "0-0", "1733000000000-7", "18446744073709551615-18446744073709551615",
		"18446744073709551616-0", "-1", "1-", "+1-2", "1-2-3", "(1-2", "1-2\n", "00001-02"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, seq, err := storage.ParseInboxCursor(s)
		if err != nil {
			if !errors.Is(err, reach.ErrInvalid) {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if s == "" {
			return
		}
		canon := strconv.FormatUint(ms, 10) + "-" + strconv.FormatUint(seq, 10)
		ms2, seq2, err := storage.ParseInboxCursor(canon)
		if err != nil || ms2 != ms || seq2 != seq {
			t.Fatalf("%q → %q does not round-trip", s, canon)
		}
		for i := 0; i < len(s); i++ {
			if c := s[i]; c != '-' && (c < '0' || c > '9') {
				t.Fatalf("%q accepted with byte %q", s, c)
			}
		}
	})
}

// TestInboxCursor: the table of accepted and refused cursors.
func TestInboxCursor(t *testing.T) {
	for s, ok := range map[string]bool{
		"": true, "0-0": true, "1733000000000-7": true, "18446744073709551615-1": true,
		"18446744073709551616-0": false, "x-1": false, "1": false, "1-": false, "-1": false,
		"+1-2": false, "1-2-3": false, " 1-2": false, "1-2\n": false,
	} {
		_, _, err := storage.ParseInboxCursor(s)
		if (err == nil) != ok {
			t.Errorf("%q: err %v, want ok=%v", s, err, ok)
		}
	}
}
