package record

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// requireGolden compares got with testdata/name, or rewrites it with -update.
func requireGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o750))
		require.NoError(t, os.WriteFile(path, got, 0o600))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
}

var wall = time.Date(2025, 6, 1, 20, 0, 0, 0, time.UTC)

// twoSessions is a recording with a reconnect: two segments, a discontinuity with a new
// init segment, two more segments.
var twoSessions = []segmentEntry{
	{N: 0, Init: 0, Start: 33 * time.Millisecond, Duration: 2 * time.Second, Size: 1000, Wall: wall},
	{N: 1, Init: 0, Start: 2033 * time.Millisecond, Duration: 2066666 * time.Microsecond, Size: 1100},
	{N: 2, Init: 1, Start: 4200 * time.Millisecond, Duration: 2 * time.Second, Size: 1200, Disc: true,
		Wall: wall.Add(6 * time.Second)},
	{N: 3, Init: 1, Start: 6200 * time.Millisecond, Duration: 1500 * time.Millisecond, Size: 900},
}

func TestPlaylist(t *testing.T) {
	pl := newPlaylist()
	for _, e := range twoSessions {
		pl.add(e)
	}
	event := pl.render(false)
	vod := pl.render(true)
	requireGolden(t, "playlist_event.m3u8.golden", event)
	requireGolden(t, "playlist_vod.m3u8.golden", vod)
	require.Equal(t, vod, FinalPlaylist(event))
	require.Equal(t, vod, FinalPlaylist(vod))

	for _, b := range [][]byte{event, vod} {
		got, ended, err := parsePlaylist(b)
		require.NoError(t, err)
		require.Equal(t, &b[0] == &vod[0], ended)
		want := make([]segmentEntry, len(twoSessions))
		for i, e := range twoSessions {
			e.Size = 0 // not in the playlist
			want[i] = e
		}
		require.Equal(t, want, got)
	}

	requireGolden(t, "playlist_prefixed.m3u8.golden", PrefixPlaylist(event, "../../42/"))
}

func TestParsePlaylistErrors(t *testing.T) {
	cases := []struct {
		name string
		in   string
		err  string
	}{
		{name: "empty", in: "", err: "playlist: empty"},
		{name: "no header", in: "#EXTINF:2,\nseg-0.m4s\n", err: "playlist: no #EXTM3U header"},
		{name: "bad map", in: "#EXTM3U\n#EXT-X-MAP:URI=\"x.mp4\"\n", err: `playlist line 2: bad map "#EXT-X-MAP:URI=\"x.mp4\""`},
		{name: "no map", in: "#EXTM3U\n#EXTINF:2,\nseg-0.m4s\n", err: `playlist line 3: unexpected "seg-0.m4s"`},
		{name: "no duration", in: "#EXTM3U\n#EXT-X-MAP:URI=\"init-0.mp4\"\nseg-0.m4s\n", err: `playlist line 3: unexpected "seg-0.m4s"`},
		{name: "bad duration", in: "#EXTM3U\n#EXTINF:-1,\n", err: `playlist line 2: bad duration "-1"`},
		{name: "foreign uri", in: "#EXTM3U\n#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXTINF:2,\n../etc/passwd\n",
			err: `playlist line 4: unexpected "../etc/passwd"`},
		{name: "leading zero", in: "#EXTM3U\n#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXTINF:2,\nseg-01.m4s\n",
			err: `playlist line 4: unexpected "seg-01.m4s"`},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			_, _, err := parsePlaylist([]byte(ca.in))
			require.EqualError(t, err, ca.err)
		})
	}
}

func FuzzParsePlaylist(f *testing.F) {
	pl := newPlaylist()
	for _, e := range twoSessions {
		pl.add(e)
	}
	f.Add(pl.render(false))
	f.Add(pl.render(true))
	f.Add([]byte("#EXTM3U\n#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXTINF:1e300,\nseg-0.m4s\n"))
	f.Add([]byte("#EXTM3U\n#ONAIR-START:NaN\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, _, err := parsePlaylist(b)
		if err != nil {
			return
		}
		// What parses renders and parses back to the same segments.
		pl := newPlaylist()
		for _, e := range entries {
			require.GreaterOrEqual(t, e.N, 0)
			require.GreaterOrEqual(t, e.Init, 0)
			require.GreaterOrEqual(t, e.Duration, time.Duration(0))
			e.Wall = time.Time{}
			pl.add(e)
		}
		again, ended, err := parsePlaylist(pl.render(true))
		require.NoError(t, err)
		require.True(t, ended)
		require.Len(t, again, len(entries))
	})
}

func TestRenderMPD(t *testing.T) {
	meta := &recordingMeta{Version: metaVersion, Inits: []initMeta{
		{Tracks: []trackMeta{
			{Video: true, Codec: "avc1.64001f", Timescale: 90000, Width: 1280, Height: 720},
			{Codec: "mp4a.40.2", Timescale: 48000, SampleRate: 48000, Channels: 2},
		}},
		{Tracks: []trackMeta{{Video: true, Codec: "avc1.640028", Timescale: 90000, Width: 1920, Height: 1080}}},
	}}
	requireGolden(t, "recording.mpd.golden", renderMPD(twoSessions, meta))
}

func TestParseTrackName(t *testing.T) {
	cases := []struct {
		name     string
		init     bool
		n, track int
		ok       bool
	}{
		{name: TrackInitName(2, 1), init: true, n: 2, track: 1, ok: true},
		{name: TrackSegmentName(17, 0), n: 17, track: 0, ok: true},
		{name: "seg-17.m4s"},
		{name: "init-0.mp4"},
		{name: "seg-1-t99.m4s"},
		{name: "seg--t0.m4s"},
		{name: "seg-1-t0.mp4"},
		{name: "index.m3u8"},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			init, n, track, ok := ParseTrackName(ca.name)
			require.Equal(t, ca.ok, ok)
			require.Equal(t, ca.init, init)
			require.Equal(t, ca.n, n)
			require.Equal(t, ca.track, track)
		})
	}
}
