package hls

import (
	"bytes"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/testutil"
	"github.com/onair/onair/internal/unit"
)

// segmentAll runs units through a TS segmenter, cutting at the lead track's key units,
// and returns the segments.
func segmentAll(t *testing.T, tracks []*unit.Track, units []*unit.Unit) [][]byte {
	t.Helper()
	s, err := newTSSegmenter(tracks, nil)
	require.NoError(t, err)
	lead, _ := s.lead()
	var segs [][]byte
	s.begin(nil)
	started := false
	for _, u := range units {
		if u.Track == lead && u.Key && started {
			seg, err := s.finish()
			require.NoError(t, err)
			segs = append(segs, seg)
			s.begin(nil)
		}
		started = started || u.Track == lead
		require.NoError(t, s.write(u))
	}
	seg, err := s.finish()
	require.NoError(t, err)
	return append(segs, seg)
}

// checkTSPackets checks the packet layer of consecutive segments: sync bytes, whole
// packets, PAT first in every segment, continuity counters without gaps per PID, and a
// PCR on the lead PID's first packet of every segment.
func checkTSPackets(t *testing.T, segs [][]byte, leadPID uint16) {
	t.Helper()
	cc := map[uint16]byte{}
	for k, seg := range segs {
		require.Zero(t, len(seg)%tsPacketSize, "segment %d: %d bytes", k, len(seg))
		sawLead := false
		for off := 0; off < len(seg); off += tsPacketSize {
			p := seg[off : off+tsPacketSize]
			require.Equal(t, byte(tsSyncByte), p[0], "segment %d offset %d", k, off)
			pid := uint16(p[1]&0x1f)<<8 | uint16(p[2])
			if off == 0 {
				require.Zero(t, pid, "segment %d does not start with the PAT", k)
			}
			c := p[3] & 0x0f
			if prev, ok := cc[pid]; ok {
				require.Equal(t, (prev+1)&0x0f, c, "segment %d offset %d: continuity of PID %d", k, off, pid)
			}
			cc[pid] = c
			if pid == leadPID && !sawLead {
				sawLead = true
				require.NotZero(t, p[1]&0x40, "segment %d: the lead's first packet starts a PES", k)
				require.NotZero(t, p[3]&0x20, "segment %d: no adaptation field on the lead's first packet", k)
				require.NotZero(t, p[5]&0x10, "segment %d: no PCR on the lead's first packet", k)
			}
			if p[3]&0x20 != 0 {
				afl := int(p[4])
				require.LessOrEqual(t, afl, 183)
				if p[3]&0x10 != 0 {
					require.Less(t, afl, 183, "an adaptation field leaves no room for the payload")
				}
			}
		}
		require.True(t, sawLead, "segment %d has no lead packet", k)
	}
}

// withoutAUD drops access unit delimiters, which the segmenter adds.
func withoutAUD(c unit.Codec, au [][]byte) [][]byte {
	var out [][]byte
	for _, n := range au {
		if len(n) == 0 ||
			c == unit.CodecH264 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeAccessUnitDelimiter ||
			c == unit.CodecH265 && h265.NALUType((n[0]>>1)&0x3f) == h265.NALUType_AUD_NUT {
			continue
		}
		out = append(out, n)
	}
	return out
}

// TestTSSegmenterRoundTrip muxes real media of every codec the segmenter carries and
// reads it back with mediacommon's demuxer: every frame comes back with its bytes and
// its timestamps.
func TestTSSegmenterRoundTrip(t *testing.T) {
	for _, kind := range []string{"h264_aac", "h264_mp3", "h265_aac", "h264_opus", "aac", "mp3"} {
		t.Run(kind, func(t *testing.T) {
			m := testutil.MustMedia(t, kind)
			segs := segmentAll(t, m.Tracks, m.Units)
			require.Greater(t, len(segs), 1)
			checkTSPackets(t, segs, tsFirstPID)

			all := bytes.Join(segs, nil)
			// ffmpeg decodes all of it without a complaint.
			cmd := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-i", "-", "-f", "null", "-")
			cmd.Stdin = bytes.NewReader(all)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			require.Empty(t, strings.TrimSpace(string(out)))

			got, err := testutil.DemuxTS(bytes.NewReader(all))
			require.NoError(t, err)
			require.Len(t, got.Tracks, len(m.Tracks))
			for ti, tr := range m.Tracks {
				require.Equal(t, tr.Codec, got.Tracks[ti].Codec)
				var want, have []*unit.Unit
				for _, u := range m.Units {
					if u.Track == ti {
						want = append(want, u)
					}
				}
				for _, u := range got.Units {
					if u.Track == ti {
						have = append(have, u)
					}
				}
				require.Len(t, have, len(want), "track %d (%s)", ti, tr.Codec)
				// Both start at the first DTS of all tracks; compare from each track's first.
				for i := range want {
					require.Equal(t, withoutAUD(tr.Codec, want[i].Payload), withoutAUD(tr.Codec, have[i].Payload), "track %d unit %d", ti, i)
					wd, hd := want[i].DTS-want[0].DTS, have[i].DTS-have[0].DTS
					require.InDelta(t, wd, hd, float64(time.Millisecond), "track %d unit %d DTS", ti, i)
					require.InDelta(t, want[i].PTS-want[i].DTS, have[i].PTS-have[i].DTS, float64(time.Millisecond), "track %d unit %d PTS", ti, i)
					require.Equal(t, want[i].Key, have[i].Key, "track %d unit %d key", ti, i)
				}
			}
		})
	}
}

// TestTSSegmenterPacketBoundaries writes video frames of every size across the first
// packets' boundaries (the PES header, the adaptation field with PCR, the stuffing of the
// last packet), with and without B-frame timestamps, and empty NAL units among them.
func TestTSSegmenterPacketBoundaries(t *testing.T) {
	tracks := []*unit.Track{{Codec: unit.CodecH264}}
	var units []*unit.Unit
	for size := 1; size <= 2*tsPacketSize+40; size++ {
		n := bytes.Repeat([]byte{0xab}, size)
		n[0] = byte(h264.NALUTypeNonIDR) | 0x20
		key := size%50 == 1
		if key {
			n[0] = byte(h264.NALUTypeIDR) | 0x60
		}
		d := time.Duration(size) * time.Second / 30
		pts := d
		if size%3 == 0 {
			pts += 2 * time.Second / 30
		}
		payload := [][]byte{n}
		if size%7 == 0 {
			payload = [][]byte{{}, n, {}}
		}
		units = append(units, &unit.Unit{Track: 0, DTS: d, PTS: pts, Key: key, Payload: payload})
	}
	segs := segmentAll(t, tracks, units)
	checkTSPackets(t, segs, tsFirstPID)
	got, err := testutil.DemuxTS(bytes.NewReader(bytes.Join(segs, nil)))
	require.NoError(t, err)
	require.Len(t, got.Units, len(units))
	for i, u := range units {
		require.Equal(t, withoutAUD(unit.CodecH264, u.Payload), withoutAUD(unit.CodecH264, got.Units[i].Payload), "frame %d", i)
		require.InDelta(t, u.PTS-u.DTS, got.Units[i].PTS-got.Units[i].DTS, float64(time.Millisecond), "frame %d", i)
	}
}

// TestSegmentBufferRecycling: a retired segment's bytes go back to the pool only when
// the last request sending them is done, and only once.
func TestSegmentBufferRecycling(t *testing.T) {
	pool := make(chan []byte, 2)
	sg := &segment{data: make([]byte, 10, 100), pool: pool}
	sg.refs.Add(1) // a request sends it
	sg.retire()
	require.Empty(t, pool, "recycled while a request sends it")
	require.Len(t, sg.data, 10)
	sg.release()
	require.Len(t, pool, 1)
	sg.retire()
	require.Len(t, pool, 1, "recycled twice")

	// Requests and the retirement race: the buffer is recycled exactly once.
	for range 200 {
		pool := make(chan []byte, 4)
		sg := &segment{data: make([]byte, 10), pool: pool}
		var wg sync.WaitGroup
		for range 4 {
			sg.refs.Add(1)
			wg.Go(func() {
				_ = sg.data[0]
				sg.release()
			})
		}
		wg.Go(sg.retire)
		wg.Wait()
		require.Len(t, pool, 1)
	}
}
