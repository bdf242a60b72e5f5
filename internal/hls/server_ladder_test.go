package hls

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/cmafstream"
	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/testutil"
)

// TestLLLadder serves a stream with a rendition: the multivariant playlist lists the
// source and the rendition (with a session id each), and the rendition's media playlist
// and parts are served under /hls/{name}/{rendition}/.
func TestLLLadder(t *testing.T) {
	med := testutil.MustMedia(t, "h264_aac")
	audio := testutil.MustMedia(t, "aac")
	e := MustLLEnv(t, 5*time.Second, nil)
	e.srv.Viewers = &fakeViewers{}
	e.startPublish(t, "alice", med, testutil.PublishOpts{Speed: 1, Loops: 20})
	// Stand-ins for transcoded renditions: derived hub streams.
	for _, r := range []struct {
		name string
		med  *testutil.Media
	}{{"alice~180p", med}, {"alice~audio", audio}} {
		p, err := e.reg.PublishFrom(r.name, r.med.Tracks, hub.SourceDerived)
		require.NoError(t, err)
		go func() { _ = testutil.PublishMedia(t.Context(), p, r.med, testutil.PublishOpts{Speed: 1, Loops: 20}) }()
	}
	e.srv.Renditions = func(name string) []Rendition {
		require.Equal(t, "alice", name)
		return []Rendition{
			{Name: "180p", Stream: "alice~180p", Width: 320, Height: 180, Bandwidth: 300000},
			{Name: "audio", Stream: "alice~audio", Bandwidth: 128000},
			{Name: "gone", Stream: "alice~gone"},            // not live: skipped
			{Name: "evil", Stream: "bob~evil", Height: 144}, // another stream: skipped
		}
	}

	// FRAME-RATE comes from the hub's measure, which needs a few seconds of media.
	require.Eventually(t, func() bool { return e.reg.Stream("alice~180p").Info().FPS > 0 }, 10*time.Second, 100*time.Millisecond)
	res, body := e.get(t, "/hls/alice/index.m3u8?s=pagesession1")
	require.Equal(t, 200, res.StatusCode)
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	require.Len(t, lines, 2+3*2, string(body))
	require.Equal(t, "stream.m3u8?s=pagesession1", lines[3])
	require.Equal(t, "180p/stream.m3u8?s=pagesession1", lines[5])
	require.Equal(t, "audio/stream.m3u8?s=pagesession1", lines[7])
	src, low, aud := attrs(strings.TrimPrefix(lines[2], "#EXT-X-STREAM-INF:")),
		attrs(strings.TrimPrefix(lines[4], "#EXT-X-STREAM-INF:")), attrs(strings.TrimPrefix(lines[6], "#EXT-X-STREAM-INF:"))
	require.Equal(t, "320x180", src["RESOLUTION"])
	require.Equal(t, "avc1.64000d,mp4a.40.2", src["CODECS"])
	require.NotEmpty(t, src["FRAME-RATE"])
	require.Equal(t, "320x180", low["RESOLUTION"])
	require.Equal(t, src["CODECS"], low["CODECS"])
	require.Equal(t, "mp4a.40.2", aud["CODECS"])
	require.NotContains(t, aud, "RESOLUTION")
	require.NotContains(t, aud, "FRAME-RATE")

	// The rendition is served like a stream, under its directory.
	res, body = e.get(t, "/hls/alice/180p/stream.m3u8")
	require.Equal(t, 200, res.StatusCode)
	pl := RequireLLPlaylist(t, body)
	res, _ = e.get(t, "/hls/alice/180p/"+pl.segs[0].mapURI)
	require.Equal(t, 200, res.StatusCode)
	res, _ = e.get(t, "/hls/alice/180p/"+pl.segs[0].uri)
	require.Equal(t, 200, res.StatusCode)
	res, _ = e.get(t, "/hls/alice/audio/stream.m3u8")
	require.Equal(t, 200, res.StatusCode)

	// A rendition has no multivariant playlist of its own, and unknown ones are 404.
	res, _ = e.get(t, "/hls/alice/180p/index.m3u8")
	require.Equal(t, 404, res.StatusCode)
	e.srv.FirstSegmentWait = 100 * time.Millisecond
	res, _ = e.get(t, "/hls/alice/720p/stream.m3u8")
	require.Equal(t, 404, res.StatusCode)
}

// TestLLRenditionWallClock: a rendition that runs behind its source (as a transcoder
// does) still dates each media time like the source does, so players switching levels by
// EXT-X-PROGRAM-DATE-TIME land on the same picture.
func TestLLRenditionWallClock(t *testing.T) {
	med := testutil.MustMedia(t, "h264_aac")
	e := MustLLEnv(t, 5*time.Second, nil)
	e.startPublish(t, "alice", med, testutil.PublishOpts{Speed: 1, Loops: 20})
	_, _ = e.get(t, "/hls/alice/stream.m3u8") // starts the source's segmenter
	time.Sleep(500 * time.Millisecond)
	p, err := e.reg.PublishFrom("alice~low", med.Tracks, hub.SourceDerived)
	require.NoError(t, err)
	go func() { _ = testutil.PublishMedia(t.Context(), p, med, testutil.PublishOpts{Speed: 1, Loops: 20}) }()

	res, body := e.get(t, "/hls/alice/low/stream.m3u8")
	require.Equal(t, 200, res.StatusCode)
	low := RequireLLPlaylist(t, body)
	_, body = e.get(t, "/hls/alice/stream.m3u8")
	src := RequireLLPlaylist(t, body)
	lcs, err := e.srv.CMAF.Stream("alice~low")
	require.NoError(t, err)
	scs, err := e.srv.CMAF.Stream("alice")
	require.NoError(t, err)
	startOf := func(st *cmafstream.State, seq uint64) time.Duration {
		sg := st.Segment(seq)
		require.NotNil(t, sg, "segment %d", seq)
		return sg.Start
	}
	matched := 0
	for _, ls := range low.segs {
		for _, ss := range src.segs {
			if startOf(lcs.State(), ls.seq) == startOf(scs.State(), ss.seq) {
				d := ls.pdt.Sub(ss.pdt)
				require.Less(t, d.Abs(), 30*time.Millisecond, "segment at %v: rendition dated %v after the source",
					startOf(lcs.State(), ls.seq), d)
				matched++
			}
		}
	}
	require.Positive(t, matched, "no segment of the rendition starts where one of the source does")
}
