// Package transcode makes the adaptive bit rate ladder of live streams with ffmpeg.
//
// For each live stream it is asked to transcode, a Manager runs one ffmpeg child process
// that reads the stream from the hub as MPEG-TS on its stdin and writes every rendition
// of the ladder (720p, 480p, …, audio only: those smaller than the source) as MPEG-TS on
// its own pipe (fd 3, 4, …). Each rendition is published back into the hub as a derived
// stream named "{name}~{rendition}" (hub.SourceDerived: no live events, no recording),
// which the HLS and DASH servers serve like any stream. Timestamps are copied (-copyts)
// and key frames are forced where the source has them, so the renditions keep the
// source's timeline and GOPs.
//
// The child is supervised: restarted with a growing backoff when it dies, its stderr
// logged at Debug, killed (with its process group) when the stream ends or the Manager
// closes, and on Linux killed by the kernel if onair itself dies (PR_SET_PDEATHSIG). A
// hardware encoder that fails to start falls back to libx264.
package transcode

import (
	"errors"
	"log/slog"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/onair/onair/internal/hub"
)

// Manager runs the transcoders.
type Manager struct {
	// Hub is the registry the sources are read from and the renditions published to. Required.
	Hub *hub.Registry

	// FFmpeg is the ffmpeg binary: a path or a name looked up in PATH. Default: "ffmpeg".
	FFmpeg string

	// Ladder lists the renditions. Default: DefaultLadder.
	Ladder []Rung

	// Encoder is the H.264 encoder (EncoderX264, EncoderNVENC, EncoderVAAPI). Default: libx264.
	Encoder string

	// Preset is the encoder preset. Default: "veryfast".
	Preset string

	// VAAPIDevice is the render node for h264_vaapi. Default: /dev/dri/renderD128.
	VAAPIDevice string

	// RestartMin and RestartMax bound the backoff between restarts of a child that died.
	// Defaults: 1 s and 30 s.
	RestartMin time.Duration
	RestartMax time.Duration

	// Logger receives lifecycle logs; ffmpeg's stderr at Debug. Default: slog.Default().
	Logger *slog.Logger

	path      string // resolved ffmpeg, "" when missing
	lookupErr error

	mu     sync.Mutex
	jobs   map[string]*job
	closed bool
	wg     sync.WaitGroup
}

// Start applies defaults and looks ffmpeg up. A missing ffmpeg is not an error:
// Available then reports false and Transcode does nothing.
func (m *Manager) Start() error {
	if m.Hub == nil {
		return errors.New("transcode: hub is required")
	}
	if m.Logger == nil {
		m.Logger = slog.Default()
	}
	if m.FFmpeg == "" {
		m.FFmpeg = "ffmpeg"
	}
	if m.Ladder == nil {
		m.Ladder = DefaultLadder
	}
	if m.Encoder == "" {
		m.Encoder = EncoderX264
	}
	switch m.Encoder {
	case EncoderX264, EncoderNVENC, EncoderVAAPI:
	default:
		return errors.New("transcode: encoder must be libx264, h264_nvenc or h264_vaapi")
	}
	if m.Preset == "" {
		m.Preset = "veryfast"
	}
	if strings.HasPrefix(m.Preset, "-") {
		return errors.New("transcode: bad preset")
	}
	if m.VAAPIDevice == "" {
		m.VAAPIDevice = "/dev/dri/renderD128"
	}
	if m.RestartMin <= 0 {
		m.RestartMin = time.Second
	}
	if m.RestartMax < m.RestartMin {
		m.RestartMax = max(30*time.Second, m.RestartMin)
	}
	seen := make(map[string]bool)
	for _, r := range m.Ladder {
		if r.Name == "" || strings.ContainsAny(r.Name, "/~?#") || seen[r.Name] {
			return errors.New("transcode: rendition names must be unique, non-empty, without / ~ ? #")
		}
		seen[r.Name] = true
	}
	m.path, m.lookupErr = exec.LookPath(m.FFmpeg)
	m.jobs = make(map[string]*job)
	return nil
}

// Available reports whether ffmpeg was found: without it streams are passthrough only.
func (m *Manager) Available() bool { return m.path != "" }

// LookupError says why ffmpeg is not available (nil when it is).
func (m *Manager) LookupError() error { return m.lookupErr }

// Transcode starts transcoding the live stream name, unless it is already being
// transcoded, ffmpeg is missing or the Manager is closed. The transcoder stops by itself
// when the stream ends. It never blocks.
func (m *Manager) Transcode(name string) {
	if !m.Available() || strings.Contains(name, hub.DerivedSeparator) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.jobs[name] != nil {
		return
	}
	j := newJob(m, name)
	m.jobs[name] = j
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		j.run()
		m.mu.Lock()
		if m.jobs[name] == j {
			delete(m.jobs, name)
		}
		m.mu.Unlock()
	}()
}

// Stop stops transcoding stream name (its renditions end).
func (m *Manager) Stop(name string) {
	m.mu.Lock()
	j := m.jobs[name]
	m.mu.Unlock()
	if j != nil {
		j.stop()
		<-j.done
	}
}

// Close stops every transcoder and waits for their children to exit.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	all := make([]*job, 0, len(m.jobs))
	for _, j := range m.jobs {
		all = append(all, j)
	}
	m.mu.Unlock()
	for _, j := range all {
		j.stop()
	}
	m.wg.Wait()
}

// Rendition is one rendition of a live stream that is being published.
type Rendition struct {
	Name   string // "720p", "audio"
	Stream string // its hub stream name
	Width  int    // 0 for audio only
	Height int
	Kbps   int // the configured bit rate (video, or audio for audio only)
}

// Renditions returns the renditions of stream name that are live in the hub now, video
// from the largest, audio only last.
func (m *Manager) Renditions(name string) []Rendition {
	m.mu.Lock()
	j := m.jobs[name]
	m.mu.Unlock()
	if j == nil {
		return nil
	}
	var out []Rendition
	for _, r := range j.currentPlan().rungs {
		hs := hub.DerivedName(name, r.Name)
		if st := m.Hub.Stream(hs); st == nil || st.Ended() {
			continue
		}
		out = append(out, Rendition{Name: r.Name, Stream: hs, Width: r.width, Height: r.height, Kbps: r.kbps})
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Height > out[b].Height })
	return out
}

// Status describes a running transcoder.
type Status struct {
	Channel    string
	PID        int      // 0 while no child runs (between restarts)
	CPUPercent float64  // of one core, since the previous Status call (-1: unknown)
	Renditions []string // rendition names
	Encoder    string   // the encoder in use (after a fallback: libx264)
	Restarts   int      // children that died and were restarted
	Uptime     time.Duration
}

// Status returns the running transcoders sorted by channel.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	all := make([]*job, 0, len(m.jobs))
	for _, j := range m.jobs {
		all = append(all, j)
	}
	m.mu.Unlock()
	out := make([]Status, 0, len(all))
	for _, j := range all {
		out = append(out, j.status())
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Channel < out[b].Channel })
	return out
}
