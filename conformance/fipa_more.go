package conformance

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/pquerna/otp/totp"
)

// Spec sections of the checks in this file.
const (
	specFiPAFirstParty   = "draft-ietf-oauth-first-party-apps-04 §9.1"
	specFiPARedirectWeb  = "draft-ietf-oauth-first-party-apps-04 §5.2.2.1.1"
	specFiPASessionError = "draft-ietf-oauth-first-party-apps-04 §5.2.2.1"
	specFiPAClientID     = "draft-ietf-oauth-first-party-apps-04 §5.1"
	specFiPADPoP         = "draft-ietf-oauth-first-party-apps-04 §9.6.1"
	specRFC6749Code      = "RFC 6749 §4.1.2, §10.5"
)

// fipaState is what one fipa check leaves for a later one.
type fipaState struct {
	// finalSession is the auth_session sent with the follow-up that got
	// the code (fipa-password-signin).
	finalSession string
	// redeemed is the code fipa-token-exchange redeemed, with its verifier.
	redeemed, redeemedVerifier string
}

// now is the kit's clock (Env.Now, else time.Now).
func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// sleep waits d on the kit's clock (Env.Sleep, else a timer that ctx
// ends).
func (e *Env) sleep(ctx context.Context, d time.Duration) error {
	if e.Sleep != nil {
		return e.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// otp is the test user's current RFC 6238 code ("" without a secret).
func (e *Env) otp() string {
	if e.TOTPSecret == "" {
		return ""
	}
	code, err := totp.GenerateCode(strings.ToUpper(strings.ReplaceAll(e.TOTPSecret, " ", "")), e.now())
	if err != nil {
		return ""
	}
	return code
}

func needThirdParty(env *Env) string {
	if env.ThirdPartyClientID == "" {
		return "no --third-party-client-id given"
	}
	return ""
}

func needOtherClient(env *Env) string {
	if env.OtherClientID == "" {
		return "no --other-client-id given"
	}
	return ""
}

func needWebParams(env *Env) string {
	if len(env.WebParams) == 0 {
		return "no --web-param given (what makes the server answer redirect_to_web)"
	}
	return ""
}

func needSessionTTL(env *Env) string {
	if env.SessionTTL <= 0 {
		return "no --session-ttl given"
	}
	return ""
}

func needFinalSession(env *Env) string {
	if env.fipa.finalSession == "" {
		return "no finished sign-in: the password sign-in did not complete"
	}
	return ""
}

func needRedeemed(env *Env) string {
	if env.fipa.redeemed == "" {
		return "no redeemed code: the token exchange did not succeed"
	}
	return ""
}

// continuing are the answers that carry a sign-in on: a request answered
// with one of them was not refused.
var continuing = []string{"insufficient_authorization", "insufficient_information", "federate", "redirect_to_app", "redirect_to_web"}

// wantRefused checks that resp refuses the request: a 4xx error that does
// not carry the sign-in on. want, when not empty, is the error code the
// answer must have.
func wantRefused(exs []Exchange, resp *Response, what, want string) Result {
	if resp == nil {
		return fail(exs, "%s: no answer: %s", what, exs[len(exs)-1].Error)
	}
	switch e := resp.Str("error"); {
	case resp.Status == http.StatusOK || resp.Str("authorization_code") != "":
		return fail(exs, "%s was accepted (HTTP %d)", what, resp.Status)
	case slices.Contains(continuing, e):
		return fail(exs, "%s was answered %s (HTTP %d): the sign-in went on", what, e, resp.Status)
	case resp.Status < 400 || resp.Status >= 500:
		return fail(exs, "%s: HTTP %d, want a 4xx error", what, resp.Status)
	case e == "":
		return fail(exs, "%s: HTTP %d without an error member (RFC 6749 §5.2)", what, resp.Status)
	case want != "" && e != want:
		return fail(exs, "%s was answered HTTP %d %q, want %s", what, resp.Status, e, want)
	}
	return pass(fmt.Sprintf("%s: HTTP %d %s", what, resp.Status, resp.Str("error")), exs...)
}

func checkAuthMethod(_ context.Context, env *Env) Result {
	raw, present := env.Metadata["token_endpoint_auth_methods_supported"]
	ms, _ := raw.([]any)
	if !present {
		// RFC 8414 §2: omitted means client_secret_basic.
		ms = []any{"client_secret_basic"}
	}
	if slices.Contains(ms, any(env.Auth.Method)) {
		if !present {
			return pass("token_endpoint_auth_methods_supported omitted: client_secret_basic by default")
		}
		return pass(fmt.Sprintf("token_endpoint_auth_methods_supported %v lists %s", ms, env.Auth.Method))
	}
	return fail(metaExchanges(env), "token_endpoint_auth_methods_supported %v lacks %s, the method the client uses (--auth)", raw, env.Auth.Method)
}

func checkFirstParty(ctx context.Context, env *Env) Result {
	form, _ := initialForm(env)
	form.Set("client_id", env.ThirdPartyClientID)
	resp, ex := env.post(ctx, env.NativeEndpoint(), form, nil, false)
	return wantRefused([]Exchange{ex}, resp, "an initial request of a client that is not first-party", "unauthorized_client")
}

// followUp is a wrong answer to resp's challenge (a random username, as
// the rotation check sends): a step that goes on without signing anyone
// in.
func followUp(env *Env, resp *Response) (url.Values, bool) {
	return answerChallenge(env, resp, false)
}

func checkRedirectToWeb(ctx context.Context, env *Env) Result {
	form, _ := initialForm(env)
	for k, vs := range env.WebParams {
		form[k] = append([]string(nil), vs...)
	}
	resp, ex := env.PostForm(ctx, env.NativeEndpoint(), form)
	exs := []Exchange{ex}
	if resp == nil {
		return fail(exs, "no answer: %s", ex.Error)
	}
	if resp.Str("error") == "redirect_to_app" && resp.Str("auth_session") != "" {
		// No app opens the deep link here: say so, which falls back to
		// the browser (docs/protocol.md "App-to-app").
		f := url.Values{"auth_session": {resp.Str("auth_session")}, "deep_link_unavailable": {"true"}}
		if env.Auth.Method == "none" {
			f.Set("client_id", env.ClientID)
		}
		resp, ex = env.PostForm(ctx, env.NativeEndpoint(), f)
		exs = append(exs, ex)
		if resp == nil {
			return fail(exs, "no answer to deep_link_unavailable=true: %s", ex.Error)
		}
	}
	switch {
	case resp.Str("error") != "redirect_to_web":
		return fail(exs, "%s, want redirect_to_web (check --web-param)", answerOf(resp))
	case resp.Status != http.StatusForbidden:
		return fail(exs, "redirect_to_web with HTTP %d, want 403", resp.Status)
	}
	if p := errorBodyProblems(resp); len(p) > 0 {
		return fail(exs, "%s", strings.Join(p, "; "))
	}
	ru := resp.Str("request_uri")
	if ru == "" {
		what := "without request_uri (the client starts its own browser request)"
		if resp.Str("auth_session") != "" {
			what = "with auth_session"
		}
		return pass("HTTP 403 redirect_to_web "+what, exs...)
	}
	if exp, ok := resp.JSON["expires_in"].(float64); !ok || exp <= 0 {
		return fail(exs, "redirect_to_web has a request_uri but expires_in %v is not a positive number", resp.JSON["expires_in"])
	}
	// The request_uri is for the browser endpoint (RFC 9126 §4): it must
	// open a page or a redirect there, not an error.
	az := env.MetaString("authorization_endpoint")
	if az == "" {
		return fail(exs, "redirect_to_web has a request_uri but the metadata has no authorization_endpoint")
	}
	u := az + "?" + url.Values{"client_id": {env.ClientID}, "request_uri": {ru}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fail(exs, "authorization_endpoint %q: %v", az, err)
	}
	page, pex := env.Do(req)
	exs = append(exs, pex)
	switch {
	case page == nil:
		return fail(exs, "no answer at authorization_endpoint: %s", pex.Error)
	case page.Status >= 400:
		return fail(exs, "authorization_endpoint answered the request_uri with HTTP %d", page.Status)
	}
	return pass(fmt.Sprintf("HTTP 403 redirect_to_web with request_uri; authorization_endpoint answers it HTTP %d", page.Status), exs...)
}

func checkSessionClientBinding(ctx context.Context, env *Env) Result {
	return followUpAs(ctx, env, env.OtherClientID, "a follow-up of another client ("+env.OtherClientID+")", "")
}

func checkSessionUnknownClient(ctx context.Context, env *Env) Result {
	return followUpAs(ctx, env, "conformance-unknown-"+randomToken(6), "a follow-up naming an unknown client_id", "invalid_client")
}

// followUpAs starts a session and answers its challenge naming clientID:
// the answer must be refused (with code, when set; FiPA-04 §5.1: the
// auth_session is bound to its client).
func followUpAs(ctx context.Context, env *Env, clientID, what, code string) Result {
	resp, ex, _, r := start(ctx, env)
	if r != nil {
		return *r
	}
	form, ok := followUp(env, resp)
	if !ok {
		return na([]Exchange{ex}, "the challenge has no inputs to answer")
	}
	form.Set("client_id", clientID)
	resp2, ex2 := env.post(ctx, env.NativeEndpoint(), form, nil, false)
	return wantRefused([]Exchange{ex, ex2}, resp2, what, code)
}

// checkInvalidClientBasic sends an unknown client's HTTP Basic
// credentials to the native and the token endpoint: RFC 6749 §5.2 wants
// 401 invalid_client with WWW-Authenticate when the Authorization header
// was used.
func checkInvalidClientBasic(ctx context.Context, env *Env) Result {
	id, secret := "conformance-unknown-"+randomToken(6), randomToken(16)
	probes := []struct{ name, u string }{{"native endpoint", env.NativeEndpoint()}, {"token endpoint", env.MetaString("token_endpoint")}}
	var exs []Exchange
	for _, p := range probes {
		if p.u == "" {
			return fail(metaExchanges(env), "the metadata has no token_endpoint")
		}
		form := url.Values{"grant_type": {"authorization_code"}, "code": {randomToken(16)}, "code_verifier": {randomToken(32)}}
		if p.name == "native endpoint" {
			form, _ = initialForm(env)
			form.Del("client_id")
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.u, strings.NewReader(form.Encode()))
		if err != nil {
			return fail(exs, "%s %q: %v", p.name, p.u, err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.SetBasicAuth(id, secret)
		resp, ex := env.Do(req)
		exs = append(exs, ex)
		switch {
		case resp == nil:
			return fail(exs, "%s: no answer: %s", p.name, ex.Error)
		case resp.Str("error") != "invalid_client" || resp.Status != http.StatusUnauthorized:
			return fail(exs, "%s: an unknown client's Basic credentials got HTTP %d %q, want 401 invalid_client", p.name, resp.Status, resp.Str("error"))
		case !strings.HasPrefix(strings.ToLower(resp.Header.Get("WWW-Authenticate")), "basic"):
			return fail(exs, "%s: 401 invalid_client without a Basic WWW-Authenticate challenge (got %q)", p.name, resp.Header.Get("WWW-Authenticate"))
		}
	}
	return pass("both endpoints: 401 invalid_client with WWW-Authenticate: Basic", exs...)
}

func checkSessionDeadAfterCode(ctx context.Context, env *Env) Result {
	form := url.Values{"auth_session": {env.fipa.finalSession}}
	if env.Auth.Method == "none" {
		form.Set("client_id", env.ClientID)
	}
	resp, ex := env.PostForm(ctx, env.NativeEndpoint(), form)
	return wantRefused([]Exchange{ex}, resp, "the auth_session of the request that got the code, sent again", "invalid_session")
}

func checkCodeSingleUse(ctx context.Context, env *Env) Result {
	resp, ex := env.PostForm(ctx, env.MetaString("token_endpoint"), url.Values{"grant_type": {"authorization_code"}, "code": {env.fipa.redeemed},
		"code_verifier": {env.fipa.redeemedVerifier}, "client_id": {env.ClientID}})
	return wantRefused([]Exchange{ex}, resp, "a second redemption of the code", "invalid_grant")
}

// sessionTTLMargin is how long past --session-ttl the expiry check waits.
const sessionTTLMargin = 5 * time.Second

func checkSessionExpiry(ctx context.Context, env *Env) Result {
	resp, ex, _, r := start(ctx, env)
	if r != nil {
		return *r
	}
	form, ok := followUp(env, resp)
	if !ok {
		return na([]Exchange{ex}, "the challenge has no inputs to answer")
	}
	if err := env.sleep(ctx, env.SessionTTL+sessionTTLMargin); err != nil {
		return fail([]Exchange{ex}, "waiting %s: %v", env.SessionTTL+sessionTTLMargin, err)
	}
	resp2, ex2 := env.PostForm(ctx, env.NativeEndpoint(), form)
	return wantRefused([]Exchange{ex, ex2}, resp2, fmt.Sprintf("a follow-up %s after the session began (--session-ttl %s)", env.SessionTTL+sessionTTLMargin, env.SessionTTL), "invalid_session")
}
