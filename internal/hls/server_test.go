package hls

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/testutil"
	"github.com/onair/onair/internal/unit"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

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
	srv *Server
	ts  *httptest.Server
}

// MustEnv starts a hub, an HLS server (adjusted by mod) and an HTTP server in front of it.
func MustEnv(t *testing.T, grace time.Duration, mod func(*Server)) *testEnv {
	t.Helper()
	reg := &hub.Registry{Logger: discard, GracePeriod: grace}
	srv := &Server{Hub: reg, Logger: discard}
	if mod != nil {
		mod(srv)
	}
	reg.Now = srv.Now // one clock for the hub's receive times and the server
	require.NoError(t, reg.Start())
	require.NoError(t, srv.Start())
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
		reg.Close()
	})
	return &testEnv{reg: reg, srv: srv, ts: ts}
}

// startPublish publishes med on name in the background until done or the test ends.
func (e *testEnv) startPublish(t *testing.T, name string, med *testutil.Media, o testutil.PublishOpts) (*hub.Publisher, <-chan error) {
	t.Helper()
	p, err := e.reg.Publish(name, med.Tracks)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		done <- testutil.PublishMedia(ctx, p, med, o)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return p, done
}

func (e *testEnv) muxer(t *testing.T, name string) *muxer {
	t.Helper()
	e.srv.mu.Lock()
	defer e.srv.mu.Unlock()
	m := e.srv.muxers[name]
	require.NotNil(t, m, "no muxer for %q", name)
	return m
}

func (e *testEnv) get(t *testing.T, path string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.ts.URL+path, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.ts.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, b
}

type parsedSegment struct {
	seq  uint64
	name string
	dur  float64
	disc bool
	pdt  time.Time
}

type parsedPlaylist struct {
	raw      string
	version  int
	target   int
	mediaSeq uint64
	discSeq  uint64
	ended    bool
	segs     []parsedSegment
}

var segNameRE = regexp.MustCompile(`^([0-9a-f]{16})-(0|[1-9][0-9]*)\.ts$`)

// RequirePlaylist parses a media playlist and checks the rules every playlist must follow.
func RequirePlaylist(t *testing.T, body []byte) *parsedPlaylist {
	t.Helper()
	pl := &parsedPlaylist{raw: string(body), target: -1}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	require.True(t, sc.Scan())
	require.Equal(t, "#EXTM3U", sc.Text())
	var cur parsedSegment
	for sc.Scan() {
		line := sc.Text()
		var err error
		switch {
		case strings.HasPrefix(line, "#EXT-X-VERSION:"):
			pl.version, err = strconv.Atoi(line[len("#EXT-X-VERSION:"):])
		case strings.HasPrefix(line, "#EXT-X-TARGETDURATION:"):
			pl.target, err = strconv.Atoi(line[len("#EXT-X-TARGETDURATION:"):])
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			pl.mediaSeq, err = strconv.ParseUint(line[len("#EXT-X-MEDIA-SEQUENCE:"):], 10, 64)
		case strings.HasPrefix(line, "#EXT-X-DISCONTINUITY-SEQUENCE:"):
			pl.discSeq, err = strconv.ParseUint(line[len("#EXT-X-DISCONTINUITY-SEQUENCE:"):], 10, 64)
		case line == "#EXT-X-DISCONTINUITY":
			cur.disc = true
		case strings.HasPrefix(line, "#EXT-X-PROGRAM-DATE-TIME:"):
			cur.pdt, err = time.Parse(time.RFC3339Nano, line[len("#EXT-X-PROGRAM-DATE-TIME:"):])
		case strings.HasPrefix(line, "#EXTINF:"):
			v, ok := strings.CutSuffix(line[len("#EXTINF:"):], ",")
			require.True(t, ok, line)
			cur.dur, err = strconv.ParseFloat(v, 64)
		case line == "#EXT-X-ENDLIST":
			pl.ended = true
		case strings.HasPrefix(line, "#"):
			t.Fatalf("unexpected tag %q", line)
		default:
			require.False(t, pl.ended, "segment after ENDLIST")
			cur.name = line
			cur.seq = pl.mediaSeq + uint64(len(pl.segs))
			pl.segs = append(pl.segs, cur)
			cur = parsedSegment{}
		}
		require.NoError(t, err, line)
	}
	require.Equal(t, 3, pl.version)
	require.Positive(t, pl.target)
	require.NotEmpty(t, pl.segs)
	for _, s := range pl.segs {
		m := segNameRE.FindStringSubmatch(s.name)
		require.NotNil(t, m, s.name)
		require.Equal(t, strconv.FormatUint(s.seq, 10), m[2], "segment name %s at sequence %d", s.name, s.seq)
		require.Positive(t, s.dur, s.name)
		require.LessOrEqual(t, s.dur, float64(pl.target), "EXTINF of %s exceeds the target duration in\n%s", s.name, body)
		require.False(t, s.pdt.IsZero(), "no PROGRAM-DATE-TIME for %s", s.name)
	}
	return pl
}

// waitPlaylist waits until m's playlist satisfies cond, checking every version it sees.
func waitPlaylist(t *testing.T, m *muxer, timeout time.Duration, cond func(*parsedPlaylist) bool) *parsedPlaylist {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		m.mu.Lock()
		b, ch := m.playlist, m.changed
		m.mu.Unlock()
		if b != nil {
			if pl := RequirePlaylist(t, b); cond(pl) {
				return pl
			}
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("playlist condition not met after %v; last playlist:\n%s", timeout, b)
		}
	}
}

func muxerID(pl *parsedPlaylist) string {
	return segNameRE.FindStringSubmatch(pl.segs[0].name)[1]
}

func TestServerFFprobe(t *testing.T) {
	cases := []struct {
		name  string
		media string
		av1   bool // declare an AV1 video track before the media's tracks
		want  []string
	}{
		{"h264 aac", "h264_aac", false, []string{"aac", "h264"}},
		{"h264 mp3", "h264_mp3", false, []string{"h264", "mp3"}},
		{"h265 aac", "h265_aac", false, []string{"aac", "hevc"}},
		{"h264 opus", "h264_opus", false, []string{"h264", "opus"}},
		{"aac only", "aac", false, []string{"aac"}},
		{"mp3 only", "mp3", false, []string{"mp3"}},
		{"av1 with aac", "aac", true, []string{"aac"}},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			med := testutil.MustMedia(t, ca.media)
			if ca.av1 {
				med = withAV1Track(med)
			}
			e := MustEnv(t, 5*time.Second, nil)
			e.startPublish(t, "alice", med, testutil.PublishOpts{Speed: 2, Loops: 10})

			got := probeCodecs(t, e.ts.URL+"/hls/alice/ts/index.m3u8")
			require.Equal(t, ca.want, got)
		})
	}
}

// probeCodecs returns the sorted codec names that ffprobe finds at url.
func probeCodecs(t *testing.T, url string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
		"-of", "json", url).CombinedOutput()
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

// withAV1Track returns med with an AV1 video track in front, which carries no units:
// TS cannot carry AV1, so only the other tracks are served.
func withAV1Track(med *testutil.Media) *testutil.Media {
	out := &testutil.Media{Length: med.Length}
	out.Tracks = append([]*unit.Track{{Codec: unit.CodecAV1, Width: 320, Height: 180}}, med.Tracks...)
	for _, u := range med.Units {
		out.Units = append(out.Units, &unit.Unit{Track: u.Track + 1, DTS: u.DTS, PTS: u.PTS, Key: u.Key, Payload: u.Payload})
	}
	return out
}

func TestServerPlaylist(t *testing.T) {
	cases := []struct {
		name    string
		maxSize int
	}{
		{"keyframe cuts", 0},
		{"size cuts", 24 << 10},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			med := testutil.MustMedia(t, "h264_aac")
			e := MustEnv(t, 5*time.Second, func(s *Server) {
				s.PlaylistSize = 3
				s.MaxSegmentSize = ca.maxSize
			})
			e.startPublish(t, "alice", med, testutil.PublishOpts{Speed: 8, Loops: 4})

			res, body := e.get(t, "/hls/alice/ts/index.m3u8")
			require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
			require.Equal(t, "application/vnd.apple.mpegurl", res.Header.Get("Content-Type"))
			require.Equal(t, "no-cache", res.Header.Get("Cache-Control"))
			first := RequirePlaylist(t, body)
			id := muxerID(first)

			// Follow the playlist until the window slid past the kept segments, checking
			// every version: sequence numbers never go back, a name always means one segment.
			m := e.muxer(t, "alice")
			names := map[uint64]string{}
			lastSeq := uint64(0)
			pl := waitPlaylist(t, m, 20*time.Second, func(pl *parsedPlaylist) bool {
				require.GreaterOrEqual(t, pl.mediaSeq, lastSeq)
				lastSeq = pl.mediaSeq
				require.LessOrEqual(t, len(pl.segs), 3)
				for _, s := range pl.segs {
					if n, ok := names[s.seq]; ok {
						require.Equal(t, n, s.name)
					}
					names[s.seq] = s.name
					require.Equal(t, id, segNameRE.FindStringSubmatch(s.name)[1])
				}
				return pl.mediaSeq > 3+keepSegments
			})
			if ca.maxSize > 0 {
				m.mu.Lock()
				for _, s := range m.segs {
					require.Less(t, len(s.data), ca.maxSize+64<<10, "segment %d", s.seq)
				}
				m.mu.Unlock()
			}

			// The newest segment: headers, MPEG-TS bytes, conditional and HEAD requests.
			last := pl.segs[len(pl.segs)-1]
			res, seg := e.get(t, "/hls/alice/ts/"+last.name)
			require.Equal(t, http.StatusOK, res.StatusCode)
			require.Equal(t, "video/mp2t", res.Header.Get("Content-Type"))
			require.Equal(t, "public, max-age=31536000, immutable", res.Header.Get("Cache-Control"))
			etag := res.Header.Get("ETag")
			require.NotEmpty(t, etag)
			require.NotEmpty(t, seg)
			require.Zero(t, len(seg)%188)
			for i := 0; i < len(seg); i += 188 {
				require.Equal(t, byte(0x47), seg[i], "sync byte at %d", i)
			}
			require.Equal(t, uint16(0), uint16(seg[1]&0x1f)<<8|uint16(seg[2]), "segment starts with the PAT")

			res, _ = e.get(t, "/hls/alice/ts/"+last.name, "If-None-Match", etag)
			require.Equal(t, http.StatusNotModified, res.StatusCode)
			req, err := http.NewRequest(http.MethodHead, e.ts.URL+"/hls/alice/ts/"+last.name, nil)
			require.NoError(t, err)
			hres, err := e.ts.Client().Do(req)
			require.NoError(t, err)
			hres.Body.Close()
			require.Equal(t, http.StatusOK, hres.StatusCode)
			require.Equal(t, strconv.Itoa(len(seg)), hres.Header.Get("Content-Length"))

			// Out of the window but kept for a while: still there. Long gone: 404.
			res, _ = e.get(t, fmt.Sprintf("/hls/alice/ts/%s-%d.ts", id, pl.mediaSeq-1))
			require.Equal(t, http.StatusOK, res.StatusCode)
			res, _ = e.get(t, fmt.Sprintf("/hls/alice/ts/%s-0.ts", id))
			require.Equal(t, http.StatusNotFound, res.StatusCode)

			notFound := []string{
				"/hls/bob/index.m3u8",
				"/hls/bob/ts/index.m3u8",
				"/hls/alice/",
				"/hls/alice/ts/",
				"/hls/alice/ts/x/index.m3u8",
				"/hls/alice/" + last.name,
				"/hls/alice/index.m3u",
				"/hls/alice/other.m3u8",
				"/hls/alice/x/index.m3u8",
				"/hls/Alice/index.m3u8",
				"/hls/../alice/index.m3u8",
				"/hls/alice/ts/" + id + "-999999.ts",
				"/hls/alice/ts/" + id + "-01.ts",
				"/hls/alice/ts/0123456789abcdef-1.ts",
				"/hls/bob/ts/" + last.name,
			}
			for _, p := range notFound {
				res, _ := e.get(t, p)
				require.Equal(t, http.StatusNotFound, res.StatusCode, p)
			}
			res, err = e.ts.Client().Post(e.ts.URL+"/hls/alice/ts/index.m3u8", "text/plain", nil)
			require.NoError(t, err)
			res.Body.Close()
			require.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)

			infos := e.srv.Muxers()
			require.Len(t, infos, 1)
			require.Equal(t, "alice", infos[0].Channel)
			require.Equal(t, id, infos[0].ID)
			require.LessOrEqual(t, infos[0].Segments, 3+keepSegments)
		})
	}
}

func TestServerReconnect(t *testing.T) {
	cases := []struct {
		name   string
		second string // media of the second publisher session
		want   string // codecs of a segment after the join
		pid    uint16 // first PID of the second session
	}{
		{"same codecs", "h264_aac", "aac,h264", tsFirstPID},
		{"codec change", "h264_mp3", "h264,mp3", tsFirstPID + tsPIDStride},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			first, second := testutil.MustMedia(t, "h264_aac"), testutil.MustMedia(t, ca.second)
			e := MustEnv(t, 10*time.Second, nil)
			p1, err := e.reg.Publish("alice", first.Tracks)
			require.NoError(t, err)
			m, status := e.srv.muxerFor("alice", true)
			require.Equal(t, http.StatusOK, status)
			require.NoError(t, testutil.PublishMedia(context.Background(), p1, first, testutil.PublishOpts{}))
			before := waitPlaylist(t, m, 10*time.Second, func(pl *parsedPlaylist) bool { return len(pl.segs) >= 3 })
			p1.Close()

			p2, err := e.reg.Publish("alice", second.Tracks)
			require.NoError(t, err)
			require.NoError(t, testutil.PublishMedia(context.Background(), p2, second, testutil.PublishOpts{}))
			after := waitPlaylist(t, m, 10*time.Second, func(pl *parsedPlaylist) bool {
				for i, s := range pl.segs {
					if s.disc && i+1 < len(pl.segs) {
						return true
					}
				}
				return false
			})
			p2.Close()

			require.GreaterOrEqual(t, after.mediaSeq, before.mediaSeq)
			require.Equal(t, muxerID(before), muxerID(after))
			join := -1
			for i, s := range after.segs {
				if s.disc {
					require.Equal(t, -1, join, "one discontinuity:\n%s", after.raw)
					join = i
				}
			}
			require.Positive(t, join, "a segment of the first session precedes the join:\n%s", after.raw)
			require.Greater(t, after.segs[join].seq, before.segs[len(before.segs)-1].seq)
			require.False(t, after.segs[join].pdt.Before(after.segs[join-1].pdt))

			codecs := probeCodecs(t, e.ts.URL+"/hls/alice/ts/"+after.segs[join].name)
			require.Equal(t, ca.want, strings.Join(codecs, ","))

			e.reg.End("alice")
			waitPlaylist(t, m, 10*time.Second, func(pl *parsedPlaylist) bool { return pl.ended })
			require.Equal(t, ca.pid, m.seg.(*tsSegmenter).pidBase)

			// The whole playlist decodes without errors across the join: same codecs continue
			// PIDs and continuity counters, new codecs come on new PIDs.
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-v", "warning",
				"-i", e.ts.URL+"/hls/alice/ts/index.m3u8", "-f", "null", "-").CombinedOutput()
			require.NoError(t, err, "ffmpeg: %s", out)
			require.NotRegexp(t, `(?i)corrupt|error|invalid|non.monoton`, string(out))
		})
	}
}

func TestServerEnd(t *testing.T) {
	med := testutil.MustMedia(t, "h264_aac")
	e := MustEnv(t, 5*time.Second, nil)
	p, err := e.reg.Publish("alice", med.Tracks)
	require.NoError(t, err)
	m, status := e.srv.muxerFor("alice", true)
	require.Equal(t, http.StatusOK, status)
	require.NoError(t, testutil.PublishMedia(context.Background(), p, med, testutil.PublishOpts{}))
	waitPlaylist(t, m, 10*time.Second, func(pl *parsedPlaylist) bool { return len(pl.segs) >= 2 })

	require.True(t, e.reg.End("alice"))
	ended := waitPlaylist(t, m, 10*time.Second, func(pl *parsedPlaylist) bool { return pl.ended })
	res, body := e.get(t, "/hls/alice/ts/index.m3u8")
	require.Equal(t, http.StatusOK, res.StatusCode)
	pl := RequirePlaylist(t, body)
	require.True(t, pl.ended)
	require.Equal(t, ended.raw, pl.raw)
	require.Len(t, pl.segs, 4, "the open segment is closed at the end:\n%s", pl.raw)
	res, _ = e.get(t, "/hls/alice/ts/"+pl.segs[3].name)
	require.Equal(t, http.StatusOK, res.StatusCode)
	infos := e.srv.Muxers()
	require.Len(t, infos, 1)
	require.True(t, infos[0].Ended)

	// The channel goes live again: a new stream gets a new muxer with new segment names.
	e.startPublish(t, "alice", med, testutil.PublishOpts{Speed: 8, Loops: 4})
	res, body = e.get(t, "/hls/alice/ts/index.m3u8")
	require.Equal(t, http.StatusOK, res.StatusCode)
	again := RequirePlaylist(t, body)
	require.False(t, again.ended)
	require.NotEqual(t, muxerID(pl), muxerID(again))
}

func TestServerIdle(t *testing.T) {
	med := testutil.MustMedia(t, "h264_aac")
	e := MustEnv(t, 5*time.Second, func(s *Server) { s.IdleTimeout = 300 * time.Millisecond })
	// At real-time pace the first segment takes about a second, longer than IdleTimeout:
	// a request waiting for it keeps the muxer alive.
	e.startPublish(t, "alice", med, testutil.PublishOpts{Speed: 1, Loops: 20})

	res, body := e.get(t, "/hls/alice/ts/index.m3u8")
	require.Equal(t, http.StatusOK, res.StatusCode)
	id := muxerID(RequirePlaylist(t, body))
	require.Len(t, e.srv.Muxers(), 1)
	st := e.reg.Stream("alice")
	require.Equal(t, 1, st.Readers()["hls"])

	require.Eventually(t, func() bool { return len(e.srv.Muxers()) == 0 }, 5*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return st.Readers()["hls"] == 0 }, 5*time.Second, 20*time.Millisecond)

	res, body = e.get(t, "/hls/alice/ts/index.m3u8")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NotEqual(t, id, muxerID(RequirePlaylist(t, body)))
}

func TestServerClose(t *testing.T) {
	med := testutil.MustMedia(t, "h264_aac")
	e := MustEnv(t, 5*time.Second, nil)
	e.startPublish(t, "alice", med, testutil.PublishOpts{Speed: 4, Loops: 20})
	res, _ := e.get(t, "/hls/alice/ts/index.m3u8")
	require.Equal(t, http.StatusOK, res.StatusCode)
	m := e.muxer(t, "alice")

	e.srv.Close()
	m.mu.Lock()
	pl := string(m.playlist)
	closed := m.closed
	m.mu.Unlock()
	require.True(t, closed)
	require.True(t, strings.HasSuffix(pl, "#EXT-X-ENDLIST\n"), pl)
	require.Empty(t, e.srv.Muxers())
	require.Zero(t, e.reg.Stream("alice").Readers()["hls"])
	res, _ = e.get(t, "/hls/alice/ts/index.m3u8")
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
}

func TestServerNotServable(t *testing.T) {
	e := MustEnv(t, 5*time.Second, func(s *Server) { s.FirstSegmentWait = 200 * time.Millisecond })

	_, err := e.reg.Publish("carol", []*unit.Track{{Codec: unit.CodecAV1}})
	require.NoError(t, err)
	res, _ := e.get(t, "/hls/carol/ts/index.m3u8")
	require.Equal(t, http.StatusNotFound, res.StatusCode, "AV1 alone does not fit MPEG-TS")
	require.Empty(t, e.srv.Muxers())

	// Live, but no unit arrives: no segment within FirstSegmentWait.
	_, err = e.reg.Publish("dave", []*unit.Track{{Codec: unit.CodecAAC, SampleRate: 48000, ChannelCount: 2}})
	require.NoError(t, err)
	res, _ = e.get(t, "/hls/dave/ts/index.m3u8")
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	require.Equal(t, "1", res.Header.Get("Retry-After"))

	// Odd units from the hub never break the muxer.
	p, err := e.reg.Publish("erin", []*unit.Track{
		{Codec: unit.CodecH264},
		{Codec: unit.CodecMP3, SampleRate: 44100},
	})
	require.NoError(t, err)
	m, status := e.srv.muxerFor("erin", true)
	require.Equal(t, http.StatusOK, status)
	for i := 0; i < 100; i++ {
		d := time.Duration(i) * 40 * time.Millisecond
		require.NoError(t, p.WriteUnit(&unit.Unit{Track: 0, DTS: d, PTS: d, Key: i%10 == 0, Payload: [][]byte{{}, {0x65}}}))
		require.NoError(t, p.WriteUnit(&unit.Unit{Track: 0, DTS: d, PTS: d, Payload: nil}))
		require.NoError(t, p.WriteUnit(&unit.Unit{Track: 1, DTS: d, PTS: d, Key: true, Payload: [][]byte{{0xff, 0x00, 0x12}}}))
	}
	e.reg.End("erin")
	pl := waitPlaylist(t, m, 5*time.Second, func(pl *parsedPlaylist) bool { return pl.ended })
	require.NotEmpty(t, pl.segs)
}

func TestServerGolden(t *testing.T) {
	med := testutil.MustMedia(t, "h264_aac")
	clock := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	e := MustEnv(t, 5*time.Second, func(s *Server) { s.Now = func() time.Time { return clock } })
	p, err := e.reg.Publish("alice", med.Tracks)
	require.NoError(t, err)
	m, status := e.srv.muxerFor("alice", true)
	require.Equal(t, http.StatusOK, status)
	require.NoError(t, testutil.PublishMedia(context.Background(), p, med, testutil.PublishOpts{}))
	e.reg.End("alice")
	waitPlaylist(t, m, 10*time.Second, func(pl *parsedPlaylist) bool { return pl.ended })

	res, body := e.get(t, "/hls/alice/ts/index.m3u8")
	require.Equal(t, http.StatusOK, res.StatusCode)
	got := regexp.MustCompile(`(?m)^[0-9a-f]{16}-`).ReplaceAll(body, []byte("MUXERID-"))
	golden := filepath.Join("testdata", "playlist.golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))
}

func TestSplitPath(t *testing.T) {
	cases := []struct {
		path, name, dir, file string
		ok                    bool
	}{
		{"/hls/alice/index.m3u8", "alice", "", "index.m3u8", true},
		{"/alice/index.m3u8", "alice", "", "index.m3u8", true},
		{"/hls/alice/ts/index.m3u8", "alice", "ts", "index.m3u8", true},
		{"/hls/alice_2/ts/0123456789abcdef-3.ts", "alice_2", "ts", "0123456789abcdef-3.ts", true},
		{"/hls/alice_2/0123456789abcdef-p3.m4s", "alice_2", "", "0123456789abcdef-p3.m4s", true},
		{"/hls/alice/", "", "", "", false},
		{"/hls/alice/ts/", "", "", "", false},
		{"/hls/alice", "", "", "", false},
		{"hls/alice/index.m3u8", "", "", "", false},
		{"/hls/al/index.m3u8", "", "", "", false},
		{"/hls/ALICE/index.m3u8", "", "", "", false},
		{"/hls/alice/720p/stream.m3u8", "alice", "720p", "stream.m3u8", true},
		{"/hls/alice/Audio/stream.m3u8", "", "", "", false},
		{"/hls/alice/a~b/stream.m3u8", "", "", "", false},
		{"/hls/alice/720p/a/b", "", "", "", false},
		{"/hls/alice/720p/", "", "", "", false},
		{"/hls/alice/ts/a/b", "", "", "", false},
		{"/hls/api/index.m3u8", "", "", "", false},
	}
	for _, ca := range cases {
		t.Run(ca.path, func(t *testing.T) {
			name, dir, file, ok := splitPath(ca.path)
			require.Equal(t, ca.ok, ok)
			require.Equal(t, ca.name, name)
			require.Equal(t, ca.dir, dir)
			require.Equal(t, ca.file, file)
		})
	}
}

func TestParseSegmentName(t *testing.T) {
	cases := []struct {
		file string
		id   string
		seq  uint64
		ok   bool
	}{
		{"0123456789abcdef-0.ts", "0123456789abcdef", 0, true},
		{"0123456789abcdef-42.ts", "0123456789abcdef", 42, true},
		{"0123456789abcdef-18446744073709551615.ts", "0123456789abcdef", 1<<64 - 1, true},
		{"0123456789abcdef-18446744073709551616.ts", "", 0, false},
		{"0123456789abcdef-042.ts", "", 0, false},
		{"0123456789abcdef-.ts", "", 0, false},
		{"0123456789abcdef-+1.ts", "", 0, false},
		{"0123456789ABCDEF-1.ts", "", 0, false},
		{"0123456789abcde-1.ts", "", 0, false},
		{"0123456789abcdef-1.m4s", "", 0, false},
		{"0123456789abcdef_1.ts", "", 0, false},
	}
	for _, ca := range cases {
		t.Run(ca.file, func(t *testing.T) {
			id, seq, ok := parseSegmentName(ca.file)
			require.Equal(t, ca.ok, ok)
			require.Equal(t, ca.id, id)
			require.Equal(t, ca.seq, seq)
		})
	}
}

func TestRenderPlaylist(t *testing.T) {
	start := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	segs := []*segment{
		{seq: 7, name: "a-7.ts", duration: 2002 * time.Millisecond, start: start},
		{seq: 8, name: "a-8.ts", duration: 1500 * time.Millisecond, start: start.Add(2002 * time.Millisecond), discontinuity: true},
	}
	got := string(renderPlaylist(playlist{target: 3, mediaSequence: 7, discSequence: 2, segments: segs, ended: true}))
	require.Equal(t, `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:3
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-DISCONTINUITY-SEQUENCE:2
#EXT-X-PROGRAM-DATE-TIME:2024-01-02T03:04:05.000Z
#EXTINF:2.002,
a-7.ts
#EXT-X-DISCONTINUITY
#EXT-X-PROGRAM-DATE-TIME:2024-01-02T03:04:07.002Z
#EXTINF:1.500,
a-8.ts
#EXT-X-ENDLIST
`, got)
	require.Equal(t, 1, ceilSeconds(0))
	require.Equal(t, 2, ceilSeconds(1001*time.Millisecond))
	require.Equal(t, 1, ceilSeconds(1000*time.Millisecond+300*time.Microsecond))
}
