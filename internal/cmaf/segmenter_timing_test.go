package cmaf

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/unit"
)

// h264AAC returns a case for an H.264 + AAC stream at 30 fps with the given GOP.
func h264AAC(size string, seconds float64, gop int) streamCase {
	return streamCase{
		name: "h264 aac", file: "a.ts", size: size, fps: 30, rate: 44100, seconds: seconds, gop: gop,
		args: []string{"-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", strconv.Itoa(gop),
			"-keyint_min", strconv.Itoa(gop), "-sc_threshold", "0", "-c:a", "aac", "-f", "mpegts"},
		probe: []string{"h264", "aac"}, frameTick: 3000, timescale: 90000,
	}
}

func TestSegmenterTargets(t *testing.T) {
	cases := []struct {
		name       string
		partTarget time.Duration
		segTarget  time.Duration
		gop        int
		segFrames  int // frames of every segment but the last
	}{
		{"gop shorter than target", 250 * time.Millisecond, 2 * time.Second, 30, 60},
		{"gop longer than target", 200 * time.Millisecond, 2 * time.Second, 90, 90},
		{"third of a second parts", 333 * time.Millisecond, time.Second, 30, 30},
		{"long parts", 500 * time.Millisecond, 4 * time.Second, 60, 120},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			t.Parallel()
			sc := h264AAC("640x360", 9, ca.gop)
			m := sc.mustMedia(t)
			o := mustSegment(t, m, func(s *Segmenter) {
				s.PartTarget = ca.partTarget
				s.SegmentTarget = ca.segTarget
			})
			sc.gop = ca.segFrames
			// A part may pass a target that is not a whole number of frames by 1% of a frame.
			requireStructure(t, sc, m, o, ca.partTarget+time.Millisecond/2, ca.segTarget)
			requirePlayable(t, sc, m, o)
		})
	}
}

func TestSegmenterReset(t *testing.T) {
	a := h264AAC("640x360", 3, 30).mustMedia(t)
	b := h264AAC("320x240", 2, 30).mustMedia(t)

	o := &output{}
	s := &Segmenter{Tracks: a.tracks}
	o.attach(s)
	require.NoError(t, s.Start())

	// Session 1 stops in the middle of a GOP; a Reset before any unit of session 2
	// changes nothing.
	var last time.Duration
	for _, u := range a.units {
		if u.DTS >= 2500*time.Millisecond {
			break
		}
		require.NoError(t, s.WriteUnit(u))
		last = u.DTS
	}
	copies := make([]*unit.Track, len(a.tracks))
	for i, tr := range a.tracks {
		c := *tr
		copies[i] = &c
	}
	require.NoError(t, s.Reset(copies))
	session1 := len(o.segments)
	require.Equal(t, 2, session1)
	require.InDelta(t, float64(500*time.Millisecond), float64(o.segments[1].Duration), float64(40*time.Millisecond))

	// Session 2: the same tracks, continuing after a gap: same init, one discontinuity.
	shift := last + 100*time.Millisecond
	for _, u := range a.units {
		v := shifted(u, shift)
		require.NoError(t, s.WriteUnit(v))
		last = v.DTS
	}
	require.NoError(t, s.Reset(b.tracks))
	session2 := len(o.segments)
	require.Len(t, o.inits, 2, "a new init for new tracks")

	// Session 3: other tracks.
	shift = last + 100*time.Millisecond
	for _, u := range b.units {
		v := shifted(u, shift)
		require.NoError(t, s.WriteUnit(v))
	}
	s.Close()
	s.Close()
	require.ErrorIs(t, s.WriteUnit(b.units[0]), ErrClosed)
	require.ErrorIs(t, s.Reset(b.tracks), ErrClosed)

	for i, seg := range o.segments {
		require.Equal(t, uint64(i), seg.Seq)
		require.True(t, seg.Independent)
		require.Equal(t, i == session1 || i == session2, seg.Discontinuity, "segment %d", i)
	}

	// Sessions 1 and 2 share the first init, session 3 uses the second one.
	var parts12, parts3 []*Part
	for i, p := range o.parts {
		if o.initBefore[i] == 1 {
			parts12 = append(parts12, p)
		} else {
			parts3 = append(parts3, p)
		}
	}
	require.Len(t, parts3, countParts(o.segments[session2:]))

	streams := mustProbe(t, mustWriteMP4(t, o.inits[0], parts12))
	require.Equal(t, "640", strconv.Itoa(streams[0].Width))
	require.Equal(t, strconv.Itoa(countUnits(a, 0, 2500*time.Millisecond)+countUnits(a, 0, time.Hour)), streams[0].Packets)
	streams = mustProbe(t, mustWriteMP4(t, o.inits[1], parts3))
	require.Equal(t, 320, streams[0].Width)
	require.Equal(t, strconv.Itoa(countUnits(b, 0, time.Hour)), streams[0].Packets)
}

// shifted returns a copy of u moved by d on the timeline.
func shifted(u *unit.Unit, d time.Duration) *unit.Unit {
	return &unit.Unit{Track: u.Track, DTS: u.DTS + d, PTS: u.PTS + d, Key: u.Key, Payload: u.Payload, Size: u.Size}
}

func countParts(segs []*Segment) int {
	n := 0
	for _, s := range segs {
		n += len(s.Parts)
	}
	return n
}

func countUnits(m *media, track int, before time.Duration) int {
	n := 0
	for _, u := range m.units {
		if u.Track == track && u.DTS < before {
			n++
		}
	}
	return n
}

func TestSegmenterInterleave(t *testing.T) {
	sc := h264AAC("640x360", 5, 60)
	m := sc.mustMedia(t)

	cases := []struct {
		name    string
		delay   time.Duration // arrival delay of audio relative to video
		aligned bool          // every audio sample lands in the part holding its DTS
	}{
		{"in order", 0, true},
		{"audio late", 300 * time.Millisecond, true},
		{"audio early", -300 * time.Millisecond, true},
		{"audio later than the wait", 1500 * time.Millisecond, false},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			units := slices.Clone(m.units)
			slices.SortStableFunc(units, func(a, b *unit.Unit) int {
				at, bt := a.DTS, b.DTS
				if a.Track == 1 {
					at += ca.delay
				}
				if b.Track == 1 {
					bt += ca.delay
				}
				return int(at - bt)
			})
			o := mustSegment(t, &media{tracks: m.tracks, units: units}, nil)
			requireStructure(t, sc, m, o, DefaultPartTarget, DefaultSegmentTarget)
			requirePlayable(t, sc, m, o)

			st, err := newSegmenterTrack(m.tracks[1], 2)
			require.NoError(t, err)
			misplaced := 0
			// The audio after the last video frame lands in the last part whatever its DTS.
			for _, p := range o.parts[:len(o.parts)-1] {
				var parts fmp4.Parts
				require.NoError(t, parts.Unmarshal(p.Data))
				for _, pt := range parts[0].Tracks {
					if pt.ID != 2 {
						continue
					}
					ts := int64(pt.BaseTime)
					for _, smp := range pt.Samples {
						if ts < st.ticks(p.Start) || ts >= st.ticks(p.Start+p.Duration) {
							misplaced++
						}
						ts += int64(smp.Duration)
					}
				}
			}
			if ca.aligned {
				require.Zero(t, misplaced)
			} else {
				require.Positive(t, misplaced)
			}
		})
	}
}

func TestSegmenterBounds(t *testing.T) {
	t.Run("part size", func(t *testing.T) {
		sc := h264AAC("640x360", 4, 60)
		m := sc.mustMedia(t)
		const limit = 16 << 10
		largest := 0
		for _, u := range m.units {
			largest = max(largest, u.Size)
		}
		o := mustSegment(t, m, func(s *Segmenter) { s.MaxPartSize = limit })
		forced := 0
		for _, p := range o.parts {
			requirePartData(t, m, 0, p)
			require.LessOrEqual(t, len(p.Data), limit+largest+4096)
			if p.Index > 0 && p.Duration < 200*time.Millisecond {
				forced++
			}
		}
		require.Positive(t, forced)
		for _, seg := range o.segments {
			require.True(t, seg.Parts[0].Independent)
		}
		requirePlayable(t, sc, m, o)
	})

	t.Run("video stops", func(t *testing.T) {
		sc := h264AAC("640x360", 5, 30)
		m := sc.mustMedia(t)
		o := &output{}
		s := &Segmenter{Tracks: m.tracks, MaxSegmentDuration: 1500 * time.Millisecond}
		o.attach(s)
		require.NoError(t, s.Start())
		for _, u := range m.units {
			if u.Track == 0 && u.DTS >= 1500*time.Millisecond {
				continue
			}
			require.NoError(t, s.WriteUnit(u))
		}
		// Audio kept flowing into parts and segments: little is buffered before Close.
		last := o.parts[len(o.parts)-1]
		require.Greater(t, last.Start+last.Duration, 4*time.Second)
		buffered := 0
		for _, tr := range s.tracks {
			buffered += len(tr.buf)
		}
		require.Less(t, buffered, 16<<10)
		nonIndependent := 0
		for _, seg := range o.segments {
			if !seg.Independent {
				nonIndependent++
			}
		}
		require.Positive(t, nonIndependent)
		s.Close()

		streams := mustProbe(t, mustWriteMP4(t, o.inits[0], o.parts))
		require.Equal(t, strconv.Itoa(countUnits(m, 0, 1500*time.Millisecond)), streams[0].Packets)
		require.Equal(t, strconv.Itoa(countUnits(m, 1, time.Hour)-countUnits(m, 1, 0)), streams[1].Packets)
	})

	t.Run("long gop", func(t *testing.T) {
		sc := h264AAC("320x240", 6, 150)
		m := sc.mustMedia(t)
		o := mustSegment(t, m, func(s *Segmenter) { s.MaxSegmentDuration = 2 * time.Second })
		// Cut after 2 s without a key unit, and at the next key unit after such a cut.
		var independent []bool
		var durations []time.Duration
		for _, seg := range o.segments {
			independent = append(independent, seg.Independent)
			durations = append(durations, seg.Duration.Round(time.Millisecond))
		}
		require.Equal(t, []bool{true, false, false, true}, independent)
		require.Equal(t, []time.Duration{2 * time.Second, 2 * time.Second, time.Second, time.Second}, durations)
		streams := mustProbe(t, mustWriteMP4(t, o.inits[0], o.parts))
		require.Equal(t, "180", streams[0].Packets)
	})
}

func TestSegmenterStartMidGOP(t *testing.T) {
	sc := h264AAC("640x360", 5, 60)
	m := sc.mustMedia(t)
	// The stream is joined half a second in: nothing is emitted before the key unit at 2 s.
	var units []*unit.Unit
	for _, u := range m.units {
		if u.DTS >= 500*time.Millisecond {
			units = append(units, u)
		}
	}
	late := &media{tracks: m.tracks, units: units}
	o := mustSegment(t, late, nil)
	require.Equal(t, 2*time.Second, o.segments[0].Start)
	requireStructure(t, sc, late, o, DefaultPartTarget, DefaultSegmentTarget)
	requirePlayable(t, sc, late, o)
}
