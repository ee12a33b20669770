package server

import (
	"context"
	"encoding/json"
	"net/url"
)

// GetEnforcePKCEForPublicClients overrides fosite's setting for one token
// request: a code minted without a PKCE challenge but bound to a DPoP key
// is redeemed without a code_verifier. Such a code exists only where the
// flow allowed it — a presentation-during-issuance request, whose texts
// forbid PKCE, is accepted only with a DPoP proof (flow/request.go
// pkceByDPoP; docs/protocol.md "Presentation during issuance") — and the
// token endpoint then redeems it only with a proof of that key (token.go;
// RFC 9449 §10: a DPoP-bound code is as safe from interception as PKCE).
// Every other code of a public client still needs PKCE (RFC 9700 §2.1.1).
// The code is the one this request's memo read (fositestore.go codeMemo);
// without a memo (PAR, the authorization endpoint) fosite's value holds.
func (c *fositeConfig) GetEnforcePKCEForPublicClients(ctx context.Context) bool {
	enforce := c.Config.GetEnforcePKCEForPublicClients(ctx)
	m := memoOf(ctx)
	if !enforce || m == nil || m.sig == "" || m.err != nil {
		return enforce
	}
	if form, err := url.ParseQuery(m.rec.Form); err != nil || form.Get("code_challenge") != "" {
		return enforce
	}
	var sess struct {
		Extra struct {
			DPoPJKT string `json:"dpop_jkt"`
		} `json:"extra"`
	}
	if json.Unmarshal(m.rec.Session, &sess) != nil || sess.Extra.DPoPJKT == "" {
		return enforce
	}
	return false
}
