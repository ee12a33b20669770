package flow

import "testing"

// FuzzParseHandle: the auth_session value parser never panics; it accepts
// only the canonical base64url text of 48 bytes (so no two spellings name
// one session, and no client input reaches a storage key unchecked:
// docs/protocol.md "auth_session"), splitting it into the 16-byte ID and
// the digest of the 32-byte step secret; and every value newHandle and
// newHandleFor mint, and every 48 bytes encoded as they do, parse back to
// the same handle.
func FuzzParseHandle(f *testing.F) {
	value, _, err := newHandle()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		value,
		value[:63],
		value + "A",
		value[:62] + "==",
		value[:32] + "\n" + value[33:],
		value[:63] + "+",
		value[:63] + "/",
		value[:63] + ".",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"________________________________________________________________",
		"",
	} {
		f.Add(s, []byte(s))
	}
	f.Fuzz(func(t *testing.T, v string, raw []byte) {
		if h, ok := parseHandle(v); ok {
			b, err := b64.DecodeString(v)
			if err != nil || len(b) != idLen+secretLen || b64.EncodeToString(b) != v {
				t.Fatalf("accepted a non-canonical value %q", v)
			}
			if h.id != b64.EncodeToString(b[:idLen]) || h.stepHash != digest(b[idLen:]) {
				t.Fatalf("value %q parsed into %+v", v, h)
			}
		}
		// The round trip, for 48 bytes taken from the input.
		var b [idLen + secretLen]byte
		copy(b[:], raw)
		enc := b64.EncodeToString(b[:])
		h, ok := parseHandle(enc)
		if !ok || h.id != b64.EncodeToString(b[:idLen]) || h.stepHash != digest(b[idLen:]) {
			t.Fatalf("minted value %q did not round-trip: %+v %v", enc, h, ok)
		}
		next, nh, err := newHandleFor(h.id)
		if err != nil {
			t.Fatal(err)
		}
		if ph, ok := parseHandle(next); !ok || ph != nh || nh.id != h.id {
			t.Fatalf("newHandleFor(%q) minted %q, parsed %+v %v", h.id, next, ph, ok)
		}
	})
}
