package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// RecordingsS3 puts recordings in an S3 bucket instead of DATA/recordings, so that every
// node of a cluster serves every replay. It is used when Endpoint is set.
type RecordingsS3 struct {
	// Endpoint is the server's host[:port], without a scheme (s3.eu-west-1.amazonaws.com, minio:9000).
	Endpoint string `toml:"endpoint"`
	// Bucket must exist.
	Bucket string `toml:"bucket"`
	// AccessKey and SecretKey sign requests. Keep the secret key in the environment
	// (ONAIR_RECORDINGS_S3_SECRET_KEY) rather than the file; it is never logged.
	AccessKey string `toml:"access_key"`
	SecretKey string `toml:"secret_key"`
	// Region of the bucket (default us-east-1).
	Region string `toml:"region"`
	// UseSSL talks HTTPS to the endpoint.
	UseSSL bool `toml:"use_ssl"`
	// Prefix starts every object key: {prefix}/{recording id}/{name}. Default "recordings".
	Prefix string `toml:"prefix"`
}

// Enabled reports whether recordings go to S3.
func (s RecordingsS3) Enabled() bool { return s.Endpoint != "" }

func (s RecordingsS3) validate() []error {
	if !s.Enabled() {
		if s.Bucket != "" || s.AccessKey != "" || s.SecretKey != "" {
			return []error{errors.New("recordings_s3.endpoint: must be set with the other recordings_s3 keys")}
		}
		return nil
	}
	var errs []error
	if strings.Contains(s.Endpoint, "://") || strings.ContainsAny(s.Endpoint, "/ ") {
		errs = append(errs, fmt.Errorf("recordings_s3.endpoint: %q is not host[:port] (no scheme: set use_ssl for https)", s.Endpoint))
	}
	if s.Bucket == "" {
		errs = append(errs, errors.New("recordings_s3.bucket: must be set"))
	}
	if (s.AccessKey == "") != (s.SecretKey == "") {
		errs = append(errs, errors.New("recordings_s3: access_key and secret_key go together"))
	}
	return errs
}

// s3Fields are the environment names of RecordingsS3: ONAIR_RECORDINGS_S3_ENDPOINT, …
func (c *Config) s3Fields() []field {
	str := func(p *string) func(string) error { return func(v string) error { *p = v; return nil } }
	s := &c.RecordingsS3
	return []field{
		{"recordings_s3_endpoint", str(&s.Endpoint)},
		{"recordings_s3_bucket", str(&s.Bucket)},
		{"recordings_s3_access_key", str(&s.AccessKey)},
		{"recordings_s3_secret_key", str(&s.SecretKey)},
		{"recordings_s3_region", str(&s.Region)},
		{"recordings_s3_use_ssl", func(v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%q is not a boolean", v)
			}
			s.UseSSL = b
			return nil
		}},
		{"recordings_s3_prefix", str(&s.Prefix)},
	}
}
