package rtmp

import (
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/onair/onair/internal/unit"
)

// Outgoing chunk stream layout. Every player gets the same ids, so that the chunk
// bytes of a media message can be shared by all of them.
const (
	// outChunkSize is the chunk size gortmplib's ServerConn.AcceptConn announces
	// (SetChunkSize 65536) and uses for its own writes.
	outChunkSize = 65536

	csidControl = 2 // protocol control and user control messages (RTMP spec 5.4, 6.2)
	csidAudio   = 4
	csidStatus  = 5 // onStatus and onMetaData, as gortmplib's onStatus messages
	csidVideo   = 6

	// playStreamID is the message stream id createStream returned (gortmplib answers 1).
	playStreamID = 1

	msgTypeUserControlEOF  = 1
	msgTypeUserControlPing = 6
)

// FLV / Enhanced RTMP tag header values (FLV spec 10.1, E-RTMP v2).
const (
	flvCodecH264    = 7
	flvCodecAAC     = 10
	flvCodecMP3     = 2
	flvFrameKey     = 1
	flvFrameInter   = 2
	flvExHeader     = 0x80
	flvAudioExFlag  = 9 << 4
	exSequenceStart = 0
	exCodedFrames   = 1
	exFramesX       = 3
)

var (
	fourCCHEVC = [4]byte{'h', 'v', 'c', '1'}
	fourCCAV1  = [4]byte{'a', 'v', '0', '1'}
	fourCCOpus = [4]byte{'O', 'p', 'u', 's'}
)

func fourCCValue(f [4]byte) float64 {
	return float64(uint32(f[0])<<24 | uint32(f[1])<<16 | uint32(f[2])<<8 | uint32(f[3]))
}

// chunkWriter packs one message into chunks: a type 0 header (absolute timestamp,
// RTMP spec 5.3.1.2.1) on the first chunk and type 3 headers on the others, each repeating
// the extended timestamp when it is in use (as ffmpeg and gortmplib expect).
type chunkWriter struct {
	buf  []byte
	left int // body bytes left in the current chunk
	csid byte
	ts   uint32
}

// chunkedSize is the number of bytes of a message of bodyLen bytes once chunked.
func chunkedSize(bodyLen int, ts uint32) int {
	ext := 0
	if ts >= 0xFFFFFF {
		ext = 4
	}
	chunks := 1
	if bodyLen > outChunkSize {
		chunks = (bodyLen + outChunkSize - 1) / outChunkSize
	}
	return 12 + ext + bodyLen + (chunks-1)*(1+ext)
}

// begin allocates the buffer for the whole message and writes the type 0 header.
func (w *chunkWriter) begin(csid byte, typ uint8, ts uint32, streamID uint32, bodyLen int) {
	w.buf = make([]byte, 0, chunkedSize(bodyLen, ts))
	w.csid, w.ts = csid, ts
	tsField := min(ts, 0xFFFFFF)
	w.buf = append(w.buf, csid,
		byte(tsField>>16), byte(tsField>>8), byte(tsField),
		byte(bodyLen>>16), byte(bodyLen>>8), byte(bodyLen),
		typ,
		// message stream id, little endian (RTMP spec 5.3.1.2.1)
		byte(streamID), byte(streamID>>8), byte(streamID>>16), byte(streamID>>24))
	if ts >= 0xFFFFFF {
		w.buf = append(w.buf, byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts))
	}
	w.left = outChunkSize
}

func (w *chunkWriter) write(p []byte) {
	for len(p) > 0 {
		if w.left == 0 {
			w.buf = append(w.buf, 3<<6|w.csid)
			if w.ts >= 0xFFFFFF {
				w.buf = append(w.buf, byte(w.ts>>24), byte(w.ts>>16), byte(w.ts>>8), byte(w.ts))
			}
			w.left = outChunkSize
		}
		k := min(len(p), w.left)
		w.buf = append(w.buf, p[:k]...)
		w.left -= k
		p = p[k:]
	}
}

func (w *chunkWriter) writeByte(b ...byte) { w.write(b) }

// rtmpTimestamp converts a timestamp to RTMP milliseconds (wrapping at 2^32 ms).
func rtmpTimestamp(d time.Duration) uint32 { return uint32(d / time.Millisecond) }

// encodeMessage chunks a message whose body is given whole.
func encodeMessage(csid byte, typ uint8, ts uint32, streamID uint32, body []byte) []byte {
	var w chunkWriter
	w.begin(csid, typ, ts, streamID, len(body))
	w.write(body)
	return w.buf
}

// encodeUnit returns the chunked RTMP message of u, a unit of track t, or nil when the
// codec cannot be carried. The bytes do not depend on the player: they are shared.
func encodeUnit(t *unit.Track, u *unit.Unit) []byte {
	ts := rtmpTimestamp(u.DTS)
	var w chunkWriter
	switch t.Codec {
	case unit.CodecH264, unit.CodecH265:
		n := 0
		for _, nalu := range u.Payload {
			n += 4 + len(nalu)
		}
		cts := int32((u.PTS - u.DTS) / time.Millisecond)
		frame := byte(flvFrameInter)
		if u.Key {
			frame = flvFrameKey
		}
		if t.Codec == unit.CodecH264 {
			w.begin(csidVideo, msgTypeVideo, ts, playStreamID, 5+n)
			w.writeByte(frame<<4|flvCodecH264, 1, byte(cts>>16), byte(cts>>8), byte(cts))
		} else if cts != 0 {
			w.begin(csidVideo, msgTypeVideo, ts, playStreamID, 8+n)
			w.writeByte(flvExHeader|frame<<4|exCodedFrames,
				fourCCHEVC[0], fourCCHEVC[1], fourCCHEVC[2], fourCCHEVC[3],
				byte(cts>>16), byte(cts>>8), byte(cts))
		} else {
			w.begin(csidVideo, msgTypeVideo, ts, playStreamID, 5+n)
			w.writeByte(flvExHeader|frame<<4|exFramesX,
				fourCCHEVC[0], fourCCHEVC[1], fourCCHEVC[2], fourCCHEVC[3])
		}
		for _, nalu := range u.Payload {
			l := len(nalu)
			w.writeByte(byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
			w.write(nalu)
		}

	case unit.CodecAV1:
		// FFmpeg wants a temporal delimiter first; OBUs carry their size (low overhead format).
		tu := make(av1.Bitstream, 0, len(u.Payload)+1)
		tu = append(tu, []byte{byte(av1.OBUTypeTemporalDelimiter) << 3})
		tu = append(tu, u.Payload...)
		enc, err := tu.Marshal()
		if err != nil {
			return nil
		}
		frame := byte(flvFrameInter)
		if u.Key {
			frame = flvFrameKey
		}
		w.begin(csidVideo, msgTypeVideo, ts, playStreamID, 5+len(enc))
		w.writeByte(flvExHeader|frame<<4|exCodedFrames, fourCCAV1[0], fourCCAV1[1], fourCCAV1[2], fourCCAV1[3])
		w.write(enc)

	case unit.CodecAAC:
		w.begin(csidAudio, msgTypeAudio, ts, playStreamID, 2+u.Size)
		w.writeByte(aacTagHeader, 1)
		writePayload(&w, u)

	case unit.CodecMP3:
		w.begin(csidAudio, msgTypeAudio, ts, playStreamID, 1+u.Size)
		w.writeByte(mp3TagHeader(t))
		writePayload(&w, u)

	case unit.CodecOpus:
		w.begin(csidAudio, msgTypeAudio, ts, playStreamID, 5+u.Size)
		w.writeByte(flvAudioExFlag|exCodedFrames, fourCCOpus[0], fourCCOpus[1], fourCCOpus[2], fourCCOpus[3])
		writePayload(&w, u)

	default:
		return nil
	}
	return w.buf
}

func writePayload(w *chunkWriter, u *unit.Unit) {
	for _, p := range u.Payload {
		w.write(p)
	}
}

// aacTagHeader is the FLV audio tag header of AAC: the rate, size and channel flags are
// always 44 kHz, 16 bit, stereo (FLV spec E.4.2.1); players read the AudioSpecificConfig.
const aacTagHeader = flvCodecAAC<<4 | 3<<2 | 1<<1 | 1

func mp3TagHeader(t *unit.Track) byte {
	rate := byte(3) // 44 kHz: also used for 48 and 32 kHz, as ffmpeg does
	switch {
	case t.SampleRate <= 12000:
		rate = 1
	case t.SampleRate <= 24000:
		rate = 2
	}
	b := byte(flvCodecMP3<<4) | rate<<2 | 1<<1
	if t.ChannelCount != 1 {
		b |= 1
	}
	return b
}

// encodeHeaders returns the onMetaData message and the sequence headers of a track list,
// chunked, to start (or restart after a publisher reconnect) a player.
//
// onMetaData has timestamp 0: ffmpeg's FLV demuxer reads it as stream metadata only then
// (otherwise it becomes a data stream). The sequence headers take ts, the timestamp of
// the first unit that follows.
func encodeHeaders(tracks []*unit.Track, ts uint32) []byte {
	out := encodeMessage(csidStatus, msgTypeData, 0, playStreamID, metadataBody(tracks))
	for _, t := range tracks {
		if b := sequenceHeader(t); b != nil {
			csid := byte(csidAudio)
			if t.IsVideo() {
				csid = csidVideo
			}
			out = append(out, encodeMessage(csid, msgTypeFor(t), ts, playStreamID, b)...)
		}
	}
	return out
}

func msgTypeFor(t *unit.Track) uint8 {
	if t.IsVideo() {
		return msgTypeVideo
	}
	return msgTypeAudio
}

// metadataBody builds onMetaData from the tracks.
func metadataBody(tracks []*unit.Track) []byte {
	meta := amf0.ECMAArray{{Key: "duration", Value: float64(0)}}
	var video, audio *unit.Track
	for _, t := range tracks {
		if t.IsVideo() && video == nil {
			video = t
		} else if !t.IsVideo() && audio == nil {
			audio = t
		}
	}
	if video != nil {
		if video.Width > 0 {
			meta = append(meta,
				amf0.ObjectEntry{Key: "width", Value: float64(video.Width)},
				amf0.ObjectEntry{Key: "height", Value: float64(video.Height)})
		}
		var id float64
		var fps float64
		switch video.Codec {
		case unit.CodecH264:
			id = flvCodecH264
			var sps h264.SPS
			if sps.Unmarshal(video.SPS) == nil {
				fps = sps.FPS()
			}
		case unit.CodecH265:
			id = fourCCValue(fourCCHEVC)
			var sps h265.SPS
			if sps.Unmarshal(video.SPS) == nil {
				fps = sps.FPS()
			}
		case unit.CodecAV1:
			id = fourCCValue(fourCCAV1)
		}
		meta = append(meta, amf0.ObjectEntry{Key: "videocodecid", Value: id})
		if fps > 0 && fps < 1000 {
			meta = append(meta, amf0.ObjectEntry{Key: "framerate", Value: fps})
		}
	}
	if audio != nil {
		var id float64
		switch audio.Codec {
		case unit.CodecAAC:
			id = flvCodecAAC
		case unit.CodecMP3:
			id = flvCodecMP3
		case unit.CodecOpus:
			id = fourCCValue(fourCCOpus)
		}
		meta = append(meta, amf0.ObjectEntry{Key: "audiocodecid", Value: id})
		if audio.SampleRate > 0 {
			meta = append(meta, amf0.ObjectEntry{Key: "audiosamplerate", Value: float64(audio.SampleRate)})
		}
		meta = append(meta,
			amf0.ObjectEntry{Key: "audiosamplesize", Value: float64(16)},
			amf0.ObjectEntry{Key: "stereo", Value: audio.ChannelCount != 1})
	}
	meta = append(meta, amf0.ObjectEntry{Key: "encoder", Value: "onair"})
	b, err := amf0.Data{"onMetaData", meta}.Marshal()
	if err != nil {
		return nil
	}
	return b
}

// sequenceHeader returns the body of the sequence header message of t (nil for MP3,
// which has none).
func sequenceHeader(t *unit.Track) []byte {
	switch t.Codec {
	case unit.CodecH264:
		if len(t.SPS) < 4 || len(t.PPS) == 0 {
			return nil
		}
		b := []byte{flvFrameKey<<4 | flvCodecH264, 0, 0, 0, 0}
		return append(b, avcConfig(t.SPS, t.PPS)...)
	case unit.CodecH265:
		if len(t.VPS) == 0 || len(t.SPS) == 0 || len(t.PPS) == 0 {
			return nil
		}
		b := []byte{flvExHeader | flvFrameKey<<4 | exSequenceStart,
			fourCCHEVC[0], fourCCHEVC[1], fourCCHEVC[2], fourCCHEVC[3]}
		return append(b, hevcConfig(t.VPS, t.SPS, t.PPS)...)
	case unit.CodecAV1:
		if len(t.AV1SequenceHeader) == 0 {
			return nil
		}
		cfg := av1Config(t.AV1SequenceHeader)
		if cfg == nil {
			return nil
		}
		b := []byte{flvExHeader | flvFrameKey<<4 | exSequenceStart,
			fourCCAV1[0], fourCCAV1[1], fourCCAV1[2], fourCCAV1[3]}
		return append(b, cfg...)
	case unit.CodecAAC:
		return append([]byte{aacTagHeader, 0}, t.AACConfig...)
	case unit.CodecOpus:
		return append([]byte{flvAudioExFlag | exSequenceStart,
			fourCCOpus[0], fourCCOpus[1], fourCCOpus[2], fourCCOpus[3]}, opusHead(t.ChannelCount)...)
	}
	return nil
}

// avcConfig builds an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1) with
// 4-byte NAL unit lengths.
func avcConfig(sps, pps []byte) []byte {
	b := make([]byte, 0, 11+len(sps)+len(pps))
	b = append(b, 1, sps[1], sps[2], sps[3], 0xFC|3, 0xE0|1, byte(len(sps)>>8), byte(len(sps)))
	b = append(b, sps...)
	b = append(b, 1, byte(len(pps)>>8), byte(len(pps)))
	return append(b, pps...)
}

// hevcConfig builds an HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1) with
// 4-byte NAL unit lengths.
func hevcConfig(vps, sps, pps []byte) []byte {
	b := make([]byte, 23, 23+3*5+len(vps)+len(sps)+len(pps))
	b[0] = 1
	rbsp := h264.EmulationPreventionRemove(sps)
	temporal := byte(1<<3 | 1<<2) // one temporal layer, nested
	if len(rbsp) >= 15 {
		// profile_tier_level: profile space/tier/idc, compatibility flags, constraint flags,
		// level: the same 12 bytes in the SPS (after its 2-byte NAL header and one byte).
		copy(b[1:13], rbsp[3:15])
		temporal = (((rbsp[2]>>1)&7)+1)<<3 | (rbsp[2]&1)<<2
	}
	chroma, depthLuma, depthChroma := byte(1), byte(0), byte(0)
	var s h265.SPS
	if s.Unmarshal(sps) == nil {
		chroma = byte(s.ChromaFormatIdc & 3)
		depthLuma = byte(s.BitDepthLumaMinus8 & 7)
		depthChroma = byte(s.BitDepthChromaMinus8 & 7)
	}
	b[13], b[14] = 0xF0, 0x00 // min_spatial_segmentation_idc 0
	b[15] = 0xFC              // parallelismType 0
	b[16] = 0xFC | chroma
	b[17] = 0xF8 | depthLuma
	b[18] = 0xF8 | depthChroma
	b[19], b[20] = 0, 0 // avgFrameRate
	b[21] = temporal | 3
	b[22] = 3
	for _, n := range [][]byte{vps, sps, pps} {
		typ := (n[0] >> 1) & 0x3F
		b = append(b, 0x80|typ, 0, 1, byte(len(n)>>8), byte(len(n)))
		b = append(b, n...)
	}
	return b
}

// av1Config builds an AV1CodecConfigurationRecord (AV1 in ISOBMFF, section 2.3) from a
// sequence header OBU.
func av1Config(obu []byte) []byte {
	var sh av1.SequenceHeader
	if sh.Unmarshal(obu) != nil {
		return nil
	}
	enc, err := av1.Bitstream{obu}.Marshal()
	if err != nil {
		return nil
	}
	flag := func(v bool, shift uint) byte {
		if v {
			return 1 << shift
		}
		return 0
	}
	var level, tier byte
	if len(sh.SeqLevelIdx) > 0 {
		level = sh.SeqLevelIdx[0] & 0x1F
	}
	if len(sh.SeqTier) > 0 {
		tier = flag(sh.SeqTier[0], 7)
	}
	cc := sh.ColorConfig
	b := []byte{
		0x81,
		sh.SeqProfile<<5 | level,
		tier | flag(cc.HighBitDepth, 6) | flag(cc.TwelveBit, 5) | flag(cc.MonoChrome, 4) |
			flag(cc.SubsamplingX, 3) | flag(cc.SubsamplingY, 2) | byte(cc.ChromaSamplePosition&3),
		0,
	}
	return append(b, enc...)
}

// opusHead builds an Opus identification header (RFC 7845 section 5.1) for mapping
// family 0 (mono or stereo).
func opusHead(channels int) []byte {
	if channels < 1 || channels > 2 {
		channels = 2
	}
	return []byte{'O', 'p', 'u', 's', 'H', 'e', 'a', 'd',
		1, byte(channels),
		0, 0, // pre-skip
		0x80, 0xBB, 0, 0, // input sample rate 48000, little endian
		0, 0, // output gain
		0, // mapping family
	}
}

// Control messages sent to players.

func encodeStreamEOF() []byte {
	return encodeMessage(csidControl, msgTypeUserControl, 0, 0,
		[]byte{0, msgTypeUserControlEOF, 0, 0, 0, playStreamID})
}

func encodePing(t uint32) []byte {
	return encodeMessage(csidControl, msgTypeUserControl, 0, 0,
		[]byte{0, msgTypeUserControlPing, byte(t >> 24), byte(t >> 16), byte(t >> 8), byte(t)})
}

func encodeStatus(code, description string) []byte {
	body, err := amf0.Data{"onStatus", float64(0), nil, amf0.Object{
		{Key: "level", Value: "status"},
		{Key: "code", Value: code},
		{Key: "description", Value: description},
	}}.Marshal()
	if err != nil {
		return nil
	}
	return encodeMessage(csidStatus, msgTypeCommand, 0, playStreamID, body)
}
