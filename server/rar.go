package server

import (
	"encoding/json"

	"github.com/ory/fosite"
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
