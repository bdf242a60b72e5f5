package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	require.NoError(t, c.Validate())
	require.Equal(t, "sqlite:onair-data/onair.db", c.DB)
	require.Equal(t, ":1935", c.RTMPAddr)
	require.Equal(t, ":8080", c.HTTPAddr)
	require.Equal(t, 10*time.Second, c.RelayLinger.D())
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "onair.toml")
	require.NoError(t, os.WriteFile(file, []byte(`
data = "/var/lib/onair"
grace_period = "5s"
stat_allow = ["10.0.0.0/8"]

[[webhooks]]
url = "https://hooks.example.org/onair"
secret = "s3cret"
events = ["stream.started"]

[publish_auth]
url = "http://127.0.0.1:9000/on_publish"
fail_open = true
`), 0o600))
	c := Default()
	require.NoError(t, Load(&c, file, []string{"ONAIR_HTTP_ADDR=:9090", "ONAIR_STAT_ALLOW=127.0.0.0/8, ::1/128", "HOME=/root"}))
	require.NoError(t, c.Validate())
	require.Equal(t, "/var/lib/onair", c.Data)
	require.Equal(t, 5*time.Second, c.GracePeriod.D())
	require.Equal(t, ":9090", c.HTTPAddr)
	require.Equal(t, []string{"127.0.0.0/8", "::1/128"}, c.StatAllow)
	require.Len(t, c.Webhooks, 1)
	require.Equal(t, []string{"stream.started"}, c.Webhooks[0].Events)
	require.True(t, c.PublishAuth.FailOpen)
	require.Equal(t, 3*time.Second, c.PublishAuth.Timeout.D()) // default kept
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "onair.toml")
	require.NoError(t, os.WriteFile(file, []byte("rtmp_adr = \":1935\"\n"), 0o600))
	c := Default()
	require.ErrorContains(t, Load(&c, file, nil), "unknown keys: rtmp_adr")

	c = Default()
	require.ErrorContains(t, Load(&c, "", []string{"ONAIR_GRACE_PERIOD=later"}), "ONAIR_GRACE_PERIOD")
}

func TestValidateListsEveryProblem(t *testing.T) {
	c := Default()
	c.RTMPAddr = "1935"
	c.LogLevel = "loud"
	c.HLSPlaylistSize = 1
	c.StatAllow = []string{"everyone"}
	c.Webhooks = []Webhook{{URL: "ftp://x"}}
	c.DB = "oracle://x"
	c.RelayLinger = -1
	err := c.Validate()
	for _, want := range []string{"relay_linger", "rtmp_addr", "log_level", "hls_playlist_size", "stat_allow", "webhooks[0].url", "webhooks[0].secret", "db:"} {
		require.ErrorContains(t, err, want)
	}
}

func TestNetSettings(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "onair.toml")
	require.NoError(t, os.WriteFile(file, []byte(`
tls_cert = "/etc/onair/cert.pem"
tls_key = "/etc/onair/key.pem"
rtmps_addr = ":1936"
http_max_conns_per_ip = 10
conn_limit_exempt = ["10.0.0.0/8"]
`), 0o600))
	c := Default()
	require.NoError(t, Load(&c, file, []string{"ONAIR_HTTP_WRITE_TIMEOUT=5s", "ONAIR_HTTPS_ADDR=:443"}))
	require.NoError(t, c.Validate())
	require.True(t, c.TLS())
	require.Equal(t, ":1936", c.RTMPSAddr)
	require.Equal(t, ":443", c.HTTPSAddr)
	require.Equal(t, 10, c.HTTPMaxConnsPerIP)
	require.Equal(t, 64, c.RTMPMaxConnsPerIP) // default kept
	require.Equal(t, []string{"10.0.0.0/8"}, c.ConnLimitExempt)
	require.Equal(t, 5*time.Second, c.HTTPWriteTimeout.D())

	c = Default()
	c.TLSCert = "cert.pem"
	c.RTMPSAddr = "1936"
	c.HTTPHeaderTimeout = 0
	c.RTMPMaxConnsPerIP = -1
	c.ConnLimitExempt = []string{"loopback"}
	err := c.Validate()
	for _, want := range []string{"tls_cert, tls_key: set both or neither", "rtmps_addr: \"1936\" is not host:port",
		"rtmps_addr: needs tls_cert and tls_key", "http_header_timeout: must be positive",
		"rtmp_max_conns_per_ip: must not be negative", "conn_limit_exempt"} {
		require.ErrorContains(t, err, want)
	}
}

func TestRecordingsS3(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "onair.toml")
	require.NoError(t, os.WriteFile(file, []byte(`
[recordings_s3]
endpoint = "minio.internal:9000"
bucket = "onair"
access_key = "AKIA"
prefix = "site/recordings"
`), 0o600))
	c := Default()
	require.False(t, c.RecordingsS3.Enabled())
	require.NoError(t, Load(&c, file, []string{"ONAIR_RECORDINGS_S3_SECRET_KEY=shh", "ONAIR_RECORDINGS_S3_USE_SSL=true"}))
	require.NoError(t, c.Validate())
	require.True(t, c.RecordingsS3.Enabled())
	require.Equal(t, RecordingsS3{Endpoint: "minio.internal:9000", Bucket: "onair", AccessKey: "AKIA", SecretKey: "shh", UseSSL: true, Prefix: "site/recordings"}, c.RecordingsS3)

	c = Default()
	require.ErrorContains(t, Load(&c, "", []string{"ONAIR_RECORDINGS_S3_USE_SSL=maybe"}), "ONAIR_RECORDINGS_S3_USE_SSL")

	c = Default()
	c.RecordingsS3 = RecordingsS3{Endpoint: "https://s3.example.org", AccessKey: "a"}
	err := c.Validate()
	for _, want := range []string{"recordings_s3.endpoint", "recordings_s3.bucket", "access_key and secret_key"} {
		require.ErrorContains(t, err, want)
	}
	c = Default()
	c.RecordingsS3 = RecordingsS3{Bucket: "b"}
	require.ErrorContains(t, c.Validate(), "recordings_s3.endpoint: must be set")
}
