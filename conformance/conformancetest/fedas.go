package conformancetest

import (
	"net/url"
	"time"

	"github.com/fedas/fedas/config"
)

// FedasConfig edits the demo configuration (servertest.Options.Configure)
// for every fipa check: demo-partner made first-party (a confidential
// client at the native endpoint), "third-party" (not first-party),
// "fp-other" (a second first-party public client), and our app "bank"
// for demo-app's and demo-partner's native_callback_uri, whose unclaimed
// deep link falls back to the browser (redirect_to_web). demo-app gets
// one browser redirect URI, so that redirect_to_web carries a request_uri
// (docs/decisions.md Q17).
func FedasConfig(c *config.Config) {
	for i := range c.Clients {
		switch c.Clients[i].ID {
		case "demo-partner":
			c.Clients[i].FirstParty = true
			c.Clients[i].NativeCallbackURIs = []string{PartnerCallback}
		case "demo-app":
			c.Clients[i].RedirectURIs = []string{"https://app.example/web-cb"}
		}
	}
	c.Clients = append(c.Clients,
		config.Client{ID: ThirdParty, TokenEndpointAuthMethod: "none", Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code"}},
		config.Client{ID: OtherClient, FirstParty: true, TokenEndpointAuthMethod: "none", Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code"}},
		config.Client{ID: "bank-app", FirstParty: true, TokenEndpointAuthMethod: "none", Scopes: []string{"openid"}, GrantTypes: []string{"authorization_code", "refresh_token"}})
	c.Apps = append(c.Apps, config.App{ID: "bank", ClientID: "bank-app", DeepLink: "https://bank.example/app", Clients: []string{"demo-app", "demo-partner"}})
}

// The clients, callbacks and lifetime of FedasConfig, as the kit's flags
// name them.
const (
	ThirdParty  = "third-party"
	OtherClient = "fp-other"
	// AppCallback and PartnerCallback are demo-app's and demo-partner's
	// native_callback_uri: sent as --web-param, they lead to
	// redirect_to_web.
	AppCallback     = "https://app.example/cb"
	PartnerCallback = "https://partner.example/app-cb"
	// SessionTTL is the demo configuration's lifetimes.auth_session.
	SessionTTL = 10 * time.Minute
)

// WebParams is --web-param for a client's callback.
func WebParams(callback string) url.Values {
	return url.Values{"native_callback_uri": {callback}}
}
