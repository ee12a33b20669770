package server

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/ory/fosite"

	"github.com/fedas/fedas/flow"
	"github.com/fedas/fedas/policy"
	"github.com/fedas/fedas/rar"
)

// extraAuthorizationDetails is the fosite session member holding a
// grant's authorization_details (RFC 9396 §7) as canonical JSON text:
// a string, so the stored session gives back the exact bytes.
const extraAuthorizationDetails = "authorization_details"

// grantedDetails returns a grant's authorization_details as the JSON
// array the token response (RFC 9396 §7) and introspection (§9.1)
// carry; false when the grant has none.
func grantedDetails(sess *fosite.DefaultSession) (json.RawMessage, bool) {
	ad, _ := sess.Extra[extraAuthorizationDetails].(string)
	if ad == "" || !json.Valid([]byte(ad)) {
		return nil, false
	}
	return json.RawMessage(ad), true
}

// checkPushedDetails refuses a pushed request whose authorization_details
// the flow would refuse (flow.CheckAuthorizationDetails, the one
// decision), when it is pushed rather than when its request_uri is used:
// 400 invalid_authorization_details (RFC 9396 §5) and nothing stored.
func checkPushedDetails(client fosite.Client, form url.Values) error {
	vs, sent := form[flow.ParamAuthorizationDetails]
	if !sent {
		return nil
	}
	pc, ok := client.(*policy.Client)
	if !ok {
		return fosite.ErrServerError.WithDebug("unexpected client type")
	}
	if len(vs) != 1 {
		return newError(http.StatusBadRequest, rar.ErrorCode, "Send authorization_details once.")
	}
	if _, desc := flow.CheckAuthorizationDetails(pc, vs[0]); desc != "" {
		return newError(http.StatusBadRequest, rar.ErrorCode, desc)
	}
	return nil
}
