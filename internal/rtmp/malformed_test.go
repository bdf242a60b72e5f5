package rtmp

import (
	"context"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/chunk"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/hub"
)

// rawHandshake runs the client side of a plain RTMP handshake on nc.
func rawHandshake(t *testing.T, nc net.Conn) {
	t.Helper()
	c0c1 := make([]byte, handshakeC0+handshakePacket)
	c0c1[0] = rtmpVersion
	for i := 9; i < len(c0c1); i++ {
		c0c1[i] = byte(i * 7)
	}
	_, err := nc.Write(c0c1)
	require.NoError(t, err)
	s0s1s2 := make([]byte, 1+2*handshakePacket)
	_, err = io.ReadFull(nc, s0s1s2)
	require.NoError(t, err)
	_, err = nc.Write(s0s1s2[1 : 1+handshakePacket]) // C2 echoes S1
	require.NoError(t, err)
}

func marshalChunk(t *testing.T, c chunk.Chunk) []byte {
	b, err := c.Marshal(false)
	require.NoError(t, err)
	return b
}

// requireClosedByServer waits until the server closes nc.
func requireClosedByServer(t *testing.T, nc net.Conn, within time.Duration) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(within)) //nolint:errcheck
	_, err := io.Copy(io.Discard, nc)
	if err != nil {
		require.ErrorIs(t, err, syscall.ECONNRESET, "server did not close the connection")
	}
}

func TestServerMalformedInput(t *testing.T) {
	e := newTestEnv(t, func(s *Server, _ *hub.Registry) {
		s.ReadTimeout = 500 * time.Millisecond
		s.MaxMessageSize = 1 << 20
	})
	// A publisher and a player keep going while the bad clients come and go.
	file := media(t, "h264_aac.flv")
	e.publishFile(file, "live", keyOf("alice"), true)
	e.waitLive("alice")
	player := e.dialPlayer("alice")
	firstVideoAU(t, player)

	setChunkSize := func(v uint32) []byte {
		return marshalChunk(t, &chunk.Chunk0{
			ChunkStreamID: 2, Type: msgTypeSetChunkSize, BodyLen: 4,
			Body: []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)},
		})
	}
	dial := func(t *testing.T) net.Conn {
		nc, err := net.Dial("tcp", e.srv.ListenAddr().String())
		require.NoError(t, err)
		t.Cleanup(func() { nc.Close() })
		return nc
	}

	cases := []struct {
		name string
		run  func(t *testing.T) net.Conn
		want string // in the Warn line
	}{
		{
			name: "bad handshake version",
			run: func(t *testing.T) net.Conn {
				nc := dial(t)
				b := make([]byte, handshakeC0+handshakePacket)
				b[0] = 0x05
				nc.Write(b) //nolint:errcheck
				return nc
			},
			want: "unsupported handshake version 5",
		},
		{
			name: "encrypted handshake",
			run: func(t *testing.T) net.Conn {
				nc := dial(t)
				b := make([]byte, handshakeC0+handshakePacket)
				b[0] = 0x06
				nc.Write(b) //nolint:errcheck
				return nc
			},
			want: "unsupported handshake version 6",
		},
		{
			name: "garbage after handshake",
			run: func(t *testing.T) net.Conn {
				nc := dial(t)
				rawHandshake(t, nc)
				nc.Write([]byte(strings.Repeat("\x00garbage", 200))) //nolint:errcheck
				return nc
			},
			want: "chunk stream id 0 not supported",
		},
		{
			name: "silent client",
			run:  dial,
			want: "i/o timeout",
		},
		{
			name: "silent after handshake",
			run: func(t *testing.T) net.Conn {
				nc := dial(t)
				rawHandshake(t, nc)
				return nc
			},
			want: "i/o timeout",
		},
		{
			name: "chunk size zero",
			run: func(t *testing.T) net.Conn {
				nc := dial(t)
				rawHandshake(t, nc)
				nc.Write(setChunkSize(0)) //nolint:errcheck
				return nc
			},
			want: "chunk size 0 out of range",
		},
		{
			name: "chunk size too large",
			run: func(t *testing.T) net.Conn {
				nc := dial(t)
				rawHandshake(t, nc)
				nc.Write(setChunkSize(32 << 20)) //nolint:errcheck
				return nc
			},
			want: "chunk size 33554432 out of range",
		},
		{
			name: "message too long",
			run: func(t *testing.T) net.Conn {
				nc := dial(t)
				rawHandshake(t, nc)
				nc.Write(marshalChunk(t, &chunk.Chunk0{ //nolint:errcheck
					ChunkStreamID: 3, Type: msgTypeCommand, BodyLen: 2 << 20, Body: make([]byte, 128),
				}))
				return nc
			},
			want: "message length 2097152 exceeds limit 1048576",
		},
		{
			name: "video without sequence header",
			run: func(t *testing.T) net.Conn {
				c := mustPublish(t, e, keyOf("bob"))
				err := c.Write(&message.Video{
					ChunkStreamID: message.VideoChunkStreamID, MessageStreamID: 0x1000000,
					Codec: message.CodecH264, IsKeyFrame: true, Type: message.VideoTypeAU,
					AU: []byte{0, 0, 0, 2, 0x65, 0x88},
				})
				require.NoError(t, err)
				return c.NetConn()
			},
			want: "media before its sequence header",
		},
		{
			name: "unsupported codec",
			run: func(t *testing.T) net.Conn {
				c := mustPublish(t, e, keyOf("bob"))
				err := c.Write(&message.Audio{
					ChunkStreamID: message.AudioChunkStreamID, MessageStreamID: 0x1000000,
					Codec: message.CodecPCMA, AU: []byte{1, 2, 3},
				})
				require.NoError(t, err)
				return c.NetConn()
			},
			want: "unsupported audio codec 7",
		},
		{
			name: "timestamps going backwards",
			run: func(t *testing.T) net.Conn {
				c := mustPublish(t, e, keyOf("bob"))
				publishH264Config(t, c)
				for _, ts := range []time.Duration{time.Second, 2 * time.Second, 1500 * time.Millisecond} {
					err := c.Write(&message.Video{
						ChunkStreamID: message.VideoChunkStreamID, MessageStreamID: 0x1000000,
						Codec: message.CodecH264, IsKeyFrame: true, Type: message.VideoTypeAU,
						AU: []byte{0, 0, 0, 2, 0x65, 0x88}, DTS: ts,
					})
					require.NoError(t, err)
				}
				return c.NetConn()
			},
			want: "timestamp went backwards",
		},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			before := len(e.log.lines("level=WARN"))
			nc := ca.run(t)
			requireClosedByServer(t, nc, 5*time.Second)
			require.Eventually(t, func() bool {
				return len(e.log.lines("level=WARN")) > before
			}, 5*time.Second, 5*time.Millisecond)
			warns := e.log.lines("level=WARN")[before:]
			require.Len(t, warns, 1, "want exactly one warning")
			require.Contains(t, warns[0], ca.want)
			require.Contains(t, warns[0], "remote_addr=")
			require.Contains(t, warns[0], "conn_id=")
			require.True(t, e.reg.Stream("alice").Publishing(), "the good publisher was disturbed")
		})
	}

	// The player of the good publisher kept receiving.
	n := 0
	player.NetConn().SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	for n < 10 {
		msg, err := player.Read()
		require.NoError(t, err)
		if v, ok := msg.(*message.Video); ok && v.Type == message.VideoTypeAU {
			n++
		}
	}
	e.requireNoKeyInLogs()
}

func mustPublish(t *testing.T, e *testEnv, key string) *gortmplib.Client {
	t.Helper()
	u, err := url.Parse(e.url("live", key))
	require.NoError(t, err)
	c := &gortmplib.Client{URL: u, Publish: true}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Initialize(ctx))
	t.Cleanup(c.Close)
	return c
}

// publishH264Config sends metadata announcing video only and an H.264 sequence header
// (gortmplib's default SPS and PPS).
func publishH264Config(t *testing.T, c *gortmplib.Client) {
	t.Helper()
	w := &gortmplib.Writer{Conn: c, Tracks: []*gortmplib.Track{{Codec: &codecs.H264{}}}}
	require.NoError(t, w.Initialize())
}

// TestServerStalledPlayer checks that a player that never reads its socket does not
// slow another player, and that it is cut loose.
func TestServerStalledPlayer(t *testing.T) {
	e := newTestEnv(t, func(s *Server, _ *hub.Registry) {
		s.WriteTimeout = time.Second
	})
	file := media(t, "big_h264_aac.flv")
	e.publishFile(file, "live", keyOf("alice"), true)
	st := e.waitLive("alice")

	// The stalled player: a tiny receive window, and it never reads.
	u, err := url.Parse(e.url("live", "alice"))
	require.NoError(t, err)
	stalled := &gortmplib.Client{URL: u, DialContext: (&net.Dialer{
		Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) {
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) //nolint:errcheck
			})
		},
	}).DialContext}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, stalled.Initialize(ctx))
	defer stalled.Close()

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

	// The stalled player is cut once its socket is full and a write blocks.
	require.Eventually(t, func() bool {
		return st.Readers()["rtmp"] == 1
	}, 20*time.Second, 50*time.Millisecond, "stalled player still attached")
	// The close is logged just after the reader detaches.
	var warns []string
	require.Eventually(t, func() bool {
		warns = e.log.lines("level=WARN", "connection closed")
		return len(warns) > 0
	}, 5*time.Second, 10*time.Millisecond)
	require.Len(t, warns, 1)
	require.Contains(t, warns[0], "write")
}
