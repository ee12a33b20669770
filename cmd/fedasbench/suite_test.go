package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSuiteQuick runs `fedasbench suite -quick` over a few entries on
// memory and on a Redis the suite starts itself: every selected run
// completes without failures, the Markdown has a row per run (and the
// peer and Redis tables theirs), and the JSON file holds every result. A
// smoke test of the suite's plumbing, not a measurement.
func TestSuiteQuick(t *testing.T) {
	jsonFile := filepath.Join(t.TempDir(), "suite.json")
	var out, errOut bytes.Buffer
	err := runSuite(context.Background(), []string{"-quick", "-redis", "self", "-only", "federated,client_secret_basic,token (no", "-json", jsonFile}, &out, &errOut)
	if err != nil {
		t.Fatalf("suite: %v\n%s", err, errOut.String())
	}
	md := out.String()
	for _, want := range []string{
		"| federated (bcrypt 4) | memory |", "| federated (bcrypt 4) | redis |",
		"| par, client_secret_basic | memory |", "| token (no ID token) | redis |",
		"| par, client_secret_basic | memory | echo ", "| token (no ID token) | memory | fosite ",
		"| federated (bcrypt 4) | ", "A live auth_session on Redis",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "oidc-provider") {
		t.Errorf("a quick suite ran the oidc-provider peer:\n%s", md)
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var rs []suiteResult
	if err := json.Unmarshal(b, &rs); err != nil {
		t.Fatal(err)
	}
	if len(rs) != 6 {
		t.Fatalf("%d results, want 6 (3 entries × 2 stores)", len(rs))
	}
	for _, r := range rs {
		if r.Result == nil || r.Result.Flows != 6 || r.Result.Failures != 0 {
			t.Errorf("%s on %s: %+v (error %q)", r.Label, r.Store, r.Result, r.Error)
		}
	}
}

func TestWithoutPeer(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"-c", "2", "-peer", "oidc-provider,echo"}, []string{"-c", "2", "-peer", "echo"}},
		{[]string{"-peer", "oidc-provider", "-c", "2"}, []string{"-c", "2"}},
		{[]string{"-peer", "fosite"}, []string{"-peer", "fosite"}},
		{[]string{"-c", "2"}, []string{"-c", "2"}},
	} {
		if got := withoutPeer(tc.in, "oidc-provider"); !slices.Equal(got, tc.want) {
			t.Errorf("withoutPeer(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
