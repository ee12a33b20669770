package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Spec sections the fipa checks cite. FiPA-04 is
// draft-ietf-oauth-first-party-apps-04.
const (
	specFiPAMetadata     = "draft-ietf-oauth-first-party-apps-04 §4.1"
	specFiPAInitial      = "draft-ietf-oauth-first-party-apps-04 §5.1"
	specFiPACode         = "draft-ietf-oauth-first-party-apps-04 §5.2.1"
	specFiPAError        = "draft-ietf-oauth-first-party-apps-04 §5.2.2"
	specFiPAErrorMembers = "draft-ietf-oauth-first-party-apps-04 §5.2.2.1"
	specFiPASession      = "draft-ietf-oauth-first-party-apps-04 §5.3"
	specFiPAToken        = "draft-ietf-oauth-first-party-apps-04 §6"
	specRFC8414          = "RFC 8414 §2"
	specRFC7636          = "RFC 7636 §4.4.1"
	specRFC6749Error     = "RFC 6749 §5.2"
	specRFC9126          = "RFC 9126 §5"
)

// needNative: the metadata advertises the native endpoint. A server
// without one is not a FiPA server, so nothing of the profile applies.
func needNative(env *Env) string {
	if env.Metadata == nil {
		return noMetadata + env.MetadataError
	}
	if env.NativeEndpoint() == "" {
		return "the metadata advertises no authorization_challenge_endpoint or native_authorization_endpoint"
	}
	return ""
}

// needClient: a client id to send native requests with (--client-id).
func needClient(env *Env) string {
	if env.ClientID == "" {
		return "no --client-id given"
	}
	return ""
}

// needPublic: the client is public (PKCE is then required: docs/decisions.md).
func needPublic(env *Env) string {
	if env.Auth.Method != "none" {
		return "the client authenticates (--auth): PKCE may be optional for it"
	}
	return ""
}

// needUser: test credentials (--username, --password).
func needUser(env *Env) string {
	if env.Username == "" || env.Password == "" {
		return "no --username and --password given"
	}
	return ""
}

// needCode: the sign-in check before produced a code.
func needCode(env *Env) string {
	if env.code == "" {
		return "no authorization code: the password sign-in did not complete"
	}
	return ""
}

// FiPAChecks are the fipa profile's checks, in run order.
func FiPAChecks() []Check {
	native := []Need{needNative}
	withClient := []Need{needNative, needClient}
	return []Check{
		{ID: "fipa-metadata-native-endpoint", Title: "metadata advertises the native endpoint (both names agree)", Profile: ProfileFiPA, Spec: specFiPAMetadata, Needs: native, Run: checkNativeEndpoint},
		{ID: "fipa-metadata-s256", Title: "code_challenge_methods_supported contains S256", Profile: ProfileFiPA, Spec: specRFC8414, Needs: native, Run: checkS256},
		{ID: "fipa-metadata-par", Title: "pushed_authorization_request_endpoint is advertised", Profile: ProfileFiPA, Spec: specRFC9126, Needs: native, Run: checkPAR},
		{ID: "fipa-metadata-auth-method", Title: "token_endpoint_auth_methods_supported lists the client's method (--auth)", Profile: ProfileFiPA, Spec: specRFC8414, Needs: native, Run: checkAuthMethod},
		{ID: "fipa-initial-no-response-type", Title: "initial request without response_type is an error", Profile: ProfileFiPA, Spec: specFiPAInitial, Needs: withClient, Run: checkNoResponseType},
		{ID: "fipa-initial-pkce-plain", Title: "initial request with code_challenge_method=plain is an error", Profile: ProfileFiPA, Spec: specRFC7636, Needs: withClient, Run: checkPKCEPlain},
		{ID: "fipa-initial-pkce-missing", Title: "initial request of a public client without code_challenge is an error", Profile: ProfileFiPA, Spec: specFiPAInitial, Needs: []Need{needNative, needClient, needPublic}, Run: checkPKCEMissing},
		{ID: "fipa-first-party-only", Title: "a client that is not first-party is refused (unauthorized_client)", Profile: ProfileFiPA, Spec: specFiPAFirstParty, Needs: []Need{needNative, needThirdParty}, Run: checkFirstParty},
		{ID: "fipa-error-body", Title: "error answers are RFC 6749 §5.2 JSON with Cache-Control: no-store", Profile: ProfileFiPA, Spec: specRFC6749Error, Needs: withClient, Run: checkErrorBody},
		{ID: "fipa-invalid-client-basic", Title: "an unknown client's HTTP Basic credentials: 401 invalid_client with WWW-Authenticate (native and token endpoints)", Profile: ProfileFiPA, Spec: specRFC6749Error, Needs: native, Run: checkInvalidClientBasic},
		{ID: "fipa-insufficient-authorization", Title: "insufficient_authorization is HTTP 403 and carries auth_session", Profile: ProfileFiPA, Spec: specFiPAErrorMembers, Needs: withClient, Run: checkInsufficientAuthorization},
		{ID: "fipa-auth-session-entropy", Title: "auth_session has at least 128 bits (base64url length)", Profile: ProfileFiPA, Spec: specFiPASession, Needs: withClient, Run: checkSessionEntropy},
		{ID: "fipa-auth-session-rotation", Title: "auth_session rotates on each step and is single use (replay: invalid_session)", Profile: ProfileFiPA, Spec: specFiPASession, Needs: withClient, Run: checkSessionRotation},
		{ID: "fipa-redirect-to-web", Title: "redirect_to_web is HTTP 403; its request_uri opens at authorization_endpoint", Profile: ProfileFiPA, Spec: specFiPARedirectWeb, Needs: []Need{needNative, needClient, needWebParams}, Run: checkRedirectToWeb},
		{ID: "fipa-auth-session-client-binding", Title: "a follow-up of another client is refused", Profile: ProfileFiPA, Spec: specFiPAClientID, Needs: []Need{needNative, needClient, needOtherClient}, Run: checkSessionClientBinding},
		{ID: "fipa-auth-session-unknown-client", Title: "a follow-up naming an unknown client_id is invalid_client", Profile: ProfileFiPA, Spec: specFiPAClientID, Needs: withClient, Run: checkSessionUnknownClient},
		{ID: "fipa-auth-session-dpop-binding", Title: "a DPoP-bound auth_session refuses another key and no proof, and goes on with its key", Profile: ProfileFiPA, Spec: specFiPADPoP, Needs: []Need{needNative, needClient, needDPoP}, Run: checkDPoPBinding},
		{ID: "fipa-password-signin", Title: "a password sign-in ends with authorization_code", Profile: ProfileFiPA, Spec: specFiPACode, Needs: []Need{needNative, needClient, needUser}, Run: checkPasswordSignIn},
		{ID: "fipa-token-exchange", Title: "the code redeems at the token endpoint without redirect_uri", Profile: ProfileFiPA, Spec: specFiPAToken, Needs: []Need{needNative, needClient, needUser, needCode}, Run: checkTokenExchange},
		{ID: "fipa-code-single-use", Title: "a second redemption of the code is invalid_grant", Profile: ProfileFiPA, Spec: specRFC6749Code, Needs: []Need{needNative, needClient, needUser, needRedeemed}, Run: checkCodeSingleUse},
		{ID: "fipa-auth-session-dead-after-code", Title: "the auth_session that got the code is invalid_session when sent again", Profile: ProfileFiPA, Spec: specFiPASessionError, Needs: []Need{needNative, needClient, needUser, needFinalSession}, Run: checkSessionDeadAfterCode},
		// Last: its wait moves a test's server clock.
		{ID: "fipa-auth-session-expiry", Title: "a follow-up after --session-ttl is invalid_session", Profile: ProfileFiPA, Spec: specFiPASessionError, Needs: []Need{needNative, needClient, needSessionTTL}, Run: checkSessionExpiry},
	}
}

func pass(detail string, ex ...Exchange) Result {
	return Result{Status: Pass, Detail: detail, Exchanges: ex}
}

func fail(ex []Exchange, format string, a ...any) Result {
	return Result{Status: Fail, Detail: fmt.Sprintf(format, a...), Exchanges: ex}
}

func na(ex []Exchange, format string, a ...any) Result {
	return Result{Status: NotApplicable, Detail: fmt.Sprintf(format, a...), Exchanges: ex}
}

func metaExchanges(env *Env) []Exchange {
	if env.MetadataExchange == nil {
		return nil
	}
	return []Exchange{*env.MetadataExchange}
}

func checkNativeEndpoint(_ context.Context, env *Env) Result {
	ex := metaExchanges(env)
	ace, nae := env.MetaString("authorization_challenge_endpoint"), env.MetaString("native_authorization_endpoint")
	switch {
	case ace == "":
		return fail(ex, "authorization_challenge_endpoint (FiPA-04 §4.1) is missing; only native_authorization_endpoint is given")
	case nae != "" && nae != ace:
		return fail(ex, "authorization_challenge_endpoint %q and native_authorization_endpoint %q differ: clients looking for either must reach one endpoint", ace, nae)
	}
	u, err := url.Parse(ace)
	if err != nil || !u.IsAbs() {
		return fail(ex, "authorization_challenge_endpoint %q is not an absolute URL", ace)
	}
	if nae == "" {
		return pass("authorization_challenge_endpoint " + ace + " (native_authorization_endpoint not published)")
	}
	return pass("both names publish " + ace)
}

func checkS256(_ context.Context, env *Env) Result {
	ms, _ := env.Metadata["code_challenge_methods_supported"].([]any)
	if slices.Contains(ms, any("S256")) {
		return pass(fmt.Sprintf("code_challenge_methods_supported: %v", ms))
	}
	return fail(metaExchanges(env), "code_challenge_methods_supported %v lacks S256 (a native client needs PKCE, RFC 7636 §4.2)", env.Metadata["code_challenge_methods_supported"])
}

func checkPAR(_ context.Context, env *Env) Result {
	if p := env.MetaString("pushed_authorization_request_endpoint"); p != "" {
		return pass("pushed_authorization_request_endpoint " + p)
	}
	return fail(metaExchanges(env), "pushed_authorization_request_endpoint is missing")
}

// initialForm is a valid initial request (FiPA-04 §5.1) with a fresh S256
// challenge.
func initialForm(env *Env) (form url.Values, verifier string) {
	verifier, challenge := newPKCE()
	form = url.Values{
		"client_id":             {env.ClientID},
		"response_type":         {"code"},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}
	if s := scope(env); s != "" {
		form.Set("scope", s)
	}
	return form, verifier
}

// scope asks for openid when the server supports it, else nothing.
func scope(env *Env) string {
	ss, _ := env.Metadata["scopes_supported"].([]any)
	if slices.Contains(ss, any("openid")) {
		return "openid"
	}
	return ""
}

// wantError checks that resp is an error answer: a 4xx with an error member.
func wantError(resp *Response, ex Exchange, what string) Result {
	switch {
	case resp == nil:
		return fail([]Exchange{ex}, "%s: no answer: %s", what, ex.Error)
	case resp.Status == http.StatusOK || resp.Str("authorization_code") != "":
		return fail([]Exchange{ex}, "%s was accepted (HTTP %d)", what, resp.Status)
	case resp.Status < 400 || resp.Status >= 500:
		return fail([]Exchange{ex}, "%s: HTTP %d, want a 4xx error", what, resp.Status)
	case resp.Str("error") == "":
		return fail([]Exchange{ex}, "%s: HTTP %d without an error member (RFC 6749 §5.2)", what, resp.Status)
	}
	return pass(fmt.Sprintf("HTTP %d %s", resp.Status, resp.Str("error")), ex)
}

func checkNoResponseType(ctx context.Context, env *Env) Result {
	form, _ := initialForm(env)
	form.Del("response_type")
	resp, ex := env.PostForm(ctx, env.NativeEndpoint(), form)
	return wantError(resp, ex, "an initial request without response_type")
}

func checkPKCEPlain(ctx context.Context, env *Env) Result {
	form, _ := initialForm(env)
	form.Set("code_challenge", randomToken(32))
	form.Set("code_challenge_method", "plain")
	resp, ex := env.PostForm(ctx, env.NativeEndpoint(), form)
	return wantError(resp, ex, "an initial request with code_challenge_method=plain")
}

func checkPKCEMissing(ctx context.Context, env *Env) Result {
	form, _ := initialForm(env)
	form.Del("code_challenge")
	form.Del("code_challenge_method")
	resp, ex := env.PostForm(ctx, env.NativeEndpoint(), form)
	return wantError(resp, ex, "an initial request of a public client without code_challenge")
}

// errorBodyProblems lists how resp breaks RFC 6749 §5.2 (JSON with an
// error member of the allowed characters) and RFC 6749 §5.1's
// Cache-Control: no-store, which §5.2 answers share.
func errorBodyProblems(resp *Response) []string {
	var p []string
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/json" {
		p = append(p, fmt.Sprintf("Content-Type %q, want application/json", resp.Header.Get("Content-Type")))
	}
	if resp.JSON == nil {
		p = append(p, "the body is not a JSON object")
	} else {
		e, ok := resp.JSON["error"].(string)
		if !ok || e == "" || !validErrorChars(e, false) {
			p = append(p, fmt.Sprintf("error %v is not a string of %%x20-21 / %%x23-5B / %%x5D-7E", resp.JSON["error"]))
		}
		if d, present := resp.JSON["error_description"]; present {
			if s, ok := d.(string); !ok || !validErrorChars(s, true) {
				p = append(p, "error_description is not a string of %x20-21 / %x23-5B / %x5D-7E")
			}
		}
	}
	if !hasNoStore(resp.Header) {
		p = append(p, fmt.Sprintf("Cache-Control %q lacks no-store", resp.Header.Get("Cache-Control")))
	}
	return p
}

func validErrorChars(s string, spaces bool) bool {
	for _, r := range s {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' || (r == ' ' && !spaces) {
			return false
		}
	}
	return true
}

func hasNoStore(h http.Header) bool {
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(d), "no-store") {
				return true
			}
		}
	}
	return false
}

func checkErrorBody(ctx context.Context, env *Env) Result {
	// Two errors of different origin: a malformed request and a
	// session the server cannot know.
	form, _ := initialForm(env)
	form.Del("response_type")
	var exs []Exchange
	var problems []string
	for _, f := range []url.Values{form, {"auth_session": {randomToken(32)}}} {
		resp, ex := env.PostForm(ctx, env.NativeEndpoint(), f)
		exs = append(exs, ex)
		if resp == nil {
			return fail(exs, "no answer: %s", ex.Error)
		}
		if resp.Status < 400 {
			return fail(exs, "HTTP %d for a request that must fail", resp.Status)
		}
		for _, p := range errorBodyProblems(resp) {
			problems = append(problems, fmt.Sprintf("%s %s → %d: %s", ex.Method, ex.URL, resp.Status, p))
		}
	}
	if len(problems) > 0 {
		return fail(exs, "%s", strings.Join(problems, "; "))
	}
	return pass("both error answers are JSON with error and Cache-Control: no-store", exs...)
}

// start sends a valid initial request and wants insufficient_authorization.
func start(ctx context.Context, env *Env) (resp *Response, ex Exchange, verifier string, r *Result) {
	form, verifier := initialForm(env)
	resp, ex = env.PostForm(ctx, env.NativeEndpoint(), form)
	switch {
	case resp == nil:
		res := fail([]Exchange{ex}, "no answer: %s", ex.Error)
		return nil, ex, "", &res
	case resp.Status >= 500 || resp.Status == http.StatusUnauthorized || resp.Str("error") == "invalid_client" || resp.Str("error") == "unauthorized_client":
		// Not another kind of sign-in: the server refuses the client the
		// kit was given (a wrong --client-id or --auth), or fails.
		res := fail([]Exchange{ex}, "a valid initial request of --client-id %s was answered %s, want insufficient_authorization (FiPA-04 §5.2.2): check --client-id and --auth", env.ClientID, answerOf(resp))
		return nil, ex, "", &res
	case resp.Str("error") != "insufficient_authorization":
		res := na([]Exchange{ex}, "the initial request was answered %s, not insufficient_authorization (the server may need other parameters for this client)", answerOf(resp))
		return resp, ex, "", &res
	}
	return resp, ex, verifier, nil
}

func checkInsufficientAuthorization(ctx context.Context, env *Env) Result {
	resp, ex, _, r := start(ctx, env)
	if r != nil {
		return *r
	}
	exs := []Exchange{ex}
	if resp.Status != http.StatusForbidden {
		// FiPA-04 §5.2.2.1: MUST be 403 (draft -03 and the federation
		// draft's examples used 400).
		return fail(exs, "insufficient_authorization with HTTP %d, want 403 (FiPA-04 §5.2.2.1)", resp.Status)
	}
	if resp.Str("auth_session") == "" {
		return fail(exs, "insufficient_authorization without auth_session")
	}
	if p := errorBodyProblems(resp); len(p) > 0 {
		return fail(exs, "%s", strings.Join(p, "; "))
	}
	return pass(fmt.Sprintf("HTTP %d with auth_session", resp.Status), ex)
}

// minSessionLen is 128 bits in base64url (22 characters): a heuristic,
// since an opaque value's entropy cannot be seen from outside.
const minSessionLen = 22

func checkSessionEntropy(ctx context.Context, env *Env) Result {
	seen := map[string]bool{}
	var exs []Exchange
	for range 2 {
		resp, ex, _, r := start(ctx, env)
		if r != nil {
			return *r
		}
		exs = append(exs, ex)
		s := resp.Str("auth_session")
		if len(s) < minSessionLen {
			return fail(exs, "auth_session %s has %d characters, want at least %d (128 bits in base64url)", fingerprint(s), len(s), minSessionLen)
		}
		if seen[s] {
			return fail(exs, "two initial requests got the same auth_session")
		}
		seen[s] = true
	}
	return pass(fmt.Sprintf("two distinct auth_session values of %d characters", len(firstKey(seen))), exs...)
}

func firstKey(m map[string]bool) string {
	for k := range m {
		return k
	}
	return ""
}

// answerChallenge fills every input of resp's challenge: the test user's
// username and password where the inputs ask for them (by name or by
// their autocomplete hint), wrong values otherwise.
func answerChallenge(env *Env, resp *Response, right bool) (url.Values, bool) {
	ch, _ := resp.JSON["challenge"].(map[string]any)
	inputs, _ := ch["inputs"].(map[string]any)
	if len(inputs) == 0 {
		return nil, false
	}
	form := url.Values{"auth_session": {resp.Str("auth_session")}}
	if env.Auth.Method == "none" {
		form.Set("client_id", env.ClientID)
	}
	for name, v := range inputs {
		hint, _ := v.(map[string]any)["hint"].(string)
		val := "conformance-" + randomToken(6)
		switch {
		case right && (name == "username" || hint == "username"):
			val = env.Username
		case right && (name == "password" || hint == "current-password"):
			val = env.Password
		case right && (name == "otp" || hint == "one-time-code") && env.TOTPSecret != "":
			val = env.otp()
		case right:
			return nil, false // an input we have no value for
		case name == "otp" || hint == "one-time-code":
			val = "000000"
		}
		form.Set(name, val)
	}
	return form, true
}

func checkSessionRotation(ctx context.Context, env *Env) Result {
	resp, ex, _, r := start(ctx, env)
	if r != nil {
		return *r
	}
	exs := []Exchange{ex}
	first := resp.Str("auth_session")
	// A wrong answer is a step: it must rotate auth_session. A random
	// username, so that no real account's failures are counted.
	form, ok := answerChallenge(env, resp, false)
	if !ok {
		return na(exs, "the challenge has no inputs to answer")
	}
	resp2, ex2 := env.PostForm(ctx, env.NativeEndpoint(), form)
	exs = append(exs, ex2)
	if resp2 == nil {
		return fail(exs, "no answer to the follow-up: %s", ex2.Error)
	}
	second := resp2.Str("auth_session")
	switch {
	case resp2.Str("error") == "access_denied":
		return na(exs, "one wrong answer ended the session: no rotation to observe")
	case second == "":
		return fail(exs, "the follow-up's answer (HTTP %d %s) has no auth_session", resp2.Status, resp2.Str("error"))
	case second == first:
		return fail(exs, "the follow-up's answer repeats the auth_session: it must rotate on each step")
	}
	// The first value is spent: replaying it is invalid_session.
	resp3, ex3 := env.PostForm(ctx, env.NativeEndpoint(), form)
	exs = append(exs, ex3)
	switch {
	case resp3 == nil:
		return fail(exs, "no answer to the replay: %s", ex3.Error)
	case resp3.Str("error") != "invalid_session":
		return fail(exs, "a replayed auth_session was answered %s, want invalid_session", answerOf(resp3))
	}
	return pass("a new auth_session after the step; the replayed one is invalid_session", exs...)
}

func checkPasswordSignIn(ctx context.Context, env *Env) Result {
	resp, ex, verifier, r := start(ctx, env)
	if r != nil {
		return *r
	}
	exs := []Exchange{ex}
	for step := 0; step < 5; step++ {
		form, ok := answerChallenge(env, resp, true)
		if !ok {
			return na(exs, "a challenge asks for more than a username, a password and (with --totp-secret) a one-time code")
		}
		resp, ex = env.PostForm(ctx, env.NativeEndpoint(), form)
		exs = append(exs, ex)
		switch {
		case resp == nil:
			return fail(exs, "no answer: %s", ex.Error)
		case resp.Status == http.StatusOK:
			code := resp.Str("authorization_code")
			if code == "" {
				return fail(exs, "HTTP 200 without authorization_code")
			}
			env.code, env.verifier = code, verifier
			env.fipa.finalSession = form.Get("auth_session")
			return pass(fmt.Sprintf("authorization_code after %d follow-ups", step+1), exs...)
		case resp.Str("error") != "insufficient_authorization":
			return fail(exs, "%s during the sign-in", answerOf(resp))
		}
	}
	return fail(exs, "no authorization_code after 5 answered challenges")
}

func checkTokenExchange(ctx context.Context, env *Env) Result {
	tok := env.MetaString("token_endpoint")
	if tok == "" {
		return fail(metaExchanges(env), "the metadata has no token_endpoint")
	}
	code := env.code
	env.code = "" // a code is single use (RFC 6749 §4.1.2)
	resp, ex := env.PostForm(ctx, tok, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {env.verifier}, "client_id": {env.ClientID}})
	exs := []Exchange{ex}
	switch {
	case resp == nil:
		return fail(exs, "no answer: %s", ex.Error)
	case resp.Status != http.StatusOK:
		return fail(exs, "%s, want 200 with tokens", answerOf(resp))
	case resp.Str("access_token") == "" || resp.Str("token_type") == "":
		return fail(exs, "the token response lacks access_token or token_type (RFC 6749 §5.1)")
	case !hasNoStore(resp.Header):
		return fail(exs, "the token response lacks Cache-Control: no-store (RFC 6749 §5.1)")
	}
	env.fipa.redeemed, env.fipa.redeemedVerifier = code, env.verifier
	return pass("token_type "+resp.Str("token_type"), exs...)
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
