package record

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLocalStorage(t *testing.T) {
	ctx := t.Context()
	s := &LocalStorage{Dir: filepath.Join(t.TempDir(), "recordings")}

	ids, err := s.Recordings(ctx)
	require.NoError(t, err)
	require.Empty(t, ids)
	objs, err := s.List(ctx, 1)
	require.NoError(t, err)
	require.Empty(t, objs)

	require.NoError(t, s.Put(ctx, 7, "seg-0.m4s", strings.NewReader("hello")))
	require.NoError(t, s.Put(ctx, 7, "index.m3u8", strings.NewReader("one")))
	require.NoError(t, s.Put(ctx, 7, "index.m3u8", strings.NewReader("two!")))
	require.NoError(t, s.Put(ctx, 12, "seg-0.m4s", strings.NewReader("x")))

	b, err := ReadAll(ctx, s, 7, "index.m3u8")
	require.NoError(t, err)
	require.Equal(t, "two!", string(b))
	obj, err := s.Open(ctx, 7, "seg-0.m4s")
	require.NoError(t, err)
	require.Equal(t, int64(5), obj.Info().Size)
	_, err = obj.Seek(1, io.SeekStart)
	require.NoError(t, err)
	rest, err := io.ReadAll(obj)
	require.NoError(t, err)
	require.Equal(t, "ello", string(rest))
	require.NoError(t, obj.Close())

	fi, err := s.Stat(ctx, 7, "index.m3u8")
	require.NoError(t, err)
	require.Equal(t, int64(4), fi.Size)
	objs, err = s.List(ctx, 7)
	require.NoError(t, err)
	require.Len(t, objs, 2)
	require.Equal(t, "index.m3u8", objs[0].Name)
	require.Equal(t, "seg-0.m4s", objs[1].Name)
	ids, err = s.Recordings(ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{7, 12}, ids)

	u, err := s.Usage(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(5+4+1), u.Used)
	require.Positive(t, u.Free)
	free, err := s.Free(ctx)
	require.NoError(t, err)
	require.Positive(t, free)

	for _, name := range []string{"../x", "a/b", "", ".hidden", "UPPER", "seg-0.m4s/.."} {
		_, err := s.Open(ctx, 7, name)
		require.ErrorIs(t, err, ErrNotFound, name)
		require.ErrorIs(t, s.Put(ctx, 7, name, strings.NewReader("x")), ErrNotFound, name)
	}
	_, err = s.Open(ctx, 7, "seg-9.m4s")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.Stat(ctx, 0, "seg-0.m4s")
	require.ErrorIs(t, err, ErrNotFound)

	// A failed Put stores nothing and leaves no temporary file.
	err = s.Put(ctx, 7, "seg-1.m4s", io.MultiReader(strings.NewReader("part"), failingReader{}))
	require.ErrorIs(t, err, errRead)
	_, err = s.Stat(ctx, 7, "seg-1.m4s")
	require.ErrorIs(t, err, ErrNotFound)
	entries, err := os.ReadDir(filepath.Join(s.Dir, "7"))
	require.NoError(t, err)
	require.Len(t, entries, 2)

	// Temporary files of a crash are not listed, and RemoveTemp deletes them.
	tmp := filepath.Join(s.Dir, "7", tempPrefix+"seg-1.m4s-42")
	require.NoError(t, os.WriteFile(tmp, []byte("partial"), 0o600))
	objs, err = s.List(ctx, 7)
	require.NoError(t, err)
	require.Len(t, objs, 2)
	require.NoError(t, s.RemoveTemp(ctx, 7))
	require.NoFileExists(t, tmp)

	require.NoError(t, s.Delete(ctx, 7))
	require.NoError(t, s.Delete(ctx, 7))
	ids, err = s.Recordings(ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{12}, ids)
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
