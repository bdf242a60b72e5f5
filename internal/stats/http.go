package stats

import (
	"encoding/json"
	"net/http"
)

// StatsHandler serves GET /api/v1/stats: the Report (server and every live stream) as
// JSON. It shows no client address.
type StatsHandler struct {
	// Collector provides the numbers. Required.
	Collector *Collector
}

// ServeHTTP implements http.Handler.
func (h *StatsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	writeJSON(w, r, h.Collector.Report())
}

// HistoryHandler serves GET /api/v1/stats/history: the server's samples (CPU, RSS, bit
// rates, streams, viewers) over the last HistorySize intervals, as columns for graphs.
type HistoryHandler struct {
	// Collector provides the samples. Required.
	Collector *Collector
}

// ServerHistory is the JSON of the server's history: one column per measure, aligned on
// Time (unix seconds). Rates are bits/s.
type ServerHistory struct {
	IntervalSeconds float64   `json:"interval_seconds"`
	Time            []int64   `json:"time"`
	CPUPercent      []float64 `json:"cpu_percent"`
	RSSBytes        []uint64  `json:"rss_bytes"`
	BandwidthIn     []float64 `json:"bw_in"`
	BandwidthOut    []float64 `json:"bw_out"`
	Streams         []int     `json:"streams"`
	Viewers         []int     `json:"viewers"`
}

// ServeHTTP implements http.Handler.
func (h *HistoryHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	pts := h.Collector.ServerHistory()
	out := ServerHistory{
		IntervalSeconds: h.Collector.Interval.Seconds(),
		Time:            make([]int64, len(pts)),
		CPUPercent:      make([]float64, len(pts)),
		RSSBytes:        make([]uint64, len(pts)),
		BandwidthIn:     make([]float64, len(pts)),
		BandwidthOut:    make([]float64, len(pts)),
		Streams:         make([]int, len(pts)),
		Viewers:         make([]int, len(pts)),
	}
	for i, p := range pts {
		out.Time[i] = p.Time.Unix()
		out.CPUPercent[i] = round1(p.CPUPercent)
		out.RSSBytes[i] = p.RSSBytes
		out.BandwidthIn[i] = round1(p.BandwidthIn)
		out.BandwidthOut[i] = round1(p.BandwidthOut)
		out.Streams[i] = p.Streams
		out.Viewers[i] = p.Viewers
	}
	writeJSON(w, r, out)
}

// StreamHistoryHandler serves GET /api/v1/stats/streams/{name}/history: a stream's
// samples (bit rate in, fps, keyframe interval, viewers) while it is live and for
// HistorySize intervals after it ended, as columns for graphs. 404 otherwise.
type StreamHistoryHandler struct {
	// Collector provides the samples. Required.
	Collector *Collector
	// Name returns the stream name of a request. Default: r.PathValue("name").
	Name func(r *http.Request) string
}

// StreamHistory is the JSON of a stream's history: one column per measure, aligned on
// Time (unix seconds). BitrateIn is bits/s, KeyframeInterval seconds.
type StreamHistory struct {
	Name             string    `json:"name"`
	Live             bool      `json:"live"`
	IntervalSeconds  float64   `json:"interval_seconds"`
	Time             []int64   `json:"time"`
	BitrateIn        []float64 `json:"bitrate_in"`
	FPS              []float64 `json:"fps"`
	KeyframeInterval []float64 `json:"keyframe_interval"`
	Viewers          []int     `json:"viewers"`
}

// ServeHTTP implements http.Handler.
func (h *StreamHistoryHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	name := ""
	if h.Name != nil {
		name = h.Name(r)
	} else {
		name = r.PathValue("name")
	}
	pts, ok := h.Collector.StreamHistory(name)
	if !ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"No statistics for this stream."}}` + "\n"))
		return
	}
	_, live := h.Collector.StreamReport(name)
	out := StreamHistory{
		Name:             name,
		Live:             live,
		IntervalSeconds:  h.Collector.Interval.Seconds(),
		Time:             make([]int64, len(pts)),
		BitrateIn:        make([]float64, len(pts)),
		FPS:              make([]float64, len(pts)),
		KeyframeInterval: make([]float64, len(pts)),
		Viewers:          make([]int, len(pts)),
	}
	for i, p := range pts {
		out.Time[i] = p.Time.Unix()
		out.BitrateIn[i] = round1(p.BitrateIn)
		out.FPS[i] = round1(p.FPS)
		out.KeyframeInterval[i] = round1(p.KeyframeInterval)
		out.Viewers[i] = p.Viewers
	}
	writeJSON(w, r, out)
}

func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusMethodNotAllowed)
	_, _ = w.Write([]byte(`{"error":{"code":"invalid","message":"Method not allowed."}}` + "\n"))
	return false
}

func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}
