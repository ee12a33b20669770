package config

import (
	"io/fs"
	"reflect"
	"testing"
)

// configSeeds are the demo configuration, a policy export, and YAML edge
// cases (syntax errors, unknown keys, wrong types, duplicates, aliases).
func configSeeds() []string {
	demo := string(demoYAML)
	return []string{
		demo,
		"issuer: https://as.example\n",
		"issuer: https://as.example\nclients:\n  - id: app\n    token_endpoint_auth_method: none\n    scopes: [openid]\n    grant_types: [authorization_code]\n    native_callback_uris: [\"https://app.example/cb\"]\n",
		"clients: []\nusers: []\nroutes:\n  - clients: [demo-app]\n    local: true\ndefault_route: deny\n",
		"prompt:\n  options:\n    - key: bank\n      values: [{value: b1, name: B1}]\n  inputs: [{key: email}]\nroutes:\n  - option: {key: bank, value: b1}\n    downstream: ds\ndownstreams:\n  - id: ds\n    issuer: https://ds.example\n    client_id: us\n    auth: {method: client_secret_basic, secret: s}\n",
		demo + "issuer: https://other.example\n",
		demo + "lisen: x\n",
		"issuer: [1, 2]\n",
		"limits: {max_params: -1, max_body_bytes: 1e99}\n",
		"lifetimes: {access_token: forever}\n",
		"clients:\n  - id: ü\n",
		"a: &a [*a]\n",
		"a: &x {b: 1}\nc:\n  <<: *x\n",
		"issuer: \"https://as.example\\x00\"\n",
		"\tissuer: x\n",
		"issuer: x\n  bad: indent\nlisten: y\n",
		"--- \nissuer: a\n---\nissuer: b\n",
		"!!binary issuer: x\n",
		"",
		"{}",
		"null",
		"[]",
		"clients:\n  - id: c\n    token_endpoint_auth_method: client_secret_basic\n    secret_file: /run/secrets/fedas\n    scopes: [openid]\n    grant_types: [authorization_code]\n",
		"clients:\n  - id: c\n    secret_file: /dev/zero\n",
	}
}

// fuzzFiles stands in for the file system while fuzzing: resolving
// secrets reads the files a config names, and a fuzzed /dev/zero or
// /dev/stdin would hang the worker. Files are operator input; the loader
// around them is the target.
func fuzzFiles(tb testing.TB) {
	old := readFile
	readFile = func(name string) ([]byte, error) {
		if name == "/run/secrets/fedas" {
			return []byte("a-secret-of-at-least-32-bytes-000\n"), nil
		}
		return nil, fs.ErrNotExist
	}
	tb.Cleanup(func() { readFile = old })
}

// FuzzCheck: the config loader (Check, which Parse, Load and `fedas
// config check` use) never panics, is deterministic, and reports a
// problem with a message for whatever it refuses; a document it accepts
// is also a valid policy: ParsePolicy reads it, the policy round-trips
// through MarshalPolicy to the same canonical form, and Compose accepts it
// on the loaded config.
func FuzzCheck(f *testing.F) {
	for _, s := range configSeeds() {
		f.Add([]byte(s))
	}
	fuzzFiles(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, probs := Check(b, Options{})
		if c == nil {
			t.Fatal("Check returned no config")
		}
		_, again := Check(b, Options{})
		if len(again) != len(probs) {
			t.Fatalf("not deterministic: %d problems, then %d", len(probs), len(again))
		}
		for _, p := range probs {
			if p.Message == "" {
				t.Fatalf("a problem without a message: %+v", p)
			}
		}
		if len(probs) > 0 {
			return
		}
		p, err := ParsePolicy(b)
		if err != nil {
			t.Fatalf("a valid config is not a policy: %v", err)
		}
		checkPolicyRoundTrip(t, p)
		if _, err := Compose(c, p); err != nil {
			t.Fatalf("Compose refuses the policy of a valid config: %v", err)
		}
	})
}

// FuzzParsePolicy: the policy reader (ParsePolicy: admin import, the
// policy store's bootstrap) never panics, and what it reads round-trips
// through MarshalPolicy to the same canonical form.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range configSeeds() {
		f.Add([]byte(s))
	}
	fuzzFiles(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(b)
		if err != nil {
			return
		}
		checkPolicyRoundTrip(t, p)
	})
}

func checkPolicyRoundTrip(t *testing.T, p Policy) {
	t.Helper()
	out, err := MarshalPolicy(p)
	if err != nil {
		t.Fatalf("MarshalPolicy: %v", err)
	}
	back, err := ParsePolicy(out)
	if err != nil {
		t.Fatalf("the policy's own export does not parse: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, p) {
		t.Fatalf("round trip changed the policy:\n%+v\n%+v", p, back)
	}
}
