package rtmp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/onair"
)

// Defaults of the Server fields.
const (
	DefaultReadTimeout      = 10 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultMaxMessageSize   = 8 << 20
	DefaultProbeDuration    = time.Second
	DefaultAuthTimeout      = 5 * time.Second
	DefaultMaxAuthFailures  = 5
	DefaultAuthFailWindow   = time.Minute
	DefaultAuthBlock        = 5 * time.Minute
	DefaultSlowPlayerWindow = 10 * time.Second
)

// OnAuthorizeFunc maps a stream key to the name of the channel it publishes to.
// It returns an error with code onair.ENOTFOUND for a wrong key.
type OnAuthorizeFunc func(ctx context.Context, key onair.StreamKey) (channel string, err error)

// OnAuthorizePublishFunc decides whether a publisher whose stream key was accepted may
// publish to channel. remoteAddr is the publisher's IP address. A nil error allows it.
type OnAuthorizePublishFunc func(ctx context.Context, channel, remoteAddr string) error

// Server accepts RTMP publishers and players and bridges them to the hub.
type Server struct {
	// Addr is the listen address, e.g. ":1935" or "127.0.0.1:0".
	Addr string
	// Hub receives published streams and feeds players. Required.
	Hub *hub.Registry
	// Authorize maps a stream key to its channel. Required.
	Authorize OnAuthorizeFunc
	// AuthorizePublish, when set, is asked after Authorize accepted the key and before
	// NetStream.Publish.Start whether the publish may go ahead (an external publish
	// callback, say). It never sees the key. An error refuses the publish; the error's
	// onair message is logged, and the client gets a generic error status. Its context
	// ends after AuthTimeout.
	AuthorizePublish OnAuthorizePublishFunc
	// Logger receives the logs. Default: slog.Default().
	Logger *slog.Logger

	// ReadTimeout closes a connection whose peer sends nothing for that long (a player
	// is asked for a ping first when nothing was written to it either). Default: 10 s.
	ReadTimeout time.Duration
	// HandshakeTimeout bounds the setup of a connection: the handshake and the commands
	// up to publish or play. It closes a client that trickles bytes slowly enough to dodge
	// ReadTimeout. Default: 10 s.
	HandshakeTimeout time.Duration
	// WriteTimeout closes a connection when a write blocks that long. Default: 10 s.
	WriteTimeout time.Duration
	// MaxMessageSize is the largest RTMP message accepted; a longer one closes the
	// connection. gortmplib refuses messages over 10 MiB whatever this says. Default: 8 MiB.
	MaxMessageSize int
	// ProbeDuration bounds how much media (by timestamps) a publisher may send before the
	// stream goes live without tracks that its metadata announced but never configured.
	// Default: 1 s.
	ProbeDuration time.Duration
	// AuthTimeout bounds one Authorize call. Default: 5 s.
	AuthTimeout time.Duration
	// MaxAuthFailures wrong stream keys from one IP address within AuthFailWindow block
	// that address from publishing for AuthBlock. Defaults: 5, 1 min, 5 min.
	MaxAuthFailures int
	AuthFailWindow  time.Duration
	AuthBlock       time.Duration
	// SlowPlayerWindow disconnects a player whose queue keeps overflowing (units dropped
	// again and again) for that long. Default: 10 s.
	SlowPlayerWindow time.Duration
	// WriteMergeWindow, when positive, makes a player wait that long after a write before
	// the next one, so that it sends fewer, larger writes (SRS "merged write") at the cost
	// of that much latency. Default: 0 (write as soon as units arrive).
	WriteMergeWindow time.Duration
	// Now returns the current time. Default: time.Now.
	Now func() time.Time

	// TLSAddr, when set, is a second listen address whose connections speak RTMPS (RTMP
	// over TLS with TLSConfig). They publish and play like those on Addr.
	TLSAddr string
	// TLSConfig is the TLS configuration of TLSAddr. Required with TLSAddr.
	TLSConfig *tls.Config
	// MaxConnsPerIP bounds the open connections (RTMP and RTMPS together) of one client
	// address: one more is closed as soon as it is accepted. 0: no bound. The count is
	// kept here rather than by wrapping the connections, which would lose the writev of
	// *net.TCPConn that players rely on.
	MaxConnsPerIP int
	// ConnLimitExempt lists the networks MaxConnsPerIP does not apply to.
	ConnLimitExempt []netip.Prefix

	ln      net.Listener
	tlsLn   net.Listener
	perIP   map[netip.Addr]int // open connections per counted address (under mu)
	lastCap time.Time          // the last "too many connections" warning (under mu)
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	nextID  atomic.Uint64
	limiter failLimiter

	accepted atomic.Uint64
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64

	mu         sync.Mutex
	conns      map[*conn]struct{}
	publishing map[string]*conn // channels claimed by an RTMP publisher of this server
	closed     bool
	playShards []*playShard // writers of pooled players, started with the first one
	nextShard  int
}

// Start applies the defaults, binds the listener and starts accepting connections.
func (s *Server) Start() error {
	if err := s.init(); err != nil {
		return err
	}
	ln, err := s.listen(s.Addr)
	if err != nil {
		s.cancel()
		return fmt.Errorf("listen rtmp: %w", err)
	}
	var tlsLn net.Listener
	if s.TLSAddr != "" {
		if tlsLn, err = s.listen(s.TLSAddr); err != nil {
			ln.Close()
			s.cancel()
			return fmt.Errorf("listen rtmps: %w", err)
		}
		tlsLn = tls.NewListener(tlsLn, s.TLSConfig)
	}
	s.mu.Lock()
	s.ln, s.tlsLn = ln, tlsLn
	s.mu.Unlock()
	s.wg.Add(1)
	go s.acceptLoop(ln)
	s.Logger.Info("rtmp listening", "addr", ln.Addr().String())
	if tlsLn != nil {
		s.wg.Add(1)
		go s.acceptLoop(tlsLn)
		s.Logger.Info("rtmps listening", "addr", tlsLn.Addr().String())
	}
	return nil
}

func (s *Server) listen(addr string) (net.Listener, error) {
	return net.Listen("tcp", addr)
}

// init validates the fields and applies the defaults.
func (s *Server) init() error {
	if s.Hub == nil {
		return errors.New("rtmp server: hub is required")
	}
	if s.Authorize == nil {
		return errors.New("rtmp server: authorize is required")
	}
	if s.TLSAddr != "" && s.TLSConfig == nil {
		return errors.New("rtmp server: tls config is required with a tls address")
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	setDefault(&s.ReadTimeout, DefaultReadTimeout)
	setDefault(&s.WriteTimeout, DefaultWriteTimeout)
	setDefault(&s.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&s.MaxMessageSize, DefaultMaxMessageSize)
	setDefault(&s.ProbeDuration, DefaultProbeDuration)
	setDefault(&s.AuthTimeout, DefaultAuthTimeout)
	setDefault(&s.MaxAuthFailures, DefaultMaxAuthFailures)
	setDefault(&s.AuthFailWindow, DefaultAuthFailWindow)
	setDefault(&s.AuthBlock, DefaultAuthBlock)
	setDefault(&s.SlowPlayerWindow, DefaultSlowPlayerWindow)
	if s.MaxMessageSize > 1<<24-1 {
		// The message length field has 24 bits.
		s.MaxMessageSize = 1<<24 - 1
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	s.limiter = failLimiter{max: s.MaxAuthFailures, window: s.AuthFailWindow, block: s.AuthBlock, now: s.Now}
	// Under the lock: the app's stats may already read Conns before Start.
	s.mu.Lock()
	s.conns = make(map[*conn]struct{})
	s.publishing = make(map[string]*conn)
	s.perIP = make(map[netip.Addr]int)
	s.mu.Unlock()
	// The server's own lifetime context, cancelled by Close; Authorize calls derive from it.
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return nil
}

func setDefault[T int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// ListenAddr returns the bound address.
func (s *Server) ListenAddr() net.Addr { return s.ln.Addr() }

// Port returns the bound TCP port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// TLSListenAddr returns the bound RTMPS address, or nil without one.
func (s *Server) TLSListenAddr() net.Addr {
	if s.tlsLn == nil {
		return nil
	}
	return s.tlsLn.Addr()
}

// Close stops accepting, closes every connection and waits for all goroutines.
// Publishers are detached from the hub (their streams enter the grace window).
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed || s.ln == nil {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.ln.Close()
	if s.tlsLn != nil {
		s.tlsLn.Close()
	}
	s.cancel()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little and go on.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.Logger.Warn("accept failed", "err", err)
			select {
			case <-time.After(backoff):
			case <-s.ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		c := s.newConn(nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		if !s.admitLocked(c) {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

func (s *Server) newConn(nc net.Conn) *conn {
	s.accepted.Add(1)
	c := &conn{id: s.nextID.Add(1), nc: nc, remote: nc.RemoteAddr().String()}
	c.stats.init(s.Now())
	if ap, err := netip.ParseAddrPort(c.remote); err == nil {
		c.ip = ap.Addr().Unmap()
	}
	return c
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if s.limited(c.ip) {
		if s.perIP[c.ip]--; s.perIP[c.ip] <= 0 {
			delete(s.perIP, c.ip)
		}
	}
	s.mu.Unlock()
}

// admitLocked counts c against MaxConnsPerIP and reports whether it may stay.
func (s *Server) admitLocked(c *conn) bool {
	if !s.limited(c.ip) {
		return true
	}
	if s.perIP[c.ip] >= s.MaxConnsPerIP {
		if now := time.Now(); now.Sub(s.lastCap) >= 5*time.Second { // a flood must not flood the log
			s.lastCap = now
			s.Logger.Warn("too many connections from one address, refused", "remote_addr", c.ip.String(),
				"limit", s.MaxConnsPerIP)
		}
		return false
	}
	s.perIP[c.ip]++
	return true
}

// limited reports whether connections from ip count against MaxConnsPerIP.
func (s *Server) limited(ip netip.Addr) bool {
	if s.MaxConnsPerIP <= 0 || !ip.IsValid() {
		return false
	}
	for _, p := range s.ConnLimitExempt {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// claim reserves channel for c's publish session. It fails when another RTMP connection
// of this server holds it or the hub already has a publisher on it.
func (s *Server) claim(channel string, c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.publishing[channel] != nil {
		return false
	}
	if st := s.Hub.Stream(channel); st != nil && st.Publishing() {
		return false
	}
	s.publishing[channel] = c
	return true
}

func (s *Server) release(channel string, c *conn) {
	s.mu.Lock()
	if s.publishing[channel] == c {
		delete(s.publishing, channel)
	}
	s.mu.Unlock()
}
