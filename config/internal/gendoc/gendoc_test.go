package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestConfigDoc: docs/config.md is exactly what the generator writes from
// config/*.go, and every field has a doc comment (Generate fails
// otherwise). A key added without documentation, or a comment changed
// without `go generate ./config`, fails here.
func TestConfigDoc(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	want, err := Generate(filepath.Join(root, "config"))
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(root, "docs", "config.md"))
	require.NoError(t, err)
	require.Equal(t, string(want), string(got), "docs/config.md is stale: run go generate ./config")
}

// TestGenerate_RefusesUndocumentedFields: a struct field without a doc
// comment makes the generator fail, naming it.
func TestGenerate_RefusesUndocumentedFields(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.go"), []byte(`package config

// Config is a test config.
type Config struct {
	// Issuer is documented.
	Issuer string `+"`yaml:\"issuer\"`"+`
	Listen string `+"`yaml:\"listen\"`"+`
}
`), 0o600))
	_, err := Generate(dir)
	require.ErrorContains(t, err, "Config.Listen (listen)")
}
