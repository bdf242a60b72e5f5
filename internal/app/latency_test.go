package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/testutil"
)

// The latency benchmark (docs/latency.md): opt-in with ONAIR_LATENCY=1, since it plays
// each format for about 45 s. It publishes a picture whose top rows carry, as a bar code,
// the wall clock at the moment the test made the frame, and reads the bar code back in
// headless Chromium from each frame the page presents. Glass-to-glass latency is the
// presentation time minus that stamp: capture, x264, RTMP, the server's segmenter,
// HTTP, the player's buffer and the decoder are all inside it, and nothing in it is
// derived from media timestamps or from the server's own clock mapping. Both clocks are
// this machine's.

const (
	clockWidth  = 320
	clockHeight = 180
	clockFPS    = 30
	clockBits   = 40 // milliseconds since the epoch, modulo 2^40 (34 years)
	clockBlock  = 16 // pixels: the code's blocks are aligned to H.264 macroblocks
	clockCols   = clockWidth / clockBlock
	clockRows   = clockBits / clockCols // rows of data; as many rows of its complement follow
)

// clockFrame paints one gray (8-bit luma) frame: the stamp in the top clockRows rows of
// blocks, MSB first, its complement in the next clockRows, and below a bar that moves
// so the encoder has a changing picture.
func clockFrame(buf []byte, stamp int64, n int) {
	for i := range buf {
		buf[i] = 96
	}
	bar := (n * 4) % clockWidth
	for y := clockRows * 2 * clockBlock; y < clockHeight; y++ {
		for x := bar; x < bar+8 && x < clockWidth; x++ {
			buf[y*clockWidth+x] = 230
		}
	}
	v := uint64(stamp) & (1<<clockBits - 1)
	for i := range clockBits {
		bit := v>>(clockBits-1-i)&1 == 1
		row, col := i/clockCols, i%clockCols
		for _, r := range []struct {
			row int
			on  bool
		}{{row, bit}, {clockRows + row, !bit}} {
			c := byte(0)
			if r.on {
				c = 255
			}
			for y := r.row * clockBlock; y < (r.row+1)*clockBlock; y++ {
				for x := col * clockBlock; x < (col+1)*clockBlock; x++ {
					buf[y*clockWidth+x] = c
				}
			}
		}
	}
}

// clockPublisher runs ffmpeg publishing frames that the test makes in real time, each
// stamped with time.Now() when it is made, and a tone made with them (1/clockFPS s of it
// per frame), so that audio and video timestamps come from one clock as from a capture
// card. (A tone from lavfi with -re would start on ffmpeg's clock, a few hundred ms after
// the first frame, and FLV interleaving would hold every frame back by that much.)
type clockPublisher struct {
	cmd    *exec.Cmd
	out    *testutil.LockedBuffer
	wg     sync.WaitGroup
	frames int
}

const clockSampleRate = 48000

func startClockPublisher(t *testing.T, url string, audio bool) *clockPublisher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &clockPublisher{out: testutil.NewLockedBuffer()}
	args := []string{"-hide_banner", "-loglevel", "error",
		"-f", "rawvideo", "-pix_fmt", "gray", "-video_size", fmt.Sprintf("%dx%d", clockWidth, clockHeight),
		"-framerate", fmt.Sprint(clockFPS), "-i", "pipe:0"}
	var audioR, audioW *os.File
	if audio {
		var err error
		audioR, audioW, err = os.Pipe()
		require.NoError(t, err)
		args = append(args, "-f", "s16le", "-ar", fmt.Sprint(clockSampleRate), "-ac", "1", "-i", "pipe:3",
			"-map", "0:v", "-map", "1:a", "-c:a", "aac", "-b:a", "64k")
	}
	args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
		"-g", fmt.Sprint(clockFPS), "-pix_fmt", "yuv420p", "-f", "flv", url)
	p.cmd = exec.CommandContext(ctx, "ffmpeg", args...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	p.cmd.WaitDelay = 2 * time.Second
	if audioR != nil {
		p.cmd.ExtraFiles = []*os.File{audioR} // fd 3
	}
	stdin, err := p.cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	if audioR != nil {
		audioR.Close() // the child has it
	}
	// Separate writers: ffmpeg probes one input after the other, so one writer for both
	// pipes would block on the one ffmpeg is not reading yet.
	begin := time.Now()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer stdin.Close()
		p.frames = writeClockFrames(ctx, begin, stdin)
	}()
	if audioW != nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer audioW.Close()
			writeClockTone(ctx, begin, audioW)
		}()
	}
	t.Cleanup(func() {
		cancel()
		p.wg.Wait()
		_ = p.cmd.Wait()
		t.Logf("clock publisher: %d frames", p.frames)
	})
	return p
}

// writeClockFrames writes one frame per 1/clockFPS s of wall clock from start until ctx
// ends or the pipe breaks, and returns how many it wrote. A late frame is still written,
// so the frame count (ffmpeg's timestamps) keeps pace with the wall clock.
func writeClockFrames(ctx context.Context, start time.Time, w io.Writer) int {
	buf := make([]byte, clockWidth*clockHeight)
	for n := 0; ; n++ {
		if !sleepUntil(ctx, start.Add(time.Duration(n)*time.Second/clockFPS)) {
			return n
		}
		clockFrame(buf, time.Now().UnixMilli(), n)
		if _, err := w.Write(buf); err != nil {
			return n
		}
	}
}

// writeClockTone writes a 440 Hz tone (s16le, mono) in real time from start, in the
// same 1/clockFPS s steps as the frames, until ctx ends or the pipe breaks.
func writeClockTone(ctx context.Context, start time.Time, w io.Writer) {
	const samples = clockSampleRate / clockFPS
	pcm := make([]byte, 2*samples)
	for n := 0; ; n++ {
		if !sleepUntil(ctx, start.Add(time.Duration(n)*time.Second/clockFPS)) {
			return
		}
		for i := range samples {
			v := int16(8000 * math.Sin(2*math.Pi*440*float64(n*samples+i)/clockSampleRate))
			pcm[2*i], pcm[2*i+1] = byte(v), byte(uint16(v)>>8)
		}
		if _, err := w.Write(pcm); err != nil {
			return
		}
	}
}

// sleepUntil waits until t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// latencyProbeJS starts sampling in the page. For each presented frame
// (requestVideoFrameCallback) it draws the frame, decodes the stamp and records
// presentation wall time minus stamp; every 250 ms it records the player's own latency
// figure, the latency by EXT-X-PROGRAM-DATE-TIME (hls.js playingDate) and the playback
// rate. window.__latency.reset() clears what was recorded.
const latencyProbeJS = `(() => {
  const W = 320, H = 180, BITS = 40, BLOCK = 16, COLS = W / BLOCK, ROWS = BITS / COLS;
  const MOD = 2 ** BITS;
  const v = window.onairPlayer.video;
  const c = document.createElement('canvas');
  c.width = W; c.height = H;
  const g = c.getContext('2d', { willReadFrequently: true });
  const L = window.__latency = { g2g: [], player: [], target: [], pdt: [], rate: [], bad: 0, stalls: 0,
    reset() { this.g2g = []; this.player = []; this.target = []; this.pdt = []; this.rate = []; this.bad = 0; this.stalls = 0; } };
  v.addEventListener('waiting', () => { L.stalls++; });
  function luma(px, x, y) {
    let s = 0;
    for (let dy = -3; dy <= 3; dy++) { for (let dx = -3; dx <= 3; dx++) { s += px[((y + dy) * W + x + dx) * 4]; } }
    return s / 49;
  }
  function decode(px) {
    let val = 0;
    for (let i = 0; i < BITS; i++) {
      const row = Math.floor(i / COLS), col = i % COLS, x = col * BLOCK + BLOCK / 2;
      const a = luma(px, x, row * BLOCK + BLOCK / 2), b = luma(px, x, (ROWS + row) * BLOCK + BLOCK / 2);
      if ((a > 128) === (b > 128) || Math.abs(a - b) < 100) { return -1; }
      val = val * 2 + (a > 128 ? 1 : 0);
    }
    return val;
  }
  function onFrame(now, meta) {
    if (v.videoWidth === W && v.videoHeight === H) {
      g.drawImage(v, 0, 0);
      const stamp = decode(g.getImageData(0, 0, W, ROWS * 2 * BLOCK).data);
      const shown = performance.timeOrigin + meta.expectedDisplayTime;
      if (stamp < 0) { L.bad++; } else { L.g2g.push(((Math.round(shown) - stamp) % MOD + MOD) % MOD); }
    }
    v.requestVideoFrameCallback(onFrame);
  }
  v.requestVideoFrameCallback(onFrame);
  setInterval(() => {
    const p = window.onairPlayer;
    if (v.paused) { return; }
    const l = p.latency();
    if (isFinite(l) && l > 0) { L.player.push(Math.round(l * 1000)); }
    const tl = p.hls ? p.hls.targetLatency : p.dash ? p.dash.getTargetLiveDelay() : NaN;
    if (isFinite(tl) && tl > 0) { L.target.push(Math.round(tl * 1000)); }
    const d = p.hls && p.hls.playingDate;
    if (d) { L.pdt.push(Date.now() - d.getTime()); }
    L.rate.push(v.playbackRate);
  }, 250);
  return true;
})()`

// latencySamples is what the page recorded, in milliseconds.
type latencySamples struct {
	G2G    []float64 `json:"g2g"`
	Player []float64 `json:"player"`
	Target []float64 `json:"target"`
	PDT    []float64 `json:"pdt"`
	Rate   []float64 `json:"rate"`
	Bad    int       `json:"bad"`
	Stalls int       `json:"stalls"`
}

// latencyResult is one format's measurement.
type latencyResult struct {
	Format      string         `json:"format"`
	URL         string         `json:"url"`
	Target      time.Duration  `json:"target_ns"`
	Startup     time.Duration  `json:"startup_ns"` // navigation to currentTime > 0
	Frames      int            `json:"frames"`     // frames whose stamp was read
	Unread      int            `json:"unread"`     // frames whose stamp could not be read
	Stalls      int            `json:"stalls"`
	G2G         pctl           `json:"glass_to_glass"`
	Player      pctl           `json:"player"`         // hls.js latency / dash.js getCurrentLiveLatency()
	PlayerTgt   pctl           `json:"player_target"`  // hls.js targetLatency / dash.js getTargetLiveDelay()
	StartStalls int            `json:"startup_stalls"` // 'waiting' events before the measurement
	Restarts    int            `json:"restarts"`       // player restarts after errors, whole run
	Series      latencySamples `json:"series"`
	PDT         pctl           `json:"program_date_time"`
	MeanRate    float64        `json:"mean_playback_rate"`
	TargetMet   bool           `json:"target_met"`
}

// pctl summarizes samples in milliseconds.
type pctl struct {
	N   int     `json:"n"`
	Min float64 `json:"min"`
	P10 float64 `json:"p10"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	Max float64 `json:"max"`
}

func percentiles(s []float64) pctl {
	if len(s) == 0 {
		return pctl{}
	}
	s = slices.Clone(s)
	slices.Sort(s)
	at := func(q float64) float64 { return s[int(math.Round(q*float64(len(s)-1)))] }
	return pctl{N: len(s), Min: s[0], P10: at(0.1), P50: at(0.5), P90: at(0.9), Max: s[len(s)-1]}
}

func (p pctl) String() string {
	if p.N == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %4.0f ms (p10 %4.0f, p90 %4.0f, n=%d)", p.P50, p.P10, p.P90, p.N)
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	require.NoError(t, err, name)
	return d
}

// TestLatency measures glass-to-glass and player-reported latency of LL-HLS (hls.js),
// low-latency DASH (dash.js) and legacy MPEG-TS HLS with 1 s segments (hls.js without
// lowLatencyMode), and checks the targets 1.5 s, 3 s and 6 s on the glass-to-glass p50.
func TestLatency(t *testing.T) {
	if os.Getenv("ONAIR_LATENCY") != "1" {
		t.Skip("latency benchmark: set ONAIR_LATENCY=1 (see docs/latency.md)")
	}
	testutil.RequireFFmpeg(t)
	warmup := envDuration(t, "ONAIR_LATENCY_WARMUP", 10*time.Second)
	window := envDuration(t, "ONAIR_LATENCY_WINDOW", 30*time.Second)

	loadBefore := loadAverage()
	bctx := mustBrowser(t)
	ts := mustStartServer(t, nil)
	key := mustCreateUser(t, ts, "clock")
	startClockPublisher(t, ts.rtmpURL("/live/"+key), os.Getenv("ONAIR_LATENCY_AUDIO") != "0")
	waitLive(t, ts, "clock")
	// As on a channel that others already watch, every output runs and has a full
	// window before a player starts: a player that starts on a short playlist starts
	// closer to the live edge than it would in steady state (hls.js without
	// lowLatencyMode never catches up), which would flatter the numbers.
	keepWatching(t, ts, "/hls/clock/"+tsPlaylist, "/hls/clock/"+fmp4Playlist, "/dash/clock/index.mpd")
	waitMediaPlaylist(t, ts, "clock", tsPlaylist, ts.Config.HLSPlaylistSize)
	waitMediaPlaylist(t, ts, "clock", fmp4Playlist, 4)

	formats := []struct {
		player, name string
		target       time.Duration
	}{
		{"hls", "LL-HLS (hls.js)", 1500 * time.Millisecond},
		{"dash", "DASH (dash.js)", 3 * time.Second},
		{"ts", "HLS MPEG-TS 1 s (hls.js, no LL)", 6 * time.Second},
	}
	only := os.Getenv("ONAIR_LATENCY_PLAYERS") // e.g. "hls,dash"; default all
	var results []latencyResult
	for _, f := range formats {
		if only != "" && !slices.Contains(strings.Split(only, ","), f.player) {
			continue
		}
		var res latencyResult
		t.Run(f.name, func(t *testing.T) { // its tab closes when it ends
			res = measureLatency(t, bctx, ts.httpURL("/@clock?player="+f.player), warmup, window)
		})
		res.Format, res.Target = f.name, f.target
		res.TargetMet = res.G2G.N > 0 && res.G2G.P50 <= float64(f.target.Milliseconds())
		results = append(results, res)
	}

	t.Logf("latency over %s of playback after %s of warm-up, each format in a fresh tab (load average before: %s, after: %s):",
		window, warmup, loadBefore, loadAverage())
	for _, r := range results {
		t.Logf("%-32s glass-to-glass %s", r.Format, r.G2G)
		t.Logf("%-32s player reports %s, its target %s", "", r.Player, r.PlayerTgt)
		if r.PDT.N > 0 {
			t.Logf("%-32s by PROGRAM-DATE-TIME %s", "", r.PDT)
		}
		t.Logf("%-32s target %s met=%v, startup %s (%d stalls), stalls %d, restarts %d, mean rate %.3f, frames read %d unread %d",
			"", r.Target, r.TargetMet, r.Startup.Round(time.Millisecond), r.StartStalls, r.Stalls, r.Restarts, r.MeanRate, r.Frames, r.Unread)
	}
	b, err := json.MarshalIndent(results, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(artifactsDir(t), "latency.json"), b, 0o644))
	for _, r := range results {
		require.Positive(t, r.G2G.N, "%s: no frame stamp was read", r.Format)
		require.True(t, r.TargetMet, "%s: glass-to-glass p50 %.0f ms over the %s target", r.Format, r.G2G.P50, r.Target)
	}
}

// loadAverage returns the 1-minute load average (Linux), to judge how busy the machine was.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// keepWatching requests paths every 5 s until the test ends, so the server keeps their
// outputs running.
func keepWatching(t *testing.T, ts *testServer, paths ...string) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			for _, p := range paths {
				if req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.httpURL(p), nil); err == nil {
					if res, err := http.DefaultClient.Do(req); err == nil {
						_, _ = io.Copy(io.Discard, res.Body)
						res.Body.Close()
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Second):
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// measureLatency plays url in a new tab, lets it settle for warmup and samples for window.
func measureLatency(t *testing.T, bctx context.Context, url string, warmup, window time.Duration) latencyResult {
	t.Helper()
	tab := mediaTab(t, bctx, warmup+window+90*time.Second)
	require.NoError(t, chromedp.Do(tab, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.__stalls = 0; document.addEventListener('waiting', () => { window.__stalls++; }, true);`,
		})
		return err
	})))
	started := time.Now()
	require.NoError(t, chromedp.Do(tab, chromedp.Navigate(url)))
	_, err := chromedp.Run(tab, chromedp.Poll[bool](
		`!!window.onairPlayer && window.onairPlayer.video.currentTime > 0 && !window.onairPlayer.video.paused`,
		chromedp.WithPollingTimeout(45*time.Second), chromedp.WithPollingInterval(50*time.Millisecond)))
	require.NoError(t, err, "%s never played", url)
	res := latencyResult{URL: url, Startup: time.Since(started)}
	_, err = chromedp.Run(tab, chromedp.Evaluate[bool](latencyProbeJS))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(tab, chromedp.Sleep(warmup)))
	res.StartStalls, err = chromedp.Run(tab, chromedp.Evaluate[int](`window.__latency.reset(), window.__stalls`))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(tab, chromedp.Sleep(window)))
	s, err := chromedp.Run(tab, chromedp.Evaluate[latencySamples](`window.__latency`))
	require.NoError(t, err)
	res.Frames, res.Unread, res.Stalls = len(s.G2G), s.Bad, s.Stalls
	res.Restarts, err = chromedp.Run(tab, chromedp.Evaluate[int](`window.onairPlayer.restarts`))
	require.NoError(t, err)
	res.G2G, res.Player, res.PDT = percentiles(s.G2G), percentiles(s.Player), percentiles(s.PDT)
	res.PlayerTgt, res.Series = percentiles(s.Target), s
	for _, r := range s.Rate {
		res.MeanRate += r / float64(len(s.Rate))
	}
	return res
}
