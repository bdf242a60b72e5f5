package stats

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestSessionID(t *testing.T) {
	s := &Sessions{}
	cases := []struct {
		name string
		in   string
		keep bool
	}{
		{"valid", "abcdEFGH_1234-xyz", true},
		{"min length", "abcdefgh", true},
		{"max length", strings.Repeat("a", 64), true},
		{"empty", "", false},
		{"too short", "abc", false},
		{"too long", strings.Repeat("a", 65), false},
		{"bad char", "abcdefgh!", false},
		{"space", "abcd efgh", false},
		{"unicode", "abcdéfghij", false},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			got := s.SessionID(ca.in)
			if ca.keep {
				require.Equal(t, ca.in, got)
			} else {
				require.NotEqual(t, ca.in, got)
				require.True(t, validSessionID(got), "new id %q", got)
			}
		})
	}
	require.NotEqual(t, NewSessionID(), NewSessionID())
}

func TestSessionsCount(t *testing.T) {
	type touch struct {
		id, addr, ua string
	}
	cases := []struct {
		name    string
		touches []touch
		want    int
	}{
		{"one id", []touch{{"session0001", "10.0.0.1:1", "ua"}, {"session0001", "10.0.0.2:2", "ua"}}, 1},
		{"ids behind one address", []touch{{"session0001", "10.0.0.1:1", "ua"}, {"session0002", "10.0.0.1:1", "ua"}}, 2},
		{"fallback by address", []touch{{"", "10.0.0.1:1", "ua"}, {"", "10.0.0.2:1", "ua"}}, 2},
		{"fallback same address and agent", []touch{{"", "10.0.0.1:1", "ua"}, {"", "10.0.0.1:2", "ua"}}, 1},
		{"fallback by agent", []touch{{"", "10.0.0.1:1", "ua1"}, {"", "10.0.0.1:1", "ua2"}}, 2},
		{"malformed id falls back", []touch{{"x", "10.0.0.1:1", "ua"}, {"", "10.0.0.1:9", "ua"}}, 1},
		{"ipv6", []touch{{"", "[::1]:1", "ua"}, {"", "[::1]:2", "ua"}}, 1},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			clk := newFakeClock()
			s := &Sessions{Protocol: "hls", Now: clk.Now}
			for _, tc := range ca.touches {
				s.Touch("alice", tc.id, tc.addr, tc.ua, 6*time.Second)
			}
			require.Equal(t, ca.want, s.Count("alice"))
			require.Equal(t, 0, s.Count("bob"))
			require.Equal(t, map[string]int{"alice": ca.want}, s.Counts())
		})
	}
}

func TestSessionsExpire(t *testing.T) {
	clk := newFakeClock()
	var logs strings.Builder
	var mu sync.Mutex
	s := &Sessions{Protocol: "hls", Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu},
		&slog.HandlerOptions{Level: slog.LevelDebug}))}
	s.Touch("alice", "session0001", "10.0.0.1:1", "ua", 6*time.Second)
	s.Touch("alice", "session0002", "10.0.0.1:1", "ua", 6*time.Second)
	clk.Add(4 * time.Second)
	s.Touch("alice", "session0001", "10.0.0.1:1", "ua", 6*time.Second)
	require.Equal(t, 2, s.Count("alice"))
	clk.Add(3 * time.Second) // session0002 expired (7 s), session0001 not (3 s)
	require.Equal(t, 1, s.Count("alice"))
	clk.Add(4 * time.Second)
	require.Equal(t, 0, s.Count("alice"))
	s.Sweep()
	require.Empty(t, s.Counts())
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	require.Equal(t, 2, strings.Count(out, "viewer session ended"), out)
	require.Contains(t, out, "protocol=hls")
	require.Contains(t, out, "channel=alice")
	require.NotContains(t, out, "session0001", "session ids are not logged")
}

func TestSessionsMaxPerChannel(t *testing.T) {
	clk := newFakeClock()
	s := &Sessions{Now: clk.Now, MaxPerChannel: 3}
	for _, id := range []string{"session0001", "session0002", "session0003", "session0004"} {
		s.Touch("alice", id, "10.0.0.1:1", "ua", time.Second)
	}
	require.Equal(t, 3, s.Count("alice"))
	clk.Add(2 * time.Second)
	s.Touch("alice", "session0004", "10.0.0.1:1", "ua", time.Second)
	require.Equal(t, 1, s.Count("alice"))
}

func TestSessionsIgnoresBadInput(t *testing.T) {
	s := &Sessions{}
	s.Touch("", "session0001", "10.0.0.1:1", "ua", time.Second)
	s.Touch("alice", "session0001", "10.0.0.1:1", "ua", 0)
	require.Empty(t, s.Counts())
	long := strings.Repeat("x", 10_000)
	s.Touch("alice", "", "10.0.0.1:1", long, time.Second)
	s.Touch("alice", "", "10.0.0.1:1", long+"y", time.Second)
	require.Equal(t, 1, s.Count("alice"), "user agents are compared on their first bytes")
}

type lockedWriter struct {
	w  *strings.Builder
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// FuzzSessionsTouch feeds request input (session id, address, User-Agent) to Sessions.
func FuzzSessionsTouch(f *testing.F) {
	f.Add("session0001", "10.0.0.1:1234", "hls.js")
	f.Add("", "[::1]:80", "")
	f.Add("x", "not an address", strings.Repeat("u", 600))
	f.Add("abc\x00defgh", ":", "\xff\xfe")
	f.Fuzz(func(t *testing.T, id, addr, ua string) {
		s := &Sessions{}
		s.Touch("alice", id, addr, ua, time.Minute)
		s.Touch("alice", id, addr, ua, time.Minute)
		if n := s.Count("alice"); n != 1 {
			t.Fatalf("count %d after one viewer's two requests", n)
		}
		if got := s.SessionID(id); !validSessionID(got) {
			t.Fatalf("SessionID(%q) = %q, not a valid id", id, got)
		}
	})
}
