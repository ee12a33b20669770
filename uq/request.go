package uq

import (
	"encoding/json"
	"net/mail"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// User identifier types of -10 §4.1.1 (user_id_type). Other values are
// extensions; ParseRequest refuses them (invalid_request) until one is
// configured.
const (
	UserIDMSISDN = "msisdn" // E.164 number, "+" and 2–15 digits
	UserIDEmail  = "email"  // RFC 5322 §3.4.1 addr-spec
	UserIDSub    = "sub"    // the sub the client knows the user by
)

// Limits bounds what a client may ask. The -10 draft sets no limits, but
// lets the OP alter the text only where its questioning method imposes
// limits (§4.1.1) and requires an error when it cannot display the
// question (§7): fedas refuses instead of altering, so what the user
// sees, what is signed and what the client sent are one text.
type Limits struct {
	// MaxBodyBytes bounds the request body.
	MaxBodyBytes int
	// MaxQuestionChars bounds question_to_display, in Unicode code points.
	MaxQuestionChars int
	// MinStatements and MaxStatements bound len(statements_to_display).
	MinStatements, MaxStatements int
	// MaxStatementChars bounds each statement, in code points.
	MaxStatementChars int
	// MaxAMR bounds len(wished_amr); MaxValueChars bounds wished_acr and
	// each wished_amr entry.
	MaxAMR, MaxValueChars int
}

// DefaultLimits returns the defaults: a question of at most 256
// characters and 2–5 statements of at most 64 each (what a phone screen
// shows without scrolling or truncating), a 16 KiB body.
func DefaultLimits() Limits {
	return Limits{
		MaxBodyBytes:      16 << 10,
		MaxQuestionChars:  256,
		MinStatements:     2,
		MaxStatements:     5,
		MaxStatementChars: 64,
		MaxAMR:            10,
		MaxValueChars:     64,
	}
}

// Request is a validated User Questioning Request (-10 §4.1.1).
type Request struct {
	// ClientNotificationToken is the Bearer token for the push, set iff
	// the client is registered for Pushed-To-Client.
	ClientNotificationToken string `json:"client_notification_token,omitempty"`
	// UserID and UserIDType are set iff the access token is not
	// user-bound.
	UserID     string `json:"user_id,omitempty"`
	UserIDType string `json:"user_id_type,omitempty"`
	// QuestionToDisplay and StatementsToDisplay are shown exactly as sent.
	QuestionToDisplay   string   `json:"question_to_display"`
	StatementsToDisplay []string `json:"statements_to_display"`
	// WishedAMR is in priority order; may be empty.
	WishedAMR []string `json:"wished_amr,omitempty"`
	// WishedACR is required.
	WishedACR string `json:"wished_acr"`
}

// Context is what ParseRequest needs to know about the caller, from the
// access token and the client registration (not from the body).
type Context struct {
	// UserBound: the access token names a user (user_id forbidden);
	// otherwise it is a client-credentials token (user_id required).
	UserBound bool
	// Push: the client has a registered client_notification_endpoint
	// (Pushed-To-Client; -10 fixes the flow at registration, §3).
	Push bool
	// Limits; the zero value means DefaultLimits.
	Limits Limits
}

// MinNotificationTokenChars is the least length of a
// client_notification_token: 22 base64url characters carry 128 bits when
// random, the floor RFC 6749 §10.10 sets for guessable credentials. It is
// a heuristic: length is all a server can check.
const MinNotificationTokenChars = 22

// maxNotificationTokenChars bounds the token (it is sent back in a
// header).
const maxNotificationTokenChars = 512

type rawRequest struct {
	ClientNotificationToken json.RawMessage `json:"client_notification_token"`
	UserID                  json.RawMessage `json:"user_id"`
	UserIDType              json.RawMessage `json:"user_id_type"`
	QuestionToDisplay       json.RawMessage `json:"question_to_display"`
	StatementsToDisplay     json.RawMessage `json:"statements_to_display"`
	WishedAMR               json.RawMessage `json:"wished_amr"`
	WishedACR               json.RawMessage `json:"wished_acr"`
}

// ParseRequest validates the JSON body of a User Questioning Request
// (-10 §4.1.1) for a caller described by c. Every refusal is an *Error
// with code invalid_request (status 400) whose description names the
// member and the rule, never the value.
//
// Rules: the body is strict JSON (see decodeStrict); members are matched
// by exact name and unknown members are ignored (RFC 6749 §3.1 treats
// unrecognized parameters so, and -11 may add members); JSON null counts
// as absent.
//   - question_to_display: a non-empty plain-text string of at most
//     MaxQuestionChars code points;
//   - statements_to_display: MinStatements..MaxStatements distinct
//     non-empty plain-text strings of at most MaxStatementChars (distinct,
//     so the UST's statement names one choice);
//   - plain text: no control characters other than a line feed in the
//     question, no bidirectional overrides or isolates (a Trojan-Source
//     spoof of what the user reads, CVE-2021-42574), no leading or
//     trailing white space;
//   - wished_acr: required non-empty string; wished_amr: optional array of
//     at most MaxAMR non-empty strings;
//   - user_id and user_id_type: both or neither; required when
//     !c.UserBound, forbidden when c.UserBound (-10 §4.1.1); msisdn must
//     be E.164 ("+" then 2–15 digits, the first not 0), email an addr-spec
//     without display name, sub 1–255 printable ASCII;
//   - client_notification_token: required iff c.Push; RFC 6750 §2.1
//     b64token characters (it returns in an Authorization header), at
//     least MinNotificationTokenChars long.
func ParseRequest(body []byte, c Context) (*Request, error) {
	lim := c.Limits
	if lim == (Limits{}) {
		lim = DefaultLimits()
	}
	if len(body) > lim.MaxBodyBytes {
		return nil, invalid("the body is larger than %d bytes", lim.MaxBodyBytes)
	}
	var raw rawRequest
	if msg, err := decodeStrict(body, &raw); err != nil {
		return nil, invalid("%s", msg)
	}
	var r Request
	var err *Error
	str := func(name string, m json.RawMessage, dst *string) bool {
		if err != nil || !present(m) {
			return false
		}
		if json.Unmarshal(m, dst) != nil {
			err = invalid("%s must be a string", name)
			return false
		}
		return true
	}
	strs := func(name string, m json.RawMessage, dst *[]string) bool {
		if err != nil || !present(m) {
			return false
		}
		if json.Unmarshal(m, dst) != nil || *dst == nil {
			err = invalid("%s must be an array of strings", name)
			return false
		}
		return true
	}
	hasQ := str("question_to_display", raw.QuestionToDisplay, &r.QuestionToDisplay)
	hasS := strs("statements_to_display", raw.StatementsToDisplay, &r.StatementsToDisplay)
	hasACR := str("wished_acr", raw.WishedACR, &r.WishedACR)
	strs("wished_amr", raw.WishedAMR, &r.WishedAMR)
	hasUID := str("user_id", raw.UserID, &r.UserID)
	hasUIDT := str("user_id_type", raw.UserIDType, &r.UserIDType)
	hasTok := str("client_notification_token", raw.ClientNotificationToken, &r.ClientNotificationToken)
	if err != nil {
		return nil, err
	}

	switch {
	case !hasQ || r.QuestionToDisplay == "":
		return nil, invalid("question_to_display is required")
	case utf8.RuneCountInString(r.QuestionToDisplay) > lim.MaxQuestionChars:
		return nil, invalid("question_to_display is longer than %d characters", lim.MaxQuestionChars)
	}
	if why := plainText(r.QuestionToDisplay, true); why != "" {
		return nil, invalid("question_to_display %s", why)
	}

	switch n := len(r.StatementsToDisplay); {
	case !hasS:
		return nil, invalid("statements_to_display is required")
	case n < lim.MinStatements || n > lim.MaxStatements:
		return nil, invalid("statements_to_display must hold %d to %d statements", lim.MinStatements, lim.MaxStatements)
	}
	for i, s := range r.StatementsToDisplay {
		switch {
		case s == "":
			return nil, invalid("statements_to_display[%d] is empty", i)
		case utf8.RuneCountInString(s) > lim.MaxStatementChars:
			return nil, invalid("statements_to_display[%d] is longer than %d characters", i, lim.MaxStatementChars)
		case slices.Contains(r.StatementsToDisplay[:i], s):
			return nil, invalid("statements_to_display[%d] repeats an earlier statement", i)
		}
		if why := plainText(s, false); why != "" {
			return nil, invalid("statements_to_display[%d] %s", i, why)
		}
	}

	if !hasACR || r.WishedACR == "" {
		return nil, invalid("wished_acr is required")
	}
	if why := token(r.WishedACR, lim.MaxValueChars); why != "" {
		return nil, invalid("wished_acr %s", why)
	}
	if len(r.WishedAMR) > lim.MaxAMR {
		return nil, invalid("wished_amr holds more than %d values", lim.MaxAMR)
	}
	for i, a := range r.WishedAMR {
		if why := token(a, lim.MaxValueChars); why != "" {
			return nil, invalid("wished_amr[%d] %s", i, why)
		}
	}
	if len(r.WishedAMR) == 0 {
		r.WishedAMR = nil
	}

	switch {
	case hasUID != hasUIDT:
		return nil, invalid("user_id and user_id_type go together")
	case c.UserBound && hasUID:
		return nil, invalid("user_id must not be sent with a user-bound access token")
	case !c.UserBound && !hasUID:
		return nil, invalid("user_id and user_id_type are required with a client access token")
	case hasUID:
		if why := checkUserID(r.UserIDType, r.UserID); why != "" {
			return nil, invalid("%s", why)
		}
	}

	switch {
	case c.Push && !hasTok:
		return nil, invalid("client_notification_token is required for a client registered for notifications")
	case !c.Push && hasTok:
		return nil, invalid("client_notification_token must not be sent by a client without a notification endpoint")
	case hasTok:
		if why := checkNotificationToken(r.ClientNotificationToken); why != "" {
			return nil, invalid("client_notification_token %s", why)
		}
	}
	return &r, nil
}

func present(m json.RawMessage) bool { return len(m) > 0 && string(m) != "null" }

// plainText says why s is not plain text, or "".
func plainText(s string, allowNewline bool) string {
	if strings.TrimSpace(s) != s {
		return "has leading or trailing white space"
	}
	for _, r := range s {
		switch {
		case r == '\n' && allowNewline:
		case unicode.Is(unicode.Cc, r):
			return "contains a control character"
		case isBidiControl(r):
			return "contains a bidirectional control character"
		case r == utf8.RuneError:
			return "contains U+FFFD"
		}
	}
	return ""
}

// isBidiControl reports the explicit directional formatting characters
// of Unicode UAX #9 §2 (embeddings, overrides, isolates, marks excepted).
func isBidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}

// token says why an acr or amr value is not a short printable ASCII
// string, or "".
func token(s string, max int) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > max:
		return "is too long"
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return "must be printable ASCII without spaces"
		}
	}
	return ""
}

func checkUserID(typ, id string) string {
	switch typ {
	case UserIDMSISDN:
		if !isE164(id) {
			return "user_id is not an E.164 number (+ and up to 15 digits)"
		}
	case UserIDEmail:
		if len(id) > 254 {
			return "user_id is too long for an email address"
		}
		a, err := mail.ParseAddress(id)
		if err != nil || a.Name != "" || a.Address != id {
			return "user_id is not an email addr-spec (RFC 5322 section 3.4.1)"
		}
	case UserIDSub:
		if !isSub(id) {
			return "user_id is not a sub (1 to 255 printable ASCII characters)"
		}
	default:
		return "user_id_type must be msisdn, email or sub"
	}
	return ""
}

func isE164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isSub: OIDC Core §2 bounds sub at 255 ASCII characters; printable
// only, so it can be shown and logged (hashed) safely.
func isSub(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// checkNotificationToken says why t is not acceptable, or "".
func checkNotificationToken(t string) string {
	switch {
	case len(t) < MinNotificationTokenChars:
		return "is shorter than 22 characters (128 bits)"
	case len(t) > maxNotificationTokenChars:
		return "is too long"
	case !isB64Token(t):
		return "must use the RFC 6750 b64token characters"
	}
	return ""
}

// isB64Token: RFC 6750 §2.1 b64token = 1*( ALPHA / DIGIT / "-" / "." /
// "_" / "~" / "+" / "/" ) *"=".
func isB64Token(t string) bool {
	i := 0
	for ; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(t); i++ {
		if t[i] != '=' {
			return false
		}
	}
	return true
}
