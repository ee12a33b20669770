package reach

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fedas/fedas/netguard"
)

// Bounds of a device registration (docs/reach.md). They keep a device
// record small (docs/redis.md "Keys") and what the app shows readable.
const (
	// MaxDevicesPerUser is how many devices one user may register; the
	// next registration gets ErrQuota (§4.1).
	MaxDevicesPerUser = 10
	// DeviceIdleTTL is the sliding idle expiry of a device (§4.1): every
	// use (TouchDevice) restarts it.
	DeviceIdleTTL = 90 * 24 * time.Hour
	// MaxNameLen and MaxPlatformLen cap the device's display name and
	// platform, in characters.
	MaxNameLen     = 64
	MaxPlatformLen = 32
	// MaxChannels caps the channels of one device.
	MaxChannels = 4
	// MaxURLLen and MaxPushTokenLen cap a webhook URL and an APNs/FCM
	// token, in bytes.
	MaxURLLen       = 512
	MaxPushTokenLen = 512
)

// Capability is what a device can do for a task (§4.1): one of the task
// kinds.
type Capability = Kind

// ChannelType is how a device is reached (§4.2).
type ChannelType string

// The channel types of §4.2: the device's own inbox (long poll / SSE), a
// signed webhook to a registered https URL, and the APNs/FCM adapters
// (off by default; push payloads are content-free wake-ups).
const (
	ChannelInbox   ChannelType = "inbox"
	ChannelWebhook ChannelType = "webhook"
	ChannelAPNs    ChannelType = "apns"
	ChannelFCM     ChannelType = "fcm"
)

// ChannelSpec is one registered channel: URL for a webhook, Token for
// APNs/FCM, neither for the inbox.
type ChannelSpec struct {
	Type  ChannelType `json:"type"`
	URL   string      `json:"url,omitempty"`
	Token string      `json:"token,omitempty"`
}

// Device is one registration of our first-party app (§4.1). It is keyed
// by JKT, the RFC 7638 thumbprint of its DPoP key (RFC 9449 §6.1 cnf.jkt):
// re-registering with the same key updates the same device.
type Device struct {
	ID           string        `json:"id"`
	User         string        `json:"user"`
	JKT          string        `json:"jkt"`
	Name         string        `json:"name"`
	Platform     string        `json:"platform"`
	Capabilities []Capability  `json:"caps"`
	Channels     []ChannelSpec `json:"channels"`
	LastSeen     time.Time     `json:"last_seen"`
	Created      time.Time     `json:"created"`
}

// Can reports whether the device registered capability c.
func (d Device) Can(c Capability) bool { return slices.Contains(d.Capabilities, c) }

// NewID returns a fresh random identifier: 128 bits from crypto/rand,
// base64url without padding (22 characters). Device, task and ref ids
// are NewIDs.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ValidID reports whether id has NewID's shape.
func ValidID(id string) bool { return len(id) == 22 && b64url(id) }

// ValidJKT reports whether jkt has the shape of an RFC 7638 SHA-256
// thumbprint in base64url (43 characters, RFC 9449 §6.1).
func ValidJKT(jkt string) bool { return len(jkt) == 43 && b64url(jkt) }

func b64url(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Validate checks a registration (§4.1). Every refusal wraps ErrInvalid
// and names the field, never its value. Webhook URLs are checked with
// netguard's syntax rules (https, no userinfo, no fragment, no internal
// literal); the dial-time check comes when the webhook is called.
func (d Device) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: device: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	switch {
	case !ValidID(d.ID):
		return bad("id")
	case d.User == "" || len(d.User) > 255:
		return bad("user")
	case !ValidJKT(d.JKT):
		return bad("jkt")
	}
	if err := checkText(d.Name, MaxNameLen); err != nil {
		return bad("name %s", err)
	}
	if err := checkText(d.Platform, MaxPlatformLen); err != nil {
		return bad("platform %s", err)
	}
	if len(d.Capabilities) == 0 {
		return bad("capabilities: none")
	}
	for i, c := range d.Capabilities {
		if !c.valid() {
			return bad("capabilities[%d]: unknown", i)
		}
		if slices.Contains(d.Capabilities[:i], c) {
			return bad("capabilities[%d]: duplicate", i)
		}
	}
	if len(d.Channels) == 0 || len(d.Channels) > MaxChannels {
		return bad("channels: between 1 and %d", MaxChannels)
	}
	for i, ch := range d.Channels {
		if err := ch.validate(); err != nil {
			return bad("channels[%d]: %s", i, err)
		}
		for _, o := range d.Channels[:i] {
			if o.Type == ch.Type && (ch.Type == ChannelInbox || o == ch) {
				return bad("channels[%d]: duplicate", i)
			}
		}
	}
	return nil
}

func (c ChannelSpec) validate() error {
	switch c.Type {
	case ChannelInbox:
		if c.URL != "" || c.Token != "" {
			return fmt.Errorf("inbox takes no url or token")
		}
	case ChannelWebhook:
		if c.Token != "" {
			return fmt.Errorf("webhook takes no token")
		}
		if c.URL == "" || len(c.URL) > MaxURLLen {
			return fmt.Errorf("url required, at most %d bytes", MaxURLLen)
		}
		if err := netguard.CheckURL(c.URL, netguard.Options{}); err != nil {
			return fmt.Errorf("url refused (https, public host, no userinfo or fragment)")
		}
	case ChannelAPNs, ChannelFCM:
		if c.URL != "" {
			return fmt.Errorf("%s takes no url", c.Type)
		}
		if c.Token == "" || len(c.Token) > MaxPushTokenLen || !printableASCII(c.Token) {
			return fmt.Errorf("token required, printable ASCII, at most %d bytes", MaxPushTokenLen)
		}
	default:
		return fmt.Errorf("type unknown")
	}
	return nil
}

// checkText admits a non-empty display string of at most max characters
// of valid UTF-8 without control or format characters (no bidi overrides
// that could make the app show another name than registered).
func checkText(s string, max int) error {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return fmt.Errorf("required, UTF-8, at most %d characters", max)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("control or format character")
		}
	}
	return nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
