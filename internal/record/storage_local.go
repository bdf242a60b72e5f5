package record

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// tempPrefix starts the names of objects being written. They are never listed, and
// Repair and Delete remove those a crash left behind.
const tempPrefix = ".tmp-"

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,63}$`)

// LocalStorage keeps recordings on the local disk, one directory per recording:
// Dir/{id}/{name}. Put writes a temporary file in the same directory, syncs it and
// renames it into place, so an object exists whole or not at all, also after kill -9 or
// a power loss.
type LocalStorage struct {
	// Dir is the root, e.g. DATA/recordings. It is created when missing.
	Dir string
}

var (
	_ Storage     = (*LocalStorage)(nil)
	_ TempRemover = (*LocalStorage)(nil)
	_ FreeSpacer  = (*LocalStorage)(nil)
)

func (s *LocalStorage) dir(id int64) string {
	return filepath.Join(s.Dir, strconv.FormatInt(id, 10))
}

// checkObjectName refuses an id or name that no object can have (ErrNotFound): a name
// is never a path.
func checkObjectName(id int64, name string) error {
	if id <= 0 || !nameRE.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("object %d/%q: %w", id, name, ErrNotFound)
	}
	return nil
}

func (s *LocalStorage) path(id int64, name string) (string, error) {
	if err := checkObjectName(id, name); err != nil {
		return "", err
	}
	return filepath.Join(s.dir(id), name), nil
}

// fullErr wraps err with ErrFull when it is a full disk or quota.
func fullErr(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	return err
}

// Put implements Storage.
func (s *LocalStorage) Put(ctx context.Context, id int64, name string, r io.Reader) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	path, err := s.path(id, name)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("put %s: %w", name, fullErr(err))
	}
	f, err := os.CreateTemp(dir, tempPrefix+name+"-*")
	if err != nil {
		return fmt.Errorf("put %s: %w", name, fullErr(err))
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("put %s: %w", name, fullErr(err))
		}
	}()
	if _, err := io.Copy(f, r); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o640); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

type localObject struct {
	*os.File
	info ObjectInfo
}

func (o *localObject) Info() ObjectInfo { return o.info }

// Open implements Storage.
func (s *LocalStorage) Open(ctx context.Context, id int64, name string) (Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path, err := s.path(id, name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("object %d/%s: %w", id, name, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &localObject{File: f, info: ObjectInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}}, nil
}

// Stat implements Storage.
func (s *LocalStorage) Stat(ctx context.Context, id int64, name string) (ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, err
	}
	path, err := s.path(id, name)
	if err != nil {
		return ObjectInfo{}, err
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ObjectInfo{}, fmt.Errorf("object %d/%s: %w", id, name, ErrNotFound)
	} else if err != nil {
		return ObjectInfo{}, err
	}
	return ObjectInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List implements Storage.
func (s *LocalStorage) List(ctx context.Context, id int64) ([]ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.dir(id))
	if errors.Is(err, fs.ErrNotExist) {
		return []ObjectInfo{}, nil
	} else if err != nil {
		return nil, err
	}
	out := make([]ObjectInfo, 0, len(entries))
	for _, e := range entries {
		if !e.Type().IsRegular() || !nameRE.MatchString(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, ObjectInfo{Name: e.Name(), Size: fi.Size(), ModTime: fi.ModTime()})
	}
	return out, nil
}

// RemoveTemp deletes the temporary files of a recording that a crash left behind in the
// middle of a Put (see TempRemover).
func (s *LocalStorage) RemoveTemp(ctx context.Context, id int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(s.dir(id))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			if err := os.Remove(filepath.Join(s.dir(id), e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// Delete implements Storage.
func (s *LocalStorage) Delete(ctx context.Context, id int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if id <= 0 {
		return nil
	}
	return os.RemoveAll(s.dir(id))
}

// Recordings implements Storage.
func (s *LocalStorage) Recordings(ctx context.Context) ([]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return []int64{}, nil
	} else if err != nil {
		return nil, err
	}
	ids := make([]int64, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		id, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || id <= 0 || strconv.FormatInt(id, 10) != e.Name() {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// Usage implements Storage: Used walks the directory tree, Free is what the file system
// grants unprivileged users.
func (s *LocalStorage) Usage(ctx context.Context) (Usage, error) {
	u := Usage{Free: -1}
	err := filepath.WalkDir(s.Dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				u.Used += fi.Size()
			}
		}
		return nil
	})
	if err != nil {
		return u, err
	}
	if free, ok := freeBytes(s.Dir); ok {
		u.Free = free
	}
	return u, nil
}

// Free implements FreeSpacer: the bytes the file system grants unprivileged users, or
// -1 when unknown.
func (s *LocalStorage) Free(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	dir := s.Dir
	if _, err := os.Stat(dir); err != nil {
		dir = filepath.Dir(dir)
	}
	if free, ok := freeBytes(dir); ok {
		return free, nil
	}
	return -1, nil
}
