package record

import (
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/testutil"
)

func newTestS3Storage(t *testing.T, prefix string) *S3Storage {
	t.Helper()
	fake := testutil.StartFakeS3(t)
	s, err := NewS3Storage(S3Config{
		Endpoint:  fake.Endpoint,
		Bucket:    fake.Bucket,
		AccessKey: fake.AccessKey,
		SecretKey: fake.SecretKey,
		Prefix:    prefix,
	})
	require.NoError(t, err)
	require.NoError(t, s.Check(t.Context()))
	return s
}

func TestS3Storage(t *testing.T) {
	s := newTestS3Storage(t, "")
	testStorageConformance(t, s)

	u, err := s.Usage(t.Context())
	require.NoError(t, err)
	require.Equal(t, int64(-1), u.Free, "a bucket has no size")
}

func TestS3StoragePrefix(t *testing.T) {
	ctx := t.Context()
	s := newTestS3Storage(t, "/site-a/recs/")
	testStorageConformance(t, s)

	// Objects live under the prefix: a second storage on the same bucket with another
	// prefix sees none of them, and keys outside any recording are ignored.
	other, err := NewS3Storage(S3Config{Endpoint: s.client.EndpointURL().Host, Bucket: s.bucket, Prefix: "site-b"})
	require.NoError(t, err)
	ids, err := other.Recordings(ctx)
	require.NoError(t, err)
	require.Empty(t, ids)
	_, err = s.client.PutObject(ctx, s.bucket, "site-a/recs/notes.txt", strings.NewReader("x"), 1, minio.PutObjectOptions{})
	require.NoError(t, err)
	_, err = s.client.PutObject(ctx, s.bucket, "site-a/recs/007/seg-0.m4s", strings.NewReader("x"), 1, minio.PutObjectOptions{})
	require.NoError(t, err)
	ids, err = s.Recordings(ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{12, 70}, ids)
}

func TestS3StorageConfig(t *testing.T) {
	for _, c := range []S3Config{
		{Bucket: "b"},
		{Endpoint: "localhost:9000"},
		{Endpoint: "https://s3.example.org", Bucket: "b"},
	} {
		_, err := NewS3Storage(c)
		require.Error(t, err)
	}
	// A missing bucket is reported by Check, without the secret key.
	fake := testutil.StartFakeS3(t)
	s, err := NewS3Storage(S3Config{Endpoint: fake.Endpoint, Bucket: "missing", AccessKey: fake.AccessKey, SecretKey: fake.SecretKey})
	require.NoError(t, err)
	err = s.Check(t.Context())
	require.ErrorContains(t, err, "does not exist")
	require.NotContains(t, err.Error(), fake.SecretKey)
}
