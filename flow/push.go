package flow

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/storage"
)

// RequestURIPrefix starts every request_uri we mint (RFC 9126 §2.2).
const RequestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// PushKind says who made a pushed request. They are stored apart, and
// each is usable only where it was made for (docs/decisions.md Q3).
type PushKind int

// Push kinds.
const (
	// PushClient is a client's PAR (RFC 9126).
	PushClient PushKind = iota + 1
	// PushApp is ours: the request of a redirect_to_app deep link, for
	// the app completion API only.
	PushApp
	// PushWeb is ours: a redirect_to_web fallback, for our browser
	// endpoint only.
	PushWeb
)

// Pushed is a stored pushed request.
type Pushed struct {
	Kind     PushKind
	ClientID string
	// Form holds its authorization request parameters.
	Form url.Values
	// Session is the auth session one of our pushes belongs to ("" for a
	// browser fallback that starts its own).
	Session string
}

// PushStore stores and consumes pushed requests. Peek and Consume return
// an error wrapping storage.ErrNotFound for an unknown, expired or used
// request_uri.
type PushStore interface {
	Push(ctx context.Context, p Pushed) (requestURI string, expiresIn int, err error)
	Peek(ctx context.Context, requestURI string) (Pushed, error)
	Consume(ctx context.Context, requestURI string) (Pushed, error)
}

// use is where a request_uri is presented.
type use struct {
	kinds   []PushKind
	consume bool
	// native: the client must be first-party or federating.
	native bool
	// browser: the request must name a registered redirect_uri.
	browser bool
}

var (
	useNative          = use{kinds: []PushKind{PushClient}, consume: true, native: true}
	useBrowser         = use{kinds: []PushKind{PushClient, PushWeb}, browser: true}
	useBrowserComplete = use{kinds: []PushKind{PushClient, PushWeb}, consume: true, browser: true}
	useApp             = use{kinds: []PushKind{PushApp}, consume: true}
)

// take is the one place a request_uri is looked up, checked — its kind,
// the client it was pushed for, the endpoint it may be used at, the
// first-party rules — and only then consumed, atomically. A refused use
// never burns it. clientID is the client the request names; "" where the
// endpoint names none (app completion).
func (e *Engine) take(ctx context.Context, snap *policy.Snapshot, ru, clientID string, u use) (Pushed, error) {
	if !strings.HasPrefix(ru, RequestURIPrefix) || len(ru) > 256 {
		// Only our own request_uris: never fetch a URL.
		return Pushed{}, refused(invalidRequest("The request_uri is not valid."))
	}
	if u.native && clientID == "" {
		return Pushed{}, refused(invalidRequest("The client_id parameter is required with request_uri."))
	}
	p, err := e.o.Pushes.Peek(ctx, ru)
	if errors.Is(err, storage.ErrNotFound) {
		return Pushed{}, refused(invalidRequest("The request_uri is invalid, expired or already used."))
	} else if err != nil {
		return Pushed{}, err
	}
	ok := false
	for _, k := range u.kinds {
		ok = ok || p.Kind == k
	}
	if !ok {
		return Pushed{}, refused(invalidRequest("The request_uri is not valid at this endpoint."))
	}
	if clientID != "" && clientID != p.ClientID {
		return Pushed{}, refused(invalidRequest("The request_uri was not issued to this client."))
	}
	c, known := snap.Client(p.ClientID)
	switch {
	case !known:
		return Pushed{}, refused(invalidRequest("The client of this request is no longer registered."))
	case u.native && !c.Federating && !c.FirstParty:
		return Pushed{}, refused(unauthorizedClient())
	case u.browser && p.Session == "" && (p.Form.Get("redirect_uri") == "" || !contains(c.GetRedirectURIs(), p.Form.Get("redirect_uri"))):
		// A browser that signs in on our pages returns to the client's
		// redirect_uri; one that federates (p.Session) returns to the
		// app's native_callback_uri through our web callback.
		return Pushed{}, refused(invalidRequest("The request has no registered redirect_uri."))
	}
	if !u.consume {
		return p, nil
	}
	return e.consume(ctx, ru, p)
}

// consume spends a request_uri that take has checked (as p), atomically;
// whoever loses a race for it gets invalid_request.
func (e *Engine) consume(ctx context.Context, ru string, p Pushed) (Pushed, error) {
	got, err := e.o.Pushes.Consume(ctx, ru)
	if errors.Is(err, storage.ErrNotFound) {
		return Pushed{}, refused(invalidRequest("The request_uri is invalid, expired or already used."))
	} else if err != nil {
		return Pushed{}, err
	}
	if got.ClientID != p.ClientID || got.Kind != p.Kind {
		return Pushed{}, refused(invalidRequest("The request_uri is invalid, expired or already used."))
	}
	return got, nil
}

// push stores one of our own pushed requests.
func (e *Engine) push(ctx context.Context, kind PushKind, clientID string, params map[string]string, sessionID string) (string, int, error) {
	form := url.Values{"client_id": {clientID}, "response_type": {"code"}}
	for k, v := range params {
		if v != "" {
			form.Set(k, v)
		}
	}
	return e.o.Pushes.Push(ctx, Pushed{Kind: kind, ClientID: clientID, Form: form, Session: sessionID})
}

// webFallback answers redirect_to_web (FiPA-04 §5.2.2.1.1, 403): with a
// request_uri for our browser endpoint only when the first request
// carried a code_challenge and a registered redirect_uri can be fixed —
// the one given, or the client's only one (docs/decisions.md Q17). A
// sessionID ties the push to a session the browser continues (Q19).
//
// The device's DPoP key travels in the push as dpop_jkt, so the code the
// browser delivers is bound to it as a native code would be (FiPA-04
// §9.5.1).
func (e *Engine) webFallback(ctx context.Context, snap *policy.Snapshot, clientID string, req map[string]string, jkt, sessionID string) (Outcome, error) {
	out := RedirectToWeb{}
	c, ok := snap.Client(clientID)
	if !ok || req["code_challenge"] == "" {
		return out, nil
	}
	params := map[string]string{}
	for k, v := range req {
		params[k] = v
	}
	if sessionID != "" {
		// The browser federates for this session and comes back through
		// our web callback: the push only names the session.
		ru, exp, err := e.push(ctx, PushWeb, clientID, map[string]string{"scope": req["scope"]}, sessionID)
		if err != nil {
			return nil, err
		}
		out.RequestURI, out.ExpiresIn = ru, exp
		return out, nil
	}
	switch ru := req["redirect_uri"]; {
	case ru != "":
	case len(c.GetRedirectURIs()) == 1:
		params["redirect_uri"] = c.GetRedirectURIs()[0]
	default:
		return out, nil
	}
	delete(params, "native_callback_uri")
	if jkt != "" && params["dpop_jkt"] == "" {
		params["dpop_jkt"] = jkt
	}
	ru, exp, err := e.push(ctx, PushWeb, clientID, params, sessionID)
	if err != nil {
		return nil, err
	}
	out.RequestURI, out.ExpiresIn = ru, exp
	return out, nil
}

// startBrowser begins a sign-in on our browser pages for a pushed request
// (a client's PAR, or our redirect_to_web fallback). Reading the
// request_uri does not consume it, so a reload works; it is consumed when
// the code is minted. Local challenges only: the pages are ours, whatever
// the client.
func (e *Engine) startBrowser(ctx context.Context, r Request) (Outcome, error) {
	ru := r.Form.Get("request_uri")
	if r.Form.Get("client_id") == "" {
		return invalidRequest("The request is missing client_id or a valid request_uri."), nil
	}
	p, err := e.take(ctx, r.Policy, ru, r.Form.Get("client_id"), useBrowser)
	if err != nil {
		return nil, err
	}
	if p.Session != "" {
		return e.browserHop(ctx, r, p)
	}
	c, _ := r.Policy.Client(p.ClientID)
	req, rf := parseInitial(c, p.Form)
	if rf != nil {
		return *rf, nil
	}
	if req[pkceByDPoP] != "" {
		// Only a native request can bind its code to DPoP instead.
		return invalidRequest("PKCE is required: send code_challenge and code_challenge_method=S256."), nil
	}
	st := starter{snap: r.Policy, client: c, req: req, channel: ChannelBrowser, cred: true}
	s := st.session(e, "")
	s.x.Push = ru
	s.hint(req["login_hint"])
	return e.beginLocal(ctx, r.Policy, s)
}
