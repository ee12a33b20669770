package dc

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
)

// ErrTransactionData: the KB-JWT transaction_data_hashes do not match the
// transaction_data the request sent (OpenID4VP 1.0 §8.4, App. B.3.3).
var ErrTransactionData = fmt.Errorf("%w: transaction data not confirmed", ErrRejected)

// txDataAlg is the only hash algorithm fedas offers and accepts for
// transaction_data_hashes (OpenID4VP 1.0 App. B.3.3: sha-256 is the
// default and must be supported).
const txDataAlg = "sha-256"

// CheckTransactionData checks the transaction data confirmations of
// verified presentations (OpenID4VP 1.0 §8.4, App. B.3.3.1): each entry of
// sent is the exact base64url string the request carried; every credential
// an entry names (credential_ids) must carry, in its KB-JWT, exactly one
// hash per entry naming it — base64url(SHA-256(the exact string sent)) —
// compared as a set one-to-one (no missing, extra or duplicate hash), with
// transaction_data_hashes_alg sha-256 (required when the entry offered
// algorithms); a credential no entry names must carry none; and every
// entry must be confirmed by at least one returned credential. Errors wrap
// ErrTransactionData (and so ErrRejected) and never carry payload data.
// With no entries sent, any hash is refused: the wallet confirms nothing
// that was not asked.
func CheckTransactionData(creds []VerifiedCredential, sent []string) error {
	type entry struct {
		hash     string
		ids      []string
		algGiven bool
	}
	entries := make([]entry, 0, len(sent))
	for i, s := range sent {
		raw, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return fmt.Errorf("%w: entry %d is not base64url", ErrTransactionData, i)
		}
		var td struct {
			Type   string   `json:"type"`
			IDs    []string `json:"credential_ids"`
			HashAl []string `json:"transaction_data_hashes_alg"`
		}
		if err := json.Unmarshal(raw, &td); err != nil || td.Type == "" || len(td.IDs) == 0 {
			return fmt.Errorf("%w: entry %d needs type and credential_ids", ErrTransactionData, i)
		}
		if td.HashAl != nil && !slices.Contains(td.HashAl, txDataAlg) {
			return fmt.Errorf("%w: entry %d offers no sha-256", ErrTransactionData, i)
		}
		h := sha256.Sum256([]byte(s))
		entries = append(entries, entry{hash: base64.RawURLEncoding.EncodeToString(h[:]), ids: td.IDs, algGiven: td.HashAl != nil})
	}
	confirmed := make([]bool, len(entries))
	for ci, c := range creds {
		var want []string
		algRequired := false
		for _, e := range entries {
			if slices.Contains(e.ids, c.QueryID) {
				want = append(want, e.hash)
				algRequired = algRequired || e.algGiven
			}
		}
		got := c.TransactionDataHashes
		if len(got) != len(want) {
			return fmt.Errorf("%w: credential %d carries %d hashes, want %d", ErrTransactionData, ci, len(got), len(want))
		}
		if len(want) == 0 {
			continue
		}
		switch {
		case c.TransactionDataHashesAlg == "" && algRequired:
			return fmt.Errorf("%w: credential %d: transaction_data_hashes_alg missing", ErrTransactionData, ci)
		case c.TransactionDataHashesAlg != "" && c.TransactionDataHashesAlg != txDataAlg:
			return fmt.Errorf("%w: credential %d: unsupported transaction_data_hashes_alg", ErrTransactionData, ci)
		}
		used := make([]bool, len(got))
		for _, w := range want {
			found := false
			for gi, g := range got {
				if !used[gi] && subtle.ConstantTimeCompare([]byte(g), []byte(w)) == 1 {
					used[gi], found = true, true
					break
				}
			}
			if !found {
				return fmt.Errorf("%w: credential %d: a hash is missing or altered", ErrTransactionData, ci)
			}
		}
		for ei, e := range entries {
			if slices.Contains(e.ids, c.QueryID) {
				confirmed[ei] = true
			}
		}
	}
	for ei, ok := range confirmed {
		if !ok {
			return fmt.Errorf("%w: entry %d confirmed by no credential", ErrTransactionData, ei)
		}
	}
	return nil
}
