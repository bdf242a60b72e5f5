package app

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// connLimit bounds the open connections per client address across the listeners it
// wraps (HTTP and HTTPS share one, RTMP and RTMPS another). A connection over the limit
// is closed as soon as it is accepted, before any byte is read. Addresses in exempt
// (loopback by default: a reverse proxy, the load generator) are not counted.
type connLimit struct {
	max    int
	exempt []netip.Prefix
	logger *slog.Logger
	name   string

	mu       sync.Mutex
	open     map[netip.Addr]int
	lastWarn time.Time
}

func newConnLimit(name string, max int, exempt []string, logger *slog.Logger) *connLimit {
	l := &connLimit{max: max, name: name, logger: logger, open: make(map[netip.Addr]int)}
	for _, p := range exempt {
		if pp, err := netip.ParsePrefix(p); err == nil {
			l.exempt = append(l.exempt, pp.Masked())
		}
	}
	return l
}

// wrap returns ln with the limit applied; with no limit, ln itself.
func (l *connLimit) wrap(ln net.Listener) net.Listener {
	if l == nil || l.max <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, limit: l}
}

// acquire counts a new connection from addr and reports whether it may stay; ok
// connections from counted addresses return the address to release later.
func (l *connLimit) acquire(remote net.Addr) (ip netip.Addr, counted, ok bool) {
	ap, err := netip.ParseAddrPort(remote.String())
	if err != nil {
		return ip, false, true
	}
	ip = ap.Addr().Unmap()
	for _, p := range l.exempt {
		if p.Contains(ip) {
			return ip, false, true
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip] >= l.max {
		// One line every few seconds at most: a flood must not flood the log.
		if now := time.Now(); now.Sub(l.lastWarn) >= 5*time.Second {
			l.lastWarn = now
			l.logger.Warn("too many connections from one address, refused", "listener", l.name,
				"remote_addr", ip.String(), "limit", l.max)
		}
		return ip, false, false
	}
	l.open[ip]++
	return ip, true, true
}

func (l *connLimit) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
}

// count returns the open connections counted for ip (tests).
func (l *connLimit) count(ip netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[ip]
}

type limitListener struct {
	net.Listener
	limit *connLimit
}

func (ll *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip, counted, ok := ll.limit.acquire(c.RemoteAddr())
		if !ok {
			c.Close()
			continue
		}
		if !counted {
			return c, nil
		}
		return &limitConn{Conn: c, release: func() { ll.limit.release(ip) }}, nil
	}
}

// limitConn gives its address's slot back on the first Close.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// writeStall bounds each write of a response instead of the whole response, so a client
// that stops reading is cut after about timeout, while a long download or an LL-HLS
// blocking request (which waits before its first write) is not. It works through
// http.ResponseController. On HTTP/1 the connection's write deadline moves to
// now+timeout before a write (at most every timeout/4, so it costs little; it only
// matters while a write is under way). On HTTP/2 a stream's write deadline fires even
// while the handler waits, so it is set before each write and cleared after it.
func writeStall(timeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &stallWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: timeout, h2: r.ProtoMajor >= 2}
		if !sw.h2 {
			sw.arm() // an earlier request on the connection may have left a stale deadline
		}
		next.ServeHTTP(sw, r)
		// net/http flushes the rest of the response after the handler. A WebSocket
		// handler has hijacked the connection by then and owns its deadlines.
		if r.Header.Get("Upgrade") == "" {
			sw.armed = time.Time{}
			sw.arm()
		}
	})
}

type stallWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	h2      bool
	armed   time.Time // the deadline last set (HTTP/1)
}

func (s *stallWriter) arm() {
	now := time.Now()
	if !s.h2 && s.armed.Sub(now) > s.timeout*3/4 {
		return
	}
	s.armed = now.Add(s.timeout)
	_ = s.rc.SetWriteDeadline(s.armed) // not supported: the server's own timeouts apply
}

// done clears an HTTP/2 stream's deadline after a write.
func (s *stallWriter) done() {
	if s.h2 {
		_ = s.rc.SetWriteDeadline(time.Time{})
	}
}

func (s *stallWriter) WriteHeader(code int) {
	s.arm()
	s.ResponseWriter.WriteHeader(code)
	s.done()
}

func (s *stallWriter) Write(p []byte) (int, error) {
	s.arm()
	defer s.done()
	return s.ResponseWriter.Write(p)
}

// Flush keeps the writer an http.Flusher for handlers that check for one.
func (s *stallWriter) Flush() {
	s.arm()
	_ = s.rc.Flush()
	s.done()
}

// Unwrap lets http.ResponseController reach the server's writer (Hijack, deadlines).
func (s *stallWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
