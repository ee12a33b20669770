package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDemoReach runs `fedas demo reach` in-process and checks each
// scene's outcomes in its transcript: the cross-device sign-in (202 with
// a binding code, the task woken in the phone's inbox, a wrong pick with
// attempts left, the right one, the rotated auth_session and a code and
// DPoP tokens), the User Questioning question (304, then 200 with a UST
// verified against the JWKS) and the interaction_unavailable fallback
// (424 with a deep link, the scan, the sign-in completed). It runs on
// the demo's own clock: no real waiting.
func TestDemoReach(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run([]string{"demo", "reach"}, nil, &out, &out))
	s := out.String()
	scene := func(from, to string) string {
		i := strings.Index(s, from)
		require.GreaterOrEqual(t, i, 0, "no %q in the transcript", from)
		if to == "" {
			return s[i:]
		}
		j := strings.Index(s, to)
		require.Greater(t, j, i, "no %q after %q", to, from)
		return s[i:j]
	}
	cross := scene("════ 1. Cross-device", "════ 2.")
	question := scene("════ 2. A question", "════ 3.")
	qr := scene("════ 3. No live device", "")
	for _, tc := range []struct {
		scene string
		text  string
		want  []*regexp.Regexp
	}{
		{"cross-device", cross, []*regexp.Regexp{
			regexp.MustCompile(`"error":"redirect_to_app"[^\n]*"reach_uri":"http://127\.0\.0\.1:\d+/native/reach"`),
			regexp.MustCompile(`TV → fedas-1 POST /native/reach [^\n]*\n[^\n]*\n   → 202  Location: /native/reach/\S+  Retry-After: 2  \{"binding_code":"(\d\d)"`),
			regexp.MustCompile(`the TV shows: "Open the bank app on your phone and pick \d\d"`),
			regexp.MustCompile(`alice's phone → fedas-2 GET /reach/inbox\?after=&wait=25|alice's phone → fedas-2 GET /reach/inbox\?wait=25`),
			regexp.MustCompile(`"entries":\[\{"id":"[^"]+","kind":"app_auth"`),
			regexp.MustCompile(`"binding_choices":\[\d+,\d+,\d+\]`),
			regexp.MustCompile(`"initiator":\{"ip":"127\.0\.0\.1","user_agent":"DemoApp/2\.1 \(Android TV 14; Living room TV\)"\}`),
			regexp.MustCompile(`→ 202  Retry-After: 2  \{[^\n]*"status":"interacting"\}`),
			regexp.MustCompile(`→ 400  \{"attempts_left":2,"error":"binding_mismatch"`),
			regexp.MustCompile(`→ 200  \{"status":"approved"\}`),
			regexp.MustCompile(`→ 200  \{"auth_session":"[^"]+","status":"completed"\}`),
			regexp.MustCompile(`rotated auth_session, \S+ ≠ the first (\S+)`),
			regexp.MustCompile(`POST /native/authorize   \[DPoP proof\]\n   auth_session=\S+\n   → 400  \{"error":"invalid_session"`),
			regexp.MustCompile(`→ 200  \{"authorization_code":"ory_ac…`),
			regexp.MustCompile(`"token_type":"DPoP"`),
			regexp.MustCompile(`Signed in on the TV across devices: sub alice \(acr phr`),
		}},
		{"question", question, []*regexp.Regexp{
			regexp.MustCompile(`POST /oauth2/token   \[Authorization: Basic …\]\n   grant_type=client_credentials&scope=question\n   → 200`),
			regexp.MustCompile(`POST /uq/questions   \[Authorization: Bearer …\]\n[^\n]*"user_id":"alice@wonderland\.example","user_id_type":"email"[^\n]*\n   → 200  \{"question_id":"`),
			regexp.MustCompile(`(?s)GET /uq/questions_polling\?question_id=\S+   \[Authorization: Bearer …\]\n   → 304\n.*"kind":"question".*→ 200  \{"status":"answered"\}.*GET /uq/questions_polling\?question_id=\S+   \[Authorization: Bearer …\]\n   → 200  \{"user_statement_token":"eyJ`),
			regexp.MustCompile(`header \{"alg":"ES256","kid":"[^"]+","typ":"JWT"\}`),
			regexp.MustCompile(`claims \{"question_id":"[^"]+","iss":"http://127\.0\.0\.1:\d+","sub":"alice","aud":\["bank-backoffice"\][^\n]*"statement":"Yes, add it"`),
			regexp.MustCompile(`GET /jwks\.json\n   → 200`),
			regexp.MustCompile(`UST verified: ES256 signature against http://127\.0\.0\.1:\d+/jwks\.json`),
		}},
		{"interaction_unavailable", qr, []*regexp.Regexp{
			regexp.MustCompile(`bob's phone → fedas-2 POST /reach/devices[^\n]*\n[^\n]*\n   → 201`),
			regexp.MustCompile(`TV → fedas-1 POST /native/reach [^\n]*\n[^\n]*\n   → 424  Location: /native/reach/\S+  \{"binding_code":"\d\d","deep_link":"https://bank\.example/app\?client_id=demo-app&reach_ref=[^"]+","error":"interaction_unavailable"`),
			regexp.MustCompile(`bob's phone → fedas-2 POST /reach/scan[^\n]*\n   \{"ref":"[^"]+"\}\n   → 200  \{"binding_choices":\[\d+,\d+,\d+\][^\n]*"status":"interacting"\}`),
			regexp.MustCompile(`→ 200  \{"status":"approved"\}`),
			regexp.MustCompile(`→ 200  \{"auth_session":"[^"]+","status":"completed"\}`),
			regexp.MustCompile(`→ 200  \{"authorization_code":"ory_ac…`),
			regexp.MustCompile(`QR sign-in completed on the TV: sub bob \(acr phr`),
		}},
	} {
		t.Run(tc.scene, func(t *testing.T) {
			for _, re := range tc.want {
				require.Regexp(t, re, tc.text)
			}
		})
	}
	require.NotContains(t, cross, `/reach/scan`, "the live phone is reached, not scanned")
	require.NotContains(t, qr, `"kind":"app_auth","task"`, "nothing reaches bob's phone")
	// The number the TV shows is one the phone offers.
	m := regexp.MustCompile(`"binding_code":"(\d\d)"`).FindStringSubmatch(cross)
	require.NotNil(t, m)
	require.Regexp(t, `"binding_choices":\[[^\]]*\b`+m[1]+`\b`, cross)

	t.Run("no secret is printed whole", func(t *testing.T) {
		for _, re := range []*regexp.Regexp{
			regexp.MustCompile(`ory_(at|ac|rt)_[A-Za-z0-9_.-]{12,}`), // fosite tokens and codes
			regexp.MustCompile(`eyJ[A-Za-z0-9_-]{12,}\.`),            // JWTs (ID tokens, the UST)
			regexp.MustCompile(`"auth_session":"[^"…]{12,}"`),
			regexp.MustCompile(`reach_ref=[^&"…\s]{12,}[&"\s]`),
			regexp.MustCompile(`request_uri=urn:ietf:params:oauth:request_uri:\S{12,}`),
		} {
			require.NotRegexp(t, re, s)
		}
		for _, pw := range []string{"wonderland", "builder", demoBackOfficeSecret} {
			require.NotContains(t, s, "="+pw)
		}
		require.Contains(t, s, "password=…")
		require.Contains(t, s, "otp=…")
	})
}
