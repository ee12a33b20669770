// Package sdk is a native client for FiPA authorization challenge endpoints
// (draft-ietf-oauth-first-party-apps-04) and the native-clients federation
// draft: it drives any such server as a native app would, with no browser.
// It renders challenges and prompts through a callback, follows `federate`
// with a stack of (response_uri, auth_session) hops, and redeems the final
// code. Clients branch on the `error` member, never on the HTTP status
// (docs/decisions.md Q2). Credential-presentation challenges (OpenID4VP:
// the Digital Credentials API, a same-device wallet, a cross-device QR
// code with polling) go to Client.Wallet's hooks (dc.go).
package sdk

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fedas/fedas/dpop"
)

// Metadata is the part of RFC 8414 metadata a native client needs.
type Metadata struct {
	Issuer                         string `json:"issuer"`
	AuthorizationChallengeEndpoint string `json:"authorization_challenge_endpoint"`
	NativeAuthorizationEndpoint    string `json:"native_authorization_endpoint"`
	TokenEndpoint                  string `json:"token_endpoint"`
	IntrospectionEndpoint          string `json:"introspection_endpoint"`
	RevocationEndpoint             string `json:"revocation_endpoint"`
	PAREndpoint                    string `json:"pushed_authorization_request_endpoint"`
	AuthorizationEndpoint          string `json:"authorization_endpoint"`
}

// NativeEndpoint returns the FiPA endpoint under either of its names.
func (m Metadata) NativeEndpoint() string {
	if m.AuthorizationChallengeEndpoint != "" {
		return m.AuthorizationChallengeEndpoint
	}
	return m.NativeAuthorizationEndpoint
}

// Response is any answer of a native endpoint (FiPA-04 §5.2; federation
// draft §4.3), decoded loosely so that one type fits every outcome.
type Response struct {
	Status            int                        `json:"-"`
	AuthorizationCode string                     `json:"authorization_code,omitempty"`
	Error             string                     `json:"error,omitempty"`
	ErrorDescription  string                     `json:"error_description,omitempty"`
	ErrorURI          string                     `json:"error_uri,omitempty"`
	AuthSession       string                     `json:"auth_session,omitempty"`
	Challenge         *Challenge                 `json:"challenge,omitempty"`
	FederationURI     string                     `json:"federation_uri,omitempty"`
	FederationBody    string                     `json:"federation_body,omitempty"`
	ResponseURI       string                     `json:"response_uri,omitempty"`
	DeepLink          string                     `json:"deep_link,omitempty"`
	UserPrompt        map[string]json.RawMessage `json:"userPrompt,omitempty"`
	Logo              string                     `json:"logo,omitempty"`
	RequestURI        string                     `json:"request_uri,omitempty"`
	ExpiresIn         int                        `json:"expires_in,omitempty"`
	// The presentation members (docs/protocol.md "Digital credentials";
	// sdk/dc.go): the wallet-presentation names, the federation draft -00
	// appendix's (request) and OpenID4VCI's (presentation,
	// interaction_type_required, openid4vp_request), and polling's.
	Type                    string          `json:"type,omitempty"`
	CredentialsRequest      string          `json:"credentials_request,omitempty"`
	Request                 string          `json:"request,omitempty"`
	Presentation            string          `json:"presentation,omitempty"`
	InteractionTypeRequired string          `json:"interaction_type_required,omitempty"`
	OpenID4VPRequest        json.RawMessage `json:"openid4vp_request,omitempty"`
	PollStatus              string          `json:"status,omitempty"`
	Interval                int             `json:"interval,omitempty"`
	// ReachURI and BindingCode are the cross-device redirect_to_app
	// members (sdk/reach_client.go; docs/reach.md).
	ReachURI    string `json:"reach_uri,omitempty"`
	BindingCode string `json:"binding_code,omitempty"`
	// From is the endpoint that produced the response.
	From string `json:"-"`
}

// Challenge is fedas's self-describing insufficient_authorization member.
type Challenge struct {
	Type string `json:"type"`
	// Flow is a presentation's path: dc_api, same_device, cross_device or
	// interactive (docs/protocol.md "Digital credentials").
	Flow   string           `json:"flow,omitempty"`
	Inputs map[string]Input `json:"inputs"`
}

// Input describes one field to collect from the user.
type Input struct {
	Title       string `json:"title,omitempty"`
	Hint        string `json:"hint,omitempty"`
	Description string `json:"description,omitempty"`
	Secret      bool   `json:"secret"`
}

// Err is a terminal error answer.
type Err struct{ Response }

func (e *Err) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s", e.Response.Error, e.Status, e.ErrorDescription)
}

// UI answers what the server asks of the user: a challenge
// (insufficient_authorization) or a routing prompt
// (insufficient_information). It returns the answers to post, or an error
// to abort.
type UI func(ctx context.Context, r Response) (url.Values, error)

// Client drives one native client against one (first) authorization server.
type Client struct {
	HTTP     *http.Client
	ClientID string
	Meta     Metadata
	// OnExchange, when set, sees every request and response (demo output).
	OnExchange func(method, url string, form url.Values, status int, body []byte)
	// OpenApp opens a redirect_to_app deep link through the OS and returns
	// the query parameters the app delivered on our native_callback_uri;
	// ErrNoApp when no app claims the link (federation draft §4.3.2).
	OpenApp func(ctx context.Context, deepLink string) (url.Values, error)
	// OpenBrowser opens an authorization URL in the system browser
	// (redirect_to_web, FiPA-04 §5.2.2.1.1) and returns the query of the
	// callback the browser finally hands back to the app: the client's
	// redirect_uri (code, state, iss) for our own AS, or its
	// native_callback_uri after a downstream's browser flow (Q7).
	OpenBrowser func(ctx context.Context, authorizeURL string) (url.Values, error)
	// DPoP, when set, signs a proof (RFC 9449) for every request to our own
	// AS (URLs under Meta.Issuer) — never to downstreams (docs/decisions.md
	// Q5) — binding the auth_session, the code and the tokens to this key.
	DPoP *dpop.Key
	// RedirectURI is the client's registered redirect_uri that our browser
	// fallback delivers codes to (its only one, docs/decisions.md Q17).
	RedirectURI string
	// Wallet, when set, completes credential-presentation challenges
	// (sdk/dc.go) on whichever path the challenge names; without it, or
	// without the hook that path needs, the UI callback gets them.
	Wallet *WalletHooks
	// Reach, when set, completes a redirect_to_app on the user's other
	// device when no app on this one opens the deep link
	// (sdk/reach_client.go).
	Reach *ReachHooks
}

// ErrNoApp: no installed app claims the deep link.
var ErrNoApp = errors.New("sdk: no app claims the deep link")

// Discover fetches RFC 8414 metadata from issuer and checks its issuer.
func Discover(ctx context.Context, hc *http.Client, issuer string) (Metadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+"/.well-known/oauth-authorization-server", nil)
	if err != nil {
		return Metadata{}, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Metadata{}, err
	}
	defer resp.Body.Close()
	var m Metadata
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("sdk: metadata: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&m); err != nil {
		return m, fmt.Errorf("sdk: metadata: %w", err)
	}
	if m.Issuer != issuer {
		return m, fmt.Errorf("sdk: metadata issuer %q != %q (RFC 8414 §3.3)", m.Issuer, issuer)
	}
	return m, nil
}

// PKCE is an RFC 7636 verifier and its S256 challenge.
type PKCE struct {
	Verifier, Challenge string
	// RedirectURI is set when the code came through the browser to the
	// client's redirect_uri: the token request must repeat it (RFC 6749
	// §4.1.3).
	RedirectURI string
}

// NewPKCE makes a fresh S256 pair (RFC 7636 §4.1, §4.2).
func NewPKCE() PKCE {
	var b [32]byte
	_, _ = rand.Read(b[:])
	v := base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(v))
	return PKCE{Verifier: v, Challenge: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// Post sends a form to endpoint and decodes the native response.
func (c *Client) Post(ctx context.Context, endpoint string, form url.Values) (Response, error) {
	resp, body, err := c.postRaw(ctx, endpoint, form)
	if err != nil {
		return Response{}, err
	}
	var r Response
	if err := json.Unmarshal(body, &r); err != nil {
		return Response{Status: resp.StatusCode}, fmt.Errorf("sdk: %s answered HTTP %d with non-JSON", endpoint, resp.StatusCode)
	}
	r.Status, r.From = resp.StatusCode, endpoint
	return r, nil
}

// hop is one federation level: where to send the downstream result and
// with which auth_session (federation draft §4.3.1; docs/decisions.md Q13).
type hop struct{ responseURI, authSession string }

// Authorize runs the native flow from the initial request to our
// authorization code: it answers challenges and prompts through ui,
// follows `federate` to downstream native endpoints and posts each result
// to the nearest federating AS. params are the initial request's extra
// parameters (scope, login_hint, …); PKCE is added. It returns the code
// and the PKCE pair to redeem it with.
func (c *Client) Authorize(ctx context.Context, params url.Values, ui UI) (string, PKCE, error) {
	pk := NewPKCE()
	form := url.Values{}
	for k, v := range params {
		form[k] = append([]string(nil), v...)
	}
	form.Set("client_id", c.ClientID)
	form.Set("response_type", "code")
	form.Set("code_challenge", pk.Challenge)
	form.Set("code_challenge_method", "S256")
	endpoint := c.Meta.NativeEndpoint()
	clientID := c.ClientID // the client_id at the AS we are talking to
	var stack []hop
	// next is an answer already received (a presentation's last one) that
	// the loop decides on without posting.
	var next *Response
	for steps := 0; steps < 32; steps++ {
		var r Response
		if next != nil {
			r, next = *next, nil
		} else {
			var err error
			if r, err = c.Post(ctx, endpoint, form); err != nil {
				return "", pk, err
			}
		}
		if r.AuthorizationCode != "" {
			if len(stack) == 0 {
				return r.AuthorizationCode, pk, nil
			}
			// A downstream's code goes to the AS that federated us there.
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			endpoint = top.responseURI
			form = url.Values{"authorization_code": {r.AuthorizationCode}, "auth_session": {top.authSession}}
			continue
		}
		kind := r.Error
		if kind == "invalid_request" && r.UserPrompt != nil && r.AuthSession != "" {
			// fedas re-asks an invalid prompt answer (docs/decisions.md Q11).
			kind = "insufficient_information"
		}
		switch kind {
		case "insufficient_authorization", "insufficient_information":
			if kind == "insufficient_authorization" && c.canPresent(r) {
				// OpenID4VP through the wallet hooks, at the endpoint that
				// asked (ours or a downstream's: its own auth_session only).
				nr, err := c.present(ctx, r)
				if err != nil {
					return "", pk, err
				}
				next = &nr
				continue
			}
			answers, err := ui(ctx, r)
			if err != nil {
				return "", pk, err
			}
			form = url.Values{}
			for k, v := range answers {
				form[k] = append([]string(nil), v...)
			}
			form.Set("auth_session", r.AuthSession)
		case "federate":
			body, err := url.ParseQuery(r.FederationBody)
			if err != nil || r.FederationURI == "" || r.ResponseURI == "" {
				return "", pk, &Err{r}
			}
			stack = append(stack, hop{responseURI: r.ResponseURI, authSession: r.AuthSession})
			clientID = body.Get("client_id")
			if body.Get("response_type") == "" {
				body.Set("response_type", "code") // docs/decisions.md Q4
			}
			c.addPathParams(body, params)
			endpoint, form = r.FederationURI, body
		case "redirect_to_app":
			next, nextForm, err := c.openApp(ctx, r, &stack)
			if err != nil {
				return "", pk, err
			}
			endpoint, form = next, nextForm
		case "redirect_to_web":
			if c.OpenBrowser == nil || r.RequestURI == "" {
				return "", pk, &Err{r}
			}
			authz, err := c.authorizationEndpoint(ctx, r.From)
			if err != nil {
				return "", pk, err
			}
			params, err := c.OpenBrowser(ctx, authz+"?"+url.Values{"client_id": {clientID}, "request_uri": {r.RequestURI}}.Encode())
			if err != nil {
				return "", pk, err
			}
			if len(stack) == 0 {
				// Our own AS: the browser delivered its code to our
				// redirect_uri, bound to our PKCE; check its iss (RFC 9207).
				if rc := params.Get("response_code"); rc != "" && r.AuthSession != "" {
					// Our AS federated through the browser (docs/decisions.md
					// Q19): the browser came back to our native_callback_uri
					// with a one-time response_code for this device.
					endpoint, form = r.From, url.Values{"auth_session": {r.AuthSession}, "response_code": {rc}}
					continue
				}
				if params.Get("code") == "" || params.Get("iss") != c.Meta.Issuer {
					return "", pk, &Err{r}
				}
				pk.RedirectURI = c.RedirectURI
				return params.Get("code"), pk, nil
			}
			// A downstream's browser flow ended at the federating AS's web
			// callback; the app was sent back to its native_callback_uri
			// with a one-time response_code, which it brings with the
			// auth_session to that AS's response_uri.
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			endpoint, form = top.responseURI, url.Values{"auth_session": {top.authSession}}
			if rc := params.Get("response_code"); rc != "" {
				form.Set("response_code", rc)
			}
		default:
			if len(stack) > 0 && r.Error != "" {
				// A downstream failure is reported to the AS that
				// federated us (federation draft §4.3.1).
				top := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				endpoint = top.responseURI
				form = url.Values{"error": {r.Error}, "auth_session": {top.authSession}}
				if r.ErrorDescription != "" {
					form.Set("error_description", r.ErrorDescription)
				}
				continue
			}
			return "", pk, &Err{r}
		}
	}
	return "", pk, errors.New("sdk: too many steps")
}

// openApp follows redirect_to_app and decides where the app's result goes
// (docs/decisions.md Q6): to the AS that sent redirect_to_app when it gave
// us an auth_session, else to the response_uri of the AS that federated
// us. A code from a callback is never redeemed at a token endpoint.
func (c *Client) openApp(ctx context.Context, r Response, stack *[]hop) (string, url.Values, error) {
	if r.DeepLink == "" {
		return "", nil, &Err{r}
	}
	// Same device first (RFC 10027 §6.1): the other device only when no
	// app here opens the link.
	params, err := url.Values(nil), ErrNoApp
	if c.OpenApp != nil {
		params, err = c.OpenApp(ctx, r.DeepLink)
	}
	if errors.Is(err, ErrNoApp) && c.canReach(r) {
		value, err := c.reachOther(ctx, r)
		if err != nil {
			return "", nil, err
		}
		return r.From, url.Values{"auth_session": {value}}, nil
	}
	if c.OpenApp == nil {
		return "", nil, &Err{r}
	}
	if errors.Is(err, ErrNoApp) && r.AuthSession != "" {
		// Ask the AS for its browser fallback (redirect_to_web).
		return r.From, url.Values{"auth_session": {r.AuthSession}, "deep_link_unavailable": {"true"}}, nil
	}
	if err != nil {
		return "", nil, err
	}
	form := url.Values{}
	for _, k := range []string{"authorization_code", "iss", "error", "error_description"} {
		if v := params.Get(k); v != "" {
			form.Set(k, v)
		}
	}
	if r.AuthSession != "" {
		form.Set("auth_session", r.AuthSession)
		return r.From, form, nil
	}
	if n := len(*stack); n > 0 {
		top := (*stack)[n-1]
		*stack = (*stack)[:n-1]
		form.Set("auth_session", top.authSession)
		return top.responseURI, form, nil
	}
	return "", nil, errors.New("sdk: redirect_to_app without auth_session outside a federation")
}

// CompleteApp is the app side of redirect_to_app: our app, holding an
// access token for its signed-in user, completes the deep link's pushed
// request at its AS and gets the callback to invoke (the native_callback_uri
// with authorization_code and iss). It returns the callback URL and its
// query parameters.
func (c *Client) CompleteApp(ctx context.Context, deepLink, accessToken string) (string, url.Values, error) {
	u, err := url.Parse(deepLink)
	if err != nil {
		return "", nil, err
	}
	q := u.Query()
	form := url.Values{"request_uri": {q.Get("request_uri")}, "client_id": {q.Get("client_id")}}
	endpoint := strings.TrimSuffix(c.Meta.Issuer, "/") + "/native/app/complete"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", nil, err
	}
	if c.OnExchange != nil {
		c.OnExchange(http.MethodPost, endpoint, form, resp.StatusCode, body)
	}
	var out struct {
		Callback string `json:"callback"`
		Response
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return "", nil, fmt.Errorf("sdk: app completion answered HTTP %d with non-JSON", resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK || out.Callback == "" {
		out.Response.Status = resp.StatusCode
		return "", nil, &Err{out.Response}
	}
	cb, err := url.Parse(out.Callback)
	if err != nil {
		return "", nil, err
	}
	return out.Callback, cb.Query(), nil
}

// authorizationEndpoint finds the browser authorization endpoint of the
// AS whose native endpoint answered: its metadata at the endpoint's
// origin must name that same native endpoint.
func (c *Client) authorizationEndpoint(ctx context.Context, nativeEndpoint string) (string, error) {
	if nativeEndpoint == c.Meta.NativeEndpoint() && c.Meta.AuthorizationEndpoint != "" {
		return c.Meta.AuthorizationEndpoint, nil
	}
	u, err := url.Parse(nativeEndpoint)
	if err != nil {
		return "", err
	}
	m, err := Discover(ctx, c.HTTP, u.Scheme+"://"+u.Host)
	if err != nil {
		return "", err
	}
	if m.NativeEndpoint() != nativeEndpoint || m.AuthorizationEndpoint == "" {
		return "", fmt.Errorf("sdk: no browser endpoint for %s", nativeEndpoint)
	}
	return m.AuthorizationEndpoint, nil
}

// Token is an RFC 6749 §5.1 token response.
type Token struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	// AuthorizationDetails are the granted authorization_details (RFC 9396
	// §7), e.g. a payment a presentation approved.
	AuthorizationDetails json.RawMessage `json:"authorization_details,omitempty"`
}

// Exchange redeems a code at the token endpoint (RFC 6749 §4.1.3, no
// redirect_uri per FiPA-04 §6; RFC 7636 §4.5).
func (c *Client) Exchange(ctx context.Context, code string, pk PKCE) (Token, error) {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {pk.Verifier}, "client_id": {c.ClientID}}
	if pk.RedirectURI != "" {
		form.Set("redirect_uri", pk.RedirectURI)
	}
	return c.tokenRequest(ctx, form)
}

// Refresh uses a refresh token (RFC 6749 §6).
func (c *Client) Refresh(ctx context.Context, refreshToken string) (Token, error) {
	return c.tokenRequest(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}, "client_id": {c.ClientID}})
}

func (c *Client) tokenRequest(ctx context.Context, form url.Values) (Token, error) {
	r, body, err := c.postRaw(ctx, c.Meta.TokenEndpoint, form)
	if err != nil {
		return Token{}, err
	}
	if r.StatusCode != http.StatusOK {
		var e Response
		_ = json.Unmarshal(body, &e)
		e.Status = r.StatusCode
		return Token{}, &Err{e}
	}
	var t Token
	if err := json.Unmarshal(body, &t); err != nil {
		return t, err
	}
	return t, nil
}

func (c *Client) postRaw(ctx context.Context, endpoint string, form url.Values) (*http.Response, []byte, error) {
	return c.send(ctx, http.MethodPost, endpoint, form)
}

// send sends a request (a form body when form is not nil) with a DPoP
// proof for URLs of our own AS (htu without the query, RFC 9449 §4.2),
// reading at most 1 MiB of the answer.
func (c *Client) send(ctx context.Context, method, endpoint string, form url.Values) (*http.Response, []byte, error) {
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, endpoint, rd)
	if err != nil {
		return nil, nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.DPoP != nil && c.Meta.Issuer != "" && strings.HasPrefix(endpoint, c.Meta.Issuer+"/") {
		htu, _, _ := strings.Cut(endpoint, "?")
		proof, err := c.DPoP.Proof(method, htu, "")
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("DPoP", proof)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if c.OnExchange != nil {
		c.OnExchange(method, endpoint, form, resp.StatusCode, body)
	}
	return resp, body, err
}

// NewHTTPClient returns a client with timeouts that never follows
// redirects (a native endpoint never redirects).
func NewHTTPClient() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
