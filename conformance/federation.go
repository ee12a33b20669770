package conformance

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// Spec sections the federation and downstream checks cite. fed-draft-00 is
// draft-zehavi-oauth-native-clients-direct-interation-with-federation-00
// (docs/conformance.md).
const (
	specFedEndpoint = "fed-draft-00 §4.1"
	specFedCallback = "fed-draft-00 §4.2"
	specFedFederate = "fed-draft-00 §4.3.1"
	specFedPrompt   = "fed-draft-00 §4.3.3"
)

// ParsePromptAnswers parses --federation-prompt style flags: each
// NAME=VALUE is one member of the answer to an insufficient_information
// prompt (fed-draft-00 §4.3.3).
func ParsePromptAnswers(flag string, pairs []string) (url.Values, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	v := url.Values{}
	for _, p := range pairs {
		name, value, ok := strings.Cut(p, "=")
		if !ok || name == "" || value == "" {
			return nil, fmt.Errorf("%s: want NAME=VALUE, got %q", flag, p)
		}
		v.Add(name, value)
	}
	return v, nil
}

// needFederationPrompt: an answer that makes the server federate.
func needFederationPrompt(env *Env) string {
	if len(env.FederationPrompt) == 0 {
		return "no --federation-prompt NAME=VALUE given (the prompt answer that makes the server federate)"
	}
	return ""
}

// needDownstreamUser: a test user at the downstream.
func needDownstreamUser(env *Env) string {
	if env.DownstreamUsername == "" || env.DownstreamPassword == "" {
		return "no --downstream-username and --downstream-password given"
	}
	return ""
}

// needNativeCallback: a registered native_callback_uri (--native-callback-uri).
func needNativeCallback(env *Env) string {
	if env.NativeCallbackURI == "" {
		return "no --native-callback-uri given"
	}
	return ""
}

// needUnsupportedPrompt: an answer routing to a downstream without a
// native endpoint.
func needUnsupportedPrompt(env *Env) string {
	if len(env.UnsupportedPrompt) == 0 {
		return "no --unsupported-prompt NAME=VALUE given (the prompt answer that routes to a downstream without a native endpoint)"
	}
	return ""
}

// FederationChecks are the federation profile's checks (an AS that
// federates to downstreams), in run order.
func FederationChecks() []Check {
	fed := []Need{needNative, needClient, needFederationPrompt}
	withUser := []Need{needNative, needClient, needFederationPrompt, needDownstreamUser}
	return []Check{
		{ID: "federation-insufficient-information", Title: "insufficient_information has auth_session and a userPrompt offering the prompt's names", Profile: ProfileFederation, Spec: specFedPrompt, Needs: fed, Run: checkInsufficientInformation},
		{ID: "federation-federate-shape", Title: "federate: absolute federation_uri and response_uri, federation_body with client_id and request_uri, new auth_session", Profile: ProfileFederation, Spec: specFedFederate, Needs: fed, Run: checkFederateShape},
		{ID: "federation-body-works", Title: "federation_body posted as is to federation_uri gets a native answer", Profile: ProfileFederation, Spec: specFedFederate, Needs: fed, Run: checkFederationBodyWorks},
		{ID: "federation-complete", Title: "the downstream's code at response_uri gets the AS's own code, which redeems", Profile: ProfileFederation, Spec: specFedFederate, Needs: withUser, Run: checkFederationComplete},
		{ID: "federation-response-uri-session", Title: "response_uri refuses a wrong auth_session and a replayed result", Profile: ProfileFederation, Spec: specFedFederate, Needs: withUser, Run: checkResponseURISession},
		{ID: "federation-native-callback-forwarded", Title: "native_callback_uri reaches the downstream", Profile: ProfileFederation, Spec: specFedCallback, Needs: []Need{needNative, needClient, needFederationPrompt, needNativeCallback}, Run: checkNativeCallbackForwarded},
		{ID: "federation-federate-unsupported", Title: "a downstream without a native endpoint is native_authorization_federate_unsupported", Profile: ProfileFederation, Spec: specFedEndpoint, Needs: []Need{needNative, needClient, needUnsupportedPrompt}, Run: checkFederateUnsupported},
	}
}

// fedRun is one federated start: the prompt, its answer and what the
// server said to the answer.
type fedRun struct {
	exs      []Exchange
	prompt   *Response // insufficient_information
	answer   *Response // the answer to the prompt (federate, normally)
	verifier string
}

// followUpForm is a follow-up at the server under test: auth_session and
// the client_id of a public client (a confidential client authenticates
// with HTTP Basic in PostForm).
func followUpForm(env *Env, session string) url.Values {
	form := url.Values{"auth_session": {session}}
	if env.Auth.Method == "none" {
		form.Set("client_id", env.ClientID)
	}
	return form
}

// prompted sends a valid initial request (with extra parameters) and wants
// insufficient_information; r is the result to return when it is not.
func prompted(ctx context.Context, env *Env, extra url.Values) (fr *fedRun, r *Result) {
	form, verifier := initialForm(env)
	for k, vs := range extra {
		form[k] = vs
	}
	resp, ex := env.PostForm(ctx, env.NativeEndpoint(), form)
	fr = &fedRun{exs: []Exchange{ex}, prompt: resp, verifier: verifier}
	switch {
	case resp == nil:
		res := fail(fr.exs, "no answer: %s", ex.Error)
		return nil, &res
	case resp.Str("error") != "insufficient_information":
		res := fail(fr.exs, "the initial request was answered %s, want insufficient_information (the prompt the --federation-prompt/--unsupported-prompt answers)", answerOf(resp))
		return nil, &res
	case resp.Str("auth_session") == "":
		res := fail(fr.exs, "insufficient_information without auth_session")
		return nil, &res
	}
	return fr, nil
}

// federateWith starts a flow and answers its prompt with answers.
func federateWith(ctx context.Context, env *Env, answers, extra url.Values) (*fedRun, *Result) {
	fr, r := prompted(ctx, env, extra)
	if r != nil {
		return nil, r
	}
	form := followUpForm(env, fr.prompt.Str("auth_session"))
	for k, vs := range answers {
		form[k] = vs
	}
	resp, ex := env.PostForm(ctx, env.NativeEndpoint(), form)
	fr.exs = append(fr.exs, ex)
	fr.answer = resp
	if resp == nil {
		res := fail(fr.exs, "no answer to the prompt's answer: %s", ex.Error)
		return nil, &res
	}
	return fr, nil
}

// federated is federateWith the --federation-prompt answer, wanting federate.
func federated(ctx context.Context, env *Env, extra url.Values) (*fedRun, *Result) {
	fr, r := federateWith(ctx, env, env.FederationPrompt, extra)
	if r != nil {
		return nil, r
	}
	if fr.answer.Str("error") != "federate" {
		res := fail(fr.exs, "the answer to the prompt (%s) was HTTP %d %q, want federate", promptNames(env.FederationPrompt), fr.answer.Status, fr.answer.Str("error"))
		return nil, &res
	}
	return fr, nil
}

func promptNames(v url.Values) string {
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func absoluteURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.IsAbs() && u.Host != "" && (u.Scheme == "https" || u.Scheme == "http")
}

func checkInsufficientInformation(ctx context.Context, env *Env) Result {
	fr, r := prompted(ctx, env, nil)
	if r != nil {
		return *r
	}
	resp := fr.prompt
	var problems []string
	if resp.Status != http.StatusBadRequest {
		problems = append(problems, fmt.Sprintf("HTTP %d, want 400 (docs/decisions.md Q2)", resp.Status))
	}
	up, ok := resp.JSON["userPrompt"].(map[string]any)
	if !ok {
		return fail(fr.exs, "insufficient_information without a userPrompt object (REQUIRED)")
	}
	offered := map[string]bool{}
	if v, present := up["inputs"]; present {
		inputs, ok := v.(map[string]any)
		if !ok {
			problems = append(problems, "userPrompt.inputs is not an object")
		}
		for name, def := range inputs {
			offered[name] = true
			d, ok := def.(map[string]any)
			if !ok {
				problems = append(problems, fmt.Sprintf("userPrompt.inputs.%s is not an object", name))
				continue
			}
			for _, m := range []string{"title", "hint", "description"} {
				if x, present := d[m]; present {
					if _, ok := x.(string); !ok {
						problems = append(problems, fmt.Sprintf("userPrompt.inputs.%s.%s is not a string", name, m))
					}
				}
			}
		}
	}
	if v, present := up["options"]; present {
		options, ok := v.(map[string]any)
		if !ok {
			problems = append(problems, "userPrompt.options is not an object")
		}
		for name, def := range options {
			offered[name] = true
			d, ok := def.(map[string]any)
			if !ok {
				problems = append(problems, fmt.Sprintf("userPrompt.options.%s is not an object", name))
				continue
			}
			if _, ok := d["values"].(map[string]any); !ok {
				problems = append(problems, fmt.Sprintf("userPrompt.options.%s.values is not an object (REQUIRED)", name))
			}
		}
	}
	if len(offered) == 0 {
		problems = append(problems, "userPrompt offers neither inputs nor options")
	}
	for name := range env.FederationPrompt {
		if !offered[name] {
			problems = append(problems, fmt.Sprintf("the prompt does not offer %q (from --federation-prompt)", name))
		}
	}
	problems = append(problems, errorBodyProblems(resp)...)
	if len(problems) > 0 {
		sort.Strings(problems)
		return fail(fr.exs, "%s", strings.Join(problems, "; "))
	}
	return pass(fmt.Sprintf("HTTP %d, auth_session, userPrompt offering %s", resp.Status, strings.Join(sortedKeys(offered), ", ")), fr.exs...)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// federateProblems lists how a federate answer breaks fed-draft-00
// §4.3.1; body is its parsed federation_body.
func federateProblems(fr *fedRun) (problems []string, body url.Values) {
	resp := fr.answer
	if resp.Status != http.StatusBadRequest {
		problems = append(problems, fmt.Sprintf("HTTP %d, want 400 (docs/decisions.md Q2)", resp.Status))
	}
	if fu := resp.Str("federation_uri"); !absoluteURL(fu) {
		problems = append(problems, fmt.Sprintf("federation_uri %q is not an absolute http(s) URL", fu))
	}
	if ru := resp.Str("response_uri"); !absoluteURL(ru) {
		problems = append(problems, fmt.Sprintf("response_uri %q is not an absolute http(s) URL", ru))
	}
	switch s := resp.Str("auth_session"); {
	case s == "":
		problems = append(problems, "no auth_session (REQUIRED, for the response_uri post)")
	case s == fr.prompt.Str("auth_session"):
		problems = append(problems, "the auth_session is the prompt's: it must rotate (FiPA-04 §5.3)")
	}
	fb, isString := resp.JSON["federation_body"].(string)
	if !isString {
		problems = append(problems, fmt.Sprintf("federation_body %v is not a string (an application/x-www-form-urlencoded body)", resp.JSON["federation_body"]))
		return problems, nil
	}
	body, err := url.ParseQuery(fb)
	if err != nil {
		problems = append(problems, fmt.Sprintf("federation_body %q is not form-encoded: %v", fb, err))
		return problems, nil
	}
	if body.Get("request_uri") == "" {
		problems = append(problems, "federation_body has no request_uri (the federating AS MUST use PAR)")
	}
	if body.Get("client_id") == "" {
		problems = append(problems, "federation_body has no client_id (the downstream needs it with request_uri, RFC 9126 §4)")
	}
	if body.Get("auth_session") != "" {
		problems = append(problems, "federation_body carries an auth_session: ours must never reach the downstream")
	}
	return problems, body
}

func checkFederateShape(ctx context.Context, env *Env) Result {
	fr, r := federated(ctx, env, nil)
	if r != nil {
		return *r
	}
	problems, body := federateProblems(fr)
	problems = append(problems, errorBodyProblems(fr.answer)...)
	if len(problems) > 0 {
		return fail(fr.exs, "%s", strings.Join(problems, "; "))
	}
	return pass(fmt.Sprintf("federation_uri %s, federation_body with %s, a new auth_session", fr.answer.Str("federation_uri"), promptNames(body)), fr.exs...)
}

// nativeAnswers are what a client handles when the downstream answers
// (fed-draft-00 §4.3.1; FiPA-04 §5.2.2).
var nativeAnswers = []string{"insufficient_authorization", "insufficient_information", "federate", "redirect_to_app", "redirect_to_web"}

// postRaw posts body as is (a form) to u: the device's call of a
// federation_uri, with no client authentication and no DPoP proof.
func (e *Env) postRaw(ctx context.Context, u, body string) (*Response, Exchange) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return nil, Exchange{Method: http.MethodPost, URL: u, Error: err.Error()}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return e.Do(req)
}

// downstreamStart federates and posts federation_body to federation_uri.
func downstreamStart(ctx context.Context, env *Env, extra url.Values) (*fedRun, *Response, *Result) {
	fr, r := federated(ctx, env, extra)
	if r != nil {
		return nil, nil, r
	}
	if p, _ := federateProblems(fr); len(p) > 0 {
		res := fail(fr.exs, "the federate answer is malformed: %s", strings.Join(p, "; "))
		return nil, nil, &res
	}
	resp, ex := env.postRaw(ctx, fr.answer.Str("federation_uri"), fr.answer.Str("federation_body"))
	fr.exs = append(fr.exs, ex)
	if resp == nil {
		res := fail(fr.exs, "no answer from federation_uri: %s", ex.Error)
		return nil, nil, &res
	}
	return fr, resp, nil
}

func isNativeAnswer(resp *Response) bool {
	if resp.Status == http.StatusOK {
		return resp.Str("authorization_code") != ""
	}
	return slices.Contains(nativeAnswers, resp.Str("error"))
}

func checkFederationBodyWorks(ctx context.Context, env *Env) Result {
	fr, resp, r := downstreamStart(ctx, env, nil)
	if r != nil {
		return *r
	}
	if !isNativeAnswer(resp) {
		return fail(fr.exs, "federation_uri answered %s: the downstream did not accept federation_body (want authorization_code or one of %s)", answerOf(resp), strings.Join(nativeAnswers, ", "))
	}
	what := resp.Str("error")
	if what == "" {
		what = "authorization_code"
	}
	return pass(fmt.Sprintf("the downstream answered HTTP %d %s", resp.Status, what), fr.exs...)
}

// downstreamSignIn answers the downstream's password challenges with the
// downstream test user until it answers authorization_code.
func downstreamSignIn(ctx context.Context, env *Env, fr *fedRun, resp *Response) (string, *Result) {
	du := *env
	du.Username, du.Password = env.DownstreamUsername, env.DownstreamPassword
	u := fr.answer.Str("federation_uri")
	for step := 0; step < 5; step++ {
		switch {
		case resp.Status == http.StatusOK && resp.Str("authorization_code") != "":
			return resp.Str("authorization_code"), nil
		case resp.Str("error") != "insufficient_authorization":
			res := na(fr.exs, "the downstream answered %s: only password challenges are answered", answerOf(resp))
			return "", &res
		}
		form, ok := answerChallenge(&du, resp, true)
		if !ok {
			res := na(fr.exs, "a downstream challenge asks for more than a username and a password")
			return "", &res
		}
		// The device is not the downstream's client: its follow-ups there
		// carry auth_session and the answers only.
		form.Del("client_id")
		var ex Exchange
		resp, ex = env.postRaw(ctx, u, form.Encode())
		fr.exs = append(fr.exs, ex)
		if resp == nil {
			res := fail(fr.exs, "no answer from the downstream: %s", ex.Error)
			return "", &res
		}
	}
	res := fail(fr.exs, "no authorization_code from the downstream after 5 answered challenges")
	return "", &res
}

// downstreamCode federates, signs in at the downstream and returns its code.
func downstreamCode(ctx context.Context, env *Env) (*fedRun, string, *Result) {
	fr, resp, r := downstreamStart(ctx, env, nil)
	if r != nil {
		return nil, "", r
	}
	code, r := downstreamSignIn(ctx, env, fr, resp)
	if r != nil {
		return nil, "", r
	}
	return fr, code, nil
}

// postResult posts the downstream's code with session to response_uri.
func postResult(ctx context.Context, env *Env, fr *fedRun, session, code string) (*Response, Exchange) {
	form := url.Values{"auth_session": {session}, "authorization_code": {code}}
	return env.PostForm(ctx, fr.answer.Str("response_uri"), form)
}

func checkFederationComplete(ctx context.Context, env *Env) Result {
	fr, code, r := downstreamCode(ctx, env)
	if r != nil {
		return *r
	}
	resp, ex := postResult(ctx, env, fr, fr.answer.Str("auth_session"), code)
	fr.exs = append(fr.exs, ex)
	switch {
	case resp == nil:
		return fail(fr.exs, "no answer from response_uri: %s", ex.Error)
	case resp.Status != http.StatusOK || resp.Str("authorization_code") == "":
		return fail(fr.exs, "response_uri answered %s, want 200 with the AS's own authorization_code", answerOf(resp))
	case resp.Str("authorization_code") == code:
		return fail(fr.exs, "response_uri answered the downstream's own code: the AS must issue its own")
	}
	tok := env.MetaString("token_endpoint")
	if tok == "" {
		return fail(append(fr.exs, metaExchanges(env)...), "the metadata has no token_endpoint")
	}
	tr, tex := env.PostForm(ctx, tok, url.Values{"grant_type": {"authorization_code"}, "code": {resp.Str("authorization_code")}, "code_verifier": {fr.verifier}, "client_id": {env.ClientID}})
	fr.exs = append(fr.exs, tex)
	switch {
	case tr == nil:
		return fail(fr.exs, "no answer from the token endpoint: %s", tex.Error)
	case tr.Status != http.StatusOK || tr.Str("access_token") == "":
		return fail(fr.exs, "the token endpoint answered %s for the federated code, want 200 with access_token", answerOf(tr))
	}
	return pass("the downstream's code got the AS's own code, redeemed for token_type "+tr.Str("token_type"), fr.exs...)
}

// refusedResult: resp is an error answer without a code.
func refusedResult(resp *Response) bool {
	return resp != nil && resp.Status >= 400 && resp.Status < 500 && resp.Str("error") != "" && resp.Str("authorization_code") == ""
}

func checkResponseURISession(ctx context.Context, env *Env) Result {
	fr, code, r := downstreamCode(ctx, env)
	if r != nil {
		return *r
	}
	session := fr.answer.Str("auth_session")
	// A session the AS never issued: refused, and the genuine result is
	// still accepted afterwards (the refusal was about the session).
	resp, ex := postResult(ctx, env, fr, randomToken(32), code)
	fr.exs = append(fr.exs, ex)
	if !refusedResult(resp) {
		return fail(fr.exs, "the downstream's code with a wrong auth_session was not refused with a 4xx error (%s)", statusOf(resp, ex))
	}
	resp, ex = postResult(ctx, env, fr, session, code)
	fr.exs = append(fr.exs, ex)
	if resp == nil || resp.Status != http.StatusOK || resp.Str("authorization_code") == "" {
		return fail(fr.exs, "with the right auth_session response_uri answered %s, want 200 with authorization_code", statusOf(resp, ex))
	}
	// The same result again: the session is spent.
	resp, ex = postResult(ctx, env, fr, session, code)
	fr.exs = append(fr.exs, ex)
	if !refusedResult(resp) {
		return fail(fr.exs, "the replayed result was not refused with a 4xx error (%s)", statusOf(resp, ex))
	}
	return pass("a wrong auth_session and a replay are refused; the genuine result is accepted once", fr.exs...)
}

func statusOf(resp *Response, ex Exchange) string {
	if resp == nil {
		return "no answer: " + ex.Error
	}
	return answerOf(resp)
}

// answerOf says what an answer was in a detail: its status and error
// code, or what it was instead of a JSON error.
func answerOf(resp *Response) string {
	switch {
	case resp.Str("error") != "":
		return fmt.Sprintf("HTTP %d %q", resp.Status, resp.Str("error"))
	case resp.JSON != nil:
		return fmt.Sprintf("HTTP %d without an error member", resp.Status)
	}
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = "no Content-Type"
	}
	return fmt.Sprintf("HTTP %d, not JSON (%s, %d bytes)", resp.Status, ct, len(resp.Body))
}

// callbackAnswers are the downstream's answers that return through the
// native callback (fed-draft-00 §4.3.2; docs/decisions.md Q7).
var callbackAnswers = []string{"redirect_to_app", "redirect_to_web"}

// checkNativeCallbackForwarded federates twice, with and without the
// native_callback_uri, and compares the downstream's answers to the
// federation_body. Black-box, the callback is visible only in how the
// downstream behaves: one set up to hand a request carrying a callback
// to an app answers redirect_to_app (docs/conformance.md).
func checkNativeCallbackForwarded(ctx context.Context, env *Env) Result {
	with, wresp, r := downstreamStart(ctx, env, url.Values{"native_callback_uri": {env.NativeCallbackURI}})
	if r != nil {
		if r.Status == Fail {
			r.Detail += " (is --native-callback-uri registered for --client-id?)"
		}
		return *r
	}
	without, oresp, r := downstreamStart(ctx, env, nil)
	if r != nil {
		return *r
	}
	exs := append(with.exs, without.exs...)
	werr, oerr := wresp.Str("error"), oresp.Str("error")
	switch {
	case slices.Contains(callbackAnswers, oerr) && werr == oerr:
		return na(exs, "the downstream answers %s with and without native_callback_uri: forwarding is not observable", werr)
	case !slices.Contains(callbackAnswers, werr):
		return fail(exs, "with native_callback_uri the downstream answered HTTP %d %q (without it: %q), want redirect_to_app or redirect_to_web: the callback did not reach it", wresp.Status, werr, oerr)
	}
	return pass(fmt.Sprintf("with native_callback_uri the downstream answers %s, without it %s", werr, oerr), exs...)
}

func checkFederateUnsupported(ctx context.Context, env *Env) Result {
	fr, r := federateWith(ctx, env, env.UnsupportedPrompt, nil)
	if r != nil {
		return *r
	}
	resp := fr.answer
	var problems []string
	if e := resp.Str("error"); e != "native_authorization_federate_unsupported" {
		return fail(fr.exs, "the answer to the prompt (%s) was HTTP %d %q, want native_authorization_federate_unsupported", promptNames(env.UnsupportedPrompt), resp.Status, e)
	}
	if resp.Status != http.StatusBadRequest {
		problems = append(problems, fmt.Sprintf("HTTP %d, want 400 (docs/decisions.md Q2)", resp.Status))
	}
	for _, m := range []string{"federation_uri", "federation_body", "response_uri"} {
		if _, present := resp.JSON[m]; present {
			problems = append(problems, m+" present: nothing is federated")
		}
	}
	problems = append(problems, errorBodyProblems(resp)...)
	if len(problems) > 0 {
		return fail(fr.exs, "%s", strings.Join(problems, "; "))
	}
	return pass("HTTP 400 native_authorization_federate_unsupported", fr.exs...)
}
