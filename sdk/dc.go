package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// WalletHooks connect the SDK to the user's wallet for credential
// presentation (OpenID4VP 1.0 inside the native flow; docs/protocol.md
// "Digital credentials"). Authorize calls the hook of the path the
// challenge names; a nil hook leaves that path to the UI callback.
type WalletHooks struct {
	// DCAPI is path A, the platform's Digital Credentials API (OpenID4VP
	// App. A): it hands the platform requestJSON (the challenge's request,
	// {"requests":[…]}) and returns the data the platform gave back:
	// {"response":"<JWE>"} or {"vp_token":{…}}.
	DCAPI func(ctx context.Context, requestJSON string) (data []byte, err error)
	// OpenWallet is path B, same device (OpenID4VP §13.3): it opens the
	// wallet with walletURL (openid4vp://…) and returns the query the
	// wallet delivered to the app's openid4vp_redirect_uri (response_code,
	// or error).
	OpenWallet func(ctx context.Context, walletURL string) (url.Values, error)
	// ShowQR is path C, cross device: display walletURL (as a QR code).
	// It is called again when a new request replaces an expired one.
	ShowQR func(ctx context.Context, walletURL string) error
	// Sleep waits d between polls (default: a timer that ends early when
	// ctx does). Tests inject one that advances a fake clock instead.
	Sleep func(ctx context.Context, d time.Duration) error
}

// PathParams are the initial-request parameters that say how the wallet
// is reached (the wallet-presentation draft): dc_api, openid4vp_flow_type
// and openid4vp_redirect_uri. With Wallet set, Authorize adds the ones the
// caller passed to a downstream's native request too (after federate), so
// that a downstream asking for a presentation knows the path.
var PathParams = []string{"dc_api", "openid4vp_flow_type", "openid4vp_redirect_uri"}

// Presentation flows of Challenge.Flow.
const (
	FlowDCAPI       = "dc_api"
	FlowSameDevice  = "same_device"
	FlowCrossDevice = "cross_device"
)

// maxPolls bounds one cross-device presentation (its restarts included);
// the server ends it much earlier (request lifetime × max_restarts).
const maxPolls = 1000

// IsPresentation reports whether r asks for a credential presentation in
// a dialect the SDK completes: the wallet-presentation names (type
// digital_credentials) or the federation draft -00 appendix's
// (digital_credentials_required).
func (r Response) IsPresentation() bool {
	if r.Challenge != nil && r.Challenge.Type == "digital_credentials" && r.Challenge.Flow != "" {
		return true
	}
	return r.Type == "digital_credentials" || r.Type == "digital_credentials_required"
}

// walletRequest is the presentation request of a challenge, in either
// dialect's member.
func (r Response) walletRequest() string {
	if r.CredentialsRequest != "" {
		return r.CredentialsRequest
	}
	return r.Request
}

// codeMember is the follow-up member of the same-device code: the
// wallet-presentation draft's response_code, or presentation_id in the
// federation draft -00 appendix's dialect.
func (r Response) codeMember() string {
	if r.Type == "digital_credentials_required" {
		return "presentation_id"
	}
	return "response_code"
}

// canPresent reports whether the hooks can complete the presentation r
// asks for.
func (c *Client) canPresent(r Response) bool {
	if c.Wallet == nil || !r.IsPresentation() || r.Challenge == nil || r.AuthSession == "" || r.walletRequest() == "" {
		return false
	}
	switch r.Challenge.Flow {
	case FlowDCAPI:
		return c.Wallet.DCAPI != nil
	case FlowSameDevice:
		return c.Wallet.OpenWallet != nil
	case FlowCrossDevice:
		return c.Wallet.ShowQR != nil
	}
	return false
}

// addPathParams copies the caller's PathParams into a downstream's native
// request that lacks them.
func (c *Client) addPathParams(body, params url.Values) {
	if c.Wallet == nil {
		return
	}
	for _, k := range PathParams {
		if v := params.Get(k); v != "" && body.Get(k) == "" {
			body.Set(k, v)
		}
	}
}

// present completes the presentation challenge r at the endpoint that
// sent it (r.From, with r's auth_session only) and returns the first
// answer that is no longer this presentation's: a code, an error, or
// another challenge. Decisions follow the error and status members, never
// the HTTP status (401 and 403 insufficient_authorization alike,
// OpenID4VCI 1.1 §6).
func (c *Client) present(ctx context.Context, r Response) (Response, error) {
	endpoint := r.From
	switch r.Challenge.Flow {
	case FlowDCAPI:
		data, err := c.Wallet.DCAPI(ctx, r.walletRequest())
		if err != nil {
			return Response{}, fmt.Errorf("sdk: digital credentials api: %w", err)
		}
		form, err := dcAPIForm(data)
		if err != nil {
			return Response{}, err
		}
		form.Set("auth_session", r.AuthSession)
		return c.Post(ctx, endpoint, form)
	case FlowSameDevice:
		q, err := c.Wallet.OpenWallet(ctx, r.walletRequest())
		if err != nil {
			return Response{}, fmt.Errorf("sdk: wallet: %w", err)
		}
		form := url.Values{"auth_session": {r.AuthSession}}
		member := r.codeMember()
		switch {
		case q.Get(member) != "":
			form.Set(member, q.Get(member))
		case q.Get("error") != "":
			// The wallet declined: say so, so the session ends now.
			form.Set("error", q.Get("error"))
		default:
			return Response{}, fmt.Errorf("sdk: the wallet returned no %s", member)
		}
		return c.Post(ctx, endpoint, form)
	}
	return c.poll(ctx, r)
}

// poll is the cross-device path: show the request, then poll with the
// auth_session alone every interval; slow_down sets the new interval, and
// status expired with a new request shows the new one (docs/protocol.md
// "Polling"; RFC 8628 §3.5 for slow_down).
func (c *Client) poll(ctx context.Context, r Response) (Response, error) {
	endpoint, session := r.From, r.AuthSession
	if err := c.Wallet.ShowQR(ctx, r.walletRequest()); err != nil {
		return Response{}, err
	}
	shown := r.walletRequest()
	interval := seconds(r.Interval)
	for i := 0; i < maxPolls; i++ {
		if err := c.sleep(ctx, interval); err != nil {
			return Response{}, err
		}
		p, err := c.Post(ctx, endpoint, url.Values{"auth_session": {session}})
		if err != nil {
			return Response{}, err
		}
		switch {
		case p.Error == "slow_down":
			// Over a rate limit (docs/decisions.md Q28): wait longer.
			interval += 5 * time.Second
			continue
		case p.Error != "insufficient_authorization":
			return p, nil
		case p.PollStatus == "pending" || p.PollStatus == "slow_down":
			if p.Interval > 0 {
				interval = seconds(p.Interval)
			}
		case p.IsPresentation() && p.Challenge != nil && p.Challenge.Flow == FlowCrossDevice:
			// The request expired and a new one replaced it.
			if p.Interval > 0 {
				interval = seconds(p.Interval)
			}
			if req := p.walletRequest(); req != "" && req != shown {
				if err := c.Wallet.ShowQR(ctx, req); err != nil {
					return Response{}, err
				}
				shown = req
			}
		default:
			return p, nil
		}
		if p.AuthSession != "" {
			session = p.AuthSession
		}
	}
	return Response{}, errors.New("sdk: the presentation did not complete")
}

func seconds(n int) time.Duration {
	if n <= 0 {
		n = 5 // the default interval (RFC 8628 §3.2)
	}
	return time.Duration(n) * time.Second
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Wallet.Sleep != nil {
		return c.Wallet.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// dcAPIForm turns what the platform returned into the follow-up's
// members: the encrypted response, or the vp_token object as JSON text
// (OpenID4VP App. A.3, §8.1).
func dcAPIForm(data []byte) (url.Values, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, errors.New("sdk: the digital credentials api returned no JSON object")
	}
	if raw, ok := m["response"]; ok {
		var jwe string
		if err := json.Unmarshal(raw, &jwe); err != nil || jwe == "" {
			return nil, errors.New("sdk: the digital credentials api returned a malformed response")
		}
		return url.Values{"response": {jwe}}, nil
	}
	if raw, ok := m["vp_token"]; ok && len(raw) > 0 && raw[0] == '{' {
		return url.Values{"vp_token": {string(raw)}}, nil
	}
	return nil, errors.New("sdk: the digital credentials api returned neither response nor vp_token")
}
