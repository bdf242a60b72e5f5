package app

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/onair/onair/internal/record"
)

// recordingStorage returns where recordings are kept: the S3 bucket of
// [recordings_s3] when it is configured (every node of a cluster then serves every
// replay), else DATA/recordings. The bucket is checked before the recorder repairs
// anything, so that a wrong endpoint or key fails the start with a clear error.
func (s *Server) recordingStorage(ctx context.Context) (record.Storage, error) {
	c := s.Config
	if !c.RecordingsS3.Enabled() {
		return &record.LocalStorage{Dir: filepath.Join(c.Data, "recordings")}, nil
	}
	cs := c.RecordingsS3
	st, err := record.NewS3Storage(record.S3Config{
		Endpoint:  cs.Endpoint,
		Bucket:    cs.Bucket,
		AccessKey: cs.AccessKey,
		SecretKey: cs.SecretKey,
		Region:    cs.Region,
		UseSSL:    cs.UseSSL,
		Prefix:    cs.Prefix,
	})
	if err != nil {
		return nil, fmt.Errorf("recordings storage: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := st.Check(ctx); err != nil {
		return nil, fmt.Errorf("recordings storage: %w", err)
	}
	s.Logger.Info("recordings stored in s3", "endpoint", cs.Endpoint, "bucket", cs.Bucket,
		"prefix", cs.Prefix, "use_ssl", cs.UseSSL)
	return st, nil
}
