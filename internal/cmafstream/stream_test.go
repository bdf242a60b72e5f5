package cmafstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var discard = slog.New(slog.DiscardHandler)

type testEnv struct {
	reg *hub.Registry
	m   *Manager
}

func MustEnv(t *testing.T, grace time.Duration, mod func(*Manager)) *testEnv {
	t.Helper()
	reg := &hub.Registry{Logger: discard, GracePeriod: grace}
	require.NoError(t, reg.Start())
	m := &Manager{Hub: reg, Logger: discard, SegmentTarget: time.Second}
	if mod != nil {
		mod(m)
	}
	require.NoError(t, m.Start())
	t.Cleanup(func() {
		m.Close()
		reg.Close()
	})
	return &testEnv{reg: reg, m: m}
}

// startPublish publishes med on name in the background until done or the test ends.
func (e *testEnv) startPublish(t *testing.T, name string, med *testutil.Media, o testutil.PublishOpts) *hub.Publisher {
	t.Helper()
	p, err := e.reg.Publish(name, med.Tracks)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = testutil.PublishMedia(ctx, p, med, o)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return p
}

// RequireState waits until st satisfies cond.
func RequireState(t *testing.T, s *Stream, timeout time.Duration, cond func(*State) bool) *State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	st, err := s.Wait(ctx, cond)
	require.NoError(t, err, "state: %d segments, %d open parts, ended %v", len(st.Segments), len(st.Open), st.Ended)
	return st
}

// RequireConsistent checks the invariants of a State.
func RequireConsistent(t *testing.T, st *State) {
	t.Helper()
	require.LessOrEqual(t, st.Listed, len(st.Segments))
	var parts []*Part
	for i, sg := range st.Segments {
		if i > 0 {
			prev := st.Segments[i-1]
			require.Equal(t, prev.Seq+1, sg.Seq)
			require.GreaterOrEqual(t, sg.Start, prev.End(), "segment %d starts before %d ends", sg.Seq, prev.Seq)
			require.False(t, sg.Wall.Before(prev.Wall), "wall clock goes back at segment %d", sg.Seq)
		}
		require.NotEmpty(t, sg.Parts)
		size := 0
		var dur time.Duration
		for k, p := range sg.Parts {
			require.Equal(t, sg.Seq, p.SegmentSeq)
			require.Equal(t, k, p.Index)
			require.Same(t, sg.Init, p.Init)
			size += len(p.Data)
			dur += p.Duration
		}
		require.Equal(t, size, sg.Size)
		require.Equal(t, sg.Duration, dur, "segment %d: parts add up to its duration", sg.Seq)
		require.True(t, sg.Parts[0].Independent || !sg.Independent)
		parts = append(parts, sg.Parts...)
	}
	parts = append(parts, st.Open...)
	require.Equal(t, parts, st.Parts)
	for i := 1; i < len(parts); i++ {
		require.Equal(t, parts[i-1].Number+1, parts[i].Number)
	}
	if n := len(parts); n > 0 {
		require.Equal(t, parts[n-1].Number+1, st.NextPart)
	}
	if last := st.Last(); last != nil {
		require.Equal(t, last.Seq+1, st.NextSeq)
	}
}

func TestStreamSegments(t *testing.T) {
	cases := []struct {
		name   string
		media  string
		codecs []string
	}{
		{"h264 aac", "h264_aac", []string{"aac", "h264"}},
		{"h265 aac", "h265_aac", []string{"aac", "hevc"}},
		{"h264 opus", "h264_opus", []string{"h264", "opus"}},
		{"aac only", "aac", []string{"aac"}},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			med := testutil.MustMedia(t, ca.media)
			e := MustEnv(t, 5*time.Second, func(m *Manager) { m.Window = 3 * time.Second; m.KeepSegments = 2 })
			e.startPublish(t, "alice", med, testutil.PublishOpts{Speed: 8, Loops: 5})

			s, err := e.m.Stream("alice")
			require.NoError(t, err)
			s2, err := e.m.Stream("alice")
			require.NoError(t, err)
			require.Same(t, s, s2, "one segmenter per stream")
			require.Equal(t, 1, e.reg.Stream("alice").Readers()["cmaf"])

			versions := uint64(0)
			st := RequireState(t, s, 20*time.Second, func(st *State) bool {
				require.GreaterOrEqual(t, st.Version, versions)
				versions = st.Version
				RequireConsistent(t, st)
				return st.NextSeq >= 8
			})
			require.LessOrEqual(t, len(st.Segments), 3+2+1, "window and kept segments are bounded")
			require.Positive(t, st.Listed)
			require.Nil(t, st.Segment(0), "old segments left memory")
			for _, p := range st.Parts {
				require.LessOrEqual(t, p.Duration, 250*time.Millisecond, "part %d", p.Number)
			}
			require.True(t, st.HasPart(0, 0), "a part long gone existed")
			require.False(t, st.HasPart(st.NextSeq, len(st.Open)))
			require.False(t, st.HasPart(st.NextSeq+1, 0))
			last := st.Last()
			require.True(t, st.HasPart(last.Seq, len(last.Parts)) == (len(st.Open) > 0),
				"a part index past the end of a segment means part 0 of the next")

			// The init segment and the window's segments play, with the right codecs.
			var file bytes.Buffer
			file.Write(st.Init.Data)
			for _, sg := range st.Segments {
				require.Same(t, st.Init, sg.Init)
				_, err := io.Copy(&file, NewChunksReader(sg.Chunks()))
				require.NoError(t, err)
			}
			require.Equal(t, ca.codecs, probeFile(t, file.Bytes()))
		})
	}
}

// probeFile returns the sorted codec names ffprobe finds in b.
func probeFile(t *testing.T, b []byte) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "probe.mp4")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "json", path).CombinedOutput()
	require.NoError(t, err, "ffprobe: %s", out)
	var res struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
		} `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(out, &res), "%s", out)
	var got []string
	for _, s := range res.Streams {
		got = append(got, s.CodecName)
	}
	sort.Strings(got)
	return got
}

func TestStreamTrackSplit(t *testing.T) {
	med := testutil.MustMedia(t, "h264_aac")
	e := MustEnv(t, 5*time.Second, nil)
	e.startPublish(t, "alice", med, testutil.PublishOpts{Speed: 8, Loops: 3})
	s, err := e.m.Stream("alice")
	require.NoError(t, err)
	st := RequireState(t, s, 20*time.Second, func(st *State) bool { return len(st.Segments) >= 3 })

	for k, want := range []string{"h264", "aac"} {
		init, err := st.Init.Track(k)
		require.NoError(t, err)
		var file bytes.Buffer
		file.Write(init)
		var ticks uint64
		for i, sg := range st.Segments {
			for _, p := range sg.Parts {
				f := p.Track(k)
				if f.Data == nil {
					continue
				}
				if i > 0 || ticks > 0 {
					require.Equal(t, ticks, f.BaseTime, "track %d: fragments follow each other", k)
				}
				ticks = f.BaseTime + f.Duration
			}
			_, err := io.Copy(&file, NewChunksReader(sg.TrackChunks(k)))
			require.NoError(t, err)
		}
		require.Equal(t, []string{want}, probeFile(t, file.Bytes()))
	}
	_, err = st.Init.Track(2)
	require.Error(t, err)
	require.Nil(t, st.Parts[0].Track(5).Data)
}

func TestStreamReconnect(t *testing.T) {
	first, second := testutil.MustMedia(t, "h264_aac"), testutil.MustMedia(t, "h264_opus")
	e := MustEnv(t, 10*time.Second, nil)
	p1, err := e.reg.Publish("alice", first.Tracks)
	require.NoError(t, err)
	s, err := e.m.Stream("alice")
	require.NoError(t, err)
	sub := s.Subscribe(64)
	defer sub.Close()
	require.NoError(t, testutil.PublishMedia(context.Background(), p1, first, testutil.PublishOpts{}))
	before := RequireState(t, s, 10*time.Second, func(st *State) bool { return len(st.Segments) >= 2 })
	p1.Close()

	p2, err := e.reg.Publish("alice", second.Tracks)
	require.NoError(t, err)
	require.NoError(t, testutil.PublishMedia(context.Background(), p2, second, testutil.PublishOpts{}))
	after := RequireState(t, s, 10*time.Second, func(st *State) bool {
		RequireConsistent(t, st)
		return st.Session == 1 && st.NextSeq >= before.NextSeq+3
	})
	var join *Segment
	for _, sg := range after.Segments {
		if sg.Discontinuity {
			require.Nil(t, join, "one discontinuity")
			join = sg
		}
	}
	require.NotNil(t, join)
	require.Equal(t, 1, join.Session)
	require.Equal(t, uint64(0), join.Discontinuities)
	require.NotSame(t, before.Init, join.Init, "new codecs, new init segment")
	require.Equal(t, 1, join.Init.Seq)
	require.Equal(t, join.Start, join.SessionStart)
	prev := after.Segment(join.Seq - 1)
	require.Equal(t, 0, prev.Session)
	require.False(t, join.Wall.Before(prev.Wall.Add(prev.Duration)), "the new session starts after the old one ended")
	for _, sg := range after.Segments[join.Seq-after.Segments[0].Seq+1:] {
		require.Equal(t, uint64(1), sg.Discontinuities)
	}

	// Ending the stream finishes the last segment; the subscriber got every segment in order.
	e.reg.End("alice")
	final := RequireState(t, s, 10*time.Second, func(st *State) bool { return st.Ended })
	require.Empty(t, final.Open)
	var seqs []uint64
	for sg := range sub.Segments() {
		seqs = append(seqs, sg.Seq)
		if sg.Seq == final.NextSeq-1 {
			break
		}
	}
	require.Len(t, seqs, int(final.NextSeq))
	for i, q := range seqs {
		require.Equal(t, uint64(i), q)
	}
	require.Zero(t, sub.Dropped())

	// The final state is still served; a new stream under the name gets a new segmenter.
	again, err := e.m.Stream("alice")
	require.NoError(t, err)
	require.Same(t, s, again)
	e.startPublish(t, "alice", first, testutil.PublishOpts{Speed: 8, Loops: 2})
	fresh, err := e.m.Stream("alice")
	require.NoError(t, err)
	require.NotSame(t, s, fresh)
	require.NotEqual(t, s.ID(), fresh.ID())
	st := RequireState(t, fresh, 10*time.Second, func(st *State) bool { return len(st.Segments) > 0 })
	require.Equal(t, uint64(0), st.Segments[0].Seq)
}

func TestStreamIdle(t *testing.T) {
	med := testutil.MustMedia(t, "h264_aac")
	e := MustEnv(t, 5*time.Second, func(m *Manager) { m.IdleTimeout = 300 * time.Millisecond })
	e.startPublish(t, "alice", med, testutil.PublishOpts{Speed: 1, Loops: 30})
	s, err := e.m.Stream("alice")
	require.NoError(t, err)

	// A subscriber keeps the stream alive past the idle timeout.
	sub := s.Subscribe(1)
	RequireState(t, s, 10*time.Second, func(st *State) bool { return st.NextSeq >= 2 })
	require.Len(t, e.m.Streams(), 1)
	require.Eventually(t, func() bool { return sub.Dropped() > 0 }, 5*time.Second, 10*time.Millisecond,
		"a full subscriber loses segments, it does not block")
	sub.Close()

	require.Eventually(t, func() bool { return len(e.m.Streams()) == 0 }, 5*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return e.reg.Stream("alice").Readers()["cmaf"] == 0 }, 5*time.Second, 20*time.Millisecond)
	require.True(t, s.State().Ended)
	late := s.Subscribe(4)
	_, open := <-late.Segments()
	require.False(t, open, "subscribing to a stopped stream gives a closed channel")

	again, err := e.m.Stream("alice")
	require.NoError(t, err)
	require.NotEqual(t, s.ID(), again.ID())

	_, err = e.m.Stream("bob")
	require.ErrorIs(t, err, ErrNotFound)
	e.m.Close()
	_, err = e.m.Stream("alice")
	require.ErrorIs(t, err, ErrClosed)
	require.True(t, again.State().Ended)
}

func TestStreamWaitPart(t *testing.T) {
	med := testutil.MustMedia(t, "h264_aac")
	e := MustEnv(t, 5*time.Second, nil)
	e.startPublish(t, "alice", med, testutil.PublishOpts{Speed: 1, Loops: 10})
	s, err := e.m.Stream("alice")
	require.NoError(t, err)
	st := RequireState(t, s, 10*time.Second, func(st *State) bool { return len(st.Segments) > 0 })

	// Waiting for the next part returns as soon as it is published.
	for i := 0; i < 5; i++ {
		msn, idx := st.NextSeq, len(st.Open)
		st = RequireState(t, s, 5*time.Second, func(st *State) bool { return st.HasPart(msn, idx) })
		got := time.Now()
		p := st.Part(st.NextPart - 1)
		require.Less(t, got.Sub(p.Produced), 20*time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.Wait(ctx, func(*State) bool { return false })
	require.ErrorIs(t, err, context.Canceled)
}

func TestChunksReader(t *testing.T) {
	r := NewChunksReader([][]byte{[]byte("ab"), nil, []byte("cde"), []byte("f")})
	require.Equal(t, int64(6), r.Size())
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, "abcdef", string(b))
	_, err = r.Seek(1, io.SeekStart)
	require.NoError(t, err)
	buf := make([]byte, 3)
	n, err := r.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "bcd", string(buf[:n]))
	_, err = r.Seek(-1, io.SeekEnd)
	require.NoError(t, err)
	b, err = io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, "f", string(b))
	_, err = r.Seek(-10, io.SeekCurrent)
	require.Error(t, err)
}
