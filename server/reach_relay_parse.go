package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fedas/fedas/internal/jsonexact"
)

// Bounds of a relayed interaction (docs/reach.md "Interaction relay").
const (
	// relayMaxURL caps the url, in bytes (what the app shows must stay
	// readable; reach.MaxURLLen is the same bound for webhooks).
	relayMaxURL = 512
	// relayMinCode and relayMaxCode bound the code in Crockford base32
	// symbols (AAuth: at least 40 bits, i.e. 8 symbols); relayMaxCodeLen
	// bounds it with its hyphens.
	relayMinCode    = 8
	relayMaxCode    = 32
	relayMaxCodeLen = 48
	// relayMaxDescription caps the description, in characters.
	relayMaxDescription = 256
	// relayMinWait and relayMaxWait bound max_wait (seconds): at least
	// the config's smallest task_ttl, at most a task's lifetime (RFC 10027
	// §6.1.4: short-lived cross-device flows).
	relayMinWait = 10 * time.Second
	relayMaxWait = 10 * time.Minute
	// relayMaxMembers caps the members of the request object (unknown
	// ones are ignored, not unbounded).
	relayMaxMembers = 32
	// relayMaxCapabilities caps the capabilities array.
	relayMaxCapabilities = 16
)

// relayRequest is a POST /reach/interactions body, checked (AAuth
// interaction endpoint: type, url, code, description, max_wait, and the
// agent's capabilities).
type relayRequest struct {
	URL         string
	Code        string
	Description string
	MaxWait     time.Duration
	// CanInteract: the caller declared the interaction capability, so it
	// can drive the interaction itself (424 rather than user_unreachable).
	CanInteract bool
}

// errRelayBody is a refused body; its message names the member, never
// its value.
type errRelayBody struct{ msg string }

func (e errRelayBody) Error() string { return e.msg }

func badRelay(format string, a ...any) error { return errRelayBody{fmt.Sprintf(format, a...)} }

// parseRelayRequest reads a relay request: one JSON object (RFC 8259) of
// valid UTF-8, no member twice at any depth (parsers disagree on which
// duplicate counts), at most relayMaxMembers members. Members this server
// does not know are ignored (AAuth's request bodies are extensible, and
// RFC 6749 §3.1 ignores unknown parameters); the known ones must have
// their JSON type. max_wait defaults to def.
func parseRelayRequest(body []byte, def time.Duration, loopbackHTTP bool, origins []string) (relayRequest, error) {
	var out relayRequest
	if !utf8.Valid(body) {
		return out, badRelay("The body is not valid UTF-8.")
	}
	if err := noDuplicates(body); err != nil {
		return out, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return out, badRelay("The body must be a JSON object.")
	}
	if len(m) > relayMaxMembers {
		return out, badRelay("The body has more than %d members.", relayMaxMembers)
	}
	str := func(name string, required bool) (string, error) {
		raw, ok := m[name]
		if !ok {
			if required {
				return "", badRelay("The %s member is required.", name)
			}
			return "", nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", badRelay("The %s member must be a string.", name)
		}
		return s, nil
	}
	typ, err := str("type", true)
	if err != nil {
		return out, err
	}
	switch typ {
	case "interaction":
	case "question":
		return out, badRelay("Questions are not relayed here: use the User Questioning API.")
	default:
		return out, badRelay("The type must be interaction.")
	}
	if out.URL, err = str("url", true); err != nil {
		return out, err
	}
	if err := checkRelayURL(out.URL, origins, loopbackHTTP); err != nil {
		return out, err
	}
	if out.Code, err = str("code", true); err != nil {
		return out, err
	}
	if !validRelayCode(out.Code) {
		return out, badRelay("The code must be %d to %d Crockford base32 symbols (hyphens between groups allowed).", relayMinCode, relayMaxCode)
	}
	if out.Description, err = str("description", false); err != nil {
		return out, err
	}
	if !plainText(out.Description, relayMaxDescription) {
		return out, badRelay("The description must be plain text of at most %d characters, without control or format characters.", relayMaxDescription)
	}
	out.MaxWait = def
	if raw, ok := m["max_wait"]; ok {
		n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
		if err != nil {
			return out, badRelay("The max_wait member must be a whole number of seconds.")
		}
		out.MaxWait = time.Duration(n) * time.Second
		if n < int64(relayMinWait/time.Second) || n > int64(relayMaxWait/time.Second) {
			return out, badRelay("The max_wait member must be between %d and %d seconds.", int(relayMinWait/time.Second), int(relayMaxWait/time.Second))
		}
	}
	if raw, ok := m["capabilities"]; ok {
		var caps []string
		if err := json.Unmarshal(raw, &caps); err != nil {
			return out, badRelay("The capabilities member must be an array of strings.")
		}
		if len(caps) > relayMaxCapabilities {
			return out, badRelay("The capabilities member has more than %d entries.", relayMaxCapabilities)
		}
		for _, c := range caps {
			out.CanInteract = out.CanInteract || c == "interaction"
		}
	}
	return out, nil
}

// noDuplicates refuses a body that is not one strict JSON object
// (jsonexact.StrictObject: valid UTF-8, no member twice, at most 8 deep,
// nothing after it).
func noDuplicates(body []byte) error {
	if msg := jsonexact.StrictObject(body, 8); msg != "" {
		return badRelay("%s.", strings.ToUpper(msg[:1])+msg[1:])
	}
	return nil
}

// checkRelayURL admits the interaction url AAuth describes (https, no
// query, no fragment) that the client may relay: no userinfo, printable
// ASCII only (an internationalised host must come as its A-label, which
// is then compared as is), a host without percent-encoding, and its
// origin (scheme, lower-case host, port without the default) exactly one
// of the client's interaction_origins, so that our app never shows a
// URL of an origin the client was not registered for (a phishing relay).
// http only on a loopback host with dev.allow_loopback_http.
func checkRelayURL(raw string, origins []string, loopbackHTTP bool) error {
	if len(raw) > relayMaxURL {
		return badRelay("The url is longer than %d bytes.", relayMaxURL)
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] < 0x21 || raw[i] > 0x7e || raw[i] == '\\' {
			return badRelay("The url must be printable ASCII (an internationalised host as its A-label).")
		}
	}
	if strings.ContainsAny(raw, "?#") {
		return badRelay("The url must have no query and no fragment.")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Host == "" {
		return badRelay("The url must be an absolute https URL.")
	}
	if u.User != nil || strings.Contains(u.Host, "@") {
		return badRelay("The url must carry no user info.")
	}
	if strings.Contains(u.Host, "%") {
		return badRelay("The url's host must not be percent-encoded.")
	}
	host := strings.ToLower(u.Hostname())
	switch {
	case strings.HasPrefix(raw, "https://"):
	case strings.HasPrefix(raw, "http://") && loopbackHTTP && isLoopbackHost(host):
	default:
		return badRelay("The url must use https.")
	}
	origin, ok := relayOrigin(u.Scheme, host, u.Port())
	if !ok {
		return badRelay("The url's port is not valid.")
	}
	for _, o := range origins {
		ou, err := url.Parse(o)
		if err != nil {
			continue
		}
		if want, ok := relayOrigin(ou.Scheme, strings.ToLower(ou.Hostname()), ou.Port()); ok && want == origin {
			return nil
		}
	}
	return badRelay("The url's origin is not one this client may relay (its interaction_origins).")
}

// relayOrigin is the RFC 6454 §4 origin of scheme, host and port in one
// spelling: the default port omitted, a port a decimal in 1–65535.
func relayOrigin(scheme, host, port string) (string, bool) {
	if host == "" {
		return "", false
	}
	def := map[string]string{"https": "443", "http": "80"}[scheme]
	if def == "" {
		return "", false
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return "", false
		}
	}
	hp := host
	if strings.Contains(host, ":") {
		hp = "[" + host + "]"
	}
	if port != "" && port != def {
		hp = net.JoinHostPort(host, port)
	}
	return scheme + "://" + hp, true
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// validRelayCode: AAuth's interaction code is Crockford base32 (case
// insensitive) of at least 40 bits; we accept relayMinCode–relayMaxCode
// symbols of its alphabet, with single hyphens between groups.
func validRelayCode(code string) bool {
	if len(code) > relayMaxCodeLen || strings.HasPrefix(code, "-") || strings.HasSuffix(code, "-") || strings.Contains(code, "--") {
		return false
	}
	n := 0
	for _, r := range strings.ToUpper(code) {
		switch {
		case r == '-':
			continue
		case !strings.ContainsRune("0123456789ABCDEFGHJKMNPQRSTVWXYZ", r):
			return false
		}
		n++
	}
	return n >= relayMinCode && n <= relayMaxCode
}

// plainText admits text of at most max characters without control,
// format (bidi overrides), private-use, surrogate or line/paragraph
// separator characters: what the app shows is what the client sent.
func plainText(s string, max int) bool {
	if utf8.RuneCountInString(s) > max {
		return false
	}
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Co, unicode.Cs, unicode.Zl, unicode.Zp) {
			return false
		}
	}
	return true
}
