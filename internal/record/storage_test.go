package record

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// testStorageConformance checks the Storage contract that every backend keeps, on an
// empty st.
func testStorageConformance(t *testing.T, s Storage) {
	ctx := t.Context()

	ids, err := s.Recordings(ctx)
	require.NoError(t, err)
	require.Empty(t, ids)
	objs, err := s.List(ctx, 1)
	require.NoError(t, err)
	require.Empty(t, objs)
	u, err := s.Usage(ctx)
	require.NoError(t, err)
	require.Zero(t, u.Used)

	require.NoError(t, s.Put(ctx, 7, "seg-0.m4s", strings.NewReader("hello")))
	require.NoError(t, s.Put(ctx, 7, "index.m3u8", strings.NewReader("one")))
	require.NoError(t, s.Put(ctx, 7, "index.m3u8", strings.NewReader("two!")))
	require.NoError(t, s.Put(ctx, 12, "seg-0.m4s", strings.NewReader("x")))
	require.NoError(t, s.Put(ctx, 70, "meta.json", strings.NewReader("{}")))

	b, err := ReadAll(ctx, s, 7, "index.m3u8")
	require.NoError(t, err)
	require.Equal(t, "two!", string(b))
	b, err = ReadAll(ctx, s, 70, "meta.json")
	require.NoError(t, err)
	require.Equal(t, "{}", string(b))

	// Open seeks: reads start where they are sought (ranged reads on object storage).
	obj, err := s.Open(ctx, 7, "seg-0.m4s")
	require.NoError(t, err)
	require.Equal(t, "seg-0.m4s", obj.Info().Name)
	require.Equal(t, int64(5), obj.Info().Size)
	require.False(t, obj.Info().ModTime.IsZero())
	_, err = obj.Seek(1, io.SeekStart)
	require.NoError(t, err)
	rest, err := io.ReadAll(obj)
	require.NoError(t, err)
	require.Equal(t, "ello", string(rest))
	end, err := obj.Seek(-2, io.SeekEnd)
	require.NoError(t, err)
	require.Equal(t, int64(3), end)
	two := make([]byte, 2)
	_, err = io.ReadFull(obj, two)
	require.NoError(t, err)
	require.Equal(t, "lo", string(two))
	_, err = obj.Seek(0, io.SeekStart)
	require.NoError(t, err)
	rest, err = io.ReadAll(obj)
	require.NoError(t, err)
	require.Equal(t, "hello", string(rest))
	require.NoError(t, obj.Close())

	// A bigger object read at an offset, as http.ServeContent does for a Range request.
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	require.NoError(t, s.Put(ctx, 12, "seg-1.m4s", bytes.NewReader(big)))
	obj, err = s.Open(ctx, 12, "seg-1.m4s")
	require.NoError(t, err)
	_, err = obj.Seek(700_000, io.SeekStart)
	require.NoError(t, err)
	part := make([]byte, 1000)
	_, err = io.ReadFull(obj, part)
	require.NoError(t, err)
	require.Equal(t, big[700_000:701_000], part)
	require.NoError(t, obj.Close())

	fi, err := s.Stat(ctx, 7, "index.m3u8")
	require.NoError(t, err)
	require.Equal(t, int64(4), fi.Size)
	require.Equal(t, "index.m3u8", fi.Name)
	objs, err = s.List(ctx, 7)
	require.NoError(t, err)
	require.Len(t, objs, 2)
	require.Equal(t, "index.m3u8", objs[0].Name)
	require.Equal(t, int64(4), objs[0].Size)
	require.Equal(t, "seg-0.m4s", objs[1].Name)
	ids, err = s.Recordings(ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{7, 12, 70}, ids)

	u, err = s.Usage(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(5+4+1+2+1<<20), u.Used)
	require.NotZero(t, u.Free)

	for _, name := range []string{"../x", "a/b", "", ".hidden", "UPPER", "seg-0.m4s/..", "seg-0.m4s/"} {
		_, err := s.Open(ctx, 7, name)
		require.ErrorIs(t, err, ErrNotFound, name)
		_, err = s.Stat(ctx, 7, name)
		require.ErrorIs(t, err, ErrNotFound, name)
		require.ErrorIs(t, s.Put(ctx, 7, name, strings.NewReader("x")), ErrNotFound, name)
	}
	_, err = s.Open(ctx, 7, "seg-9.m4s")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.Stat(ctx, 7, "seg-9.m4s")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.Stat(ctx, 0, "seg-0.m4s")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.Open(ctx, 8, "seg-0.m4s")
	require.ErrorIs(t, err, ErrNotFound)

	// A failed Put stores nothing: not the new object, nor a part of it.
	err = s.Put(ctx, 7, "seg-1.m4s", io.MultiReader(strings.NewReader("part"), failingReader{}))
	require.ErrorIs(t, err, errRead)
	_, err = s.Stat(ctx, 7, "seg-1.m4s")
	require.ErrorIs(t, err, ErrNotFound)
	err = s.Put(ctx, 7, "index.m3u8", io.MultiReader(strings.NewReader("three"), failingReader{}))
	require.ErrorIs(t, err, errRead)
	b, err = ReadAll(ctx, s, 7, "index.m3u8")
	require.NoError(t, err)
	require.Equal(t, "two!", string(b), "the previous object stays whole")
	objs, err = s.List(ctx, 7)
	require.NoError(t, err)
	require.Len(t, objs, 2)

	require.NoError(t, s.Delete(ctx, 7))
	require.NoError(t, s.Delete(ctx, 7))
	require.NoError(t, s.Delete(ctx, 0))
	ids, err = s.Recordings(ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{12, 70}, ids)
	objs, err = s.List(ctx, 7)
	require.NoError(t, err)
	require.Empty(t, objs)
	_, err = s.Open(ctx, 7, "seg-0.m4s")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestLocalStorage(t *testing.T) {
	ctx := t.Context()
	s := &LocalStorage{Dir: filepath.Join(t.TempDir(), "recordings")}
	testStorageConformance(t, s)

	u, err := s.Usage(ctx)
	require.NoError(t, err)
	require.Positive(t, u.Free)
	free, err := s.Free(ctx)
	require.NoError(t, err)
	require.Positive(t, free)

	// A failed Put leaves no temporary file.
	require.NoError(t, s.Put(ctx, 7, "seg-0.m4s", strings.NewReader("hello")))
	err = s.Put(ctx, 7, "seg-1.m4s", io.MultiReader(strings.NewReader("part"), failingReader{}))
	require.ErrorIs(t, err, errRead)
	entries, err := os.ReadDir(filepath.Join(s.Dir, "7"))
	require.NoError(t, err)
	require.Len(t, entries, 1)

	// Temporary files of a crash are not listed, and RemoveTemp deletes them.
	tmp := filepath.Join(s.Dir, "7", tempPrefix+"seg-1.m4s-42")
	require.NoError(t, os.WriteFile(tmp, []byte("partial"), 0o600))
	objs, err := s.List(ctx, 7)
	require.NoError(t, err)
	require.Len(t, objs, 1)
	require.NoError(t, s.RemoveTemp(ctx, 7))
	require.NoFileExists(t, tmp)
}

var errRead = errors.New("read failed")

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errRead }

func TestLimitStorage(t *testing.T) {
	ctx := t.Context()
	inner := &LocalStorage{Dir: t.TempDir()}
	require.NoError(t, inner.Put(ctx, 1, "seg-0.m4s", strings.NewReader(strings.Repeat("a", 40))))
	s := &LimitStorage{Inner: inner, Max: 100}

	require.NoError(t, s.Put(ctx, 2, "seg-0.m4s", strings.NewReader(strings.Repeat("b", 50))))
	free, err := s.Free(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(10), free)

	err = s.Put(ctx, 2, "seg-1.m4s", strings.NewReader(strings.Repeat("c", 11)))
	require.ErrorIs(t, err, ErrFull)
	_, err = s.Stat(ctx, 2, "seg-1.m4s")
	require.ErrorIs(t, err, ErrNotFound, "nothing stored")

	// Replacing an object counts only the difference.
	require.NoError(t, s.Put(ctx, 2, "seg-0.m4s", strings.NewReader(strings.Repeat("d", 60))))
	u, err := s.Usage(ctx)
	require.NoError(t, err)
	require.Equal(t, Usage{Used: 100, Free: 0}, u)

	require.NoError(t, s.Delete(ctx, 1))
	free, err = s.Free(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(40), free)
	require.NoError(t, s.Put(ctx, 3, "seg-0.m4s", strings.NewReader(strings.Repeat("e", 40))))
}
