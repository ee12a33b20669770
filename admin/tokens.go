package admin

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
)

// Role is what an admin token may do: read (every GET, the route tester)
// or write (everything, including the downstream check and discovery,
// which make outbound requests, and export, which shows inline keys).
type Role string

// The two roles.
const (
	RoleRead  Role = "read"
	RoleWrite Role = "write"
)

// can reports whether r includes need.
func (r Role) can(need Role) bool { return r == RoleWrite || (r == RoleRead && need == RoleRead) }

// TokenPrefix starts every admin token, so that secret scanners and
// people recognise one.
const TokenPrefix = "fedas_admin_"

var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// Token is one admin token as stored: a name, a role and the SHA-256 of
// the token (a 256-bit random value, so a fast digest suffices).
type Token struct {
	Name   string
	Role   Role
	digest [32]byte
}

// Tokens is the tokens file (docs/admin.md "Tokens"): one token per line,
// "<sha256 hex> <role> <name>", '#' comments. It is re-read when the file
// changes, so that created tokens work and deleted lines stop working
// without a restart.
type Tokens struct {
	path string
	mu   sync.Mutex
	// raw is the file content list was read from.
	raw  []byte
	list []Token
	err  error
}

// LoadTokens reads the tokens file at path.
func LoadTokens(path string) (*Tokens, error) {
	t := &Tokens{path: path}
	if err := t.refresh(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Tokens) refresh() error {
	if t.path == "" {
		return nil // NoTokens: nothing to re-read
	}
	// The file is read, not just stat'ed, on every check: a token
	// rotated under the same name gives a file of the same size, and its
	// modification time may not change within one tick of a coarse
	// clock (or when a tool preserves it), yet the old token must stop
	// working at once. The file is a few lines.
	b, err := os.ReadFile(t.path)
	if err != nil {
		// A tokens file that cannot be read admits nobody: deleting it
		// revokes every token.
		t.list, t.raw, t.err = []Token{}, nil, fmt.Errorf("admin tokens: %w", err)
		return t.err
	}
	if t.list != nil && t.raw != nil && bytes.Equal(b, t.raw) {
		return t.err
	}
	list, err := parseTokens(b)
	if err != nil {
		// A half-written or mistyped file must not lock out the admins
		// whose lines are still in it, nor keep a deleted line working:
		// keep only the tokens of the last good list that the new file
		// still lists as they were.
		t.list, t.raw, t.err = stillListed(t.list, b), b, fmt.Errorf("admin tokens %s: %w", t.path, err)
		return t.err
	}
	t.list, t.raw, t.err = list, b, nil
	return nil
}

// stillListed returns the tokens of list whose line (digest, role and
// name) is in the file content b, read line by line without failing.
func stillListed(list []Token, b []byte) []Token {
	lines := map[Token]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		d, err := hex.DecodeString(f[0])
		if err != nil || len(d) != 32 {
			continue
		}
		tk := Token{Name: f[2], Role: Role(f[1])}
		copy(tk.digest[:], d)
		lines[tk] = true
	}
	out := []Token{}
	for _, tk := range list {
		if lines[tk] {
			out = append(out, tk)
		}
	}
	return out
}

func parseTokens(b []byte) ([]Token, error) {
	list := []Token{}
	names := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want \"<sha256 hex> <role> <name>\"", n)
		}
		d, err := hex.DecodeString(f[0])
		if err != nil || len(d) != 32 {
			return nil, fmt.Errorf("line %d: the digest must be 64 hex digits", n)
		}
		role := Role(f[1])
		if role != RoleRead && role != RoleWrite {
			return nil, fmt.Errorf("line %d: role %q is not read or write", n, f[1])
		}
		if !tokenName.MatchString(f[2]) || names[f[2]] {
			return nil, fmt.Errorf("line %d: name %q must be unique (letters, digits, . _ @ -)", n, f[2])
		}
		names[f[2]] = true
		tk := Token{Name: f[2], Role: role}
		copy(tk.digest[:], d)
		list = append(list, tk)
	}
	return list, sc.Err()
}

// Authenticate returns the token whose digest is SHA-256(raw). Every
// stored digest is compared, in constant time, so neither the timing nor
// the order of the file tells anything about a guess.
func (t *Tokens) Authenticate(raw string) (Token, bool) {
	t.mu.Lock()
	_ = t.refresh()
	list := t.list
	t.mu.Unlock()
	d := sha256.Sum256([]byte(raw))
	var found Token
	ok := 0
	for _, tk := range list {
		if subtle.ConstantTimeCompare(d[:], tk.digest[:]) == 1 {
			found, ok = tk, 1
		}
	}
	return found, ok == 1 && raw != ""
}

// Lookup returns the token named name (for console sessions, which carry
// the name and a digest check, never the token).
func (t *Tokens) Lookup(name string, digest [32]byte) (Token, bool) {
	t.mu.Lock()
	_ = t.refresh()
	list := t.list
	t.mu.Unlock()
	for _, tk := range list {
		if tk.Name == name && subtle.ConstantTimeCompare(digest[:], tk.digest[:]) == 1 {
			return tk, true
		}
	}
	return Token{}, false
}

// Digest returns the token's stored digest.
func (tk Token) Digest() [32]byte { return tk.digest }

// NewToken returns a fresh token: TokenPrefix and 32 random bytes,
// base64url.
func NewToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("admin: no randomness: " + err.Error())
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// AppendToken adds a token line for raw to the tokens file at path
// (created 0600 when missing). The token itself is never written.
func AppendToken(path, name string, role Role, raw string) error {
	if role != RoleRead && role != RoleWrite {
		return fmt.Errorf("role %q is not read or write", role)
	}
	if !tokenName.MatchString(name) {
		return fmt.Errorf("name %q: use letters, digits, . _ @ - (at most 64)", name)
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	list, err := parseTokens(old)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, tk := range list {
		if tk.Name == name {
			return fmt.Errorf("%s already has a token named %q (delete its line to revoke it)", path, name)
		}
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	d := sha256.Sum256([]byte(raw))
	var line string
	if len(old) == 0 {
		line = "# fedas admin tokens: <sha256 of the token> <role> <name>; delete a line to revoke it.\n"
	} else if !bytes.HasSuffix(old, []byte("\n")) {
		line = "\n"
	}
	line += fmt.Sprintf("%s %s %s\n", hex.EncodeToString(d[:]), role, name)
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
