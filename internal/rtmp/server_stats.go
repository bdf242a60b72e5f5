package rtmp

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onair/onair/internal/hub"
)

// ConnState is what an RTMP connection is doing.
type ConnState string

// Connection states.
const (
	// ConnHandshake: the handshake, connect and createStream, until publish or play is decided.
	ConnHandshake ConnState = "handshake"
	// ConnPublishing: a publisher whose stream key was accepted.
	ConnPublishing ConnState = "publishing"
	// ConnPlaying: a player attached to a live stream.
	ConnPlaying ConnState = "playing"
)

// maxFlashVerLen bounds the flashVer kept from a connect command (it is client input).
const maxFlashVerLen = 64

// ConnInfo is a snapshot of one RTMP connection, for statistics (nginx-rtmp's /stat
// clients). It never holds a stream key.
type ConnInfo struct {
	// ID numbers the connections of the Server from 1.
	ID uint64
	// RemoteAddr is the peer's "ip:port".
	RemoteAddr string
	// Start is when the connection was accepted.
	Start time.Time
	// FlashVer is the connect command's flashVer (printable ASCII, at most 64 bytes).
	FlashVer string
	// State tells what the connection does; Channel is set once it publishes or plays.
	State   ConnState
	Channel string
	// Active is set once media flows: a publisher is live, a player got its first bytes.
	Active bool
	// BytesIn and BytesOut count the bytes read from and written to the socket.
	BytesIn  uint64
	BytesOut uint64
	// Dropped counts, for a player, the units its hub queue dropped.
	Dropped uint64
	// Timestamp is the last media timestamp received (publisher) or sent (player).
	Timestamp time.Duration
	// AVSync is the last audio timestamp minus the last video timestamp, when both exist.
	AVSync time.Duration
}

// ServerStats are the cumulative counters of a Server.
type ServerStats struct {
	// Accepted counts the TCP connections accepted since Start.
	Accepted uint64
	// BytesIn and BytesOut count the bytes read and written on every connection since Start.
	BytesIn  uint64
	BytesOut uint64
}

// connStats is the part of a conn that statistics read from other goroutines.
type connStats struct {
	start    time.Time
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64

	mu       sync.Mutex
	flashVer string
	state    ConnState
	channel  string

	active  atomic.Bool
	reader  atomic.Pointer[hub.Reader] // a player's hub reader
	lastTS  atomic.Int64               // nanoseconds
	videoTS atomic.Int64               // nanoseconds, -1 before the first
	audioTS atomic.Int64               // nanoseconds, -1 before the first
}

func (cs *connStats) init(start time.Time) {
	cs.start = start
	cs.state = ConnHandshake
	cs.videoTS.Store(-1)
	cs.audioTS.Store(-1)
}

func (cs *connStats) setFlashVer(v string) {
	b := make([]byte, 0, min(len(v), maxFlashVerLen))
	for i := 0; i < len(v) && len(b) < maxFlashVerLen; i++ {
		c := v[i]
		if c < 0x20 || c >= 0x7f {
			c = ' '
		}
		b = append(b, c)
	}
	cs.mu.Lock()
	cs.flashVer = string(b)
	cs.mu.Unlock()
}

func (cs *connStats) setState(state ConnState, channel string) {
	cs.mu.Lock()
	cs.state, cs.channel = state, channel
	cs.mu.Unlock()
}

// media records the timestamp of a unit received or sent.
func (cs *connStats) media(ts time.Duration, video bool) {
	cs.lastTS.Store(int64(ts))
	if video {
		cs.videoTS.Store(int64(ts))
	} else {
		cs.audioTS.Store(int64(ts))
	}
}

// Conns returns a snapshot of the open connections, by ID.
func (s *Server) Conns() []ConnInfo {
	s.mu.Lock()
	all := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		all = append(all, c)
	}
	s.mu.Unlock()
	out := make([]ConnInfo, 0, len(all))
	for _, c := range all {
		out = append(out, c.info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Stats returns the Server's cumulative counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{
		Accepted: s.accepted.Load(),
		BytesIn:  s.bytesIn.Load(),
		BytesOut: s.bytesOut.Load(),
	}
}

func (c *conn) info() ConnInfo {
	cs := &c.stats
	in := ConnInfo{
		ID:         c.id,
		RemoteAddr: c.remote,
		Start:      cs.start,
		Active:     cs.active.Load(),
		BytesIn:    cs.bytesIn.Load(),
		BytesOut:   cs.bytesOut.Load(),
		Timestamp:  time.Duration(cs.lastTS.Load()),
	}
	cs.mu.Lock()
	in.FlashVer, in.State, in.Channel = cs.flashVer, cs.state, cs.channel
	cs.mu.Unlock()
	if r := cs.reader.Load(); r != nil {
		in.Dropped = r.Dropped()
	}
	if v, a := cs.videoTS.Load(), cs.audioTS.Load(); v >= 0 && a >= 0 {
		in.AVSync = time.Duration(a - v)
	}
	return in
}

// countRead counts n bytes read on c.
func (s *Server) countRead(c *conn, n int) {
	if n > 0 {
		c.stats.bytesIn.Add(uint64(n))
		s.bytesIn.Add(uint64(n))
	}
}

// countWrite counts n bytes written on c.
func (s *Server) countWrite(c *conn, n int) {
	if n > 0 {
		c.stats.bytesOut.Add(uint64(n))
		s.bytesOut.Add(uint64(n))
	}
}

// countingReader counts the bytes read from a connection's socket.
type countingReader struct {
	s *Server
	c *conn
}

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.c.nc.Read(p)
	r.s.countRead(r.c, n)
	return n, err
}

// writeCounted writes b on c's socket and counts it.
func (s *Server) writeCounted(c *conn, b []byte) (int, error) {
	n, err := c.nc.Write(b)
	s.countWrite(c, n)
	return n, err
}
