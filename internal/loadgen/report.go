package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// Client kinds.
const (
	KindPublisher = "publish"
	KindRTMP      = "rtmp"
	KindHLS       = "hls-ts"
	KindLLHLS     = "ll-hls"
)

// ClientResult is what one client measured. Times are milliseconds, -1 when not reached.
type ClientResult struct {
	Kind   string `json:"kind"`
	ID     int    `json:"id"`
	Stream string `json:"stream"` // play name (publishers: the index's play name or "#i")
	// ConnectMS is the RTMP setup time (dial, handshake, connect, publish/play).
	ConnectMS float64 `json:"connect_ms"`
	// TTFFMS is the time from the client's start to its first video frame (RTMP players),
	// first media segment or part downloaded (HLS), first frame sent (publishers).
	TTFFMS float64 `json:"ttff_ms"`
	// MediaS is the media time received (sent, for publishers) since the first frame,
	// WallS the wall time since then; KeepUp = MediaS / WallS.
	MediaS float64 `json:"media_s"`
	WallS  float64 `json:"wall_s"`
	KeepUp float64 `json:"keep_up"`
	// KeptUp: no error, and WallS - MediaS <= MaxLag (HLS: + target duration); publishers:
	// never later than MaxLag behind the real-time schedule.
	KeptUp bool `json:"kept_up"`
	// LatencyP50MS / LatencyMaxMS (HLS): time a segment or part was first listed minus
	// the wall time its media ended (EXT-X-PROGRAM-DATE-TIME + duration).
	LatencyP50MS float64 `json:"latency_p50_ms,omitempty"`
	LatencyMaxMS float64 `json:"latency_max_ms,omitempty"`
	// LatencySamples counts the segments or parts measured.
	LatencySamples int `json:"latency_samples,omitempty"`
	// MaxLateMS (publishers): worst lateness of a send against the real-time schedule.
	MaxLateMS float64 `json:"max_late_ms,omitempty"`
	Frames    int     `json:"frames"` // video frames (HLS: segments or parts)
	Requests  int     `json:"requests,omitempty"`
	Bytes     int64   `json:"bytes"`
	Err       string  `json:"error,omitempty"`

	targetS float64
}

// fail records err unless the run was ending (then the error is the run's own doing).
func (r *ClientResult) fail(ctx context.Context, err error) {
	if ctx.Err() != nil || r.Err != "" {
		return
	}
	r.Err = err.Error()
}

// Summary aggregates the clients of one kind.
type Summary struct {
	Kind    string `json:"kind"`
	Clients int    `json:"clients"`
	KeptUp  int    `json:"kept_up"`
	Errors  int    `json:"errors"`
	// Started counts the clients that got media (sent it, for publishers).
	Started      int     `json:"started"`
	TTFFP50MS    float64 `json:"ttff_p50_ms"`
	TTFFP95MS    float64 `json:"ttff_p95_ms"`
	TTFFMaxMS    float64 `json:"ttff_max_ms"`
	KeepUpMin    float64 `json:"keep_up_min"`
	LatencyP50MS float64 `json:"latency_p50_ms,omitempty"`
	LatencyMaxMS float64 `json:"latency_max_ms,omitempty"`
	// LatencySamples counts the segments or parts whose latency was measured.
	LatencySamples int     `json:"latency_samples,omitempty"`
	Mbps           float64 `json:"mbps"`
	FirstError     string  `json:"first_error,omitempty"`
	MaxLateMS      float64 `json:"max_late_ms,omitempty"`
	ConnectP50MS   float64 `json:"connect_p50_ms"`
	RequestsTotal  int     `json:"requests,omitempty"`
}

// Report is the outcome of a run.
type Report struct {
	Start       time.Time      `json:"start"`
	DurationS   float64        `json:"duration_s"`
	ClipBitrate float64        `json:"clip_bitrate_bps"`
	ClipFPS     float64        `json:"clip_fps"`
	Summaries   []Summary      `json:"summaries"`
	Clients     []ClientResult `json:"clients"`
}

// AllKeptUp reports whether every client kept up without error.
func (r *Report) AllKeptUp() bool {
	for _, s := range r.Summaries {
		if s.KeptUp != s.Clients {
			return false
		}
	}
	return true
}

func (r *Report) summarize() {
	r.Summaries = nil
	for _, kind := range []string{KindPublisher, KindRTMP, KindHLS, KindLLHLS} {
		var s Summary
		var ttff, conn, lat []float64
		s.Kind, s.KeepUpMin = kind, math.Inf(1)
		for i := range r.Clients {
			c := &r.Clients[i]
			if c.Kind != kind {
				continue
			}
			s.Clients++
			if c.KeptUp {
				s.KeptUp++
			}
			if c.Err != "" {
				s.Errors++
				if s.FirstError == "" {
					s.FirstError = c.Err
				}
			}
			if c.TTFFMS >= 0 {
				s.Started++
				ttff = append(ttff, c.TTFFMS)
			}
			if c.ConnectMS > 0 {
				conn = append(conn, c.ConnectMS)
			}
			if c.WallS > 0 {
				s.KeepUpMin = min(s.KeepUpMin, c.KeepUp)
			}
			if c.LatencySamples > 0 {
				if len(lat) == 0 || c.LatencyMaxMS > s.LatencyMaxMS {
					s.LatencyMaxMS = c.LatencyMaxMS
				}
				lat = append(lat, c.LatencyP50MS)
				s.LatencySamples += c.LatencySamples
			}
			s.MaxLateMS = max(s.MaxLateMS, c.MaxLateMS)
			s.RequestsTotal += c.Requests
			s.Mbps += float64(c.Bytes) * 8 / 1e6 / r.DurationS
		}
		if s.Clients == 0 {
			continue
		}
		if math.IsInf(s.KeepUpMin, 1) {
			s.KeepUpMin = 0
		}
		s.TTFFP50MS, s.TTFFP95MS, s.TTFFMaxMS = percentile(ttff, 0.5), percentile(ttff, 0.95), percentile(ttff, 1)
		s.ConnectP50MS = percentile(conn, 0.5)
		s.LatencyP50MS = percentile(lat, 0.5)
		r.Summaries = append(r.Summaries, s)
	}
}

// WriteTable writes the summaries as an aligned text table, then the first error of each
// kind.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "kind\tclients\tkept up\terrors\tttff p50 ms\tttff p95 ms\tttff max ms\tkeep-up min\tlatency p50 ms\tlatency max ms\tMbit/s\t\n")
	for _, s := range r.Summaries {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.3f\t%.0f\t%.0f\t%.1f\t\n",
			s.Kind, s.Clients, s.KeptUp, s.Errors, s.TTFFP50MS, s.TTFFP95MS, s.TTFFMaxMS,
			s.KeepUpMin, s.LatencyP50MS, s.LatencyMaxMS, s.Mbps)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range r.Summaries {
		if s.FirstError != "" {
			if _, err := fmt.Fprintf(w, "%s: first error: %s\n", s.Kind, s.FirstError); err != nil {
				return err
			}
		}
	}
	return nil
}

// WriteJSON writes the report, every client included, as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// liveCounters feed the progress lines.
type liveCounters struct {
	active  atomic.Int64 // connected / polling
	playing atomic.Int64 // got media
	bytes   atomic.Int64
}

func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
