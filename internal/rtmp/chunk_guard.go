package rtmp

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/onair/onair/internal/hub"
)

// Handshake sizes (RTMP spec section 5.2): C0 is one byte, C1 and C2 are 1536 bytes each.
const (
	handshakeC0     = 1
	handshakePacket = 1536
	handshakeIn     = handshakeC0 + 2*handshakePacket

	rtmpVersion = 3

	// maxChunkSize is the largest chunk size a peer may set (SetChunkSize).
	maxChunkSize = 16 << 20

	// guardCaptureMax bounds the control messages the guard keeps (commands on play
	// connections). Longer ones are skipped.
	guardCaptureMax = 4096
)

// Message types the guard looks into (RTMP spec section 5.4 and 7.1).
const (
	msgTypeSetChunkSize = 1
	msgTypeAbort        = 2
	msgTypeUserControl  = 4
	msgTypeAudio        = 8
	msgTypeVideo        = 9
	msgTypeData         = 18
	msgTypeCommand      = 20
)

// errGuard is wrapped by every limit violation found by chunkGuard.
var errGuard = errors.New("invalid rtmp input")

type guardState uint8

const (
	gsHandshake guardState = iota
	gsBasic
	gsHeader
	gsExtTS
	gsBody
)

// guardStream is the state of one chunk stream, as gortmplib's reader keeps it.
type guardStream struct {
	csid    byte
	started bool   // a type 0 chunk was seen
	ext     bool   // chunks of type 3 carry an extended timestamp
	extTS   uint32 // the extended timestamp of the last type 0/1/2 header
	typ     uint8  // message type
	msgLen  uint32 // length of the current message
	recv    uint32 // bytes of the current message received so far
	capture []byte // body of a captured control message
}

// chunkGuard follows the RTMP chunk stream byte by byte (RTMP spec sections 5.2 and 5.3)
// between the socket and gortmplib's reader. It never copies media, and it enforces the
// limits the library lacks:
//   - the handshake version must be 3 (plain RTMP; RTMPE is refused),
//   - a SetChunkSize must be in [1, 16 MiB],
//   - a message must not be longer than maxMsg, and the bytes held in unfinished
//     messages of all chunk streams together must stay under 2*maxMsg,
//   - a type 3 chunk continuing a message whose header had an extended timestamp must
//     repeat it (or send zero, as gortmplib's writer does): a sender that leaves it out
//     would have its body misread as headers,
//   - audio and video messages must not be empty.
//
// It mirrors gortmplib's chunk reader (v1.0.2): chunk stream ids 0 and 1 (2- and 3-byte
// basic headers) are refused, and type 3 chunks carry an extended timestamp when the last
// type 0/1/2 header of their chunk stream had one.
//
// With exact set, Read never returns bytes past the chunk element being parsed, so
// that a buffered reader above it holds no bytes past the last complete message: the
// connection can then be read by other code (play connections after the play command).
type chunkGuard struct {
	r      io.Reader
	before func() // called before every read of r (deadlines)
	maxMsg uint32
	exact  bool
	// onMessage receives captured messages of the types set in captureTypes (besides
	// SetChunkSize and Abort, which the guard handles itself). body is reused after it
	// returns; it is nil for a message longer than guardCaptureMax.
	onMessage    func(typ uint8, body []byte) error
	captureTypes uint32 // bit set of message types to capture for onMessage

	st        guardState
	need      int // bytes still needed by the current element
	hdr       [11]byte
	hdrN      int
	hdrNeed   int
	fmt       uint8
	cur       *guardStream
	chunkSize uint32
	inflight  int64
	streams   []guardStream
	err       error
	handshook bool

	// ra, when set (setReadAhead, publishers), is a read-ahead buffer: the socket is read
	// in reads of up to len(ra) bytes, fed to the parser as read, and handed out from
	// ra[raOff:raEnd], so that a reader asking for less (gortmplib's 4 KiB bufio) does not
	// cost a read system call per 4 KiB of media.
	ra           []byte
	raOff, raEnd int
	// pace, when set, is the shortest time between two reads of the socket that did not
	// fill ra: the reader sleeps until the next tick of a pace-long grid shared by every
	// publisher (hub.UntilTick) instead of waking on every TCP segment, and takes what
	// arrived meanwhile in one read.
	pace     time.Duration
	lastRead time.Time
}

// setReadAhead makes Read take up to size bytes per read of the socket. Only valid when
// exact is off and stays off: the guard then holds bytes past the current element.
func (g *chunkGuard) setReadAhead(size int, pace time.Duration) {
	g.ra = make([]byte, size)
	g.raOff, g.raEnd = 0, 0
	g.pace = pace
}

func newChunkGuard(r io.Reader, maxMsg uint32) *chunkGuard {
	return &chunkGuard{
		r:         r,
		maxMsg:    maxMsg,
		st:        gsHandshake,
		need:      handshakeIn,
		chunkSize: 128,
	}
}

// Read implements io.Reader.
func (g *chunkGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if g.exact && g.need > 0 && len(p) > g.need {
		p = p[:g.need]
	}
	if g.ra != nil && !g.exact {
		return g.readAhead(p)
	}
	return g.readFeed(p)
}

// readFeed reads the socket into p once and checks what it read.
func (g *chunkGuard) readFeed(p []byte) (int, error) {
	if g.before != nil {
		g.before()
	}
	n, err := g.r.Read(p)
	if n > 0 {
		if ferr := g.feed(p[:n]); ferr != nil {
			g.err = ferr
			return 0, ferr
		}
	}
	return n, err
}

// readAhead serves p from the read-ahead buffer, refilling it with one read of the
// socket when it is empty (reading straight into p when p is as large as the buffer).
func (g *chunkGuard) readAhead(p []byte) (int, error) {
	if g.raOff == g.raEnd && len(p) > 0 {
		if len(p) >= len(g.ra) {
			g.raOff, g.raEnd = 0, 0
			return g.readFeed(p)
		}
		if g.pace > 0 {
			if time.Since(g.lastRead) < g.pace {
				time.Sleep(hub.UntilTick(g.pace))
			}
		}
		if g.before != nil {
			g.before()
		}
		n, err := g.r.Read(g.ra)
		if g.pace > 0 {
			g.lastRead = time.Now()
			if n == len(g.ra) {
				g.lastRead = time.Time{} // more is waiting: no pause before the next read
			}
		}
		if n > 0 {
			if ferr := g.feed(g.ra[:n]); ferr != nil {
				g.err = ferr
				return 0, ferr
			}
		}
		g.raOff, g.raEnd = 0, n
		if n == 0 {
			return 0, err
		}
		// A read error after data is returned by the next Read (the socket repeats it).
	}
	n := copy(p, g.ra[g.raOff:g.raEnd])
	g.raOff += n
	return n, nil
}

func guardErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errGuard}, args...)...)
}

// feed advances the parser over b.
func (g *chunkGuard) feed(b []byte) error {
	for len(b) > 0 {
		switch g.st {
		case gsHandshake:
			if !g.handshook {
				g.handshook = true
				if b[0] != rtmpVersion {
					return guardErrorf("unsupported handshake version %d, want %d", b[0], rtmpVersion)
				}
			}
			k := min(len(b), g.need)
			g.need -= k
			b = b[k:]
			if g.need == 0 {
				g.st, g.need = gsBasic, 1
			}

		case gsBasic:
			if err := g.basicHeader(b[0]); err != nil {
				return err
			}
			b = b[1:]

		case gsHeader:
			k := copy(g.hdr[g.hdrN:g.hdrNeed], b)
			g.hdrN += k
			g.need -= k
			b = b[k:]
			if g.need == 0 {
				if err := g.messageHeader(); err != nil {
					return err
				}
			}

		case gsExtTS:
			k := copy(g.hdr[g.hdrN:g.hdrNeed], b)
			g.hdrN += k
			g.need -= k
			b = b[k:]
			if g.need == 0 {
				ts := be32(g.hdr[:4])
				if g.fmt != 3 {
					g.cur.ext = ts >= 0xFFFFFF
					g.cur.extTS = ts
				} else if g.cur.recv != 0 && ts != g.cur.extTS && ts != 0 {
					return guardErrorf("type 3 chunk on chunk stream %d lacks the extended timestamp %d of its message (got %d)",
						g.cur.csid, g.cur.extTS, ts)
				}
				if err := g.startBody(); err != nil {
					return err
				}
			}

		case gsBody:
			k := min(len(b), g.need)
			if err := g.body(b[:k]); err != nil {
				return err
			}
			b = b[k:]
		}
	}
	return nil
}

func (g *chunkGuard) stream(csid byte) *guardStream {
	for i := range g.streams {
		if g.streams[i].csid == csid {
			return &g.streams[i]
		}
	}
	g.streams = append(g.streams, guardStream{csid: csid})
	return &g.streams[len(g.streams)-1]
}

func (g *chunkGuard) basicHeader(c byte) error {
	g.fmt = c >> 6
	csid := c & 0x3F
	if csid < 2 {
		// gortmplib reads only 1-byte basic headers: chunk stream ids 2 to 63.
		return guardErrorf("chunk stream id above 63 (%d-byte basic header) not supported", csid+2)
	}
	cs := g.stream(csid)
	g.cur = cs
	switch g.fmt {
	case 0:
		if cs.recv != 0 {
			return guardErrorf("type 0 chunk inside a message on chunk stream %d", csid)
		}
	case 1, 2:
		if !cs.started {
			return guardErrorf("type %d chunk without a previous chunk on chunk stream %d", g.fmt, csid)
		}
		if cs.recv != 0 {
			return guardErrorf("type %d chunk inside a message on chunk stream %d", g.fmt, csid)
		}
	case 3:
		if !cs.started {
			return guardErrorf("type 3 chunk without a previous chunk on chunk stream %d", csid)
		}
	}
	g.hdrN = 0
	g.hdrNeed = [4]int{11, 7, 3, 0}[g.fmt]
	if g.hdrNeed == 0 {
		return g.afterHeader(false)
	}
	g.st, g.need = gsHeader, g.hdrNeed
	return nil
}

func (g *chunkGuard) messageHeader() error {
	h := g.hdr[:]
	ts := be24(h[0:3])
	cs := g.cur
	if g.fmt <= 1 {
		msgLen := be24(h[3:6])
		if msgLen > g.maxMsg {
			return guardErrorf("message length %d exceeds limit %d", msgLen, g.maxMsg)
		}
		cs.msgLen = msgLen
		cs.typ = h[6]
		if g.fmt == 0 {
			cs.started = true
		}
	}
	return g.afterHeader(ts == 0xFFFFFF)
}

// afterHeader continues after the message header: the extended timestamp, then the body.
func (g *chunkGuard) afterHeader(extField bool) error {
	cs := g.cur
	if g.fmt != 3 {
		if extField {
			g.st, g.need, g.hdrN, g.hdrNeed = gsExtTS, 4, 0, 4
			return nil
		}
		cs.ext = false
	} else if cs.ext {
		g.st, g.need, g.hdrN, g.hdrNeed = gsExtTS, 4, 0, 4
		return nil
	}
	return g.startBody()
}

func (g *chunkGuard) startBody() error {
	cs := g.cur
	if cs.recv == 0 {
		cs.capture = cs.capture[:0]
		if cs.msgLen == 0 {
			switch cs.typ {
			case msgTypeAudio:
				return guardErrorf("empty audio message on chunk stream %d", cs.csid)
			case msgTypeVideo:
				return guardErrorf("empty video message on chunk stream %d", cs.csid)
			}
			// An empty message is complete at once.
			g.st, g.need = gsBasic, 1
			return g.complete(cs)
		}
	}
	g.st = gsBody
	g.need = int(min(cs.msgLen-cs.recv, g.chunkSize))
	return nil
}

func (g *chunkGuard) captures(typ uint8) bool {
	if typ == msgTypeSetChunkSize || typ == msgTypeAbort {
		return true
	}
	return typ < 32 && g.captureTypes&(1<<typ) != 0
}

func (g *chunkGuard) body(b []byte) error {
	cs := g.cur
	if g.captures(cs.typ) && len(cs.capture)+len(b) <= guardCaptureMax {
		cs.capture = append(cs.capture, b...)
	}
	cs.recv += uint32(len(b))
	g.need -= len(b)
	g.inflight += int64(len(b))
	if g.inflight > 2*int64(g.maxMsg) {
		return guardErrorf("unfinished messages hold %d bytes, limit %d", g.inflight, 2*int64(g.maxMsg))
	}
	if g.need > 0 {
		return nil
	}
	g.st, g.need = gsBasic, 1
	if cs.recv < cs.msgLen {
		return nil
	}
	g.inflight -= int64(cs.recv)
	cs.recv = 0
	return g.complete(cs)
}

// complete handles a finished message of chunk stream cs.
func (g *chunkGuard) complete(cs *guardStream) error {
	if !g.captures(cs.typ) {
		return nil
	}
	body := cs.capture
	if uint32(len(body)) != cs.msgLen {
		// Too long to capture: onMessage learns of it with a nil body.
		if g.onMessage != nil && cs.typ < 32 && g.captureTypes&(1<<cs.typ) != 0 {
			return g.onMessage(cs.typ, nil)
		}
		return nil
	}
	switch cs.typ {
	case msgTypeSetChunkSize:
		if len(body) != 4 {
			return guardErrorf("set chunk size message of %d bytes", len(body))
		}
		v := be32(body)
		if v == 0 || v > maxChunkSize {
			return guardErrorf("chunk size %d out of range [1, %d]", v, maxChunkSize)
		}
		g.chunkSize = v
	case msgTypeAbort:
		if len(body) == 4 {
			if v := be32(body); v >= 2 && v <= 63 {
				for i := range g.streams {
					if s := &g.streams[i]; s.csid == byte(v) && s.recv != 0 {
						// gortmplib also forgets the message length.
						g.inflight -= int64(s.recv)
						s.recv, s.msgLen = 0, 0
						s.capture = s.capture[:0]
					}
				}
			}
		}
	}
	if g.onMessage != nil && cs.typ < 32 && g.captureTypes&(1<<cs.typ) != 0 {
		return g.onMessage(cs.typ, body)
	}
	return nil
}

func be24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
