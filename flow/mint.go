package flow

import (
	"context"
	"errors"
	"time"

	"github.com/fedas/fedas/policy"
)

var errUnknownResult = errors.New("flow: a step returned an unknown result")

// Grant is what a new code is bound to. Only mint builds one.
type Grant struct {
	ClientID            string
	Scope               string
	CodeChallenge       string
	CodeChallengeMethod string
	Nonce               string
	// RedirectURI is set for codes delivered through a browser only
	// (RFC 6749 §4.1.3); native codes have none (FiPA-04 §6).
	RedirectURI string
	Subject     string
	Username    string
	AMR         []string
	AuthTime    time.Time
	ACR         string
	// Claims are extra claims (idp, idp_sub, mapped downstream claims).
	Claims map[string]any
	// IDTokenClaims are claims for the ID token (a verified credential's
	// mapped claims: docs/protocol.md "Digital credentials").
	IDTokenClaims map[string]any
	// DPoPJKT binds the code to a key (RFC 9449 §10).
	DPoPJKT string
	// AuthorizationDetails is the granted authorization_details as
	// canonical JSON (RFC 9396 §7), "" without (flow/rar.go).
	AuthorizationDetails string
}

// CodeIssuer mints and stores an authorization code for a grant
// (implemented by the server on fosite). It MUST NOT return a code whose
// state was not stored.
type CodeIssuer interface {
	IssueCode(ctx context.Context, g Grant) (string, error)
}

// codeKey is the key a session's code is bound to: the one a federating
// AS named in its PAR (dpop_jkt, RFC 9449 §10.1: it redeems the code, the
// device cannot), else the device's own (FiPA-04 §9.5.1). Never the key of
// an intermediate app or downstream.
func codeKey(s *session) string {
	if k := s.Request["dpop_jkt"]; k != "" {
		return k
	}
	return s.DPoPJKT
}

// mint is the one place a code is minted: from the auth session, copying
// its bindings — client, PKCE challenge, the session's key, redirect_uri
// for browser-delivered codes only, user, amr, auth_time, acr.
func (e *Engine) mint(ctx context.Context, s *session) (string, error) {
	g := Grant{
		ClientID:            s.ClientID,
		Scope:               s.Request["scope"],
		CodeChallenge:       s.Request["code_challenge"],
		CodeChallengeMethod: s.Request["code_challenge_method"],
		Nonce:               s.Request["nonce"],
		Subject:             s.Subject,
		Username:            s.Username,
		AMR:                 append([]string(nil), s.AMR...),
		AuthTime:            s.AuthTime,
		ACR:                 s.x.ACR,
		Claims:              s.x.Claims,
		IDTokenClaims:       s.x.IDClaims,
		DPoPJKT:             codeKey(s),
		// RFC 9396 §7: the details the request carried, as validated.
		AuthorizationDetails: s.Request[ParamAuthorizationDetails],
	}
	if s.x.Channel == ChannelBrowser {
		g.RedirectURI = s.Request["redirect_uri"]
	}
	if g.AuthTime.IsZero() {
		g.AuthTime = e.o.Now()
	}
	if g.Subject == "" {
		return "", errors.New("flow: minting a code for a session without a user")
	}
	return e.o.Codes.IssueCode(ctx, g)
}

// complete ends an authenticated session and answers with its code: the
// session is deleted first (compare-and-swap: of two racing requests one
// wins), a browser session's pushed request is consumed, then the code is
// minted.
func (e *Engine) complete(ctx context.Context, snap *policy.Snapshot, s *session) (Outcome, error) {
	if err := e.finish(ctx, s); err != nil {
		return nil, err
	}
	if s.x.Channel == ChannelBrowser {
		if _, err := e.take(ctx, snap, s.x.Push, s.ClientID, useBrowserComplete); err != nil {
			return nil, err
		}
	}
	code, err := e.mint(ctx, s)
	if err != nil {
		return nil, err
	}
	out := Code{Code: code}
	if s.x.Channel == ChannelBrowser {
		out.RedirectURI, out.State = s.Request["redirect_uri"], s.Request["state"]
	}
	return out, nil
}
