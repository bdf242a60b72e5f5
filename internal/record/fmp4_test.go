package record

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/cmaf"
	"github.com/onair/onair/internal/unit"
)

// aacSegment cuts one second of AAC frames (48 kHz, 1024 samples each, payloads of
// varied sizes) with the CMAF segmenter, and returns the first segment's bytes and
// the frames' sizes.
func aacSegment(t testing.TB) ([]byte, []int) {
	t.Helper()
	track := &unit.Track{Codec: unit.CodecAAC, AACConfig: []byte{0x11, 0x90}, SampleRate: 48000, ChannelCount: 2}
	var segs [][]byte
	s := &cmaf.Segmenter{
		Tracks:        []*unit.Track{track},
		SegmentTarget: 500 * time.Millisecond,
		OnSegment:     func(sg *cmaf.Segment) { segs = append(segs, sg.Data()) },
	}
	require.NoError(t, s.Start())
	frame := time.Duration(1024) * time.Second / 48000
	var sizes []int
	for i := range 47 {
		n := 50 + i%7*10
		sizes = append(sizes, n)
		d := time.Duration(i) * frame
		require.NoError(t, s.WriteUnit(&unit.Unit{DTS: d, PTS: d, Key: true, Payload: [][]byte{bytes.Repeat([]byte{byte(i)}, n)}, Size: n}))
	}
	s.Close()
	require.NotEmpty(t, segs)
	return segs[0], sizes
}

func TestParseFragments(t *testing.T) {
	seg, sizes := aacSegment(t)
	tfs, err := parseFragments(seg)
	require.NoError(t, err)
	require.NotEmpty(t, tfs)
	var got []int
	var dts uint64
	for _, tf := range tfs {
		require.Equal(t, uint32(1), tf.trackID)
		require.Equal(t, dts, tf.baseTime, "fragments are contiguous")
		for _, s := range tf.samples {
			require.Equal(t, uint32(1024), s.dur)
			require.True(t, s.sync)
			require.Equal(t, dts, s.dts)
			// The payload is where the sample says.
			require.Equal(t, bytes.Repeat([]byte{byte(len(got))}, int(s.size)), seg[s.offset:s.offset+int64(s.size)])
			got = append(got, int(s.size))
			dts += uint64(s.dur)
		}
	}
	require.Equal(t, sizes[:len(got)], got)

	frags, err := fragments(seg)
	require.NoError(t, err)
	require.Len(t, frags, len(tfs))
	var n int
	for _, f := range frags {
		n += len(f)
	}
	require.Equal(t, len(seg), n)

	// readFragments finds the same moofs in a stream, without reading the mdats.
	count := 0
	require.NoError(t, readFragments(bytes.NewReader(seg), func(moof []byte, pos int64) error {
		tf, err := parseMoof(moof, pos)
		require.NoError(t, err)
		require.Equal(t, tfs[count], tf[0])
		count++
		return nil
	}))
	require.Equal(t, len(tfs), count)

	_, err = parseFragments(seg[:len(seg)-1])
	require.Error(t, err)
}

func FuzzParseMoof(f *testing.F) {
	seg, _ := aacSegment(f)
	frags, err := fragments(seg)
	require.NoError(f, err)
	for _, fr := range frags {
		f.Add(fr)
	}
	f.Add([]byte{0, 0, 0, 8, 'm', 'o', 'o', 'f'})
	f.Add([]byte{0, 0, 0, 1, 'm', 'o', 'o', 'f', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		tfs, err := parseFragments(b)
		if err == nil {
			for _, tf := range tfs {
				for _, s := range tf.samples {
					require.LessOrEqual(t, s.offset+int64(s.size), int64(len(b)))
				}
			}
		}
		_ = readFragments(bytes.NewReader(b), func(moof []byte, pos int64) error {
			_, err := parseMoof(moof, pos)
			return err
		})
	})
}
