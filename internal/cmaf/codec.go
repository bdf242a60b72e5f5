package cmaf

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/onair/onair/internal/unit"
)

// Codec returns the RFC 6381 codec string of a track, as used in the HLS CODECS
// attribute and the DASH @codecs attribute: "avc1.64001f", "hvc1.1.6.L93.B0",
// "av01.0.08M.08", "mp4a.40.2" (the AAC object type), "opus", or "mp4a.40.34" for MP3.
// It returns "" when the track's parameters are missing or cannot be parsed.
//
// MP3 is written with the MPEG-1 audio object type indication (0x6B) in its esds box, as
// mediacommon and ffmpeg do, whose literal RFC 6381 form is "mp4a.6B". Codec returns
// "mp4a.40.34" instead, the string that Apple's HLS authoring spec lists for MP3 and that
// hls.js recognises (it maps it to an "audio/mpeg" or "mp3" SourceBuffer). No string makes
// MP3-in-MP4 play through Chromium's MediaSource (156 accepts neither "mp4a.40.34" nor
// "mp4a.6B", "mp4a.69" or "mp3" in audio/mp4), so browsers should get MP3 as MPEG-TS.
func Codec(t *unit.Track) string {
	switch t.Codec {
	case unit.CodecH264:
		return codecH264(t.SPS)
	case unit.CodecH265:
		return codecH265(t.SPS)
	case unit.CodecAV1:
		return codecAV1(t.AV1SequenceHeader)
	case unit.CodecAAC:
		var asc mpeg4audio.AudioSpecificConfig
		if err := asc.Unmarshal(t.AACConfig); err != nil {
			return ""
		}
		return "mp4a.40." + strconv.Itoa(int(asc.Type))
	case unit.CodecMP3:
		return "mp4a.40.34"
	case unit.CodecOpus:
		return "opus"
	}
	return ""
}

// Codecs returns the codec strings of the tracks joined by commas (the form of the HLS
// CODECS attribute), leaving out tracks whose string is unknown.
func Codecs(tracks []*unit.Track) string {
	var parts []string
	for _, t := range tracks {
		if c := Codec(t); c != "" {
			parts = append(parts, c)
		}
	}
	return strings.Join(parts, ",")
}

// codecH264 returns "avc1.PPCCLL": profile_idc, the constraint flags byte and level_idc,
// the three bytes after the NAL unit header of the SPS (ISO/IEC 14496-15, E.3).
func codecH264(sps []byte) string {
	if len(sps) < 4 || h264.NALUType(sps[0]&0x1f) != h264.NALUTypeSPS {
		return ""
	}
	return fmt.Sprintf("avc1.%02x%02x%02x", sps[1], sps[2], sps[3])
}

// h265PTL returns the 12 bytes of the general profile_tier_level of an H.265 SPS, without
// emulation prevention: general_profile_space(2) general_tier_flag(1)
// general_profile_idc(5), 32 compatibility flags, 48 bits of constraint flags and
// general_level_idc. They are the bytes 1 to 12 of an HEVCDecoderConfigurationRecord.
func h265PTL(sps []byte) ([]byte, bool) {
	if len(sps) < 3 || h265.NALUType((sps[0]>>1)&0x3f) != h265.NALUType_SPS_NUT {
		return nil, false
	}
	// After the 2-byte NAL unit header: 1 byte of sps_video_parameter_set_id,
	// sps_max_sub_layers_minus1 and sps_temporal_id_nesting_flag, then the PTL.
	b := h264.EmulationPreventionRemove(sps[1:])
	if len(b) < 2+12 {
		return nil, false
	}
	return b[2 : 2+12], true
}

// codecH265 returns "hvc1.[space]profile.compat.(L|H)level[.constraints]"
// (ISO/IEC 14496-15, E.3) from the general profile_tier_level of the SPS.
func codecH265(sps []byte) string {
	b, ok := h265PTL(sps)
	if !ok {
		return ""
	}
	space := b[0] >> 6
	tier := "L"
	if b[0]&0x20 != 0 {
		tier = "H"
	}
	profile := b[0] & 0x1f
	compat := uint32(b[1])<<24 | uint32(b[2])<<16 | uint32(b[3])<<8 | uint32(b[4])
	constraints := b[5:11]
	level := b[11]

	var sb strings.Builder
	sb.WriteString("hvc1.")
	sb.WriteString([]string{"", "A", "B", "C"}[space])
	sb.WriteString(strconv.Itoa(int(profile)))
	sb.WriteString(".")
	sb.WriteString(strings.ToUpper(strconv.FormatUint(uint64(bits.Reverse32(compat)), 16)))
	sb.WriteString(".")
	sb.WriteString(tier)
	sb.WriteString(strconv.Itoa(int(level)))
	last := len(constraints)
	for last > 0 && constraints[last-1] == 0 {
		last--
	}
	for _, c := range constraints[:last] {
		sb.WriteString(".")
		sb.WriteString(strings.ToUpper(strconv.FormatUint(uint64(c), 16)))
	}
	return sb.String()
}

// codecAV1 returns "av01.P.LLT.DD" (AV1 Codec ISO Media File Format Binding, Codecs
// Parameter String).
func codecAV1(seqHeader []byte) string {
	var sh av1.SequenceHeader
	if err := sh.Unmarshal(seqHeader); err != nil || len(sh.SeqLevelIdx) == 0 || len(sh.SeqTier) == 0 {
		return ""
	}
	tier := "M"
	if sh.SeqTier[0] {
		tier = "H"
	}
	depth := 8
	switch {
	case sh.ColorConfig.TwelveBit:
		depth = 12
	case sh.ColorConfig.HighBitDepth:
		depth = 10
	}
	return fmt.Sprintf("av01.%d.%02d%s.%02d", sh.SeqProfile, sh.SeqLevelIdx[0], tier, depth)
}

// Resolution returns the picture size of the first video track: its Width and Height when
// set, or else the size read from its parameter sets. It returns zeros when there is no
// video track or the size is unknown.
func Resolution(tracks []*unit.Track) (width, height int) {
	for _, t := range tracks {
		if !t.IsVideo() {
			continue
		}
		if t.Width > 0 && t.Height > 0 {
			return t.Width, t.Height
		}
		switch t.Codec {
		case unit.CodecH264:
			var sps h264.SPS
			if err := sps.Unmarshal(t.SPS); err == nil {
				return sps.Width(), sps.Height()
			}
		case unit.CodecH265:
			var sps h265.SPS
			if err := sps.Unmarshal(t.SPS); err == nil {
				return sps.Width(), sps.Height()
			}
		case unit.CodecAV1:
			var sh av1.SequenceHeader
			if err := sh.Unmarshal(t.AV1SequenceHeader); err == nil {
				return sh.Width(), sh.Height()
			}
		}
		return 0, 0
	}
	return 0, 0
}

// Bandwidth returns the peak and the average bit rate of segments, in bits per second:
// peak is the highest bit rate of a single segment (the HLS BANDWIDTH attribute and the
// DASH @bandwidth), average is the total size over the total duration (HLS
// AVERAGE-BANDWIDTH). Segments with no duration are left out. Both are zero when there
// is nothing to measure.
func Bandwidth(segments []*Segment) (peak, average int) {
	var size int64
	var dur time.Duration
	for _, s := range segments {
		if s.Duration <= 0 {
			continue
		}
		size += int64(s.Size)
		dur += s.Duration
		if r := bitrate(int64(s.Size), s.Duration); r > peak {
			peak = r
		}
	}
	if dur > 0 {
		average = bitrate(size, dur)
	}
	return peak, average
}

func bitrate(size int64, d time.Duration) int {
	return int(float64(size) * 8 / d.Seconds())
}
