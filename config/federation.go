package config

import (
	"fmt"
	"net/url"
	"regexp"
	"time"
)

var promptKey = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,31}$`)

var routeID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// reservedKeys cannot be prompt keys: they are protocol parameters.
var reservedKeys = map[string]bool{"auth_session": true, "client_id": true, "response_type": true, "scope": true, "state": true, "nonce": true, "code_challenge": true, "code_challenge_method": true, "request_uri": true, "username": true, "password": true, "otp": true}

// validateFederation checks downstreams, prompts and routes
// (federation draft §4.3; docs/decisions.md "Metadata … only from its
// configured issuer").
func (c *Config) validateFederation() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	ids := map[string]int{}
	issuers := map[string]int{}
	for i, d := range c.Downstreams {
		p := fmt.Sprintf("downstreams[%d]", i)
		if !promptKey.MatchString(d.ID) {
			add("%s.id: %q must be a short identifier", p, d.ID)
		} else if j, dup := ids[d.ID]; dup {
			add("%s.id: %q duplicates downstreams[%d]", p, d.ID, j)
		} else {
			ids[d.ID] = i
		}
		if d.Issuer == "" {
			add("%s.issuer: required", p)
		} else if err := c.CheckURL(d.Issuer); err != nil {
			add("%s.issuer: %v", p, err)
		} else if d.Issuer == c.Issuer {
			add("%s.issuer: must not be our own issuer", p)
		} else if j, dup := issuers[d.Issuer]; dup {
			add("%s.issuer: %q duplicates downstreams[%d]", p, d.Issuer, j)
		} else {
			issuers[d.Issuer] = i
		}
		if d.Logo != "" {
			if err := c.CheckURL(d.Logo); err != nil {
				add("%s.logo: %v", p, err)
			}
		}
		if d.ClientID == "" {
			add("%s.client_id: required", p)
		}
		switch d.Auth.Method {
		case "private_key_jwt":
			if d.Auth.Key == "" {
				add("%s.auth: private_key_jwt needs key, key_env or key_file", p)
			}
		case "client_secret_basic":
			if d.Auth.Secret == "" {
				add("%s.auth: client_secret_basic needs secret_env or secret_file", p)
			}
		default:
			add("%s.auth.method: %q is not private_key_jwt or client_secret_basic", p, d.Auth.Method)
		}
		if d.Timeout < 0 || d.Timeout > time.Minute {
			add("%s.timeout: must be between 0 and 1m", p)
		}
		for _, a := range d.IDTokenAlgs {
			if !assertionAlgs[a] && a != "RS256" {
				add("%s.id_token_algs: %q is not allowed", p, a)
			}
		}
	}
	optionValues := map[string]map[string]bool{}
	inputs := map[string]bool{}
	if pr := c.Prompt; pr != nil {
		if len(pr.Options) == 0 && len(pr.Inputs) == 0 {
			add("prompt: needs options or inputs")
		}
		if pr.Logo != "" {
			if err := c.CheckURL(pr.Logo); err != nil {
				add("prompt.logo: %v", err)
			}
		}
		for i, o := range pr.Options {
			p := fmt.Sprintf("prompt.options[%d]", i)
			if !promptKey.MatchString(o.Key) || reservedKeys[o.Key] {
				add("%s.key: %q is not a usable parameter name", p, o.Key)
			}
			if optionValues[o.Key] != nil || inputs[o.Key] {
				add("%s.key: %q is used twice", p, o.Key)
			}
			vals := map[string]bool{}
			for j, v := range o.Values {
				if v.Value == "" || v.Name == "" {
					add("%s.values[%d]: value and name are required", p, j)
				}
				if vals[v.Value] {
					add("%s.values[%d]: %q is listed twice", p, j, v.Value)
				}
				vals[v.Value] = true
			}
			if len(o.Values) == 0 {
				add("%s.values: required", p)
			}
			optionValues[o.Key] = vals
		}
		for i, in := range pr.Inputs {
			p := fmt.Sprintf("prompt.inputs[%d]", i)
			if in.Key != "email" && in.Key != "phone" {
				// ZFed-ED §5.2: free-text inputs are closed to email and
				// phone, and never collect credentials.
				add("%s.key: %q: only email and phone inputs are allowed", p, in.Key)
			}
			if inputs[in.Key] || optionValues[in.Key] != nil {
				add("%s.key: %q is used twice", p, in.Key)
			}
			inputs[in.Key] = true
		}
	}
	clients := map[string]bool{}
	firstParty := map[string]bool{}
	for i, cl := range c.Clients {
		clients[cl.ID] = true
		firstParty[cl.ID] = cl.FirstParty
		if cl.Federating && len(cl.RedirectURIs) == 0 {
			// Its web callback (docs/decisions.md Q7); fosite also needs a
			// redirect_uri to take an openid PAR.
			add("clients[%d]: a federating client needs its web callback in redirect_uris", i)
		}
	}
	apps := map[string]bool{}
	for i, a := range c.Apps {
		p := fmt.Sprintf("apps[%d]", i)
		if !promptKey.MatchString(a.ID) || apps[a.ID] {
			add("%s.id: %q must be a unique short identifier", p, a.ID)
		}
		apps[a.ID] = true
		if !clients[a.ClientID] {
			add("%s.client_id: %q is not a registered client", p, a.ClientID)
		} else if !firstParty[a.ClientID] {
			// The app signs its own user in through the native endpoint.
			add("%s.client_id: %q must be a first_party client", p, a.ClientID)
		}
		if u, err := url.Parse(a.DeepLink); err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			add("%s.deep_link: %q must be an https URL without query, fragment or user info", p, a.DeepLink)
		}
		for _, id := range a.Clients {
			if !clients[id] {
				add("%s.clients: %q is not a registered client", p, id)
			}
		}
	}
	for i, u := range c.Users {
		for _, a := range u.Apps {
			if !apps[a] {
				add("users[%d].apps: %q is not a configured app", i, a)
			}
		}
	}
	target := func(p, ds string, local bool, app string) {
		n := 0
		for _, set := range []bool{local, ds != "", app != ""} {
			if set {
				n++
			}
		}
		switch {
		case n > 1:
			add("%s: set only one of downstream, local, app", p)
		case n == 0:
			add("%s: set downstream, app or local: true", p)
		case app != "" && !apps[app]:
			add("%s.app: %q is not a configured app", p, app)
		case ds != "":
			if _, ok := ids[ds]; !ok {
				add("%s.downstream: %q is not a configured downstream", p, ds)
			}
		}
	}
	routeIDs := map[string]int{}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		if r.ID != "" {
			if !routeID.MatchString(r.ID) {
				add("%s.id: %q must be a short identifier (letters, digits, - and _)", p, r.ID)
			} else if j, dup := routeIDs[r.ID]; dup {
				add("%s.id: %q duplicates routes[%d]", p, r.ID, j)
			} else {
				routeIDs[r.ID] = i
			}
		}
		target(p, r.Downstream, r.Local, r.App)
		if len(r.EmailDomains) > 0 && !inputs["email"] {
			add("%s.email_domains: the prompt has no email input", p)
		}
		if o := r.Option; o != nil {
			if vals, ok := optionValues[o.Key]; !ok {
				add("%s.option.key: %q is not a prompt option", p, o.Key)
			} else if !vals[o.Value] {
				add("%s.option.value: %q is not a value of option %q", p, o.Value, o.Key)
			}
		}
		for _, id := range r.Clients {
			if !clients[id] {
				add("%s.clients: %q is not a registered client", p, id)
			}
		}
		if len(r.EmailDomains) == 0 && r.Option == nil && len(r.Clients) == 0 {
			add("%s: needs at least one condition (email_domains, option, clients)", p)
		}
	}
	switch c.DefaultRoute {
	case "", "local", "deny":
	default:
		if _, ok := ids[c.DefaultRoute]; !ok {
			add("default_route: %q is not local, deny or a configured downstream", c.DefaultRoute)
		}
	}
	return errs
}
