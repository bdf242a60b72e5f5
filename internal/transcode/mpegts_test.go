package transcode

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/unit"
)

var (
	tsTracks = []*unit.Track{
		{Codec: unit.CodecH264, SPS: []byte{0x67, 0x42, 0xc0, 0x1e}, PPS: []byte{0x68, 0xce, 0x3c, 0x80}},
		{Codec: unit.CodecAAC, AACConfig: []byte{0x11, 0x90}, SampleRate: 48000, ChannelCount: 2},
	}
	tsPlan = plan{video: 0, audio: 1}
)

// tsSample writes a few units on the hub timeline as ffmpeg's input is written.
func tsSample(t testing.TB, start time.Duration) []byte {
	var buf bytes.Buffer
	in, err := newTSInput(&buf, tsTracks, tsPlan)
	require.NoError(t, err)
	for i := 0; i < 3; i++ {
		d := start + time.Duration(i)*40*time.Millisecond
		nal := []byte{0x01, 0x9a, byte(i)}
		if i == 0 {
			nal = []byte{0x65, 0x88, 0x84}
		}
		require.NoError(t, in.write(&unit.Unit{Track: 0, DTS: d, PTS: d + 40*time.Millisecond, Key: i == 0,
			Payload: [][]byte{tsTracks[0].SPS, tsTracks[0].PPS, nal}}))
		require.NoError(t, in.write(&unit.Unit{Track: 1, DTS: d, PTS: d, Key: true, Payload: [][]byte{{0x21, 0x10, byte(i)}}}))
	}
	require.NoError(t, in.flush())
	return buf.Bytes()
}

// TestTSRoundTrip reads back what tsInput writes: the hub timestamps come back as they
// were (what -copyts preserves through ffmpeg), key units carry their parameter sets.
func TestTSRoundTrip(t *testing.T) {
	start := 5*time.Second + 20*time.Millisecond
	var got []*unit.Unit
	var tracks []*unit.Track
	require.NoError(t, readTS(bytes.NewReader(tsSample(t, start)), func(u *unit.Unit, tr []*unit.Track) error {
		got, tracks = append(got, u), tr
		return nil
	}))
	require.Len(t, tracks, 2)
	require.Equal(t, tsTracks[0].SPS, tracks[0].SPS)
	require.Equal(t, unit.CodecAAC, tracks[1].Codec)
	var video []*unit.Unit
	for _, u := range got {
		if u.Track == 0 {
			video = append(video, u)
		}
	}
	require.GreaterOrEqual(t, len(video), 2) // the writer holds nothing back but the reader may keep the last PES
	require.Equal(t, start, video[0].DTS)
	require.Equal(t, start+40*time.Millisecond, video[0].PTS)
	require.True(t, video[0].Key)
	require.Equal(t, start+40*time.Millisecond, video[1].DTS)
}

// FuzzReadTS feeds readTS arbitrary bytes: it returns an error or nil, never panics.
func FuzzReadTS(f *testing.F) {
	f.Add(tsSample(f, 0))
	f.Add(tsSample(f, 26*time.Hour)) // past the 33-bit wrap
	f.Add([]byte{0x47, 0x40, 0x00, 0x10})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = readTS(bytes.NewReader(b), func(u *unit.Unit, tr []*unit.Track) error {
			if u.Track < 0 || u.Track >= len(tr) {
				t.Fatalf("unit of track %d with %d tracks", u.Track, len(tr))
			}
			return nil
		})
	})
}
