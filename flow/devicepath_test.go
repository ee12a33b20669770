package flow

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWithDevicePath: in the downstream role the device's presentation
// parameters fill only what the pushed request lacks (the pushed values
// win), only the three path parameters are taken, and each keeps its
// length bound.
func TestWithDevicePath(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pushed map[string]string
		form   url.Values
		want   map[string]string
		refuse bool
	}{
		{"adds", map[string]string{"scope": "openid"}, url.Values{"openid4vp_flow_type": {"cross_device"}, "dc_api": {"false"}},
			map[string]string{"scope": "openid", "openid4vp_flow_type": "cross_device", "dc_api": "false"}, false},
		{"pushed wins", map[string]string{"openid4vp_flow_type": "same_device"}, url.Values{"openid4vp_flow_type": {"cross_device"}},
			map[string]string{"openid4vp_flow_type": "same_device"}, false},
		{"nothing else", map[string]string{}, url.Values{"scope": {"openid admin"}, "login_hint": {"wallet"}, "acr_values": {"x"}, "redirect_uri": {"https://x"}},
			map[string]string{}, false},
		{"too long", map[string]string{}, url.Values{"openid4vp_redirect_uri": {"https://a.example/" + strings.Repeat("a", 2048)}}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rf := withDevicePath(tc.pushed, tc.form)
			if tc.refuse {
				require.NotNil(t, rf)
				require.Equal(t, "invalid_request", rf.Code)
				return
			}
			require.Nil(t, rf)
			require.Equal(t, tc.want, tc.pushed)
		})
	}
}
