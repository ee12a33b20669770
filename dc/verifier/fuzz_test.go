package verifier

import (
	"errors"
	"testing"

	"github.com/fedas/fedas/dc"
)

// FuzzSubmitted: the DC API / openid4vp_response parser and the vp_token
// parser never panic, and refuse with an error wrapping dc.ErrRejected;
// whatever they accept is a non-empty map of non-empty arrays of
// non-empty strings, or a wallet error code of plain token characters.
func FuzzSubmitted(f *testing.F) {
	for _, s := range []string{`{"vp_token":{"pid":["a~b~"]}}`, `{"vp_token":"{\"pid\":[\"x\"]}"}`, `{"response":"a.b.c.d.e"}`,
		`{"error":"access_denied"}`, `{"vp_token":{}}`, `[]`, `{"vp_token":{"pid":[""]},"error":"x"}`} {
		f.Add([]byte(s))
	}
	v := &Internal{o: Options{PlainResponses: true, MaxBody: DefaultMaxBody}}
	_, key, err := newKey("")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := v.parseSubmitted(txRecord{Key: key}, data)
		if err != nil {
			if !errors.Is(err, dc.ErrRejected) {
				t.Fatalf("refusal not wrapping ErrRejected: %v", err)
			}
			return
		}
		if resp.walletError != "" {
			if walletErrorCode(resp.walletError) != resp.walletError {
				t.Fatalf("unsanitised wallet error %q", resp.walletError)
			}
			return
		}
		if len(resp.vpToken) == 0 {
			t.Fatal("empty vp_token accepted")
		}
		for id, ps := range resp.vpToken {
			if id == "" || len(ps) == 0 {
				t.Fatal("empty entry accepted")
			}
			for _, p := range ps {
				if p == "" {
					t.Fatal("empty presentation accepted")
				}
			}
		}
	})
}
