package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// This file reads the movie fragments of stored segments (ISO/IEC 14496-12 8.8): the
// sample tables of each moof, without loading the media data, for the MP4 download and
// for repairing recordings after a crash. Stored files are this program's own output,
// but they may be cut short or damaged, so every size is checked and parsing returns an
// error instead of reading out of bounds or allocating without limit.

// Limits of the fragment reader.
const (
	maxMoofSize      = 16 << 20
	maxFragmentCount = 1 << 16 // moof boxes per segment
)

// ISO/IEC 14496-12 flags.
const (
	tfhdBaseDataOffset      = 0x000001
	tfhdSampleDescIndex     = 0x000002
	tfhdDefaultDuration     = 0x000008
	tfhdDefaultSize         = 0x000010
	tfhdDefaultFlags        = 0x000020
	tfhdDefaultBaseIsMoof   = 0x020000
	trunDataOffsetPresent   = 0x000001
	trunFirstFlagsPresent   = 0x000004
	trunDurationPresent     = 0x000100
	trunSizePresent         = 0x000200
	trunFlagsPresent        = 0x000400
	trunCompositionPresent  = 0x000800
	sampleFlagIsNonSync     = 0x00010000
	maxSamplesPerTrackRun   = 1 << 20
	maxDefaultSamples       = 4096 // per trun without per-sample fields
	boxHeaderSize           = 8
	largeBoxHeaderSize      = 16
	fullBoxHeaderSize       = 4
	tfdtVersion1PayloadSize = 12
)

var errShortBox = errors.New("box too short")

// fragSample is one sample of a track fragment.
type fragSample struct {
	dts    uint64 // decode time in the track's timescale
	dur    uint32
	size   uint32
	cto    int32
	sync   bool
	offset int64 // of the payload, from the start of the file
}

// trackFragment is the samples of one track in one moof.
type trackFragment struct {
	trackID  uint32
	baseTime uint64
	samples  []fragSample
}

// boxAt is one box of a byte slice: b[start:end], payload from start+hdr.
type boxAt struct {
	typ        string
	start, end int
	hdr        int
}

// childBoxes lists the boxes in b[from:to].
func childBoxes(b []byte, from, to int) ([]boxAt, error) {
	var out []boxAt
	for off := from; off < to; {
		if to-off < boxHeaderSize {
			return nil, fmt.Errorf("box header at %d: %d bytes left", off, to-off)
		}
		size := uint64(binary.BigEndian.Uint32(b[off:]))
		hdr := boxHeaderSize
		switch size {
		case 0:
			size = uint64(to - off)
		case 1:
			if to-off < largeBoxHeaderSize {
				return nil, fmt.Errorf("large box header at %d: %d bytes left", off, to-off)
			}
			size, hdr = binary.BigEndian.Uint64(b[off+8:]), largeBoxHeaderSize
		}
		if size < uint64(hdr) || size > uint64(to-off) {
			return nil, fmt.Errorf("box at %d: size %d out of range (%d left)", off, size, to-off)
		}
		out = append(out, boxAt{typ: string(b[off+4 : off+8]), start: off, end: off + int(size), hdr: hdr})
		off += int(size)
	}
	return out, nil
}

// parseMoof returns the track fragments of the moof box b, which starts at byte moofPos
// of its file. Sample payload offsets are absolute in that file.
func parseMoof(b []byte, moofPos int64) ([]trackFragment, error) {
	top, err := childBoxes(b, 0, len(b))
	if err != nil {
		return nil, err
	}
	if len(top) != 1 || top[0].typ != "moof" {
		return nil, errors.New("not a moof box")
	}
	moof := top[0]
	children, err := childBoxes(b, moof.start+moof.hdr, moof.end)
	if err != nil {
		return nil, err
	}
	var out []trackFragment
	for _, c := range children {
		if c.typ != "traf" {
			continue
		}
		tf, err := parseTrackFragment(b, c, moofPos)
		if err != nil {
			return nil, err
		}
		out = append(out, tf)
	}
	return out, nil
}

func parseTrackFragment(b []byte, traf boxAt, moofPos int64) (trackFragment, error) {
	var tf trackFragment
	children, err := childBoxes(b, traf.start+traf.hdr, traf.end)
	if err != nil {
		return tf, err
	}
	var tfhd []byte
	var truns [][]byte
	for _, c := range children {
		p := b[c.start+c.hdr : c.end]
		switch c.typ {
		case "tfhd":
			tfhd = p
		case "tfdt":
			switch {
			case len(p) >= tfdtVersion1PayloadSize && p[0] == 1:
				tf.baseTime = binary.BigEndian.Uint64(p[4:])
			case len(p) >= 8 && p[0] == 0:
				tf.baseTime = uint64(binary.BigEndian.Uint32(p[4:]))
			default:
				return tf, fmt.Errorf("tfdt: %w", errShortBox)
			}
		case "trun":
			truns = append(truns, p)
		}
	}
	if len(tfhd) < 8 {
		return tf, fmt.Errorf("tfhd: %w", errShortBox)
	}
	flags := binary.BigEndian.Uint32(tfhd) & 0xffffff
	tf.trackID = binary.BigEndian.Uint32(tfhd[4:])
	base := moofPos
	off := 8
	need := func(n int) error {
		if len(tfhd) < off+n {
			return fmt.Errorf("tfhd: %w", errShortBox)
		}
		return nil
	}
	if flags&tfhdBaseDataOffset != 0 {
		if err := need(8); err != nil {
			return tf, err
		}
		v := binary.BigEndian.Uint64(tfhd[off:])
		if v > 1<<62 {
			return tf, fmt.Errorf("tfhd: base data offset %d out of range", v)
		}
		base = int64(v)
		off += 8
	}
	if flags&tfhdSampleDescIndex != 0 {
		off += 4
	}
	var defDur, defSize, defFlags uint32
	if flags&tfhdDefaultDuration != 0 {
		if err := need(4); err != nil {
			return tf, err
		}
		defDur = binary.BigEndian.Uint32(tfhd[off:])
		off += 4
	}
	if flags&tfhdDefaultSize != 0 {
		if err := need(4); err != nil {
			return tf, err
		}
		defSize = binary.BigEndian.Uint32(tfhd[off:])
		off += 4
	}
	if flags&tfhdDefaultFlags != 0 {
		if err := need(4); err != nil {
			return tf, err
		}
		defFlags = binary.BigEndian.Uint32(tfhd[off:])
	}

	dts := tf.baseTime
	dataPos := base
	for _, p := range truns {
		if len(p) < 8 {
			return tf, fmt.Errorf("trun: %w", errShortBox)
		}
		version := p[0]
		rflags := binary.BigEndian.Uint32(p) & 0xffffff
		count := binary.BigEndian.Uint32(p[4:])
		k := 8
		if rflags&trunDataOffsetPresent != 0 {
			if len(p) < k+4 {
				return tf, fmt.Errorf("trun: %w", errShortBox)
			}
			dataPos = base + int64(int32(binary.BigEndian.Uint32(p[k:])))
			k += 4
		}
		firstFlags, hasFirst := uint32(0), false
		if rflags&trunFirstFlagsPresent != 0 {
			if len(p) < k+4 {
				return tf, fmt.Errorf("trun: %w", errShortBox)
			}
			firstFlags, hasFirst = binary.BigEndian.Uint32(p[k:]), true
			k += 4
		}
		entry := 0
		for _, f := range []uint32{trunDurationPresent, trunSizePresent, trunFlagsPresent, trunCompositionPresent} {
			if rflags&f != 0 {
				entry += 4
			}
		}
		if count > maxSamplesPerTrackRun || (entry > 0 && int(count) > (len(p)-k)/entry) ||
			(entry == 0 && count > maxDefaultSamples) {
			return tf, fmt.Errorf("trun: %d samples do not fit %d bytes", count, len(p)-k)
		}
		if dataPos < 0 {
			return tf, fmt.Errorf("trun: data offset %d before the file", dataPos)
		}
		for i := range int(count) {
			e := p[k+i*entry:]
			j := 0
			s := fragSample{dur: defDur, size: defSize, dts: dts, offset: dataPos}
			sflags := defFlags
			if i == 0 && hasFirst {
				sflags = firstFlags
			}
			if rflags&trunDurationPresent != 0 {
				s.dur = binary.BigEndian.Uint32(e[j:])
				j += 4
			}
			if rflags&trunSizePresent != 0 {
				s.size = binary.BigEndian.Uint32(e[j:])
				j += 4
			}
			if rflags&trunFlagsPresent != 0 {
				sflags = binary.BigEndian.Uint32(e[j:])
				j += 4
			}
			if rflags&trunCompositionPresent != 0 {
				v := binary.BigEndian.Uint32(e[j:])
				if version == 0 && v > 1<<31-1 {
					return tf, fmt.Errorf("trun: composition offset %d out of range", v)
				}
				s.cto = int32(v)
			}
			s.sync = sflags&sampleFlagIsNonSync == 0
			tf.samples = append(tf.samples, s)
			dts += uint64(s.dur)
			dataPos += int64(s.size)
		}
	}
	return tf, nil
}

// readFragments calls fn with every moof box of r and its position, skipping the other
// top-level boxes (mdat) without reading them.
func readFragments(r io.ReadSeeker, fn func(moof []byte, pos int64) error) error {
	var hdr [largeBoxHeaderSize]byte
	end, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return err
	}
	var pos int64
	count := 0
	for {
		n, err := io.ReadFull(r, hdr[:boxHeaderSize])
		if err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("box header at %d: %w (%d bytes)", pos, err, n)
		}
		size := uint64(binary.BigEndian.Uint32(hdr[:]))
		typ := string(hdr[4:8])
		h := uint64(boxHeaderSize)
		switch size {
		case 0:
			return nil // to the end of the file
		case 1:
			if _, err := io.ReadFull(r, hdr[boxHeaderSize:]); err != nil {
				return fmt.Errorf("large box header at %d: %w", pos, err)
			}
			size, h = binary.BigEndian.Uint64(hdr[boxHeaderSize:]), largeBoxHeaderSize
		}
		if size < h || size > uint64(end-pos) {
			return fmt.Errorf("box %q at %d: size %d out of range (%d left)", typ, pos, size, end-pos)
		}
		if typ == "moof" {
			count++
			if count > maxFragmentCount {
				return fmt.Errorf("more than %d fragments", maxFragmentCount)
			}
			if size > maxMoofSize {
				return fmt.Errorf("moof at %d: size %d over the limit of %d", pos, size, maxMoofSize)
			}
			b := make([]byte, size)
			copy(b, hdr[:h])
			if _, err := io.ReadFull(r, b[h:]); err != nil {
				return fmt.Errorf("moof at %d: %w", pos, err)
			}
			if err := fn(b, pos); err != nil {
				return err
			}
		} else if _, err := r.Seek(int64(size-h), io.SeekCurrent); err != nil {
			return err
		}
		pos += int64(size)
	}
}

// parseFragments returns the track fragments of every moof in b (a whole segment).
func parseFragments(b []byte) ([]trackFragment, error) {
	boxes, err := childBoxes(b, 0, len(b))
	if err != nil {
		return nil, err
	}
	var out []trackFragment
	for _, x := range boxes {
		if x.typ != "moof" {
			continue
		}
		tfs, err := parseMoof(b[x.start:x.end], int64(x.start))
		if err != nil {
			return nil, err
		}
		for _, tf := range tfs {
			for _, s := range tf.samples {
				if s.offset+int64(s.size) > int64(len(b)) {
					return nil, fmt.Errorf("track %d: sample at %d+%d past the end (%d)", tf.trackID, s.offset, s.size, len(b))
				}
			}
		}
		out = append(out, tfs...)
	}
	return out, nil
}

// fragments splits b (a segment: moof+mdat pairs) into its fragments, each from a moof
// to the start of the next one.
func fragments(b []byte) ([][]byte, error) {
	boxes, err := childBoxes(b, 0, len(b))
	if err != nil {
		return nil, err
	}
	var out [][]byte
	start := -1
	for _, x := range boxes {
		if x.typ == "moof" {
			if start >= 0 {
				out = append(out, b[start:x.start])
			}
			start = x.start
		}
	}
	if start >= 0 {
		out = append(out, b[start:])
	}
	return out, nil
}
