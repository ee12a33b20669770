package rar

import "testing"

// FuzzParse: Parse never panics, refuses with ErrInvalid only, and what it
// accepts re-encodes to JSON that parses to the same encoding (the
// canonical form is a fixed point).
func FuzzParse(f *testing.F) {
	for _, s := range []string{payment, `[]`, `[{"type":"openid_credential","credential_configuration_id":"pid_sd_jwt","claims":[{"path":["a"]}]}]`,
		`[{"type":"payment_initiation","instructedAmount":{"a":1,"a":2},"creditorName":"x"}]`, `[{"type":"payment_initiation","count":1e400,"instructedAmount":{},"creditorName":"\u0000"}]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		ds, err := Parse(raw, testTypes())
		if err != nil {
			return
		}
		enc, err := Encode(ds)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		again, err := Parse(enc, testTypes())
		if err != nil {
			t.Fatalf("canonical %q refused: %v", enc, err)
		}
		if enc2, _ := Encode(again); enc2 != enc {
			t.Fatalf("not a fixed point: %q then %q", enc, enc2)
		}
	})
}
