package cmaf

import (
	"runtime"
	"testing"
	"time"
)

// BenchmarkSegmenter segments 10 s of a 3 Mbps 720p30 H.264 + AAC stream (noise keeps
// x264 at its bit rate). It reports the CPU cost per second of media, as nanoseconds and
// as a share of one core, and the allocations per second of media once started.
func BenchmarkSegmenter(b *testing.B) {
	const seconds = 10
	args := append(lavfi("1280x720", 30, 48000, seconds),
		"-vf", "noise=alls=12:allf=t",
		"-c:v", "libx264", "-preset", "ultrafast", "-b:v", "3M", "-maxrate", "3M", "-bufsize", "3M",
		"-g", "60", "-c:a", "aac", "-b:a", "128k", "-f", "mpegts")
	m := cachedMedia(b, "bench", func() *media { return mustReadTS(b, mustEncode(b, "bench.ts", args...)) })
	bytes := 0
	for _, u := range m.units {
		bytes += u.Size
	}
	b.Logf("stream: %d units, %.2f Mbit/s", len(m.units), float64(bytes)*8/seconds/1e6)

	// Start (the init segment, written with mediacommon's reflection-based box writer)
	// happens once per stream; the per-second figure leaves it out.
	initAllocs := testing.AllocsPerRun(5, func() {
		s := &Segmenter{Tracks: m.tracks}
		if err := s.Start(); err != nil {
			b.Fatal(err)
		}
	})

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs := ms.Mallocs
	b.ReportAllocs()
	b.SetBytes(int64(bytes))
	b.ResetTimer()
	for b.Loop() {
		s := &Segmenter{Tracks: m.tracks}
		if err := s.Start(); err != nil {
			b.Fatal(err)
		}
		for _, u := range m.units {
			if err := s.WriteUnit(u); err != nil {
				b.Fatal(err)
			}
		}
		s.Close()
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms)

	perSecond := float64(b.Elapsed()) / float64(b.N) / seconds
	b.ReportMetric(perSecond, "ns/media-s")
	b.ReportMetric(perSecond/float64(time.Second)*100, "%core")
	b.ReportMetric((float64(ms.Mallocs-mallocs)/float64(b.N)-initAllocs)/seconds, "allocs/media-s")
}
