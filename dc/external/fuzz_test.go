package external

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fedas/fedas/dc"
)

var fuzzKey = []byte("0123456789abcdef0123456789abcdef")

// FuzzOpen: a Transaction.ID that we did not seal never opens, and
// opening never panics, whatever the input.
func FuzzOpen(f *testing.F) {
	s, err := newSealer(fuzzKey)
	if err != nil {
		f.Fatal(err)
	}
	good, err := s.seal(sealed{TxID: "t", ClientID: "c", Flow: dc.FlowCrossDevice, Nonce: "n", Query: json.RawMessage(`{}`), Exp: 1})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{good, "", "x1.", "x1.AAAA", good[:len(good)-1], strings.ToUpper(good)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, id string) {
		got, ok := s.open(id)
		// Only the one value sealed above can open (each fuzz worker seals
		// its own copy, so compare contents, not the string).
		if ok && (got.TxID != "t" || got.ClientID != "c" || got.Nonce != "n" || got.Exp != 1) {
			t.Fatalf("opened a value we did not seal: %+v", got)
		}
	})
}

// FuzzWalletAnswer: whatever the service relays, the answer is never
// verified without a genuine presentation, refusals are dc.ErrRejected or
// dc.ErrUnavailable, and a wallet error code is passed on only as [a-z_].
func FuzzWalletAnswer(f *testing.F) {
	v, err := New(Options{BaseURL: "https://verifier.example", SealKey: fuzzKey,
		Issuers: []dc.TrustedIssuer{{Issuer: "https://issuer.example"}},
		Now:     func() time.Time { return time.Unix(1764590400, 0) }})
	if err != nil {
		f.Fatal(err)
	}
	q := json.RawMessage(`{"credentials":[{"id":"pid","format":"dc+sd-jwt","meta":{"vct_values":["urn:eudi:pid:1"]}}]}`)
	tx := sealed{TxID: "t", ClientID: "x509_hash:abc", Flow: dc.FlowCrossDevice, Nonce: "nnnnnnnnnnnnnnnnnnnnnn", Query: q, Exp: 1 << 40}
	for _, seed := range []string{
		`{"vp_token":{"pid":["eyJ.eyJ.sig~"]}}`, `{"vp_token":{"pid":"eyJ.eyJ.sig~"}}`, `{"vp_token":{}}`,
		`{"vp_token":{"pid":[]}}`, `{"error":"access_denied"}`, `{"error":"<b>x</b>"}`, `[]`, `null`, `{"vp_token":{"x":[1]}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := v.verifyAnswer(context.Background(), tx, body)
		switch {
		case err != nil:
			if !errors.Is(err, dc.ErrRejected) && !errors.Is(err, dc.ErrUnavailable) {
				t.Fatalf("unexpected error class: %v", err)
			}
		case res.Status == dc.StatusVerified:
			t.Fatalf("verified without a genuine presentation: %+v", res)
		case res.Status != dc.StatusError || res.WalletError == "" || strings.Trim(res.WalletError, "abcdefghijklmnopqrstuvwxyz_") != "":
			t.Fatalf("wallet error %+v", res)
		}
	})
}
