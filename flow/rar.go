package flow

import (
	"net/url"
	"strings"

	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/rar"
)

// ParamAuthorizationDetails is the RFC 9396 §2 request parameter, and the
// session request member holding its canonical JSON.
const ParamAuthorizationDetails = "authorization_details"

// parseAuthorizationDetails validates an initial request's
// authorization_details (RFC 9396 §2) against the types the client may
// request and stores their canonical JSON in req, which the code then
// binds (mint). Every refusal is 400 invalid_authorization_details
// (RFC 9396 §5) and nothing is stored. Called by parseInitial only, so it
// holds on every channel that starts a session (native, pushed, browser).
func parseAuthorizationDetails(c *policy.Client, form url.Values, req map[string]string) *Refusal {
	vs, sent := form[ParamAuthorizationDetails]
	if !sent {
		return nil
	}
	bad := func(desc string) *Refusal {
		r := refuse(statusBadRequest, rar.ErrorCode, desc)
		return &r
	}
	if len(vs) != 1 {
		return bad("Send authorization_details once.")
	}
	enc, desc := CheckAuthorizationDetails(c, vs[0])
	if desc != "" {
		return bad(desc)
	}
	req[ParamAuthorizationDetails] = enc
	return nil
}

// CheckAuthorizationDetails is the one decision on an authorization_details
// value raw for client c (RFC 9396 §2, §5): its canonical JSON, or the
// error_description of an invalid_authorization_details refusal. The PAR
// endpoint calls it too, so a pushed request is refused when pushed
// (RFC 9126 §2.1: validated as an authorization request would be).
func CheckAuthorizationDetails(c *policy.Client, raw string) (canonical, refusal string) {
	details, err := rar.Parse(raw, c.AuthorizationDetailsTypes)
	if err != nil {
		return "", "The authorization_details are not valid: " + strings.TrimPrefix(err.Error(), rar.ErrInvalid.Error()+": ") + "."
	}
	enc, err := rar.Encode(details)
	if err != nil {
		return "", "The authorization_details are not valid."
	}
	return enc, ""
}
