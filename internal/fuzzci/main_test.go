package main

import "testing"

// TestCoordinatorRace: only the bare coordinator deadline of
// go.dev/issue/75804 is recognised; a finding never is.
func TestCoordinatorRace(t *testing.T) {
	race := "fuzz: elapsed: 8s, execs: 27842 (0/sec)\n--- FAIL: FuzzX (8.06s)\n    context deadline exceeded\nFAIL\n"
	for out, want := range map[string]bool{
		race: true,
		"--- FAIL: FuzzX (0.20s)\n    --- FAIL: FuzzX (0.00s)\n        x_test.go:9: boom\n    Failing input written to testdata/fuzz/FuzzX/ab\n": false,
		"--- FAIL: FuzzX (8.06s)\n    context deadline exceeded\npanic: boom\n":                                                                  false,
		"--- FAIL: FuzzY (8.06s)\n    context deadline exceeded\n":                                                                               false,
	} {
		if got := coordinatorRace([]byte(out), "FuzzX"); got != want {
			t.Errorf("coordinatorRace(%q) = %v", out, got)
		}
	}
}
