package flow

import "net/url"

// devicePathParams are the presentation parameters that say how the
// user's wallet is reached from the device (the wallet-presentation
// draft: dc_api, openid4vp_flow_type, openid4vp_redirect_uri). In the
// downstream role the request was pushed by the federating AS, which
// cannot know them; the device adds them to client_id + request_uri
// (sdk.PathParams), as it would to an initial request. They only choose
// the presentation path, which the presentation step validates for the
// pushed request's client (registered openid4vp_redirect_uri, DC API
// origins, cross device allowed) when it begins; the pushed request's own
// values win.
var devicePathParams = []string{"dc_api", "openid4vp_flow_type", "openid4vp_redirect_uri"}

// withDevicePath adds the device's presentation parameters to a pushed
// request's parameters req (docs/protocol.md "Digital credentials",
// "Across federation").
func withDevicePath(req map[string]string, form url.Values) *Refusal {
	for _, k := range devicePathParams {
		v := form.Get(k)
		if v == "" || req[k] != "" {
			continue
		}
		if len(v) > paramLimits[k] {
			r := invalidRequest("The " + k + " parameter is too long.")
			return &r
		}
		req[k] = v
	}
	return nil
}
