package cmaf

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/unit"
)

// Codec strings of real streams are checked in TestSegmenterStreams, against the
// configuration records of the init segment. These are the cases without usable
// parameters.
func TestCodecUnknown(t *testing.T) {
	cases := []struct {
		name  string
		track *unit.Track
	}{
		{"h264 without sps", &unit.Track{Codec: unit.CodecH264}},
		{"h264 short sps", &unit.Track{Codec: unit.CodecH264, SPS: []byte{0x67, 0x64}}},
		{"h264 pps as sps", &unit.Track{Codec: unit.CodecH264, SPS: []byte{0x68, 0x64, 0, 0x1f}}},
		{"h265 without sps", &unit.Track{Codec: unit.CodecH265}},
		{"h265 short sps", &unit.Track{Codec: unit.CodecH265, SPS: []byte{0x42, 0x01, 0x01, 0x01}}},
		{"av1 without sequence header", &unit.Track{Codec: unit.CodecAV1}},
		{"av1 bad sequence header", &unit.Track{Codec: unit.CodecAV1, AV1SequenceHeader: []byte{0x0a, 0x01}}},
		{"aac without config", &unit.Track{Codec: unit.CodecAAC}},
		{"unknown codec", &unit.Track{}},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			require.Empty(t, Codec(ca.track))
		})
	}
	require.Equal(t, "opus", Codecs([]*unit.Track{{Codec: unit.CodecH264}, {Codec: unit.CodecOpus}}))
}

func TestResolution(t *testing.T) {
	cases := []struct {
		name   string
		tracks []*unit.Track
		w, h   int
	}{
		{"no tracks", nil, 0, 0},
		{"audio only", []*unit.Track{{Codec: unit.CodecAAC}}, 0, 0},
		{"from the track", []*unit.Track{{Codec: unit.CodecAAC}, {Codec: unit.CodecH264, Width: 1280, Height: 720}}, 1280, 720},
		{"unknown", []*unit.Track{{Codec: unit.CodecH265, SPS: []byte{0x42}}}, 0, 0},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			w, h := Resolution(ca.tracks)
			require.Equal(t, ca.w, w)
			require.Equal(t, ca.h, h)
		})
	}
}

func TestBandwidth(t *testing.T) {
	cases := []struct {
		name          string
		segments      []*Segment
		peak, average int
	}{
		{"none", nil, 0, 0},
		{"empty", []*Segment{{Size: 100}}, 0, 0},
		{"two", []*Segment{
			{Duration: 2 * time.Second, Size: 500_000},
			{Duration: 1 * time.Second, Size: 500_000},
		}, 4_000_000, 2_666_666},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			peak, average := Bandwidth(ca.segments)
			require.Equal(t, ca.peak, peak)
			require.Equal(t, ca.average, average)
		})
	}
}
