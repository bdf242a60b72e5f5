package rtmp

import (
	"bytes"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/hub"
)

// pooled makes the test server write its players from shards.
func pooled(extra func(*Server, *hub.Registry)) func(*Server, *hub.Registry) {
	return func(s *Server, reg *hub.Registry) {
		s.WriteMergeWindow = 50 * time.Millisecond
		if extra != nil {
			extra(s, reg)
		}
	}
}

// TestPooledPlayerStalled checks that a pooled player that never reads does not hold up
// the others (the shard never blocks on it) and is cut after WriteTimeout.
func TestPooledPlayerStalled(t *testing.T) {
	e := newTestEnv(t, pooled(func(s *Server, _ *hub.Registry) { s.WriteTimeout = time.Second }))
	e.publishFile(media(t, "big_h264_aac.flv"), "live", keyOf("alice"), true)
	st := e.waitLive("alice")

	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) //nolint:errcheck
		})
	}}
	stalled, err := d.Dial("tcp", e.srv.ListenAddr().String())
	require.NoError(t, err)
	defer stalled.Close()
	rawHandshake(t, stalled)
	_, err = stalled.Write(clientMessages(connectMsgs("play", "alice")...))
	require.NoError(t, err)

	good := e.dialPlayer("alice")
	firstVideoAU(t, good)
	start := time.Now()
	frames := 0
	good.NetConn().SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	for time.Since(start) < 3*time.Second {
		msg, err := good.Read()
		require.NoError(t, err)
		if v, ok := msg.(*message.Video); ok && v.Type == message.VideoTypeAU {
			frames++
		}
	}
	rate := float64(frames) / time.Since(start).Seconds()
	t.Logf("good player: %.1f frames/s while another player stalls", rate)
	require.Greater(t, rate, 24.0)

	require.Eventually(t, func() bool {
		return st.Readers()["rtmp"] == 1
	}, 20*time.Second, 50*time.Millisecond, "stalled player still attached")
	var warns []string
	require.Eventually(t, func() bool {
		warns = e.log.lines("level=WARN", "connection closed")
		return len(warns) > 0
	}, 5*time.Second, 10*time.Millisecond)
	require.Len(t, warns, 1)
	require.Contains(t, warns[0], "write")
}

// TestPooledPlayerPing checks that a pooled player that gets nothing to play is pinged
// through its shard and closed when it never answers.
func TestPooledPlayerPing(t *testing.T) {
	e := newTestEnv(t, pooled(func(s *Server, reg *hub.Registry) {
		s.ReadTimeout = 300 * time.Millisecond
		reg.GracePeriod = time.Minute
	}))
	p := e.publishFile(media(t, "video_only.flv"), "live", keyOf("alice"), true)
	st := e.waitLive("alice")
	p.cmd.Process.Kill() //nolint:errcheck
	require.Eventually(t, func() bool { return !st.Publishing() }, 5*time.Second, 10*time.Millisecond)

	nc := rawPlay(t, e.srv.ListenAddr().String(), "alice")
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	got, err := io.ReadAll(nc)
	require.NoError(t, err, "the server closes the silent player")
	ping := encodePing(0)
	require.True(t, bytes.Contains(got, ping[:14]), "no ping among the %d bytes read", len(got))
	require.Eventually(t, func() bool {
		return len(e.log.lines("connection closed", "player silent")) == 1
	}, 5*time.Second, 10*time.Millisecond)
}

// TestPooledPlayerMemory is TestPlayerMemory with pooled players (one goroutine each).
func TestPooledPlayerMemory(t *testing.T) {
	idlePlayerMemory(t, pooled(func(_ *Server, reg *hub.Registry) { reg.GracePeriod = time.Minute }))
}

// TestPooledPlayerDeleteStream checks that the shard reads a pooled player's commands:
// deleteStream ends the player at once, an ordinary end.
func TestPooledPlayerDeleteStream(t *testing.T) {
	e := newTestEnv(t, pooled(nil))
	e.publishFile(media(t, "h264_aac.flv"), "live", keyOf("alice"), true)
	st := e.waitLive("alice")
	nc := rawPlay(t, e.srv.ListenAddr().String(), "alice")
	defer nc.Close()
	go io.Copy(io.Discard, nc) //nolint:errcheck
	require.Eventually(t, func() bool { return st.Readers()["rtmp"] == 1 }, 5*time.Second, 10*time.Millisecond)
	_, err := nc.Write(clientMessages(&message.CommandAMF0{ChunkStreamID: 3, Name: "deleteStream",
		CommandID: 7, Arguments: []any{nil, float64(1)}}))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return st.Readers()["rtmp"] == 0 }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		return len(e.log.lines("play ended", "player closed the stream")) == 1
	}, 5*time.Second, 10*time.Millisecond)
	require.Empty(t, e.log.lines("level=WARN"))
}
