package rtmp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
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

// malformedCase is one bad client of the corpus.
type malformedCase struct {
	name string
	// run plays the bad client and returns its socket.
	run func(t *testing.T) net.Conn
	// want is in the one Warn line; empty for input that must be accepted silently.
	want string
	// open: the bad message is dropped and the connection goes on.
	open bool
}

// TestServerMalformedInput drives each case of the malformed RTMP corpus over a real TCP
// socket: the connection closes (or the message is dropped) with exactly one Warn line,
// and a live stream and its player go on undisturbed.
func TestServerMalformedInput(t *testing.T) {
	e := newTestEnv(t, func(s *Server, _ *hub.Registry) {
		s.ReadTimeout = 500 * time.Millisecond
		s.HandshakeTimeout = 2 * time.Second
		s.MaxMessageSize = 1 << 20
	})
	// A publisher and a player keep going while the bad clients come and go.
	file := media(t, "h264_aac.flv")
	e.publishFile(file, "live", keyOf("alice"), true)
	e.waitLive("alice")
	player := e.dialPlayer("alice")
	firstVideoAU(t, player)
	player.NetConn().SetReadDeadline(time.Time{}) //nolint:errcheck
	var frames atomic.Int64
	playerDone := make(chan error, 1)
	go func() {
		for {
			msg, err := player.Read()
			if err != nil {
				playerDone <- err
				return
			}
			if v, ok := msg.(*message.Video); ok && v.Type == message.VideoTypeAU {
				frames.Add(1)
			}
		}
	}()

	for _, ca := range malformedCases(t, e) {
		t.Run(ca.name, func(t *testing.T) {
			before := len(e.log.lines("level=WARN"))
			framesBefore := frames.Load()
			nc := ca.run(t)
			switch {
			case ca.want == "":
				time.Sleep(200 * time.Millisecond)
				require.Empty(t, e.log.lines("level=WARN")[before:], "accepted input logged a warning")
			case ca.open:
				// Still open: the server answers a ping... or at least does not close.
				nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond)) //nolint:errcheck
				_, err := io.Copy(io.Discard, nc)
				require.ErrorIs(t, err, os.ErrDeadlineExceeded, "server closed the connection")
			default:
				requireClosedByServer(t, nc, 5*time.Second)
			}
			if ca.want != "" {
				require.Eventually(t, func() bool {
					return len(e.log.lines("level=WARN")) > before
				}, 5*time.Second, 5*time.Millisecond)
				time.Sleep(50 * time.Millisecond) // a second warning would show up by now
				warns := e.log.lines("level=WARN")[before:]
				require.Len(t, warns, 1, "want exactly one warning")
				require.Contains(t, warns[0], ca.want)
				require.Contains(t, warns[0], "remote_addr=")
				require.Contains(t, warns[0], "conn_id=")
			}
			nc.Close()
			require.True(t, e.reg.Stream("alice").Publishing(), "the good publisher was disturbed")
			require.Eventually(t, func() bool { return frames.Load() > framesBefore+5 },
				5*time.Second, 10*time.Millisecond, "the good player stopped receiving")
		})
	}
	player.Close()
	<-playerDone
	e.requireNoKeyInLogs()
}

// dialRaw connects to the server; the socket is closed at the end of the test.
func dialRaw(t *testing.T, e *testEnv) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", e.srv.ListenAddr().String())
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	return nc
}

// afterHandshake connects, handshakes and sends b.
func afterHandshake(t *testing.T, e *testEnv, b []byte) net.Conn {
	t.Helper()
	nc := dialRaw(t, e)
	rawHandshake(t, nc)
	_, err := nc.Write(b)
	require.NoError(t, err)
	return nc
}

// readUntil reads nc until what was read contains s.
func readUntil(t *testing.T, nc net.Conn, s string) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte(s)) {
		n, err := nc.Read(buf)
		require.NoError(t, err, "waiting for %q", s)
		got = append(got, buf[:n]...)
	}
	nc.SetReadDeadline(time.Time{}) //nolint:errcheck
}

func connectCmd(csid byte) *message.CommandAMF0 {
	return &message.CommandAMF0{ChunkStreamID: csid, Name: "connect", CommandID: 1, Arguments: []any{amf0.Object{
		{Key: "app", Value: "live"},
		{Key: "tcUrl", Value: "rtmp://127.0.0.1/live"},
	}}}
}

// basicHeader returns a type 0 basic header for chunk stream id csid in its 1-, 2- or
// 3-byte form (RTMP spec section 5.3.1.1).
func basicHeader(csid int) []byte {
	switch {
	case csid < 64:
		return []byte{byte(csid)}
	case csid < 320:
		return []byte{0, byte(csid - 64)}
	}
	return []byte{1, byte((csid - 64) & 0xFF), byte((csid - 64) >> 8)}
}

// rawMessage chunks a message of type typ on chunk stream 10 of message stream 1 (it
// fits one chunk: the body is under 128 bytes).
func rawMessage(t *testing.T, typ uint8, ts uint32, body []byte) []byte {
	return marshalChunk(t, &chunk.Chunk0{
		ChunkStreamID: 10, Type: typ, Timestamp: ts, MessageStreamID: 0x1000000,
		BodyLen: uint32(len(body)), Body: body,
	})
}

func malformedCases(t *testing.T, e *testEnv) []malformedCase {
	setChunkSize := func(v uint32) []byte {
		return marshalChunk(t, &chunk.Chunk0{
			ChunkStreamID: 2, Type: msgTypeSetChunkSize, BodyLen: 4,
			Body: []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)},
		})
	}
	dial := func(t *testing.T) net.Conn { return dialRaw(t, e) }
	raw := func(b func() []byte) func(t *testing.T) net.Conn {
		return func(t *testing.T) net.Conn { return afterHandshake(t, e, b()) }
	}
	// a publisher that sends raw message bytes after publish
	publishRaw := func(b func() []byte) func(t *testing.T) net.Conn {
		return func(t *testing.T) net.Conn {
			c := mustPublish(t, e, keyOf("bob"))
			_, err := c.NetConn().Write(b())
			require.NoError(t, err)
			return c.NetConn()
		}
	}
	video := func(t *testing.T, c *gortmplib.Client, key bool, dts, cts time.Duration) {
		t.Helper()
		require.NoError(t, c.Write(&message.Video{
			ChunkStreamID: message.VideoChunkStreamID, MessageStreamID: 0x1000000,
			Codec: message.CodecH264, IsKeyFrame: key, Type: message.VideoTypeAU,
			AU: []byte{0, 0, 0, 2, 0x65, 0x88}, DTS: dts, PTSDelta: cts,
		}))
	}
	// cidCase sends connect on chunk stream id csid.
	cidCase := func(csid int) func(t *testing.T) net.Conn {
		return func(t *testing.T) net.Conn {
			body := clientMessages(connectCmd(3))
			body = append(basicHeader(csid), body[1:]...) // same message, other basic header
			nc := afterHandshake(t, e, body)
			if csid < 64 {
				readUntil(t, nc, "NetConnection.Connect.Success")
			}
			return nc
		}
	}
	return []malformedCase{
		// the handshake
		{
			name: "handshake bad version",
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
			name: "handshake encrypted",
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
			name: "handshake truncated",
			run: func(t *testing.T) net.Conn {
				nc := dial(t)
				b := make([]byte, handshakeC0+700)
				b[0] = rtmpVersion
				nc.Write(b) //nolint:errcheck
				return nc
			},
			want: "i/o timeout",
		},
		{name: "silent client", run: dial, want: "i/o timeout"},
		{
			name: "slowloris",
			run: func(t *testing.T) net.Conn {
				// One byte at a time, each well within ReadTimeout: only HandshakeTimeout ends it.
				nc := dial(t)
				go func() {
					b := make([]byte, handshakeIn)
					b[0] = rtmpVersion
					for i := range b {
						if _, err := nc.Write(b[i : i+1]); err != nil {
							return
						}
						time.Sleep(e.srv.ReadTimeout / 5)
					}
				}()
				return nc
			},
			want: "connection setup not finished in time (handshake timeout 2s)",
		},
		{
			name: "silent after handshake",
			run:  raw(func() []byte { return nil }),
			want: "i/o timeout",
		},
		{
			name: "garbage after handshake",
			run:  raw(func() []byte { return []byte(strings.Repeat("\x00garbage", 200)) }),
			want: "chunk stream id above 63 (2-byte basic header) not supported",
		},
		// chunking
		{name: "chunk size zero", run: raw(func() []byte { return setChunkSize(0) }), want: "chunk size 0 out of range"},
		{name: "chunk size 2^31", run: raw(func() []byte { return setChunkSize(1 << 31) }), want: "chunk size 2147483648 out of range"},
		{name: "chunk size 32 MiB", run: raw(func() []byte { return setChunkSize(32 << 20) }), want: "chunk size 33554432 out of range"},
		{name: "chunk stream id 2", run: cidCase(2)},
		{name: "chunk stream id 63", run: cidCase(63)},
		{name: "chunk stream id 64", run: cidCase(64), want: "chunk stream id above 63 (2-byte basic header) not supported"},
		{name: "chunk stream id 319", run: cidCase(319), want: "chunk stream id above 63 (2-byte basic header) not supported"},
		{name: "chunk stream id 320", run: cidCase(320), want: "chunk stream id above 63 (3-byte basic header) not supported"},
		{name: "chunk stream id 65599", run: cidCase(65599), want: "chunk stream id above 63 (3-byte basic header) not supported"},
		{
			name: "extended timestamp missing on type 3 chunk",
			run: raw(func() []byte {
				b := marshalChunk(t, &chunk.Chunk0{
					ChunkStreamID: 3, Type: msgTypeCommand, Timestamp: 0x1000000, BodyLen: 200,
					Body: bytes.Repeat([]byte{0x05}, 128),
				})
				// the continuation lacks the 4 bytes of the extended timestamp
				b = append(b, 0xC3)
				return append(b, bytes.Repeat([]byte{0x41}, 72)...)
			}),
			want: "type 3 chunk on chunk stream 3 lacks the extended timestamp 16777216 of its message",
		},
		{
			name: "message too long",
			run: raw(func() []byte {
				return marshalChunk(t, &chunk.Chunk0{
					ChunkStreamID: 3, Type: msgTypeCommand, BodyLen: 2 << 20, Body: make([]byte, 128),
				})
			}),
			want: "message length 2097152 exceeds limit 1048576",
		},
		// commands
		{
			name: "amf0 string length past the end",
			run: raw(func() []byte {
				body := []byte{0x02, 0x00, 0x07, 'c', 'o', 'n', 'n'} // "connect" cut short
				return marshalChunk(t, &chunk.Chunk0{
					ChunkStreamID: 3, Type: msgTypeCommand, BodyLen: uint32(len(body)), Body: body,
				})
			}),
			want: "invalid command",
		},
		{
			name: "unknown command",
			run: func(t *testing.T) net.Conn {
				msgs := connectMsgs("publish", keyOf("carol"))
				unknown := func(id int) message.Message {
					return &message.CommandAMF0{ChunkStreamID: 3, Name: "launchMissiles\x01", CommandID: id, Arguments: []any{nil}}
				}
				// twice: one warning per connection
				msgs = append(msgs[:2], append([]message.Message{unknown(10), unknown(11)}, msgs[2:]...)...)
				nc := afterHandshake(t, e, clientMessages(msgs...))
				readUntil(t, nc, "NetStream.Publish.Start")
				return nc
			},
			want: `msg="unknown command dropped"`,
			open: true,
		},
		{
			name: "publish before connect",
			run: raw(func() []byte {
				return clientMessages(&message.CommandAMF0{ChunkStreamID: 3, Name: "publish", CommandID: 1,
					Arguments: []any{nil, keyOf("bob"), "live"}})
			}),
			want: "publish command before connect",
		},
		{
			name: "second connect",
			run:  raw(func() []byte { return clientMessages(connectCmd(3), connectCmd(3)) }),
			want: "second connect command",
		},
		{
			name: "connect command over the guard's capture limit",
			run: func(t *testing.T) net.Conn {
				msgs := connectMsgs("publish", keyOf("dave"))
				connect := msgs[1].(*message.CommandAMF0)
				obj := append(connect.Arguments[0].(amf0.Object), amf0.ObjectEntry{Key: "pad", Value: strings.Repeat("x", 2*guardCaptureMax)})
				connect.Arguments = []any{obj}
				nc := afterHandshake(t, e, clientMessages(msgs...))
				readUntil(t, nc, "NetStream.Publish.Start")
				return nc
			},
		},
		// media
		{
			name: "audio before the AAC sequence header",
			run: func(t *testing.T) net.Conn {
				c := mustPublish(t, e, keyOf("bob"))
				require.NoError(t, c.Write(&message.Audio{
					ChunkStreamID: message.AudioChunkStreamID, MessageStreamID: 0x1000000,
					Codec: message.CodecMPEG4Audio, Rate: 3, Depth: 1, IsStereo: true,
					AACType: message.AudioAACTypeAU, AU: []byte{0x21, 0x10, 0x04},
				}))
				return c.NetConn()
			},
			want: "media before its sequence header: aac audio frame",
		},
		{
			name: "video keyframe before the AVC sequence header",
			run: func(t *testing.T) net.Conn {
				c := mustPublish(t, e, keyOf("bob"))
				video(t, c, true, 0, 0)
				return c.NetConn()
			},
			want: "media before its sequence header: h264 video frame",
		},
		{
			name: "bad AVCDecoderConfigurationRecord",
			run: publishRaw(func() []byte {
				// an SPS of 64 bytes announced, 1 present
				return rawMessage(t, msgTypeVideo, 0, []byte{0x17, 0x00, 0, 0, 0, 0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x40, 0x67})
			}),
			want: "unable to parse H264 config: not enough bits",
		},
		{
			name: "AAC AudioSpecificConfig with sample rate index 13",
			run: publishRaw(func() []byte {
				// AAC LC, sampling frequency index 13 (reserved), 2 channels
				return rawMessage(t, msgTypeAudio, 0, []byte{0xAF, 0x00, 0x16, 0x90})
			}),
			want: "unable to parse MPEG4 audio config: invalid sample rate index (13)",
		},
		{
			name: "unsupported audio codec",
			run: func(t *testing.T) net.Conn {
				c := mustPublish(t, e, keyOf("bob"))
				require.NoError(t, c.Write(&message.Audio{
					ChunkStreamID: message.AudioChunkStreamID, MessageStreamID: 0x1000000,
					Codec: message.CodecPCMA, AU: []byte{1, 2, 3},
				}))
				return c.NetConn()
			},
			want: "unsupported audio codec 7",
		},
		{
			name: "negative composition time",
			run: func(t *testing.T) net.Conn {
				c := mustPublish(t, e, keyOf("bob"))
				publishH264Config(t, c)
				video(t, c, true, time.Second, -40*time.Millisecond)
				return c.NetConn()
			},
			want: "negative composition time -40ms",
		},
		{
			name: "timestamps going backwards",
			run: func(t *testing.T) net.Conn {
				c := mustPublish(t, e, keyOf("bob"))
				publishH264Config(t, c)
				for _, ts := range []time.Duration{time.Second, 2 * time.Second, 1500 * time.Millisecond} {
					video(t, c, true, ts, 0)
				}
				return c.NetConn()
			},
			want: "timestamp went backwards",
		},
		{
			name: "0-byte video payload",
			run:  publishRaw(func() []byte { return rawMessage(t, msgTypeVideo, 0, nil) }),
			want: "empty video message on chunk stream 10",
		},
		{
			name: "0-byte audio payload",
			run:  publishRaw(func() []byte { return rawMessage(t, msgTypeAudio, 0, nil) }),
			want: "empty audio message on chunk stream 10",
		},
	}
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

// TestServerStalledPlayer checks that players that never read their socket do not slow
// another player, and that they are cut loose. It measures the healthy player's frame
// inter-arrival times without and with the stalled players.
func TestServerStalledPlayer(t *testing.T) {
	e := newTestEnv(t, func(s *Server, _ *hub.Registry) {
		s.WriteTimeout = 3 * time.Second
	})
	file := media(t, "big_h264_aac.flv")
	e.publishFile(file, "live", keyOf("alice"), true)
	st := e.waitLive("alice")

	good := e.dialPlayer("alice")
	firstVideoAU(t, good)
	good.NetConn().SetReadDeadline(time.Now().Add(time.Minute)) //nolint:errcheck
	// arrivals reads the good player for d and returns the wall-clock gaps between its
	// video frames.
	arrivals := func(d time.Duration) []time.Duration {
		var gaps []time.Duration
		start := time.Now()
		last := start
		for time.Since(start) < d {
			msg, err := good.Read()
			require.NoError(t, err)
			if v, ok := msg.(*message.Video); ok && v.Type == message.VideoTypeAU {
				now := time.Now()
				gaps = append(gaps, now.Sub(last))
				last = now
			}
		}
		return gaps[1:]
	}
	const window = 3 * time.Second
	base := arrivals(window)

	// The stalled players: a tiny receive window, and they never read.
	const stalledN = 3
	u, err := url.Parse(e.url("live", "alice"))
	require.NoError(t, err)
	for range stalledN {
		stalled := &gortmplib.Client{URL: u, DialContext: (&net.Dialer{
			Control: func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) {
					syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) //nolint:errcheck
				})
			},
		}).DialContext}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		require.NoError(t, stalled.Initialize(ctx))
		cancel()
		defer stalled.Close()
	}
	require.Equal(t, 1+stalledN, st.Readers()["rtmp"])
	stalledAt := time.Now()
	withStalled := arrivals(window)
	require.Equal(t, 1+stalledN, st.Readers()["rtmp"], "stalled players cut before the measurement ended")

	summary := func(gaps []time.Duration) (fps float64, p50, p99, worst time.Duration) {
		var sum time.Duration
		for _, g := range gaps {
			sum += g
		}
		sorted := slices.Clone(gaps)
		slices.Sort(sorted)
		q := func(f float64) time.Duration { return sorted[int(f*float64(len(sorted)-1))] }
		return float64(len(gaps)) / sum.Seconds(), q(0.5), q(0.99), sorted[len(sorted)-1]
	}
	fps0, p500, p990, max0 := summary(base)
	fps1, p501, p991, max1 := summary(withStalled)
	t.Logf("healthy player alone:            %.1f frames/s, gap p50 %v p99 %v max %v", fps0, p500, p990, max0)
	t.Logf("healthy player, %d stalled ones: %.1f frames/s, gap p50 %v p99 %v max %v", stalledN, fps1, p501, p991, max1)
	require.Greater(t, fps1, 24.0)
	// generous: a publisher blocked by the stalled players would stop everyone for a WriteTimeout
	require.Less(t, max1, time.Second)

	// The stalled players are cut once their sockets are full and a write blocks.
	require.Eventually(t, func() bool {
		return st.Readers()["rtmp"] == 1
	}, 30*time.Second, 50*time.Millisecond, "stalled players still attached")
	t.Logf("stalled players cut %v after they connected", time.Since(stalledAt).Round(100*time.Millisecond))
	// The closes are logged just after the readers detach.
	var warns []string
	require.Eventually(t, func() bool {
		warns = e.log.lines("level=WARN", "connection closed")
		return len(warns) == stalledN
	}, 5*time.Second, 10*time.Millisecond)
	for _, w := range warns {
		require.Contains(t, w, "write")
	}
	t.Logf("%s", warns[0][strings.Index(warns[0], "err="):])
	// The healthy player is still fed.
	require.NotEmpty(t, arrivals(time.Second))
}

// TestServerMalformedNoGrowth runs the quick cases of the malformed corpus again and
// again: once their connections are gone, goroutines and heap are back where they were.
func TestServerMalformedNoGrowth(t *testing.T) {
	e := newTestEnv(t, func(s *Server, _ *hub.Registry) {
		s.ReadTimeout = 500 * time.Millisecond
		s.HandshakeTimeout = 2 * time.Second
		s.MaxMessageSize = 1 << 20
	})
	var quick []malformedCase
	for _, ca := range malformedCases(t, e) {
		if !strings.Contains(ca.want, "timeout") {
			quick = append(quick, ca)
		}
	}
	// Each round is a subtest: its clients are released by its cleanups.
	round := func(t *testing.T) {
		for _, ca := range quick {
			nc := ca.run(t)
			if ca.want != "" && !ca.open {
				requireClosedByServer(t, nc, 5*time.Second)
			}
			nc.Close()
			require.Eventually(t, func() bool { return len(e.srv.Conns()) == 0 },
				5*time.Second, time.Millisecond, "%s: connection still open", ca.name)
		}
	}
	measure := func() (int, uint64) {
		var ms runtime.MemStats
		for range 3 {
			runtime.GC()
		}
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapInuse
	}
	t.Run("warm up", round) // pools, the hub's streams, lazily made buffers
	// The captured log grows with every line: room for all of it, so that its growth
	// does not count.
	e.log.mu.Lock()
	e.log.b.Grow(32 << 20)
	e.log.mu.Unlock()
	g0, h0 := measure()
	const rounds = 20
	for i := range rounds {
		t.Run(fmt.Sprint("round ", i), round)
	}
	var g1 int
	var h1 uint64
	require.Eventually(t, func() bool {
		g1, h1 = measure()
		return g1 <= g0+2
	}, 5*time.Second, 50*time.Millisecond, "goroutines grew from %d to %d", g0, g1)
	t.Logf("%d cases x %d rounds: goroutines %d -> %d, heap in use %.1f -> %.1f MiB",
		len(quick), rounds, g0, g1, float64(h0)/(1<<20), float64(h1)/(1<<20))
	require.Less(t, h1, h0+4<<20, "heap in use grew")
}
