package cmaf

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/unit"
)

func TestSegmenterStartErrors(t *testing.T) {
	m := h264AAC("320x240", 1, 30).mustMedia(t)
	video, audio := m.tracks[0], m.tracks[1]

	cases := []struct {
		name   string
		tracks []*unit.Track
		err    string
	}{
		{"no tracks", nil, "no tracks"},
		{"h264 without sps", []*unit.Track{{Codec: unit.CodecH264, PPS: video.PPS}}, "track 0: h264 track without sps or pps"},
		{"h264 with a bad sps", []*unit.Track{{Codec: unit.CodecH264, SPS: []byte{0x67, 1}, PPS: video.PPS}},
			"marshal init: unable to parse H264 SPS: not enough bits"},
		{"h265 without vps", []*unit.Track{{Codec: unit.CodecH265, SPS: video.SPS, PPS: video.PPS}},
			"track 0: h265 track without vps, sps or pps"},
		{"av1 without sequence header", []*unit.Track{{Codec: unit.CodecAV1}}, "track 0: av1 track without sequence header"},
		{"aac without config", []*unit.Track{video, {Codec: unit.CodecAAC}}, "track 1: aac config: not enough bits"},
		{"mp3 without sample rate", []*unit.Track{video, {Codec: unit.CodecMP3}}, "track 1: mp3 track without sample rate"},
		{"opus 6 channels", []*unit.Track{{Codec: unit.CodecOpus, ChannelCount: 6}},
			"track 0: opus with 6 channels (at most 2 are supported)"},
		{"unknown codec", []*unit.Track{audio, {}}, "track 1: unsupported codec unknown"},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			inits := 0
			s := &Segmenter{Tracks: ca.tracks, OnInit: func([]byte) { inits++ }}
			require.EqualError(t, s.Start(), ca.err)
			require.Zero(t, inits)
		})
	}
}

func TestSegmenterUnitErrors(t *testing.T) {
	m := h264AAC("320x240", 1, 30).mustMedia(t)
	s := &Segmenter{Tracks: m.tracks, MaxPartSize: 100 << 10}
	require.ErrorIs(t, s.WriteUnit(m.units[0]), ErrNotStarted)
	require.ErrorIs(t, s.Reset(m.tracks), ErrNotStarted)
	require.NoError(t, s.Start())
	require.EqualError(t, s.Start(), "segmenter already started")

	require.NoError(t, s.WriteUnit(m.units[0]))
	require.NoError(t, s.WriteUnit(m.units[1]))

	cases := []struct {
		name string
		u    *unit.Unit
		err  string
	}{
		{"unknown track", &unit.Unit{Track: 2, Payload: [][]byte{{1}}, Size: 1}, "invalid unit: track 2 of 2"},
		{"negative track", &unit.Unit{Track: -1}, "invalid unit: track -1 of 2"},
		{"dts backwards", shifted(m.units[1], -m.units[1].DTS-1),
			fmt.Sprintf("invalid unit: track %d dts -1ns before %v", m.units[1].Track, m.units[1].DTS)},
		{"too large", &unit.Unit{Track: 1, DTS: m.units[1].DTS, Payload: [][]byte{make([]byte, 100<<10+1)}, Size: 100<<10 + 1},
			"invalid unit: 102401 bytes, more than 102400"},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			err := s.WriteUnit(ca.u)
			require.ErrorIs(t, err, ErrInvalidUnit)
			require.EqualError(t, err, ca.err)
		})
	}

	// A Reset to tracks that cannot be used leaves the segmenter waiting for a good one.
	require.EqualError(t, s.Reset([]*unit.Track{{Codec: unit.CodecMP3}}), "track 0: mp3 track without sample rate")
	require.ErrorIs(t, s.WriteUnit(m.units[2]), ErrNoTracks)
	require.NoError(t, s.Reset(m.tracks))
	for _, u := range m.units[2:] {
		require.NoError(t, s.WriteUnit(u))
	}
	s.Close()
}
