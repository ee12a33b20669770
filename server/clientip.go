package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/labstack/echo/v4"
)

// clientIP is the one place that decides the caller's address for rate
// limits, lockout and caps (docs/security.md "Client addresses").
func (s *Server) clientIP(c echo.Context) string { return s.clientAddr(c.Request()) }

// clientAddr decides a request's client address. Without trusted_proxies
// it is the TCP peer and no forwarded header is read, so that a caller
// cannot pick its own address. When the peer is a trusted proxy,
// X-Forwarded-For (every field line, in order) is read right to left:
// each proxy appends the address it received the request from, so the
// first address that is not one of our proxies is the client as our
// outermost proxy saw it; everything left of it was written by the client
// and is ignored. If the walk meets a malformed element before that
// address (one of our proxies wrote it, or the header is not what a
// proxy writes), the peer is the client: the choice a caller cannot
// steer. When every address is a trusted proxy, the leftmost is the
// client. The Forwarded header (RFC 7239) is never read. echo's
// c.RealIP() answers the same (Server.routes sets IPExtractor).
func (s *Server) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap().WithZone("")
	if !s.trustedProxy(peer) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	if len(r.Header.Values("X-Forwarded-For")) == 0 {
		return peer.String()
	}
	var last netip.Addr
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := forwardedAddr(hops[i])
		if !ok {
			return peer.String()
		}
		if !s.trustedProxy(a) {
			return a.String()
		}
		last = a
	}
	return last.String()
}

// forwardedAddr parses one X-Forwarded-For element: an IP address, or an
// address with a port as some proxies write it ("192.0.2.1:4711",
// "[2001:db8::1]:4711").
func forwardedAddr(v string) (netip.Addr, bool) {
	v = strings.TrimSpace(v)
	a, err := netip.ParseAddr(v)
	if err != nil {
		ap, perr := netip.ParseAddrPort(v)
		if perr != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	if a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// trustedProxy reports whether a is in trusted_proxies.
func (s *Server) trustedProxy(a netip.Addr) bool {
	for _, p := range s.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
