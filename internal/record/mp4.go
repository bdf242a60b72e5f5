package record

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"
)

// ErrMP4TooLarge is returned by BuildMP4 for a recording whose media does not fit the
// 32-bit offsets of a progressive MP4 (about 4 GiB).
var ErrMP4TooLarge = errors.New("recording too large for one MP4 file")

// MP4 is a recording remuxed, without re-encoding, into one progressive MP4 file
// (ftyp, moov, then one mdat with the samples interleaved by time), written by
// mediacommon's pmp4. Only the header is kept in memory: the samples are read from the
// stored segments while the file is read, so a download starts at once, and any byte
// range can be read (NewReader gives an io.ReadSeeker for http.ServeContent).
//
// A progressive MP4 has one set of codec parameters per track, so the file ends where
// the recording's init segment first changes (a publisher that reconnected with other
// settings); Partial tells whether it does, Duration how long it is.
type MP4 struct {
	st       Storage
	id       int64
	header   []byte // ftyp, moov and the mdat box header
	size     int64
	segs     []int       // segment numbers by index
	samples  []mp4Sample // in file order
	starts   []int64     // file offset of each sample
	duration time.Duration
	partial  bool
}

type mp4Sample struct {
	seg  int32
	size uint32
	off  int64 // in its segment
}

// Size returns the size of the file.
func (m *MP4) Size() int64 { return m.size }

// Duration returns the duration of the longest track.
func (m *MP4) Duration() time.Duration { return m.duration }

// Partial reports whether the file stops before the end of the recording (its init
// segment changed).
func (m *MP4) Partial() bool { return m.partial }

// sampleRec is a sample found in a stored fragment.
type sampleRec struct {
	dts  uint64
	dur  uint32
	size uint32
	cto  int32
	sync bool
	seg  int32
	off  int64
}

// BuildMP4 reads the playlist, the init segment and the fragment headers (not the media)
// of a stored recording and prepares its MP4 file.
func BuildMP4(ctx context.Context, st Storage, id int64) (*MP4, error) {
	pb, err := ReadAll(ctx, st, id, PlaylistName)
	if err != nil {
		return nil, err
	}
	entries, _, err := parsePlaylist(pb)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("recording %d: no segments: %w", id, ErrNotFound)
	}
	initData, err := ReadAll(ctx, st, id, InitName(entries[0].Init))
	if err != nil {
		return nil, err
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(initData)); err != nil {
		return nil, fmt.Errorf("init segment: %w", err)
	}
	if len(init.Tracks) == 0 {
		return nil, errors.New("init segment without tracks")
	}
	byID := make(map[uint32]int, len(init.Tracks))
	for i, t := range init.Tracks {
		if t.TimeScale == 0 {
			return nil, fmt.Errorf("track %d: no timescale", t.ID)
		}
		byID[uint32(t.ID)] = i
	}

	m := &MP4{st: st, id: id}
	same := map[int]bool{entries[0].Init: true}
	tracks := make([][]sampleRec, len(init.Tracks))
	var data int64
	for _, e := range entries {
		ok, seen := same[e.Init]
		if !seen {
			b, err := ReadAll(ctx, st, id, InitName(e.Init))
			if err != nil {
				return nil, err
			}
			ok = bytes.Equal(b, initData)
			same[e.Init] = ok
		}
		if !ok {
			m.partial = true
			break
		}
		si := int32(len(m.segs))
		m.segs = append(m.segs, e.N)
		_, err := readSegmentSamples(ctx, st, id, e.N, func(tf trackFragment) error {
			k, ok := byID[tf.trackID]
			if !ok {
				return nil
			}
			for _, s := range tf.samples {
				tracks[k] = append(tracks[k], sampleRec{dts: s.dts, dur: s.dur, size: s.size, cto: s.cto,
					sync: s.sync, seg: si, off: s.offset})
				data += int64(s.size)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("segment %d: %w", e.N, err)
		}
		if data > math.MaxUint32 {
			return nil, ErrMP4TooLarge
		}
	}
	if err := m.build(&init, tracks, data); err != nil {
		return nil, err
	}
	return m, nil
}

// readSegmentSamples calls fn with each track fragment of a stored segment, checking
// that every sample lies inside the segment. It returns the segment's size.
func readSegmentSamples(ctx context.Context, st Storage, id int64, n int, fn func(trackFragment) error) (int64, error) {
	obj, err := st.Open(ctx, id, SegmentName(n))
	if err != nil {
		return 0, err
	}
	defer obj.Close()
	size := obj.Info().Size
	err = readFragments(obj, func(moof []byte, pos int64) error {
		tfs, err := parseMoof(moof, pos)
		if err != nil {
			return err
		}
		for _, tf := range tfs {
			for _, s := range tf.samples {
				if s.offset+int64(s.size) > size {
					return fmt.Errorf("track %d: sample at %d+%d past the end (%d)", tf.trackID, s.offset, s.size, size)
				}
			}
			if err := fn(tf); err != nil {
				return err
			}
		}
		return nil
	})
	return size, err
}

// headerWriter keeps the first write of pmp4's Marshal (ftyp and moov) and counts the rest.
type headerWriter struct {
	header []byte
	n      int64
}

func (w *headerWriter) Write(p []byte) (int, error) {
	if w.header == nil {
		w.header = bytes.Clone(p)
	}
	w.n += int64(len(p))
	return len(p), nil
}

// build writes the header with pmp4 and lays the samples out in its order.
func (m *MP4) build(init *fmp4.Init, tracks [][]sampleRec, data int64) error {
	// The tracks are aligned on presentation time: the earliest first sample is 0.
	t0 := time.Duration(math.MaxInt64)
	for k, ss := range tracks {
		if len(ss) > 0 {
			ts := int64(init.Tracks[k].TimeScale)
			t0 = min(t0, fromTicks(ss[0].dts, ts)+time.Duration(ss[0].cto)*time.Second/time.Duration(ts))
		}
	}
	type ref struct{ k, i int32 }
	var order []ref
	// pmp4 asks for every payload while it writes the file out; here it only counts
	// them, so one buffer as large as the largest sample stands for all of them.
	maxSize := uint32(0)
	for _, ss := range tracks {
		for _, s := range ss {
			maxSize = max(maxSize, s.size)
		}
	}
	buf := make([]byte, maxSize)
	pres := pmp4.Presentation{}
	for k, ss := range tracks {
		if len(ss) == 0 {
			continue
		}
		it := init.Tracks[k]
		ts := int64(it.TimeScale)
		tr := &pmp4.Track{
			ID:         it.ID,
			TimeScale:  it.TimeScale,
			Codec:      it.Codec,
			TimeOffset: clampInt32(int64(ss[0].dts) - ticks(t0, ts)),
			Samples:    make([]*pmp4.Sample, len(ss)),
		}
		var total uint64
		for i, s := range ss {
			dur := uint64(s.dur)
			// Durations follow the decode times, so that a gap (a reconnect) keeps the
			// tracks in sync.
			if i+1 < len(ss) && ss[i+1].dts > s.dts && ss[i+1].dts-s.dts < math.MaxUint32 {
				dur = ss[i+1].dts - s.dts
			}
			total += dur
			k32, i32 := int32(k), int32(i)
			size := s.size
			tr.Samples[i] = &pmp4.Sample{
				Duration:        uint32(dur),
				PTSOffset:       s.cto,
				IsNonSyncSample: !s.sync,
				PayloadSize:     s.size,
				GetPayload: func() ([]byte, error) {
					order = append(order, ref{k32, i32})
					return buf[:size], nil
				},
			}
		}
		m.duration = max(m.duration, fromTicks(total, ts))
		pres.Tracks = append(pres.Tracks, tr)
	}
	if len(pres.Tracks) == 0 {
		return errors.New("no samples")
	}
	w := &headerWriter{}
	if err := pres.Marshal(w); err != nil {
		return fmt.Errorf("mp4 header: %w", err)
	}
	hdr := int64(len(w.header)) + 8
	if hdr+data >= math.MaxUint32 {
		return ErrMP4TooLarge
	}
	if w.n != hdr+data || len(order) == 0 {
		return fmt.Errorf("mp4 layout: wrote %d bytes for %d", w.n, hdr+data)
	}
	m.header = append(w.header, byte((8+data)>>24), byte((8+data)>>16), byte((8+data)>>8), byte(8+data), 'm', 'd', 'a', 't')
	m.size = hdr + data
	m.samples = make([]mp4Sample, len(order))
	m.starts = make([]int64, len(order))
	pos := hdr
	for j, r := range order {
		s := tracks[r.k][r.i]
		m.samples[j] = mp4Sample{seg: s.seg, size: s.size, off: s.off}
		m.starts[j] = pos
		pos += int64(s.size)
	}
	return nil
}

func clampInt32(v int64) int32 {
	return int32(max(min(v, math.MaxInt32), math.MinInt32))
}

// NewReader returns a reader of the file. It reads the stored segments it needs, with
// ctx, keeping the last two in memory.
func (m *MP4) NewReader(ctx context.Context) *MP4Reader {
	return &MP4Reader{m: m, ctx: ctx, cached: [2]cachedSegment{{seg: -1}, {seg: -1}}}
}

// MP4Reader reads an MP4. It implements io.ReadSeeker.
type MP4Reader struct {
	m      *MP4
	ctx    context.Context
	pos    int64
	cached [2]cachedSegment
	next   int
}

type cachedSegment struct {
	seg  int32
	data []byte
}

func (r *MP4Reader) segment(i int32) ([]byte, error) {
	for _, c := range r.cached {
		if c.seg == i {
			return c.data, nil
		}
	}
	b, err := ReadAll(r.ctx, r.m.st, r.m.id, SegmentName(r.m.segs[i]))
	if err != nil {
		return nil, err
	}
	r.cached[r.next] = cachedSegment{seg: i, data: b}
	r.next = 1 - r.next
	return b, nil
}

// Read implements io.Reader.
func (r *MP4Reader) Read(p []byte) (int, error) {
	m := r.m
	n := 0
	for n < len(p) && r.pos < m.size {
		if r.pos < int64(len(m.header)) {
			k := copy(p[n:], m.header[r.pos:])
			n += k
			r.pos += int64(k)
			continue
		}
		j := sort.Search(len(m.starts), func(i int) bool { return m.starts[i] > r.pos }) - 1
		s := m.samples[j]
		data, err := r.segment(s.seg)
		if err != nil {
			return n, err
		}
		within := r.pos - m.starts[j]
		from, to := s.off+within, s.off+int64(s.size)
		if to > int64(len(data)) {
			return n, fmt.Errorf("segment %d changed: %w", m.segs[s.seg], io.ErrUnexpectedEOF)
		}
		k := copy(p[n:], data[from:to])
		n += k
		r.pos += int64(k)
	}
	if n == 0 && r.pos >= m.size {
		return 0, io.EOF
	}
	return n, nil
}

// Seek implements io.Seeker.
func (r *MP4Reader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.pos + offset
	case io.SeekEnd:
		abs = r.m.size + offset
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("seek: negative position")
	}
	r.pos = abs
	return abs, nil
}
