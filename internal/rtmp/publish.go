package rtmp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/message"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/unit"
)

// Limits of the media buffered while a publisher's tracks are being found.
const (
	maxPendingUnits = 1024
)

// publishReadAhead is the chunk guard's read size for an accepted publisher: a video frame
// (tens of KB) then takes one read of the socket instead of one per 4 KiB (gortmplib's
// bufio size).
const publishReadAhead = 64 << 10

// publishReadPace is the shortest time between two reads of a publisher's socket (unless
// the last read filled the read-ahead buffer): a publisher's goroutine wakes at most ~25
// times a second instead of once per TCP segment (~75 a second for 30 fps video and AAC,
// and as many reads that find nothing), at the cost of up to this much ingest latency.
const publishReadPace = 40 * time.Millisecond

// Track kinds of a publish session (a session has at most one video and one audio track).
const (
	kindVideo = 0
	kindAudio = 1
)

// handlePublish authorizes the stream key, refuses a second publisher, then runs the
// publish session.
func (s *Server) handlePublish(c *conn, sc *gortmplib.ServerConn) error {
	key := lastPathElement(sc.URL)
	if s.limiter.blocked(c.ip) {
		s.rejectPublish(c, sc, errKeyRateLimited)
		return nil
	}
	channel, err := s.authorize(key)
	if err != nil {
		if errors.Is(err, errWrongKey) && s.limiter.fail(c.ip) {
			err = fmt.Errorf("%w; address blocked for %v", err, s.AuthBlock)
		}
		s.rejectPublish(c, sc, err)
		return nil
	}
	c.guard.setReadAhead(publishReadAhead, publishReadPace)
	if !s.claim(channel, c) {
		s.rejectPublish(c, sc, errPublisherActive, "channel", channel)
		return nil
	}
	defer s.release(channel, c)
	if err := s.authorizePublish(channel, c); err != nil {
		s.rejectPublish(c, sc, err, "channel", channel)
		return nil
	}
	c.stats.setState(ConnPublishing, channel)

	if err := sc.AcceptAction(); err != nil {
		return err
	}
	p := &publishSession{s: s, c: c, src: sc, channel: channel, source: hub.SourceIngest}
	return p.run()
}

// authorize maps the key to a channel. A wrong key yields errWrongKey; the error never
// carries the key.
func (s *Server) authorize(key string) (string, error) {
	if key == "" {
		return "", errWrongKey
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.AuthTimeout)
	defer cancel()
	channel, err := s.Authorize(ctx, onair.StreamKey(key))
	switch {
	case onair.ErrorCode(err) == onair.ENOTFOUND:
		return "", errWrongKey
	case err != nil:
		return "", fmt.Errorf("authorize: %s", onair.ErrorMessage(err))
	case channel == "":
		return "", errWrongKey
	}
	return channel, nil
}

// authorizePublish asks AuthorizePublish, when set, whether c may publish to channel.
func (s *Server) authorizePublish(channel string, c *conn) error {
	if s.AuthorizePublish == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.AuthTimeout)
	defer cancel()
	addr := c.remote
	if c.ip.IsValid() {
		addr = c.ip.String()
	}
	if err := s.AuthorizePublish(ctx, channel, addr); err != nil {
		return fmt.Errorf("%w: %s", errPublishDenied, onair.ErrorMessage(err))
	}
	return nil
}

func (s *Server) rejectPublish(c *conn, sc *gortmplib.ServerConn, reason error, attrs ...any) {
	s.Logger.Warn("publish rejected",
		append([]any{"conn_id", c.id, "remote_addr", c.remote, "err", reason}, attrs...)...)
	c.reject(sc)
}

// messageSource is where a publish session reads its messages: a publisher's
// ServerConn, or the Client of a relay pull.
type messageSource interface {
	Read() (message.Message, error)
	BytesReceived() uint64
}

// publishSession reads a publisher's messages, finds its tracks, then writes units to
// the hub. A relay pull (Server.Pull) runs one on the messages an origin node plays.
type publishSession struct {
	s       *Server
	c       *conn
	src     messageSource
	channel string
	source  hub.Source // SourceIngest for a publisher, SourceRelay for a pull
	onLive  func()     // called once, when the hub stream exists (may be nil)

	meta   streamMeta
	tracks [2]*ingestTrack // by kind
	ts     timeline        // unwraps the 32-bit message timestamps

	// before going live
	pending      []*unit.Unit // Track holds the kind until the session's track list exists
	pendingBytes int
	firstTS      time.Duration
	lastTS       time.Duration
	haveTS       bool

	// live
	pub       *hub.Publisher
	index     [2]int // track index in the hub session, by kind (-1: not in the session)
	stopWatch func()
	kicked    atomic.Bool
	liveAt    time.Time
	sessions  int
}

func (p *publishSession) run() (err error) {
	defer func() {
		p.end()
		if p.kicked.Load() {
			err = errEndedByServer
		}
		if p.sessions > 0 {
			p.s.Logger.Info("publish ended", p.logAttrs("duration", p.s.Now().Sub(p.liveAt).Round(time.Millisecond),
				"bytes", p.src.BytesReceived(), "codecs", p.codecs(), "reason", endReason(err))...)
		}
	}()
	for {
		msg, err := p.src.Read()
		if err != nil {
			return err
		}
		if err := p.handle(msg); err != nil {
			return err
		}
		if p.pub == nil && p.probeDone() {
			if err := p.goLive(); err != nil {
				return err
			}
		}
	}
}

func endReason(err error) string {
	switch {
	case err == nil, errors.Is(err, errUnpublished):
		return "unpublished"
	case errors.Is(err, errEndedByServer):
		return "ended by server"
	case isOrdinaryEnd(err):
		return "disconnected"
	}
	return err.Error()
}

// logAttrs returns the session's log attributes followed by more.
func (p *publishSession) logAttrs(more ...any) []any {
	attrs := []any{"channel", p.channel, "conn_id", p.c.id, "remote_addr", p.c.remote}
	if p.source != hub.SourceIngest {
		attrs = append(attrs, "source", p.source.String())
	}
	return append(attrs, more...)
}

// end detaches from the hub for good. A relayed stream ends at once: its origin node
// keeps the grace window, and a pull that stopped does not come back.
func (p *publishSession) end() {
	if p.source == hub.SourceRelay && p.pub != nil {
		p.pub.End()
	}
	p.stop()
}

// stop detaches from the hub (the stream enters its grace window).
func (p *publishSession) stop() {
	if p.stopWatch != nil {
		p.stopWatch()
		p.stopWatch = nil
	}
	if p.pub != nil {
		p.pub.Close()
		p.pub = nil
	}
}

func (p *publishSession) codecs() string {
	var names []string
	for _, it := range p.tracks {
		if it != nil && it.track != nil {
			names = append(names, it.track.Codec.String())
		}
	}
	return strings.Join(names, ",")
}

// known reports whether the track of kind k has its codec parameters.
func (p *publishSession) known(k int) bool {
	it := p.tracks[k]
	return it != nil && it.track != nil && (it.track.Codec != unit.CodecAV1 || it.track.AV1SequenceHeader != nil)
}

// probeDone reports whether the session can go live: every track the metadata announced
// is configured (audio and video when there is no metadata), or enough media went by.
func (p *publishSession) probeDone() bool {
	v, a := p.known(kindVideo), p.known(kindAudio)
	if p.meta.seen {
		if (v || !p.meta.video) && (a || !p.meta.audio) && (v || a) {
			return true
		}
	} else if v && a {
		return true
	}
	return (v || a) && (len(p.pending) >= maxPendingUnits ||
		p.pendingBytes >= 2*p.s.MaxMessageSize ||
		(p.haveTS && p.lastTS-p.firstTS >= p.s.ProbeDuration))
}

// goLive starts a hub session with the known tracks and feeds it the buffered media.
func (p *publishSession) goLive() error {
	var tracks []*unit.Track
	for k := range p.tracks {
		p.index[k] = -1
		if p.known(k) {
			p.index[k] = len(tracks)
			tracks = append(tracks, p.tracks[k].track)
		}
	}
	if len(tracks) == 0 {
		return errMissingSeqHeader
	}
	pub, err := p.s.Hub.PublishFrom(p.channel, tracks, p.source)
	if err != nil {
		if errors.Is(err, hub.ErrPublisherActive) {
			return errPublisherActive
		}
		return fmt.Errorf("publish: %w", err)
	}
	p.pub = pub
	p.watch(pub)
	p.c.stats.active.Store(true)
	p.sessions++
	if p.sessions == 1 {
		p.liveAt = p.s.Now()
		p.s.Logger.Info("publish started", p.logAttrs("codecs", p.codecs())...)
	}
	pending := p.pending
	p.pending, p.pendingBytes, p.haveTS = nil, 0, false
	for _, u := range pending {
		k := u.Track
		if p.index[k] < 0 {
			continue
		}
		u.Track = p.index[k]
		if err := p.writeLive(u); err != nil {
			return err
		}
	}
	if p.onLive != nil {
		// The first session is live with its buffered media (a relay's first GOP) cached.
		p.onLive()
		p.onLive = nil
	}
	return nil
}

// restart ends the hub session and starts another one with the current tracks (the
// hub tells readers with a discontinuity).
func (p *publishSession) restart(reason string) error {
	p.s.Logger.Info("publish session restarted", p.logAttrs("codecs", p.codecs(), "reason", reason)...)
	p.stop()
	return p.goLive()
}

// watch closes the connection when the hub kicks the publisher.
func (p *publishSession) watch(pub *hub.Publisher) {
	stop := make(chan struct{})
	done := make(chan struct{})
	p.s.wg.Add(1)
	go func() {
		defer p.s.wg.Done()
		defer close(done)
		select {
		case <-pub.Done():
			p.kicked.Store(true)
			p.c.nc.Close()
		case <-stop:
		}
	}()
	p.stopWatch = func() {
		close(stop)
		<-done
	}
}

// setTrack installs a new configuration for kind k. Once live, a changed configuration
// restarts the hub session: the hub sends readers the new tracks with a discontinuity.
func (p *publishSession) setTrack(k int, it *ingestTrack) error {
	old := p.tracks[k]
	if old != nil && old.track != nil && it.track != nil && sameTrack(old.track, it.track) {
		old.nalLen = it.nalLen
		return nil
	}
	p.tracks[k] = it
	if p.pub == nil {
		return nil
	}
	if !p.known(k) {
		return nil
	}
	reason := "sequence header changed"
	if p.index[k] < 0 {
		reason = "track added"
	}
	return p.restart(reason)
}

// write hands a unit of kind k to the hub, or buffers it before the session is live.
func (p *publishSession) write(k int, u *unit.Unit) error {
	p.c.stats.media(u.DTS, k == kindVideo)
	if p.pub == nil {
		// Only media of tracks that are not fully configured yet (an AV1 track waiting for
		// its sequence header) can pile up here: the session goes live as soon as a track is known.
		if len(p.pending) >= maxPendingUnits || p.pendingBytes >= 2*p.s.MaxMessageSize {
			return fmt.Errorf("%w: %d units buffered", errMissingSeqHeader, len(p.pending))
		}
		if !p.haveTS {
			p.firstTS, p.haveTS = u.DTS, true
		}
		p.lastTS = max(p.lastTS, u.DTS)
		u.Track = k
		p.pending = append(p.pending, u)
		p.pendingBytes += u.Size
		return nil
	}
	if p.index[k] < 0 {
		if !p.known(k) {
			return nil
		}
		if err := p.restart("track added"); err != nil {
			return err
		}
	}
	u.Track = p.index[k]
	return p.writeLive(u)
}

func (p *publishSession) writeLive(u *unit.Unit) error {
	if err := p.pub.WriteUnit(u); err != nil {
		if errors.Is(err, hub.ErrPublisherClosed) {
			return errEndedByServer
		}
		return err
	}
	return nil
}
