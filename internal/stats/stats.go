// Package stats measures the server for operators, streamers and admins: viewer sessions
// of HTTP streaming (Sessions), nginx-rtmp-compatible XML statistics (/stat and
// /stat.xsl), Prometheus metrics (/metrics), JSON statistics and a short in-memory
// history of them for graphs (/api/v1/stats...).
//
// It imports no media package. The media side is read through Source (implemented by
// internal/stats/source for the hub and the RTMP server) and through the Observe methods
// that the HLS and DASH servers call back (their OnRequest/OnSegment fields).
//
// # Bytes and bit rates
//
// bytes_in counts what publishers sent (RTMP socket bytes for the server, media bytes for
// a stream); bytes_out counts RTMP socket bytes plus the HLS and DASH response bodies.
// Rates (bw_*) are in bits/s: a stream's bw_in, bw_video and bw_audio are the hub's
// measure of the publisher (a few seconds' window); every other rate is the change of the
// byte counters over the last sampling Interval.
package stats

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of the Collector fields.
const (
	DefaultInterval        = 5 * time.Second
	DefaultHistorySize     = 120 // 10 min at 5 s
	DefaultMaxStreamLabels = 100
	DefaultMaxHistories    = 1000
)

// Protocols of viewers and connections.
const (
	ProtoRTMP = "rtmp"
	ProtoHLS  = "hls"
	ProtoDASH = "dash"
	ProtoChat = "chat"
)

// Collector gathers the statistics. Set its fields, call Start, serve its handlers
// (StatHandler, StatXSLHandler, MetricsHandler, StatsHandler, HistoryHandler,
// StreamHistoryHandler), and Close it.
type Collector struct {
	// Source reports the live streams and RTMP connections. Required.
	Source Source

	// HLS and DASH count the HTTP viewers; nil counts none.
	HLS  *Sessions
	DASH *Sessions

	// ChatClients returns the open chat connections of a channel. Optional.
	ChatClients func(channel string) int
	// ChatConnections returns every open chat connection of this node, whatever its
	// channel (in a cluster, chat rooms of channels live on other nodes have their
	// watch pages here too). Optional: without it the live streams' ChatClients are summed.
	ChatConnections func() int

	// DB, when set, has its connection pool statistics in /metrics (go_sql_* series,
	// db_name="onair").
	DB *sql.DB

	// Version is the server's version, shown in /stat and the JSON.
	Version string

	// Interval is how often rates are measured and history samples taken. Default: 5 s.
	Interval time.Duration

	// HistorySize is how many samples the history keeps. Default: 120 (10 min at 5 s).
	HistorySize int

	// MaxStreamLabels caps the streams that get per-stream series in /metrics (the most
	// watched ones). Server-wide series always count every stream. Default: 100.
	MaxStreamLabels int

	// MaxHistories caps the streams whose history is kept. Default: 1000.
	MaxHistories int

	// Logger receives the sampler's warnings. Default: slog.Default().
	Logger *slog.Logger

	// Now returns the current time. Default: time.Now.
	Now func() time.Time

	started  time.Time
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	registry *prometheus.Registry
	metrics  *metrics

	// bytes served over HTTP: cumulative per protocol, and per live channel
	httpTotal [2]atomic.Uint64 // hls, dash
	httpMu    sync.Mutex
	httpBytes map[string]uint64

	mu         sync.Mutex // the sampled state below
	last       sample
	haveLast   bool
	bwIn       float64
	bwOut      float64
	cpuPercent float64
	rss        uint64
	streamOut  map[string]*streamRate
	serverHist *ring[ServerPoint]
	streamHist map[string]*streamHistory
}

// sample is the counters at one sampling instant.
type sample struct {
	at      time.Time
	in, out uint64
	cpu     float64 // process CPU seconds
	haveCPU bool
}

type streamRate struct {
	bytes uint64
	bw    float64
}

type streamHistory struct {
	points *ring[StreamPoint]
	ended  time.Time // zero while live
	after  int       // samples taken since the stream ended
}

// Start applies the defaults, takes a first sample and starts the sampler.
func (c *Collector) Start() error {
	if c.Source == nil {
		return errors.New("stats: source is required")
	}
	if c.Interval < 0 || c.HistorySize < 0 || c.MaxStreamLabels < 0 || c.MaxHistories < 0 {
		return errors.New("stats: interval and sizes must not be negative")
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.HistorySize == 0 {
		c.HistorySize = DefaultHistorySize
	}
	if c.MaxStreamLabels == 0 {
		c.MaxStreamLabels = DefaultMaxStreamLabels
	}
	if c.MaxHistories == 0 {
		c.MaxHistories = DefaultMaxHistories
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.started = c.Now()
	c.httpBytes = make(map[string]uint64)
	c.streamOut = make(map[string]*streamRate)
	c.streamHist = make(map[string]*streamHistory)
	c.serverHist = newRing[ServerPoint](c.HistorySize)
	if err := c.initMetrics(); err != nil {
		return err
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.sample()
	c.wg.Add(1)
	go c.run()
	return nil
}

// Close stops the sampler.
func (c *Collector) Close() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	c.wg.Wait()
}

func (c *Collector) run() {
	defer c.wg.Done()
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.sample()
		}
	}
}

// ObserveHLS records a finished HLS request; its signature is hls.Server.OnRequest's.
// The Observe methods do nothing before Start.
func (c *Collector) ObserveHLS(channel, kind string, status int, bytes int64, elapsed time.Duration) {
	c.observeHTTP(0, ProtoHLS, channel, kind, status, bytes, elapsed)
}

// ObserveDASH records a finished DASH request; its signature is dash.Server.OnRequest's.
func (c *Collector) ObserveDASH(channel, kind string, status int, bytes int64, elapsed time.Duration) {
	c.observeHTTP(1, ProtoDASH, channel, kind, status, bytes, elapsed)
}

func (c *Collector) observeHTTP(i int, proto, channel, kind string, status int, bytes int64, elapsed time.Duration) {
	if c.metrics == nil {
		return // not started
	}
	c.metrics.observeRequest(proto, kind, status, elapsed)
	if bytes <= 0 {
		return
	}
	c.httpTotal[i].Add(uint64(bytes))
	if channel != "" && status >= 200 && status < 300 {
		c.httpMu.Lock()
		c.httpBytes[channel] += uint64(bytes)
		c.httpMu.Unlock()
	}
}

// ObserveTSSegment records the time an MPEG-TS segment took to mux; its signature is
// hls.Server.OnSegment's.
func (c *Collector) ObserveTSSegment(_ string, elapsed time.Duration) {
	if c.metrics != nil {
		c.metrics.observeSegment("ts", elapsed)
	}
}

// ObserveCMAFSegment records how long after its media ended a CMAF segment was published
// (see source.CMAFBuildTime).
func (c *Collector) ObserveCMAFSegment(_ string, elapsed time.Duration) {
	if c.metrics != nil {
		c.metrics.observeSegment("cmaf", elapsed)
	}
}

// Viewers returns the viewers of a channel by protocol.
func (c *Collector) Viewers(channel string, rtmpPlayers int) Viewers {
	v := Viewers{RTMP: rtmpPlayers}
	if c.HLS != nil {
		v.HLS = c.HLS.Count(channel)
	}
	if c.DASH != nil {
		v.DASH = c.DASH.Count(channel)
	}
	if c.ChatClients != nil {
		v.Chat = c.ChatClients(channel)
	}
	v.Total = v.RTMP + v.HLS + v.DASH
	return v
}

// Viewers counts the viewers of a stream (or of the server) by protocol. Total is
// RTMP+HLS+DASH: chat connections come from watch pages whose players are already
// counted over HLS.
type Viewers struct {
	RTMP  int `json:"rtmp"`
	HLS   int `json:"hls"`
	DASH  int `json:"dash"`
	Chat  int `json:"chat"`
	Total int `json:"total"`
}

// streamBytesOut returns a stream's bytes sent: RTMP (from the source) plus HTTP.
func (c *Collector) streamBytesOut(st *Stream) uint64 {
	c.httpMu.Lock()
	n := c.httpBytes[st.Name]
	c.httpMu.Unlock()
	return st.BytesOut + n
}

func (c *Collector) totalBytesOut(snap *Snapshot) uint64 {
	return snap.BytesOut + c.httpTotal[0].Load() + c.httpTotal[1].Load()
}

// sample measures the rates and appends a history point.
func (c *Collector) sample() {
	now := c.Now()
	snap := c.Source.Snapshot()
	cpu, rss, procOK := readProc()
	cur := sample{at: now, in: snap.BytesIn, out: c.totalBytesOut(&snap), cpu: cpu, haveCPU: procOK}

	live := make(map[string]bool, len(snap.Streams))
	for i := range snap.Streams {
		live[snap.Streams[i].Name] = true
	}
	c.httpMu.Lock()
	for ch := range c.httpBytes {
		if !live[ch] {
			delete(c.httpBytes, ch)
		}
	}
	c.httpMu.Unlock()
	if c.HLS != nil {
		c.HLS.Sweep()
	}
	if c.DASH != nil {
		c.DASH.Sweep()
	}

	// Per-stream values computed outside c.mu (they lock the sessions and httpMu).
	type streamNow struct {
		out     uint64
		viewers int
		st      *Stream
	}
	streams := make([]streamNow, len(snap.Streams))
	totalViewers := 0
	for i := range snap.Streams {
		st := &snap.Streams[i]
		v := c.Viewers(st.Name, st.Readers[ProtoRTMP]).Total
		streams[i] = streamNow{out: c.streamBytesOut(st), viewers: v, st: st}
		totalViewers += v
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	dt := 0.0
	if c.haveLast {
		dt = now.Sub(c.last.at).Seconds()
	}
	if dt > 0 {
		c.bwIn = rate(c.last.in, cur.in, dt)
		c.bwOut = rate(c.last.out, cur.out, dt)
		if cur.haveCPU && c.last.haveCPU {
			c.cpuPercent = max(0, (cur.cpu-c.last.cpu)/dt*100)
		}
	}
	c.rss = rss
	for _, sn := range streams {
		r := c.streamOut[sn.st.Name]
		if r == nil {
			r = &streamRate{bytes: sn.out}
			c.streamOut[sn.st.Name] = r
		} else if dt > 0 {
			r.bw = rate(r.bytes, sn.out, dt)
			r.bytes = sn.out
		}
	}
	for name := range c.streamOut {
		if !live[name] {
			delete(c.streamOut, name)
		}
	}
	c.last, c.haveLast = cur, true

	c.serverHist.push(ServerPoint{
		Time: now, CPUPercent: c.cpuPercent, RSSBytes: c.rss, BandwidthIn: c.bwIn, BandwidthOut: c.bwOut,
		Streams: len(snap.Streams), Viewers: totalViewers,
	})
	for _, sn := range streams {
		h := c.streamHist[sn.st.Name]
		if h == nil {
			if len(c.streamHist) >= c.MaxHistories && !c.evictHistoryLocked() {
				continue
			}
			h = &streamHistory{points: newRing[StreamPoint](c.HistorySize)}
			c.streamHist[sn.st.Name] = h
		}
		h.ended, h.after = time.Time{}, 0
		h.points.push(StreamPoint{
			Time:             now,
			BitrateIn:        sn.st.VideoBitrate + sn.st.AudioBitrate,
			FPS:              sn.st.FPS,
			KeyframeInterval: sn.st.KeyframeInterval.Seconds(),
			Viewers:          sn.viewers,
		})
	}
	for name, h := range c.streamHist {
		if live[name] {
			continue
		}
		if h.ended.IsZero() {
			h.ended = now
		}
		if h.after++; h.after > c.HistorySize {
			delete(c.streamHist, name)
		}
	}
}

// evictHistoryLocked drops the history of the stream that ended first; it reports false
// when every kept history is of a live stream.
func (c *Collector) evictHistoryLocked() bool {
	var oldest string
	var at time.Time
	for name, h := range c.streamHist {
		if !h.ended.IsZero() && (oldest == "" || h.ended.Before(at)) {
			oldest, at = name, h.ended
		}
	}
	if oldest == "" {
		return false
	}
	delete(c.streamHist, oldest)
	return true
}

func rate(prev, cur uint64, dt float64) float64 {
	if cur < prev {
		return 0
	}
	return float64(cur-prev) * 8 / dt
}

// rates returns the sampled server bit rates, CPU and RSS.
func (c *Collector) rates() (bwIn, bwOut, cpu float64, rss uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bwIn, c.bwOut, c.cpuPercent, c.rss
}

// streamBandwidthOut returns the sampled outgoing bit rate of a stream.
func (c *Collector) streamBandwidthOut(name string) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.streamOut[name]; r != nil {
		return r.bw
	}
	return 0
}

// Report is the JSON of /api/v1/stats.
type Report struct {
	Server  ServerStats   `json:"server"`
	Streams []StreamStats `json:"streams"`
}

// ServerStats describes the whole server.
type ServerStats struct {
	Version       string      `json:"version"`
	StartedAt     time.Time   `json:"started_at"`
	UptimeSeconds float64     `json:"uptime_seconds"`
	Connections   Connections `json:"connections"`
	// BytesIn and BytesOut count since start; BandwidthIn and BandwidthOut are bits/s.
	BytesIn      uint64  `json:"bytes_in"`
	BytesOut     uint64  `json:"bytes_out"`
	BandwidthIn  float64 `json:"bw_in"`
	BandwidthOut float64 `json:"bw_out"`
	Streams      int     `json:"streams"`
	Viewers      Viewers `json:"viewers"`
	// CPUPercent is the process's CPU use over the last Interval (100 = one core).
	CPUPercent float64 `json:"cpu_percent"`
	RSSBytes   uint64  `json:"rss_bytes"`
	Goroutines int     `json:"goroutines"`
	// Dropped counts the units dropped by slow readers since start, by reader kind.
	Dropped map[string]uint64 `json:"dropped"`
}

// Connections counts the open connections: RTMP by state, HLS and DASH viewer sessions,
// chat WebSockets.
type Connections struct {
	RTMPHandshake  int `json:"rtmp_handshake"`
	RTMPPublishing int `json:"rtmp_publishing"`
	RTMPPlaying    int `json:"rtmp_playing"`
	HLS            int `json:"hls"`
	DASH           int `json:"dash"`
	Chat           int `json:"chat"`
}

// StreamStats describes one live stream: /stat's numbers, viewers by protocol, and the
// publisher's frame rate and keyframe interval. Rates are bits/s.
type StreamStats struct {
	Name             string            `json:"name"`
	StartedAt        time.Time         `json:"started_at"`
	TimeMillis       int64             `json:"time"`
	Publishing       bool              `json:"publishing"`
	Relay            bool              `json:"relay"`
	BandwidthIn      float64           `json:"bw_in"`
	BandwidthVideo   float64           `json:"bw_video"`
	BandwidthAudio   float64           `json:"bw_audio"`
	BandwidthOut     float64           `json:"bw_out"`
	BytesIn          uint64            `json:"bytes_in"`
	BytesOut         uint64            `json:"bytes_out"`
	FPS              float64           `json:"fps"`
	KeyframeInterval float64           `json:"keyframe_interval"`
	Video            *VideoMeta        `json:"video,omitempty"`
	Audio            *AudioMeta        `json:"audio,omitempty"`
	Viewers          Viewers           `json:"viewers"`
	Dropped          map[string]uint64 `json:"dropped"`
}

// Report returns the statistics of the server and of every live stream.
func (c *Collector) Report() Report {
	snap := c.Source.Snapshot()
	now := c.Now()
	bwIn, bwOut, cpu, rss := c.rates()
	rep := Report{
		Server: ServerStats{
			Version:       c.Version,
			StartedAt:     c.started.UTC(),
			UptimeSeconds: round1(now.Sub(c.started).Seconds()),
			BytesIn:       snap.BytesIn,
			BytesOut:      c.totalBytesOut(&snap),
			BandwidthIn:   round1(bwIn),
			BandwidthOut:  round1(bwOut),
			Streams:       len(snap.Streams),
			CPUPercent:    round1(cpu),
			RSSBytes:      rss,
			Goroutines:    runtime.NumGoroutine(),
			Dropped:       snap.Dropped,
		},
		Streams: make([]StreamStats, 0, len(snap.Streams)),
	}
	if rep.Server.Dropped == nil {
		rep.Server.Dropped = map[string]uint64{}
	}
	rep.Server.Connections = c.connections(&snap)
	for i := range snap.Streams {
		ss := c.streamStats(&snap.Streams[i], now)
		rep.Streams = append(rep.Streams, ss)
		v := &rep.Server.Viewers
		v.RTMP += ss.Viewers.RTMP
		v.HLS += ss.Viewers.HLS
		v.DASH += ss.Viewers.DASH
		v.Chat += ss.Viewers.Chat
		v.Total += ss.Viewers.Total
	}
	return rep
}

// StreamReport returns the statistics of one live stream.
func (c *Collector) StreamReport(name string) (StreamStats, bool) {
	snap := c.Source.Snapshot()
	for i := range snap.Streams {
		if snap.Streams[i].Name == name {
			return c.streamStats(&snap.Streams[i], c.Now()), true
		}
	}
	return StreamStats{}, false
}

func (c *Collector) streamStats(st *Stream, now time.Time) StreamStats {
	ss := StreamStats{
		Name:             st.Name,
		StartedAt:        st.StartedAt.UTC(),
		TimeMillis:       now.Sub(st.StartedAt).Milliseconds(),
		Publishing:       st.Publishing,
		Relay:            st.Relay,
		BandwidthIn:      round1(st.VideoBitrate + st.AudioBitrate),
		BandwidthVideo:   round1(st.VideoBitrate),
		BandwidthAudio:   round1(st.AudioBitrate),
		BandwidthOut:     round1(c.streamBandwidthOut(st.Name)),
		BytesIn:          st.BytesIn,
		BytesOut:         c.streamBytesOut(st),
		FPS:              round1(st.FPS),
		KeyframeInterval: round1(st.KeyframeInterval.Seconds()),
		Video:            st.Video,
		Audio:            st.Audio,
		Viewers:          c.Viewers(st.Name, st.Readers[ProtoRTMP]),
		Dropped:          st.Dropped,
	}
	if ss.Dropped == nil {
		ss.Dropped = map[string]uint64{}
	}
	return ss
}

func (c *Collector) connections(snap *Snapshot) Connections {
	var cn Connections
	for _, cc := range snap.Conns {
		switch cc.State {
		case StatePublishing:
			cn.RTMPPublishing++
		case StatePlaying:
			cn.RTMPPlaying++
		default:
			cn.RTMPHandshake++
		}
	}
	if c.HLS != nil {
		cn.HLS = sumCounts(c.HLS.Counts())
	}
	if c.DASH != nil {
		cn.DASH = sumCounts(c.DASH.Counts())
	}
	switch {
	case c.ChatConnections != nil:
		cn.Chat = c.ChatConnections()
	case c.ChatClients != nil:
		for i := range snap.Streams {
			cn.Chat += c.ChatClients(snap.Streams[i].Name)
		}
	}
	return cn
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func round1(v float64) float64 {
	return float64(int64(v*10+0.5)) / 10
}

// StreamPoint is one history sample of a stream.
type StreamPoint struct {
	Time             time.Time
	BitrateIn        float64 // bits/s
	FPS              float64
	KeyframeInterval float64 // seconds
	Viewers          int
}

// ServerPoint is one history sample of the server.
type ServerPoint struct {
	Time         time.Time
	CPUPercent   float64
	RSSBytes     uint64
	BandwidthIn  float64 // bits/s
	BandwidthOut float64 // bits/s
	Streams      int
	Viewers      int
}

// ServerHistory returns the server's samples, oldest first.
func (c *Collector) ServerHistory() []ServerPoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.serverHist.items()
}

// StreamHistory returns a stream's samples, oldest first, and whether it has a history
// (it is live, or ended less than HistorySize samples ago).
func (c *Collector) StreamHistory(name string) ([]StreamPoint, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.streamHist[name]
	if h == nil {
		return nil, false
	}
	return h.points.items(), true
}

// ring keeps the last n items pushed.
type ring[T any] struct {
	buf  []T
	head int // index of the oldest item
	n    int
}

func newRing[T any](size int) *ring[T] { return &ring[T]{buf: make([]T, size)} }

func (r *ring[T]) push(v T) {
	if len(r.buf) == 0 {
		return
	}
	if r.n < len(r.buf) {
		r.buf[(r.head+r.n)%len(r.buf)] = v
		r.n++
		return
	}
	r.buf[r.head] = v
	r.head = (r.head + 1) % len(r.buf)
}

func (r *ring[T]) items() []T {
	out := make([]T, r.n)
	for i := range out {
		out[i] = r.buf[(r.head+i)%len(r.buf)]
	}
	return out
}

// sortedStreams returns the streams sorted by viewers (most first), then name.
func sortedStreams(streams []Stream, viewers map[string]int) []Stream {
	out := append([]Stream(nil), streams...)
	sort.Slice(out, func(i, j int) bool {
		vi, vj := viewers[out[i].Name], viewers[out[j].Name]
		if vi != vj {
			return vi > vj
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// pid is the process id shown by /stat.
var pid = os.Getpid()

var _ http.Handler = (*StatHandler)(nil)
