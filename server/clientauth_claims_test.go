package server

import (
	"testing"
	"time"

	"github.com/fedas/fedas/internal/jsonexact"
)

// TestAssertionClaimReaders: the claim readers of verifyClientAssertion
// take a claim only with its exact name and JSON type — a digit string is
// not a NumericDate, null and arrays are not strings — as the
// map[string]any reading they replaced did.
func TestAssertionClaimReaders(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		iss     string
		aud     bool // aud is a JSON string
		exp     bool // exp reads as a NumericDate (required)
		nbf     bool // nbf absent or a NumericDate (optional)
	}{
		{"plain", `{"iss":"c","aud":"https://as","exp":1700000000,"nbf":1}`, "c", true, true, true},
		{"upper-case names", `{"ISS":"c","Aud":"https://as","EXP":1700000000}`, "", false, false, true},
		{"digit strings", `{"iss":"c","aud":"x","exp":"1700000000","nbf":"1"}`, "c", true, false, false},
		{"null values", `{"iss":null,"aud":null,"exp":null,"nbf":null}`, "", false, false, false},
		{"array aud, number iss", `{"iss":7,"aud":["https://as"],"exp":1e9}`, "", false, true, true},
		{"negative exp", `{"exp":-1}`, "", false, false, true},
		{"escaped iss", `{"iss":"\u0063"}`, "c", false, false, true},
		{"last duplicate", `{"iss":"a","iss":"c"}`, "c", false, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			claims, err := jsonexact.Members([]byte(tc.payload))
			if err != nil {
				t.Fatal(err)
			}
			if got := stringClaim(claims, "iss"); got != tc.iss {
				t.Errorf("iss = %q, want %q", got, tc.iss)
			}
			if aud, ok := claims["aud"]; (ok && isJSONString(aud)) != tc.aud {
				t.Errorf("aud is a string: %v, want %v", !tc.aud, tc.aud)
			}
			if _, ok := numericDate(claims, "exp", true); ok != tc.exp {
				t.Errorf("exp ok = %v, want %v", ok, tc.exp)
			}
			if _, ok := numericDate(claims, "nbf", false); ok != tc.nbf {
				t.Errorf("nbf ok = %v, want %v", ok, tc.nbf)
			}
		})
	}
	claims, _ := jsonexact.Members([]byte(`{"exp":1700000000.9}`))
	if got, ok := numericDate(claims, "exp", true); !ok || !got.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("fractional exp = %v, %v", got, ok)
	}
}
