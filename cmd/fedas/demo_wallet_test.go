package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDemoWallet runs `fedas demo wallet`: a same-device sign-in (the
// wallet returns with a response_code), a cross-device one (a QR code,
// a pending poll, then the code) and a payment approval whose token
// response grants the authorization_details the wallet approved as
// transaction data. It runs on the demo's own clock: no real waiting.
func TestDemoWallet(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run([]string{"demo", "wallet"}, nil, &out, &out))
	s := out.String()
	same := s[strings.Index(s, "1. Sign-in"):strings.Index(s, "2. Sign-in")]
	cross := s[strings.Index(s, "2. Sign-in"):strings.Index(s, "3. Payment")]
	pay := s[strings.Index(s, "3. Payment"):]
	for _, want := range []string{`"type":"digital_credentials"`, `"flow":"same_device"`, "wallet-return?response_code=", "&response_code=", "Signed in on the same device: sub dc.", "given_name Erika"} {
		require.Contains(t, same, want)
	}
	for _, want := range []string{`"flow":"cross_device"`, "shows a QR code", `"status":"pending"`, `"interval":5`, "scans the QR code", "Signed in across devices: sub dc."} {
		require.Contains(t, cross, want)
	}
	require.NotContains(t, cross, "response_code=", "no redirect across devices")
	for _, want := range []string{`"type":"urn:eudi:sca:payment:1"`, `"payee":"Coffee Corner"`, `"authorization_details":[{"creditorName":"Coffee Corner"`, "Payment approved"} {
		require.Contains(t, pay, want)
	}
	require.NotContains(t, s, "pid-4711", "the credential's subject value never shows")
	require.NotContains(t, s, "1964-08-12", "undisclosed claims never show")
}
