package cmaf

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg1audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/onair/onair/internal/unit"
)

const (
	videoTimescale = 90000
	opusTimescale  = 48000

	// shrinkCap is the buffer capacity above which a mostly empty track buffer is given
	// back to the allocator after a part, so one burst does not pin its memory.
	shrinkCap = 4 << 20
)

// NAL unit and OBU types left out of samples: access unit delimiters and filler data
// (ISO/IEC 14496-15 forbids neither, but they only cost bytes), AV1 temporal delimiters
// and padding (the AV1 ISOBMFF binding removes them from samples).
const (
	h264NALUAUD    = 9
	h264NALUFiller = 12
	h265NALUAUD    = 35
	h265NALUFiller = 38
	av1OBUTD       = 2
	av1OBUPadding  = 15
)

// sample is one finished (or held back) sample of a track. Its payload is
// buf[off:off+size] of the track.
type sample struct {
	dts   time.Duration
	ticks int64 // DTS in the track timescale
	dur   uint32
	cto   int32 // composition time offset (PTS - DTS) in the track timescale
	sync  bool
	off   int
	size  int
}

// segmenterTrack is the state of one track: its mp4 description, the samples not yet
// written into a part, and the held-back latest sample.
type segmenterTrack struct {
	codec     unit.Codec
	video     bool
	timescale int64
	init      *fmp4.InitTrack
	aacFrame  uint32 // samples per AAC frame (1024 or 960)

	seen     bool          // a unit was added since the track was created
	lastDTS  time.Duration // DTS of the newest unit
	frameDur time.Duration // running average of the DTS step
	measure  bool          // lastDTS is in the current session: the next step counts

	hasPending bool
	pending    sample   // the newest sample, whose duration is not known yet
	queue      []sample // finished samples waiting for a part, in DTS order
	buf        []byte   // payloads of queue and pending
}

func newSegmenterTrack(t *unit.Track, id int) (*segmenterTrack, error) {
	st := &segmenterTrack{codec: t.Codec, video: t.IsVideo()}
	var c codecs.Codec

	switch t.Codec {
	case unit.CodecH264:
		if len(t.SPS) == 0 || len(t.PPS) == 0 {
			return nil, fmt.Errorf("h264 track without sps or pps")
		}
		c = &codecs.H264{SPS: t.SPS, PPS: t.PPS}
		st.timescale = videoTimescale

	case unit.CodecH265:
		if len(t.VPS) == 0 || len(t.SPS) == 0 || len(t.PPS) == 0 {
			return nil, fmt.Errorf("h265 track without vps, sps or pps")
		}
		c = &codecs.H265{VPS: t.VPS, SPS: t.SPS, PPS: t.PPS}
		st.timescale = videoTimescale

	case unit.CodecAV1:
		if len(t.AV1SequenceHeader) == 0 {
			return nil, fmt.Errorf("av1 track without sequence header")
		}
		c = &codecs.AV1{SequenceHeader: t.AV1SequenceHeader}
		st.timescale = videoTimescale

	case unit.CodecAAC:
		var asc mpeg4audio.AudioSpecificConfig
		if err := asc.Unmarshal(t.AACConfig); err != nil {
			return nil, fmt.Errorf("aac config: %w", err)
		}
		if asc.SampleRate <= 0 {
			return nil, fmt.Errorf("aac config: sample rate %d", asc.SampleRate)
		}
		c = &codecs.MPEG4Audio{Config: asc}
		st.timescale = int64(asc.SampleRate)
		st.aacFrame = 1024
		if asc.FrameLengthFlag {
			st.aacFrame = 960
		}

	case unit.CodecMP3:
		if t.SampleRate <= 0 {
			return nil, fmt.Errorf("mp3 track without sample rate")
		}
		channels := t.ChannelCount
		if channels <= 0 {
			channels = 2
		}
		c = &codecs.MPEG1Audio{SampleRate: t.SampleRate, ChannelCount: channels}
		st.timescale = int64(t.SampleRate)

	case unit.CodecOpus:
		channels := t.ChannelCount
		if channels <= 0 {
			channels = 2
		}
		if channels > 2 {
			// The dOps box written by mediacommon has channel mapping family 0 (mono or stereo).
			return nil, fmt.Errorf("opus with %d channels (at most 2 are supported)", channels)
		}
		c = &codecs.Opus{ChannelCount: channels}
		st.timescale = opusTimescale

	default:
		return nil, fmt.Errorf("unsupported codec %s", t.Codec)
	}

	st.init = &fmp4.InitTrack{ID: id, TimeScale: uint32(st.timescale), Codec: c}
	return st, nil
}

// ticks converts a timestamp to the track timescale, rounding to the nearest tick, without
// overflowing for any timestamp a stream can reach.
func (t *segmenterTrack) ticks(d time.Duration) int64 {
	s := int64(d / time.Second)
	r := int64(d % time.Second)
	return s*t.timescale + (r*t.timescale+int64(time.Second)/2)/int64(time.Second)
}

// add converts a unit into a sample. The sample is held back until the next unit gives
// its duration; the previously held-back sample moves to the queue. It reports false when
// the unit has no payload left after filtering, and then changes nothing.
func (t *segmenterTrack) add(u *unit.Unit) bool {
	start := len(t.buf)
	t.appendPayload(u)
	size := len(t.buf) - start
	if size == 0 {
		return false
	}

	if t.measure {
		// Gaps (dropped frames, a stalled track) do not count; a new session starts over.
		if step := u.DTS - t.lastDTS; step > 0 && (t.frameDur == 0 || step <= 4*t.frameDur) {
			if t.frameDur == 0 {
				t.frameDur = step
			} else {
				t.frameDur += (step - t.frameDur) / 8
			}
		}
	}

	ticks := t.ticks(u.DTS)
	if t.hasPending {
		t.pending.dur = clampDur(ticks - t.pending.ticks)
		t.queue = append(t.queue, t.pending)
	}
	cto := int64(0)
	if u.PTS != u.DTS {
		cto = t.ticks(u.PTS) - ticks
	}
	t.pending = sample{
		dts:   u.DTS,
		ticks: ticks,
		cto:   int32(max(math.MinInt32, min(math.MaxInt32, cto))),
		sync:  !t.video || u.Key,
		off:   start,
		size:  size,
	}
	t.hasPending = true
	t.seen = true
	t.measure = true
	t.lastDTS = u.DTS
	return true
}

func clampDur(d int64) uint32 {
	return uint32(max(0, min(math.MaxUint32, d)))
}

// appendPayload writes the unit as an mp4 sample: length-prefixed NAL units for
// H.264/H.265, OBUs with size fields for AV1, the raw frame for audio.
func (t *segmenterTrack) appendPayload(u *unit.Unit) {
	switch t.codec {
	case unit.CodecH264, unit.CodecH265:
		for _, nalu := range u.Payload {
			if len(nalu) == 0 {
				continue
			}
			if t.codec == unit.CodecH264 {
				if typ := nalu[0] & 0x1f; typ == h264NALUAUD || typ == h264NALUFiller {
					continue
				}
			} else if typ := (nalu[0] >> 1) & 0x3f; typ == h265NALUAUD || typ == h265NALUFiller {
				continue
			}
			t.buf = binary.BigEndian.AppendUint32(t.buf, uint32(len(nalu)))
			t.buf = append(t.buf, nalu...)
		}

	case unit.CodecAV1:
		for _, obu := range u.Payload {
			if len(obu) == 0 {
				continue
			}
			if typ := (obu[0] >> 3) & 0x0f; typ == av1OBUTD || typ == av1OBUPadding {
				continue
			}
			if obu[0]&0x02 != 0 { // obu_has_size_field: already in the sample format
				t.buf = append(t.buf, obu...)
				continue
			}
			hlen := 1
			if obu[0]&0x04 != 0 { // obu_extension_flag
				hlen = 2
			}
			if len(obu) < hlen {
				continue
			}
			t.buf = append(t.buf, obu[0]|0x02)
			t.buf = append(t.buf, obu[1:hlen]...)
			t.buf = appendLEB128(t.buf, uint64(len(obu)-hlen))
			t.buf = append(t.buf, obu[hlen:]...)
		}

	default:
		for _, p := range u.Payload {
			t.buf = append(t.buf, p...)
		}
	}
}

func appendLEB128(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// finishPending moves the held-back sample to the queue with an estimated duration: the
// frame length for audio, the average DTS step for video.
func (t *segmenterTrack) finishPending() {
	if !t.hasPending {
		return
	}
	t.pending.dur = t.lastDuration()
	t.queue = append(t.queue, t.pending)
	t.hasPending = false
}

func (t *segmenterTrack) lastDuration() uint32 {
	payload := t.buf[t.pending.off : t.pending.off+t.pending.size]
	switch t.codec {
	case unit.CodecAAC:
		return t.aacFrame
	case unit.CodecMP3:
		var h mpeg1audio.FrameHeader
		if err := h.Unmarshal(payload); err == nil {
			return uint32(h.SampleCount())
		}
	case unit.CodecOpus:
		if d := opus.PacketDuration2(payload); d > 0 {
			return uint32(d)
		}
	}
	if t.frameDur > 0 {
		return clampDur(t.ticks(t.frameDur))
	}
	if n := len(t.queue); n > 0 {
		return t.queue[n-1].dur
	}
	return 0
}

// endTime returns the end of the last queued sample on the unit timeline.
func (t *segmenterTrack) endTime() (time.Duration, bool) {
	n := len(t.queue)
	if n == 0 {
		return 0, false
	}
	s := t.queue[n-1]
	return s.dts + time.Duration(int64(s.dur)*int64(time.Second)/t.timescale), true
}

// countBefore returns how many queued samples have a DTS before end.
func (t *segmenterTrack) countBefore(end time.Duration) int {
	n := 0
	for n < len(t.queue) && t.queue[n].dts < end {
		n++
	}
	return n
}

// consume removes the first n queued samples and their bytes.
func (t *segmenterTrack) consume(n int) {
	rest := t.queue[n:]
	base := len(t.buf)
	switch {
	case len(rest) > 0:
		base = rest[0].off
	case t.hasPending:
		base = t.pending.off
	}
	kept := len(t.buf) - base
	if cap(t.buf) > shrinkCap && kept < cap(t.buf)/4 {
		nb := make([]byte, kept, max(2*kept, 64<<10))
		copy(nb, t.buf[base:])
		t.buf = nb
	} else {
		copy(t.buf, t.buf[base:])
		t.buf = t.buf[:kept]
	}
	t.queue = t.queue[:copy(t.queue, rest)]
	for i := range t.queue {
		t.queue[i].off -= base
	}
	t.pending.off -= base
}

// dropBefore discards the queued and held-back samples with a DTS before t.
func (t *segmenterTrack) dropBefore(at time.Duration) {
	n := t.countBefore(at)
	if n == len(t.queue) && t.hasPending && t.pending.dts < at {
		t.hasPending = false
	}
	if n > 0 || !t.hasPending {
		t.consume(n)
	}
}

// clear discards every sample, and forgets the frame duration for the next session.
func (t *segmenterTrack) clear() {
	t.queue = t.queue[:0]
	t.hasPending = false
	t.buf = t.buf[:0]
	t.measure = false
	t.frameDur = 0
}
