package hls

import (
	"runtime"
	"testing"
	"time"

	"github.com/onair/onair/internal/testutil"
)

// BenchmarkTSSegmenter muxes 4 s of H.264 + AAC into MPEG-TS segments cut at every key
// frame, as a muxer does. It reports the CPU cost and the allocations per second of
// media, so that the cost of HLS for P publishers can be put next to the ingest's.
func BenchmarkTSSegmenter(b *testing.B) {
	m := testutil.MustMedia(b, "h264_aac")
	video := -1
	for i, t := range m.Tracks {
		if t.IsVideo() {
			video = i
		}
	}
	bytes := 0
	for _, u := range m.Units {
		bytes += u.Size
	}
	seconds := m.Length.Seconds()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs := ms.Mallocs
	b.SetBytes(int64(bytes))
	b.ReportAllocs()
	buf := make([]byte, 0, 1<<16) // the muxer's pool gives back the buffers of old segments
	for b.Loop() {
		s, err := newTSSegmenter(m.Tracks, nil)
		if err != nil {
			b.Fatal(err)
		}
		s.begin(buf)
		for i, u := range m.Units {
			if i > 0 && u.Track == video && u.Key {
				seg, err := s.finish()
				if err != nil {
					b.Fatal(err)
				}
				buf = seg[:0]
				s.begin(buf)
			}
			if err := s.write(u); err != nil {
				b.Fatal(err)
			}
		}
		seg, err := s.finish()
		if err != nil {
			b.Fatal(err)
		}
		buf = seg[:0]
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms)
	perSecond := float64(b.Elapsed()) / float64(b.N) / seconds
	b.ReportMetric(perSecond, "ns/media-s")
	b.ReportMetric(perSecond/float64(time.Second)*100, "%core")
	b.ReportMetric(float64(ms.Mallocs-mallocs)/float64(b.N)/seconds, "allocs/media-s")
}
