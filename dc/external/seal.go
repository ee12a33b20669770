package external

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/fedas/fedas/dc"
)

// sealed is what Transaction.ID carries: everything Result needs to
// re-verify without storage of our own (docs/architecture.md "Local steps").
type sealed struct {
	TxID     string          `json:"t"`
	ClientID string          `json:"c"`
	Flow     dc.Flow         `json:"f"`
	Nonce    string          `json:"n"`
	Query    json.RawMessage `json:"q"`
	TD       []string        `json:"d,omitempty"`
	Exp      int64           `json:"e"`
}

const (
	sealPrefix = "x1."
	// sealAAD binds the ciphertext to this purpose, so a value sealed for
	// anything else under a shared key never opens here.
	sealAAD = "fedas/dc/external/tx/v1"
	// maxSealed bounds what open decodes (a 64 KB query is the dcql cap;
	// real transactions are ~1 KB).
	maxSealed = 96 << 10
)

type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("%w: SealKey must be 32 bytes", ErrInvalidRequest)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: SealKey: %w", ErrInvalidRequest, err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("%w: SealKey: %w", ErrInvalidRequest, err)
	}
	return &sealer{a}, nil
}

// seal encrypts t (AES-256-GCM, random 96-bit nonce) into an opaque ID.
func (s *sealer) seal(t sealed) (string, error) {
	pt, err := json.Marshal(t)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return sealPrefix + base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, pt, []byte(sealAAD))), nil
}

// open authenticates and decodes an ID; any failure is "unknown".
func (s *sealer) open(id string) (sealed, bool) {
	if len(id) > maxSealed || !strings.HasPrefix(id, sealPrefix) {
		return sealed{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(id[len(sealPrefix):])
	if err != nil || len(b) < s.aead.NonceSize()+s.aead.Overhead() {
		return sealed{}, false
	}
	n := s.aead.NonceSize()
	pt, err := s.aead.Open(nil, b[:n], b[n:], []byte(sealAAD))
	if err != nil {
		return sealed{}, false
	}
	var t sealed
	if json.Unmarshal(pt, &t) != nil || t.TxID == "" || t.ClientID == "" || t.Nonce == "" {
		return sealed{}, false
	}
	return t, true
}
