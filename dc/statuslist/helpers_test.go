package statuslist

import (
	"bytes"
	"compress/zlib"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

var (
	t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

	keyOnce sync.Once
	testKey *ecdsa.PrivateKey
	badKey  *ecdsa.PrivateKey
)

func keys(tb testing.TB) (*ecdsa.PrivateKey, *ecdsa.PrivateKey) {
	tb.Helper()
	keyOnce.Do(func() {
		testKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		badKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	})
	return testKey, badKey
}

// keyFunc returns the test issuer's public key for every URI.
func keyFunc(tb testing.TB) KeyFunc {
	k, _ := keys(tb)
	return func(string, jose.Header) (any, error) { return &k.PublicKey, nil }
}

// pack is an independent reference packer (TSL §4.1): entry i occupies bits
// [i*bits, (i+1)*bits) counted from the least significant bit of byte 0.
func pack(tb testing.TB, bits int, statuses []byte) string {
	tb.Helper()
	data := make([]byte, (len(statuses)*bits+7)/8)
	for i, v := range statuses {
		bit := i * bits
		data[bit/8] |= v << (bit % 8)
	}
	return compress(tb, data)
}

func compress(tb testing.TB, data []byte) string {
	tb.Helper()
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	if _, err := w.Write(data); err != nil {
		tb.Fatal(err)
	}
	w.Close()
	return base64.RawURLEncoding.EncodeToString(buf.Bytes())
}

// claimsFor is a valid claim set for uri at t0.
func claimsFor(uri string, bits int, lst string) map[string]any {
	return map[string]any{
		"sub": uri,
		"iat": t0.Unix() - 10,
		"exp": t0.Add(time.Hour).Unix(),
		"ttl": 300,
		"status_list": map[string]any{
			"bits": bits,
			"lst":  lst,
		},
	}
}

// sign makes a compact JWS with the given typ (empty: no typ header).
func sign(tb testing.TB, key any, alg jose.SignatureAlgorithm, typ string, claims any) string {
	tb.Helper()
	so := &jose.SignerOptions{}
	if typ != "" {
		so.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, so)
	if err != nil {
		tb.Fatal(err)
	}
	p, _ := json.Marshal(claims)
	jws, err := s.Sign(p)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// unsigned builds a JWS with an arbitrary header and an empty signature.
func unsigned(header, claims any) string {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

var (
	bombOnce sync.Once
	bombLst  string
)

// bomb is lst inflating to 64 MiB of zeros (≈420 KiB compressed).
func bomb(tb testing.TB) string {
	tb.Helper()
	bombOnce.Do(func() { bombLst = craftZeros(64<<20/258 + 1) })
	return bombLst
}

// craftZeros hand-builds a zlib stream (RFC 1950) of one fixed-Huffman
// DEFLATE block (RFC 1951 §3.2.6): literal 0, then matches of length 258 at
// distance 1, so it inflates to 1+258*matches zeros. Built directly because
// running compress/flate over 64 MiB is slow under -race.
func craftZeros(matches int) string {
	var out []byte
	var acc uint64
	var n uint
	put := func(v uint64, bits uint) { // LSB-first bit packing
		acc |= v << n
		n += bits
		for n >= 8 {
			out = append(out, byte(acc))
			acc >>= 8
			n -= 8
		}
	}
	huff := func(code uint64, bits uint) { // Huffman codes go MSB-first
		var r uint64
		for i := range bits {
			r |= (code >> i & 1) << (bits - 1 - i)
		}
		put(r, bits)
	}
	put(1, 1)     // BFINAL
	put(1, 2)     // BTYPE 01 fixed Huffman
	huff(0x30, 8) // literal 0
	for range matches {
		huff(0xC5, 8) // length code 285 = 258
		huff(0, 5)    // distance code 0 = 1
	}
	huff(0, 7) // end of block
	if n > 0 {
		out = append(out, byte(acc))
	}
	total := uint32(1 + 258*matches)
	adler := (total%65521)<<16 | 1 // Adler-32 of zeros: a = 1, b = len
	z := append([]byte{0x78, 0x01}, out...)
	z = append(z, byte(adler>>24), byte(adler>>16), byte(adler>>8), byte(adler))
	return base64.RawURLEncoding.EncodeToString(z)
}
