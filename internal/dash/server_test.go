package dash

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/onair/onair/internal/cmafstream"
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
	cm  *cmafstream.Manager
	srv *Server
	ts  *httptest.Server
}

func MustEnv(t *testing.T, grace time.Duration) *testEnv {
	t.Helper()
	reg := &hub.Registry{Logger: discard, GracePeriod: grace}
	require.NoError(t, reg.Start())
	cm := &cmafstream.Manager{Hub: reg, Logger: discard, SegmentTarget: time.Second}
	require.NoError(t, cm.Start())
	srv := &Server{CMAF: cm, Logger: discard, SegmentTarget: cm.SegmentTarget, PartTarget: cm.PartTarget}
	require.NoError(t, srv.Start())
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
		cm.Close()
		reg.Close()
	})
	return &testEnv{reg: reg, cm: cm, srv: srv, ts: ts}
}

func (e *testEnv) startPublish(t *testing.T, name string, med *testutil.Media, o testutil.PublishOpts) {
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
}

func (e *testEnv) get(t *testing.T, path string) (*http.Response, []byte) {
	t.Helper()
	res, err := e.ts.Client().Get(e.ts.URL + path)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, b
}

// The MPD as far as the tests read it.
type mpdXML struct {
	XMLName                    xml.Name `xml:"urn:mpeg:dash:schema:mpd:2011 MPD"`
	Type                       string   `xml:"type,attr"`
	AvailabilityStartTime      string   `xml:"availabilityStartTime,attr"`
	PublishTime                string   `xml:"publishTime,attr"`
	MinimumUpdatePeriod        string   `xml:"minimumUpdatePeriod,attr"`
	MediaPresentationDuration  string   `xml:"mediaPresentationDuration,attr"`
	TimeShiftBufferDepth       string   `xml:"timeShiftBufferDepth,attr"`
	SuggestedPresentationDelay string   `xml:"suggestedPresentationDelay,attr"`
	MinBufferTime              string   `xml:"minBufferTime,attr"`
	Latency                    struct {
		Target string `xml:"target,attr"`
	} `xml:"ServiceDescription>Latency"`
	UTCTiming struct {
		Scheme string `xml:"schemeIdUri,attr"`
		Value  string `xml:"value,attr"`
	} `xml:"UTCTiming"`
	Periods []struct {
		ID             string `xml:"id,attr"`
		Start          string `xml:"start,attr"`
		AdaptationSets []struct {
			ContentType    string `xml:"contentType,attr"`
			MimeType       string `xml:"mimeType,attr"`
			Representation struct {
				ID        string `xml:"id,attr"`
				Codecs    string `xml:"codecs,attr"`
				Bandwidth int    `xml:"bandwidth,attr"`
				Template  struct {
					Timescale      int64   `xml:"timescale,attr"`
					PTO            int64   `xml:"presentationTimeOffset,attr"`
					StartNumber    uint64  `xml:"startNumber,attr"`
					Initialization string  `xml:"initialization,attr"`
					Media          string  `xml:"media,attr"`
					ATO            float64 `xml:"availabilityTimeOffset,attr"`
					ATOComplete    string  `xml:"availabilityTimeComplete,attr"`
					Timeline       []struct {
						T *int64 `xml:"t,attr"`
						D int64  `xml:"d,attr"`
						R int    `xml:"r,attr"`
					} `xml:"SegmentTimeline>S"`
				} `xml:"SegmentTemplate"`
			} `xml:"Representation"`
		} `xml:"AdaptationSet"`
	} `xml:"Period"`
}

// timelineSegment is one segment the timeline of an AdaptationSet advertises.
type timelineSegment struct {
	number uint64
	t, d   int64
}

func (m *mpdXML) segments(p, a int) []timelineSegment {
	tpl := m.Periods[p].AdaptationSets[a].Representation.Template
	var out []timelineSegment
	n := tpl.StartNumber
	next := int64(0)
	for _, s := range tpl.Timeline {
		if s.T != nil {
			next = *s.T
		}
		for i := 0; i <= s.R; i++ {
			out = append(out, timelineSegment{number: n, t: next, d: s.D})
			n++
			next += s.D
		}
	}
	return out
}

func (e *testEnv) getMPD(t *testing.T) *mpdXML {
	t.Helper()
	res, body := e.get(t, "/dash/alice/index.mpd")
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
	require.Equal(t, "application/dash+xml", res.Header.Get("Content-Type"))
	require.Equal(t, "no-cache", res.Header.Get("Cache-Control"))
	var m mpdXML
	require.NoError(t, xml.Unmarshal(body, &m), "%s", body)
	require.Equal(t, "dynamic", m.Type)
	for _, ts := range []string{m.AvailabilityStartTime, m.PublishTime} {
		_, err := time.Parse(time.RFC3339Nano, ts)
		require.NoError(t, err)
	}
	require.NotEmpty(t, m.Periods)
	return &m
}

// trafIDs returns the track IDs of the trafs of every moof in a fragment run.
func trafIDs(t *testing.T, b []byte) []uint32 {
	t.Helper()
	var ids []uint32
	for off := 0; off < len(b); {
		require.GreaterOrEqual(t, len(b)-off, 8)
		size := int(binary.BigEndian.Uint32(b[off:]))
		typ := string(b[off+4 : off+8])
		require.GreaterOrEqual(t, size, 8)
		if typ == "moof" {
			for in := off + 8; in < off+size; {
				sz := int(binary.BigEndian.Uint32(b[in:]))
				if string(b[in+4:in+8]) == "traf" {
					ids = append(ids, binary.BigEndian.Uint32(b[in+8+8+4:]))
				}
				in += sz
			}
		}
		off += size
	}
	return ids
}

func TestServerFFprobe(t *testing.T) {
	cases := []struct {
		name  string
		media string
		want  []string
	}{
		{"h264 aac", "h264_aac", []string{"aac", "h264"}},
		{"h265 aac", "h265_aac", []string{"aac", "hevc"}},
		{"h264 opus", "h264_opus", []string{"h264", "opus"}},
		{"aac only", "aac", []string{"aac"}},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			med := testutil.MustMedia(t, ca.media)
			e := MustEnv(t, 5*time.Second)
			e.startPublish(t, "alice", med, testutil.PublishOpts{Speed: 2, Loops: 10})
			require.Equal(t, ca.want, probeCodecs(t, e.ts.URL+"/dash/alice/index.mpd"))
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

func TestServerMPD(t *testing.T) {
	med := testutil.MustMedia(t, "h264_aac")
	e := MustEnv(t, 5*time.Second)
	e.startPublish(t, "alice", med, testutil.PublishOpts{Speed: 1, Loops: 20})
	cs, err := e.cm.Stream("alice")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = cs.Wait(ctx, func(st *cmafstream.State) bool { return len(st.Segments) >= 3 && len(st.Open) > 0 })
	require.NoError(t, err)

	m := e.getMPD(t)
	require.Equal(t, "PT1.000S", m.MinimumUpdatePeriod)
	require.Equal(t, "PT2.000S", m.SuggestedPresentationDelay)
	require.Equal(t, "2000", m.Latency.Target)
	require.Equal(t, "urn:mpeg:dash:utc:http-iso:2014", m.UTCTiming.Scheme)
	require.Equal(t, "/dash/time", m.UTCTiming.Value)
	require.Len(t, m.Periods, 1)
	require.Equal(t, "PT0.000S", m.Periods[0].Start)
	sets := m.Periods[0].AdaptationSets
	require.Len(t, sets, 2)
	require.Equal(t, "video", sets[0].ContentType)
	require.Equal(t, "avc1.64000d", sets[0].Representation.Codecs)
	require.Equal(t, "audio", sets[1].ContentType)
	require.Equal(t, "mp4a.40.2", sets[1].Representation.Codecs)

	st := cs.State()
	for a, set := range sets {
		tpl := set.Representation.Template
		require.Equal(t, "false", tpl.ATOComplete)
		require.Positive(t, tpl.ATO)
		require.Positive(t, set.Representation.Bandwidth)
		segs := m.segments(0, a)
		require.GreaterOrEqual(t, len(segs), 4)
		for i := 1; i < len(segs); i++ {
			require.Equal(t, segs[i-1].t+segs[i-1].d, segs[i].t, "contiguous timeline")
		}

		res, init := e.get(t, "/dash/alice/"+tpl.Initialization)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Equal(t, set.MimeType, res.Header.Get("Content-Type"))
		require.Equal(t, "ftyp", string(init[4:8]))

		// Every advertised number is served, with the samples of this track only, at the
		// time the timeline says (to a tick of rounding).
		for i, sg := range segs {
			uri := strings.ReplaceAll(tpl.Media, "$Number$", strconv.FormatUint(sg.number, 10))
			res, body := e.get(t, "/dash/alice/"+uri)
			require.Equal(t, http.StatusOK, res.StatusCode, uri)
			require.Equal(t, set.MimeType, res.Header.Get("Content-Type"))
			ids := trafIDs(t, body)
			require.NotEmpty(t, ids)
			for _, id := range ids {
				require.Equal(t, uint32(a+1), id)
			}
			if i == len(segs)-1 {
				st = cs.State() // the segment that was being written (TestServerChunked)
			}
			full := st.Segment(sg.number)
			require.NotNil(t, full)
			want := int64(float64(full.Start) * float64(tpl.Timescale) / float64(time.Second))
			require.InDelta(t, want, sg.t, 1)
		}
	}

	notFound := []string{
		"/dash/bob/index.mpd",
		"/dash/alice/index.m3u8",
		"/dash/alice/" + cs.ID() + "-999999-t0.m4s",
		"/dash/alice/" + cs.ID() + "-1-t7.m4s",
		"/dash/alice/" + cs.ID() + "-i3-t0.mp4",
		"/dash/alice/" + cs.ID() + "-01-t0.m4s",
		"/dash/alice/0123456789abcdef-1-t0.m4s",
		"/dash/Alice/index.mpd",
	}
	for _, p := range notFound {
		res, _ := e.get(t, p)
		require.Equal(t, http.StatusNotFound, res.StatusCode, p)
	}

	res, body := e.get(t, "/dash/time")
	require.Equal(t, http.StatusOK, res.StatusCode)
	now, err := time.Parse(time.RFC3339Nano, string(body))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now(), now, time.Second)
}

func TestServerChunked(t *testing.T) {
	med := testutil.MustMedia(t, "h264_aac")
	e := MustEnv(t, 5*time.Second)
	e.startPublish(t, "alice", med, testutil.PublishOpts{Speed: 1, Loops: 20})
	cs, err := e.cm.Stream("alice")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := cs.Wait(ctx, func(st *cmafstream.State) bool { return len(st.Segments) >= 1 })
	require.NoError(t, err)

	// Ask for the segment after the one being written: the response starts with its first
	// part, and its chunks arrive part by part until the segment is finished.
	next := st.NextSeq + 1
	res, err := e.ts.Client().Get(fmt.Sprintf("%s/dash/alice/%s-%d-t0.m4s", e.ts.URL, cs.ID(), next))
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	buf := make([]byte, 4096)
	n, err := res.Body.Read(buf)
	require.NoError(t, err)
	require.Positive(t, n)
	now := cs.State()
	require.Equal(t, next, now.NextSeq, "the first bytes come before the segment is finished")
	first := now.Open[0]
	require.Less(t, time.Since(first.Produced), 100*time.Millisecond)
	rest, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	done := cs.State().Segment(next)
	require.NotNil(t, done)
	size := 0
	for _, p := range done.Parts {
		size += len(p.Track(0).Data)
	}
	require.Equal(t, size, n+len(rest))
}

func TestServerReconnect(t *testing.T) {
	first, second := testutil.MustMedia(t, "h264_aac"), testutil.MustMedia(t, "h264_opus")
	e := MustEnv(t, 10*time.Second)
	p1, err := e.reg.Publish("alice", first.Tracks)
	require.NoError(t, err)
	cs, err := e.cm.Stream("alice")
	require.NoError(t, err)
	require.NoError(t, testutil.PublishMedia(context.Background(), p1, first, testutil.PublishOpts{Speed: 4}))
	p1.Close()
	time.Sleep(300 * time.Millisecond) // a real gap between the sessions
	p2, err := e.reg.Publish("alice", second.Tracks)
	require.NoError(t, err)
	require.NoError(t, testutil.PublishMedia(context.Background(), p2, second, testutil.PublishOpts{Speed: 4}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = cs.Wait(ctx, func(st *cmafstream.State) bool { return st.Session == 1 && st.Last().Session == 1 })
	require.NoError(t, err)

	m := e.getMPD(t)
	require.Len(t, m.Periods, 2)
	require.Equal(t, "p0", m.Periods[0].ID)
	require.Equal(t, "p1", m.Periods[1].ID)
	s0, s1 := m.segments(0, 0), m.segments(1, 0)
	require.Equal(t, s0[len(s0)-1].number+1, s1[0].number, "$Number$ continues across Periods")
	start0, err := time.ParseDuration(strings.ToLower(strings.TrimPrefix(m.Periods[0].Start, "PT")))
	require.NoError(t, err)
	start1, err := time.ParseDuration(strings.ToLower(strings.TrimPrefix(m.Periods[1].Start, "PT")))
	require.NoError(t, err)
	tpl0 := m.Periods[0].AdaptationSets[0].Representation.Template
	end0 := time.Duration(float64(s0[len(s0)-1].t+s0[len(s0)-1].d-tpl0.PTO) / float64(tpl0.Timescale) * float64(time.Second))
	require.GreaterOrEqual(t, start1, start0+end0-time.Millisecond, "Periods do not overlap")
	require.Equal(t, "opus", m.Periods[1].AdaptationSets[1].Representation.Codecs)
	require.Equal(t, s1[0].t, m.Periods[1].AdaptationSets[0].Representation.Template.PTO)

	e.reg.End("alice")
	_, err = cs.Wait(ctx, func(st *cmafstream.State) bool { return st.Ended })
	require.NoError(t, err)
	m = e.getMPD(t)
	require.Empty(t, m.MinimumUpdatePeriod)
	require.NotEmpty(t, m.MediaPresentationDuration)
	for p := range m.Periods {
		tpl := m.Periods[p].AdaptationSets[0].Representation.Template
		require.Empty(t, tpl.ATOComplete, "nothing is being written any more")
	}
}

func TestParseFileName(t *testing.T) {
	cases := []struct {
		name string
		want file
		ok   bool
	}{
		{"0123456789abcdef-12-t0.m4s", file{id: "0123456789abcdef", num: 12}, true},
		{"0123456789abcdef-i0-t1.mp4", file{id: "0123456789abcdef", init: true, track: 1}, true},
		{"0123456789abcdef-012-t0.m4s", file{}, false},
		{"0123456789abcdef-12-t01.m4s", file{}, false},
		{"0123456789abcdef-12.m4s", file{}, false},
		{"0123456789abcdef-i0-t1.m4s", file{}, false},
		{"0123456789ABCDEF-12-t0.m4s", file{}, false},
		{"0123456789abcdef-12-t0.ts", file{}, false},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			got, ok := parseFileName(ca.name)
			require.Equal(t, ca.ok, ok)
			if ok {
				require.Equal(t, ca.want, got)
			}
		})
	}
}

func FuzzParseFileName(f *testing.F) {
	f.Add("0123456789abcdef-12-t0.m4s")
	f.Add("0123456789abcdef-i0-t1.mp4")
	f.Fuzz(func(t *testing.T, name string) {
		got, ok := parseFileName(name)
		if !ok {
			return
		}
		want := got.id + "-" + strconv.FormatUint(got.num, 10) + "-t" + strconv.Itoa(got.track) + ".m4s"
		if got.init {
			want = got.id + "-i" + strconv.FormatUint(got.num, 10) + "-t" + strconv.Itoa(got.track) + ".mp4"
		}
		if want != name {
			t.Fatalf("%q parsed as %+v", name, got)
		}
	})
}
