package hls

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/substructs"

	"github.com/onair/onair/internal/unit"
)

const (
	// tsTimeOffset is added to every timestamp written in MPEG-TS (90 kHz), so that the
	// PCR, which runs 100 ms ahead of the DTS, never goes negative (ffmpeg does the same).
	tsTimeOffset = 90000

	// tsAudioBatch is the longest span of audio frames packed into one PES packet.
	// Packing saves the per-PES overhead (a PES header, and a TS packet mostly stuffing).
	tsAudioBatch = 100 * time.Millisecond

	// tsAudioBatchFrames bounds the frames of one audio PES packet.
	tsAudioBatchFrames = 16
)

// errNoTrack is returned by a segmenter constructor when no track of the session fits its container.
var errNoTrack = errors.New("no track fits the segment format")

// tsTrack is one hub track as written into MPEG-TS.
type tsTrack struct {
	codec unit.Codec
	mt    *mpegts.Track // its PMT entry
	cc    *uint8        // continuity counter of its PID, shared with the next session on the same PID

	// audio frames waiting to be written as one PES packet
	pending    [][]byte
	pendingPTS time.Duration
}

// tsSegmenter writes one publisher session into MPEG-TS segments (ISO/IEC 13818-1,
// RFC 8216 section 3.2). Each segment starts with PAT and PMT, which mediacommon's writer
// writes; the PES packets come from appendPES (tspes.go). A session with the same
// codecs as the one before keeps its writer, so that PIDs and continuity counters run on
// across the discontinuity; other codecs get a new writer on new PIDs, so that a demuxer
// that keeps its state across EXT-X-DISCONTINUITY sees new streams, not a codec change.
type tsSegmenter struct {
	tracks    []*tsTrack // by hub track index; nil when the track is left out
	order     []*tsTrack // in PMT order: the lead track first
	sig       string     // codecs in PMT order; equal signatures share a writer
	pidBase   uint16
	leadIdx   int
	leadVideo bool

	w          *mpegts.Writer // writes the tables into buf
	buf        *tsBuffer
	pcrCount   *int // lead PES packets until the next PCR
	needTables bool
	parts      [][]byte // scratch: one PES's payload pieces
}

const (
	tsFirstPID     = 256
	tsPIDStride    = 16 // PIDs per session; also the most tracks a session can have
	tsLastPIDRange = 0x1f00
)

// tsSupports reports whether MPEG-TS can carry a track of codec c.
// AV1 cannot: it is left out of TS segments.
func tsSupports(c unit.Codec) bool {
	switch c {
	case unit.CodecH264, unit.CodecH265, unit.CodecAAC, unit.CodecMP3, unit.CodecOpus:
		return true
	}
	return false
}

// newTSSegmenter prepares a TS writer for tracks, taking over the writer of the previous
// session's segmenter (nil for none) when the codecs are the same. Tracks it cannot carry
// are left out; it fails with errNoTrack when none is left.
func newTSSegmenter(tracks []*unit.Track, previous segmenter) (*tsSegmenter, error) {
	prev, _ := previous.(*tsSegmenter)
	s := &tsSegmenter{tracks: make([]*tsTrack, len(tracks)), leadIdx: -1}
	n := 0
	for i, t := range tracks {
		if t == nil || !tsSupports(t.Codec) || n == tsPIDStride {
			continue
		}
		codec, err := tsCodec(t)
		if err != nil {
			continue
		}
		s.tracks[i] = &tsTrack{codec: t.Codec, mt: &mpegts.Track{Codec: codec}, cc: new(uint8)}
		n++
	}
	// The lead track drives segment cuts and carries the PCR: the first video track, or
	// else the first audio track.
	for i, t := range s.tracks {
		if t != nil && t.codec.IsVideo() {
			s.leadIdx, s.leadVideo = i, true
			break
		}
	}
	if s.leadIdx < 0 {
		for i, t := range s.tracks {
			if t != nil {
				s.leadIdx = i
				break
			}
		}
	}
	if s.leadIdx < 0 {
		return nil, errNoTrack
	}

	// The lead track goes first in the PMT: the writer's WriteTables takes the first
	// track as PCR PID (it chooses another only on its own writes, which are not used).
	s.order = []*tsTrack{s.tracks[s.leadIdx]}
	for i, t := range s.tracks {
		if t != nil && i != s.leadIdx {
			s.order = append(s.order, t)
		}
	}
	for _, t := range s.order {
		s.sig += tsSignature(t.mt.Codec) + ";"
	}

	if prev != nil && prev.sig == s.sig {
		for k, t := range s.order {
			mt := prev.order[k].mt
			mt.Codec = t.mt.Codec // the same PMT entry; an AAC config may differ (ADTS carries it)
			t.mt, t.cc = mt, prev.order[k].cc
		}
		s.w, s.buf, s.pidBase, s.pcrCount = prev.w, prev.buf, prev.pidBase, prev.pcrCount
		return s, nil
	}

	s.pidBase = tsFirstPID
	if prev != nil && prev.pidBase+2*tsPIDStride <= tsLastPIDRange {
		s.pidBase = prev.pidBase + tsPIDStride
	}
	mts := make([]*mpegts.Track, len(s.order))
	for k, t := range s.order {
		t.mt.PID = s.pidBase + uint16(k)
		mts[k] = t.mt
	}
	s.buf = &tsBuffer{}
	s.pcrCount = new(int)
	s.w = &mpegts.Writer{W: s.buf, Tracks: mts}
	if err := s.w.Initialize(); err != nil {
		return nil, fmt.Errorf("initialize mpeg-ts writer: %w", err)
	}
	return s, nil
}

// tsSignature describes what a track puts in the PMT.
func tsSignature(c tscodecs.Codec) string {
	switch c := c.(type) {
	case *tscodecs.H264:
		return "h264"
	case *tscodecs.H265:
		return "h265"
	case *tscodecs.MPEG4Audio:
		return "aac"
	case *tscodecs.MPEG1Audio:
		return "mp3"
	case *tscodecs.Opus:
		return fmt.Sprintf("opus/%d", c.Desc.ChannelConfigCode)
	}
	return fmt.Sprintf("%T", c)
}

// tsCodec maps a hub track to its MPEG-TS codec description.
func tsCodec(t *unit.Track) (tscodecs.Codec, error) {
	switch t.Codec {
	case unit.CodecH264:
		return &tscodecs.H264{}, nil
	case unit.CodecH265:
		return &tscodecs.H265{}, nil
	case unit.CodecMP3:
		// Note: tscodecs.MPEG1Audio.IsVideo() returns true; this package never asks it.
		if t.SampleRate != 0 && t.SampleRate < 32000 {
			return nil, fmt.Errorf("mp3 sample rate %d: only MPEG-1 audio (32, 44.1, 48 kHz) fits", t.SampleRate)
		}
		return &tscodecs.MPEG1Audio{}, nil
	case unit.CodecOpus:
		ch := t.ChannelCount
		if ch < 1 || ch > 2 {
			ch = 2
		}
		return &tscodecs.Opus{Desc: &substructs.OpusAudioDescriptor{ChannelConfigCode: uint8(ch)}}, nil
	case unit.CodecAAC:
		var conf mpeg4audio.AudioSpecificConfig
		if err := conf.Unmarshal(t.AACConfig); err != nil {
			if t.SampleRate <= 0 || t.ChannelCount < 1 || t.ChannelCount > 6 {
				return nil, fmt.Errorf("aac config: %w", err)
			}
			conf = mpeg4audio.AudioSpecificConfig{
				Type:          mpeg4audio.ObjectTypeAACLC,
				SampleRate:    t.SampleRate,
				ChannelConfig: uint8(t.ChannelCount),
			}
		}
		if conf.Type < 1 || conf.Type > 4 {
			return nil, fmt.Errorf("aac object type %d does not fit ADTS", conf.Type)
		}
		return &tscodecs.MPEG4Audio{Config: conf}, nil
	}
	return nil, fmt.Errorf("codec %s does not fit mpeg-ts", t.Codec)
}

func (s *tsSegmenter) uses(track int) bool {
	return track >= 0 && track < len(s.tracks) && s.tracks[track] != nil
}

func (s *tsSegmenter) lead() (int, bool) { return s.leadIdx, s.leadVideo }

func (s *tsSegmenter) begin(buf []byte) {
	s.buf.b = buf[:0]
	for _, t := range s.order {
		clear(t.pending)
		t.pending = t.pending[:0]
	}
	s.needTables = true
	*s.pcrCount = 0 // the segment's first lead PES carries a PCR
}

func (s *tsSegmenter) size() int {
	n := len(s.buf.b)
	for _, t := range s.tracks {
		if t != nil {
			for _, f := range t.pending {
				n += len(f)
			}
		}
	}
	return n
}

func (s *tsSegmenter) write(u *unit.Unit) error {
	t := s.tracks[u.Track]
	switch t.codec {
	case unit.CodecH264, unit.CodecH265:
		s.writeVideo(u, t)
		return nil

	default: // audio
		frame := joined(u.Payload)
		if len(frame) == 0 {
			return nil
		}
		if len(t.pending) > 0 &&
			(u.PTS-t.pendingPTS >= tsAudioBatch || len(t.pending) >= tsAudioBatchFrames) {
			if err := s.flush(u.Track, t); err != nil {
				return err
			}
		}
		if len(t.pending) == 0 {
			t.pendingPTS = u.PTS
		}
		t.pending = append(t.pending, frame)
		return nil
	}
}

// writeVideo writes an H.264 or H.265 access unit as one PES packet in Annex B form,
// led by an access unit delimiter (which the HLS authoring spec asks for), straight from
// the unit's NAL units.
func (s *tsSegmenter) writeVideo(u *unit.Unit, t *tsTrack) {
	parts := s.parts[:0]
	size := 0
	randomAccess := false
	for k, n := range u.Payload {
		if len(n) == 0 {
			continue // mediacommon's checks index the first byte
		}
		if t.codec == unit.CodecH264 {
			randomAccess = randomAccess || h264.IsRandomAccess(u.Payload[k:k+1])
		} else {
			randomAccess = randomAccess || h265.IsRandomAccess(u.Payload[k:k+1])
		}
		if size == 0 {
			if t.codec == unit.CodecH264 && h264.NALUType(n[0]&0x1f) != h264.NALUTypeAccessUnitDelimiter {
				parts, size = append(parts, h264AUD), len(h264AUD)
			} else if t.codec == unit.CodecH265 && h265.NALUType((n[0]>>1)&0x3f) != h265.NALUType_AUD_NUT {
				parts, size = append(parts, h265AUD), len(h265AUD)
			}
		}
		parts = append(parts, annexBStartCode, n)
		size += len(annexBStartCode) + len(n)
	}
	if len(parts) == 0 {
		return
	}
	p := pes{
		cc:           t.cc,
		pid:          t.mt.PID,
		streamID:     tsStreamVideo,
		pts:          ts90(u.PTS),
		dts:          ts90(u.DTS),
		randomAccess: randomAccess,
		parts:        parts,
		size:         size,
	}
	if u.Track == s.leadIdx {
		p.hasPCR, p.pcr = s.pcrDue(randomAccess), p.dts-tsPCRLeadTicks
	}
	s.tables()
	s.buf.b = appendPES(s.buf.b, &p)
	clear(parts) // the hub's payloads are not kept past the write
	s.parts = parts[:0]
}

// pcrDue reports whether this PES packet of the lead track carries a PCR: on every random
// access point, and at least every tsPCREvery packets (mediacommon's writer does the same).
func (s *tsSegmenter) pcrDue(force bool) bool {
	due := force || *s.pcrCount <= 0
	if due {
		*s.pcrCount = tsPCREvery
	}
	*s.pcrCount--
	return due
}

// flush writes the pending audio frames of track i as one PES packet.
func (s *tsSegmenter) flush(i int, t *tsTrack) error {
	defer func() {
		clear(t.pending)
		t.pending = t.pending[:0]
	}()
	var payload []byte
	switch t.codec {
	case unit.CodecAAC:
		conf := t.mt.Codec.(*tscodecs.MPEG4Audio).Config
		pkts := make(mpeg4audio.ADTSPackets, len(t.pending))
		for k, au := range t.pending {
			pkts[k] = &mpeg4audio.ADTSPacket{Type: conf.Type, SampleRate: conf.SampleRate, ChannelConfig: conf.ChannelConfig, AU: au}
		}
		var err error
		if payload, err = pkts.Marshal(); err != nil {
			return err
		}
	case unit.CodecMP3:
		payload = bytes.Join(t.pending, nil)
	case unit.CodecOpus:
		n := 0
		for _, pkt := range t.pending {
			n += (&substructs.OpusAccessUnit{ControlHeader: substructs.OpusControlHeader{PayloadSize: len(pkt)}, Packet: pkt}).MarshalSize()
		}
		payload = make([]byte, n)
		n = 0
		for _, pkt := range t.pending {
			au := substructs.OpusAccessUnit{ControlHeader: substructs.OpusControlHeader{PayloadSize: len(pkt)}, Packet: pkt}
			m, err := au.MarshalTo(payload[n:])
			if err != nil {
				return err
			}
			n += m
		}
	}
	p := pes{
		cc:           t.cc,
		pid:          t.mt.PID,
		streamID:     tsStreamAudio,
		pts:          ts90(t.pendingPTS),
		randomAccess: true,
		parts:        [][]byte{payload},
		size:         len(payload),
	}
	p.dts = p.pts
	if i == s.leadIdx {
		p.hasPCR, p.pcr = s.pcrDue(false), p.pts-tsPCRLeadTicks
	}
	s.tables()
	s.buf.b = appendPES(s.buf.b, &p)
	return nil
}

// tables starts the segment with PAT and PMT.
func (s *tsSegmenter) tables() {
	if !s.needTables {
		return
	}
	s.needTables = false
	// Writing to a tsBuffer cannot fail.
	_, _ = s.w.WriteTables()
}

func (s *tsSegmenter) finish() ([]byte, error) {
	var firstErr error
	for i, t := range s.tracks {
		if t != nil && len(t.pending) > 0 {
			if err := s.flush(i, t); err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	out := s.buf.b
	s.buf.b = nil
	return out, firstErr
}

// ts90 converts a stream timestamp to the 90 kHz MPEG-TS clock (the writer keeps the low 33 bits).
func ts90(d time.Duration) int64 {
	return tsTimeOffset + int64(d/time.Second)*90000 + int64(d%time.Second)*90000/int64(time.Second)
}

// joined returns an audio frame given as one or more byte slices as one slice.
func joined(p [][]byte) []byte {
	switch len(p) {
	case 0:
		return nil
	case 1:
		return p[0]
	}
	return bytes.Join(p, nil)
}
