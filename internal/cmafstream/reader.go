package cmafstream

import (
	"errors"
	"io"
)

// ChunksReader reads a sequence of byte slices as one stream without joining them. It
// implements io.ReadSeeker, so http.ServeContent can serve a segment made of parts,
// ranges included, without copying it.
type ChunksReader struct {
	chunks [][]byte
	size   int64
	off    int64
}

// NewChunksReader returns a reader over chunks, which must not be modified while it is used.
func NewChunksReader(chunks [][]byte) *ChunksReader {
	r := &ChunksReader{chunks: chunks}
	for _, c := range chunks {
		r.size += int64(len(c))
	}
	return r
}

// Size returns the total length.
func (r *ChunksReader) Size() int64 { return r.size }

// Read implements io.Reader.
func (r *ChunksReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	n := 0
	pos := int64(0)
	for _, c := range r.chunks {
		end := pos + int64(len(c))
		if r.off < end && n < len(p) {
			k := copy(p[n:], c[r.off-pos:])
			n += k
			r.off += int64(k)
		}
		pos = end
		if n == len(p) {
			break
		}
	}
	return n, nil
}

// Seek implements io.Seeker.
func (r *ChunksReader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("seek: negative position")
	}
	r.off = abs
	return abs, nil
}
