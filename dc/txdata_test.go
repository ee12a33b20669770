package dc_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/fedas/fedas/dc"
)

func tdEntry(t *testing.T, m map[string]any) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func tdHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// TestCheckTransactionData: VP App. B.3.3.1 — one hash per entry naming
// the credential, over the exact string sent, compared as a set one-to-one.
func TestCheckTransactionData(t *testing.T) {
	pay := tdEntry(t, map[string]any{"type": "urn:eudi:sca:payment:1", "credential_ids": []string{"pid"}, "payload": map[string]any{"amount": "10"}})
	pay2 := tdEntry(t, map[string]any{"type": "urn:eudi:sca:payment:1", "credential_ids": []string{"pid"}, "payload": map[string]any{"amount": "20"}})
	withAlg := tdEntry(t, map[string]any{"type": "t", "credential_ids": []string{"pid"}, "transaction_data_hashes_alg": []string{"sha-256"}})
	noSHA := tdEntry(t, map[string]any{"type": "t", "credential_ids": []string{"pid"}, "transaction_data_hashes_alg": []string{"sha-384"}})
	forMDL := tdEntry(t, map[string]any{"type": "t", "credential_ids": []string{"mdl"}})
	// The same JSON with padding: a different string, so a different hash.
	padded := pay + "=="
	cred := func(id string, alg string, hashes ...string) dc.VerifiedCredential {
		return dc.VerifiedCredential{QueryID: id, TransactionDataHashes: hashes, TransactionDataHashesAlg: alg}
	}
	tests := []struct {
		name  string
		creds []dc.VerifiedCredential
		sent  []string
		ok    bool
	}{
		{"none sent, none carried", []dc.VerifiedCredential{cred("pid", "")}, nil, true},
		{"one entry confirmed", []dc.VerifiedCredential{cred("pid", "", tdHash(pay))}, []string{pay}, true},
		{"alg sha-256 given", []dc.VerifiedCredential{cred("pid", "sha-256", tdHash(pay))}, []string{pay}, true},
		{"two entries any order", []dc.VerifiedCredential{cred("pid", "", tdHash(pay2), tdHash(pay))}, []string{pay, pay2}, true},
		{"entry for another credential not carried by pid", []dc.VerifiedCredential{cred("pid", "", tdHash(pay)), cred("mdl", "", tdHash(forMDL))}, []string{pay, forMDL}, true},
		{"offered alg, echoed", []dc.VerifiedCredential{cred("pid", "sha-256", tdHash(withAlg))}, []string{withAlg}, true},
		{"hash missing", []dc.VerifiedCredential{cred("pid", "")}, []string{pay}, false},
		{"hash altered", []dc.VerifiedCredential{cred("pid", "", tdHash(pay2))}, []string{pay}, false},
		{"hash over the decoded JSON", []dc.VerifiedCredential{cred("pid", "", tdHash(`{"type":"urn:eudi:sca:payment:1"}`))}, []string{pay}, false},
		{"hash over another encoding of the same JSON", []dc.VerifiedCredential{cred("pid", "", tdHash(padded))}, []string{pay}, false},
		{"duplicate hash instead of two", []dc.VerifiedCredential{cred("pid", "", tdHash(pay), tdHash(pay))}, []string{pay, pay2}, false},
		{"extra hash", []dc.VerifiedCredential{cred("pid", "", tdHash(pay), tdHash(pay2))}, []string{pay}, false},
		{"hash although nothing sent", []dc.VerifiedCredential{cred("pid", "", tdHash(pay))}, nil, false},
		{"one of two entries missing", []dc.VerifiedCredential{cred("pid", "", tdHash(pay))}, []string{pay, pay2}, false},
		{"entry confirmed by no returned credential", []dc.VerifiedCredential{cred("pid", "")}, []string{forMDL}, false},
		{"unsupported alg in KB", []dc.VerifiedCredential{cred("pid", "sha-384", tdHash(pay))}, []string{pay}, false},
		{"offered alg but KB omits it", []dc.VerifiedCredential{cred("pid", "", tdHash(withAlg))}, []string{withAlg}, false},
		{"entry offers no sha-256", []dc.VerifiedCredential{cred("pid", "sha-384", tdHash(noSHA))}, []string{noSHA}, false},
		{"entry not base64url", []dc.VerifiedCredential{cred("pid", "")}, []string{"!!"}, false},
		{"entry without credential_ids", []dc.VerifiedCredential{cred("pid", "")}, []string{tdEntry(t, map[string]any{"type": "t"})}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := dc.CheckTransactionData(tt.creds, tt.sent)
			if tt.ok {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, dc.ErrTransactionData) || !errors.Is(err, dc.ErrRejected) {
				t.Fatalf("want ErrTransactionData wrapping ErrRejected, got %v", err)
			}
		})
	}
}
