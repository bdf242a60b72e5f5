package record

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/cmafstream"
	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/record/recordtest"
	"github.com/onair/onair/internal/store"
)

// oneSegment is the tolerance of duration checks: segments are cut at the first
// keyframe after 2 s, and the media has a keyframe every second.
const oneSegment = 2100 * time.Millisecond

func TestRecorderRecords(t *testing.T) {
	e := mustEnv(t, envOptions{})
	mustChannel(t, e.db, "alice", "Morning show", true)
	m := recordtest.MustMedia(t, recordtest.Options{Seconds: 10})

	p, err := e.hub.Publish("alice", m.Tracks)
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer p.Close()
		_ = recordtest.Publish(context.Background(), p, m, 3)
	}()

	// While live, the playlist is an EVENT playlist that grows.
	id := e.waitActive(t, "alice")
	require.True(t, e.rec.Writing(id))
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(e.path(id, PlaylistName))
		return err == nil && strings.Count(string(b), "#EXTINF") >= 2
	}, 10*time.Second, 10*time.Millisecond)
	live, err := os.ReadFile(e.path(id, PlaylistName))
	require.NoError(t, err)
	require.Contains(t, string(live), "#EXT-X-PLAYLIST-TYPE:EVENT\n")
	require.NotContains(t, string(live), "#EXT-X-ENDLIST")
	row, err := e.recs.FindRecording(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, onair.RecordingActive, row.Status)
	wg.Wait()

	rec := e.waitRecording(t, "alice")
	require.Equal(t, id, rec.ID)
	require.False(t, e.rec.Writing(id))
	require.Equal(t, onair.RecordingFinished, rec.Status)
	require.Equal(t, "Morning show", rec.Title)
	require.Empty(t, rec.Reason)
	require.NotNil(t, rec.EndedAt)
	require.InDelta(t, m.Length.Seconds(), rec.Duration.Seconds(), oneSegment.Seconds())

	pl, err := os.ReadFile(e.path(id, PlaylistName))
	require.NoError(t, err)
	text := string(pl)
	require.Contains(t, text, "#EXT-X-PLAYLIST-TYPE:VOD\n")
	require.True(t, strings.HasSuffix(text, "#EXT-X-ENDLIST\n"))
	require.NotContains(t, text, "#EXT-X-DISCONTINUITY")
	require.Equal(t, rec.Segments, strings.Count(text, "#EXTINF:"))

	var size int64
	objs, err := e.local.List(t.Context(), id)
	require.NoError(t, err)
	for _, o := range objs {
		if strings.HasPrefix(o.Name, "seg-") {
			size += o.Size
		}
	}
	require.Equal(t, rec.Bytes, size)
	_, err = e.local.Stat(t.Context(), id, ManifestName)
	require.NoError(t, err)

	// The VOD plays for the published duration (within one segment), and decodes cleanly.
	probed := ffprobeDuration(t, e.path(id, PlaylistName))
	require.InDelta(t, m.Length.Seconds(), probed.Seconds(), oneSegment.Seconds())
	require.InDelta(t, rec.Duration.Seconds(), probed.Seconds(), 0.1)
	require.Equal(t, []string{"h264,video", "aac,audio"}, ffprobeStreams(t, e.path(id, PlaylistName)))
	ffmpegDecode(t, "-i", e.path(id, PlaylistName))
}

func TestRecorderReconnect(t *testing.T) {
	e := mustEnv(t, envOptions{grace: 10 * time.Second})
	mustChannel(t, e.db, "alice", "", true)
	m := recordtest.MustMedia(t, recordtest.Options{Seconds: 4})

	recordtest.MustPublish(t, e.hub, "alice", m, 4)
	id := e.waitActive(t, "alice")
	// Back inside the grace window: the same hub stream, the same recording.
	recordtest.MustPublish(t, e.hub, "alice", m, 4)
	again, ok := e.rec.Active("alice")
	require.True(t, ok)
	require.Equal(t, id, again)
	require.True(t, e.hub.End("alice"))

	rec := e.waitRecording(t, "alice")
	require.Equal(t, id, rec.ID)
	require.Equal(t, onair.RecordingFinished, rec.Status)
	list, err := e.recs.RecordingsByChannel(t.Context(), "alice", 0, 10)
	require.NoError(t, err)
	require.Len(t, list, 1)

	pl, err := os.ReadFile(e.path(id, PlaylistName))
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(string(pl), "#EXT-X-DISCONTINUITY\n"), "%s", pl)
	require.InDelta(t, (2 * m.Length).Seconds(), rec.Duration.Seconds(), oneSegment.Seconds())
	probed := ffprobeDuration(t, e.path(id, PlaylistName))
	require.InDelta(t, rec.Duration.Seconds(), probed.Seconds(), 0.2)
	ffmpegDecode(t, "-i", e.path(id, PlaylistName))

	mpd, err := os.ReadFile(e.path(id, ManifestName))
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(string(mpd), "<Period "), "one Period per publisher session")
}

func TestRecorderStops(t *testing.T) {
	cases := []struct {
		name     string
		opts     envOptions
		reason   string
		segments bool // some segments were written before
	}{
		{
			name:     "disk full",
			opts:     envOptions{storage: func(s Storage) Storage { return &LimitStorage{Inner: s, Max: 250_000} }},
			reason:   ReasonDiskFull,
			segments: true,
		},
		{
			name:     "recording size limit",
			opts:     envOptions{recorder: func(r *Recorder) { r.MaxRecordingBytes = 250_000 }},
			reason:   ReasonSizeLimit,
			segments: true,
		},
		{
			name:   "min free space",
			opts:   envOptions{recorder: func(r *Recorder) { r.MinFreeBytes = 1 << 62 }},
			reason: ReasonDiskFull,
		},
	}
	m := recordtest.MustMedia(t, recordtest.Options{Seconds: 10})
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			t.Parallel()
			e := mustEnv(t, ca.opts)
			mustChannel(t, e.db, "alice", "", true)
			p, err := e.hub.Publish("alice", m.Tracks)
			require.NoError(t, err)
			var wg sync.WaitGroup
			var perr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer p.Close()
				perr = recordtest.Publish(context.Background(), p, m, 2)
			}()

			rec := e.waitRecording(t, "alice")
			require.Equal(t, onair.RecordingFailed, rec.Status)
			require.Equal(t, ca.reason, rec.Reason)

			// The live stream goes on: still live, and its segmenter still cuts segments.
			require.NotNil(t, e.hub.Stream("alice"))
			s, err := e.cmaf.Stream("alice")
			require.NoError(t, err)
			seq := s.State().NextSeq
			require.Eventually(t, func() bool { return s.State().NextSeq > seq || s.State().Ended }, 10*time.Second, 10*time.Millisecond)
			wg.Wait()
			require.NoError(t, perr, "the publisher was not disturbed")

			if !ca.segments {
				require.Zero(t, rec.Segments)
				return
			}
			require.Positive(t, rec.Segments)
			require.Positive(t, rec.Bytes)
			require.LessOrEqual(t, rec.Bytes, int64(250_000))
			// What was written plays, also when the final playlist did not fit.
			b, err := os.ReadFile(e.path(rec.ID, PlaylistName))
			require.NoError(t, err)
			final := e.path(rec.ID, "final.m3u8")
			require.NoError(t, os.WriteFile(final, FinalPlaylist(b), 0o600))
			probed := ffprobeDuration(t, final)
			require.InDelta(t, rec.Duration.Seconds(), probed.Seconds(), 0.2)
			ffmpegDecode(t, "-i", final)
		})
	}
}

func TestRecorderSkips(t *testing.T) {
	e := mustEnv(t, envOptions{})
	mustChannel(t, e.db, "bob", "", false)
	m := recordtest.MustMedia(t, recordtest.Options{Seconds: 4})

	recordtest.MustPublish(t, e.hub, "bob", m, 0)   // recording switched off
	recordtest.MustPublish(t, e.hub, "ghost", m, 0) // no such channel
	require.True(t, e.hub.End("bob"))
	require.True(t, e.hub.End("ghost"))
	e.rec.Close() // waits for the goroutines that looked the channels up

	list, err := e.recs.RecordingsByChannel(t.Context(), "bob", 0, 10)
	require.NoError(t, err)
	require.Empty(t, list)
	all, err := e.recs.AllRecordings(t.Context())
	require.NoError(t, err)
	require.Empty(t, all)
	ids, err := e.local.Recordings(t.Context())
	require.NoError(t, err)
	require.Empty(t, ids)
}

func TestRecorderCloseFinishes(t *testing.T) {
	e := mustEnv(t, envOptions{recorder: func(r *Recorder) { r.EndTimeout = 200 * time.Millisecond }})
	mustChannel(t, e.db, "alice", "", true)
	m := recordtest.MustMedia(t, recordtest.Options{Seconds: 10})
	p, err := e.hub.Publish("alice", m.Tracks)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer p.Close()
		_ = recordtest.Publish(ctx, p, m, 2)
	}()
	defer wg.Wait()
	defer cancel()

	id := e.waitActive(t, "alice")
	require.Eventually(t, func() bool {
		r, err := e.recs.FindRecording(t.Context(), id)
		require.NoError(t, err)
		_, serr := e.local.Stat(t.Context(), id, SegmentName(1))
		return r.Status == onair.RecordingActive && serr == nil
	}, 10*time.Second, 10*time.Millisecond)

	e.rec.Close()
	rec, err := e.recs.FindRecording(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, onair.RecordingFinished, rec.Status)
	require.GreaterOrEqual(t, rec.Segments, 2)
	b, err := os.ReadFile(e.path(id, PlaylistName))
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(string(b), "#EXT-X-ENDLIST\n"))

	// A closed recorder takes no new stream.
	e.rec.StreamStarted("alice")
	_, ok := e.rec.Active("alice")
	require.False(t, ok)
}

func TestRecorderStartValidates(t *testing.T) {
	cases := []struct {
		name string
		r    *Recorder
		err  string
	}{
		{name: "no cmaf", r: &Recorder{}, err: "recorder: cmaf streams are required"},
		{name: "no channels", r: &Recorder{CMAF: &cmafstream.Manager{}}, err: "recorder: channel source is required"},
		{name: "negative", r: &Recorder{CMAF: &cmafstream.Manager{}, Channels: &store.ChannelService{},
			Recordings: &store.RecordingService{}, Storage: &LocalStorage{}, QueueSize: -1},
			err: "recorder: sizes and durations must not be negative"},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			require.EqualError(t, ca.r.Start(), ca.err)
		})
	}
}
