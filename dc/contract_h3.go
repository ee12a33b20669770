package dc

// This file is helper h3's stand-in for the shared contract (the dc2 brief):
// helper h1 adds CheckTransactionData to package dc concurrently; the lead
// keeps one copy at merge.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// ErrTransactionData: the KB-JWT transaction_data_hashes do not match the
// transaction_data sent (OpenID4VP 1.0 §8.4, App. B.3.3.1).
var ErrTransactionData = fmt.Errorf("%w: transaction data not confirmed", ErrRejected)

// maxTransactionData bounds the entries compared (input caps, design §8).
const maxTransactionData = 32

// CheckTransactionData checks the transaction_data confirmations of verified
// credentials against the exact base64url strings sent (OpenID4VP 1.0 §8.4,
// App. B.3.3.1): every entry must name at least one presented credential
// (credential_ids); each credential named by entries must carry exactly one
// hash per such entry, base64url(SHA-256(the string as sent)), compared as a
// set one-to-one; a credential named by none must carry none; the hash
// algorithm is sha-256 (absent means sha-256) and must be one the entry
// offered. Errors wrap ErrTransactionData (and so ErrRejected) and never
// quote the data.
func CheckTransactionData(creds []VerifiedCredential, sent []string) error {
	if len(sent) > maxTransactionData {
		return fmt.Errorf("%w: too many entries", ErrTransactionData)
	}
	type entry struct {
		hash string
		ids  []string
	}
	entries := make([]entry, 0, len(sent))
	for i, s := range sent {
		raw, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return fmt.Errorf("%w: entry %d: not base64url", ErrTransactionData, i)
		}
		var td struct {
			Type          string   `json:"type"`
			CredentialIDs []string `json:"credential_ids"`
			HashAlgs      []string `json:"transaction_data_hashes_alg"`
		}
		if err := json.Unmarshal(raw, &td); err != nil || td.Type == "" || len(td.CredentialIDs) == 0 {
			return fmt.Errorf("%w: entry %d: malformed", ErrTransactionData, i)
		}
		if len(td.HashAlgs) > 0 && !contains(td.HashAlgs, "sha-256") {
			return fmt.Errorf("%w: entry %d: no sha-256", ErrTransactionData, i)
		}
		sum := sha256.Sum256([]byte(s))
		entries = append(entries, entry{base64.RawURLEncoding.EncodeToString(sum[:]), td.CredentialIDs})
	}
	covered := make([]bool, len(entries))
	for ci, c := range creds {
		want := map[string]int{}
		n := 0
		for ei, e := range entries {
			if contains(e.ids, c.QueryID) {
				want[e.hash]++
				n++
				covered[ei] = true
			}
		}
		if c.TransactionDataHashesAlg != "" && c.TransactionDataHashesAlg != "sha-256" {
			return fmt.Errorf("%w: credential %d: hash algorithm", ErrTransactionData, ci)
		}
		if len(c.TransactionDataHashes) != n {
			return fmt.Errorf("%w: credential %d: wrong number of hashes", ErrTransactionData, ci)
		}
		for _, h := range c.TransactionDataHashes {
			if want[h] == 0 {
				return fmt.Errorf("%w: credential %d: hash mismatch", ErrTransactionData, ci)
			}
			want[h]--
		}
	}
	for ei, ok := range covered {
		if !ok {
			return fmt.Errorf("%w: entry %d: not confirmed by any credential", ErrTransactionData, ei)
		}
	}
	return nil
}
