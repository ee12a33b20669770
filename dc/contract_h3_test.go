package dc_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/fedas/fedas/dc"
)

func tdEntry(json string) string { return base64.RawURLEncoding.EncodeToString([]byte(json)) }

func tdHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestCheckTransactionData: OpenID4VP 1.0 App. B.3.3.1, one row per rule.
func TestCheckTransactionData(t *testing.T) {
	a := tdEntry(`{"type":"pay","credential_ids":["pid"]}`)
	b := tdEntry(`{"type":"pay","credential_ids":["pid","mdl"],"transaction_data_hashes_alg":["sha-256"]}`)
	onlySHA384 := tdEntry(`{"type":"pay","credential_ids":["pid"],"transaction_data_hashes_alg":["sha-384"]}`)
	pid := func(alg string, h ...string) dc.VerifiedCredential {
		return dc.VerifiedCredential{QueryID: "pid", TransactionDataHashes: h, TransactionDataHashesAlg: alg}
	}
	cases := []struct {
		name  string
		creds []dc.VerifiedCredential
		sent  []string
		ok    bool
	}{
		{"none_sent_none_carried", []dc.VerifiedCredential{pid("")}, nil, true},
		{"one_entry", []dc.VerifiedCredential{pid("sha-256", tdHash(a))}, []string{a}, true},
		{"alg_absent_means_sha256", []dc.VerifiedCredential{pid("", tdHash(a))}, []string{a}, true},
		{"two_entries_any_order", []dc.VerifiedCredential{pid("sha-256", tdHash(b), tdHash(a))}, []string{a, b}, true},
		{"hash_of_decoded_json_refused", []dc.VerifiedCredential{pid("sha-256", tdHash(`{"type":"pay","credential_ids":["pid"]}`))}, []string{a}, false},
		{"missing_hash", []dc.VerifiedCredential{pid("sha-256", tdHash(a))}, []string{a, b}, false},
		{"duplicate_instead_of_second", []dc.VerifiedCredential{pid("sha-256", tdHash(a), tdHash(a))}, []string{a, b}, false},
		{"extra_hash_without_entry", []dc.VerifiedCredential{pid("sha-256", tdHash(a))}, nil, false},
		{"wrong_alg", []dc.VerifiedCredential{pid("sha-384", tdHash(a))}, []string{a}, false},
		{"entry_without_sha256", []dc.VerifiedCredential{pid("sha-256", tdHash(onlySHA384))}, []string{onlySHA384}, false},
		{"entry_names_absent_credential", []dc.VerifiedCredential{{QueryID: "other"}}, []string{a}, false},
		{"not_base64url", []dc.VerifiedCredential{pid("")}, []string{"%%%"}, false},
		{"no_credential_ids", []dc.VerifiedCredential{pid("")}, []string{tdEntry(`{"type":"pay"}`)}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := dc.CheckTransactionData(c.creds, c.sent)
			if c.ok != (err == nil) || (err != nil && !errors.Is(err, dc.ErrRejected)) {
				t.Fatalf("CheckTransactionData = %v, want ok=%v", err, c.ok)
			}
		})
	}
}
