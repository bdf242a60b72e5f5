// Package unit holds the codec-level media representation that flows through the hub:
// tracks (codec parameters) and units (one access unit or audio frame with timestamps).
//
// Every output (RTMP play, HLS, DASH, recording) packs from these units, so an ingest
// protocol never leaks its container format into the rest of the system.
package unit

import (
	"sync/atomic"
	"time"
)

// Codec identifies the codec of a track.
type Codec int

// Codecs carried by the hub.
const (
	CodecH264 Codec = iota + 1
	CodecH265
	CodecAV1
	CodecAAC
	CodecMP3
	CodecOpus
)

// String returns the codec name used in APIs and logs.
func (c Codec) String() string {
	switch c {
	case CodecH264:
		return "h264"
	case CodecH265:
		return "h265"
	case CodecAV1:
		return "av1"
	case CodecAAC:
		return "aac"
	case CodecMP3:
		return "mp3"
	case CodecOpus:
		return "opus"
	}
	return "unknown"
}

// IsVideo reports whether the codec is a video codec.
func (c Codec) IsVideo() bool {
	return c == CodecH264 || c == CodecH265 || c == CodecAV1
}

// Track describes one elementary stream and the parameters a muxer needs to
// describe it. A Track is immutable once it has been handed to the hub.
type Track struct {
	// Codec of the track.
	Codec Codec

	// H.264: SPS and PPS. H.265: VPS, SPS and PPS. Raw NAL units without start codes.
	VPS []byte
	SPS []byte
	PPS []byte

	// AV1: the sequence header OBU.
	AV1SequenceHeader []byte

	// AAC: the AudioSpecificConfig bytes (ISO/IEC 14496-3).
	AACConfig []byte

	// Video: coded picture size, when known from the parameter sets (0 when unknown).
	Width  int
	Height int

	// Audio: sample rate in Hz and channel count (0 when unknown).
	SampleRate   int
	ChannelCount int
}

// IsVideo reports whether the track is a video track.
func (t *Track) IsVideo() bool { return t.Codec.IsVideo() }

// Unit is one access unit (video) or one audio frame, with timestamps on the
// stream's timeline. A Unit is immutable once it has been written to the hub
// and is shared, without copying, by every reader.
type Unit struct {
	// Track is the index of the unit's track in the stream's track list.
	Track int

	// DTS is the decode timestamp. PTS is the presentation timestamp (PTS >= DTS with B-frames).
	// Both start near zero at the start of a stream and never go backwards within a stream,
	// also across publisher reconnects (the hub rebases each publisher session).
	DTS time.Duration
	PTS time.Duration

	// Key is true for a random access point: an IDR / IRAP picture or an AV1 key frame.
	// Audio units are always Key.
	Key bool

	// Payload holds the data:
	//   - H.264/H.265: the NAL units of the access unit, without start codes. Key units carry
	//     the parameter sets (VPS/SPS/PPS) in band, before the first slice.
	//   - AV1: the OBUs of the temporal unit.
	//   - AAC: one raw access unit. MP3: one frame with its header. Opus: one packet.
	Payload [][]byte

	// Size is the sum of the payload lengths, in bytes.
	Size int

	// Received is the wall-clock time the hub received the unit (set by the hub). Units
	// replayed from the GOP cache keep their original time, so outputs can map media
	// time to the wall clock (EXT-X-PROGRAM-DATE-TIME) without the cache's age.
	Received time.Time

	encoded [numEncodings]atomic.Pointer[[]byte]
}

// Encoding identifies a shared wire encoding of a unit (see Unit.Encoded).
type Encoding int

// Encodings that outputs cache on units.
const (
	// EncodingRTMP is the unit as chunked RTMP message bytes, shared by every RTMP player.
	EncodingRTMP Encoding = iota
	numEncodings
)

// Encoded returns the unit's encoding e, computing it with enc the first time it is asked for.
// All readers of one output share the returned bytes, which must not be modified.
// Concurrent first calls may both run enc; one result wins and is returned to both.
func (u *Unit) Encoded(e Encoding, enc func(*Unit) []byte) []byte {
	if p := u.encoded[e].Load(); p != nil {
		return *p
	}
	b := enc(u)
	if u.encoded[e].CompareAndSwap(nil, &b) {
		return b
	}
	return *u.encoded[e].Load()
}
