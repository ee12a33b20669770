package server

import (
	"bytes"
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fedas/fedas/internal/testkeys"
)

// fuzzMaxParams is small so that the fuzzer reaches the parameter cap.
const fuzzMaxParams = 12

// formSeeds are real request bodies of the public endpoints (from the
// server tests) and edge cases of the strict form rules.
var formSeeds = []string{
	"response_type=code&client_id=demo-app&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&scope=openid",
	"auth_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&password=correct+horse&username=carol",
	"grant_type=authorization_code&code=abc.def&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk&client_id=demo-app",
	"grant_type=refresh_token&refresh_token=r.t&client_id=c2",
	"token=abc&token_type_hint=access_token",
	"response_type=code&client_id=pkjwt&redirect_uri=https%3A%2F%2Fpkjwt.example%2Fcb&state=state-12345&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c",
	"email=a%40example.com&auth_session=x",
	"",
	"a",
	"a=",
	"=a",
	"&&a=1&&",
	"a=1&a=2",
	"a=1&%61=2",
	"a=1;b=2",
	"a=%zz",
	"a=%ff",
	"%c3=x",
	"a=%ed%a0%80",
	"a=%c0%af",
	"a+b=c+d",
	"a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11&l=12&m=13",
}

// FuzzParseStrictForm: the form decoder of every public POST endpoint
// (RFC 6749 §3.1: no repeated parameter; UTF-8; bounded count) never
// panics, and what it accepts is exactly the body's parameters: one value
// each, valid UTF-8, as many as the body has pairs (so none was dropped
// or merged), within the cap, and the same after a round trip through
// url.Values.Encode.
func FuzzParseStrictForm(f *testing.F) {
	for _, s := range formSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		form, perr := parseStrictForm(body, fuzzMaxParams)
		if perr != nil {
			checkRefusal(t, perr)
			return
		}
		if len(form) > fuzzMaxParams {
			t.Fatalf("accepted %d parameters, cap %d", len(form), fuzzMaxParams)
		}
		pairs := 0
		for _, seg := range strings.Split(body, "&") {
			if seg != "" {
				pairs++
			}
		}
		if pairs != len(form) {
			t.Fatalf("body has %d pairs, accepted %d parameters: a repeated one was merged", pairs, len(form))
		}
		for k, v := range form {
			if len(v) != 1 {
				t.Fatalf("parameter %q has %d values", k, len(v))
			}
			if !utf8.ValidString(k) || !utf8.ValidString(v[0]) {
				t.Fatalf("parameter %q is not UTF-8", k)
			}
		}
		again, perr := parseStrictForm(form.Encode(), fuzzMaxParams)
		if perr != nil || !reflect.DeepEqual(again, form) {
			t.Fatalf("round trip changed %v into %v (%v)", form, again, perr)
		}
	})
}

// jsonSeeds are the bodies of TestNAE_StrictJSONBody (valid and refused)
// and a few more edge cases.
var jsonSeeds = []string{
	`{"client_id":"demo-app","response_type":"code","code_challenge":"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM","code_challenge_method":"S256"}`,
	`{"auth_session":"x","password":"correct horse"}` + " \r\n\t",
	`{"state":"\ud83d\ude00"}`,
	`{"state":"\\ud800"}`,
	`{"state":"\\\ud800"}`,
	`{"client_id":"demo-app","client_id":"demo-app"}`,
	`{"client_id":"demo-app","client\u005fid":"c2"}`,
	`{"a":"b"}{"c":"d"}`,
	`{"a":"b"}x`,
	`{"a":"b"}[]`,
	`{"a":"b"} "x"`,
	"{\"state\":\"a\xffb\"}",
	"{\"st\xc3\":\"x\"}",
	"{\"state\":\"\xc0\xaf\"}",
	"{\"state\":\"\xed\xa0\x80\"}",
	`{"a":"b"}` + "\xff",
	`{"state":"\ud800"}`,
	`{"state":"\udc00"}`,
	`{"state":"\ud800\u0041"}`,
	`{"state":"x\uD800"}`,
	`{"state":"\ufffd"}`,
	`{"max_age":300}`,
	`{"state":true}`,
	`{"state":null}`,
	`{"scope":["openid"]}`,
	`{"state":{"a":"b"}}`,
	`[{"a":"b"}]`,
	`"client_id=demo-app"`,
	`1`,
	`null`,
	``,
	`{"a":"b"`,
	`{"a":"b",}`,
	`{"a" "b"}`,
	`{"a":"b" "c":"d"}`,
	"\xef\xbb\xbf{}",
	`{}`,
	`{"":""}`,
	`{"a":"1","b":"2","c":"3","d":"4","e":"5","f":"6","g":"7","h":"8","i":"9","j":"10","k":"11","l":"12","m":"13"}`,
}

// FuzzParseStrictJSON: the JSON decoder of the native endpoint (FiPA-04
// §5.3; docs/security.md "strict form and JSON parsing") never panics, and
// what it accepts is one object of string members, each at most once
// (as many members as the text has name separators), within the cap,
// valid JSON and UTF-8, with no U+FFFD that the sender did not write (a
// lone surrogate or invalid byte silently replaced), equal to what
// encoding/json reads, and the same after a round trip.
func FuzzParseStrictJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		form, perr := parseStrictJSON(body, fuzzMaxParams)
		if perr != nil {
			checkRefusal(t, perr)
			return
		}
		if !utf8.Valid(body) || !json.Valid(body) {
			t.Fatalf("accepted a body that is not valid UTF-8 JSON: %q", body)
		}
		if len(form) > fuzzMaxParams {
			t.Fatalf("accepted %d members, cap %d", len(form), fuzzMaxParams)
		}
		if n := testkeys.NameSeparators(body); n != len(form) {
			t.Fatalf("body has %d members, accepted %d: a duplicate was merged", n, len(form))
		}
		var std map[string]string
		if err := json.Unmarshal(body, &std); err != nil {
			t.Fatalf("accepted what encoding/json refuses as an object of strings: %v", err)
		}
		replaced := 0
		for k, v := range form {
			if len(v) != 1 || std[k] != v[0] {
				t.Fatalf("member %q: accepted %q, encoding/json reads %q", k, v, std[k])
			}
			replaced += strings.Count(k, "\uFFFD") + strings.Count(v[0], "\uFFFD")
		}
		written := bytes.Count(body, []byte("\uFFFD")) + bytes.Count(bytes.ToLower(body), []byte(`\ufffd`))
		if replaced > written {
			t.Fatalf("accepted %d U+FFFD, the body wrote %d: input was replaced", replaced, written)
		}
		enc, err := json.Marshal(std)
		if err != nil {
			t.Fatal(err)
		}
		again, perr := parseStrictJSON(enc, fuzzMaxParams)
		if perr != nil || !reflect.DeepEqual(again, form) {
			t.Fatalf("round trip changed %v into %v (%v)", form, again, perr)
		}
	})
}

// checkRefusal: a refusal is a 4xx invalid_request whose description is
// within the RFC 6749 §5.2 character set (it may quote a parameter name).
func checkRefusal(t *testing.T, perr *protoError) {
	t.Helper()
	if perr.status < 400 || perr.status >= 500 || perr.body.Error != "invalid_request" {
		t.Fatalf("refusal is %d %s", perr.status, perr.body.Error)
	}
	if d := perr.body.ErrorDescription; cleanDescription(d) != d {
		t.Fatalf("description %q is outside the RFC 6749 §5.2 set", d)
	}
}

// TestFuzzHelpers pins the oracle the JSON target relies on.
func TestFuzzHelpers(t *testing.T) {
	for s, want := range map[string]int{`{}`: 0, `{"a:":"b"}`: 1, `{"a\":":"b","c":"d"}`: 2, `{"a":{"b":"c"}}`: 2} {
		if got := testkeys.NameSeparators([]byte(s)); got != want {
			t.Errorf("testkeys.NameSeparators(%s) = %d, want %d", s, got, want)
		}
	}
	if _, perr := parseStrictForm(url.Values{"a": {"b"}}.Encode(), 1); perr != nil {
		t.Fatal(perr)
	}
}
