package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/bus"
	"github.com/onair/onair/internal/chat"
	"github.com/onair/onair/internal/onair"
)

// MustSave stores a message as user directly in the store.
func (h *harness) MustSave(user, channel, text string) *onair.ChatMessage {
	h.t.Helper()
	m := &onair.ChatMessage{Channel: channel, UserID: h.users[user].ID, Text: text}
	require.NoError(h.t, h.chat.SaveMessage(context.Background(), m))
	return m
}

func TestServerHistoryOnJoin(t *testing.T) {
	h := MustStartHarness(t, harnessOptions{configure: func(s *chat.Server) { s.HistorySize = 3 }})
	var saved []*onair.ChatMessage
	for i := range 4 {
		saved = append(saved, h.MustSave("bob", "alice", fmt.Sprintf("m%d <script>alert(1)</script>", i)))
	}

	// WebSocket: the last 3, oldest first, as message frames, then live frames.
	c := h.MustDial("", "alice")
	for _, m := range saved[1:] {
		f := c.RequireMessage("bob", m.Text)
		require.Equal(t, m.ID, f.ID)
	}
	// A message published on the bus by another node reaches the room.
	live := h.MustSave("carol", "alice", "live one")
	data, err := json.Marshal(map[string]any{"type": "message", "id": live.ID, "user": live.User, "text": live.Text, "time": live.CreatedAt})
	require.NoError(t, err)
	require.NoError(t, h.bus.Publish(context.Background(), chat.Topic("alice"), bus.Event{Type: bus.TypeChatMessage, Channel: "alice", Data: data}))
	c.RequireMessage("carol", "live one")

	// History endpoint: the same objects.
	resp, err := http.Get(h.ts.URL + "/api/v1/channels/alice/chat/history")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NotContains(t, string(body), "<script>", "JSON escapes HTML")
	var got []frame
	require.NoError(t, json.Unmarshal(body, &got))
	require.Len(t, got, 3)
	require.Equal(t, []string{saved[2].Text, saved[3].Text, "live one"}, []string{got[0].Text, got[1].Text, got[2].Text})
	for _, f := range got {
		require.Equal(t, "message", f.Type)
		require.NotZero(t, f.ID)
	}

	// Empty history is [] and not null.
	resp2, err := http.Get(h.ts.URL + "/api/v1/channels/bob/chat/history")
	require.NoError(t, err)
	defer resp2.Body.Close()
	body, err = io.ReadAll(resp2.Body)
	require.NoError(t, err)
	require.Equal(t, "[]\n", string(body))
}

func TestServerSendReceive(t *testing.T) {
	h := MustStartHarness(t, harnessOptions{})
	bob := h.MustDial("bob", "alice")
	carol := h.MustDial("carol", "alice")
	anon := h.MustDial("", "alice")
	elsewhere := h.MustDial("", "bob")
	require.Eventually(t, func() bool { return h.srv.Clients("alice") == 3 && h.srv.Clients("bob") == 1 },
		5*time.Second, 10*time.Millisecond)
	require.Equal(t, 0, h.srv.Clients("carol"))
	require.Equal(t, 4, h.srv.Connections(), "every room of the node")

	text := `hi <b>there</b> https://example.com/?a=1&b=2 "quoted" ünïcødé`
	bob.Say(text)
	var id int64
	for _, c := range []*client{bob, carol, anon} {
		id = c.RequireMessage("bob", text).ID
	}
	carol.Say("  padded  ")
	for _, c := range []*client{bob, carol, anon} {
		c.RequireMessage("carol", "padded") // the store trims
	}

	// Persisted.
	msgs, err := h.chat.RecentMessages(context.Background(), "alice", 10)
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	require.Equal(t, id, msgs[0].ID)
	require.Equal(t, text, msgs[0].Text)

	// Other channels do not see it.
	elsewhere.RequireQuiet(200 * time.Millisecond)
}

func TestServerFramesEscapeHTML(t *testing.T) {
	h := MustStartHarness(t, harnessOptions{})
	bob := h.MustDial("bob", "alice")
	bob.Say(`<script>alert("x")</script> & <img src=x onerror=alert(1)>`)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := bob.ws.Read(ctx)
	require.NoError(t, err)
	require.NotContains(t, string(b), "<")
	require.NotContains(t, string(b), ">")
	require.Contains(t, string(b), `"text":"\u003cscript\u003ealert(\"x\")\u003c/script\u003e \u0026 \u003cimg`)
}

func TestServerAnonymousCannotSend(t *testing.T) {
	h := MustStartHarness(t, harnessOptions{})
	anon := h.MustDial("", "alice")
	bob := h.MustDial("bob", "alice")

	cases := []any{
		map[string]any{"type": "message", "text": "hello"},
		map[string]any{"type": "delete", "id": 1},
		map[string]any{"type": "ban", "user": "bob"},
	}
	for _, frame := range cases {
		anon.Send(frame)
		require.Equal(t, "Log in to chat.", anon.RequireError())
	}
	bob.RequireQuiet(200 * time.Millisecond)
	msgs, err := h.chat.RecentMessages(context.Background(), "alice", 10)
	require.NoError(t, err)
	require.Empty(t, msgs)
}

func TestServerBadFrames(t *testing.T) {
	h := MustStartHarness(t, harnessOptions{})
	bob := h.MustDial("bob", "alice")
	cases := []struct {
		name  string
		typ   websocket.MessageType
		frame string
		err   string
	}{
		{"binary", websocket.MessageBinary, `{"type":"message","text":"x"}`, "Frames must be JSON text."},
		{"not json", websocket.MessageText, `hello`, "Frames must be JSON objects."},
		{"two objects", websocket.MessageText, `{"type":"message","text":"a"}{}`, "Frames must be JSON objects."},
		{"unknown type", websocket.MessageText, `{"type":"shout","text":"x"}`, "Unknown frame type."},
		{"empty", websocket.MessageText, `{"type":"message","text":"  "}`, "Message is empty."},
		{"no id", websocket.MessageText, `{"type":"delete"}`, "Which message? Give its id."},
		{"bad user", websocket.MessageText, `{"type":"ban","user":"<x>"}`, "Which user? Give their username."},
		{"long timeout", websocket.MessageText, `{"type":"timeout","user":"carol","seconds":9999999}`, "A time-out lasts 1 second to 14 days."},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			require.NoError(t, bob.ws.Write(ctx, ca.typ, []byte(ca.frame)))
			require.Equal(t, ca.err, bob.RequireError())
		})
	}
}

func TestServerRateLimit(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	h := MustStartHarness(t, harnessOptions{configure: func(s *chat.Server) { s.Now = clock }})
	// Two connections of bob share one bucket.
	bob1 := h.MustDial("bob", "alice")
	bob2 := h.MustDial("bob", "alice")
	carol := h.MustDial("carol", "alice")
	col := collect(h.MustDial("", "alice"))

	for i := range 5 {
		[]*client{bob1, bob2}[i%2].Say(strconv.Itoa(i))
		carol.RequireMessage("bob", strconv.Itoa(i))
	}
	bob1.Say("6th")
	require.Equal(t, "You are sending messages too fast. Wait a second.", bob1.NextOf("error").Message)
	bob2.Say("7th")
	require.Equal(t, "You are sending messages too fast. Wait a second.", bob2.NextOf("error").Message)

	// Others are not limited by bob.
	carol.Say("carol")
	carol.RequireMessage("carol", "carol")

	// One second later, one more message.
	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	bob2.Say("later")
	carol.RequireMessage("bob", "later")
	bob2.Say("too soon")
	require.Equal(t, "You are sending messages too fast. Wait a second.", bob2.NextOf("error").Message)

	// Limits are error frames, not disconnects.
	require.Eventually(t, func() bool { return col.count("message") == 7 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, 4, h.srv.Clients("alice"))
}

func TestServerFrameLimit(t *testing.T) {
	// A still clock: on a loaded machine the 25 frames may take long enough to earn a token.
	still := time.Now()
	h := MustStartHarness(t, harnessOptions{configure: func(s *chat.Server) { s.Now = func() time.Time { return still } }})
	carol := h.MustDial("carol", "alice")
	// 20 frames at once are handled (each one a query); the rest are refused unread.
	for range 25 {
		carol.Send(map[string]any{"type": "unban", "user": "bob"})
	}
	for range 20 {
		require.Equal(t, "Only the channel owner and site admins can moderate this chat.", carol.RequireError())
	}
	for range 5 {
		require.Equal(t, "You are sending too fast.", carol.RequireError())
	}
}

func TestServerMaxLen(t *testing.T) {
	h := MustStartHarness(t, harnessOptions{})
	bob := h.MustDial("bob", "alice")

	// 500 two-byte runes: counted in characters, not bytes.
	ok := strings.Repeat("é", onair.MaxChatLen)
	bob.Say(ok)
	bob.RequireMessage("bob", ok)

	bob.Say(ok + "x")
	require.Equal(t, "Message is too long (at most 500 characters).", bob.RequireError())

	// A frame over the read limit closes the connection with 1009.
	bob.Say(strings.Repeat("x", chat.DefaultReadLimit))
	require.Equal(t, websocket.StatusMessageTooBig, bob.RequireClosed())
	require.Eventually(t, func() bool { return h.srv.Clients("alice") == 0 }, 5*time.Second, 10*time.Millisecond)
}

func TestServerDelete(t *testing.T) {
	h := MustStartHarness(t, harnessOptions{})
	alice := h.MustDial("alice", "alice")
	bob := h.MustDial("bob", "alice")
	carol := h.MustDial("carol", "alice")
	anon := h.MustDial("", "alice")
	admin := h.MustDial("sysop", "alice")
	all := []*client{alice, bob, carol, anon, admin}

	bob.Say("spam")
	var id int64
	for _, c := range all {
		id = c.RequireMessage("bob", "spam").ID
	}

	cases := []struct {
		name string
		by   *client
		err  string
	}{
		{"not a moderator", carol, "Only the channel owner and site admins can moderate this chat."},
		{"author is no moderator either", bob, "Only the channel owner and site admins can moderate this chat."},
		{"owner", alice, ""},
		{"gone", admin, "Message not found."},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			ca.by.Send(map[string]any{"type": "delete", "id": id})
			if ca.err != "" {
				require.Equal(t, ca.err, ca.by.RequireError())
				return
			}
			for _, c := range all {
				f := c.Next()
				require.Equal(t, frame{Type: "delete", ID: id}, f, "client %q", c.name)
			}
		})
	}

	// An admin deletes too; the history no longer has them.
	carol.Say("also spam")
	for _, c := range all {
		id = c.RequireMessage("carol", "also spam").ID
	}
	admin.Send(map[string]any{"type": "delete", "id": id})
	for _, c := range all {
		require.Equal(t, frame{Type: "delete", ID: id}, c.Next())
	}
	msgs, err := h.chat.RecentMessages(context.Background(), "alice", 10)
	require.NoError(t, err)
	require.Empty(t, msgs)
}

func TestServerModeration(t *testing.T) {
	h := MustStartHarness(t, harnessOptions{configure: func(s *chat.Server) { s.Burst = 100 }})
	events, err := h.bus.Subscribe(chat.Topic("alice"), 100)
	require.NoError(t, err)
	defer events.Close()
	alice := h.MustDial("alice", "alice")
	bob := h.MustDial("bob", "alice")
	carol := h.MustDial("carol", "alice")

	steps := []struct {
		name   string
		by     *client
		frame  map[string]any
		notice string // for the moderator; else error
		err    string
		// bobCan is whether bob may chat afterwards.
		bobCan bool
	}{
		{"non-owner cannot time out", carol, map[string]any{"type": "timeout", "user": "bob", "seconds": 600},
			"", "Only the channel owner and site admins can moderate this chat.", true},
		{"owner times out", alice, map[string]any{"type": "timeout", "user": "bob", "seconds": 600},
			"bob is timed out for 600 s.", "", false},
		{"non-owner cannot unban", carol, map[string]any{"type": "unban", "user": "bob"},
			"", "Only the channel owner and site admins can moderate this chat.", false},
		{"owner unbans", alice, map[string]any{"type": "unban", "user": "bob"},
			"bob may chat again.", "", true},
		{"owner bans", alice, map[string]any{"type": "ban", "user": "bob"},
			"bob is banned from this chat.", "", false},
		{"owner cannot ban themself", alice, map[string]any{"type": "ban", "user": "alice"},
			"", "You cannot ban yourself.", false},
		{"unknown user", alice, map[string]any{"type": "ban", "user": "nobody"},
			"", `User "nobody" not found.`, false},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.by.Send(st.frame)
			if st.err != "" {
				require.Equal(t, st.err, st.by.RequireError())
			} else {
				require.Equal(t, st.notice, st.by.RequireNotice())
			}
			bob.Say("can I?")
			if st.bobCan {
				bob.RequireMessage("bob", "can I?")
				alice.RequireMessage("bob", "can I?")
				carol.RequireMessage("bob", "can I?")
			} else {
				msg := bob.RequireError()
				require.Regexp(t, `^You are (banned from this chat\.|timed out of this chat until .*)$`, msg)
			}
		})
	}

	// Bans and time-outs are published for other components.
	var bans []string
	for len(events.C()) > 0 {
		if ev := <-events.C(); ev.Type == bus.TypeChatBan {
			require.Equal(t, "alice", ev.Channel)
			bans = append(bans, string(ev.Data))
		}
	}
	require.Len(t, bans, 2)
	require.Regexp(t, `^\{"type":"ban","user":"bob","until":"[0-9T:.-]+Z"\}$`, bans[0])
	require.JSONEq(t, `{"type":"ban","user":"bob"}`, bans[1])

	// The ban persists across chat servers (it is in the store).
	h.srv.Close()
	require.Equal(t, websocket.StatusGoingAway, bob.RequireClosed())
	h.swap(h.newServer(nil))
	history, err := h.chat.RecentMessages(context.Background(), "alice", 50)
	require.NoError(t, err)
	require.Len(t, history, 2) // bob's accepted messages
	bob = h.MustDial("bob", "alice")
	for range history {
		require.Equal(t, "message", bob.Next().Type)
	}
	bob.Say("still banned?")
	require.Equal(t, "You are banned from this chat.", bob.RequireError())

	// Admins moderate any channel, but not its owner.
	admin := h.MustDial("sysop", "alice")
	for range history {
		admin.Next()
	}
	admin.Send(map[string]any{"type": "ban", "user": "alice"})
	require.Equal(t, "You cannot ban the channel owner.", admin.RequireError())
	admin.Send(map[string]any{"type": "unban", "user": "bob"})
	require.Equal(t, "bob may chat again.", admin.RequireNotice())
	bob.Say("free")
	bob.RequireMessage("bob", "free")
}

func TestServerSlowClient(t *testing.T) {
	cases := []struct {
		name      string
		slow      int // clients that never read
		configure func(s *chat.Server)
	}{
		{"baseline, nobody stalled", 0, func(s *chat.Server) { s.SendQueue = 8 }},
		{"queue full", 1, func(s *chat.Server) { s.SendQueue = 8 }},
		{"write timeout", 1, func(s *chat.Server) { s.SendQueue = 100000; s.WriteTimeout = 300 * time.Millisecond }},
		{"many stalled", 20, func(s *chat.Server) { s.SendQueue = 8 }},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			h := MustStartHarness(t, harnessOptions{
				configure: func(s *chat.Server) {
					s.Rate, s.Burst = 1e6, 1e6
					s.FrameRate, s.FrameBurst = 1e6, 1e6
					s.PingInterval = time.Hour
					ca.configure(s)
				},
				listener: func(l net.Listener) net.Listener { return smallBufListener{l} },
			})
			h.dialer = smallBufDialer
			var slow []*client
			for range ca.slow {
				slow = append(slow, h.MustDial("carol", "alice")) // never reads
			}
			bob := h.MustDial("bob", "alice")
			readers := []*client{bob, h.MustDial("", "alice"), h.MustDial("sysop", "alice")}
			var cols []*collector
			for _, c := range readers {
				cols = append(cols, collect(c))
			}
			require.Eventually(t, func() bool { return h.srv.Clients("alice") == 3+ca.slow }, 5*time.Second, 10*time.Millisecond)

			const n = 200
			pad := strings.Repeat("x", 400)
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := range n {
					bob.Say(strconv.FormatInt(time.Now().UnixNano(), 10) + " " + strconv.Itoa(i) + " " + pad)
					time.Sleep(5 * time.Millisecond)
				}
			})
			require.Eventually(t, func() bool { return h.srv.Clients("alice") == 3 }, 10*time.Second, 10*time.Millisecond,
				"the slow clients are dropped")
			wg.Wait()

			// The others got everything, on time.
			for i, col := range cols {
				require.Eventually(t, func() bool { return col.count("message") == n }, 10*time.Second, 10*time.Millisecond)
				col.mu.Lock()
				var worst time.Duration
				for j, f := range col.frames {
					sent, err := strconv.ParseInt(strings.Fields(f.Text)[0], 10, 64)
					require.NoError(t, err)
					worst = max(worst, col.at[j].Sub(time.Unix(0, sent)))
				}
				col.mu.Unlock()
				t.Logf("reader %d: worst latency %v", i, worst)
				// Generous: the point is that the room does not wait for the stalled
				// clients (a queue full or a write timeout would add whole seconds per
				// message), not the speed of a loaded CI machine; the logs compare the
				// cases with the baseline.
				require.Less(t, worst, 3*time.Second)
			}

			// The slow clients find their connections cut after what they had buffered.
			// (With many, only the first is read back: the server has closed them all, as
			// Clients shows, but the kernel may drop the orphaned sockets' unsent bytes,
			// which a client that finally reads then waits for in vain.)
			for _, c := range slow[:min(len(slow), 1)] {
				require.NotEqual(t, websocket.StatusGoingAway, c.RequireClosed())
			}
			for _, c := range readers {
				c.ws.CloseNow() //nolint:errcheck // test
			}
			for _, col := range cols {
				col.wg.Wait()
			}
		})
	}
}

func TestServerPingTimeout(t *testing.T) {
	h := MustStartHarness(t, harnessOptions{configure: func(s *chat.Server) {
		s.PingInterval = 100 * time.Millisecond
		s.WriteTimeout = 300 * time.Millisecond
	}})
	reader := h.MustDial("", "alice")
	col := collect(reader)  // reading answers pings
	h.MustDial("", "alice") // never reads: never answers a ping
	require.Eventually(t, func() bool { return h.srv.Clients("alice") == 2 }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return h.srv.Clients("alice") == 1 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(time.Second)
	require.Equal(t, 1, h.srv.Clients("alice"), "the reading client stays")
	reader.ws.CloseNow() //nolint:errcheck // test
	col.wg.Wait()
}

func TestServerOrigin(t *testing.T) {
	h := MustStartHarness(t, harnessOptions{configure: func(s *chat.Server) {
		s.OriginPatterns = []string{"*.example.org", "https://site.example.net"}
	}})
	host := strings.TrimPrefix(h.ts.URL, "http://")
	cases := []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://" + host, true},
		{"https://" + strings.ToUpper(host), true},
		{"https://evil.example.com", false},
		{"http://" + host + ".evil.com", false},
		{"https://chat.example.org", true},
		{"https://site.example.net", true},
		{"http://site.example.net", false},
		{"null", false},
	}
	for _, ca := range cases {
		t.Run(ca.origin, func(t *testing.T) {
			header := http.Header{}
			if ca.origin != "" {
				header.Set("Origin", ca.origin)
			}
			ws, resp, err := h.dial("bob", "alice", header)
			if ca.ok {
				require.NoError(t, err)
				ws.Close(websocket.StatusNormalClosure, "") //nolint:errcheck // test
				return
			}
			require.Error(t, err)
			require.Equal(t, http.StatusForbidden, resp.StatusCode)
			body, _ := io.ReadAll(resp.Body)
			require.JSONEq(t, `{"error":{"code":"forbidden","message":"Cross-origin chat connections are not allowed."}}`, string(body))
		})
	}
}

func TestServerNotFound(t *testing.T) {
	h := MustStartHarness(t, harnessOptions{})
	cases := []struct {
		path   string
		status int
		body   string
	}{
		{"/api/v1/channels/nobody/chat", 404, `{"error":{"code":"not_found","message":"Channel \"nobody\" not found."}}`},
		{"/api/v1/channels/nobody/chat/history", 404, `{"error":{"code":"not_found","message":"Channel \"nobody\" not found."}}`},
		{"/api/v1/channels/Bad%20Name/chat/history", 404, `{"error":{"code":"not_found","message":"Channel \"Bad Name\" not found."}}`},
		{"/api/v1/channels/alice/chatter", 404, `{"error":{"code":"not_found","message":"Not found."}}`},
		{"/api/v1/channels/alice/chat", 426, ""}, // not an upgrade
	}
	for _, ca := range cases {
		t.Run(ca.path, func(t *testing.T) {
			resp, err := http.Get(h.ts.URL + ca.path)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, ca.status, resp.StatusCode)
			if ca.body != "" {
				body, _ := io.ReadAll(resp.Body)
				require.JSONEq(t, ca.body, string(body))
			}
		})
	}

	_, resp, err := h.dial("", "nobody", nil)
	require.Error(t, err)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	req, err := http.NewRequest(http.MethodPost, h.ts.URL+"/api/v1/channels/alice/chat/history", nil)
	require.NoError(t, err)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestServerRooms(t *testing.T) {
	h := MustStartHarness(t, harnessOptions{})
	require.Equal(t, 0, h.bus.Subscribers(chat.Topic("alice")))
	a := h.MustDial("", "alice")
	b := h.MustDial("", "alice")
	require.Eventually(t, func() bool { return h.srv.Clients("alice") == 2 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, 1, h.bus.Subscribers(chat.Topic("alice")), "one subscription per room")

	a.ws.Close(websocket.StatusNormalClosure, "") //nolint:errcheck // test
	require.Eventually(t, func() bool { return h.srv.Clients("alice") == 1 }, 5*time.Second, 10*time.Millisecond)
	b.ws.Close(websocket.StatusNormalClosure, "") //nolint:errcheck // test
	require.Eventually(t, func() bool {
		return h.srv.Clients("alice") == 0 && h.bus.Subscribers(chat.Topic("alice")) == 0
	}, 5*time.Second, 10*time.Millisecond, "the empty room is removed")

	// A new join recreates it.
	c := h.MustDial("bob", "alice")
	c.Say("back")
	c.RequireMessage("bob", "back")
}

func TestServerClose(t *testing.T) {
	h := MustStartHarness(t, harnessOptions{})
	clients := []*client{h.MustDial("bob", "alice"), h.MustDial("", "alice"), h.MustDial("", "bob")}
	require.Eventually(t, func() bool { return h.srv.Clients("alice") == 2 && h.srv.Clients("bob") == 1 },
		5*time.Second, 10*time.Millisecond)

	// Clients that read answer the close handshake at once.
	statuses := make([]websocket.StatusCode, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			_, _, err := c.ws.Read(context.Background())
			statuses[i] = websocket.CloseStatus(err)
		})
	}
	start := time.Now()
	h.srv.Close()
	require.Less(t, time.Since(start), time.Second)
	wg.Wait()
	for _, st := range statuses {
		require.Equal(t, websocket.StatusGoingAway, st)
	}
	require.Equal(t, 0, h.srv.Clients("alice"))
	require.Equal(t, 0, h.bus.Subscribers(chat.Topic("alice")))

	_, resp, err := h.dial("", "alice", nil)
	require.Error(t, err)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	h.srv.Close() // idempotent
}

func TestServerCloseCutsUnresponsive(t *testing.T) {
	h := MustStartHarness(t, harnessOptions{configure: func(s *chat.Server) { s.CloseTimeout = 300 * time.Millisecond }})
	// A client that never reads never answers the close handshake.
	h.MustDial("", "alice")
	require.Eventually(t, func() bool { return h.srv.Clients("alice") == 1 }, 5*time.Second, 10*time.Millisecond)
	start := time.Now()
	h.srv.Close()
	require.Less(t, time.Since(start), 2*time.Second)
}

// blockingChat holds RecentMessages until released (or its context ends).
type blockingChat struct {
	onair.ChatService
	entered chan struct{}
	release chan struct{}
}

func (b *blockingChat) RecentMessages(ctx context.Context, channel string, n int) ([]*onair.ChatMessage, error) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return b.ChatService.RecentMessages(ctx, channel, n)
}

func TestServerCloseDuringJoin(t *testing.T) {
	cases := []struct {
		name    string
		release bool // let the history load while closing
	}{
		{"history never loads", false},
		{"history loads while closing", true},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			bc := &blockingChat{entered: make(chan struct{}, 1), release: make(chan struct{})}
			h := MustStartHarness(t, harnessOptions{configure: func(s *chat.Server) {
				bc.ChatService = s.Chat
				s.Chat = bc
				s.CloseTimeout = 300 * time.Millisecond
			}})
			h.MustDial("", "alice") // never reads: never answers the close handshake
			<-bc.entered
			start := time.Now()
			var wg sync.WaitGroup
			wg.Go(h.srv.Close)
			if ca.release {
				time.Sleep(100 * time.Millisecond)
				close(bc.release)
			}
			wg.Wait()
			require.Less(t, time.Since(start), 2*time.Second)
		})
	}
}

func TestServerBusClosed(t *testing.T) {
	h := MustStartHarness(t, harnessOptions{})
	c := h.MustDial("", "alice")
	require.Eventually(t, func() bool { return h.srv.Clients("alice") == 1 }, 5*time.Second, 10*time.Millisecond)
	h.bus.Close()
	require.Equal(t, websocket.StatusGoingAway, c.RequireClosed())
	// Later joins are upgraded, then sent away: chat is unavailable.
	c = h.MustDial("", "alice")
	require.Equal(t, websocket.StatusGoingAway, c.RequireClosed())
}

func TestServerStartValidates(t *testing.T) {
	s := &chat.Server{}
	require.EqualError(t, s.Start(), "chat server: Chat, Channels and Bus are required")
	s.Close() // not started: no-op
}
