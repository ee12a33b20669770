package dctest_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/fedas/fedas/dc/dctest"
	"github.com/fedas/fedas/dc/statuslist"
)

// TestIssuerStatusList: the status server serves a statuslist+jwt token
// that dc/statuslist verifies (TSL §5.1, §8.3), and Revoke, Suspend and
// Reinstate flip exactly the entry named.
func TestIssuerStatusList(t *testing.T) {
	for _, x5c := range []bool{false, true} {
		iss := dctest.NewIssuer(t, dctest.IssuerOptions{X5C: x5c, Now: now, StatusSize: 4})
		holder := jose.JSONWebKey{Key: &mustHolder(t).PublicKey}
		var idx []int
		for range 2 {
			c, err := iss.Issue(map[string]any{"sub": "u"}, &holder, dctest.IssueOptions{})
			if err != nil {
				t.Fatal(err)
			}
			idx = append(idx, c.StatusIdx)
		}
		if idx[0] != 0 || idx[1] != 1 {
			t.Fatalf("indices %v", idx)
		}
		steps := []struct {
			flip func(int)
			want statuslist.Status
		}{
			{func(int) {}, statuslist.Valid},
			{iss.Revoke, statuslist.Invalid},
			{iss.Suspend, statuslist.Suspended},
			{iss.Reinstate, statuslist.Valid},
		}
		for _, st := range steps {
			st.flip(idx[1])
			cl, err := iss.StatusClient(now)
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range []statuslist.Status{statuslist.Valid, st.want} {
				claim, _ := json.Marshal(map[string]any{"status_list": map[string]any{"idx": idx[i], "uri": iss.StatusURI}})
				got, err := cl.Check(context.Background(), claim)
				if err != nil || got != want {
					t.Fatalf("x5c=%v idx %d: %v %v, want %v", x5c, idx[i], got, err, want)
				}
			}
		}
		if n := iss.StatusFetches(); n != len(steps) {
			t.Errorf("status fetches %d, want %d (one per fresh client)", n, len(steps))
		}
		// The status client reaches nothing but this list.
		cl, _ := iss.StatusClient(now)
		claim, _ := json.Marshal(map[string]any{"status_list": map[string]any{"idx": 0, "uri": strings.Replace(iss.StatusURI, "/1", "/2", 1)}})
		if _, err := cl.Check(context.Background(), claim); !errors.Is(err, statuslist.ErrForbiddenURI) {
			t.Errorf("other URI: %v", err)
		}
	}
}

// TestIssue: the claims SD-JWT VC §2.2.2 forbids disclosing are refused as
// disclosable; a full status list is an error, never a credential without
// status.
func TestIssue(t *testing.T) {
	iss := dctest.NewIssuer(t, dctest.IssuerOptions{Now: now, StatusSize: 1})
	holder := jose.JSONWebKey{Key: &mustHolder(t).PublicKey}
	for _, p := range []string{"iss", "vct", "cnf", "status", "exp", "cnf.jwk"} {
		if _, err := iss.Issue(map[string]any{"sub": "u"}, &holder, dctest.IssueOptions{Disclosable: []string{p}}); err == nil {
			t.Errorf("%s disclosable: accepted", p)
		}
	}
	c, err := iss.Issue(map[string]any{"sub": "u", "given_name": "E"}, &holder, dctest.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Disclosures) != 1 || c.Disclosures[0].Path != "given_name" {
		t.Errorf("disclosures %+v (sub stays visible)", c.Disclosures)
	}
	if _, err := iss.Issue(map[string]any{"sub": "u"}, &holder, dctest.IssueOptions{}); !errors.Is(err, dctest.ErrStatusFull) {
		t.Errorf("full list: %v", err)
	}
	if c, err := iss.Issue(map[string]any{"sub": "u"}, &holder, dctest.IssueOptions{NoStatus: true}); err != nil || c.StatusIdx != -1 {
		t.Errorf("NoStatus: %v %v", c, err)
	}
}
