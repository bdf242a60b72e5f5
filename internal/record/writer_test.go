package record

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/cmaf"
	"github.com/onair/onair/internal/unit"
)

// aacSegments cuts d of AAC frames into segments of about target with the CMAF
// segmenter: real fragments, without ffmpeg.
func aacSegments(t testing.TB, d, target time.Duration) (*unit.Track, []byte, []*cmaf.Segment) {
	t.Helper()
	track := &unit.Track{Codec: unit.CodecAAC, AACConfig: []byte{0x11, 0x90}, SampleRate: 48000, ChannelCount: 2}
	var init []byte
	var segs []*cmaf.Segment
	s := &cmaf.Segmenter{
		Tracks:        []*unit.Track{track},
		PartTarget:    target,
		SegmentTarget: target,
		OnInit:        func(b []byte) { init = b },
		OnSegment:     func(sg *cmaf.Segment) { segs = append(segs, sg) },
	}
	require.NoError(t, s.Start())
	frame := time.Duration(1024) * time.Second / 48000
	payload := bytes.Repeat([]byte{1}, 20)
	for at := time.Duration(0); at < d; at += frame {
		require.NoError(t, s.WriteUnit(&unit.Unit{DTS: at, PTS: at, Key: true, Payload: [][]byte{payload}, Size: len(payload)}))
	}
	s.Close()
	return track, init, segs
}

// countingStorage counts the Puts per name.
type countingStorage struct {
	Storage
	puts map[string]int
}

func (c *countingStorage) Put(ctx context.Context, id int64, name string, r io.Reader) error {
	c.puts[name]++
	return c.Storage.Put(ctx, id, name, r)
}

// TestWriterLongPlaylist writes a recording whose playlist outgrows rewriteAlways: the
// stored playlist is then rewritten less often, the live one (in memory) stays current,
// a discontinuity forces a rewrite, and Repair finds the unlisted segments.
func TestWriterLongPlaylist(t *testing.T) {
	defer func(v int) { rewriteAlways = v }(rewriteAlways)
	rewriteAlways = 8 << 10
	track, init, segs := aacSegments(t, 80*time.Second, 100*time.Millisecond)
	require.Greater(t, len(segs), 700)
	st := &countingStorage{Storage: &LocalStorage{Dir: t.TempDir()}, puts: map[string]int{}}
	w := newWriter(st, 1)
	k, err := w.writeInit(t.Context(), init, []*unit.Track{track})
	require.NoError(t, err)
	stored := func() []segmentEntry {
		b, err := ReadAll(t.Context(), st, 1, PlaylistName)
		require.NoError(t, err)
		entries, _, err := parsePlaylist(b)
		require.NoError(t, err)
		return entries
	}
	last := len(segs) - 1
	for i, sg := range segs[:last] {
		e := segmentEntry{Init: k, Start: sg.Start, Duration: sg.Duration, Size: int64(sg.Size)}
		require.NoError(t, w.writeSegment(t.Context(), e, bytes.NewReader(sg.Data())))
		if i < 200 {
			require.Equal(t, i+1, st.puts[PlaylistName], "small playlists are rewritten after each segment")
		}
		if i%100 == 0 {
			live, _, err := parsePlaylist(w.livePlaylist())
			require.NoError(t, err)
			require.Len(t, live, i+1, "the live playlist is current")
		}
	}
	require.Less(t, len(stored()), last, "the stored playlist lags")
	require.Less(t, st.puts[PlaylistName], last-300, "large playlists are rewritten less often")

	// After a crash, Repair takes the listed and the unlisted segments alike.
	got, _, err := loadWriter(t.Context(), st, 1)
	require.NoError(t, err)
	require.Len(t, got.entries, len(w.entries))
	for i, g := range got.entries {
		want := w.entries[i]
		require.Equal(t, want.N, g.N)
		require.Equal(t, want.Init, g.Init)
		require.False(t, g.Disc, "segment %d", i)
		require.InDelta(t, want.Start.Seconds(), g.Start.Seconds(), 0.001, "segment %d", i)
		require.InDelta(t, want.Duration.Seconds(), g.Duration.Seconds(), 0.001, "segment %d", i)
	}
	require.Equal(t, w.bytes, got.bytes)

	// A discontinuity rewrites the stored playlist before and after its segment.
	sg := segs[last]
	e := segmentEntry{Init: k, Start: sg.Start + time.Second, Duration: sg.Duration, Size: int64(sg.Size), Disc: true}
	require.NoError(t, w.writeSegment(t.Context(), e, bytes.NewReader(sg.Data())))
	require.Len(t, stored(), len(w.entries))
	got, _, err = loadWriter(t.Context(), st, 1)
	require.NoError(t, err)
	require.Len(t, got.entries, len(w.entries))
	require.True(t, got.entries[last].Disc)
	require.True(t, strings.Contains(string(got.pl.render(true)), "#EXT-X-DISCONTINUITY\n"))
}
