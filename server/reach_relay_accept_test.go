package server

import "testing"

// TestRelay_AcceptNegotiation (RI20, Q24): problem+json only when Accept
// names it explicitly with a q-value above zero and not below
// application/json's (own range, application/* or */*); JSON otherwise.
func TestRelay_AcceptNegotiation(t *testing.T) {
	for _, tc := range []struct {
		accept []string
		want   bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"*/*"}, false},
		{[]string{"application/*"}, false},
		{[]string{"application/json"}, false},
		{[]string{"application/problem+json"}, true},
		{[]string{"Application/Problem+JSON"}, true},
		{[]string{"application/problem+json, application/json"}, true},
		{[]string{"application/json, application/problem+json"}, true},
		{[]string{"application/json", "application/problem+json"}, true},
		{[]string{"application/json, application/problem+json;q=0.5"}, false},
		{[]string{"application/problem+json;q=0.9, application/json;q=0.8"}, true},
		{[]string{"application/problem+json;q=0"}, false},
		{[]string{"application/problem+json;q=0.5, */*"}, false},
		{[]string{"application/problem+json, */*;q=0.1"}, true},
		{[]string{"application/problem+json;q=0.5, application/*;q=0.4"}, true},
		{[]string{"application/problem+json;q=2"}, false},
		{[]string{"application/problem+json;q=x"}, false},
		{[]string{"text/html, application/problem+json;q=0.1"}, true},
		{[]string{";;;, application/problem+json"}, true},
	} {
		if got := prefersProblem(tc.accept); got != tc.want {
			t.Errorf("Accept %q: problem+json %v, want %v", tc.accept, got, tc.want)
		}
	}
}

// TestRelay_ParseBoundaries: loopback http only with
// dev.allow_loopback_http and only to a registered loopback origin; the
// code alphabet and length bounds.
func TestRelay_ParseBoundaries(t *testing.T) {
	origins := []string{"https://shop.example", "http://127.0.0.1:8080"}
	for _, tc := range []struct {
		url      string
		loopback bool
		ok       bool
	}{
		{"https://shop.example/x", false, true},
		{"http://127.0.0.1:8080/x", true, true},
		{"http://127.0.0.1:8080/x", false, false},
		{"http://localhost:8080/x", true, false},
		{"https://[::1]/x", false, false},
	} {
		if err := checkRelayURL(tc.url, origins, tc.loopback); (err == nil) != tc.ok {
			t.Errorf("%s (loopback %v): %v, want ok %v", tc.url, tc.loopback, err, tc.ok)
		}
	}
	for code, ok := range map[string]bool{"ABCDEFGH": true, "abcd-efgh": true, "0123456789ABCDEFGHJKMNPQRSTVWXYZ": true, "ABCDEFG": false, "ABCD EFGH": false} {
		if validRelayCode(code) != ok {
			t.Errorf("code %q: want %v", code, ok)
		}
	}
}
