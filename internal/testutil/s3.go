package testutil

import (
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// FakeS3 is an S3-protocol server (gofakes3, in memory) running inside the test.
type FakeS3 struct {
	// Endpoint is host:port, for an S3 client without TLS.
	Endpoint string
	// Bucket exists and is empty.
	Bucket string
	// AccessKey and SecretKey are accepted (gofakes3 does not check signatures).
	AccessKey, SecretKey string
}

// StartFakeS3 starts an in-memory S3 server with one bucket; it stops with the test.
func StartFakeS3(tb testing.TB) FakeS3 {
	tb.Helper()
	backend := s3mem.New()
	const bucket = "onair-test"
	if err := backend.CreateBucket(bucket); err != nil {
		tb.Fatalf("create bucket: %v", err)
	}
	srv := httptest.NewUnstartedServer(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // gofakes3 writes some error headers twice
	srv.Start()
	tb.Cleanup(srv.Close)
	return FakeS3{
		Endpoint:  strings.TrimPrefix(srv.URL, "http://"),
		Bucket:    bucket,
		AccessKey: "onair-access",
		SecretKey: "onair-secret-never-logged",
	}
}
