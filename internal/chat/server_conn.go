package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/onair/onair/internal/bus"
	"github.com/onair/onair/internal/onair"
)

// Reasons a connection ends, as context causes.
var (
	errSlowClient   = errors.New("send queue full")
	errPingTimeout  = errors.New("no pong")
	errWriteTimeout = errors.New("write timeout")
	errConnDone     = errors.New("connection done")
)

// outFrame is an encoded frame waiting in a connection's queue. msgID is the message id of
// a "message" frame (0 for others), used to skip messages already sent as history.
type outFrame struct {
	msgID int64
	data  []byte
}

// conn is one WebSocket connection. The goroutine of ServeHTTP reads and handles the
// client's frames; a writer goroutine drains the bounded send queue; a pinger keeps the
// connection alive. Cancelling ctx cuts the connection at once (slow client, shutdown
// timeout); goAway asks the writer for a going-away close handshake instead.
//
// The queue is a slice under a mutex plus a one-slot wake-up channel rather than a
// buffered channel, so the writer blocks on a single channel receive (no select) and takes
// everything queued in one swap: with thousands of writers woken per message, that is a
// measurable share of the CPU.
type conn struct {
	s       *Server
	ws      *websocket.Conn
	raw     net.Conn // under ws; closing it cuts the connection at once
	channel string
	user    *onair.User
	logger  *slog.Logger

	ctx    context.Context
	cancel context.CancelCauseFunc

	wake  chan struct{} // one slot: something to do (frames, away, or ctx done)
	qmu   sync.Mutex
	queue []outFrame // at most Server.SendQueue frames
	away  bool       // close with StatusGoingAway

	// writingSince is when the current write batch started (Server.monotonic), 0 when
	// idle; the server's watchdog cuts connections that stay in one batch past
	// WriteTimeout.
	writingSince atomic.Int64
}

func newConn(s *Server, ws *websocket.Conn, raw net.Conn, channel string, user *onair.User, remoteAddr string) *conn {
	ctx, cancel := context.WithCancelCause(s.ctx)
	logger := s.Logger.With(
		slog.Uint64("conn_id", s.nextID.Add(1)),
		slog.String("remote_addr", remoteAddr),
		slog.String("channel", channel))
	if user != nil {
		logger = logger.With(slog.Int64("user_id", user.ID))
	}
	return &conn{
		s:       s,
		ws:      ws,
		raw:     raw,
		channel: channel,
		user:    user,
		logger:  logger,
		ctx:     ctx,
		cancel:  cancel,
		wake:    make(chan struct{}, 1),
	}
}

// push queues f without blocking; a full queue drops the connection.
func (c *conn) push(f outFrame) {
	c.qmu.Lock()
	if len(c.queue) >= c.s.SendQueue {
		c.qmu.Unlock()
		c.cancel(errSlowClient)
		return
	}
	c.queue = append(c.queue, f)
	c.qmu.Unlock()
	c.signal()
}

// signal wakes the writer.
func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// goAway asks the connection to close with StatusGoingAway.
func (c *conn) goAway() {
	c.qmu.Lock()
	c.away = true
	c.qmu.Unlock()
	c.signal()
}

// run joins the room, starts the writer and pinger, and reads until the connection ends.
func (c *conn) run() {
	defer c.ws.CloseNow() //nolint:errcheck // the end of the connection either way

	// Cancelling ctx closes the socket, which unblocks any read, write or close handshake
	// in progress. (Writes run without a context of their own, because a context per write
	// costs more CPU than the write itself when one message goes to thousands of
	// connections.)
	cut := make(chan struct{})
	stopCut := context.AfterFunc(c.ctx, func() {
		defer close(cut)
		c.signal()
		c.raw.Close() //nolint:errcheck // cutting
	})
	defer func() {
		if !stopCut() {
			<-cut
		}
	}()

	r, err := c.s.join(c)
	if err != nil {
		if !errors.Is(err, errUnavailable) {
			c.logger.Error("chat join failed", slog.Any("err", err))
		}
		c.ws.Close(websocket.StatusGoingAway, "chat unavailable") //nolint:errcheck // closing
		return
	}
	c.logger.Debug("chat connection opened")

	// Subscribed first, then the history: a message saved in between is both in the
	// history and in the queue, and the writer skips the copy.
	history, err := c.s.Chat.RecentMessages(c.ctx, c.channel, c.s.HistorySize)
	if err != nil && c.ctx.Err() == nil {
		c.logger.Error("chat history failed", slog.Any("err", err))
	}
	frames := make([]outFrame, 0, len(history))
	for _, m := range history {
		frames = append(frames, outFrame{msgID: m.ID, data: encodeFrame(newMessageFrame(m))})
	}

	var wg sync.WaitGroup
	wg.Go(func() { c.writeLoop(frames) })
	wg.Go(c.pingLoop)

	err = c.readLoop()
	c.s.leave(r, c)
	c.cancel(errConnDone)
	wg.Wait()

	cause := context.Cause(c.ctx)
	switch {
	case errors.Is(cause, errSlowClient), errors.Is(cause, errPingTimeout), errors.Is(cause, errWriteTimeout):
		c.logger.Warn("slow chat client disconnected", slog.String("reason", cause.Error()))
	default:
		c.logger.Debug("chat connection closed", slog.Any("err", err))
	}
}

// readLoop reads frames until the connection fails or closes.
func (c *conn) readLoop() error {
	frames := bucket{tokens: float64(c.s.FrameBurst), last: c.s.Now()}
	for {
		typ, b, err := c.ws.Read(c.ctx)
		if err != nil {
			return err
		}
		if ok, _ := frames.take(c.s.Now(), c.s.FrameRate, float64(c.s.FrameBurst)); !ok {
			c.sendError("You are sending too fast.")
			continue
		}
		if typ != websocket.MessageText {
			c.sendError("Frames must be JSON text.")
			continue
		}
		f, err := decodeFrame(b)
		if err != nil {
			c.sendError(onair.ErrorMessage(err))
			continue
		}
		c.handle(f)
	}
}

// handle acts on one client frame, answering errors with an error frame.
func (c *conn) handle(f inFrame) {
	if c.user == nil {
		c.sendError("Log in to chat.")
		return
	}
	var err error
	switch f.Type {
	case "message":
		err = c.handleMessage(f.Text)
	case "delete":
		err = c.handleDelete(f.ID)
	case "timeout":
		err = c.handleBan(f.User, time.Duration(f.Seconds)*time.Second)
		if err == nil {
			c.sendNotice(fmt.Sprintf("%s is timed out for %d s.", f.User, f.Seconds))
		}
	case "ban":
		err = c.handleBan(f.User, 0)
		if err == nil {
			c.sendNotice(f.User + " is banned from this chat.")
		}
	case "unban":
		err = c.s.Chat.UnbanFromChat(c.ctx, c.user, c.channel, f.User)
		if err == nil {
			c.sendNotice(f.User + " may chat again.")
		}
	}
	if err != nil {
		if onair.ErrorCode(err) == onair.EINTERNAL && c.ctx.Err() == nil {
			c.logger.Error("chat frame failed", slog.String("type", f.Type), slog.Any("err", err))
		}
		c.sendError(onair.ErrorMessage(err))
	}
}

func (c *conn) handleMessage(text string) error {
	if n := utf8.RuneCountInString(text); n > c.s.MaxLen {
		return onair.Errorf(onair.EINVALID, "Message is too long (at most %d characters).", c.s.MaxLen)
	}
	if ok, wait := c.s.limiter.allow(c.user.ID, c.s.Now()); !ok {
		return onair.Errorf(onair.ETOOMANY, "You are sending messages too fast. Wait %s.", waitText(wait))
	}
	m := &onair.ChatMessage{Channel: c.channel, UserID: c.user.ID, User: c.user.Username, Text: text}
	if err := c.s.Chat.SaveMessage(c.ctx, m); err != nil {
		return err
	}
	if m.User == "" {
		m.User = c.user.Username
	}
	if err := c.s.publish(c.ctx, c.channel, bus.TypeChatMessage, encodeFrame(newMessageFrame(m))); err != nil {
		return fmt.Errorf("publish chat message: %w", err)
	}
	return nil
}

func (c *conn) handleDelete(id int64) error {
	channel, err := c.s.Chat.DeleteMessage(c.ctx, c.user, id)
	if err != nil {
		return err
	}
	if err := c.s.publish(c.ctx, channel, bus.TypeChatDelete, encodeFrame(deleteFrame{Type: "delete", ID: id})); err != nil {
		return fmt.Errorf("publish chat delete: %w", err)
	}
	return nil
}

func (c *conn) handleBan(user string, d time.Duration) error {
	if err := c.s.Chat.BanFromChat(c.ctx, c.user, c.channel, user, d); err != nil {
		return err
	}
	ev := banEvent{Type: "ban", User: user}
	if d > 0 {
		until := c.s.Now().Add(d).UTC()
		ev.Until = &until
	}
	if err := c.s.publish(c.ctx, c.channel, bus.TypeChatBan, encodeFrame(ev)); err != nil {
		return fmt.Errorf("publish chat ban: %w", err)
	}
	return nil
}

func (c *conn) sendError(msg string) {
	c.push(outFrame{data: encodeFrame(textFrame{Type: "error", Message: msg})})
}

func (c *conn) sendNotice(msg string) {
	c.push(outFrame{data: encodeFrame(textFrame{Type: "notice", Message: msg})})
}

// writeLoop writes the history, then the queue, until the connection ends. A write batch
// that takes longer than WriteTimeout cuts the connection.
func (c *conn) writeLoop(history []outFrame) {
	seen := make(map[int64]struct{}, len(history))
	for _, f := range history {
		seen[f.msgID] = struct{}{}
	}
	if !c.write(history) {
		return
	}
	var batch []outFrame
	for {
		<-c.wake
		if c.ctx.Err() != nil {
			return
		}
		c.qmu.Lock()
		batch, c.queue = c.queue, batch[:0]
		away := c.away
		c.qmu.Unlock()
		if away {
			c.ws.Close(websocket.StatusGoingAway, "server shutting down") //nolint:errcheck // closing
			return
		}
		if len(seen) > 0 {
			batch = skipSeen(batch, seen)
		}
		if !c.write(batch) {
			return
		}
	}
}

// skipSeen drops message frames already sent as history.
func skipSeen(batch []outFrame, seen map[int64]struct{}) []outFrame {
	out := batch[:0]
	for _, f := range batch {
		if _, dup := seen[f.msgID]; f.msgID != 0 && dup {
			continue
		}
		out = append(out, f)
	}
	return out
}

// write writes frames; false means the connection is over. The watchdog cuts the
// connection when the batch takes longer than WriteTimeout.
func (c *conn) write(frames []outFrame) bool {
	if len(frames) == 0 {
		return true
	}
	c.writingSince.Store(c.s.monotonic())
	defer c.writingSince.Store(0)
	for _, f := range frames {
		if err := c.ws.Write(context.Background(), websocket.MessageText, f.data); err != nil {
			c.cancel(err)
			return false
		}
	}
	return true
}

// stuck reports whether the connection has been in one write batch since before
// deadline (a monotonic reading).
func (c *conn) stuck(deadline int64) bool {
	since := c.writingSince.Load()
	return since != 0 && since < deadline
}

// pingLoop pings every PingInterval; a pong later than WriteTimeout cuts the connection.
func (c *conn) pingLoop() {
	t := time.NewTicker(c.s.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.s.WriteTimeout)
		err := c.ws.Ping(ctx)
		timedOut := ctx.Err() != nil && c.ctx.Err() == nil
		cancel()
		if timedOut {
			c.cancel(errPingTimeout)
			return
		} else if err != nil {
			c.cancel(err)
			return
		}
	}
}

// waitText renders a rate-limit wait in whole seconds, at least one.
func waitText(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s <= 1 {
		return "a second"
	}
	return strconv.FormatInt(s, 10) + " seconds"
}
