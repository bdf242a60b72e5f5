package chat

import (
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

var decodeCases = []struct {
	name  string
	frame string
	want  inFrame
	err   string
}{
	{"message", `{"type":"message","text":"hi <b>"}`, inFrame{Type: "message", Text: "hi <b>"}, ""},
	{"message with extra fields", `{"type":"message","text":"x","id":3,"foo":[1]}`, inFrame{Type: "message", Text: "x", ID: 3}, ""},
	{"empty message", `{"type":"message","text":" \n\t"}`, inFrame{}, "Message is empty."},
	{"delete", `{"type":"delete","id":42}`, inFrame{Type: "delete", ID: 42}, ""},
	{"delete without id", `{"type":"delete","id":0}`, inFrame{}, "Which message? Give its id."},
	{"delete with string id", `{"type":"delete","id":"42"}`, inFrame{}, "Frames must be JSON objects."},
	{"timeout", `{"type":"timeout","user":"bob","seconds":600}`, inFrame{Type: "timeout", User: "bob", Seconds: 600}, ""},
	{"timeout of 0", `{"type":"timeout","user":"bob","seconds":0}`, inFrame{}, "A time-out lasts 1 second to 14 days."},
	{"timeout too long", `{"type":"timeout","user":"bob","seconds":1209601}`, inFrame{}, "A time-out lasts 1 second to 14 days."},
	{"timeout without user", `{"type":"timeout","seconds":5}`, inFrame{}, "Which user? Give their username."},
	{"ban", `{"type":"ban","user":"bob_2"}`, inFrame{Type: "ban", User: "bob_2"}, ""},
	{"ban of a reserved-looking name", `{"type":"ban","user":"admin"}`, inFrame{Type: "ban", User: "admin"}, ""},
	{"ban of a bad name", `{"type":"ban","user":"Bob"}`, inFrame{}, "Which user? Give their username."},
	{"unban", `{"type":"unban","user":"bob"}`, inFrame{Type: "unban", User: "bob"}, ""},
	{"unknown", `{"type":"history"}`, inFrame{}, "Unknown frame type."},
	{"no type", `{}`, inFrame{}, "Unknown frame type."},
	{"array", `[1,2]`, inFrame{}, "Frames must be JSON objects."},
	{"trailing", `{"type":"ban","user":"bob"} x`, inFrame{}, "Frames must be JSON objects."},
	{"empty", ``, inFrame{}, "Frames must be JSON objects."},
	{"huge number", `{"type":"delete","id":1e400}`, inFrame{}, "Frames must be JSON objects."},
}

func TestDecodeFrame(t *testing.T) {
	for _, ca := range decodeCases {
		t.Run(ca.name, func(t *testing.T) {
			f, err := decodeFrame([]byte(ca.frame))
			if ca.err != "" {
				require.EqualError(t, err, "onair error: code=invalid message="+ca.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, ca.want, f)
		})
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, ca := range decodeCases {
		f.Add([]byte(ca.frame))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := decodeFrame(b)
		if err != nil {
			require.Equal(t, inFrame{}, fr)
			return
		}
		switch fr.Type {
		case "message":
			require.True(t, utf8.ValidString(fr.Text))
		case "delete":
			require.Positive(t, fr.ID)
		case "timeout":
			require.Positive(t, fr.Seconds)
			fallthrough
		case "ban", "unban":
			require.True(t, isUsernameShape(fr.User))
		default:
			t.Fatalf("accepted type %q", fr.Type)
		}
	})
}

func TestLimiter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(1, 5)
	steps := []struct {
		user int64
		at   time.Duration
		ok   bool
		wait time.Duration
	}{
		{1, 0, true, 0}, {1, 0, true, 0}, {1, 0, true, 0}, {1, 0, true, 0}, {1, 0, true, 0},
		{1, 0, false, time.Second},
		{2, 0, true, 0}, // users have their own buckets
		{1, 500 * time.Millisecond, false, 500 * time.Millisecond},
		{1, time.Second, true, 0},
		{1, time.Second, false, time.Second},
		{1, 3 * time.Second, true, 0}, // 2 tokens refilled
		{1, 3 * time.Second, true, 0},
		{1, 3 * time.Second, false, time.Second},
		{1, time.Hour, true, 0}, // refilled to the burst, no more
		{1, time.Hour, true, 0}, {1, time.Hour, true, 0}, {1, time.Hour, true, 0}, {1, time.Hour, true, 0},
		{1, time.Hour, false, time.Second},
	}
	for i, st := range steps {
		ok, wait := l.allow(st.user, t0.Add(st.at))
		require.Equal(t, st.ok, ok, "step %d", i)
		require.InDelta(t, st.wait, wait, float64(time.Millisecond), "step %d", i)
	}
	// The sweep forgot user 2, whose bucket is full again.
	l.mu.Lock()
	defer l.mu.Unlock()
	require.NotContains(t, l.buckets, int64(2))
	require.Contains(t, l.buckets, int64(1))
}

func TestParsePath(t *testing.T) {
	cases := []struct {
		path    string
		channel string
		history bool
		ok      bool
	}{
		{"/api/v1/channels/alice/chat", "alice", false, true},
		{"/api/v1/channels/alice/chat/history", "alice", true, true},
		{"/channels/bob/chat", "bob", false, true},
		{"/api/v1/channels/alice/chat/", "", false, false},
		{"/api/v1/channels/chat", "", false, false},
		{"/api/v1/users/alice/chat", "", false, false},
		{"/api/v1/channels//chat", "", false, true},
	}
	for _, ca := range cases {
		t.Run(ca.path, func(t *testing.T) {
			channel, history, ok := parsePath(ca.path)
			require.Equal(t, ca.ok, ok)
			require.Equal(t, ca.channel, channel)
			require.Equal(t, ca.history, history)
		})
	}
}
