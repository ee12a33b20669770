package statuslist

import (
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzParseToken: arbitrary (mostly unsigned or garbage) tokens never panic,
// and anything accepted is internally consistent.
func FuzzParseToken(f *testing.F) {
	k, _ := keys(f)
	f.Add(sign(f, k, jose.ES256, "statuslist+jwt", claimsFor(listURI, 1, "eNrbuRgAAhcBXQ")))
	f.Add(unsigned(map[string]any{"alg": "none", "typ": "statuslist+jwt"}, claimsFor(listURI, 1, "eNrbuRgAAhcBXQ")))
	f.Add("a.b.c")
	f.Add("")
	key := keyFunc(f)
	f.Fuzz(func(t *testing.T, tok string) {
		l, err := ParseToken(tok, ParseOptions{URI: listURI, Key: key, Now: func() time.Time { return t0 }, MaxDecompressed: 1 << 16})
		if err == nil {
			if l.Len() == 0 || l.Subject != listURI {
				t.Fatalf("accepted inconsistent list %+v", l)
			}
			if _, err := l.Status(l.Len() - 1); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzDecodeList drives the lst decoder (base64url + zlib under a cap) and
// the bit indexing directly, past the signature check.
func FuzzDecodeList(f *testing.F) {
	f.Add("eNrbuRgAAhcBXQ", uint8(1), 3)
	f.Add("eNo76fITAAPfAgc", uint8(2), 11)
	f.Add("eJwDAAAAAAE", uint8(8), 0)
	f.Add("!!", uint8(3), -1)
	f.Fuzz(func(t *testing.T, lst string, bits uint8, idx int) {
		const max = 1 << 16
		data, err := DecodeList(lst, max)
		if err != nil {
			return
		}
		if len(data) == 0 || len(data) > max {
			t.Fatalf("len %d", len(data))
		}
		s, err := statusAt(data, int(bits), idx)
		if err == nil && (!validBits(int(bits)) || int(s) >= 1<<bits) {
			t.Fatalf("bits %d idx %d gave %d", bits, idx, s)
		}
	})
}
