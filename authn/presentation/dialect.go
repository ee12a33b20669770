package presentation

import "github.com/fedas/fedas/config"

// dialect is one wire vocabulary of the presentation challenge
// (docs/protocol.md "Digital credentials", "Dialects"). The step decides
// in canonical terms; a dialect only names the members.
type dialect struct {
	name string
	// typeMember carries typeValue in the challenge (omitted when empty).
	typeMember, typeValue string
	// requestMember carries the presentation request: a wallet URL, the
	// DC API request text, or (requestObject) the openid4vp_request object.
	requestMember string
	requestObject bool
	// codeMember is the follow-up member with the verifier's one-time
	// code (same-device flows); redirectParam the query parameter that
	// carries it back to the client's openid4vp_redirect_uri.
	codeMember, redirectParam string
	// responseMember is the follow-up member with a directly posted
	// response (OpenID4VCI Interactive Authorization); empty: vp_token or
	// response (the DC API).
	responseMember string
}

// InteractionType is the OpenID4VCI 1.1 Interactive Authorization
// interaction of a presentation.
const InteractionType = "urn:openid:dcp:ia:openid4vp_presentation"

var dialects = map[string]dialect{
	// The wallet-presentation draft's names (the default).
	config.DialectWallet: {name: config.DialectWallet, typeMember: "type", typeValue: "digital_credentials",
		requestMember: "credentials_request", codeMember: "response_code", redirectParam: "response_code"},
	// The federation draft -00 appendix "Usage with Digital Credentials".
	config.DialectDraft00: {name: config.DialectDraft00, typeMember: "type", typeValue: "digital_credentials_required",
		requestMember: "request", codeMember: "presentation_id", redirectParam: "presentation_id"},
	// Presentation during issuance (OpenID4VCI): the wallet is the client
	// and the response_uri hands it the session value directly.
	config.DialectPDI: {name: config.DialectPDI, requestMember: "presentation", codeMember: "presentation_during_issuance_session"},
	// OpenID4VCI 1.1 Interactive Authorization.
	config.DialectIA: {name: config.DialectIA, typeMember: "interaction_type_required", typeValue: InteractionType,
		requestMember: "openid4vp_request", requestObject: true, responseMember: "openid4vp_response"},
}

// dialectFor is the client's dialect; a request that lists
// interaction_types_supported speaks Interactive Authorization.
func dialectFor(dc *config.ClientDC, req map[string]string) dialect {
	if req["interaction_types_supported"] != "" {
		return dialects[config.DialectIA]
	}
	if dc != nil {
		if d, ok := dialects[dc.Dialect]; ok {
			return d
		}
	}
	return dialects[config.DialectWallet]
}
