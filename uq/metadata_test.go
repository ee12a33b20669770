package uq

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDiscoveryMetadata: the -10 §3 members; scopes_supported gains
// "question" once; endpoints must be https (http only on loopback).
func TestDiscoveryMetadata(t *testing.T) {
	m, err := DiscoveryMetadata("https://as.example/uq/questions", "https://as.example/uq/questions_polling",
		[]string{"openid", "question", "profile"}, []string{"hwk", "pin"}, []string{"1", "2"})
	require.NoError(t, err)
	require.Equal(t, map[string]any{
		"user_questioning_request_endpoint": "https://as.example/uq/questions",
		"user_questioning_polling_endpoint": "https://as.example/uq/questions_polling",
		"scopes_supported":                  []string{"openid", "question", "profile"},
		"amr_list":                          []string{"hwk", "pin"},
		"acr_list":                          []string{"1", "2"},
	}, m)

	m, err = DiscoveryMetadata("http://127.0.0.1:8080/uq/questions", "http://localhost:8080/uq/p", []string{"openid"}, nil, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"openid", "question"}, m["scopes_supported"])
	require.Equal(t, []string{}, m["amr_list"])

	for _, bad := range []string{"http://as.example/uq", "/uq/questions", "https://as.example/uq#f", "https://u@as.example/uq", "ftp://as.example/uq", "https:opaque"} {
		_, err := DiscoveryMetadata(bad, "https://as.example/p", nil, nil, nil)
		require.Error(t, err, bad)
		_, err = DiscoveryMetadata("https://as.example/q", bad, nil, nil, nil)
		require.Error(t, err, bad)
	}
}
