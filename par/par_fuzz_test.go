package par

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// fuzzDownstream answers every request in memory with the current input.
type fuzzDownstream struct {
	status int
	body   []byte
}

func (d *fuzzDownstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: d.status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(d.body)), ContentLength: int64(len(d.body)), Request: r}, nil
}

const fuzzChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

// FuzzResponse: the downstream's PAR response (RFC 9126 §2.2, §2.3) and
// token response (RFC 6749 §5.1, §5.2) parsers never panic. A push
// succeeds only on 201 with the exact members request_uri (the RFC 9126
// URN, visible ASCII, bounded) and expires_in in 1..600; an exchange only
// on 200 with an exact, non-empty access_token, and returns the exact
// token_type, id_token and a non-negative expires_in. Every failure is an
// *Error whose Code and Description stay within the RFC 6749 §5.2
// character set and their caps, and it is temporary exactly for what
// retrying may fix (not for a 4xx other than 408 and 429).
func FuzzResponse(f *testing.F) {
	for _, s := range []struct {
		push   bool
		status int
		body   string
	}{
		{true, 201, `{"request_uri":"urn:ietf:params:oauth:request_uri:6esc_11ACC5bwc014ltc14eY22c","expires_in":60}`},
		{true, 201, `{"request_uri":"urn:ietf:params:oauth:request_uri:x","expires_in":601}`},
		{true, 201, `{"request_uri":"urn:ietf:params:oauth:request_uri:x","expires_in":0}`},
		{true, 201, `{"request_uri":"urn:ietf:params:oauth:request_uri:x y","expires_in":60}`},
		{true, 201, `{"request_uri":"https://evil.example/","expires_in":60}`},
		{true, 201, `{"REQUEST_URI":"urn:ietf:params:oauth:request_uri:x","expires_in":60}`},
		{true, 201, `{"request_uri":"urn:ietf:params:oauth:request_uri:x","Expires_In":60}`},
		{true, 200, `{"request_uri":"urn:ietf:params:oauth:request_uri:x","expires_in":60}`},
		{true, 400, `{"error":"invalid_request","error_description":"<script>\"x\"\\` + "\n" + `</script>"}`},
		{true, 400, `{"error":"inv\"alid"}`},
		{true, 401, `{"error":"` + strings.Repeat("e", 65) + `"}`},
		{true, 429, `{"error":"slow_down"}`},
		{true, 500, `oops`},
		{true, 307, ``},
		{false, 200, `{"access_token":"at","token_type":"DPoP","expires_in":300,"id_token":"a.b.c","refresh_token":"rt","scope":"openid"}`},
		{false, 200, `{"access_token":"at","token_type":"Bearer","expires_in":"300"}`},
		{false, 200, `{"access_token":"at","token_type":"Bearer","expires_in":-5}`},
		{false, 200, `{"access_token":"at","token_type":"Bearer","expires_in":1e3}`},
		{false, 200, `{"access_token":"at","token_type":"Bearer","expires_in":null}`},
		{false, 200, `{"access_token":"at","token_type":"Bearer","TOKEN_TYPE":"DPoP"}`},
		{false, 200, `{"Access_Token":"at"}`},
		{false, 200, `{"access_token":""}`},
		{false, 200, `null`},
		{false, 200, `[]`},
		{false, 400, `{"error":"invalid_grant","error_description":"code used"}`},
		{false, 408, ``},
		{false, 204, ``},
	} {
		f.Add(s.push, uint16(s.status), []byte(s.body))
	}
	d := &fuzzDownstream{}
	c := New(Options{Issuer: "https://ds.example", PAREndpoint: "https://ds.example/par", TokenEndpoint: "https://ds.example/token",
		Auth: ClientSecretBasic{ClientID: "us", Secret: "s"}, HTTPClient: &http.Client{Transport: d}})
	f.Fuzz(func(t *testing.T, push bool, status uint16, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		d.status, d.body = int(status), body
		var exact map[string]json.RawMessage
		_ = json.Unmarshal(body, &exact)
		str := func(name string) string {
			var s string
			_ = json.Unmarshal(exact[name], &s)
			return s
		}
		var err error
		if push {
			var p Pushed
			p, err = c.Push(context.Background(), Request{ClientID: "us", CodeChallenge: fuzzChallenge})
			if err == nil {
				var exp int64
				if status != 201 || p.RequestURI != str("request_uri") || !validRequestURI(p.RequestURI) ||
					json.Unmarshal(exact["expires_in"], &exp) != nil || exp < 1 || exp > MaxExpiresIn || p.ExpiresIn.Seconds() != float64(exp) {
					t.Fatalf("pushed %+v from %d %s", p, status, body)
				}
				return
			}
		} else {
			var tr TokenResponse
			tr, err = c.Exchange(context.Background(), "code", fuzzChallenge)
			if err == nil {
				if status != 200 || tr.AccessToken == "" || tr.AccessToken != str("access_token") || tr.TokenType != str("token_type") ||
					tr.IDToken != str("id_token") || tr.ExpiresIn < 0 {
					t.Fatalf("exchanged %v from %d %s", tr, status, body)
				}
				return
			}
		}
		var pe *Error
		if !errors.As(err, &pe) {
			t.Fatalf("failure %v is not an *Error", err)
		}
		if len(pe.Code) > maxErrorCodeLen || sanitize(pe.Code, maxErrorCodeLen) != pe.Code ||
			len(pe.Description) > maxDescriptionLen || sanitize(pe.Description, maxDescriptionLen) != pe.Description {
			t.Fatalf("code %q or description %q outside RFC 6749 §5.2", pe.Code, pe.Description)
		}
		if permanent := status >= 400 && status < 500 && status != 408 && status != 429; pe.Temporary == permanent {
			t.Fatalf("status %d gave temporary=%v", status, pe.Temporary)
		}
	})
}
