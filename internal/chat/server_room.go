package chat

import (
	"encoding/json"
	"log/slog"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/onair/onair/internal/bus"
)

// dropReportInterval limits how often a room reports bus drops.
const dropReportInterval = 10 * time.Second

// room is the set of connections of one channel. Its run loop reads the channel's bus
// topic and puts each frame on every connection's queue without blocking: a connection
// whose queue is full is dropped, so one slow client never slows the others.
type room struct {
	s       *Server
	channel string
	sub     bus.Subscription
	logger  *slog.Logger

	mu    sync.Mutex
	conns map[*conn]struct{}
}

func newRoom(s *Server, channel string, sub bus.Subscription) *room {
	return &room{
		s:       s,
		channel: channel,
		sub:     sub,
		logger:  s.Logger.With(slog.String("channel", channel)),
		conns:   make(map[*conn]struct{}),
	}
}

func (r *room) add(c *conn) {
	r.mu.Lock()
	r.conns[c] = struct{}{}
	r.mu.Unlock()
}

// remove removes c and returns how many connections are left.
func (r *room) remove(c *conn) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.conns, c)
	return len(r.conns)
}

func (r *room) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

func (r *room) snapshot() []*conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	conns := make([]*conn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	return conns
}

// run fans the topic's frames out until the subscription is closed: by the last leave,
// or by the bus closing (then every connection is sent away, since chat is dead).
func (r *room) run() {
	var reported uint64
	var lastReport time.Time
	for ev := range r.sub.C() {
		var f outFrame
		switch ev.Type {
		case bus.TypeChatMessage:
			var m struct {
				ID int64 `json:"id"`
			}
			if err := json.Unmarshal(ev.Data, &m); err != nil {
				r.logger.Warn("bad chat event", slog.String("type", ev.Type), slog.Any("err", err))
				continue
			}
			f = outFrame{msgID: m.ID, data: ev.Data}
		case bus.TypeChatDelete:
			f = outFrame{data: ev.Data}
		default:
			continue // chat.ban and others are not shown
		}
		r.broadcast(f)

		if d := r.sub.Dropped(); d > reported && time.Since(lastReport) >= dropReportInterval {
			r.logger.Warn("chat room fell behind the bus", slog.Uint64("dropped", d-reported))
			reported, lastReport = d, time.Now()
		}
	}

	r.s.dropRoom(r)
	for _, c := range r.snapshot() {
		c.goAway() // the bus closed under us
	}
}

func (r *room) broadcast(f outFrame) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		c.push(f)
	}
}

// cutStuck cuts the connections stuck in a write since before deadline.
func (r *room) cutStuck(deadline int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.conns {
		if c.stuck(deadline) {
			c.cancel(errWriteTimeout)
		}
	}
}

// matchOrigin matches an origin host (or scheme://host) against a pattern as
// coder/websocket does: path.Match, case-insensitively.
func matchOrigin(pattern, s string) (bool, error) {
	return path.Match(strings.ToLower(pattern), strings.ToLower(s))
}
