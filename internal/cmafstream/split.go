package cmafstream

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// This file cuts one track out of the init segments and fragments that internal/cmaf
// writes (ISO/IEC 14496-12): DASH serves every track as its own Representation. The
// input is always this program's own output, but the code checks every size anyway and
// returns an error instead of reading out of bounds.

var errNoSuchTrack = errors.New("no such track")

// box is one ISO BMFF box inside a byte slice: b[start:end], payload from start+hdr.
type box struct {
	typ        string
	start, end int
	hdr        int
}

// boxes lists the boxes in b[from:to].
func boxes(b []byte, from, to int) ([]box, error) {
	var out []box
	for off := from; off < to; {
		if to-off < 8 {
			return nil, fmt.Errorf("box header at %d: %d bytes left", off, to-off)
		}
		size := int(binary.BigEndian.Uint32(b[off:]))
		hdr := 8
		switch size {
		case 0:
			size = to - off
		case 1:
			if to-off < 16 {
				return nil, fmt.Errorf("large box header at %d: %d bytes left", off, to-off)
			}
			s := binary.BigEndian.Uint64(b[off+8:])
			if s > uint64(to-off) {
				return nil, fmt.Errorf("box at %d: size %d past the end", off, s)
			}
			size, hdr = int(s), 16
		}
		if size < hdr || size > to-off {
			return nil, fmt.Errorf("box at %d: size %d out of range (%d left)", off, size, to-off)
		}
		out = append(out, box{typ: string(b[off+4 : off+8]), start: off, end: off + size, hdr: hdr})
		off += size
	}
	return out, nil
}

func find(bs []box, typ string) (box, bool) {
	for _, x := range bs {
		if x.typ == typ {
			return x, true
		}
	}
	return box{}, false
}

// appendBox appends a box header of the given total size and type.
func appendBox(dst []byte, size int, typ string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(size))
	return append(dst, typ...)
}

// splitInit returns the init segment with only the track of the given ID: ftyp, then a
// moov with mvhd, that trak, an mvex with that trex, and any other moov child (udta).
func splitInit(b []byte, id uint32) ([]byte, error) {
	top, err := boxes(b, 0, len(b))
	if err != nil {
		return nil, err
	}
	moov, ok := find(top, "moov")
	if !ok {
		return nil, errors.New("no moov box")
	}
	children, err := boxes(b, moov.start+moov.hdr, moov.end)
	if err != nil {
		return nil, err
	}
	var keep [][]byte
	found := false
	for _, c := range children {
		switch c.typ {
		case "trak":
			tid, err := trakID(b, c)
			if err != nil {
				return nil, err
			}
			if tid == id {
				keep = append(keep, b[c.start:c.end])
				found = true
			}
		case "mvex":
			ex, err := boxes(b, c.start+c.hdr, c.end)
			if err != nil {
				return nil, err
			}
			var trex []byte
			var others [][]byte
			for _, e := range ex {
				if e.typ != "trex" {
					others = append(others, b[e.start:e.end])
					continue
				}
				if e.end-e.start < 16 {
					return nil, errors.New("short trex box")
				}
				if binary.BigEndian.Uint32(b[e.start+12:]) == id {
					trex = b[e.start:e.end]
				}
			}
			size := 8 + len(trex)
			for _, o := range others {
				size += len(o)
			}
			mvex := appendBox(make([]byte, 0, size), size, "mvex")
			for _, o := range others {
				mvex = append(mvex, o...)
			}
			keep = append(keep, append(mvex, trex...))
		default:
			keep = append(keep, b[c.start:c.end])
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: id %d", errNoSuchTrack, id)
	}
	moovSize := 8
	for _, k := range keep {
		moovSize += len(k)
	}
	out := make([]byte, 0, len(b))
	for _, t := range top {
		if t.typ == "moov" {
			out = appendBox(out, moovSize, "moov")
			for _, k := range keep {
				out = append(out, k...)
			}
			continue
		}
		out = append(out, b[t.start:t.end]...)
	}
	return out, nil
}

// trakID reads the track_ID of a trak's tkhd.
func trakID(b []byte, trak box) (uint32, error) {
	children, err := boxes(b, trak.start+trak.hdr, trak.end)
	if err != nil {
		return 0, err
	}
	tkhd, ok := find(children, "tkhd")
	if !ok {
		return 0, errors.New("trak without tkhd")
	}
	p := b[tkhd.start+tkhd.hdr : tkhd.end]
	off := 12 // version+flags, creation and modification time (version 0)
	if len(p) > 0 && p[0] == 1 {
		off = 20
	}
	if len(p) < off+4 {
		return 0, errors.New("short tkhd box")
	}
	return binary.BigEndian.Uint32(p[off:]), nil
}

// ISO/IEC 14496-12 flags read by splitFragment.
const (
	tfhdBaseDataOffset   = 0x000001
	tfhdSampleDescIndex  = 0x000002
	tfhdDefaultDuration  = 0x000008
	tfhdDefaultSize      = 0x000010
	tfhdDefaultFlags     = 0x000020
	trunDataOffset       = 0x000001
	trunFirstSampleFlags = 0x000004
	trunDuration         = 0x000100
	trunSize             = 0x000200
	trunFlags            = 0x000400
	trunComposition      = 0x000800
)

// splitFragment returns the moof+mdat b with only the track of the given ID, and that
// track's timing. It expects what cmaf writes: one moof whose trafs use
// default-base-is-moof, each with a tfhd, a tfdt and one trun with a data offset, followed
// by one mdat. A track without a traf gives an empty fragment and no error.
func splitFragment(b []byte, id uint32) (TrackFragment, error) {
	top, err := boxes(b, 0, len(b))
	if err != nil {
		return TrackFragment{}, err
	}
	moof, ok := find(top, "moof")
	if !ok {
		return TrackFragment{}, errors.New("no moof box")
	}
	children, err := boxes(b, moof.start+moof.hdr, moof.end)
	if err != nil {
		return TrackFragment{}, err
	}
	mfhd, ok := find(children, "mfhd")
	if !ok {
		return TrackFragment{}, errors.New("no mfhd box")
	}
	for _, traf := range children {
		if traf.typ != "traf" {
			continue
		}
		t, err := parseTraf(b, traf)
		if err != nil {
			return TrackFragment{}, err
		}
		if t.id != id {
			continue
		}
		dataStart := moof.start + t.dataOffset
		if t.dataOffset < 0 || dataStart < moof.end || dataStart+t.dataSize > len(b) || t.dataSize < 0 {
			return TrackFragment{}, fmt.Errorf("track %d: samples at %d+%d outside the fragment", id, dataStart, t.dataSize)
		}
		mfhdLen := mfhd.end - mfhd.start
		trafLen := traf.end - traf.start
		moofSize := 8 + mfhdLen + trafLen
		out := make([]byte, 0, moofSize+8+t.dataSize)
		out = appendBox(out, moofSize, "moof")
		out = append(out, b[mfhd.start:mfhd.end]...)
		trafAt := len(out)
		out = append(out, b[traf.start:traf.end]...)
		binary.BigEndian.PutUint32(out[trafAt+t.offsetField:], uint32(int32(moofSize+8)))
		out = appendBox(out, 8+t.dataSize, "mdat")
		out = append(out, b[dataStart:dataStart+t.dataSize]...)
		return TrackFragment{Data: out, BaseTime: t.baseTime, Duration: t.duration}, nil
	}
	return TrackFragment{}, nil
}

type trafInfo struct {
	id          uint32
	baseTime    uint64
	duration    uint64
	dataOffset  int // from the start of the moof
	dataSize    int
	offsetField int // position of the trun data_offset field from the start of the traf
}

func parseTraf(b []byte, traf box) (trafInfo, error) {
	var t trafInfo
	children, err := boxes(b, traf.start+traf.hdr, traf.end)
	if err != nil {
		return t, err
	}
	tfhd, ok := find(children, "tfhd")
	if !ok {
		return t, errors.New("traf without tfhd")
	}
	p := b[tfhd.start+tfhd.hdr : tfhd.end]
	if len(p) < 8 {
		return t, errors.New("short tfhd box")
	}
	flags := binary.BigEndian.Uint32(p) & 0xffffff
	t.id = binary.BigEndian.Uint32(p[4:])
	if flags&tfhdBaseDataOffset != 0 {
		return t, errors.New("tfhd with a base data offset")
	}
	off := 8
	if flags&tfhdSampleDescIndex != 0 {
		off += 4
	}
	var defDur, defSize uint32
	if flags&tfhdDefaultDuration != 0 {
		if len(p) < off+4 {
			return t, errors.New("short tfhd box")
		}
		defDur = binary.BigEndian.Uint32(p[off:])
		off += 4
	}
	if flags&tfhdDefaultSize != 0 {
		if len(p) < off+4 {
			return t, errors.New("short tfhd box")
		}
		defSize = binary.BigEndian.Uint32(p[off:])
	}

	if tfdt, ok := find(children, "tfdt"); ok {
		p := b[tfdt.start+tfdt.hdr : tfdt.end]
		switch {
		case len(p) >= 12 && p[0] == 1:
			t.baseTime = binary.BigEndian.Uint64(p[4:])
		case len(p) >= 8:
			t.baseTime = uint64(binary.BigEndian.Uint32(p[4:]))
		default:
			return t, errors.New("short tfdt box")
		}
	}

	trun, ok := find(children, "trun")
	if !ok {
		return t, errors.New("traf without trun")
	}
	p = b[trun.start+trun.hdr : trun.end]
	if len(p) < 8 {
		return t, errors.New("short trun box")
	}
	flags = binary.BigEndian.Uint32(p) & 0xffffff
	count := int(binary.BigEndian.Uint32(p[4:]))
	if flags&trunDataOffset == 0 {
		return t, errors.New("trun without a data offset")
	}
	if len(p) < 12 {
		return t, errors.New("short trun box")
	}
	t.dataOffset = int(int32(binary.BigEndian.Uint32(p[8:])))
	t.offsetField = trun.start + trun.hdr + 8 - traf.start
	off = 12
	if flags&trunFirstSampleFlags != 0 {
		off += 4
	}
	entry := 0
	for _, f := range []uint32{trunDuration, trunSize, trunFlags, trunComposition} {
		if flags&f != 0 {
			entry += 4
		}
	}
	if count < 0 || count > (len(p)-off)/max(entry, 1) || (entry == 0 && count > 1<<20) {
		return t, fmt.Errorf("trun: %d samples do not fit %d bytes", count, len(p)-off)
	}
	for i := 0; i < count; i++ {
		e := p[off+i*entry:]
		k := 0
		dur, size := defDur, defSize
		if flags&trunDuration != 0 {
			dur = binary.BigEndian.Uint32(e[k:])
			k += 4
		}
		if flags&trunSize != 0 {
			size = binary.BigEndian.Uint32(e[k:])
		}
		t.duration += uint64(dur)
		t.dataSize += int(size)
		if t.dataSize > len(b) {
			return t, fmt.Errorf("trun: samples larger than the fragment (%d bytes)", len(b))
		}
	}
	return t, nil
}
