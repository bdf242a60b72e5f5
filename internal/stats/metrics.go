package stats

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Label values. Every label takes its values from a fixed set, except "stream", whose
// values are live stream names: usernames (bounded by the registered users, validated
// as [a-z0-9_]{3,30}), series only while the stream is live, and at most MaxStreamLabels
// streams (the most watched).
var (
	hlsKinds  = []string{"multivariant", "playlist", "blocking", "part", "segment", "init", "other"}
	dashKinds = []string{"manifest", "segment", "init", "time", "other"}
	formats   = []string{"cmaf", "ts"}
)

// metrics holds the series updated by observations; the rest is read at scrape time.
type metrics struct {
	hlsLatency  *prometheus.HistogramVec
	dashLatency *prometheus.HistogramVec
	requests    *prometheus.CounterVec
	segBuild    *prometheus.HistogramVec
}

func (c *Collector) initMetrics() error {
	reg := prometheus.NewRegistry()
	latencyBuckets := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &metrics{
		hlsLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "onair", Name: "hls_request_duration_seconds",
			Help:    "Time to answer HLS requests, by kind (blocking playlist reloads and hinted parts wait for media).",
			Buckets: latencyBuckets,
		}, []string{"kind"}),
		dashLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "onair", Name: "dash_request_duration_seconds",
			Help:    "Time to answer DASH requests, by kind (a segment being written is streamed until it ends).",
			Buckets: latencyBuckets,
		}, []string{"kind"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "onair", Name: "http_media_requests_total",
			Help: "HLS and DASH requests, by protocol, kind and status class.",
		}, []string{"protocol", "kind", "code"}),
		segBuild: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "onair", Name: "segment_build_duration_seconds",
			Help: "Segment build time: muxing time of an MPEG-TS segment (ts); time from the end of a CMAF " +
				"segment's media to its publication (cmaf).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"format"}),
	}
	// Pre-create the fixed label sets, so that series exist from the start.
	for _, k := range hlsKinds {
		m.hlsLatency.WithLabelValues(k)
	}
	for _, k := range dashKinds {
		m.dashLatency.WithLabelValues(k)
	}
	for _, f := range formats {
		m.segBuild.WithLabelValues(f)
	}
	cs := []prometheus.Collector{
		m.hlsLatency, m.dashLatency, m.requests, m.segBuild,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&liveCollector{c: c},
	}
	if c.DB != nil {
		cs = append(cs, collectors.NewDBStatsCollector(c.DB, "onair"))
	}
	for _, col := range cs {
		if err := reg.Register(col); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	c.registry, c.metrics = reg, m
	return nil
}

// Registry returns the Prometheus registry of the Collector (never the global one).
func (c *Collector) Registry() *prometheus.Registry { return c.registry }

// MetricsHandler serves /metrics in the Prometheus exposition formats.
func (c *Collector) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(c.registry, promhttp.HandlerOpts{
		ErrorLog:            slogAdapter{c},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

type slogAdapter struct{ c *Collector }

func (a slogAdapter) Println(v ...any) { a.c.Logger.Warn("metrics", "err", fmt.Sprint(v...)) }

func oneOf(v string, set []string) string {
	for _, s := range set {
		if v == s {
			return v
		}
	}
	return "other"
}

func (m *metrics) observeRequest(proto, kind string, status int, elapsed time.Duration) {
	h := m.hlsLatency
	kinds := hlsKinds
	if proto == ProtoDASH {
		h, kinds = m.dashLatency, dashKinds
	}
	kind = oneOf(kind, kinds)
	h.WithLabelValues(kind).Observe(elapsed.Seconds())
	m.requests.WithLabelValues(proto, kind, statusClass(status)).Inc()
}

func (m *metrics) observeSegment(format string, elapsed time.Duration) {
	m.segBuild.WithLabelValues(format).Observe(max(elapsed, 0).Seconds())
}

func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}

// liveCollector reads the live state at scrape time.
type liveCollector struct{ c *Collector }

var (
	descBuildInfo = prometheus.NewDesc("onair_build_info",
		"Always 1; the version label is the server's version.", []string{"version"}, nil)
	descConnections = prometheus.NewDesc("onair_connections",
		"Open connections by protocol and state: RTMP connections (handshake, publishing, playing), "+
			"HLS and DASH viewer sessions (viewing), chat WebSockets open on this node, live channel or not (open).",
		[]string{"protocol", "state"}, nil)
	descAccepted = prometheus.NewDesc("onair_rtmp_connections_accepted_total",
		"RTMP connections accepted.", nil, nil)
	descLiveStreams = prometheus.NewDesc("onair_live_streams",
		"Live streams (publishing, or waiting for their publisher to come back).", nil, nil)
	descPublishing = prometheus.NewDesc("onair_publishing_streams",
		"Live streams with a publisher attached.", nil, nil)
	descRelayed = prometheus.NewDesc("onair_relayed_streams",
		"Live streams pulled from their origin node (cluster edges), counted in onair_live_streams too: "+
			"a cluster's channels are the sum of onair_live_streams minus onair_relayed_streams.", nil, nil)
	descViewers = prometheus.NewDesc("onair_viewers",
		"Viewers of all live streams by protocol (chat: open chat connections).", []string{"protocol"}, nil)
	descReceived = prometheus.NewDesc("onair_received_bytes_total",
		"Bytes received from publishers, by protocol.", []string{"protocol"}, nil)
	descSent = prometheus.NewDesc("onair_sent_bytes_total",
		"Bytes sent to viewers, by protocol (RTMP socket bytes, HLS and DASH response bodies).",
		[]string{"protocol"}, nil)
	descBitrate = prometheus.NewDesc("onair_bitrate_bits_per_second",
		"Server bit rate over the last sampling interval, in (from publishers) and out (to viewers).",
		[]string{"direction"}, nil)
	descDropped = prometheus.NewDesc("onair_dropped_units_total",
		"Media units dropped because a reader's queue was full, by reader kind.", []string{"reader"}, nil)
	descStreamViewers = prometheus.NewDesc("onair_stream_viewers",
		"Viewers of a live stream by protocol (chat: open chat connections).", []string{"stream", "protocol"}, nil)
	descStreamReceived = prometheus.NewDesc("onair_stream_received_bytes_total",
		"Media bytes received from a live stream's publisher.", []string{"stream"}, nil)
	descStreamSent = prometheus.NewDesc("onair_stream_sent_bytes_total",
		"Bytes sent to a live stream's viewers (RTMP, HLS, DASH).", []string{"stream"}, nil)
	descStreamBitrate = prometheus.NewDesc("onair_stream_bitrate_bits_per_second",
		"A live stream's bit rate: in by media (video, audio) as the publisher sends it, out to its viewers.",
		[]string{"stream", "direction", "media"}, nil)
	descStreamFPS = prometheus.NewDesc("onair_stream_fps",
		"A live stream's frame rate as the publisher sends it.", []string{"stream"}, nil)
	descStreamKeyint = prometheus.NewDesc("onair_stream_keyframe_interval_seconds",
		"Distance between a live stream's last two keyframes.", []string{"stream"}, nil)
)

func (lc *liveCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descBuildInfo, descConnections, descAccepted, descLiveStreams, descPublishing, descRelayed, descViewers,
		descReceived, descSent, descBitrate, descDropped, descStreamViewers, descStreamReceived,
		descStreamSent, descStreamBitrate, descStreamFPS, descStreamKeyint,
	} {
		ch <- d
	}
}

func (lc *liveCollector) Collect(ch chan<- prometheus.Metric) {
	c := lc.c
	snap := c.Source.Snapshot()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descBuildInfo, 1, c.Version)

	cn := c.connections(&snap)
	gauge(descConnections, float64(cn.RTMPHandshake), ProtoRTMP, StateHandshake)
	gauge(descConnections, float64(cn.RTMPPublishing), ProtoRTMP, StatePublishing)
	gauge(descConnections, float64(cn.RTMPPlaying), ProtoRTMP, StatePlaying)
	gauge(descConnections, float64(cn.HLS), ProtoHLS, "viewing")
	gauge(descConnections, float64(cn.DASH), ProtoDASH, "viewing")
	gauge(descConnections, float64(cn.Chat), ProtoChat, "open")
	counter(descAccepted, float64(snap.Accepted))

	publishing, relayed := 0, 0
	viewers := make(map[string]Viewers, len(snap.Streams))
	totalViewers := make(map[string]int, len(snap.Streams))
	var total Viewers
	for i := range snap.Streams {
		st := &snap.Streams[i]
		if st.Publishing {
			publishing++
		}
		if st.Relay {
			relayed++
		}
		v := c.Viewers(st.Name, st.Readers[ProtoRTMP])
		viewers[st.Name] = v
		totalViewers[st.Name] = v.Total
		total.RTMP += v.RTMP
		total.HLS += v.HLS
		total.DASH += v.DASH
		total.Chat += v.Chat
	}
	gauge(descLiveStreams, float64(len(snap.Streams)))
	gauge(descPublishing, float64(publishing))
	gauge(descRelayed, float64(relayed))
	gauge(descViewers, float64(total.RTMP), ProtoRTMP)
	gauge(descViewers, float64(total.HLS), ProtoHLS)
	gauge(descViewers, float64(total.DASH), ProtoDASH)
	gauge(descViewers, float64(total.Chat), ProtoChat)

	counter(descReceived, float64(snap.BytesIn), ProtoRTMP)
	counter(descSent, float64(snap.BytesOut), ProtoRTMP)
	counter(descSent, float64(c.httpTotal[0].Load()), ProtoHLS)
	counter(descSent, float64(c.httpTotal[1].Load()), ProtoDASH)
	bwIn, bwOut, _, _ := c.rates()
	gauge(descBitrate, bwIn, "in")
	gauge(descBitrate, bwOut, "out")
	for kind, n := range snap.Dropped {
		counter(descDropped, float64(n), kind)
	}

	streams := sortedStreams(snap.Streams, totalViewers)
	if len(streams) > c.MaxStreamLabels {
		streams = streams[:c.MaxStreamLabels]
	}
	for i := range streams {
		st := &streams[i]
		v := viewers[st.Name]
		gauge(descStreamViewers, float64(v.RTMP), st.Name, ProtoRTMP)
		gauge(descStreamViewers, float64(v.HLS), st.Name, ProtoHLS)
		gauge(descStreamViewers, float64(v.DASH), st.Name, ProtoDASH)
		gauge(descStreamViewers, float64(v.Chat), st.Name, ProtoChat)
		counter(descStreamReceived, float64(st.BytesIn), st.Name)
		counter(descStreamSent, float64(c.streamBytesOut(st)), st.Name)
		gauge(descStreamBitrate, st.VideoBitrate, st.Name, "in", "video")
		gauge(descStreamBitrate, st.AudioBitrate, st.Name, "in", "audio")
		gauge(descStreamBitrate, c.streamBandwidthOut(st.Name), st.Name, "out", "all")
		gauge(descStreamFPS, st.FPS, st.Name)
		gauge(descStreamKeyint, st.KeyframeInterval.Seconds(), st.Name)
	}
}
