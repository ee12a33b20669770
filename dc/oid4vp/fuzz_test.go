package oid4vp

import (
	"bytes"
	"testing"
)

// FuzzParsePayload drives the decrypted-payload parser directly (the JWE
// fuzzer rarely gets past decryption): no panic; accepted ⇒ state equals
// the expected one and vp_token is non-empty.
func FuzzParsePayload(f *testing.F) {
	f.Add([]byte(`{"vp_token":{"pid":["x"]},"state":"s"}`), "s")
	f.Add([]byte(`{"error":"access_denied","state":"s"}`), "s")
	f.Add([]byte(`{"vp_token":{"pid":["x"],"pid":["y"]}}`), "")
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[`), "")
	f.Fuzz(func(t *testing.T, payload []byte, state string) {
		r, err := parsePayload(payload, state)
		if err == nil && (r == nil || r.State != state || len(r.VPToken) == 0) {
			t.Fatalf("accepted with state %q want %q", r.State, state)
		}
	})
}

// FuzzUnmarshalResponseKey: no panic; accepted ⇒ re-marshals identically.
func FuzzUnmarshalResponseKey(f *testing.F) {
	k := testKey(f)
	txt, _ := k.MarshalText()
	f.Add(txt)
	f.Add([]byte("k1.ac.AAAA"))
	// Found by the fuzzer: non-zero trailing bits (non-canonical base64url).
	f.Add([]byte("k1.Z._XFJ3rfIhf17KDby3ekj-6lOH4364fEE31fngd7i2B1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := UnmarshalResponseKey(b)
		if err != nil {
			return
		}
		out, err := k.MarshalText()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("round trip %q -> %q (%v)", b, out, err)
		}
	})
}
