package reach_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/fedas/fedas/reach"
)

func validDevice() reach.Device {
	return reach.Device{
		ID: reach.NewID(), User: "u1", JKT: strings.Repeat("A", 42) + "g",
		Name: "Alice’s phone", Platform: "iOS 19",
		Capabilities: []reach.Capability{reach.KindAppAuth, reach.KindQuestion, reach.KindInteraction},
		Channels: []reach.ChannelSpec{
			{Type: reach.ChannelInbox},
			{Type: reach.ChannelWebhook, URL: "https://push.example/hook"},
			{Type: reach.ChannelAPNs, Token: strings.Repeat("ab", 32)},
			{Type: reach.ChannelFCM, Token: "fcm:token-1"},
		},
	}
}

// TestDeviceValidate: the full device passes; every cap, enum and
// channel rule refuses with ErrInvalid, and the error names the field
// without echoing its value.
func TestDeviceValidate(t *testing.T) {
	require.NoError(t, validDevice().Validate())
	require.True(t, validDevice().Can(reach.KindQuestion))
	tests := []struct {
		name string
		mut  func(*reach.Device)
	}{
		{"id", func(d *reach.Device) { d.ID = "" }},
		{"user", func(d *reach.Device) { d.User = "" }},
		{"jkt short", func(d *reach.Device) { d.JKT = "abc" }},
		{"jkt alphabet", func(d *reach.Device) { d.JKT = strings.Repeat("+", 43) }},
		{"name empty", func(d *reach.Device) { d.Name = "" }},
		{"name long", func(d *reach.Device) { d.Name = strings.Repeat("é", reach.MaxNameLen+1) }},
		{"name control", func(d *reach.Device) { d.Name = "a\nb" }},
		{"name bidi override", func(d *reach.Device) { d.Name = "a\u202eb" }},
		{"name invalid utf8", func(d *reach.Device) { d.Name = "a\xffb" }},
		{"platform long", func(d *reach.Device) { d.Platform = strings.Repeat("x", reach.MaxPlatformLen+1) }},
		{"no capabilities", func(d *reach.Device) { d.Capabilities = nil }},
		{"unknown capability", func(d *reach.Device) { d.Capabilities = []reach.Capability{"payment"} }},
		{"duplicate capability", func(d *reach.Device) {
			d.Capabilities = []reach.Capability{reach.KindQuestion, reach.KindQuestion}
		}},
		{"no channels", func(d *reach.Device) { d.Channels = nil }},
		{"too many channels", func(d *reach.Device) {
			d.Channels = append(d.Channels, reach.ChannelSpec{Type: reach.ChannelWebhook, URL: "https://b.example/"})
		}},
		{"unknown channel", func(d *reach.Device) { d.Channels[0] = reach.ChannelSpec{Type: "sms"} }},
		{"two inboxes", func(d *reach.Device) { d.Channels[1] = reach.ChannelSpec{Type: reach.ChannelInbox} }},
		{"same webhook twice", func(d *reach.Device) { d.Channels[2] = d.Channels[1] }},
		{"inbox with url", func(d *reach.Device) { d.Channels[0].URL = "https://a.example/" }},
		{"webhook http", func(d *reach.Device) { d.Channels[1].URL = "http://push.example/hook" }},
		{"webhook loopback", func(d *reach.Device) { d.Channels[1].URL = "https://127.0.0.1/hook" }},
		{"webhook metadata", func(d *reach.Device) { d.Channels[1].URL = "https://169.254.169.254/" }},
		{"webhook userinfo", func(d *reach.Device) { d.Channels[1].URL = "https://a:b@push.example/" }},
		{"webhook fragment", func(d *reach.Device) { d.Channels[1].URL = "https://push.example/#x" }},
		{"webhook long", func(d *reach.Device) {
			d.Channels[1].URL = "https://push.example/" + strings.Repeat("a", reach.MaxURLLen)
		}},
		{"webhook token", func(d *reach.Device) { d.Channels[1].Token = "t" }},
		{"apns no token", func(d *reach.Device) { d.Channels[2].Token = "" }},
		{"apns url", func(d *reach.Device) { d.Channels[2].URL = "https://a.example/" }},
		{"fcm token space", func(d *reach.Device) { d.Channels[3].Token = "a b" }},
		{"fcm token long", func(d *reach.Device) { d.Channels[3].Token = strings.Repeat("a", reach.MaxPushTokenLen+1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDevice()
			tt.mut(&d)
			err := d.Validate()
			require.ErrorIs(t, err, reach.ErrInvalid)
			require.NotContains(t, err.Error(), "push.example", "no value echoed")
		})
	}
}

// TestIDs: NewID has the shape ValidID accepts and does not repeat.
func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := reach.NewID()
		require.True(t, reach.ValidID(id), id)
		require.False(t, seen[id])
		seen[id] = true
	}
	require.False(t, reach.ValidID("abc"))
	require.False(t, reach.ValidID(strings.Repeat("{", 22)))
}
