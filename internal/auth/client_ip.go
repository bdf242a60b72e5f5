package auth

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns the IP address a request came from, as a string: the host of
// r.RemoteAddr, or, when trustProxy is set, the last address of X-Forwarded-For (the
// one the trusted proxy in front of us saw; earlier ones are client-supplied and can be
// forged). An IPv4-mapped IPv6 address is returned as IPv4. When X-Forwarded-For is
// absent or its last hop is not an IP, RemoteAddr is used.
func ClientIP(r *http.Request, trustProxy bool) string {
	if trustProxy {
		if ip, ok := lastForwardedFor(r.Header.Values("X-Forwarded-For")); ok {
			return ip
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		return addr.Unmap().WithZone("").String()
	}
	return host
}

// lastForwardedFor returns the last hop of the X-Forwarded-For header lines.
func lastForwardedFor(lines []string) (string, bool) {
	if len(lines) == 0 {
		return "", false
	}
	last := lines[len(lines)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	last = strings.TrimSpace(last)
	addr, err := netip.ParseAddr(last)
	if err != nil {
		// Some proxies append host:port.
		ap, err := netip.ParseAddrPort(last)
		if err != nil {
			return "", false
		}
		addr = ap.Addr()
	}
	return addr.Unmap().WithZone("").String(), true
}
