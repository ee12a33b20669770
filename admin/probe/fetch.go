package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/fedas/fedas/federation"
	"github.com/fedas/fedas/netguard"
)

const (
	// maxQuoted caps one downstream-chosen string in a Detail.
	maxQuoted = 128
	// maxErrText caps an error's text in a Detail; the errors are ours,
	// but they quote URLs the downstream chose.
	maxErrText = 400
	// maxURL is the longest URL put in Step.URL; a longer one is only
	// quoted, capped, in the Detail.
	maxURL = 2048
)

// client is the one HTTP client of a probe: netguard.Client (URL re-check,
// dial-time address check, no proxy, no redirects, timeouts) with every
// response body cut off after MaxBytes, so that the PAR, which par.Client
// reads itself, is bounded like the GETs that go through netguard.Get.
type client struct {
	http     *http.Client
	maxBytes int64
}

func newClient(o Options) *client {
	hc := netguard.Client(o.Net)
	max := o.maxBytes()
	hc.Transport = &boundedTransport{next: hc.Transport, max: max}
	return &client{http: hc, maxBytes: max}
}

type boundedTransport struct {
	next http.RoundTripper
	max  int64
}

func (t *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &boundedBody{rc: resp.Body, max: t.max}
	return resp, nil
}

// boundedBody returns at most max bytes, then an error matching
// netguard.ErrBodyTooLarge if the body goes on.
type boundedBody struct {
	rc   io.ReadCloser
	max  int64
	read int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.read > b.max {
		return 0, b.tooLarge()
	}
	// Ask for at most one byte beyond the limit: enough to tell.
	if room := b.max - b.read + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := b.rc.Read(p)
	b.read += int64(n)
	if b.read > b.max {
		return n - int(b.read-b.max), b.tooLarge()
	}
	return n, err
}

func (b *boundedBody) tooLarge() error {
	return fmt.Errorf("%w: more than %d bytes", netguard.ErrBodyTooLarge, b.max)
}

func (b *boundedBody) Close() error { return b.rc.Close() }

// metadata is the part of RFC 8414 §2 metadata the probe reads: the members
// federation.Metadata maps, under the same names, plus
// id_token_signing_alg_values_supported (OIDC Discovery §3) for Discover.
// A member of the wrong JSON type fails decoding, as in federation.
type metadata struct {
	Issuer                   string   `json:"issuer"`
	AuthorizationEndpoint    string   `json:"authorization_endpoint"`
	PAREndpoint              string   `json:"pushed_authorization_request_endpoint"`
	TokenEndpoint            string   `json:"token_endpoint"`
	ChallengeEndpoint        string   `json:"authorization_challenge_endpoint"`
	NativeEndpoint           string   `json:"native_authorization_endpoint"`
	JWKSURI                  string   `json:"jwks_uri"`
	TokenEndpointAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	CodeChallengeMethods     []string `json:"code_challenge_methods_supported"`
	DPoPAlgs                 []string `json:"dpop_signing_alg_values_supported"`
	IDTokenAlgs              []string `json:"id_token_signing_alg_values_supported"`
}

// native is the native endpoint and the member that named it, with
// federation's precedence: authorization_challenge_endpoint (FiPA) over
// native_authorization_endpoint (federation draft §4.1).
func (m *metadata) native() (member, value string) {
	if m.ChallengeEndpoint != "" {
		return "authorization_challenge_endpoint", m.ChallengeEndpoint
	}
	if m.NativeEndpoint != "" {
		return "native_authorization_endpoint", m.NativeEndpoint
	}
	return "", ""
}

// fetchMetadata is the metadata step: the issuer must pass
// netguard.CheckURL and be an RFC 8414 §2 identifier (no query or
// fragment); its RFC 8414 §3.1 well-known URL (federation.WellKnownURL,
// so the very document federation reads) must answer 200 with a JSON
// object (§3.2). There is no fallback to openid-configuration, because
// federation has none. The error, for Discover, wraps the cause.
func fetchMetadata(ctx context.Context, c *client, issuer string, o Options) (Step, *metadata, error) {
	s := Step{Name: StepMetadata, Status: StatusFail}
	fail := func(detail string, cause error) (Step, *metadata, error) {
		s.Detail = detail
		if cause != nil {
			return s, nil, fmt.Errorf("probe: %s: %w", detail, cause)
		}
		return s, nil, errors.New("probe: " + detail)
	}
	if issuer == "" {
		return fail("no issuer configured", nil)
	}
	if err := netguard.CheckURL(issuer, o.Net); err != nil {
		return fail("issuer refused: "+errText(err), err)
	}
	if u, err := url.Parse(issuer); err != nil || u.RawQuery != "" || u.ForceQuery {
		return fail("issuer "+quote(issuer)+" has a query; an issuer identifier has none (RFC 8414 §2)", nil)
	}
	u := federation.WellKnownURL(issuer)
	s.URL = safeURL(u)
	body, detail, err := c.getJSON(ctx, u)
	if err != nil {
		return fail(detail, err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return fail("the metadata is not a JSON object (RFC 8414 §3.2)", err)
	}
	var md metadata
	if err := json.Unmarshal(body, &md); err != nil {
		return fail("a metadata member has the wrong JSON type: "+errText(err), err)
	}
	s.Status = StatusOK
	s.Detail = fmt.Sprintf("HTTP 200, JSON, %d bytes (RFC 8414 §3.2)", len(body))
	return s, &md, nil
}

// errStatus is a non-200 answer; getJSON's detail says which.
var errStatus = errors.New("unexpected HTTP status")

// getJSON GETs a JSON document through netguard.Get: 200 only (a 3xx is
// reported, never followed), application/json or a +json type, at most
// maxBytes. On failure it returns the Detail and an error.
func (c *client) getJSON(ctx context.Context, u string) ([]byte, string, error) {
	body, resp, err := netguard.Get(ctx, c.http, u, c.maxBytes)
	switch {
	case errors.Is(err, netguard.ErrBodyTooLarge):
		return nil, fmt.Sprintf("response body exceeds %d bytes", c.maxBytes), err
	case err != nil:
		return nil, "request failed: " + errText(err), err
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		d := fmt.Sprintf("HTTP %d: redirect not followed", resp.StatusCode)
		if loc := resp.Header.Get("Location"); loc != "" {
			d += " (Location " + quote(loc) + " was not fetched)"
		}
		return nil, d, errStatus
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Sprintf("HTTP %d, want 200", resp.StatusCode), errStatus
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || !isJSON(mt) {
		return nil, "content type " + quote(ct) + ", want application/json", errors.New("unexpected content type")
	}
	return body, "", nil
}

// isJSON accepts application/json (RFC 8414 §3.2, RFC 7517 §8.5 allows
// application/jwk-set+json) and other +json types, as federation does.
func isJSON(mt string) bool {
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// quote quotes and caps a string the downstream (or an admin) chose, so
// it cannot break the Detail it sits in.
func quote(s string) string {
	if len(s) > maxQuoted {
		s = s[:maxQuoted] + "..."
	}
	return strconv.QuoteToASCII(s)
}

func quoteList(list []string) string {
	if len(list) > 8 {
		list = append(list[:8:8], "...")
	}
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// errText caps an error's text. The errors are ours (net/http, netguard,
// par) and quote what they cite, but a cited URL can be long.
func errText(err error) string {
	t := err.Error()
	if len(t) > maxErrText {
		t = t[:maxErrText] + "..."
	}
	return t
}

// safeURL is u for Step.URL when it is short and printable ASCII, else ""
// (the Detail then quotes it).
func safeURL(u string) string {
	if len(u) > maxURL {
		return ""
	}
	for i := 0; i < len(u); i++ {
		if u[i] <= 0x20 || u[i] >= 0x7f {
			return ""
		}
	}
	return u
}
