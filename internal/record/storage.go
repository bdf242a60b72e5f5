package record

import (
	"context"
	"errors"
	"io"
	"time"
)

// Errors of a Storage.
var (
	// ErrNotFound is returned for a missing object.
	ErrNotFound = errors.New("recording object not found")

	// ErrFull is returned (wrapped) when an object does not fit: the disk is full
	// (ENOSPC, EDQUOT) or a configured limit is reached. A recording stops on it.
	ErrFull = errors.New("recording storage full")
)

// Storage keeps the objects of recordings: per recording, its init segments, media
// segments, playlist and manifest, under short names ("seg-12.m4s"). The local disk
// (LocalStorage) is the first implementation; object storage for clusters comes later,
// so the interface stays small and every method works on whole objects.
//
// Names are plain file names made by this package: [a-z0-9.-]+, never a path.
type Storage interface {
	// Put stores the object atomically: readers see the previous object or the new one
	// whole, never a part of it, also after a crash. When it fails, nothing is stored and
	// no partial object is left visible. A full disk or limit gives an error wrapping
	// ErrFull.
	Put(ctx context.Context, id int64, name string, r io.Reader) error

	// Open returns the object for reading. A missing one is ErrNotFound.
	Open(ctx context.Context, id int64, name string) (Object, error)

	// Stat describes the object. A missing one is ErrNotFound.
	Stat(ctx context.Context, id int64, name string) (ObjectInfo, error)

	// List returns the objects of a recording, sorted by name (empty for an unknown id).
	List(ctx context.Context, id int64) ([]ObjectInfo, error)

	// Delete removes a recording with all its objects. A missing one is no error.
	Delete(ctx context.Context, id int64) error

	// Recordings returns the ids of the recordings that have objects, sorted.
	Recordings(ctx context.Context) ([]int64, error)

	// Usage returns the bytes used by every recording and the bytes still free.
	Usage(ctx context.Context) (Usage, error)
}

// Object is a stored object open for reading.
type Object interface {
	io.ReadSeekCloser
	// Info describes the object.
	Info() ObjectInfo
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// Usage is how much a Storage holds and has left.
type Usage struct {
	// Used is the bytes of every stored object.
	Used int64
	// Free is the bytes that can still be stored; -1 when unknown or unlimited.
	Free int64
}

// ReadAll reads a whole object (playlists, init segments, segments).
func ReadAll(ctx context.Context, st Storage, id int64, name string) ([]byte, error) {
	obj, err := st.Open(ctx, id, name)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	size := obj.Info().Size
	if size < 0 || size > maxObjectRead {
		return nil, errObjectTooLarge(name, size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(obj, b); err != nil {
		return nil, err
	}
	return b, nil
}

// maxObjectRead bounds what ReadAll loads into memory: a segment of a high bit rate
// stream with a long GOP stays well below it.
const maxObjectRead = 256 << 20
