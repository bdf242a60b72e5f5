package stats

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// fakeSource is a Source whose snapshot the test sets.
type fakeSource struct {
	mu   sync.Mutex
	snap Snapshot
}

func (f *fakeSource) Snapshot() Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap
}

func (f *fakeSource) set(s Snapshot) {
	f.mu.Lock()
	f.snap = s
	f.mu.Unlock()
}

func testSnapshot(start time.Time) Snapshot {
	return Snapshot{
		Accepted: 7, BytesIn: 5000, BytesOut: 9000,
		Dropped: map[string]uint64{"rtmp": 3},
		Streams: []Stream{{
			Name: "alice", StartedAt: start, Publishing: true,
			BytesIn: 4000, BytesOut: 8000,
			VideoBitrate: 1_500_000, AudioBitrate: 128_000, FPS: 30, KeyframeInterval: 2 * time.Second,
			Video:   &VideoMeta{Codec: "H264", Width: 640, Height: 360, Profile: "High", Compat: 0, Level: "3.0"},
			Audio:   &AudioMeta{Codec: "AAC", Profile: "LC", Channels: 2, SampleRate: 44100},
			Readers: map[string]int{"rtmp": 1, "hls": 1}, Dropped: map[string]uint64{"rtmp": 3},
		}},
		Conns: []Conn{
			{ID: 1, Addr: "127.0.0.1:5000", Start: start, FlashVer: "FMLE/3.0 <obs>", State: StatePublishing,
				Channel: "alice", Active: true, BytesIn: 5000, Timestamp: 1500 * time.Millisecond},
			{ID: 2, Addr: "127.0.0.1:5001", Start: start.Add(time.Second), State: StatePlaying,
				Channel: "alice", Active: true, BytesOut: 9000, Dropped: 3, Timestamp: 1400 * time.Millisecond,
				AVSync: -20 * time.Millisecond},
			{ID: 3, Addr: "127.0.0.1:5002", Start: start, State: StateHandshake},
		},
	}
}

func newTestCollector(t *testing.T, src Source, clk *fakeClock) *Collector {
	t.Helper()
	c := &Collector{
		Source:      src,
		HLS:         &Sessions{Protocol: ProtoHLS, Now: clk.Now},
		DASH:        &Sessions{Protocol: ProtoDASH, Now: clk.Now},
		ChatClients: func(ch string) int { return map[string]int{"alice": 4}[ch] },
		Version:     "1.2.3",
		Interval:    time.Hour, // samples are taken by the test
		HistorySize: 3,
		Now:         clk.Now,
	}
	require.NoError(t, c.Start())
	t.Cleanup(c.Close)
	return c
}

// statDoc is nginx-rtmp's /stat schema, as parsers of it read it.
type statDoc struct {
	XMLName          xml.Name `xml:"rtmp"`
	NginxVersion     string   `xml:"nginx_version"`
	NginxRTMPVersion string   `xml:"nginx_rtmp_version"`
	Compiler         string   `xml:"compiler"`
	PID              int      `xml:"pid"`
	Uptime           int64    `xml:"uptime"`
	NAccepted        uint64   `xml:"naccepted"`
	BWIn             uint64   `xml:"bw_in"`
	BytesIn          uint64   `xml:"bytes_in"`
	BWOut            uint64   `xml:"bw_out"`
	BytesOut         uint64   `xml:"bytes_out"`
	Server           struct {
		Application []struct {
			Name string `xml:"name"`
			Live struct {
				Streams  []statStream `xml:"stream"`
				NClients int          `xml:"nclients"`
			} `xml:"live"`
		} `xml:"application"`
	} `xml:"server"`
}

type statStream struct {
	Name     string       `xml:"name"`
	Time     int64        `xml:"time"`
	BWIn     uint64       `xml:"bw_in"`
	BytesIn  uint64       `xml:"bytes_in"`
	BWOut    uint64       `xml:"bw_out"`
	BytesOut uint64       `xml:"bytes_out"`
	BWAudio  uint64       `xml:"bw_audio"`
	BWVideo  uint64       `xml:"bw_video"`
	Clients  []statClient `xml:"client"`
	Meta     struct {
		Video struct {
			Width     int    `xml:"width"`
			Height    int    `xml:"height"`
			FrameRate int    `xml:"frame_rate"`
			Codec     string `xml:"codec"`
			Profile   string `xml:"profile"`
			Compat    int    `xml:"compat"`
			Level     string `xml:"level"`
		} `xml:"video"`
		Audio struct {
			Codec      string `xml:"codec"`
			Profile    string `xml:"profile"`
			Channels   int    `xml:"channels"`
			SampleRate int    `xml:"sample_rate"`
		} `xml:"audio"`
	} `xml:"meta"`
	NClients   int       `xml:"nclients"`
	Publishing *struct{} `xml:"publishing"`
	Active     *struct{} `xml:"active"`
}

type statClient struct {
	ID         uint64    `xml:"id"`
	Address    string    `xml:"address"`
	Time       int64     `xml:"time"`
	FlashVer   string    `xml:"flashver"`
	Dropped    uint64    `xml:"dropped"`
	AVSync     int64     `xml:"avsync"`
	Timestamp  int64     `xml:"timestamp"`
	Publishing *struct{} `xml:"publishing"`
	Active     *struct{} `xml:"active"`
}

func TestStatXML(t *testing.T) {
	clk := newFakeClock()
	src := &fakeSource{}
	start := clk.Now()
	src.set(testSnapshot(start))
	c := newTestCollector(t, src, clk)
	c.ObserveHLS("alice", "segment", 200, 1000, time.Millisecond)
	clk.Add(10 * time.Second)
	snap := testSnapshot(start)
	snap.BytesIn += 10_000
	snap.Streams[0].BytesOut += 2000
	src.set(snap)
	c.sample()

	srv := httptest.NewServer(&StatHandler{Collector: c})
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, "text/xml; charset=utf-8", resp.Header.Get("Content-Type"))
	require.True(t, strings.HasPrefix(string(body),
		"<?xml version=\"1.0\" encoding=\"utf-8\" ?>\r\n<?xml-stylesheet type=\"text/xsl\" href=\"stat.xsl\" ?>\r\n<rtmp>"), string(body))

	var doc statDoc
	require.NoError(t, xml.Unmarshal(body, &doc))
	require.Equal(t, "onair 1.2.3", doc.NginxVersion)
	require.Equal(t, "1.2.3", doc.NginxRTMPVersion)
	require.Equal(t, int64(10), doc.Uptime)
	require.Equal(t, uint64(7), doc.NAccepted)
	require.Equal(t, uint64(15000), doc.BytesIn)
	require.Equal(t, uint64(8000), doc.BWIn, "10 000 bytes in 10 s")
	require.Equal(t, uint64(9000+1000), doc.BytesOut)
	require.Len(t, doc.Server.Application, 1)
	app := doc.Server.Application[0]
	require.Equal(t, "live", app.Name)
	require.Equal(t, 2, app.Live.NClients)
	require.Len(t, app.Live.Streams, 1)
	st := app.Live.Streams[0]
	require.Equal(t, "alice", st.Name)
	require.Equal(t, int64(10_000), st.Time)
	require.Equal(t, uint64(1_628_000), st.BWIn)
	require.Equal(t, uint64(1_500_000), st.BWVideo)
	require.Equal(t, uint64(128_000), st.BWAudio)
	require.Equal(t, uint64(10_000+1000), st.BytesOut)
	require.Equal(t, uint64((2000+1000)*8/10), st.BWOut, "rtmp and hls bytes since the first sample")
	require.Equal(t, 640, st.Meta.Video.Width)
	require.Equal(t, 30, st.Meta.Video.FrameRate)
	require.Equal(t, "H264", st.Meta.Video.Codec)
	require.Equal(t, "High", st.Meta.Video.Profile)
	require.Equal(t, "3.0", st.Meta.Video.Level)
	require.Equal(t, "AAC", st.Meta.Audio.Codec)
	require.Equal(t, "LC", st.Meta.Audio.Profile)
	require.Equal(t, 44100, st.Meta.Audio.SampleRate)
	require.Equal(t, 2, st.NClients)
	require.NotNil(t, st.Publishing)
	require.NotNil(t, st.Active)
	require.Len(t, st.Clients, 2)
	pub, play := st.Clients[0], st.Clients[1]
	require.Equal(t, "FMLE/3.0 <obs>", pub.FlashVer)
	require.NotNil(t, pub.Publishing)
	require.Equal(t, int64(1500), pub.Timestamp)
	require.Nil(t, play.Publishing)
	require.NotNil(t, play.Active)
	require.Equal(t, int64(-20), play.AVSync)
	require.Equal(t, uint64(3), play.Dropped)
	require.Equal(t, int64(9000), play.Time)
	require.Contains(t, string(body), "<flashver>FMLE/3.0 &lt;obs&gt;</flashver>")
	require.Contains(t, string(body), "<publishing/>")

	// Element order inside a stream follows ngx_rtmp_stat_module.c.
	s := string(body)
	order := []string{"<name>alice", "<time>", "<bw_in>", "<bytes_in>", "<bw_out>", "<bytes_out>", "<bw_audio>",
		"<bw_video>", "<client>", "<meta>", "<nclients>", "<publishing/>", "<active/>", "</stream>"}
	pos := strings.Index(s, "<stream>")
	for _, el := range order {
		i := strings.Index(s[pos:], el)
		require.GreaterOrEqual(t, i, 0, "%s after position %d", el, pos)
		pos += i
	}
}

func TestStatXSLHandler(t *testing.T) {
	rec := httptest.NewRecorder()
	StatXSLHandler{}.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/stat.xsl", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "Copyright (c) 2012-2013, Roman Arutyunyan")
	require.Contains(t, rec.Body.String(), "<xsl:stylesheet")
	var v any
	require.NoError(t, xml.Unmarshal(rec.Body.Bytes(), &v), "well-formed XML")
}

func TestReportAndHistory(t *testing.T) {
	clk := newFakeClock()
	src := &fakeSource{}
	start := clk.Now()
	src.set(testSnapshot(start))
	c := newTestCollector(t, src, clk)
	for i := range 3 {
		c.HLS.Touch("alice", NewSessionID(), "10.0.0.1:1", "ua", time.Hour)
		_ = i
	}
	c.DASH.Touch("alice", "", "10.0.0.2:1", "ua", time.Hour)
	for range 4 {
		clk.Add(5 * time.Second)
		c.sample()
	}

	rep := c.Report()
	require.Equal(t, "1.2.3", rep.Server.Version)
	require.Equal(t, 1, rep.Server.Streams)
	require.Equal(t, Viewers{RTMP: 1, HLS: 3, DASH: 1, Chat: 4, Total: 5}, rep.Server.Viewers)
	require.Equal(t, Connections{RTMPHandshake: 1, RTMPPublishing: 1, RTMPPlaying: 1, HLS: 3, DASH: 1, Chat: 4},
		rep.Server.Connections)
	require.Len(t, rep.Streams, 1)
	require.Equal(t, 30.0, rep.Streams[0].FPS)
	require.Equal(t, 2.0, rep.Streams[0].KeyframeInterval)
	require.Equal(t, uint64(3), rep.Streams[0].Dropped["rtmp"])
	require.Greater(t, rep.Server.Goroutines, 0)

	srv := httptest.NewServer(func() http.Handler {
		mux := http.NewServeMux()
		mux.Handle("GET /api/v1/stats", &StatsHandler{Collector: c})
		mux.Handle("GET /api/v1/stats/history", &HistoryHandler{Collector: c})
		mux.Handle("GET /api/v1/stats/streams/{name}/history", &StreamHistoryHandler{Collector: c})
		return mux
	}())
	defer srv.Close()

	var got Report
	getJSON(t, srv.URL+"/api/v1/stats", http.StatusOK, &got)
	require.Equal(t, "alice", got.Streams[0].Name)
	require.Equal(t, 5, got.Streams[0].Viewers.Total)

	var sh ServerHistory
	getJSON(t, srv.URL+"/api/v1/stats/history", http.StatusOK, &sh)
	require.Len(t, sh.Time, 3, "the ring keeps HistorySize samples")
	require.Len(t, sh.Viewers, 3)
	require.Equal(t, 5, sh.Viewers[2])
	require.Equal(t, 3600.0, sh.IntervalSeconds)
	require.Equal(t, clk.Now().Unix(), sh.Time[2])

	var hist StreamHistory
	getJSON(t, srv.URL+"/api/v1/stats/streams/alice/history", http.StatusOK, &hist)
	require.True(t, hist.Live)
	require.Len(t, hist.BitrateIn, 3)
	require.Equal(t, 1_628_000.0, hist.BitrateIn[0])
	require.Equal(t, []int{5, 5, 5}, hist.Viewers)
	var errBody map[string]any
	getJSON(t, srv.URL+"/api/v1/stats/streams/bob/history", http.StatusNotFound, &errBody)

	// The stream ends: its history stays for HistorySize samples, then goes.
	src.set(Snapshot{})
	clk.Add(5 * time.Second)
	c.sample()
	getJSON(t, srv.URL+"/api/v1/stats/streams/alice/history", http.StatusOK, &hist)
	require.False(t, hist.Live)
	for range 4 {
		clk.Add(5 * time.Second)
		c.sample()
	}
	getJSON(t, srv.URL+"/api/v1/stats/streams/alice/history", http.StatusNotFound, &errBody)
}

func getJSON(t *testing.T, url string, status int, v any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, status, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

func TestMetricsLabels(t *testing.T) {
	clk := newFakeClock()
	src := &fakeSource{}
	snap := testSnapshot(clk.Now())
	for _, name := range []string{"bob", "carol", "dave"} {
		st := snap.Streams[0]
		st.Name = name
		st.Readers = map[string]int{}
		snap.Streams = append(snap.Streams, st)
	}
	src.set(snap)
	c := newTestCollector(t, src, clk)
	c.MaxStreamLabels = 2
	c.ObserveHLS("alice", "blocking", 200, 100, 300*time.Millisecond)
	c.ObserveHLS("alice", "../../etc/passwd", 404, 10, time.Millisecond) // unknown kinds are "other"
	c.ObserveDASH("alice", "manifest", 200, 100, time.Millisecond)
	c.ObserveTSSegment("alice", 2*time.Millisecond)
	c.ObserveCMAFSegment("alice", 30*time.Millisecond)

	fams := scrape(t, c.MetricsHandler())
	for _, name := range []string{
		"onair_connections", "onair_live_streams", "onair_viewers", "onair_stream_viewers",
		"onair_sent_bytes_total", "onair_received_bytes_total", "onair_bitrate_bits_per_second",
		"onair_dropped_units_total", "onair_hls_request_duration_seconds", "onair_dash_request_duration_seconds",
		"onair_segment_build_duration_seconds", "onair_http_media_requests_total", "onair_stream_fps",
		"go_goroutines", "process_resident_memory_bytes", "onair_build_info",
	} {
		require.Contains(t, fams, name)
	}
	streams := labelValues(fams, "stream")
	require.Equal(t, []string{"alice", "bob"}, streams, "capped to the most watched, then by name")
	require.Equal(t, []string{"blocking", "init", "multivariant", "other", "part", "playlist", "segment"},
		labelValues(map[string]*dtoFamily{"x": fams["onair_hls_request_duration_seconds"]}, "kind"))
	require.Equal(t, 1.0, gaugeValue(t, fams["onair_viewers"], map[string]string{"protocol": "rtmp"}))
}

type dtoFamily = dto.MetricFamily

func labelValues(fams map[string]*dtoFamily, label string) []string {
	set := map[string]bool{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label {
					set[l.GetValue()] = true
				}
			}
		}
	}
	out := make([]string, 0, len(set))
	for v := range set {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func gaugeValue(t *testing.T, f *dtoFamily, labels map[string]string) float64 {
	t.Helper()
	require.NotNil(t, f)
next:
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
				continue next
			}
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("no %s series with %v", f.GetName(), labels)
	return 0
}

func scrape(t *testing.T, h http.Handler) map[string]*dtoFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain")
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	require.NoError(t, err)
	return fams
}

func TestParseProcStat(t *testing.T) {
	line := "4242 (on air (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 12 0 100 123456789 300 " +
		"18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	cpu, rss, ok := parseProcStat([]byte(line), 4096)
	require.True(t, ok)
	require.Equal(t, 3.0, cpu)
	require.Equal(t, uint64(300*4096), rss)
	_, _, ok = parseProcStat([]byte("1 (x) S 1 2"), 4096)
	require.False(t, ok)
	_, _, ok = parseProcStat([]byte("garbage"), 4096)
	require.False(t, ok)
	_, _, ok = readProc()
	require.True(t, ok, "/proc/self/stat readable on Linux")
}

func TestRing(t *testing.T) {
	r := newRing[int](3)
	require.Empty(t, r.items())
	for i := 1; i <= 5; i++ {
		r.push(i)
	}
	require.Equal(t, []int{3, 4, 5}, r.items())
}

// The chat connections of the server are every room's when the node can count them (in a
// cluster, watch pages of channels live on other nodes chat here too), else the live
// streams'.
func TestChatConnections(t *testing.T) {
	clk := newFakeClock()
	src := &fakeSource{}
	src.set(testSnapshot(clk.Now()))
	c := newTestCollector(t, src, clk)
	require.Equal(t, 4, c.Report().Server.Connections.Chat, "alice's room")
	c.ChatConnections = func() int { return 6 }
	require.Equal(t, 6, c.Report().Server.Connections.Chat, "alice's room and another, offline channel's")
	require.Equal(t, 4, c.Report().Streams[0].Viewers.Chat)
}
