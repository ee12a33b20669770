// Package netguard is the server-side request forgery (SSRF) guard for URLs
// that an operator enters through the admin surface and for every outbound
// fetch that surface makes.
//
// The threat (OWASP "Server Side Request Forgery Prevention Cheat Sheet"): a
// server that fetches a URL chosen by someone else can be steered at
// destinations only the server can reach — its own loopback services, the
// private network behind it, or the cloud instance-metadata endpoint at
// 169.254.169.254 that hands out credentials. OWASP's advice for the case
// where the destination cannot be an allow-list is: allow only the schemes you
// need, refuse credentials in URLs, refuse every address that is not globally
// reachable, do not follow redirects, and validate the address that is
// actually connected to rather than the name that was typed.
//
// That last point is why the check is done twice:
//
//   - CheckURL runs when a URL is entered or before it is used. It is purely
//     syntactic (no DNS): scheme, shape, userinfo, fragment, forbidden names
//     and IP literals. It gives the operator an immediate, precise error and
//     keeps obviously bad values out of configuration.
//
//   - Dialer (and Control) run at connection time, after DNS resolution. A
//     name that looked harmless when CheckURL ran may resolve — today, or
//     only after its TTL expires ("DNS rebinding") — to 127.0.0.1 or
//     169.254.169.254. The dialer resolves the name itself, refuses if any
//     answer is forbidden, and then connects to the vetted IP literal, so the
//     address checked is exactly the address dialled (no second lookup in
//     between). Control repeats the check on the socket address as a last
//     line of defence.
//
// Client bundles both: every request URL is re-checked with CheckURL, every
// connection goes through Dialer, redirects are never followed (a redirect is
// just another URL chosen by the remote side), proxies from the environment
// are ignored (a proxy would make the dial-time check see the proxy, not the
// target), and every request is bounded in time. Get additionally bounds the
// response body.
//
// "Forbidden" follows the IANA special-purpose address registries (RFC 6890
// and its updates): anything marked not globally reachable, plus the
// IPv4-mapped (RFC 4291 §2.5.5.2), NAT64 (RFC 6052, RFC 8215) and 6to4
// (RFC 3056) IPv6 spellings of such IPv4 addresses.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultTimeout bounds a whole request (dial, TLS, headers, body) when
// Options.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// ErrForbidden is matched (errors.Is) by every refusal this package makes,
// whether from CheckURL, the dialer, Control or a Client request.
var ErrForbidden = errors.New("netguard: forbidden destination")

// ErrBodyTooLarge is returned by Get when the response body exceeds maxBytes.
var ErrBodyTooLarge = errors.New("netguard: response body exceeds limit")

// Error describes one refusal. It matches ErrForbidden with errors.Is.
type Error struct {
	// URL is the URL refused by CheckURL, or, for a dial-time refusal, the
	// "host:port" being dialled.
	URL string
	// Addr is, for dial-time refusals, the resolved IP address that was
	// refused; empty when the refusal did not concern a resolved address.
	Addr string
	// Reason says in plain words what rule was broken.
	Reason string
}

func (e *Error) Error() string {
	if e.Addr != "" {
		return fmt.Sprintf("netguard: refused %q (%s): %s", e.URL, e.Addr, e.Reason)
	}
	return fmt.Sprintf("netguard: refused %q: %s", e.URL, e.Reason)
}

// Unwrap makes errors.Is(err, ErrForbidden) hold.
func (e *Error) Unwrap() error { return ErrForbidden }

// Options configures the guard. The zero value is the strict production
// setting: https only, no loopback, DefaultTimeout, system DNS.
type Options struct {
	// AllowLoopback admits loopback destinations (127.0.0.0/8, ::1, and the
	// names "localhost" / "*.localhost", which RFC 6761 §6.3 reserves for
	// loopback) — and only for those, plain http as well as https. For
	// development and tests; never in production. It does not relax any
	// other rule: private, link-local, metadata etc. stay refused.
	AllowLoopback bool

	// Timeout bounds a Client request end to end, and the dialer's
	// resolve-and-connect. Zero means DefaultTimeout.
	Timeout time.Duration

	// LookupIP resolves a host name at dial time. Nil means the system
	// resolver (net.DefaultResolver). Tests inject a fake to simulate a name
	// that resolves, or rebinds, to a forbidden address.
	LookupIP func(ctx context.Context, host string) ([]net.IP, error)
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

func (o Options) lookup(ctx context.Context, host string) ([]net.IP, error) {
	if o.LookupIP != nil {
		return o.LookupIP(ctx, host)
	}
	return net.DefaultResolver.LookupIP(ctx, "ip", host)
}

// CheckURL reports whether raw is an acceptable outbound URL. It does not
// resolve DNS; the resolved address is checked again at dial time (see the
// package documentation). The rules:
//
//   - absolute, hierarchical (not opaque), parseable per RFC 3986;
//   - scheme https; http only with Options.AllowLoopback and a loopback host
//     (a loopback IP literal, "localhost" or "*.localhost");
//   - no userinfo (RFC 3986 §3.2.1 deprecates passwords in URLs; OWASP notes
//     "https://trusted@evil" confuses people and parsers alike);
//   - no fragment (it is never sent, so its presence signals a mistake or a
//     parser-confusion attempt);
//   - a non-empty host that is not "localhost", "*.localhost" (RFC 6761 §6.3)
//     or "metadata.google.internal" (the GCP metadata name), and not a
//     numeric form such as "2130706433" or "0x7f.1" that some resolvers
//     (inet_aton) read as an IPv4 address;
//   - an IP-literal host must be globally reachable (see CheckAddr).
//
// Every refusal is an *Error matching ErrForbidden.
func CheckURL(raw string, opts Options) error {
	u, err := url.Parse(raw)
	if err != nil {
		return &Error{URL: raw, Reason: "not a valid URL: " + unwrapURLError(err)}
	}
	if strings.Contains(raw, "#") {
		return &Error{URL: raw, Reason: "fragment not allowed"}
	}
	return checkParsed(raw, u, opts)
}

func unwrapURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

func checkParsed(raw string, u *url.URL, opts Options) error {
	refuse := func(reason string) error { return &Error{URL: raw, Reason: reason} }
	if !u.IsAbs() {
		return refuse("not an absolute URL")
	}
	if u.Opaque != "" {
		return refuse("opaque URL (missing \"//\" authority)")
	}
	if u.User != nil {
		return refuse("userinfo (credentials) not allowed in URL")
	}
	if u.Fragment != "" {
		return refuse("fragment not allowed")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return refuse(fmt.Sprintf("scheme %q not allowed (https only)", u.Scheme))
	}
	host := u.Hostname()
	if host == "" {
		return refuse("host required")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return refuse(fmt.Sprintf("invalid port %q", p))
		}
	}

	loopback := false
	if a, err := netip.ParseAddr(host); err == nil {
		if reason := addrReason(a, opts.AllowLoopback); reason != "" {
			return refuse(reason)
		}
		loopback = a.Unmap().IsLoopback()
	} else {
		isLoopName, reason := checkName(host)
		if reason != "" && !(isLoopName && opts.AllowLoopback) {
			return refuse(reason)
		}
		loopback = isLoopName
	}

	if u.Scheme == "http" {
		if !opts.AllowLoopback {
			return refuse("scheme \"http\" not allowed (https only)")
		}
		if !loopback {
			return refuse("scheme \"http\" allowed only for loopback hosts")
		}
	}
	return nil
}

// checkName applies the host-name rules. It reports whether the name is a
// loopback name (RFC 6761 §6.3) and, if the name is refused, why.
func checkName(host string) (loopbackName bool, reason string) {
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	switch {
	case name == "":
		return false, "host required"
	case name == "localhost" || strings.HasSuffix(name, ".localhost"):
		return true, "host name " + strconv.Quote(host) + " is reserved for loopback (RFC 6761 §6.3)"
	case name == "metadata.google.internal":
		return false, "host name " + strconv.Quote(host) + " is a cloud instance-metadata endpoint"
	case strings.Contains(name, "%"):
		return false, "IPv6 zone or escape in host name"
	}
	labels := strings.Split(name, ".")
	if isNumericLabel(labels[len(labels)-1]) {
		// RFC 3696 §2: a top-level domain is never all-numeric. A name
		// ending in a number is an IPv4 address in some non-canonical
		// spelling (decimal, octal, hex, short form) that getaddrinfo or a
		// browser would accept; refuse rather than guess what it means.
		return false, "host " + strconv.Quote(host) + " is a non-canonical numeric IPv4 form"
	}
	return false, ""
}

func isNumericLabel(l string) bool {
	if l == "" {
		return false
	}
	if strings.HasPrefix(l, "0x") {
		l = l[2:]
		for _, c := range l {
			if !strings.ContainsRune("0123456789abcdef", c) {
				return false
			}
		}
		return true
	}
	for _, c := range l {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// CheckAddr reports whether a is an acceptable destination address: nil if
// it is globally reachable, otherwise an *Error (matching ErrForbidden) whose
// URL and Addr are the address. Loopback addresses are admitted only when
// opts.AllowLoopback is set. IPv4-mapped IPv6 addresses are judged as the
// IPv4 address they map; NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses
// are judged by their embedded IPv4 address, with no loopback exemption
// (the embedded loopback would be the translator's, not ours). Any other
// IPv6 address outside global unicast 2000::/3 is refused. Teredo
// (2001::/32) is not unpacked: it is reached through public relays, not
// through the local network.
func CheckAddr(a netip.Addr, opts Options) error {
	if reason := addrReason(a, opts.AllowLoopback); reason != "" {
		return &Error{URL: a.String(), Addr: a.String(), Reason: reason}
	}
	return nil
}

type rule struct {
	p      netip.Prefix
	reason string
}

func mustRules(pairs ...string) []rule {
	rs := make([]rule, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		rs = append(rs, rule{netip.MustParsePrefix(pairs[i]), pairs[i+1]})
	}
	return rs
}

// IPv4 special-purpose ranges that are not globally reachable (RFC 6890 and
// the IANA IPv4 Special-Purpose Address Registry). Order matters only for
// which reason is reported.
var v4Rules = mustRules(
	"0.0.0.0/32", "unspecified address (RFC 1122 §3.2.1.3)",
	"0.0.0.0/8", "\"this network\" address (RFC 1122 §3.2.1.3)",
	"127.0.0.0/8", "loopback address (RFC 1122 §3.2.1.3)",
	"10.0.0.0/8", "private address (RFC 1918)",
	"172.16.0.0/12", "private address (RFC 1918)",
	"192.168.0.0/16", "private address (RFC 1918)",
	"100.64.0.0/10", "shared carrier-grade NAT address (RFC 6598)",
	"169.254.169.254/32", "link-local cloud instance-metadata address (RFC 3927)",
	"169.254.0.0/16", "link-local address (RFC 3927)",
	"192.0.0.0/24", "IETF protocol assignment (RFC 6890)",
	"192.0.2.0/24", "documentation address (RFC 5737)",
	"198.51.100.0/24", "documentation address (RFC 5737)",
	"203.0.113.0/24", "documentation address (RFC 5737)",
	"198.18.0.0/15", "benchmarking address (RFC 2544)",
	"224.0.0.0/4", "multicast address (RFC 5771)",
	"255.255.255.255/32", "limited broadcast address (RFC 919, RFC 8190)",
	"240.0.0.0/4", "reserved address (RFC 1112 §4)",
)

// IPv6 special-purpose ranges refused outright (RFC 4291, IANA IPv6
// Special-Purpose Address Registry). ::ffff:0:0/96, 64:ff9b::/96 and
// 2002::/16 are handled by embedding before these rules; anything these
// rules miss is still refused unless it lies in 2000::/3. Most entries lie
// outside 2000::/3 anyway and are listed only for a precise reason.
var v6Rules = mustRules(
	"::/128", "unspecified address (RFC 4291 §2.5.2)",
	"::1/128", "loopback address (RFC 4291 §2.5.3)",
	"::/96", "deprecated IPv4-compatible address (RFC 4291 §2.5.5.1)",
	"::ffff:0:0:0/96", "IPv4-translated address (RFC 2765)",
	"64:ff9b:1::/48", "local-use NAT64 prefix (RFC 8215)",
	"100::/64", "discard-only address (RFC 6666)",
	"2001:2::/48", "benchmarking address (RFC 5180)",
	"2001:db8::/32", "documentation address (RFC 3849)",
	"3fff::/20", "documentation address (RFC 9637)",
	"fc00::/7", "unique local (private) address (RFC 4193)",
	"fe80::/10", "link-local address (RFC 4291 §2.5.6)",
	"fec0::/10", "deprecated site-local address (RFC 3879)",
	"ff00::/8", "multicast address (RFC 4291 §2.7)",
)

var (
	nat64WK = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4  = netip.MustParsePrefix("2002::/16")
	// Only 2000::/3 is allocated for global unicast (RFC 4291 §2.4, IANA
	// IPv6 Address Space registry); everything else is refused.
	globalUnicast = netip.MustParsePrefix("2000::/3")
)

// addrReason returns "" when a is acceptable, else why not.
func addrReason(a netip.Addr, allowLoopback bool) string {
	if !a.IsValid() {
		return "invalid address"
	}
	if a.Zone() != "" {
		return "IPv6 zone identifier not allowed"
	}
	if a.Is4In6() {
		if r := v4Reason(a.Unmap(), allowLoopback); r != "" {
			return "IPv4-mapped IPv6 form of " + r
		}
		return ""
	}
	if a.Is4() {
		return v4Reason(a, allowLoopback)
	}
	if a == netip.IPv6Loopback() && allowLoopback {
		return ""
	}
	b := a.As16()
	if nat64WK.Contains(a) {
		if r := v4Reason(netip.AddrFrom4([4]byte(b[12:16])), false); r != "" {
			return "NAT64 (RFC 6052) form of " + r
		}
		return ""
	}
	if sixTo4.Contains(a) {
		if r := v4Reason(netip.AddrFrom4([4]byte(b[2:6])), false); r != "" {
			return "6to4 (RFC 3056) form of " + r
		}
		return ""
	}
	for _, r := range v6Rules {
		if r.p.Contains(a) {
			return r.reason
		}
	}
	if !globalUnicast.Contains(a) {
		return "outside the IPv6 global unicast range 2000::/3 (RFC 4291 §2.4)"
	}
	return ""
}

func v4Reason(a netip.Addr, allowLoopback bool) string {
	if allowLoopback && a.IsLoopback() {
		return ""
	}
	for _, r := range v4Rules {
		if r.p.Contains(a) {
			return r.reason
		}
	}
	return ""
}

// Dialer returns a DialContext function for http.Transport (or any caller)
// that enforces the address rules at connection time, closing the DNS
// rebinding gap left by CheckURL:
//
//   - only "tcp", "tcp4" and "tcp6" networks;
//   - an IP-literal address is checked directly, without DNS;
//   - a name is refused outright if CheckURL's name rules refuse it
//     (localhost, metadata.google.internal, numeric forms), otherwise it is
//     resolved with opts.LookupIP and the dial is refused if ANY answer is
//     forbidden — a mixed answer is treated as hostile rather than filtered;
//   - the connection is then made to the vetted IP literal (no second lookup
//     that could return something else), through a net.Dialer whose Control
//     hook checks the socket address once more;
//   - resolve-plus-connect is bounded by opts.Timeout (default 5s).
func Dialer(opts Options) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: opts.timeout(), Control: Control(opts)}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		refuse := func(ip, reason string) error { return &Error{URL: addr, Addr: ip, Reason: reason} }
		switch network {
		case "tcp", "tcp4", "tcp6":
		default:
			return nil, refuse("", fmt.Sprintf("network %q not allowed", network))
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, refuse("", "malformed address: "+err.Error())
		}
		ctx, cancel := context.WithTimeout(ctx, opts.timeout())
		defer cancel()

		var addrs []netip.Addr
		if a, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{a}
		} else {
			isLoopName, reason := checkName(host)
			if reason != "" && !(isLoopName && opts.AllowLoopback) {
				return nil, refuse("", reason)
			}
			ips, err := opts.lookup(ctx, host)
			if err != nil {
				return nil, fmt.Errorf("netguard: resolve %q: %w", host, err)
			}
			for _, ip := range ips {
				a, ok := ipToAddr(ip)
				if !ok {
					return nil, refuse(ip.String(), "resolver returned an invalid address")
				}
				addrs = append(addrs, a)
			}
		}
		for _, a := range addrs {
			if reason := addrReason(a, opts.AllowLoopback); reason != "" {
				return nil, refuse(a.String(), reason)
			}
		}

		var lastErr error
		tried := 0
		for _, a := range addrs {
			if (network == "tcp4" && !a.Is4()) || (network == "tcp6" && !a.Is6()) {
				continue
			}
			tried++
			c, err := d.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
			if err == nil {
				return c, nil
			}
			lastErr = err
			if ctx.Err() != nil {
				break
			}
		}
		if tried == 0 {
			return nil, fmt.Errorf("netguard: no %s address for %q", network, host)
		}
		return nil, lastErr
	}
}

// ipToAddr converts a resolver answer, folding 16-byte IPv4 (net.IP's usual
// in-memory form) to plain IPv4.
func ipToAddr(ip net.IP) (netip.Addr, bool) {
	if v4 := ip.To4(); v4 != nil {
		return netip.AddrFrom4([4]byte(v4)), true
	}
	return netip.AddrFromSlice(ip)
}

// Control returns a net.Dialer Control hook that refuses, just before
// connect(2), any socket whose destination is not an allowed TCP address.
// Dialer installs it; it is exported for callers that must build their own
// net.Dialer. On its own it does not cover names refused by CheckURL's name
// rules (by the time Control runs, the name is gone), nor does it stop a
// proxy — pair it with CheckURL and a Transport without Proxy.
func Control(opts Options) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		switch network {
		case "tcp4", "tcp6":
		default:
			return &Error{URL: address, Reason: fmt.Sprintf("network %q not allowed", network)}
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return &Error{URL: address, Reason: "unparseable socket address"}
		}
		if reason := addrReason(ap.Addr(), opts.AllowLoopback); reason != "" {
			return &Error{URL: address, Addr: ap.Addr().String(), Reason: reason}
		}
		return nil
	}
}

// Client returns an *http.Client for admin-surface fetches:
//
//   - every request URL is re-checked with CheckURL before anything is sent;
//   - connections go only through Dialer(opts);
//   - environment proxies (HTTP_PROXY etc.) are ignored;
//   - redirects are never followed: the 3xx response is returned as is, with
//     its Location header, and the caller decides (and must CheckURL the
//     target if it ever chooses to follow);
//   - the whole request, body included, is bounded by opts.Timeout
//     (default 5s), and response headers by 64 KiB.
func Client(opts Options) *http.Client {
	t := opts.timeout()
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            Dialer(opts),
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    t,
		ResponseHeaderTimeout:  t,
		ExpectContinueTimeout:  time.Second,
		IdleConnTimeout:        30 * time.Second,
		MaxIdleConns:           16,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport: &guardTransport{opts: opts, next: tr},
		Timeout:   t,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// guardTransport re-applies CheckURL to every outgoing request, so that a
// caller who skipped CheckURL (or built the URL afterwards) is still held to
// the scheme and name rules that the dialer cannot see.
type guardTransport struct {
	opts Options
	next http.RoundTripper
}

func (g *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := checkParsed(req.URL.String(), req.URL, g.opts); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return g.next.RoundTrip(req)
}

// Get fetches rawURL with c (which should come from Client) and returns at
// most maxBytes of body. If the body is longer — judged from Content-Length
// up front, or while reading — it returns ErrBodyTooLarge together with the
// response. Non-2xx statuses, including an unfollowed 3xx, are not errors:
// the caller inspects resp.StatusCode. The body has always been read and
// closed when Get returns; resp.Body is replaced by http.NoBody.
func Get(ctx context.Context, c *http.Client, rawURL string, maxBytes int64) ([]byte, *http.Response, error) {
	if maxBytes <= 0 {
		return nil, nil, fmt.Errorf("netguard: Get: maxBytes must be positive, got %d", maxBytes)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		resp.Body.Close()
		resp.Body = http.NoBody
	}()
	if resp.ContentLength > maxBytes {
		return nil, resp, fmt.Errorf("%w: Content-Length %d > %d", ErrBodyTooLarge, resp.ContentLength, maxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return nil, resp, err
	}
	if int64(len(body)) > maxBytes {
		return nil, resp, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, maxBytes)
	}
	return body, resp, nil
}
