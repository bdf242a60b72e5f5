// Command gohlslibbench compares two ways of serving Low-Latency HLS for one live stream:
// onair's shared CMAF segmenter (internal/cmafstream + internal/hls) and gohlslib's Muxer,
// both fed the same real 3 Mbps stream through a hub reader and read by one LL-HLS poller
// that, like a player, blocks on the next part and downloads every new part.
//
// It lives in its own module under testdata so that the main module does not depend on
// gohlslib. Run it from this directory:
//
//	go run . -seconds 30
//
// It prints, per variant, the CPU the process used per second of media (in % of one core,
// minus a baseline run that only publishes into the hub), allocations, and the part and
// segment availability latency: the time from the publisher writing the frame that ends a
// part (or segment) to the poller holding a playlist that lists it.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	gcodecs "github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"

	"github.com/onair/onair/internal/cmafstream"
	"github.com/onair/onair/internal/hls"
	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/unit"
)

type media struct {
	tracks []*unit.Track
	units  []*unit.Unit
	length time.Duration
	asc    mpeg4audio.AudioSpecificConfig
}

func main() {
	seconds := flag.Int("seconds", 30, "seconds of media per run (real time)")
	flag.Parse()
	med, err := makeMedia(*seconds)
	if err != nil {
		log.Fatal(err)
	}
	bits := 0
	for _, u := range med.units {
		for _, p := range u.Payload {
			bits += 8 * len(p)
		}
	}
	fmt.Printf("media: %v, %.2f Mbit/s, %d units\n", med.length.Round(time.Millisecond),
		float64(bits)/med.length.Seconds()/1e6, len(med.units))

	base := run("baseline", med, nil)
	ours := run("onair cmafstream+hls", med, runOurs)
	theirs := run("gohlslib v2.4.4", med, runGohlslib)
	fmt.Println()
	fmt.Printf("%-22s %10s %12s %12s %14s %14s %14s\n", "variant", "cpu %core", "allocs/s", "MB alloc/s",
		"part p50/p95", "part max", "segment p50")
	for _, r := range []result{base, ours, theirs} {
		cpu := r.cpu
		if r.name != base.name {
			cpu -= base.cpu
		}
		fmt.Printf("%-22s %10.2f %12.0f %12.2f %14s %14s %14s\n", r.name, cpu, r.allocs, r.mbytes,
			pct(r.partLat, 50)+"/"+pct(r.partLat, 95), pct(r.partLat, 100), pct(r.segLat, 50))
	}
}

type result struct {
	name    string
	cpu     float64 // % of a core
	allocs  float64 // per second of media
	mbytes  float64
	partLat []time.Duration
	segLat  []time.Duration
}

func pct(d []time.Duration, p int) string {
	if len(d) == 0 {
		return "-"
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := min(len(s)-1, len(s)*p/100)
	return s[i].Round(time.Millisecond).String()
}

// server starts a variant and returns the URL of its entry playlist and a stop function.
type server func(reg *hub.Registry, name string) (entry string, stop func())

func run(name string, med *media, srv server) result {
	runtime.GC()
	reg := &hub.Registry{Logger: slog.New(slog.DiscardHandler)}
	if err := reg.Start(); err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	p, err := reg.Publish("alice", med.tracks)
	if err != nil {
		log.Fatal(err)
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	ru0 := rusage()

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	writes := make([]time.Time, len(med.units))
	var pl *poller
	var stop func()
	if srv != nil {
		var entry string
		entry, stop = srv(reg, "alice")
		pl = &poller{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pl.run(ctx, entry)
		}()
	}
	start := time.Now()
	for i, u := range med.units {
		time.Sleep(time.Until(start.Add(u.DTS)))
		writes[i] = time.Now()
		cp := &unit.Unit{Track: u.Track, DTS: u.DTS, PTS: u.PTS, Key: u.Key, Payload: u.Payload}
		if err := p.WriteUnit(cp); err != nil {
			log.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	cancel()
	wg.Wait()
	if stop != nil {
		stop()
	}
	ru1 := rusage()
	runtime.ReadMemStats(&ms1)
	secs := med.length.Seconds()
	r := result{
		name:   name,
		cpu:    100 * (ru1 - ru0).Seconds() / time.Since(start).Seconds(),
		allocs: float64(ms1.Mallocs-ms0.Mallocs) / secs,
		mbytes: float64(ms1.TotalAlloc-ms0.TotalAlloc) / secs / 1e6,
	}
	if pl != nil {
		r.partLat, r.segLat = pl.latencies(med, writes)
	}
	return r
}

func rusage() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func runOurs(reg *hub.Registry, name string) (string, func()) {
	cm := &cmafstream.Manager{Hub: reg, Logger: slog.New(slog.DiscardHandler),
		PartTarget: 200 * time.Millisecond, SegmentTarget: 2 * time.Second}
	if err := cm.Start(); err != nil {
		log.Fatal(err)
	}
	srv := &hls.Server{Hub: reg, CMAF: cm, PartTarget: cm.PartTarget, Logger: slog.New(slog.DiscardHandler)}
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	return ts.URL + "/hls/" + name + "/index.m3u8", func() {
		ts.Close()
		srv.Close()
		cm.Close()
	}
}

func runGohlslib(reg *hub.Registry, name string) (string, func()) {
	st := reg.Stream(name)
	tracks := st.Tracks()
	vt := &gohlslib.Track{Codec: &gcodecs.H264{SPS: tracks[0].SPS, PPS: tracks[0].PPS}, ClockRate: 90000}
	var asc mpeg4audio.AudioSpecificConfig
	if err := asc.Unmarshal(tracks[1].AACConfig); err != nil {
		log.Fatal(err)
	}
	at := &gohlslib.Track{Codec: &gcodecs.MPEG4Audio{Config: asc}, ClockRate: asc.SampleRate}
	m := &gohlslib.Muxer{
		Variant:            gohlslib.MuxerVariantLowLatency,
		SegmentCount:       7,
		SegmentMinDuration: 2 * time.Second,
		PartMinDuration:    200 * time.Millisecond,
		Tracks:             []*gohlslib.Track{vt, at},
	}
	if err := m.Start(); err != nil {
		log.Fatal(err)
	}
	r, err := st.AddReader("gohlslib")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ntp := time.Now()
		var evs []hub.Event
		for {
			var err error
			evs, err = r.ReadBatch(ctx, evs[:0])
			for _, ev := range evs {
				u := ev.Unit
				if u == nil {
					continue
				}
				if u.Track == 0 {
					_ = m.WriteH264(vt, ntp.Add(u.PTS), int64(u.PTS)*90000/int64(time.Second), u.Payload)
				} else {
					_ = m.WriteMPEG4Audio(at, ntp.Add(u.PTS), int64(u.PTS)*int64(asc.SampleRate)/int64(time.Second), u.Payload)
				}
			}
			if err != nil {
				return
			}
		}
	}()
	ts := httptest.NewServer(http.HandlerFunc(m.Handle))
	return ts.URL + "/index.m3u8", func() {
		cancel()
		wg.Wait()
		r.Close()
		m.Close() // first: its blocked requests do not watch their context
		ts.Close()
	}
}

// poller plays an LL-HLS stream as hls.js does at the live edge: one blocking playlist
// request for the next part per media playlist, and a download of every new part.
type poller struct {
	mu    sync.Mutex
	parts map[string]partSeen // by part URI, first (video) playlist only
	segs  map[uint64]float64  // EXTINF by media sequence number, first playlist
	seen  map[uint64]time.Time
}

type partSeen struct {
	msn   uint64
	index int
	dur   float64
	at    time.Time
}

func (p *poller) run(ctx context.Context, entry string) {
	p.parts = map[string]partSeen{}
	p.segs = map[uint64]float64{}
	p.seen = map[uint64]time.Time{}
	client := &http.Client{}
	var body []byte
	var err error
	for ctx.Err() == nil {
		body, err = get(ctx, client, entry)
		if err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var media []string
	base, _ := url.Parse(entry)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "#EXT-X-MEDIA:") {
			if i := strings.Index(line, `URI="`); i >= 0 {
				u := line[i+5:]
				media = append(media, u[:strings.IndexByte(u, '"')])
			}
		} else if line != "" && !strings.HasPrefix(line, "#") {
			media = append([]string{line}, media...)
		}
	}
	var wg sync.WaitGroup
	for i, m := range media {
		u, _ := base.Parse(m)
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.follow(ctx, client, u, i == 0)
		}()
	}
	wg.Wait()
}

func get(ctx context.Context, c *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", u, res.Status)
	}
	return b, err
}

func (p *poller) follow(ctx context.Context, c *http.Client, u *url.URL, record bool) {
	fetched := map[string]bool{}
	query := ""
	for ctx.Err() == nil {
		full := *u
		full.RawQuery = query
		body, err := get(ctx, c, full.String())
		now := time.Now()
		if err != nil {
			if ctx.Err() == nil {
				query = ""
				time.Sleep(20 * time.Millisecond)
			}
			continue
		}
		msn, idx, newParts := uint64(0), 0, []string(nil)
		seq := uint64(0)
		open := 0
		gap := false
		sc := bufio.NewScanner(strings.NewReader(string(body)))
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
				seq, _ = strconv.ParseUint(line[len("#EXT-X-MEDIA-SEQUENCE:"):], 10, 64)
			case strings.HasPrefix(line, "#EXT-X-PART:"):
				a := line[len("#EXT-X-PART:"):]
				i := strings.Index(a, `URI="`)
				uri := a[i+5:]
				uri = uri[:strings.IndexByte(uri, '"')]
				d, _ := strconv.ParseFloat(strings.TrimPrefix(strings.Split(a, ",")[0], "DURATION="), 64)
				if record {
					p.mu.Lock()
					if _, ok := p.parts[uri]; !ok {
						p.parts[uri] = partSeen{msn: seq, index: open, dur: d, at: now}
					}
					p.mu.Unlock()
				}
				if !fetched[uri] {
					fetched[uri] = true
					newParts = append(newParts, uri)
				}
				open++
			case line == "#EXT-X-GAP":
				gap = true
			case strings.HasPrefix(line, "#EXTINF:"):
				d, _ := strconv.ParseFloat(strings.TrimSuffix(line[len("#EXTINF:"):], ","), 64)
				if record && !gap {
					p.mu.Lock()
					if _, ok := p.segs[seq]; !ok {
						p.segs[seq] = d
						p.seen[seq] = now
					}
					p.mu.Unlock()
				}
			case line != "" && !strings.HasPrefix(line, "#"):
				seq++
				open = 0
				gap = false
			}
		}
		if os.Getenv("BENCH_DEBUG") != "" && record && strings.Contains(u.Path, "_stream") {
			fmt.Fprintf(os.Stderr, "---- %s\n%s", full.String(), body)
		}
		msn, idx = seq, open
		// Download the new parts, as a player does, before asking for the next one.
		for _, part := range newParts {
			pu, _ := u.Parse(part)
			_, _ = get(ctx, c, pu.String())
		}
		query = fmt.Sprintf("_HLS_msn=%d&_HLS_part=%d", msn, idx)
	}
}

// latencies returns, per part and per segment of the first playlist, the time from the
// write of the first frame after it to the poller seeing it.
func (p *poller) latencies(med *media, writes []time.Time) (parts, segs []time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Media time of each segment start, from the EXTINF of all segments since 0.
	// gohlslib starts its playlist with GAP segments: time 0 is the first real segment.
	first := uint64(1 << 62)
	for msn := range p.segs {
		first = min(first, msn)
	}
	starts := map[uint64]float64{}
	t := 0.0
	for msn := first; ; msn++ {
		d, ok := p.segs[msn]
		if !ok {
			break
		}
		starts[msn] = t
		t += d
	}
	writeAt := func(sec float64) (time.Time, bool) {
		at := time.Duration(sec*float64(time.Second)) - time.Millisecond
		for i, u := range med.units {
			if u.Track == 0 && u.DTS >= at {
				return writes[i], true
			}
		}
		return time.Time{}, false
	}
	byMSN := map[uint64][]partSeen{}
	for _, ps := range p.parts {
		byMSN[ps.msn] = append(byMSN[ps.msn], ps)
	}
	for msn, list := range byMSN {
		start, ok := starts[msn]
		if !ok || msn == first {
			continue // the first segment may come out of the cached GOP at once
		}
		sort.Slice(list, func(i, j int) bool { return list[i].index < list[j].index })
		end := start
		for _, ps := range list {
			end += ps.dur
			if w, ok := writeAt(end); ok && !w.IsZero() {
				parts = append(parts, ps.at.Sub(w))
			}
		}
	}
	for msn, at := range p.seen {
		if msn == first {
			continue
		}
		if w, ok := writeAt(starts[msn] + p.segs[msn]); ok && !w.IsZero() {
			segs = append(segs, at.Sub(w))
		}
	}
	return parts, segs
}

// makeMedia encodes seconds of 1280x720 30 fps H.264 at 3 Mbit/s (2 s GOP, no B-frames,
// so that decode and presentation times agree for the latency mapping) and AAC, and
// demuxes it into hub units.
func makeMedia(seconds int) (*media, error) {
	dir, err := os.MkdirTemp("", "gohlslibbench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "in.ts")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-bf", "0",
		"-b:v", "3M", "-maxrate", "3M", "-bufsize", "3M", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
		"-t", strconv.Itoa(seconds), "-f", "mpegts", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ffmpeg: %w: %s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := &mpegts.Reader{R: f}
	if err := r.Initialize(); err != nil {
		return nil, err
	}
	med := &media{}
	type raw struct {
		track    int
		dts, pts int64
		key      bool
		payload  [][]byte
	}
	var raws []raw
	for _, tt := range r.Tracks() {
		switch c := tt.Codec.(type) {
		case *tscodecs.H264:
			tr := &unit.Track{Codec: unit.CodecH264}
			med.tracks = append(med.tracks, tr)
			r.OnDataH264(tt, func(pts, dts int64, au [][]byte) error {
				for _, n := range au {
					switch h264.NALUType(n[0] & 0x1f) {
					case h264.NALUTypeSPS:
						tr.SPS = n
					case h264.NALUTypePPS:
						tr.PPS = n
					}
				}
				raws = append(raws, raw{track: 0, dts: dts, pts: pts, key: h264.IsRandomAccess(au), payload: au})
				return nil
			})
		case *tscodecs.MPEG4Audio:
			conf, err := c.Config.Marshal()
			if err != nil {
				return nil, err
			}
			med.asc = c.Config
			med.tracks = append(med.tracks, &unit.Track{Codec: unit.CodecAAC, AACConfig: conf,
				SampleRate: c.Config.SampleRate, ChannelCount: 1})
			r.OnDataMPEG4Audio(tt, func(pts int64, aus [][]byte) error {
				for i, au := range aus {
					ts := pts + int64(i)*1024*90000/int64(c.Config.SampleRate)
					raws = append(raws, raw{track: 1, dts: ts, pts: ts, key: true, payload: [][]byte{au}})
				}
				return nil
			})
		}
	}
	for {
		if err := r.Read(); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, err
		}
	}
	sort.SliceStable(raws, func(i, j int) bool { return raws[i].dts < raws[j].dts })
	base := raws[0].dts
	for _, rw := range raws {
		u := &unit.Unit{Track: rw.track, DTS: time.Duration(rw.dts-base) * time.Second / 90000,
			PTS: time.Duration(rw.pts-base) * time.Second / 90000, Key: rw.key, Payload: rw.payload}
		med.units = append(med.units, u)
		med.length = max(med.length, u.DTS)
	}
	return med, nil
}
