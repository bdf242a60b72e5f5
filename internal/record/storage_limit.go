package record

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// TempRemover is implemented by storages that can leave the temporary objects of an
// interrupted Put behind (LocalStorage after kill -9). Repair calls it.
type TempRemover interface {
	// RemoveTemp deletes the temporary objects of a recording.
	RemoveTemp(ctx context.Context, id int64) error
}

// LimitStorage is a Storage that holds at most Max bytes in total: a Put that would pass
// it fails with ErrFull and stores nothing. It counts what Inner held when first used and
// what goes through it since, so it must be the only writer of Inner. Puts are
// serialized, so that the limit holds exactly; it is meant for tests and small sites.
type LimitStorage struct {
	// Inner stores the objects. Required.
	Inner Storage
	// Max is the limit in bytes.
	Max int64

	mu     sync.Mutex
	loaded bool
	used   int64
}

var (
	_ Storage     = (*LimitStorage)(nil)
	_ FreeSpacer  = (*LimitStorage)(nil)
	_ TempRemover = (*LimitStorage)(nil)
)

func (s *LimitStorage) load(ctx context.Context) error {
	if s.loaded {
		return nil
	}
	u, err := s.Inner.Usage(ctx)
	if err != nil {
		return err
	}
	s.used, s.loaded = u.Used, true
	return nil
}

// limitReader fails with ErrFull once more than n bytes were read.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return n, ErrFull
	}
	return n, err
}

// Put implements Storage.
func (s *LimitStorage) Put(ctx context.Context, id int64, name string, r io.Reader) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.load(ctx); err != nil {
		return err
	}
	var old int64
	if fi, err := s.Inner.Stat(ctx, id, name); err == nil {
		old = fi.Size
	}
	lr := &limitReader{r: r, n: s.Max - s.used + old}
	if lr.n < 0 {
		return fmt.Errorf("put %s: %w (limit %d bytes)", name, ErrFull, s.Max)
	}
	if err := s.Inner.Put(ctx, id, name, lr); err != nil {
		return err
	}
	fi, err := s.Inner.Stat(ctx, id, name)
	if err != nil {
		return err
	}
	s.used += fi.Size - old
	return nil
}

// Open implements Storage.
func (s *LimitStorage) Open(ctx context.Context, id int64, name string) (Object, error) {
	return s.Inner.Open(ctx, id, name)
}

// Stat implements Storage.
func (s *LimitStorage) Stat(ctx context.Context, id int64, name string) (ObjectInfo, error) {
	return s.Inner.Stat(ctx, id, name)
}

// List implements Storage.
func (s *LimitStorage) List(ctx context.Context, id int64) ([]ObjectInfo, error) {
	return s.Inner.List(ctx, id)
}

// Delete implements Storage.
func (s *LimitStorage) Delete(ctx context.Context, id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.load(ctx); err != nil {
		return err
	}
	objs, err := s.Inner.List(ctx, id)
	if err != nil {
		return err
	}
	if err := s.Inner.Delete(ctx, id); err != nil {
		return err
	}
	for _, o := range objs {
		s.used -= o.Size
	}
	s.used = max(s.used, 0)
	return nil
}

// Recordings implements Storage.
func (s *LimitStorage) Recordings(ctx context.Context) ([]int64, error) {
	return s.Inner.Recordings(ctx)
}

// Usage implements Storage: Free is what is left under Max (or on the disk, if less).
func (s *LimitStorage) Usage(ctx context.Context) (Usage, error) {
	u, err := s.Inner.Usage(ctx)
	if err != nil {
		return u, err
	}
	s.mu.Lock()
	s.used, s.loaded = u.Used, true
	s.mu.Unlock()
	left := max(s.Max-u.Used, 0)
	if u.Free < 0 || left < u.Free {
		u.Free = left
	}
	return u, nil
}

// RemoveTemp implements TempRemover when Inner does.
func (s *LimitStorage) RemoveTemp(ctx context.Context, id int64) error {
	if tr, ok := s.Inner.(TempRemover); ok {
		return tr.RemoveTemp(ctx, id)
	}
	return nil
}

// Free implements FreeSpacer: what is left under Max, or on Inner if that is less.
func (s *LimitStorage) Free(ctx context.Context) (int64, error) {
	s.mu.Lock()
	err := s.load(ctx)
	left := max(s.Max-s.used, 0)
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if fs, ok := s.Inner.(FreeSpacer); ok {
		free, err := fs.Free(ctx)
		if err != nil {
			return 0, err
		}
		if free >= 0 && free < left {
			return free, nil
		}
	}
	return left, nil
}
