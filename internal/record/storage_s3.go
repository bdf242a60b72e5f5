package record

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config locates the bucket of an S3Storage.
type S3Config struct {
	// Endpoint is the server's host[:port], without a scheme (s3.example.org, 10.0.0.5:9000).
	Endpoint string
	// Bucket holds the recordings; it must exist.
	Bucket string
	// AccessKey and SecretKey sign the requests (both empty: anonymous). The secret key
	// is never logged nor put in an error.
	AccessKey string
	SecretKey string
	// Region of the bucket. Default: us-east-1 (MinIO, Ceph and most others accept it).
	Region string
	// UseSSL talks HTTPS to the endpoint.
	UseSSL bool
	// Prefix starts every key: objects are {Prefix}/{id}/{name}. Default: "recordings".
	Prefix string
	// Transport replaces the default HTTP transport (tests, custom CAs).
	Transport http.RoundTripper
}

// S3Storage keeps recordings in an S3 bucket (AWS S3, MinIO, Ceph RGW, Garage, R2, …),
// one object per stored name: {Prefix}/{id}/{name}. Every node of a cluster that uses
// the same bucket serves every replay.
//
// A PUT of a whole object is atomic in S3: readers see the old object or the new one,
// never a part, and a failed upload leaves nothing. Put reads the object into memory
// first (segments and playlists are small, at most maxObjectRead) and sends it with its
// length in one request, so no multipart upload can be left behind. Open reads with
// ranged GETs: the returned Object seeks without downloading what it skips.
type S3Storage struct {
	client *minio.Client
	bucket string
	prefix string
}

var _ Storage = (*S3Storage)(nil)

// NewS3Storage returns the storage of a bucket. It does not contact the server: Check does.
func NewS3Storage(c S3Config) (*S3Storage, error) {
	if c.Endpoint == "" || c.Bucket == "" {
		return nil, errors.New("s3 storage: endpoint and bucket are required")
	}
	if strings.Contains(c.Endpoint, "://") {
		return nil, errors.New("s3 storage: endpoint is host[:port], without a scheme (set use_ssl for https)")
	}
	region := c.Region
	if region == "" {
		region = "us-east-1"
	}
	prefix := strings.Trim(c.Prefix, "/")
	if c.Prefix == "" {
		prefix = "recordings"
	}
	opts := &minio.Options{
		Secure:    c.UseSSL,
		Region:    region,
		Transport: c.Transport,
	}
	if c.AccessKey != "" || c.SecretKey != "" {
		opts.Creds = credentials.NewStaticV4(c.AccessKey, c.SecretKey, "")
	} else {
		opts.Creds = credentials.New(&credentials.Static{Value: credentials.Value{SignerType: credentials.SignatureAnonymous}})
	}
	client, err := minio.New(c.Endpoint, opts)
	if err != nil {
		return nil, fmt.Errorf("s3 storage: %w", err)
	}
	return &S3Storage{client: client, bucket: c.Bucket, prefix: prefix}, nil
}

// Check verifies that the bucket exists and the credentials can reach it.
func (s *S3Storage) Check(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("s3 bucket %s: %w", s.bucket, s3Err(err))
	}
	if !ok {
		return fmt.Errorf("s3 bucket %s does not exist", s.bucket)
	}
	return nil
}

// root returns the key prefix of every recording, ending with "/" (or "" without a prefix).
func (s *S3Storage) root() string {
	if s.prefix == "" {
		return ""
	}
	return s.prefix + "/"
}

func (s *S3Storage) dirKey(id int64) string {
	return s.root() + strconv.FormatInt(id, 10) + "/"
}

func (s *S3Storage) key(id int64, name string) (string, error) {
	if err := checkObjectName(id, name); err != nil {
		return "", err
	}
	return s.dirKey(id) + name, nil
}

// s3Err maps the S3 error codes that mean a missing object or a full store to
// ErrNotFound and ErrFull; other errors are returned as they are.
func s3Err(err error) error {
	if err == nil {
		return nil
	}
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case minio.NoSuchKey, "NotFound":
		return fmt.Errorf("%w: %s", ErrNotFound, resp.Code)
	case "EntityTooLarge", "QuotaExceeded", "XMinioAdminBucketQuotaExceeded", "XMinioStorageFull", "StorageFull":
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	if resp.StatusCode == http.StatusNotFound && resp.Code == "" {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

// Put implements Storage.
func (s *S3Storage) Put(ctx context.Context, id int64, name string, r io.Reader) error {
	key, err := s.key(id, name)
	if err != nil {
		return err
	}
	var data []byte
	if br, ok := r.(*bytes.Reader); ok && br.Len() <= maxObjectRead {
		data = make([]byte, br.Len())
		if _, err := io.ReadFull(br, data); err != nil {
			return fmt.Errorf("put %s: %w", name, err)
		}
	} else {
		data, err = io.ReadAll(io.LimitReader(r, maxObjectRead+1))
		if err != nil {
			return fmt.Errorf("put %s: %w", name, err)
		}
		if len(data) > maxObjectRead {
			return fmt.Errorf("put %s: %w", name, errObjectTooLarge(name, int64(len(data))))
		}
	}
	_, err = s.client.PutObject(ctx, s.bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		ContentType:      contentType(name),
		DisableMultipart: true,
	})
	if err != nil {
		return fmt.Errorf("put %s: %w", name, s3Err(err))
	}
	return nil
}

// contentType is the stored Content-Type of an object (for people browsing the bucket;
// onair sets its own when serving).
func contentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".m3u8"):
		return "application/vnd.apple.mpegurl"
	case strings.HasSuffix(name, ".mpd"):
		return "application/dash+xml"
	case strings.HasSuffix(name, ".m4s"), strings.HasSuffix(name, ".mp4"):
		return "video/mp4"
	case strings.HasSuffix(name, ".json"):
		return "application/json"
	case strings.HasSuffix(name, ".jpg"):
		return "image/jpeg"
	}
	return "application/octet-stream"
}

type s3Object struct {
	*minio.Object
	info ObjectInfo
}

func (o *s3Object) Info() ObjectInfo { return o.info }

// Open implements Storage: the object reads with ranged GETs from where it is sought.
func (s *S3Storage) Open(ctx context.Context, id int64, name string) (Object, error) {
	key, err := s.key(id, name)
	if err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("object %d/%s: %w", id, name, s3Err(err))
	}
	oi, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, fmt.Errorf("object %d/%s: %w", id, name, s3Err(err))
	}
	return &s3Object{Object: obj, info: ObjectInfo{Name: name, Size: oi.Size, ModTime: oi.LastModified}}, nil
}

// Stat implements Storage.
func (s *S3Storage) Stat(ctx context.Context, id int64, name string) (ObjectInfo, error) {
	key, err := s.key(id, name)
	if err != nil {
		return ObjectInfo{}, err
	}
	oi, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("object %d/%s: %w", id, name, s3Err(err))
	}
	return ObjectInfo{Name: name, Size: oi.Size, ModTime: oi.LastModified}, nil
}

// list calls fn for every object under prefix (recursive) or, without recursive, for
// every object and common prefix right under it.
func (s *S3Storage) list(ctx context.Context, prefix string, recursive bool, fn func(minio.ObjectInfo)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the lister when fn's caller returns early
	for oi := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: recursive}) {
		if oi.Err != nil {
			return s3Err(oi.Err)
		}
		fn(oi)
	}
	return ctx.Err()
}

// List implements Storage.
func (s *S3Storage) List(ctx context.Context, id int64) ([]ObjectInfo, error) {
	out := []ObjectInfo{}
	if id <= 0 {
		return out, nil
	}
	dir := s.dirKey(id)
	err := s.list(ctx, dir, false, func(oi minio.ObjectInfo) {
		name := strings.TrimPrefix(oi.Key, dir)
		if nameRE.MatchString(name) && !strings.Contains(name, "..") {
			out = append(out, ObjectInfo{Name: name, Size: oi.Size, ModTime: oi.LastModified})
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list recording %d: %w", id, err)
	}
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Delete implements Storage: it removes every object of the recording, in batches.
func (s *S3Storage) Delete(ctx context.Context, id int64) error {
	if id <= 0 {
		return nil
	}
	var keys []minio.ObjectInfo
	if err := s.list(ctx, s.dirKey(id), true, func(oi minio.ObjectInfo) {
		keys = append(keys, minio.ObjectInfo{Key: oi.Key})
	}); err != nil {
		return fmt.Errorf("delete recording %d: %w", id, err)
	}
	if len(keys) == 0 {
		return nil
	}
	ch := make(chan minio.ObjectInfo, len(keys))
	for _, k := range keys {
		ch <- k
	}
	close(ch)
	var errs []error
	for rerr := range s.client.RemoveObjects(ctx, s.bucket, ch, minio.RemoveObjectsOptions{}) {
		if rerr.Err != nil && !errors.Is(s3Err(rerr.Err), ErrNotFound) {
			errs = append(errs, fmt.Errorf("%s: %w", strings.TrimPrefix(rerr.ObjectName, s.root()), rerr.Err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete recording %d: %w", id, err)
	}
	return nil
}

// Recordings implements Storage.
func (s *S3Storage) Recordings(ctx context.Context) ([]int64, error) {
	ids := []int64{}
	root := s.root()
	err := s.list(ctx, root, false, func(oi minio.ObjectInfo) {
		dir, ok := strings.CutSuffix(strings.TrimPrefix(oi.Key, root), "/")
		if !ok {
			return // an object, not a recording's prefix
		}
		id, err := strconv.ParseInt(dir, 10, 64)
		if err != nil || id <= 0 || strconv.FormatInt(id, 10) != dir {
			return
		}
		ids = append(ids, id)
	})
	if err != nil {
		return nil, fmt.Errorf("list recordings: %w", err)
	}
	slices.Sort(ids)
	return ids, nil
}

// Usage implements Storage: Used sums the sizes of every object under the prefix (one
// listing of the bucket, so the Cleaner's periodic call costs a request per thousand
// objects); Free is -1, a bucket has no size.
func (s *S3Storage) Usage(ctx context.Context) (Usage, error) {
	u := Usage{Free: -1}
	err := s.list(ctx, s.root(), true, func(oi minio.ObjectInfo) { u.Used += oi.Size })
	if err != nil {
		return u, fmt.Errorf("storage usage: %w", err)
	}
	return u, nil
}
