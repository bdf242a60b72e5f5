package chat_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/onair/onair/internal/bus"
	"github.com/onair/onair/internal/chat"
	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// userHeader names the test user of a request; the harness's CurrentUser reads it.
const userHeader = "X-Test-User"

// harness is a chat server on the real SQLite store, behind an httptest server. Users:
// sysop (the first user, a site admin), alice (owns the channel used in tests), bob, carol.
type harness struct {
	t    testing.TB
	db   *store.DB
	chat *store.ChatService
	bus  *bus.Local
	srv  *chat.Server // the current server; swap changes it
	ts   *httptest.Server

	active    atomic.Pointer[chat.Server]
	transport *http.Transport
	users     map[string]*onair.User

	// dialer, when set, dials the client side of WebSocket connections.
	dialer func(ctx context.Context, network, addr string) (net.Conn, error)
}

type harnessOptions struct {
	configure func(s *chat.Server)
	listener  func(net.Listener) net.Listener
	users     []string
}

// MustStartHarness opens a fresh store and starts a chat server. The cleanup closes it
// all in order.
func MustStartHarness(tb testing.TB, opts harnessOptions) *harness {
	tb.Helper()
	ctx := context.Background()
	db := &store.DB{DSN: filepath.Join(tb.TempDir(), "t.db"), Secret: make([]byte, 32)}
	require.NoError(tb, db.Open(ctx))
	tb.Cleanup(func() { require.NoError(tb, db.Close()) })

	h := &harness{t: tb, db: db, chat: store.NewChatService(db), bus: bus.NewLocal(), users: map[string]*onair.User{}}
	tb.Cleanup(h.bus.Close)
	names := append([]string{"sysop", "alice", "bob", "carol"}, opts.users...)
	users := store.NewUserService(db)
	for _, name := range names {
		u := &onair.User{Username: name, Email: name + "@example.com"}
		_, err := users.CreateUser(ctx, u, "correct horse battery staple")
		require.NoError(tb, err)
		h.users[name] = u
	}
	require.True(tb, h.users["sysop"].IsAdmin)

	h.swap(h.newServer(opts.configure))
	h.ts = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.active.Load().ServeHTTP(w, r)
	}))
	if opts.listener != nil {
		h.ts.Listener = opts.listener(h.ts.Listener)
	}
	h.ts.Start()
	tb.Cleanup(func() {
		h.srv.Close()
		h.ts.Close()
		if h.transport != nil {
			h.transport.CloseIdleConnections()
		}
	})
	return h
}

// swap makes s the server that answers requests.
func (h *harness) swap(s *chat.Server) {
	h.srv = s
	h.active.Store(s)
}

// newServer starts a chat server on the harness's store and bus.
func (h *harness) newServer(configure func(s *chat.Server)) *chat.Server {
	s := &chat.Server{
		Chat:     h.chat,
		Channels: store.NewChannelService(h.db),
		Bus:      h.bus,
		CurrentUser: func(r *http.Request) *onair.User {
			return h.users[r.Header.Get(userHeader)]
		},
		PingInterval: time.Second,
	}
	if configure != nil {
		configure(s)
	}
	require.NoError(h.t, s.Start())
	return s
}

// wsURL returns the WebSocket URL of a channel's chat.
func (h *harness) wsURL(channel string) string {
	return "ws" + strings.TrimPrefix(h.ts.URL, "http") + "/api/v1/channels/" + channel + "/chat"
}

// frame is any server frame.
type frame struct {
	Type    string    `json:"type"`
	ID      int64     `json:"id"`
	User    string    `json:"user"`
	Text    string    `json:"text"`
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
}

// client is a test WebSocket client.
type client struct {
	t    testing.TB
	ws   *websocket.Conn
	name string
}

// MustDial connects user ("" for anonymous) to the channel's chat.
func (h *harness) MustDial(user, channel string) *client {
	h.t.Helper()
	ws, resp, err := h.dial(user, channel, nil)
	require.NoError(h.t, err)
	require.Equal(h.t, http.StatusSwitchingProtocols, resp.StatusCode)
	c := &client{t: h.t, ws: ws, name: user}
	h.t.Cleanup(func() { ws.CloseNow() }) //nolint:errcheck // cleanup
	return c
}

func (h *harness) dial(user, channel string, header http.Header) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if header == nil {
		header = http.Header{}
	}
	if user != "" {
		header.Set(userHeader, user)
	}
	opts := &websocket.DialOptions{HTTPHeader: header}
	if h.dialer != nil {
		if h.transport == nil {
			h.transport = &http.Transport{DialContext: h.dialer}
		}
		opts.HTTPClient = &http.Client{Transport: h.transport}
	}
	return websocket.Dial(ctx, h.wsURL(channel), opts)
}

// Send sends a frame.
func (c *client) Send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	require.NoError(c.t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(c.t, c.ws.Write(ctx, websocket.MessageText, b))
}

// Say sends a chat message.
func (c *client) Say(text string) {
	c.t.Helper()
	c.Send(map[string]any{"type": "message", "text": text})
}

// Next reads the next frame, failing after 5 s.
func (c *client) Next() frame {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, b, err := c.ws.Read(ctx)
	require.NoError(c.t, err, "client %q", c.name)
	require.Equal(c.t, websocket.MessageText, typ)
	var f frame
	require.NoError(c.t, json.Unmarshal(b, &f), string(b))
	return f
}

// RequireMessage reads a message frame from user with text.
func (c *client) RequireMessage(user, text string) frame {
	c.t.Helper()
	f := c.Next()
	require.Equal(c.t, "message", f.Type, "client %q got %+v", c.name, f)
	require.Equal(c.t, user, f.User)
	require.Equal(c.t, text, f.Text)
	require.NotZero(c.t, f.ID)
	require.WithinDuration(c.t, time.Now(), f.Time, time.Minute)
	return f
}

// NextOf reads frames until one of type typ.
func (c *client) NextOf(typ string) frame {
	c.t.Helper()
	for {
		if f := c.Next(); f.Type == typ {
			return f
		}
	}
}

// RequireError reads an error frame and returns its message.
func (c *client) RequireError() string {
	c.t.Helper()
	f := c.Next()
	require.Equal(c.t, "error", f.Type, "client %q got %+v", c.name, f)
	return f.Message
}

// RequireNotice reads a notice frame and returns its message.
func (c *client) RequireNotice() string {
	c.t.Helper()
	f := c.Next()
	require.Equal(c.t, "notice", f.Type, "client %q got %+v", c.name, f)
	return f.Message
}

// RequireQuiet checks that no frame arrives within d. It closes the connection, since a
// timed-out read closes it.
func (c *client) RequireQuiet(d time.Duration) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, b, err := c.ws.Read(ctx)
	require.Error(c.t, err, "unexpected frame %s", b)
}

// RequireClosed reads until the connection ends and returns its close status.
func (c *client) RequireClosed() websocket.StatusCode {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, _, err := c.ws.Read(ctx)
		if err != nil {
			require.NoError(c.t, ctx.Err(), "connection still open")
			return websocket.CloseStatus(err)
		}
	}
}

// smallBuffers makes loopback socket buffers tiny on both sides, so a client that does not
// read blocks the server's writes after a few KB instead of a few MB.
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

func smallBufDialer(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	return c, err
}

// collector reads frames in the background until its connection ends.
type collector struct {
	mu     sync.Mutex
	frames []frame
	at     []time.Time
	wg     sync.WaitGroup
}

func collect(c *client) *collector {
	col := &collector{}
	col.wg.Go(func() {
		for {
			_, b, err := c.ws.Read(context.Background())
			if err != nil {
				return
			}
			now := time.Now()
			var f frame
			if json.Unmarshal(b, &f) != nil {
				continue
			}
			col.mu.Lock()
			col.frames = append(col.frames, f)
			col.at = append(col.at, now)
			col.mu.Unlock()
		}
	})
	return col
}

func (col *collector) count(typ string) int {
	col.mu.Lock()
	defer col.mu.Unlock()
	n := 0
	for _, f := range col.frames {
		if f.Type == typ {
			n++
		}
	}
	return n
}
