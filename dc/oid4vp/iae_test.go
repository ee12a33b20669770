package oid4vp

import (
	"errors"
	"testing"
)

// TestIAEPostJWT: the OpenID4VCI 1.1 interactive response mode: a signed
// request carries expected_url (https, required), no response_uri and no
// expected_origins; expected_url is refused on the other modes.
func TestIAEPostJWT(t *testing.T) {
	s := testSigner(t)
	k := testKey(t)
	ok := baseParams(k)
	ok.ResponseMode, ok.ResponseURI, ok.ExpectedURL = ModeIAEPostJWT, "", "https://as.example/iae"
	jws, err := SignRequest(ok, s)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := parseRequest(t, jws, s)
	if string(m["expected_url"]) != `"https://as.example/iae"` || string(m["response_mode"]) != `"iae_post.jwt"` || m["response_uri"] != nil {
		t.Fatalf("payload %v", m)
	}
	for name, mod := range map[string]func(*RequestParams){
		"no expected_url":        func(p *RequestParams) { p.ExpectedURL = "" },
		"http expected_url":      func(p *RequestParams) { p.ExpectedURL = "http://as.example/iae" },
		"with response_uri":      func(p *RequestParams) { p.ResponseURI = "https://as.example/dc/response" },
		"with expected_origins":  func(p *RequestParams) { p.ExpectedOrigins = []string{"https://app.example"} },
		"expected_url on direct": func(p *RequestParams) { p.ResponseMode, p.ResponseURI = ModeDirectPostJWT, "https://as.example/r" },
		"expected_url on dc_api": func(p *RequestParams) { p.ResponseMode, p.ExpectedOrigins = ModeDCAPIJWT, []string{"o"} },
	} {
		p := ok
		mod(&p)
		if _, err := SignRequest(p, s); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}
