package stats

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Defaults of the Sessions fields.
const (
	DefaultMaxSessionsPerChannel = 100_000
	// sweepEvery bounds how stale a count may be: Count sweeps a channel at most this often.
	sweepEvery = time.Second
	// maxUserAgent bounds the User-Agent bytes hashed into a fallback session key.
	maxUserAgent = 512
)

// Session id shape: what SessionID hands out, and what Touch accepts from a request.
const (
	minSessionID = 8
	maxSessionID = 64
)

// Sessions counts the viewers of HTTP streaming (HLS, DASH) by session. HTTP players hold
// no connection: a viewer is a session that keeps asking for the playlist (or manifest),
// and it ends when it stops asking for longer than the ttl its last request was given.
//
// A session is keyed by the request's session id when it has one, else by the client's
// IP address and User-Agent (a sliding window per pair). The HLS multivariant playlist
// hands every player an id in the variant URI, so HLS players are counted one by one,
// also many behind one address (a NAT, a campus); players that open a media playlist or
// a DASH manifest directly without an id fall back to (IP, User-Agent), which merges
// identical players behind one address.
//
// The methods are safe for concurrent use; the zero value is ready (fields are read at
// first use). Sessions implements hls.ViewerSessions and dash.ViewerSessions.
type Sessions struct {
	// Protocol names the sessions in logs ("hls", "dash").
	Protocol string

	// MaxPerChannel bounds the sessions tracked per channel: beyond it, new sessions are
	// not counted until others expire. Default: 100 000.
	MaxPerChannel int

	// Logger receives one Debug line per session end. Default: slog.Default().
	Logger *slog.Logger

	// Now returns the current time. Default: time.Now.
	Now func() time.Time

	once     sync.Once
	mu       sync.Mutex
	channels map[string]*channelSessions
}

type channelSessions struct {
	m         map[string]*session
	lastSweep time.Time
}

type session struct {
	start    time.Time
	last     time.Time
	expires  time.Time
	requests int
	addr     string // IP only
	keyed    bool   // counted by session id (else by address and User-Agent)
}

func (s *Sessions) init() {
	s.once.Do(func() {
		if s.Logger == nil {
			s.Logger = slog.Default()
		}
		if s.Now == nil {
			s.Now = time.Now
		}
		if s.MaxPerChannel <= 0 {
			s.MaxPerChannel = DefaultMaxSessionsPerChannel
		}
		s.channels = make(map[string]*channelSessions)
	})
}

// SessionID returns id when it is a well-formed session id (8 to 64 characters of
// A-Z, a-z, 0-9, '-' and '_'), else a new random one. Ids are not secrets: they only
// tell players apart.
func (s *Sessions) SessionID(id string) string {
	if validSessionID(id) {
		return id
	}
	return NewSessionID()
}

// NewSessionID returns a random session id (22 URL-safe characters).
func NewSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func validSessionID(id string) bool {
	if len(id) < minSessionID || len(id) > maxSessionID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Touch records a request of a viewer of channel: the session of id (or, when id is not
// a well-formed id, of the IP address of remoteAddr and userAgent) lives until ttl after
// now.
func (s *Sessions) Touch(channel, id, remoteAddr, userAgent string, ttl time.Duration) {
	s.init()
	if channel == "" || ttl <= 0 {
		return
	}
	ip := remoteIP(remoteAddr)
	key, keyed := "s:"+id, true
	if !validSessionID(id) {
		key, keyed = fallbackKey(ip, userAgent), false
	}
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.channels[channel]
	if cs == nil {
		cs = &channelSessions{m: make(map[string]*session), lastSweep: now}
		s.channels[channel] = cs
	}
	se := cs.m[key]
	if se == nil || !now.Before(se.expires) {
		if se != nil {
			s.logEnd(channel, se)
		} else if len(cs.m) >= s.MaxPerChannel {
			s.sweepLocked(channel, cs, now)
			if len(cs.m) >= s.MaxPerChannel {
				return
			}
		}
		se = &session{start: now, addr: ip, keyed: keyed}
		cs.m[key] = se
	}
	se.last = now
	se.requests++
	if exp := now.Add(ttl); exp.After(se.expires) {
		se.expires = exp
	}
}

// fallbackKey keys a session without id by address and a hash of the User-Agent (so a
// long User-Agent costs no memory).
func fallbackKey(ip, userAgent string) string {
	if len(userAgent) > maxUserAgent {
		userAgent = userAgent[:maxUserAgent]
	}
	h := sha256.Sum256([]byte(userAgent))
	return "a:" + ip + "|" + base64.RawURLEncoding.EncodeToString(h[:12])
}

func remoteIP(remoteAddr string) string {
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return host
	}
	return remoteAddr
}

// Count returns the live sessions of channel.
func (s *Sessions) Count(channel string) int {
	s.init()
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.channels[channel]
	if cs == nil {
		return 0
	}
	if now.Sub(cs.lastSweep) >= sweepEvery {
		s.sweepLocked(channel, cs, now)
		if len(cs.m) == 0 {
			delete(s.channels, channel)
			return 0
		}
	}
	n := 0
	for _, se := range cs.m {
		if now.Before(se.expires) {
			n++
		}
	}
	return n
}

// Counts returns the live sessions of every channel that has some.
func (s *Sessions) Counts() map[string]int {
	s.Sweep()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.channels))
	for ch, cs := range s.channels {
		out[ch] = len(cs.m)
	}
	return out
}

// Sweep ends the expired sessions, logging each at Debug.
func (s *Sessions) Sweep() {
	s.init()
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch, cs := range s.channels {
		s.sweepLocked(ch, cs, now)
		if len(cs.m) == 0 {
			delete(s.channels, ch)
		}
	}
}

func (s *Sessions) sweepLocked(channel string, cs *channelSessions, now time.Time) {
	cs.lastSweep = now
	for k, se := range cs.m {
		if !now.Before(se.expires) {
			delete(cs.m, k)
			s.logEnd(channel, se)
		}
	}
}

func (s *Sessions) logEnd(channel string, se *session) {
	s.Logger.Debug("viewer session ended", "protocol", s.Protocol, "channel", channel,
		"remote_addr", se.addr, "duration", se.last.Sub(se.start).Round(time.Millisecond),
		"requests", se.requests, "by_id", se.keyed)
}
