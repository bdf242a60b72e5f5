package rtmp

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/abema/go-mp4"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"

	"github.com/onair/onair/internal/unit"
)

// maxNALUs bounds the NAL units of one access unit.
const maxNALUs = 1024

var (
	errNoNALUs   = errors.New("access unit without nal units")
	errEmptyAU   = errors.New("empty access unit")
	errNALULimit = fmt.Errorf("access unit has more than %d nal units", maxNALUs)
)

// ingestTrack is one elementary stream received from a publisher.
type ingestTrack struct {
	track  *unit.Track // the codec parameters; nil until the sequence header is known
	nalLen int         // H.264/H.265: size of the NAL unit length prefix (1 to 4)
}

// splitNALUs splits a length-prefixed access unit (ISO/IEC 14496-15, section 5.3.4.2)
// into NAL units, skipping empty ones. The NAL units share buf.
func splitNALUs(buf []byte, lenSize int) ([][]byte, error) {
	if lenSize < 1 || lenSize > 4 {
		return nil, fmt.Errorf("nal unit length size %d out of range [1, 4]", lenSize)
	}
	n := 0
	for pos := 0; pos < len(buf); {
		if len(buf)-pos < lenSize {
			return nil, fmt.Errorf("truncated nal unit length at %d of %d", pos, len(buf))
		}
		l := 0
		for i := range lenSize {
			l = l<<8 | int(buf[pos+i])
		}
		pos += lenSize
		if l > len(buf)-pos {
			return nil, fmt.Errorf("nal unit length %d exceeds the %d bytes left", l, len(buf)-pos)
		}
		pos += l
		if l > 0 {
			n++
		}
	}
	if n == 0 {
		return nil, errNoNALUs
	}
	if n > maxNALUs {
		return nil, errNALULimit
	}
	out := make([][]byte, 0, n+3)
	for pos := 0; pos < len(buf); {
		l := 0
		for i := range lenSize {
			l = l<<8 | int(buf[pos+i])
		}
		pos += lenSize
		if l > 0 {
			out = append(out, buf[pos:pos+l])
		}
		pos += l
	}
	return out, nil
}

// h264Track builds a track from an AVC decoder configuration record.
// gortmplib guarantees a non-empty SPS and PPS.
func h264Track(c *mp4.AVCDecoderConfiguration) *ingestTrack {
	t := &unit.Track{
		Codec: unit.CodecH264,
		SPS:   c.SequenceParameterSets[0].NALUnit,
		PPS:   c.PictureParameterSets[0].NALUnit,
	}
	var sps h264.SPS
	if sps.Unmarshal(t.SPS) == nil {
		t.Width, t.Height = sps.Width(), sps.Height()
	}
	return &ingestTrack{track: t, nalLen: int(c.LengthSizeMinusOne) + 1}
}

// h265Track builds a track from an HEVC decoder configuration record.
func h265Track(c *mp4.HvcC) (*ingestTrack, error) {
	t := &unit.Track{Codec: unit.CodecH265}
	for _, arr := range c.NaluArrays {
		if len(arr.Nalus) == 0 || len(arr.Nalus[0].NALUnit) == 0 {
			continue
		}
		switch h265.NALUType(arr.NaluType & 0x3F) {
		case h265.NALUType_VPS_NUT:
			t.VPS = arr.Nalus[0].NALUnit
		case h265.NALUType_SPS_NUT:
			t.SPS = arr.Nalus[0].NALUnit
		case h265.NALUType_PPS_NUT:
			t.PPS = arr.Nalus[0].NALUnit
		}
	}
	if t.VPS == nil || t.SPS == nil || t.PPS == nil {
		return nil, errors.New("h265 configuration without vps, sps and pps")
	}
	var sps h265.SPS
	if sps.Unmarshal(t.SPS) == nil {
		t.Width, t.Height = sps.Width(), sps.Height()
	}
	return &ingestTrack{track: t, nalLen: int(c.LengthSizeMinusOne) + 1}, nil
}

// av1Track builds a track from an AV1 codec configuration record. The sequence header
// may be missing there; it is then taken from the first key frame (see setAV1SequenceHeader).
func av1Track(c *mp4.Av1C) (*ingestTrack, error) {
	t := &unit.Track{Codec: unit.CodecAV1}
	if len(c.ConfigOBUs) > 0 {
		var bs av1.Bitstream
		if err := bs.Unmarshal(c.ConfigOBUs); err != nil {
			return nil, fmt.Errorf("av1 configuration: %w", err)
		}
		for _, obu := range bs {
			if av1.OBUType((obu[0]>>3)&0x0F) == av1.OBUTypeSequenceHeader {
				setAV1SequenceHeader(t, obu)
				break
			}
		}
	}
	return &ingestTrack{track: t}, nil
}

func setAV1SequenceHeader(t *unit.Track, obu []byte) {
	t.AV1SequenceHeader = obu
	var sh av1.SequenceHeader
	if sh.Unmarshal(obu) == nil {
		t.Width, t.Height = sh.Width(), sh.Height()
	}
}

// aacTrack builds a track from an AudioSpecificConfig.
func aacTrack(c *mpeg4audio.AudioSpecificConfig) (*ingestTrack, error) {
	b, err := c.Marshal()
	if err != nil {
		return nil, fmt.Errorf("aac configuration: %w", err)
	}
	t := &unit.Track{Codec: unit.CodecAAC, AACConfig: b, SampleRate: c.SampleRate}
	if c.ExtensionSampleRate != 0 {
		t.SampleRate = c.ExtensionSampleRate
	}
	switch {
	case c.ChannelConfig >= 1 && c.ChannelConfig <= 6:
		t.ChannelCount = int(c.ChannelConfig)
	case c.ChannelConfig == 7:
		t.ChannelCount = 8
	}
	return &ingestTrack{track: t}, nil
}

func opusTrack(h *opus.IDHeader) *ingestTrack {
	return &ingestTrack{track: &unit.Track{
		Codec:        unit.CodecOpus,
		SampleRate:   48000,
		ChannelCount: int(h.ChannelCount),
	}}
}

// sameTrack reports whether two tracks have the same codec parameters.
func sameTrack(a, b *unit.Track) bool {
	return a.Codec == b.Codec &&
		bytes.Equal(a.VPS, b.VPS) && bytes.Equal(a.SPS, b.SPS) && bytes.Equal(a.PPS, b.PPS) &&
		bytes.Equal(a.AV1SequenceHeader, b.AV1SequenceHeader) && bytes.Equal(a.AACConfig, b.AACConfig) &&
		a.SampleRate == b.SampleRate && a.ChannelCount == b.ChannelCount
}

// videoUnit converts the payload of a video message to a unit. H.264/H.265 key units get
// the parameter sets in band (RTMP sends them only in the sequence header). A message
// without any NAL unit or OBU (some encoders send empty frames) gives a nil unit.
func (it *ingestTrack) videoUnit(payload []byte, dts, cts time.Duration) (*unit.Unit, error) {
	t := it.track
	u := &unit.Unit{DTS: dts, PTS: dts + cts}
	switch t.Codec {
	case unit.CodecH264, unit.CodecH265:
		nalus, err := splitNALUs(payload, it.nalLen)
		if errors.Is(err, errNoNALUs) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if t.Codec == unit.CodecH264 {
			u.Key = h264.IsRandomAccess(nalus)
		} else {
			u.Key = h265.IsRandomAccess(nalus)
		}
		if u.Key {
			nalus = withParams(t, nalus)
		}
		u.Payload = nalus

	case unit.CodecAV1:
		if len(payload) == 0 {
			return nil, nil
		}
		var bs av1.Bitstream
		if err := bs.Unmarshal(payload); err != nil {
			return nil, fmt.Errorf("av1 temporal unit: %w", err)
		}
		obus := bs[:0]
		for _, obu := range bs {
			switch av1.OBUType((obu[0] >> 3) & 0x0F) {
			case av1.OBUTypeTemporalDelimiter:
				continue // ISO BMFF and MPEG-TS carriage drop them; RTMP play adds one back
			case av1.OBUTypeSequenceHeader:
				u.Key = true
				if t.AV1SequenceHeader == nil {
					setAV1SequenceHeader(t, obu)
				}
			}
			obus = append(obus, obu)
		}
		if len(obus) == 0 {
			return nil, nil // temporal delimiters only
		}
		u.Payload = obus

	default:
		return nil, fmt.Errorf("video message for %v track", t.Codec)
	}
	for _, p := range u.Payload {
		u.Size += len(p)
	}
	return u, nil
}

// withParams inserts the track's parameter sets before the first slice of a key access
// unit (after an access unit delimiter), unless the unit already carries an SPS.
func withParams(t *unit.Track, nalus [][]byte) [][]byte {
	var params [][]byte
	aud := false
	if t.Codec == unit.CodecH264 {
		for _, n := range nalus {
			if h264.NALUType(n[0]&0x1F) == h264.NALUTypeSPS {
				return nalus
			}
		}
		aud = h264.NALUType(nalus[0][0]&0x1F) == h264.NALUTypeAccessUnitDelimiter
		params = [][]byte{t.SPS, t.PPS}
	} else {
		for _, n := range nalus {
			if h265.NALUType((n[0]>>1)&0x3F) == h265.NALUType_SPS_NUT {
				return nalus
			}
		}
		aud = h265.NALUType((nalus[0][0]>>1)&0x3F) == h265.NALUType_AUD_NUT
		params = [][]byte{t.VPS, t.SPS, t.PPS}
	}
	out := make([][]byte, 0, len(nalus)+len(params))
	if aud {
		out = append(out, nalus[0])
		nalus = nalus[1:]
	}
	out = append(out, params...)
	return append(out, nalus...)
}

// audioUnit wraps one audio frame.
func audioUnit(frame []byte, dts time.Duration) (*unit.Unit, error) {
	if len(frame) == 0 {
		return nil, errEmptyAU
	}
	return &unit.Unit{DTS: dts, PTS: dts, Key: true, Payload: [][]byte{frame}, Size: len(frame)}, nil
}

// mp3Header is the header of an MPEG-1, MPEG-2 or MPEG-2.5 Layer III frame
// (ISO/IEC 11172-3 section 2.4.1.3, ISO/IEC 13818-3 section 2.4.1.3).
type mp3Header struct {
	SampleRate   int
	ChannelCount int
	FrameLen     int // bytes, header included
	Samples      int // per frame
}

var (
	mp3BitratesV1 = [16]int{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0}
	mp3BitratesV2 = [16]int{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0}
	mp3Rates      = [4][3]int{
		{11025, 12000, 8000},  // MPEG-2.5
		{},                    // reserved
		{22050, 24000, 16000}, // MPEG-2
		{44100, 48000, 32000}, // MPEG-1
	}
)

func parseMP3Header(b []byte) (mp3Header, error) {
	var h mp3Header
	if len(b) < 4 {
		return h, fmt.Errorf("mp3 frame of %d bytes, want at least 4", len(b))
	}
	if b[0] != 0xFF || b[1]&0xE0 != 0xE0 {
		return h, errors.New("mp3 frame sync not found")
	}
	version := (b[1] >> 3) & 0x03 // 0: 2.5, 1: reserved, 2: MPEG-2, 3: MPEG-1
	layer := (b[1] >> 1) & 0x03   // 1: layer III
	if version == 1 {
		return h, errors.New("mp3 frame with reserved version")
	}
	if layer != 1 {
		return h, fmt.Errorf("mpeg audio layer %d not supported, want layer 3", 4-layer)
	}
	bitrateIdx := b[2] >> 4
	rateIdx := (b[2] >> 2) & 0x03
	if bitrateIdx == 0 || bitrateIdx == 15 {
		return h, fmt.Errorf("mp3 bitrate index %d not supported", bitrateIdx)
	}
	if rateIdx == 3 {
		return h, errors.New("mp3 frame with reserved sample rate")
	}
	padding := int(b[2]>>1) & 1
	h.SampleRate = mp3Rates[version][rateIdx]
	h.ChannelCount = 2
	if b[3]>>6 == 3 {
		h.ChannelCount = 1
	}
	if version == 3 {
		h.FrameLen = 144*mp3BitratesV1[bitrateIdx]*1000/h.SampleRate + padding
		h.Samples = 1152
	} else {
		h.FrameLen = 72*mp3BitratesV2[bitrateIdx]*1000/h.SampleRate + padding
		h.Samples = 576
	}
	return h, nil
}

// splitMP3 splits an audio message payload into MP3 frames. A last frame shorter than its
// header announces is kept as it is.
func splitMP3(b []byte) ([][]byte, mp3Header, error) {
	var frames [][]byte
	var first mp3Header
	for len(b) > 0 {
		h, err := parseMP3Header(b)
		if err != nil {
			return nil, first, err
		}
		if frames == nil {
			first = h
		}
		n := min(h.FrameLen, len(b))
		frames = append(frames, b[:n])
		b = b[n:]
	}
	if frames == nil {
		return nil, first, errEmptyAU
	}
	return frames, first, nil
}

func mp3Track(h mp3Header) *ingestTrack {
	return &ingestTrack{track: &unit.Track{
		Codec:        unit.CodecMP3,
		SampleRate:   h.SampleRate,
		ChannelCount: h.ChannelCount,
	}}
}

// streamMeta is what onMetaData announces.
type streamMeta struct {
	seen  bool
	video bool
	audio bool
}

// parseMetadata reads an @setDataFrame/onMetaData data message. ok is false for other
// data messages.
func parseMetadata(d amf0.Data) (streamMeta, bool) {
	if len(d) > 0 && d[0] == "@setDataFrame" {
		d = d[1:]
	}
	if len(d) < 2 || d[0] != "onMetaData" {
		return streamMeta{}, false
	}
	var obj amf0.Object
	switch o := d[1].(type) {
	case amf0.Object:
		obj = o
	case amf0.ECMAArray:
		obj = amf0.Object(o)
	default:
		return streamMeta{}, false
	}
	announced := func(key string) bool {
		v, ok := obj.Get(key)
		if !ok {
			return false
		}
		switch v := v.(type) {
		case float64:
			return v != 0
		case string:
			return v != ""
		}
		return false
	}
	return streamMeta{seen: true, video: announced("videocodecid"), audio: announced("audiocodecid")}, true
}
