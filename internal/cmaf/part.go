package cmaf

import (
	"encoding/binary"
	"time"
)

// OnInitFunc receives an init segment (ftyp+moov). The bytes are not modified afterwards.
type OnInitFunc func(init []byte)

// OnPartFunc receives a finished part. The part and its bytes are not modified afterwards.
type OnPartFunc func(p *Part)

// OnSegmentFunc receives a finished segment, after the OnPartFunc of its last part. The
// segment is not modified afterwards.
type OnSegmentFunc func(s *Segment)

// Part is one CMAF chunk: a single movie fragment (moof+mdat) with the samples of every
// track over [Start, Start+Duration).
type Part struct {
	// SegmentSeq is the Seq of the segment the part belongs to.
	SegmentSeq uint64

	// Index is the position of the part in its segment, from 0.
	Index int

	// Start is the DTS where the part begins: the DTS of the first sample of the leading
	// track in the part, which is the base media decode time (tfdt) of its track fragment,
	// except for parts cut on another track's clock while the leading track stalled.
	// Duration is the distance to the next part's Start. Both are on the unit timeline;
	// with B-frames, presentation starts later by the first sample's composition offset.
	Start    time.Duration
	Duration time.Duration

	// Independent is true when the part starts with a key unit of the leading video track
	// (always true for audio-only streams): a player can start decoding there.
	Independent bool

	// Data is the moof+mdat. It is a fresh slice owned by nobody: never modify it.
	Data []byte
}

// Segment is a run of parts starting, normally, at a key unit.
type Segment struct {
	// Seq numbers segments from 0 in the order they are emitted; it continues across Reset.
	Seq uint64

	// Start is the Start of the first part; Duration reaches the end of the last one.
	Start    time.Duration
	Duration time.Duration

	// Parts are the segment's parts in order; their Data concatenated are the segment.
	Parts []*Part

	// Size is the total size of the parts' Data, in bytes.
	Size int

	// Independent is true when the segment starts with a key unit. It is false only for a
	// segment cut by MaxSegmentDuration or after a leading track that stopped.
	Independent bool

	// Discontinuity is true for the first segment after a Reset.
	Discontinuity bool
}

// Data returns the segment's bytes: its parts' Data concatenated, in a new slice.
func (s *Segment) Data() []byte {
	b := make([]byte, 0, s.Size)
	for _, p := range s.Parts {
		b = append(b, p.Data...)
	}
	return b
}

// ISO/IEC 14496-12 track fragment flags, as mediacommon's fmp4.Part writes them.
const (
	tfhdDefaultBaseIsMoof = 0x020000

	trunDataOffsetPresent  = 0x001
	trunDurationPresent    = 0x100
	trunSizePresent        = 0x200
	trunFlagsPresent       = 0x400
	trunCompositionPresent = 0x800

	sampleIsNonSync = 1 << 16
)

// marshalPart writes one movie fragment (moof+mdat) with the first counts[i] queued
// samples of each track into a new slice of the exact size.
//
// The layout is byte for byte what mediacommon's fmp4.Part.Marshal writes (the tests
// check it): mfhd, then per track a traf with tfhd (default-base-is-moof), tfdt (version
// 1) and a version 1 trun with duration and size per sample, flags when a sample is not
// a sync sample, and signed composition offsets when one is not zero; then the mdat with
// the tracks' samples in order. It is written here because mediacommon's reflection-based
// box writer costs about a thousand allocations per fragment.
func marshalPart(seq uint32, tracks []*segmenterTrack, counts []int) []byte {
	moofSize := 8 + 16
	dataSize := 0
	for i, tr := range tracks {
		n := counts[i]
		if n == 0 {
			continue
		}
		flags := tr.trunFlags(n)
		moofSize += 8 + 16 + 20 + 20 + n*trunEntrySize(flags)
		dataSize += tr.payloadSize(n)
	}

	b := make([]byte, moofSize+8+dataSize)
	w := b
	put32 := func(v uint32) {
		binary.BigEndian.PutUint32(w, v)
		w = w[4:]
	}
	box := func(size int, typ string) {
		put32(uint32(size))
		copy(w, typ)
		w = w[4:]
	}

	box(moofSize, "moof")
	box(16, "mfhd")
	put32(0)
	put32(seq)

	dataOffset := moofSize + 8
	for i, tr := range tracks {
		n := counts[i]
		if n == 0 {
			continue
		}
		flags := tr.trunFlags(n)
		entry := trunEntrySize(flags)
		box(8+16+20+20+n*entry, "traf")

		box(16, "tfhd")
		put32(tfhdDefaultBaseIsMoof)
		put32(uint32(i + 1))

		box(20, "tfdt")
		put32(1 << 24) // version 1
		binary.BigEndian.PutUint64(w, uint64(tr.queue[0].ticks))
		w = w[8:]

		box(20+n*entry, "trun")
		put32(1<<24 | flags)
		put32(uint32(n))
		put32(uint32(int32(dataOffset)))
		for _, s := range tr.queue[:n] {
			put32(s.dur)
			put32(uint32(s.size))
			if flags&trunFlagsPresent != 0 {
				if s.sync {
					put32(0)
				} else {
					put32(sampleIsNonSync)
				}
			}
			if flags&trunCompositionPresent != 0 {
				put32(uint32(s.cto))
			}
		}
		dataOffset += tr.payloadSize(n)
	}

	box(8+dataSize, "mdat")
	for i, tr := range tracks {
		if n := counts[i]; n > 0 {
			first := tr.queue[0].off
			w = w[copy(w, tr.buf[first:first+tr.payloadSize(n)]):]
		}
	}
	return b
}

func trunEntrySize(flags uint32) int {
	n := 8
	if flags&trunFlagsPresent != 0 {
		n += 4
	}
	if flags&trunCompositionPresent != 0 {
		n += 4
	}
	return n
}

// trunFlags returns the trun flags for the first n queued samples.
func (t *segmenterTrack) trunFlags(n int) uint32 {
	flags := uint32(trunDataOffsetPresent | trunDurationPresent | trunSizePresent)
	for _, s := range t.queue[:n] {
		if !s.sync {
			flags |= trunFlagsPresent
		}
		if s.cto != 0 {
			flags |= trunCompositionPresent
		}
	}
	return flags
}

// payloadSize returns the bytes of the first n queued samples, which are contiguous in buf.
func (t *segmenterTrack) payloadSize(n int) int {
	last := t.queue[n-1]
	return last.off + last.size - t.queue[0].off
}
