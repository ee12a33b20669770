package statuslist

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"errors"
	"runtime"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const listURI = "https://issuer.example/statuslists/1"

// TestDraftExamples decodes the draft's §4.1 example lists: the 1-bit
// "eNrbuRgAAhcBXQ" (0xB9 0xA3) and the 2-bit "eNo76fITAAPfAgc"
// (0xC9 0x44 0xF9), and checks every listed entry.
func TestDraftExamples(t *testing.T) {
	for _, tc := range []struct {
		name string
		bits int
		lst  string
		want []Status
	}{
		{"1-bit", 1, "eNrbuRgAAhcBXQ", []Status{1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1}},
		{"2-bit", 2, "eNo76fITAAPfAgc", []Status{1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := sign(t, testKeyPriv(t), jose.ES256, "statuslist+jwt", claimsFor(listURI, tc.bits, tc.lst))
			l, err := ParseToken(tok, ParseOptions{URI: listURI, Key: keyFunc(t), Now: func() time.Time { return t0 }})
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tc.want {
				got, err := l.Status(i)
				if err != nil || got != w {
					t.Errorf("Status(%d) = %v, %v; want %v", i, got, err, w)
				}
			}
			if _, err := l.Status(l.Len()); !errors.Is(err, ErrIndex) {
				t.Errorf("Status(Len) err = %v, want ErrIndex", err)
			}
		})
	}
}

func testKeyPriv(tb testing.TB) any { k, _ := keys(tb); return k }

// TestPackerRoundTrip packs lists with the reference packer for every bits
// value and reads every entry back, including application-specific values.
func TestPackerRoundTrip(t *testing.T) {
	for _, bits := range []int{1, 2, 4, 8} {
		max := 1<<bits - 1
		st := make([]byte, 1000+bits) // not a multiple of 8/bits: partial last byte
		for i := range st {
			st[i] = byte((i*7 + i/3) % (max + 1))
		}
		data, err := DecodeList(pack(t, bits, st), 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range st {
			got, err := statusAt(data, bits, i)
			if err != nil || got != Status(w) {
				t.Fatalf("bits %d idx %d: %v, %v; want %d", bits, i, got, err, w)
			}
		}
	}
	if Status(3).String() != "0x03" || Invalid.String() != "INVALID" {
		t.Error("String")
	}
}

// TestParseTokenRefusals: every refusal maps to its sentinel.
func TestParseTokenRefusals(t *testing.T) {
	good, bad := keys(t)
	lst := pack(t, 1, []byte{1, 0, 1})
	with := func(f func(m map[string]any)) map[string]any {
		m := claimsFor(listURI, 1, lst)
		f(m)
		return m
	}
	sl := func(bits any, l string) func(m map[string]any) {
		return func(m map[string]any) { m["status_list"] = map[string]any{"bits": bits, "lst": l} }
	}
	var zbuf bytes.Buffer
	zw := zlib.NewWriter(&zbuf)
	zw.Write([]byte{1, 2, 3})
	zw.Close()
	truncated := base64.RawURLEncoding.EncodeToString(zbuf.Bytes()[:zbuf.Len()-2])

	for _, tc := range []struct {
		name string
		tok  string
		max  int64
		want error
	}{
		{"wrong typ", sign(t, good, jose.ES256, "JWT", claimsFor(listURI, 1, lst)), 0, ErrType},
		{"no typ", sign(t, good, jose.ES256, "", claimsFor(listURI, 1, lst)), 0, ErrType},
		{"typ statuslist+cwt", sign(t, good, jose.ES256, "statuslist+cwt", claimsFor(listURI, 1, lst)), 0, ErrType},
		{"alg none", unsigned(map[string]any{"alg": "none", "typ": "statuslist+jwt"}, claimsFor(listURI, 1, lst)), 0, ErrAlgorithm},
		{"alg HS256", sign(t, []byte("0123456789abcdef0123456789abcdef"), jose.HS256, "statuslist+jwt", claimsFor(listURI, 1, lst)), 0, ErrAlgorithm},
		{"alg ES512", unsigned(map[string]any{"alg": "ES512", "typ": "statuslist+jwt"}, claimsFor(listURI, 1, lst)), 0, ErrAlgorithm},
		{"wrong key", sign(t, bad, jose.ES256, "statuslist+jwt", claimsFor(listURI, 1, lst)), 0, ErrSignature},
		{"empty signature", unsigned(map[string]any{"alg": "ES256", "typ": "statuslist+jwt"}, claimsFor(listURI, 1, lst)), 0, ErrSignature},
		{"garbage", "not.a.jwt", 0, ErrMalformed},
		{"sub mismatch", sign(t, good, jose.ES256, "statuslist+jwt", claimsFor("https://issuer.example/statuslists/2", 1, lst)), 0, ErrSubject},
		{"sub missing", sign(t, good, jose.ES256, "statuslist+jwt", with(func(m map[string]any) { delete(m, "sub") })), 0, ErrSubject},
		{"iat missing", sign(t, good, jose.ES256, "statuslist+jwt", with(func(m map[string]any) { delete(m, "iat") })), 0, ErrIssuedAt},
		{"iat future", sign(t, good, jose.ES256, "statuslist+jwt", with(func(m map[string]any) { m["iat"] = t0.Add(time.Hour).Unix() })), 0, ErrIssuedAt},
		{"iat string", sign(t, good, jose.ES256, "statuslist+jwt", with(func(m map[string]any) { m["iat"] = "x" })), 0, ErrMalformed},
		{"expired", sign(t, good, jose.ES256, "statuslist+jwt", with(func(m map[string]any) { m["exp"] = t0.Add(-2 * time.Minute).Unix() })), 0, ErrExpired},
		{"ttl zero", sign(t, good, jose.ES256, "statuslist+jwt", with(func(m map[string]any) { m["ttl"] = 0 })), 0, ErrTTL},
		{"ttl negative", sign(t, good, jose.ES256, "statuslist+jwt", with(func(m map[string]any) { m["ttl"] = -5 })), 0, ErrTTL},
		{"no status_list", sign(t, good, jose.ES256, "statuslist+jwt", with(func(m map[string]any) { delete(m, "status_list") })), 0, ErrMalformed},
		{"bits 3", sign(t, good, jose.ES256, "statuslist+jwt", with(sl(3, lst))), 0, ErrBits},
		{"bits 0", sign(t, good, jose.ES256, "statuslist+jwt", with(sl(0, lst))), 0, ErrBits},
		{"bits 16", sign(t, good, jose.ES256, "statuslist+jwt", with(sl(16, lst))), 0, ErrBits},
		{"bad base64", sign(t, good, jose.ES256, "statuslist+jwt", with(sl(1, "!!!!"))), 0, ErrEncoding},
		{"padded base64", sign(t, good, jose.ES256, "statuslist+jwt", with(sl(1, "eNrbuRgAAhcBXQ=="))), 0, ErrEncoding},
		{"not zlib", sign(t, good, jose.ES256, "statuslist+jwt", with(sl(1, base64.RawURLEncoding.EncodeToString([]byte("plain bytes here"))))), 0, ErrCompression},
		{"truncated zlib", sign(t, good, jose.ES256, "statuslist+jwt", with(sl(1, truncated))), 0, ErrCompression},
		{"empty list", sign(t, good, jose.ES256, "statuslist+jwt", with(sl(1, compress(t, nil)))), 0, ErrMalformed},
		{"bomb", sign(t, good, jose.ES256, "statuslist+jwt", with(sl(1, bomb(t)))), 1 << 20, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseToken(tc.tok, ParseOptions{URI: listURI, Key: keyFunc(t), Now: func() time.Time { return t0 }, MaxDecompressed: tc.max})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// A KeyFunc refusal is a signature failure, and the KeyFunc sees the URI.
	var seen string
	_, err := ParseToken(sign(t, good, jose.ES256, "statuslist+jwt", claimsFor(listURI, 1, lst)), ParseOptions{
		URI: listURI, Now: func() time.Time { return t0 },
		Key: func(uri string, _ jose.Header) (any, error) { seen = uri; return nil, errors.New("untrusted") },
	})
	if !errors.Is(err, ErrSignature) || seen != listURI {
		t.Fatalf("KeyFunc refusal: %v (uri %q)", err, seen)
	}
}

// TestParseTokenAccepts: the allowed algs, typ case-insensitivity, and
// optional exp/ttl are read into the List.
func TestParseTokenAccepts(t *testing.T) {
	good, _ := keys(t)
	lst := pack(t, 2, []byte{0, 1, 2, 3})
	m := claimsFor(listURI, 2, lst)
	m["status_list"].(map[string]any)["aggregation_uri"] = "https://issuer.example/agg"
	for _, typ := range []string{"statuslist+jwt", "application/statuslist+jwt", "StatusList+JWT"} {
		l, err := ParseToken(sign(t, good, jose.ES256, typ, m), ParseOptions{URI: listURI, Key: keyFunc(t), Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatalf("typ %q: %v", typ, err)
		}
		if l.TTL != 300*time.Second || !l.Expiry.Equal(t0.Add(time.Hour)) || l.AggregationURI == "" || l.Len() != 4 {
			t.Fatalf("list fields %+v", l)
		}
	}
	delete(m, "exp")
	delete(m, "ttl")
	l, err := ParseToken(sign(t, good, jose.ES256, "statuslist+jwt", m), ParseOptions{URI: listURI, Key: keyFunc(t), Now: func() time.Time { return t0 }})
	if err != nil || !l.Expiry.IsZero() || l.TTL != 0 {
		t.Fatalf("no exp/ttl: %v %+v", err, l)
	}
}

// TestStatusIndex: negative and past-the-end indexes are errors, for every
// bits value.
func TestStatusIndex(t *testing.T) {
	data := []byte{0xFF, 0xFF}
	for _, tc := range []struct{ bits, last int }{{1, 15}, {2, 7}, {4, 3}, {8, 1}} {
		if _, err := statusAt(data, tc.bits, tc.last); err != nil {
			t.Errorf("bits %d idx %d: %v", tc.bits, tc.last, err)
		}
		for _, idx := range []int{-1, tc.last + 1, 1 << 40} {
			if _, err := statusAt(data, tc.bits, idx); !errors.Is(err, ErrIndex) {
				t.Errorf("bits %d idx %d: err %v, want ErrIndex", tc.bits, idx, err)
			}
		}
	}
}

// TestDecodeListBombBounded: a 64 MiB zlib bomb against a 1 MiB cap is
// refused, and the decode allocates a small multiple of the cap, not the
// expansion
// (asserted on bytes allocated, not on time).
func TestDecodeListBombBounded(t *testing.T) {
	b := bomb(t)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := DecodeList(b, 1<<20)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	// A small multiple of the cap (buffer doubling; more under -race), far
	// below the 64 MiB the bomb would expand to.
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
		t.Fatalf("allocated %d bytes decoding a 64 MiB bomb under a 1 MiB cap", got)
	}
	// The crafted generator is a valid stream (checksum included).
	if small, err := DecodeList(craftZeros(10), 0); err != nil || len(small) != 2581 || bytes.Count(small, []byte{0}) != 2581 {
		t.Fatalf("craftZeros: %d bytes, %v", len(small), err)
	}
	// Exactly at the cap is fine; one byte over is not.
	exact := compress(t, make([]byte, 4096))
	if _, err := DecodeList(exact, 4096); err != nil {
		t.Fatalf("at cap: %v", err)
	}
	if _, err := DecodeList(exact, 4095); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over cap: %v", err)
	}
}
