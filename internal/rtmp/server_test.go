package rtmp

import (
	"bytes"
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/unit"
)

// firstVideoAU reads messages until the first video access unit and returns it.
func firstVideoAU(t *testing.T, c *gortmplib.Client) *message.Video {
	t.Helper()
	c.NetConn().SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	for {
		msg, err := c.Read()
		require.NoError(t, err)
		if v, ok := msg.(*message.Video); ok && v.Type == message.VideoTypeAU {
			return v
		}
	}
}

func TestServerPublishPlay(t *testing.T) {
	e := newTestEnv(t)
	file := media(t, "h264_aac.flv")
	e.publishFile(file, "live", keyOf("alice"), true)
	st := e.waitLive("alice")

	tracks := st.Tracks()
	require.Len(t, tracks, 2)
	require.Equal(t, unit.CodecH264, tracks[0].Codec)
	require.Equal(t, 320, tracks[0].Width)
	require.Equal(t, 240, tracks[0].Height)
	require.Equal(t, unit.CodecAAC, tracks[1].Codec)
	require.Equal(t, 44100, tracks[1].SampleRate)
	require.Equal(t, 1, tracks[1].ChannelCount)

	t.Run("hub units", func(t *testing.T) {
		r, err := st.AddReader("test")
		require.NoError(t, err)
		defer r.Close()
		_, units := readEvents(t, r, 60, 5*time.Second)
		require.NotEmpty(t, units)
		var firstVideo *unit.Unit
		for _, u := range units {
			require.GreaterOrEqual(t, u.PTS, u.DTS)
			if u.Track == 0 && firstVideo == nil {
				firstVideo = u
			}
		}
		require.NotNil(t, firstVideo)
		require.True(t, firstVideo.Key)
		// SPS and PPS in band, before the IDR slice.
		require.Equal(t, h264.NALUTypeSPS, h264.NALUType(firstVideo.Payload[0][0]&0x1F))
		require.Equal(t, h264.NALUTypePPS, h264.NALUType(firstVideo.Payload[1][0]&0x1F))
		require.True(t, h264.IsRandomAccess(firstVideo.Payload))
	})

	t.Run("ffprobe", func(t *testing.T) {
		ss := ffprobe(t, e.url("live", "alice"))
		require.ElementsMatch(t, []string{"h264", "aac"}, codecNames(ss))
		for _, s := range ss {
			if s.CodecType == "video" {
				require.Equal(t, 320, s.Width)
				require.Equal(t, 240, s.Height)
			}
		}
	})

	t.Run("first frame latency", func(t *testing.T) {
		start := time.Now()
		c := e.dialPlayer("alice")
		v := firstVideoAU(t, c)
		elapsed := time.Since(start)
		t.Logf("first video frame %v after play", elapsed)
		require.True(t, v.IsKeyFrame)
		require.Less(t, elapsed, 200*time.Millisecond)
	})

	t.Run("gortmplib reader", func(t *testing.T) {
		c := e.dialPlayer("alice")
		c.NetConn().SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
		r := &gortmplib.Reader{Conn: c}
		require.NoError(t, r.Initialize())
		var h264Track *gortmplib.Track
		var aac bool
		var aus [][][]byte
		for _, tr := range r.Tracks() {
			switch tr.Codec.(type) {
			case *codecs.H264:
				h264Track = tr
				r.OnDataH264(tr, func(_, _ time.Duration, au [][]byte) {
					for _, n := range au {
						if typ := h264.NALUType(n[0] & 0x1F); typ == h264.NALUTypeIDR || typ == h264.NALUTypeNonIDR {
							aus = append(aus, au) // skip the sequence header, given as an AU too
							return
						}
					}
				})
			case *codecs.MPEG4Audio:
				aac = true
				r.OnDataMPEG4Audio(tr, func(time.Duration, []byte) {})
			}
		}
		require.NotNil(t, h264Track)
		require.True(t, aac)
		for len(aus) < 5 {
			c.NetConn().SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
			require.NoError(t, r.Read())
		}
		require.True(t, h264.IsRandomAccess(aus[0]), "first access unit is not a keyframe")
	})

	e.requireNoKeyInLogs()
	require.NotEmpty(t, e.log.lines("publish started", "channel=alice", "codecs=h264,aac"))
}

func TestServerPublishAnyApp(t *testing.T) {
	e := newTestEnv(t)
	file := media(t, "h264_aac.flv")
	for i, app := range []string{"hls", "dash"} {
		// As fast as ffmpeg goes: the logs tell that the stream went live. ffmpeg may exit
		// before the server has read all it sent: wait for the session's end.
		p := startFFmpeg(t, "-i", file, "-c", "copy", "-f", "flv", e.url(app, keyOf("bob")+"?foo=bar"))
		require.NoError(t, p.wait(t, 20*time.Second))
		require.Eventually(t, func() bool {
			return len(e.log.lines("publish ended", "channel=bob")) == i+1 && e.reg.Stream("bob") == nil
		}, 5*time.Second, 10*time.Millisecond)
	}
	require.Len(t, e.log.lines("publish started", "channel=bob"), 2)
	ended := e.log.lines("publish ended", "channel=bob")
	require.Len(t, ended, 2)
	require.Contains(t, ended[0], "reason=unpublished")
	require.Contains(t, ended[0], "codecs=h264,aac")
	e.requireNoKeyInLogs()
}

func TestServerPublishWrongKey(t *testing.T) {
	e := newTestEnv(t)
	file := media(t, "h264_aac.flv")
	start := time.Now()
	p := e.publishFile(file, "live", "sk_wrong_0123456789", false)
	err := p.wait(t, 5*time.Second)
	require.Error(t, err, "ffmpeg must fail with a wrong key")
	t.Logf("ffmpeg exited after %v: %s", time.Since(start), p.out.String())
	require.Less(t, time.Since(start), 5*time.Second)
	require.Nil(t, e.reg.Stream("alice"))
	require.Len(t, e.log.lines("publish rejected", "invalid stream key"), 1)
	require.NotContains(t, e.log.String(), "sk_wrong_0123456789")
	e.requireNoKeyInLogs()
}

// publishClient publishes with gortmplib's client; it fails when the server refuses.
func publishClient(e *testEnv, key string) (*gortmplib.Client, error) {
	u, err := url.Parse(e.url("live", key))
	require.NoError(e.t, err)
	c := &gortmplib.Client{URL: u, Publish: true}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Initialize(ctx); err != nil {
		return nil, err
	}
	e.t.Cleanup(c.Close)
	return c, nil
}

func TestServerKeyGuessLimiter(t *testing.T) {
	e := newTestEnv(t, func(s *Server, _ *hub.Registry) { s.MaxAuthFailures = 3 })
	for i := range 3 {
		_, err := publishClient(e, "sk_guess_"+string(rune('a'+i)))
		require.Error(t, err)
	}
	// Blocked now, even with the right key.
	_, err := publishClient(e, keyOf("carol"))
	require.Error(t, err)
	require.Len(t, e.log.lines("publish rejected", "too many invalid stream keys"), 1)
	require.Len(t, e.log.lines("address blocked"), 1)
	e.requireNoKeyInLogs()
}

func TestFailLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := failLimiter{max: 3, window: time.Minute, block: 5 * time.Minute, now: func() time.Time { return now }}
	ip := mustAddr("192.0.2.1")
	other := mustAddr("192.0.2.2")
	require.False(t, l.fail(ip))
	require.False(t, l.fail(ip))
	now = now.Add(2 * time.Minute) // the window restarts
	require.False(t, l.fail(ip))
	require.False(t, l.fail(ip))
	require.False(t, l.blocked(ip))
	require.True(t, l.fail(ip))
	require.True(t, l.blocked(ip))
	require.False(t, l.blocked(other))
	now = now.Add(5*time.Minute + time.Second)
	require.False(t, l.blocked(ip))
}

func TestServerDuplicatePublisher(t *testing.T) {
	e := newTestEnv(t)
	file := media(t, "h264_aac.flv")
	e.publishFile(file, "live", keyOf("dave"), true)
	e.waitLive("dave")

	c := e.dialPlayer("dave")
	firstVideoAU(t, c)

	start := time.Now()
	second := e.publishFile(file, "live", keyOf("dave"), false)
	require.Error(t, second.wait(t, 5*time.Second), "the second publisher must be refused")
	t.Logf("second publisher refused after %v", time.Since(start))
	require.Len(t, e.log.lines("publish rejected", "channel already has a publisher"), 1)

	// The first publisher goes on: the player keeps receiving video in real time.
	count := 0
	deadline := time.Now().Add(2 * time.Second)
	c.NetConn().SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	for time.Now().Before(deadline) {
		msg, err := c.Read()
		require.NoError(t, err)
		if v, ok := msg.(*message.Video); ok && v.Type == message.VideoTypeAU {
			count++
		}
	}
	require.GreaterOrEqual(t, count, 30, "player starved after the duplicate publisher")
	require.True(t, e.reg.Stream("dave").Publishing())
	e.requireNoKeyInLogs()
}

func TestServerCodecs(t *testing.T) {
	cases := []struct {
		name    string
		file    string
		tracks  []unit.Track // codec, size, rate, channels to expect
		probe   []string
		bframes bool
	}{
		{
			name:   "mp3 44.1 kHz mono",
			file:   "mp3_44k.flv",
			tracks: []unit.Track{{Codec: unit.CodecH264, Width: 320, Height: 240}, {Codec: unit.CodecMP3, SampleRate: 44100, ChannelCount: 1}},
			probe:  []string{"h264", "mp3"},
		},
		{
			name:   "mp3 22.05 kHz audio only",
			file:   "mp3_22k.flv",
			tracks: []unit.Track{{Codec: unit.CodecMP3, SampleRate: 22050, ChannelCount: 2}},
			probe:  []string{"mp3"},
		},
		{
			name:   "audio only",
			file:   "audio_only.flv",
			tracks: []unit.Track{{Codec: unit.CodecAAC, SampleRate: 48000, ChannelCount: 1}},
			probe:  []string{"aac"},
		},
		{
			name:   "video only",
			file:   "video_only.flv",
			tracks: []unit.Track{{Codec: unit.CodecH264, Width: 320, Height: 240}},
			probe:  []string{"h264"},
		},
		{
			name:    "b-frames",
			file:    "bframes.flv",
			tracks:  []unit.Track{{Codec: unit.CodecH264, Width: 320, Height: 240}, {Codec: unit.CodecAAC, SampleRate: 44100, ChannelCount: 1}},
			probe:   []string{"h264", "aac"},
			bframes: true,
		},
	}
	channels := []string{"erin", "frank", "grace", "heidi", "ivan"}
	for i, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			file := media(t, ca.file)
			name := channels[i]
			e.publishFile(file, "live", keyOf(name), true)
			st := e.waitLive(name)

			tracks := st.Tracks()
			require.Len(t, tracks, len(ca.tracks))
			for j, want := range ca.tracks {
				got := tracks[j]
				require.Equal(t, want.Codec, got.Codec)
				require.Equal(t, want.Width, got.Width)
				require.Equal(t, want.Height, got.Height)
				require.Equal(t, want.SampleRate, got.SampleRate)
				require.Equal(t, want.ChannelCount, got.ChannelCount)
			}

			r, err := st.AddReader("test")
			require.NoError(t, err)
			_, units := readEvents(t, r, 90, 5*time.Second)
			r.Close()
			require.NotEmpty(t, units)
			reordered := false
			lastDTS := map[int]time.Duration{}
			for _, u := range units {
				require.GreaterOrEqual(t, u.PTS, u.DTS)
				require.GreaterOrEqual(t, u.DTS, lastDTS[u.Track])
				lastDTS[u.Track] = u.DTS
				if u.PTS > u.DTS {
					reordered = true
				}
			}
			require.Equal(t, ca.bframes, reordered, "composition offsets")

			ss := ffprobe(t, e.url("live", name))
			require.ElementsMatch(t, ca.probe, codecNames(ss))
			for _, s := range ss {
				if s.CodecType == "audio" {
					require.Equal(t, ca.tracks[len(ca.tracks)-1].ChannelCount, s.Channels)
				}
			}
			e.requireNoKeyInLogs()
		})
	}
}

func TestServerPlayNotFound(t *testing.T) {
	e := newTestEnv(t)
	u, err := url.Parse(e.url("live", "nobody"))
	require.NoError(t, err)
	c := &gortmplib.Client{URL: u}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.Error(t, c.Initialize(ctx))
	require.Empty(t, e.log.lines("level=WARN"))
}

// TestServerStreamEndReachesPlayer plays a whole file, with a player goroutine and with
// a pooled player: every frame arrives in order, then StreamEOF, UnpublishNotify and the
// close, an ordinary end.
func TestServerStreamEndReachesPlayer(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  func(*Server, *hub.Registry)
	}{{"goroutine", nil}, {"pooled", pooled(nil)}} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []func(*Server, *hub.Registry)
			if tc.opt != nil {
				opts = append(opts, tc.opt)
			}
			e := newTestEnv(t, opts...)
			p := e.publishFile(media(t, "video_only.flv"), "live", keyOf("judy"), false)
			e.waitLive("judy")
			c := e.dialPlayer("judy")
			require.True(t, firstVideoAU(t, c).IsKeyFrame)
			e.srv.mu.Lock()
			shards := len(e.srv.playShards)
			e.srv.mu.Unlock()
			require.Equal(t, tc.opt != nil, shards > 0, "pooled mode")
			require.NoError(t, p.wait(t, 20*time.Second))

			// After the stream ends: StreamEOF and UnpublishNotify, then the server closes.
			var eof, notify bool
			frames := 0
			last := time.Duration(-1)
			c.NetConn().SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
			for {
				msg, err := c.Read()
				if err != nil {
					break
				}
				switch m := msg.(type) {
				case *message.Video:
					if m.Type == message.VideoTypeAU {
						require.GreaterOrEqual(t, m.DTS, last)
						last = m.DTS
						frames++
					}
				case *message.UserControlStreamEOF:
					eof = true
				case *message.CommandAMF0:
					if m.Name == "onStatus" && bytes.Contains([]byte(commandCode(m)), []byte("UnpublishNotify")) {
						notify = true
					}
				}
			}
			require.True(t, eof)
			require.True(t, notify)
			require.Greater(t, frames, 20)
			require.Eventually(t, func() bool {
				return len(e.log.lines("play ended", "err=<nil>")) == 1
			}, 5*time.Second, 10*time.Millisecond)
			require.Empty(t, e.log.lines("level=WARN"))
		})
	}
}

func commandCode(m *message.CommandAMF0) string {
	for _, a := range m.Arguments {
		if o, ok := a.(interface{ GetString(string) (string, bool) }); ok {
			if s, ok := o.GetString("code"); ok {
				return s
			}
		}
	}
	return ""
}

// TestServerPublisherKicked checks that ending the stream in the hub closes the
// publisher's connection.
func TestServerPublisherKicked(t *testing.T) {
	e := newTestEnv(t)
	file := media(t, "h264_aac.flv")
	p := e.publishFile(file, "live", keyOf("alice"), true)
	e.waitLive("alice")
	require.True(t, e.reg.End("alice"))
	require.Error(t, p.wait(t, 5*time.Second))
	require.Eventually(t, func() bool {
		return len(e.log.lines("publish ended", "reason=\"ended by server\"")) == 1
	}, 5*time.Second, 10*time.Millisecond)
}

// TestServerSequenceHeaderChange checks that a new SPS mid-stream restarts the hub
// session: readers get the new tracks with a discontinuity.
func TestServerSequenceHeaderChange(t *testing.T) {
	tracks, key := captureKeyUnit(t, "h264_aac.flv")
	// The restart goes through the hub's grace window (with no window, the stream would
	// end and start again).
	e := newTestEnv(t, func(_ *Server, reg *hub.Registry) { reg.GracePeriod = time.Minute })
	c := mustPublish(t, e, keyOf("carol"))
	track := &gortmplib.Track{Codec: &codecs.H264{SPS: tracks[0].SPS, PPS: tracks[0].PPS}}
	w := &gortmplib.Writer{Conn: c, Tracks: []*gortmplib.Track{track}}
	require.NoError(t, w.Initialize())
	require.NoError(t, w.WriteH264(track, 0, 0, key.Payload))
	st := e.waitLive("carol")
	r, err := st.AddReader("test")
	require.NoError(t, err)
	defer r.Close()
	player := e.dialPlayer("carol")
	firstVideoAU(t, player)

	require.NoError(t, c.Write(&message.Video{
		ChunkStreamID: message.VideoChunkStreamID, MessageStreamID: 0x1000000, Codec: message.CodecH264,
		IsKeyFrame: true, Type: message.VideoTypeConfig, AVCConfig: mustAVCConfig(seedSPS, seedPPS),
	}))
	require.NoError(t, w.WriteH264(track, 40*time.Millisecond, 40*time.Millisecond, key.Payload))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var restarted *hub.Event
	for restarted == nil {
		ev, err := r.Read(ctx)
		require.NoError(t, err)
		if ev.Tracks != nil && ev.Discontinuity {
			restarted = &ev
		}
	}
	require.Equal(t, seedSPS, restarted.Tracks[0].SPS)
	require.Equal(t, 1920, restarted.Tracks[0].Width)
	ev, err := r.Read(ctx)
	require.NoError(t, err)
	require.NotNil(t, ev.Unit)
	require.True(t, ev.Unit.Key)
	require.Len(t, e.log.lines("publish session restarted", "sequence header changed"), 1)

	// The RTMP player gets the new sequence header, then the new session's key frame.
	player.NetConn().SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	for {
		msg, err := player.Read()
		require.NoError(t, err)
		if v, ok := msg.(*message.Video); ok && v.Type == message.VideoTypeConfig {
			require.Equal(t, seedSPS, v.AVCConfig.SequenceParameterSets[0].NALUnit)
			break
		}
	}
	require.True(t, firstVideoAU(t, player).IsKeyFrame)
}

func TestServerWriteMergeWindow(t *testing.T) {
	e := newTestEnv(t, func(s *Server, _ *hub.Registry) { s.WriteMergeWindow = 100 * time.Millisecond })
	e.publishFile(media(t, "h264_aac.flv"), "live", keyOf("dave"), true)
	e.waitLive("dave")
	c := e.dialPlayer("dave")
	firstVideoAU(t, c)
	n := 0
	start := time.Now()
	c.NetConn().SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
	for time.Since(start) < 2*time.Second {
		msg, err := c.Read()
		require.NoError(t, err)
		if v, ok := msg.(*message.Video); ok && v.Type == message.VideoTypeAU {
			n++
		}
	}
	t.Logf("%d video frames in 2 s with merged writes", n)
	require.GreaterOrEqual(t, n, 30)
}
