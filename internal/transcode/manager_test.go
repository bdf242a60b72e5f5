package transcode

import (
	"context"
	"io"
	"log/slog"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/testutil"
	"github.com/onair/onair/internal/unit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestMakePlan(t *testing.T) {
	v := &unit.Track{Codec: unit.CodecH264, Width: 1280, Height: 720}
	aac := &unit.Track{Codec: unit.CodecAAC}
	opus := &unit.Track{Codec: unit.CodecOpus}
	av1 := &unit.Track{Codec: unit.CodecAV1, Width: 1920, Height: 1080}
	cases := []struct {
		name   string
		tracks []*unit.Track
		want   []string // name WxH@kbps
		copy   bool
	}{
		{"720p source", []*unit.Track{v, aac}, []string{"480p 854x480@1110", "360p 640x360@620", "audio 0x0@128"}, true},
		{"opus audio is encoded", []*unit.Track{v, opus}, []string{"480p 854x480@1110", "360p 640x360@620", "audio 0x0@128"}, false},
		{"video only", []*unit.Track{v}, []string{"480p 854x480@1110", "360p 640x360@620"}, false},
		{"audio only", []*unit.Track{aac}, nil, true},
		{"av1 is not transcoded", []*unit.Track{av1, aac}, nil, true},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			p := makePlan(DefaultLadder, ca.tracks)
			var got []string
			for _, r := range p.rungs {
				got = append(got, r.Name+" "+itoa(r.width)+"x"+itoa(r.height)+"@"+itoa(r.kbps))
			}
			require.Equal(t, ca.want, got)
			require.Equal(t, ca.copy, p.copyAAC)
		})
	}
}

func testLogger() *slog.Logger {
	w := io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

func TestFFmpegArgsKeyFrames(t *testing.T) {
	p := makePlan(DefaultLadder, []*unit.Track{{Codec: unit.CodecH264, Width: 1280, Height: 720}, {Codec: unit.CodecAAC}})
	args := ffmpegArgs(p, EncoderX264, "veryfast", "")
	require.Contains(t, args, "-copyts")
	n := 0
	for i, a := range args {
		if a == "-force_key_frames" {
			require.Equal(t, "source", args[i+1])
			n++
		}
	}
	require.Equal(t, 2, n, "every video rung follows the source's key frames")
	require.Equal(t, "pipe:5", args[len(args)-1], "three outputs on fd 3, 4, 5")
}

// startSource publishes real media (320x180 H.264 + AAC) looped at real time into a new
// hub and returns the hub; the publisher stops with the test.
func startSource(t *testing.T, name string) *hub.Registry {
	t.Helper()
	med := testutil.MustMedia(t, "h264_aac")
	reg := &hub.Registry{GracePeriod: 5 * time.Second}
	require.NoError(t, reg.Start())
	t.Cleanup(reg.Close)
	pub, err := reg.Publish(name, med.Tracks)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = testutil.PublishMedia(ctx, pub, med, testutil.PublishOpts{Speed: 1, Loops: 30})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return reg
}

// waitUnits waits until a reader of the named stream got n video units, and returns its tracks.
func waitUnits(t *testing.T, reg *hub.Registry, name string, n int) []*unit.Track {
	t.Helper()
	var st *hub.Stream
	require.Eventually(t, func() bool { st = reg.Stream(name); return st != nil }, 20*time.Second, 50*time.Millisecond,
		"no stream %s", name)
	rd, err := st.AddReader("test")
	require.NoError(t, err)
	defer rd.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var tracks []*unit.Track
	got := 0
	for tracks == nil || got < n {
		ev, err := rd.Read(ctx)
		require.NoError(t, err, "reading %s", name)
		if ev.Tracks != nil {
			tracks = ev.Tracks
		}
		if ev.Unit != nil && tracks[ev.Unit.Track].IsVideo() {
			got++
		}
	}
	return tracks
}

func TestManagerLadderAndRestart(t *testing.T) {
	testutil.RequireFFmpeg(t)
	reg := startSource(t, "alice")
	m := &Manager{
		Hub:        reg,
		Ladder:     []Rung{{Name: "144p", Height: 144}, {Name: "360p", Height: 360}, {Name: "audio"}},
		Preset:     "ultrafast",
		RestartMin: 100 * time.Millisecond,
		Logger:     testLogger(),
	}
	require.NoError(t, m.Start())
	t.Cleanup(m.Close)
	require.True(t, m.Available())
	m.Transcode("alice")

	tracks := waitUnits(t, reg, "alice~144p", 30)
	require.Len(t, tracks, 2)
	require.Equal(t, unit.CodecH264, tracks[0].Codec)
	require.Equal(t, 256, tracks[0].Width)
	require.Equal(t, 144, tracks[0].Height)
	require.Equal(t, unit.CodecAAC, tracks[1].Codec)
	require.Nil(t, reg.Stream("alice~360p"), "360p is not smaller than the 180p source")
	audio := waitUnits(t, reg, "alice~audio", 0)
	require.Len(t, audio, 1)
	require.Equal(t, unit.CodecAAC, audio[0].Codec)
	require.Equal(t, hub.SourceDerived, reg.Stream("alice~144p").Source())

	rs := m.Renditions("alice")
	require.Len(t, rs, 2)
	require.Equal(t, Rendition{Name: "144p", Stream: "alice~144p", Width: 256, Height: 144, Kbps: defaultKbps(256, 144)}, rs[0])
	require.Equal(t, "audio", rs[1].Name)

	st := m.Status()
	require.Len(t, st, 1)
	pid := st[0].PID
	require.NotZero(t, pid)
	require.Equal(t, []string{"144p", "audio"}, st[0].Renditions)

	// Killing the child restarts it, and the rendition goes on.
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	require.Eventually(t, func() bool {
		st := m.Status()
		return len(st) == 1 && st[0].PID != 0 && st[0].PID != pid && st[0].Restarts == 1
	}, 20*time.Second, 50*time.Millisecond)
	waitUnits(t, reg, "alice~144p", 60)

	// The source ending ends the transcoder and its renditions.
	reg.End("alice")
	require.Eventually(t, func() bool { return len(m.Status()) == 0 }, 10*time.Second, 50*time.Millisecond)
	require.Nil(t, reg.Stream("alice~144p"))
	require.Nil(t, reg.Stream("alice~audio"))
}

func TestManagerWithoutFFmpeg(t *testing.T) {
	reg := &hub.Registry{}
	require.NoError(t, reg.Start())
	defer reg.Close()
	m := &Manager{Hub: reg, FFmpeg: "/nonexistent/ffmpeg"}
	require.NoError(t, m.Start())
	defer m.Close()
	require.False(t, m.Available())
	require.Error(t, m.LookupError())
	_, err := reg.Publish("alice", []*unit.Track{{Codec: unit.CodecAAC}})
	require.NoError(t, err)
	m.Transcode("alice")
	require.Empty(t, m.Status())
	require.Empty(t, m.Renditions("alice"))
}

// TestManagerHardwareFallback asks for NVENC on a machine without an NVIDIA GPU: ffmpeg
// fails to open the encoder, and the transcoder goes on with libx264.
func TestManagerHardwareFallback(t *testing.T) {
	testutil.RequireFFmpeg(t)
	if _, err := os.Stat("/dev/nvidia0"); err == nil {
		t.Skip("this machine has an NVIDIA GPU: NVENC would work")
	}
	reg := startSource(t, "alice")
	m := &Manager{Hub: reg, Ladder: []Rung{{Name: "144p", Height: 144}}, Encoder: EncoderNVENC, Preset: "ultrafast",
		RestartMin: 100 * time.Millisecond, Logger: testLogger()}
	require.NoError(t, m.Start())
	t.Cleanup(m.Close)
	m.Transcode("alice")
	tracks := waitUnits(t, reg, "alice~144p", 10)
	require.Equal(t, 144, tracks[0].Height)
	st := m.Status()
	require.Len(t, st, 1)
	require.Equal(t, EncoderX264, st[0].Encoder)
	require.Zero(t, st[0].Restarts, "a fallback is not a restart")
}
