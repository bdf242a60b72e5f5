package record

import (
	"testing"
)

// FuzzParseMeta feeds meta.json contents (read back from storage, possibly cut short by
// a crash) to its parser: what it accepts has sane timescales.
func FuzzParseMeta(f *testing.F) {
	f.Add([]byte(`{"version":1,"inits":[{"tracks":[{"video":true,"codec":"avc1.64001f","timescale":90000,"width":320,"height":180},{"video":false,"codec":"mp4a.40.2","timescale":44100}]}]}`))
	f.Add([]byte(`{"version":1,"inits":[{"tracks":[{"timescale":0}]}]}`))
	f.Add([]byte(`{"version":1,"inits":[{"tr`))
	f.Add([]byte(`{"version":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMeta(b)
		if err != nil {
			return
		}
		for _, in := range m.Inits {
			for _, tr := range in.Tracks {
				if tr.Timescale <= 0 || tr.Timescale > 1<<31 {
					t.Fatalf("timescale %d accepted", tr.Timescale)
				}
			}
		}
	})
}

// FuzzParseTrackName feeds request file names to ParseTrackName: what it accepts prints
// back to the same name.
func FuzzParseTrackName(f *testing.F) {
	f.Add("init-0-t1.mp4")
	f.Add("seg-12-t0.m4s")
	f.Add("seg-012-t0.m4s")
	f.Add("seg--t.m4s")
	f.Fuzz(func(t *testing.T, name string) {
		init, n, track, ok := ParseTrackName(name)
		if !ok {
			return
		}
		if track < 0 || track > maxTrack || n < 0 {
			t.Fatalf("%q parsed as segment %d track %d", name, n, track)
		}
		back := TrackSegmentName(n, track)
		if init {
			back = TrackInitName(n, track)
		}
		if back != name {
			t.Fatalf("%q parsed as %v %d %d, prints as %q", name, init, n, track, back)
		}
	})
}
