package uq

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// ScopeQuestion is the scope a client's access token needs for both
// endpoints; scopes_supported must list it (-10 §3).
const ScopeQuestion = "question"

// DiscoveryMetadata returns the OP metadata members of -10 §3, to merge
// into the discovery document: user_questioning_request_endpoint,
// user_questioning_polling_endpoint, scopes_supported (scopes plus
// "question", order kept, duplicates dropped), amr_list and acr_list.
// Both URLs must be absolute https without fragment (TLS is a MUST;
// bitbucket openid/mobile #194), http being admitted only for a loopback
// host (development and tests). amr_list and acr_list are emitted as
// given (empty arrays when nil).
func DiscoveryMetadata(requestURL, pollingURL string, scopes, amr, acr []string) (map[string]any, error) {
	for _, u := range []string{requestURL, pollingURL} {
		if err := checkEndpoint(u); err != nil {
			return nil, err
		}
	}
	sc := make([]string, 0, len(scopes)+1)
	for _, s := range append(slices.Clone(scopes), ScopeQuestion) {
		if s != "" && !slices.Contains(sc, s) {
			sc = append(sc, s)
		}
	}
	orEmpty := func(v []string) []string {
		if v == nil {
			return []string{}
		}
		return slices.Clone(v)
	}
	return map[string]any{
		"user_questioning_request_endpoint": requestURL,
		"user_questioning_polling_endpoint": pollingURL,
		"scopes_supported":                  sc,
		"amr_list":                          orEmpty(amr),
		"acr_list":                          orEmpty(acr),
	}, nil
}

func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return fmt.Errorf("uq: endpoint %q is not an absolute URL", raw)
	case strings.Contains(raw, "#") || u.User != nil:
		return fmt.Errorf("uq: endpoint %q must have no fragment or userinfo", raw)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return nil
	}
	return errors.New("uq: endpoint " + fmt.Sprintf("%q", raw) + " must be https")
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
