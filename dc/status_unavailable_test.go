package dc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/fedas/fedas/dc"
	"github.com/fedas/fedas/dc/statuslist"
)

// fetchFails is a status checker whose list server is out of reach.
type fetchFails struct{}

func (fetchFails) Check(context.Context, json.RawMessage) (statuslist.Status, error) {
	return 0, fmt.Errorf("%w: HTTP 503", statuslist.ErrFetch)
}

// TestVerifyVPTokenStatusUnavailable: a status list that cannot be
// fetched is dc.ErrUnavailable, not a rejection (the caller answers 503
// and records nothing; docs/protocol.md "Failures"); a list that is
// fetched but refuses (an index out of range) stays ErrStatus.
func TestVerifyVPTokenStatusUnavailable(t *testing.T) {
	tok := map[string][]string{"pid": {cred{iss: issA, vct: vctPID, extra: statusClaim(0)}.present(t)}}
	_, err := dc.VerifyVPToken(context.Background(), tok, policy(t, pidQuery), fetchFails{})
	if !errors.Is(err, dc.ErrUnavailable) || errors.Is(err, dc.ErrRejected) {
		t.Fatalf("status list out of reach: %v, want ErrUnavailable and not ErrRejected", err)
	}
	tok = map[string][]string{"pid": {cred{iss: issA, vct: vctPID, extra: statusClaim(9)}.present(t)}}
	if _, err := dc.VerifyVPToken(context.Background(), tok, policy(t, pidQuery), checker); !errors.Is(err, dc.ErrStatus) || errors.Is(err, dc.ErrUnavailable) {
		t.Fatalf("unresolvable index: %v, want ErrStatus", err)
	}
}
