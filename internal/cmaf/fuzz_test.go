package cmaf

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/unit"
)

// fuzzStreams are the real streams whose tracks the fuzz targets use.
func fuzzStreams(f *testing.F) []*media {
	f.Helper()
	return []*media{
		streamCases[0].mustMedia(f), // h264 aac
		streamCases[4].mustMedia(f), // h265 aac
		streamCases[5].mustMedia(f), // av1 opus
		streamCases[7].mustMedia(f), // mp3
	}
}

func FuzzCodec(f *testing.F) {
	for _, m := range fuzzStreams(f) {
		for _, tr := range m.tracks {
			for _, p := range [][]byte{tr.SPS, tr.AV1SequenceHeader, tr.AACConfig} {
				if p != nil {
					f.Add(uint8(tr.Codec), p)
				}
			}
		}
	}
	f.Add(uint8(unit.CodecH265), []byte{0x42, 0x01, 0x01, 0x01})
	f.Add(uint8(unit.CodecAV1), []byte{0x0a, 0x01})

	f.Fuzz(func(t *testing.T, codec uint8, params []byte) {
		tr := &unit.Track{Codec: unit.Codec(codec), SPS: params, AV1SequenceHeader: params, AACConfig: params}
		Codec(tr)
		Resolution([]*unit.Track{tr})
		ptl, ok := h265PTL(params)
		if ok {
			require.Len(t, ptl, 12)
		}
	})
}

// fuzzUnits encodes units as FuzzSegmenter reads them: per unit, the track, a key flag, the
// DTS step in 100 µs, the PTS offset in ms, the payload length and the payload, whose
// elements are each prefixed by a 2-byte length.
func fuzzUnits(units []*unit.Unit, maxPayload int) []byte {
	var b []byte
	var last time.Duration
	for _, u := range units {
		var payload []byte
		for _, p := range u.Payload {
			p = p[:min(len(p), maxPayload)]
			payload = binary.BigEndian.AppendUint16(payload, uint16(len(p)))
			payload = append(payload, p...)
		}
		key := byte(0)
		if u.Key {
			key = 1
		}
		b = append(b, byte(u.Track), key)
		b = binary.BigEndian.AppendUint16(b, uint16((u.DTS-last)/(100*time.Microsecond)))
		b = append(b, byte((u.PTS-u.DTS)/time.Millisecond))
		b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
		b = append(b, payload...)
		last = u.DTS
	}
	return b
}

func FuzzSegmenter(f *testing.F) {
	streams := fuzzStreams(f)
	for i, m := range streams {
		f.Add(uint8(i), fuzzUnits(m.units[:min(len(m.units), 12)], 64))
	}

	f.Fuzz(func(t *testing.T, set uint8, data []byte) {
		runFuzzSegmenter(t, streams[int(set)%len(streams)], data)
	})
}

// runFuzzSegmenter feeds the units encoded in data (see fuzzUnits) to a Segmenter with the
// tracks of m, and checks that every part parses.
func runFuzzSegmenter(t *testing.T, m *media, data []byte) {
	o := &output{}
	s := &Segmenter{Tracks: m.tracks, MaxPartSize: 64 << 10, PartTarget: 50 * time.Millisecond,
		SegmentTarget: 200 * time.Millisecond, MaxSegmentDuration: time.Second}
	o.attach(s)
	require.NoError(t, s.Start())

	var dts time.Duration
	for len(data) >= 7 {
		track, key := int(data[0]%4), data[1]&1 != 0
		dts += time.Duration(binary.BigEndian.Uint16(data[2:])) * 100 * time.Microsecond
		pts := dts + time.Duration(data[4])*time.Millisecond
		n := min(int(binary.BigEndian.Uint16(data[5:])), len(data)-7)
		payload := data[7 : 7+n]
		data = data[7+n:]

		u := &unit.Unit{Track: track, DTS: dts, PTS: pts, Key: key}
		for len(payload) >= 2 {
			l := min(int(binary.BigEndian.Uint16(payload)), len(payload)-2)
			u.Payload = append(u.Payload, payload[2:2+l])
			u.Size += l
			payload = payload[2+l:]
		}
		_ = s.WriteUnit(u) // refusals are fine; panics are not
	}
	s.Close()

	for _, p := range o.parts {
		require.GreaterOrEqual(t, p.Duration, time.Duration(0))
		var parts fmp4.Parts
		require.NoError(t, parts.Unmarshal(p.Data))
		require.Len(t, parts, 1)
	}
	for _, seg := range o.segments {
		require.NotEmpty(t, seg.Parts)
	}
}
