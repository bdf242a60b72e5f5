package hls

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/cmafstream"
	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/testutil"
)

// MustLLEnv starts a hub, a CMAF manager, an HLS server using it and an HTTP server.
func MustLLEnv(t *testing.T, grace time.Duration, mod func(*cmafstream.Manager)) *testEnv {
	t.Helper()
	reg := &hub.Registry{Logger: discard, GracePeriod: grace}
	require.NoError(t, reg.Start())
	cm := &cmafstream.Manager{Hub: reg, Logger: discard, SegmentTarget: time.Second}
	if mod != nil {
		mod(cm)
	}
	require.NoError(t, cm.Start())
	srv := &Server{Hub: reg, CMAF: cm, Logger: discard, PartTarget: cm.PartTarget}
	require.NoError(t, srv.Start())
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
		cm.Close()
		reg.Close()
	})
	return &testEnv{reg: reg, srv: srv, ts: ts}
}

type llPart struct {
	dur         float64
	uri         string
	independent bool
}

type llSegment struct {
	seq    uint64
	uri    string
	dur    float64
	disc   bool
	mapURI string
	pdt    time.Time
	parts  []llPart
	lines  []string // the lines of the segment, tags first
}

type llPlaylistT struct {
	raw          string
	target       int
	partTarget   float64
	partHoldBack float64
	skipUntil    float64
	blockReload  bool
	mediaSeq     uint64
	discSeq      uint64
	skipped      int
	segs         []llSegment
	open         *llSegment // parts after the last segment
	hint         string
	ended        bool
}

var (
	llSegRE  = regexp.MustCompile(`^([0-9a-f]{16})-(0|[1-9][0-9]*)\.m4s$`)
	llPartRE = regexp.MustCompile(`^[0-9a-f]{16}-p(0|[1-9][0-9]*)\.m4s$`)
	llMapRE  = regexp.MustCompile(`^[0-9a-f]{16}-i(0|[1-9][0-9]*)\.mp4$`)
)

func attrs(s string) map[string]string {
	out := map[string]string{}
	for s != "" {
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			v, rest = rest[1:1+end], rest[2+end:]
		} else {
			v, rest, _ = strings.Cut(rest, ",")
			rest = "," + rest
		}
		out[k] = v
		s = strings.TrimPrefix(rest, ",")
	}
	return out
}

// RequireLLPlaylist parses an LL-HLS media playlist and checks the rules of RFC 8216bis
// that every version must follow: EXTINF ≤ TARGETDURATION, every part ≤ PART-TARGET,
// PART-HOLD-BACK ≥ 2 × PART-TARGET, CAN-SKIP-UNTIL ≥ 6 × TARGETDURATION, a map before
// the first segment, a preload hint unless ended.
func RequireLLPlaylist(t *testing.T, body []byte) *llPlaylistT {
	t.Helper()
	pl := &llPlaylistT{raw: string(body)}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	require.True(t, sc.Scan())
	require.Equal(t, "#EXTM3U", sc.Text())
	cur := &llSegment{}
	sawMap := false
	for sc.Scan() {
		line := sc.Text()
		tag, val, _ := strings.Cut(line, ":")
		var err error
		switch tag {
		case "#EXT-X-VERSION":
			require.Equal(t, "9", val)
		case "#EXT-X-TARGETDURATION":
			pl.target, err = strconv.Atoi(val)
		case "#EXT-X-SERVER-CONTROL":
			a := attrs(val)
			pl.blockReload = a["CAN-BLOCK-RELOAD"] == "YES"
			pl.partHoldBack, err = strconv.ParseFloat(a["PART-HOLD-BACK"], 64)
			if v, ok := a["CAN-SKIP-UNTIL"]; ok {
				pl.skipUntil, err = strconv.ParseFloat(v, 64)
			}
		case "#EXT-X-PART-INF":
			pl.partTarget, err = strconv.ParseFloat(attrs(val)["PART-TARGET"], 64)
		case "#EXT-X-MEDIA-SEQUENCE":
			pl.mediaSeq, err = strconv.ParseUint(val, 10, 64)
		case "#EXT-X-DISCONTINUITY-SEQUENCE":
			pl.discSeq, err = strconv.ParseUint(val, 10, 64)
		case "#EXT-X-SKIP":
			pl.skipped, err = strconv.Atoi(attrs(val)["SKIPPED-SEGMENTS"])
			sawMap = true // the map applies to the skipped segments
		case "#EXT-X-DISCONTINUITY":
			cur.disc = true
			cur.lines = append(cur.lines, line)
		case "#EXT-X-MAP":
			cur.mapURI = attrs(val)["URI"]
			require.Regexp(t, llMapRE, cur.mapURI)
			sawMap = true
			cur.lines = append(cur.lines, line)
		case "#EXT-X-PROGRAM-DATE-TIME":
			cur.pdt, err = time.Parse(time.RFC3339Nano, val)
			cur.lines = append(cur.lines, line)
		case "#EXT-X-PART":
			a := attrs(val)
			p := llPart{uri: a["URI"], independent: a["INDEPENDENT"] == "YES"}
			p.dur, err = strconv.ParseFloat(a["DURATION"], 64)
			require.Regexp(t, llPartRE, p.uri)
			cur.parts = append(cur.parts, p)
			cur.lines = append(cur.lines, line)
		case "#EXTINF":
			v, ok := strings.CutSuffix(val, ",")
			require.True(t, ok, line)
			cur.dur, err = strconv.ParseFloat(v, 64)
			cur.lines = append(cur.lines, line)
		case "#EXT-X-PRELOAD-HINT":
			a := attrs(val)
			require.Equal(t, "PART", a["TYPE"])
			pl.hint = a["URI"]
		case "#EXT-X-ENDLIST":
			pl.ended = true
		default:
			require.False(t, strings.HasPrefix(line, "#"), "unexpected tag %q", line)
			require.True(t, sawMap, "EXT-X-MAP before the first segment")
			m := llSegRE.FindStringSubmatch(line)
			require.NotNil(t, m, line)
			cur.uri = line
			cur.seq = pl.mediaSeq + uint64(pl.skipped+len(pl.segs))
			require.Equal(t, strconv.FormatUint(cur.seq, 10), m[2])
			cur.lines = append(cur.lines, line)
			pl.segs = append(pl.segs, *cur)
			cur = &llSegment{}
		}
		require.NoError(t, err, line)
	}
	if len(cur.parts) > 0 {
		pl.open = cur
	}
	require.Positive(t, pl.target)
	require.True(t, pl.blockReload)
	require.Positive(t, pl.partTarget)
	require.GreaterOrEqual(t, pl.partHoldBack, 2*pl.partTarget)
	if pl.skipUntil > 0 {
		require.GreaterOrEqual(t, pl.skipUntil, 6*float64(pl.target))
	}
	require.NotEmpty(t, pl.segs)
	require.Equal(t, pl.ended, pl.hint == "", "a preload hint exactly while live")
	for _, s := range append(pl.segs, *cur) {
		require.LessOrEqual(t, s.dur, float64(pl.target), "EXTINF of %s exceeds the target duration in\n%s", s.uri, body)
		sum := 0.0
		for _, p := range s.parts {
			require.LessOrEqual(t, p.dur, pl.partTarget, "part %s exceeds PART-TARGET in\n%s", p.uri, body)
			sum += p.dur
		}
		if len(s.parts) > 0 && s.uri != "" {
			require.InDelta(t, s.dur, sum, 0.002, "parts of %s add up to it", s.uri)
			require.True(t, s.parts[0].independent, "segment %s starts with an independent part", s.uri)
		}
		if s.uri != "" || len(s.parts) > 0 {
			require.False(t, s.pdt.IsZero(), "no PROGRAM-DATE-TIME for %s", s.uri)
		}
	}
	return pl
}

// getLL fetches and checks a media playlist.
func (e *testEnv) getLL(t *testing.T, query string) (*http.Response, *llPlaylistT) {
	t.Helper()
	res, body := e.get(t, "/hls/alice/stream.m3u8"+query)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
	return res, RequireLLPlaylist(t, body)
}

func TestLLFFprobe(t *testing.T) {
	cases := []struct {
		name    string
		media   string
		want    []string
		variant string
		codecs  string
	}{
		{"h264 aac", "h264_aac", []string{"aac", "h264"}, "stream.m3u8", `CODECS="avc1.64000d,mp4a.40.2",RESOLUTION=320x180`},
		{"h265 aac", "h265_aac", []string{"aac", "hevc"}, "stream.m3u8", `CODECS="hvc1.1.6.L60.90,mp4a.40.2",RESOLUTION=320x180`},
		{"h264 opus", "h264_opus", []string{"h264", "opus"}, "stream.m3u8", `CODECS="avc1.42c00d,opus"`},
		{"aac only", "aac", []string{"aac"}, "stream.m3u8", `CODECS="mp4a.40.2"`},
		{"mp3 goes to ts", "h264_mp3", []string{"h264", "mp3"}, "ts/index.m3u8", `CODECS="avc1.42c00d,mp4a.40.34"`},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			med := testutil.MustMedia(t, ca.media)
			e := MustLLEnv(t, 5*time.Second, nil)
			e.startPublish(t, "alice", med, testutil.PublishOpts{Speed: 2, Loops: 10})

			res, body := e.get(t, "/hls/alice/index.m3u8")
			require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
			require.Equal(t, "no-cache", res.Header.Get("Cache-Control"))
			lines := strings.Split(strings.TrimSpace(string(body)), "\n")
			require.Equal(t, ca.variant, lines[len(lines)-1], "%s", body)
			require.Contains(t, string(body), ca.codecs)
			require.Regexp(t, `#EXT-X-STREAM-INF:BANDWIDTH=[1-9][0-9]*,AVERAGE-BANDWIDTH=[1-9]`, string(body))

			require.Equal(t, ca.want, probeCodecs(t, e.ts.URL+"/hls/alice/index.m3u8"))
		})
	}
}

func TestLLPlaylist(t *testing.T) {
	med := testutil.MustMedia(t, "h264_aac")
	e := MustLLEnv(t, 5*time.Second, nil)
	e.startPublish(t, "alice", med, testutil.PublishOpts{Speed: 1, Loops: 20})

	res, pl := e.getLL(t, "")
	require.Equal(t, "application/vnd.apple.mpegurl", res.Header.Get("Content-Type"))
	require.Equal(t, "no-cache", res.Header.Get("Cache-Control"))
	require.Equal(t, 1, pl.target)
	require.Equal(t, 0.25, pl.partTarget)
	require.Equal(t, 0.75, pl.partHoldBack)
	cs, err := e.srv.CMAF.Stream("alice")
	require.NoError(t, err)
	id := cs.ID()

	// Blocking reload: ask for the part after the newest one; the answer comes as soon as
	// the segmenter published it, and it lists that part.
	for i := 0; i < 6; i++ {
		msn, part := pl.mediaSeq+uint64(pl.skipped+len(pl.segs)), 0
		if pl.open != nil {
			part = len(pl.open.parts)
		}
		start := time.Now()
		res, pl = e.getLL(t, fmt.Sprintf("?_HLS_msn=%d&_HLS_part=%d", msn, part))
		arrived := time.Now()
		require.Equal(t, "public, max-age=3", res.Header.Get("Cache-Control"))
		st := cs.State()
		require.True(t, st.HasPart(msn, part))
		// Find the part the request asked for (part index past the end: next segment's first).
		var asked *cmafstream.Part
		for _, p := range st.Parts {
			if (p.SegmentSeq == msn && p.Index == part) || (asked == nil && p.SegmentSeq == msn+1 && p.Index == 0) {
				asked = p
			}
		}
		require.NotNil(t, asked)
		require.Less(t, arrived.Sub(asked.Produced), 50*time.Millisecond, "answered %v after the part", arrived.Sub(asked.Produced))
		require.Greater(t, arrived.Sub(start), 10*time.Millisecond, "the request blocked")
		uri := partName(id, asked.Number)
		require.Contains(t, pl.raw, `URI="`+uri+`"`)
	}

	// A hinted part is served once it exists; the request waits for it.
	start := time.Now()
	res, body := e.get(t, "/hls/alice/"+pl.hint)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Greater(t, time.Since(start), 10*time.Millisecond)
	require.Equal(t, "video/iso.segment", res.Header.Get("Content-Type"))
	require.Equal(t, "public, max-age=31536000, immutable", res.Header.Get("Cache-Control"))
	require.Equal(t, "moof", string(body[4:8]))

	// Far-future and malformed requests.
	last := pl.mediaSeq + uint64(pl.skipped+len(pl.segs)) - 1
	bad := []string{
		fmt.Sprintf("?_HLS_msn=%d", last+3),
		fmt.Sprintf("?_HLS_msn=%d&_HLS_part=0", last+3),
		fmt.Sprintf("?_HLS_msn=%d&_HLS_part=40", last+1),
		"?_HLS_part=1",
		"?_HLS_msn=x",
		"?_HLS_msn=01",
		"?_HLS_skip=NO",
	}
	for _, q := range bad {
		res, _ := e.get(t, "/hls/alice/stream.m3u8"+q)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, q)
	}
	// Old directives are answered at once.
	res, _ = e.get(t, fmt.Sprintf("/hls/alice/stream.m3u8?_HLS_msn=%d&_HLS_part=0", pl.mediaSeq))
	require.Equal(t, http.StatusOK, res.StatusCode)

	// Segments, parts and init segments.
	seg := pl.segs[len(pl.segs)-1]
	res, data := e.get(t, "/hls/alice/"+seg.uri)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "video/iso.segment", res.Header.Get("Content-Type"))
	var joined []byte
	for _, p := range seg.parts {
		res, b := e.get(t, "/hls/alice/"+p.uri)
		require.Equal(t, http.StatusOK, res.StatusCode)
		joined = append(joined, b...)
	}
	if len(seg.parts) > 0 {
		require.Equal(t, data, joined, "a segment is its parts")
	}
	res, _ = e.get(t, "/hls/alice/"+seg.uri, "If-None-Match", res.Header.Get("ETag"))
	require.Equal(t, http.StatusNotModified, res.StatusCode)
	res, _ = e.get(t, "/hls/alice/"+seg.uri, "Range", "bytes=4-7")
	require.Equal(t, http.StatusPartialContent, res.StatusCode)
	res, init := e.get(t, "/hls/alice/"+id+"-i0.mp4")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "video/mp4", res.Header.Get("Content-Type"))
	require.Equal(t, "ftyp", string(init[4:8]))

	notFound := []string{
		"/hls/alice/" + id + "-i1.mp4",
		"/hls/alice/" + id + "-999999.m4s",
		"/hls/alice/" + id + "-p999999.m4s",
		"/hls/alice/" + id + "-0" + "1.m4s",
		"/hls/alice/0123456789abcdef-1.m4s",
		"/hls/alice/" + id + "-1.mp4",
		"/hls/bob/stream.m3u8",
		"/hls/bob/" + seg.uri,
	}
	for _, p := range notFound {
		res, _ := e.get(t, p)
		require.Equal(t, http.StatusNotFound, res.StatusCode, p)
	}
}

func TestLLDeltaUpdate(t *testing.T) {
	med := testutil.MustMedia(t, "h264_aac")
	e := MustLLEnv(t, 5*time.Second, nil)
	// 20 s of media as fast as possible, then the publisher stays silent: the state holds.
	p, err := e.reg.Publish("alice", med.Tracks)
	require.NoError(t, err)
	cs, err := e.srv.CMAF.Stream("alice")
	require.NoError(t, err)
	require.NoError(t, testutil.PublishMedia(context.Background(), p, med, testutil.PublishOpts{Speed: 8, Loops: 5}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = cs.Wait(ctx, func(st *cmafstream.State) bool { return st.NextSeq >= 18 })
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond) // let the last batch settle

	_, full := e.getLL(t, "")
	require.Equal(t, 6*float64(full.target), full.skipUntil)
	for _, skip := range []string{"YES", "v2"} {
		_, delta := e.getLL(t, "?_HLS_skip="+skip)
		require.Equal(t, full.mediaSeq, delta.mediaSeq)
		require.Equal(t, full.discSeq, delta.discSeq)
		// Skipped: the segments that end at least CAN-SKIP-UNTIL before the last one ends.
		want := 0
		end := 0.0
		for _, s := range full.segs {
			end += s.dur
		}
		acc := 0.0
		for _, s := range full.segs {
			acc += s.dur
			if end-acc >= full.skipUntil-0.0005 {
				want++
			}
		}
		require.Positive(t, want)
		require.Equal(t, want, delta.skipped, "%s", delta.raw)
		// The rest is the tail of the full playlist, line for line.
		_, fullTail, _ := strings.Cut(full.raw, full.segs[want-1].uri+"\n")
		_, deltaTail, _ := strings.Cut(delta.raw, "#EXT-X-SKIP:SKIPPED-SEGMENTS="+strconv.Itoa(want)+"\n")
		require.Equal(t, fullTail, deltaTail)
	}

	// Parts are listed for the last three target durations only.
	open := 0.0
	if full.open != nil {
		for _, p := range full.open.parts {
			open += p.dur
		}
	}
	fromEnd := open
	withParts := 0
	for i := len(full.segs) - 1; i >= 0; i-- {
		if len(full.segs[i].parts) > 0 {
			withParts++
			require.Less(t, fromEnd, 3*float64(full.target), "parts of %s", full.segs[i].uri)
		} else {
			require.GreaterOrEqual(t, fromEnd, 3*float64(full.target)-0.001, "no parts for %s", full.segs[i].uri)
		}
		fromEnd += full.segs[i].dur
	}
	require.Positive(t, withParts)
}

func TestLLReconnect(t *testing.T) {
	first, second := testutil.MustMedia(t, "h264_aac"), testutil.MustMedia(t, "h264_opus")
	e := MustLLEnv(t, 10*time.Second, nil)
	p1, err := e.reg.Publish("alice", first.Tracks)
	require.NoError(t, err)
	cs, err := e.srv.CMAF.Stream("alice")
	require.NoError(t, err)
	require.NoError(t, testutil.PublishMedia(context.Background(), p1, first, testutil.PublishOpts{}))
	_, before := e.getLL(t, "")
	p1.Close()

	p2, err := e.reg.Publish("alice", second.Tracks)
	require.NoError(t, err)
	require.NoError(t, testutil.PublishMedia(context.Background(), p2, second, testutil.PublishOpts{}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The first segment of the new session is finished (not only open, when its
	// discontinuity would be on the parts still being written).
	_, err = cs.Wait(ctx, func(st *cmafstream.State) bool {
		return st.Session == 1 && len(st.Open) > 0 && !st.OpenDiscontinuity
	})
	require.NoError(t, err)
	_, after := e.getLL(t, "")
	require.GreaterOrEqual(t, after.mediaSeq, before.mediaSeq)
	join := -1
	for i, s := range after.segs {
		if s.disc {
			require.Equal(t, -1, join, "one discontinuity:\n%s", after.raw)
			join = i
		}
	}
	require.Positive(t, join, "%s", after.raw)
	require.Regexp(t, `-i1\.mp4$`, after.segs[join].mapURI, "new codecs, new map after the discontinuity")
	require.Regexp(t, `-i0\.mp4$`, after.segs[0].mapURI)
	require.False(t, after.segs[join].pdt.Before(after.segs[join-1].pdt))

	// The end of the stream: ENDLIST, no hint, directives ignored.
	e.reg.End("alice")
	_, err = cs.Wait(ctx, func(st *cmafstream.State) bool { return st.Ended })
	require.NoError(t, err)
	_, final := e.getLL(t, fmt.Sprintf("?_HLS_msn=%d&_HLS_part=0", after.mediaSeq+100))
	require.True(t, final.ended)
	require.Nil(t, final.open)

	// ffmpeg decodes the whole playlist across the join.
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-v", "warning",
		"-i", e.ts.URL+"/hls/alice/stream.m3u8", "-f", "null", "-").CombinedOutput()
	require.NoError(t, err, "ffmpeg: %s", out)
}

func TestParseFMP4Name(t *testing.T) {
	cases := []struct {
		file string
		want fmp4File
		ok   bool
	}{
		{"0123456789abcdef-i0.mp4", fmp4File{id: "0123456789abcdef", kind: 'i'}, true},
		{"0123456789abcdef-12.m4s", fmp4File{id: "0123456789abcdef", kind: 's', num: 12}, true},
		{"0123456789abcdef-p7.m4s", fmp4File{id: "0123456789abcdef", kind: 'p', num: 7}, true},
		{"0123456789abcdef-p07.m4s", fmp4File{}, false},
		{"0123456789abcdef-i0.m4s", fmp4File{}, false},
		{"0123456789abcdef-12.mp4", fmp4File{}, false},
		{"0123456789abcdef-.m4s", fmp4File{}, false},
		{"0123456789ABCDEF-1.m4s", fmp4File{}, false},
		{"0123456789abcdef-1.ts", fmp4File{}, false},
		{"index.m3u8", fmp4File{}, false},
	}
	for _, ca := range cases {
		t.Run(ca.file, func(t *testing.T) {
			got, ok := parseFMP4Name(ca.file)
			require.Equal(t, ca.ok, ok)
			if ok {
				require.Equal(t, ca.want, got)
			}
		})
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add("0123456789abcdef-p7.m4s", "_HLS_msn=3&_HLS_part=2&_HLS_skip=YES")
	f.Add("0123456789abcdef-i0.mp4", "_HLS_part=1")
	f.Fuzz(func(t *testing.T, file, query string) {
		if got, ok := parseFMP4Name(file); ok {
			name := ""
			switch got.kind {
			case 'i':
				name = initName(got.id, int(got.num))
			case 'p':
				name = partName(got.id, got.num)
			default:
				name = got.id + "-" + strconv.FormatUint(got.num, 10) + ".m4s"
			}
			if name != file {
				t.Fatalf("%q parsed as %+v", file, got)
			}
		}
		if q, err := url.ParseQuery(query); err == nil {
			if d, ok := parseDirectives(q); ok && d.hasPart && !d.hasMSN {
				t.Fatal("_HLS_part without _HLS_msn accepted")
			}
		}
	})
}
