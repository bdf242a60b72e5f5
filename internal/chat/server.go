// Package chat serves live chat over WebSocket: one room per channel, fed by the bus, with
// bounded per-connection send queues, per-user rate limits and moderation.
//
// A message is persisted through onair.ChatService before it is published on the bus
// (topic "chat.{channel}"); each room subscribes to its topic and fans the frames out to
// its connections, so rooms on other nodes see the same messages once the bus spans nodes.
//
// # Frames
//
// Every frame is a JSON text message. The server sends:
//
//	{"type":"message","id":7,"user":"bob","text":"hi","time":"2026-01-02T15:04:05.123Z"}
//	{"type":"delete","id":7}
//	{"type":"error","message":"You are sending messages too fast."}
//	{"type":"notice","message":"bob is timed out for 600 s."}   (to the moderator only)
//
// On join the server first sends the recent history as individual "message" frames,
// oldest first, then live frames; a client that reconnects should de-duplicate by id.
// Clients should ignore frame types they do not know.
//
// The client sends:
//
//	{"type":"message","text":"hi"}                      (signed-in users)
//	{"type":"delete","id":7}                            (owner and admins)
//	{"type":"timeout","user":"bob","seconds":600}       (owner and admins)
//	{"type":"ban","user":"bob"}, {"type":"unban","user":"bob"}
//
// Text is sent as stored (the store trims surrounding spaces): pages must render it as
// text, never as HTML. GET .../chat/history returns the same message objects as a JSON
// array, oldest first.
//
// Limits answer with an error frame and keep the connection. The connection is closed
// with 1001 (going away) when the server shuts down, with 1009 for a frame over
// ReadLimit, and cut without a close handshake when the client does not keep up (its send
// queue is full, a write blocks past WriteTimeout, or a ping goes unanswered).
//
// # Bus events
//
// On topic Topic(channel): bus.TypeChatMessage and bus.TypeChatDelete, whose Data is the
// frame above, sent to clients as is; and bus.TypeChatBan, with Data
// {"type":"ban","user":"bob","until":"RFC 3339"} ("until" absent for a ban), which rooms
// do not forward.
package chat

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/onair/onair/internal/bus"
	"github.com/onair/onair/internal/onair"
)

// Defaults of the Server limits.
const (
	DefaultHistorySize  = 50
	DefaultRate         = 1.0
	DefaultBurst        = 5
	DefaultFrameRate    = 10.0
	DefaultFrameBurst   = 20
	DefaultSendQueue    = 64
	DefaultWriteTimeout = 10 * time.Second
	DefaultPingInterval = 30 * time.Second
	DefaultReadLimit    = 4096
	DefaultBusBuffer    = 1024
	DefaultCloseTimeout = 5 * time.Second
)

// TopicPrefix prefixes a channel's name to form its bus topic ("chat.alice").
const TopicPrefix = "chat."

// Topic returns the bus topic of a channel's chat.
func Topic(channel string) string { return TopicPrefix + channel }

// Server is the chat server. Set its fields, call Start, mount it as an http.Handler, and
// call Close to end every connection.
type Server struct {
	// Chat persists messages and moderation. Required.
	Chat onair.ChatService

	// Channels tells whether a channel exists. Required.
	Channels onair.PlatformChannelService

	// Bus carries chat events between rooms (and nodes). Required.
	Bus bus.Bus

	// CurrentUser returns the signed-in user of a request, nil for anonymous viewers.
	// Default: every viewer is anonymous.
	CurrentUser func(r *http.Request) *onair.User

	// Logger receives connection and room events. Default: discard.
	Logger *slog.Logger

	// OriginPatterns lists extra origins allowed to open a chat WebSocket, matched as in
	// websocket.AcceptOptions.OriginPatterns (path.Match on the origin's host, or on
	// "scheme://host" when the pattern has "://"). The request's own host is always
	// allowed, and so are requests without an Origin header (non-browser clients).
	// Default: none (same host only).
	OriginPatterns []string

	// HistorySize is how many recent messages a joining client gets, and the history
	// endpoint returns. Default: DefaultHistorySize.
	HistorySize int

	// Rate is how many messages per second a user may send on average, over all their
	// connections. Default: DefaultRate.
	Rate float64

	// Burst is how many messages a user may send at once. Default: DefaultBurst.
	Burst int

	// FrameRate and FrameBurst limit the frames of any kind one connection may send (per
	// second, and at once), so that no client can make the server query the database in a
	// loop; a refused frame gets an error frame. Default: DefaultFrameRate,
	// DefaultFrameBurst.
	FrameRate  float64
	FrameBurst int

	// MaxLen is the maximum message length in characters (runes).
	// Default: onair.MaxChatLen.
	MaxLen int

	// SendQueue is how many frames may wait for a slow connection; when its queue is
	// full, the connection is dropped. Default: DefaultSendQueue.
	SendQueue int

	// WriteTimeout bounds one write to a connection, and the wait for a pong; a
	// connection that blocks longer is dropped. Default: DefaultWriteTimeout.
	WriteTimeout time.Duration

	// PingInterval is how often connections are pinged. Default: DefaultPingInterval.
	PingInterval time.Duration

	// ReadLimit is the largest frame accepted from a client, in bytes; a larger one
	// closes the connection (status 1009). Default: DefaultReadLimit.
	ReadLimit int64

	// BusBuffer is the size of each room's bus subscription. Default: DefaultBusBuffer.
	BusBuffer int

	// CloseTimeout bounds how long Close waits for clients to answer the going-away close
	// handshake before cutting them off. Default: DefaultCloseTimeout.
	CloseTimeout time.Duration

	// Now returns the current time. Default: time.Now.
	Now func() time.Time

	ctx     context.Context
	cancel  context.CancelFunc
	epoch   time.Time
	closing chan struct{} // closed when Close starts
	limiter *limiter

	mu      sync.Mutex
	rooms   map[string]*room
	closed  bool
	started bool
	wg      sync.WaitGroup // ServeHTTP connections and room loops
	nextID  atomic.Uint64
}

// Start applies the defaults and validates the fields.
func (s *Server) Start() error {
	if s.Chat == nil || s.Channels == nil || s.Bus == nil {
		return errors.New("chat server: Chat, Channels and Bus are required")
	}
	if s.CurrentUser == nil {
		s.CurrentUser = func(*http.Request) *onair.User { return nil }
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.HistorySize <= 0 {
		s.HistorySize = DefaultHistorySize
	}
	if s.Rate <= 0 {
		s.Rate = DefaultRate
	}
	if s.Burst <= 0 {
		s.Burst = DefaultBurst
	}
	if s.FrameRate <= 0 {
		s.FrameRate = DefaultFrameRate
	}
	if s.FrameBurst <= 0 {
		s.FrameBurst = DefaultFrameBurst
	}
	if s.MaxLen <= 0 {
		s.MaxLen = onair.MaxChatLen
	}
	if s.SendQueue <= 0 {
		s.SendQueue = DefaultSendQueue
	}
	if s.WriteTimeout <= 0 {
		s.WriteTimeout = DefaultWriteTimeout
	}
	if s.PingInterval <= 0 {
		s.PingInterval = DefaultPingInterval
	}
	if s.ReadLimit <= 0 {
		s.ReadLimit = DefaultReadLimit
	}
	if s.BusBuffer <= 0 {
		s.BusBuffer = DefaultBusBuffer
	}
	if s.CloseTimeout <= 0 {
		s.CloseTimeout = DefaultCloseTimeout
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	for _, p := range s.OriginPatterns {
		if _, err := matchOrigin(p, "x"); err != nil {
			return errors.New("chat server: bad origin pattern " + p)
		}
	}
	s.limiter = newLimiter(s.Rate, s.Burst)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.epoch = time.Now()
	s.closing = make(chan struct{})
	s.mu.Lock()
	s.rooms = make(map[string]*room)
	s.started = true
	s.mu.Unlock()
	s.wg.Go(s.watchdog)
	return nil
}

// monotonic returns a monotonic clock reading in nanoseconds (never 0).
func (s *Server) monotonic() int64 { return int64(time.Since(s.epoch)) + 1 }

// watchdog cuts connections whose write batch has lasted longer than WriteTimeout. One
// scan of every connection a few times per WriteTimeout is far cheaper than a timer or
// context per write.
func (s *Server) watchdog() {
	t := time.NewTicker(min(s.WriteTimeout/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
		deadline := s.monotonic() - int64(s.WriteTimeout)
		s.mu.Lock()
		rooms := make([]*room, 0, len(s.rooms))
		for _, r := range s.rooms {
			rooms = append(rooms, r)
		}
		s.mu.Unlock()
		for _, r := range rooms {
			r.cutStuck(deadline)
		}
	}
}

// Close sends every connection a going-away close frame, waits up to CloseTimeout for the
// close handshakes, then cuts the remaining connections and waits for every goroutine.
// It is safe to call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if !s.started || s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.closing)
	var conns []*conn
	for _, r := range s.rooms {
		conns = append(conns, r.snapshot()...)
	}
	s.mu.Unlock()

	for _, c := range conns {
		c.goAway()
	}
	done := make(chan struct{})
	var waiter sync.WaitGroup
	waiter.Go(func() {
		s.wg.Wait()
		close(done)
	})
	t := time.NewTimer(s.CloseTimeout)
	select {
	case <-done:
	case <-t.C:
		s.Logger.Warn("chat close timed out, cutting connections")
	}
	t.Stop()
	s.cancel()
	waiter.Wait()
}

// Clients returns how many chat connections (open watch pages) the channel has.
func (s *Server) Clients(channel string) int {
	s.mu.Lock()
	r := s.rooms[channel]
	s.mu.Unlock()
	if r == nil {
		return 0
	}
	return r.len()
}

// Connections returns how many chat connections this node has open, in every room (of
// channels live here, live on another node, or offline).
func (s *Server) Connections() int {
	s.mu.Lock()
	rooms := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	n := 0
	for _, r := range rooms {
		n += r.len()
	}
	return n
}

// ServeHTTP serves GET /api/v1/channels/{username}/chat (WebSocket) and
// GET /api/v1/channels/{username}/chat/history (JSON). It looks only at the end of the
// path, so it can be mounted under any prefix.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	channel, history, ok := parsePath(r.URL.Path)
	if !ok {
		writeError(w, onair.Errorf(onair.ENOTFOUND, "Not found."))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, &statusError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", message: "Method not allowed."})
		return
	}
	s.mu.Lock()
	closed := !s.started || s.closed
	s.mu.Unlock()
	if closed {
		writeError(w, errUnavailable)
		return
	}
	if err := onair.ValidateUsername(channel); err != nil {
		writeError(w, errNoChannel(channel))
		return
	}
	if _, err := s.Channels.ChannelInfo(r.Context(), channel); err != nil {
		if onair.ErrorCode(err) == onair.ENOTFOUND {
			err = errNoChannel(channel)
		}
		s.writeError(w, r, err)
		return
	}
	if history {
		s.serveHistory(w, r, channel)
		return
	}
	s.serveWebSocket(w, r, channel)
}

func errNoChannel(channel string) error {
	return onair.Errorf(onair.ENOTFOUND, "Channel %q not found.", channel)
}

// parsePath returns the channel of ".../channels/{name}/chat" or
// ".../channels/{name}/chat/history".
func parsePath(p string) (channel string, history bool, ok bool) {
	rest, found := strings.CutSuffix(p, "/chat/history")
	if found {
		history = true
	} else if rest, found = strings.CutSuffix(p, "/chat"); !found {
		return "", false, false
	}
	i := strings.LastIndexByte(rest, '/')
	if i < 0 || !strings.HasSuffix(rest[:i], "/channels") {
		return "", false, false
	}
	return rest[i+1:], history, true
}

func (s *Server) serveHistory(w http.ResponseWriter, r *http.Request, channel string) {
	msgs, err := s.Chat.RecentMessages(r.Context(), channel, s.HistorySize)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	frames := make([]messageFrame, 0, len(msgs))
	for _, m := range msgs {
		frames = append(frames, newMessageFrame(m))
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, frames)
}

// serveWebSocket checks the origin, upgrades, and runs the connection until it ends.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, channel string) {
	if !s.originAllowed(r) {
		writeError(w, onair.Errorf(onair.EFORBIDDEN, "Cross-origin chat connections are not allowed."))
		return
	}
	user := s.CurrentUser(r)
	if user != nil && user.Banned {
		user = nil
	}

	// Count the connection before upgrading, so Close waits for it.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeError(w, errUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	hw := &hijackRecorder{ResponseWriter: w}
	ws, err := websocket.Accept(hw, r, &websocket.AcceptOptions{OriginPatterns: s.OriginPatterns})
	if err != nil {
		// Accept has written the response (426, 400, 403 or 500).
		s.Logger.Debug("chat upgrade refused", slog.String("remote_addr", r.RemoteAddr), slog.Any("err", err))
		return
	}
	ws.SetReadLimit(s.ReadLimit)

	c := newConn(s, ws, hw.conn, channel, user, r.RemoteAddr)
	c.run()
}

// hijackRecorder lets websocket.Accept hijack the connection through it and keeps the raw
// net.Conn: closing that is the one way to cut a connection at once, even in the middle
// of a close handshake with a client that does not answer. It reaches the server's
// Hijacker through any middleware that implements Unwrap, as http.ResponseController does.
type hijackRecorder struct {
	http.ResponseWriter
	conn net.Conn
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	h.conn = c
	return c, brw, err
}

// originAllowed applies coder/websocket's rule (the request host, OriginPatterns, or no
// Origin header) before the upgrade, so a refusal is a JSON 403.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, p := range s.OriginPatterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := matchOrigin(p, target); ok {
			return true
		}
	}
	return false
}

// join adds c to its channel's room, creating the room on first join. It fails when the
// server is closing or the bus refuses the subscription.
func (s *Server) join(c *conn) (*room, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errUnavailable
	}
	r := s.rooms[c.channel]
	if r == nil {
		sub, err := s.Bus.Subscribe(Topic(c.channel), s.BusBuffer)
		if err != nil {
			return nil, err
		}
		r = newRoom(s, c.channel, sub)
		s.rooms[c.channel] = r
		s.wg.Go(r.run)
		s.Logger.Debug("chat room created", slog.String("channel", c.channel))
	}
	r.add(c)
	return r, nil
}

// leave removes c from its room, and removes the room when it is empty.
func (s *Server) leave(r *room, c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.remove(c) > 0 {
		return
	}
	if s.rooms[r.channel] == r {
		delete(s.rooms, r.channel)
		r.sub.Close() // ends r.run
		s.Logger.Debug("chat room removed", slog.String("channel", r.channel))
	}
}

// dropRoom forgets a room whose bus subscription ended (the bus closed).
func (s *Server) dropRoom(r *room) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms[r.channel] == r {
		delete(s.rooms, r.channel)
	}
}

// publish sends a chat event to the channel's topic.
func (s *Server) publish(ctx context.Context, channel, typ string, frame []byte) error {
	return s.Bus.Publish(ctx, Topic(channel), bus.Event{Type: typ, Channel: channel, Data: frame})
}

// statusError is an HTTP error that is not an onair code.
type statusError struct {
	status  int
	code    string
	message string
}

func (e *statusError) Error() string { return e.message }

var errUnavailable = &statusError{status: http.StatusServiceUnavailable, code: "unavailable", message: "Chat is not available."}

// errorStatuses maps onair error codes to HTTP statuses, as the web package does.
var errorStatuses = map[string]int{
	onair.EINVALID:      http.StatusBadRequest,
	onair.EUNAUTHORIZED: http.StatusUnauthorized,
	onair.EFORBIDDEN:    http.StatusForbidden,
	onair.ENOTFOUND:     http.StatusNotFound,
	onair.ECONFLICT:     http.StatusConflict,
	onair.ETOOMANY:      http.StatusTooManyRequests,
}

// writeError writes err as {"error":{"code","message"}}, logging internal errors.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var se *statusError
	if !errors.As(err, &se) {
		if _, ok := errorStatuses[onair.ErrorCode(err)]; !ok {
			s.Logger.Error("chat request failed", slog.String("path", r.URL.Path), slog.Any("err", err))
		}
	}
	writeError(w, err)
}

func writeError(w http.ResponseWriter, err error) {
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	var se *statusError
	if errors.As(err, &se) {
		writeJSON(w, se.status, map[string]body{"error": {se.code, se.message}})
		return
	}
	code := onair.ErrorCode(err)
	status, ok := errorStatuses[code]
	if !ok {
		status, code = http.StatusInternalServerError, onair.EINTERNAL
	}
	writeJSON(w, status, map[string]body{"error": {code, onair.ErrorMessage(err)}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"Internal error."}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
