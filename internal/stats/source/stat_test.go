package source_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/stats"
	"github.com/onair/onair/internal/stats/source"
)

// statDoc is nginx-rtmp's /stat schema.
type statDoc struct {
	XMLName   xml.Name `xml:"rtmp"`
	Uptime    int64    `xml:"uptime"`
	NAccepted uint64   `xml:"naccepted"`
	BWIn      uint64   `xml:"bw_in"`
	BytesIn   uint64   `xml:"bytes_in"`
	BWOut     uint64   `xml:"bw_out"`
	BytesOut  uint64   `xml:"bytes_out"`
	Server    struct {
		Application []struct {
			Name string `xml:"name"`
			Live struct {
				Streams []struct {
					Name     string `xml:"name"`
					Time     int64  `xml:"time"`
					BWIn     uint64 `xml:"bw_in"`
					BytesIn  uint64 `xml:"bytes_in"`
					BWOut    uint64 `xml:"bw_out"`
					BytesOut uint64 `xml:"bytes_out"`
					BWAudio  uint64 `xml:"bw_audio"`
					BWVideo  uint64 `xml:"bw_video"`
					Clients  []struct {
						ID         uint64    `xml:"id"`
						Address    string    `xml:"address"`
						Time       int64     `xml:"time"`
						FlashVer   string    `xml:"flashver"`
						Dropped    uint64    `xml:"dropped"`
						AVSync     int64     `xml:"avsync"`
						Timestamp  int64     `xml:"timestamp"`
						Publishing *struct{} `xml:"publishing"`
						Active     *struct{} `xml:"active"`
					} `xml:"client"`
					Meta struct {
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
				} `xml:"stream"`
				NClients int `xml:"nclients"`
			} `xml:"live"`
		} `xml:"application"`
	} `xml:"server"`
}

func TestStatRealPublish(t *testing.T) {
	e := newEnv(t)
	pub := e.publish("alice")
	e.play("alice")
	require.Eventually(t, func() bool {
		for _, c := range e.rtmp.Conns() {
			if c.Channel == "alice" && c.Active && c.State == "playing" && c.BytesOut > 50_000 {
				return true
			}
		}
		return false
	}, 15*time.Second, 50*time.Millisecond, "the RTMP player never got media")
	require.Eventually(t, func() bool { return e.hub.Stream("alice").Info().VideoKbps > 0 },
		10*time.Second, 50*time.Millisecond, "the hub measures rates over 2 s")
	time.Sleep(1200 * time.Millisecond) // two sampling intervals: rates are known

	status, body := e.get("/stat")
	require.Equal(t, http.StatusOK, status)
	requireNoKey(t, "/stat", body)
	require.Contains(t, string(body), `<?xml-stylesheet type="text/xsl" href="stat.xsl" ?>`)

	var doc statDoc
	require.NoError(t, xml.Unmarshal(body, &doc), string(body))
	require.GreaterOrEqual(t, doc.NAccepted, uint64(2))
	require.Greater(t, doc.BytesIn, uint64(10_000))
	require.Greater(t, doc.BytesOut, uint64(10_000))
	require.Greater(t, doc.BWIn, uint64(10_000), "bits/s")
	require.Len(t, doc.Server.Application, 1)
	live := doc.Server.Application[0].Live
	require.Equal(t, "live", doc.Server.Application[0].Name)
	require.Len(t, live.Streams, 1)
	st := live.Streams[0]
	require.Equal(t, "alice", st.Name)
	require.Greater(t, st.Time, int64(500), "milliseconds")
	require.Greater(t, st.BWVideo, uint64(20_000))
	require.Greater(t, st.BWAudio, uint64(8_000), "64 kbit/s AAC, measured on arrival")
	require.Greater(t, st.BytesOut, uint64(50_000), "RTMP bytes to the player")
	require.Equal(t, 640, st.Meta.Video.Width)
	require.Equal(t, 360, st.Meta.Video.Height)
	require.InDelta(t, 30, st.Meta.Video.FrameRate, 15, "arrival rate over 2 s: bursts under load")
	require.Equal(t, "H264", st.Meta.Video.Codec)
	require.NotEmpty(t, st.Meta.Video.Profile)
	require.NotEmpty(t, st.Meta.Video.Level)
	require.Equal(t, "AAC", st.Meta.Audio.Codec)
	require.Equal(t, "LC", st.Meta.Audio.Profile)
	require.Equal(t, 44100, st.Meta.Audio.SampleRate)
	require.Equal(t, 1, st.Meta.Audio.Channels)
	require.Equal(t, 2, st.NClients)
	require.Equal(t, 2, live.NClients)
	require.NotNil(t, st.Publishing)
	require.NotNil(t, st.Active)
	require.Len(t, st.Clients, 2)
	publisher, player := st.Clients[0], st.Clients[1]
	require.NotNil(t, publisher.Publishing)
	require.Nil(t, player.Publishing)
	require.NotNil(t, publisher.Active)
	require.NotNil(t, player.Active)
	require.Contains(t, publisher.FlashVer, "FMLE", "ffmpeg's connect flashVer")
	require.Regexp(t, `^127\.0\.0\.1:\d+$`, publisher.Address)
	require.Greater(t, publisher.Timestamp, int64(500))
	require.Greater(t, player.Timestamp, int64(0))
	require.Less(t, abs(publisher.AVSync), int64(1000), "audio and video within a second")
	require.Greater(t, player.Time, int64(0))

	// xsltproc renders it with our stylesheet.
	html := xslt(t, e, body)
	require.Contains(t, html, "alice")
	require.Contains(t, html, "H264")
	require.Contains(t, html, "640x360")
	require.Contains(t, html, "publishing")
	require.Contains(t, html, "<table")
	// No inline script (the CSP refuses it): stat.js opens the rows of clients.
	require.NotContains(t, strings.ToLower(html), "onclick")
	require.Contains(t, html, `<script src="stat.js">`)
	require.Contains(t, html, `data-clients="live-alice"`)
	require.Contains(t, html, `id="live-alice"`)
	status, js := e.get("/stat.js")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(js), "data-clients")

	// The JSON has the same stream, with viewers and no key.
	status, body = e.get("/api/v1/stats")
	require.Equal(t, http.StatusOK, status)
	requireNoKey(t, "/api/v1/stats", body)
	var rep stats.Report
	require.NoError(t, json.Unmarshal(body, &rep))
	require.Len(t, rep.Streams, 1)
	require.Equal(t, 1, rep.Streams[0].Viewers.RTMP)
	require.InDelta(t, 30, rep.Streams[0].FPS, 15)
	require.InDelta(t, 1, rep.Streams[0].KeyframeInterval, 0.2, "-g 30 at 30 fps")
	require.Equal(t, 1, rep.Server.Connections.RTMPPlaying)
	require.Equal(t, 1, rep.Server.Connections.RTMPPublishing)
	require.Greater(t, rep.Server.RSSBytes, uint64(1<<20))
	require.Greater(t, rep.Server.Goroutines, 5)

	// Publish session end: one Info line with duration, bytes, codecs and reason.
	pub.Stop()
	require.Eventually(t, func() bool { return strings.Contains(e.logs.String(), `msg="publish ended"`) },
		10*time.Second, 20*time.Millisecond)
	line := logLine(e.logs.String(), `msg="publish ended"`)
	require.Regexp(t, `level=INFO .*channel=alice .*duration=\S+ bytes=\d+ codecs=h264,aac reason=\S+`, line)
	require.Eventually(t, func() bool { return strings.Contains(e.logs.String(), `msg="play ended"`) },
		10*time.Second, 20*time.Millisecond)
	line = logLine(e.logs.String(), `msg="play ended"`)
	require.Regexp(t, `level=DEBUG .*channel=alice duration=\S+ bytes=[1-9]\d* dropped=\d+`, line)
	requireNoKey(t, "the logs", []byte(e.logs.String()))
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func logLine(logs, sub string) string {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// xslt transforms the /stat document with /stat.xsl through xsltproc.
func xslt(t *testing.T, e *env, doc []byte) string {
	t.Helper()
	if _, err := exec.LookPath("xsltproc"); err != nil {
		if os.Getenv("ONAIR_REQUIRE_FFMPEG") == "1" {
			t.Fatal("xsltproc not found on PATH (apt-get install xsltproc) and ONAIR_REQUIRE_FFMPEG=1")
		}
		t.Skip("xsltproc not found on PATH")
	}
	status, xsl := e.get("/stat.xsl")
	require.Equal(t, http.StatusOK, status)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stat.xsl"), xsl, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "stat.xml"), doc, 0o600))
	var out, errOut bytes.Buffer
	cmd := exec.Command("xsltproc", "--nonet", filepath.Join(dir, "stat.xsl"), filepath.Join(dir, "stat.xml"))
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.NoError(t, cmd.Run(), errOut.String())
	require.Empty(t, errOut.String())
	return out.String()
}

// Label values allowed in /metrics: fixed sets, and live stream names for "stream".
var allowedLabels = map[string][]string{
	"protocol":  {"rtmp", "hls", "dash", "chat"},
	"state":     {"handshake", "publishing", "playing", "viewing", "open"},
	"kind":      {"multivariant", "playlist", "blocking", "part", "segment", "init", "manifest", "time", "other"},
	"code":      {"1xx", "2xx", "3xx", "4xx", "5xx", "other"},
	"direction": {"in", "out"},
	"media":     {"video", "audio", "all"},
	"format":    {"cmaf", "ts"},
	"reader":    {"rtmp", "hls", "cmaf"},
	"version":   {"test"},
	"db_name":   {"onair"},
}

func TestMetricsRealPublish(t *testing.T) {
	e := newEnv(t)
	e.publish("alice")
	e.publish("bob")
	e.play("alice")
	// HLS traffic on alice, fMP4 and TS.
	for _, p := range []string{"/hls/alice/index.m3u8", "/hls/alice/stream.m3u8", "/hls/alice/ts/index.m3u8",
		"/dash/alice/index.mpd", "/hls/alice/nope.m3u8"} {
		e.get(p)
	}
	time.Sleep(1500 * time.Millisecond) // a TS segment and a few samples

	status, body := e.get("/metrics")
	require.Equal(t, http.StatusOK, status)
	requireNoKey(t, "/metrics", body)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	require.NoError(t, err)

	for _, name := range []string{
		"onair_connections", "onair_rtmp_connections_accepted_total", "onair_live_streams",
		"onair_publishing_streams", "onair_viewers", "onair_stream_viewers", "onair_received_bytes_total",
		"onair_sent_bytes_total", "onair_bitrate_bits_per_second", "onair_stream_bitrate_bits_per_second",
		"onair_stream_received_bytes_total", "onair_stream_sent_bytes_total", "onair_stream_fps",
		"onair_stream_keyframe_interval_seconds", "onair_dropped_units_total",
		"onair_hls_request_duration_seconds", "onair_dash_request_duration_seconds",
		"onair_http_media_requests_total", "onair_segment_build_duration_seconds", "onair_build_info",
		"go_goroutines", "go_memstats_alloc_bytes", "process_resident_memory_bytes", "process_cpu_seconds_total",
	} {
		require.Contains(t, fams, name)
	}
	require.Equal(t, 2.0, value(t, fams["onair_live_streams"], nil))
	require.Equal(t, 1.0, value(t, fams["onair_stream_viewers"], map[string]string{"stream": "alice", "protocol": "rtmp"}))
	require.Equal(t, 2.0, value(t, fams["onair_connections"], map[string]string{"protocol": "rtmp", "state": "publishing"}))
	require.Greater(t, value(t, fams["onair_stream_bitrate_bits_per_second"],
		map[string]string{"stream": "alice", "direction": "in", "media": "video"}), 10_000.0)
	require.Greater(t, value(t, fams["onair_sent_bytes_total"], map[string]string{"protocol": "hls"}), 0.0)
	require.GreaterOrEqual(t, histCount(fams["onair_hls_request_duration_seconds"], "multivariant"), uint64(1))
	require.GreaterOrEqual(t, histCount(fams["onair_segment_build_duration_seconds"], "ts"), uint64(1))

	// No label takes values from user input, except stream names of live streams.
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "stream":
					require.Contains(t, []string{"alice", "bob"}, l.GetValue(), "%s", name)
				default:
					if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
						continue // the runtime's own fixed labels
					}
					allowed, ok := allowedLabels[l.GetName()]
					require.True(t, ok, "%s has an unexpected label %q", name, l.GetName())
					require.Contains(t, allowed, l.GetValue(), "%s{%s}", name, l.GetName())
				}
			}
		}
	}
}

func value(t *testing.T, f *dto.MetricFamily, labels map[string]string) float64 {
	t.Helper()
	require.NotNil(t, f)
next:
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s series with %v", f.GetName(), labels)
	return 0
}

func histCount(f *dto.MetricFamily, label string) uint64 {
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetValue() == label {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}

func TestCMAFBuildTime(t *testing.T) {
	e := newEnv(t)
	e.publish("alice")
	cs, err := e.cmaf.Stream("alice")
	require.NoError(t, err)
	sub := cs.Subscribe(4)
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for range 2 {
		select {
		case sg := <-sub.Segments():
			d := source.CMAFBuildTime(sg)
			require.GreaterOrEqual(t, d, time.Duration(0))
			require.Less(t, d, time.Second, "a segment is published right after its media")
			e.stats.ObserveCMAFSegment("alice", d)
		case <-ctx.Done():
			t.Fatal("no segment")
		}
	}
}
